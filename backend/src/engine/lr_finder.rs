//! The learning-rate finder (Smith, 2017, as in fastai's `lr_find`): trains a fresh copy of the model a
//! run with the same config would start from, one batch per learning rate, the rates rising
//! exponentially from [`START_LR`] to [`END_LR`] over [`MAX_BATCHES`] batches, and stops early once the
//! smoothed loss passes [`DIVERGENCE`] times its lowest value (or stops being a number). The suggestion
//! is the rate where the smoothed loss falls fastest against log lr ([`steepest_descent`]).
//!
//! It knows nothing of the web and writes nothing: the model lives only in memory, and no run folder is
//! touched. It reports through [`LrFinderEvent`]s.

use super::batches::{Batches, EpochPlan};
use super::training::{self, RunControl, TrainError, TrainingEvent, TrainingPaths};
use crate::data::Split;
use crate::model::optim::Optimizer;
use crate::model::{normalize, ResNet18};
use shared::{LrPoint, TrainConfig};
use tch::{Device, Reduction};

/// The first learning rate of the sweep.
pub const START_LR: f64 = shared::LR_FINDER_START;
/// The learning rate of the sweep's last batch, when it gets that far.
pub const END_LR: f64 = shared::LR_FINDER_END;
/// Batches in a whole sweep (the training set is visited again, epoch after epoch, when it is smaller).
pub const MAX_BATCHES: usize = shared::LR_FINDER_BATCHES;
/// Weight of the past in the loss's exponential moving average (fastai's `beta`).
pub const SMOOTHING: f64 = 0.98;
/// The sweep stops once the smoothed loss exceeds this many times its lowest value.
pub const DIVERGENCE: f64 = 4.0;
/// Points left out at the start when choosing the suggestion, as fastai does: over the first tenth of a
/// sweep the average rests on a few batches, so batch-to-batch noise looks like a steep fall.
pub const SKIP_FIRST: usize = MAX_BATCHES / 10;
/// Points left out at the end when choosing the suggestion, as fastai does: the blow-up.
pub const SKIP_LAST: usize = 5;
/// A stopped sweep suggests a learning rate only from this many points on, so that the first tenth and
/// the last five can be left out of the choice as in a whole sweep.
pub const MIN_POINTS_TO_SUGGEST: usize = shared::LR_FINDER_MIN_POINTS_TO_SUGGEST;
const _: () = assert!(MIN_POINTS_TO_SUGGEST == SKIP_FIRST + SKIP_LAST + 2);

/// What the finder reports while it works.
#[derive(Debug, Clone, PartialEq)]
pub enum LrFinderEvent {
    /// A human-readable note from preparing the data and the model.
    Note(String),
    /// One more batch was swept.
    Point(LrPoint),
}

/// Why a sweep ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepEnd {
    /// Every one of the [`MAX_BATCHES`] learning rates was tried.
    Completed,
    /// The smoothed loss exceeded [`DIVERGENCE`] times its lowest value.
    Diverged,
    /// A batch's loss was not a finite number (that batch has no point).
    NotANumber,
    /// The sweep was asked to stop (its control cancelled) before it ended by itself.
    Stopped,
}

/// What a sweep found.
#[derive(Debug, Clone, PartialEq)]
pub struct LrFinding {
    /// One point per batch swept, in order.
    pub points: Vec<LrPoint>,
    /// The suggested learning rate (see [`steepest_descent`]); `None` only for a sweep stopped before
    /// [`MIN_POINTS_TO_SUGGEST`] points.
    pub suggestion: Option<f64>,
    /// Why the sweep ended.
    pub end: SweepEnd,
}

/// Why the finder gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum LrFinderError {
    /// The data or the model could not be prepared, or libtorch failed.
    #[error(transparent)]
    Training(#[from] TrainError),
    /// The trainer shut down before the sweep ran.
    #[error("the learning-rate finder was stopped")]
    Stopped,
    /// Not even the first batch had a finite loss.
    #[error("the training loss was not a number from the first batch on: check the dataset and the config")]
    NoFiniteLoss,
    /// The sweep panicked (logged); nothing of it survives.
    #[error("the learning-rate finder crashed on an internal error; the server's log has the details")]
    Crashed,
}

