//! The protocol of Transfer Studio, written once and used by both sides.
//!
//! The browser (compiled to WebAssembly) and the server (native) exchange exactly these types:
//! - [`TrainConfig`] is what a person configures; [`TrainConfig::validate`] holds the rules, so the page
//!   checks fields as they are typed with the same code the server uses to refuse a request.
//! - [`ClientMessage`] is what the browser sends over the WebSocket, [`ServerMessage`] what the server
//!   sends back: a [`ServerMessage::Snapshot`] on connect, then live events.
//! - The HTTP API returns [`Run`], [`DatasetInfo`], [`ClassifyResponse`], [`HealthResponse`] and, for every
//!   refused request, an [`ErrorBody`] whose sentence names what was wrong.
//!
//! This crate depends on serde (with serde_json for sweep values) and a seeded generator for random sweeps
//! only, so it builds for `wasm32-unknown-unknown` and native alike.

use serde::{Deserialize, Serialize};
use std::fmt;

pub mod fields;
pub mod names;
pub mod sweep;
pub mod trace;
pub use fields::{Choice, Field, Surroundings, FIELDS};
pub use names::{check_dataset_name, check_dataset_reference, check_file_name};

/// Default values of [`TrainConfig`], following the seed recipe (SGD, lr 0.001, momentum 0.9).
pub mod defaults {
    /// Epochs to train.
    pub const EPOCHS: u32 = 2;
    /// Images per optimisation step.
    pub const BATCH_SIZE: u32 = 64;
    /// SGD learning rate of the seed recipe.
    pub const LR: f64 = 0.001;
    /// SGD momentum of the seed recipe.
    pub const MOMENTUM: f64 = 0.9;
    /// Seed for weight initialisation and shuffling.
    pub const SEED: u64 = 0;
    /// Side of the square image the network sees; CIFAR's native size.
    pub const INPUT_SIZE: u32 = 32;
    /// Weights value meaning "random initialisation".
    pub const WEIGHTS_NONE: &str = "none";
    /// Weights value meaning torchvision's ImageNet ResNet-18 (`resnet18-f37072fd.pth`), fetched when missing.
    pub const WEIGHTS_IMAGENET: &str = "imagenet";
}

/// Bounds that [`TrainConfig::validate`] enforces.
pub mod limits {
    /// Most epochs a run may ask for.
    pub const MAX_EPOCHS: u32 = 1000;
    /// Largest batch size accepted.
    pub const MAX_BATCH_SIZE: u32 = 4096;
    /// Largest learning rate accepted.
    pub const MAX_LR: f64 = 10.0;
    /// Smallest input side: ResNet-18 downsamples 32x.
    pub const MIN_INPUT_SIZE: u32 = 32;
    /// Largest input side.
    pub const MAX_INPUT_SIZE: u32 = 224;
    /// Longest dataset or weights file name.
    pub const MAX_NAME_LEN: usize = 128;
    /// Longest run name, in characters.
    pub const MAX_RUN_NAME_CHARS: usize = 80;
}

/// How pixel values are normalised before they reach the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Normalization {
    /// ImageNet's per-channel mean and standard deviation: what pretrained ResNet-18 weights expect.
    #[default]
    Imagenet,
    /// Mean 0.5 and standard deviation 0.5 on every channel, as in the seed recipe.
    Half,
}

impl Normalization {
    /// Per-channel (R, G, B) mean and standard deviation applied to pixels scaled to `[0, 1]`.
    pub fn mean_std(self) -> ([f64; 3], [f64; 3]) {
        match self {
            Normalization::Imagenet => ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
            Normalization::Half => ([0.5; 3], [0.5; 3]),
        }
    }
}

/// Which parts of the network train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FineTuneMode {
    /// Every layer trains (with weights `"none"`: training from scratch).
    #[default]
    Full,
    /// Feature extraction, as the seed recipe describes: the pretrained backbone is frozen, batch-norm
    /// statistics included, and only the new head trains.
    Frozen,
    /// fastai's recipe: `frozen_epochs` epochs frozen, then everything trains, the backbone at
    /// `backbone_lr_scale` times the learning rate.
    TwoPhase,
}

/// The update rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// SGD with `momentum`, optional Nesterov and weight decay (the seed recipe's).
    #[default]
    Sgd,
    /// AdamW (decoupled weight decay).
    Adamw,
}

/// How the learning rate changes over the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// `lr` throughout (after any warm-up).
    #[default]
    Constant,
    /// Multiplied by `gamma` every `step_size` epochs.
    Step,
    /// Cosine decay from `lr` to 0 over the run, after `warmup_epochs` of linear warm-up.
    Cosine,
    /// One-cycle: up from `lr`/25 to `lr` over the first 30 % of steps, then cosine down to `lr`/10⁴.
    OneCycle,
}

