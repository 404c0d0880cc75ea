//! The built page as a browser gets it: the real Trunk output (its wasm split into a first module and
//! parts), compressed by the real binary's `precompress`, served brotli or gzip by `Accept-Encoding`,
//! hashed files cached for a year and `index.html` revalidated by its `ETag`.

use crate::common;

use common::TestServer;
use reqwest::header::{HeaderMap, CACHE_CONTROL, CONTENT_ENCODING, ETAG, VARY};
use std::io::Read;
use std::path::Path;

/// The page Trunk built (`make test` builds it first), copied without any compressed files.
fn copy_of_the_built_page(to: &Path) -> Vec<String> {
    let dist = common::workspace_root().join("dist");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dist).expect("the page is built: run `make ui` (make test does)") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if path.is_file() && !name.ends_with(".br") && !name.ends_with(".gz") {
            std::fs::copy(&path, to.join(&name)).unwrap();
            names.push(name);
        }
    }
    names
}

async fn get(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> (u16, HeaderMap, Vec<u8>) {
    let mut request = reqwest::Client::new().get(server.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let answer = request.send().await.unwrap();
    let (status, headers) = (answer.status().as_u16(), answer.headers().clone());
    (status, headers, answer.bytes().await.unwrap().to_vec())
}

fn header(headers: &HeaderMap, name: reqwest::header::HeaderName) -> &str {
    headers.get(name).map_or("", |v| v.to_str().unwrap())
}

fn inflate(encoding: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        "br" => brotli::BrotliDecompress(&mut &body[..], &mut out).unwrap(),
        "gzip" => drop(flate2::read::GzDecoder::new(body).read_to_end(&mut out).unwrap()),
        _ => out.extend_from_slice(body),
    }
    out
}

#[tokio::test]
async fn the_page_is_served_compressed_by_accept_encoding_and_cached_by_name() {
    let ui = tempfile::tempdir().unwrap();
    let names = copy_of_the_built_page(ui.path());
    let first_wasm = |n: &&String| n.starts_with("frontend-") && n.ends_with("_bg.wasm");
    let wasm = names.iter().find(first_wasm).expect("the page has its wasm").clone();
    let binary = common::workspace_root().join("target/release/transfer-studio");
    let made = std::process::Command::new(binary).args(["precompress", "--ui-dir"]).arg(ui.path()).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let report = String::from_utf8(made.stdout).unwrap();
    assert!(report.lines().any(|line| line.starts_with(&format!("{wasm}: "))), "{report}");

    let server = TestServer::start_with(tempfile::tempdir().unwrap(), |_| {}, Some(ui.path().to_path_buf())).await;
    let file = std::fs::read(ui.path().join(&wasm)).unwrap();
    for (accepted, sent) in [("br, gzip", "br"), ("gzip, deflate", "gzip"), ("identity", "")] {
        let (status, headers, body) = get(&server, &format!("/{wasm}"), &[("accept-encoding", accepted)]).await;
        assert_eq!(status, 200);
        assert_eq!(header(&headers, CONTENT_ENCODING), sent, "for Accept-Encoding: {accepted}");
        assert_eq!(inflate(sent, &body), file, "the {sent:?} answer is the file");
        assert_eq!(header(&headers, VARY), "accept-encoding");
        assert_eq!(header(&headers, CACHE_CONTROL), "public, max-age=31536000, immutable");
        assert!(headers.get(ETAG).is_none());
        if sent == "br" {
            assert!(body.len() * 2 < file.len(), "brotli at least halves the wasm: {} of {}", body.len(), file.len());
        }
    }

    // The parts of the page fetched later (scripts/split-page.sh), and the script that loads them, are named
    // by hash and served the same way; index.html preloads that script.
    let parts: Vec<&String> = names.iter().filter(|n| n.ends_with(".wasm") && !first_wasm(n)).collect();
    assert!(parts.len() >= 6, "the page is split into its first wasm and its parts: {names:?}");
    let loader = names.iter().find(|n| n.starts_with("split-") && n.ends_with(".js")).expect("the parts' loader");
    for part in parts.into_iter().chain([loader]) {
        let (status, headers, body) = get(&server, &format!("/{part}"), &[("accept-encoding", "br")]).await;
        assert_eq!((status, header(&headers, CONTENT_ENCODING)), (200, "br"), "{part}");
        assert_eq!(inflate("br", &body), std::fs::read(ui.path().join(part)).unwrap(), "{part}");
        assert_eq!(header(&headers, CACHE_CONTROL), "public, max-age=31536000, immutable", "{part}");
    }
    let html = std::fs::read_to_string(ui.path().join("index.html")).unwrap();
    assert!(html.contains(&format!("<link rel=\"modulepreload\" href=\"/{loader}\"")), "{html}");

    // index.html, also the answer to any route of the page, is revalidated by its ETag.
    let index = std::fs::read_to_string(ui.path().join("index.html")).unwrap();
    let (status, headers, body) = get(&server, "/", &[("accept-encoding", "gzip")]).await;
    let body = String::from_utf8(inflate(header(&headers, CONTENT_ENCODING), &body)).unwrap();
    assert_eq!((status, body), (200, index.clone()));
    assert_eq!(header(&headers, CACHE_CONTROL), "no-cache");
    let tag = header(&headers, ETAG).to_string();
    assert!(tag.starts_with('"') && tag.len() > 4, "{tag}");
    let (status, headers, body) = get(&server, "/runs/7", &[("if-none-match", &tag)]).await;
    assert_eq!((status, body.len(), header(&headers, ETAG)), (304, 0, tag.as_str()));
    let (status, _, body) = get(&server, "/runs/7", &[("if-none-match", "\"another\"")]).await;
    assert_eq!((status, String::from_utf8(body).unwrap()), (200, index), "a route of the page is the page");

    // A rebuilt page gets a new tag, so no browser keeps the old one.
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(ui.path().join("index.html"), "<!DOCTYPE html><title>rebuilt</title>").unwrap();
    for encoded in ["index.html.br", "index.html.gz"] {
        std::fs::remove_file(ui.path().join(encoded)).unwrap();
    }
    let (status, headers, body) = get(&server, "/", &[("if-none-match", &tag)]).await;
    assert_eq!((status, String::from_utf8(body).unwrap().as_str()), (200, "<!DOCTYPE html><title>rebuilt</title>"));
    assert_ne!(header(&headers, ETAG), tag);

    // The API answers as before: not cached, not varied by these rules.
    let (status, headers, _) = get(&server, "/api/health", &[("accept-encoding", "br")]).await;
    assert_eq!(status, 200);
    assert!(!header(&headers, CACHE_CONTROL).contains("immutable"));
    assert!(headers.get(ETAG).is_none());
}
