//! The engine learns: a small synthetic dataset whose classes differ by colour is learned to a stated
//! test accuracy within a few epochs, from random initialisation, on the CPU.

use crate::common;

use backend::data::{self};
use backend::engine::training::{train, RunControl, TrainOutcome, TrainingEvent, TrainingPaths};
use shared::{EpochMetrics, TrainConfig};
use tch::Device;

fn train_colors(config: &TrainConfig, data_dir: &std::path::Path) -> Vec<EpochMetrics> {
    train_colors_on(Device::Cpu, config, data_dir).0
}

/// Trains to completion on `device`; the metrics of every epoch and the run's notes.
fn train_colors_on(
    device: Device,
    config: &TrainConfig,
    data_dir: &std::path::Path,
) -> (Vec<EpochMetrics>, Vec<String>) {
    let paths = common::offline_training_paths(data_dir, data_dir.join("run"));
    let mut epochs = Vec::new();
    let mut notes = Vec::new();
    let outcome = train(config, &paths, device, &RunControl::default(), false, &mut |event| match event {
        TrainingEvent::EpochCompleted(metrics) => epochs.push(metrics),
        TrainingEvent::Note(note) => notes.push(note),
        _ => {}
    })
    .unwrap();
    assert_eq!(outcome, TrainOutcome::Completed);
    (epochs, notes)
}

/// What a run killed right after one of its mid-epoch checkpoints, then resumed, went through.
struct CrashAndResume {
    /// Every mid-epoch checkpoint before the crash, as (epoch, batches done).
    checkpoints: Vec<(u32, i64)>,
    /// Metrics of every epoch, before the crash and after the resume.
    metrics: Vec<EpochMetrics>,
    /// (epoch, batch) the resumed run started at.
    resumed_at: (u32, u32),
}

/// Trains run `run` under `control`, calling `at_epoch_end` after each epoch, and dies the moment the
/// mid-epoch checkpoint `crash_after` (epoch, batches done) is written (a panic stands for SIGKILL:
/// nothing after it runs); then resumes it with a default control to the end.
fn crash_and_resume(
    config: &TrainConfig,
    data_dir: &std::path::Path,
    run: &str,
    control: &RunControl,
    at_epoch_end: impl Fn(&RunControl),
    crash_after: (u32, i64),
) -> CrashAndResume {
    let paths = paths_for(data_dir, run);
    let (mut checkpoints, mut metrics) = (Vec::new(), Vec::new());
    let died = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        train(config, &paths, Device::Cpu, control, false, &mut |event| match event {
            TrainingEvent::EpochCompleted(m) => {
                metrics.push(without_time(m));
                at_epoch_end(control);
            }
            TrainingEvent::CheckpointedMidEpoch { epoch, batches_done } => {
                checkpoints.push((epoch, batches_done));
                if (epoch, batches_done) == crash_after {
                    panic!("killed after batch {batches_done}");
                }
            }
            _ => {}
        })
    }));
    assert!(died.is_err(), "the run died after its mid-epoch checkpoint {crash_after:?}");
    let mut resumed_at = (0, 0);
    train(config, &paths, Device::Cpu, &RunControl::default(), true, &mut |event| match event {
        TrainingEvent::EpochCompleted(m) => metrics.push(without_time(m)),
        TrainingEvent::Started { first_epoch, first_batch, .. } => resumed_at = (first_epoch, first_batch),
        TrainingEvent::CheckpointedMidEpoch { .. } => panic!("the default interval does not fire in a short run"),
        _ => {}
    })
    .unwrap();
    CrashAndResume { checkpoints, metrics, resumed_at }
}

