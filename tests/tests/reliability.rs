//! Reliability: the real server binary killed with SIGKILL mid-run keeps its history and resumes the
//! run; many live clients plus a stream of classifications during training all get what they should.

mod common;

use common::process::ServerProcess;
use common::{next_server_message, png_bytes, write_color_dataset, TestServer, COLOR_CLASSES};
use reqwest::StatusCode;
use serde_json::json;
use shared::{Run, RunCreated, RunStatus, ServerMessage};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

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
    let before = server.wait_for_run(id, Duration::from_secs(120), |run| !run.epochs.is_empty()).await;
    assert_eq!(before.status, RunStatus::Running);
    server.kill_hard();

    let server = ServerProcess::start(data.path());
    let after = server.run(id).await;
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
    let finished = server.wait_for_run(id, Duration::from_secs(300), |run| run.status.is_finished()).await;
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
        client
            .post(server.url("/api/runs"))
            .json(&json!({"dataset": "colors", "epochs": epochs, "batch_size": 8}))
            .send()
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
                        ServerMessage::EpochCompleted { run_id, metrics } if run_id == second => {
                            seen.push(metrics.epoch)
                        }
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
    use backend::engine::training::{train, RunControl, TrainOutcome, TrainingEvent};
    use backend::studio::{DATABASE_FILE, RUNS_FOLDER};

    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 2, 6, 2, 16);
    let config = shared::TrainConfig { epochs: 3, batch_size: 4, ..shared::TrainConfig::for_dataset("colors") };
    // The state such a crash leaves: the run marked running, epoch 1 recorded, epoch 2 checkpointed only.
    let store = backend::studio::store::Store::open(&data.path().join(DATABASE_FILE)).unwrap();
    let id = store.create_run(&config, 0).unwrap().id;
    store.set_status(id, RunStatus::Running, None).unwrap();
    let paths = common::offline_training_paths(data.path(), data.path().join(RUNS_FOLDER).join(id.to_string()));
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

/// Starts a run of `config` on `server` and returns its id.
async fn create_run(server: &ServerProcess, config: serde_json::Value) -> u64 {
    let response = reqwest::Client::new().post(server.url("/api/runs")).json(&config).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED, "{}", response.text().await.unwrap());
    response.json::<RunCreated>().await.unwrap().id
}

async fn post(server: &ServerProcess, path: &str) -> reqwest::Response {
    reqwest::Client::new().post(server.url(path)).json(&json!({})).send().await.unwrap()
}

/// An epoch's metrics without its duration, which no two runs share.
fn without_time(mut metrics: shared::EpochMetrics) -> shared::EpochMetrics {
    metrics.seconds = 0.0;
    metrics
}

/// Regression: start-up held the history's lock across the loop that re-queues queued runs and took it
/// again inside, so a server restarted with a queued run never listened. Stopping a queued run only set
/// an in-memory flag, so it stayed `queued` and came back at the next start.
#[tokio::test]
async fn a_restart_with_queued_runs_serves_starts_them_and_keeps_a_stopped_one_stopped() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 2, 48, 4, 32);
    let server = ServerProcess::start(data.path());
    let long = create_run(&server, json!({"dataset": "colors", "epochs": 50, "batch_size": 4})).await;
    let queued = create_run(&server, json!({"dataset": "colors", "epochs": 1, "batch_size": 8})).await;
    let cancelled = create_run(&server, json!({"dataset": "colors", "epochs": 1, "batch_size": 8})).await;
    server.wait_for_run(long, Duration::from_secs(120), |run| run.status == RunStatus::Running).await;

    let stop = post(&server, &format!("/api/runs/{cancelled}/stop")).await;
    assert_eq!(stop.status(), StatusCode::OK);
    assert_eq!(stop.json::<Run>().await.unwrap().status, RunStatus::Stopped, "a queued run stops at once");
    assert_eq!(server.run(queued).await.status, RunStatus::Queued);
    server.kill_hard();

    let server = ServerProcess::start(data.path());
    assert_eq!(server.run(long).await.status, RunStatus::Interrupted);
    assert_eq!(server.run(cancelled).await.status, RunStatus::Stopped, "the stop survived the restart");
    let finished = server.wait_for_run(queued, Duration::from_secs(300), |run| run.status.is_finished()).await;
    assert_eq!(finished.status, RunStatus::Completed, "the queued run started after the restart: {finished:?}");
    assert_eq!(server.run(cancelled).await.status, RunStatus::Stopped, "and the stopped one never ran");
}

