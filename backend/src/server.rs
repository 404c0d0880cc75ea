//! The web layer: the HTTP API, the WebSocket and the built page, over a [`Studio`].
//! Routes are documented in `docs/API.md`.

use crate::studio::{Studio, StudioError};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use shared::{ClientMessage, ErrorBody, HealthResponse, RunCreated, ServerMessage};
use std::future::Future;
use std::path::PathBuf;
use tokio::net::TcpListener;
use tokio::sync::broadcast::error::RecvError;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

/// Largest JSON body accepted.
const JSON_BODY_LIMIT: usize = 64 * 1024;
/// Largest image accepted for classification.
pub const IMAGE_BODY_LIMIT: usize = 20 * 1024 * 1024;

/// An error at the HTTP boundary: a status and a sentence.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into() }
    }
}

impl From<StudioError> for ApiError {
    fn from(error: StudioError) -> Self {
        let status = match &error {
            StudioError::InvalidConfig(_) | StudioError::Classify(crate::inference::ClassifyError::Image(_)) => {
                StatusCode::BAD_REQUEST
            }
            StudioError::RunNotFound(_) => StatusCode::NOT_FOUND,
            StudioError::AlreadyFinished { .. } | StudioError::NoModel(_) | StudioError::NotResumable { .. } => {
                StatusCode::CONFLICT
            }
            StudioError::Classify(_) | StudioError::Store(_) | StudioError::DataDir { .. } => {
                tracing::error!("request failed: {error}");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        ApiError::new(status, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody { error: self.message })).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The whole application: API, WebSocket and, when `ui_dir` is given, the built page at `/`.
pub fn app(studio: Studio, ui_dir: Option<PathBuf>) -> Router {
    let api = Router::new()
        .route("/api/health", get(health))
        .route("/api/datasets", get(datasets))
        .route("/api/weights", get(weights))
        .route("/api/runs", get(list_runs).post(create_run))
        .route("/api/runs/{id}", get(get_run))
        .route("/api/runs/{id}/stop", post(stop_run))
        .route("/api/runs/{id}/resume", post(resume_run))
        .route("/api/classify", post(classify).layer(DefaultBodyLimit::max(IMAGE_BODY_LIMIT)))
        .route("/ws", get(websocket))
        .fallback(api_not_found)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT));
    let router = match ui_dir {
        Some(dir) => {
            let index = dir.join("index.html");
            Router::new()
                .merge(api)
                .fallback_service(ServeDir::new(dir).not_found_service(ServeFile::new(index)))
        }
        None => api,
    };
    router.with_state(studio).layer(TraceLayer::new_for_http())
}

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    studio: Studio,
    ui_dir: Option<PathBuf>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(studio, ui_dir)).with_graceful_shutdown(shutdown).await
}

async fn api_not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("no such route: {}", uri.path()))
}

async fn health(State(studio): State<Studio>) -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok".into(),
        device: studio.device_name(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

async fn datasets(State(studio): State<Studio>) -> ApiResult<Json<Vec<shared::DatasetInfo>>> {
    let found = tokio::task::spawn_blocking(move || studio.datasets())
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(found))
}

async fn weights(State(studio): State<Studio>) -> Json<Vec<String>> {
    Json(studio.weight_files())
}

async fn create_run(State(studio): State<Studio>, body: axum::body::Bytes) -> ApiResult<Response> {
    let config = Studio::parse_config(&body)?;
    let run = tokio::task::spawn_blocking(move || studio.create_run(config))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok((StatusCode::CREATED, Json(RunCreated { id: run.id })).into_response())
}

async fn list_runs(State(studio): State<Studio>) -> ApiResult<Json<Vec<shared::Run>>> {
    Ok(Json(studio.runs()?))
}

async fn get_run(State(studio): State<Studio>, Path(id): Path<u64>) -> ApiResult<Json<shared::Run>> {
    Ok(Json(studio.run(id)?))
}

async fn stop_run(State(studio): State<Studio>, Path(id): Path<u64>) -> ApiResult<Json<shared::Run>> {
    Ok(Json(studio.stop_run(id)?))
}

async fn resume_run(State(studio): State<Studio>, Path(id): Path<u64>) -> ApiResult<Json<shared::Run>> {
    let run = tokio::task::spawn_blocking(move || studio.resume_run(id))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Json(run))
}

#[derive(Deserialize)]
struct ClassifyQuery {
    run: Option<u64>,
}

