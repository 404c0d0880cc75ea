//! The studio: the application core between the web layer and the engine. It validates and queues runs,
//! records everything in the [`Store`], and turns engine events into [`ServerMessage`]s broadcast to
//! every connected browser. It knows nothing of HTTP.

use crate::data;
use crate::download::{DownloadSource, CIFAR10_NAME};
use crate::engine::{device_name, Engine, EngineEvent, EngineEventKind, TrainJob};
use crate::inference::ClassifyError;
use crate::store::{Store, StoreError};
use crate::training::{RunControl, TrainOutcome, TrainingEvent, TrainingPaths};
use shared::{
    BatchProgress, Checkpoint, ClassifyBatchResponse, ClassifyResponse, DatasetAdded, DatasetInfo, DatasetOrigin,
    ImageClassification, Run, RunStatus, ServerMessage, TestImage, TrainConfig,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};
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

/// Where the studio keeps and finds things.
#[derive(Debug, Clone)]
pub struct StudioSettings {
    /// Datasets, run history and models live here.
    pub data_dir: PathBuf,
    /// Pretrained weight files are looked up here.
    pub weights_dir: PathBuf,
    /// Where `cifar10` is downloaded from when missing.
    pub cifar10: DownloadSource,
    /// Largest dataset zip accepted over HTTP, in bytes.
    pub max_dataset_upload: u64,
}

