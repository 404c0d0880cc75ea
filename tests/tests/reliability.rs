//! Reliability: the real server binary killed with SIGKILL mid-run keeps its history and resumes the
//! run; many live clients plus a stream of classifications during training all get what they should.

mod common;

use common::{next_server_message, png_bytes, write_color_dataset, TestServer, COLOR_CLASSES};
use reqwest::StatusCode;
use serde_json::json;
use shared::{Run, RunCreated, RunStatus, ServerMessage};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `transfer-studio` binary as a child process on a free port.
struct ServerProcess {
    child: Child,
    base: String,
}

impl ServerProcess {
    fn start(data_dir: &Path) -> Self {
        let binary = common::workspace_root().join("target/release/transfer-studio");
        assert!(binary.is_file(), "{} is missing: run `cargo build --release -p transfer-studio`", binary.display());
        let mut child = Command::new(&binary)
            .args(["serve", "--port", "0", "--ui-dir", "/nonexistent", "--data-dir"])
            .arg(data_dir)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let started = Instant::now();
        let base = loop {
            let line = lines.next().expect("the server prints its address").unwrap();
            if let Some(at) = line.find("http://127.0.0.1:") {
                let address = line[at..].split_whitespace().next().unwrap().to_string();
                break address;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "server did not start");
        };
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        ServerProcess { child, base }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn kill_hard(mut self) {
        // SIGKILL: no chance to clean up, like a crash or a power cut of the process.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn get_run(base: &ServerProcess, id: u64) -> Run {
    reqwest::get(base.url(&format!("/api/runs/{id}"))).await.unwrap().json().await.unwrap()
}

async fn poll_run(server: &ServerProcess, id: u64, timeout: Duration, done: impl Fn(&Run) -> bool) -> Run {
    let started = Instant::now();
    loop {
        let run = get_run(server, id).await;
        if done(&run) {
            return run;
        }
        assert!(started.elapsed() < timeout, "run {id} did not get there: {run:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_server_killed_mid_run_restarts_with_its_history_and_the_run_resumes() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 2, 48, 4, 32);
    let server = ServerProcess::start(data.path());
    let response = reqwest::Client::new()
        .post(server.url("/api/runs"))
        .json(&json!({"dataset": "colors", "epochs": 5, "batch_size": 4}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let id = response.json::<RunCreated>().await.unwrap().id;
    let before = poll_run(&server, id, Duration::from_secs(120), |run| !run.epochs.is_empty()).await;
    assert_eq!(before.status, RunStatus::Running);
    server.kill_hard();

    let server = ServerProcess::start(data.path());
    let after = get_run(&server, id).await;
    assert_eq!(after.status, RunStatus::Interrupted);
    assert!(after.epochs.len() >= before.epochs.len(), "finished epochs survive");
    assert_eq!(after.epochs[..before.epochs.len()], before.epochs[..]);
    assert!(after.has_model);
    let classify = reqwest::Client::new()
        .post(server.url(&format!("/api/classify?run={id}")))
        .body(png_bytes(COLOR_CLASSES[0].1, 32, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(classify.status(), StatusCode::OK, "the checkpoint survived and classifies");

    let resume = reqwest::Client::new().post(server.url(&format!("/api/runs/{id}/resume"))).send().await.unwrap();
    assert_eq!(resume.status(), StatusCode::OK);
    let finished = poll_run(&server, id, Duration::from_secs(300), |run| run.status.is_finished()).await;
    assert_eq!(finished.status, RunStatus::Completed, "{finished:?}");
    assert_eq!(finished.epochs.iter().map(|e| e.epoch).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
}

fn resident_memory_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

#[tokio::test]
async fn fifty_live_clients_and_a_classify_stream_during_training_all_get_everything() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 3, 24, 4, 32);
    let server = TestServer::start_with(data, |_| {}, None).await;
    let client = reqwest::Client::new();
    let created = |epochs: u32| {
        client.post(server.url("/api/runs")).json(&json!({"dataset": "colors", "epochs": epochs, "batch_size": 8})).send()
    };
    let first = created(1).await.unwrap().json::<RunCreated>().await.unwrap().id;
    assert_eq!(server.wait_until_finished(first).await.status, RunStatus::Completed);
    let memory_before = resident_memory_kib();

    let ws_url = server.ws_url();
    let mut sockets = Vec::new();
    for _ in 0..50 {
        let (mut socket, _) = tokio_tungstenite::connect_async(ws_url.clone()).await.unwrap();
        assert!(matches!(next_server_message(&mut socket).await, ServerMessage::Snapshot { .. }));
        sockets.push(socket);
    }
    // One more client that never reads: it must not slow anyone down.
    let (_stalled, _) = tokio_tungstenite::connect_async(ws_url.clone()).await.unwrap();

    let epochs = 3;
    let second = created(epochs).await.unwrap().json::<RunCreated>().await.unwrap().id;
    let watchers: Vec<_> = sockets
        .into_iter()
        .map(|mut socket| {
            tokio::spawn(async move {
                let mut seen = Vec::new();
                loop {
                    match next_server_message(&mut socket).await {
                        ServerMessage::EpochCompleted { run_id, metrics } if run_id == second => seen.push(metrics.epoch),
                        ServerMessage::RunUpdated { run } if run.id == second && run.status.is_finished() => {
                            return (seen, run.status);
                        }
                        // A client that fell behind resynchronises from a snapshot.
                        ServerMessage::Snapshot { runs, .. } => {
                            if let Some(run) = runs.iter().find(|r| r.id == second) {
                                seen = run.epochs.iter().map(|e| e.epoch).collect();
                                if run.status.is_finished() {
                                    return (seen, run.status);
                                }
                            }
                        }
                        ServerMessage::Error { message } => panic!("server error: {message}"),
                        _ => {}
                    }
                }
            })
        })
        .collect();

    let mut classified = 0;
    // Memory once the run is in its steady state (data decoded, model built, first epoch done).
    let mut memory_at_first_epoch = None;
    loop {
        let run = server.studio.run(second).unwrap();
        if run.status.is_finished() {
            break;
        }
        if memory_at_first_epoch.is_none() && !run.epochs.is_empty() {
            memory_at_first_epoch = Some(resident_memory_kib());
        }
        let response = client
            .post(server.url(&format!("/api/classify?run={first}")))
            .body(png_bytes(COLOR_CLASSES[classified % 3].1, 32, classified as u64))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        classified += 1;
    }
    for watcher in watchers {
        let (seen, status) = tokio::time::timeout(Duration::from_secs(60), watcher).await.unwrap().unwrap();
        assert_eq!(status, RunStatus::Completed);
        assert_eq!(seen, (1..=epochs).collect::<Vec<_>>(), "every client saw every epoch");
    }
    assert!(classified > 0);
    let memory_after = resident_memory_kib();
    let growth_mib = memory_after.saturating_sub(memory_before) / 1024;
    let steady = memory_at_first_epoch.expect("the run finished its first epoch while classifying");
    let steady_growth_mib = memory_after.saturating_sub(steady) / 1024;
    println!(
        "classified {classified} images during training; resident memory grew {growth_mib} MiB in all, \
         {steady_growth_mib} MiB after the first epoch"
    );
    assert!(growth_mib < 512, "the run's working set stays bounded: grew {growth_mib} MiB");
    assert!(steady_growth_mib < 64, "memory is flat once the run is under way: grew {steady_growth_mib} MiB");
}

/// A server killed after writing an epoch's checkpoint but before recording the epoch in SQLite leaves
/// that epoch only on disk; the next start-up puts it into the history, and the run resumes after it.
#[tokio::test]
async fn an_epoch_checkpointed_but_not_recorded_before_a_crash_is_recovered_on_restart() {
    use backend::studio::{DATABASE_FILE, RUNS_FOLDER};
    use backend::training::{train, RunControl, TrainOutcome, TrainingEvent, TrainingPaths};

    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 2, 6, 2, 16);
    let config = shared::TrainConfig { epochs: 3, batch_size: 4, ..shared::TrainConfig::for_dataset("colors") };
    // The state such a crash leaves: the run marked running, epoch 1 recorded, epoch 2 checkpointed only.
    let store = backend::store::Store::open(&data.path().join(DATABASE_FILE)).unwrap();
    let id = store.create_run(&config, 0).unwrap().id;
    store.set_status(id, RunStatus::Running, None).unwrap();
    let paths = TrainingPaths {
        data_dir: data.path().to_path_buf(),
        weights_dir: data.path().join("weights"),
        run_dir: data.path().join(RUNS_FOLDER).join(id.to_string()),
        cifar10: backend::download::DownloadSource { url: "http://127.0.0.1:9/".into(), md5: String::new() },
    };
    let cancel = RunControl::default();
    let mut measured = Vec::new();
    let outcome = train(&config, &paths, tch::Device::Cpu, &cancel, false, &mut |event| {
        if let TrainingEvent::EpochCompleted(metrics) = event {
            if metrics.epoch == 2 {
                cancel.cancel();
            }
            measured.push(metrics);
        }
    })
    .unwrap();
    assert_eq!(outcome, TrainOutcome::Stopped);
    assert_eq!(measured.len(), 2);
    store.add_epoch(id, &measured[0]).unwrap();
    drop(store);

    let server = TestServer::start_with(data, |_| {}, None).await;
    let run: Run = reqwest::get(server.url(&format!("/api/runs/{id}"))).await.unwrap().json().await.unwrap();
    assert_eq!(run.status, RunStatus::Interrupted);
    assert_eq!(run.epochs, measured, "both epochs are in the history, as measured");
    assert!(run.has_model, "the best model on disk is offered");
    let best = if measured[1].test_accuracy > measured[0].test_accuracy { 2 } else { 1 };
    assert_eq!(run.best_checkpoint.map(|c| c.epoch), Some(best), "and recorded as the checkpoint it is");
    let resumed = reqwest::Client::new().post(server.url(&format!("/api/runs/{id}/resume"))).send().await.unwrap();
    assert_eq!(resumed.status(), StatusCode::OK, "{}", resumed.text().await.unwrap());
    let run = server.wait_until_finished(id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    assert_eq!(run.epochs.iter().map(|e| e.epoch).collect::<Vec<_>>(), [1, 2, 3]);
}
