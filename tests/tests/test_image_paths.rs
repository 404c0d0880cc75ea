//! Test images of a folder dataset keep their own paths (issue 13.5): when the run skipped an
//! unreadable test file, the images after it are still named, and served, by their own files. Against a
//! real server, a real run and real files.

use crate::common;

use common::{write_color_dataset, TestServer, COLOR_CLASSES};
use serde_json::json;
use shared::{RunStatus, TestImage};

#[tokio::test]
async fn test_images_after_an_unreadable_one_are_named_and_served_by_their_own_files() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 3, 8, 3, 32);
    // Sorts before every readable test image of its class, so by position it would take the first one's
    // place, and each later image its predecessor's.
    for (class, _) in &COLOR_CLASSES[..3] {
        std::fs::write(data.path().join("colors/test").join(class).join("0-unreadable.png"), b"not a picture").unwrap();
    }
    let dataset = data.path().join("colors");
    let server = TestServer::start_with(data, |_| {}, None).await;
    let id = server.create_run(json!({"dataset": "colors", "batch_size": 8, "input_size": 32, "epochs": 1})).await;
    let run = server.wait_until_finished(id).await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);

    let url = server.url(&format!("/api/runs/{id}/test-images?limit=100"));
    let images: Vec<TestImage> = reqwest::get(url).await.unwrap().json().await.unwrap();
    assert_eq!(images.len(), 9, "the three unreadable files are left out of the test split");
    for image in &images {
        let path = image.path.as_deref().unwrap_or_else(|| panic!("test image {} has no path", image.index));
        assert!(!path.contains("unreadable"), "test image {} is named after the skipped file {path}", image.index);
        let class = &run.classes[image.actual];
        assert!(path.starts_with(&format!("test/{class}/")), "test image {} of class {class} is {path}", image.index);
        let served = reqwest::get(server.url(&format!("/api/runs/{id}/test-images/{}/image", image.index)))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(
            &served[..],
            &std::fs::read(dataset.join(path)).unwrap()[..],
            "test image {} serves {path}",
            image.index
        );
    }
}