impl StudioSettings {
    /// Settings for `data_dir`, with weights in `data_dir/weights` and CIFAR-10's official source.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        StudioSettings {
            weights_dir: data_dir.join("weights"),
            data_dir,
            cifar10: DownloadSource::cifar10(),
            max_dataset_upload: MAX_DATASET_UPLOAD,
        }
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
    /// No run has a model yet.
    #[error("no run has a trained model yet: train one first")]
    NoModelAtAll,
    /// The image could not be read.
    #[error(transparent)]
    Image(#[from] crate::images::ImageError),
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
    /// An uploaded image could not be classified.
    #[error(transparent)]
    Classify(#[from] ClassifyError),
    /// The history could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The data folder could not be prepared.
    #[error("could not prepare the data folder {path}: {source}")]
    DataDir {
        /// The folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// What is happening right now, beyond what the store holds.
#[derive(Default)]
struct LiveState {
    /// Cancel flags of queued and running runs.
    cancels: HashMap<u64, RunControl>,
    /// Progress of the epoch in flight.
    progress: Option<BatchProgress>,
}

struct Inner {
    settings: StudioSettings,
    store: Mutex<Store>,
    engine: Engine,
    events: broadcast::Sender<ServerMessage>,
    live: Mutex<LiveState>,
}

/// Records what the last checkpoint of an interrupted run holds but the history missed: a server killed
/// after writing an epoch's checkpoint and before recording it leaves that epoch (and perhaps the
/// news that a best model exists) only on disk.
fn complete_from_checkpoint(store: &Store, id: u64, run_dir: &Path) -> Result<(), StudioError> {
    let Some(saved) = crate::training::saved_progress(run_dir) else { return Ok(()) };
    let Some(run) = store.run(id)? else { return Ok(()) };
    if let Some(metrics) = saved.last_metrics {
        if !run.epochs.iter().any(|known| known.epoch == metrics.epoch) {
            tracing::warn!(run_id = id, epoch = metrics.epoch, "recording an epoch found only in the checkpoint");
            store.add_epoch(id, &metrics)?;
        }
    }
    let weights = run_dir.join(crate::model::WEIGHTS_FILE);
    let on_disk = run.best_checkpoint.as_ref().map(|c| c.epoch);
    if saved.best_epoch > 0 && on_disk != Some(saved.best_epoch) {
        if let Ok(file) = std::fs::metadata(&weights) {
            let saved_at = file.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_secs());
            store.set_best_checkpoint(id, &Checkpoint { epoch: saved.best_epoch, bytes: file.len(), saved_at })?;
        }
    }
    Ok(())
}

/// Seconds since the Unix epoch.
fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A cheap-to-clone handle to the studio.
#[derive(Clone)]
pub struct Studio(Arc<Inner>);

impl Studio {
    /// Opens the history in `settings.data_dir`, marks runs that were running when the server last went
    /// down as interrupted, re-queues queued runs, and starts the engine on `device`.
    pub fn open(settings: StudioSettings, device: Device) -> Result<Self, StudioError> {
        for dir in [&settings.data_dir, &settings.weights_dir, &settings.data_dir.join(RUNS_FOLDER)] {
            std::fs::create_dir_all(dir)
                .map_err(|source| StudioError::DataDir { path: dir.clone(), source })?;
        }
        let store = Store::open(&settings.data_dir.join(DATABASE_FILE))?;
        for id in store.ids_with_status(RunStatus::Running)? {
            store.set_status(id, RunStatus::Interrupted, Some("the server stopped while this run was training"))?;
            complete_from_checkpoint(&store, id, &settings.data_dir.join(RUNS_FOLDER).join(id.to_string()))?;
        }
        let (engine_events, mut engine_receiver) = mpsc::unbounded_channel();
        let engine = Engine::start(device, engine_events);
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let studio = Studio(Arc::new(Inner {
            settings,
            store: Mutex::new(store),
            engine,
            events,
            live: Mutex::new(LiveState::default()),
        }));
        for id in studio.store().ids_with_status(RunStatus::Queued)? {
            if let Some(run) = studio.store().run(id)? {
                // A queued run with a checkpoint was queued by a resume.
                let resume = crate::training::saved_progress(&studio.run_dir(run.id)).is_some();
                studio.enqueue(run.id, run.config, resume);
            }
        }
        // Hold only a weak handle so dropping every `Studio` ends this task and the engine.
        let weak = Arc::downgrade(&studio.0);
        tokio::spawn(async move {
            while let Some(event) = engine_receiver.recv().await {
                let Some(inner) = weak.upgrade() else { break };
                Studio(inner).on_engine_event(event);
            }
        });
        Ok(studio)
    }

    /// The settings the studio was opened with.
    pub fn settings(&self) -> &StudioSettings {
        &self.0.settings
    }

    /// `"cpu"` or `"cuda:0"`.
    pub fn device_name(&self) -> String {
        device_name(self.0.engine.device())
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        self.0.store.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn live(&self) -> MutexGuard<'_, LiveState> {
        self.0.live.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Subscribes to live messages. Call before [`Studio::snapshot`] so nothing falls between the two.
    pub fn subscribe(&self) -> broadcast::Receiver<ServerMessage> {
        self.0.events.subscribe()
    }

    /// The whole state as one message.
    pub fn snapshot(&self) -> Result<ServerMessage, StudioError> {
        let runs = self.store().runs()?;
        Ok(ServerMessage::Snapshot { runs, progress: self.live().progress.clone() })
    }

    fn broadcast(&self, message: ServerMessage) {
        // No receiver is not an error: nobody is watching.
        let _ = self.0.events.send(message);
    }

    /// The datasets under the data directory, with how and when the studio added each (if it did).
    pub fn datasets(&self) -> Vec<DatasetInfo> {
        let mut found = data::discover(&self.0.settings.data_dir);
        let store = self.store();
        for info in &mut found {
            info.added = store.dataset_added(&info.name).unwrap_or_else(|error| {
                tracing::warn!("dataset history: {error}");
                None
            });
        }
        found
    }

    /// Records that the studio added dataset `info` (an upload); returns it with that record.
    pub fn record_dataset(&self, mut info: DatasetInfo, origin: DatasetOrigin) -> Result<DatasetInfo, StudioError> {
        let added = DatasetAdded { origin, at: unix_now() };
        self.store().add_dataset(&info.name, &added)?;
        info.added = Some(added);
        Ok(info)
    }

    /// The weight files in the weights folder, sorted.
    pub fn weight_files(&self) -> Vec<String> {
        let mut files: Vec<String> = std::fs::read_dir(&self.0.settings.weights_dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| [".safetensors", ".pth", ".pt"].iter().any(|ext| name.ends_with(ext)))
            .collect();
        files.sort();
        files
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
        config.validate().map_err(|e| StudioError::InvalidConfig(e.message))?;
        let settings = &self.0.settings;
        match data::inspect(&settings.data_dir, &config.dataset) {
            Ok(_) => {}
            Err(data::DataError::NotFound(_)) if config.dataset == CIFAR10_NAME => {}
            Err(error) => return Err(StudioError::InvalidConfig(error.to_string())),
        }
        // "imagenet" needs no file: training finds or downloads it (crate::pretrained).
        if config.weights != shared::defaults::WEIGHTS_NONE
            && config.weights != shared::defaults::WEIGHTS_IMAGENET
            && !settings.weights_dir.join(&config.weights).is_file()
        {
            return Err(StudioError::InvalidConfig(format!(
                "weights file \"{}\" is not in the weights folder {}",
                config.weights,
                settings.weights_dir.display()
            )));
        }
        let run = self.store().create_run(&config, unix_now())?;
        self.enqueue(run.id, config, false);
        self.broadcast(ServerMessage::RunUpdated { run: run.clone() });
        Ok(run)
    }

    /// Queues a stopped, interrupted or failed run to continue from its last finished epoch.
    pub fn resume_run(&self, id: u64) -> Result<Run, StudioError> {
        let run = self.run(id)?;
        if !matches!(run.status, RunStatus::Stopped | RunStatus::Interrupted | RunStatus::Failed) {
            return Err(StudioError::NotResumable { id, status: run.status.as_str() });
        }
        if run.epochs.len() as u32 >= run.config.epochs {
            return Err(StudioError::NotResumable { id, status: "finished with every epoch" });
        }
        self.store().set_status(id, RunStatus::Queued, None)?;
        self.enqueue(id, run.config, true);
        let run = self.run(id)?;
        self.broadcast(ServerMessage::RunUpdated { run: run.clone() });
        Ok(run)
    }

    fn enqueue(&self, run_id: u64, config: TrainConfig, resume: bool) {
        let cancel = RunControl::default();
        self.live().cancels.insert(run_id, cancel.clone());
        let settings = &self.0.settings;
        self.0.engine.submit(TrainJob {
            run_id,
            config,
            paths: TrainingPaths {
                data_dir: settings.data_dir.clone(),
                weights_dir: settings.weights_dir.clone(),
                run_dir: self.run_dir(run_id),
                cifar10: settings.cifar10.clone(),
            },
            cancel,
            resume,
        });
    }

    /// The folder a run's model files live in.
    pub fn run_dir(&self, run_id: u64) -> PathBuf {
        self.0.settings.data_dir.join(RUNS_FOLDER).join(run_id.to_string())
    }

    /// Every run, newest first.
    pub fn runs(&self) -> Result<Vec<Run>, StudioError> {
        Ok(self.store().runs()?)
    }

    /// One run.
    pub fn run(&self, id: u64) -> Result<Run, StudioError> {
        self.store().run(id)?.ok_or(StudioError::RunNotFound(id))
    }

    /// Asks a queued or running run to stop. A queued run ends at once; a running one within one batch.
    pub fn stop_run(&self, id: u64) -> Result<Run, StudioError> {
        let run = self.run(id)?;
        if run.status.is_finished() {
            return Err(StudioError::AlreadyFinished { id, status: run.status.as_str() });
        }
        if let Some(cancel) = self.live().cancels.get(&id) {
            cancel.cancel();
        }
        Ok(run)
    }

    /// The run to classify with: `run_id`, or else the newest run with a model.
    fn model_run(&self, run_id: Option<u64>) -> Result<Run, StudioError> {
        let run = match run_id {
            Some(id) => self.run(id)?,
            None => self.runs()?.into_iter().find(|run| run.has_model).ok_or(StudioError::NoModelAtAll)?,
        };
        if run.has_model { Ok(run) } else { Err(StudioError::NoModel(run.id)) }
    }

    /// Classifies one image with a run's best model (or the newest run's, without `run_id`).
    pub async fn classify_one(&self, run_id: Option<u64>, image: Vec<u8>) -> Result<ClassifyResponse, StudioError> {
        let run = self.model_run(run_id)?;
        let mut answers = self.0.engine.classify(self.run_dir(run.id), vec![image]).await?;
        let predictions = answers.pop().expect("one answer per image")?;
        Ok(ClassifyResponse { run_id: run.id, predictions })
    }

    /// Classifies named images in one batch; unreadable ones get an error of their own.
    pub async fn classify_batch(
        &self,
        run_id: Option<u64>,
        images: Vec<(String, Vec<u8>)>,
    ) -> Result<ClassifyBatchResponse, StudioError> {
        let run = self.model_run(run_id)?;
        let (names, bytes): (Vec<String>, Vec<Vec<u8>>) = images.into_iter().unzip();
        let answers = self.0.engine.classify(self.run_dir(run.id), bytes).await?;
        let results = names
            .into_iter()
            .zip(answers)
            .map(|(name, answer)| match answer {
                Ok(predictions) => ImageClassification { name, predictions, error: None },
                Err(error) => ImageClassification { name, predictions: Vec::new(), error: Some(error.to_string()) },
            })
            .collect();
        Ok(ClassifyBatchResponse { run_id: run.id, results })
    }

    /// The best model file of a run, for download.
    pub fn checkpoint_file(&self, run_id: u64) -> Result<PathBuf, StudioError> {
        let run = self.model_run(Some(run_id))?;
        Ok(self.run_dir(run.id).join(crate::model::WEIGHTS_FILE))
    }

    /// The best model's test images, highest loss first, optionally only those of one confusion cell.
    pub fn test_images(
        &self,
        run_id: u64,
        actual: Option<usize>,
        predicted: Option<usize>,
        limit: usize,
    ) -> Result<Vec<TestImage>, StudioError> {
        let run = self.model_run(Some(run_id))?;
        let mut samples = crate::training::load_test_predictions(&self.run_dir(run.id)).unwrap_or_default();
        samples.retain(|s| actual.is_none_or(|a| s.actual == a) && predicted.is_none_or(|p| s.predicted == p));
        samples.sort_by(|a, b| b.loss.total_cmp(&a.loss));
        samples.truncate(limit);
        Ok(samples)
    }

    /// The picture of test image `index` of a run's dataset, with its MIME type.
    pub fn test_image(&self, run_id: u64, index: usize) -> Result<(Vec<u8>, &'static str), StudioError> {
        let run = self.run(run_id)?;
        let missing = || StudioError::TestImageNotFound { run_id, index };
        let source = data::inspect(&self.0.settings.data_dir, &run.config.dataset).map_err(|_| missing())?;
        data::test_image(&source, run.config.validation_fraction, run.config.seed, index)
            .map_err(|e| StudioError::InvalidConfig(e.to_string()))?
            .ok_or_else(missing)
    }

    fn on_engine_event(&self, event: EngineEvent) {
        if let Err(error) = self.record(event) {
            tracing::error!("could not record a training event: {error}");
        }
    }

    fn record(&self, EngineEvent { run_id, kind }: EngineEvent) -> Result<(), StudioError> {
        let status_change = |status: RunStatus, error: Option<&str>| -> Result<(), StudioError> {
            self.store().set_status(run_id, status, error)?;
            let run = self.run(run_id)?;
            self.broadcast(ServerMessage::RunUpdated { run });
            Ok(())
        };
        match kind {
            EngineEventKind::Began => status_change(RunStatus::Running, None)?,
            EngineEventKind::Training(TrainingEvent::Note(note)) => tracing::info!(run_id, "{note}"),
            EngineEventKind::Training(TrainingEvent::Preparing(preparation)) => {
                tracing::debug!(run_id, ?preparation, "preparing");
                self.broadcast(ServerMessage::Preparing { run_id, preparation });
            }
            EngineEventKind::Training(TrainingEvent::Started {
                classes,
                train_count,
                test_count,
                first_epoch,
                first_batch,
            }) => {
                tracing::info!(run_id, train_count, test_count, first_epoch, first_batch, "training started");
                self.store().set_classes(run_id, &classes)?;
                status_change(RunStatus::Running, None)?;
            }
            EngineEventKind::Training(TrainingEvent::Progress(p)) => {
                let progress = BatchProgress {
                    run_id,
                    epoch: p.epoch,
                    batch: p.batch,
                    batches: p.batches,
                    loss: p.loss,
                    images_per_second: p.images_per_second,
                    eta_seconds: p.eta_seconds,
                };
                self.live().progress = Some(progress.clone());
                self.broadcast(ServerMessage::Progress(progress));
            }
            EngineEventKind::Training(TrainingEvent::EpochCompleted(metrics)) => {
                self.store().add_epoch(run_id, &metrics)?;
                self.broadcast(ServerMessage::EpochCompleted { run_id, metrics });
            }
            EngineEventKind::Training(TrainingEvent::CheckpointedMidEpoch { epoch, batches_done }) => {
                tracing::info!(run_id, epoch, batches_done, "checkpointed inside the epoch");
            }
            EngineEventKind::Training(TrainingEvent::DatasetDownloaded { name }) => {
                self.store().add_dataset(&name, &DatasetAdded { origin: DatasetOrigin::Downloaded, at: unix_now() })?;
            }
            EngineEventKind::Training(TrainingEvent::ModelSaved { epoch }) => {
                let weights = self.run_dir(run_id).join(crate::model::WEIGHTS_FILE);
                let bytes = std::fs::metadata(&weights).map_or(0, |m| m.len());
                self.store().set_best_checkpoint(run_id, &Checkpoint { epoch, bytes, saved_at: unix_now() })?;
                // Every client learns that the run has a (better) model to classify with.
                status_change(RunStatus::Running, None)?;
            }
            EngineEventKind::Finished(outcome) => {
                {
                    let mut live = self.live();
                    live.cancels.remove(&run_id);
                    if live.progress.as_ref().is_some_and(|p| p.run_id == run_id) {
                        live.progress = None;
                    }
                }
                match outcome {
                    Ok(TrainOutcome::Completed | TrainOutcome::EarlyStopped { .. }) => {
                        status_change(RunStatus::Completed, None)?
                    }
                    Ok(TrainOutcome::Stopped) => status_change(RunStatus::Stopped, None)?,
                    Err(error) => {
                        tracing::warn!(run_id, "run failed: {error}");
                        status_change(RunStatus::Failed, Some(&error))?
                    }
                }
            }
        }
        Ok(())
    }
}
