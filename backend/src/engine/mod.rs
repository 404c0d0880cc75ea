//! The threads that own libtorch work. Tensors are `Send` but not `Sync`, and training blocks for
//! minutes, so neither belongs on tokio's workers:
//! - one trainer thread per [`Slot`] takes [`TrainJob`]s from one shared queue, in order, each on its
//!   slot's device with its slot's thread count, and reports [`EngineEvent`]s on a channel;
//!   learning-rate sweeps ([`LrFinderJob`]) go through the same queue;
//! - one classifier thread ([`classifier`]) keeps recently used models loaded and answers
//!   [`Engine::classify`] requests through reply channels, joining waiting requests into batches.

pub mod allocator;
pub(crate) mod batches;
pub mod classifier;
pub mod inference;
pub mod lr_finder;
pub mod receipt;
pub mod run_dir;
pub mod teams;
pub mod training;
pub mod worker;

use crate::memory::MemoryBudget;
use classifier::{ClassifierQueue, ClassifyAnswer, ClassifyJob};
use inference::ClassifyError;
use lr_finder::{LrFinderError, LrFinderEvent, LrFinding};
use shared::{ExplainLayer, TrainConfig};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use tch::Device;
use tokio::sync::{mpsc::UnboundedSender, oneshot};
use training::{RunControl, TrainOutcome, TrainingEvent, TrainingPaths};

/// Scheduling priority of the trainer thread and libtorch's threads under it (0 is normal, 19 lowest):
/// training takes the CPU the web layer leaves.
const TRAINER_NICE: i32 = 10;

/// One queued training run.
pub struct TrainJob {
    /// The run's id, echoed in its events.
    pub run_id: u64,
    /// Which hand-over of the run this is, echoed in its events (see [`EngineEvent::attempt`]).
    pub attempt: u64,
    /// What to train.
    pub config: TrainConfig,
    /// Where to read and write.
    pub paths: TrainingPaths,
    /// Raised to stop the run (or skip it while queued).
    pub cancel: RunControl,
    /// Continue from the run's last checkpoint instead of starting afresh.
    pub resume: bool,
}

/// Something that happened to a run on the trainer thread.
#[derive(Debug)]
pub struct EngineEvent {
    /// The run concerned.
    pub run_id: u64,
    /// The [`TrainJob::attempt`] it comes from: a run stopped while queued and then resumed has two.
    pub attempt: u64,
    /// What happened.
    pub kind: EngineEventKind,
}

/// One trainer thread: the device it trains on and libtorch's intra-op threads it uses there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Where its runs train.
    pub device: Device,
    /// libtorch's intra-op threads for its runs (OpenMP's count is per thread, so slots do not share it).
    pub threads: usize,
}

impl Slot {
    /// `slots` slots on `device`: each its own GPU where there are several (`cuda:0`, `cuda:1`, … in
    /// turn), the CPU's `cores` divided between them otherwise; `threads` overrides the division.
    pub fn plan(device: Device, slots: usize, threads: Option<usize>, cores: usize) -> Vec<Slot> {
        let slots = slots.max(1);
        let threads = threads.unwrap_or(cores / slots).max(1);
        let gpus = match device {
            Device::Cuda(_) => tch::Cuda::device_count().max(1) as usize,
            _ => 0,
        };
        (0..slots)
            .map(|slot| Slot { device: if gpus > 0 { Device::Cuda(slot % gpus) } else { device }, threads })
            .collect()
    }
}

/// The kinds of [`EngineEvent`].
#[derive(Debug)]
pub enum EngineEventKind {
    /// A slot's trainer picked the run from the queue.
    Began {
        /// The slot, from 0.
        slot: usize,
        /// Its device and threads.
        on: Slot,
    },
    /// An executor other than the engine's slots placed the attempt, or its placement changed; `running`
    /// once the attempt trains.
    Placed {
        /// Where it is.
        placement: shared::Placement,
        /// Whether it trains now.
        running: bool,
    },
    /// The training loop reported something.
    Training(TrainingEvent),
    /// The attempt vanished without an outcome (its job killed, its node lost): the sentence says how.
    Lost(String),
    /// The run ended; the error is a sentence for a person.
    Finished(Result<TrainOutcome, String>),
}

