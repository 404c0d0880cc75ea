//! Issue 24: no name, slow client or burst of small requests can stop, freeze or exhaust the studio.
//! Each test is one finding, against a real server on `127.0.0.1:0`; the memory bound has a test binary
//! of its own (`memory_bound.rs`), since it measures the whole process.

use crate::common;

use backend::studio::{Studio, StudioSettings};
use backend::web::{ConnectionLimits, ServerOptions};
use common::{png_bytes, write_color_dataset, zip_dataset, TestServer, COLOR_CLASSES};
use reqwest::StatusCode;
use shared::{DatasetInfo, ErrorBody};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A token long enough for any address.
const TOKEN: &str = "0123456789abcdef0123";

/// A zip of a class-folder dataset with `classes` of [`COLOR_CLASSES`], two training and one test image each.
fn dataset_zip(classes: &[usize]) -> Vec<u8> {
    let mut entries = Vec::new();
    for &class in classes {
        let (name, color) = COLOR_CLASSES[class];
        for (split, count) in [("train", 2), ("test", 1)] {
            for i in 0..count {
                entries.push((format!("{split}/{name}/{i}.png"), png_bytes(color, 8, i as u64)));
            }
        }
    }
    zip_dataset(&entries)
}

async fn upload(server: &TestServer, name: &str, zip: Vec<u8>) -> reqwest::Response {
    let url = reqwest::Url::parse_with_params(&server.url("/api/datasets"), [("name", name)]).unwrap();
    reqwest::Client::new().post(url).header("content-type", "application/zip").body(zip).send().await.unwrap()
}

async fn error_of(response: reqwest::Response, status: StatusCode) -> String {
    let got = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(got, status, "{body}");
    serde_json::from_str::<ErrorBody>(&body).expect("an ErrorBody").error
}

async fn datasets(server: &TestServer) -> Vec<DatasetInfo> {
    reqwest::get(server.url("/api/datasets")).await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn names_of_the_studios_own_files_and_of_versions_are_refused_for_uploads_in_any_case() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 2, 2, 1, 8);
    let server = TestServer::start_with(data, |_| {}, None).await;
    for name in
        ["studio.db-journal", "studio.db", "STUDIO.DB-WAL", "studio.db-shm", "runs", "Weights", "colors@v1", "a@b"]
    {
        let refused = error_of(upload(&server, name, dataset_zip(&[0, 1])).await, StatusCode::BAD_REQUEST).await;
        assert!(refused.starts_with("name "), "{name}: {refused}");
    }
    let taken = error_of(upload(&server, "Colors", dataset_zip(&[0, 1])).await, StatusCode::CONFLICT).await;
    assert!(taken.contains("colors"), "the existing name is named: {taken}");
    let names: Vec<String> = datasets(&server).await.into_iter().map(|d| d.name).collect();
    assert_eq!(names, ["colors"], "nothing was installed");
}

#[test]
fn a_folder_in_the_place_of_the_history_journal_is_set_aside_and_the_studio_starts() {
    let data = tempfile::tempdir().unwrap();
    // What an upload named studio.db-journal left before names were checked.
    write_color_dataset(data.path(), "studio.db-journal", 2, 2, 1, 8);
    write_color_dataset(data.path(), "colors", 2, 2, 1, 8);
    drop(Studio::open(StudioSettings::new(data.path()), tch::Device::Cpu).expect("first start"));
    // It is still there at the next start (the history now exists), where SQLite took it for a hot journal.
    write_color_dataset(data.path(), "studio.db-shm", 2, 2, 1, 8);
    let studio = Studio::open(StudioSettings::new(data.path()), tch::Device::Cpu).expect("the studio starts");
    assert!(data.path().join("studio.db").is_file());
    let aside: Vec<String> = std::fs::read_dir(data.path().join(backend::studio::SET_ASIDE_FOLDER))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(aside.len(), 2, "both folders were moved aside: {aside:?}");
    let listed: Vec<String> = studio.datasets().into_iter().map(|d| d.name).collect();
    assert_eq!(listed, ["colors"]);
}