/// The run a crash-exactness test kills over and over: 10 epochs of 6 batches, a checkpoint at every batch.
fn crash_test_config() -> serde_json::Value {
    json!({"dataset": "colors", "epochs": 10, "batch_size": 4, "seed": 11, "random_crop": true, "horizontal_flip": true})
}

/// The fault plan of life `life` of the crash test: each commit step in turn (the second time it is
/// reached, so every life first commits once and moves the run on), and every fourth life an ordinary
/// SIGKILL from outside at a moment of its own (`None`).
fn fault_plan(life: usize) -> Option<String> {
    use backend::engine::run_dir::COMMIT_STEPS;
    if life % 4 == 3 {
        return None;
    }
    let step = COMMIT_STEPS[(life - life / 4) % COMMIT_STEPS.len()];
    Some(if ["write-best", "write-metadata", "write-predictions"].contains(&step) {
        // Reached only when an epoch improves on the best: kill there, or at the seventh commit (one epoch
        // on) if none does.
        format!("{step}@1=kill,write-last@7=kill")
    } else {
        format!("{step}@2=kill")
    })
}

/// Crash-exact for real: the binary is killed more than 20 times across one run, between every pair of
/// checkpoint writes (fault injection) and at moments of the test's choosing (SIGKILL), resumed after
/// each, and ends with metrics bit-identical to the same run trained without a break.
#[tokio::test]
async fn a_run_killed_at_any_moment_of_its_checkpoints_resumes_bit_identically() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 2, 12, 3, 16);
    let server = ServerProcess::start(data.path());
    let reference = create_run(&server, crash_test_config()).await;
    let reference = server.wait_for_run(reference, Duration::from_secs(600), |run| run.status.is_finished()).await;
    assert_eq!(reference.status, RunStatus::Completed, "{reference:?}");
    server.kill_hard();

    let mut run_id = None;
    let mut killed_at: Vec<String> = Vec::new();
    for life in 0.. {
        assert!(life < 80, "the run did not finish after {life} lives: {killed_at:?}");
        let plan = fault_plan(life);
        let env: Vec<(&str, &str)> = plan.iter().map(|p| (backend::fault::FAULT_VARIABLE, p.as_str())).collect();
        let mut server = ServerProcess::start_with(data.path(), &["--checkpoint-interval", "0"], &env);
        let id = match run_id {
            None => *run_id.insert(create_run(&server, crash_test_config()).await),
            Some(id) => {
                let run = server.run(id).await;
                if run.status == RunStatus::Completed {
                    break;
                }
                assert_eq!(run.status, RunStatus::Interrupted, "life {life}: {run:?}");
                let resumed = post(&server, &format!("/api/runs/{id}/resume")).await;
                assert_eq!(resumed.status(), StatusCode::OK, "{}", resumed.text().await.unwrap());
                id
            }
        };
        match plan {
            Some(plan) => match server.wait_for_exit(Duration::from_secs(120)) {
                Some(_) => {
                    let point = server.fault_killed_at.lock().unwrap().clone();
                    killed_at.push(point.unwrap_or_else(|| panic!("life {life} ({plan}) died without its fault")));
                }
                None => {
                    // The planned point never came: the run went on to its end.
                    let run = server.run(id).await;
                    assert_eq!(run.status, RunStatus::Completed, "life {life} ({plan}) neither died nor finished");
                    break;
                }
            },
            None => {
                tokio::time::sleep(Duration::from_millis(300 + 400 * (life as u64 % 3))).await;
                killed_at.push(format!("SIGKILL after {} epochs", server.run(id).await.epochs.len()));
                server.kill_hard();
            }
        }
    }
    println!("killed {} times: {killed_at:?}", killed_at.len());
    assert!(killed_at.len() >= 20, "only {} kills before the run finished", killed_at.len());
    for step in backend::engine::run_dir::COMMIT_STEPS {
        assert!(killed_at.iter().any(|k| k == step), "never killed at {step}");
    }
    let server = ServerProcess::start(data.path());
    let crashed = server.run(run_id.unwrap()).await;
    assert_eq!(crashed.status, RunStatus::Completed);
    let metrics = |run: Run| run.epochs.into_iter().map(without_time).collect::<Vec<_>>();
    assert_eq!(metrics(crashed), metrics(reference), "bit-identical to the run that was never killed");
    let run_dir = data.path().join("runs").join(run_id.unwrap().to_string());
    let mut files: Vec<String> =
        std::fs::read_dir(run_dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    assert_eq!(files.len(), 7, "one checkpoint generation, the best model and the receipt, no leftovers: {files:?}");
}

