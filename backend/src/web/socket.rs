//! The WebSocket at `/ws`: a snapshot of the whole state, then live messages; commands in the other
//! direction. Messages are capped at [`WEBSOCKET_MESSAGE_LIMIT`]; studio calls that read the history
//! run on the blocking pool. The server pings every third of
//! [`ConnectionLimits::websocket_idle_timeout`] and closes a session that sends nothing, not even a
//! pong, for that long, so a vanished client does not hold a connection slot for ever.

use super::error::PathScrubber;
use super::listener::{ConnectionLimits, ConnectionSlot};
use super::run_list::RunListCache;
use crate::studio::{Studio, StudioError};
use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use futures::{SinkExt, StreamExt};
use shared::{ClientMessage, ServerMessage};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// Largest message (and frame) a client may send; commands are a few hundred bytes.
pub const WEBSOCKET_MESSAGE_LIMIT: usize = 64 * 1024;

/// Upgrades to a client session. The guard has already checked host, origin and token; the
/// connection's slot stays taken for as long as the session lasts.
pub(crate) async fn websocket(
    State(studio): State<Studio>,
    Extension(scrubber): Extension<PathScrubber>,
    Extension(limits): Extension<ConnectionLimits>,
    Extension(snapshots): Extension<RunListCache>,
    slot: Option<Extension<ConnectionSlot>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade.max_message_size(WEBSOCKET_MESSAGE_LIMIT).max_frame_size(WEBSOCKET_MESSAGE_LIMIT).on_upgrade(
        move |socket| async move {
            let _slot = slot;
            let session = Session { studio, scrubber, snapshots };
            client_session(socket, session, limits.websocket_idle_timeout).await
        },
    )
}

/// What one client's session works with.
struct Session {
    studio: Studio,
    scrubber: PathScrubber,
    /// Snapshots are made from the run list's cache, shared by every client (see
    /// [`RunListCache::snapshot`]).
    snapshots: RunListCache,
}

impl Session {
    /// Sends the whole state, when its turn comes (see [`RunListCache::turn_to_write`]); a snapshot that
    /// cannot be made is logged and skipped.
    async fn send_snapshot<S>(&self, sink: &mut S) -> Result<(), axum::Error>
    where
        S: futures::Sink<Message, Error = axum::Error> + Unpin,
    {
        let _turn = self.snapshots.turn_to_write().await;
        match self.snapshot().await {
            Ok(snapshot) => sink.send(snapshot).await,
            Err(error) => {
                tracing::error!("snapshot failed: {error}");
                Ok(())
            }
        }
    }

    /// The whole state as a snapshot message's text, made off the async workers when it must be made.
    async fn snapshot(&self) -> Result<Message, String> {
        let (studio, scrubber, snapshots) = (self.studio.clone(), self.scrubber.clone(), self.snapshots.clone());
        match tokio::task::spawn_blocking(move || snapshots.snapshot(&studio, &scrubber)).await {
            Ok(Ok(text)) => Ok(Message::Text(text.into())),
            Ok(Err(error)) => Err(format!("{error:?}")),
            Err(panic) => Err(format!("the snapshot panicked: {panic}")),
        }
    }
}

/// Runs `call` on the blocking pool; a panic there becomes an error sentence.
async fn off_the_workers<T: Send + 'static>(
    studio: &Studio,
    call: impl FnOnce(&Studio) -> Result<T, StudioError> + Send + 'static,
) -> Result<T, String> {
    let studio = studio.clone();
    match tokio::task::spawn_blocking(move || call(&studio)).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(panic) => {
            tracing::error!("a WebSocket command panicked: {panic}");
            Err("the command failed; the server's log has the details".into())
        }
    }
}

