//! The Slurm executor (`serve --executor slurm`): each attempt is one batch job whose script `exec`s this
//! same binary as a [`worker`](crate::engine::worker) on the run's folder, which the data folder shares
//! with the nodes. Only Slurm's own commands are used (`sbatch`, `squeue`, `scancel`), the user's
//! `SLURM_CONF` honoured, and no job gets the studio's environment (`--export=NONE`).
//!
//! One follower thread does everything, a few times a second: it submits waiting attempts while fewer
//! than `max_jobs` are on the cluster, asks `squeue` where each job is, reads each attempt's events file
//! from where it left off, and turns all of it into the [`EngineEvent`]s a local run sends, so the studio
//! and the page cannot tell the difference except by the placement. Stop is `scancel`: the worker gets
//! SIGTERM and stops at its next batch with a checkpoint.

use super::executor::{Description, Executor};
use crate::engine::training::{RunControl, TrainOutcome, TrainingEvent};
use crate::engine::worker::{AttemptFiles, WorkerJob, WorkerOutcome};
use crate::engine::{EngineEvent, EngineEventKind, TrainJob};
use shared::Placement;
use std::collections::{HashMap, VecDeque};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// How often the follower looks at the cluster and the events files.
const POLL: Duration = Duration::from_millis(300);
/// How long after Slurm requeued a job the studio lets it start again, instead of Slurm's two-minute
/// hold. Not at once: the node revoked the job's credentials at the requeue, to the second, and refuses a
/// launch whose credential was made in that same second ("Job credential revoked"; Slurm then fails the
/// job with exit code 1). Seen under load on the test cluster.
const RELAUNCH_AFTER: Duration = Duration::from_secs(3);
/// Slurm states after which a job runs no more.
const ENDED_STATES: [&str; 10] = [
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "PREEMPTED",
    "OUT_OF_MEMORY",
    "BOOT_FAIL",
    "DEADLINE",
    "SPECIAL_EXIT",
];

/// What `serve --executor slurm` was told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlurmSettings {
    /// `--partition`.
    pub partition: String,
    /// `--account`, if any.
    pub account: Option<String>,
    /// `--gres` (e.g. `gpu:1`), if any.
    pub gres: Option<String>,
    /// `--cpus-per-task`, and the worker's libtorch threads.
    pub cpus: u32,
    /// `--time` (`HH:MM:SS`), if any.
    pub time: Option<String>,
    /// Jobs the studio keeps on the cluster at most; the rest wait in the studio's queue.
    pub max_jobs: u32,
    /// `SLURM_CONF` for Slurm's commands; `None` leaves the studio's environment to say.
    pub conf: Option<PathBuf>,
    /// The binary each job runs as its worker: this one.
    pub worker: PathBuf,
}

/// An attempt handed to Slurm.
struct Submitted {
    run_id: u64,
    attempt: u64,
    cancel: RunControl,
    job_id: String,
    files: AttemptFiles,
    /// Bytes of the events file already read.
    offset: u64,
    /// Slurm's view when last told to the studio: state, reason, node.
    told: Option<(String, String, String)>,
    /// `scancel` was sent.
    cancelling: bool,
    /// Times the job ran again after a requeue, and whether it runs now.
    restarts: u32,
    running: bool,
    /// The job ran at least once.
    ran: bool,
}

struct State {
    settings: SlurmSettings,
    events: UnboundedSender<EngineEvent>,
    waiting: VecDeque<TrainJob>,
    submitted: Vec<Submitted>,
}

/// The Slurm executor; see the module documentation.
pub struct Slurm {
    state: Arc<Mutex<State>>,
    closed: Arc<AtomicBool>,
    max_jobs: u32,
    cpus: u32,
}

