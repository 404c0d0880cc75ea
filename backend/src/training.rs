//! The training loop: knows nothing of the web. It takes a [`TrainConfig`], a [`CancelFlag`] and a place
//! to write the model, and reports through [`TrainingEvent`]s.
//!
//! The whole dataset sits on the training device as `u8`; every batch is an index-select of a seeded
//! permutation, converted to float and normalised on the device. Losses and accuracies accumulate as
//! device tensors and are read back only when an event is due, so the loop never waits on the host.

use crate::data::{self, DataError, Split};
use crate::download::{self, DownloadError, DownloadSource};
use crate::model::{normalize, ModelError, ModelMetadata, ResNet18, WEIGHTS_FILE};
use shared::{EpochMetrics, TrainConfig};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tch::nn::OptimizerConfig;
use tch::{nn, Device, Kind, Reduction, Tensor};

/// Images per evaluation batch: no gradients are kept, so this can be larger than training's.
const EVAL_BATCH: i64 = 256;
/// Least time between two progress events.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// A shared flag asking a run to stop; checked before every batch.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    /// Asks the run to stop at the next batch boundary.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// True once [`CancelFlag::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Where a run reads its inputs and writes its model.
#[derive(Debug, Clone)]
pub struct TrainingPaths {
    /// Folder holding the datasets.
    pub data_dir: PathBuf,
    /// Folder holding pretrained weight files.
    pub weights_dir: PathBuf,
    /// Folder this run's model files go to; created if missing.
    pub run_dir: PathBuf,
    /// Where the `cifar10` dataset is downloaded from when it is missing.
    pub cifar10: DownloadSource,
}

/// Progress within an epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochProgress {
    /// 1-based epoch.
    pub epoch: u32,
    /// Batches done in this epoch.
    pub batch: u32,
    /// Batches per epoch.
    pub batches: u32,
    /// Mean training loss over this epoch's batches so far.
    pub loss: f64,
    /// Images per second over this epoch so far.
    pub images_per_second: f64,
}

/// What a run reports while it works.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainingEvent {
    /// A human-readable note about a slow preparation step (download, decoding).
    Note(String),
    /// Data is loaded and the model built; training starts.
    Started {
        /// Class names in label order.
        classes: Vec<String>,
        /// Training images.
        train_count: usize,
        /// Test images.
        test_count: usize,
    },
    /// Progress inside an epoch.
    Progress(EpochProgress),
    /// An epoch ended and was evaluated on the test split.
    EpochCompleted(EpochMetrics),
    /// The model after `epoch` was saved and can classify.
    ModelSaved {
        /// The epoch the saved weights are from.
        epoch: u32,
    },
}

/// How a run ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainOutcome {
    /// Every epoch ran.
    Completed,
    /// The cancel flag was raised.
    Stopped,
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
    /// The loss stopped being a number: the learning rate is likely too high.
    #[error("the training loss became {value} in epoch {epoch}; try a lower learning rate")]
    NonFiniteLoss {
        /// The epoch it happened in.
        epoch: u32,
        /// The value seen (NaN or infinite).
        value: f64,
    },
    /// The dataset has no training images.
    #[error("dataset \"{0}\" has no training images")]
    EmptyTrainingSet(String),
    /// libtorch reported an error.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

