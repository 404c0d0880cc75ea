//! What another web page, a slow or greedy client, or a crash inside a request can do to a studio on
//! loopback: each test is one finding of issue 11, against a real server on `127.0.0.1:0`.

use crate::common;

use backend::web::{check_access, AccessError, ConnectionLimits, ServerOptions};
use common::{next_server_message, write_color_dataset, TestServer};
use futures::{SinkExt, StreamExt};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::json;
use shared::{ErrorBody, Run, RunStatus, ServerMessage};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

/// A token long enough to listen beyond loopback.
const TOKEN: &str = "0123456789abcdef0123";

async fn server_with_dataset() -> TestServer {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 2, 4, 2, 32);
    TestServer::start_with(data, |_| {}, None).await
}

async fn server_with(options: ServerOptions) -> TestServer {
    TestServer::start_with_options(tempfile::tempdir().unwrap(), |_| {}, options).await
}

/// The sentence of a JSON error answer, after checking its status.
async fn error_of(response: reqwest::Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
    assert_eq!(content_type.as_deref(), Some("application/json"), "refusals are the JSON error body");
    response.json::<ErrorBody>().await.expect("an ErrorBody").error
}

async fn runs(server: &TestServer) -> Vec<Run> {
    reqwest::get(server.url("/api/runs")).await.unwrap().json().await.unwrap()
}

/// Reads from `stream` until the server closes it; fails if that takes more than 20 seconds.
async fn read_until_closed(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server kept the connection open");
    received
}

#[tokio::test]
async fn a_foreign_host_name_is_refused_on_routes_and_the_websocket() {
    let server = TestServer::start().await;
    let client = reqwest::Client::new();
    let rebound = client.get(server.url("/api/runs")).header("host", "evil.example").send().await.unwrap();
    let refused = error_of(rebound, StatusCode::FORBIDDEN).await;
    assert!(refused.contains("--allowed-host") && !refused.contains("evil.example"), "no echo: {refused}");
    let with_port = client.get(server.url("/api/health")).header("host", "evil.example:8080").send().await.unwrap();
    assert_eq!(with_port.status(), StatusCode::FORBIDDEN);

    let mut request = server.ws_url().into_client_request().unwrap();
    request.headers_mut().insert("host", "evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), StatusCode::FORBIDDEN),
        other => panic!("expected 403, got {other:?}"),
    }
    let own = client.get(server.url("/api/health")).header("host", "localhost:1234").send().await.unwrap();
    assert_eq!(own.status(), StatusCode::OK, "loopback names are answered on any port");
}

#[tokio::test]
async fn an_allowed_host_is_answered_and_its_pages_may_post() {
    let options = ServerOptions { allowed_hosts: vec!["studio.example".into()], ..ServerOptions::default() };
    let server = server_with(options).await;
    let client = reqwest::Client::new();
    let named = client.get(server.url("/api/health")).header("host", "studio.example").send().await.unwrap();
    assert_eq!(named.status(), StatusCode::OK);
    let posted = client
        .post(server.url("/api/runs"))
        .header("host", "studio.example")
        .header("origin", "https://studio.example")
        .json(&json!({"dataset": "missing"}))
        .send()
        .await
        .unwrap();
    assert!(error_of(posted, StatusCode::BAD_REQUEST).await.contains("missing"), "it reached the handler");
}

