//! A run trained away from the studio's process: `transfer-studio worker --job FILE`, as a Slurm batch job
//! runs it on a node. The run folder (on a file system the studio shares) is the only channel:
//! - the studio writes the attempt's [`WorkerJob`] there;
//! - the worker appends every [`TrainingEvent`] as a JSON line to the attempt's events file, flushed at
//!   once, which the studio follows by offset;
//! - at the end it writes the attempt's [`WorkerOutcome`] whole (under a staging name, then renamed).
//!
//! SIGTERM and SIGINT (Slurm's `scancel`) stop the run as the page's Stop does: at the next batch, with a
//! checkpoint, so a resume continues exactly. SIGUSR1 (Slurm's warning before a time limit or a
//! preemption, `--signal=B:USR1@…`) does the same and then asks Slurm to requeue the job, writing no
//! outcome: the requeued job (the same id, `SLURM_RESTART_COUNT` above 0) resumes from the checkpoint.

use crate::data::download::DownloadSource;
use crate::engine::run_dir::RunDir;
use crate::engine::training::{self, RunControl, TrainOutcome, TrainingEvent, TrainingPaths};
use crate::model::pretrained::PretrainedSource;
use serde::{Deserialize, Serialize};
use shared::TrainConfig;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One attempt at a run, as the studio hands it to a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerJob {
    /// The run.
    pub run_id: u64,
    /// Which hand-over of the run this is.
    pub attempt: u64,
    /// What to train.
    pub config: TrainConfig,
    /// Continue from the run's last checkpoint.
    pub resume: bool,
    /// Folder holding the datasets.
    pub data_dir: PathBuf,
    /// Folder holding pretrained weight files.
    pub weights_dir: PathBuf,
    /// The run's folder: checkpoints, and this attempt's files.
    pub run_dir: PathBuf,
    /// libtorch's intra-op threads.
    pub threads: usize,
    /// Most bytes of decoded images the run holds in memory ([`TrainingPaths::dataset_memory`]); half the
    /// node's memory when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_memory: Option<u64>,
    /// Pause after this epoch (a sweep's rung; see [`RunControl::with_pause_after_epoch`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_after_epoch: Option<u32>,
}

/// How a worker's attempt ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerOutcome {
    /// It ran to an end: completed, early-stopped or stopped.
    Ended(TrainOutcome),
    /// It failed; the sentence says why.
    Failed(String),
    /// Warned of its end (SIGUSR1), it checkpointed and asked Slurm to requeue it; not written as an
    /// outcome, since the requeued job goes on.
    Requeued,
}

/// After a warning signal: asks Slurm to requeue this job (`scontrol requeue $SLURM_JOB_ID`), which ends
/// this run of it; the requeued one resumes from the checkpoint just written.
fn ask_for_requeue() -> Result<WorkerOutcome, WorkerError> {
    let Ok(job_id) = std::env::var("SLURM_JOB_ID") else {
        return Ok(WorkerOutcome::Requeued); // not under Slurm: nothing to requeue
    };
    match std::process::Command::new("scontrol").args(["requeue", &job_id]).output() {
        Ok(done) if done.status.success() => {}
        Ok(done) => tracing::warn!("scontrol requeue {job_id}: {}", String::from_utf8_lossy(&done.stderr)),
        Err(error) => tracing::warn!("could not run scontrol requeue {job_id}: {error}"),
    }
    Ok(WorkerOutcome::Requeued)
}

/// The files of attempt `attempt` in `run_dir`: its job, events, outcome and Slurm's log.
pub struct AttemptFiles {
    /// The [`WorkerJob`] as JSON.
    pub job: PathBuf,
    /// One [`TrainingEvent`] per line.
    pub events: PathBuf,
    /// The [`WorkerOutcome`] as JSON, once it ended.
    pub outcome: PathBuf,
    /// What the job printed.
    pub log: PathBuf,
}

