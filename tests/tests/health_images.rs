//! `GET /api/datasets/{name}/image?path=...&size=N` on a real server and real files: thumbnails of a
//! folder image, a CIFAR record and a version's image by the paths the health check names them, and
//! every path that is not one of the dataset's images refused with a sentence that shows no server path.

use crate::common;

use common::{write_color_dataset, TestServer};
use serde_json::{json, Value};

/// The answer to `GET /api/datasets/{name}/image` with `query`: its status, content type and body.
async fn get_image(server: &TestServer, name: &str, query: &[(&str, &str)]) -> (u16, String, Vec<u8>) {
    let url = server.url(&format!("/api/datasets/{name}/image"));
    let answer = reqwest::Client::new().get(url).query(query).send().await.unwrap();
    let status = answer.status().as_u16();
    let kind = answer.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, kind, answer.bytes().await.unwrap().to_vec())
}

/// The thumbnail at `path` of dataset `name`, decoded; fails the test unless it is a PNG.
async fn thumbnail(server: &TestServer, name: &str, path: &str, size: &str) -> image::RgbImage {
    let (status, kind, body) = get_image(server, name, &[("path", path), ("size", size)]).await;
    assert_eq!((status, kind.as_str()), (200, "image/png"), "{path}: {}", String::from_utf8_lossy(&body));
    image::load_from_memory_with_format(&body, image::ImageFormat::Png).unwrap().to_rgb8()
}

#[tokio::test]
async fn a_folder_image_is_shrunk_to_fit_the_size_asked_for_keeping_its_colour() {
    let server = TestServer::start().await;
    write_color_dataset(server.data.path(), "colors", 2, 2, 1, 64);
    let original = image::open(server.data.path().join("colors/train/blue/0001.png")).unwrap().to_rgb8();
    let small = thumbnail(&server, "colors", "train/blue/0001.png", "24").await;
    assert_eq!(small.dimensions(), (24, 24));
    let mean = |image: &image::RgbImage| {
        let sum = image.pixels().fold([0u64; 3], |s, p| [s[0] + p[0] as u64, s[1] + p[1] as u64, s[2] + p[2] as u64]);
        sum.map(|channel| channel / u64::from(image.width() * image.height()))
    };
    let (before, after) = (mean(&original), mean(&small));
    assert!((0..3).all(|c| before[c].abs_diff(after[c]) <= 3), "{before:?} against {after:?}");
    // Without a size, the default 96 px square: a 64 px image is not enlarged.
    let (status, _, body) = get_image(&server, "colors", &[("path", "test/black/0000.png")]).await;
    assert_eq!(status, 200);
    assert_eq!(image::load_from_memory(&body).unwrap().to_rgb8().dimensions(), (64, 64));
}

#[tokio::test]
async fn a_cifar_record_is_shown_by_its_file_and_index() {
    let server = TestServer::start().await;
    let root = server.data.path().join("tiny").join(backend::data::CIFAR_BIN_FOLDER);
    // Two records per training file, four test records; each record's pixels carry its index.
    backend::data::write_cifar_binary(&root, &["a", "b"], 2, 4, |i| ((i % 2) as u8, vec![i as u8; 3072])).unwrap();
    let record = thumbnail(&server, "tiny", "test_batch.bin#2", "96").await;
    assert_eq!(record.dimensions(), (32, 32), "a 32 px record is not enlarged");
    assert_eq!(record.get_pixel(5, 5).0, [12; 3], "test record 2 is the 13th record written");
    let second_file = thumbnail(&server, "tiny", "data_batch_2.bin#1", "16").await;
    assert_eq!((second_file.dimensions(), second_file.get_pixel(0, 0).0), ((16, 16), [3; 3]));
    for missing in ["test_batch.bin#4", "data_batch_9.bin#0", "test_batch.bin#x", "test_batch.bin", "batches.meta.txt"]
    {
        let (status, _, body) = get_image(&server, "tiny", &[("path", missing)]).await;
        assert_eq!(status, 404, "{missing}: {}", String::from_utf8_lossy(&body));
    }
}

#[tokio::test]
async fn a_version_shows_its_dataset_images_including_the_ones_it_leaves_out() {
    let server = TestServer::start().await;
    write_color_dataset(server.data.path(), "colors", 2, 3, 1, 16);
    let url = server.url("/api/datasets/colors/versions");
    let edits = json!({"exclude": ["train/black/0000.png"], "relabel": {"train/blue/0001.png": "black"}});
    let made = reqwest::Client::new().post(url).json(&edits).send().await.unwrap();
    assert_eq!(made.status(), 201);
    for path in ["train/black/0000.png", "train/blue/0001.png", "test/blue/0000.png"] {
        assert_eq!(thumbnail(&server, "colors@v1", path, "96").await.dimensions(), (16, 16), "{path}");
    }
    let (status, _, _) = get_image(&server, "colors@v9", &[("path", "train/black/0000.png")]).await;
    assert_eq!(status, 404, "a version that does not exist");
}