/// Trains a ResNet-18 as `config` says, on `device`, saving the model in `paths.run_dir` after every epoch.
/// The same config and seed give bit-identical results on the CPU: libtorch's process-wide generator
/// is only used, under a lock, to initialise the model; shuffling has its own seeded generator.
pub fn train(
    config: &TrainConfig,
    paths: &TrainingPaths,
    device: Device,
    cancel: &CancelFlag,
    emit: &mut dyn FnMut(TrainingEvent),
) -> Result<TrainOutcome, TrainError> {
    let source = find_or_download_dataset(config, paths, emit)?;
    emit(TrainingEvent::Note(format!(
        "decoding {} images of \"{}\"",
        source.info.train_count + source.info.test_count,
        config.dataset
    )));
    let dataset = data::load(&source, config.input_size)?;
    if dataset.train.is_empty() {
        return Err(TrainError::EmptyTrainingSet(config.dataset.clone()));
    }
    let train_split = dataset.train.to_device(device);
    let test_split = dataset.test.to_device(device);
    let (mean, std) = config.normalization.mean_std();

    let mut model = ResNet18::new(device, dataset.classes.len(), config.seed);
    if config.weights != shared::defaults::WEIGHTS_NONE {
        let loaded = model.load_backbone(&paths.weights_dir.join(&config.weights))?;
        emit(TrainingEvent::Note(format!("loaded {loaded} backbone tensors from {}", config.weights)));
    }
    let mut optimizer = nn::Sgd { momentum: config.momentum, ..Default::default() }.build(&model.vs, config.lr)?;
    std::fs::create_dir_all(&paths.run_dir)
        .map_err(|e| ModelError::Metadata { path: paths.run_dir.clone(), why: e.to_string() })?;

    emit(TrainingEvent::Started {
        classes: dataset.classes.clone(),
        train_count: train_split.len() as usize,
        test_count: test_split.len() as usize,
    });

    let train_count = train_split.len();
    let batch_size = config.batch_size as i64;
    let batches = (train_count + batch_size - 1) / batch_size;
    for epoch in 1..=config.epochs {
        let started = Instant::now();
        let order = epoch_order(config.seed, epoch, train_count).to_device(device); // [N]
        let mut loss_sum = Tensor::zeros([], (Kind::Float, device));
        let mut correct = Tensor::zeros([], (Kind::Int64, device));
        let mut last_progress = Instant::now();
        for batch in 0..batches {
            if cancel.is_cancelled() {
                return Ok(TrainOutcome::Stopped);
            }
            let start = batch * batch_size;
            let len = batch_size.min(train_count - start);
            let index = order.narrow(0, start, len);
            let images = normalize(&train_split.images.index_select(0, &index), mean, std); // [B, 3, H, W]
            let labels = train_split.labels.index_select(0, &index); // [B]
            let logits = model.forward_t(&images, true); // [B, classes]
            let loss = logits.cross_entropy_for_logits(&labels);
            optimizer.backward_step(&loss);
            tch::no_grad(|| {
                loss_sum += loss.detach() * len as f64;
                correct += logits.argmax(-1, false).eq_tensor(&labels).sum(Kind::Int64);
            });
            let done = batch + 1;
            if last_progress.elapsed() >= PROGRESS_INTERVAL || done == batches {
                last_progress = Instant::now();
                let seen = (start + len) as f64;
                let mean_loss = loss_sum.double_value(&[]) / seen;
                check_finite(mean_loss, epoch)?;
                emit(TrainingEvent::Progress(EpochProgress {
                    epoch,
                    batch: done as u32,
                    batches: batches as u32,
                    loss: mean_loss,
                    images_per_second: seen / started.elapsed().as_secs_f64().max(1e-9),
                }));
            }
        }
        let train_loss = loss_sum.double_value(&[]) / train_count as f64;
        check_finite(train_loss, epoch)?;
        let train_accuracy = correct.int64_value(&[]) as f64 / train_count as f64;
        let (test_loss, test_accuracy) = evaluate(&model, &test_split, mean, std);
        let metrics = EpochMetrics {
            epoch,
            train_loss,
            train_accuracy,
            test_loss,
            test_accuracy,
            seconds: started.elapsed().as_secs_f64(),
        };
        save_model(&model, &dataset.classes, config, epoch, &paths.run_dir)?;
        emit(TrainingEvent::EpochCompleted(metrics));
        emit(TrainingEvent::ModelSaved { epoch });
    }
    Ok(TrainOutcome::Completed)
}

/// The order training images are visited in during `epoch`: a permutation drawn from a generator seeded
/// by the run's seed and the epoch alone, so it is the same on every device and after a resume.
pub fn epoch_order(seed: u64, epoch: u32, count: i64) -> Tensor {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ (u64::from(epoch) << 32 | 0x5eed));
    let mut order: Vec<i64> = (0..count).collect();
    order.shuffle(&mut rng);
    Tensor::from_slice(&order)
}

fn check_finite(loss: f64, epoch: u32) -> Result<(), TrainError> {
    if loss.is_finite() {
        Ok(())
    } else {
        Err(TrainError::NonFiniteLoss { epoch, value: loss })
    }
}

/// Mean cross-entropy over every sample of `split` and the fraction predicted right.
/// An empty split gives `(0, 0)`: there is nothing to measure.
pub fn evaluate(model: &ResNet18, split: &Split, mean: [f64; 3], std: [f64; 3]) -> (f64, f64) {
    let count = split.len();
    if count == 0 {
        return (0.0, 0.0);
    }
    tch::no_grad(|| {
        let device = split.images.device();
        let mut loss_sum = Tensor::zeros([], (Kind::Double, device));
        let mut correct = Tensor::zeros([], (Kind::Int64, device));
        for start in (0..count).step_by(EVAL_BATCH as usize) {
            let len = EVAL_BATCH.min(count - start);
            let images = normalize(&split.images.narrow(0, start, len), mean, std); // [B, 3, H, W]
            let labels = split.labels.narrow(0, start, len); // [B]
            let logits = model.forward_t(&images, false); // [B, classes]
            let batch_loss =
                logits.cross_entropy_loss::<Tensor>(&labels, None, Reduction::Sum, -100, 0.0);
            loss_sum += batch_loss.to_kind(Kind::Double);
            correct += logits.argmax(-1, false).eq_tensor(&labels).sum(Kind::Int64);
        }
        (loss_sum.double_value(&[]) / count as f64, correct.int64_value(&[]) as f64 / count as f64)
    })
}

fn save_model(
    model: &ResNet18,
    classes: &[String],
    config: &TrainConfig,
    epoch: u32,
    run_dir: &Path,
) -> Result<(), ModelError> {
    let (mean, std) = config.normalization.mean_std();
    model.save(&run_dir.join(WEIGHTS_FILE))?;
    ModelMetadata {
        architecture: "resnet18".into(),
        classes: classes.to_vec(),
        mean,
        std,
        input_size: config.input_size,
        epoch,
        config: config.clone(),
    }
    .save(run_dir)
}

fn find_or_download_dataset(
    config: &TrainConfig,
    paths: &TrainingPaths,
    emit: &mut dyn FnMut(TrainingEvent),
) -> Result<data::DatasetSource, TrainError> {
    match data::inspect(&paths.data_dir, &config.dataset) {
        Err(DataError::NotFound(_)) if config.dataset == download::CIFAR10_NAME => {
            download::fetch_cifar10(&paths.data_dir, &paths.cifar10, &mut |note| {
                emit(TrainingEvent::Note(note))
            })?;
            Ok(data::inspect(&paths.data_dir, &config.dataset)?)
        }
        other => Ok(other?),
    }
}
