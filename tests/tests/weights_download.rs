//! A run asking for ImageNet's weights when their file is not on the server downloads it (here from a
//! local HTTP server, never beyond this machine): the page is told how many bytes have arrived as they
//! arrive, the file is kept only when its SHA-256 is the expected one, and the run trains from it.

use crate::common;

use backend::model::pretrained::{PretrainedSource, CACHE_FOLDER};
use backend::model::ResNet18;
use common::{next_server_message, write_color_dataset, TestServer};
use futures::StreamExt;
use serde_json::json;
use sha2::{Digest, Sha256};
use shared::{Preparation, PreparationStep, RunStatus, ServerMessage};
use std::time::Duration;

/// The stand-in for torchvision's file: a ResNet-18 state dict this test can hash.
const STAND_IN: &str = "stand-in-resnet18.safetensors";
/// Pieces the stand-in is served in.
const PIECES: usize = 8;
/// The pause before each piece: longer than the engine's least time between two progress reports, so
/// every piece is reported on its own.
const PAUSE: Duration = Duration::from_millis(300);

/// Serves `body` at `/models/{STAND_IN}` in [`PIECES`] pieces, each after a [`PAUSE`], with its length.
async fn serve_slowly(body: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/models/{STAND_IN}", listener.local_addr().unwrap());
    let piece = body.len().div_ceil(PIECES);
    let pieces: Vec<Vec<u8>> = body.chunks(piece).map(<[u8]>::to_vec).collect();
    let length = body.len();
    let app = axum::Router::new().route(
        &format!("/models/{STAND_IN}"),
        axum::routing::get(move || {
            let pieces = pieces.clone();
            async move {
                let stream = futures::stream::iter(pieces).then(|piece| async move {
                    tokio::time::sleep(PAUSE).await;
                    Ok::<_, std::io::Error>(piece)
                });
                ([(axum::http::header::CONTENT_LENGTH, length.to_string())], axum::body::Body::from_stream(stream))
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// A server over a 2-class dataset whose `"imagenet"` weights are the stand-in at `url`, checked against
/// `sha256_prefix`.
async fn server_downloading(url: &str, sha256_prefix: &str) -> TestServer {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 2, 4, 2, 32);
    let source = PretrainedSource {
        file_name: STAND_IN.into(),
        sha256_prefix: sha256_prefix.into(),
        ..PretrainedSource::imagenet_resnet18().with_url(url)
    };
    TestServer::start_with(data, move |settings| settings.imagenet = source, None).await
}

/// Starts a 1-epoch run from ImageNet's weights and collects its download reports until its first batch
/// (or its end).
async fn run_collecting_downloads(server: &TestServer) -> (u64, Vec<Preparation>) {
    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_url()).await.unwrap();
    let config = json!({"dataset": "colors", "epochs": 1, "batch_size": 4, "weights": "imagenet", "mode": "frozen"});
    let id = server.create_run(config).await;
    let mut downloads = Vec::new();
    loop {
        match next_server_message(&mut socket).await {
            ServerMessage::Preparing { run_id, preparation }
                if run_id == id && preparation.step == PreparationStep::Downloading =>
            {
                downloads.push(preparation)
            }
            ServerMessage::Progress(p) if p.run_id == id => break,
            ServerMessage::RunUpdated { run } if run.id == id && run.status.is_finished() => break,
            _ => {}
        }
    }
    (id, downloads)
}

fn stand_in() -> Vec<u8> {
    ResNet18::new(tch::Device::Cpu, 10, 5).to_safetensors(None).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_imagenet_file_is_downloaded_with_growing_progress_checked_and_used() {
    let body = stand_in();
    let sha256 = hex::encode(Sha256::digest(&body));
    let url = serve_slowly(body.clone()).await;
    let server = server_downloading(&url, &sha256[..8]).await;

    let (id, downloads) = run_collecting_downloads(&server).await;
    let total = body.len() as u64;
    assert!(downloads.iter().all(|p| p.subject == STAND_IN && p.total == Some(total)), "{downloads:?}");
    let counts: Vec<u64> = downloads.iter().map(|p| p.done).collect();
    assert!(counts.windows(2).all(|pair| pair[0] < pair[1]), "byte counts only grow: {counts:?}");
    let between = counts.iter().filter(|&&done| done > 0 && done < total).count();
    assert!(between >= PIECES / 2, "reports while the file arrives, not only at its ends: {counts:?}");
    assert_eq!(counts.last(), Some(&total), "the last report counts every byte");

    let run = server.wait_until_finished(id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    let kept = server.data.path().join("weights").join(CACHE_FOLDER).join(STAND_IN);
    assert_eq!(std::fs::read(&kept).unwrap(), body, "the checked file is kept in the weights cache");
    let receipt: shared::RunReceipt =
        reqwest::get(server.url(&format!("/api/runs/{id}/receipt"))).await.unwrap().json().await.unwrap();
    assert_eq!(receipt.weights_sha256, Some(sha256), "the run started from exactly that file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downloaded_file_with_the_wrong_hash_is_refused_with_a_sentence_and_not_kept() {
    let url = serve_slowly(stand_in()).await;
    let server = server_downloading(&url, "00000000").await;

    let (id, downloads) = run_collecting_downloads(&server).await;
    assert!(downloads.last().is_some_and(|p| Some(p.done) == p.total), "it was downloaded whole: {downloads:?}");
    let run = server.wait_until_finished(id).await;
    assert_eq!(run.status, RunStatus::Failed);
    let error = run.error.unwrap();
    assert!(error.starts_with(&format!("the file downloaded from {url} has SHA-256 ")), "{error}");
    assert!(error.ends_with("which does not start with 00000000; it was discarded"), "{error}");
    let cache = server.data.path().join("weights").join(CACHE_FOLDER);
    let left: Vec<_> = std::fs::read_dir(cache).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "nothing of the refused file is kept: {left:?}");
}
