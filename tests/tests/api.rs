//! The HTTP API and the WebSocket against a real server on `127.0.0.1:0`, with real libtorch training on
//! small datasets made by the tests.

mod common;

use common::{next_server_message, png_bytes, write_color_dataset, zip_dataset, TestServer, COLOR_CLASSES};
use futures::SinkExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use shared::trace::LossTrace;
use shared::{
    ClassifyResponse, DatasetFormat, DatasetInfo, ErrorBody, Preparation, PreparationStep, Run, RunStatus,
    ServerMessage,
};
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

/// A server over an empty data folder that downloads `cifar10` from `url` and expects `md5`.
async fn server_fetching_cifar10_from(url: &str, md5: String) -> TestServer {
    let source = backend::data::download::DownloadSource { url: url.to_string(), md5 };
    TestServer::start_with(tempfile::tempdir().unwrap(), |s| s.cifar10 = source, None).await
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
    let id = server.create_run(json!({"dataset": "colors", "epochs": 2, "batch_size": 16, "lr": 0.01})).await;
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
    assert_eq!(listed, std::slice::from_ref(&run));

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
    let id = server.create_run(json!({"dataset": "colors", "epochs": 1})).await;
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
    // A setting the rules refuse is named by the form's label (shared::fields); a body that is not a
    // config at all gets serde's sentence, which names the JSON field.
    let server = server_with_dataset(2).await;
    let cases = [
        (json!({"dataset": "colors", "lr": 0}), "Learning rate"),
        (json!({"dataset": "colors", "lr": -0.1}), "Learning rate"),
        (json!({"dataset": "colors", "batch_size": 0}), "Batch size"),
        (json!({"dataset": "colors", "epochs": 0}), "Epochs"),
        (json!({"dataset": "colors", "momentum": 1.5}), "Momentum"),
        (json!({"dataset": "colors", "input_size": 7}), "Input size"),
        (json!({"dataset": "colors", "optimizer": "adagrad"}), "optimizer"),
        (json!({"dataset": "colors", "weight_decay": -0.1}), "Weight decay"),
        (json!({"dataset": "colors", "mode": "frozen", "weights": "none"}), "Fine-tune mode"),
        (json!({"dataset": "colors", "learning_rate": 0.1}), "learning_rate"),
        (json!({"dataset": "colors", "epochs": "three"}), "epochs"),
        (json!({"dataset": "nope"}), "dataset \"nope\" does not exist"),
        (json!({"dataset": "../../etc"}), "Dataset must be a plain name"),
        (json!({"dataset": "colors", "weights": "missing.safetensors"}), "weights file \"missing.safetensors\""),
        (json!({"epochs": 1}), "Choose a dataset to train on: pick one in the Dataset menu"),
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
    let unknown =
        client.post(server.url("/api/classify?run=42")).body(png_bytes([1, 2, 3], 8, 0)).send().await.unwrap();
    assert!(error_of(unknown, StatusCode::NOT_FOUND).await.contains("run 42 does not exist"));
    let no_model = client.post(server.url("/api/classify")).body(png_bytes([1, 2, 3], 8, 0)).send().await.unwrap();
    assert!(error_of(no_model, StatusCode::CONFLICT).await.contains("no run has a trained model yet"));

    let id = server.create_run(json!({"dataset": "colors", "epochs": 1})).await;
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
    let long = server.create_run(json!({"dataset": "colors", "epochs": 500, "batch_size": 4})).await;
    let queued = server.create_run(json!({"dataset": "colors", "epochs": 1})).await;
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
    let url = server.ws_url();
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let snapshot = next_server_message(&mut socket).await;
    assert!(matches!(snapshot, ServerMessage::Snapshot { runs, traces } if runs.is_empty() && traces.is_empty()));

    let start = json!({"type": "start_run", "config": {"dataset": "colors", "epochs": 2}});
    socket.send(tungstenite::Message::Text(start.to_string().into())).await.unwrap();
    let mut epochs = Vec::new();
    let mut statuses = Vec::new();
    let mut progress_events = 0;
    let mut decoding = Vec::new();
    // The loss line this client draws from every batch, and a second client that joins mid-run.
    let (mut line, mut joined) = (None::<LossTrace>, None);
    while statuses.last() != Some(&RunStatus::Completed) {
        match next_server_message(&mut socket).await {
            ServerMessage::RunUpdated { run } => statuses.push(run.status),
            ServerMessage::EpochCompleted { metrics, .. } => epochs.push(metrics.epoch),
            ServerMessage::Progress(progress) => {
                progress_events += 1;
                match &mut line {
                    Some(line) => line.push(progress),
                    None => line = Some(LossTrace::new(progress)),
                }
                if joined.is_none() {
                    joined = Some(tokio_tungstenite::connect_async(server.ws_url()).await.unwrap().0);
                }
            }
            ServerMessage::Preparing { preparation, .. } => {
                assert_eq!(progress_events, 0, "preparation comes before the first batch");
                assert_eq!((preparation.step, preparation.subject.as_str()), (PreparationStep::Decoding, "colors"));
                decoding.push((preparation.done, preparation.total));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(statuses.first(), Some(&RunStatus::Queued));
    assert!(statuses.contains(&RunStatus::Running));
    assert_eq!(epochs, [1, 2]);
    assert!(progress_events >= 2, "at least one progress event per epoch");
    // 2 classes x (8 train + 4 test) images: decoding starts at 0 and ends with all of them.
    assert_eq!(decoding.first(), Some(&(0, Some(24))), "{decoding:?}");
    assert_eq!(decoding.last(), Some(&(24, Some(24))), "{decoding:?}");

    // The late client's snapshot carries the line so far, and its own messages extend it to the same line.
    let line = line.expect("batches were reported");
    let mut joined = joined.unwrap();
    let ServerMessage::Snapshot { traces, .. } = next_server_message(&mut joined).await else { panic!("a snapshot") };
    let mut late = traces.into_iter().next().expect("the training run's trace");
    loop {
        match next_server_message(&mut joined).await {
            ServerMessage::Progress(progress) => late.push(progress),
            ServerMessage::RunUpdated { run } if run.status == RunStatus::Completed => break,
            _ => {}
        }
    }
    assert_eq!(late, line, "a client that joined mid-run draws the line of one there from the start");
    // After the run, a reload still gets the whole line.
    let (mut reload, _) = tokio_tungstenite::connect_async(server.ws_url()).await.unwrap();
    let ServerMessage::Snapshot { traces, .. } = next_server_message(&mut reload).await else { panic!("a snapshot") };
    assert_eq!(traces, [line]);

    let bad = json!({"type": "start_run", "config": {"dataset": "colors", "lr": -1}});
    socket.send(tungstenite::Message::Text(bad.to_string().into())).await.unwrap();
    loop {
        if let ServerMessage::Error { message } = next_server_message(&mut socket).await {
            assert!(message.starts_with("Learning rate must be"), "{message}");
            break;
        }
    }
}

#[tokio::test]
async fn websocket_upgrades_from_a_foreign_origin_are_refused() {
    let server = TestServer::start().await;
    let mut request = server.ws_url().into_client_request().unwrap();
    request.headers_mut().insert("origin", "http://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), StatusCode::FORBIDDEN),
        other => panic!("expected 403, got {other:?}"),
    }
    let mut request = server.ws_url().into_client_request().unwrap();
    request.headers_mut().insert("origin", server.base.parse().unwrap());
    assert!(tokio_tungstenite::connect_async(request).await.is_ok(), "the page's own origin is accepted");
}

#[tokio::test]
async fn a_missing_cifar10_without_network_fails_the_run_saying_where_to_put_the_files() {
    let server = TestServer::start().await;
    let id = server.create_run(json!({"dataset": "cifar10", "epochs": 1})).await;
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
    let archive_len = archive.len() as u64;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let archive_url = format!("http://{}/cifar-10-binary.tar.gz", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/cifar-10-binary.tar.gz", axum::routing::get(move || async move { archive }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let wrong = server_fetching_cifar10_from(&archive_url, "f".repeat(32)).await;
    let id = wrong.create_run(json!({"dataset": "cifar10", "epochs": 1})).await;
    let run = wrong.wait_until_finished(id).await;
    assert!(run.error.as_deref().unwrap().contains("expected ffff"), "{run:?}");
    assert!(!wrong.data.path().join("cifar10").exists(), "a bad archive leaves nothing behind");

    let right = server_fetching_cifar10_from(&archive_url, md5).await;
    let url = right.ws_url();
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let id = right.create_run(json!({"dataset": "cifar10", "epochs": 1})).await;
    // The page is told how far the download, the unpacking and the decoding have got.
    let mut steps: Vec<Preparation> = Vec::new();
    loop {
        match next_server_message(&mut socket).await {
            ServerMessage::Preparing { run_id, preparation } if run_id == id => steps.push(preparation),
            ServerMessage::Progress(_) => break,
            _ => {}
        }
    }
    let last_of = |step| steps.iter().rfind(|p| p.step == step).unwrap_or_else(|| panic!("no {step:?} in {steps:?}"));
    let downloaded = last_of(PreparationStep::Downloading);
    assert_eq!((downloaded.done, downloaded.total), (archive_len, Some(archive_len)));
    // The folder entry plus seven files.
    assert_eq!(last_of(PreparationStep::Unpacking).done, 8);
    assert_eq!((last_of(PreparationStep::Decoding).done, last_of(PreparationStep::Decoding).total), (30, Some(30)));
    let run = right.wait_until_finished(id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    assert_eq!(run.classes, classes);
    let datasets: Vec<DatasetInfo> = reqwest::get(right.url("/api/datasets")).await.unwrap().json().await.unwrap();
    assert_eq!((datasets[0].name.as_str(), datasets[0].train_count, datasets[0].test_count), ("cifar10", 20, 10));
    assert_eq!(datasets[0].added.as_ref().map(|a| a.origin), Some(shared::DatasetOrigin::Downloaded));
}

#[tokio::test]
async fn stopping_a_run_during_its_download_stops_the_download_and_keeps_nothing() {
    // An archive served slowly: 1 KB every 50 ms, 30 s in all unless the client hangs up.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let archive_url = format!("http://{}/cifar-10-binary.tar.gz", listener.local_addr().unwrap());
    let slow = || async {
        let chunks = futures::stream::unfold(0, |sent| async move {
            (sent < 600).then_some(())?;
            tokio::time::sleep(Duration::from_millis(50)).await;
            Some((Ok::<_, std::io::Error>(vec![0u8; 1024]), sent + 1))
        });
        axum::body::Body::from_stream(chunks)
    };
    let app = axum::Router::new().route("/cifar-10-binary.tar.gz", axum::routing::get(slow));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let server = server_fetching_cifar10_from(&archive_url, "0".repeat(32)).await;
    let url = server.ws_url();
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let id = server.create_run(json!({"dataset": "cifar10", "epochs": 1})).await;
    loop {
        if let ServerMessage::Preparing { preparation, .. } = next_server_message(&mut socket).await {
            if preparation.step == PreparationStep::Downloading && preparation.done > 0 {
                break;
            }
        }
    }
    let stop = reqwest::Client::new().post(server.url(&format!("/api/runs/{id}/stop"))).send().await.unwrap();
    assert_eq!(stop.status(), StatusCode::OK);
    let run = server.wait_for_run(id, Duration::from_secs(10), |run| run.status.is_finished()).await;
    assert_eq!(run.status, RunStatus::Stopped, "{run:?}");
    let left: Vec<_> = std::fs::read_dir(server.data.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.contains("cifar10"))
        .collect();
    assert!(left.is_empty(), "no partial archive or dataset folder: {left:?}");
}

#[tokio::test]
async fn history_survives_a_restart_and_unknown_routes_answer_404_in_json() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 2, 4, 2, 32);
    let path = data.path().to_path_buf();
    let server = TestServer::start_with(data, |_| {}, None).await;
    let id = server.create_run(json!({"dataset": "colors", "epochs": 1})).await;
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

async fn trained_server(classes: usize) -> (TestServer, u64) {
    let server = server_with_dataset(classes).await;
    let id = server.create_run(json!({"dataset": "colors", "epochs": 1})).await;
    assert_eq!(server.wait_until_finished(id).await.status, RunStatus::Completed);
    (server, id)
}

#[tokio::test]
async fn several_images_are_classified_in_one_request_each_with_its_own_answer() {
    let (server, id) = trained_server(6).await;
    let part = |name: &str, bytes: Vec<u8>| reqwest::multipart::Part::bytes(bytes).file_name(name.to_string());
    let form = reqwest::multipart::Form::new()
        .part("images", part("red.png", png_bytes(COLOR_CLASSES[3].1, 32, 1)))
        .part("images", part("notes.jpg", b"just text".to_vec()))
        .part("images", part("blue.png", png_bytes(COLOR_CLASSES[1].1, 90, 2)));
    let response = reqwest::Client::new().post(server.url("/api/classify/batch")).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer: shared::ClassifyBatchResponse = response.json().await.unwrap();
    assert_eq!(answer.run_id, id, "without ?run the newest run with a model answers");
    let names: Vec<&str> = answer.results.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["red.png", "notes.jpg", "blue.png"]);
    assert_eq!(answer.results[0].predictions.len(), 5);
    assert!(answer.results[1].predictions.is_empty());
    assert!(answer.results[1].error.as_deref().unwrap().contains("not a PNG"));
    assert_eq!(answer.results[2].predictions.len(), 5);

    let empty = reqwest::Client::new()
        .post(server.url(&format!("/api/classify/batch?run={id}")))
        .multipart(reqwest::multipart::Form::new().text("other", "x"))
        .send()
        .await
        .unwrap();
    assert!(error_of(empty, StatusCode::BAD_REQUEST).await.contains("no images"));
}

/// Issue 28 point 3: a burst of 64 single-image requests at once is queued whole (none turned away) and
/// answered in joined batches by the classifier thread; each request still gets its own image's answer,
/// the one it gets alone (to within batched float arithmetic).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_64_concurrent_requests_is_served_whole_each_with_its_own_answer() {
    let (server, id) = trained_server(6).await;
    let url = server.url(&format!("/api/classify?run={id}"));
    // One image of each colour: their answers differ, so an answer given to the wrong request shows.
    let images: Vec<Vec<u8>> = COLOR_CLASSES.iter().map(|(_, color)| png_bytes(*color, 32, 7)).collect();
    let client = reqwest::Client::new();
    let classify = |image: Vec<u8>| {
        let request = client.post(&url).header("content-type", "image/png").body(image);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap());
            let predictions = response.json::<ClassifyResponse>().await.unwrap().predictions;
            predictions.into_iter().map(|p| (p.label, p.probability)).collect::<std::collections::HashMap<_, _>>()
        }
    };
    let mut alone = Vec::new();
    for image in &images {
        alone.push(classify(image.clone()).await);
    }
    let burst = futures::future::join_all((0..64).map(|i| classify(images[i % images.len()].clone()))).await;
    for (i, answer) in burst.iter().enumerate() {
        let expected = &alone[i % images.len()];
        let close = expected.iter().filter(|(label, p)| answer.get(*label).is_some_and(|q| (q - *p).abs() < 1e-4));
        // The top five of six classes: at least four are in both (a near tie may swap the fifth).
        assert!(close.count() >= 4, "request {i}: {answer:?} vs alone {expected:?}");
    }
    // The classifier's session does not stay with an idle OpenMP team, which would slow every later
    // training run (engine::teams): its thread and team end once no request came for a while. (A run's
    // thread is not checked by name: libtorch's one pthreadpool worker, started by the first run and
    // kept for the process's life, takes that thread's name.)
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while threads_named("classify") > 0 {
        assert!(std::time::Instant::now() < deadline, "the classifier's session thread stayed idle");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Threads of this process (the server runs in it) named `name`; OpenMP's workers take the name of the
/// thread that started them.
fn threads_named(name: &str) -> usize {
    let tasks = std::fs::read_dir("/proc/self/task").unwrap();
    let comm = |task: &std::fs::DirEntry| std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
    tasks.filter_map(Result::ok).filter(|task| comm(task).trim() == name).count()
}

#[tokio::test]
async fn an_image_claiming_huge_dimensions_is_refused_with_400() {
    let (server, id) = trained_server(2).await;
    let mut bytes = png_bytes([1, 2, 3], 4, 0);
    bytes[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bytes[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let response =
        reqwest::Client::new().post(server.url(&format!("/api/classify?run={id}"))).body(bytes).send().await.unwrap();
    let message = error_of(response, StatusCode::BAD_REQUEST).await;
    assert!(message.contains("100000x100000") || message.contains("could not be decoded"), "{message}");
    let oversized = vec![0u8; backend::web::IMAGE_BODY_LIMIT + 1];
    let response = reqwest::Client::new()
        .post(server.url(&format!("/api/classify?run={id}")))
        .body(oversized)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let health = reqwest::get(server.url("/api/health")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK, "still serving");
}

#[tokio::test]
async fn the_best_checkpoint_downloads_and_test_images_are_listed_by_confusion_cell() {
    let (server, id) = trained_server(3).await;
    let response = reqwest::get(server.url(&format!("/api/runs/{id}/checkpoint"))).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let disposition = response.headers()["content-disposition"].to_str().unwrap().to_string();
    assert!(disposition.contains(&format!("run-{id}-resnet18.safetensors")), "{disposition}");
    let file = tempfile::Builder::new().suffix(".safetensors").tempfile().unwrap();
    let downloaded = response.bytes().await.unwrap();
    std::fs::write(file.path(), &downloaded).unwrap();
    let tensors = tch::Tensor::read_safetensors(file.path()).unwrap();
    assert!(tensors.iter().any(|(name, t)| name == "fc.weight" && t.size() == [3, 512]));

    let run: Run = reqwest::get(server.url(&format!("/api/runs/{id}"))).await.unwrap().json().await.unwrap();
    // The history records the checkpoint: the best epoch's, as big as the file served.
    let best = run.epochs.iter().fold(&run.epochs[0], |b, e| if e.test_accuracy > b.test_accuracy { e } else { b });
    let checkpoint = run.best_checkpoint.clone().expect("a recorded best checkpoint");
    assert_eq!((checkpoint.epoch, checkpoint.bytes), (best.epoch, downloaded.len() as u64));
    let confusion = &run.epochs[0].confusion;
    let all: Vec<shared::TestImage> =
        reqwest::get(server.url(&format!("/api/runs/{id}/test-images?limit=100"))).await.unwrap().json().await.unwrap();
    assert_eq!(all.len(), 12, "every test image");
    assert!(all.windows(2).all(|w| w[0].loss >= w[1].loss), "highest loss first");
    let (actual, predicted) = (all[0].actual, all[0].predicted);
    let cell: Vec<shared::TestImage> = reqwest::get(
        server.url(&format!("/api/runs/{id}/test-images?actual={actual}&predicted={predicted}&limit=100")),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(cell.len() as u32, confusion[actual][predicted], "the cell holds as many images as the matrix counts");
    let image = reqwest::get(server.url(&format!("/api/runs/{id}/test-images/{}/image", cell[0].index))).await.unwrap();
    assert_eq!(image.headers()["content-type"], "image/png");
    let picture = image::load_from_memory(&image.bytes().await.unwrap()).unwrap();
    assert_eq!((picture.width(), picture.height()), (32, 32));
    let missing = reqwest::get(server.url(&format!("/api/runs/{id}/test-images/999/image"))).await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_zip_of_class_folders_uploaded_over_http_becomes_a_trainable_dataset() {
    let server = TestServer::start_with(tempfile::tempdir().unwrap(), |s| s.max_dataset_upload = 200_000, None).await;
    let mut entries = Vec::new();
    for (class, color) in &COLOR_CLASSES[..2] {
        for i in 0..4 {
            entries.push((format!("{class}/{i}.png"), png_bytes(*color, 16, i)));
        }
    }
    let body = zip_dataset(&entries);
    let upload = |name: &str, body: Vec<u8>| {
        reqwest::Client::new().post(server.url(&format!("/api/datasets?name={name}"))).body(body).send()
    };
    let response = upload("shapes", body.clone()).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let info: DatasetInfo = response.json().await.unwrap();
    assert_eq!(
        (info.format, info.classes.clone()),
        (DatasetFormat::ImageFolder, vec!["black".to_string(), "blue".to_string()])
    );
    let added = info.added.clone().expect("the upload is recorded");
    assert_eq!(added.origin, shared::DatasetOrigin::Uploaded);
    assert_eq!(info.train_count + info.test_count, 8);
    let again = upload("shapes", body).await.unwrap();
    assert!(error_of(again, StatusCode::CONFLICT).await.contains("already exists"));
    let traversal = zip_dataset(&[("../../../escape.png".into(), png_bytes([0, 0, 0], 8, 0))]);
    assert!(error_of(upload("evil", traversal).await.unwrap(), StatusCode::BAD_REQUEST).await.contains("unsafe path"));
    let too_big = upload("big", vec![0u8; 300_000]).await.unwrap();
    assert!(error_of(too_big, StatusCode::PAYLOAD_TOO_LARGE).await.contains("limited to"));
    assert!(error_of(upload("..", b"x".to_vec()).await.unwrap(), StatusCode::BAD_REQUEST).await.starts_with("name"));
    let id = server.create_run(json!({"dataset": "shapes", "epochs": 1, "validation_fraction": 0.25})).await;
    let run = server.wait_until_finished(id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    let leftovers: Vec<String> = std::fs::read_dir(server.data.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with('.') && n != backend::data::CACHE_FOLDER)
        .collect();
    assert!(leftovers.is_empty(), "no partial uploads left: {leftovers:?}");

    // The record survives a restart.
    let TestServer { data, .. } = server;
    let reopened = TestServer::start_with(data, |_| {}, None).await;
    let datasets: Vec<DatasetInfo> = reqwest::get(reopened.url("/api/datasets")).await.unwrap().json().await.unwrap();
    assert_eq!(datasets.iter().find(|d| d.name == "shapes").and_then(|d| d.added.clone()), Some(added));
}

#[tokio::test]
async fn a_stopped_run_resumes_from_its_last_epoch_and_finishes() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 2, 16, 4, 32);
    let server = TestServer::start_with(data, |_| {}, None).await;
    let id = server.create_run(json!({"dataset": "colors", "epochs": 6, "batch_size": 4})).await;
    server.wait_for_run(id, Duration::from_secs(120), |run| !run.epochs.is_empty()).await;
    reqwest::Client::new().post(server.url(&format!("/api/runs/{id}/stop"))).send().await.unwrap();
    let stopped = server.wait_until_finished(id).await;
    assert_eq!(stopped.status, RunStatus::Stopped);
    let done_before = stopped.epochs.len();
    assert!(done_before < 6);
    let response = reqwest::Client::new().post(server.url(&format!("/api/runs/{id}/resume"))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let finished = server.wait_until_finished(id).await;
    assert_eq!(finished.status, RunStatus::Completed, "{finished:?}");
    assert_eq!(finished.epochs.iter().map(|e| e.epoch).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
    assert_eq!(finished.epochs[..done_before], stopped.epochs[..], "earlier epochs kept as they were");
    let again = reqwest::Client::new().post(server.url(&format!("/api/runs/{id}/resume"))).send().await.unwrap();
    assert!(error_of(again, StatusCode::CONFLICT).await.contains("completed"));
}

#[tokio::test]
async fn with_a_token_every_request_needs_it_and_the_link_sets_a_cookie() {
    let options = backend::web::ServerOptions { token: Some("s3cret".into()), ..Default::default() };
    let server = TestServer::start_with_options(tempfile::tempdir().unwrap(), |_| {}, options).await;
    // The link's token is answered by a redirect that sets the cookie; follow it by hand.
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let refused = client.get(server.url("/api/runs")).send().await.unwrap();
    assert!(error_of(refused, StatusCode::UNAUTHORIZED).await.contains("access token"));
    let wrong = client.get(server.url("/api/runs")).bearer_auth("guess").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        client.get(server.url("/api/runs")).bearer_auth("s3cret").send().await.unwrap().status(),
        StatusCode::OK
    );
    let via_link = client.get(server.url("/api/health?token=s3cret")).send().await.unwrap();
    assert_eq!(via_link.status(), StatusCode::SEE_OTHER);
    let cookie = via_link.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let with_cookie = client.get(server.url("/api/runs")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(with_cookie.status(), StatusCode::OK);
    let ws = server.ws_url();
    assert!(tokio_tungstenite::connect_async(ws.clone()).await.is_err(), "WebSocket without the token is refused");
    let mut request = ws.into_client_request().unwrap();
    request.headers_mut().insert("cookie", cookie.parse().unwrap());
    assert!(tokio_tungstenite::connect_async(request).await.is_ok());
}

/// The run list is served from a cache while the history is unchanged; every change shows at once.
#[tokio::test]
async fn the_run_list_follows_every_change_of_the_history() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 2, 8, 2, 16);
    let server = TestServer::start_with(data, |_| {}, None).await;
    let client = reqwest::Client::new();
    let list = || async { client.get(server.url("/api/runs")).send().await.unwrap().json::<Vec<Run>>().await.unwrap() };
    assert!(list().await.is_empty());
    assert!(list().await.is_empty(), "the cached answer");
    let config = json!({"dataset": "colors", "epochs": 2, "batch_size": 4});
    let id = server.create_run(config.clone()).await;
    assert_eq!(list().await.iter().map(|r| r.id).collect::<Vec<_>>(), [id], "a new run shows at once");
    let finished = server.wait_until_finished(id).await;
    assert_eq!(list().await, std::slice::from_ref(&finished), "the list matches the run after every epoch and its end");
    let second = server.create_run(config).await;
    server.studio.stop_run(second).ok();
    let stopped = server.wait_until_finished(second).await;
    assert_eq!(list().await, [stopped, finished]);
}

/// A client that accepts gzip (as every browser does) gets the run list gzip-encoded; inflated, it is
/// the JSON other clients get, through a new run, a rename and a delete.
#[tokio::test]
async fn the_gzip_run_list_is_the_json_list_and_follows_renames_and_deletes() {
    let server = server_with_dataset(2).await;
    let gzip_list = || async {
        let answer = reqwest::Client::new()
            .get(server.url("/api/runs"))
            .header("accept-encoding", "gzip, deflate, br, zstd")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.headers()["content-encoding"], "gzip");
        assert_eq!(answer.headers()["vary"], "accept-encoding");
        let mut json = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&answer.bytes().await.unwrap()[..]), &mut json)
            .unwrap();
        serde_json::from_slice::<Vec<Run>>(&json).unwrap()
    };
    assert!(gzip_list().await.is_empty());
    let id = server.create_run(json!({"dataset": "colors", "epochs": 1})).await;
    let finished = server.wait_until_finished(id).await;
    assert_eq!(gzip_list().await, std::slice::from_ref(&finished), "a new run, after its epoch and its end");
    assert_eq!(listed(&server).await, gzip_list().await, "the same list without gzip");
    patch_name(&server, id, json!({"name": "baseline"})).await;
    assert_eq!(gzip_list().await[0].name.as_deref(), Some("baseline"), "the list follows the rename");
    assert_eq!(delete_run(&server, id).await.status(), StatusCode::NO_CONTENT);
    assert!(gzip_list().await.is_empty(), "the list follows the delete");
}

async fn patch_name(server: &TestServer, id: u64, body: Value) -> reqwest::Response {
    reqwest::Client::new().patch(server.url(&format!("/api/runs/{id}"))).json(&body).send().await.unwrap()
}

async fn delete_run(server: &TestServer, id: u64) -> reqwest::Response {
    reqwest::Client::new().delete(server.url(&format!("/api/runs/{id}"))).send().await.unwrap()
}

async fn listed(server: &TestServer) -> Vec<Run> {
    reqwest::get(server.url("/api/runs")).await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn a_rename_is_trimmed_listed_and_kept_across_a_restart() {
    let server = server_with_dataset(2).await;
    let id = server.create_run(json!({"dataset": "colors", "epochs": 1})).await;
    let finished = server.wait_until_finished(id).await;
    assert_eq!(finished.device.as_deref(), Some("cpu"), "the device it trained on is recorded");
    assert_eq!(listed(&server).await[0].name, None, "the list, cached before the rename");

    let renamed = patch_name(&server, id, json!({"name": "  baseline  "})).await;
    assert_eq!(renamed.status(), StatusCode::OK);
    assert_eq!(renamed.json::<Run>().await.unwrap().name.as_deref(), Some("baseline"));
    assert_eq!(listed(&server).await[0].name.as_deref(), Some("baseline"), "the list follows the rename");

    let long = patch_name(&server, id, json!({"name": "x".repeat(81)})).await;
    assert_eq!(error_of(long, StatusCode::BAD_REQUEST).await, "name must be at most 80 characters, got 81");
    let unknown_field = patch_name(&server, id, json!({"title": "x"})).await;
    assert!(error_of(unknown_field, StatusCode::BAD_REQUEST).await.contains("unknown field `title`"));
    let missing = patch_name(&server, 999, json!({"name": "x"})).await;
    assert_eq!(error_of(missing, StatusCode::NOT_FOUND).await, "run 999 does not exist");
    let as_text =
        reqwest::Client::new().patch(server.url(&format!("/api/runs/{id}"))).body("{\"name\": \"x\"}").send().await;
    assert_eq!(as_text.unwrap().status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "PATCH takes JSON only");
    let cleared = patch_name(&server, id, json!({"name": " "})).await.json::<Run>().await.unwrap();
    assert_eq!((cleared.name.clone(), cleared.title()), (None, format!("Run #{id}")), "an empty name clears it");
    patch_name(&server, id, json!({"name": "baseline"})).await;

    let TestServer { data, .. } = server;
    let reopened = TestServer::start_with(data, |_| {}, None).await;
    let after: Run = reqwest::get(reopened.url(&format!("/api/runs/{id}"))).await.unwrap().json().await.unwrap();
    assert_eq!((after.name.as_deref(), after.device.as_deref()), (Some("baseline"), Some("cpu")));
}

#[tokio::test]
async fn a_finished_run_is_deleted_with_its_folder_and_an_active_one_is_refused() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 2, 64, 4, 32);
    let server = TestServer::start_with(data, |_| {}, None).await;
    let done = server.create_run(json!({"dataset": "colors", "epochs": 1, "batch_size": 32})).await;
    server.wait_until_finished(done).await;
    let folder = server.data.path().join(format!("runs/{done}"));
    assert!(folder.is_dir());
    let long = server.create_run(json!({"dataset": "colors", "epochs": 500, "batch_size": 4})).await;
    let queued = server.create_run(json!({"dataset": "colors", "epochs": 1})).await;
    server.wait_for_run(long, Duration::from_secs(60), |run| run.status == RunStatus::Running).await;
    assert_eq!(listed(&server).await.len(), 3, "the list, cached before the delete");

    for active in [long, queued] {
        let refused = error_of(delete_run(&server, active).await, StatusCode::CONFLICT).await;
        assert!(refused.contains("stop the run first"), "{refused}");
    }
    let deleted = delete_run(&server, done).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert!(!folder.exists(), "the run's folder is gone");
    let gone = reqwest::get(server.url(&format!("/api/runs/{done}"))).await.unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let ids: Vec<u64> = listed(&server).await.iter().map(|run| run.id).collect();
    assert_eq!(ids, [queued, long], "the list follows the delete");
    assert_eq!(delete_run(&server, done).await.status(), StatusCode::NOT_FOUND, "deleting twice");

    server.studio.stop_run(queued).unwrap();
    server.studio.stop_run(long).unwrap();
    server.wait_until_finished(long).await;
    assert_eq!(delete_run(&server, long).await.status(), StatusCode::NO_CONTENT, "once stopped it can go");
    assert!(!server.data.path().join(format!("runs/{long}")).exists());
}

#[tokio::test]
async fn renames_and_deletes_over_the_websocket_reach_every_client() {
    let server = server_with_dataset(2).await;
    let id = server.create_run(json!({"dataset": "colors", "epochs": 1})).await;
    server.wait_until_finished(id).await;
    let (mut commander, _) = tokio_tungstenite::connect_async(server.ws_url()).await.unwrap();
    let (mut watcher, _) = tokio_tungstenite::connect_async(server.ws_url()).await.unwrap();
    for socket in [&mut commander, &mut watcher] {
        assert!(matches!(next_server_message(socket).await, ServerMessage::Snapshot { .. }));
    }
    let send = |message: Value| tungstenite::Message::Text(message.to_string().into());

    commander.send(send(json!({"type": "rename_run", "run_id": id, "name": "x".repeat(81)}))).await.unwrap();
    let ServerMessage::Error { message } = next_server_message(&mut commander).await else { panic!("a refusal") };
    assert_eq!(message, "name must be at most 80 characters, got 81");

    commander.send(send(json!({"type": "rename_run", "run_id": id, "name": "baseline"}))).await.unwrap();
    for socket in [&mut commander, &mut watcher] {
        let ServerMessage::RunUpdated { run } = next_server_message(socket).await else { panic!("an update") };
        assert_eq!((run.id, run.name.as_deref()), (id, Some("baseline")));
    }
    commander.send(send(json!({"type": "delete_run", "run_id": id}))).await.unwrap();
    for socket in [&mut commander, &mut watcher] {
        assert_eq!(next_server_message(socket).await, ServerMessage::RunRemoved { run_id: id });
    }
    assert!(listed(&server).await.is_empty());
}
