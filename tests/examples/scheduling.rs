//! Benchmark, not a test: what scheduling adds before a run trains, locally and on Slurm, measured side
//! by side. Run it with `make bench-scheduling`; it prints, per executor, the median and the range over
//! `SCHEDULING_ROUNDS` rounds (3 unless set) of
//! - Start to running: from sending `POST /api/runs` to the first `RunUpdated` with the run running on the
//!   WebSocket, as the page learns it;
//! - Start to first batch: from the same moment to the run's first `Progress` message (the first report
//!   of trained batches, about 250 ms of training after its first batch began);
//! - events file to page, Slurm only: from a batch report appearing in the worker's events file to its
//!   `Progress` message on the WebSocket. The events lines carry no time, so this program polls the run's
//!   `worker` folder every [`EVENTS_POLL`] and notes when each report first appears: a report is seen up to
//!   one poll (and the thread's wake-up) after the worker wrote it, so the figure is low by at most that.
//!   A local run's events never pass through a file, so it has no such figure.
//!
//! Two real servers (`backend::web::serve` on `127.0.0.1:0`) train the same kind of run over a data folder
//! each: three colours, 48 training images each at 32 px, one thread, three epochs, no pretrained weights.
//! One uses the local executor, the other the Slurm executor on a private two-node cluster on this machine
//! (`common::slurm::Cluster`), whose jobs run `target/release/transfer-studio` (built by `make build`) as
//! their worker. Within a round both executors train one run each, one after the other, local first in odd
//! rounds and Slurm first in even ones; every run trains to its end, and the cluster has no job left
//! running, before the next one starts. The load average before and after is printed with the figures.
//! Without Slurm installed only the local executor is measured.

#[path = "../tests/common/mod.rs"]
mod common;

use backend::engine::training::TrainingEvent;
use backend::studio::slurm::SlurmSettings;
use backend::studio::ExecutorChoice;
use common::slurm::{self, Cluster};
use common::{write_color_dataset, TestServer};
use serde_json::json;
use shared::{RunStatus, ServerMessage};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Rounds unless `SCHEDULING_ROUNDS` says otherwise.
const DEFAULT_ROUNDS: usize = 3;
/// How often the events file of a Slurm run is looked at.
const EVENTS_POLL: Duration = Duration::from_millis(2);
/// Epochs of every run.
const EPOCHS: u32 = 3;

/// Where a run trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Executor {
    Local,
    Slurm,
}

impl Executor {
    fn name(self) -> &'static str {
        match self {
            Executor::Local => "local",
            Executor::Slurm => "Slurm",
        }
    }
}

/// What one run measured.
struct Timing {
    /// From `POST /api/runs` to the first `RunUpdated` with the run running.
    running: Duration,
    /// From `POST /api/runs` to the run's first `Progress` message.
    first_batch: Duration,
    /// For each batch report of a Slurm run, from its line in the events file to its `Progress` message.
    events_to_page: Vec<Duration>,
}

fn main() -> anyhow::Result<()> {
    let rounds = std::env::var("SCHEDULING_ROUNDS").ok().and_then(|n| n.parse().ok()).unwrap_or(DEFAULT_ROUNDS);
    let load_at_start = load_average();
    let cluster = if slurm::installed() {
        Some(Cluster::start())
    } else {
        println!("Slurm is not installed (scripts/setup.sh --test installs it): measuring the local executor only");
        None
    };
    let worker = common::workspace_root().join("target/release/transfer-studio");
    anyhow::ensure!(
        cluster.is_none() || worker.exists(),
        "{} is missing: `make build` builds the worker Slurm's jobs run",
        worker.display()
    );

    // The servers get a runtime of their own, as in the binary; the measuring client runs on this thread.
    let server_runtime = tokio::runtime::Runtime::new()?;
    let local = server_runtime.block_on(studio(None));
    let on_slurm = cluster.as_ref().map(|cluster| server_runtime.block_on(studio(Some((cluster, &worker)))));
    let client = tokio::runtime::Builder::new_current_thread().enable_all().build()?;

    let mut timings = Vec::new();
    for round in 1..=rounds {
        let order =
            if round % 2 == 1 { [Executor::Local, Executor::Slurm] } else { [Executor::Slurm, Executor::Local] };
        for executor in order {
            let (server, cluster) = match (executor, &on_slurm, &cluster) {
                (Executor::Local, _, _) => (&local, None),
                (Executor::Slurm, Some(server), Some(cluster)) => (server, Some(cluster)),
                (Executor::Slurm, _, _) => continue,
            };
            let timing = client.block_on(time_run(server, cluster.is_some()))?;
            if let Some(cluster) = cluster {
                wait_until_no_job_runs(cluster)?;
            }
            println!(
                "round {round} {:<5}  running {:.3} s  first batch {:.3} s",
                executor.name(),
                timing.running.as_secs_f64(),
                timing.first_batch.as_secs_f64()
            );
            timings.push((executor, timing));
        }
    }
    report(&timings, rounds, &load_at_start, &load_average());

    // The servers stop before the cluster they submit to.
    drop((local, on_slurm));
    drop(server_runtime);
    drop(cluster);
    Ok(())
}