async fn classify(
    State(studio): State<Studio>,
    Query(query): Query<ClassifyQuery>,
    body: axum::body::Bytes,
) -> ApiResult<Json<shared::ClassifyResponse>> {
    let run_id = query.run.ok_or_else(|| {
        ApiError::new(StatusCode::BAD_REQUEST, "query parameter run (the id of a trained run) is required")
    })?;
    if body.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "the request body is empty: send the image's bytes"));
    }
    let mut answers = studio.classify(run_id, vec![body.to_vec()]).await?;
    Ok(Json(answers.remove(0)))
}

/// True when a WebSocket upgrade comes from a page served by this server (or from a non-browser client,
/// which sends no `Origin`).
fn origin_allowed(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else { return true };
    let (Ok(origin), Some(Ok(host))) = (origin.to_str(), headers.get(header::HOST).map(|h| h.to_str())) else {
        return false;
    };
    let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest).trim_end_matches('/');
    origin_host.eq_ignore_ascii_case(host)
}

async fn websocket(State(studio): State<Studio>, headers: HeaderMap, upgrade: WebSocketUpgrade) -> Response {
    if !origin_allowed(&headers) {
        return ApiError::new(StatusCode::FORBIDDEN, "WebSocket connections from other origins are refused")
            .into_response();
    }
    upgrade.on_upgrade(move |socket| client_session(socket, studio))
}

/// One browser's connection: a snapshot, then live messages; commands in the other direction.
async fn client_session(socket: WebSocket, studio: Studio) {
    let (mut sink, mut stream) = socket.split();
    let mut live = studio.subscribe();
    let (replies, mut reply_queue) = tokio::sync::mpsc::channel::<ServerMessage>(16);
    let send = |message: &ServerMessage| Message::Text(serde_json::to_string(message).expect("serialises").into());

    let writer = async {
        match studio.snapshot() {
            Ok(snapshot) => sink.send(send(&snapshot)).await?,
            Err(error) => tracing::error!("snapshot failed: {error}"),
        }
        loop {
            let message = tokio::select! {
                received = live.recv() => match received {
                    Ok(message) => message,
                    // Fell behind: skip what was missed and start again from the whole state.
                    Err(RecvError::Lagged(_)) => match studio.snapshot() {
                        Ok(snapshot) => snapshot,
                        Err(_) => continue,
                    },
                    Err(RecvError::Closed) => break,
                },
                Some(reply) = reply_queue.recv() => reply,
            };
            sink.send(send(&message)).await?;
        }
        Ok::<(), axum::Error>(())
    };

    let reader = async {
        while let Some(Ok(message)) = stream.next().await {
            let text = match message {
                Message::Text(text) => text,
                Message::Close(_) => break,
                _ => continue,
            };
            let reply = match serde_json::from_str::<ClientMessage>(&text) {
                Err(error) => Some(format!("could not read that message: {error}")),
                Ok(ClientMessage::StartRun { config }) => {
                    let studio = studio.clone();
                    match tokio::task::spawn_blocking(move || studio.create_run(config)).await {
                        Ok(Ok(_)) => None,
                        Ok(Err(error)) => Some(error.to_string()),
                        Err(error) => Some(error.to_string()),
                    }
                }
                Ok(ClientMessage::StopRun { run_id }) => studio.stop_run(run_id).err().map(|e| e.to_string()),
                Ok(ClientMessage::ResumeRun { run_id }) => studio.resume_run(run_id).err().map(|e| e.to_string()),
                Ok(ClientMessage::Resync) => {
                    if let Ok(snapshot) = studio.snapshot() {
                        let _ = replies.send(snapshot).await;
                    }
                    None
                }
            };
            if let Some(message) = reply {
                let _ = replies.send(ServerMessage::Error { message }).await;
            }
        }
    };

    tokio::select! {
        result = writer => if let Err(error) = result { tracing::debug!("websocket closed: {error}") },
        () = reader => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        }
        headers
    }

    #[test]
    fn websocket_origin_must_be_the_servers_own_host() {
        assert!(origin_allowed(&headers(Some("http://127.0.0.1:8080"), "127.0.0.1:8080")));
        assert!(origin_allowed(&headers(None, "127.0.0.1:8080")));
        assert!(!origin_allowed(&headers(Some("http://evil.example"), "127.0.0.1:8080")));
        assert!(!origin_allowed(&headers(Some("http://127.0.0.1:9999"), "127.0.0.1:8080")));
        assert!(!origin_allowed(&headers(Some("null"), "127.0.0.1:8080")));
    }
}