impl From<tch::TchError> for LrFinderError {
    fn from(error: tch::TchError) -> Self {
        LrFinderError::Training(error.into())
    }
}

/// The learning rate of batch `step` (0-based): `START_LR * (END_LR / START_LR)^(step / (MAX_BATCHES - 1))`.
pub fn sweep_lr(step: usize) -> f64 {
    START_LR * (END_LR / START_LR).powf(step as f64 / (MAX_BATCHES - 1) as f64)
}

/// The loss's exponential moving average with bias correction, and its lowest value so far.
#[derive(Debug, Clone, Copy)]
pub struct LossSmoother {
    average: f64,
    steps: i32,
    lowest: f64,
}

impl Default for LossSmoother {
    fn default() -> Self {
        LossSmoother { average: 0.0, steps: 0, lowest: f64::INFINITY }
    }
}

impl LossSmoother {
    /// Folds in one batch's loss; returns the smoothed loss, `avg / (1 - SMOOTHING^steps)`.
    pub fn push(&mut self, loss: f64) -> f64 {
        self.average = SMOOTHING * self.average + (1.0 - SMOOTHING) * loss;
        self.steps += 1;
        let smoothed = self.average / (1.0 - SMOOTHING.powi(self.steps));
        self.lowest = self.lowest.min(smoothed);
        smoothed
    }

    /// True when `smoothed` exceeds [`DIVERGENCE`] times the lowest smoothed loss so far.
    pub fn diverged(&self, smoothed: f64) -> bool {
        smoothed > DIVERGENCE * self.lowest
    }
}

/// The learning rate at the start of the segment between consecutive points where the smoothed loss
/// falls fastest against log lr, `(loss[i+1] - loss[i]) / (ln lr[i+1] - ln lr[i])` most negative (the
/// first such on a tie), leaving out the first [`SKIP_FIRST`] and the last [`SKIP_LAST`] points when at
/// least two remain (fastai's `steep`); the only point's rate when there is one, `None` when there are none.
pub fn steepest_descent(points: &[LrPoint]) -> Option<f64> {
    let points =
        if points.len() >= SKIP_FIRST + SKIP_LAST + 2 { &points[SKIP_FIRST..points.len() - SKIP_LAST] } else { points };
    let slope = |pair: &[LrPoint]| (pair[1].loss - pair[0].loss) / (pair[1].lr.ln() - pair[0].lr.ln());
    let steepest = points.windows(2).enumerate().fold(None, |best: Option<(usize, f64)>, (index, pair)| {
        let here = slope(pair);
        match best {
            Some((_, lowest)) if lowest <= here => best,
            _ => Some((index, here)),
        }
    });
    match steepest {
        Some((index, _)) => Some(points[index].lr),
        None => points.first().map(|point| point.lr),
    }
}

/// Sweeps the learning rate over a fresh model built as a run of `config` would start (same seed, same
/// starting weights, same optimiser, augmentation and frozen layers as its first epoch), on `device`.
/// `paths.run_dir` is not used: nothing is written. `control` stops it between batches: a stopped sweep
/// answers the points so far ([`SweepEnd::Stopped`]), with a suggestion from [`MIN_POINTS_TO_SUGGEST`]
/// points on.
pub fn find_learning_rate(
    config: &TrainConfig,
    paths: &TrainingPaths,
    device: Device,
    control: &RunControl,
    emit: &mut dyn FnMut(LrFinderEvent),
) -> Result<LrFinding, LrFinderError> {
    let prepared = prepare(config, paths, device, control, emit);
    if control.is_cancelled() {
        return Ok(stopped(Vec::new()));
    }
    let (mut model, train) = prepared?;
    let mut optimizer = training::new_optimizer(config, &model);
    let frozen = config.backbone_frozen_in(1);
    model.set_backbone_trainable(!frozen);
    let mut smoother = LossSmoother::default();
    let mut points = Vec::with_capacity(MAX_BATCHES);
    let mut batches = SweepBatches::new(config, &train, device);
    let mut end = SweepEnd::Completed;
    for step in 0..MAX_BATCHES {
        if control.is_cancelled() {
            return Ok(stopped(points));
        }
        let lr = sweep_lr(step);
        let loss = train_batch(config, &model, &mut optimizer, batches.next()?, lr, !frozen)?;
        if !loss.is_finite() {
            end = SweepEnd::NotANumber;
            break;
        }
        let point = LrPoint { lr, loss: smoother.push(loss) };
        points.push(point);
        emit(LrFinderEvent::Point(point));
        if smoother.diverged(point.loss) {
            end = SweepEnd::Diverged;
            break;
        }
    }
    let suggestion = steepest_descent(&points).ok_or(LrFinderError::NoFiniteLoss)?;
    Ok(LrFinding { points, suggestion: Some(suggestion), end })
}