/// Everything that defines a training run. Missing fields take their value in `TrainConfig::default()`;
/// unknown fields are refused so that a typo never silently trains with a default. Every field is described
/// once, for people, in [`fields::FIELDS`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Name of a dataset folder under the data directory (see `GET /api/datasets`).
    pub dataset: String,
    /// Number of passes over the training set.
    pub epochs: u32,
    /// Images per optimisation step.
    pub batch_size: u32,
    /// SGD learning rate.
    pub lr: f64,
    /// SGD momentum, in `[0, 1)`.
    pub momentum: f64,
    /// Seed for initialisation and shuffling; the same seed gives the same run on CPU.
    pub seed: u64,
    /// `"none"` for random initialisation, `"imagenet"` for torchvision's ImageNet ResNet-18, or the
    /// file name of a torchvision ResNet-18 state dict in the weights folder (`.safetensors`, or a
    /// `torch.save` checkpoint `.pth`/`.pt`).
    pub weights: String,
    /// Images are resized to `input_size` x `input_size` when the dataset is decoded.
    pub input_size: u32,
    /// Pixel normalisation; saved with the model so classification uses the same.
    pub normalization: Normalization,
    /// Which layers train.
    pub mode: FineTuneMode,
    /// Epochs with the backbone frozen before it is unfrozen, in `two_phase` mode.
    pub frozen_epochs: u32,
    /// The backbone's learning rate as a fraction of `lr` once it trains in `two_phase` mode.
    pub backbone_lr_scale: f64,
    /// The update rule.
    pub optimizer: OptimizerKind,
    /// Nesterov momentum (SGD only).
    pub nesterov: bool,
    /// Weight decay: L2 for SGD, decoupled for AdamW.
    pub weight_decay: f64,
    /// How the learning rate changes over the run.
    pub schedule: Schedule,
    /// Epochs of linear warm-up from 0 to `lr` (constant, step and cosine schedules).
    pub warmup_epochs: u32,
    /// Epochs between learning-rate drops in the `step` schedule.
    pub step_size: u32,
    /// Factor of each drop in the `step` schedule.
    pub gamma: f64,
    /// Cross-entropy label smoothing, in `[0, 1)`.
    pub label_smoothing: f64,
    /// Clip the gradients' global L2 norm to this; `null` for no clipping.
    pub grad_clip_norm: Option<f64>,
    /// Random crop with 4 pixels of zero padding (one-eighth of the side for larger inputs).
    pub random_crop: bool,
    /// Random horizontal flip.
    pub horizontal_flip: bool,
    /// Stop after this many epochs without a better test accuracy; `null` never stops early.
    pub early_stopping_patience: Option<u32>,
    /// For a class-folder dataset without `test/`: the fraction of each class held out for testing.
    pub validation_fraction: f64,
    /// CUDA only: bfloat16 autocast for the forward pass (no loss scaling needed, unlike float16).
    pub mixed_precision: bool,
    /// CUDA only: let cuDNN pick the fastest convolution algorithms.
    pub cudnn_benchmark: bool,
    /// CUDA only: channels-last (NHWC) weights and inputs, faster convolutions on tensor cores.
    pub channels_last: bool,
}

impl Default for TrainConfig {
    /// The seed recipe with no dataset chosen: what every missing field of a request takes.
    fn default() -> Self {
        TrainConfig {
            dataset: String::new(),
            epochs: defaults::EPOCHS,
            batch_size: defaults::BATCH_SIZE,
            lr: defaults::LR,
            momentum: defaults::MOMENTUM,
            seed: defaults::SEED,
            weights: defaults::WEIGHTS_NONE.to_string(),
            input_size: defaults::INPUT_SIZE,
            normalization: Normalization::default(),
            mode: FineTuneMode::default(),
            frozen_epochs: 1,
            backbone_lr_scale: 0.1,
            optimizer: OptimizerKind::default(),
            nesterov: false,
            weight_decay: 0.0,
            schedule: Schedule::default(),
            warmup_epochs: 0,
            step_size: 10,
            gamma: 0.1,
            label_smoothing: 0.0,
            grad_clip_norm: None,
            random_crop: false,
            horizontal_flip: false,
            early_stopping_patience: None,
            validation_fraction: 0.2,
            mixed_precision: false,
            cudnn_benchmark: false,
            channels_last: false,
        }
    }
}

impl TrainConfig {
    /// A configuration for `dataset` with every other field at its default.
    pub fn for_dataset(dataset: impl Into<String>) -> Self {
        TrainConfig { dataset: dataset.into(), ..TrainConfig::default() }
    }

    /// True when the backbone is frozen during `epoch` (1-based).
    pub fn backbone_frozen_in(&self, epoch: u32) -> bool {
        match self.mode {
            FineTuneMode::Full => false,
            FineTuneMode::Frozen => true,
            FineTuneMode::TwoPhase => epoch <= self.frozen_epochs,
        }
    }

    /// Checks every field against the rules both the page and the server apply.
    /// Returns the first problem found, naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.problems().into_iter().next().map_or(Ok(()), Err)
    }

    /// Every problem with this configuration, one per offending field, in form order, each a sentence
    /// that names the field by its label ("Batch size must be between 1 and 4096, got 0"; "Choose a
    /// dataset to train on: pick one in the Dataset menu, ..." when none is chosen). Settings that
    /// do not apply to this configuration (the step size of a constant schedule) are not judged.
    pub fn problems(&self) -> Vec<ConfigError> {
        fields::problems(self)
    }
}

/// A configuration field that breaks a rule, with a sentence that says which and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The offending field's name as it appears in the JSON.
    pub field: &'static str,
    /// A sentence for a person, naming the field and the rule.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Waiting for the run ahead of it to finish.
    Queued,
    /// Training now.
    Running,
    /// Trained every epoch it was asked for.
    Completed,
    /// Stopped by a person; what it learned so far is saved.
    Stopped,
    /// Ended by an error, named in [`Run::error`].
    Failed,
    /// Was running when the server went down.
    Interrupted,
    /// Ended early by its sweep's early stopping: behind the others at a rung (see [`sweep::Asha`]).
    Pruned,
}

impl RunStatus {
    /// True once the run will not change any more by itself.
    pub fn is_finished(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }

    /// The lower-case name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Stopped => "stopped",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Pruned => "pruned",
        }
    }

    /// Every status, in the order a run's life passes through them.
    pub const ALL: [RunStatus; 7] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Completed,
        RunStatus::Stopped,
        RunStatus::Failed,
        RunStatus::Interrupted,
        RunStatus::Pruned,
    ];

    /// Parses the name written by [`RunStatus::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        RunStatus::ALL.into_iter().find(|status| status.as_str() == name)
    }
}

/// What one epoch measured. Accuracies are fractions in `[0, 1]`; losses are means over all samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: u32,
    /// Mean cross-entropy over the training samples of this epoch.
    pub train_loss: f64,
    /// Fraction of training samples predicted right during this epoch.
    pub train_accuracy: f64,
    /// Mean cross-entropy over every test sample after this epoch.
    pub test_loss: f64,
    /// Fraction of test samples predicted right after this epoch.
    pub test_accuracy: f64,
    /// Wall-clock seconds the epoch took, evaluation included.
    pub seconds: f64,
    /// Fraction of test samples whose class is among the five most likely; only with more than 5 classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_top5_accuracy: Option<f64>,
    /// Learning rate at the end of the epoch.
    #[serde(default)]
    pub lr: f64,
    /// Test accuracy of each class, in class order.
    #[serde(default)]
    pub per_class_accuracy: Vec<f64>,
    /// Test confusion matrix: `confusion[true][predicted]` counts.
    #[serde(default)]
    pub confusion: Vec<Vec<u32>>,
}