#[test]
fn a_history_that_cannot_be_opened_is_named_in_the_error() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("studio.db"), vec![7u8; 4096]).unwrap();
    let error = Studio::open(StudioSettings::new(data.path()), tch::Device::Cpu).err().expect("refused").to_string();
    assert!(error.contains(&data.path().join("studio.db").display().to_string()), "{error}");
}

#[tokio::test]
async fn a_folder_named_like_a_version_never_shadows_it() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 2, 3, 1, 8);
    let server = TestServer::start_with(data, |_| {}, None).await;
    let edits = serde_json::json!({"exclude": ["train/black/0000.png"]});
    let client = reqwest::Client::new();
    let made = client.post(server.url("/api/datasets/colors/versions")).json(&edits).send().await.unwrap();
    assert_eq!(made.status(), StatusCode::CREATED);
    // A folder dropped in by hand (or uploaded before names were checked) under the version's name.
    write_color_dataset(server.data.path(), "colors@v1", 2, 9, 1, 8);
    let listed = datasets(&server).await;
    let versions: Vec<&DatasetInfo> = listed.iter().filter(|d| d.name == "colors@v1").collect();
    assert_eq!(versions.len(), 1, "one entry of that name: {listed:#?}");
    assert_eq!(versions[0].train_count, 5, "the version's images (6 less the one left out), not the folder's 18");
    let health: shared::DatasetHealth =
        reqwest::get(server.url("/api/datasets/colors@v1/health")).await.unwrap().json().await.unwrap();
    let train: usize = health.classes.iter().map(|c| c.train).sum();
    assert_eq!(train, 5);
}

