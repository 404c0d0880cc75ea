//! The training loop: knows nothing of the web. It takes a [`TrainConfig`], a [`RunControl`] and a folder
//! for its checkpoints, and reports through [`TrainingEvent`]s.
//!
//! The whole dataset sits on the training device as `u8`; every batch is an index-select of a seeded
//! permutation, augmented, converted to float and normalised on the device. Losses and accuracies
//! accumulate as device tensors and are read back only when an event is due.
//!
//! Every random choice is a function of the seed and the epoch (model initialisation aside, which is drawn
//! once from the seed), and every epoch ends with a checkpoint of the model, the optimiser's buffers and
//! the loop's counters, committed atomically by [`RunDir`] (and inside long epochs too, see
//! [`RunControl`]). So a run that stops or crashes resumes from its last checkpoint and, on the CPU,
//! continues bit for bit as if it had never stopped.
//!
//! The loop's steps follow burn-train's learner: [`Learner::prepare`] (data, model, checkpoint),
//! `train_epoch`, [`evaluate`], `end_epoch` (metrics, checkpoint, early stopping).

use crate::data::download::{self, DownloadError, DownloadSource};
use crate::data::{self, DataError, Split};
use crate::engine::batches::{BatchStream, Batches, EpochPlan};
use crate::engine::receipt;
use crate::engine::run_dir::{BestModel, LoopState, PartialEpoch, RunDir, RunDirError};
use crate::model::folded::FoldedResNet18;
use crate::model::optim::{Optimizer, Rule};
use crate::model::schedule::LrSchedule;
use crate::model::{normalize, ModelError, ModelMetadata, ResNet18};
use serde::{Deserialize, Serialize};
use shared::{
    EpochMetrics, FineTuneMode, OptimizerKind, Preparation, PreparationStep, RunReceipt, TestImage, TrainConfig,
};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tch::{Device, Kind, Reduction, Tensor};

/// Images per evaluation batch: no gradients are kept, so this can be larger than training's.
const EVAL_BATCH: i64 = 256;
/// Least time between two progress events.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// Default least time between two checkpoints inside one epoch, so a crash in a long epoch loses at most
/// this much training.
pub const MID_EPOCH_CHECKPOINT_EVERY: Duration = Duration::from_secs(300);

/// What a run can be asked from outside while it trains, checked before every batch: stop (keeping a
/// checkpoint of the batches done), or write a checkpoint now. It also says how often the run checkpoints
/// inside an epoch on its own.
#[derive(Debug, Clone)]
pub struct RunControl {
    cancelled: Arc<AtomicBool>,
    checkpoint_requested: Arc<AtomicBool>,
    checkpoint_every: Duration,
    pause_after_epoch: Option<u32>,
}

impl Default for RunControl {
    fn default() -> Self {
        Self {
            cancelled: Arc::default(),
            checkpoint_requested: Arc::default(),
            checkpoint_every: MID_EPOCH_CHECKPOINT_EVERY,
            pause_after_epoch: None,
        }
    }
}

impl RunControl {
    /// The same control with the run checkpointing the epoch in flight whenever `interval` has passed since
    /// its last checkpoint (default [`MID_EPOCH_CHECKPOINT_EVERY`]).
    pub fn with_mid_epoch_checkpoints_every(self, interval: Duration) -> Self {
        Self { checkpoint_every: interval, ..self }
    }

    /// The same control with the run pausing once `epoch` is committed, if it has epochs after it: it
    /// ends [`TrainOutcome::Paused`] for someone (a sweep's early stopping) to judge, and a resume goes
    /// on exactly where it paused.
    pub fn with_pause_after_epoch(self, epoch: Option<u32>) -> Self {
        Self { pause_after_epoch: epoch, ..self }
    }

    /// The epoch the run pauses after, if any.
    pub fn pause_after_epoch(&self) -> Option<u32> {
        self.pause_after_epoch
    }