#[test]
fn a_crash_after_a_mid_epoch_checkpoint_resumes_from_it_exactly() {
    let dir = tempfile::tempdir().unwrap();
    common::write_color_dataset(dir.path(), "colors", 3, 12, 4, 32);
    let config = TrainConfig { epochs: 2, batch_size: 8, seed: 5, ..TrainConfig::for_dataset("colors") };
    let straight = uninterrupted(&config, dir.path());

    // Ask for a checkpoint at the end of each epoch: it is written after the next epoch's first batch.
    let control = RunControl::default();
    let run = crash_and_resume(&config, dir.path(), "crashed", &control, RunControl::request_checkpoint, (2, 1));
    assert_eq!(run.checkpoints, [(2, 1)], "one checkpoint, on request");
    assert_eq!(run.resumed_at, (2, 1), "resumed inside epoch 2 after the one batch checkpointed");
    assert_eq!(run.metrics, straight, "bit-identical metrics");
}

#[test]
fn the_mid_epoch_checkpoint_timer_saves_on_its_own_and_a_crash_resumes_from_it_exactly() {
    let dir = tempfile::tempdir().unwrap();
    common::write_color_dataset(dir.path(), "colors", 3, 12, 4, 32);
    // 36 training images in batches of 8: 5 batches per epoch.
    let config = TrainConfig { epochs: 2, batch_size: 8, seed: 9, ..TrainConfig::for_dataset("colors") };
    let straight = uninterrupted(&config, dir.path());

    // An interval of zero makes the timer due before every batch; nobody requests a checkpoint.
    let control = RunControl::default().with_mid_epoch_checkpoints_every(std::time::Duration::ZERO);
    let run = crash_and_resume(&config, dir.path(), "timed", &control, |_| {}, (2, 3));
    assert_eq!(run.checkpoints, [(1, 1), (1, 2), (1, 3), (1, 4), (2, 1), (2, 2), (2, 3)], "one per batch boundary");
    assert_eq!(run.resumed_at, (2, 3), "resumed inside epoch 2 after the three batches checkpointed");
    assert_eq!(run.metrics, straight, "bit-identical metrics despite seven mid-epoch checkpoints and a crash");
}

#[test]
fn a_run_stopped_while_its_dataset_decodes_ends_before_training() {
    let dir = tempfile::tempdir().unwrap();
    common::write_color_dataset(dir.path(), "colors", 2, 4, 2, 16);
    let paths = paths_for(dir.path(), "run");
    let cancel = RunControl::default();
    let mut events = Vec::new();
    let outcome = train(&TrainConfig::for_dataset("colors"), &paths, Device::Cpu, &cancel, false, &mut |event| {
        if matches!(event, TrainingEvent::Preparing(_)) {
            // Stop as soon as decoding reports, as a person pressing Stop during preparation.
            cancel.cancel();
        }
        events.push(event);
    })
    .unwrap();
    assert_eq!(outcome, TrainOutcome::Stopped);
    assert!(matches!(events.as_slice(), [TrainingEvent::Preparing(p)] if p.done == 0), "{events:?}");
    assert!(
        backend::engine::run_dir::RunDir::new(&paths.run_dir).saved_progress().is_none(),
        "nothing was trained or saved"
    );
}

#[test]
fn cuda_only_options_are_ignored_on_the_cpu_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    common::write_color_dataset(dir.path(), "colors", 2, 4, 2, 16);
    let config = TrainConfig {
        epochs: 1,
        mixed_precision: true,
        cudnn_benchmark: true,
        channels_last: true,
        ..TrainConfig::for_dataset("colors")
    };
    let (epochs, notes) = train_colors_on(Device::Cpu, &config, dir.path());
    assert_eq!(epochs.len(), 1);
    let wanted = "Mixed precision, cuDNN benchmark, Channels-last memory apply on CUDA only; ignored on the CPU";
    assert!(notes.iter().any(|n| n == wanted), "{notes:?}");
}

