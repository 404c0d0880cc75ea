//! Calls to the server's HTTP API.

use std::cell::RefCell;
use std::rc::Rc;

use gloo_net::http::{Request, Response};
use serde::de::DeserializeOwned;
use shared::sweep::{Sweep, SweepRequest};
use shared::{
    ClassifyBatchResponse, ClassifyResponse, DatasetHealth, DatasetInfo, DecodedCacheInfo, ErrorBody, Explanation,
    TestImage, WeightsEntry,
};
use thiserror::Error;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

/// Why an API call gave no answer.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ApiError {
    /// The request did not reach the server, or no answer came back. The browser's own words (`TypeError:
    /// Failed to fetch`) are kept for the console, never shown.
    #[error("The server could not be reached")]
    Network(String),
    /// The server refused the request; the sentence is its [`ErrorBody::error`].
    #[error("{0}")]
    Refused(String),
    /// The server answered with a body the page could not read.
    #[error("the server's answer could not be read: {0}")]
    Unreadable(String),
}

/// `GET /api/health`: the server's device and version.
pub async fn server_health() -> Result<shared::HealthResponse, ApiError> {
    get("/api/health").await
}

/// `GET /api/datasets`: the datasets a run can train on.
pub async fn datasets() -> Result<Vec<DatasetInfo>, ApiError> {
    get("/api/datasets").await
}

/// `GET /api/datasets/{name}/health`: class counts, sizes, unreadable images and duplicates of a dataset.
/// The server's first check decodes every image; later ones are answered from its cache.
pub async fn dataset_health(name: &str) -> Result<DatasetHealth, ApiError> {
    get(&format!("/api/datasets/{}/health", String::from(js_sys::encode_uri_component(name)))).await
}

/// `POST /api/datasets/{name}/versions`: a new version of dataset `name` with `edits`; the answer is the
/// version (`{name}@v{n}`) as the dataset list shows it.
pub async fn create_dataset_version(name: &str, edits: &shared::DatasetEdits) -> Result<DatasetInfo, ApiError> {
    let url = format!("/api/datasets/{}/versions", String::from(js_sys::encode_uri_component(name)));
    let request = Request::post(&url).json(edits).map_err(|e| ApiError::Network(e.to_string()))?;
    answer(request.send().await).await
}

/// `POST /api/datasets/{name}/images` with one image's bytes: keeps it for adding to dataset `name` in a
/// new version, and answers the path [`shared::DatasetEdits::add`] names it by.
pub async fn add_dataset_image(name: &str, image: &web_sys::Blob) -> Result<shared::AddedImage, ApiError> {
    post_image(&format!("/api/datasets/{}/images", String::from(js_sys::encode_uri_component(name))), image).await
}

/// `POST /api/lr-finder`: sweeps the learning rate for `config` on the server and answers with the
/// curve and its suggestion (its points also arrive over the WebSocket meanwhile).
pub async fn find_learning_rate(config: &shared::TrainConfig) -> Result<shared::LrFinderResponse, ApiError> {
    let request = Request::post("/api/lr-finder").json(config).map_err(|e| ApiError::Network(e.to_string()))?;
    answer(request.send().await).await
}

/// `GET /api/sweeps`: every hyperparameter sweep, newest first.
pub async fn sweeps() -> Result<Vec<Sweep>, ApiError> {
    get("/api/sweeps").await
}

/// `POST /api/sweeps`: starts a sweep; a refusal names every problem, separated by semicolons.
pub async fn create_sweep(request: &SweepRequest) -> Result<Sweep, ApiError> {
    let request = Request::post("/api/sweeps").json(request).map_err(|e| ApiError::Network(e.to_string()))?;
    answer(request.send().await).await
}

/// What a person can do to a sweep over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepCommand {
    /// `POST /api/sweeps/{id}/stop`: no trial starts, and those training stop.
    Stop,
    /// `POST /api/sweeps/{id}/resume`: stopped trials go on and pending ones start.
    Resume,
}

/// Sends `command` to sweep `id`; the answer is the sweep as it is then.
pub async fn command_sweep(id: u64, command: SweepCommand) -> Result<Sweep, ApiError> {
    let verb = match command {
        SweepCommand::Stop => "stop",
        SweepCommand::Resume => "resume",
    };
    answer(Request::post(&format!("/api/sweeps/{id}/{verb}")).send().await).await
}

/// `DELETE /api/sweeps/{id}`: forgets a sweep that is not running; its runs stay.
pub async fn delete_sweep(id: u64) -> Result<(), ApiError> {
    accepted(Request::delete(&format!("/api/sweeps/{id}")).send().await).await.map(drop)
}

/// `GET /api/caches`: the decoded caches (each a dataset decoded once at one input size), largest first.
pub async fn decoded_caches() -> Result<Vec<DecodedCacheInfo>, ApiError> {
    get("/api/caches").await
}