    /// Asks the run to stop at the next batch boundary.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    /// The flag [`RunControl::cancel`] raises, for a signal handler to raise (see
    /// [`crate::engine::worker`]).
    pub(crate) fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancelled.clone()
    }

    /// True once [`RunControl::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Asks the run to checkpoint the epoch in flight at the next batch boundary (it also does so on its
    /// own at the interval of [`RunControl::with_mid_epoch_checkpoints_every`]).
    pub fn request_checkpoint(&self) {
        self.checkpoint_requested.store(true, Ordering::SeqCst);
    }

    fn take_checkpoint_request(&self) -> bool {
        self.checkpoint_requested.swap(false, Ordering::SeqCst)
    }

    /// `Break` once cancelled: the answer to a progress report.
    fn go_on(&self) -> ControlFlow<()> {
        if self.is_cancelled() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

/// Where a run reads its inputs and writes its checkpoints.
#[derive(Debug, Clone)]
pub struct TrainingPaths {
    /// Folder holding the datasets.
    pub data_dir: PathBuf,
    /// Folder holding pretrained weight files.
    pub weights_dir: PathBuf,
    /// Folder this run's checkpoints go to; created if missing.
    pub run_dir: PathBuf,
    /// Where the `cifar10` dataset is downloaded from when it is missing.
    pub cifar10: DownloadSource,
    /// The file weights `"imagenet"` stand for, and where it is downloaded from when it is missing.
    pub imagenet: crate::model::pretrained::PretrainedSource,
    /// Most bytes of decoded images a run holds in memory; a dataset that takes more is streamed from its
    /// decoded cache instead. `None`: half the memory of the machine that trains it
    /// ([`crate::memory::default_dataset_budget`]).
    pub dataset_memory: Option<u64>,
}

pub use crate::engine::batches::epoch_order;

/// Progress within an epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochProgress {
    /// 1-based epoch.
    pub epoch: u32,
    /// Batches done in this epoch.
    pub batch: u32,
    /// Batches per epoch.
    pub batches: u32,
    /// Mean training loss over this epoch's batches so far.
    pub loss: f64,
    /// Training loss of the last batch, not averaged.
    pub batch_loss: f64,
    /// Images per second over this epoch so far.
    pub images_per_second: f64,
    /// Estimated seconds until the last epoch's training ends, at this epoch's pace.
    pub eta_seconds: f64,
}

/// What a run reports while it works (also as JSON lines, from a worker on another machine).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainingEvent {
    /// A human-readable note: a setting that does not apply here, a resume, early stopping.
    Note(String),
    /// Progress of a step before the first batch: downloading, unpacking, decoding.
    Preparing(Preparation),
    /// Data is loaded and the model built; training starts (or resumes) at `first_epoch`.
    Started {
        /// Class names in label order.
        classes: Vec<String>,
        /// Training images.
        train_count: usize,
        /// Test images.
        test_count: usize,
        /// The epoch training starts with (after a resume, the one after the last saved).
        first_epoch: u32,
        /// Batches of `first_epoch` already trained before a stop (0 unless resuming a stopped epoch).
        first_batch: u32,
    },
    /// Progress inside an epoch.
    Progress(EpochProgress),
    /// An epoch ended, was evaluated on the test split and checkpointed.
    EpochCompleted(EpochMetrics),
    /// A missing dataset was downloaded from its official address into the data folder.
    DatasetDownloaded {
        /// The dataset's folder name.
        name: String,
    },
    /// The epoch in flight was checkpointed after `batches_done` batches (see [`PartialEpoch`]).
    CheckpointedMidEpoch {
        /// The epoch.
        epoch: u32,
        /// Batches of it in the checkpoint.
        batches_done: i64,
    },
    /// The best model so far is now the one after `epoch`, saved and ready to classify.
    ModelSaved {
        /// The epoch the saved weights are from.
        epoch: u32,
    },
}