#[tokio::test]
async fn uploads_of_one_name_at_once_install_exactly_one_of_them() {
    let server = TestServer::start().await;
    // Ten different datasets (each its own pair of classes), all named "race".
    let uploads = (0..10).map(|i| {
        let classes = [i % 6, (i + 1 + i / 6) % 6];
        let server = &server;
        async move { (classes, upload(server, "race", dataset_zip(&classes)).await) }
    });
    let answers = futures::future::join_all(uploads).await;
    let mut winners = Vec::new();
    for (classes, response) in answers {
        match response.status() {
            StatusCode::CREATED => winners.push((classes, response.json::<DatasetInfo>().await.unwrap())),
            StatusCode::CONFLICT => {}
            other => panic!("expected 201 or 409, got {other}: {}", response.text().await.unwrap()),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one upload wins");
    let (classes, answered) = &winners[0];
    let mut expected: Vec<&str> = classes.iter().map(|&c| COLOR_CLASSES[c].0).collect();
    expected.sort();
    assert_eq!(answered.classes, expected, "the winner's own classes were answered");
    let installed = datasets(&server).await;
    assert_eq!(installed.len(), 1);
    assert_eq!(installed[0].classes, expected, "and installed");
    let leftovers: Vec<_> = std::fs::read_dir(server.data.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".upload-"))
        .collect();
    assert!(leftovers.is_empty(), "no staging left: {leftovers:?}");
}

#[tokio::test]
async fn a_file_name_too_long_for_the_disk_is_a_400_that_says_so() {
    let server = TestServer::start().await;
    let long = "x".repeat(300);
    let entries = vec![
        (format!("train/black/{long}.png"), png_bytes([20, 20, 20], 8, 1)),
        ("test/black/0.png".to_string(), png_bytes([20, 20, 20], 8, 2)),
    ];
    let refused = error_of(upload(&server, "long", zip_dataset(&entries)).await, StatusCode::BAD_REQUEST).await;
    assert!(refused.contains("too long"), "{refused}");
}

/// Opens `count` connections that each send `requests` pipelined and never read an answer.
async fn unread_pipelines(server: &TestServer, count: usize, request: String, requests: usize) -> Vec<TcpStream> {
    let address = server.base.trim_start_matches("http://").to_string();
    let mut streams = Vec::new();
    for _ in 0..count {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        // As much as goes in without blocking: the server stops reading once its answers back up.
        let burst = request.repeat(requests);
        let _ = tokio::time::timeout(Duration::from_millis(20), stream.write_all(burst.as_bytes())).await;
        streams.push(stream);
    }
    streams
}

#[tokio::test]
async fn clients_that_never_read_their_refusals_do_not_keep_a_token_holder_out() {
    let options = ServerOptions { token: Some(TOKEN.into()), ..ServerOptions::default() };
    let server = TestServer::start_with_options(tempfile::tempdir().unwrap(), |_| {}, options).await;
    let refused = "GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_string();
    let held = unread_pipelines(&server, 260, refused, 50).await;
    let started = Instant::now();
    let answer = tokio::time::timeout(
        Duration::from_secs(1),
        reqwest::Client::new().get(server.url("/api/health")).bearer_auth(TOKEN).send(),
    )
    .await
    .expect("the token holder is served within a second")
    .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    println!("served in {:?} beside {} unread connections", started.elapsed(), held.len());
}

#[tokio::test]
async fn an_answer_the_client_never_takes_frees_its_connection() {
    let limits = ConnectionLimits {
        max_connections: 4,
        write_stall_timeout: Duration::from_secs(1),
        ..ConnectionLimits::default()
    };
    let server = TestServer::start_with_options(
        tempfile::tempdir().unwrap(),
        |_| {},
        ServerOptions { limits, ..Default::default() },
    )
    .await;
    // Each answer repeats its 8 KB path: a few hundred fill the socket's buffers.
    let long = format!("GET /api/{} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "x".repeat(8000));
    let address = server.base.trim_start_matches("http://").to_string();
    let mut writers = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        let burst = long.repeat(2000);
        // Keeps writing (as far as the server reads) and never reads.
        writers.push(tokio::spawn(async move {
            let _ = stream.write_all(burst.as_bytes()).await;
            stream
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answer =
        tokio::time::timeout(Duration::from_secs(10), reqwest::Client::new().get(server.url("/api/health")).send())
            .await
            .expect("a slot frees once the unread answers stall past the deadline")
            .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    for writer in writers {
        writer.abort();
    }
}

#[tokio::test]
async fn a_refusal_does_not_echo_the_request() {
    let server = TestServer::start().await;
    let address = server.base.trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(&address).await.unwrap();
    let host = format!("evil{}.example", "a".repeat(60_000));
    stream.write_all(format!("GET /api/health HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("a refused connection is closed")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 403"), "{}", &answer[..answer.len().min(200)]);
    assert!(answer.len() < 4000, "the answer is {} bytes", answer.len());
    assert!(!answer.contains("aaaaaaaaaa"));
}

#[tokio::test]
async fn pages_of_other_sites_cannot_start_exports_health_checks_or_thumbnails() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 2, 2, 1, 8);
    let server = TestServer::start_with(data, |_| {}, None).await;
    let client = reqwest::Client::new();
    let routes = [
        "/api/datasets/colors/health",
        "/api/datasets/colors/image?path=train/black/0000.png",
        "/api/runs/1/export?format=onnx",
        "/api/runs/1/checkpoint",
    ];
    for route in routes {
        for site in ["cross-site", "same-site"] {
            let refused = client.get(server.url(route)).header("sec-fetch-site", site).send().await.unwrap();
            let sentence = error_of(refused, StatusCode::FORBIDDEN).await;
            assert!(sentence.contains("other sites"), "{route} from {site}: {sentence}");
        }
        let foreign = client.get(server.url(route)).header("origin", "http://evil.example").send().await.unwrap();
        assert_eq!(foreign.status(), StatusCode::FORBIDDEN, "{route} with a foreign Origin");
    }
    for site in [Some("same-origin"), Some("none"), None] {
        let mut request = client.get(server.url(routes[1]));
        if let Some(site) = site {
            request = request.header("sec-fetch-site", site);
        }
        let thumbnail = request.send().await.unwrap();
        assert_eq!(thumbnail.status(), StatusCode::OK, "{site:?}");
    }
}

#[tokio::test]
async fn a_full_disk_while_saving_a_version_is_a_507_that_leaves_nothing() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 2, 2, 1, 8);
    let fault = [(backend::fault::FAULT_VARIABLE, "version-manifest@1=enospc")];
    let server = common::process::ServerProcess::start_with(data.path(), &[], &fault);
    let client = reqwest::Client::new();
    let edits = serde_json::json!({"exclude": ["train/black/0000.png"]});
    let full = client.post(server.url("/api/datasets/colors/versions")).json(&edits).send().await.unwrap();
    let sentence = error_of(full, StatusCode::INSUFFICIENT_STORAGE).await;
    assert!(sentence.contains("disk is full"), "{sentence}");
    let versions = data.path().join(".versions/colors");
    let left: Vec<String> = std::fs::read_dir(&versions)
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "nothing staged is left: {left:?}");
    let retried = client.post(server.url("/api/datasets/colors/versions")).json(&edits).send().await.unwrap();
    assert_eq!(retried.status(), StatusCode::CREATED, "the next save, with room, works");
}

