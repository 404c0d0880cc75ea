//! The learning-rate finder, `POST /api/lr-finder`, against a real server on small colour datasets: the
//! sweep's shape, its early stop, its suggestion recomputed here from the points it returned, that it
//! changes nothing on disk, its live progress over the WebSocket, its refusals, and stopping it (over
//! HTTP, or by its client going away) with the trainer free for a run at once.

use crate::common;

use common::{next_server_message, write_color_dataset, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use shared::{LrFinderProgress, LrFinderResponse, LrPoint, RunStatus, ServerMessage};
use std::collections::BTreeMap;
use std::path::Path;

/// A server over a 3-class colour dataset `colors` of 8 training images per class (3 batches of 8).
async fn server_with_colors() -> TestServer {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 3, 8, 2, 32);
    TestServer::start_with(data, |_| {}, None).await
}

/// The seed recipe (SGD with momentum 0.9) on `colors`, batch 8, 32 pixels.
fn sweep_config() -> Value {
    json!({"dataset": "colors", "batch_size": 8, "input_size": 32, "epochs": 1})
}

async fn post_sweep(server: &TestServer, config: &Value) -> reqwest::Response {
    reqwest::Client::new().post(server.url("/api/lr-finder")).json(config).send().await.unwrap()
}

async fn sweep(server: &TestServer, config: &Value) -> LrFinderResponse {
    let response = post_sweep(server, config).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// The learning rate where the smoothed loss falls fastest against ln lr, computed from the points
/// alone as fastai's `steep` does: forward differences leaving out the first 10 and the last 5 points
/// (when 2 remain), the first most negative one, the rate where it starts.
fn steepest_descent(points: &[LrPoint]) -> f64 {
    let points = if points.len() >= 17 { &points[10..points.len() - 5] } else { points };
    let mut best = (0, f64::INFINITY);
    for i in 0..points.len() - 1 {
        let slope = (points[i + 1].loss - points[i].loss) / (points[i + 1].lr.ln() - points[i].lr.ln());
        if slope < best.1 {
            best = (i, slope);
        }
    }
    points[best.0].lr
}

#[tokio::test]
async fn a_sweep_rises_exponentially_from_1e_7_and_suggests_the_steepest_descent() {
    let server = server_with_colors().await;
    let answer = sweep(&server, &sweep_config()).await;
    let points = &answer.points;
    assert!(points.len() >= 2 && points.len() <= 100, "{} points", points.len());
    for (step, point) in points.iter().enumerate() {
        let expected = 1e-7 * 1e8_f64.powf(step as f64 / 99.0);
        assert!((point.lr / expected - 1.0).abs() < 1e-9, "point {step}: lr {} instead of {expected}", point.lr);
        assert!(point.loss.is_finite() && point.loss > 0.0, "point {step}: loss {}", point.loss);
    }
    let suggestion = answer.suggestion.expect("a whole sweep suggests a rate");
    assert!(suggestion >= points[0].lr && suggestion <= points[points.len() - 1].lr);
    assert_eq!(suggestion, steepest_descent(points));
    assert!(!answer.stopped && answer.note.is_none());
}

#[tokio::test]
async fn the_sweep_stops_once_the_smoothed_loss_passes_four_times_its_minimum() {
    let server = server_with_colors().await;
    // With batches of eight, one machine fitted this tiny set so closely that even lr 10 never raised
    // the loss; batches of two keep every step's gradient large.
    let mut config = sweep_config();
    config["batch_size"] = json!(2);
    let points = sweep(&server, &config).await.points;
    assert!(points.len() < 100, "learning rates up to 10 blow SGD up before the end of the sweep");
    let mut lowest = f64::INFINITY;
    for (step, point) in points.iter().enumerate() {
        lowest = lowest.min(point.loss);
        let last = step == points.len() - 1;
        assert_eq!(point.loss > 4.0 * lowest, last, "point {step} of {}: {point:?}, lowest {lowest}", points.len());
    }
}

/// Every file under `dir` by relative path, with its SHA-256, except the history database.
fn files_and_hashes(dir: &Path) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let name = path.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                folders.push(path);
            } else if !name.starts_with("studio.db") {
                found.insert(name, hex::encode(Sha256::digest(std::fs::read(&path).unwrap())));
            }
        }
    }
    found
}