/// How a run ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainOutcome {
    /// Every epoch ran.
    Completed,
    /// Early stopping ended the run: the test accuracy stopped improving.
    EarlyStopped {
        /// The last epoch that ran.
        epoch: u32,
    },
    /// The cancel flag was raised.
    Stopped,
    /// It paused after this epoch, as its control asked ([`RunControl::with_pause_after_epoch`]).
    Paused {
        /// The epoch just committed.
        epoch: u32,
    },
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The dataset could not be found or read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A missing dataset could not be downloaded.
    #[error(transparent)]
    Download(#[from] DownloadError),
    /// Weights could not be loaded or the model saved.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The `"imagenet"` weights are neither on disk nor downloadable.
    #[error(transparent)]
    Pretrained(#[from] crate::model::pretrained::PretrainedError),
    /// The loss stopped being a number: the learning rate is likely too high.
    #[error("the training loss became {value} in epoch {epoch}; try a lower learning rate")]
    NonFiniteLoss {
        /// The epoch it happened in.
        epoch: u32,
        /// The value seen (NaN or infinite).
        value: f64,
    },
    /// The test loss is not a number: batch norm met a batch it could not normalise (one image at
    /// a 1x1 stage, as with a batch size of 1 at a small input size) or the weights overflowed.
    #[error(
        "the test loss became {value} after epoch {epoch}; with a batch size of 1 at this input size batch norm \
         cannot learn its statistics: use a batch size of 2 or more"
    )]
    NonFiniteTestLoss {
        /// The epoch just trained.
        epoch: u32,
        /// The value seen (NaN or infinite).
        value: f64,
    },
    /// The dataset has no training images.
    #[error("dataset \"{0}\" has no training images")]
    EmptyTrainingSet(String),
    /// The run's checkpoint could not be written or read back.
    #[error(transparent)]
    Checkpoint(#[from] RunDirError),
    /// libtorch reported an error.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// The starting weights file could not be read again to hash it for the receipt.
    #[error("could not read the starting weights \"{weights}\": {source}")]
    WeightsFile {
        /// The config's weights value.
        weights: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A repeat's data or starting weights are not the receipt's, or a resumed run's data changed since
    /// it started.
    #[error(transparent)]
    Receipt(#[from] receipt::ReceiptError),
}

/// Trains a ResNet-18 as `config` says, on `device`. With `resume`, continues from the checkpoint in
/// `paths.run_dir` instead of starting afresh. `cancel` stops it between batches, and also during a
/// download or the decoding of the dataset.
pub fn train(
    config: &TrainConfig,
    paths: &TrainingPaths,
    device: Device,
    cancel: &RunControl,
    resume: bool,
    emit: &mut dyn FnMut(TrainingEvent),
) -> Result<TrainOutcome, TrainError> {
    train_or_repeat(config, paths, device, cancel, resume, None, emit)
}

/// Trains the run `receipt` describes afresh into `paths.run_dir`, as [`train`] does with its config,
/// after checking that the dataset's content and the starting weights are the ones the receipt records
/// ([`TrainError::Receipt`] otherwise, before the first batch). The caller sets libtorch's thread count
/// and compares the metrics.
pub fn repeat(
    receipt: &RunReceipt,
    paths: &TrainingPaths,
    device: Device,
    cancel: &RunControl,
    emit: &mut dyn FnMut(TrainingEvent),
) -> Result<TrainOutcome, TrainError> {
    train_or_repeat(&receipt.config, paths, device, cancel, false, Some(receipt), emit)
}

fn train_or_repeat(
    config: &TrainConfig,
    paths: &TrainingPaths,
    device: Device,
    cancel: &RunControl,
    resume: bool,
    repeating: Option<&RunReceipt>,
    emit: &mut dyn FnMut(TrainingEvent),
) -> Result<TrainOutcome, TrainError> {
    let trained =
        Learner::prepare(config, paths, device, cancel, resume, repeating, emit).and_then(|mut learner| learner.run());
    match trained {
        Err(error) if error.is_stop() => Ok(TrainOutcome::Stopped),
        other => other,
    }
}

impl TrainError {
    /// True when the error only says that preparation was stopped on request.
    fn is_stop(&self) -> bool {
        matches!(
            self,
            TrainError::Data(DataError::Cancelled)
                | TrainError::Download(DownloadError::Cancelled)
                | TrainError::Pretrained(crate::model::pretrained::PretrainedError::Cancelled)
        )
    }
}

/// Passes a preparation report on, and asks to stop once the run is cancelled.
fn preparing<'a>(
    cancel: &'a RunControl,
    emit: &'a mut dyn FnMut(TrainingEvent),
) -> impl FnMut(Preparation) -> ControlFlow<()> + 'a {
    move |preparation| {
        emit(TrainingEvent::Preparing(preparation));
        cancel.go_on()
    }
}

/// A run once its data is on the device and its model built: what every epoch works with.
struct Learner<'a> {
    config: &'a TrainConfig,
    device: Device,
    cancel: &'a RunControl,
    emit: &'a mut dyn FnMut(TrainingEvent),
    run_dir: RunDir,
    classes: Vec<String>,
    /// Training images `[N, 3, H, W]` u8 and labels `[N]`: on the device, or mapped from the decoded cache
    /// when streamed.
    train: Split,
    /// Test images and labels, where the training ones are.
    test: Split,
    /// Whether the splits stay in the decoded cache, batches streamed from it ([`BatchStream`]).
    streamed: bool,
    /// Each test image's path in the dataset, where positions do not name them ([`data::Dataset::test_paths`]).
    test_paths: Vec<String>,
    mean: [f64; 3],
    std: [f64; 3],
    model: ResNet18,
    optimizer: Optimizer,
    schedule: LrSchedule,
    /// How an epoch is cut into batches.
    batches: Batches,
    /// The loop's counters, as the next checkpoint will hold them.
    state: LoopState,
    /// When the last checkpoint was committed.
    last_checkpoint: Instant,
}

/// What an epoch's training batches added up to.
struct EpochTotals {
    train_loss: f64,
    train_accuracy: f64,
    lr: f64,
    seconds: f64,
}

/// The running sums of an epoch in flight, kept as device tensors until read.
struct EpochSums {
    loss_sum: Tensor,
    /// The last batch's mean loss, on the device (read only when progress is reported).
    last_loss: Tensor,
    correct: Tensor,
    first_batch: i64,
    seconds_before: f64,
    started: Instant,
}