/// Ctrl-C (SIGINT) and SIGTERM: the run in training checkpoints and ends `stopped`, the process exits 0,
/// and the run resumes at the next start.
#[tokio::test]
async fn sigint_and_sigterm_stop_the_run_at_a_checkpoint_and_exit_cleanly() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 2, 48, 4, 32);
    let mut id = None;
    for signal in ["TERM", "INT"] {
        let server = ServerProcess::start(data.path());
        let run = match id {
            None => *id.insert(create_run(&server, json!({"dataset": "colors", "epochs": 40, "batch_size": 4})).await),
            Some(id) => {
                assert_eq!(post(&server, &format!("/api/runs/{id}/resume")).await.status(), StatusCode::OK);
                id
            }
        };
        server.wait_for_run(run, Duration::from_secs(120), |run| run.status == RunStatus::Running).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let status = server.signal_and_wait(signal);
        assert!(status.success(), "SIG{signal}: the server exits 0, not {status:?}");
        let server = ServerProcess::start(data.path());
        let stopped = server.run(run).await;
        assert_eq!(stopped.status, RunStatus::Stopped, "SIG{signal} stopped the run; it was not cut off: {stopped:?}");
        let progress =
            backend::engine::run_dir::RunDir::new(data.path().join("runs").join(run.to_string())).saved_progress();
        assert!(progress.is_some(), "SIG{signal}: a checkpoint to resume from");
        server.kill_hard();
    }
}

/// Unmounts a file system when dropped.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A disk that fills up during a checkpoint: the run fails with a sentence and is recorded so, its
/// partial files are gone, the server keeps serving, and the next start works. The data folder is a
/// 100 MiB tmpfs (a ResNet-18 checkpoint needs about 135 MB); where mounting is not allowed, the write
/// fails through the fault-injection seam instead.
#[tokio::test]
async fn a_full_disk_fails_the_run_with_a_sentence_and_the_server_keeps_serving() {
    let folder = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=100m", "tmpfs"])
        .arg(folder.path())
        .status()
        .is_ok_and(|s| s.success());
    let _unmount = mounted.then(|| Mount(folder.path().to_path_buf()));
    let env: &[(&str, &str)] = if mounted {
        &[]
    } else {
        println!("cannot mount a tmpfs here: the full disk is simulated by fault injection");
        &[(backend::fault::FAULT_VARIABLE, "write-best@1=enospc")]
    };
    write_color_dataset(folder.path(), "colors", 2, 4, 2, 16);
    let server = ServerProcess::start_with(folder.path(), &[], env);
    let id = create_run(&server, json!({"dataset": "colors", "epochs": 2, "batch_size": 4})).await;
    let failed = server.wait_for_run(id, Duration::from_secs(120), |run| run.status.is_finished()).await;
    assert_eq!(failed.status, RunStatus::Failed, "{failed:?}");
    let error = failed.error.unwrap_or_default();
    assert!(error.contains("disk is full") && error.contains("resume"), "a sentence saying what to do: {error}");
    assert!(!error.contains(&*folder.path().to_string_lossy()), "no server path in the sentence: {error}");
    // The receipt, written when training started, stays: it is the run's record, not a checkpoint.
    let left: Vec<_> = std::fs::read_dir(folder.path().join("runs").join(id.to_string()))
        .map(|entries| entries.map(|e| e.unwrap().file_name()).filter(|name| name != "receipt.json").collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "the partial checkpoint is removed: {left:?}");
    assert_eq!(reqwest::get(server.url("/api/health")).await.unwrap().status(), StatusCode::OK);
    assert_eq!(reqwest::get(server.url("/api/runs")).await.unwrap().status(), StatusCode::OK);
    server.kill_hard();
    let server = ServerProcess::start(folder.path());
    assert_eq!(server.run(id).await.status, RunStatus::Failed, "the next start works and keeps the record");
}