/// What a sweep stopped after `points` found: a suggestion only from [`MIN_POINTS_TO_SUGGEST`] points on.
fn stopped(points: Vec<LrPoint>) -> LrFinding {
    let suggestion = if points.len() >= MIN_POINTS_TO_SUGGEST { steepest_descent(&points) } else { None };
    LrFinding { points, suggestion, end: SweepEnd::Stopped }
}

/// The training split on the device and a model with the config's starting weights, as a run prepares
/// them (its notes passed on).
fn prepare(
    config: &TrainConfig,
    paths: &TrainingPaths,
    device: Device,
    control: &RunControl,
    emit: &mut dyn FnMut(LrFinderEvent),
) -> Result<(ResNet18, Split), LrFinderError> {
    let mut notes = |event: TrainingEvent| {
        if let TrainingEvent::Note(note) = event {
            emit(LrFinderEvent::Note(note));
        }
    };
    let dataset = training::load_dataset(config, paths, control, &mut notes)?;
    let mut model = ResNet18::new(device, dataset.classes.len(), config.seed);
    training::apply_device_options(config, device, &mut model, &mut notes)?;
    training::load_starting_weights(config, paths, &mut model, control, &mut notes)?;
    // The sweep reads a few hundred batches: they are gathered from the decoded cache's mapping as needed,
    // so a dataset of any size takes no memory beyond them.
    Ok((model, dataset.train))
}

/// The sweep's batches in a run's order: epoch 1's, then epoch 2's when the training set is used up.
struct SweepBatches<'a> {
    /// Batch size, seed, augmentation and normalisation.
    config: &'a TrainConfig,
    /// Training images `[N, 3, H, W]` u8 and labels `[N]`, mapped from the decoded cache.
    train: &'a Split,
    /// Where the plans' tensors go.
    device: Device,
    /// Normalisation per channel.
    mean: [f64; 3],
    /// Normalisation per channel.
    std: [f64; 3],
    /// The epoch being visited (1-based).
    epoch: u32,
    /// Its order and augmentation.
    plan: EpochPlan,
    /// How an epoch is cut into batches, as a run cuts it.
    batches: Batches,
    /// The next batch's index in the epoch.
    next_batch: i64,
}

impl<'a> SweepBatches<'a> {
    fn new(config: &'a TrainConfig, train: &'a Split, device: Device) -> Self {
        let (mean, std) = config.normalization.mean_std();
        let plan = EpochPlan::draw(config, 1, train.len(), device);
        let batches = Batches::new(config.batch_size, train.len());
        SweepBatches { config, train, device, mean, std, epoch: 1, plan, batches, next_batch: 0 }
    }

    /// The next batch: normalised images `[B, 3, H, W]` f32 and labels `[B]`.
    fn next(&mut self) -> Result<(tch::Tensor, tch::Tensor), tch::TchError> {
        if self.next_batch >= self.batches.count() {
            self.epoch += 1;
            self.plan = EpochPlan::draw(self.config, self.epoch, self.train.len(), self.device);
            self.next_batch = 0;
        }
        let (start, len) = self.batches.span(self.next_batch);
        let (images, labels) = self.plan.gather_to(self.train, start, len, self.device)?;
        self.next_batch += 1;
        Ok((normalize(&self.plan.augment(images, start), self.mean, self.std), labels))
    }
}

