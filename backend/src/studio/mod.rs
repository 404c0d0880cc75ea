//! The studio: the application core between the web layer and the engine. It validates and queues runs,
//! records everything in the [`Store`], and turns engine events into [`ServerMessage`]s broadcast to
//! every connected browser. It knows nothing of HTTP.

mod asha;
pub mod executor;
pub mod lifecycle;
mod lr_finder;
pub mod slurm;
pub mod store;
pub mod sweep_store;
mod sweeps;

use crate::data;
use crate::data::download::{DownloadSource, CIFAR10_NAME};
use crate::engine::inference::{ClassifyError, ImageAnswer};
use crate::engine::run_dir::RunDir;
use crate::engine::teams;
use crate::engine::training::{RunControl, TrainOutcome, TrainingEvent, TrainingPaths};
use crate::engine::{device_name, Engine, EngineEvent, EngineEventKind, Slot, TrainJob};
use crate::memory::{MemoryBudget, OverBudget};
use crate::model::pretrained::PretrainedSource;
use crate::model::weights::WeightsError;
use crate::studio::store::{Store, StoreError};
use executor::Executor;
use lifecycle::Move;
use shared::trace::LossTrace;
use shared::{
    BatchProgress, Checkpoint, ClassifyBatchResponse, ClassifyResponse, DatasetAdded, DatasetInfo, DatasetOrigin,
    ExecutorInfo, ExplainLayer, ImageClassification, Run, RunReceipt, RunStatus, ServerMessage, TestImage, TrainConfig,
    WeightsEntry,
};
use std::collections::{HashMap, HashSet};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tch::Device;
use tokio::sync::{broadcast, mpsc};

/// Live messages buffered per client before a slow one is resynchronised from a snapshot.
const EVENT_BUFFER: usize = 256;
/// File name of the run history database inside the data directory.
pub const DATABASE_FILE: &str = "studio.db";
/// Default largest dataset zip accepted over HTTP.
pub const MAX_DATASET_UPLOAD: u64 = 2 * 1024 * 1024 * 1024;
/// Folder inside the data directory holding one folder per run.
pub const RUNS_FOLDER: &str = "runs";
/// Loss traces of ended runs kept for snapshots (besides every active run's), newest ended first.
const ENDED_TRACES: usize = 4;

/// Where the studio keeps and finds things.
#[derive(Debug, Clone)]
pub struct StudioSettings {
    /// Datasets, run history and models live here.
    pub data_dir: PathBuf,
    /// Pretrained weight files are looked up here.
    pub weights_dir: PathBuf,
    /// Where `cifar10` is downloaded from when missing.
    pub cifar10: DownloadSource,
    /// The file weights `"imagenet"` stand for, and where it is downloaded from when missing.
    pub imagenet: PretrainedSource,
    /// Largest dataset zip accepted over HTTP, in bytes.
    pub max_dataset_upload: u64,
    /// Least time between two checkpoints inside one epoch (a crash loses at most this much training).
    pub checkpoint_every: Duration,
    /// Bytes that decoding images for requests and health checks, and exporting models, may hold at
    /// once (see [`crate::memory`]); past it, requests are answered 503 to be retried.
    pub memory_budget: u64,
    /// Most bytes a run's decoded images may take in memory; a dataset that takes more is streamed from
    /// its decoded cache; `None`: half the memory of the machine training it.
    pub dataset_memory: Option<u64>,
    /// Runs that train at once; 0 for one per visible GPU, or one on a CPU-only machine.
    pub slots: usize,
    /// libtorch's intra-op threads per run; `None` divides the CPU's cores between the slots.
    pub threads_per_run: Option<usize>,
    /// Where runs train: this machine's slots (the default), or Slurm jobs.
    pub executor: ExecutorChoice,
}

/// Which [`Executor`] trains runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ExecutorChoice {
    /// [`executor::Local`]: the studio's own machine.
    #[default]
    Local,
    /// [`slurm::Slurm`]: batch jobs on a cluster.
    Slurm(slurm::SlurmSettings),
}

impl StudioSettings {
    /// Settings for `data_dir`, with weights in `data_dir/weights` and the official sources of CIFAR-10 and
    /// the ImageNet weights.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        StudioSettings {
            weights_dir: data_dir.join("weights"),
            data_dir,
            cifar10: DownloadSource::cifar10(),
            imagenet: PretrainedSource::imagenet_resnet18(),
            max_dataset_upload: MAX_DATASET_UPLOAD,
            checkpoint_every: crate::engine::training::MID_EPOCH_CHECKPOINT_EVERY,
            memory_budget: crate::memory::DEFAULT_BUDGET_BYTES,
            dataset_memory: None,
            slots: 0,
            threads_per_run: None,
            executor: ExecutorChoice::Local,
        }
    }

    /// The trainer slots these settings ask for on `device`.
    pub fn slot_plan(&self, device: Device) -> Vec<Slot> {
        let slots = match (self.slots, device) {
            (0, Device::Cuda(_)) => tch::Cuda::device_count().max(1) as usize,
            (0, _) => 1,
            (asked, _) => asked,
        };
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Slot::plan(device, slots, self.threads_per_run, cores)
    }
}