/// The server on a runtime of its own (as in the binary: one worker per core), the clients on another, so
/// what is timed is the server, not the test's own work of reading 200 snapshots.
#[test]
fn two_hundred_clients_joining_at_once_do_not_stall_other_calls() {
    use backend::studio::store::Store;
    let data = tempfile::tempdir().unwrap();
    {
        let store = Store::open(&data.path().join(backend::studio::DATABASE_FILE)).unwrap();
        let config = shared::TrainConfig::for_dataset("colors");
        store
            .in_transaction(|store| {
                for _ in 0..5000 {
                    let run = store.create_run(&config, 1_795_000_000)?;
                    for epoch in 1..=3 {
                        store.add_epoch(run.id, &common::epoch_metrics(epoch))?;
                    }
                    store.set_status(run.id, shared::RunStatus::Completed, None)?;
                }
                Ok(())
            })
            .unwrap();
    }
    let server_runtime = tokio::runtime::Runtime::new().unwrap();
    let server = server_runtime.block_on(TestServer::start_with(data, |_| {}, None));
    let clients = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (median, slowest) = clients.block_on(join_while_timing(&server));
    println!("GET /api/runs/4000 while 200 clients joined: median {median:?}, slowest {slowest:?}");
    assert!(median < Duration::from_millis(100), "median {median:?}");
    drop(server);
}

/// Connects 200 WebSocket clients at once, each reading its snapshot, while twenty calls spread over the
/// first second of the joining are each timed; returns their median and slowest.
async fn join_while_timing(server: &TestServer) -> (Duration, Duration) {
    use futures::StreamExt;
    let joining: Vec<_> = (0..200)
        .map(|_| {
            let ws = server.ws_url();
            tokio::spawn(async move {
                let (mut socket, _) = tokio_tungstenite::connect_async(ws).await.unwrap();
                let snapshot = socket.next().await.expect("a snapshot").unwrap();
                assert!(snapshot.len() > 1_000_000, "the snapshot holds 5,000 runs");
                socket
            })
        })
        .collect();
    let calls: Vec<_> = (0..20u64)
        .map(|i| {
            let url = server.url("/api/runs/4000");
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50 * i)).await;
                let started = Instant::now();
                let run = reqwest::get(url).await.unwrap();
                assert_eq!(run.status(), StatusCode::OK);
                started.elapsed()
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for call in calls {
        latencies.push(call.await.unwrap());
    }
    for joined in joining {
        joined.await.unwrap();
    }
    latencies.sort();
    (latencies[latencies.len() / 2], latencies[latencies.len() - 1])
}