#[tokio::test]
async fn a_sweep_creates_no_run_and_changes_no_file() {
    let server = server_with_colors().await;
    let run = server.create_run(sweep_config()).await;
    assert_eq!(server.wait_until_finished(run).await.status, RunStatus::Completed);
    let runs_before: Value = reqwest::get(server.url("/api/runs")).await.unwrap().json().await.unwrap();
    let files_before = files_and_hashes(server.data.path());
    assert!(files_before.keys().any(|name| name.starts_with("runs/")), "the trained run has files: {files_before:?}");

    let answer = sweep(&server, &sweep_config()).await;
    assert!(!answer.points.is_empty());

    let runs_after: Value = reqwest::get(server.url("/api/runs")).await.unwrap().json().await.unwrap();
    assert_eq!(runs_after, runs_before, "no run is created or changed");
    assert_eq!(files_and_hashes(server.data.path()), files_before, "no file is added, changed or removed");
}

#[tokio::test]
async fn the_sweep_is_live_over_the_websocket_point_by_point() {
    let server = server_with_colors().await;
    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_url()).await.unwrap();
    assert!(matches!(next_server_message(&mut socket).await, ServerMessage::Snapshot { .. }));

    let answer = sweep(&server, &sweep_config()).await;
    let mut updates: Vec<LrFinderProgress> = Vec::new();
    while !updates.last().is_some_and(|update| update.finished) {
        if let ServerMessage::LrFinderProgress(update) = next_server_message(&mut socket).await {
            updates.push(update);
        }
    }
    let (last, during) = updates.split_last().unwrap();
    assert_eq!(during.len(), answer.points.len(), "one message per point, then the end");
    for (count, update) in during.iter().enumerate() {
        assert_eq!(update.points[..], answer.points[..=count], "message {count} carries the points so far");
        assert_eq!(update.suggestion, None);
    }
    assert_eq!((&last.points, last.suggestion), (&answer.points, answer.suggestion));
}

#[tokio::test]
async fn a_sweep_is_refused_with_409_while_a_run_is_training() {
    let server = server_with_colors().await;
    let run = server.create_run(json!({"dataset": "colors", "batch_size": 8, "input_size": 32, "epochs": 500})).await;
    server.wait_for_run(run, std::time::Duration::from_secs(120), |run| run.status == RunStatus::Running).await;

    let refused = post_sweep(&server, &sweep_config()).await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let sentence = refused.json::<shared::ErrorBody>().await.unwrap().error;
    assert!(sentence.contains("a run is queued or training"), "{sentence}");

    reqwest::Client::new().post(server.url(&format!("/api/runs/{run}/stop"))).send().await.unwrap();
    assert_eq!(server.wait_until_finished(run).await.status, RunStatus::Stopped);
    assert_eq!(post_sweep(&server, &sweep_config()).await.status(), StatusCode::OK, "free again once it stopped");
}

#[tokio::test]
async fn a_bad_config_or_a_missing_dataset_is_refused_with_a_sentence() {
    let server = server_with_colors().await;
    let bad = post_sweep(&server, &json!({"dataset": "colors", "batch_size": 0})).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let sentence = bad.json::<shared::ErrorBody>().await.unwrap().error;
    assert!(sentence.to_lowercase().contains("batch size"), "the field is named: {sentence}");

    let missing = post_sweep(&server, &json!({"dataset": "nowhere"})).await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    assert!(missing.json::<shared::ErrorBody>().await.unwrap().error.contains("nowhere"));
}