/// A training run as the API reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Identifier, unique within a data directory.
    pub id: u64,
    /// Where the run is in its life.
    pub status: RunStatus,
    /// The configuration it was started with.
    pub config: TrainConfig,
    /// Metrics of every finished epoch, in order.
    pub epochs: Vec<EpochMetrics>,
    /// Why the run failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Class names of the dataset, in label order, once known.
    #[serde(default)]
    pub classes: Vec<String>,
    /// Seconds since the Unix epoch when the run was created.
    pub created_at: u64,
    /// True when a trained model of this run can classify images.
    #[serde(default)]
    pub has_model: bool,
    /// The best checkpoint saved so far, as the history records it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_checkpoint: Option<Checkpoint>,
    /// The name a person gave the run; `None` shows as "Run #{id}" (see [`Run::title`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The device it last trained on (`"cpu"`, `"cuda:0"`); `None` until it starts, and for runs recorded
    /// before the history kept it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Where its current (or last) attempt was placed; `None` while it waits in the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// The sweep it is a trial of, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<sweep::SweepRef>,
}

/// Where an executor put a run's attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "executor", rename_all = "snake_case")]
pub enum Placement {
    /// On the studio's own machine: one of its `--slots`, with that slot's device and threads.
    Local {
        /// `"cpu"` or `"cuda:1"`.
        device: String,
        /// The slot, from 0.
        slot: u32,
        /// libtorch's intra-op threads the slot trains with.
        threads: u32,
    },
    /// A batch job on a Slurm cluster (`serve --executor slurm`).
    Slurm {
        /// Slurm's job id.
        job_id: String,
        /// The node it runs on, once it runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
        /// Slurm's state of the job: `PENDING`, `RUNNING`, …
        state: String,
        /// Slurm's pending reason while it waits (`Resources`, `Priority`, …).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// Times Slurm requeued it.
        #[serde(default)]
        restarts: u32,
    },
}

impl Placement {
    /// A few words for a person: "slot 1 · cuda:1 · 8 threads".
    pub fn describe(&self) -> String {
        match self {
            Placement::Local { device, slot, threads } => {
                let plural = if *threads == 1 { "" } else { "s" };
                format!("slot {slot} · {device} · {threads} thread{plural}")
            }
            Placement::Slurm { job_id, node, state, reason, restarts } => {
                let mut words = format!("Slurm job {job_id} · {state}");
                if let Some(node) = node {
                    words.push_str(&format!(" on {node}"));
                }
                if let Some(reason) = reason.as_deref().filter(|r| !r.is_empty() && *r != "None") {
                    words.push_str(&format!(" ({reason})"));
                }
                if *restarts > 0 {
                    words.push_str(&format!(" · restarted {restarts}x"));
                }
                words
            }
        }
    }
}

impl Run {
    /// The run's name, or "Run #{id}" when it has none.
    pub fn title(&self) -> String {
        self.name.clone().unwrap_or_else(|| format!("Run #{}", self.id))
    }

    /// Test accuracy after the last finished epoch.
    pub fn final_test_accuracy(&self) -> Option<f64> {
        self.epochs.last().map(|m| m.test_accuracy)
    }

    /// The highest test accuracy of any finished epoch.
    pub fn best_test_accuracy(&self) -> Option<f64> {
        self.epochs.iter().map(|m| m.test_accuracy).reduce(f64::max)
    }

    /// Seconds spent in its finished epochs (training and evaluation), across resumes.
    pub fn training_seconds(&self) -> f64 {
        self.epochs.iter().map(|m| m.seconds).sum()
    }
}

/// Checks a run name a person typed: surrounding spaces are dropped, an empty name clears it (`None`),
/// and a name is at most [`limits::MAX_RUN_NAME_CHARS`] characters without control characters. The error
/// is a sentence for a person.
pub fn check_run_name(name: &str) -> Result<Option<String>, String> {
    let name = name.trim();
    if name.chars().count() > limits::MAX_RUN_NAME_CHARS {
        return Err(format!(
            "name must be at most {} characters, got {}",
            limits::MAX_RUN_NAME_CHARS,
            name.chars().count()
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("name must not contain control characters such as line breaks or tabs".into());
    }
    Ok((!name.is_empty()).then(|| name.to_string()))
}

/// Body of `PATCH /api/runs/{id}`: what to change about a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunPatch {
    /// The new name (trimmed; empty clears it, see [`check_run_name`]).
    pub name: String,
}

/// What a run used and where it ran: written as `receipt.json` in the run's folder when training starts,
/// answered by `GET /api/runs/{id}/receipt` with the epochs recorded since, and read back by
/// `transfer-studio train --receipt FILE` to repeat the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReceipt {
    /// The version of the program that trained it (`transfer-studio --version`).
    pub version: String,
    /// The device it trained on: `"cpu"`, `"cuda:0"`.
    pub device: String,
    /// libtorch's intra-op threads when training started: reductions split by thread count, so a bit-for-bit
    /// repeat uses the same number.
    pub threads: u32,
    /// The arithmetic of the forward and backward passes.
    pub precision: Precision,
    /// The seed every random choice was drawn from (also in `config`).
    pub seed: u64,
    /// The images and labels it trained and was tested on, by content.
    pub data: DataFingerprint,
    /// SHA-256 of the starting weights file (lower-case hex); `None` for random initial weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_sha256: Option<String>,
    /// The whole training configuration.
    pub config: TrainConfig,
    /// Every finished epoch's metrics, in order. The file written when training starts has none; the API
    /// and the command line fill them in from what the run measured.
    #[serde(default)]
    pub epochs: Vec<EpochMetrics>,
}

/// The arithmetic a run trained in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// 32-bit floats throughout.
    Float32,
    /// bfloat16 autocast on CUDA (mixed precision), float32 weights and loss.
    Bfloat16Autocast,
}

