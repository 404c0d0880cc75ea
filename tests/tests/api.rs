//! The HTTP API and the WebSocket against a real server on `127.0.0.1:0`, with real libtorch training on
//! small datasets made by the tests.

mod common;

use common::{next_server_message, png_bytes, write_color_dataset, TestServer, COLOR_CLASSES};
use futures::SinkExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use shared::{ClassifyResponse, DatasetFormat, DatasetInfo, ErrorBody, Run, RunCreated, RunStatus, ServerMessage};
use std::time::Duration;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

async fn server_with_dataset(classes: usize) -> TestServer {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", classes, 8, 4, 32);
    TestServer::start_with(data, |_| {}, None).await
}

async fn post_json(server: &TestServer, path: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new().post(server.url(path)).json(&body).send().await.unwrap()
}

async fn error_of(response: reqwest::Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    response.json::<ErrorBody>().await.unwrap().error
}

async fn create_run(server: &TestServer, body: Value) -> u64 {
    let response = post_json(server, "/api/runs", body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json::<RunCreated>().await.unwrap().id
}

#[tokio::test]
async fn health_names_the_device() {
    let server = TestServer::start().await;
    let health: Value = reqwest::get(server.url("/api/health")).await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
    let expected = if tch::Cuda::is_available() { "cuda:0" } else { "cpu" };
    assert_eq!(health["device"], expected);
}

#[tokio::test]
async fn datasets_in_both_layouts_are_listed_with_classes_and_counts() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 3, 5, 2, 20);
    let cifar = data.path().join("mini-cifar").join(backend::data::CIFAR_BIN_FOLDER);
    let classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];
    backend::data::write_cifar_binary(&cifar, &classes, 4, 6, |i| ((i % 10) as u8, vec![i as u8; 3072])).unwrap();
    std::fs::create_dir_all(data.path().join("not-a-dataset")).unwrap();
    let server = TestServer::start_with(data, |_| {}, None).await;

    let datasets: Vec<DatasetInfo> = reqwest::get(server.url("/api/datasets")).await.unwrap().json().await.unwrap();
    assert_eq!(datasets.len(), 2, "{datasets:?}");
    assert_eq!(datasets[0].name, "colors");
    assert_eq!(datasets[0].format, DatasetFormat::ClassFolders);
    assert_eq!(datasets[0].classes, ["black", "blue", "green"]);
    assert_eq!((datasets[0].train_count, datasets[0].test_count), (15, 6));
    assert_eq!(datasets[1].name, "mini-cifar");
    assert_eq!(datasets[1].format, DatasetFormat::Cifar10Binary);
    assert_eq!(datasets[1].classes.len(), 10);
    assert_eq!((datasets[1].train_count, datasets[1].test_count), (20, 6));
}