#[test]
fn progress_reports_each_batchs_own_loss_beside_the_epochs_running_mean() {
    let dir = tempfile::tempdir().unwrap();
    common::write_color_dataset(dir.path(), "colors", 3, 16, 2, 16);
    let config = TrainConfig { epochs: 1, batch_size: 4, ..TrainConfig::for_dataset("colors") };
    let paths = common::offline_training_paths(dir.path(), dir.path().join("run"));
    let mut reports = Vec::new();
    train(&config, &paths, Device::Cpu, &RunControl::default(), false, &mut |event| {
        if let TrainingEvent::Progress(progress) = event {
            reports.push((progress.loss, progress.batch_loss));
        }
    })
    .unwrap();
    assert!(!reports.is_empty());
    assert!(reports.iter().all(|&(mean, last)| mean.is_finite() && last.is_finite() && last > 0.0), "{reports:?}");
    // 12 batches: the last batch's loss is not the mean of all twelve.
    let (mean, last) = *reports.last().unwrap();
    assert_ne!(mean, last, "{reports:?}");
}

#[test]
fn a_colour_dataset_is_learned_to_90_percent_test_accuracy_in_four_epochs() {
    let dir = tempfile::tempdir().unwrap();
    common::write_color_dataset(dir.path(), "colors", 4, 40, 15, 32);
    // The seed recipe's optimiser: SGD, lr 0.001, momentum 0.9.
    let config = TrainConfig { epochs: 4, batch_size: 16, ..TrainConfig::for_dataset("colors") };
    let epochs = train_colors(&config, dir.path());
    let first = &epochs[0];
    let last = epochs.last().unwrap();
    assert!(last.test_accuracy >= 0.9, "test accuracy after 4 epochs: {:?}", epochs);
    assert!(last.train_loss < first.train_loss, "training loss fell: {epochs:?}");
    // The saved model is the best epoch's and classifies the test split as well as training measured.
    let best = epochs.iter().fold(&epochs[0], |best, e| if e.test_accuracy > best.test_accuracy { e } else { best });
    let classifier = backend::engine::inference::Classifier::load(&dir.path().join("run"), Device::Cpu).unwrap();
    assert_eq!(classifier.metadata.epoch, best.epoch);
    let source = data::inspect(dir.path(), "colors").unwrap();
    let test = data::load(&source, 32, 0.2, 0).unwrap().test;
    let predictions = classifier.classify_tensor(&test.images);
    let labels = Vec::<i64>::try_from(&test.labels).unwrap();
    let right = predictions.iter().zip(&labels).filter(|(p, &label)| p[0].index as i64 == label).count();
    assert!((right as f64 / labels.len() as f64 - best.test_accuracy).abs() < 1e-9);
}

#[test]
fn the_same_seed_gives_bit_identical_metrics_on_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    common::write_color_dataset(dir.path(), "colors", 3, 12, 4, 32);
    let config = TrainConfig { epochs: 2, batch_size: 8, seed: 42, ..TrainConfig::for_dataset("colors") };
    let strip_time =
        |epochs: Vec<EpochMetrics>| -> Vec<EpochMetrics> { epochs.into_iter().map(without_time).collect() };
    let first = strip_time(train_colors(&config, dir.path()));
    let second = strip_time(train_colors(&config, dir.path()));
    assert_eq!(first, second);
    let other_seed = strip_time(train_colors(&TrainConfig { seed: 43, ..config }, dir.path()));
    assert_ne!(first, other_seed, "the seed matters");
}

/// An epoch's metrics without its wall-clock seconds, the one field that differs between identical runs.
fn without_time(metrics: EpochMetrics) -> EpochMetrics {
    EpochMetrics { seconds: 0.0, ..metrics }
}

/// The metrics (without times) of `config` trained from scratch to the end, in `data_dir/straight`.
fn uninterrupted(config: &TrainConfig, data_dir: &std::path::Path) -> Vec<EpochMetrics> {
    let mut epochs = Vec::new();
    train(config, &paths_for(data_dir, "straight"), Device::Cpu, &RunControl::default(), false, &mut |event| {
        if let TrainingEvent::EpochCompleted(m) = event {
            epochs.push(without_time(m));
        }
    })
    .unwrap();
    epochs
}

