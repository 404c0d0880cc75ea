//! Dataset versions over the API on a real server and real files: a version leaves images out and
//! relabels others without touching the dataset's files, is listed with its parent and edit counts,
//! trains like any dataset, has its own health check, can itself be edited, and every edit that does
//! not fit is refused with a sentence. An image folder's version keeps every other image in its split.
//! A version can also add images sent to the dataset (a classified upload with its right class): they
//! are kept beside the versions, never in the dataset's folder, and train, show and count like its own.

use crate::common;

use common::{write_color_dataset, TestServer};
use serde_json::{json, Value};
use shared::{DatasetHealth, DatasetInfo, TestImage};
use std::collections::BTreeMap;
use std::path::Path;

/// Three colour classes (black, blue, green) of 6 training and 2 test images each, 16 px.
async fn server_with_colors() -> TestServer {
    let server = TestServer::start().await;
    write_color_dataset(server.data.path(), "colors", 3, 6, 2, 16);
    server
}

/// `POST /api/datasets/{name}/versions` with `body`: the status and the answer's JSON.
async fn post_version(server: &TestServer, name: &str, body: Value) -> (u16, Value) {
    let url = server.url(&format!("/api/datasets/{name}/versions"));
    let answer = reqwest::Client::new().post(url).json(&body).send().await.unwrap();
    (answer.status().as_u16(), answer.json().await.unwrap())
}

/// Every file under `dir` with its bytes, by path.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(folder).unwrap().map(Result::unwrap) {
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            } else {
                found.insert(entry.path().display().to_string(), std::fs::read(entry.path()).unwrap());
            }
        }
    }
    found
}

/// Leaves out a black training image and a blue test image, and calls a green training image blue.
fn first_edits() -> Value {
    json!({
        "exclude": ["train/black/0000.png", "test/blue/0001.png"],
        "relabel": {"train/green/0002.png": "blue", "test/black/0001.png": "green"}
    })
}

#[tokio::test]
async fn a_version_is_listed_with_its_parent_counts_and_edits_and_the_files_are_untouched() {
    let server = server_with_colors().await;
    let original = server.data.path().join("colors");
    let before = files(&original);
    let (status, made) = post_version(&server, "colors", first_edits()).await;
    assert_eq!(status, 201, "{made}");
    let made: DatasetInfo = serde_json::from_value(made).unwrap();
    assert_eq!(made.name, "colors@v1");
    assert_eq!(made.parent.as_deref(), Some("colors"));
    assert_eq!((made.train_count, made.test_count), (17, 5));
    assert_eq!((made.excluded, made.relabelled), (2, 2));
    assert_eq!(made.classes, ["black", "blue", "green"]);

    let listed: Vec<DatasetInfo> = reqwest::get(server.url("/api/datasets")).await.unwrap().json().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["colors", "colors@v1"]);
    assert_eq!(listed[1], made);
    assert_eq!((listed[0].parent.as_deref(), listed[0].excluded, listed[0].train_count), (None, 0, 18));

    assert_eq!(files(&original), before, "not one file of the dataset was added, changed or removed");
    let manifest = server.data.path().join(".versions/colors/v1.json");
    assert!(manifest.is_file(), "the version is a manifest in the hidden .versions folder");

    // The same edits saved again (exclusions in another order, one twice) make no second, identical version.
    let mut again = first_edits();
    again["exclude"] = json!(["test/blue/0001.png", "train/black/0000.png", "test/blue/0001.png"]);
    let (status, answer) = post_version(&server, "colors", again).await;
    assert_eq!(status, 409, "{answer}");
    let error = answer["error"].as_str().unwrap_or_default();
    assert!(error.contains("colors@v1 already is colors with exactly these edits"), "{error}");
    assert!(!server.data.path().join(".versions/colors/v2.json").exists());
    // Different edits still make a new version.
    let (status, made) = post_version(&server, "colors", json!({"exclude": ["train/black/0001.png"]})).await;
    assert_eq!((status, made["name"].as_str()), (201, Some("colors@v2")), "{made}");
}

