//! `GET /api/runs`, the whole history, served from a cache of ready-made answers.
//!
//! With hundreds of runs a listing is a query, a serialisation and hundreds of kilobytes to copy into
//! the socket. The first two happen once per change of the history, on the blocking pool: the cache
//! keeps the JSON and its gzip form under the history's version ([`Studio::history_version`], read
//! without a lock), and while the version holds a listing is a clone of those bytes on the async worker,
//! with no thread hand-over. A client that accepts gzip (every browser does) gets about a tenth of the
//! bytes, and so does the kernel that copies them.

use super::error::{ApiError, PathScrubber};
use super::routes::blocking;
use crate::studio::Studio;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use flate2::write::GzEncoder;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

/// One history version's listing, ready to send.
struct Listing {
    /// The [`Studio::history_version`] it was read at.
    version: u64,
    /// The runs as a JSON array.
    json: Bytes,
    /// `json`, gzip-compressed.
    gzip: Bytes,
}

/// WebSocket snapshots being written at once. A snapshot of thousands of runs is megabytes: two hundred
/// clients joining together would otherwise keep every async worker copying them, and every other call
/// would wait its turn behind two hundred writers; in line, the others are answered between them.
const SNAPSHOTS_IN_FLIGHT: usize = 4;

/// The last listing made, shared by every request; `rebuild` lets one request at a time make a new one,
/// so that listers arriving together after a change wait for it instead of each making their own.
#[derive(Clone)]
pub(crate) struct RunListCache {
    /// The last listing made, if any.
    last: Arc<Mutex<Option<Arc<Listing>>>>,
    /// Held while a listing is made.
    rebuild: Arc<Mutex<()>>,
    /// One permit per snapshot being written (see [`SNAPSHOTS_IN_FLIGHT`]).
    writing: Arc<tokio::sync::Semaphore>,
}

impl Default for RunListCache {
    fn default() -> Self {
        RunListCache {
            last: Arc::default(),
            rebuild: Arc::default(),
            writing: Arc::new(tokio::sync::Semaphore::new(SNAPSHOTS_IN_FLIGHT)),
        }
    }
}

impl RunListCache {
    /// The cached listing if it is of the history's current version. The lock is held for a clone.
    fn current(&self, studio: &Studio) -> Option<Arc<Listing>> {
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner).clone();
        last.filter(|listing| listing.version == studio.history_version())
    }

    /// Blocking: the current listing, made (once, whoever asks) if the history changed since the last.
    fn listing(&self, studio: &Studio, scrubber: &PathScrubber) -> Result<Arc<Listing>, ApiError> {
        let _rebuilding = self.rebuild.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(listing) = self.current(studio) {
            return Ok(listing);
        }
        let (version, runs) = studio.versioned_runs()?;
        let runs: Vec<shared::Run> = runs.into_iter().map(|run| scrubber.run(run)).collect();
        let json = serde_json::to_vec(&runs).map_err(ApiError::internal)?;
        let gzip = gzip(&json).map_err(ApiError::internal)?;
        tracing::debug!(version, json = json.len(), gzip = gzip.len(), "run list made");
        let listing = Arc::new(Listing { version, json: json.into(), gzip: gzip.into() });
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(listing.clone());
        Ok(listing)
    }

    /// Waits for a turn to write a snapshot (see [`SNAPSHOTS_IN_FLIGHT`]); the turn lasts while the
    /// permit is held.
    pub(crate) async fn turn_to_write(&self) -> tokio::sync::OwnedSemaphorePermit {
        self.writing.clone().acquire_owned().await.expect("the semaphore is never closed")
    }

    /// The WebSocket's snapshot message: the current listing's JSON (made once, whoever asks, see
    /// [`RunListCache::listing`]) with the loss traces of the runs training (see [`Studio::traces`]), so two hundred clients joining
    /// at once cost one query and one serialisation of the history, not two hundred. Blocking when the
    /// history changed since the last listing.
    pub(crate) fn snapshot(&self, studio: &Studio, scrubber: &PathScrubber) -> Result<String, ApiError> {
        let listing = match self.current(studio) {
            Some(listing) => listing,
            None => self.listing(studio, scrubber)?,
        };
        let traces = serde_json::to_string(&studio.traces()).map_err(ApiError::internal)?;
        let runs = std::str::from_utf8(&listing.json).map_err(ApiError::internal)?;
        Ok(snapshot_text(runs, &traces))
    }
}

