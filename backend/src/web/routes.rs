//! The HTTP API's handlers. Every call into the studio that reads the history or files runs on
//! tokio's blocking pool ([`blocking`]), never on the async workers that answer everyone else.

use super::error::{ApiError, PathScrubber};
use crate::studio::Studio;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Extension, Json, Router};
use futures::StreamExt;
use serde::Deserialize;
use shared::{HealthResponse, RunCreated};

/// Largest JSON body accepted.
pub const JSON_BODY_LIMIT: usize = 64 * 1024;
/// Largest image accepted for classification.
pub const IMAGE_BODY_LIMIT: usize = 20 * 1024 * 1024;
/// Largest multipart body of images classified together.
pub const BATCH_BODY_LIMIT: usize = 100 * 1024 * 1024;
/// Most images classified in one batch request.
pub const MAX_BATCH_IMAGES: usize = 64;

type ApiResult<T> = Result<T, ApiError>;

/// Runs file or database work off the async workers; a panic in it becomes a 500 sentence.
pub(crate) async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(work).await.map_err(ApiError::internal)
}

/// The API routes, `/api/...`; any other path under `/api` answers a JSON 404.
pub(crate) fn api() -> Router<Studio> {
    Router::new()
        .route("/api/health", get(health))
        .route("/api/datasets", get(datasets).post(upload_dataset).layer(DefaultBodyLimit::disable()))
        .route("/api/datasets/{name}/health", get(dataset_health))
        .route("/api/datasets/{name}/image", get(dataset_image))
        .route("/api/datasets/{name}/versions", post(create_dataset_version))
        .route("/api/datasets/{name}/images", post(add_dataset_image).layer(DefaultBodyLimit::max(IMAGE_BODY_LIMIT)))
        .route("/api/caches", get(caches))
        .route("/api/caches/{id}", axum::routing::delete(delete_cache))
        .route("/api/weights", get(weights).post(upload_weights).layer(DefaultBodyLimit::disable()))
        .route("/api/runs", get(super::run_list::list_runs).post(create_run))
        .route("/api/lr-finder", post(find_learning_rate))
        .route("/api/lr-finder/stop", post(stop_learning_rate_sweep))
        .route("/api/runs/{id}", get(get_run).patch(update_run).delete(delete_run))
        .route("/api/runs/{id}/stop", post(stop_run))
        .route("/api/runs/{id}/resume", post(resume_run))
        .route("/api/runs/{id}/checkpoint", get(download_checkpoint))
        .route("/api/runs/{id}/export", get(export_model))
        .route("/api/runs/{id}/receipt", get(run_receipt))
        .route("/api/runs/{id}/test-images", get(test_images))
        .route("/api/runs/{id}/test-images/{index}/image", get(test_image))
        .route("/api/sweeps", get(sweeps).post(create_sweep))
        .route("/api/sweeps/{id}", get(get_sweep).delete(delete_sweep))
        .route("/api/sweeps/{id}/stop", post(stop_sweep))
        .route("/api/sweeps/{id}/resume", post(resume_sweep))
        .route("/api/classify", post(classify).layer(DefaultBodyLimit::max(IMAGE_BODY_LIMIT)))
        .route("/api/classify/batch", post(classify_batch).layer(DefaultBodyLimit::max(BATCH_BODY_LIMIT)))
        .route("/api", any(not_found))
        .route("/api/{*rest}", any(not_found))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
}

/// A JSON 404 naming the path.
pub(crate) async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("no such route: {}", uri.path()))
}

async fn health(State(studio): State<Studio>) -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok".into(),
        device: studio.device_name(),
        version: env!("CARGO_PKG_VERSION").into(),
        executor: studio.executor_info(),
    })
}

async fn dataset_health(
    State(studio): State<Studio>,
    Path(name): Path<String>,
) -> ApiResult<Json<shared::DatasetHealth>> {
    let health = blocking(move || studio.dataset_health(&name)).await??;
    Ok(Json(shared::DatasetHealth::clone(&health)))
}

#[derive(Deserialize)]
struct DatasetImageQuery {
    path: Option<String>,
    size: Option<u32>,
}