/// A server over `colors`, with a secret image outside the data folder linked in as a class image, a
/// note beside the images, a file that is not a picture under an image name, a hidden folder, and
/// images where the listing does not look (a folder inside a class, the split folder itself).
async fn server_with_hostile_files() -> (TestServer, tempfile::TempDir) {
    let server = TestServer::start().await;
    write_color_dataset(server.data.path(), "colors", 2, 2, 1, 16);
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.png");
    image::RgbImage::from_pixel(8, 8, image::Rgb([9, 9, 9])).save(&secret).unwrap();
    let colors = server.data.path().join("colors");
    std::os::unix::fs::symlink(&secret, colors.join("train/black/linked.png")).unwrap();
    std::fs::write(colors.join("train/black/notes.txt"), "not an image").unwrap();
    std::fs::write(colors.join("train/black/broken.png"), "not a picture either").unwrap();
    std::fs::create_dir_all(colors.join("train/.hidden")).unwrap();
    std::fs::copy(colors.join("train/black/0000.png"), colors.join("train/.hidden/0000.png")).unwrap();
    std::fs::create_dir_all(colors.join("train/black/deeper")).unwrap();
    std::fs::copy(colors.join("train/black/0000.png"), colors.join("train/black/deeper/0000.png")).unwrap();
    std::fs::copy(colors.join("train/black/0000.png"), colors.join("train/0000.png")).unwrap();
    (server, outside)
}

#[tokio::test]
async fn paths_that_are_not_the_dataset_images_are_refused_with_a_sentence_and_no_server_path() {
    let (server, outside) = server_with_hostile_files().await;
    let secret = outside.path().join("secret.png").display().to_string();
    let data = server.data.path().display().to_string();
    let colors_png = format!("{data}/colors/train/black/0000.png");
    let cases: [(&str, &str, u16, &str); 15] = [
        ("colors", "../colors/train/black/0000.png", 400, "'..'"),
        ("colors", "train/../train/black/0000.png", 400, "'..'"),
        ("colors", &colors_png, 400, "relative"),
        ("colors", &secret, 400, "relative"),
        ("colors", "train/black/linked.png", 404, "has no image"),
        ("colors", "train/black/notes.txt", 404, "has no image"),
        ("colors", "train/black/9999.png", 404, "has no image"),
        ("colors", "train/black/deeper/0000.png", 404, "has no image"),
        ("colors", "train/0000.png", 404, "has no image"),
        ("colors", "validation/black/0000.png", 404, "has no image"),
        ("colors", "train/.hidden/0000.png", 400, "hidden"),
        ("colors", "train/black/broken.png", 422, "image"),
        ("colors", "", 400, "1 to 1024 bytes"),
        ("..secret", "train/black/0000.png", 400, "plain name"),
        ("nothing-here", "train/black/0000.png", 404, "does not exist"),
    ];
    for (name, path, status, words) in cases {
        let (got, kind, body) = get_image(&server, name, &[("path", path)]).await;
        let body: Value = serde_json::from_slice(&body).unwrap_or_else(|_| panic!("{path}: not a JSON body"));
        let error = body["error"].as_str().unwrap_or_default();
        assert_eq!((got, kind.as_str()), (status, "application/json"), "{name} {path}: {error}");
        assert!(error.contains(words), "{name} {path}: {error:?} should say {words:?}");
        assert!(!error.contains(&data) && !error.contains(&secret), "{path}: {error:?} names a server path");
    }
}

#[tokio::test]
async fn a_missing_path_or_a_size_out_of_range_is_a_400_sentence() {
    let server = TestServer::start().await;
    write_color_dataset(server.data.path(), "colors", 2, 2, 1, 16);
    let path = ("path", "train/black/0000.png");
    for (query, words) in [
        (vec![("size", "96")], "query parameter path"),
        (vec![path, ("size", "4")], "16 to 512 pixels"),
        (vec![path, ("size", "100000")], "16 to 512 pixels"),
        (vec![path, ("size", "big")], "size"),
    ] {
        let (status, _, body) = get_image(&server, "colors", &query).await;
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, 400, "{query:?}: {body}");
        assert!(body["error"].as_str().unwrap().contains(words), "{query:?}: {body}");
    }
}
