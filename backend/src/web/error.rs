//! Errors at the HTTP boundary: every refusal and fault leaves as the JSON error body
//! ([`ErrorBody`]) with a sentence for a person, never a stack trace or an absolute server path.

use crate::engine::inference::ClassifyError;
use crate::studio::{StudioError, StudioSettings};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use shared::{ErrorBody, Run, ServerMessage};
use std::any::Any;
use std::collections::HashSet;
use std::sync::Arc;

/// Largest error body [`json_refusals`] reads back to rewrite.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// An error at the HTTP boundary: a status and a sentence.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    /// Seconds after which a retry may succeed (`Retry-After`), for 503.
    retry_after: Option<u32>,
}

impl ApiError {
    /// A refusal with `status` and the sentence `message`.
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), retry_after: None }
    }

    /// A fault whose cause is logged and not shown: the client reads only that the request failed.
    pub(crate) fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!("request failed: {cause}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the server failed to answer this request; its log has the details",
        )
    }

    /// A 503 that says when to try again: the memory budget or the classifier's queue is full.
    fn busy(message: String) -> Self {
        ApiError { retry_after: Some(1), ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message) }
    }
}

/// Whether `error` only says that the server has no room for the work now.
fn is_busy(error: &StudioError) -> bool {
    use crate::data::images::ImageError;
    use crate::data::thumbnails::ThumbnailError;
    use crate::data::versions::VersionError;
    matches!(
        error,
        StudioError::Busy(_)
            | StudioError::Image(ImageError::Busy(_))
            | StudioError::Classify(ClassifyError::Busy { .. })
            | StudioError::Version(VersionError::Busy(_))
            | StudioError::Thumbnail(ThumbnailError::Busy(_))
    )
}