#[tokio::test]
async fn a_run_trains_records_every_epoch_and_its_model_classifies_an_upload() {
    let server = server_with_dataset(6).await;
    let id = create_run(&server, json!({"dataset": "colors", "epochs": 2, "batch_size": 16, "lr": 0.01})).await;
    let run = server.wait_until_finished(id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    assert_eq!(run.epochs.iter().map(|e| e.epoch).collect::<Vec<_>>(), [1, 2]);
    for epoch in &run.epochs {
        assert!(epoch.train_loss.is_finite() && epoch.test_loss.is_finite());
        assert!((0.0..=1.0).contains(&epoch.test_accuracy));
        assert!(epoch.seconds > 0.0);
    }
    assert_eq!(run.config.lr, 0.01);
    assert_eq!(run.config.momentum, 0.9, "unspecified fields take the seed recipe's defaults");
    assert!(run.has_model);
    assert_eq!(run.classes.len(), 6);

    let listed: Vec<Run> = reqwest::get(server.url("/api/runs")).await.unwrap().json().await.unwrap();
    assert_eq!(listed, [run.clone()]);

    let response = reqwest::Client::new()
        .post(server.url(&format!("/api/classify?run={id}")))
        .body(png_bytes(COLOR_CLASSES[3].1, 48, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer: ClassifyResponse = response.json().await.unwrap();
    assert_eq!(answer.predictions.len(), 5, "top 5 of 6 classes");
    let probabilities: Vec<f64> = answer.predictions.iter().map(|p| p.probability).collect();
    assert!(probabilities.windows(2).all(|w| w[0] >= w[1]), "highest first: {probabilities:?}");
    assert!(probabilities.iter().sum::<f64>() <= 1.0 + 1e-5);
    for prediction in &answer.predictions {
        assert_eq!(run.classes[prediction.index], prediction.label);
    }
}

#[tokio::test]
async fn classification_lists_every_class_when_there_are_fewer_than_five() {
    let server = server_with_dataset(3).await;
    let id = create_run(&server, json!({"dataset": "colors", "epochs": 1})).await;
    assert_eq!(server.wait_until_finished(id).await.status, RunStatus::Completed);
    let answer: ClassifyResponse = reqwest::Client::new()
        .post(server.url(&format!("/api/classify?run={id}")))
        .body(png_bytes([10, 10, 10], 32, 2))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut labels: Vec<&str> = answer.predictions.iter().map(|p| p.label.as_str()).collect();
    labels.sort();
    assert_eq!(labels, ["black", "blue", "green"]);
    let total: f64 = answer.predictions.iter().map(|p| p.probability).sum();
    assert!((total - 1.0).abs() < 1e-4, "all classes listed, so probabilities sum to 1: {total}");
}

#[tokio::test]
async fn bad_configs_are_refused_with_a_sentence_naming_the_field() {
    let server = server_with_dataset(2).await;
    let cases = [
        (json!({"dataset": "colors", "lr": 0}), "lr"),
        (json!({"dataset": "colors", "lr": -0.1}), "lr"),
        (json!({"dataset": "colors", "batch_size": 0}), "batch_size"),
        (json!({"dataset": "colors", "epochs": 0}), "epochs"),
        (json!({"dataset": "colors", "momentum": 1.5}), "momentum"),
        (json!({"dataset": "colors", "input_size": 7}), "input_size"),
        (json!({"dataset": "colors", "learning_rate": 0.1}), "learning_rate"),
        (json!({"dataset": "colors", "epochs": "three"}), "epochs"),
        (json!({"dataset": "nope"}), "dataset \"nope\" does not exist"),
        (json!({"dataset": "../../etc"}), "dataset"),
        (json!({"dataset": "colors", "weights": "missing.safetensors"}), "weights file \"missing.safetensors\""),
        (json!({"epochs": 1}), "dataset"),
    ];
    for (body, expected) in cases {
        let message = error_of(post_json(&server, "/api/runs", body.clone()).await, StatusCode::BAD_REQUEST).await;
        assert!(message.contains(expected), "{body} → {message}");
    }
    let response = reqwest::Client::new()
        .post(server.url("/api/runs"))
        .header("content-type", "application/json")
        .body("{\"dataset\": ")
        .send()
        .await
        .unwrap();
    let message = error_of(response, StatusCode::BAD_REQUEST).await;
    assert!(message.starts_with("invalid training config"), "{message}");
    // Nothing was created, and the server still answers.
    let runs: Vec<Run> = reqwest::get(server.url("/api/runs")).await.unwrap().json().await.unwrap();
    assert!(runs.is_empty());
}

#[tokio::test]
async fn classify_refuses_unknown_runs_and_non_images() {
    let server = server_with_dataset(2).await;
    let client = reqwest::Client::new();
    let unknown = client.post(server.url("/api/classify?run=42")).body(png_bytes([1, 2, 3], 8, 0)).send().await.unwrap();
    assert!(error_of(unknown, StatusCode::NOT_FOUND).await.contains("run 42 does not exist"));
    let missing = client.post(server.url("/api/classify")).body(png_bytes([1, 2, 3], 8, 0)).send().await.unwrap();
    assert!(error_of(missing, StatusCode::BAD_REQUEST).await.contains("run"));

    let id = create_run(&server, json!({"dataset": "colors", "epochs": 1})).await;
    assert_eq!(server.wait_until_finished(id).await.status, RunStatus::Completed);
    let classify = |body: Vec<u8>| client.post(server.url(&format!("/api/classify?run={id}"))).body(body).send();
    let text = classify(b"this is not an image".to_vec()).await.unwrap();
    assert!(error_of(text, StatusCode::BAD_REQUEST).await.contains("not a PNG, JPEG"));
    let empty = classify(Vec::new()).await.unwrap();
    assert!(error_of(empty, StatusCode::BAD_REQUEST).await.contains("empty"));
    let mut truncated = png_bytes([1, 2, 3], 64, 0);
    truncated.truncate(truncated.len() / 2);
    let truncated = classify(truncated).await.unwrap();
    assert!(error_of(truncated, StatusCode::BAD_REQUEST).await.contains("could not be decoded"));
    // Still serving.
    assert_eq!(classify(png_bytes([1, 2, 3], 16, 0)).await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn stopping_a_run_takes_effect_quickly_and_a_finished_run_cannot_be_stopped() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 2, 64, 4, 32);
    let server = TestServer::start_with(data, |_| {}, None).await;
    let long = create_run(&server, json!({"dataset": "colors", "epochs": 500, "batch_size": 4})).await;
    let queued = create_run(&server, json!({"dataset": "colors", "epochs": 1})).await;
    server.wait_for_run(long, Duration::from_secs(60), |run| run.status == RunStatus::Running).await;
    let run: Run = reqwest::get(server.url(&format!("/api/runs/{queued}"))).await.unwrap().json().await.unwrap();
    assert_eq!(run.status, RunStatus::Queued, "one run trains at a time");

    let stop = reqwest::Client::new().post(server.url(&format!("/api/runs/{long}/stop"))).send().await.unwrap();
    assert_eq!(stop.status(), StatusCode::OK);
    let stopped = server.wait_for_run(long, Duration::from_secs(10), |run| run.status.is_finished()).await;
    assert_eq!(stopped.status, RunStatus::Stopped);
    assert!(stopped.epochs.len() < 500);
    // The queued run then trains.
    assert_eq!(server.wait_until_finished(queued).await.status, RunStatus::Completed);

    let again = reqwest::Client::new().post(server.url(&format!("/api/runs/{long}/stop"))).send().await.unwrap();
    assert!(error_of(again, StatusCode::CONFLICT).await.contains("already stopped"));
    let unknown = reqwest::Client::new().post(server.url("/api/runs/999/stop")).send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_websocket_sends_a_snapshot_then_live_epochs_of_a_run_it_started() {
    let server = server_with_dataset(2).await;
    let url = server.url("/ws").replace("http://", "ws://");
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let snapshot = next_server_message(&mut socket).await;
    assert!(matches!(snapshot, ServerMessage::Snapshot { runs, progress: None } if runs.is_empty()));

    let start = json!({"type": "start_run", "config": {"dataset": "colors", "epochs": 2}});
    socket.send(tungstenite::Message::Text(start.to_string().into())).await.unwrap();
    let mut epochs = Vec::new();
    let mut statuses = Vec::new();
    let mut progress_events = 0;
    while statuses.last() != Some(&RunStatus::Completed) {
        match next_server_message(&mut socket).await {
            ServerMessage::RunUpdated { run } => statuses.push(run.status),
            ServerMessage::EpochCompleted { metrics, .. } => epochs.push(metrics.epoch),
            ServerMessage::Progress(_) => progress_events += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(statuses.first(), Some(&RunStatus::Queued));
    assert!(statuses.contains(&RunStatus::Running));
    assert_eq!(epochs, [1, 2]);
    assert!(progress_events >= 2, "at least one progress event per epoch");

    let bad = json!({"type": "start_run", "config": {"dataset": "colors", "lr": -1}});
    socket.send(tungstenite::Message::Text(bad.to_string().into())).await.unwrap();
    loop {
        if let ServerMessage::Error { message } = next_server_message(&mut socket).await {
            assert!(message.starts_with("lr must be"), "{message}");
            break;
        }
    }
}

#[tokio::test]
async fn websocket_upgrades_from_a_foreign_origin_are_refused() {
    let server = TestServer::start().await;
    let mut request = server.url("/ws").replace("http://", "ws://").into_client_request().unwrap();
    request.headers_mut().insert("origin", "http://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), StatusCode::FORBIDDEN),
        other => panic!("expected 403, got {other:?}"),
    }
    let mut request = server.url("/ws").replace("http://", "ws://").into_client_request().unwrap();
    request.headers_mut().insert("origin", server.base.parse().unwrap());
    assert!(tokio_tungstenite::connect_async(request).await.is_ok(), "the page's own origin is accepted");
}

#[tokio::test]
async fn a_missing_cifar10_without_network_fails_the_run_saying_where_to_put_the_files() {
    let server = TestServer::start().await;
    let id = create_run(&server, json!({"dataset": "cifar10", "epochs": 1})).await;
    let run = server.wait_until_finished(id).await;
    assert_eq!(run.status, RunStatus::Failed);
    let error = run.error.unwrap();
    assert!(error.contains("could not download CIFAR-10"), "{error}");
    assert!(error.contains("cifar10/cifar-10-batches-bin"), "{error}");
}

#[tokio::test]
async fn cifar10_is_downloaded_checked_and_unpacked_when_missing() {
    use md5::{Digest, Md5};
    // A small archive in CIFAR-10's layout, served from this machine.
    let staging = tempfile::tempdir().unwrap();
    let bin = staging.path().join(backend::data::CIFAR_BIN_FOLDER);
    let classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];
    backend::data::write_cifar_binary(&bin, &classes, 4, 10, |i| ((i % 10) as u8, vec![(i * 7) as u8; 3072])).unwrap();
    let mut archive = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    archive.append_dir_all(backend::data::CIFAR_BIN_FOLDER, &bin).unwrap();
    let archive = archive.into_inner().unwrap().finish().unwrap();
    let md5 = hex::encode(Md5::digest(&archive));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let archive_url = format!("http://{}/cifar-10-binary.tar.gz", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/cifar-10-binary.tar.gz", axum::routing::get(move || async move { archive }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let wrong = TestServer::start_with(
        tempfile::tempdir().unwrap(),
        |s| s.cifar10 = backend::download::DownloadSource { url: archive_url.clone(), md5: "f".repeat(32) },
        None,
    )
    .await;
    let id = create_run(&wrong, json!({"dataset": "cifar10", "epochs": 1})).await;
    let run = wrong.wait_until_finished(id).await;
    assert!(run.error.as_deref().unwrap().contains("expected ffff"), "{run:?}");
    assert!(!wrong.data.path().join("cifar10").exists(), "a bad archive leaves nothing behind");

    let right = TestServer::start_with(
        tempfile::tempdir().unwrap(),
        |s| s.cifar10 = backend::download::DownloadSource { url: archive_url.clone(), md5 },
        None,
    )
    .await;
    let id = create_run(&right, json!({"dataset": "cifar10", "epochs": 1})).await;
    let run = right.wait_until_finished(id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    assert_eq!(run.classes, classes);
    let datasets: Vec<DatasetInfo> = reqwest::get(right.url("/api/datasets")).await.unwrap().json().await.unwrap();
    assert_eq!((datasets[0].name.as_str(), datasets[0].train_count, datasets[0].test_count), ("cifar10", 20, 10));
}

#[tokio::test]
async fn history_survives_a_restart_and_unknown_routes_answer_404_in_json() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 2, 4, 2, 32);
    let path = data.path().to_path_buf();
    let server = TestServer::start_with(data, |_| {}, None).await;
    let id = create_run(&server, json!({"dataset": "colors", "epochs": 1})).await;
    let before = server.wait_until_finished(id).await;
    let TestServer { data, .. } = server;

    let reopened = TestServer::start_with(data, |_| {}, None).await;
    assert_eq!(reopened.data.path(), path);
    let after: Run = reqwest::get(reopened.url(&format!("/api/runs/{id}"))).await.unwrap().json().await.unwrap();
    assert_eq!(after, before);
    let classify = reqwest::Client::new()
        .post(reopened.url(&format!("/api/classify?run={id}")))
        .body(png_bytes([20, 20, 20], 32, 0))
        .send()
        .await
        .unwrap();
    assert_eq!(classify.status(), StatusCode::OK, "the saved model still classifies");
    let missing = reqwest::get(reopened.url("/api/nothing-here")).await.unwrap();
    assert!(error_of(missing, StatusCode::NOT_FOUND).await.contains("/api/nothing-here"));
}