/// Where run `run` of the datasets in `data_dir` keeps its checkpoints.
fn paths_for(data_dir: &std::path::Path, run: &str) -> TrainingPaths {
    common::offline_training_paths(data_dir, data_dir.join(run))
}

#[test]
fn a_run_stopped_and_resumed_continues_exactly_as_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    common::write_color_dataset(dir.path(), "colors", 3, 12, 4, 32);
    let config = TrainConfig {
        epochs: 3,
        batch_size: 8,
        seed: 9,
        optimizer: shared::OptimizerKind::Adamw,
        schedule: shared::Schedule::Cosine,
        random_crop: true,
        horizontal_flip: true,
        ..TrainConfig::for_dataset("colors")
    };
    let straight = uninterrupted(&config, dir.path());

    // Stop in the middle of epoch 2, then resume.
    let paths = paths_for(dir.path(), "interrupted");
    let cancel = RunControl::default();
    let mut interrupted = Vec::new();
    let outcome = train(&config, &paths, Device::Cpu, &cancel, false, &mut |event| match event {
        TrainingEvent::EpochCompleted(m) => interrupted.push(without_time(m)),
        TrainingEvent::Progress(p) if p.epoch == 2 && p.batch >= 1 => cancel.cancel(),
        _ => {}
    })
    .unwrap();
    assert_eq!(outcome, TrainOutcome::Stopped);
    assert_eq!(interrupted.len(), 1, "only epoch 1 finished before the stop");
    let mut resumed_at = (0, 0);
    let outcome = train(&config, &paths, Device::Cpu, &RunControl::default(), true, &mut |event| match event {
        TrainingEvent::EpochCompleted(m) => interrupted.push(without_time(m)),
        TrainingEvent::Started { first_epoch, first_batch, .. } => resumed_at = (first_epoch, first_batch),
        _ => {}
    })
    .unwrap();
    assert_eq!(outcome, TrainOutcome::Completed);
    assert_eq!(resumed_at.0, 2, "resumed in the epoch that was stopped");
    assert!(resumed_at.1 >= 1, "the batches trained before the stop are kept, not redone: {resumed_at:?}");
    assert_eq!(interrupted, straight, "bit-identical metrics");
}

/// A dataset past the memory budget is streamed from its decoded cache, batch by batch on a thread of its
/// own: its order, augmentation and results are those of the same run held in memory, bit for bit, and a
/// stop in the middle of an epoch resumes exactly there.
#[test]
fn a_streamed_run_matches_a_resident_one_bit_for_bit_and_resumes_mid_epoch() {
    let dir = tempfile::tempdir().unwrap();
    common::write_color_dataset(dir.path(), "colors", 3, 12, 4, 32);
    let config = TrainConfig {
        epochs: 3,
        batch_size: 4,
        seed: 5,
        random_crop: true,
        horizontal_flip: true,
        ..TrainConfig::for_dataset("colors")
    };
    let resident = uninterrupted(&config, dir.path());

    let paths = TrainingPaths { dataset_memory: Some(1), ..paths_for(dir.path(), "streamed") };
    let (cancel, mut streamed, mut notes) = (RunControl::default(), Vec::new(), Vec::new());
    let outcome = train(&config, &paths, Device::Cpu, &cancel, false, &mut |event| match event {
        TrainingEvent::EpochCompleted(m) => streamed.push(without_time(m)),
        // Inside epoch 2 (of 9 batches), not at its end: a stop there is a mid-epoch stop.
        TrainingEvent::Progress(p) if p.epoch == 2 && p.batch >= 2 && p.batch < p.batches => cancel.cancel(),
        TrainingEvent::Note(note) => notes.push(note),
        _ => {}
    })
    .unwrap();
    assert_eq!(outcome, TrainOutcome::Stopped);
    let note = notes.iter().find(|n| n.contains("streaming them from the decoded cache"));
    assert!(note.is_some_and(|n| n.contains("more than the memory budget")), "{notes:?}");
    let mut resumed_at = (0, 0);
    let outcome = train(&config, &paths, Device::Cpu, &RunControl::default(), true, &mut |event| match event {
        TrainingEvent::EpochCompleted(m) => streamed.push(without_time(m)),
        TrainingEvent::Started { first_epoch, first_batch, .. } => resumed_at = (first_epoch, first_batch),
        _ => {}
    })
    .unwrap();
    assert_eq!(outcome, TrainOutcome::Completed);
    assert_eq!(resumed_at.0, 2, "resumed in the epoch that was stopped");
    assert!(resumed_at.1 >= 2, "inside it: {resumed_at:?}");
    assert_eq!(streamed, resident, "bit-identical metrics");
}