impl From<StudioError> for ApiError {
    fn from(error: StudioError) -> Self {
        if is_busy(&error) {
            return ApiError::busy(error.to_string());
        }
        let status = match &error {
            StudioError::InvalidConfig(_)
            | StudioError::InvalidName(_)
            | StudioError::InvalidSweep(_)
            | StudioError::Image(_) => StatusCode::BAD_REQUEST,
            StudioError::RunNotFound(_)
            | StudioError::SweepNotFound(_)
            | StudioError::CacheNotFound(_)
            | StudioError::TestImageNotFound { .. }
            | StudioError::NoReceipt(_) => StatusCode::NOT_FOUND,
            StudioError::AlreadyFinished { .. }
            | StudioError::NoModel(_)
            | StudioError::NoModelAtAll
            | StudioError::NotResumable { .. }
            | StudioError::StillActive { .. }
            | StudioError::StillQueued(_)
            | StudioError::TrainerBusy
            | StudioError::LrFinderRunning
            | StudioError::NoLrFinder
            | StudioError::SweepState { .. }
            | StudioError::TrialRun { .. }
            | StudioError::Unavailable(_) => StatusCode::CONFLICT,
            StudioError::LrFinder(crate::engine::lr_finder::LrFinderError::Crashed) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            StudioError::LrFinder(_) => StatusCode::UNPROCESSABLE_ENTITY,
            StudioError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            StudioError::Dataset(crate::data::DataError::NotFound(_)) => StatusCode::NOT_FOUND,
            StudioError::Dataset(_) => StatusCode::UNPROCESSABLE_ENTITY,
            StudioError::Version(crate::data::versions::VersionError::NotFound(_)) => StatusCode::NOT_FOUND,
            StudioError::Version(crate::data::versions::VersionError::Unchanged(_)) => StatusCode::CONFLICT,
            StudioError::Version(crate::data::versions::VersionError::Invalid(_)) => StatusCode::UNPROCESSABLE_ENTITY,
            StudioError::Version(crate::data::versions::VersionError::Data(_)) => StatusCode::UNPROCESSABLE_ENTITY,
            StudioError::Version(
                crate::data::versions::VersionError::Full(_) | crate::data::versions::VersionError::DiskFull,
            ) => StatusCode::INSUFFICIENT_STORAGE,
            StudioError::Thumbnail(error) => thumbnail_status(error),
            _ => {
                tracing::error!("request failed: {error}");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        ApiError::new(status, error.to_string())
    }
}

/// A refused thumbnail's status: 400 for a malformed request, 404 for an image the dataset does not
/// have, 422 for one it has but cannot read.
fn thumbnail_status(error: &crate::data::thumbnails::ThumbnailError) -> StatusCode {
    use crate::data::{thumbnails::ThumbnailError, DataError};
    match error {
        ThumbnailError::BadPath(_) | ThumbnailError::BadSize(_) => StatusCode::BAD_REQUEST,
        ThumbnailError::NotInDataset { .. } | ThumbnailError::Data(DataError::NotFound(_)) => StatusCode::NOT_FOUND,
        ThumbnailError::Data(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ThumbnailError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(ErrorBody { error: self.message })).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The answer to a panic anywhere in a request: a 500 sentence; what panicked goes to the log only.
pub(crate) fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message");
    tracing::error!("a request panicked: {what}");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the server failed to answer this request; its log has the details",
    )
    .into_response()
}

/// Rewrites absolute paths in messages, so no answer tells a client where the server keeps its files:
/// the studio's folders become relative names (`weights/x.pth`, `data/runs/3`), and any other absolute
/// path (a temporary or staging file, a library) is cut to its last part, a file's name.
#[derive(Clone)]
pub(crate) struct PathScrubber(Arc<Scrub>);

/// What [`PathScrubber`] replaces.
struct Scrub {
    /// The studio's folders (as given and as resolved) and the names they become, longest first.
    prefixes: Vec<(String, &'static str)>,
    /// The names of the machine's top-level folders (`tmp`, `home`, ...): a path starting with one is a
    /// server path, while a route (`/api/runs/3`) starts with no such name and is left as it is.
    top_folders: HashSet<String>,
}

impl PathScrubber {
    /// A scrubber for the data and weights folders of `settings`, and for paths under the machine's
    /// top-level folders.
    pub(crate) fn new(settings: &StudioSettings) -> Self {
        let top_folders = std::fs::read_dir("/")
            .map(|entries| entries.flatten().filter_map(|entry| entry.file_name().into_string().ok()).collect())
            .unwrap_or_default();
        PathScrubber(Arc::new(Scrub { prefixes: Self::studio_folders(settings), top_folders }))
    }

    /// The data and weights folders of `settings`, as given and as resolved, longest first.
    fn studio_folders(settings: &StudioSettings) -> Vec<(String, &'static str)> {
        let mut prefixes = Vec::new();
        for (dir, name) in [(&settings.weights_dir, "weights"), (&settings.data_dir, "data")] {
            let resolved = std::fs::canonicalize(dir).ok();
            for form in std::iter::once(dir.clone()).chain(resolved) {
                let text = form.display().to_string().trim_end_matches('/').to_string();
                if text.len() > 1 {
                    prefixes.push((text, name));
                }
            }
        }
        // Longest first, so the weights folder inside the data folder keeps its own name.
        prefixes.sort_by_key(|(text, _)| std::cmp::Reverse(text.len()));
        prefixes
    }

    /// `text` with every studio folder replaced by its relative name and every other absolute server
    /// path by its last part.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut text = text.to_string();
        for (prefix, name) in self.0.prefixes.iter() {
            text = replace_path_prefix(&text, prefix, name);
        }
        cut_absolute_paths(&text, &self.0.top_folders)
    }

    /// `run` with its error sentence scrubbed.
    pub(crate) fn run(&self, mut run: Run) -> Run {
        run.error = run.error.map(|error| self.scrub(&error));
        run
    }

    /// `sweep` with its trials' notes scrubbed.
    pub(crate) fn sweep(&self, mut sweep: shared::sweep::Sweep) -> shared::sweep::Sweep {
        for trial in &mut sweep.trials {
            trial.note = trial.note.as_ref().map(|note| self.scrub(note));
        }
        sweep
    }

    /// `message` with the sentences it carries scrubbed.
    pub(crate) fn message(&self, message: ServerMessage) -> ServerMessage {
        match message {
            ServerMessage::Snapshot { runs, traces } => {
                ServerMessage::Snapshot { runs: runs.into_iter().map(|run| self.run(run)).collect(), traces }
            }
            ServerMessage::RunUpdated { run } => ServerMessage::RunUpdated { run: self.run(run) },
            ServerMessage::Error { message } => ServerMessage::Error { message: self.scrub(&message) },
            ServerMessage::SweepUpdated { sweep } => ServerMessage::SweepUpdated { sweep: self.sweep(sweep) },
            other => other,
        }
    }
}

/// Replaces `prefix` by `name` where it stands as a whole path (followed by `/` or a non-name character).
fn replace_path_prefix(text: &str, prefix: &str, name: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let after = &rest[at + prefix.len()..];
        let whole = after.chars().next().is_none_or(|c| c == '/' || !(c.is_alphanumeric() || "._-".contains(c)));
        out.push_str(&rest[..at]);
        out.push_str(if whole { name } else { prefix });
        rest = after;
    }
    out.push_str(rest);
    out
}

/// `text` with each absolute path under one of `top_folders` cut to its last part: `/tmp/.tmpX/a.zip`
/// becomes `a.zip`. A path starts at the start of the text or after a space, quote, bracket, `=`, `,`,
/// `;` or `:` (a URL's `//host/...` names no top folder, and its path follows the host, so it is left
/// alone) and ends before a space, quote, bracket, comma or semicolon; a full stop or colon that ends
/// it is kept as punctuation.
fn cut_absolute_paths(text: &str, top_folders: &HashSet<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('/') {
        let starts_path =
            out.chars().chain(rest[..at].chars()).next_back().is_none_or(|c| " \t\n\"'`([{<=,;:".contains(c));
        out.push_str(&rest[..at]);
        let end =
            rest[at..].find(|c: char| c.is_whitespace() || "\"'`()[]{}<>,;".contains(c)).map_or(rest.len(), |n| at + n);
        let token = &rest[at..end];
        let path = token.trim_end_matches(['.', ':']);
        let top = path[1..].split('/').next().unwrap_or_default();
        match path.rsplit('/').find(|part| !part.is_empty()) {
            Some(last) if starts_path && top_folders.contains(top) => {
                out.push_str(last);
                out.push_str(&token[path.len()..]);
            }
            _ => out.push_str(token),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Makes every error answer under `/api` and `/ws` the JSON error body with a scrubbed sentence:
/// axum's own refusals (a body over the limit, a malformed path or query, a wrong method) come as
/// plain text and are rewritten here.
pub(crate) async fn json_refusals(State(scrubber): State<PathScrubber>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, ERROR_BODY_LIMIT).await.unwrap_or_default();
    let sentence = match serde_json::from_slice::<ErrorBody>(&text) {
        Ok(body) => body.error,
        Err(_) if status == StatusCode::PAYLOAD_TOO_LARGE => {
            "the request body is larger than this route accepts".into()
        }
        Err(_) if text.is_empty() => format!("{}: {path}", status.canonical_reason().unwrap_or("refused")),
        Err(_) => String::from_utf8_lossy(&text).into_owned(),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let body = serde_json::to_vec(&ErrorBody { error: scrubber.scrub(&sentence) }).unwrap_or_default();
    Response::from_parts(parts, axum::body::Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(text: &str) -> String {
        let top_folders: HashSet<String> = ["tmp", "home", "usr"].map(String::from).into();
        cut_absolute_paths(text, &top_folders)
    }

    #[test]
    fn absolute_server_paths_are_cut_to_their_last_part() {
        assert_eq!(cut("could not read /tmp/.tmpAb3/upload-3.zip: gone"), "could not read upload-3.zip: gone");
        assert_eq!(cut("\"/home/me/w.pth\" is not a state dict."), "\"w.pth\" is not a state dict.");
        assert_eq!(cut("libraries in (/usr/lib/x86_64/), see /tmp."), "libraries in (x86_64), see tmp.");
        assert_eq!(cut("paths=/home/me/a,/tmp/b;file:/usr/c"), "paths=a,b;file:c");
    }

    #[test]
    fn routes_urls_and_relative_paths_are_left_alone() {
        for text in [
            "no such route: /api/runs/3/x",
            "downloading http://127.0.0.1:8080/tmp/a.tar.gz failed",
            "data/runs/3/model.safetensors",
            "a/tmp/b and 1/2 of the images",
            "/ and // alone",
        ] {
            assert_eq!(cut(text), text);
        }
    }

    #[test]
    fn studio_folders_become_their_names_and_other_server_paths_their_file_names() {
        let data = tempfile::tempdir().unwrap();
        let settings = StudioSettings::new(data.path());
        let staged = std::env::temp_dir().join(".staging-7").join("upload.zip");
        let text = format!(
            "{}/runs/3/last.safetensors, {}/x.pth and {} failed",
            data.path().display(),
            settings.weights_dir.display(),
            staged.display()
        );
        let scrubbed = PathScrubber::new(&settings).scrub(&text);
        assert_eq!(scrubbed, "data/runs/3/last.safetensors, weights/x.pth and upload.zip failed");
    }
}