/// One learning-rate sweep for the trainer thread (see [`lr_finder`]).
pub struct LrFinderJob {
    /// The config whose model, data and optimiser are swept.
    pub config: TrainConfig,
    /// Where the data and starting weights are found (nothing is written).
    pub paths: TrainingPaths,
    /// Raised to stop the sweep (or skip it while queued).
    pub control: RunControl,
    /// Receives the sweep's events on the trainer thread.
    pub emit: Box<dyn FnMut(LrFinderEvent) + Send>,
    /// Receives the outcome, exactly once.
    pub finish: Box<dyn FnOnce(Result<LrFinding, LrFinderError>) + Send>,
}

/// What the trainer thread's queue holds.
enum TrainerJob {
    /// A training run.
    Run(TrainJob),
    /// A learning-rate sweep.
    FindLr(LrFinderJob),
}

/// Handle to the engine threads; dropping every clone lets them finish.
#[derive(Clone)]
pub struct Engine {
    slots: Arc<[Slot]>,
    trainer: mpsc::Sender<TrainerJob>,
    trainer_state: Arc<TrainerState>,
    classifier: ClassifierQueue,
}

impl Engine {
    /// Starts a trainer thread for each of `slots` (at least one) and the classifier thread (on the first
    /// slot's device); run events go to `events`.
    pub fn start(slots: &[Slot], events: UnboundedSender<EngineEvent>) -> Self {
        let slots: Arc<[Slot]> = slots.into();
        assert!(!slots.is_empty(), "an engine needs a slot: Slot::plan makes at least one");
        teams::name_rayon_threads();
        let (trainer, jobs) = mpsc::channel::<TrainerJob>();
        let jobs = Arc::new(std::sync::Mutex::new(jobs));
        let trainer_state = Arc::new(TrainerState::default());
        for (index, slot) in slots.iter().copied().enumerate() {
            let (jobs, events, state) = (jobs.clone(), events.clone(), trainer_state.clone());
            std::thread::Builder::new()
                .name(format!("trainer-{index}"))
                .spawn(move || run_trainer(index, slot, &jobs, &events, &state))
                .expect("spawn trainer thread");
        }
        let classifier = ClassifierQueue::start(slots[0].device);
        Engine { slots, trainer, trainer_state, classifier }
    }

    /// The device classification runs on, and the first slot's.
    pub fn device(&self) -> Device {
        self.slots[0].device
    }

    /// The trainer slots, in order.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// Queues a run behind those already queued.
    pub fn submit(&self, job: TrainJob) {
        // The trainer thread only ends when every sender is gone, so this cannot fail while `self` lives.
        let _ = self.trainer.send(TrainerJob::Run(job));
    }

    /// Queues a learning-rate sweep behind the runs already queued; its `finish` is called once it ends.
    pub fn find_learning_rate(&self, job: LrFinderJob) {
        if let Err(mpsc::SendError(TrainerJob::FindLr(job))) = self.trainer.send(TrainerJob::FindLr(job)) {
            (job.finish)(Err(LrFinderError::Stopped));
        }
    }

    /// From now on the trainer starts no queued run: it drops them without a word, so they stay queued
    /// in the history for the next start. The run in training goes on until it is stopped.
    pub fn stop_taking_jobs(&self) {
        self.trainer_state.closed.store(true, Ordering::SeqCst);
    }

    /// How many slots work on a run or sweep now (from taking it off the queue to reporting its end).
    pub fn busy_slots(&self) -> usize {
        self.trainer_state.busy.load(Ordering::SeqCst)
    }

    /// Classifies `images` (encoded files) in one batch with the model saved in `model_dir`; each image
    /// gets its predictions (and with `explain`, the Grad-CAM map of its top class) or why it could not be
    /// read. Answers [`ClassifyError::Busy`] at once when the classifier's queue is full
    /// ([`classifier::CLASSIFY_QUEUE`] requests, or [`classifier::CLASSIFY_QUEUE_BYTES`] of images).
    /// Each image is decoded within `budget`: one that does not fit now gets [`ImageError::Busy`].
    pub async fn classify(
        &self,
        model_dir: PathBuf,
        images: Vec<Vec<u8>>,
        explain: Option<ExplainLayer>,
        budget: MemoryBudget,
    ) -> ClassifyAnswer {
        let (reply, answer) = oneshot::channel();
        self.classifier.send(ClassifyJob { model_dir, images, explain, budget, reply })?;
        answer.await.unwrap_or(Err(ClassifyError::Stopped))
    }
}

