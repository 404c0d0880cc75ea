//! Clean and retrain in headless Chromium, at a desktop and a phone width: a person excludes one image
//! from the highest-loss test images, saves the edit as a new version of the dataset, and finds the
//! version chosen in New run; a person adds a classified upload to the dataset as a class from its
//! result and saves that as a version; and the compare view's per-class accuracy change between a run on the
//! dataset and a run on its version, read against the runs' own per-class accuracies from the API; and the
//! dataset's decoded cache, which the Decoded caches card lists once a run has trained and removes on
//! Remove. Needs the built page (`make ui`).

use crate::common;

use common::browser::*;
use fantoccini::Locator;
use serde_json::json;
use shared::DatasetInfo;
use std::time::Duration;

/// Presses "Save as new version" and returns the bar's answer: the saved line or the error.
async fn save_version(browser: &fantoccini::Client) -> String {
    click(browser, ".pending-edits button.save-version").await;
    eventually("the saved version", Duration::from_secs(30), || async {
        text_of(browser, ".pending-edits .saved, .pending-edits .error").await.filter(|t| !t.is_empty())
    })
    .await
}

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
    assert_eq!(pending_edits(&browser, 1).await, "Pending edits (1) to colors");
    assert_eq!(text_of(&browser, exclude).await.as_deref(), Some("Excluded"));
    look_at(&browser, &format!("versions-pending-{width}")).await;

    let answer = save_version(&browser).await;
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

/// Classifies an uploaded blue image in a `width` x `height` window, adds it to the dataset as black
/// from its result, and saves the version.
async fn add_a_classified_image_and_save_a_version(width: u32, height: u32) {
    let server = serve_colors(2, 8, 2, 16).await;
    let run = server.create_run(json!({"dataset": "colors", "epochs": 1, "batch_size": 4})).await;
    assert_eq!(server.wait_until_finished(run).await.status, shared::RunStatus::Completed);
    let OpenPage { browser, _driver, server } = open_browser_with(server, width, height, &[]).await;
    eventually("the model menu offering the run", Duration::from_secs(30), || async {
        browser.find(Locator::Css(&format!("select#classify-run option[value='{run}']"))).await.ok()
    })
    .await;

    let image = tempfile::Builder::new().suffix(".png").tempfile().unwrap();
    let bytes = common::png_bytes(common::COLOR_CLASSES[1].1, 48, 3);
    std::fs::write(image.path(), &bytes).unwrap();
    let input = browser.find(Locator::Css("input#classify-file")).await.unwrap();
    input.send_keys(&image.path().display().to_string()).await.unwrap();
    let menu = "#classify .classified select.add-as";
    let label = eventually("Add to colors as… under the answer", Duration::from_secs(30), || async {
        browser.find(Locator::Css(menu)).await.ok()?.attr("aria-label").await.ok()?
    })
    .await;
    assert_eq!(label, "Add this image to colors as");
    let element = browser.find(Locator::Css(menu)).await.unwrap();
    scroll_to(&browser, &element).await;
    element.select_by_value("black").await.unwrap();
    assert_eq!(pending_edits(&browser, 1).await, "Pending edits (1) to colors");
    look_at(&browser, &format!("versions-add-pending-{width}")).await;

    let answer = save_version(&browser).await;
    assert!(answer.starts_with("Saved colors@v1: 17 training and 4 test images (1 added from colors)"), "{answer}");
    let listed: Vec<DatasetInfo> = reqwest::get(server.url("/api/datasets")).await.unwrap().json().await.unwrap();
    let version = listed.iter().find(|d| d.name == "colors@v1").expect("the version is listed");
    assert_eq!((version.added_images, version.train_count), (1, 17));
    let source = backend::data::inspect(server.data.path(), "colors@v1").unwrap();
    let data = backend::data::load(&source, 16, 0.2, 0).unwrap();
    let labels = Vec::<i64>::try_from(&data.train.labels).unwrap();
    assert_eq!(labels.iter().filter(|&&label| label == 0).count(), 9, "the image was added as black: {labels:?}");
    look_at(&browser, &format!("versions-add-saved-{width}")).await;
    browser.close().await.unwrap();
}

#[tokio::test]
async fn a_classified_upload_added_as_a_class_is_saved_as_a_version_on_a_phone() {
    add_a_classified_image_and_save_a_version(390, 844).await;
}

#[tokio::test]
async fn an_image_excluded_from_the_highest_losses_is_saved_as_a_chosen_version_on_a_desktop() {
    exclude_one_image_and_save_a_version(1280, 900).await;
}

#[tokio::test]
async fn an_image_excluded_from_the_highest_losses_is_saved_as_a_chosen_version_on_a_phone() {
    exclude_one_image_and_save_a_version(390, 844).await;
}

/// `(class, before %, after %, change)` for each class, from the runs' last epochs as the API gives them.
fn expected_changes(before: &shared::Run, after: &shared::Run) -> Vec<(String, String, String, String)> {
    let last = |run: &shared::Run| run.epochs.last().expect("an epoch").per_class_accuracy.clone();
    let (first, second) = (last(before), last(after));
    assert_eq!(before.classes, after.classes, "the version keeps the classes");
    before
        .classes
        .iter()
        .enumerate()
        .map(|(i, class)| {
            let (a, b) = (first[i] * 100.0, second[i] * 100.0);
            (class.clone(), format!("{a:.1}"), format!("{b:.1}"), format!("{:+.1}", b - a))
        })
        .collect()
}