impl Precision {
    /// How the page names it.
    pub fn label(self) -> &'static str {
        match self {
            Precision::Float32 => "float32",
            Precision::Bfloat16Autocast => "bfloat16 autocast (mixed precision)",
        }
    }
}

/// The content of the images and labels a run used, as decoded tensors in the order training reads them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFingerprint {
    /// Class names in label order.
    pub classes: Vec<String>,
    /// The training split.
    pub train: SplitFingerprint,
    /// The test split.
    pub test: SplitFingerprint,
    /// SHA-256 over the class names and both splits' hashes: equal when, and only when, a run sees the same
    /// pixels and labels in the same order.
    pub sha256: String,
}

/// One split's images and labels by content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitFingerprint {
    /// Images in the split.
    pub images: u64,
    /// SHA-256 of the decoded images: `[N, 3, S, S]` bytes (red, green, blue planes of S x S pixels each),
    /// image after image in split order.
    pub images_sha256: String,
    /// SHA-256 of the labels: one little-endian 64-bit class index per image, in split order.
    pub labels_sha256: String,
}

/// A saved model file of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The epoch its weights are from.
    pub epoch: u32,
    /// Size of the safetensors file.
    pub bytes: u64,
    /// Seconds since the Unix epoch when it was written.
    pub saved_at: u64,
}

/// How a dataset came into the data folder, when the studio put it there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetOrigin {
    /// A zip uploaded from the page or `POST /api/datasets`.
    Uploaded,
    /// Downloaded from its official address by a run that asked for it.
    Downloaded,
}

/// When and how the studio added a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetAdded {
    /// Uploaded or downloaded.
    pub origin: DatasetOrigin,
    /// Seconds since the Unix epoch.
    pub at: u64,
}

/// A step before a run's first batch that a person may wait on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PreparationStep {
    /// Fetching a dataset archive or weight file; counted in bytes.
    Downloading,
    /// Unpacking a downloaded archive; counted in files.
    Unpacking,
    /// Decoding the dataset into tensors; counted in images.
    Decoding,
}

/// How far a preparation step has got, sent a few times a second while it lasts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preparation {
    /// The step.
    pub step: PreparationStep,
    /// What the step works on, for a person: `"CIFAR-10"`, `"resnet18-f37072fd.pth"`, a dataset name.
    pub subject: String,
    /// Units done: bytes, files or images (see [`PreparationStep`]).
    pub done: u64,
    /// Units in all, when known (a download without a length, or unpacking, has none).
    pub total: Option<u64>,
    /// Units per second since the step began, once it has run long enough to say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_second: Option<f64>,
}

/// Live progress inside an epoch, sent every few batches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchProgress {
    /// The run training.
    pub run_id: u64,
    /// 1-based epoch.
    pub epoch: u32,
    /// Batches of this epoch done so far.
    pub batch: u32,
    /// Batches in one epoch.
    pub batches: u32,
    /// Mean loss of the batches done so far in this epoch.
    pub loss: f64,
    /// Loss of the last batch before this report, not averaged (absent from older servers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_loss: Option<f64>,
    /// Training throughput over this epoch so far.
    pub images_per_second: f64,
    /// Estimated seconds until the run's last epoch ends, at this epoch's pace (evaluation not counted).
    #[serde(default)]
    pub eta_seconds: f64,
}

/// The layout a dataset folder was recognised as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetFormat {
    /// CIFAR-10's binary batches (`data_batch_1.bin` .. `test_batch.bin`, `batches.meta.txt`).
    Cifar10Binary,
    /// CIFAR-10's "python version" (`cifar-10-batches-py`: pickled `data_batch_1` .. `test_batch`,
    /// `batches.meta`), read without Python.
    Cifar10Python,
    /// CIFAR-100's "python version" (`cifar-100-python`: pickled `train`, `test`, `meta`); the 100 fine
    /// labels, read without Python.
    Cifar100Python,
    /// CIFAR-100's binary files (`train.bin`, `test.bin`, `fine_label_names.txt`); the 100 fine labels.
    Cifar100Binary,
    /// `train/<class>/<image>` and `test/<class>/<image>`.
    ClassFolders,
    /// `<class>/<image>` only: each class is split into train and test by the run's
    /// `validation_fraction`, stratified and seeded. Counts are reported for the default fraction.
    ImageFolder,
}

/// A decoded cache: a dataset's images decoded once at one input size, kept on disk for every later run
/// (`GET /api/caches`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecodedCacheInfo {
    /// Its key, what `DELETE /api/caches/{id}` takes.
    pub id: String,
    /// The dataset (or version) it holds.
    pub dataset: String,
    /// Side of its images, in pixels.
    pub input_size: u32,
    /// Training and test images.
    pub images: u64,
    /// Bytes on disk.
    pub bytes: u64,
    /// When it was built, in seconds since the Unix epoch.
    pub built_at: u64,
}

/// A dataset found under the data directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    /// Folder name; what [`TrainConfig::dataset`] refers to.
    pub name: String,
    /// The layout it was recognised as.
    pub format: DatasetFormat,
    /// Class names in label order.
    pub classes: Vec<String>,
    /// Images in the training split.
    pub train_count: usize,
    /// Images in the test split.
    pub test_count: usize,
    /// When and how the studio added it; `None` for folders put in the data folder by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added: Option<DatasetAdded>,
    /// Why the dataset cannot be used, when its layout is recognised but its files cannot be read (the
    /// classes are then empty and the counts 0); `None` for a usable dataset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For a version (`{name}@v{n}`, see [`DatasetEdits`]): the dataset or version it was made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// For a version: images it leaves out of its parent.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub excluded: usize,
    /// For a version: images it gives another class than its parent does.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub relabelled: usize,
    /// For a version: images it adds to its parent's training images (see [`DatasetEdits::add`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub added_images: usize,
}

impl DatasetInfo {
    /// A usable dataset (not a version) with these classes and counts, nothing else recorded.
    pub fn new(name: &str, format: DatasetFormat, classes: Vec<String>, train_count: usize, test_count: usize) -> Self {
        DatasetInfo {
            name: name.to_string(),
            format,
            classes,
            train_count,
            test_count,
            added: None,
            error: None,
            parent: None,
            excluded: 0,
            relabelled: 0,
            added_images: 0,
        }
    }
}

