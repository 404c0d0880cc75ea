//! CIFAR-10's and CIFAR-100's "python versions" (`cifar-10-batches-py`, `cifar-100-python`), written here by
//! real Python and NumPy at protocol 2 (the official archives') and protocol 4 (Python 3's default), read in
//! Rust as exactly the records of the binary layouts, are listed by the server and train.

use crate::common;

use common::TestServer;
use serde_json::json;
use shared::{DatasetFormat, DatasetInfo, RunCreated, RunStatus};
use std::path::Path;

/// Records per training file and in the test file.
const PER_FILE: usize = 40;
const TEST_COUNT: usize = 60;

/// Runs `tests/python/save_cifar_python.py` into `out`.
fn write_with_python(out: &Path) {
    let (per_file, test_count) = (PER_FILE.to_string(), TEST_COUNT.to_string());
    common::run_python("save_cifar_python.py", &[out.as_os_str(), per_file.as_ref(), test_count.as_ref()]);
}

#[test]
fn numpy_pickles_at_protocols_2_and_4_hold_the_binary_layouts_records() {
    let dir = tempfile::tempdir().unwrap();
    write_with_python(dir.path());
    let binary = backend::data::inspect(dir.path(), "bin").unwrap();
    let expected = backend::data::load(&binary, 32, 0.2, 0).unwrap();
    for protocol in ["p2", "p4"] {
        let source = backend::data::inspect(dir.path(), protocol).unwrap();
        assert_eq!(source.info.format, DatasetFormat::Cifar10Python, "{protocol}");
        assert_eq!(source.info.classes, binary.info.classes, "{protocol}");
        assert_eq!((source.info.train_count, source.info.test_count), (5 * PER_FILE, TEST_COUNT), "{protocol}");
        let data = backend::data::load(&source, 32, 0.2, 0).unwrap();
        for (what, a, b) in [("train", &expected.train, &data.train), ("test", &expected.test, &data.test)] {
            assert!(a.images.equal(&b.images), "{protocol} {what} pixels differ from the binary layout");
            assert!(a.labels.equal(&b.labels), "{protocol} {what} labels differ from the binary layout");
        }
    }
}

#[test]
fn cifar100_python_holds_the_binary_layouts_records_with_the_fine_labels() {
    let dir = tempfile::tempdir().unwrap();
    write_with_python(dir.path());
    let binary = backend::data::inspect(dir.path(), "c100bin").unwrap();
    let source = backend::data::inspect(dir.path(), "c100py").unwrap();
    assert_eq!(source.info.format, DatasetFormat::Cifar100Python);
    assert_eq!(source.info.classes.len(), 100);
    assert_eq!(source.info.classes, binary.info.classes);
    assert_eq!((source.info.train_count, source.info.test_count), (5 * PER_FILE, TEST_COUNT));
    let (expected, data) =
        (backend::data::load(&binary, 32, 0.2, 0).unwrap(), backend::data::load(&source, 32, 0.2, 0).unwrap());
    for (what, a, b) in [("train", &expected.train, &data.train), ("test", &expected.test, &data.test)] {
        assert!(a.images.equal(&b.images), "CIFAR-100 {what} pixels differ from the binary layout");
        assert!(a.labels.equal(&b.labels), "CIFAR-100 {what} fine labels differ from the binary layout");
    }
}

#[tokio::test]
async fn the_server_lists_a_cifar_python_dataset_and_a_run_learns_from_it() {
    let data = tempfile::tempdir().unwrap();
    write_with_python(data.path());
    let server = TestServer::start_with(data, |_| {}, None).await;
    let datasets: Vec<DatasetInfo> = reqwest::get(server.url("/api/datasets")).await.unwrap().json().await.unwrap();
    let p2 = datasets.iter().find(|d| d.name == "p2").expect("p2 listed");
    assert_eq!(p2.format, DatasetFormat::Cifar10Python);
    assert_eq!(p2.classes[9], "truck");

    // From torchvision's initialisation (batch-norm scales of one) AdamW at 0.003 overshoots in three epochs
    // of 200 images (28 % test accuracy); at the seed recipe's 0.001 it reaches 83 %.
    let body = json!({"dataset": "p2", "epochs": 3, "batch_size": 20, "optimizer": "adamw", "lr": 0.001});
    let response = reqwest::Client::new().post(server.url("/api/runs")).json(&body).send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.text().await.unwrap());
    let id = response.json::<RunCreated>().await.unwrap().id;
    let run = server.wait_until_finished(id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    let last = run.epochs.last().unwrap();
    // Ten mean colours plus noise: far above the 10 % of chance after three epochs.
    assert!(last.test_accuracy > 0.5, "test accuracy {}: {run:?}", last.test_accuracy);
}
