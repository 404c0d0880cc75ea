//! The accept loop: HTTP/1.1 connections (with upgrades, for the WebSocket) served by hyper with a
//! header-read timeout, an idle timeout on request bodies and at most
//! [`ConnectionLimits::max_connections`] at once, until shutdown. `axum::serve` has none of these
//! bounds, hence this loop.

use super::{app, ServerOptions};
use crate::studio::Studio;
use axum::body::Body;
use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;
use tower_http::timeout::TimeoutBody;

/// Bounds on connections.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// A connection that has not sent a whole request head this long after it opened, or after its
    /// previous answer (an idle keep-alive connection), is closed.
    pub header_read_timeout: Duration,
    /// A request body that sends nothing for this long fails (the request is refused and the
    /// connection closed); a slow upload that keeps sending is not cut off.
    pub body_idle_timeout: Duration,
    /// Connections served at once, WebSocket sessions included; more wait in the listen backlog.
    pub max_connections: usize,
    /// A WebSocket session from which nothing arrives (no message, not even the pong a browser sends
    /// by itself) for this long is closed. The server pings every third of it, so an open tab, even in
    /// the background, always answers in time.
    pub websocket_idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(30),
            max_connections: 256,
            websocket_idle_timeout: Duration::from_secs(60),
        }
    }
}

/// One of the [`ConnectionLimits::max_connections`] slots, held by a connection and by the WebSocket
/// session it turned into.
#[derive(Clone)]
pub(crate) struct ConnectionSlot(#[allow(dead_code)] Arc<OwnedSemaphorePermit>);

/// Serves [`app`] on `listener` until `shutdown` completes, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    studio: Studio,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = options.limits.clone();
    let router = app(studio, options);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // `stop` tells connections to finish; each holds a clone of `tracked`, so `tracker.closed()`
    // completes once every one has.
    let (stop, stopping) = watch::channel(false);
    let (tracker, tracked) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (stream, slot) = tokio::select! {
            accepted = accept(&listener, &slots) => accepted,
            () = &mut shutdown => break,
        };
        let connection = serve_connection(stream, slot, router.clone(), limits.clone(), stopping.clone());
        let tracked = tracked.clone();
        tokio::spawn(async move {
            connection.await;
            drop(tracked);
        });
    }
    drop(listener);
    drop(tracked);
    let _ = stop.send(true);
    tracker.closed().await;
    Ok(())
}

/// The next connection, once a slot is free. Accept errors (out of file descriptors, a connection reset
/// before it was taken) are logged and waited out.
async fn accept(listener: &TcpListener, slots: &Arc<Semaphore>) -> (TcpStream, OwnedSemaphorePermit) {
    let slot = slots.clone().acquire_owned().await.expect("the semaphore is never closed");
    loop {
        match listener.accept().await {
            Ok((stream, _)) => return (stream, slot),
            Err(error) => {
                tracing::warn!("accepting a connection failed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Serves one connection; when `stopping` turns true it finishes the request in flight and closes.
async fn serve_connection(
    stream: TcpStream,
    slot: OwnedSemaphorePermit,
    router: Router,
    limits: ConnectionLimits,
    mut stopping: watch::Receiver<bool>,
) {
    let slot = ConnectionSlot(Arc::new(slot));
    let body_idle_timeout = limits.body_idle_timeout;
    let service = router.map_request(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(slot.clone());
        request.map(|body| Body::new(TimeoutBody::new(body_idle_timeout, body)))
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)).with_upgrades();
    tokio::pin!(connection);
    let mut asked_to_stop = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!("connection ended: {error}");
                }
                break;
            }
            _ = stopping.wait_for(|stop| *stop), if !asked_to_stop => {
                asked_to_stop = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}