fn is_zero(count: &usize) -> bool {
    *count == 0
}

/// Body of `POST /api/datasets/{name}/versions`: images to leave out and images to give another class,
/// by their paths relative to the dataset (as [`DatasetHealth`] names them: `train/cat/1.png`, or
/// `data_batch_1.bin#17` for a CIFAR record), and new images to add. The answer is the new version's
/// [`DatasetInfo`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetEdits {
    /// Paths of images the new version leaves out.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Paths of images with the class the new version gives them.
    #[serde(default)]
    pub relabel: std::collections::BTreeMap<String, String>,
    /// Images added to the dataset's training images, with their class: each a path
    /// (`.added/<sha256>.png`) that `POST /api/datasets/{name}/images` answered ([`AddedImage`]).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub add: std::collections::BTreeMap<String, String>,
}

impl DatasetEdits {
    /// Edits in all: excluded, relabelled and added images.
    pub fn len(&self) -> usize {
        self.exclude.len() + self.relabel.len() + self.add.len()
    }

    /// True when nothing is excluded, relabelled or added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How the path of an image added to a dataset by a version begins ([`AddedImage::path`]): a dot-folder,
/// so never the path of one of the dataset's own images.
pub const ADDED_IMAGE_PREFIX: &str = ".added/";

/// Answer of `POST /api/datasets/{name}/images`: where the studio keeps an image sent to be added to the
/// dataset, for [`DatasetEdits::add`]. The dataset's own files are not touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddedImage {
    /// The image's path for [`DatasetEdits::add`]: `.added/<SHA-256 of its bytes>.<extension>`.
    pub path: String,
}

/// Starting weights a run can name in [`TrainConfig::weights`]: one entry of `GET /api/weights`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightsEntry {
    /// The value [`TrainConfig::weights`] takes: `"imagenet"`, or a file name in the weights folder.
    pub name: String,
    /// What the weights are, for a menu.
    pub label: String,
    /// Whether the file is on the server; `"imagenet"` is downloaded on first use when it is not.
    pub present: bool,
    /// The file's size in bytes, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// Bytes a run will download before it starts, when not present and downloadable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_bytes: Option<u64>,
    /// When not present and not downloadable from here (no network): why, and what to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

/// Answer to `GET /api/datasets/{name}/health`: what in a dataset could mislead training or its test
/// accuracy, found before a run starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetHealth {
    /// Every class with its image counts, in label order.
    pub classes: Vec<ClassCount>,
    /// The largest class's training images over the smallest's (1 when balanced).
    pub imbalance: f64,
    /// The images' sizes in pixels, before any resizing.
    pub sizes: ImageSizes,
    /// Images that could not be decoded; runs skip them.
    pub unreadable: Vec<UnreadableImage>,
    /// Pairs of images that are the same picture (exact) or were verified alike (near): every exact pair
    /// (each image of a group paired with the group's first), then near pairs from the most alike, up to
    /// [`DatasetHealth::MAX_DUPLICATES`] pairs in all.
    pub duplicates: Vec<DuplicatePair>,
    /// Whether near pairs were found beyond those listed.
    pub duplicates_truncated: bool,
    /// Distinct test images that have a copy (exact or near) in the training split, listed or not.
    #[serde(default)]
    pub leaked_test_images: usize,
    /// Copies (exact or near) whose two images carry different labels: one of each is mislabelled.
    #[serde(default)]
    pub label_conflicts: usize,
    /// The least similarity of a near copy (the Pearson correlation of the two images, grey, at a
    /// common size, at their best shift of up to two pixels).
    #[serde(default)]
    pub near_similarity: f64,
}

impl DatasetHealth {
    /// Most duplicate pairs listed, unless there are more exact ones.
    pub const MAX_DUPLICATES: usize = 1000;

    /// Test images the model may have seen in training (they have a copy there), which inflate the
    /// test accuracy.
    pub fn leaks(&self) -> usize {
        self.leaked_test_images
    }

    /// Test images in all.
    pub fn test_images(&self) -> usize {
        self.classes.iter().map(|class| class.test).sum()
    }
}

/// A class's image counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassCount {
    /// Class name.
    pub name: String,
    /// Training images.
    pub train: usize,
    /// Test images (0 where the test split is held out from the training folders per run).
    pub test: usize,
}

/// Image sizes of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSizes {
    /// The smallest image, `[width, height]`, by pixel count.
    pub smallest: [u32; 2],
    /// The largest image, `[width, height]`, by pixel count.
    pub largest: [u32; 2],
    /// The most frequent sizes, most frequent first (at most five).
    pub most_common: Vec<SizeCount>,
}

/// How many images have one size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizeCount {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Images of this size.
    pub count: usize,
}

/// An image that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadableImage {
    /// Path relative to the dataset folder.
    pub path: String,
    /// Why, in a sentence.
    pub error: String,
    /// Its class index in the dataset (or version), as its folder or record labels it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<usize>,
}

/// Two images that are the same picture or look alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DuplicatePair {
    /// Path of one, relative to the dataset folder (`file#index` for a record of a CIFAR file).
    pub a: String,
    /// Path of the other.
    pub b: String,
    /// Same decoded pixels, or verified alike.
    pub kind: DuplicateKind,
    /// How alike they are, from 0 to 1 (1 for exact copies; see [`DatasetHealth::near_similarity`]).
    pub similarity: f64,
    /// One is a training image and the other a test image.
    pub across_splits: bool,
    /// The class index of `a` in the dataset (or version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a_class: Option<usize>,
    /// The class index of `b`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b_class: Option<usize>,
}

/// How two images are duplicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateKind {
    /// Identical decoded pixels (and size).
    Exact,
    /// Verified alike: at least [`DatasetHealth::near_similarity`].
    Near,
}

/// One class and how likely the model thinks it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Class name.
    pub label: String,
    /// Class index in the model's output.
    pub index: usize,
    /// Softmax probability in `[0, 1]`.
    pub probability: f64,
}

