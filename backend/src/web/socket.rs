//! The WebSocket at `/ws`: a snapshot of the whole state, then live messages; commands in the other
//! direction. Messages are capped at [`WEBSOCKET_MESSAGE_LIMIT`]; studio calls that read the history
//! run on the blocking pool.

use super::error::PathScrubber;
use super::listener::ConnectionSlot;
use crate::studio::{Studio, StudioError};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use futures::{SinkExt, StreamExt};
use shared::{ClientMessage, ServerMessage};
use tokio::sync::broadcast::error::RecvError;

/// Largest message (and frame) a client may send; commands are a few hundred bytes.
pub const WEBSOCKET_MESSAGE_LIMIT: usize = 64 * 1024;

/// Upgrades to a client session. The guard has already checked host, origin and token; the
/// connection's slot stays taken for as long as the session lasts.
pub(crate) async fn websocket(
    State(studio): State<Studio>,
    Extension(scrubber): Extension<PathScrubber>,
    slot: Option<Extension<ConnectionSlot>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade.max_message_size(WEBSOCKET_MESSAGE_LIMIT).max_frame_size(WEBSOCKET_MESSAGE_LIMIT).on_upgrade(
        move |socket| async move {
            let _slot = slot;
            client_session(socket, studio, scrubber).await
        },
    )
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

/// One browser's connection: a snapshot, then live messages; commands in the other direction.
async fn client_session(socket: WebSocket, studio: Studio, scrubber: PathScrubber) {
    let (mut sink, mut stream) = socket.split();
    let mut live = studio.subscribe();
    let (replies, mut reply_queue) = tokio::sync::mpsc::channel::<ServerMessage>(16);
    let encode = |message: ServerMessage| {
        Message::Text(serde_json::to_string(&scrubber.message(message)).expect("serialises").into())
    };

    let writer = async {
        match off_the_workers(&studio, Studio::snapshot).await {
            Ok(snapshot) => sink.send(encode(snapshot)).await?,
            Err(error) => tracing::error!("snapshot failed: {error}"),
        }
        loop {
            let message = tokio::select! {
                received = live.recv() => match received {
                    Ok(message) => message,
                    // Fell behind: skip what was missed and start again from the whole state.
                    Err(RecvError::Lagged(_)) => match off_the_workers(&studio, Studio::snapshot).await {
                        Ok(snapshot) => snapshot,
                        Err(_) => continue,
                    },
                    Err(RecvError::Closed) => break,
                },
                Some(reply) = reply_queue.recv() => reply,
            };
            sink.send(encode(message)).await?;
        }
        Ok::<(), axum::Error>(())
    };

    let reader = async {
        // A message over the limit, or any protocol error, ends the session.
        while let Some(Ok(message)) = stream.next().await {
            let text = match message {
                Message::Text(text) => text,
                Message::Close(_) => break,
                _ => continue,
            };
            if let Some(reply) = command(&studio, &text).await {
                let _ = replies.send(reply).await;
            }
        }
    };

    tokio::select! {
        result = writer => if let Err(error) = result { tracing::debug!("websocket closed: {error}") },
        () = reader => {}
    }
}

/// Carries out one client message; the answer, if any, goes back to that client only.
async fn command(studio: &Studio, text: &str) -> Option<ServerMessage> {
    let refused = |message: String| Some(ServerMessage::Error { message });
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
        Ok(ClientMessage::Resync) => off_the_workers(studio, Studio::snapshot).await.ok(),
    }
}