/// One browser's connection: a snapshot, then live messages and a ping every third of `idle`; commands
/// in the other direction. Nothing received for `idle` closes it.
async fn client_session(socket: WebSocket, session: Session, idle: Duration) {
    let (mut sink, mut stream) = socket.split();
    let studio = &session.studio;
    let mut live = studio.subscribe();
    let (replies, mut reply_queue) = tokio::sync::mpsc::channel::<Reply>(16);
    let encode = |message: ServerMessage| {
        Some(Message::Text(serde_json::to_string(&session.scrubber.message(message)).expect("serialises").into()))
    };

    let writer = async {
        session.send_snapshot(&mut sink).await?;
        let ping_every = idle / 3;
        let mut pings = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
        pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let message = tokio::select! {
                received = live.recv() => match received {
                    Ok(message) => encode(message),
                    // Fell behind: skip what was missed and start again from the whole state.
                    Err(RecvError::Lagged(_)) => None,
                    Err(RecvError::Closed) => break,
                },
                Some(reply) = reply_queue.recv() => match reply {
                    Reply::Message(message) => encode(message),
                    Reply::Snapshot => None,
                },
                _ = pings.tick() => Some(Message::Ping(Default::default())),
            };
            match message {
                Some(message) => sink.send(message).await?,
                None => session.send_snapshot(&mut sink).await?,
            }
        }
        Ok::<(), axum::Error>(())
    };

    let reader = async {
        // A message over the limit, or any protocol error, ends the session; so does silence.
        loop {
            let message = match tokio::time::timeout(idle, stream.next()).await {
                Ok(Some(Ok(message))) => message,
                Ok(_) => return false,
                Err(_) => return true,
            };
            let text = match message {
                Message::Text(text) => text,
                Message::Close(_) => return false,
                _ => continue,
            };
            if let Some(reply) = command(studio, &text).await {
                let _ = replies.send(reply).await;
            }
        }
    };

    let went_silent = tokio::select! {
        result = writer => {
            if let Err(error) = result {
                tracing::debug!("websocket closed: {error}");
            }
            false
        }
        silent = reader => silent,
    };
    if went_silent {
        let reason = format!("nothing received for {} s", idle.as_secs_f64());
        let _ = sink.send(Message::Close(Some(CloseFrame { code: close_code::AWAY, reason: reason.into() }))).await;
    }
}

/// What goes back to the one client that sent a command. A reply lives only until it is written, so the
/// message is kept inline, as [`ServerMessage`]'s own variants are.
#[allow(clippy::large_enum_variant)]
enum Reply {
    /// This message.
    Message(ServerMessage),
    /// A fresh snapshot of the whole state.
    Snapshot,
}

/// Carries out one client message; the answer, if any, goes back to that client only.
async fn command(studio: &Studio, text: &str) -> Option<Reply> {
    let refused = |message: String| Some(Reply::Message(ServerMessage::Error { message }));
    match serde_json::from_str::<ClientMessage>(text) {
        Err(error) => refused(format!("could not read that message: {error}")),
        Ok(ClientMessage::StartRun { config }) => {
            off_the_workers(studio, move |s| s.create_run(config)).await.err().and_then(refused)
        }
        Ok(ClientMessage::StopRun { run_id }) => {
            off_the_workers(studio, move |s| s.stop_run(run_id)).await.err().and_then(refused)
        }
        Ok(ClientMessage::ResumeRun { run_id }) => {
            off_the_workers(studio, move |s| s.resume_run(run_id)).await.err().and_then(refused)
        }
        Ok(ClientMessage::RenameRun { run_id, name }) => {
            off_the_workers(studio, move |s| s.rename_run(run_id, &name)).await.err().and_then(refused)
        }
        Ok(ClientMessage::DeleteRun { run_id }) => {
            off_the_workers(studio, move |s| s.delete_run(run_id)).await.err().and_then(refused)
        }
        Ok(ClientMessage::Resync) => Some(Reply::Snapshot),
        Ok(ClientMessage::StopLrFinder) => studio.stop_lr_finder().err().and_then(|error| refused(error.to_string())),
    }
}