/// One optimisation step at learning rate `lr`; returns the batch's mean loss.
fn train_batch(
    config: &TrainConfig,
    model: &ResNet18,
    optimizer: &mut Optimizer,
    (images, labels): (tch::Tensor, tch::Tensor),
    lr: f64,
    train_backbone: bool,
) -> Result<f64, LrFinderError> {
    let logits = training::training_logits(config, model, &images, train_backbone); // [B, classes]
    let loss =
        logits.f_cross_entropy_loss::<tch::Tensor>(&labels, None, Reduction::Mean, -100, config.label_smoothing)?;
    optimizer.zero_grad();
    loss.f_backward()?;
    if let Some(max_norm) = config.grad_clip_norm {
        optimizer.clip_grad_norm(max_norm);
    }
    optimizer.step(lr);
    Ok(loss.f_double_value(&[])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(losses: &[f64]) -> Vec<LrPoint> {
        losses.iter().enumerate().map(|(step, &loss)| LrPoint { lr: sweep_lr(step), loss }).collect()
    }

    #[test]
    fn the_sweep_rises_exponentially_from_1e_7_to_10() {
        assert_eq!(sweep_lr(0), START_LR);
        assert!((sweep_lr(MAX_BATCHES - 1) / END_LR - 1.0).abs() < 1e-12);
        let ratio = sweep_lr(1) / sweep_lr(0);
        for step in 1..MAX_BATCHES {
            assert!((sweep_lr(step) / sweep_lr(step - 1) / ratio - 1.0).abs() < 1e-9, "step {step}");
        }
    }

    #[test]
    fn the_smoothed_loss_starts_at_the_first_loss_and_follows_with_beta_0_98() {
        let mut smoother = LossSmoother::default();
        assert!((smoother.push(2.0) - 2.0).abs() < 1e-12);
        // avg = 0.98 * 0.04 + 0.02 * 1.0 = 0.0592; corrected by 1 - 0.98^2 = 0.0396.
        assert!((smoother.push(1.0) - 0.0592 / 0.0396).abs() < 1e-12);
    }

    #[test]
    fn divergence_is_more_than_four_times_the_lowest_smoothed_loss() {
        let mut smoother = LossSmoother::default();
        let lowest = smoother.push(1.0);
        assert!(!smoother.diverged(4.0 * lowest));
        assert!(smoother.diverged(4.0 * lowest + 1e-9));
    }

    #[test]
    fn the_suggestion_starts_the_steepest_fall() {
        let swept = points(&[2.3, 2.2, 1.5, 1.4, 1.45, 9.0]);
        assert_eq!(steepest_descent(&swept), Some(swept[1].lr));
    }

    #[test]
    fn the_first_tenth_and_the_last_five_points_do_not_choose_the_suggestion() {
        // Steep falls at 0 (noise while the average settles) and at 22 (into the blow-up) are left out.
        let mut losses = vec![2.0; 26];
        losses[0] = 5.0;
        losses[12] = 1.9;
        losses[22] = 0.5;
        let swept = points(&losses);
        assert_eq!(steepest_descent(&swept), Some(swept[11].lr));
    }

    #[test]
    fn a_stopped_sweep_suggests_a_rate_only_from_seventeen_points_on() {
        let falling: Vec<f64> = (0..MIN_POINTS_TO_SUGGEST).map(|step| 3.0 - step as f64 * 0.1).collect();
        let too_few = stopped(points(&falling[..MIN_POINTS_TO_SUGGEST - 1]));
        assert_eq!((too_few.suggestion, too_few.end, too_few.points.len()), (None, SweepEnd::Stopped, 16));
        let enough = stopped(points(&falling));
        assert_eq!(enough.suggestion, steepest_descent(&enough.points));
        assert!(enough.suggestion.is_some());
    }

    #[test]
    fn a_single_point_suggests_its_rate_and_none_suggests_nothing() {
        assert_eq!(steepest_descent(&points(&[2.3])), Some(START_LR));
        assert_eq!(steepest_descent(&[]), None);
    }
}