impl Slurm {
    /// Starts the follower thread; events of every attempt go to `events`.
    pub fn start(settings: SlurmSettings, events: UnboundedSender<EngineEvent>) -> Self {
        let (max_jobs, cpus) = (settings.max_jobs.max(1), settings.cpus.max(1));
        let state = Arc::new(Mutex::new(State { settings, events, waiting: VecDeque::new(), submitted: Vec::new() }));
        let closed = Arc::new(AtomicBool::new(false));
        let weak = Arc::downgrade(&state);
        let follower_closed = closed.clone();
        std::thread::Builder::new()
            .name("slurm".into())
            .spawn(move || {
                while let Some(state) = weak.upgrade() {
                    let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
                    state.follow(follower_closed.load(Ordering::SeqCst));
                    drop(state);
                    std::thread::sleep(POLL);
                }
            })
            .expect("spawn the Slurm follower");
        Slurm { state, closed, max_jobs, cpus }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Executor for Slurm {
    fn describe(&self) -> Description {
        Description { kind: "slurm", slots: self.max_jobs, devices: Vec::new(), threads_per_run: self.cpus }
    }

    fn submit(&self, job: TrainJob) {
        self.state().waiting.push_back(job);
    }

    fn stop_taking_jobs(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    fn busy(&self) -> usize {
        self.state().submitted.len()
    }

    fn reattach(&self, job: TrainJob, job_id: &str) -> bool {
        let Some(files) = latest_attempt(&job.paths.run_dir) else { return false };
        self.state().submitted.push(Submitted::new(&job, job_id.to_string(), files));
        true
    }
}

/// The files of the newest attempt written in `run_dir`, if any.
fn latest_attempt(run_dir: &Path) -> Option<AttemptFiles> {
    let numbers = std::fs::read_dir(run_dir.join("worker")).ok()?.filter_map(|entry| {
        let name = entry.ok()?.file_name().into_string().ok()?;
        name.strip_prefix("attempt-")?.strip_suffix(".json")?.parse::<u64>().ok()
    });
    numbers.max().map(|attempt| AttemptFiles::of(run_dir, attempt))
}

impl State {
    /// One round: submit, cancel, read events, ask where jobs are, end what ended.
    fn follow(&mut self, closed: bool) {
        self.submit_waiting(closed);
        for attempt in &mut self.submitted {
            if attempt.cancel.is_cancelled() && !attempt.cancelling {
                attempt.cancelling = true;
                if let Err(why) = self.settings.command("scancel").arg(&attempt.job_id).output_sentence() {
                    tracing::warn!(job = attempt.job_id, "scancel failed: {why}");
                }
            }
        }
        let jobs = match self.queue() {
            Ok(jobs) => jobs,
            Err(why) => {
                tracing::warn!("squeue failed: {why}");
                return;
            }
        };
        let (events, settings) = (self.events.clone(), &self.settings);
        self.submitted.retain_mut(|attempt| !attempt.follow(jobs.get(&attempt.job_id), &events, settings));
    }

    /// Hands waiting attempts to `sbatch` while fewer than `max_jobs` are on the cluster; a stopped one
    /// ends at once, and one Slurm refuses fails with Slurm's sentence.
    fn submit_waiting(&mut self, closed: bool) {
        while self.submitted.len() < self.settings.max_jobs.max(1) as usize {
            let Some(job) = self.waiting.pop_front() else { return };
            let send = |kind| {
                let _ = self.events.send(EngineEvent { run_id: job.run_id, attempt: job.attempt, kind });
            };
            if closed {
                continue; // stays queued in the history for the next start
            }
            if job.cancel.is_cancelled() {
                send(EngineEventKind::Finished(Ok(TrainOutcome::Stopped)));
                continue;
            }
            match self.sbatch(&job) {
                Ok(submitted) => {
                    let placement = placement(&submitted.job_id, "PENDING", "", "", 0);
                    send(EngineEventKind::Placed { placement, running: false });
                    self.submitted.push(submitted);
                }
                Err(why) => send(EngineEventKind::Finished(Err(why))),
            }
        }
    }

    /// Writes the attempt's job and script into its run folder and submits it.
    fn sbatch(&self, job: &TrainJob) -> Result<Submitted, String> {
        let files = AttemptFiles::of(&job.paths.run_dir, job.attempt);
        let worker_job = WorkerJob {
            run_id: job.run_id,
            attempt: job.attempt,
            config: job.config.clone(),
            resume: job.resume,
            data_dir: job.paths.data_dir.clone(),
            weights_dir: job.paths.weights_dir.clone(),
            run_dir: job.paths.run_dir.clone(),
            threads: self.settings.cpus.max(1) as usize,
            dataset_memory: job.paths.dataset_memory,
            pause_after_epoch: job.cancel.pause_after_epoch(),
        };
        let script = files.job.with_extension("sh");
        let written = std::fs::create_dir_all(files.job.parent().unwrap_or(Path::new(".")))
            .and_then(|()| crate::files::write_atomically(&files.job, &serde_json::to_vec_pretty(&worker_job)?))
            .and_then(|()| crate::files::write_atomically(&script, self.script(&files.job).as_bytes()));
        written.map_err(|e| format!("could not write the Slurm job into the run folder: {e}"))?;
        let mut sbatch = self.settings.command("sbatch");
        // Nothing of the studio's environment but where Slurm's configuration is (for the worker's scontrol).
        let export = match self.settings.conf.clone().or_else(|| std::env::var_os("SLURM_CONF").map(PathBuf::from)) {
            Some(conf) => format!("--export=NONE,SLURM_CONF={}", conf.display()),
            None => "--export=NONE".to_string(),
        };
        sbatch.args(["--parsable", &export, "--open-mode=append", "--requeue"]);
        if self.settings.time.is_some() {
            // Warned 90 s before the limit, the worker checkpoints and asks for a requeue.
            sbatch.arg("--signal=B:USR1@90");
        }
        sbatch.arg(format!("--job-name=studio-run-{}", job.run_id));
        sbatch.arg(format!("--output={}", files.log.display()));
        sbatch.arg(format!("--partition={}", self.settings.partition));
        sbatch.arg(format!("--cpus-per-task={}", self.settings.cpus.max(1)));
        for (flag, value) in
            [("account", &self.settings.account), ("gres", &self.settings.gres), ("time", &self.settings.time)]
        {
            if let Some(value) = value {
                sbatch.arg(format!("--{flag}={value}"));
            }
        }
        let answer = sbatch.arg(&script).output_sentence().map_err(|why| format!("Slurm refused the job: {why}"))?;
        // --parsable prints "id" or "id;cluster".
        let job_id = answer.split(';').next().unwrap_or_default().trim().to_string();
        if job_id.is_empty() {
            return Err(format!("sbatch answered no job id: {answer}"));
        }
        tracing::info!(run_id = job.run_id, job_id, "submitted to Slurm");
        Ok(Submitted::new(job, job_id, files))
    }

    /// The batch script: `exec` the worker, so it receives Slurm's signals itself.
    fn script(&self, job_file: &Path) -> String {
        format!(
            "#!/bin/sh\nexec {} worker --job {}\n",
            shell_quoted(&self.settings.worker.display().to_string()),
            shell_quoted(&job_file.display().to_string())
        )
    }

    /// Every job of this user Slurm still lists, by id: (state, reason, node).
    fn queue(&self) -> Result<HashMap<String, (String, String, String)>, String> {
        let listed =
            self.settings.command("squeue").args(["-h", "-t", "all", "--me", "-o", "%i|%T|%r|%N"]).output_sentence()?;
        Ok(listed
            .lines()
            .filter_map(|line| {
                let mut parts = line.split('|').map(str::trim);
                let (id, state, reason, node) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
                Some((id.to_string(), (state.to_string(), reason.to_string(), node.to_string())))
            })
            .collect())
    }
}

impl Submitted {
    /// Attempt `job`, as Slurm's job `job_id` writing `files`, followed from the start of its events.
    fn new(job: &TrainJob, job_id: String, files: AttemptFiles) -> Self {
        Submitted {
            run_id: job.run_id,
            attempt: job.attempt,
            cancel: job.cancel.clone(),
            job_id,
            files,
            offset: 0,
            told: None,
            cancelling: false,
            restarts: 0,
            running: false,
            ran: false,
        }
    }

    /// Reports what changed of this attempt; true once it ended (and so was reported finished).
    fn follow(
        &mut self,
        job: Option<&(String, String, String)>,
        events: &UnboundedSender<EngineEvent>,
        settings: &SlurmSettings,
    ) -> bool {
        let (run_id, attempt) = (self.run_id, self.attempt);
        let send = |kind| {
            let _ = events.send(EngineEvent { run_id, attempt, kind });
        };
        if let Some(seen @ (state, reason, node)) = job {
            if self.told.as_ref() != Some(seen) {
                let running = state == "RUNNING" || state == "COMPLETING";
                if running && !self.running && self.ran {
                    self.restarts += 1;
                }
                (self.running, self.ran) = (running, self.ran || running);
                if state == "PENDING" && reason == "BeginTime" {
                    // Slurm holds a requeued job about two minutes; a few seconds are enough (see RELAUNCH_AFTER).
                    let release = format!("JobId={}", self.job_id);
                    let start = format!("StartTime=now+{}", RELAUNCH_AFTER.as_secs());
                    let released = settings.command("scontrol").args(["update", &release, &start]).output_sentence();
                    if let Err(why) = released {
                        tracing::warn!(job = self.job_id, "could not release the requeued job: {why}");
                    }
                }
                let placement = placement(&self.job_id, state, reason, node, self.restarts);
                send(EngineEventKind::Placed { placement, running });
                self.told = Some(seen.clone());
            }
        }
        // The outcome is looked for before the events are read: a worker writes its last event first.
        let outcome = std::fs::read(&self.files.outcome).ok();
        for event in self.read_events() {
            send(EngineEventKind::Training(event));
        }
        if let Some(bytes) = outcome {
            let ended = match serde_json::from_slice::<WorkerOutcome>(&bytes) {
                Ok(WorkerOutcome::Ended(outcome)) => Ok(outcome),
                Ok(WorkerOutcome::Failed(why)) => Err(why),
                Ok(WorkerOutcome::Requeued) => Err("the worker wrote a requeue as its outcome".to_string()),
                Err(e) => Err(format!("the worker's outcome file could not be read: {e}")),
            };
            send(EngineEventKind::Finished(ended));
            return true;
        }
        let state = job.map(|(state, ..)| state.as_str());
        if state.is_some_and(|state| !ENDED_STATES.contains(&state)) {
            return false;
        }
        // Gone from the queue, or ended, without an outcome.
        let state = state.unwrap_or("gone from the queue");
        send(ended_without_outcome(&self.job_id, state, self.cancelling, last_line(&self.files.log)));
        true
    }

    /// The complete lines added to the events file since the last read; a line that does not parse is
    /// skipped with a warning.
    fn read_events(&mut self) -> Vec<TrainingEvent> {
        let Ok(mut file) = std::fs::File::open(&self.files.events) else { return Vec::new() };
        let mut added = Vec::new();
        if file.seek(SeekFrom::Start(self.offset)).and_then(|_| file.read_to_end(&mut added)).is_err() {
            return Vec::new();
        }
        let Some(end) = added.iter().rposition(|&byte| byte == b'\n') else { return Vec::new() };
        self.offset += end as u64 + 1;
        added[..end]
            .split(|&byte| byte == b'\n')
            .filter_map(|line| match serde_json::from_slice(line) {
                Ok(event) => Some(event),
                Err(e) => {
                    tracing::warn!(job = self.job_id, "skipped an event line that does not parse: {e}");
                    None
                }
            })
            .collect()
    }
}

impl SlurmSettings {
    /// One of Slurm's commands, with `SLURM_CONF` when one was given.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        if let Some(conf) = &self.conf {
            command.env("SLURM_CONF", conf);
        }
        command
    }
}

/// Runs a command to its end: its standard output, or a sentence of what it said on failure.
trait OutputSentence {
    fn output_sentence(&mut self) -> Result<String, String>;
}

impl OutputSentence for Command {
    fn output_sentence(&mut self) -> Result<String, String> {
        let program = self.get_program().to_string_lossy().into_owned();
        let output = self.output().map_err(|e| format!("could not run {program}: {e}"))?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).trim().to_string());
        }
        let said = String::from_utf8_lossy(&output.stderr);
        // Slurm prefixes each line with "sbatch: error: "; the last line is the sentence.
        let sentence = said.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message");
        Err(sentence.trim_start_matches(&format!("{program}: error: ")).trim().to_string())
    }
}