#[tokio::test]
async fn form_posts_from_another_site_neither_create_nor_stop_runs() {
    let server = server_with_dataset().await;
    let client = reqwest::Client::new();
    let created = server.create_run(json!({"dataset": "colors", "epochs": 1000})).await;
    let config = r#"{"dataset": "colors", "epochs": 1}"#;
    for content_type in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"] {
        let forged = client
            .post(server.url("/api/runs"))
            .header("content-type", content_type)
            .header("origin", "http://evil.example")
            .body(config)
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), StatusCode::FORBIDDEN, "{content_type}");
        let stop = client
            .post(server.url(&format!("/api/runs/{}/stop", created)))
            .header("content-type", content_type)
            .header("origin", "http://evil.example")
            .body("x=1")
            .send()
            .await
            .unwrap();
        assert_eq!(stop.status(), StatusCode::FORBIDDEN, "{content_type}");
    }
    let same_site_form =
        client.post(server.url("/api/runs")).header("content-type", "text/plain").body(config).send().await.unwrap();
    assert!(error_of(same_site_form, StatusCode::UNSUPPORTED_MEDIA_TYPE).await.contains("application/json"));
    let other_port = client
        .post(server.url("/api/runs"))
        .header("origin", "http://127.0.0.1:1")
        .json(&json!({"dataset": "colors"}))
        .send()
        .await
        .unwrap();
    assert_eq!(other_port.status(), StatusCode::FORBIDDEN, "another port on loopback is another site");

    let listed = runs(&server).await;
    assert_eq!(listed.len(), 1, "no run was created: {listed:#?}");
    assert!(!listed[0].status.is_finished(), "the run was not stopped: {:?}", listed[0].status);
    let own_page = client
        .post(server.url(&format!("/api/runs/{}/stop", created)))
        .header("origin", server.base.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(own_page.status(), StatusCode::OK, "the studio's own page may stop it");
    server.wait_until_finished(created).await;
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let server = TestServer::start().await;
    let client = reqwest::Client::new();
    let answers = [
        client.get(server.url("/api/health")).send().await.unwrap(),
        client.get(server.url("/api/nothing-here")).send().await.unwrap(),
        client.get(server.url("/api/health")).header("host", "evil.example").send().await.unwrap(),
    ];
    for answer in answers {
        let headers = answer.headers();
        let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        assert_eq!(header("x-frame-options"), "DENY");
        assert!(header("content-security-policy").contains("frame-ancestors 'none'"));
        assert!(!header("content-security-policy").contains("evil.example"), "only allowed hosts are named");
        assert_eq!(header("referrer-policy"), "no-referrer");
        assert_eq!(header("x-content-type-options"), "nosniff");
    }
    let page = client.get(server.url("/")).send().await.unwrap();
    let policy = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    let socket = server.ws_url().trim_end_matches("/ws").to_string();
    assert!(policy.contains(&format!("connect-src 'self' {socket}")), "the page may open its WebSocket: {policy}");
}