impl<'a> Learner<'a> {
    /// Finds (or downloads) and decodes the dataset, builds the model and optimiser, and restores the
    /// checkpoint (with `resume`) or loads the starting weights.
    fn prepare(
        config: &'a TrainConfig,
        paths: &TrainingPaths,
        device: Device,
        cancel: &'a RunControl,
        resume: bool,
        repeating: Option<&RunReceipt>,
        emit: &'a mut dyn FnMut(TrainingEvent),
    ) -> Result<Self, TrainError> {
        let dataset = load_dataset(config, paths, cancel, emit)?;
        let data = receipt::fingerprint(&dataset);
        let streamed =
            streams(&dataset, paths.dataset_memory.unwrap_or_else(crate::memory::default_dataset_budget), emit);
        if let Some(expected) = repeating {
            receipt::check_data(expected, &data)?;
        }
        let run_dir = RunDir::new(&paths.run_dir);
        if let Some(earlier) = run_dir.receipt().filter(|_| resume) {
            receipt::check_resume(&earlier, &data)?;
        }
        let mut model = ResNet18::new(device, dataset.classes.len(), config.seed);
        apply_device_options(config, device, &mut model, emit)?;
        let mut optimizer = new_optimizer(config, &model);
        let restored = if resume { run_dir.restore(&mut model, &mut optimizer)? } else { None };
        let (state, weights_sha256) = match restored {
            Some(state) => {
                emit(TrainingEvent::Note(format!("resuming after epoch {}", state.epoch)));
                (state, run_dir.receipt().and_then(|earlier| earlier.weights_sha256))
            }
            None => (LoopState::default(), load_starting_weights(config, paths, &mut model, cancel, emit)?),
        };
        if let Some(expected) = repeating {
            receipt::check_weights(expected, weights_sha256.as_deref())?;
        }
        run_dir.write_receipt(&receipt::record(config, device, data, weights_sha256))?;
        let train_count = dataset.train.len();
        let batches = Batches::new(config.batch_size, train_count);
        emit(TrainingEvent::Started {
            classes: dataset.classes.clone(),
            train_count: train_count as usize,
            test_count: dataset.test.len() as usize,
            first_epoch: state.epoch + 1,
            first_batch: state.partial.as_ref().map_or(0, |p| p.batches_done as u32),
        });
        let (mean, std) = config.normalization.mean_std();
        Ok(Learner {
            config,
            device,
            cancel,
            emit,
            run_dir,
            classes: dataset.classes,
            train: if streamed { dataset.train } else { dataset.train.in_memory(device)? },
            test: if streamed { dataset.test } else { dataset.test.in_memory(device)? },
            streamed,
            test_paths: dataset.test_paths,
            mean,
            std,
            model,
            optimizer,
            schedule: LrSchedule::new(config, batches.count() as u64),
            batches,
            state,
            last_checkpoint: Instant::now(),
        })
    }

    /// Trains every epoch left: each trained, evaluated and ended in turn.
    fn run(&mut self) -> Result<TrainOutcome, TrainError> {
        for epoch in self.state.epoch + 1..=self.config.epochs {
            let Some(totals) = self.train_epoch(epoch)? else { return Ok(TrainOutcome::Stopped) };
            let mut evaluation = evaluate(&self.model, &self.test, self.mean, self.std);
            for sample in &mut evaluation.samples {
                sample.path = self.test_paths.get(sample.index).cloned();
            }
            if !evaluation.loss.is_finite() {
                return Err(TrainError::NonFiniteTestLoss { epoch, value: evaluation.loss });
            }
            if let ControlFlow::Break(outcome) = self.end_epoch(epoch, totals, evaluation)? {
                return Ok(outcome);
            }
            if self.cancel.pause_after_epoch == Some(epoch) && epoch < self.config.epochs {
                return Ok(TrainOutcome::Paused { epoch });
            }
        }
        Ok(TrainOutcome::Completed)
    }

    /// Trains the batches of `epoch` (from where a stop left it), checkpointing inside it when due;
    /// `None` when the run was stopped (after a checkpoint of the batches done).
    fn train_epoch(&mut self, epoch: u32) -> Result<Option<EpochTotals>, TrainError> {
        let config = self.config;
        let frozen = config.backbone_frozen_in(epoch);
        self.model.set_backbone_trainable(!frozen);
        let train_count = self.train.len();
        let plan = EpochPlan::draw(config, epoch, train_count, self.device);
        let mut sums = self.epoch_sums(epoch);
        let mut stream = match self.streamed {
            true => Some(BatchStream::start(&self.train, &plan, self.batches, sums.first_batch, self.device)?),
            false => None,
        };
        let mut last_progress = Instant::now();
        let mut lr = self.schedule.lr_at(u64::from(epoch - 1) * self.batches.count() as u64);
        let mut checkpointed_batch = sums.first_batch;
        for batch in sums.first_batch..self.batches.count() {
            let stopping = self.cancel.is_cancelled();
            let due = || {
                self.cancel.take_checkpoint_request() || self.last_checkpoint.elapsed() >= self.cancel.checkpoint_every
            };
            // A request waits until there is a batch to keep.
            if batch > checkpointed_batch && (stopping || due()) {
                self.checkpoint_mid_epoch(epoch, batch, &sums)?;
                checkpointed_batch = batch;
            }
            if stopping {
                return Ok(None);
            }
            let (start, len) = self.batches.span(batch);
            let (images, labels) = match &mut stream {
                Some(stream) => stream.next_batch()?,
                None => plan.gather(&self.train, start, len),
            };
            let images = plan.augment(images, start); // [B, 3, H, W] u8
            lr = self.train_batch(epoch, batch, (&images, &labels), &mut sums, !frozen);
            let done = batch + 1;
            if last_progress.elapsed() >= PROGRESS_INTERVAL || done == self.batches.count() {
                last_progress = Instant::now();
                self.report_progress(epoch, done, &sums)?;
            }
        }
        let train_loss = sums.loss_sum.double_value(&[]) / train_count as f64;
        check_finite(train_loss, epoch)?;
        Ok(Some(EpochTotals {
            train_loss,
            train_accuracy: sums.correct.int64_value(&[]) as f64 / train_count as f64,
            lr,
            seconds: sums.seconds_before + sums.started.elapsed().as_secs_f64(),
        }))
    }