/// A sweep slow enough to stop part-way: 96 pixels, so each batch of 8 takes a good part of a second.
fn slow_sweep_config() -> Value {
    json!({"dataset": "colors", "batch_size": 8, "input_size": 96, "epochs": 1})
}

/// Waits on `socket` for a sweep's progress message for which `done` holds, and answers it.
async fn sweep_progress_until<S>(socket: &mut S, done: impl Fn(&LrFinderProgress) -> bool) -> LrFinderProgress
where
    S: futures::Stream<Item = Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>>
        + Unpin,
{
    loop {
        if let ServerMessage::LrFinderProgress(update) = next_server_message(socket).await {
            if done(&update) {
                return update;
            }
        }
    }
}

/// The WebSocket of the studio.
type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A slow sweep asked for over HTTP and seen on a WebSocket still running after three points: the socket,
/// and the sweep's answer to come.
async fn a_sweep_under_way(server: &TestServer) -> (Socket, tokio::task::JoinHandle<reqwest::Response>) {
    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_url()).await.unwrap();
    let sweep_url = server.url("/api/lr-finder");
    let asked =
        tokio::spawn(
            async move { reqwest::Client::new().post(sweep_url).json(&slow_sweep_config()).send().await.unwrap() },
        );
    let early = sweep_progress_until(&mut socket, |update| update.points.len() >= 3 || update.finished).await;
    assert!(!early.finished, "the sweep is still running after {} points", early.points.len());
    (socket, asked)
}

/// Starts `config`'s run right away and expects it to complete: the trainer is free.
async fn a_run_completes_right_after(server: &TestServer) {
    let run = server.create_run(sweep_config()).await;
    assert_eq!(server.wait_until_finished(run).await.status, RunStatus::Completed, "the trainer is free for a run");
}

#[tokio::test]
async fn a_sweep_stopped_over_http_answers_its_points_so_far_and_frees_the_trainer() {
    let server = server_with_colors().await;
    let (mut socket, asked) = a_sweep_under_way(&server).await;

    let stop = reqwest::Client::new().post(server.url("/api/lr-finder/stop")).send().await.unwrap();
    assert_eq!(stop.status(), StatusCode::NO_CONTENT);
    let answered = asked.await.unwrap();
    assert_eq!(answered.status(), StatusCode::OK);
    let answer: LrFinderResponse = answered.json().await.unwrap();
    assert!(answer.stopped, "the answer says it was stopped");
    assert!(answer.points.len() >= 3 && answer.points.len() < 100, "{} points", answer.points.len());
    match answer.suggestion {
        Some(suggestion) => assert_eq!(suggestion, steepest_descent(&answer.points)),
        None => {
            assert!(answer.points.len() < 17, "{} points are enough to suggest a rate", answer.points.len());
            let note = answer.note.as_deref().unwrap_or_default();
            assert!(note.contains("too few to suggest a learning rate"), "{note}");
        }
    }
    let last = sweep_progress_until(&mut socket, |update| update.finished).await;
    assert_eq!((last.stopped, &last.points), (true, &answer.points), "every page hears it stopped");

    a_run_completes_right_after(&server).await;
}

#[tokio::test]
async fn a_sweep_whose_client_went_away_stops_and_frees_the_trainer() {
    let server = server_with_colors().await;
    let (mut socket, asked) = a_sweep_under_way(&server).await;

    asked.abort();
    let last = sweep_progress_until(&mut socket, |update| update.finished).await;
    assert!(last.stopped, "the sweep stopped instead of running on unseen ({} points)", last.points.len());
    assert!(last.points.len() < 100);

    a_run_completes_right_after(&server).await;
}

#[tokio::test]
async fn stopping_when_no_sweep_runs_is_refused_with_409_and_a_sentence() {
    let server = server_with_colors().await;
    let refused = reqwest::Client::new().post(server.url("/api/lr-finder/stop")).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    assert_eq!(refused.json::<shared::ErrorBody>().await.unwrap().error, "no learning-rate sweep is running");
}