#[tokio::test]
async fn a_run_on_a_version_trains_on_its_images_with_the_relabels_applied() {
    let server = server_with_colors().await;
    assert_eq!(post_version(&server, "colors", first_edits()).await.0, 201);
    // The decoded training split: 5 black, 6 + 1 blue, 5 green.
    let source = backend::data::inspect(server.data.path(), "colors@v1").unwrap();
    let data = backend::data::load(&source, 16, 0.2, 0).unwrap();
    let train_labels = Vec::<i64>::try_from(&data.train.labels).unwrap();
    let per_class = |labels: &[i64]| (0..3).map(|c| labels.iter().filter(|&&l| l == c).count()).collect::<Vec<_>>();
    assert_eq!(per_class(&train_labels), [5, 7, 5]);
    assert_eq!(data.train.images.size(), [17, 3, 16, 16]);

    // Batches of 6, 6 and 5: a last batch of one image would leave batch norm without a variance.
    let id = server.create_run(json!({"dataset": "colors@v1", "epochs": 1, "batch_size": 6})).await;
    let run = server.wait_until_finished(id).await;
    assert_eq!(run.status, shared::RunStatus::Completed, "{:?}", run.error);
    assert_eq!(run.epochs.len(), 1, "{run:?}");
    let rows: Vec<u32> = run.epochs[0].confusion.iter().map(|row| row.iter().sum()).collect();
    assert_eq!(rows, [1, 1, 3], "test images per true class: black lost one to green, blue one left out");

    let url = server.url(&format!("/api/runs/{id}/test-images?limit=50"));
    let images: Vec<TestImage> = reqwest::get(url).await.unwrap().json().await.unwrap();
    assert_eq!(images.len(), 5);
    let path_of = |image: &TestImage| image.path.clone().expect("each test image names its path");
    let relabelled = images.iter().find(|i| path_of(i) == "test/black/0001.png").expect("the relabelled image");
    assert_eq!(relabelled.actual, 2, "evaluated as green");
    assert!(!images.iter().any(|i| path_of(i) == "test/blue/0001.png"), "the left-out image is not evaluated");
}

#[tokio::test]
async fn a_version_has_its_own_health_check() {
    let server = server_with_colors().await;
    let health = |name: &str| {
        let url = server.url(&format!("/api/datasets/{name}/health"));
        async move { reqwest::get(url).await.unwrap().json::<DatasetHealth>().await.unwrap() }
    };
    let counts = |health: &DatasetHealth| health.classes.iter().map(|c| (c.train, c.test)).collect::<Vec<_>>();
    assert_eq!(counts(&health("colors").await), [(6, 2), (6, 2), (6, 2)]);
    assert_eq!(post_version(&server, "colors", first_edits()).await.0, 201);
    assert_eq!(counts(&health("colors@v1").await), [(5, 1), (7, 1), (5, 3)]);
    assert_eq!(counts(&health("colors").await), [(6, 2), (6, 2), (6, 2)], "the original's check is its own");
}

#[tokio::test]
async fn a_version_of_a_version_folds_both_sets_of_edits() {
    let server = server_with_colors().await;
    assert_eq!(post_version(&server, "colors", first_edits()).await.0, 201);
    let second = json!({"exclude": ["train/blue/0003.png"], "relabel": {"train/green/0002.png": "black"}});
    let (status, made) = post_version(&server, "colors@v1", second).await;
    assert_eq!(status, 201, "{made}");
    let made: DatasetInfo = serde_json::from_value(made).unwrap();
    assert_eq!((made.name.as_str(), made.parent.as_deref()), ("colors@v2", Some("colors@v1")));
    assert_eq!((made.excluded, made.relabelled, made.train_count, made.test_count), (1, 1, 16, 5));
    let source = backend::data::inspect(server.data.path(), "colors@v2").unwrap();
    let labels = Vec::<i64>::try_from(&backend::data::load(&source, 16, 0.2, 0).unwrap().train.labels).unwrap();
    let per_class: Vec<usize> = (0..3).map(|c| labels.iter().filter(|&&l| l == c).count()).collect();
    assert_eq!(per_class, [6, 5, 5], "green 0002 is black now, blue 0003 is gone");

    let (status, body) = post_version(&server, "colors@v1", json!({"exclude": ["train/black/0000.png"]})).await;
    assert_eq!(status, 422, "an image its parent left out is not one of its images: {body}");
    let listed: Vec<DatasetInfo> = reqwest::get(server.url("/api/datasets")).await.unwrap().json().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["colors", "colors@v1", "colors@v2"]);
}

