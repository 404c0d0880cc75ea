//! Hostile inputs against a real server: files built here to break the parsers (a CIFAR pickle nested
//! 100,000 deep, names that are both a file and a folder, unreadable datasets placed by hand, a `.pth`
//! compression bomb) must be refused with a sentence, never take the server down, and never make the
//! data folder unlistable.

mod common;

use common::{write_color_dataset, TestServer};
use reqwest::StatusCode;
use shared::{DatasetInfo, ErrorBody};
use std::io::Write;
use std::path::Path;

/// A CIFAR-10 python dataset folder whose first training batch is a list nested 100,000 deep.
fn write_deep_pickle_dataset(folder: &Path) {
    let root = folder.join("cifar-10-batches-py");
    backend::data::write_cifar_python(&root, &["cat", "dog"], 1, 1, |i| ((i % 2) as u8, vec![7; 3072])).unwrap();
    let deep = [b"]".repeat(100_000), b"a".repeat(99_999), b".".to_vec()].concat();
    std::fs::write(root.join("data_batch_1"), deep).unwrap();
}

/// The files under `folder` as zip entries named `prefix/<path>`.
fn entries_of(folder: &Path, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(folder).unwrap().map(Result::unwrap) {
        let name = format!("{prefix}/{}", entry.file_name().to_string_lossy());
        if entry.file_type().unwrap().is_dir() {
            entries.extend(entries_of(&entry.path(), &name));
        } else {
            entries.push((name, std::fs::read(entry.path()).unwrap()));
        }
    }
    entries
}

async fn upload(server: &TestServer, name: &str, zip: Vec<u8>) -> reqwest::Response {
    let url = server.url(&format!("/api/datasets?name={name}"));
    reqwest::Client::new().post(url).header("Content-Type", "application/zip").body(zip).send().await.unwrap()
}

async fn datasets(server: &TestServer) -> Vec<DatasetInfo> {
    let response = reqwest::get(server.url("/api/datasets")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_4_kb_upload_of_a_deeply_nested_pickle_is_refused_and_the_server_keeps_serving() {
    let server = TestServer::start().await;
    let made = tempfile::tempdir().unwrap();
    write_deep_pickle_dataset(made.path());
    let zip = common::zip_dataset(&entries_of(made.path(), "deep"));
    println!("the upload is {} bytes", zip.len());
    assert!(zip.len() < 8 * 1024, "a small upload: {} bytes", zip.len());

    let response = upload(&server, "deep", zip).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error = response.json::<ErrorBody>().await.unwrap().error;
    assert!(
        error.contains("cifar-10-batches-py/data_batch_1") && error.contains("nest more than 1000 deep"),
        "{error}"
    );
    assert!(!error.contains(&server.data.path().display().to_string()), "no server path: {error}");

    let health = reqwest::get(server.url("/api/health")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert!(datasets(&server).await.is_empty());
    let left: Vec<String> = std::fs::read_dir(server.data.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "nothing staged is left: {left:?}");

    // A staging folder left behind by a crash, holding the same pickle, is never read: a restart lists.
    write_deep_pickle_dataset(&server.data.path().join(".upload-deep.partial"));
    let TestServer { data, .. } = server;
    let studio = backend::studio::Studio::open(backend::studio::StudioSettings::new(data.path()), tch::Device::Cpu)
        .expect("the studio opens again");
    assert!(studio.datasets().is_empty());
    drop(studio);
    let restarted = TestServer::start_with(data, |_| {}, None).await;
    assert!(datasets(&restarted).await.is_empty());
}

#[tokio::test]
async fn a_dataset_that_cannot_be_read_is_listed_with_its_error_beside_the_good_ones() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 2, 2, 1, 8);
    write_deep_pickle_dataset(&data.path().join("deep"));
    let server = TestServer::start_with(data, |_| {}, None).await;

    let listed = datasets(&server).await;
    let names: Vec<&str> = listed.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["colors", "deep"]);
    assert_eq!((listed[0].error.as_deref(), listed[0].train_count), (None, 4));
    let error = listed[1].error.as_deref().expect("the unreadable dataset says why");
    assert!(error.starts_with("deep/cifar-10-batches-py/data_batch_1 is malformed"), "{error}");
    assert!(error.contains("nest more than 1000 deep"), "{error}");
    assert!(!error.contains(&server.data.path().display().to_string()), "no server path: {error}");
}

#[tokio::test]
async fn a_zip_naming_one_path_as_a_file_and_a_folder_gets_a_400_sentence() {
    let server = TestServer::start().await;
    let png = common::png_bytes([9, 9, 9], 8, 0);
    let zip = common::zip_dataset(&[("set/a/b".into(), png.clone()), ("set/a/b/c.png".into(), png)]);
    let response = upload(&server, "set", zip).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error = response.json::<ErrorBody>().await.unwrap().error;
    assert_eq!(error, "the zip holds \"set/a/b\" both as a file and as a folder");
    assert!(datasets(&server).await.is_empty());
}

/// A `.pth` of about 600 KB: its pickle names one storage of `numel` floats, and that storage's entry
/// inflates to `inflated` zero bytes.
fn pth_bomb(numel: u32, inflated: usize) -> Vec<u8> {
    let mut pickle =
        b"\x80\x02}(X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storage".to_vec();
    let int = |v: u32| [&b"J"[..], &v.to_le_bytes()].concat();
    pickle.extend_from_slice(b"ctorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpu");
    pickle.extend([int(numel), b"tQ".to_vec(), int(0), b"(".to_vec(), int(numel), b"t(".to_vec(), int(1)].concat());
    pickle.extend_from_slice(b"t\x89ccollections\nOrderedDict\n)RtRu.");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    zip.start_file("bomb/data.pkl", options).unwrap();
    zip.write_all(&pickle).unwrap();
    zip.start_file("bomb/data/0", options.compression_method(zip::CompressionMethod::Deflated)).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..inflated / zeros.len() {
        zip.write_all(&zeros).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// The most memory this process has held at once, in bytes (Linux's `VmHWM`).
fn peak_memory() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

#[tokio::test]
async fn a_pth_compression_bomb_is_refused_without_being_inflated() {
    let server = TestServer::start().await;
    // 600 MiB of zeros, declared as 600 MiB of floats: past the 512 MiB a checkpoint may unpack to.
    let bomb = pth_bomb(600 << 18, 600 << 20);
    assert!(bomb.len() < 1 << 20, "a small upload: {} bytes", bomb.len());
    let peak_before = peak_memory();

    let response = reqwest::Client::new()
        .post(server.url("/api/weights?name=bomb.pth"))
        .header("Content-Type", "application/octet-stream")
        .body(bomb)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let error = response.json::<ErrorBody>().await.unwrap().error;
    assert!(error.contains("bomb.pth") && error.contains("storage 0 (629145600 bytes)"), "{error}");
    assert!(
        error
            .contains("the pickle and its tensors past 536870912 bytes (512 MiB), the most a checkpoint may unpack to"),
        "{error}"
    );
    let grown = peak_memory().saturating_sub(peak_before);
    assert!(grown < 256 << 20, "the refusal took {} MiB more at its peak", grown >> 20);

    let health = reqwest::get(server.url("/api/health")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let weights_dir = server.data.path().join("weights");
    let left: Vec<_> =
        std::fs::read_dir(weights_dir).map(|dir| dir.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "nothing is kept: {left:?}");
}