/// Answer to `POST /api/classify`: the top classes, most likely first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifyResponse {
    /// The run whose model answered.
    pub run_id: u64,
    /// At most five predictions, highest probability first.
    pub predictions: Vec<Prediction>,
    /// Grad-CAM of the top class, when the request asked for one with `explain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
}

/// One image's answer within [`ClassifyBatchResponse`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageClassification {
    /// The uploaded file's name.
    pub name: String,
    /// Top classes, most likely first; empty when the image could not be read.
    pub predictions: Vec<Prediction>,
    /// Why this image could not be classified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Grad-CAM of the top class, when the request asked for one with `explain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
}

/// Answer to `POST /api/classify/batch`: every uploaded image, in upload order, classified as one batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifyBatchResponse {
    /// The run whose model answered.
    pub run_id: u64,
    /// One entry per uploaded image.
    pub results: Vec<ImageClassification>,
}

/// Which stage of ResNet-18 a Grad-CAM explanation is taken at: the output of torchvision's
/// `layer1` … `layer4` module, or `auto`, the deepest whose output is at least [`ExplainLayer::MIN_SIDE`]
/// pixels square for the run's input size. The `explain` query parameter of the classify routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExplainLayer {
    /// `layerN` for N in 1..=4.
    Stage(u8),
    /// The deepest stage whose output is at least [`ExplainLayer::MIN_SIDE`] x [`ExplainLayer::MIN_SIDE`].
    Auto,
}

impl ExplainLayer {
    /// Smallest output side `auto` accepts (falling back to `layer1` when no stage reaches it).
    pub const MIN_SIDE: u32 = 4;

    /// Reads `layer1` … `layer4` or `auto`; anything else is refused with a sentence listing those.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value {
            "auto" => Ok(ExplainLayer::Auto),
            "layer1" => Ok(ExplainLayer::Stage(1)),
            "layer2" => Ok(ExplainLayer::Stage(2)),
            "layer3" => Ok(ExplainLayer::Stage(3)),
            "layer4" => Ok(ExplainLayer::Stage(4)),
            other => Err(format!("explain must be one of layer1, layer2, layer3, layer4 or auto, got \"{other}\"")),
        }
    }

    /// The stage (1..=4) explained for square inputs of `input_size` pixels.
    pub fn stage_for(self, input_size: u32) -> u8 {
        match self {
            ExplainLayer::Stage(stage) => stage,
            ExplainLayer::Auto => {
                (1..=4).rev().find(|&stage| stage_output_side(input_size, stage) >= Self::MIN_SIDE).unwrap_or(1)
            }
        }
    }
}

/// Side of ResNet-18's `layer{stage}` output for a square input of `input_size` pixels: the stem (a
/// stride-2 convolution and a stride-2 max pool) halves it twice, `layer2` … `layer4` once each, every
/// halving rounding up.
pub fn stage_output_side(input_size: u32, stage: u8) -> u32 {
    let halvings = 2 + u32::from(stage.saturating_sub(1));
    (0..halvings).fold(input_size, |side, _| side.div_ceil(2))
}

/// Grad-CAM (Selvaraju et al., 2017) of one image's top class at the output of one stage: each channel
/// is weighted by the spatial mean of the gradient of the class's logit with respect to it, the weighted
/// sum is passed through ReLU and divided by its maximum (all zeros when that is 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The stage explained: `"layer1"` … `"layer4"`.
    pub layer: String,
    /// The class explained: the top prediction's index.
    pub class_index: usize,
    /// Columns of the map (the stage output's width).
    pub width: u32,
    /// Rows of the map (the stage output's height).
    pub height: u32,
    /// `width` x `height` values in `[0, 1]`, row by row from the top left.
    pub cam: Vec<f32>,
}

/// A test image as the best model of a run saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestImage {
    /// Position in the test split; `GET /api/runs/{id}/test-images/{index}/image` serves the picture.
    pub index: usize,
    /// True class index.
    pub actual: usize,
    /// Predicted class index.
    pub predicted: usize,
    /// Cross-entropy of this image.
    pub loss: f64,
    /// Its path relative to the dataset (as [`DatasetEdits`] names images), when the server knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Answer to `GET /api/health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthResponse {
    /// Always `"ok"` when the server answers.
    pub status: String,
    /// The device training runs on: `"cpu"` or `"cuda:0"` (slot 0's, see [`HealthResponse::executor`]).
    pub device: String,
    /// The server's version.
    pub version: String,
    /// Where runs are trained, and how many wait and train now.
    pub executor: ExecutorInfo,
}

/// The executor's side of `/api/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorInfo {
    /// `"local"` or `"slurm"`.
    pub kind: String,
    /// Runs that can train at once (for Slurm, the jobs the studio keeps submitted at most).
    pub slots: u32,
    /// Each local slot's device, in slot order (none for Slurm).
    pub devices: Vec<String>,
    /// libtorch's intra-op threads each run trains with.
    pub threads_per_run: u32,
    /// Runs waiting for a slot.
    pub queued: u32,
    /// Runs training now.
    pub running: u32,
}

/// Answer to `POST /api/runs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunCreated {
    /// Identifier of the new run.
    pub id: u64,
}

/// The body of every refused HTTP request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A sentence for a person saying what was wrong.
    pub error: String,
}

/// What the browser sends over the WebSocket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Queue a new run with this configuration.
    StartRun {
        /// The run's configuration.
        config: TrainConfig,
    },
    /// Stop a queued or running run; it takes effect within one batch.
    StopRun {
        /// The run to stop.
        run_id: u64,
    },
    /// Continue a stopped, interrupted or failed run from its last saved epoch.
    ResumeRun {
        /// The run to resume.
        run_id: u64,
    },
    /// Give a run a name (trimmed; empty clears it, see [`check_run_name`]).
    RenameRun {
        /// The run to rename.
        run_id: u64,
        /// Its new name.
        name: String,
    },
    /// Delete a run that is not queued or running, with its model files.
    DeleteRun {
        /// The run to delete.
        run_id: u64,
    },
    /// Ask for a fresh [`ServerMessage::Snapshot`].
    Resync,
    /// Stop the learning-rate sweep in flight (as `POST /api/lr-finder/stop`); it ends within one batch
    /// and answers the points swept so far.
    StopLrFinder,
}

