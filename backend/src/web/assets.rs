//! The built page: every file served brotli- or gzip-compressed when the client accepts it (from the
//! `.br` and `.gz` files [`precompress`] writes beside it at build time), files Trunk names by their
//! hash cached for a year, and `index.html` (also the answer for any other path) revalidated on every
//! visit by its `ETag`.

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::io::Write;
use std::path::{Path, PathBuf};
use tower_http::services::{ServeDir, ServeFile};

/// `Cache-Control` of a file named by its content's hash: it never changes under that name.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of `index.html`: kept, but checked with its `ETag` before each use.
const REVALIDATE: &str = "no-cache";
/// The kinds of file worth compressing: text and WebAssembly, not images that are compressed already.
const COMPRESSIBLE: [&str; 6] = ["html", "js", "css", "wasm", "svg", "json"];

/// Serves the page in `dir`: precompressed variants by `Accept-Encoding`, cache headers by name.
pub fn service(dir: &Path) -> Router {
    let index = dir.join("index.html");
    let files = ServeDir::new(dir)
        .precompressed_br()
        .precompressed_gzip()
        .fallback(ServeFile::new(&index).precompressed_br().precompressed_gzip());
    Router::new()
        .fallback_service(files)
        .layer(axum::middleware::from_fn(move |request, next| cache_headers(index.clone(), request, next)))
}

/// Adds `Vary`, `Cache-Control` and, for `index.html`, an `ETag`; answers 304 to a request whose
/// `If-None-Match` names the current `index.html`.
async fn cache_headers(index: PathBuf, request: Request, next: Next) -> Response {
    let hashed = named_by_hash(request.uri().path());
    let tag = if hashed { None } else { entity_tag(&index).await };
    if let Some(tag) = &tag {
        if matches_tag(request.headers(), tag) {
            let mut unchanged = StatusCode::NOT_MODIFIED.into_response();
            set_headers(unchanged.headers_mut(), REVALIDATE, Some(tag));
            return unchanged;
        }
    }
    let mut response = next.run(request).await;
    if response.status().is_success() {
        set_headers(response.headers_mut(), if hashed { IMMUTABLE } else { REVALIDATE }, tag.as_ref());
    }
    response
}

fn set_headers(headers: &mut HeaderMap, cache_control: &'static str, tag: Option<&HeaderValue>) {
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
    if let Some(tag) = tag {
        headers.insert(header::ETAG, tag.clone());
    }
}

/// Whether `If-None-Match` lists `tag` (or `*`).
fn matches_tag(headers: &HeaderMap, tag: &HeaderValue) -> bool {
    let Some(listed) = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) else { return false };
    let tag = tag.to_str().unwrap_or_default();
    listed.split(',').map(str::trim).any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == tag)
}

/// `index.html`'s tag: its length and modification time, as nginx tags files, so a rebuilt page gets a
/// new one. `None` when the file cannot be read.
async fn entity_tag(index: &Path) -> Option<HeaderValue> {
    let metadata = tokio::fs::metadata(index).await.ok()?;
    let modified = metadata.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?;
    HeaderValue::from_str(&format!("\"{:x}-{:x}\"", metadata.len(), modified.as_nanos())).ok()
}

/// Whether the last part of `path` carries a hash as Trunk writes it: `name-` and 16 hex digits, then
/// `.` or `_` (`frontend-18966718b7737a39_bg.wasm`, `style-5b76041e301b92fe.css`).
pub fn named_by_hash(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or_default();
    file.match_indices('-').any(|(at, _)| {
        let rest = &file.as_bytes()[at + 1..];
        // Trunk writes its 64-bit hash in hex without leading zeros: 16 digits, sometimes fewer.
        let digits = rest.iter().take_while(|byte| byte.is_ascii_hexdigit()).count();
        (12..=16).contains(&digits) && matches!(rest.get(digits), Some(b'.' | b'_'))
    })
}

/// One file [`precompress`] compressed, with its sizes in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compressed {
    /// Its name inside the folder.
    pub name: String,
    /// As built.
    pub raw: u64,
    /// The `.gz` beside it (gzip, level 9).
    pub gzip: u64,
    /// The `.br` beside it (brotli, quality 11).
    pub brotli: u64,
}

/// Writes `name.gz` and `name.br` beside every compressible file of `dir` (not in sub-folders), each
/// written whole under a staging name first, and returns what it wrote, largest first.
pub fn precompress(dir: &Path) -> std::io::Result<Vec<Compressed>> {
    let mut written = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let compressible = path.extension().and_then(|e| e.to_str()).is_some_and(|e| COMPRESSIBLE.contains(&e));
        if !path.is_file() || !compressible {
            continue;
        }
        let bytes = std::fs::read(&path)?;
        let gzip = gzip(&bytes)?;
        let brotli = brotli(&bytes)?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        crate::files::write_atomically(&dir.join(format!("{name}.gz")), &gzip)?;
        crate::files::write_atomically(&dir.join(format!("{name}.br")), &brotli)?;
        written.push(Compressed {
            name,
            raw: bytes.len() as u64,
            gzip: gzip.len() as u64,
            brotli: brotli.len() as u64,
        });
    }
    written.sort_by_key(|file| std::cmp::Reverse(file.raw));
    Ok(written)
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes)?;
    encoder.finish()
}

fn brotli(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let params = brotli::enc::BrotliEncoderParams { quality: 11, lgwin: 24, ..Default::default() };
    let mut out = Vec::new();
    brotli::BrotliCompress(&mut &bytes[..], &mut out, &params)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_trunk_hashed_are_told_from_the_rest() {
        for hashed in [
            "/frontend-18966718b7737a39_bg.wasm",
            "/style-5b76041e301b92fe.css",
            "/a-b-0123456789abcdef.js",
            // A hash whose first hex digit was 0: Trunk drops it.
            "/frontend-4a737d5e9548885_bg.wasm",
        ] {
            assert!(named_by_hash(hashed), "{hashed}");
        }
        for plain in ["/", "/index.html", "/runs/3", "/style-5b76041e.css", "/frontend-18966718b7737a3g_bg.wasm"] {
            assert!(!named_by_hash(plain), "{plain}");
        }
    }

    #[test]
    fn both_encodings_inflate_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let text = "let x = 1;\n".repeat(2_000);
        std::fs::write(dir.path().join("app-0123456789abcdef.js"), &text).unwrap();
        std::fs::write(dir.path().join("photo.png"), [0u8; 64]).unwrap();
        let written = precompress(dir.path()).unwrap();
        assert_eq!(written.len(), 1, "the PNG is left alone: {written:?}");
        let gz = std::fs::read(dir.path().join("app-0123456789abcdef.js.gz")).unwrap();
        let mut inflated = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut inflated).unwrap();
        assert_eq!(inflated, text);
        let br = std::fs::read(dir.path().join("app-0123456789abcdef.js.br")).unwrap();
        let mut decoded = Vec::new();
        brotli::BrotliDecompress(&mut &br[..], &mut decoded).unwrap();
        assert_eq!(decoded, text.as_bytes());
        assert!(written[0].brotli < written[0].gzip && written[0].gzip < written[0].raw, "{written:?}");
        assert!(!dir.path().join("photo.png.br").exists());
    }
}