/// `DELETE /api/caches/{id}`: removes a decoded cache; the next run of its dataset at its size decodes it
/// again.
pub async fn delete_decoded_cache(id: &str) -> Result<(), ApiError> {
    let url = format!("/api/caches/{}", String::from(js_sys::encode_uri_component(id)));
    accepted(Request::delete(&url).send().await).await.map(drop)
}

/// `GET /api/weights`: the starting weights a run can name, ImageNet's first.
pub async fn weights() -> Result<Vec<WeightsEntry>, ApiError> {
    get("/api/weights").await
}

/// `POST /api/classify/batch?run={run_id}`: every image, each a blob with its file name, in one multipart
/// request, answered in order; with `explain`, each with the Grad-CAM map of its top class (`explain=auto`).
pub async fn classify_batch(
    run_id: u64,
    images: &[(web_sys::Blob, String)],
    explain: bool,
) -> Result<ClassifyBatchResponse, ApiError> {
    let form = web_sys::FormData::new().map_err(js_error)?;
    for (image, name) in images {
        form.append_with_blob_and_filename("images", image, name).map_err(js_error)?;
    }
    let explain = if explain { "&explain=auto" } else { "" };
    // The browser writes the multipart Content-Type, boundary included.
    let request = Request::post(&format!("/api/classify/batch?run={run_id}{explain}"))
        .body(form)
        .map_err(|e| ApiError::Network(e.to_string()))?;
    answer(request.send().await).await
}

/// `POST /api/classify?run={run_id}` with one image's bytes (a camera frame), sent as the blob's own type.
pub async fn classify_image(run_id: u64, image: &web_sys::Blob) -> Result<ClassifyResponse, ApiError> {
    post_image(&format!("/api/classify?run={run_id}"), image).await
}

/// `POST url` with one image's bytes, sent as the blob's own type.
async fn post_image<T: DeserializeOwned>(url: &str, image: &web_sys::Blob) -> Result<T, ApiError> {
    let request = Request::post(url)
        .header("Content-Type", &image.type_())
        .body(image.clone())
        .map_err(|e| ApiError::Network(e.to_string()))?;
    answer(request.send().await).await
}

/// `GET /api/runs/{run_id}/test-images`: the best model's test images, highest loss first; only those
/// of true class `actual` predicted as `predicted` when both are given.
pub async fn test_images(run_id: u64, cell: Option<(usize, usize)>, limit: usize) -> Result<Vec<TestImage>, ApiError> {
    let filter = cell.map_or_else(String::new, |(actual, predicted)| format!("actual={actual}&predicted={predicted}&"));
    get(&format!("/api/runs/{run_id}/test-images?{filter}limit={limit}")).await
}

/// Grad-CAM maps of a run's test images (`explain=auto`): each picture is fetched as the gallery shows it
/// and all are classified together with the run's model, so each map explains the model's top class for
/// exactly that file. `None` for a picture the model could not read.
pub async fn explain_test_images(run_id: u64, indices: &[usize]) -> Result<Vec<Option<Explanation>>, ApiError> {
    let mut images = Vec::with_capacity(indices.len());
    for &index in indices {
        let response = Request::get(&test_image_url(run_id, index)).send().await;
        let bytes = response.map_err(|e| ApiError::Network(e.to_string()))?.binary().await;
        let bytes = bytes.map_err(|e| ApiError::Unreadable(e.to_string()))?;
        let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes.as_slice()));
        let blob = web_sys::Blob::new_with_u8_array_sequence(&parts).map_err(js_error)?;
        images.push((blob, format!("test-{index}")));
    }
    let answer = classify_batch(run_id, &images, true).await?;
    Ok(answer.results.into_iter().map(|result| result.explanation).collect())
}

/// Where the picture of a test image is served, for an `<img src>`.
pub fn test_image_url(run_id: u64, index: usize) -> String {
    format!("/api/runs/{run_id}/test-images/{index}/image")
}

/// Where a thumbnail (at most `side` pixels a side) of image `path` of `dataset` is served, for an
/// `<img src>`; `path` as the health check names it (`train/cat/a.png`, `data_batch_1.bin#3`).
pub fn dataset_image_url(dataset: &str, path: &str, side: u32) -> String {
    let encode = |text: &str| String::from(js_sys::encode_uri_component(text));
    format!("/api/datasets/{}/image?path={}&size={side}", encode(dataset), encode(path))
}

/// `GET /api/runs/{run_id}/receipt`: what the run used and where it ran.
pub async fn run_receipt(run_id: u64) -> Result<shared::RunReceipt, ApiError> {
    get(&receipt_url(run_id)).await
}

/// Where a run's receipt downloads from.
pub fn receipt_url(run_id: u64) -> String {
    format!("/api/runs/{run_id}/receipt")
}