/// What the server sends over the WebSocket.
// A message lives only from the event to its serialisation (the broadcast buffer holds a few hundred at
// most), so a whole `Run` inline costs less than a box on every update.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The whole state: sent on connect and whenever a client fell behind.
    Snapshot {
        /// Every run, newest first.
        runs: Vec<Run>,
        /// The loss trace of every run training, and of the last few that ended since the server started;
        /// a training run's [`trace::LossTrace::last`] is its batch in flight.
        traces: Vec<trace::LossTrace>,
    },
    /// A run was created or changed status; carries the whole run.
    RunUpdated {
        /// The run as it is now.
        run: Run,
    },
    /// A run was deleted with its files.
    RunRemoved {
        /// The run that is gone.
        run_id: u64,
    },
    /// Progress inside the current epoch.
    Progress(BatchProgress),
    /// Progress of a run's preparation (download, unpacking, decoding) before its first batch.
    Preparing {
        /// The run preparing.
        run_id: u64,
        /// The step and how far it has got.
        preparation: Preparation,
    },
    /// An epoch finished.
    EpochCompleted {
        /// The run training.
        run_id: u64,
        /// What the epoch measured.
        metrics: EpochMetrics,
    },
    /// A command from this client was refused.
    Error {
        /// A sentence for a person.
        message: String,
    },
    /// The learning-rate finder's sweep so far (`POST /api/lr-finder`), after every batch.
    LrFinderProgress(LrFinderProgress),
    /// A sweep was created or changed: a trial began, ended or was judged; carries the whole sweep.
    SweepUpdated {
        /// The sweep as it is now.
        sweep: sweep::Sweep,
    },
    /// A sweep was deleted (its runs stay, as ordinary runs).
    SweepRemoved {
        /// The sweep that is gone.
        sweep_id: u64,
    },
}

/// The first learning rate of a sweep (`POST /api/lr-finder`).
pub const LR_FINDER_START: f64 = 1e-7;
/// The learning rate of a sweep's last batch, when it gets that far.
pub const LR_FINDER_END: f64 = 10.0;
/// Batches in a whole sweep; it stops earlier once the loss blows up.
pub const LR_FINDER_BATCHES: usize = 100;

/// One batch of a learning-rate sweep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LrPoint {
    /// The learning rate the batch was trained with.
    pub lr: f64,
    /// The training loss after it, smoothed (exponential moving average, beta 0.98, bias-corrected).
    pub loss: f64,
}

/// The answer of `POST /api/lr-finder`: the sweep and the learning rate it suggests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrFinderResponse {
    /// One point per batch, learning rates rising exponentially from 1e-7.
    pub points: Vec<LrPoint>,
    /// The learning rate where the smoothed loss falls fastest against log lr; `None` only for a sweep
    /// stopped before [`LR_FINDER_MIN_POINTS_TO_SUGGEST`] points, which [`Self::note`] then explains.
    pub suggestion: Option<f64>,
    /// True when the sweep was stopped (`POST /api/lr-finder/stop`, or its client went away).
    #[serde(default)]
    pub stopped: bool,
    /// A sentence for a person when there is no suggestion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A stopped sweep suggests a learning rate only from this many points on: fewer leave nothing once
/// the first tenth and the last five (left out of the choice) are gone.
pub const LR_FINDER_MIN_POINTS_TO_SUGGEST: usize = LR_FINDER_BATCHES / 10 + 5 + 2;

/// The sentence of a sweep stopped after `points` batches, too few to suggest a learning rate.
pub fn lr_finder_too_few_points(points: usize) -> String {
    format!(
        "The sweep was stopped after {points} of {LR_FINDER_BATCHES} batches, too few to suggest a learning rate \
         (it takes {LR_FINDER_MIN_POINTS_TO_SUGGEST})."
    )
}