/// A request the studio refused or could not carry out.
#[derive(Debug, thiserror::Error)]
pub enum StudioError {
    /// The config is malformed or breaks a rule; the sentence names the field.
    #[error("{0}")]
    InvalidConfig(String),
    /// No such run.
    #[error("run {0} does not exist")]
    RunNotFound(u64),
    /// The run already ended.
    #[error("run {id} is already {status} and cannot be stopped")]
    AlreadyFinished {
        /// The run.
        id: u64,
        /// Its status.
        status: &'static str,
    },
    /// The run cannot be resumed in its state.
    #[error("run {id} is {status}; only stopped, interrupted or failed runs with epochs left can be resumed")]
    NotResumable {
        /// The run.
        id: u64,
        /// Its status.
        status: &'static str,
    },
    /// A run name breaks the rule of [`shared::check_run_name`].
    #[error("{0}")]
    InvalidName(String),
    /// The run is queued or training, so it cannot be deleted.
    #[error("run {id} is {status}: stop the run first, then delete it")]
    StillActive {
        /// The run.
        id: u64,
        /// Its status.
        status: &'static str,
    },
    /// The run's folder could not be removed.
    #[error("run {id} was deleted from the history but its folder could not be removed: {source}")]
    RunFolder {
        /// The run.
        id: u64,
        /// The cause.
        source: std::io::Error,
    },
    /// The run is still queued or stopping from an earlier start or resume.
    #[error("run {0} is already queued or still stopping; try again in a moment")]
    StillQueued(u64),
    /// The studio is shutting down and takes no new work.
    #[error("the studio is shutting down")]
    ShuttingDown,
    /// No run has a model yet.
    #[error("no run has a trained model yet: train one first")]
    NoModelAtAll,
    /// The image could not be read.
    #[error(transparent)]
    Image(#[from] crate::data::images::ImageError),
    /// No such test image.
    #[error("run {run_id}'s dataset has no test image {index}")]
    TestImageNotFound {
        /// The run.
        run_id: u64,
        /// The index asked for.
        index: usize,
    },
    /// The run has not saved a model yet.
    #[error("run {0} has no trained model yet: wait until it finishes an epoch")]
    NoModel(u64),
    /// The run has not started training, so it has no receipt.
    #[error("run {0} has no receipt yet: it is written when the run's training starts")]
    NoReceipt(u64),
    /// An uploaded image could not be classified.
    #[error(transparent)]
    Classify(#[from] ClassifyError),
    /// The history could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A dataset could not be found or read.
    #[error(transparent)]
    Dataset(#[from] data::DataError),
    /// A dataset version could not be made.
    #[error(transparent)]
    Version(#[from] data::versions::VersionError),
    /// A dataset image could not be shown as a thumbnail.
    #[error(transparent)]
    Thumbnail(#[from] data::thumbnails::ThumbnailError),
    /// A model could not be exported.
    #[error("{0}")]
    Export(String),
    /// Something the run needs cannot be had now; the sentence says what and what to do.
    #[error("{0}")]
    Unavailable(String),
    /// The memory budget has no room for this work now: retry in a moment.
    #[error(transparent)]
    Busy(#[from] OverBudget),
    /// A run is queued or training, and the learning-rate finder shares the trainer with runs.
    #[error(
        "a run is queued or training: the learning-rate finder shares the trainer with runs, so try again once \
         it has finished (or stop it)"
    )]
    TrainerBusy,
    /// A learning-rate sweep is already running.
    #[error("the learning-rate finder is already running; wait for its curve")]
    LrFinderRunning,
    /// A stop was asked for while no learning-rate sweep was running.
    #[error("no learning-rate sweep is running")]
    NoLrFinder,
    /// A learning-rate sweep failed.
    #[error(transparent)]
    LrFinder(crate::engine::lr_finder::LrFinderError),
    /// A sweep request breaks rules; the sentences (joined by "; ") say which.
    #[error("{0}")]
    InvalidSweep(String),
    /// No such sweep.
    #[error("sweep {0} does not exist")]
    SweepNotFound(u64),
    /// No decoded cache of that id.
    #[error("there is no decoded cache {0}")]
    CacheNotFound(String),
    /// A decoded cache could not be removed.
    #[error("could not remove the decoded cache: {0}")]
    CacheRemove(std::io::Error),
    /// The sweep's status does not allow what was asked.
    #[error("sweep {id} is {status} and cannot be {what}")]
    SweepState {
        /// The sweep.
        id: u64,
        /// Its status.
        status: &'static str,
        /// What was asked: "stopped", "resumed", "deleted".
        what: &'static str,
    },
    /// The run is a trial of a sweep, so it is deleted only with the sweep's records gone.
    #[error("run {id} is trial {trial} of sweep {sweep}: delete the sweep first (its runs stay), then the run")]
    TrialRun {
        /// The run.
        id: u64,
        /// Its sweep.
        sweep: u64,
        /// Its trial.
        trial: u32,
    },
    /// The data folder could not be prepared.
    #[error("could not prepare the data folder {path}: {source}")]
    DataDir {
        /// The folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// What one ONNX export holds at its peak, for the memory budget: the model loaded twice (libtorch and
/// the verifier), the protobuf and the file's bytes, and libtorch's working memory (16 exports at once
/// peaked at 3.1 GB, about 190 MB each).
const EXPORT_MEMORY: u64 = 256 << 20;

/// Test images an ONNX export is checked on.
pub const ONNX_CHECK_IMAGES: usize = 8;

/// An ONNX file checked against the model it was written from.
pub struct VerifiedOnnx {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// The largest difference of a logit between the file and the model.
    pub difference: f64,
    /// Images both were run on.
    pub images: i64,
}

/// The model whose weights are the checkpoint `path` (described by `metadata`) as a verified ONNX file
/// (see [`crate::model::onnx`]): checked against the model on up to [`ONNX_CHECK_IMAGES`] test images of
/// its dataset in `data_dir` (random images where the dataset is gone). Blocking: libtorch work.
pub fn verified_onnx(
    path: &Path,
    metadata: &crate::model::ModelMetadata,
    data_dir: &Path,
) -> Result<VerifiedOnnx, StudioError> {
    let side = metadata.input_size;
    let config = &metadata.config;
    // The dataset is found once; each test image is then one read.
    let source = data::inspect(data_dir, &config.dataset).ok();
    let pictures: Vec<Vec<u8>> = (0..ONNX_CHECK_IMAGES)
        .map_while(|index| {
            let source = source.as_ref()?;
            data::test_image(source, config.validation_fraction, config.seed, index).ok().flatten()
        })
        .filter_map(|(bytes, _)| data::images::decode_to_chw(&bytes, side, data::images::Admission::Unmetered).ok())
        .collect();
    let images = if pictures.is_empty() {
        tch::Tensor::randn([4, 3, i64::from(side), i64::from(side)], (tch::Kind::Float, Device::Cpu))
    } else {
        let pixels = tch::Tensor::from_slice(&pictures.concat()).view([-1, 3, i64::from(side), i64::from(side)]);
        crate::model::normalize(&pixels, metadata.mean, metadata.std) // [N, 3, S, S]
    };
    let (bytes, difference) =
        crate::model::onnx::export_verified(path, metadata, &images).map_err(|e| StudioError::Export(e.to_string()))?;
    Ok(VerifiedOnnx { bytes, difference, images: images.size()[0] })
}

/// A run handed to the trainer: which attempt at it this is, and its control.
struct QueuedJob {
    /// Numbers every hand-over, so events of an attempt that was stopped while queued are told apart
    /// from those of a later resume of the same run.
    attempt: u64,
    /// Stops it, or asks for a checkpoint.
    control: RunControl,
}

/// What is happening right now, beyond what the store holds.
#[derive(Default)]
struct LiveState {
    /// The current attempt at each queued or running run.
    jobs: HashMap<u64, QueuedJob>,
    /// Attempts handed out so far.
    attempts: u64,
    /// The runs a slot is training.
    running: HashSet<u64>,
    /// The loss trace of each run training, and of the last [`ENDED_TRACES`] that ended.
    traces: HashMap<u64, LossTrace>,
    /// Runs whose traces are kept after they ended, the latest last.
    ended: std::collections::VecDeque<u64>,
    /// Set once shutdown began: nothing new is queued.
    shutting_down: bool,
    /// Stops the learning-rate sweep in flight, if one is.
    lr_finder: Option<RunControl>,
    /// Runs with a finished epoch or best model the history could not record (a full disk): their
    /// checkpoint holds it, and it is recorded from there at the next epoch or at the run's end.
    unrecorded: HashSet<u64>,
}

struct Inner {
    settings: StudioSettings,
    store: Mutex<Store>,
    /// The store's version as of the last time its lock was released, so [`Studio::history_version`]
    /// never waits on the lock (a listing waiting behind an epoch's write, say).
    history_version: AtomicU64,
    /// Classifies, and sweeps learning rates.
    engine: Engine,
    /// Trains runs.
    executor: Box<dyn Executor>,
    events: broadcast::Sender<ServerMessage>,
    live: Mutex<LiveState>,
    /// The last health check of each dataset.
    health: data::health::HealthCache,
    /// Names of the dataset uploads in progress.
    uploads: data::upload::UploadClaims,
    /// What decoding images for requests, health checks and exports may hold at once.
    memory: MemoryBudget,
    /// Whether ImageNet's weights could be downloaded when last asked: `Some(None)` yes, `Some(Some(why))`
    /// no, `None` not asked yet.
    imagenet_reachability: Mutex<Option<Option<String>>>,
    /// Held while a sweep moves on, so two trials ending at once do not both start the next.
    sweeping: Mutex<()>,
}

/// Records what a run's committed checkpoint holds but the history missed: a server killed after
/// writing an epoch's checkpoint and before recording it, or a history write refused by a full disk,
/// leaves epochs (and perhaps the news that a best model exists) only on disk. True if the history
/// changed.
fn complete_from_checkpoint(store: &Store, id: u64, run_dir: &RunDir) -> Result<bool, StoreError> {
    let Some(saved) = run_dir.saved_progress() else { return Ok(false) };
    let Some(run) = store.run(id)? else { return Ok(false) };
    let missing: Vec<_> =
        saved.epochs.iter().filter(|metrics| !run.epochs.iter().any(|known| known.epoch == metrics.epoch)).collect();
    for metrics in &missing {
        tracing::warn!(run_id = id, epoch = metrics.epoch, "recording an epoch found only in the checkpoint");
        store.add_epoch(id, metrics)?;
    }
    let weights = run_dir.best_weights();
    let on_disk = run.best_checkpoint.as_ref().map(|c| c.epoch);
    if saved.best_epoch > 0 && on_disk != Some(saved.best_epoch) {
        if let Ok(file) = std::fs::metadata(&weights) {
            let saved_at =
                file.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_secs());
            store.set_best_checkpoint(id, &Checkpoint { epoch: saved.best_epoch, bytes: file.len(), saved_at })?;
            return Ok(true);
        }
    }
    Ok(!missing.is_empty())
}

/// Brings the history in line with the run folders at start-up: runs that were training when the server
/// went down are marked interrupted (or completed, when their checkpoint leaves nothing to train: every
/// epoch, or early stopping's patience run out; the server went down between the last commit and
/// recording the end), and every run gets the epochs its checkpoint
/// holds but the history missed. Only a run that cannot be marked stops the start; an epoch that still
/// cannot be recorded stays in its checkpoint for the next start.
fn reconcile_history(store: &Store, runs_dir: &Path, jobs_outlive_the_studio: bool) -> Result<(), StoreError> {
    for run in store.runs()? {
        let run_dir = RunDir::new(runs_dir.join(run.id.to_string()));
        if run.status == RunStatus::Running && !(jobs_outlive_the_studio && slurm_job(&run).is_some()) {
            let trained = run_dir.saved_progress().is_some_and(|state| state.ends_training(&run.config));
            store.in_transaction(|store| {
                match trained {
                    true => store.apply(run.id, Move::End(RunStatus::Completed), None)?,
                    false => {
                        store.apply(run.id, Move::ServerDown, Some("the server stopped while this run was training"))?
                    }
                };
                complete_from_checkpoint(store, run.id, &run_dir)
            })?;
        } else if let Err(error) = store.in_transaction(|store| complete_from_checkpoint(store, run.id, &run_dir)) {
            tracing::warn!(run_id = run.id, "could not complete the history from the checkpoint: {error}");
        }
    }
    Ok(())
}

/// The Slurm job run `run` was last placed in, if it was.
fn slurm_job(run: &Run) -> Option<&str> {
    match &run.placement {
        Some(shared::Placement::Slurm { job_id, .. }) => Some(job_id),
        _ => None,
    }
}

/// Seconds since the Unix epoch.
fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The locked store; on release it publishes the history's version for [`Studio::history_version`]
/// (before unlocking, so a version read there is never older than the rows it names).
struct StoreGuard<'a> {
    store: MutexGuard<'a, Store>,
    published: &'a AtomicU64,
}

impl Deref for StoreGuard<'_> {
    type Target = Store;

    fn deref(&self) -> &Store {
        &self.store
    }
}

impl Drop for StoreGuard<'_> {
    fn drop(&mut self) {
        self.published.store(self.store.version(), Ordering::Release);
    }
}

/// A cheap-to-clone handle to the studio.
#[derive(Clone)]
pub struct Studio(Arc<Inner>);

impl Studio {
    /// Opens the history in `settings.data_dir`: removes what an interrupted upload or checkpoint left
    /// behind, marks runs that were running when the server last went down as interrupted (completing
    /// their history from their checkpoints), re-queues queued runs, and starts the engine on `device`.
    pub fn open(settings: StudioSettings, device: Device) -> Result<Self, StudioError> {
        for dir in [&settings.data_dir, &settings.weights_dir, &settings.data_dir.join(RUNS_FOLDER)] {
            std::fs::create_dir_all(dir).map_err(|source| StudioError::DataDir { path: dir.clone(), source })?;
        }
        remove_leftovers(&settings.data_dir, &settings.weights_dir);
        set_aside_what_blocks_the_history(&settings.data_dir)?;
        let memory = MemoryBudget::new(settings.memory_budget);
        let store = Store::open(&settings.data_dir.join(DATABASE_FILE))?;
        // A Slurm job goes on while the studio is down: its run is reattached below, not interrupted.
        let slurm = matches!(settings.executor, ExecutorChoice::Slurm(_));
        reconcile_history(&store, &settings.data_dir.join(RUNS_FOLDER), slurm)?;
        let (engine_events, engine_receiver) = mpsc::unbounded_channel();
        let engine = Engine::start(&settings.slot_plan(device), engine_events.clone());
        let executor: Box<dyn Executor> = match &settings.executor {
            ExecutorChoice::Local => Box::new(executor::Local::new(engine.clone())),
            ExecutorChoice::Slurm(slurm) => Box::new(slurm::Slurm::start(slurm.clone(), engine_events)),
        };
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let studio = Studio(Arc::new(Inner {
            settings,
            history_version: AtomicU64::new(store.version()),
            store: Mutex::new(store),
            engine,
            executor,
            events,
            live: Mutex::new(LiveState::default()),
            health: data::health::HealthCache::default(),
            uploads: data::upload::UploadClaims::default(),
            memory,
            imagenet_reachability: Mutex::new(None),
            sweeping: Mutex::new(()),
        }));
        for status in [RunStatus::Running, RunStatus::Queued] {
            let ids = studio.with_store(|store| store.ids_with_status(status))?;
            for id in ids {
                let run = studio.run(id)?;
                // A queued run with a checkpoint was queued by a resume.
                let resume = studio.run_dir(id).saved_progress().is_some();
                if !studio.reattach(&run, resume) && status == RunStatus::Queued {
                    studio.enqueue(id, run.config, resume)?;
                }
            }
        }
        if let Err(error) = studio.advance_sweeps_at_open() {
            tracing::error!("could not move the sweeps on: {error}");
        }
        studio.record_engine_events(engine_receiver);
        Ok(studio)
    }

    /// Records engine events on a thread of their own (SQLite writes block), holding only a weak handle
    /// so that dropping every `Studio` ends it.
    fn record_engine_events(&self, mut receiver: mpsc::UnboundedReceiver<EngineEvent>) {
        let weak = Arc::downgrade(&self.0);
        std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || {
                while let Some(event) = receiver.blocking_recv() {
                    let Some(inner) = weak.upgrade() else { break };
                    Studio(inner).on_engine_event(event);
                }
            })
            .expect("spawn the recorder thread");
    }

    /// The settings the studio was opened with.
    pub fn settings(&self) -> &StudioSettings {
        &self.0.settings
    }

    /// Names of the dataset uploads in progress: an upload claims its name here before its bytes are read.
    pub(crate) fn upload_claims(&self) -> &data::upload::UploadClaims {
        &self.0.uploads
    }

    /// `"cpu"` or `"cuda:0"`.
    pub fn device_name(&self) -> String {
        device_name(self.0.engine.device())
    }

    /// Runs `work` with the history locked, and lets go of the lock when it returns: the lock cannot
    /// outlive the closure, so no statement can hold it by accident while it takes it again (a temporary
    /// guard in an `if let` or `match` once deadlocked that way).
    fn with_store<T>(&self, work: impl FnOnce(&Store) -> T) -> T {
        let store = self.0.store.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let guard = StoreGuard { store, published: &self.0.history_version };
        work(&guard)
    }

    fn live(&self) -> MutexGuard<'_, LiveState> {
        self.0.live.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Subscribes to live messages. Call before reading the runs and [`Studio::progress`] for a snapshot,
    /// so nothing falls between the two.
    pub fn subscribe(&self) -> broadcast::Receiver<ServerMessage> {
        self.0.events.subscribe()
    }

    /// The loss traces a snapshot carries: every training run's and the last few ended ones', by run.
    pub fn traces(&self) -> Vec<LossTrace> {
        let live = self.live();
        let mut traces: Vec<LossTrace> = live.traces.values().cloned().collect();
        traces.sort_by_key(|trace| trace.last.run_id);
        traces
    }

    /// Where runs train, and how many wait and train now.
    pub fn executor_info(&self) -> ExecutorInfo {
        let description = self.0.executor.describe();
        let live = self.live();
        let running = live.running.len() as u32;
        ExecutorInfo {
            kind: description.kind.to_string(),
            slots: description.slots,
            devices: description.devices,
            threads_per_run: description.threads_per_run,
            queued: live.jobs.len() as u32 - running.min(live.jobs.len() as u32),
            running,
        }
    }

    fn broadcast(&self, message: ServerMessage) {
        // No receiver is not an error: nobody is watching.
        let _ = self.0.events.send(message);
    }

    /// The health check of dataset `name` (counts, sizes, unreadable images, duplicates and leaks),
    /// computed on first request and again only when its files change. Blocking: it may decode every
    /// image.
    pub fn dataset_health(&self, name: &str) -> Result<Arc<shared::DatasetHealth>, StudioError> {
        shared::check_dataset_reference(name).map_err(|why| StudioError::InvalidConfig(format!("dataset {why}")))?;
        let source = data::inspect(&self.0.settings.data_dir, name)?;
        Ok(self.0.health.check(&source, &self.0.memory)?)
    }

    /// A PNG of image `path` of dataset (or version) `name`, named as the health check names it, shrunk
    /// to fit a `side` x `side` square (see [`data::thumbnails`]). Blocking: reads and decodes the image.
    pub fn dataset_thumbnail(&self, name: &str, path: &str, side: u32) -> Result<Vec<u8>, StudioError> {
        shared::check_dataset_reference(name).map_err(|why| StudioError::InvalidConfig(format!("dataset {why}")))?;
        let source = data::inspect(&self.0.settings.data_dir, name)?;
        Ok(data::thumbnails::thumbnail(&source, path, side, &self.0.memory)?)
    }

    /// The decoded caches in the data folder, largest first.
    pub fn caches(&self) -> Vec<shared::DecodedCacheInfo> {
        data::list_caches(&self.0.settings.data_dir)
    }

    /// Removes decoded cache `id`; a run training from it reads on, and the next run builds it again.
    pub fn remove_cache(&self, id: &str) -> Result<(), StudioError> {
        match data::remove_cache(&self.0.settings.data_dir, id) {
            Ok(true) => Ok(()),
            Ok(false) => Err(StudioError::CacheNotFound(id.to_string())),
            Err(error) => Err(StudioError::CacheRemove(error)),
        }
    }

    /// The datasets under the data directory, with how and when the studio added each (if it did).
    pub fn datasets(&self) -> Vec<DatasetInfo> {
        let mut found = data::discover(&self.0.settings.data_dir);
        self.with_store(|store| {
            for info in &mut found {
                info.added = store.dataset_added(&info.name).unwrap_or_else(|error| {
                    tracing::warn!("dataset history: {error}");
                    None
                });
            }
        });
        found
    }

    /// Makes a version of dataset (or version) `name` with `edits` (see [`data::versions`]); the original
    /// files are not touched. Blocking: reads the dataset's file list (and a CIFAR dataset's labels).
    pub fn create_dataset_version(&self, name: &str, edits: &shared::DatasetEdits) -> Result<DatasetInfo, StudioError> {
        if shared::check_dataset_reference(name).is_err() {
            return Err(data::versions::VersionError::NotFound(name.to_string()).into());
        }
        Ok(data::versions::create(&self.0.settings.data_dir, name, edits, unix_now())?)
    }

    /// Keeps image `bytes` for adding to dataset `name` in a new version (see
    /// [`data::versions::add_image`]).
    pub fn add_dataset_image(&self, name: &str, bytes: &[u8]) -> Result<shared::AddedImage, StudioError> {
        if shared::check_dataset_reference(name).is_err() {
            return Err(data::versions::VersionError::NotFound(name.to_string()).into());
        }
        let path = data::versions::add_image(&self.0.settings.data_dir, name, bytes, &self.0.memory)?;
        Ok(shared::AddedImage { path })
    }

    /// Records that the studio added dataset `info` (an upload); returns it with that record.
    pub fn record_dataset(&self, mut info: DatasetInfo, origin: DatasetOrigin) -> Result<DatasetInfo, StudioError> {
        let added = DatasetAdded { origin, at: unix_now() };
        self.with_store(|store| store.add_dataset(&info.name, &added))?;
        info.added = Some(added);
        Ok(info)
    }

    /// The starting weights a run can name: ImageNet's first, then the weights folder's files by name.
    /// ImageNet's says why it cannot be used when its file is absent and its address was not reachable
    /// when last asked (`recheck` asks again; otherwise the first call asks, and the answer is kept).
    /// Blocking: the check waits up to [`crate::model::pretrained::PROBE_TIMEOUT`].
    pub fn weights(&self, recheck: bool) -> Vec<WeightsEntry> {
        let settings = &self.0.settings;
        let mut entries = crate::model::weights::entries(&settings.weights_dir, &settings.imagenet);
        if let Some(imagenet) = entries.first_mut().filter(|entry| !entry.present) {
            imagenet.unavailable = self.imagenet_unreachable(recheck);
        }
        entries
    }

    /// Why ImageNet's weights cannot be downloaded from here, or `None` when they can: asked of their
    /// address once and kept, or asked again with `recheck`.
    fn imagenet_unreachable(&self, recheck: bool) -> Option<String> {
        let mut known = self.0.imagenet_reachability.lock().unwrap_or_else(PoisonError::into_inner);
        if recheck || known.is_none() {
            let imagenet = &self.0.settings.imagenet;
            *known = Some(imagenet.downloadable().err().map(|why| imagenet.unavailable_sentence(&why)));
        }
        known.clone().flatten()
    }

    /// Refuses `config` when it starts from ImageNet's weights and they are neither here nor downloadable
    /// now (asked again), with the sentence that says what to do.
    fn check_weights_available(&self, config: &TrainConfig) -> Result<(), StudioError> {
        let settings = &self.0.settings;
        if config.weights != shared::defaults::WEIGHTS_IMAGENET
            || settings.imagenet.find(&settings.weights_dir).is_some()
        {
            return Ok(());
        }
        match self.imagenet_unreachable(true) {
            Some(why) => Err(StudioError::Unavailable(why)),
            None => Ok(()),
        }
    }

    /// Keeps the weights file received at `staged` as `name` in the weights folder if it is a ResNet-18
    /// state dict (see [`crate::model::weights::install`]); the staged file is gone either way.
    pub fn add_weights(&self, name: &str, staged: &Path) -> Result<WeightsEntry, WeightsError> {
        let settings = &self.0.settings;
        std::fs::create_dir_all(&settings.weights_dir)?;
        crate::model::weights::install(&settings.weights_dir, name, staged, &settings.imagenet)
    }

    /// Parses a JSON training config, reporting malformed JSON, wrong types and unknown fields as
    /// sentences that name the field (serde_path_to_error tracks which one failed).
    pub fn parse_config(json: &[u8]) -> Result<TrainConfig, StudioError> {
        let deserializer = &mut serde_json::Deserializer::from_slice(json);
        serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let field = e.path().to_string();
            let why = e.into_inner();
            StudioError::InvalidConfig(if field == "." {
                format!("invalid training config: {why}")
            } else {
                format!("invalid training config: {field}: {why}")
            })
        })
    }

    /// Validates `config` against the rules and the data on disk, records it as a queued run and
    /// queues it for training.
    pub fn create_run(&self, config: TrainConfig) -> Result<Run, StudioError> {
        self.check_trainable(&config)?;
        let run = self.with_store(|store| store.create_run(&config, unix_now()))?;
        self.enqueue(run.id, config, false)?;
        self.broadcast(ServerMessage::RunUpdated { run: run.clone() });
        Ok(run)
    }

    /// Checks `config` against the rules and the data on disk (a missing `cifar10` is fine: training
    /// downloads it), and that the studio still takes work.
    fn check_trainable(&self, config: &TrainConfig) -> Result<(), StudioError> {
        config.validate().map_err(|e| StudioError::InvalidConfig(e.message))?;
        if self.live().shutting_down {
            return Err(StudioError::ShuttingDown);
        }
        let settings = &self.0.settings;
        match data::inspect(&settings.data_dir, &config.dataset) {
            Ok(_) => {}
            Err(data::DataError::NotFound(_)) if config.dataset == CIFAR10_NAME => {}
            Err(error) => return Err(StudioError::InvalidConfig(error.to_string())),
        }
        // "imagenet" needs no file: training finds or downloads it (crate::model::pretrained).
        if config.weights != shared::defaults::WEIGHTS_NONE
            && config.weights != shared::defaults::WEIGHTS_IMAGENET
            && !settings.weights_dir.join(&config.weights).is_file()
        {
            return Err(StudioError::InvalidConfig(format!(
                "weights file \"{}\" is not in the weights folder",
                config.weights
            )));
        }
        Ok(())
    }

    /// Queues a stopped, interrupted or failed run to continue from its last checkpoint, as a person asks
    /// ([`Studio::queue_to_continue`]); a sweep's trial that waited at an ASHA rung is recorded as gone on by
    /// hand there.
    pub fn resume_run(&self, id: u64) -> Result<Run, StudioError> {
        let run = self.queue_to_continue(id)?;
        if let Err(error) = self.went_on_by_hand(id) {
            tracing::error!(run_id = id, "could not record the trial's resume in its sweep: {error}");
        }
        Ok(run)
    }

    /// Queues a stopped, interrupted or failed run to continue from its last checkpoint. Of two requests
    /// at once, one wins: under the live lock, one conditional update moves the status and the attempt is
    /// registered, so a resume or stop in between sees either the old run or the queued attempt.
    fn queue_to_continue(&self, id: u64) -> Result<Run, StudioError> {
        let run = self.run(id)?;
        if Move::Resume.apply(run.status).is_none() {
            return Err(StudioError::NotResumable { id, status: run.status.as_str() });
        }
        if run.epochs.len() as u32 >= run.config.epochs {
            return Err(StudioError::NotResumable { id, status: "finished with every epoch" });
        }
        if run.status == RunStatus::Failed && self.run_dir(id).saved_progress().is_none() {
            // It failed before its first checkpoint: what failed it (missing weights, say) is asked again,
            // rather than repeating the same failure.
            self.check_trainable(&run.config)?;
            self.check_weights_available(&run.config)?;
        }
        #[cfg(test)]
        tests::between_check_and_commit();
        let job = {
            let mut live = self.live();
            Self::check_enqueueable(&live, id)?;
            if !self.with_store(|store| store.apply(id, Move::Resume, None))? {
                return Err(StudioError::NotResumable { id, status: self.run(id)?.status.as_str() });
            }
            self.register_attempt(&mut live, id)
        };
        self.submit(id, job, run.config, true);
        let run = self.run(id)?;
        self.broadcast(ServerMessage::RunUpdated { run: run.clone() });
        Ok(run)
    }

    /// Hands run `run_id` to the trainer as a new attempt; refused while an attempt at it is queued or
    /// stopping, or once shutdown began.
    fn enqueue(&self, run_id: u64, config: TrainConfig, resume: bool) -> Result<(), StudioError> {
        let job = {
            let mut live = self.live();
            Self::check_enqueueable(&live, run_id)?;
            self.register_attempt(&mut live, run_id)
        };
        self.submit(run_id, job, config, resume);
        Ok(())
    }

    /// Hands the executor run `run`'s job from before the studio last stopped, if it has one to follow
    /// again (a Slurm job); true if it took it, and its events are then replayed from the start.
    fn reattach(&self, run: &Run, resume: bool) -> bool {
        let Some(job_id) = slurm_job(run) else { return false };
        let job = {
            let mut live = self.live();
            self.register_attempt(&mut live, run.id)
        };
        let paths = self.training_paths(self.run_dir(run.id).path().to_path_buf());
        let QueuedJob { attempt, control: cancel } = job;
        let train = TrainJob { run_id: run.id, attempt, config: run.config.clone(), paths, cancel, resume };
        let taken = self.0.executor.reattach(train, job_id);
        if taken {
            tracing::info!(run_id = run.id, job_id, "following the run's Slurm job again");
        } else {
            self.live().jobs.remove(&run.id);
        }
        taken
    }

    /// Refuses a new attempt at `run_id` while one is queued or stopping, or once shutdown began.
    fn check_enqueueable(live: &LiveState, run_id: u64) -> Result<(), StudioError> {
        if live.shutting_down {
            return Err(StudioError::ShuttingDown);
        }
        if live.jobs.contains_key(&run_id) {
            return Err(StudioError::StillQueued(run_id));
        }
        Ok(())
    }

    /// Numbers a new attempt at `run_id` and keeps its control, so a stop reaches it.
    fn register_attempt(&self, live: &mut LiveState, run_id: u64) -> QueuedJob {
        live.attempts += 1;
        let control = RunControl::default()
            .with_mid_epoch_checkpoints_every(self.0.settings.checkpoint_every)
            .with_pause_after_epoch(self.pause_for(run_id));
        let job = QueuedJob { attempt: live.attempts, control: control.clone() };
        live.jobs.insert(run_id, job);
        QueuedJob { attempt: live.attempts, control }
    }

    /// Gives the trainer attempt `job` at run `run_id`.
    fn submit(&self, run_id: u64, job: QueuedJob, config: TrainConfig, resume: bool) {
        let paths = self.training_paths(self.run_dir(run_id).path().to_path_buf());
        let QueuedJob { attempt, control: cancel } = job;
        self.0.executor.submit(TrainJob { run_id, attempt, config, paths, cancel, resume });
    }

    /// Where training finds its inputs, with `run_dir` for its checkpoints.
    fn training_paths(&self, run_dir: PathBuf) -> TrainingPaths {
        let settings = &self.0.settings;
        TrainingPaths {
            data_dir: settings.data_dir.clone(),
            weights_dir: settings.weights_dir.clone(),
            run_dir,
            cifar10: settings.cifar10.clone(),
            imagenet: settings.imagenet.clone(),
            dataset_memory: settings.dataset_memory,
        }
    }

    /// The folder a run's model files live in.
    pub fn run_dir(&self, run_id: u64) -> RunDir {
        RunDir::new(self.0.settings.data_dir.join(RUNS_FOLDER).join(run_id.to_string()))
    }

    /// Every run, newest first.
    pub fn runs(&self) -> Result<Vec<Run>, StudioError> {
        Ok(self.with_store(|store| store.runs())?)
    }

    /// Every run, newest first, with the history's version they were read at (see
    /// [`Studio::history_version`]), both under one lock.
    pub fn versioned_runs(&self) -> Result<(u64, Vec<Run>), StudioError> {
        Ok(self.with_store(|store| store.runs().map(|runs| (store.version(), runs)))?)
    }

    /// A number that changes whenever the history does, so a listing made at one version can be reused
    /// while it holds. It takes no lock: a write is seen once the call that made it has returned.
    pub fn history_version(&self) -> u64 {
        self.0.history_version.load(Ordering::Acquire)
    }

    /// One run.
    pub fn run(&self, id: u64) -> Result<Run, StudioError> {
        self.with_store(|store| store.run(id))?.ok_or(StudioError::RunNotFound(id))
    }

    /// Asks a queued or running run to stop. A queued run is recorded `stopped` at once; a running one
    /// stops within one batch, keeping a checkpoint of the batches done. A trial of a running sweep is
    /// held: the sweep leaves it stopped until it is resumed (the run, or the sweep after a stop).
    pub fn stop_run(&self, id: u64) -> Result<Run, StudioError> {
        if let Some(link) = self.with_store(|store| store.trial_of_run(id))? {
            self.with_store(|store| store.hold_trials(link.id, Some(link.trial), true))?;
        }
        self.stop_attempt(id)
    }

    /// Stops run `id`'s attempt as [`Studio::stop_run`] says, without holding a trial.
    fn stop_attempt(&self, id: u64) -> Result<Run, StudioError> {
        let run = self.run(id)?;
        if run.status.is_finished() {
            return Err(StudioError::AlreadyFinished { id, status: run.status.as_str() });
        }
        let mut live = self.live();
        if let Some(job) = live.jobs.get(&id) {
            job.control.cancel();
        }
        // Still queued (the trainer has not begun it): it ends here, and the trainer skips it.
        if self.with_store(|store| store.apply(id, Move::Cancel, None))? {
            live.jobs.remove(&id);
            drop(live);
            let run = self.run(id)?;
            self.broadcast(ServerMessage::RunUpdated { run: run.clone() });
            self.trial_ended(id);
            return Ok(run);
        }
        Ok(run)
    }

    /// Names run `id` (trimmed; an empty name clears it) and tells every client.
    pub fn rename_run(&self, id: u64, name: &str) -> Result<Run, StudioError> {
        let name = shared::check_run_name(name).map_err(StudioError::InvalidName)?;
        if !self.with_store(|store| store.set_name(id, name.as_deref()))? {
            return Err(StudioError::RunNotFound(id));
        }
        let run = self.run(id)?;
        self.broadcast(ServerMessage::RunUpdated { run: run.clone() });
        Ok(run)
    }

    /// Deletes run `id` from the history and removes its folder, then tells every client. A queued or
    /// running run (or one still stopping) is refused: it must be stopped first.
    pub fn delete_run(&self, id: u64) -> Result<(), StudioError> {
        const ACTIVE: [RunStatus; 2] = lifecycle::ACTIVE;
        {
            // Under the live lock no attempt at this run can be queued between the check and the delete.
            let mut live = self.live();
            let run = self.run(id)?;
            if ACTIVE.contains(&run.status) || live.jobs.contains_key(&id) {
                return Err(StudioError::StillActive { id, status: run.status.as_str() });
            }
            if let Some(link) = run.sweep {
                return Err(StudioError::TrialRun { id, sweep: link.id, trial: link.trial });
            }
            if !self.with_store(|store| store.delete_run_unless(id, &ACTIVE))? {
                let status = self.run(id).map_or("gone", |run| run.status.as_str());
                return Err(StudioError::StillActive { id, status });
            }
            live.traces.remove(&id);
            live.ended.retain(|&ended| ended != id);
        }
        // Files first, so a client that hears of the removal finds them gone; the history row is gone
        // either way, so every client hears of it.
        let removed = self.run_dir(id).remove().map_err(|source| StudioError::RunFolder { id, source });
        self.broadcast(ServerMessage::RunRemoved { run_id: id });
        removed
    }

    /// Begins shutting down: nothing new is queued or started (queued runs stay queued for the next
    /// start), and the run in training stops at its next batch with a checkpoint, ending `stopped`
    /// (resumable). Waits up to `wait` for the trainer to let go; false if it did not in time.
    pub fn shut_down(&self, wait: Duration) -> bool {
        {
            let mut live = self.live();
            live.shutting_down = true;
            if let Some(sweep) = &live.lr_finder {
                sweep.cancel();
            }
        }
        self.0.executor.stop_taking_jobs();
        let deadline = Instant::now() + wait;
        loop {
            let running: Vec<RunControl> = {
                let live = self.live();
                live.running.iter().filter_map(|id| live.jobs.get(id).map(|job| job.control.clone())).collect()
            };
            for control in &running {
                control.cancel();
            }
            if running.is_empty() && self.0.executor.busy() == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The run to classify with: `run_id`, or else the newest run with a model. Reads one row of the
    /// history, however long it is.
    fn model_run_id(&self, run_id: Option<u64>) -> Result<u64, StudioError> {
        match run_id {
            Some(id) => match self.with_store(|store| store.has_model(id))? {
                Some(true) => Ok(id),
                Some(false) => Err(StudioError::NoModel(id)),
                None => Err(StudioError::RunNotFound(id)),
            },
            None => self.with_store(|store| store.newest_with_model())?.ok_or(StudioError::NoModelAtAll),
        }
    }

    /// Classifies one image with a run's best model (or the newest run's, without `run_id`), explaining
    /// the top class with Grad-CAM at `explain` when given.
    pub async fn classify_one(
        &self,
        run_id: Option<u64>,
        image: Vec<u8>,
        explain: Option<ExplainLayer>,
    ) -> Result<ClassifyResponse, StudioError> {
        let (run_id, model_dir) = self.model_to_classify(run_id).await?;
        let budget = self.0.memory.clone();
        let mut answers = self.0.engine.classify(model_dir, vec![image], explain, budget).await?;
        let ImageAnswer { predictions, explanation } = answers.pop().expect("one answer per image")?;
        Ok(ClassifyResponse { run_id, predictions, explanation })
    }

    /// The run to classify with ([`Studio::model_run_id`]) and its model's folder. The history is read on
    /// tokio's blocking pool, so the caller's async worker goes on serving others while it waits for the
    /// history's lock; the classification itself then waits on the classifier thread's reply, not on a
    /// thread.
    async fn model_to_classify(&self, run_id: Option<u64>) -> Result<(u64, PathBuf), StudioError> {
        let studio = self.clone();
        let lookup = move || studio.model_run_id(run_id).map(|id| (id, studio.run_dir(id).path().to_path_buf()));
        match tokio::task::spawn_blocking(lookup).await {
            Ok(found) => found,
            // The web layer answers a panic in a request with a 500 sentence: let it see this one.
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => Err(StudioError::ShuttingDown),
        }
    }

    /// Classifies named images in one batch (each explained with Grad-CAM at `explain` when given);
    /// unreadable ones get an error of their own.
    pub async fn classify_batch(
        &self,
        run_id: Option<u64>,
        images: Vec<(String, Vec<u8>)>,
        explain: Option<ExplainLayer>,
    ) -> Result<ClassifyBatchResponse, StudioError> {
        let (run_id, model_dir) = self.model_to_classify(run_id).await?;
        let (names, bytes): (Vec<String>, Vec<Vec<u8>>) = images.into_iter().unzip();
        let answers = self.0.engine.classify(model_dir, bytes, explain, self.0.memory.clone()).await?;
        let results = names
            .into_iter()
            .zip(answers)
            .map(|(name, answer)| match answer {
                Ok(ImageAnswer { predictions, explanation }) => {
                    ImageClassification { name, predictions, error: None, explanation }
                }
                Err(error) => ImageClassification {
                    name,
                    predictions: Vec::new(),
                    error: Some(error.to_string()),
                    explanation: None,
                },
            })
            .collect();
        Ok(ClassifyBatchResponse { run_id, results })
    }

    /// The best model file of a run, for download.
    pub fn checkpoint_file(&self, run_id: u64) -> Result<PathBuf, StudioError> {
        let id = self.model_run_id(Some(run_id))?;
        Ok(self.run_dir(id).best_weights())
    }

    /// Run `run_id`'s receipt (what it used and where it ran) with every epoch the history recorded.
    pub fn receipt(&self, run_id: u64) -> Result<RunReceipt, StudioError> {
        let run = self.run(run_id)?;
        let mut receipt = self.run_dir(run_id).receipt().ok_or(StudioError::NoReceipt(run_id))?;
        receipt.epochs = run.epochs;
        Ok(receipt)
    }

    /// The best model's test images, highest loss first, optionally only those of one confusion cell.
    pub fn test_images(
        &self,
        run_id: u64,
        actual: Option<usize>,
        predicted: Option<usize>,
        limit: usize,
    ) -> Result<Vec<TestImage>, StudioError> {
        let id = self.model_run_id(Some(run_id))?;
        let mut samples = self.run_dir(id).test_predictions().unwrap_or_default();
        samples.retain(|s| actual.is_none_or(|a| s.actual == a) && predicted.is_none_or(|p| s.predicted == p));
        samples.sort_by(|a, b| b.loss.total_cmp(&a.loss));
        samples.truncate(limit);
        // Each image's path, so a person can exclude or relabel it in a new version of the dataset: kept
        // with the predictions since the run skipped unreadable files, else found by position (CIFAR, and
        // runs recorded before).
        if samples.iter().any(|sample| sample.path.is_none()) {
            let config = self.run(id)?.config;
            let paths = data::inspect(&self.0.settings.data_dir, &config.dataset)
                .and_then(|source| data::split_paths(&source, config.validation_fraction, config.seed));
            if let Ok((_, test_paths)) = paths {
                for sample in samples.iter_mut().filter(|sample| sample.path.is_none()) {
                    sample.path = test_paths.get(sample.index).cloned();
                }
            }
        }
        Ok(samples)
    }

    /// The picture of test image `index` of a run's dataset, with its MIME type.
    pub fn test_image(&self, run_id: u64, index: usize) -> Result<(Vec<u8>, &'static str), StudioError> {
        let run = self.run(run_id)?;
        let missing = || StudioError::TestImageNotFound { run_id, index };
        let source = data::inspect(&self.0.settings.data_dir, &run.config.dataset).map_err(|_| missing())?;
        let (fraction, seed) = (run.config.validation_fraction, run.config.seed);
        // A folder dataset's test image is found by the path the run kept for it: unreadable files the run
        // skipped shift positions.
        let kept_path = (!data::is_cifar(source.info.format))
            .then(|| self.run_dir(run_id).test_predictions())
            .flatten()
            .and_then(|samples| samples.into_iter().find(|sample| sample.index == index)?.path);
        match kept_path {
            Some(path) => data::named_test_image(&source, fraction, seed, &path),
            None => data::test_image(&source, fraction, seed, index),
        }
        .map_err(|e| StudioError::InvalidConfig(e.to_string()))?
        .ok_or_else(missing)
    }

    /// Run `run_id`'s best model as a verified ONNX file (see [`crate::model::onnx`]): checked against the
    /// model on up to [`ONNX_CHECK_IMAGES`] of the run's test images (random images where the dataset is
    /// gone) before it is returned. Blocking: libtorch work.
    pub fn export_onnx(&self, run_id: u64) -> Result<Vec<u8>, StudioError> {
        let path = self.checkpoint_file(run_id)?;
        let _admitted = self.0.memory.try_admit(EXPORT_MEMORY)?;
        let metadata = crate::model::ModelMetadata::from_checkpoint(&path)
            .or_else(|_| crate::model::ModelMetadata::load(self.run_dir(run_id).path()))
            .map_err(|e| StudioError::Export(e.to_string()))?;
        // Its forward passes run in parallel on a thread whose OpenMP team ends with them (see engine::teams).
        let data_dir = &self.0.settings.data_dir;
        let export = teams::on_own_team_of_all_cores("onnx-export", || verified_onnx(&path, &metadata, data_dir))?;
        tracing::info!(run_id, export.difference, export.images, "exported ONNX, verified");
        Ok(export.bytes)
    }

    fn on_engine_event(&self, EngineEvent { run_id, attempt, kind }: EngineEvent) {
        let current = self.live().jobs.get(&run_id).is_some_and(|job| job.attempt == attempt);
        if !current {
            // An attempt stopped while queued: its run was recorded stopped then.
            tracing::debug!(run_id, attempt, "ignoring an event of an earlier attempt");
            return;
        }
        let recorded = match kind {
            EngineEventKind::Began { slot, on } => {
                self.record_placement(run_id, &executor::local_placement(slot, on), true)
            }
            EngineEventKind::Placed { placement, running } => self.record_placement(run_id, &placement, running),
            EngineEventKind::Training(event) => self.record_training(run_id, event),
            EngineEventKind::Finished(Ok(TrainOutcome::Paused { epoch })) => self.trial_paused(run_id, epoch),
            EngineEventKind::Finished(outcome) => {
                let (status, error) = match &outcome {
                    Ok(TrainOutcome::Completed | TrainOutcome::EarlyStopped { .. }) => (RunStatus::Completed, None),
                    Ok(TrainOutcome::Stopped | TrainOutcome::Paused { .. }) => (RunStatus::Stopped, None),
                    Err(error) => (RunStatus::Failed, Some(error.as_str())),
                };
                self.finish(run_id, status, error);
                self.trial_ended(run_id);
                Ok(())
            }
            EngineEventKind::Lost(why) => {
                // Lost after its last checkpoint, nothing is left to resume: the run is complete.
                let complete = self.nothing_left_to_train(run_id);
                if complete {
                    tracing::warn!(run_id, "{why}, after its last checkpoint: the run is complete");
                }
                let (status, error) =
                    if complete { (RunStatus::Completed, None) } else { (RunStatus::Interrupted, Some(why.as_str())) };
                self.finish(run_id, status, error);
                self.trial_ended(run_id);
                Ok(())
            }
        };
        if let Err(error) = recorded {
            tracing::error!(run_id, "could not record a training event: {error}");
        }
    }

    /// Whether run `run_id`'s committed checkpoint leaves nothing to train (see
    /// [`crate::engine::run_dir::LoopState::ends_training`]): an attempt lost after it needs no resume.
    fn nothing_left_to_train(&self, run_id: u64) -> bool {
        let config = match self.run(run_id) {
            Ok(run) => run.config,
            Err(_) => return false,
        };
        self.run_dir(run_id).saved_progress().is_some_and(|state| state.ends_training(&config))
    }

    /// Applies `event` to run `run_id` (see [`lifecycle`]) and tells every client.
    fn move_run(&self, run_id: u64, event: Move, error: Option<&str>) -> Result<(), StudioError> {
        self.with_store(|store| store.apply(run_id, event, error))?;
        self.tell(run_id)
    }

    /// Broadcasts run `run_id` as the history now holds it.
    fn tell(&self, run_id: u64) -> Result<(), StudioError> {
        let run = self.run(run_id)?;
        self.broadcast(ServerMessage::RunUpdated { run });
        Ok(())
    }

    /// Records where run `run_id`'s attempt is; the first time it is `running`, the run is running.
    fn record_placement(&self, run_id: u64, placement: &shared::Placement, running: bool) -> Result<(), StudioError> {
        let began = running && {
            let mut live = self.live();
            let began = live.running.insert(run_id);
            if began {
                // A resumed run's line starts again from its first reported batch.
                live.traces.remove(&run_id);
                live.ended.retain(|&id| id != run_id);
            }
            began
        };
        if let Err(error) = self.with_store(|store| store.set_placement(run_id, placement)) {
            tracing::warn!(run_id, "could not record where the run trains: {error}");
        }
        if began {
            self.move_run(run_id, Move::Begin, None)
        } else {
            self.tell(run_id)
        }
    }

    fn record_training(&self, run_id: u64, event: TrainingEvent) -> Result<(), StudioError> {
        match event {
            TrainingEvent::Note(note) => tracing::info!(run_id, "{note}"),
            TrainingEvent::Preparing(preparation) => {
                tracing::debug!(run_id, ?preparation, "preparing");
                self.broadcast(ServerMessage::Preparing { run_id, preparation });
            }
            TrainingEvent::Started { classes, train_count, test_count, first_epoch, first_batch } => {
                tracing::info!(run_id, train_count, test_count, first_epoch, first_batch, "training started");
                self.with_store(|store| {
                    store.in_transaction(|store| {
                        store.set_classes(run_id, &classes)?;
                        store.apply(run_id, Move::Begin, None)
                    })
                })?;
                self.tell(run_id)?;
            }
            TrainingEvent::Progress(p) => {
                let progress = BatchProgress {
                    run_id,
                    epoch: p.epoch,
                    batch: p.batch,
                    batches: p.batches,
                    loss: p.loss,
                    batch_loss: Some(p.batch_loss).filter(|loss| loss.is_finite()),
                    images_per_second: p.images_per_second,
                    eta_seconds: p.eta_seconds,
                };
                {
                    let mut live = self.live();
                    match live.traces.get_mut(&run_id) {
                        Some(trace) => trace.push(progress.clone()),
                        None => drop(live.traces.insert(run_id, LossTrace::new(progress.clone()))),
                    }
                }
                self.broadcast(ServerMessage::Progress(progress));
            }
            TrainingEvent::EpochCompleted(metrics) => self.record_epoch(run_id, metrics)?,
            TrainingEvent::CheckpointedMidEpoch { epoch, batches_done } => {
                tracing::info!(run_id, epoch, batches_done, "checkpointed inside the epoch");
            }
            TrainingEvent::DatasetDownloaded { name } => {
                self.with_store(|store| {
                    store.add_dataset(&name, &DatasetAdded { origin: DatasetOrigin::Downloaded, at: unix_now() })
                })?;
            }
            TrainingEvent::ModelSaved { epoch } => {
                let bytes = std::fs::metadata(self.run_dir(run_id).best_weights()).map_or(0, |m| m.len());
                let recorded = self.with_store(|store| {
                    store.set_best_checkpoint(run_id, &Checkpoint { epoch, bytes, saved_at: unix_now() })
                });
                self.unless_recorded(run_id, recorded)?;
                // Every client learns that the run has a (better) model to classify with.
                self.tell(run_id)?;
            }
        }
        Ok(())
    }

    /// Records a finished epoch and tells every client. After an earlier record failed, every epoch the
    /// history lacks (this one included: its checkpoint is committed before it is announced) is recorded
    /// from the run's checkpoint instead.
    fn record_epoch(&self, run_id: u64, metrics: shared::EpochMetrics) -> Result<(), StudioError> {
        if self.live().unrecorded.contains(&run_id) {
            return self.catch_up(run_id);
        }
        let recorded = self.with_store(|store| store.add_epoch(run_id, &metrics));
        self.unless_recorded(run_id, recorded)?;
        self.broadcast(ServerMessage::EpochCompleted { run_id, metrics });
        Ok(())
    }

    /// Marks run `run_id` for [`Studio::catch_up`] when `recorded` failed, and passes the failure on.
    fn unless_recorded(&self, run_id: u64, recorded: Result<(), StoreError>) -> Result<(), StudioError> {
        if recorded.is_err() {
            self.live().unrecorded.insert(run_id);
        }
        Ok(recorded?)
    }

    /// Records what run `run_id`'s committed checkpoint holds and the history missed (see
    /// [`complete_from_checkpoint`]), if a record of it failed, and tells every client.
    fn catch_up(&self, run_id: u64) -> Result<(), StudioError> {
        if !self.live().unrecorded.contains(&run_id) {
            return Ok(());
        }
        let run_dir = self.run_dir(run_id);
        self.with_store(|store| store.in_transaction(|store| complete_from_checkpoint(store, run_id, &run_dir)))?;
        self.live().unrecorded.remove(&run_id);
        tracing::info!(run_id, "recorded the epochs the history had missed");
        self.tell(run_id)
    }

    /// Records how run `run_id` ended, after any epoch the history missed ([`Studio::catch_up`]). While
    /// the history cannot be written (a full disk), it retries for a minute; if it never can, the next
    /// start marks the run interrupted and records the missed epochs from its checkpoint. The run is let go of
    /// only after this, so a shutdown waits for its record.
    fn finish(&self, run_id: u64, status: RunStatus, error: Option<&str>) {
        const TRIES: u32 = 60;
        if let Some(error) = error {
            tracing::warn!(run_id, status = status.as_str(), "run ended: {error}");
        }
        self.live().jobs.remove(&run_id);
        let event = if status == RunStatus::Pruned { Move::Prune } else { Move::End(status) };
        for attempt in 1..=TRIES {
            match self.catch_up(run_id).and_then(|()| self.move_run(run_id, event, error)) {
                Ok(()) => break,
                Err(failure) if attempt < TRIES => {
                    tracing::warn!(run_id, "could not record the end of the run ({failure}); retrying");
                    std::thread::sleep(Duration::from_secs(1));
                }
                Err(failure) => tracing::error!(run_id, "could not record the end of the run: {failure}"),
            }
        }
        let mut live = self.live();
        live.running.remove(&run_id);
        if live.traces.contains_key(&run_id) {
            live.ended.push_back(run_id);
            while live.ended.len() > ENDED_TRACES {
                if let Some(forgotten) = live.ended.pop_front() {
                    live.traces.remove(&forgotten);
                }
            }
        }
    }
}

/// Folder of the data folder that things found in the way of the studio's own files are moved to.
pub const SET_ASIDE_FOLDER: &str = ".set-aside";

/// Moves what is not a file but sits where the run history's files go (`studio.db` and SQLite's
/// `-journal`, `-wal` and `-shm` beside it; a dataset folder uploaded under such a name before names
/// were checked, say) into [`SET_ASIDE_FOLDER`], so SQLite never takes a folder for its journal and the
/// studio always starts. A warning names what was moved and where.
fn set_aside_what_blocks_the_history(data_dir: &Path) -> Result<(), StudioError> {
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let name = format!("{DATABASE_FILE}{suffix}");
        let path = data_dir.join(&name);
        if std::fs::symlink_metadata(&path).is_ok_and(|meta| !meta.is_file()) {
            let aside = data_dir.join(SET_ASIDE_FOLDER);
            let moved = std::fs::create_dir_all(&aside)
                .and_then(|()| std::fs::rename(&path, aside.join(format!("{name}-{}", unix_now()))));
            moved.map_err(|source| StudioError::DataDir { path: path.clone(), source })?;
            tracing::warn!(
                "{} is not a file of the run history but sat in its place: moved to {}",
                path.display(),
                aside.display()
            );
        }
    }
    Ok(())
}

