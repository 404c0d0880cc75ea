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
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::broadcast::error::RecvError;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

/// Largest JSON body accepted.
const JSON_BODY_LIMIT: usize = 64 * 1024;
/// Largest image accepted for classification.
pub const IMAGE_BODY_LIMIT: usize = 20 * 1024 * 1024;
/// Largest multipart body of images classified together.
pub const BATCH_BODY_LIMIT: usize = 100 * 1024 * 1024;
/// Most images classified in one batch request.
pub const MAX_BATCH_IMAGES: usize = 64;

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
            StudioError::InvalidConfig(_) | StudioError::Image(_) => StatusCode::BAD_REQUEST,
            StudioError::RunNotFound(_) | StudioError::TestImageNotFound { .. } => StatusCode::NOT_FOUND,
            StudioError::AlreadyFinished { .. }
            | StudioError::NoModel(_)
            | StudioError::NoModelAtAll
            | StudioError::NotResumable { .. } => StatusCode::CONFLICT,
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

/// Runs file or database work off the async workers; a panic in it becomes a 500.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("the request failed: {e}")))
}

/// How the web layer is set up.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Folder of the built page served at `/`; without it only the API is served.
    pub ui_dir: Option<PathBuf>,
    /// When set, every request must carry it (see [`require_token`]).
    pub token: Option<String>,
}

/// Name of the cookie that carries the access token after the first visit.
const TOKEN_COOKIE: &str = "studio_token";

/// Refuses requests without the access token. It is accepted as `Authorization: Bearer <token>`, as a
/// `token=` query parameter (the link printed at start-up; the answer then sets an HttpOnly cookie so
/// the page's own requests and WebSocket carry it), or as that cookie.
async fn require_token(
    State(token): State<Arc<String>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = request.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let cookie = headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|cookies| {
        cookies.split(';').find_map(|c| c.trim().strip_prefix(TOKEN_COOKIE).and_then(|v| v.strip_prefix('=')))
    });
    let query = request
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("token=")))
        .map(str::to_string);
    let matches = |candidate: Option<&str>| candidate.is_some_and(|c| constant_time_eq(c.as_bytes(), token.as_bytes()));
    if matches(bearer) || matches(cookie) {
        return next.run(request).await;
    }
    if matches(query.as_deref()) {
        let mut response = next.run(request).await;
        let cookie = format!("{TOKEN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
        if let Ok(value) = cookie.parse() {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        return response;
    }
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "this studio requires its access token: open the link printed when the server started, or send Authorization: Bearer <token>",
    )
    .into_response()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The whole application: API, WebSocket and, when `options.ui_dir` is given, the built page at `/`.
pub fn app(studio: Studio, options: ServerOptions) -> Router {
    let ServerOptions { ui_dir, token } = options;
    let api = Router::new()
        .route("/api/health", get(health))
        .route("/api/datasets", get(datasets).post(upload_dataset).layer(DefaultBodyLimit::disable()))
        .route("/api/weights", get(weights))
        .route("/api/runs", get(list_runs).post(create_run))
        .route("/api/runs/{id}", get(get_run))
        .route("/api/runs/{id}/stop", post(stop_run))
        .route("/api/runs/{id}/resume", post(resume_run))
        .route("/api/runs/{id}/checkpoint", get(download_checkpoint))
        .route("/api/runs/{id}/test-images", get(test_images))
        .route("/api/runs/{id}/test-images/{index}/image", get(test_image))
        .route("/api/classify", post(classify).layer(DefaultBodyLimit::max(IMAGE_BODY_LIMIT)))
        .route("/api/classify/batch", post(classify_batch).layer(DefaultBodyLimit::max(BATCH_BODY_LIMIT)))
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
    let router = router.with_state(studio);
    let router = match token {
        Some(token) => router.layer(axum::middleware::from_fn_with_state(Arc::new(token), require_token)),
        None => router,
    };
    router.layer(TraceLayer::new_for_http())
}

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    studio: Studio,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(studio, options)).with_graceful_shutdown(shutdown).await
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
    Ok(Json(blocking(move || studio.datasets()).await?))
}

#[derive(Deserialize)]
struct UploadQuery {
    name: Option<String>,
}