#[test]
fn a_frozen_backbone_keeps_its_weights_and_batch_norm_statistics() {
    let dir = tempfile::tempdir().unwrap();
    common::write_color_dataset(dir.path(), "colors", 2, 8, 2, 32);
    std::fs::create_dir_all(dir.path().join("weights")).unwrap();
    let pretrained = dir.path().join("weights/pretrained.safetensors");
    backend::model::ResNet18::new(Device::Cpu, 1000, 5).save(&pretrained, None).unwrap();
    let config = TrainConfig {
        epochs: 2,
        batch_size: 4,
        lr: 0.01,
        weights: "pretrained.safetensors".into(),
        mode: shared::FineTuneMode::Frozen,
        ..TrainConfig::for_dataset("colors")
    };
    let paths = paths_for(dir.path(), "frozen");
    train(&config, &paths, Device::Cpu, &RunControl::default(), false, &mut |_| {}).unwrap();
    let before: std::collections::HashMap<String, tch::Tensor> =
        tch::Tensor::read_safetensors(&pretrained).unwrap().into_iter().collect();
    let after: std::collections::HashMap<String, tch::Tensor> =
        tch::Tensor::read_safetensors(paths.run_dir.join(backend::model::WEIGHTS_FILE)).unwrap().into_iter().collect();
    for name in ["conv1.weight", "layer3.1.bn2.weight", "bn1.running_mean", "layer4.0.bn1.running_var"] {
        assert!(before[name].equal(&after[name]), "{name} changed in a frozen backbone");
    }
    let head_moved = after["fc.weight"].sum(tch::Kind::Float).double_value(&[]) != 0.0;
    assert!(head_moved);
}

#[test]
fn early_stopping_ends_a_run_whose_test_accuracy_stops_improving() {
    let dir = tempfile::tempdir().unwrap();
    common::write_color_dataset(dir.path(), "colors", 2, 8, 3, 32);
    let config = TrainConfig {
        epochs: 30,
        batch_size: 8,
        lr: 0.01,
        early_stopping_patience: Some(2),
        ..TrainConfig::for_dataset("colors")
    };
    let mut epochs = Vec::new();
    let outcome =
        train(&config, &paths_for(dir.path(), "early"), Device::Cpu, &RunControl::default(), false, &mut |e| {
            if let TrainingEvent::EpochCompleted(m) = e {
                epochs.push(m.test_accuracy);
            }
        })
        .unwrap();
    // Accuracy can only improve so often on 6 test images: the run must stop well before 30 epochs.
    let TrainOutcome::EarlyStopped { epoch } = outcome else { panic!("ran every epoch: {epochs:?}") };
    assert_eq!(epoch as usize, epochs.len());
    let best = epochs.iter().cloned().fold(0.0, f64::max);
    let best_at = epochs.iter().position(|&a| a == best).unwrap();
    assert_eq!(epochs.len(), best_at + 1 + 2, "stopped two epochs after the best: {epochs:?}");
}