/// `GET /api/datasets/{name}/image?path=...&size=96`: a PNG thumbnail of one of the dataset's images,
/// by the path the health check names it with.
async fn dataset_image(
    State(studio): State<Studio>,
    Path(name): Path<String>,
    Query(query): Query<DatasetImageQuery>,
) -> ApiResult<Response> {
    let path = query.path.ok_or_else(|| {
        ApiError::new(StatusCode::BAD_REQUEST, "query parameter path (the image's path in the dataset) is required")
    })?;
    let side = query.size.unwrap_or(crate::data::thumbnails::DEFAULT_THUMBNAIL_SIDE);
    let png = blocking(move || studio.dataset_thumbnail(&name, &path, side)).await??;
    Ok(([(header::CONTENT_TYPE, "image/png"), (header::CACHE_CONTROL, "private, max-age=300")], png).into_response())
}

/// `POST /api/datasets/{name}/versions` with [`shared::DatasetEdits`]: 201 and the new version's
/// [`shared::DatasetInfo`].
async fn create_dataset_version(
    State(studio): State<Studio>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let edits: shared::DatasetEdits = serde_json::from_slice(&body).map_err(|e| {
        let shape = r#"{"exclude": [path, ...], "relabel": {path: class, ...}}"#;
        ApiError::new(StatusCode::BAD_REQUEST, format!("the body must be {shape}: {e}"))
    })?;
    let info = blocking(move || studio.create_dataset_version(&name, &edits)).await??;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

/// `POST /api/datasets/{name}/images` with an image's bytes: 201 and the [`shared::AddedImage`] path a
/// new version's `add` names it by.
async fn add_dataset_image(
    State(studio): State<Studio>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    if body.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "the request body is empty: send the image's bytes"));
    }
    let added = blocking(move || studio.add_dataset_image(&name, &body)).await??;
    Ok((StatusCode::CREATED, Json(added)).into_response())
}

async fn datasets(
    State(studio): State<Studio>,
    Extension(scrubber): Extension<PathScrubber>,
) -> ApiResult<Json<Vec<shared::DatasetInfo>>> {
    let mut datasets = blocking(move || studio.datasets()).await?;
    for dataset in &mut datasets {
        dataset.error = dataset.error.as_deref().map(|error| scrubber.scrub(error));
    }
    Ok(Json(datasets))
}

/// The decoded caches, largest first.
async fn caches(State(studio): State<Studio>) -> ApiResult<Json<Vec<shared::DecodedCacheInfo>>> {
    Ok(Json(blocking(move || studio.caches()).await?))
}

async fn delete_cache(State(studio): State<Studio>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    blocking(move || studio.remove_cache(&id)).await??;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct UploadQuery {
    name: Option<String>,
}

/// Streams a zip to a temporary file in the data folder (never whole into memory), refusing it past
/// the configured size, then unpacks it as a dataset. The name is claimed first, so a second upload of
/// it at the same time is refused before its bytes are read.
async fn upload_dataset(
    State(studio): State<Studio>,
    Query(query): Query<UploadQuery>,
    body: axum::body::Body,
) -> ApiResult<Response> {
    use crate::data::upload;
    let name = query.name.ok_or_else(|| {
        ApiError::new(StatusCode::BAD_REQUEST, "query parameter name (the new dataset's folder name) is required")
    })?;
    let data_dir = studio.settings().data_dir.clone();
    let claim = studio.upload_claims().claim(&data_dir, &name).map_err(upload_refusal)?;
    let partial = crate::files::staging_path(&data_dir, &name, ".zip");
    let limit = studio.settings().max_dataset_upload;
    let too_large = format!("dataset zips are limited to {} MB", limit / 1_000_000);
    if let Err(error) = receive_upload(&partial, body, limit, &too_large).await {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(error);
    }
    let recorder = studio.clone();
    let installed = {
        let partial = partial.clone();
        blocking(move || {
            let installed = upload::install_claimed(&data_dir, &name, &partial);
            drop(claim);
            installed
        })
        .await
    };
    let _ = tokio::fs::remove_file(&partial).await;
    let info = installed?.map_err(upload_refusal)?;
    let info = blocking(move || recorder.record_dataset(info, shared::DatasetOrigin::Uploaded)).await??;
    Ok((StatusCode::CREATED, Json(info)).into_response())
}

/// A refused dataset upload's status: 409 for a name taken or being uploaded, 413 past a size limit,
/// 507 on a full disk, 500 for the server's own faults, 400 for the rest (the zip or the name).
fn upload_refusal(error: crate::data::upload::UploadError) -> ApiError {
    use crate::data::upload::UploadError;
    let status = match error {
        UploadError::Exists(_) | UploadError::InProgress(_) => StatusCode::CONFLICT,
        UploadError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        UploadError::DiskFull => StatusCode::INSUFFICIENT_STORAGE,
        UploadError::Io(_) => return ApiError::internal(error),
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, error.to_string())
}

/// Writes the request body to `partial`, refusing it with `too_large` once it passes `limit` bytes.
async fn receive_upload(
    partial: &std::path::Path,
    body: axum::body::Body,
    limit: u64,
    too_large: &str,
) -> ApiResult<()> {
    use tokio::io::AsyncWriteExt;
    let internal = |e: std::io::Error| match crate::files::WriteFailure::of(&e) {
        crate::files::WriteFailure::DiskFull => ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "the disk is full: the upload was not kept; free some space and send it again",
        ),
        _ => ApiError::internal(format!("could not store the upload: {e}")),
    };
    let mut file = tokio::fs::File::create(partial).await.map_err(internal)?;
    let mut stream = body.into_data_stream();
    let mut received: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("the upload broke off: {e}")))?;
        received += chunk.len() as u64;
        if received > limit {
            return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, too_large));
        }
        file.write_all(&chunk).await.map_err(internal)?;
    }
    file.flush().await.map_err(internal)
}