/// Streams a zip to a temporary file in the data folder (never whole into memory), refusing it past
/// the configured size, then unpacks it as a dataset.
async fn upload_dataset(
    State(studio): State<Studio>,
    Query(query): Query<UploadQuery>,
    body: axum::body::Body,
) -> ApiResult<Response> {
    use tokio::io::AsyncWriteExt;
    let name = query.name.ok_or_else(|| {
        ApiError::new(StatusCode::BAD_REQUEST, "query parameter name (the new dataset's folder name) is required")
    })?;
    shared::check_file_name(&name).map_err(|why| ApiError::new(StatusCode::BAD_REQUEST, format!("name {why}")))?;
    let internal = |e: std::io::Error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("could not store the upload: {e}"));
    let partial = studio.settings().data_dir.join(format!(".upload-{name}.zip.partial"));
    let mut file = tokio::fs::File::create(&partial).await.map_err(internal)?;
    let mut stream = body.into_data_stream();
    let mut received: u64 = 0;
    let limit = studio.settings().max_dataset_upload;
    let streamed: ApiResult<()> = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("the upload broke off: {e}")))?;
            received += chunk.len() as u64;
            if received > limit {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("dataset zips are limited to {} MB", limit / 1_000_000),
                ));
            }
            file.write_all(&chunk).await.map_err(internal)?;
        }
        file.flush().await.map_err(internal)
    }
    .await;
    drop(file);
    if let Err(error) = streamed {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(error);
    }
    let data_dir = studio.settings().data_dir.clone();
    let recorder = studio.clone();
    let installed = {
        let partial = partial.clone();
        blocking(move || crate::upload::install_zip_dataset(&data_dir, &name, &partial)).await
    };
    let _ = tokio::fs::remove_file(&partial).await;
    let info = installed?.map_err(|e| {
        let status = match e {
            crate::upload::UploadError::Exists(_) => StatusCode::CONFLICT,
            crate::upload::UploadError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            crate::upload::UploadError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.to_string())
    })?;
    let info = blocking(move || recorder.record_dataset(info, shared::DatasetOrigin::Uploaded)).await??;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

async fn weights(State(studio): State<Studio>) -> Json<Vec<String>> {
    Json(studio.weight_files())
}

async fn create_run(State(studio): State<Studio>, body: axum::body::Bytes) -> ApiResult<Response> {
    let config = Studio::parse_config(&body)?;
    let run = blocking(move || studio.create_run(config)).await??;
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
    Ok(Json(blocking(move || studio.resume_run(id)).await??))
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
    if body.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "the request body is empty: send the image's bytes"));
    }
    Ok(Json(studio.classify_one(query.run, body.to_vec()).await?))
}

async fn classify_batch(
    State(studio): State<Studio>,
    Query(query): Query<ClassifyQuery>,
    mut multipart: axum::extract::Multipart,
) -> ApiResult<Json<shared::ClassifyBatchResponse>> {
    let bad_request = |message: String| ApiError::new(StatusCode::BAD_REQUEST, message);
    let mut images = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(|e| bad_request(format!("malformed upload: {e}")))? {
        if field.name() != Some("images") {
            continue;
        }
        if images.len() == MAX_BATCH_IMAGES {
            return Err(bad_request(format!("at most {MAX_BATCH_IMAGES} images can be classified in one request")));
        }
        let name = field.file_name().unwrap_or("image").to_string();
        let bytes = field.bytes().await.map_err(|e| match e.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the upload is larger than {} MB", BATCH_BODY_LIMIT / 1024 / 1024),
            ),
            _ => bad_request(format!("malformed upload: {e}")),
        })?;
        images.push((name, bytes.to_vec()));
    }
    if images.is_empty() {
        return Err(bad_request("no images: send multipart/form-data with one or more parts named \"images\"".into()));
    }
    Ok(Json(studio.classify_batch(query.run, images).await?))
}

async fn download_checkpoint(State(studio): State<Studio>, Path(id): Path<u64>) -> ApiResult<Response> {
    let path = studio.checkpoint_file(id)?;
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("could not read the checkpoint: {e}")))?;
    let disposition = format!("attachment; filename=\"run-{id}-resnet18.safetensors\"");
    Ok(([(header::CONTENT_TYPE, "application/octet-stream".to_string()), (header::CONTENT_DISPOSITION, disposition)], bytes)
        .into_response())
}

#[derive(Deserialize)]
struct TestImagesQuery {
    actual: Option<usize>,
    predicted: Option<usize>,
    limit: Option<usize>,
}

async fn test_images(
    State(studio): State<Studio>,
    Path(id): Path<u64>,
    Query(query): Query<TestImagesQuery>,
) -> ApiResult<Json<Vec<shared::TestImage>>> {
    let limit = query.limit.unwrap_or(24).min(500);
    Ok(Json(studio.test_images(id, query.actual, query.predicted, limit)?))
}

async fn test_image(State(studio): State<Studio>, Path((id, index)): Path<(u64, usize)>) -> ApiResult<Response> {
    let (bytes, mime) = blocking(move || studio.test_image(id, index)).await??;
    Ok(([(header::CONTENT_TYPE, mime)], bytes).into_response())
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