    /// Zeroed sums for `epoch`, or the sums a stop inside it kept.
    fn epoch_sums(&mut self, epoch: u32) -> EpochSums {
        let mut sums = EpochSums {
            loss_sum: Tensor::zeros([], (Kind::Float, self.device)),
            last_loss: Tensor::from(f64::NAN),
            correct: Tensor::zeros([], (Kind::Int64, self.device)),
            first_batch: 0,
            seconds_before: 0.0,
            started: Instant::now(),
        };
        if let Some(partial) = self.state.partial.take().filter(|p| p.epoch == epoch) {
            // f32 -> f64 -> f32 is exact, so the sums continue bit for bit.
            sums.loss_sum = Tensor::from(partial.loss_sum).to_kind(Kind::Float).to_device(self.device);
            sums.correct = Tensor::from(partial.correct).to_device(self.device);
            (sums.first_batch, sums.seconds_before) = (partial.batches_done, partial.seconds);
        }
        sums
    }

    /// One optimisation step on batch `batch` of `epoch`, its images `[B, 3, H, W]` u8 and labels `[B]`;
    /// returns the learning rate it used.
    fn train_batch(
        &mut self,
        epoch: u32,
        batch: i64,
        (images, labels): (&Tensor, &Tensor),
        sums: &mut EpochSums,
        train_backbone: bool,
    ) -> f64 {
        let config = self.config;
        let len = labels.size()[0];
        let images = normalize(images, self.mean, self.std); // [B, 3, H, W] f32
        let logits = training_logits(config, &self.model, &images, train_backbone); // [B, classes] f32
        let loss = logits.cross_entropy_loss::<Tensor>(labels, None, Reduction::Mean, -100, config.label_smoothing);
        self.optimizer.zero_grad();
        loss.backward();
        if let Some(max_norm) = config.grad_clip_norm {
            self.optimizer.clip_grad_norm(max_norm);
        }
        let lr = self.schedule.lr_at(u64::from(epoch - 1) * self.batches.count() as u64 + batch as u64);
        self.optimizer.step(lr);
        tch::no_grad(|| {
            sums.last_loss = loss.detach();
            sums.loss_sum += &sums.last_loss * len as f64;
            sums.correct += logits.argmax(-1, false).eq_tensor(labels).sum(Kind::Int64);
        });
        lr
    }

    /// Reports progress after `done` batches of `epoch`; fails the run if the loss stopped being a number.
    fn report_progress(&mut self, epoch: u32, done: i64, sums: &EpochSums) -> Result<(), TrainError> {
        let seen = self.batches.seen(done) as f64;
        let mean_loss = sums.loss_sum.double_value(&[]) / seen;
        check_finite(mean_loss, epoch)?;
        let elapsed = sums.started.elapsed().as_secs_f64();
        let count = self.batches.count();
        let batches_left = (count - done) + i64::from(self.config.epochs - epoch) * count;
        (self.emit)(TrainingEvent::Progress(EpochProgress {
            epoch,
            batch: done as u32,
            batches: count as u32,
            loss: mean_loss,
            batch_loss: sums.last_loss.double_value(&[]),
            images_per_second: (seen - self.batches.seen(sums.first_batch) as f64) / elapsed.max(1e-9),
            eta_seconds: elapsed / (done - sums.first_batch) as f64 * batches_left as f64,
        }));
        Ok(())
    }

    /// Commits a checkpoint of `epoch` after `batches_done` batches, with the sums so far.
    fn checkpoint_mid_epoch(&mut self, epoch: u32, batches_done: i64, sums: &EpochSums) -> Result<(), TrainError> {
        self.state.partial = Some(PartialEpoch {
            epoch,
            batches_done,
            loss_sum: sums.loss_sum.double_value(&[]),
            correct: sums.correct.int64_value(&[]),
            seconds: sums.seconds_before + sums.started.elapsed().as_secs_f64(),
        });
        let committed = self.run_dir.commit(&self.model, &self.optimizer, &self.state, None);
        self.state.partial = None;
        committed?;
        self.last_checkpoint = Instant::now();
        (self.emit)(TrainingEvent::CheckpointedMidEpoch { epoch, batches_done });
        Ok(())
    }

