//! The live connection to the server: one WebSocket, reopened by itself whenever it drops.
//!
//! [`connect`] spawns a task that owns the socket. It reports [`SocketEvent`]s to a callback and
//! sends the [`ClientMessage`]s that arrive on the channel it is given. After a close or an error it
//! waits (0.5 s, doubling up to 10 s, back to 0.5 s once a connection opens) and tries again; the
//! server answers every new connection with a snapshot, so nothing missed in between is lost.

use futures::channel::mpsc::UnboundedReceiver;
use futures::future::{self, Either};
use futures::{SinkExt, StreamExt};
use gloo_net::websocket::{futures::WebSocket, Message, State};
use shared::{ClientMessage, ServerMessage};

/// Wait before the first reconnection attempt, in milliseconds.
pub const FIRST_RETRY_MS: u32 = 500;
/// Longest wait between reconnection attempts, in milliseconds.
pub const LONGEST_RETRY_MS: u32 = 10_000;

/// What the connection tells the page.
#[derive(Debug, Clone, PartialEq)]
pub enum SocketEvent {
    /// The socket is open.
    Connected,
    /// The socket closed or could not open; a new attempt is scheduled.
    Disconnected,
    /// The server sent this.
    Message(Box<ServerMessage>),
}

/// The wait after one that lasted `previous_ms`.
pub fn next_retry_ms(previous_ms: u32) -> u32 {
    previous_ms.saturating_mul(2).min(LONGEST_RETRY_MS)
}

/// The WebSocket address on the page's own host: `ws://` under `http:`, `wss://` under `https:`.
pub fn socket_url(protocol: &str, host: &str) -> String {
    let scheme = if protocol == "https:" { "wss" } else { "ws" };
    format!("{scheme}://{host}/ws")
}

/// The WebSocket address for the page being shown.
pub fn page_socket_url() -> String {
    let location = web_sys::window().expect("the page runs in a window").location();
    socket_url(
        &location.protocol().unwrap_or_else(|_| "http:".into()),
        &location.host().unwrap_or_else(|_| "127.0.0.1:8080".into()),
    )
}

/// Opens the connection to `url` and keeps it open; messages arriving on `outgoing` go to the
/// server while connected. Those sent while disconnected are dropped when the next connection
/// opens, since the page disables its commands meanwhile.
pub fn connect(url: String, outgoing: UnboundedReceiver<ClientMessage>, on_event: impl Fn(SocketEvent) + 'static) {
    wasm_bindgen_futures::spawn_local(keep_connected(url, outgoing, on_event));
}

async fn keep_connected(url: String, mut outgoing: UnboundedReceiver<ClientMessage>, on_event: impl Fn(SocketEvent)) {
    let mut retry_ms = FIRST_RETRY_MS;
    loop {
        if let Ok(mut socket) = WebSocket::open(&url) {
            // The sink is ready once the socket is no longer connecting: open, or failed.
            let ready = future::poll_fn(|cx| socket.poll_ready_unpin(cx)).await;
            if ready.is_ok() && matches!(socket.state(), State::Open) {
                retry_ms = FIRST_RETRY_MS;
                while outgoing.try_recv().is_ok() {}
                on_event(SocketEvent::Connected);
                if !exchange(socket, &mut outgoing, &on_event).await {
                    return;
                }
            }
        }
        on_event(SocketEvent::Disconnected);
        gloo_timers::future::TimeoutFuture::new(retry_ms).await;
        retry_ms = next_retry_ms(retry_ms);
    }
}

/// Relays messages both ways until the socket ends. Returns false when the page dropped its
/// sender, so there is nobody left to reconnect for.
async fn exchange(
    socket: WebSocket,
    outgoing: &mut UnboundedReceiver<ClientMessage>,
    on_event: &impl Fn(SocketEvent),
) -> bool {
    let (mut sink, mut stream) = socket.split();
    loop {
        match future::select(stream.next(), outgoing.next()).await {
            Either::Left((Some(Ok(Message::Text(text))), _)) => match serde_json::from_str::<ServerMessage>(&text) {
                Ok(message) => on_event(SocketEvent::Message(Box::new(message))),
                Err(error) => log(&format!("ignored a message the page does not understand: {error}")),
            },
            Either::Left((Some(Ok(Message::Bytes(_))), _)) => {}
            Either::Left((Some(Err(_)) | None, _)) => return true,
            Either::Right((Some(message), _)) => {
                let json = serde_json::to_string(&message).expect("client messages always serialise");
                if sink.send(Message::Text(json)).await.is_err() {
                    return true;
                }
            }
            Either::Right((None, _)) => return false,
        }
    }
}

fn log(line: &str) {
    web_sys::console::warn_1(&line.into());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_follows_the_page_scheme_and_host() {
        assert_eq!(socket_url("http:", "127.0.0.1:8080"), "ws://127.0.0.1:8080/ws");
        assert_eq!(socket_url("https:", "studio.example"), "wss://studio.example/ws");
    }

    #[test]
    fn retries_double_from_half_a_second_up_to_ten() {
        let mut waits = vec![FIRST_RETRY_MS];
        for _ in 0..6 {
            waits.push(next_retry_ms(*waits.last().unwrap()));
        }
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
    }
}