/// A studio over a data folder of its own with the benchmark's dataset, training with one thread: locally,
/// or on `slurm`'s cluster with its `worker` binary.
async fn studio(slurm: Option<(&Cluster, &Path)>) -> TestServer {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 3, 48, 6, 32);
    let executor = match slurm {
        None => ExecutorChoice::Local,
        Some((cluster, worker)) => ExecutorChoice::Slurm(SlurmSettings {
            partition: "studio".to_string(),
            account: None,
            gres: None,
            cpus: 1,
            time: None,
            max_jobs: 4,
            conf: Some(cluster.conf()),
            worker: worker.to_path_buf(),
        }),
    };
    TestServer::start_with(
        data,
        move |settings| {
            settings.threads_per_run = Some(1);
            settings.executor = executor;
        },
        None,
    )
    .await
}

/// Starts one run on `server` while listening on its WebSocket, and follows it to its end. With
/// `events_file`, the run trains as a Slurm job whose events file is watched too.
async fn time_run(server: &TestServer, events_file: bool) -> anyhow::Result<Timing> {
    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_url()).await?;
    // The session subscribes before it sends the snapshot: from here on no message of the run is missed.
    let first = common::next_server_message(&mut socket).await;
    anyhow::ensure!(matches!(first, ServerMessage::Snapshot { .. }), "the socket opens with a snapshot: {first:?}");
    // Messages are timed as they arrive, also while the POST is still waiting for its answer.
    let (arrived, mut messages) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        loop {
            let message = common::next_server_message(&mut socket).await;
            if arrived.send((Instant::now(), message)).is_err() {
                break;
            }
        }
    });

    let started = Instant::now();
    let id =
        server.create_run(json!({"dataset": "colors", "epochs": EPOCHS, "batch_size": 8, "weights": "none"})).await;
    let stop_watching = Arc::new(AtomicBool::new(false));
    let watcher = events_file.then(|| {
        let folder = server.studio.run_dir(id).path().join("worker");
        let stop = stop_watching.clone();
        std::thread::spawn(move || watch_batch_reports(&folder, &stop))
    });

    let (mut running, mut first_batch, mut on_page) = (None, None, HashMap::new());
    let ended = loop {
        let Some((at, message)) = messages.recv().await else { break None };
        match message {
            ServerMessage::RunUpdated { run } if run.id == id => {
                if run.status == RunStatus::Running {
                    running.get_or_insert(at - started);
                }
                if run.status.is_finished() {
                    break Some(run);
                }
            }
            // Sent instead of the messages a lagging client missed.
            ServerMessage::Snapshot { runs, .. } => match runs.into_iter().find(|run| run.id == id) {
                Some(run) if run.status.is_finished() => break Some(run),
                Some(run) if run.status == RunStatus::Running => {
                    running.get_or_insert(at - started);
                }
                _ => {}
            },
            ServerMessage::Progress(progress) if progress.run_id == id => {
                first_batch.get_or_insert(at - started);
                on_page.insert((progress.epoch, progress.batch), at);
            }
            _ => {}
        }
    };
    reader.abort();
    stop_watching.store(true, Ordering::Relaxed);
    let in_file = watcher.map(|watcher| watcher.join().expect("the events watcher ends")).unwrap_or_default();

    let Some(run) = ended else { anyhow::bail!("the WebSocket closed before run {id} ended") };
    anyhow::ensure!(run.status == RunStatus::Completed, "run {id} did not complete: {run:?}");
    let events_to_page = in_file
        .iter()
        .filter_map(|(report, written)| Some(on_page.get(report)?.saturating_duration_since(*written)))
        .collect();
    Ok(Timing {
        running: running.ok_or_else(|| anyhow::anyhow!("run {id} was never shown running"))?,
        first_batch: first_batch.ok_or_else(|| anyhow::anyhow!("run {id} reported no batch"))?,
        events_to_page,
    })
}

