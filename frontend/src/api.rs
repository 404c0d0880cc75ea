//! Calls to the server's HTTP API.

use gloo_net::http::{Request, Response};
use serde::de::DeserializeOwned;
use shared::{ClassifyResponse, DatasetInfo, ErrorBody};
use thiserror::Error;

/// Why an API call gave no answer.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ApiError {
    /// The request did not reach the server, or no answer came back.
    #[error("could not reach the server: {0}")]
    Network(String),
    /// The server refused the request; the sentence is its [`ErrorBody::error`].
    #[error("{0}")]
    Refused(String),
    /// The server answered with a body the page could not read.
    #[error("the server's answer could not be read: {0}")]
    Unreadable(String),
}

/// `GET /api/datasets`: the datasets a run can train on.
pub async fn datasets() -> Result<Vec<DatasetInfo>, ApiError> {
    get("/api/datasets").await
}

/// `GET /api/weights`: the weight file names a run can start from.
pub async fn weights() -> Result<Vec<String>, ApiError> {
    get("/api/weights").await
}

/// `POST /api/classify?run={run_id}` with the bytes of `image`.
pub async fn classify(run_id: u64, image: &web_sys::File) -> Result<ClassifyResponse, ApiError> {
    let content_type = match image.type_() {
        kind if kind.is_empty() => "application/octet-stream".to_string(),
        kind => kind,
    };
    let request = Request::post(&format!("/api/classify?run={run_id}"))
        .header("Content-Type", &content_type)
        .body(image.clone())
        .map_err(|e| ApiError::Network(e.to_string()))?;
    answer(request.send().await).await
}

async fn get<T: DeserializeOwned>(url: &str) -> Result<T, ApiError> {
    answer(Request::get(url).send().await).await
}

async fn answer<T: DeserializeOwned>(sent: Result<Response, gloo_net::Error>) -> Result<T, ApiError> {
    let response = sent.map_err(|e| ApiError::Network(e.to_string()))?;
    if response.ok() {
        return response.json().await.map_err(|e| ApiError::Unreadable(e.to_string()));
    }
    Err(match response.json::<ErrorBody>().await {
        Ok(body) => ApiError::Refused(body.error),
        Err(_) => ApiError::Refused(format!(
            "the server answered {} {}",
            response.status(),
            response.status_text()
        )),
    })
}