#[derive(Deserialize)]
struct WeightsQuery {
    /// Ask ImageNet's download address again whether it can be reached.
    recheck: Option<bool>,
}

async fn weights(
    State(studio): State<Studio>,
    Query(query): Query<WeightsQuery>,
) -> ApiResult<Json<Vec<shared::WeightsEntry>>> {
    let recheck = query.recheck.unwrap_or(false);
    Ok(Json(blocking(move || studio.weights(recheck)).await?))
}

/// Streams a weights file to a hidden file in the weights folder (never whole into memory), refusing it
/// past [`weights::MAX_UPLOAD_BYTES`], then keeps it only if it is a ResNet-18 state dict.
async fn upload_weights(
    State(studio): State<Studio>,
    Query(query): Query<UploadQuery>,
    body: axum::body::Body,
) -> ApiResult<Response> {
    use crate::model::weights::{self, WeightsError};
    let refusal = |e: WeightsError| {
        let status = match e {
            WeightsError::Exists(_) => StatusCode::CONFLICT,
            WeightsError::BadName(_) => StatusCode::BAD_REQUEST,
            WeightsError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, e.to_string())
    };
    let name = query.name.ok_or_else(|| {
        ApiError::new(StatusCode::BAD_REQUEST, "query parameter name (the weights file's name) is required")
    })?;
    let weights_dir = studio.settings().weights_dir.clone();
    // Refused before the bytes are read, not only after.
    weights::check_new_name(&weights_dir, &name).map_err(refusal)?;
    let staged = weights::staging_path(&weights_dir, &name);
    let too_large = format!("weights files are limited to {} GiB", weights::MAX_UPLOAD_BYTES >> 30);
    if let Err(error) = receive_upload(&staged, body, weights::MAX_UPLOAD_BYTES, &too_large).await {
        let _ = tokio::fs::remove_file(&staged).await;
        return Err(error);
    }
    let entry = blocking(move || studio.add_weights(&name, &staged)).await?.map_err(refusal)?;
    Ok((StatusCode::CREATED, Json(entry)).into_response())
}

async fn create_run(State(studio): State<Studio>, body: axum::body::Bytes) -> ApiResult<Response> {
    let config = Studio::parse_config(&body)?;
    let run = blocking(move || studio.create_run(config)).await??;
    Ok((StatusCode::CREATED, Json(RunCreated { id: run.id })).into_response())
}

/// Sweeps the learning rate for a training config: the checks and the hand-over block (they read the
/// files), the sweep itself runs on the trainer thread while this request waits without a worker.
async fn find_learning_rate(
    State(studio): State<Studio>,
    body: axum::body::Bytes,
) -> ApiResult<Json<shared::LrFinderResponse>> {
    let config = Studio::parse_config(&body)?;
    let sweep = blocking(move || studio.find_learning_rate(config)).await??;
    Ok(Json(sweep.await?))
}