/// Trains a run on `colors` and one on a version without one test image, ticks both for comparison in a
/// `width` x `height` window, and reads the per-class change table.
async fn compare_runs_on_a_dataset_and_its_version(width: u32, height: u32) {
    let server = serve_colors(2, 8, 2, 16).await;
    let config = |dataset: &str| json!({"dataset": dataset, "epochs": 1, "batch_size": 4});
    let first = server.create_run(config("colors")).await;
    let before = server.wait_until_finished(first).await;
    assert_eq!(before.status, shared::RunStatus::Completed);
    let excluded = format!("test/{}/0000.png", before.classes[0]);
    let made = reqwest::Client::new()
        .post(server.url("/api/datasets/colors/versions"))
        .json(&json!({"exclude": [excluded]}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), reqwest::StatusCode::CREATED);
    let second = server.create_run(config("colors@v1")).await;
    let after = server.wait_until_finished(second).await;
    assert_eq!(after.status, shared::RunStatus::Completed);
    let expected = expected_changes(&before, &after);
    let OpenPage { browser, _driver, server: _server } = open_browser_with(server, width, height, &[]).await;

    eventually("both runs listed", Duration::from_secs(20), || async {
        browser.find(Locator::Css(&format!("#runs li[data-run-id='{second}'] input.compare"))).await.ok()
    })
    .await;
    click(&browser, &format!("#runs li[data-run-id='{first}'] input.compare")).await;
    click(&browser, &format!("#runs li[data-run-id='{second}'] input.compare")).await;
    let rows: Vec<(String, String, String, String)> =
        eventually("the per-class change table", Duration::from_secs(20), || async {
            let rows: Vec<Vec<String>> = evaluate(
                &browser,
                r#"return Array.from(document.querySelectorAll('#per-class-change tbody tr'),
                    row => Array.from(row.cells, cell => cell.textContent.trim()));"#,
                vec![],
            )
            .await;
            let rows: Vec<_> =
                rows.into_iter().map(|r| (r[0].clone(), r[1].clone(), r[2].clone(), r[3].clone())).collect();
            (!rows.is_empty()).then_some(rows)
        })
        .await;
    assert_eq!(rows, expected, "each class: before %, after % and the change in points, as the API has them");
    let title = text_of(&browser, ".per-class-change h3").await.unwrap_or_default();
    assert!(title.contains("(colors)") && title.contains("(colors@v1)"), "{title}");
    look_at(&browser, &format!("versions-per-class-change-{width}")).await;
    browser.close().await.unwrap();
}

#[tokio::test]
async fn the_per_class_change_between_runs_on_a_dataset_and_its_version_is_the_apis_on_a_desktop() {
    compare_runs_on_a_dataset_and_its_version(1280, 900).await;
}

#[tokio::test]
async fn the_per_class_change_between_runs_on_a_dataset_and_its_version_is_the_apis_on_a_phone() {
    compare_runs_on_a_dataset_and_its_version(390, 844).await;
}

/// The row of the decoded cache `id` in the Decoded caches card.
fn cache_row(id: &str) -> String {
    format!("#cache-list li.cache-item[data-cache-id='{id}']")
}

#[tokio::test]
async fn a_decoded_cache_is_listed_after_a_run_and_removed_from_the_page() {
    let page = open_page(2, 8, 2, 16).await;
    let (browser, server) = (&page.browser, &page.server);
    let empty = eventually("the empty caches line", Duration::from_secs(30), || async {
        text_of(browser, "#caches-empty").await.filter(|text| !text.is_empty())
    })
    .await;
    assert_eq!(empty, "No decoded caches yet: a run's first start decodes its dataset once and keeps it here.");

    let run = server.create_run(json!({"dataset": "colors", "epochs": 1, "batch_size": 4, "input_size": 40})).await;
    assert_eq!(server.wait_until_finished(run).await.status, shared::RunStatus::Completed);
    let listed: Vec<shared::DecodedCacheInfo> =
        reqwest::get(server.url("/api/caches")).await.unwrap().json().await.unwrap();
    assert_eq!(listed.len(), 1, "one cache after one run: {listed:?}");
    let cache = &listed[0];
    assert_eq!((cache.dataset.as_str(), cache.input_size, cache.images), ("colors", 40, 20));

    // The page lists it without a reload: the run's end asks for the caches again.
    let row = cache_row(&cache.id);
    let dataset = eventually("the cache's row", Duration::from_secs(30), || async {
        text_of(browser, &format!("{row} .cache-dataset")).await
    })
    .await;
    assert_eq!(dataset, "colors");
    assert_eq!(text_of(browser, &format!("{row} .cache-input-size")).await.as_deref(), Some("40 px"));
    assert_eq!(text_of(browser, &format!("{row} .cache-images")).await.as_deref(), Some("20 images"));
    let size = text_of(browser, &format!("{row} .cache-bytes")).await.unwrap();
    assert!(size.ends_with(" kB") || size.ends_with(" MB"), "a size on disk in human units: {size}");
    assert_eq!(text_of(browser, "#caches-total").await, Some(format!("1 cache · {size}")));
    assert!(browser.find(Locator::Css("#caches-empty")).await.is_err(), "no empty line beside a cache");
    scroll_to(browser, &browser.find(Locator::Css("#caches-card")).await.unwrap()).await;
    look_at(browser, "decoded-cache-listed").await;

    click(browser, &format!("{row} button.cache-remove")).await;
    eventually("the row to go and the empty line to come back", Duration::from_secs(30), || async {
        let gone = browser.find(Locator::Css(&row)).await.is_err();
        let empty = text_of(browser, "#caches-empty").await.is_some();
        (gone && empty).then_some(())
    })
    .await;
    assert_eq!(text_of(browser, "#caches-total").await.as_deref(), Some(""), "no total without caches");
    let listed: Vec<shared::DecodedCacheInfo> =
        reqwest::get(server.url("/api/caches")).await.unwrap().json().await.unwrap();
    assert!(listed.is_empty(), "the server removed it: {listed:?}");
}