#[test]
fn metrics_include_top5_per_class_accuracy_and_a_confusion_matrix() {
    let dir = tempfile::tempdir().unwrap();
    common::write_color_dataset(dir.path(), "colors", 6, 6, 3, 32);
    let config = TrainConfig { epochs: 1, batch_size: 12, ..TrainConfig::for_dataset("colors") };
    let metrics = train_colors(&config, dir.path()).remove(0);
    assert_eq!(metrics.confusion.len(), 6);
    assert_eq!(metrics.confusion.iter().flatten().sum::<u32>(), 18, "every test image counted once");
    let right: u32 = (0..6).map(|c| metrics.confusion[c][c]).sum();
    assert!((f64::from(right) / 18.0 - metrics.test_accuracy).abs() < 1e-12);
    assert_eq!(metrics.per_class_accuracy.len(), 6);
    let top5 = metrics.test_top5_accuracy.expect("top-5 with 6 classes");
    assert!(top5 >= metrics.test_accuracy);
    assert!(metrics.lr > 0.0);
}

#[test]
fn progress_reports_throughput_and_an_eta_that_reaches_zero_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    common::write_color_dataset(dir.path(), "colors", 2, 16, 2, 32);
    let config = TrainConfig { epochs: 2, batch_size: 4, ..TrainConfig::for_dataset("colors") };
    let mut progress = Vec::new();
    train(&config, &paths_for(dir.path(), "eta"), Device::Cpu, &RunControl::default(), false, &mut |event| {
        if let TrainingEvent::Progress(p) = event {
            progress.push(p);
        }
    })
    .unwrap();
    let last = progress.last().unwrap();
    assert_eq!((last.epoch, last.batch, last.batches), (2, 8, 8));
    assert_eq!(last.eta_seconds, 0.0);
    let first_epoch_end = progress.iter().find(|p| p.epoch == 1 && p.batch == 8).unwrap();
    assert!(first_epoch_end.eta_seconds > 0.0, "a whole epoch is still to come");
    assert!(progress.iter().all(|p| p.images_per_second > 0.0));
}

#[test]
fn a_leftover_single_image_trains_in_the_last_batch_and_every_epoch_is_a_number() {
    // 9 training images in batches of 8: alone, the ninth would be a batch of one, whose batch-norm
    // variance at the 1x1 last stage is 0/0 and turned every later test loss into NaN.
    let dir = tempfile::tempdir().unwrap();
    common::write_color_dataset(dir.path(), "colors", 3, 3, 1, 16);
    let config = TrainConfig { epochs: 2, batch_size: 8, ..TrainConfig::for_dataset("colors") };
    let paths = common::offline_training_paths(dir.path(), dir.path().join("run"));
    let (mut epochs, mut batches) = (Vec::new(), Vec::new());
    train(&config, &paths, Device::Cpu, &RunControl::default(), false, &mut |event| match event {
        TrainingEvent::EpochCompleted(metrics) => epochs.push(metrics),
        TrainingEvent::Progress(progress) => batches.push(progress.batches),
        _ => {}
    })
    .unwrap();
    assert_eq!(epochs.len(), 2);
    assert!(epochs.iter().all(|e| e.train_loss.is_finite() && e.test_loss.is_finite()), "{epochs:?}");
    assert!(batches.iter().all(|&count| count == 1), "one batch of nine per epoch: {batches:?}");
}

#[test]
fn a_batch_size_of_one_at_a_small_input_fails_the_run_with_a_sentence_instead_of_recording_nan() {
    let dir = tempfile::tempdir().unwrap();
    common::write_color_dataset(dir.path(), "colors", 2, 2, 1, 16);
    let config = TrainConfig { epochs: 1, batch_size: 1, ..TrainConfig::for_dataset("colors") };
    let paths = common::offline_training_paths(dir.path(), dir.path().join("run"));
    let mut epochs = Vec::new();
    let error = train(&config, &paths, Device::Cpu, &RunControl::default(), false, &mut |event| {
        if let TrainingEvent::EpochCompleted(metrics) = event {
            epochs.push(metrics);
        }
    })
    .unwrap_err()
    .to_string();
    assert!(error.contains("test loss became NaN after epoch 1") && error.contains("batch size of 2"), "{error}");
    assert!(epochs.is_empty(), "no epoch with a NaN loss is recorded: {epochs:?}");
}