/// When each batch report (epoch, batches done) first appeared in an events file in a Slurm run's `worker`
/// folder, polled every [`EVENTS_POLL`] until `stop` is raised.
fn watch_batch_reports(folder: &Path, stop: &AtomicBool) -> HashMap<(u32, u32), Instant> {
    let mut seen = HashMap::new();
    let mut read: HashMap<PathBuf, usize> = HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        let files = std::fs::read_dir(folder).into_iter().flatten().filter_map(Result::ok).map(|entry| entry.path());
        for path in files.filter(|path| path.to_string_lossy().ends_with(".events.jsonl")) {
            let done = read.get(&path).copied().unwrap_or(0);
            if std::fs::metadata(&path).map_or(true, |file| file.len() as usize <= done) {
                continue;
            }
            let at = Instant::now();
            let Ok(bytes) = std::fs::read(&path) else { continue };
            // Only whole lines: the worker may be halfway through the next one.
            let Some(end) = bytes[done..].iter().rposition(|&byte| byte == b'\n') else { continue };
            for line in bytes[done..done + end].split(|&byte| byte == b'\n') {
                if let Ok(TrainingEvent::Progress(progress)) = serde_json::from_slice(line) {
                    seen.entry((progress.epoch, progress.batch)).or_insert(at);
                }
            }
            read.insert(path, done + end + 1);
        }
        std::thread::sleep(EVENTS_POLL);
    }
    seen
}

/// Waits until `cluster` has no job running or completing, so the next run has the machine to itself.
fn wait_until_no_job_runs(cluster: &Cluster) -> anyhow::Result<()> {
    let started = Instant::now();
    while !cluster.ask("squeue", &["-h", "-t", "running,completing"]).trim().is_empty() {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(60), "a Slurm job is still running after a minute");
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` gives them.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_string())
}

fn report(timings: &[(Executor, Timing)], rounds: usize, load_at_start: &str, load_at_end: &str) {
    println!();
    println!(
        "Scheduling overhead over {rounds} rounds: 144 training images at 32 px, one thread, {EPOCHS} epochs \
         (median, min-max)"
    );
    println!("{:<9}{:<26}{:<26}events file to page", "", "Start to running", "Start to first batch");
    for executor in [Executor::Local, Executor::Slurm] {
        let runs: Vec<&Timing> =
            timings.iter().filter(|(measured, _)| *measured == executor).map(|(_, timing)| timing).collect();
        if runs.is_empty() {
            continue;
        }
        let running: Vec<Duration> = runs.iter().map(|timing| timing.running).collect();
        let first_batch: Vec<Duration> = runs.iter().map(|timing| timing.first_batch).collect();
        let events: Vec<Duration> = runs.iter().flat_map(|timing| timing.events_to_page.iter().copied()).collect();
        let events = match executor {
            Executor::Local => "none (in-process channel)".to_string(),
            Executor::Slurm => format!("{}, {} batch reports", summary(&events), events.len()),
        };
        println!("{:<9}{:<26}{:<26}{events}", executor.name(), summary(&running), summary(&first_batch));
    }
    println!("load average (1, 5, 15 min): {load_at_start} at the start, {load_at_end} at the end");
}

/// "median s (min-max)" of `values`.
fn summary(values: &[Duration]) -> String {
    let mut seconds: Vec<f64> = values.iter().map(Duration::as_secs_f64).collect();
    if seconds.is_empty() {
        return "none".to_string();
    }
    seconds.sort_by(f64::total_cmp);
    let middle = seconds.len() / 2;
    let median = if seconds.len() % 2 == 1 { seconds[middle] } else { (seconds[middle - 1] + seconds[middle]) / 2.0 };
    format!("{median:.3} s ({:.3}-{:.3})", seconds[0], seconds[seconds.len() - 1])
}