#[tokio::test]
async fn the_bearer_scheme_is_matched_whatever_its_case() {
    let server = server_with(ServerOptions { token: Some(TOKEN.into()), ..ServerOptions::default() }).await;
    let client = reqwest::Client::new();
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let answer = client
            .get(server.url("/api/runs"))
            .header("authorization", format!("{scheme} {TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{scheme}");
    }
    let wrong = client.get(server.url("/api/runs")).header("authorization", "bearer guess").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_links_token_is_swapped_for_a_cookie_by_a_redirect_that_drops_it() {
    let server = server_with(ServerOptions { token: Some(TOKEN.into()), ..ServerOptions::default() }).await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let link = client.get(server.url(&format!("/?token={TOKEN}"))).send().await.unwrap();
    assert_eq!(link.status(), StatusCode::SEE_OTHER);
    assert_eq!(link.headers()["location"], "/");
    let cookie = link.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let with_query =
        client.get(server.url(&format!("/api/runs/1/test-images?token={TOKEN}&limit=3"))).send().await.unwrap();
    assert_eq!(with_query.status(), StatusCode::SEE_OTHER);
    assert_eq!(with_query.headers()["location"], "/api/runs/1/test-images?limit=3");

    let pair = cookie.split(';').next().unwrap();
    let with_cookie = client.get(server.url("/api/runs")).header("cookie", pair).send().await.unwrap();
    assert_eq!(with_cookie.status(), StatusCode::OK);
    let wrong_link = client.get(server.url("/?token=guess")).send().await.unwrap();
    assert_eq!(wrong_link.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn missing_short_or_unsafe_tokens_are_refused_beyond_loopback() {
    let anywhere = "0.0.0.0".parse().unwrap();
    let loopback = "127.0.0.1".parse().unwrap();
    assert!(check_access(loopback, None).is_ok());
    assert!(check_access(loopback, Some("short")).is_ok(), "on loopback the token is an extra");
    assert!(matches!(check_access(anywhere, None), Err(AccessError::MissingToken { .. })));
    let short = check_access(anywhere, Some("a")).unwrap_err();
    assert!(matches!(short, AccessError::ShortToken { length: 1, .. }));
    assert!(short.to_string().contains("at least 16"), "{short}");
    assert!(check_access(anywhere, Some(TOKEN)).is_ok());
    assert!(matches!(check_access(loopback, Some("")), Err(AccessError::TokenCharacters)));
    assert!(matches!(check_access(anywhere, Some("0123456789abcdef; x")), Err(AccessError::TokenCharacters)));
}

fn quick_header_timeout() -> ServerOptions {
    let limits = ConnectionLimits { header_read_timeout: Duration::from_secs(1), ..ConnectionLimits::default() };
    ServerOptions { limits, ..ServerOptions::default() }
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let server = server_with(quick_header_timeout()).await;
    let mut stream = tokio::net::TcpStream::connect(server.base.trim_start_matches("http://")).await.unwrap();
    stream.write_all(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n").await.unwrap();
    let received = read_until_closed(&mut stream).await;
    assert!(!String::from_utf8_lossy(&received).contains("200 OK"), "no answer to half a request");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let server = server_with(quick_header_timeout()).await;
    let mut stream = tokio::net::TcpStream::connect(server.base.trim_start_matches("http://")).await.unwrap();
    stream.write_all(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
    let received = read_until_closed(&mut stream).await;
    assert!(String::from_utf8_lossy(&received).starts_with("HTTP/1.1 200 OK"), "the request was answered first");
}

#[tokio::test]
async fn a_client_that_stops_sending_its_body_is_refused_and_disconnected() {
    let limits = ConnectionLimits { body_idle_timeout: Duration::from_secs(1), ..ConnectionLimits::default() };
    let server = server_with(ServerOptions { limits, ..ServerOptions::default() }).await;
    let mut stream = tokio::net::TcpStream::connect(server.base.trim_start_matches("http://")).await.unwrap();
    let head =
        "POST /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(b"{\"dataset\": ").await.unwrap();
    let received = String::from_utf8_lossy(&read_until_closed(&mut stream).await).into_owned();
    assert!(received.starts_with("HTTP/1.1 4"), "refused: {received}");
    assert!(runs(&server).await.is_empty());
}

/// Sends `GET /api/health` on a kept-alive connection and reads its answer.
async fn ask_health(stream: &mut tokio::net::TcpStream) -> String {
    stream.write_all(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
    read_health_answer(stream).await
}

/// Reads until a whole health answer (its JSON body ends with `}`) has arrived.
async fn read_health_answer(stream: &mut tokio::net::TcpStream) -> String {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while !received.ends_with(b"}") {
        let n =
            tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buffer)).await.expect("an answer").unwrap();
        assert!(n > 0, "closed before answering: {}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&buffer[..n]);
    }
    String::from_utf8(received).unwrap()
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let limits = ConnectionLimits {
        max_connections: 1,
        header_read_timeout: Duration::from_secs(60),
        ..ConnectionLimits::default()
    };
    let server = server_with(ServerOptions { limits, ..ServerOptions::default() }).await;
    let address = server.base.trim_start_matches("http://").to_string();
    let mut first = tokio::net::TcpStream::connect(&address).await.unwrap();
    assert!(ask_health(&mut first).await.starts_with("HTTP/1.1 200"));

    let mut second = tokio::net::TcpStream::connect(&address).await.unwrap();
    second.write_all(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
    // A round trip on the first connection gives the server every chance to answer the second.
    assert!(ask_health(&mut first).await.starts_with("HTTP/1.1 200"));
    let mut peek = [0u8; 1];
    let waiting = second.try_read(&mut peek);
    assert!(
        matches!(&waiting, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the second connection was served while the first held the only slot: {waiting:?}"
    );
    drop(first);
    assert!(read_health_answer(&mut second).await.starts_with("HTTP/1.1 200"), "served once the slot is free");
}

#[tokio::test]
async fn a_websocket_message_over_64_kb_ends_the_session() {
    let server = TestServer::start().await;
    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_url()).await.unwrap();
    assert!(matches!(next_server_message(&mut socket).await, ServerMessage::Snapshot { .. }));
    let huge = json!({"type": "resync", "padding": "x".repeat(100 * 1024)}).to_string();
    let _ = socket.send(tungstenite::Message::Text(huge.into())).await;
    let after =
        tokio::time::timeout(Duration::from_secs(20), socket.next()).await.expect("the server answers or closes");
    match after {
        None | Some(Err(_)) | Some(Ok(tungstenite::Message::Close(_))) => {}
        Some(Ok(other)) => panic!("the session went on after a 100 KB message: {other:?}"),
    }
}

#[tokio::test]
async fn a_silent_websocket_client_is_closed_while_one_that_answers_pings_stays() {
    let limits = ConnectionLimits { websocket_idle_timeout: Duration::from_secs(1), ..ConnectionLimits::default() };
    let server = server_with(ServerOptions { limits, ..ServerOptions::default() }).await;
    // The silent client opens a session by hand and then sends nothing, not even a pong.
    let address = server.base.trim_start_matches("http://").to_string();
    let mut silent = tokio::net::TcpStream::connect(&address).await.unwrap();
    let upgrade = format!(
        "GET /ws HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    silent.write_all(upgrade.as_bytes()).await.unwrap();
    // The live one keeps reading, which answers each ping with a pong, for three idle intervals.
    let (mut live, _) = tokio_tungstenite::connect_async(server.ws_url()).await.unwrap();
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut pings = 0;
    while let Ok(next) = tokio::time::timeout_at(until, live.next()).await {
        match next {
            Some(Ok(tungstenite::Message::Ping(_))) => pings += 1,
            Some(Ok(tungstenite::Message::Close(_))) | Some(Err(_)) | None => panic!("the live client was closed"),
            Some(Ok(_)) => {}
        }
    }
    assert!(pings > 0, "the server pings");

    let received = read_until_closed(&mut silent).await;
    assert!(received.starts_with(b"HTTP/1.1 101"), "the session was opened");
    // The last frame is a close frame (0x88), code 1001 (going away), with the reason.
    let reason = b"nothing received for 1 s";
    let close = [&[0x88, 2 + reason.len() as u8, 0x03, 0xe9][..], reason].concat();
    assert!(received.ends_with(&close), "closed with a reason: {:?}", String::from_utf8_lossy(&received));

    live.send(tungstenite::Message::Text(json!({"type": "resync"}).to_string().into())).await.unwrap();
    assert!(matches!(next_server_message(&mut live).await, ServerMessage::Snapshot { .. }), "still served");
}

/// A PNG of `side` pixels a side, of one colour: tiny to send, slow to decode and resize (under the
/// 16-megapixel limit for `side` up to 4096).
fn large_png(side: u32) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_pixel(side, side, image::Rgb([200, 40, 40]))
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

#[tokio::test]
async fn a_full_classify_queue_answers_503_with_retry_after() {
    let server = server_with_dataset().await;
    let created = server.create_run(json!({"dataset": "colors", "epochs": 1})).await;
    assert_eq!(server.wait_until_finished(created).await.status, RunStatus::Completed);

    let image = large_png(4000);
    let client = reqwest::Client::new();
    let url = server.url(&format!("/api/classify?run={created}"));
    // One request of 40 large images keeps the classifier busy for seconds...
    let form = (0..40).fold(reqwest::multipart::Form::new(), |form, index| {
        form.part("images", reqwest::multipart::Part::bytes(image.clone()).file_name(format!("{index}.png")))
    });
    let batch = client.post(server.url(&format!("/api/classify/batch?run={created}"))).multipart(form).send();
    let batch = tokio::spawn(batch);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // ...while more single requests come than its queue holds.
    let requests = (0..backend::engine::classifier::CLASSIFY_QUEUE + 16)
        .map(|_| client.post(&url).header("content-type", "image/png").body(image.clone()).send());
    let answers = tokio::time::timeout(Duration::from_secs(600), futures::future::join_all(requests))
        .await
        .expect("every request is answered");
    assert_eq!(batch.await.unwrap().unwrap().status(), StatusCode::OK);
    let mut busy = None;
    let mut classified = 0;
    for answer in answers {
        let answer = answer.unwrap();
        match answer.status() {
            StatusCode::OK => classified += 1,
            StatusCode::SERVICE_UNAVAILABLE => busy = Some(answer),
            other => panic!("unexpected {other}: {}", answer.text().await.unwrap()),
        }
    }
    assert!(classified > 0, "queued requests are classified");
    let busy = busy.expect("requests beyond the queue are turned away");
    assert_eq!(busy.headers()["retry-after"], "1");
    assert!(error_of(busy, StatusCode::SERVICE_UNAVAILABLE).await.contains("busy"));
}

#[tokio::test]
async fn unknown_api_paths_answer_a_json_404_when_the_page_is_served() {
    let page = tempfile::tempdir().unwrap();
    std::fs::write(page.path().join("index.html"), "<html><body>the page</body></html>").unwrap();
    let server = TestServer::start_with(tempfile::tempdir().unwrap(), |_| {}, Some(page.path().to_path_buf())).await;
    for path in ["/api/nothing-here", "/api/runs/1/nothing", "/api", "/ws/nothing"] {
        let answer = reqwest::get(server.url(path)).await.unwrap();
        assert!(error_of(answer, StatusCode::NOT_FOUND).await.contains(path), "{path}");
    }
    let page = reqwest::get(server.url("/")).await.unwrap().text().await.unwrap();
    assert!(page.contains("the page"));
}

#[tokio::test]
async fn refusals_from_body_limits_methods_and_content_types_are_json() {
    let server = TestServer::start().await;
    let client = reqwest::Client::new();
    let padding = "x".repeat(100 * 1024);
    let too_large = client.post(server.url("/api/runs")).json(&json!({"dataset": padding})).send().await.unwrap();
    error_of(too_large, StatusCode::PAYLOAD_TOO_LARGE).await;
    let wrong_method = client.delete(server.url("/api/health")).send().await.unwrap();
    error_of(wrong_method, StatusCode::METHOD_NOT_ALLOWED).await;
    let not_an_image =
        client.post(server.url("/api/classify")).header("content-type", "text/plain").body("x").send().await.unwrap();
    assert!(error_of(not_an_image, StatusCode::UNSUPPORTED_MEDIA_TYPE).await.contains("image/*"));
    let bad_id = client.get(server.url("/api/runs/abc")).send().await.unwrap();
    error_of(bad_id, StatusCode::BAD_REQUEST).await;
    let unauthorised = server_with(ServerOptions { token: Some(TOKEN.into()), ..ServerOptions::default() }).await;
    error_of(reqwest::get(unauthorised.url("/api/runs")).await.unwrap(), StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn a_panic_in_a_handler_answers_a_json_500_without_internals() {
    async fn boom() -> &'static str {
        panic!("internal detail at /srv/secret/state.db")
    }
    let router = axum::Router::new().route("/api/boom", axum::routing::get(boom));
    let app = backend::web::guarded(router, &ServerOptions::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let answer = reqwest::get(format!("{base}/api/boom")).await.unwrap();
    let headers: HeaderMap = answer.headers().clone();
    let sentence = error_of(answer, StatusCode::INTERNAL_SERVER_ERROR).await;
    assert!(!sentence.contains("/srv/secret") && !sentence.contains("internal detail"), "{sentence}");
    assert_eq!(headers["x-frame-options"], "DENY", "the guard's headers are on it too");
    let after = reqwest::get(format!("{base}/api/boom")).await.unwrap();
    assert_eq!(after.status(), StatusCode::INTERNAL_SERVER_ERROR, "the server keeps answering");
}

#[tokio::test]
async fn error_messages_name_no_absolute_server_path() {
    let server = server_with_dataset().await;
    let data_dir = server.data.path().display().to_string();
    let response = reqwest::Client::new()
        .post(server.url("/api/runs"))
        .json(&json!({"dataset": "colors", "weights": "missing.safetensors"}))
        .send()
        .await
        .unwrap();
    let sentence = error_of(response, StatusCode::BAD_REQUEST).await;
    assert!(sentence.contains("missing.safetensors"), "{sentence}");
    assert!(!sentence.contains(&data_dir), "{sentence}");
    let resolved = std::fs::canonicalize(server.data.path()).unwrap().display().to_string();
    assert!(!sentence.contains(&resolved), "{sentence}");
}