/// Regression: a resume checked the status and set it under two locks, so two requests at once could
/// both queue the run. Now one conditional update decides: exactly one wins. This end-to-end check
/// could miss the window; the studio's unit test
/// `a_resume_landing_between_another_resumes_check_and_commit_is_refused` lands a resume in it every time.
#[tokio::test]
async fn of_many_resumes_at_once_exactly_one_wins() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 2, 24, 2, 16);
    let server = TestServer::start_with(data, |_| {}, None).await;
    let config = json!({"dataset": "colors", "epochs": 3, "batch_size": 4});
    let id = server.create_run(config).await;
    server.wait_for_run(id, Duration::from_secs(120), |run| !run.epochs.is_empty()).await;
    server.studio.stop_run(id).unwrap();
    let stopped = server.wait_until_finished(id).await;
    assert_eq!(stopped.status, RunStatus::Stopped);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
    let resumes: Vec<_> = (0..8)
        .map(|_| {
            let (studio, barrier) = (server.studio.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                studio.resume_run(id).is_ok()
            })
        })
        .collect();
    let won = resumes.into_iter().map(|r| r.join().unwrap()).filter(|won| *won).count();
    assert_eq!(won, 1, "exactly one of eight simultaneous resumes queues the run");
    let finished = server.wait_until_finished(id).await;
    assert_eq!(finished.status, RunStatus::Completed);
    assert_eq!(finished.epochs.iter().map(|e| e.epoch).collect::<Vec<_>>(), [1, 2, 3], "trained once");
}

/// The epochs run `id`'s committed checkpoint in `data_dir` holds.
fn checkpointed_epochs(data_dir: &Path, id: u64) -> Vec<shared::EpochMetrics> {
    let run_dir = backend::engine::run_dir::RunDir::new(data_dir.join("runs").join(id.to_string()));
    run_dir.saved_progress().expect("the run has a checkpoint").epochs
}

/// A full disk that refuses the history's records of finished epochs while the checkpoint had room
/// (the history's write fails as SQLite's does on a full disk, through the fault-injection seam):
/// epoch 1's record fails, and so does the first try to record epoch 2. Once the disk takes writes
/// again, each missing epoch is recorded from the checkpoint (at the next epoch, and at the run's end),
/// so the run's history holds every epoch with the metrics its checkpoint holds.
#[tokio::test]
async fn epochs_a_full_disk_kept_out_of_the_history_are_recorded_from_the_checkpoint() {
    let folder = tempfile::tempdir().unwrap();
    write_color_dataset(folder.path(), "colors", 2, 4, 2, 16);
    let faults = [(backend::fault::FAULT_VARIABLE, "record-epoch@1=enospc,record-epoch@3=enospc")];
    let server = ServerProcess::start_with(folder.path(), &[], &faults);
    let id = create_run(&server, json!({"dataset": "colors", "epochs": 2, "batch_size": 4})).await;
    let run = server.wait_for_run(id, Duration::from_secs(120), |run| run.status.is_finished()).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    assert_eq!(run.epochs.iter().map(|e| e.epoch).collect::<Vec<_>>(), [1, 2], "every finished epoch");
    assert_eq!(run.epochs, checkpointed_epochs(folder.path(), id), "with the checkpoint's metrics");
}

/// A full disk refuses epoch 1's record, and the server dies (SIGKILL) as it records the missed epoch
/// after epoch 2: the next start records every epoch the checkpoint holds, not only the last.
#[tokio::test]
async fn epochs_missing_from_the_history_when_the_server_died_are_recorded_at_the_next_start() {
    let folder = tempfile::tempdir().unwrap();
    write_color_dataset(folder.path(), "colors", 2, 4, 2, 16);
    let faults = [(backend::fault::FAULT_VARIABLE, "record-epoch@1=enospc,record-epoch@2=kill")];
    let mut server = ServerProcess::start_with(folder.path(), &[], &faults);
    let id = create_run(&server, json!({"dataset": "colors", "epochs": 3, "batch_size": 4})).await;
    assert!(server.wait_for_exit(Duration::from_secs(120)).is_some(), "the fault killed the server");
    assert_eq!(server.fault_killed_at.lock().unwrap().as_deref(), Some("record-epoch"));
    let server = ServerProcess::start(folder.path());
    let run = server.run(id).await;
    assert_eq!(run.status, RunStatus::Interrupted, "{run:?}");
    let checkpointed = checkpointed_epochs(folder.path(), id);
    assert!(checkpointed.len() >= 2, "epochs 1 and 2 were checkpointed: {checkpointed:?}");
    assert_eq!(run.epochs, checkpointed, "every checkpointed epoch is in the history, with its metrics");
}