/// Removes what an upload cut short left in the data and weights folders (its `.upload-*` files and
/// folders), what an interrupted version save left, and what crashes or failed commits left in run
/// folders, logging how much.
fn remove_leftovers(data_dir: &Path, weights_dir: &Path) {
    match data::versions::remove_leftovers(data_dir) {
        0 => {}
        count => tracing::info!("removed {count} files an interrupted dataset version save left"),
    }
    let uploads = [data_dir, weights_dir].into_iter().flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten());
    for entry in uploads.filter_map(Result::ok) {
        if entry.file_name().to_string_lossy().starts_with(".upload-") {
            let path = entry.path();
            let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            match removed {
                Ok(()) => tracing::info!(
                    "removed the leftover of an interrupted upload: {}",
                    entry.file_name().to_string_lossy()
                ),
                Err(error) => tracing::warn!("could not remove {}: {error}", path.display()),
            }
        }
    }
    for entry in std::fs::read_dir(data_dir.join(RUNS_FOLDER)).into_iter().flatten().filter_map(Result::ok) {
        match RunDir::new(entry.path()).remove_leftovers() {
            Ok(0) => {}
            Ok(count) => tracing::info!(
                "removed {count} partial checkpoint files of run {}",
                entry.file_name().to_string_lossy()
            ),
            Err(error) => tracing::warn!("could not clean {}: {error}", entry.path().display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    thread_local! {
        /// What this thread's next [`Studio::queue_to_continue`] runs between checking the run and committing.
        static BETWEEN_CHECK_AND_COMMIT: RefCell<Option<Box<dyn FnOnce()>>> = RefCell::new(None);
    }

    /// The seam in [`Studio::queue_to_continue`]: runs, once, what a test put there.
    pub(super) fn between_check_and_commit() {
        if let Some(interleaved) = BETWEEN_CHECK_AND_COMMIT.with(|hook| hook.borrow_mut().take()) {
            interleaved();
        }
    }

    /// A studio over `folder` whose trainer starts nothing (a job handed to it stays queued), holding one
    /// stopped run with an epoch left.
    fn studio_with_a_stopped_run(folder: &Path) -> (Studio, u64) {
        let studio = Studio::open(StudioSettings::new(folder), Device::Cpu).unwrap();
        studio.0.executor.stop_taking_jobs();
        let config = TrainConfig { epochs: 2, ..TrainConfig::for_dataset("colors") };
        let id = studio.with_store(|store| store.create_run(&config, 0)).unwrap().id;
        studio.with_store(|store| store.set_status(id, RunStatus::Stopped, None)).unwrap();
        (studio, id)
    }

    /// Regression (issue 11, finding 10): a resume checked the status, then set it and stored the run's
    /// stop handle under other locks, so a second resume landing in between also queued the run and
    /// overwrote the first attempt's stop handle. Here the second resume is made to land exactly there.
    #[test]
    fn a_resume_landing_between_another_resumes_check_and_commit_is_refused() {
        let folder = tempfile::tempdir().unwrap();
        let (studio, id) = studio_with_a_stopped_run(folder.path());
        let inner_won = Rc::new(RefCell::new(None));
        let (other, inner) = (studio.clone(), inner_won.clone());
        BETWEEN_CHECK_AND_COMMIT.with(|hook| {
            *hook.borrow_mut() = Some(Box::new(move || *inner.borrow_mut() = Some(other.resume_run(id).is_ok())))
        });
        let outer = studio.resume_run(id);
        assert_eq!(*inner_won.borrow(), Some(true), "the resume that landed in between queued the run");
        assert!(outer.is_err(), "the resume it landed inside is refused: {outer:?}");
        assert_eq!(studio.live().attempts, 1, "one attempt handed to the trainer");
        assert_eq!(studio.run(id).unwrap().status, RunStatus::Queued);
        let stopped = studio.stop_run(id).unwrap();
        assert_eq!(stopped.status, RunStatus::Stopped, "the one stop handle stops the one attempt");
        assert!(studio.live().jobs.is_empty(), "no attempt is left that nothing can stop");
    }

    /// A committed checkpoint with `state`, in `run_dir`.
    fn commit_checkpoint(run_dir: &RunDir, state: &crate::engine::run_dir::LoopState) {
        let (model, optimizer) = crate::engine::run_dir::tests::model_and_optimizer(0);
        run_dir.commit(&model, &optimizer, state, None).unwrap();
    }

    /// An attempt lost after its run's last checkpoint (a Slurm job killed after the worker committed its
    /// last epoch, before it wrote its outcome) completes the run: nothing is left to resume.
    #[test]
    fn an_attempt_lost_after_its_last_checkpoint_completes_the_run() {
        use crate::engine::{EngineEvent, EngineEventKind, Slot};
        let folder = tempfile::tempdir().unwrap();
        let (studio, id) = studio_with_a_stopped_run(folder.path());
        studio.resume_run(id).unwrap();
        let attempt = studio.live().jobs[&id].attempt;
        let event = |kind| studio.on_engine_event(EngineEvent { run_id: id, attempt, kind });
        event(EngineEventKind::Began { slot: 0, on: Slot { device: Device::Cpu, threads: 1 } });
        assert_eq!(studio.run(id).unwrap().status, RunStatus::Running);
        commit_checkpoint(&studio.run_dir(id), &crate::engine::run_dir::LoopState { epoch: 2, ..Default::default() });
        event(EngineEventKind::Lost("Slurm job 7 ended CANCELLED without a result".into()));
        let run = studio.run(id).unwrap();
        assert_eq!((run.status, run.error), (RunStatus::Completed, None));
    }

    /// Regression (issue 25): a server killed after an early-stopped run's last checkpoint was committed,
    /// before its end was recorded, left it interrupted, and a resume trained on past the early stop.
    /// Its checkpoint says early stopping's patience ran out, so the next start completes it.
    #[test]
    fn a_run_killed_after_early_stopping_is_completed_at_the_next_start() {
        use crate::engine::run_dir::LoopState;
        let folder = tempfile::tempdir().unwrap();
        let store = Store::open(&folder.path().join(DATABASE_FILE)).unwrap();
        let config = TrainConfig { epochs: 5, early_stopping_patience: Some(1), ..TrainConfig::for_dataset("colors") };
        let (stopped_early, cut_short) =
            (store.create_run(&config, 0).unwrap().id, store.create_run(&config, 0).unwrap().id);
        let runs = folder.path().join(RUNS_FOLDER);
        for (id, epochs_without_improvement) in [(stopped_early, 1), (cut_short, 0)] {
            store.set_status(id, RunStatus::Running, None).unwrap();
            let state = LoopState {
                epoch: 3,
                best_epoch: 3 - epochs_without_improvement,
                epochs_without_improvement,
                ..LoopState::default()
            };
            commit_checkpoint(&RunDir::new(runs.join(id.to_string())), &state);
        }
        reconcile_history(&store, &runs, false).unwrap();
        let status = |id| store.run(id).unwrap().unwrap().status;
        assert_eq!(status(stopped_early), RunStatus::Completed);
        assert_eq!(status(cut_short), RunStatus::Interrupted, "two epochs are left to train");
    }
}
