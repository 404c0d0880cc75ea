//! Run receipts: every run records what it used and where it ran (`receipt.json` in its folder,
//! `GET /api/runs/{id}/receipt`), and `transfer-studio train --receipt FILE` repeats a finished CPU run
//! from it bit for bit, or refuses when the data or the program differ. A run whose data changed since it
//! started is not resumed: the refusal names what changed.

use crate::common;

use common::{write_color_dataset, TestServer};
use serde_json::json;
use shared::{EpochMetrics, Precision, RunReceipt, RunStatus};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn binary() -> PathBuf {
    let binary = common::workspace_root().join("target/release/transfer-studio");
    assert!(binary.is_file(), "{} is missing: run `cargo build --release -p transfer-studio`", binary.display());
    binary
}

/// A server over a 3-class dataset `colors` of 8 training and 3 test images per class.
async fn server_with_colors() -> TestServer {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 3, 8, 3, 32);
    TestServer::start_with(data, |_| {}, None).await
}

/// Trains `config` on the server to the end and answers its receipt as the API gives it.
async fn trained_receipt(server: &TestServer, config: serde_json::Value) -> (shared::Run, RunReceipt) {
    let id = server.create_run(config).await;
    let run = server.wait_until_finished(id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    let response = reqwest::get(server.url(&format!("/api/runs/{id}/receipt"))).await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    (run, response.json().await.unwrap())
}

/// Runs `transfer-studio train --receipt` on `receipt` with the data folder `data` and the output `out`.
fn repeat(receipt: &RunReceipt, data: &Path, out: &Path) -> Output {
    let file = out.with_extension("receipt.json");
    std::fs::write(&file, serde_json::to_vec_pretty(receipt).unwrap()).unwrap();
    Command::new(binary())
        .args(["train", "--receipt"])
        .arg(&file)
        .arg("--data-dir")
        .arg(data)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

/// An epoch's metrics without its wall-clock seconds, the one field that differs between identical runs.
fn measured(epochs: &[EpochMetrics]) -> Vec<EpochMetrics> {
    epochs.iter().map(|m| EpochMetrics { seconds: 0.0, ..m.clone() }).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_run_records_its_data_program_device_threads_precision_and_seed() {
    let server = server_with_colors().await;
    let config = json!({"dataset": "colors", "epochs": 1, "batch_size": 8, "seed": 11});
    let (run, receipt) = trained_receipt(&server, config).await;
    assert_eq!(receipt.version, env!("CARGO_PKG_VERSION"));
    assert_eq!((receipt.device.as_str(), receipt.precision, receipt.seed), ("cpu", Precision::Float32, 11));
    assert_eq!(receipt.threads, tch::get_num_threads() as u32);
    assert_eq!(receipt.config, run.config);
    assert_eq!(receipt.epochs, run.epochs, "the API adds the epochs the run measured");
    assert_eq!(receipt.data.classes, ["black", "blue", "green"]);
    assert_eq!((receipt.data.train.images, receipt.data.test.images), (24, 9));
    let hashes = [&receipt.data.sha256, &receipt.data.train.images_sha256, &receipt.data.test.labels_sha256];
    assert!(hashes.iter().all(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit())), "{hashes:?}");
    assert_eq!(receipt.weights_sha256, None, "random initial weights");

    // The run's folder keeps the same receipt, written when training started (before any epoch).
    let file = server.data.path().join(format!("runs/{}/receipt.json", run.id));
    let kept: RunReceipt = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    assert_eq!(kept, RunReceipt { epochs: Vec::new(), ..receipt });

    let missing = reqwest::get(server.url("/api/runs/99/receipt")).await.unwrap();
    assert_eq!(missing.status(), reqwest::StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_repeats_a_finished_cpu_run_from_its_receipt_bit_for_bit() {
    let server = server_with_colors().await;
    // Augmentation and a schedule, so every random draw and every step of the run is repeated.
    let config = json!({"dataset": "colors", "epochs": 3, "batch_size": 8, "seed": 3, "random_crop": true,
        "horizontal_flip": true, "schedule": "cosine"});
    let (run, receipt) = trained_receipt(&server, config).await;
    assert_eq!(receipt.epochs.len(), 3);

    let out = server.data.path().join("repeat");
    let output = repeat(&receipt, server.data.path(), &out);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("reproduced the receipt's 3 epochs bit for bit"), "{stdout}");

    let repeated: RunReceipt = serde_json::from_slice(&std::fs::read(out.join("receipt.json")).unwrap()).unwrap();
    assert_eq!(measured(&repeated.epochs), measured(&run.epochs), "every epoch's metrics, bit for bit");
    assert_eq!(repeated.data, receipt.data);
    assert_eq!((repeated.threads, &repeated.config), (receipt.threads, &receipt.config));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_refuses_a_dataset_with_one_image_altered() {
    let server = server_with_colors().await;
    let (_, receipt) = trained_receipt(&server, json!({"dataset": "colors", "epochs": 1, "batch_size": 8})).await;

    let image = server.data.path().join("colors/train/blue/0003.png");
    let mut altered = image::open(&image).unwrap().to_rgb8();
    altered.put_pixel(5, 5, image::Rgb([255, 0, 255]));
    altered.save(&image).unwrap();

    let out = server.data.path().join("repeat");
    let output = repeat(&receipt, server.data.path(), &out);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("dataset \"colors\" is not the one the run used: the training images differ (SHA-256"),
        "{stderr}"
    );
    assert!(!out.join("model.safetensors").exists(), "nothing was trained");
}

#[test]
fn a_repeat_refuses_a_receipt_of_another_program_version() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("receipt.json");
    let receipt = json!({
        "version": "0.0.1", "device": "cpu", "threads": 2, "precision": "float32", "seed": 0,
        "data": {"classes": ["a"], "sha256": "0",
                 "train": {"images": 1, "images_sha256": "0", "labels_sha256": "0"},
                 "test": {"images": 1, "images_sha256": "0", "labels_sha256": "0"}},
        "config": {"dataset": "colors"}
    });
    std::fs::write(&file, receipt.to_string()).unwrap();
    let output =
        Command::new(binary()).args(["train", "--receipt"]).arg(&file).arg("--data-dir").arg(dir.path()).output();
    let output = output.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    let wanted = format!(
        "this receipt was written by Transfer Studio 0.0.1 and this is {}: only the same version repeats a run bit \
         for bit",
        env!("CARGO_PKG_VERSION")
    );
    assert!(stderr.contains(&wanted), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_over_data_changed_since_the_run_started_is_refused_with_what_changed() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 2, 16, 4, 32);
    let server = TestServer::start_with(data, |_| {}, None).await;
    let id = server.create_run(json!({"dataset": "colors", "epochs": 6, "batch_size": 4})).await;
    server.wait_for_run(id, std::time::Duration::from_secs(120), |run| !run.epochs.is_empty()).await;
    let client = reqwest::Client::new();
    client.post(server.url(&format!("/api/runs/{id}/stop"))).send().await.unwrap();
    let stopped = server.wait_until_finished(id).await;
    assert_eq!(stopped.status, RunStatus::Stopped, "{stopped:?}");
    let receipt_before = std::fs::read(server.data.path().join(format!("runs/{id}/receipt.json"))).unwrap();

    let image = server.data.path().join("colors/train/blue/0003.png");
    let original = std::fs::read(&image).unwrap();
    let mut altered = image::load_from_memory(&original).unwrap().to_rgb8();
    altered.put_pixel(5, 5, image::Rgb([255, 0, 255]));
    altered.save(&image).unwrap();
    client.post(server.url(&format!("/api/runs/{id}/resume"))).send().await.unwrap().error_for_status().unwrap();
    let refused = server.wait_until_finished(id).await;
    assert_eq!(refused.status, RunStatus::Failed, "{refused:?}");
    let error = refused.error.clone().unwrap_or_default();
    assert!(
        error.starts_with(
            "the run cannot resume: dataset \"colors\" changed since the run started (the training images differ: \
             SHA-256"
        ),
        "{error}"
    );
    assert!(error.contains("start a new run with the same settings"), "{error}");
    assert_eq!(refused.epochs, stopped.epochs, "no epoch was trained on the changed data");
    let receipt_after = std::fs::read(server.data.path().join(format!("runs/{id}/receipt.json"))).unwrap();
    assert_eq!(receipt_after, receipt_before, "the receipt still records the data the epochs used");

    // With the image put back, the same run resumes and finishes.
    std::fs::write(&image, original).unwrap();
    client.post(server.url(&format!("/api/runs/{id}/resume"))).send().await.unwrap().error_for_status().unwrap();
    let finished = server.wait_until_finished(id).await;
    assert_eq!(finished.status, RunStatus::Completed, "{finished:?}");
    assert_eq!(finished.epochs.len(), 6);
}