/// Where a learning-rate sweep has got: every point so far, and the suggestion once it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrFinderProgress {
    /// The points swept so far.
    pub points: Vec<LrPoint>,
    /// The suggested learning rate, in the last message of a sweep that ended well.
    pub suggestion: Option<f64>,
    /// True in the last message of a sweep (ended, failed or stopped).
    pub finished: bool,
    /// True in the last message of a sweep that was stopped.
    #[serde(default)]
    pub stopped: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_fields_take_the_seed_recipe_defaults() {
        let config: TrainConfig = serde_json::from_str(r#"{"dataset":"cifar10"}"#).unwrap();
        assert_eq!(config, TrainConfig::for_dataset("cifar10"));
        assert_eq!(config.lr, 0.001);
        assert_eq!(config.momentum, 0.9);
        assert_eq!(config.weights, "none");
        assert!(config.validate().is_ok());
    }

    #[test]
    fn unknown_fields_are_refused_with_their_name() {
        let err = serde_json::from_str::<TrainConfig>(r#"{"dataset":"d","lrr":0.1}"#).unwrap_err();
        assert!(err.to_string().contains("lrr"), "{err}");
    }

    #[test]
    fn weights_may_be_imagenet_or_a_safetensors_pth_or_pt_file() {
        for weights in ["none", "imagenet", "w.safetensors", "resnet18-f37072fd.pth", "ckpt.pt"] {
            let mut config = TrainConfig::for_dataset("tiny");
            config.weights = weights.into();
            assert!(config.validate().is_ok(), "{weights}");
        }
    }

    /// A field's name and a change that makes a valid config break on it.
    type BadField = (&'static str, Box<dyn Fn(&mut TrainConfig)>);

    #[test]
    fn each_bad_field_is_named() {
        let cases: Vec<BadField> = vec![
            ("epochs", Box::new(|c| c.epochs = 0)),
            ("batch_size", Box::new(|c| c.batch_size = 0)),
            ("lr", Box::new(|c| c.lr = 0.0)),
            ("lr", Box::new(|c| c.lr = -1.0)),
            ("lr", Box::new(|c| c.lr = f64::NAN)),
            ("momentum", Box::new(|c| c.momentum = 1.0)),
            ("dataset", Box::new(|c| c.dataset = "../etc".into())),
            ("dataset", Box::new(|c| c.dataset = String::new())),
            ("weights", Box::new(|c| c.weights = "a/b.safetensors".into())),
            ("weights", Box::new(|c| c.weights = "resnet.bin".into())),
            ("weights", Box::new(|c| c.weights = "a/b.pth".into())),
            ("weights", Box::new(|c| c.weights = "ImageNet".into())),
            ("input_size", Box::new(|c| c.input_size = 7)),
            ("mode", Box::new(|c| c.mode = FineTuneMode::Frozen)),
            ("weight_decay", Box::new(|c| c.weight_decay = -0.1)),
            ("label_smoothing", Box::new(|c| c.label_smoothing = 1.0)),
            ("grad_clip_norm", Box::new(|c| c.grad_clip_norm = Some(0.0))),
            ("warmup_epochs", Box::new(|c| c.warmup_epochs = 5)),
            (
                "gamma",
                Box::new(|c| {
                    c.schedule = Schedule::Step;
                    c.gamma = 0.0;
                }),
            ),
            ("early_stopping_patience", Box::new(|c| c.early_stopping_patience = Some(0))),
            (
                "frozen_epochs",
                Box::new(|c| {
                    c.weights = "w.safetensors".into();
                    c.mode = FineTuneMode::TwoPhase;
                    c.frozen_epochs = c.epochs;
                }),
            ),
        ];
        for (field, break_it) in cases {
            let mut config = TrainConfig::for_dataset("tiny");
            break_it(&mut config);
            let err = config.validate().unwrap_err();
            assert_eq!(err.field, field);
            assert!(err.message.contains(fields::label_of(field)), "{}", err.message);
        }
    }

    #[test]
    fn messages_are_tagged_with_snake_case_types() {
        let json = serde_json::to_value(ClientMessage::StopRun { run_id: 3 }).unwrap();
        assert_eq!(json, serde_json::json!({"type": "stop_run", "run_id": 3}));
        let progress = ServerMessage::Progress(BatchProgress {
            run_id: 1,
            epoch: 1,
            batch: 2,
            batches: 4,
            loss: 0.5,
            batch_loss: None,
            images_per_second: 10.0,
            eta_seconds: 3.0,
        });
        let json = serde_json::to_value(&progress).unwrap();
        assert_eq!(json["type"], "progress");
        assert_eq!(json["batch"], 2);
        let back: ServerMessage = serde_json::from_value(json).unwrap();
        assert_eq!(back, progress);
    }

    #[test]
    fn unknown_enum_values_are_refused() {
        let err = serde_json::from_str::<TrainConfig>(r#"{"dataset":"d","optimizer":"lbfgs"}"#).unwrap_err();
        assert!(err.to_string().contains("lbfgs"), "{err}");
    }

    #[test]
    fn two_phase_freezes_only_the_first_epochs() {
        let config =
            TrainConfig { mode: FineTuneMode::TwoPhase, frozen_epochs: 2, epochs: 4, ..TrainConfig::for_dataset("d") };
        let frozen: Vec<bool> = (1..=4).map(|e| config.backbone_frozen_in(e)).collect();
        assert_eq!(frozen, [true, true, false, false]);
    }

    #[test]
    fn run_names_are_trimmed_capped_and_empty_means_none() {
        assert_eq!(check_run_name("  baseline  "), Ok(Some("baseline".to_string())));
        assert_eq!(check_run_name("   "), Ok(None));
        assert_eq!(check_run_name(&"é".repeat(limits::MAX_RUN_NAME_CHARS)).unwrap().unwrap().chars().count(), 80);
        let long = check_run_name(&"a".repeat(limits::MAX_RUN_NAME_CHARS + 1)).unwrap_err();
        assert_eq!(long, "name must be at most 80 characters, got 81");
        assert!(check_run_name("two\nlines").unwrap_err().contains("control characters"));
    }

    #[test]
    fn a_run_without_a_name_is_titled_by_its_id_and_headlines_its_accuracies() {
        let mut run: Run = serde_json::from_value(serde_json::json!({
            "id": 7, "status": "completed", "config": {"dataset": "d"}, "created_at": 0,
            "epochs": [
                {"epoch": 1, "train_loss": 1.0, "train_accuracy": 0.5, "test_loss": 1.0, "test_accuracy": 0.6, "seconds": 2.0},
                {"epoch": 2, "train_loss": 1.0, "train_accuracy": 0.5, "test_loss": 1.0, "test_accuracy": 0.55, "seconds": 3.5}
            ]
        }))
        .unwrap();
        assert_eq!(run.title(), "Run #7");
        assert_eq!((run.final_test_accuracy(), run.best_test_accuracy()), (Some(0.55), Some(0.6)));
        assert_eq!(run.training_seconds(), 5.5);
        run.name = Some("baseline".into());
        assert_eq!(run.title(), "baseline");
    }

    #[test]
    fn status_names_round_trip() {
        for status in [RunStatus::Queued, RunStatus::Interrupted, RunStatus::Failed] {
            assert_eq!(RunStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(RunStatus::parse("bogus"), None);
    }

    #[test]
    fn auto_explains_the_deepest_stage_at_least_four_pixels_square() {
        assert_eq!([1, 2, 3, 4].map(|stage| stage_output_side(32, stage)), [8, 4, 2, 1]);
        assert_eq!([1, 2, 3, 4].map(|stage| stage_output_side(224, stage)), [56, 28, 14, 7]);
        assert_eq!(ExplainLayer::Auto.stage_for(32), 2);
        assert_eq!(ExplainLayer::Auto.stage_for(64), 3);
        assert_eq!(ExplainLayer::Auto.stage_for(224), 4);
        assert_eq!(ExplainLayer::Auto.stage_for(8), 1, "no stage reaches 4x4: the shallowest");
        assert_eq!(ExplainLayer::parse("layer3").unwrap().stage_for(224), 3);
    }

    #[test]
    fn an_unknown_explain_layer_is_refused_with_the_allowed_values() {
        let why = ExplainLayer::parse("layer5").unwrap_err();
        assert!(why.contains("layer1, layer2, layer3, layer4 or auto") && why.contains("layer5"), "{why}");
    }
}
