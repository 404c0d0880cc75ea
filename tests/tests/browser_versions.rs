//! Clean and retrain in headless Chromium, at a desktop and a phone width: a person excludes one image
//! from the highest-loss test images, saves the edit as a new version of the dataset, and finds the
//! version chosen in New run. Needs the built page (`make ui`).

mod common;

use common::browser::*;
use fantoccini::Locator;
use serde_json::json;
use shared::DatasetInfo;
use std::time::Duration;

/// Trains one epoch on the colour dataset, then marks, saves and checks the version in a `width` x
/// `height` window.
async fn exclude_one_image_and_save_a_version(width: u32, height: u32) {
    let server = serve_colors(2, 8, 2, 16).await;
    let run = server.create_run(json!({"dataset": "colors", "epochs": 1, "batch_size": 4})).await;
    assert_eq!(server.wait_until_finished(run).await.status, shared::RunStatus::Completed);
    let OpenPage { browser, _driver, server } = open_browser_with(server, width, height, &[]).await;

    let exclude = "div#high-loss .mark-exclude";
    eventually("Exclude beside the highest-loss test images", Duration::from_secs(60), || async {
        browser.find(Locator::Css(exclude)).await.ok()
    })
    .await;
    let image = browser.find(Locator::Css("div#high-loss .mark-image")).await.unwrap();
    let marked = image.attr("aria-label").await.unwrap().unwrap_or_default();
    let path = marked.strip_prefix("Edit ").expect("the group names its image").to_string();
    assert!(path.starts_with("test/"), "a test image's path: {path}");
    click(&browser, exclude).await;
    let pending = eventually("the pending-edits bar", Duration::from_secs(10), || async {
        text_of(&browser, ".pending-edits .pending-count").await.filter(|t| t.contains("(1)"))
    })
    .await;
    assert_eq!(pending, "Pending edits (1) to colors");
    assert_eq!(text_of(&browser, exclude).await.as_deref(), Some("Excluded"));
    look_at(&browser, &format!("versions-pending-{width}")).await;

    click(&browser, ".pending-edits button.save-version").await;
    let answer = eventually("the saved version", Duration::from_secs(30), || async {
        text_of(&browser, ".pending-edits .saved, .pending-edits .error").await.filter(|t| !t.is_empty())
    })
    .await;
    assert!(answer.starts_with("Saved colors@v1: 16 training and 3 test images (1 excluded"), "{answer}");
    eventually("the new version chosen in New run", Duration::from_secs(10), || async {
        (value_of(&browser, "select#dataset").await == "colors@v1").then_some(())
    })
    .await;
    assert!(browser.find(Locator::Css(".pending-edits .pending-count")).await.is_err(), "nothing is pending");
    let listed: Vec<DatasetInfo> = reqwest::get(server.url("/api/datasets")).await.unwrap().json().await.unwrap();
    let version = listed.iter().find(|d| d.name == "colors@v1").expect("the version is listed");
    assert_eq!((version.parent.as_deref(), version.excluded, version.test_count), (Some("colors"), 1, 3));
    look_at(&browser, &format!("versions-saved-{width}")).await;
    browser.close().await.unwrap();
}

#[tokio::test]
async fn an_image_excluded_from_the_highest_losses_is_saved_as_a_chosen_version_on_a_desktop() {
    exclude_one_image_and_save_a_version(1280, 900).await;
}

#[tokio::test]
async fn an_image_excluded_from_the_highest_losses_is_saved_as_a_chosen_version_on_a_phone() {
    exclude_one_image_and_save_a_version(390, 844).await;
}
