//! Dataset health over the API on a real server and real files: class counts, unreadable images,
//! duplicates and train/test leakage; and a run that skips the unreadable images instead of failing.

use crate::common;

use backend::engine::training::{train, RunControl, TrainOutcome, TrainingEvent};
use common::{write_color_dataset, TestServer};
use serde_json::Value;
use shared::{DatasetHealth, DuplicateKind, TrainConfig};
use std::path::Path;
use tch::Device;

/// Three colour classes (black, blue, green), 6 training and 2 test images each, plus a test image that
/// is a copy of a training image and a training "image" that is not one.
fn leaky_dataset(data_dir: &Path) {
    write_color_dataset(data_dir, "colors", 3, 6, 2, 16);
    let root = data_dir.join("colors");
    std::fs::copy(root.join("train/black/0000.png"), root.join("test/black/leak.png")).unwrap();
    std::fs::write(root.join("train/blue/broken.png"), b"\x89PNG\r\n\x1a\nthe rest is missing").unwrap();
}

#[tokio::test]
async fn the_health_check_counts_classes_and_lists_unreadable_images_and_a_leaked_test_image() {
    let server = TestServer::start().await;
    leaky_dataset(server.data.path());
    let answer = reqwest::get(server.url("/api/datasets/colors/health")).await.unwrap();
    assert_eq!(answer.status(), 200);
    let health: DatasetHealth = answer.json().await.unwrap();
    let counts: Vec<(&str, usize, usize)> = health.classes.iter().map(|c| (c.name.as_str(), c.train, c.test)).collect();
    assert_eq!(counts, [("black", 6, 3), ("blue", 7, 2), ("green", 6, 2)], "files per class, unreadable included");
    assert_eq!(health.imbalance, 7.0 / 6.0);
    assert_eq!((health.sizes.smallest, health.sizes.largest), ([16, 16], [16, 16]));
    assert_eq!(health.unreadable.len(), 1);
    assert_eq!(health.unreadable[0].path, "train/blue/broken.png");
    let leaks: Vec<_> = health.duplicates.iter().filter(|d| d.across_splits).collect();
    assert_eq!(leaks.len(), 1, "{:?}", health.duplicates);
    assert_eq!(
        (leaks[0].a.as_str(), leaks[0].b.as_str(), leaks[0].kind, leaks[0].similarity),
        ("train/black/0000.png", "test/black/leak.png", DuplicateKind::Exact, 1.0)
    );
    assert_eq!((health.leaks(), health.test_images()), (1, 7), "one distinct test image of seven leaked");
    assert_eq!(health.near_similarity, backend::data::duplicates::NEAR_SIMILARITY);
}

#[tokio::test]
async fn the_health_check_follows_changes_to_the_files() {
    let server = TestServer::start().await;
    leaky_dataset(server.data.path());
    let url = server.url("/api/datasets/colors/health");
    let before: DatasetHealth = reqwest::get(&url).await.unwrap().json().await.unwrap();
    assert_eq!(before.unreadable.len(), 1);
    std::fs::remove_file(server.data.path().join("colors/test/black/leak.png")).unwrap();
    std::fs::remove_file(server.data.path().join("colors/train/blue/broken.png")).unwrap();
    let after: DatasetHealth = reqwest::get(&url).await.unwrap().json().await.unwrap();
    assert!(after.unreadable.is_empty() && after.leaks() == 0, "{after:?}");
    assert_eq!(after.classes[0].test, 2);
}

#[tokio::test]
async fn an_unknown_dataset_is_a_404_and_a_name_outside_the_data_folder_a_400() {
    let server = TestServer::start().await;
    for (path, status, words) in [
        ("/api/datasets/nothing-here/health", 404, "does not exist"),
        ("/api/datasets/..secret/health", 400, "plain name"),
        ("/api/datasets/%2E%2E%2Fetc/health", 400, "plain name"),
    ] {
        let answer = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(answer.status(), status, "{path}");
        let body: Value = answer.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains(words), "{path}: {body}");
    }
}

#[test]
fn a_run_skips_unreadable_images_and_says_how_many() {
    let dir = tempfile::tempdir().unwrap();
    leaky_dataset(dir.path());
    std::fs::write(dir.path().join("colors/test/green/empty.png"), b"").unwrap();
    let paths = common::offline_training_paths(dir.path(), dir.path().join("run"));
    let config = TrainConfig { epochs: 1, batch_size: 8, ..TrainConfig::for_dataset("colors") };
    let mut notes = Vec::new();
    let mut tested = 0;
    let outcome = train(&config, &paths, Device::Cpu, &RunControl::default(), false, &mut |event| match event {
        TrainingEvent::Note(note) => notes.push(note),
        TrainingEvent::EpochCompleted(metrics) => tested = metrics.confusion.iter().flatten().sum::<u32>(),
        _ => {}
    })
    .unwrap();
    assert_eq!(outcome, TrainOutcome::Completed);
    let note = notes.iter().find(|n| n.contains("unreadable")).expect("a note about the skipped images");
    assert!(note.starts_with("2 unreadable images skipped (first: colors/"), "{note}");
    assert_eq!(tested, 7, "the 7 decodable test images were evaluated, the empty file left out");
}