    /// Records `epoch`'s metrics, commits its checkpoint (and the best model, if it improved), and
    /// decides whether early stopping ends the run.
    fn end_epoch(
        &mut self,
        epoch: u32,
        totals: EpochTotals,
        evaluation: Evaluation,
    ) -> Result<ControlFlow<TrainOutcome>, TrainError> {
        let metrics = EpochMetrics {
            epoch,
            train_loss: totals.train_loss,
            train_accuracy: totals.train_accuracy,
            test_loss: evaluation.loss,
            test_accuracy: evaluation.accuracy,
            seconds: totals.seconds,
            test_top5_accuracy: evaluation.top5_accuracy,
            lr: totals.lr,
            per_class_accuracy: evaluation.per_class_accuracy(),
            confusion: evaluation.confusion.clone(),
        };
        let state = &mut self.state;
        state.epoch = epoch;
        state.epochs.push(metrics.clone());
        let improved = epoch == 1 || state.best_epoch == 0 || metrics.test_accuracy > state.best_accuracy;
        if improved {
            (state.best_accuracy, state.best_epoch, state.epochs_without_improvement) =
                (metrics.test_accuracy, epoch, 0);
        } else {
            state.epochs_without_improvement += 1;
        }
        let metadata = improved.then(|| model_metadata(&self.classes, self.config, epoch));
        let best = metadata.as_ref().map(|metadata| BestModel { metadata, test_predictions: &evaluation.samples });
        self.run_dir.commit(&self.model, &self.optimizer, &self.state, best)?;
        self.last_checkpoint = Instant::now();
        (self.emit)(TrainingEvent::EpochCompleted(metrics));
        if improved {
            (self.emit)(TrainingEvent::ModelSaved { epoch });
        }
        if self.state.patience_run_out(self.config) && epoch < self.config.epochs {
            (self.emit)(TrainingEvent::Note(format!(
                "early stopping after epoch {epoch}: no better test accuracy since epoch {}",
                self.state.best_epoch
            )));
            return Ok(ControlFlow::Break(TrainOutcome::EarlyStopped { epoch }));
        }
        Ok(ControlFlow::Continue(()))
    }
}

/// The optimiser `config` asks for over `model`'s parameters (the backbone's scaled in two-phase mode).
pub(crate) fn new_optimizer(config: &TrainConfig, model: &ResNet18) -> Optimizer {
    let backbone_scale = if config.mode == FineTuneMode::TwoPhase { config.backbone_lr_scale } else { 1.0 };
    let parameters = model
        .parameters()
        .into_iter()
        .map(|(name, tensor, backbone)| (name, tensor, if backbone { backbone_scale } else { 1.0 }))
        .collect();
    Optimizer::new(optimizer_rule(config), parameters)
}

/// Training-mode logits `[B, classes]` as f32 for normalised `images` `[B, 3, H, W]`, under bfloat16
/// autocast when `config` asks for mixed precision on CUDA.
pub(crate) fn training_logits(config: &TrainConfig, model: &ResNet18, images: &Tensor, train_backbone: bool) -> Tensor {
    if config.mixed_precision && images.device().is_cuda() {
        crate::model::torch_extras::with_cuda_autocast(|| model.forward_parts(images, train_backbone))
            .to_kind(Kind::Float)
    } else {
        model.forward_parts(images, train_backbone)
    }
}

/// Finds (or downloads) the dataset and decodes it, reporting progress; refuses an empty training set.
pub(crate) fn load_dataset(
    config: &TrainConfig,
    paths: &TrainingPaths,
    cancel: &RunControl,
    emit: &mut dyn FnMut(TrainingEvent),
) -> Result<data::Dataset, TrainError> {
    let source = find_or_download_dataset(config, paths, cancel, emit)?;
    let mut last_report: Option<Instant> = None;
    let started = Instant::now();
    let mut decoding = |done: u64, total: u64| {
        if done == total || last_report.is_none_or(|at| at.elapsed() >= download::REPORT_INTERVAL) {
            last_report = Some(Instant::now());
            let seconds = started.elapsed().as_secs_f64();
            emit(TrainingEvent::Preparing(Preparation {
                step: PreparationStep::Decoding,
                subject: config.dataset.clone(),
                done,
                total: Some(total),
                per_second: (seconds >= 1.0 && done > 0).then(|| done as f64 / seconds),
            }));
        }
        cancel.go_on()
    };
    let recipe = data::Recipe {
        input_size: config.input_size,
        validation_fraction: config.validation_fraction,
        seed: config.seed,
    };
    let dataset = data::load_reporting(&source, &recipe, &mut decoding)?;
    if dataset.train.is_empty() {
        return Err(TrainError::EmptyTrainingSet(config.dataset.clone()));
    }
    if let Some(first) = dataset.unreadable.first() {
        let count = dataset.unreadable.len();
        let images = if count == 1 { "image" } else { "images" };
        emit(TrainingEvent::Note(format!("{count} unreadable {images} skipped (first: {first})")));
    }
    Ok(dataset)
}