/// What a job that ended in `state` without writing an outcome means for its run, given whether the
/// studio cancelled it and the last line of its log: stopped, failed, or lost (resumable).
fn ended_without_outcome(job_id: &str, state: &str, cancelling: bool, log_end: Option<String>) -> EngineEventKind {
    if cancelling {
        return EngineEventKind::Finished(Ok(TrainOutcome::Stopped));
    }
    // Slurm's own notice as the log's last line: the job was requeued, and nothing ran after it.
    let requeued = log_end.as_deref().is_some_and(|line| line.contains("DUE TO JOB REQUEUE"));
    if requeued {
        return EngineEventKind::Lost(format!(
            "Slurm job {job_id} was requeued and then ended {state} before it ran again; resume continues from \
             the last checkpoint"
        ));
    }
    if matches!(state, "FAILED" | "COMPLETED" | "OUT_OF_MEMORY" | "BOOT_FAIL") {
        let said = log_end.map(|line| format!(": {line}")).unwrap_or_default();
        return EngineEventKind::Finished(Err(format!("Slurm job {job_id} ended {state} without a result{said}")));
    }
    EngineEventKind::Lost(format!(
        "Slurm job {job_id} ended {state} without a result (cancelled outside the studio, out of time or its node \
         lost); resume continues from the last checkpoint"
    ))
}