/// Stops the learning-rate sweep in flight (`204`); its `POST /api/lr-finder` then answers the points
/// so far. `409` when none is running.
async fn stop_learning_rate_sweep(State(studio): State<Studio>) -> ApiResult<StatusCode> {
    studio.stop_lr_finder()?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_run(
    State(studio): State<Studio>,
    Extension(scrubber): Extension<PathScrubber>,
    Path(id): Path<u64>,
) -> ApiResult<Json<shared::Run>> {
    Ok(Json(scrubber.run(blocking(move || studio.run(id)).await??)))
}

/// Renames a run: `{"name": "..."}`, trimmed; an empty name clears it.
async fn update_run(
    State(studio): State<Studio>,
    Extension(scrubber): Extension<PathScrubber>,
    Path(id): Path<u64>,
    body: axum::body::Bytes,
) -> ApiResult<Json<shared::Run>> {
    let patch: shared::RunPatch = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("the body must be {{\"name\": \"...\"}}: {e}")))?;
    Ok(Json(scrubber.run(blocking(move || studio.rename_run(id, &patch.name)).await??)))
}

/// Deletes a run that is not queued or running, with its folder: 204 without a body.
async fn delete_run(State(studio): State<Studio>, Path(id): Path<u64>) -> ApiResult<StatusCode> {
    blocking(move || studio.delete_run(id)).await??;
    Ok(StatusCode::NO_CONTENT)
}

async fn stop_run(
    State(studio): State<Studio>,
    Extension(scrubber): Extension<PathScrubber>,
    Path(id): Path<u64>,
) -> ApiResult<Json<shared::Run>> {
    Ok(Json(scrubber.run(blocking(move || studio.stop_run(id)).await??)))
}

async fn resume_run(
    State(studio): State<Studio>,
    Extension(scrubber): Extension<PathScrubber>,
    Path(id): Path<u64>,
) -> ApiResult<Json<shared::Run>> {
    Ok(Json(scrubber.run(blocking(move || studio.resume_run(id)).await??)))
}

/// Creates a sweep (`201` with the sweep); a request that breaks rules is a `400` naming each problem.
async fn create_sweep(
    State(studio): State<Studio>,
    Extension(scrubber): Extension<PathScrubber>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let request = Studio::parse_sweep_request(&body)?;
    let sweep = blocking(move || studio.create_sweep(request)).await??;
    Ok((StatusCode::CREATED, Json(scrubber.sweep(sweep))).into_response())
}

async fn sweeps(
    State(studio): State<Studio>,
    Extension(scrubber): Extension<PathScrubber>,
) -> ApiResult<Json<Vec<shared::sweep::Sweep>>> {
    let sweeps = blocking(move || studio.sweeps()).await??;
    Ok(Json(sweeps.into_iter().map(|sweep| scrubber.sweep(sweep)).collect()))
}

async fn get_sweep(
    State(studio): State<Studio>,
    Extension(scrubber): Extension<PathScrubber>,
    Path(id): Path<u64>,
) -> ApiResult<Json<shared::sweep::Sweep>> {
    Ok(Json(scrubber.sweep(blocking(move || studio.sweep(id)).await??)))
}

async fn stop_sweep(
    State(studio): State<Studio>,
    Extension(scrubber): Extension<PathScrubber>,
    Path(id): Path<u64>,
) -> ApiResult<Json<shared::sweep::Sweep>> {
    Ok(Json(scrubber.sweep(blocking(move || studio.stop_sweep(id)).await??)))
}

async fn resume_sweep(
    State(studio): State<Studio>,
    Extension(scrubber): Extension<PathScrubber>,
    Path(id): Path<u64>,
) -> ApiResult<Json<shared::sweep::Sweep>> {
    Ok(Json(scrubber.sweep(blocking(move || studio.resume_sweep(id)).await??)))
}