#[tokio::test]
async fn every_edit_that_does_not_fit_is_a_422_that_says_why() {
    let server = server_with_colors().await;
    let every_black_training_image: Vec<String> = (0..6).map(|i| format!("train/black/{i:04}.png")).collect();
    let cases = [
        (json!({"exclude": ["train/black/9999.png"]}), "\"train/black/9999.png\" is not an image of dataset colors"),
        (json!({"relabel": {"train/black/0000.png": "purple"}}), "\"purple\" is not a class of dataset colors"),
        (json!({"relabel": {"train/black/0000.png": "black"}}), "is already labelled black"),
        (
            json!({"exclude": ["train/black/0000.png"], "relabel": {"train/black/0000.png": "blue"}}),
            "both excluded and relabelled",
        ),
        (json!({}), "the edits are empty"),
        (json!({"exclude": [], "relabel": {}}), "the edits are empty"),
        (json!({"exclude": every_black_training_image}), "leave class black with 0 training images"),
    ];
    for (body, words) in cases {
        let (status, answer) = post_version(&server, "colors", body.clone()).await;
        assert_eq!(status, 422, "{body}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(words), "{body}: {error}");
    }
    let (status, answer) = post_version(&server, "colors", json!({"exclude": "train/black/0000.png"})).await;
    assert_eq!(status, 400, "not the body's shape: {answer}");
    assert!(!server.data.path().join(".versions/colors/v1.json").exists(), "nothing refused was saved");
}

#[tokio::test]
async fn an_unknown_dataset_or_version_is_a_404() {
    let server = server_with_colors().await;
    for name in ["nothing-here", "colors@v7", "..colors", "%2E%2E%2Fcolors"] {
        let (status, answer) = post_version(&server, name, json!({"exclude": ["train/black/0000.png"]})).await;
        assert_eq!(status, 404, "{name}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains("does not exist"), "{name}: {answer}");
    }
}

#[tokio::test]
async fn paths_that_climb_out_of_the_dataset_are_refused() {
    let server = server_with_colors().await;
    std::fs::write(server.data.path().join("secret.png"), common::png_bytes([1, 2, 3], 16, 0)).unwrap();
    for path in ["../secret.png", "/etc/passwd", "train/../train/black/0000.png", "train/black/../../../secret.png"] {
        let (status, answer) = post_version(&server, "colors", json!({"exclude": [path]})).await;
        assert_eq!(status, 422, "{path}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains("is not an image of dataset colors"), "{path}: {answer}");
        let relabel = json!({"relabel": {path: "blue"}});
        assert_eq!(post_version(&server, "colors", relabel).await.0, 422, "{path}");
    }
}

#[tokio::test]
async fn a_cifar_version_names_records_by_file_and_index() {
    let server = TestServer::start().await;
    let root = server.data.path().join("tiny").join(backend::data::CIFAR_BIN_FOLDER);
    // Two records per training file, four test records; each record's pixels carry its index.
    backend::data::write_cifar_binary(&root, &["a", "b"], 2, 4, |i| ((i % 2) as u8, vec![i as u8; 3072])).unwrap();
    let edits = json!({"exclude": ["data_batch_1.bin#0", "test_batch.bin#1"], "relabel": {"test_batch.bin#2": "b"}});
    let (status, made) = post_version(&server, "tiny", edits).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!((made["train_count"].as_u64(), made["test_count"].as_u64()), (Some(9), Some(3)));
    let source = backend::data::inspect(server.data.path(), "tiny@v1").unwrap();
    let data = backend::data::load(&source, 32, 0.2, 0).unwrap();
    assert_eq!(Vec::<i64>::try_from(&data.test.labels).unwrap(), [0, 1, 1], "records 0, 2 (now b) and 3");
    assert_eq!(data.train.images.int64_value(&[0, 0, 0, 0]), 1, "record 0 of the first file is left out");
    let (png, _) = backend::data::test_image(&source, 0.2, 0, 1).unwrap().unwrap();
    let pixel = image::load_from_memory(&png).unwrap().to_rgb8().get_pixel(0, 0).0;
    assert_eq!(pixel, [12; 3], "test image 1 of the version is test record 2, the 13th record written");
}

#[test]
fn the_engine_trains_a_version_on_its_own_image_counts() {
    use backend::engine::training::{train, RunControl, TrainOutcome, TrainingEvent};
    let dir = tempfile::tempdir().unwrap();
    write_color_dataset(dir.path(), "colors", 3, 6, 2, 16);
    let edits: shared::DatasetEdits = serde_json::from_value(first_edits()).unwrap();
    backend::data::versions::create(dir.path(), "colors", &edits, 0).unwrap();
    let paths = common::offline_training_paths(dir.path(), dir.path().join("run"));
    let config = shared::TrainConfig { epochs: 1, batch_size: 6, ..shared::TrainConfig::for_dataset("colors@v1") };
    let (mut counts, mut metrics) = (None, None);
    let outcome = train(&config, &paths, tch::Device::Cpu, &RunControl::default(), false, &mut |event| match event {
        TrainingEvent::Started { train_count, test_count, .. } => counts = Some((train_count, test_count)),
        TrainingEvent::EpochCompleted(epoch) => metrics = Some(epoch),
        _ => {}
    })
    .unwrap();
    assert_eq!(outcome, TrainOutcome::Completed);
    assert_eq!(counts, Some((17, 5)), "trained on 17 images, tested on 5");
    let metrics = metrics.expect("one epoch");
    assert!(metrics.test_loss.is_finite(), "{metrics:?}");
    let rows: Vec<u32> = metrics.confusion.iter().map(|row| row.iter().sum()).collect();
    assert_eq!(rows, [1, 1, 3], "test images per class as the version labels them");
}

/// An image folder `shades` of two classes, red and teal, of `per_class` 16 px images each.
fn write_shades(data: &Path, per_class: u64) {
    for (class, color) in [("red", [200, 30, 30]), ("teal", [20, 160, 160])] {
        let dir = data.join("shades").join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            std::fs::write(dir.join(format!("{i:04}.png")), common::png_bytes(color, 16, i)).unwrap();
        }
    }
}

/// The test images' paths of finished run `id`, sorted (the run lists them by loss).
async fn test_image_paths(server: &TestServer, id: u64) -> Vec<String> {
    let url = server.url(&format!("/api/runs/{id}/test-images?limit=100"));
    let images: Vec<TestImage> = reqwest::get(url).await.unwrap().json().await.unwrap();
    let mut paths: Vec<String> = images.into_iter().map(|image| image.path.expect("each names its path")).collect();
    paths.sort();
    paths
}

#[tokio::test]
async fn excluding_a_training_image_of_an_image_folder_moves_no_other_image_between_splits() {
    let server = TestServer::start().await;
    // 13 images a class: a fifth of 13 rounds to 3 held out, of 12 to 2, so a split drawn again after the
    // exclusion would move an image.
    write_shades(server.data.path(), 13);
    let config = |dataset: &str| json!({"dataset": dataset, "epochs": 1, "batch_size": 5, "seed": 4});
    let parent = server.create_run(config("shades")).await;
    assert_eq!(server.wait_until_finished(parent).await.status, shared::RunStatus::Completed);
    let parent_test = test_image_paths(&server, parent).await;
    assert_eq!(parent_test.len(), 6, "{parent_test:?}");

    let train_image = (0..13).map(|i| format!("red/{i:04}.png")).find(|p| !parent_test.contains(p)).unwrap();
    let (status, made) = post_version(&server, "shades", json!({"exclude": [train_image]})).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!((made["train_count"].as_u64(), made["test_count"].as_u64()), (Some(19), Some(6)));
    let version = server.create_run(config("shades@v1")).await;
    assert_eq!(server.wait_until_finished(version).await.status, shared::RunStatus::Completed);
    assert_eq!(test_image_paths(&server, version).await, parent_test, "the same test images");
}

/// `POST /api/datasets/{name}/images` with `bytes` as `content_type`: the status and the answer's JSON.
async fn post_image(server: &TestServer, name: &str, bytes: Vec<u8>, content_type: &str) -> (u16, Value) {
    let url = server.url(&format!("/api/datasets/{name}/images"));
    let answer =
        reqwest::Client::new().post(url).header("content-type", content_type).body(bytes).send().await.unwrap();
    (answer.status().as_u16(), answer.json().await.unwrap())
}

#[tokio::test]
async fn an_added_image_trains_shows_and_counts_as_its_class_and_the_dataset_is_untouched() {
    use sha2::{Digest, Sha256};
    let server = server_with_colors().await;
    let original = server.data.path().join("colors");
    let before = files(&original);
    // A blue test image sent again to be added as a training image: the health check must see the leak.
    let bytes = std::fs::read(original.join("test/blue/0000.png")).unwrap();
    let (status, added) = post_image(&server, "colors", bytes.clone(), "image/png").await;
    assert_eq!(status, 201, "{added}");
    let path = added["path"].as_str().unwrap().to_string();
    assert_eq!(path, format!(".added/{}.png", hex::encode(Sha256::digest(&bytes))), "named by its bytes' hash");
    assert_eq!(post_image(&server, "colors", bytes, "image/png").await.1["path"], path.as_str(), "kept once");
    let kept = server.data.path().join(".versions/colors/added").join(path.trim_start_matches(".added/"));
    assert!(kept.is_file(), "kept beside the versions");

    let (status, made) = post_version(&server, "colors", json!({"add": {&path: "blue"}})).await;
    assert_eq!(status, 201, "{made}");
    let made: DatasetInfo = serde_json::from_value(made).unwrap();
    assert_eq!((made.name.as_str(), made.train_count, made.test_count, made.added_images), ("colors@v1", 19, 6, 1));
    assert_eq!(files(&original), before, "not one file of the dataset was added, changed or removed");

    let source = backend::data::inspect(server.data.path(), "colors@v1").unwrap();
    let data = backend::data::load(&source, 16, 0.2, 0).unwrap();
    let labels = Vec::<i64>::try_from(&data.train.labels).unwrap();
    assert_eq!((0..3).map(|c| labels.iter().filter(|&&l| l == c).count()).collect::<Vec<_>>(), [6, 7, 6]);

    let url = server.url("/api/datasets/colors@v1/health");
    let health: DatasetHealth = reqwest::get(url).await.unwrap().json().await.unwrap();
    assert_eq!(health.classes.iter().map(|c| (c.train, c.test)).collect::<Vec<_>>(), [(6, 2), (7, 2), (6, 2)]);
    let leak = health.duplicates.iter().find(|pair| pair.a == path || pair.b == path).expect("the copy is found");
    assert!(leak.across_splits, "a training copy of a test image is a leak: {leak:?}");

    let url = server.url(&format!("/api/datasets/colors@v1/image?path={path}"));
    let thumbnail = reqwest::get(url).await.unwrap();
    assert_eq!(thumbnail.status(), 200, "the added image has a thumbnail in the version");
    image::load_from_memory(&thumbnail.bytes().await.unwrap()).unwrap();

    let id = server.create_run(json!({"dataset": "colors@v1", "epochs": 1, "batch_size": 6})).await;
    let run = server.wait_until_finished(id).await;
    assert_eq!(run.status, shared::RunStatus::Completed, "{:?}", run.error);

    let (status, later) = post_version(&server, "colors@v1", json!({"exclude": [&path]})).await;
    assert_eq!((status, later["train_count"].as_u64()), (201, Some(18)), "a later version can leave it out: {later}");
}

#[tokio::test]
async fn images_that_cannot_be_added_are_refused_with_a_sentence() {
    let server = server_with_colors().await;
    let png = common::png_bytes([0, 0, 200], 16, 1);

    let (status, error) = post_image(&server, "colors", b"not an image at all".to_vec(), "image/png").await;
    assert_eq!(status, 422, "{error}");
    assert!(error["error"].as_str().unwrap().contains("not a PNG, JPEG"), "{error}");
    assert_eq!(post_image(&server, "nowhere", png.clone(), "image/png").await.0, 404);
    assert_eq!(post_image(&server, "colors", png.clone(), "text/plain").await.0, 415, "a form post cannot add");

    let (_, added) = post_image(&server, "colors", png, "image/png").await;
    let path = added["path"].as_str().unwrap();
    let never_sent = format!(".added/{}.png", "0".repeat(64));
    for (edits, why) in [
        (json!({"add": {&never_sent: "blue"}}), "is not an image sent to"),
        (json!({"add": {"train/blue/0000.png": "blue"}}), "is not an image sent to"),
        (json!({"add": {path: "purple"}}), "is not a class of dataset colors"),
    ] {
        let (status, error) = post_version(&server, "colors", edits.clone()).await;
        assert_eq!(status, 422, "{edits}: {error}");
        assert!(error["error"].as_str().unwrap().contains(why), "{edits}: {error}");
    }
    assert!(!server.data.path().join(".versions/colors/v1.json").exists(), "nothing refused was saved");
}

#[tokio::test]
async fn added_images_stop_at_their_quota_with_a_507_that_says_why_and_keep_nothing() {
    use backend::data::versions::{MAX_ADDED_BYTES, MAX_ADDED_IMAGES};
    let server = server_with_colors().await;
    let added = server.data.path().join(".versions/colors/added");
    std::fs::create_dir_all(&added).unwrap();
    let png = common::png_bytes([0, 0, 200], 16, 1);
    let kept = |dir: &Path| std::fs::read_dir(dir).unwrap().count();

    // Images added earlier, as one sparse file (no disk used) one byte short of room for this one.
    let earlier = std::fs::File::create(added.join(format!("{}.png", "a".repeat(64)))).unwrap();
    earlier.set_len(MAX_ADDED_BYTES - png.len() as u64 + 1).unwrap();
    let (status, error) = post_image(&server, "colors", png.clone(), "image/png").await;
    assert_eq!(status, 507, "{error}");
    let sentence = error["error"].as_str().unwrap();
    assert!(sentence.contains("would pass 1024 MiB") && sentence.contains("zip of class folders"), "{sentence}");
    assert_eq!(kept(&added), 1, "the refused image was not kept");

    earlier.set_len(MAX_ADDED_BYTES - png.len() as u64).unwrap();
    let (status, answer) = post_image(&server, "colors", png.clone(), "image/png").await;
    assert_eq!(status, 201, "an image that just fits is kept: {answer}");
    let (status, again) = post_image(&server, "colors", png.clone(), "image/png").await;
    assert_eq!((status, &again), (201, &answer), "an image already kept is answered even when full");

    // As many (empty) images as a dataset may keep: one more is refused whatever its size.
    std::fs::remove_dir_all(&added).unwrap();
    std::fs::create_dir_all(&added).unwrap();
    for i in 0..MAX_ADDED_IMAGES {
        std::fs::File::create(added.join(format!("{i:064x}.png"))).unwrap();
    }
    let (status, error) = post_image(&server, "colors", png, "image/png").await;
    assert_eq!(status, 507, "{error}");
    assert!(error["error"].as_str().unwrap().contains("already keeps 10000 added images"), "{error}");
    assert_eq!(kept(&added), MAX_ADDED_IMAGES, "the refused image was not kept");
}

#[tokio::test]
async fn an_image_added_to_an_image_folder_trains_and_moves_no_image_between_splits() {
    let server = TestServer::start().await;
    write_shades(server.data.path(), 10);
    let (_, added) = post_image(&server, "shades", common::png_bytes([20, 160, 160], 16, 99), "image/png").await;
    let (status, made) =
        post_version(&server, "shades", json!({"add": {added["path"].as_str().unwrap(): "teal"}})).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!((made["train_count"].as_u64(), made["test_count"].as_u64()), (Some(17), Some(4)), "{made}");
    let split = |name: &str| {
        let source = backend::data::inspect(server.data.path(), name).unwrap();
        backend::data::load(&source, 16, 0.2, 0).unwrap()
    };
    let (parent, version) = (split("shades"), split("shades@v1"));
    assert_eq!(version.test_paths, parent.test_paths, "the added image is a training image and moves no other");
    assert_eq!(version.train.images.size()[0], parent.train.images.size()[0] + 1);
}

#[tokio::test]
async fn an_image_added_to_a_cifar_dataset_trains_at_32_pixels_after_its_records() {
    let server = TestServer::start().await;
    let root = server.data.path().join("tiny").join(backend::data::CIFAR_BIN_FOLDER);
    // Two records per training file, four test records; each record's pixels carry its index.
    backend::data::write_cifar_binary(&root, &["a", "b"], 2, 4, |i| ((i % 2) as u8, vec![i as u8; 3072])).unwrap();
    let photo = image::RgbImage::from_pixel(64, 48, image::Rgb([200, 100, 50]));
    let mut png = std::io::Cursor::new(Vec::new());
    photo.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let (status, added) = post_image(&server, "tiny", png.into_inner(), "image/png").await;
    assert_eq!(status, 201, "{added}");
    let path = added["path"].as_str().unwrap().to_string();
    let (status, made) =
        post_version(&server, "tiny", json!({"add": {&path: "a"}, "exclude": ["data_batch_2.bin#1"]})).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(
        (made["train_count"].as_u64(), made["test_count"].as_u64(), made["added_images"].as_u64()),
        (Some(10), Some(4), Some(1))
    );

    let source = backend::data::inspect(server.data.path(), "tiny@v1").unwrap();
    let data = backend::data::load(&source, 32, 0.2, 0).unwrap();
    assert_eq!(data.train.images.size(), [10, 3, 32, 32]);
    let last = data.train.images.get(9);
    let pixel: Vec<i64> = (0..3).map(|channel| last.int64_value(&[channel, 16, 16])).collect();
    assert_eq!(pixel, [200, 100, 50], "the added photo, squashed to 32 x 32, comes after the records");
    assert_eq!(Vec::<i64>::try_from(&data.train.labels).unwrap()[9], 0, "added as class a");

    let url = server.url("/api/datasets/tiny@v1/health");
    let health: DatasetHealth = reqwest::get(url).await.unwrap().json().await.unwrap();
    assert_eq!(health.classes.iter().map(|c| (c.train, c.test)).collect::<Vec<_>>(), [(6, 2), (4, 2)]);
    let url = server.url(&format!("/api/datasets/tiny@v1/image?path={path}"));
    assert_eq!(reqwest::get(url).await.unwrap().status(), 200, "its thumbnail");
}