fn placement(job_id: &str, state: &str, reason: &str, node: &str, restarts: u32) -> Placement {
    let named = |text: &str| (!text.is_empty() && text != "None" && text != "(null)").then(|| text.to_string());
    Placement::Slurm {
        job_id: job_id.to_string(),
        node: named(node),
        state: state.to_string(),
        reason: named(reason),
        restarts,
    }
}

fn last_line(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().rev().find(|line| !line.trim().is_empty()).map(|line| line.trim().chars().take(300).collect())
}

/// `text` in single quotes for `sh`.
fn shell_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_quoted_for_the_shell_whatever_they_hold() {
        assert_eq!(shell_quoted("/data/run 7"), "'/data/run 7'");
        assert_eq!(shell_quoted("it's"), r"'it'\''s'");
    }

    #[test]
    fn a_job_that_ends_without_an_outcome_is_stopped_failed_or_lost_by_what_happened() {
        let requeue = "slurmstepd-n1: error: *** JOB 1 ON n1 CANCELLED AT 2026-12-07T09:25:30 DUE TO JOB REQUEUE ***";
        let ending = |state, cancelling, line: Option<&str>| match ended_without_outcome(
            "1",
            state,
            cancelling,
            line.map(str::to_string),
        ) {
            EngineEventKind::Finished(Ok(TrainOutcome::Stopped)) => "stopped".to_string(),
            EngineEventKind::Finished(Err(why)) => format!("failed: {why}"),
            EngineEventKind::Lost(why) => format!("lost: {why}"),
            other => panic!("{other:?}"),
        };
        assert_eq!(ending("CANCELLED", true, None), "stopped");
        assert_eq!(
            ending("FAILED", false, Some("Error: boom")),
            "failed: Slurm job 1 ended FAILED without a result: Error: boom"
        );
        assert!(ending("TIMEOUT", false, None).starts_with("lost: Slurm job 1 ended TIMEOUT"));
        // Requeued, then refused by the node before the worker ran again: the run goes on from its checkpoint.
        assert!(
            ending("FAILED", false, Some(requeue)).starts_with("lost: Slurm job 1 was requeued and then ended FAILED")
        );
    }

    #[test]
    fn a_pending_job_names_its_reason_and_a_running_one_its_node() {
        let pending = placement("42", "PENDING", "Resources", "", 0);
        assert_eq!(pending.describe(), "Slurm job 42 · PENDING (Resources)");
        let running = placement("42", "RUNNING", "None", "n2", 1);
        assert_eq!(running.describe(), "Slurm job 42 · RUNNING on n2 · restarted 1x");
    }
}
