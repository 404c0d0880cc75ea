//! The engine learns: a small synthetic dataset whose classes differ by colour is learned to a stated
//! test accuracy within a few epochs, from random initialisation, on the CPU.

mod common;

use backend::data::{self};
use backend::download::DownloadSource;
use backend::training::{train, CancelFlag, TrainOutcome, TrainingEvent, TrainingPaths};
use shared::{EpochMetrics, TrainConfig};
use tch::Device;

fn train_colors(config: &TrainConfig, data_dir: &std::path::Path) -> Vec<EpochMetrics> {
    let paths = TrainingPaths {
        data_dir: data_dir.to_path_buf(),
        weights_dir: data_dir.join("weights"),
        run_dir: data_dir.join("run"),
        cifar10: DownloadSource { url: "http://127.0.0.1:9/".into(), md5: String::new() },
    };
    let mut epochs = Vec::new();
    let outcome = train(config, &paths, Device::Cpu, &CancelFlag::default(), false, &mut |event| {
        if let TrainingEvent::EpochCompleted(metrics) = event {
            epochs.push(metrics);
        }
    })
    .unwrap();
    assert_eq!(outcome, TrainOutcome::Completed);
    epochs
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
    // The saved model is the last epoch's and classifies the test split as well as training measured.
    let classifier = backend::inference::Classifier::load(&dir.path().join("run"), Device::Cpu).unwrap();
    assert_eq!(classifier.metadata.epoch, 4);
    let source = data::inspect(dir.path(), "colors").unwrap();
    let test = data::load(&source, 32, 0.2, 0).unwrap().test;
    let predictions = classifier.classify_tensor(&test.images);
    let labels = Vec::<i64>::try_from(&test.labels).unwrap();
    let right = predictions.iter().zip(&labels).filter(|(p, &label)| p[0].index as i64 == label).count();
    assert!((right as f64 / labels.len() as f64 - last.test_accuracy).abs() < 1e-9);
}

#[test]
fn the_same_seed_gives_bit_identical_metrics_on_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    common::write_color_dataset(dir.path(), "colors", 3, 12, 4, 32);
    let config = TrainConfig { epochs: 2, batch_size: 8, seed: 42, ..TrainConfig::for_dataset("colors") };
    let strip_time = |epochs: Vec<EpochMetrics>| -> Vec<EpochMetrics> {
        epochs.into_iter().map(|e| EpochMetrics { seconds: 0.0, ..e }).collect()
    };
    let first = strip_time(train_colors(&config, dir.path()));
    let second = strip_time(train_colors(&config, dir.path()));
    assert_eq!(first, second);
    let other_seed = strip_time(train_colors(&TrainConfig { seed: 43, ..config }, dir.path()));
    assert_ne!(first, other_seed, "the seed matters");
}