/// Deletes a sweep that is not running (`204`); its runs stay.
async fn delete_sweep(State(studio): State<Studio>, Path(id): Path<u64>) -> ApiResult<StatusCode> {
    blocking(move || studio.delete_sweep(id)).await??;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct ClassifyQuery {
    run: Option<u64>,
    /// `layer1` … `layer4` or `auto`: explain each image's top class with Grad-CAM there.
    explain: Option<String>,
}

impl ClassifyQuery {
    /// The layer to explain at, if any; an unknown one is a 400 listing the allowed values.
    fn explain(&self) -> ApiResult<Option<shared::ExplainLayer>> {
        let parse = |value: &String| shared::ExplainLayer::parse(value);
        self.explain.as_ref().map(parse).transpose().map_err(|why| ApiError::new(StatusCode::BAD_REQUEST, why))
    }
}

async fn classify(
    State(studio): State<Studio>,
    Query(query): Query<ClassifyQuery>,
    body: axum::body::Bytes,
) -> ApiResult<Json<shared::ClassifyResponse>> {
    if body.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "the request body is empty: send the image's bytes"));
    }
    let explain = query.explain()?;
    Ok(Json(studio.classify_one(query.run, body.to_vec(), explain).await?))
}

async fn classify_batch(
    State(studio): State<Studio>,
    Query(query): Query<ClassifyQuery>,
    multipart: axum::extract::Multipart,
) -> ApiResult<Json<shared::ClassifyBatchResponse>> {
    let explain = query.explain()?;
    let images = batch_images(multipart).await?;
    Ok(Json(studio.classify_batch(query.run, images, explain).await?))
}

/// The named images of a batch upload: its parts named `images`, at most [`MAX_BATCH_IMAGES`].
async fn batch_images(mut multipart: axum::extract::Multipart) -> ApiResult<Vec<(String, Vec<u8>)>> {
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
    Ok(images)
}

/// The run's best model file, streamed from the disk (never whole in memory: a client that does not read
/// holds a buffer, not the file).
async fn download_checkpoint(State(studio): State<Studio>, Path(id): Path<u64>) -> ApiResult<Response> {
    use tower::ServiceExt;
    let path = blocking(move || studio.checkpoint_file(id)).await??;
    let file =
        tower_http::services::ServeFile::new(&path).oneshot(axum::extract::Request::new(axum::body::Body::empty()));
    let mut response = file.await.map_err(|e| ApiError::internal(format!("reading the checkpoint: {e}")))?;
    if response.status() != StatusCode::OK {
        return Err(ApiError::internal(format!("reading the checkpoint answered {}", response.status())));
    }
    let disposition = format!("attachment; filename=\"run-{id}-resnet18.safetensors\"");
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/octet-stream"));
    headers
        .insert(header::CONTENT_DISPOSITION, header::HeaderValue::from_str(&disposition).map_err(ApiError::internal)?);
    Ok(response.map(axum::body::Body::new))
}

/// The run's receipt as a JSON file (`run-{id}-receipt.json`), what `transfer-studio train --receipt` reads.
async fn run_receipt(State(studio): State<Studio>, Path(id): Path<u64>) -> ApiResult<Response> {
    let receipt = blocking(move || studio.receipt(id)).await??;
    let json = serde_json::to_vec_pretty(&receipt).map_err(ApiError::internal)?;
    let disposition = format!("inline; filename=\"run-{id}-receipt.json\"");
    Ok(([(header::CONTENT_TYPE, "application/json".to_string()), (header::CONTENT_DISPOSITION, disposition)], json)
        .into_response())
}

#[derive(Deserialize)]
struct ExportQuery {
    format: Option<String>,
}

/// `GET /api/runs/{id}/export?format=onnx|safetensors`: the run's best model as a file to download.
async fn export_model(
    State(studio): State<Studio>,
    Path(id): Path<u64>,
    Query(query): Query<ExportQuery>,
) -> ApiResult<Response> {
    match query.format.as_deref().unwrap_or("safetensors") {
        "safetensors" => download_checkpoint(State(studio), Path(id)).await,
        "onnx" => {
            let bytes = blocking(move || studio.export_onnx(id)).await??;
            let disposition = format!("attachment; filename=\"run-{id}-resnet18.onnx\"");
            let headers = [
                (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                (header::CONTENT_DISPOSITION, disposition),
            ];
            Ok((headers, bytes).into_response())
        }
        other => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("format must be \"onnx\" or \"safetensors\", not \"{other}\""),
        )),
    }
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
    Ok(Json(blocking(move || studio.test_images(id, query.actual, query.predicted, limit)).await??))
}

async fn test_image(State(studio): State<Studio>, Path((id, index)): Path<(u64, usize)>) -> ApiResult<Response> {
    let (bytes, mime) = blocking(move || studio.test_image(id, index)).await??;
    Ok(([(header::CONTENT_TYPE, mime)], bytes).into_response())
}