/// Where a run's best model downloads from.
pub fn checkpoint_url(run_id: u64) -> String {
    format!("/api/runs/{run_id}/checkpoint")
}

/// Where a run's best model downloads from as ONNX (written and verified by the server on request).
pub fn onnx_url(run_id: u64) -> String {
    format!("/api/runs/{run_id}/export?format=onnx")
}

/// `POST /api/datasets?name={name}` with the bytes of `zip`; `on_progress(sent, total)` hears every step.
pub async fn upload_dataset(
    name: &str,
    zip: &web_sys::File,
    on_progress: impl Fn(f64, f64) + 'static,
) -> Result<DatasetInfo, ApiError> {
    upload_file(&with_name("/api/datasets", name), "application/zip", zip, on_progress).await
}

/// `POST /api/weights?name={name}` with the bytes of `file`: kept by the server only if it is a ResNet-18
/// state dict; `on_progress(sent, total)` hears every step.
pub async fn upload_weights(
    name: &str,
    file: &web_sys::File,
    on_progress: impl Fn(f64, f64) + 'static,
) -> Result<WeightsEntry, ApiError> {
    upload_file(&with_name("/api/weights", name), "application/octet-stream", file, on_progress).await
}

fn with_name(path: &str, name: &str) -> String {
    format!("{path}?name={}", String::from(js_sys::encode_uri_component(name)))
}

/// POSTs the bytes of `file` to `url` as `content_type`, streamed by the browser. XMLHttpRequest rather
/// than fetch, because only it reports upload progress: `on_progress(sent, total)` hears every step.
async fn upload_file<T: DeserializeOwned>(
    url: &str,
    content_type: &str,
    file: &web_sys::File,
    on_progress: impl Fn(f64, f64) + 'static,
) -> Result<T, ApiError> {
    let xhr = web_sys::XmlHttpRequest::new().map_err(js_error)?;
    xhr.open("POST", url).map_err(js_error)?;
    xhr.set_request_header("Content-Type", content_type).map_err(js_error)?;

    let (done, finished) = futures::channel::oneshot::channel::<bool>();
    let done = Rc::new(RefCell::new(Some(done)));
    let ending = |loaded: bool| {
        let done = Rc::clone(&done);
        Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            if let Some(done) = done.borrow_mut().take() {
                let _ = done.send(loaded);
            }
        })
    };
    let (on_load, on_error, on_abort) = (ending(true), ending(false), ending(false));
    xhr.set_onload(Some(on_load.as_ref().unchecked_ref()));
    xhr.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    xhr.set_onabort(Some(on_abort.as_ref().unchecked_ref()));
    let progress = Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(move |e: web_sys::ProgressEvent| {
        if e.length_computable() {
            on_progress(e.loaded(), e.total());
        }
    });
    xhr.upload().map_err(js_error)?.set_onprogress(Some(progress.as_ref().unchecked_ref()));
    xhr.send_with_opt_blob(Some(file)).map_err(js_error)?;

    let loaded = finished.await.unwrap_or(false);
    // The handlers must outlive the request; they go once it has ended.
    drop((on_load, on_error, on_abort, progress));
    if !loaded {
        return Err(ApiError::Network("the upload broke off".into()));
    }
    let status = xhr.status().unwrap_or(0);
    let body = xhr.response_text().ok().flatten().unwrap_or_default();
    if (200..300).contains(&status) {
        serde_json::from_str(&body).map_err(|e| ApiError::Unreadable(e.to_string()))
    } else {
        Err(match serde_json::from_str::<ErrorBody>(&body) {
            Ok(refusal) => ApiError::Refused(refusal.error),
            Err(_) => ApiError::Refused(format!("the server answered {status}")),
        })
    }
}

fn js_error(error: wasm_bindgen::JsValue) -> ApiError {
    ApiError::Network(error.as_string().unwrap_or_else(|| format!("{error:?}")))
}

async fn get<T: DeserializeOwned>(url: &str) -> Result<T, ApiError> {
    answer(Request::get(url).send().await).await
}

async fn answer<T: DeserializeOwned>(sent: Result<Response, gloo_net::Error>) -> Result<T, ApiError> {
    let response = accepted(sent).await?;
    response.json().await.map_err(|e| ApiError::Unreadable(e.to_string()))
}

/// The response if the server accepted the request, else its refusal.
async fn accepted(sent: Result<Response, gloo_net::Error>) -> Result<Response, ApiError> {
    let response = sent.map_err(|e| ApiError::Network(e.to_string()))?;
    if response.ok() {
        return Ok(response);
    }
    Err(match response.json::<ErrorBody>().await {
        Ok(body) => ApiError::Refused(body.error),
        Err(_) => ApiError::Refused(format!("the server answered {} {}", response.status(), response.status_text())),
    })
}