/// Whether `dataset` is streamed from its decoded cache rather than held in memory: when its images take
/// more than `budget` bytes. A streamed run says so in its log.
fn streams(dataset: &data::Dataset, budget: u64, emit: &mut dyn FnMut(TrainingEvent)) -> bool {
    let bytes = dataset.image_bytes();
    let streamed = bytes > budget;
    if streamed {
        emit(TrainingEvent::Note(format!(
            "the decoded images take {}, more than the memory budget of {}: streaming them from the decoded cache",
            data::memory_size(bytes),
            data::memory_size(budget)
        )));
    }
    streamed
}

/// Loads the backbone of the config's starting weights (a file in the weights folder, or ImageNet's,
/// found or downloaded) into `model` and returns the file's SHA-256; nothing for `"none"`.
pub(crate) fn load_starting_weights(
    config: &TrainConfig,
    paths: &TrainingPaths,
    model: &mut ResNet18,
    cancel: &RunControl,
    emit: &mut dyn FnMut(TrainingEvent),
) -> Result<Option<String>, TrainError> {
    if config.weights == shared::defaults::WEIGHTS_NONE {
        return Ok(None);
    }
    let file = if config.weights == shared::defaults::WEIGHTS_IMAGENET {
        crate::model::pretrained::resolve(&paths.weights_dir, &paths.imagenet, &mut preparing(cancel, emit))?
    } else {
        paths.weights_dir.join(&config.weights)
    };
    let loaded = model.load_backbone(&file)?;
    emit(TrainingEvent::Note(format!("loaded {loaded} backbone tensors from {}", config.weights)));
    let hashed = crate::model::weights::file_sha256(&file)
        .map_err(|source| TrainError::WeightsFile { weights: config.weights.clone(), source })?;
    Ok(Some(hashed))
}

fn optimizer_rule(config: &TrainConfig) -> Rule {
    match config.optimizer {
        OptimizerKind::Sgd => {
            Rule::Sgd { momentum: config.momentum, nesterov: config.nesterov, weight_decay: config.weight_decay }
        }
        OptimizerKind::Adamw => Rule::AdamW { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: config.weight_decay },
    }
}

/// Sets the CUDA-only options (bfloat16 autocast, cuDNN benchmark, channels-last) on a CUDA device;
/// on the CPU, notes the ones asked for as ignored.
pub(crate) fn apply_device_options(
    config: &TrainConfig,
    device: Device,
    model: &mut ResNet18,
    emit: &mut dyn FnMut(TrainingEvent),
) -> Result<(), TrainError> {
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(config.cudnn_benchmark);
        // Without the autotuner, deterministic algorithms: a resumed run repeats an uninterrupted one
        // bit for bit on the GPU as on the CPU. With it, speed comes first.
        crate::model::torch_extras::set_cudnn_deterministic(!config.cudnn_benchmark);
        crate::model::torch_extras::set_cuda_autocast_bfloat16(true);
        if config.channels_last {
            model.use_channels_last()?;
        }
        return Ok(());
    }
    let asked = [
        ("mixed_precision", config.mixed_precision),
        ("cudnn_benchmark", config.cudnn_benchmark),
        ("channels_last", config.channels_last),
    ];
    // Named by the form's labels: the note is shown in the run's log on the page.
    let ignored: Vec<&str> =
        asked.into_iter().filter_map(|(name, on)| on.then_some(shared::fields::label_of(name))).collect();
    if !ignored.is_empty() {
        let apply = if ignored.len() == 1 { "applies" } else { "apply" };
        emit(TrainingEvent::Note(format!("{} {apply} on CUDA only; ignored on the CPU", ignored.join(", "))));
    }
    Ok(())
}

fn check_finite(loss: f64, epoch: u32) -> Result<(), TrainError> {
    if loss.is_finite() {
        Ok(())
    } else {
        Err(TrainError::NonFiniteLoss { epoch, value: loss })
    }
}

/// What an evaluation over a split measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Mean cross-entropy over every sample.
    pub loss: f64,
    /// Fraction predicted right.
    pub accuracy: f64,
    /// Fraction whose class is in the top five, when there are more than five classes.
    pub top5_accuracy: Option<f64>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<u32>>,
    /// Every sample in split order: true class, predicted class and loss.
    pub samples: Vec<TestImage>,
}

impl Evaluation {
    /// Accuracy of each class (0 for a class with no samples).
    pub fn per_class_accuracy(&self) -> Vec<f64> {
        self.confusion
            .iter()
            .enumerate()
            .map(|(class, row)| {
                let total: u32 = row.iter().sum();
                if total == 0 {
                    0.0
                } else {
                    f64::from(row[class]) / f64::from(total)
                }
            })
            .collect()
    }
}