/// Name of a device as the API reports it.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cuda(index) => format!("cuda:{index}"),
        _ => "cpu".into(),
    }
}

/// CUDA device 0 when libtorch sees one, else the CPU.
pub fn best_device() -> Device {
    if tch::Cuda::is_available() {
        Device::Cuda(0)
    } else {
        Device::Cpu
    }
}

/// What the trainer thread shares with the [`Engine`] handle.
#[derive(Default)]
struct TrainerState {
    /// Set by [`Engine::stop_taking_jobs`].
    closed: AtomicBool,
    /// Slots working on a job now.
    busy: AtomicUsize,
}

/// Lowers the calling thread's scheduling priority to `nice` (on Linux a thread's own, inherited by the
/// threads it starts, such as libtorch's workers), so that on a busy machine the web layer's async workers
/// answer at once while heavier work takes the CPU left. On an idle machine nothing is slower.
fn lower_thread_priority(nice: i32) {
    // SAFETY: gettid and setpriority only read their integer arguments.
    let changed = unsafe {
        let thread = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, thread, nice)
    };
    if changed != 0 {
        tracing::debug!("could not lower a thread's priority: {}", std::io::Error::last_os_error());
    }
}

/// One slot's trainer: takes the next job from the shared queue whenever it is free.
fn run_trainer(
    index: usize,
    slot: Slot,
    jobs: &std::sync::Mutex<mpsc::Receiver<TrainerJob>>,
    events: &UnboundedSender<EngineEvent>,
    state: &TrainerState,
) {
    lower_thread_priority(TRAINER_NICE);
    loop {
        // The lock is held while waiting, so exactly one free slot waits on the queue and jobs start in order.
        let next = jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recv();
        let Ok(job) = next else { return };
        // Busy before looking at `closed`: a shutdown that closes the queue then sees either this run
        // as busy, or the queue closed here.
        state.busy.fetch_add(1, Ordering::SeqCst);
        let closed = state.closed.load(Ordering::SeqCst);
        // Each job on a thread of its own with the slot's OpenMP threads (runs in other slots keep theirs),
        // so its OpenMP team ends with it (see [`teams`]).
        let name = format!("trainer-{index}-job");
        match job {
            TrainerJob::Run(job) if !closed => {
                teams::on_own_team(&name, slot.threads, || train_one(index, slot, job, events))
            }
            TrainerJob::Run(_) => {}
            TrainerJob::FindLr(job) if closed => (job.finish)(Err(LrFinderError::Stopped)),
            TrainerJob::FindLr(job) => teams::on_own_team(&name, slot.threads, || find_lr_one(slot.device, job)),
        }
        state.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

fn train_one(index: usize, slot: Slot, job: TrainJob, events: &UnboundedSender<EngineEvent>) {
    let send = |kind| {
        let _ = events.send(EngineEvent { run_id: job.run_id, attempt: job.attempt, kind });
    };
    if job.cancel.is_cancelled() {
        send(EngineEventKind::Finished(Ok(TrainOutcome::Stopped)));
        return;
    }
    send(EngineEventKind::Began { slot: index, on: slot });
    let device = slot.device;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        training::train(&job.config, &job.paths, device, &job.cancel, job.resume, &mut |event| {
            send(EngineEventKind::Training(event))
        })
    }));
    let finished = match outcome {
        Ok(Ok(outcome)) => Ok(outcome),
        Ok(Err(error)) => Err(error.to_string()),
        Err(panic) => {
            tracing::error!(run_id = job.run_id, "training panicked: {}", panic_message(&panic));
            Err("training crashed on an internal error; the run can be resumed from its last checkpoint".into())
        }
    };
    send(EngineEventKind::Finished(finished));
}

fn find_lr_one(device: Device, mut job: LrFinderJob) {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        lr_finder::find_learning_rate(&job.config, &job.paths, device, &job.control, &mut job.emit)
    }));
    (job.finish)(outcome.unwrap_or_else(|panic| {
        tracing::error!("the learning-rate finder panicked: {}", panic_message(&panic));
        Err(LrFinderError::Crashed)
    }));
}

/// The message a panic carried, for the log.
fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}
