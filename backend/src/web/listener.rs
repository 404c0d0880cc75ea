//! The accept loop: HTTP/1.1 connections (with upgrades, for the WebSocket) served by hyper with a
//! header-read timeout, an idle timeout on request bodies, a deadline on answers the client does not
//! take, at most [`ConnectionLimits::max_connections`] at once and a cap per address on connections no
//! request has vouched for, until shutdown. `axum::serve` has none of these bounds, hence this loop.

use super::{app, ServerOptions};
use crate::studio::Studio;
use axum::body::Body;
use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
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
    /// An answer of which the client takes nothing for this long closes the connection: a client that
    /// sends requests and never reads the answers cannot hold its slot (nor the answer's memory). A
    /// slow download that keeps taking bytes is not cut off.
    pub write_stall_timeout: Duration,
    /// Connections served at once, WebSocket sessions included; more wait in the listen backlog.
    pub max_connections: usize,
    /// Connections one address may hold open before any of their requests passed the guard (the token,
    /// the host and origin checks). Past it, a new connection from that address is on probation: closed
    /// unless a request on it passes the guard within [`ConnectionLimits::unvouched_probation`], so
    /// one client without the token cannot keep every slot, even from the address of a client that has
    /// it (loopback).
    pub max_unvouched_per_address: usize,
    /// How long a connection on probation (see [`ConnectionLimits::max_unvouched_per_address`]) has to be
    /// vouched for.
    pub unvouched_probation: Duration,
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
            write_stall_timeout: Duration::from_secs(30),
            max_connections: 256,
            max_unvouched_per_address: 32,
            unvouched_probation: Duration::from_secs(1),
            websocket_idle_timeout: Duration::from_secs(60),
        }
    }
}

/// One of the [`ConnectionLimits::max_connections`] slots, held by a connection and by the WebSocket
/// session it turned into.
#[derive(Clone)]
pub(crate) struct ConnectionSlot(#[allow(dead_code)] Arc<OwnedSemaphorePermit>);

/// Connections not yet vouched for, per client address (see
/// [`ConnectionLimits::max_unvouched_per_address`]).
#[derive(Clone, Default)]
struct UnvouchedCounts(Arc<Mutex<HashMap<IpAddr, usize>>>);

impl UnvouchedCounts {
    /// Counts a new connection from `address`; returns how many unvouched ones it has now.
    fn open(&self, address: IpAddr) -> usize {
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(address).or_default();
        *count += 1;
        *count
    }

    fn close(&self, address: IpAddr) {
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&address) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&address);
            }
        }
    }
}

/// Whether a connection has had a request pass the guard. The guard vouches for it (a request extension);
/// until then it counts against its address's [`ConnectionLimits::max_unvouched_per_address`].
#[derive(Clone)]
pub(crate) struct ConnectionTrust(Arc<TrustState>);

struct TrustState {
    address: IpAddr,
    counts: UnvouchedCounts,
    vouched: AtomicBool,
    /// Opened past its address's cap: how long a request on it has to pass the guard.
    probation: Option<Duration>,
}

impl ConnectionTrust {
    /// Whether a request on this connection passed the guard.
    fn is_vouched(&self) -> bool {
        self.0.vouched.load(Ordering::Acquire)
    }

    /// A request on this connection passed the guard: it no longer counts as unvouched.
    pub(crate) fn vouch(&self) {
        if !self.0.vouched.swap(true, Ordering::AcqRel) {
            self.0.counts.close(self.0.address);
        }
    }
}

impl Drop for TrustState {
    fn drop(&mut self) {
        if !*self.vouched.get_mut() {
            self.counts.close(self.address);
        }
    }
}

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
    let unvouched = UnvouchedCounts::default();
    // `stop` tells connections to finish; each holds a clone of `tracked`, so `tracker.closed()`
    // completes once every one has.
    let (stop, stopping) = watch::channel(false);
    let (tracker, tracked) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (stream, address, slot) = tokio::select! {
            accepted = accept(&listener, &slots) => accepted,
            () = &mut shutdown => break,
        };
        let unvouched_from_address = unvouched.open(address);
        let trust = ConnectionTrust(Arc::new(TrustState {
            address,
            counts: unvouched.clone(),
            vouched: AtomicBool::new(false),
            probation: (unvouched_from_address > limits.max_unvouched_per_address)
                .then_some(limits.unvouched_probation),
        }));
        let connection = serve_connection(stream, slot, trust, router.clone(), limits.clone(), stopping.clone());
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
async fn accept(listener: &TcpListener, slots: &Arc<Semaphore>) -> (TcpStream, IpAddr, OwnedSemaphorePermit) {
    let slot = slots.clone().acquire_owned().await.expect("the semaphore is never closed");
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => return (stream, peer.ip(), slot),
            Err(error) => {
                tracing::warn!("accepting a connection failed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Serves one connection; when `stopping` turns true it finishes the request in flight and closes.
/// A connection on probation is dropped if no request on it has passed the guard by its end; one vouched
/// for is served like any other.
async fn serve_connection(
    stream: TcpStream,
    slot: OwnedSemaphorePermit,
    trust: ConnectionTrust,
    router: Router,
    limits: ConnectionLimits,
    mut stopping: watch::Receiver<bool>,
) {
    let slot = ConnectionSlot(Arc::new(slot));
    let probation = trust.0.probation;
    let watched = trust.clone();
    let body_idle_timeout = limits.body_idle_timeout;
    let service = router.map_request(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(slot.clone());
        request.extensions_mut().insert(trust.clone());
        request.map(|body| Body::new(TimeoutBody::new(body_idle_timeout, body)))
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let stream = StallDeadline::new(stream, limits.write_stall_timeout);
    let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)).with_upgrades();
    tokio::pin!(connection);
    let mut asked_to_stop = false;
    let on_probation = probation.is_some();
    let probation_ends = tokio::time::sleep(probation.unwrap_or_default());
    tokio::pin!(probation_ends);
    let mut judged = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!("connection ended: {error}");
                }
                break;
            }
            () = &mut probation_ends, if on_probation && !judged => {
                judged = true;
                if !watched.is_vouched() {
                    tracing::debug!("closing a connection no request vouched for in its probation");
                    break;
                }
            }
            _ = stopping.wait_for(|stop| *stop), if !asked_to_stop => {
                asked_to_stop = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// A stream whose writes fail with `TimedOut` once the peer has taken nothing for `stall`: hyper (and
/// the WebSocket after an upgrade) then drop the connection, its slot and the answer it held.
struct StallDeadline<S> {
    inner: S,
    stall: Duration,
    /// Running while a write is waiting for the peer to take bytes.
    waiting: Option<Pin<Box<Sleep>>>,
}

impl<S> StallDeadline<S> {
    fn new(inner: S, stall: Duration) -> Self {
        StallDeadline { inner, stall, waiting: None }
    }

    /// Passes on a write's progress, restarting the clock whenever the peer takes something; a write
    /// still pending once the clock runs out is an error.
    fn watch<T>(&mut self, cx: &mut Context<'_>, progress: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if progress.is_ready() {
            self.waiting = None;
            return progress;
        }
        let stall = self.stall;
        let clock = self.waiting.get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
        match clock.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client took nothing of its answer for {} s", stall.as_secs_f64()),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for StallDeadline<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for StallDeadline<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let progress = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, progress)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let progress = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, progress)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let progress = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, progress)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let progress = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, progress)
    }
}