/// The files in the data folder's decoded caches folder: whole caches and partial builds.
fn decoded_files(data_dir: &Path) -> Vec<String> {
    let folder = data_dir.join(backend::data::CACHE_FOLDER);
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .map(|entries| entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.retain(|name| !name.ends_with(".lock"));
    names.sort();
    names
}

/// The decoded cache under faults, on the real binary: a disk that fills while it is written fails the
/// run with a sentence and keeps nothing of it; a server killed (SIGKILL) while it syncs leaves a partial
/// file that the next build removes; the run started again after the restart builds it whole and
/// completes; and
/// the cache can be listed and removed over HTTP.
#[tokio::test]
async fn a_decoded_cache_survives_a_full_disk_and_a_kill_while_it_is_built() {
    let folder = tempfile::tempdir().unwrap();
    write_color_dataset(folder.path(), "colors", 2, 4, 2, 16);
    // The first build's second image finds the disk full; the second build's sync dies.
    let faults = [(backend::fault::FAULT_VARIABLE, "decoded-cache-write@2=enospc,decoded-cache-sync@1=kill")];
    let mut server = ServerProcess::start_with(folder.path(), &[], &faults);
    let config = json!({"dataset": "colors", "epochs": 1, "batch_size": 4, "input_size": 32});
    let full = create_run(&server, config.clone()).await;
    let failed = server.wait_for_run(full, Duration::from_secs(120), |run| run.status.is_finished()).await;
    assert_eq!(failed.status, RunStatus::Failed, "{failed:?}");
    let error = failed.error.unwrap_or_default();
    assert!(error.contains("disk is full") && error.contains("decoded cache"), "a sentence: {error}");
    assert!(!error.contains(&*folder.path().to_string_lossy()), "no server path in the sentence: {error}");
    assert_eq!(decoded_files(folder.path()), Vec::<String>::new(), "nothing of the cache is kept");

    let killed = create_run(&server, config).await;
    assert!(server.wait_for_exit(Duration::from_secs(120)).is_some(), "the server died syncing the cache");
    let partial = decoded_files(folder.path());
    assert!(partial.len() == 1 && partial[0].ends_with(".partial"), "{partial:?}");

    // Killed while preparing its data, the run is either still queued (the restart starts it again) or
    // interrupted (resumed here), depending on how far its start had got.
    let server = ServerProcess::start(folder.path());
    if server.run(killed).await.status == RunStatus::Interrupted {
        assert_eq!(post(&server, &format!("/api/runs/{killed}/resume")).await.status(), StatusCode::OK);
    }
    let done = server.wait_for_run(killed, Duration::from_secs(120), |run| run.status.is_finished()).await;
    assert_eq!(done.status, RunStatus::Completed, "{done:?}");
    let built = decoded_files(folder.path());
    assert!(built.len() == 1 && built[0].ends_with(".records"), "one whole cache, the partial gone: {built:?}");

    let caches: Vec<shared::DecodedCacheInfo> =
        reqwest::get(server.url("/api/caches")).await.unwrap().json().await.unwrap();
    assert_eq!(caches.len(), 1);
    assert_eq!((caches[0].dataset.as_str(), caches[0].input_size, caches[0].images), ("colors", 32, 12));
    let delete = |id: String| {
        let url = server.url(&format!("/api/caches/{id}"));
        async move { reqwest::Client::new().delete(url).send().await.unwrap().status() }
    };
    assert_eq!(delete(caches[0].id.clone()).await, StatusCode::NO_CONTENT);
    assert_eq!(delete(caches[0].id.clone()).await, StatusCode::NOT_FOUND);
    assert_eq!(delete("..%2Fcolors".into()).await, StatusCode::NOT_FOUND);
    let caches: Vec<shared::DecodedCacheInfo> =
        reqwest::get(server.url("/api/caches")).await.unwrap().json().await.unwrap();
    assert!(caches.is_empty() && decoded_files(folder.path()).is_empty());
    assert!(folder.path().join("colors/train").is_dir(), "the dataset is untouched");
}

/// Regression (found by the crash test): a server killed after a run's last epoch was committed but before
/// the run was recorded as completed left it interrupted with nothing left to train, and a resume was
/// refused ("finished with every epoch"). At the next start it is completed, with every epoch and its model.
#[tokio::test]
async fn a_run_killed_after_its_last_checkpoint_is_completed_at_the_next_start() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 2, 4, 2, 16);
    let faults = [(backend::fault::FAULT_VARIABLE, "committed@2=kill")];
    let mut server = ServerProcess::start_with(data.path(), &[], &faults);
    let id = create_run(&server, json!({"dataset": "colors", "epochs": 2, "batch_size": 4})).await;
    assert!(server.wait_for_exit(Duration::from_secs(120)).is_some(), "killed after epoch 2's commit");
    let server = ServerProcess::start(data.path());
    let run = server.run(id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    assert_eq!(run.epochs, checkpointed_epochs(data.path(), id), "every epoch, from the checkpoint");
    assert_eq!(run.epochs.len(), 2);
    assert!(run.has_model && run.error.is_none(), "{run:?}");
}