/// The snapshot message made of the run list's and the traces' JSON as they are, without parsing either.
fn snapshot_text(runs: &str, traces: &str) -> String {
    format!(r#"{{"type":"snapshot","runs":{runs},"traces":{traces}}}"#)
}

/// `bytes` gzip-compressed at the fast level: JSON of many similar runs shrinks about tenfold even so,
/// and the compression is paid at every change of the history (every epoch of a training run).
fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 8), flate2::Compression::fast());
    encoder.write_all(bytes)?;
    encoder.finish()
}

/// Whether an `Accept-Encoding` header accepts gzip: its `gzip` entry, or failing that its `*` entry,
/// with a `q` above 0.
pub(crate) fn accepts_gzip(headers: &HeaderMap) -> bool {
    let (mut gzip, mut any) = (None, None);
    let values = headers.get_all(header::ACCEPT_ENCODING);
    for entry in values.iter().filter_map(|value| value.to_str().ok()).flat_map(|value| value.split(',')) {
        let mut parts = entry.split(';').map(str::trim);
        let coding = parts.next().unwrap_or_default();
        let quality = parts.find_map(|parameter| parameter.strip_prefix("q=")).map(|q| q.parse::<f32>().unwrap_or(0.0));
        let accepted = quality.is_none_or(|q| q > 0.0);
        if coding.eq_ignore_ascii_case("gzip") {
            gzip = Some(accepted);
        } else if coding == "*" {
            any = Some(accepted);
        }
    }
    gzip.or(any).unwrap_or(false)
}

/// `GET /api/runs`: every run, newest first, gzip-encoded when the client accepts it.
pub(crate) async fn list_runs(
    State(studio): State<Studio>,
    Extension(scrubber): Extension<PathScrubber>,
    Extension(cache): Extension<RunListCache>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let listing = match cache.current(&studio) {
        Some(listing) => listing,
        None => blocking(move || cache.listing(&studio, &scrubber)).await??,
    };
    let json = HeaderValue::from_static("application/json");
    let vary = (header::VARY, HeaderValue::from_static("accept-encoding"));
    Ok(if accepts_gzip(&headers) {
        let gzip = (header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        ([(header::CONTENT_TYPE, json), gzip, vary], listing.gzip.clone()).into_response()
    } else {
        ([(header::CONTENT_TYPE, json), vary], listing.json.clone()).into_response()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepts(value: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
        accepts_gzip(&headers)
    }

    #[test]
    fn gzip_is_sent_only_to_clients_that_accept_it() {
        assert!(accepts("gzip, deflate, br, zstd"), "what Chromium sends");
        assert!(accepts("br;q=1.0, GZIP;q=0.5"));
        assert!(accepts("*"));
        assert!(!accepts("gzip;q=0, deflate"));
        assert!(!accepts("gzip;q=0, *"), "refused by name, whatever the wildcard says");
        assert!(!accepts("identity"));
        assert!(!accepts("x-gzip2"));
        assert!(!accepts_gzip(&HeaderMap::new()), "no header: identity");
    }

    #[test]
    fn the_snapshot_text_is_the_protocols_snapshot_message() {
        let progress = shared::BatchProgress {
            run_id: 4,
            epoch: 1,
            batch: 2,
            batches: 9,
            loss: 1.5,
            batch_loss: Some(1.25),
            images_per_second: 80.0,
            eta_seconds: 3.0,
        };
        let traces = vec![shared::trace::LossTrace::new(progress)];
        let text = snapshot_text("[]", &serde_json::to_string(&traces).unwrap());
        let message: shared::ServerMessage = serde_json::from_str(&text).unwrap();
        assert_eq!(message, shared::ServerMessage::Snapshot { runs: Vec::new(), traces });
    }

    #[test]
    fn the_gzip_form_inflates_to_the_json() {
        let json = serde_json::to_vec(&vec![serde_json::json!({"id": 1, "name": "baseline"}); 200]).unwrap();
        let compressed = gzip(&json).unwrap();
        assert!(compressed.len() * 10 < json.len(), "{} bytes from {}", compressed.len(), json.len());
        let mut inflated = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&compressed[..]), &mut inflated).unwrap();
        assert_eq!(inflated, json);
    }
}