/// Evaluates `model` on every sample of `split`, in batches, without gradients.
pub fn evaluate(model: &ResNet18, split: &Split, mean: [f64; 3], std: [f64; 3]) -> Evaluation {
    let classes = model.num_classes();
    let count = split.len();
    let empty = Evaluation {
        loss: 0.0,
        accuracy: 0.0,
        top5_accuracy: (classes > 5).then_some(0.0),
        confusion: vec![vec![0; classes as usize]; classes as usize],
        samples: Vec::new(),
    };
    if count == 0 {
        return empty;
    }
    // The batch norms folded once per evaluation: one pass less over every activation.
    let folded = FoldedResNet18::of(model);
    let forward = |images: &Tensor| match &folded {
        Ok(folded) => folded.forward(images),
        Err(_) => model.forward_t(images, false),
    };
    tch::no_grad(|| {
        let device = model.device();
        let mut loss_sum = Tensor::zeros([], (Kind::Double, device));
        let mut top5 = Tensor::zeros([], (Kind::Int64, device));
        let mut confusion = Tensor::zeros([classes * classes], (Kind::Int64, device));
        let mut sample_losses = Vec::new();
        let mut sample_predictions = Vec::new();
        for start in (0..count).step_by(EVAL_BATCH as usize) {
            let len = EVAL_BATCH.min(count - start);
            let images = normalize(&split.images.narrow(0, start, len).to_device(device), mean, std); // [B, 3, H, W]
            let labels = split.labels.narrow(0, start, len).to_device(device); // [B]
            let logits = forward(&images).to_kind(Kind::Float); // [B, classes]
            let losses = logits.cross_entropy_loss::<Tensor>(&labels, None, Reduction::None, -100, 0.0); // [B]
            loss_sum += losses.sum(Kind::Double);
            let predicted = logits.argmax(-1, false); // [B]
            sample_losses.push(losses);
            sample_predictions.push(predicted.shallow_clone());
            confusion += (&labels * classes + predicted).bincount::<Tensor>(None, classes * classes);
            if classes > 5 {
                let (_, best5) = logits.topk(5, -1, true, false); // [B, 5]
                top5 += best5.eq_tensor(&labels.unsqueeze(1)).any_dim(1, false).sum(Kind::Int64);
            }
        }
        let confusion = Vec::<i64>::try_from(confusion.to_device(Device::Cpu)).unwrap_or_default();
        let confusion: Vec<Vec<u32>> =
            confusion.chunks(classes as usize).map(|row| row.iter().map(|&c| c as u32).collect()).collect();
        let right: u32 = (0..classes as usize).map(|c| confusion[c][c]).sum();
        let losses = Vec::<f32>::try_from(Tensor::cat(&sample_losses, 0).to_device(Device::Cpu)).unwrap_or_default();
        let predictions =
            Vec::<i64>::try_from(Tensor::cat(&sample_predictions, 0).to_device(Device::Cpu)).unwrap_or_default();
        let labels = Vec::<i64>::try_from(split.labels.to_device(Device::Cpu)).unwrap_or_default();
        let samples = (0..losses.len())
            .map(|index| TestImage {
                index,
                actual: labels[index] as usize,
                predicted: predictions[index] as usize,
                loss: f64::from(losses[index]),
                path: None,
            })
            .collect();
        Evaluation {
            samples,
            loss: loss_sum.double_value(&[]) / count as f64,
            accuracy: f64::from(right) / count as f64,
            top5_accuracy: (classes > 5).then(|| top5.int64_value(&[]) as f64 / count as f64),
            confusion,
        }
    })
}

fn model_metadata(classes: &[String], config: &TrainConfig, epoch: u32) -> ModelMetadata {
    let (mean, std) = config.normalization.mean_std();
    ModelMetadata {
        architecture: "resnet18".into(),
        classes: classes.to_vec(),
        mean,
        std,
        input_size: config.input_size,
        epoch,
        config: config.clone(),
    }
}

fn find_or_download_dataset(
    config: &TrainConfig,
    paths: &TrainingPaths,
    cancel: &RunControl,
    emit: &mut dyn FnMut(TrainingEvent),
) -> Result<data::DatasetSource, TrainError> {
    match data::inspect(&paths.data_dir, &config.dataset) {
        Err(DataError::NotFound(_)) if config.dataset == download::CIFAR10_NAME => {
            emit(TrainingEvent::Note(format!(
                "{} is not in the data folder: downloading it from {}",
                config.dataset, paths.cifar10.url
            )));
            download::fetch_cifar10(&paths.data_dir, &paths.cifar10, &mut preparing(cancel, emit))?;
            emit(TrainingEvent::DatasetDownloaded { name: config.dataset.clone() });
            Ok(data::inspect(&paths.data_dir, &config.dataset)?)
        }
        other => Ok(other?),
    }
}