impl AttemptFiles {
    /// The files of attempt `attempt` in `run_dir`'s `worker` folder.
    pub fn of(run_dir: &Path, attempt: u64) -> Self {
        let folder = run_dir.join("worker");
        AttemptFiles {
            job: folder.join(format!("attempt-{attempt}.json")),
            events: folder.join(format!("attempt-{attempt}.events.jsonl")),
            outcome: folder.join(format!("attempt-{attempt}.outcome.json")),
            log: folder.join(format!("attempt-{attempt}.log")),
        }
    }
}

/// Why a worker could not run its job at all.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The job file is missing or unreadable (the run folder is not shared with this node, say).
    #[error("could not read the job file {path}: {source}; is the data folder shared with this node?")]
    ReadJob {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The job file is not a job.
    #[error("the job file {path} is not a job: {why}")]
    BadJob {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// The events or outcome file could not be written.
    #[error("could not write the run's results in {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Runs the job in `job_file` to its end on this machine's best device, reporting through the attempt's
/// files; the outcome is also written when the training fails.
pub fn run(job_file: &Path) -> Result<WorkerOutcome, WorkerError> {
    let bytes =
        std::fs::read(job_file).map_err(|source| WorkerError::ReadJob { path: job_file.to_path_buf(), source })?;
    let job: WorkerJob = serde_json::from_slice(&bytes)
        .map_err(|e| WorkerError::BadJob { path: job_file.to_path_buf(), why: e.to_string() })?;
    tch::set_num_threads(job.threads.max(1) as i32);
    let control = RunControl::default().with_pause_after_epoch(job.pause_after_epoch);
    let requeue = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handlers = [
        (signal_hook::consts::SIGTERM, control.cancel_flag()),
        (signal_hook::consts::SIGINT, control.cancel_flag()),
        (signal_hook::consts::SIGUSR1, control.cancel_flag()),
        (signal_hook::consts::SIGUSR1, requeue.clone()),
    ];
    for (signal, flag) in handlers {
        // Raising a flag is all a handler does; the run sees it at its next batch.
        if let Err(error) = signal_hook::flag::register(signal, flag) {
            tracing::warn!("could not catch signal {signal}: {error}");
        }
    }
    let files = AttemptFiles::of(&job.run_dir, job.attempt);
    let write_error = |source| WorkerError::Write { path: files.events.clone(), source };
    let mut events = std::fs::OpenOptions::new().create(true).append(true).open(&files.events).map_err(write_error)?;
    let paths = TrainingPaths {
        data_dir: job.data_dir.clone(),
        weights_dir: job.weights_dir.clone(),
        run_dir: job.run_dir.clone(),
        cifar10: DownloadSource::cifar10(),
        imagenet: PretrainedSource::imagenet_resnet18(),
        dataset_memory: job.dataset_memory,
    };
    let mut emit = |event: TrainingEvent| {
        // A line the studio cannot read (a loss that is not a number) is skipped there; training goes on.
        if let Ok(line) = serde_json::to_string(&event) {
            let _ = writeln!(events, "{line}").and_then(|()| events.flush());
        }
    };
    let device = crate::engine::best_device();
    // A job Slurm requeued goes on from the checkpoint its first run left.
    let restarted = std::env::var("SLURM_RESTART_COUNT").is_ok_and(|count| count.trim() != "0");
    let resume = job.resume || (restarted && RunDir::new(&job.run_dir).saved_progress().is_some());
    let outcome = match training::train(&job.config, &paths, device, &control, resume, &mut emit) {
        Ok(TrainOutcome::Stopped) if requeue.load(std::sync::atomic::Ordering::SeqCst) => {
            return ask_for_requeue();
        }
        Ok(ended) => WorkerOutcome::Ended(ended),
        Err(error) => WorkerOutcome::Failed(error.to_string()),
    };
    let json = serde_json::to_vec(&outcome).expect("an outcome serialises");
    crate::files::write_atomically(&files.outcome, &json)
        .map_err(|source| WorkerError::Write { path: files.outcome.clone(), source })?;
    Ok(outcome)
}
