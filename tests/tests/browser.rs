//! The page in a real headless Chromium, driven through chromedriver (fantoccini), against a real server
//! with real training: what a person does, checked by what the page shows. Screenshots are saved under
//! `target/screenshots/` to be looked at.

use crate::common;

use backend::model::ResNet18;
use common::browser::*;
use common::{png_bytes, write_color_dataset, zip_dataset, TestServer, COLOR_CLASSES};
use fantoccini::{Client, Locator};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

#[tokio::test]
async fn a_person_trains_a_model_from_the_page_and_classifies_an_upload() {
    let OpenPage { browser, _driver, server } = open_page(6, 8, 4, 32).await;
    eventually("the page to connect", Duration::from_secs(30), || async {
        text_of(&browser, "#connection").await.filter(|t| t == "Connected")
    })
    .await;
    look_at(&browser, "browser-initial").await;

    // The dataset list comes from the server.
    let dataset = browser.find(Locator::Css("select#dataset option[value='colors']")).await.unwrap();
    assert!(dataset.text().await.unwrap().contains("colors"));
    browser.find(Locator::Css("select#dataset")).await.unwrap().select_by_value("colors").await.unwrap();
    assert_eq!(start_run(&browser, "1").await, 1);

    // The epoch row appears live, with the test accuracy as a percentage.
    let row = eventually("the epoch row", Duration::from_secs(180), || async {
        browser.find(Locator::Css("table#epochs tr.epoch-row")).await.ok()
    })
    .await;
    let run = server.wait_until_finished(1).await;
    assert_eq!(run.status, shared::RunStatus::Completed);
    let mut cells = Vec::new();
    for cell in row.find_all(Locator::Css("td")).await.unwrap() {
        cells.push(cell.text().await.unwrap());
    }
    assert_eq!(cells.len(), 6, "epoch, train loss, train acc %, test loss, test acc %, seconds: {cells:?}");
    assert_eq!(cells[0], "1");
    let shown_accuracy: f64 = cells[4].trim_end_matches(['%', ' ']).parse().unwrap();
    let measured = 100.0 * run.epochs[0].test_accuracy;
    assert!((shown_accuracy - measured).abs() <= 0.051, "page shows {shown_accuracy} %, run measured {measured} %");
    completed_on_page(&browser, 1).await;
    look_at(&browser, "browser-trained").await;

    // Classify an upload: the picture is shown with five predictions.
    let image = tempfile::Builder::new().suffix(".png").tempfile().unwrap();
    std::fs::write(image.path(), png_bytes(COLOR_CLASSES[2].1, 64, 3)).unwrap();
    eventually("a model to choose", Duration::from_secs(10), || async {
        browser.find(Locator::Css("select#classify-run option[value='1']")).await.ok()
    })
    .await;
    let input = browser.find(Locator::Css("input#classify-file")).await.unwrap();
    input.send_keys(&image.path().display().to_string()).await.unwrap();
    let predictions = eventually("five predictions", Duration::from_secs(30), || async {
        let items = browser.find_all(Locator::Css("ul#predictions li.prediction")).await.ok()?;
        (items.len() == 5).then_some(items)
    })
    .await;
    let classes: Vec<&str> = COLOR_CLASSES.iter().map(|(name, _)| *name).collect();
    for item in &predictions {
        let label = item.find(Locator::Css(".label")).await.unwrap().text().await.unwrap();
        assert!(classes.contains(&label.as_str()), "{label} is one of the classes");
        let probability = item.find(Locator::Css(".probability")).await.unwrap().text().await.unwrap();
        assert!(probability.ends_with('%'), "{probability}");
    }
    let preview = browser.find(Locator::Css("img#classify-preview")).await.unwrap();
    let source = preview.attr("src").await.unwrap().unwrap_or_default();
    assert!(source.starts_with("blob:"), "the chosen image is shown: {source}");
    look_at(&browser, "browser-classified").await;

    // A narrow phone-sized window still shows the controls.
    browser.set_window_size(390, 844).await.unwrap();
    assert!(browser.find(Locator::Css("button#start")).await.unwrap().is_displayed().await.unwrap());
    look_at(&browser, "browser-narrow").await;
    browser.close().await.unwrap();
}

#[tokio::test]
async fn the_form_refuses_a_bad_value_as_it_is_typed() {
    let OpenPage { browser, _driver, server } = open_page(2, 2, 1, 16).await;
    set_value(&browser, "input#lr", "-1").await;
    let message = eventually("the learning rate error", Duration::from_secs(10), || async {
        text_of(&browser, ".field-error").await.filter(|t| t.contains("Learning rate must be"))
    })
    .await;
    assert_eq!(message, "Learning rate must be greater than 0 and at most 10, got -1");
    let start = browser.find(Locator::Css("button#start")).await.unwrap();
    assert!(!start.is_enabled().await.unwrap(), "Start is disabled while the form is invalid");
    look_at(&browser, "browser-invalid-form").await;
    // One bad value is one error, under its own field: Epochs 0 does not blame the warm-up left at 0.
    set_value(&browser, "input#lr", "0.001").await;
    set_value(&browser, "input#epochs", "0").await;
    let errors = eventually("the epochs error alone", Duration::from_secs(10), || async {
        let shown = browser.find_all(Locator::Css(".field-error")).await.ok()?;
        let mut texts = Vec::new();
        for error in shown {
            texts.extend(error.text().await.ok().filter(|text| !text.is_empty()));
        }
        texts.iter().any(|text| text.starts_with("Epochs must be")).then_some(texts)
    })
    .await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    browser.close().await.unwrap();
    let runs: Vec<shared::Run> = reqwest::get(server.url("/api/runs")).await.unwrap().json().await.unwrap();
    assert!(runs.is_empty());
}

#[tokio::test]
async fn configure_start_stop_resume_inspect_and_classify_several_images() {
    the_whole_flow(1280, 900).await;
}

#[tokio::test]
async fn on_a_phone_configure_start_stop_resume_inspect_and_classify_several_images() {
    the_whole_flow(390, 844).await;
}

/// Configure, start, stop, resume, inspect and classify several images in a `width` x `height` window.
async fn the_whole_flow(width: u32, height: u32) {
    let OpenPage { browser, _driver, server } =
        open_browser_with(serve_colors(4, 24, 4, 32).await, width, height, &[]).await;
    browser.find(Locator::Css("select#dataset")).await.unwrap().select_by_value("colors").await.unwrap();

    // A preset fills the form; advanced options are there to adjust.
    click(&browser, "button.preset[data-preset='full-fine-tune']").await;
    let schedule = browser.find(Locator::Css("select#schedule")).await.unwrap().prop("value").await.unwrap();
    assert_eq!(schedule.as_deref(), Some("cosine"), "the preset chose a cosine schedule");
    click(&browser, "details#advanced summary").await;
    set_value(&browser, "input#epochs", "6").await;
    set_value(&browser, "input#batch-size", "4").await;
    set_value(&browser, "input#label-smoothing", "0.1").await;
    click(&browser, "button#start").await;

    // Live progress, then stop after the first epoch.
    eventually("the first epoch row", Duration::from_secs(120), || async {
        browser.find(Locator::Css("table#epochs tr.epoch-row")).await.ok()
    })
    .await;
    let progress = text_of(&browser, "#progress").await.unwrap_or_default();
    assert!(progress.contains("epoch"), "{progress}");
    look_at(&browser, &format!("flow-training-{width}")).await;
    click(&browser, "button#stop").await;
    eventually("the stopped badge", Duration::from_secs(30), || async {
        browser.find(Locator::Css("#runs .status-stopped")).await.ok()
    })
    .await;
    let stopped = server.studio.run(1).unwrap();
    assert_eq!(stopped.status, shared::RunStatus::Stopped);
    assert_eq!(stopped.config.label_smoothing, 0.1, "the advanced option reached the server");
    assert_eq!(stopped.config.schedule, shared::Schedule::Cosine);

    // Resume from the page: the run continues to its last epoch.
    click(&browser, "button#resume").await;
    // The click travels over the WebSocket: the run is still stopped until the server has taken it.
    server.wait_for_run(1, Duration::from_secs(30), |run| run.status != shared::RunStatus::Stopped).await;
    let finished = server.wait_until_finished(1).await;
    assert_eq!(finished.status, shared::RunStatus::Completed, "{finished:?}");
    assert_eq!(finished.epochs.len(), 6);
    eventually("six epoch rows", Duration::from_secs(10), || async {
        let rows = browser.find_all(Locator::Css("table#epochs tr.epoch-row")).await.ok()?;
        (rows.len() == 6).then_some(())
    })
    .await;

    // Run detail: per-class accuracy, and a confusion cell opens its test images.
    let per_class = browser.find_all(Locator::Css("table#per-class tbody tr")).await.unwrap();
    assert_eq!(per_class.len(), 4);
    let cell = eventually("a non-empty confusion cell", Duration::from_secs(10), || async {
        browser.find(Locator::Css("table#confusion td.cell button.cell-button")).await.ok()
    })
    .await;
    scroll_to(&browser, &cell).await;
    cell.click().await.unwrap();
    let images = eventually("the cell's test images", Duration::from_secs(10), || async {
        let images = browser.find_all(Locator::Css("div#cell-images img.test-image")).await.ok()?;
        (!images.is_empty()).then_some(images)
    })
    .await;
    let source = images[0].attr("src").await.unwrap().unwrap_or_default();
    assert!(source.contains("/test-images/"), "{source}");
    look_at(&browser, &format!("flow-run-detail-{width}")).await;

    // Several images classified in one go, each with its own answer.
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (i, (_, color)) in COLOR_CLASSES[..3].iter().enumerate() {
        let path = dir.path().join(format!("image{i}.png"));
        std::fs::write(&path, png_bytes(*color, 48, i as u64)).unwrap();
        paths.push(path.display().to_string());
    }
    let input = browser.find(Locator::Css("input#classify-file")).await.unwrap();
    input.send_keys(&paths.join("\n")).await.unwrap();
    let cards = eventually("three classified images", Duration::from_secs(30), || async {
        let cards = browser.find_all(Locator::Css("div.classified")).await.ok()?;
        let predictions = browser.find_all(Locator::Css("div.classified li.prediction")).await.ok()?;
        (cards.len() == 3 && predictions.len() == 12).then_some(cards)
    })
    .await;
    assert_eq!(cards.len(), 3);
    look_at(&browser, &format!("flow-classify-several-{width}")).await;
    browser.close().await.unwrap();
}

/// The comparison accuracy chart as drawn, read in one go (it is redrawn whenever a run changes): every line's
/// `data-run-id` and number of points, and the legend's entries.
async fn compare_chart(browser: &Client) -> (Vec<(String, usize)>, Vec<String>) {
    let drawn = browser
        .execute(
            r#"return [
                Array.from(document.querySelectorAll('#compare-accuracy polyline.compare-line'), line =>
                    [line.dataset.runId, line.getAttribute('points').trim().split(/\s+/).filter(Boolean).length]),
                Array.from(document.querySelectorAll('.compare-legend li.compare-entry'), entry => entry.textContent.trim()),
            ];"#,
            Vec::new(),
        )
        .await
        .unwrap();
    serde_json::from_value(drawn).unwrap()
}

#[tokio::test]
async fn ticked_runs_are_compared_one_line_and_legend_entry_each() {
    let OpenPage { browser, _driver, server } = open_page(2, 4, 2, 32).await;
    assert_eq!(start_run(&browser, "2").await, 1);
    // Started while the first trains: it waits its turn.
    assert_eq!(start_run(&browser, "1").await, 2);
    for id in [1, 2] {
        assert_eq!(server.wait_until_finished(id).await.status, shared::RunStatus::Completed);
        completed_on_page(&browser, id).await;
    }

    click(&browser, "#runs li[data-run-id='1'] input.compare").await;
    assert!(browser.find(Locator::Css("#compare-accuracy")).await.is_err(), "one ticked run is nothing to compare");
    click(&browser, "#runs li[data-run-id='2'] input.compare").await;
    let (lines, legend) = eventually("two compared lines", Duration::from_secs(10), || async {
        let (lines, legend) = compare_chart(&browser).await;
        (lines.len() == 2).then_some((lines, legend))
    })
    .await;
    // One point per finished epoch: run 1 trained two, run 2 one.
    assert_eq!(lines, [("1".to_string(), 2), ("2".to_string(), 1)]);
    assert_eq!(legend.len(), 2, "{legend:?}");
    assert!(legend[0].starts_with("Run #1 — colors") && legend[1].starts_with("Run #2 — colors"), "{legend:?}");
    assert!(legend.iter().all(|entry| entry.contains("best ") && entry.contains('%')), "{legend:?}");
    look_at(&browser, "compare-runs").await;

    // Unticking one leaves nothing to compare.
    click(&browser, "#runs li[data-run-id='1'] input.compare").await;
    eventually("the comparison to close", Duration::from_secs(10), || async {
        browser.find(Locator::Css("#compare-accuracy")).await.is_err().then_some(())
    })
    .await;
    browser.close().await.unwrap();
}

#[tokio::test]
async fn a_zip_uploaded_from_the_page_becomes_the_dataset_the_next_run_trains_on() {
    a_zip_uploaded_becomes_the_next_runs_dataset(1280, 900).await;
}

#[tokio::test]
async fn on_a_phone_a_zip_uploaded_from_the_page_becomes_the_dataset_the_next_run_trains_on() {
    a_zip_uploaded_becomes_the_next_runs_dataset(390, 844).await;
}

/// A zip of class folders chosen on the page in a `width` x `height` window becomes a dataset, chosen
/// for the next run, which trains on it.
async fn a_zip_uploaded_becomes_the_next_runs_dataset(width: u32, height: u32) {
    let OpenPage { browser, _driver, server } =
        open_browser_with(serve_colors(2, 2, 1, 16).await, width, height, &[]).await;
    let mut entries = Vec::new();
    for (split, count) in [("train", 4), ("test", 2)] {
        for (class, color) in &COLOR_CLASSES[2..4] {
            for i in 0..count {
                entries.push((format!("{split}/{class}/{i}.png"), png_bytes(*color, 32, i)));
            }
        }
    }
    let zip = zip_dataset(&entries);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shapes.zip");
    std::fs::write(&path, &zip).unwrap();

    browser
        .find(Locator::Css("input#dataset-zip"))
        .await
        .unwrap()
        .send_keys(&path.display().to_string())
        .await
        .unwrap();
    let name = browser.find(Locator::Css("input#dataset-name")).await.unwrap().prop("value").await.unwrap();
    assert_eq!(name.as_deref(), Some("shapes"), "the name comes from the file's");
    click(&browser, "button#upload-dataset").await;
    let added = eventually("the upload's success message", Duration::from_secs(30), || async {
        text_of(&browser, "#upload-card .ok").await.filter(|t| !t.is_empty())
    })
    .await;
    assert_eq!(added, "Added shapes — 2 classes, 8 train / 4 test");
    assert_eq!(text_of(&browser, "#upload-error").await.as_deref(), Some(""));
    let bar = browser.find(Locator::Css("#upload-progress")).await.unwrap();
    let sent = bar.attr("value").await.unwrap().unwrap_or_default();
    let total = bar.attr("max").await.unwrap().unwrap_or_default();
    assert_eq!((sent.parse::<f64>().unwrap(), total.parse::<f64>().unwrap()), (zip.len() as f64, zip.len() as f64));
    let kilobytes = format!("{:.1}", zip.len() as f64 / 1e3);
    assert_eq!(text_of(&browser, "#upload-card .progress-text").await, Some(format!("{kilobytes} of {kilobytes} kB")));
    // The form picks the new dataset.
    let chosen = browser.find(Locator::Css("select#dataset")).await.unwrap().prop("value").await.unwrap();
    assert_eq!(chosen.as_deref(), Some("shapes"));
    look_at(&browser, &format!("upload-dataset-{width}")).await;
    // The next upload starts from an empty name, and takes the next zip's.
    let name = browser.find(Locator::Css("input#dataset-name")).await.unwrap().prop("value").await.unwrap();
    assert_eq!(name.as_deref(), Some(""), "an added dataset's name is not offered again");
    let next = dir.path().join("letters.zip");
    std::fs::write(&next, &zip).unwrap();
    let input = browser.find(Locator::Css("input#dataset-zip")).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(&next.display().to_string()).await.unwrap();
    let name = browser.find(Locator::Css("input#dataset-name")).await.unwrap().prop("value").await.unwrap();
    assert_eq!(name.as_deref(), Some("letters"), "the next zip names the next dataset");

    let id = start_run(&browser, "1").await;
    let run = server.wait_until_finished(id).await;
    assert_eq!(run.status, shared::RunStatus::Completed, "{run:?}");
    assert_eq!(
        (run.config.dataset.as_str(), run.classes.clone()),
        ("shapes", vec!["green".to_string(), "red".to_string()])
    );
    completed_on_page(&browser, id).await;
    let dataset = text_of(&browser, &format!("#runs li[data-run-id='{id}'] .run-dataset")).await;
    assert_eq!(dataset.as_deref(), Some("shapes"));
    browser.close().await.unwrap();
}

#[tokio::test]
async fn the_download_link_of_a_trained_run_serves_its_safetensors_checkpoint() {
    the_safetensors_download_serves_the_checkpoint(1280, 900).await;
}

#[tokio::test]
async fn on_a_phone_the_download_link_of_a_trained_run_serves_its_safetensors_checkpoint() {
    the_safetensors_download_serves_the_checkpoint(390, 844).await;
}

/// The Download model menu's safetensors link, in a `width` x `height` window.
async fn the_safetensors_download_serves_the_checkpoint(width: u32, height: u32) {
    let OpenPage { browser, _driver, server } =
        open_browser_with(serve_colors(2, 4, 2, 32).await, width, height, &[]).await;
    assert_eq!(start_run(&browser, "1").await, 1);
    assert_eq!(server.wait_until_finished(1).await.status, shared::RunStatus::Completed);
    let link = eventually("the download link", Duration::from_secs(30), || async {
        browser.find(Locator::Css("a#download-checkpoint")).await.ok()
    })
    .await;
    assert_eq!(link.attr("href").await.unwrap().as_deref(), Some("/api/runs/1/checkpoint"));
    assert_eq!(link.attr("download").await.unwrap().as_deref(), Some("run-1-resnet18.safetensors"));
    scroll_to(&browser, &link).await;
    look_at(&browser, &format!("download-link-{width}")).await;

    // Fetched by the page, as the browser follows the link: a safetensors file is an 8-byte little-endian
    // header length, a JSON header naming every tensor with its byte range, then the tensors' bytes.
    let href = link.prop("href").await.unwrap().unwrap();
    let fetched = browser
        .execute(
            r#"return fetch(arguments[0]).then(async response => {
                const bytes = await response.arrayBuffer();
                const headerLength = bytes.byteLength >= 8 ? Number(new DataView(bytes).getBigUint64(0, true)) : 0;
                const shown = Math.min(headerLength, Math.max(bytes.byteLength - 8, 0));
                return {
                    status: response.status,
                    contentType: response.headers.get('content-type'),
                    length: bytes.byteLength,
                    headerLength,
                    header: new TextDecoder().decode(new Uint8Array(bytes, Math.min(8, bytes.byteLength), shown)),
                };
            });"#,
            vec![json!(href)],
        )
        .await
        .unwrap();
    assert_eq!(fetched["status"], 200, "{fetched}");
    assert_eq!(fetched["contentType"], "application/octet-stream");
    let length = fetched["length"].as_u64().unwrap();
    let header_length = fetched["headerLength"].as_u64().unwrap();
    assert!(header_length > 0 && 8 + header_length < length, "{length} bytes, header of {header_length}");
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(fetched["header"].as_str().unwrap()).expect("a JSON header");
    assert_eq!(header["fc.weight"]["shape"], json!([2, 512]), "the head has one row per class");
    // The file carries its own class names and preprocessing, so it classifies without the run's folder.
    let carried = header["__metadata__"]["transfer_studio"].as_str().expect("Transfer Studio metadata in the header");
    let carried: serde_json::Value = serde_json::from_str(carried).unwrap();
    assert_eq!(
        (carried["architecture"].as_str(), carried["classes"].as_array().map(Vec::len)),
        (Some("resnet18"), Some(2))
    );
    let data_end = header.values().filter_map(|t| t["data_offsets"][1].as_u64()).max().unwrap();
    assert_eq!(8 + header_length + data_end, length, "the tensors' bytes fill the rest of the file");
    // Beside the link, the page says which epoch the file is from and how big it is.
    let info = text_of(&browser, "#checkpoint-info").await.unwrap_or_default();
    let size = format!("{:.1} MB", length as f64 / 1e6);
    assert!(info.starts_with("best: epoch ") && info.ends_with(&size), "{info:?} should name the epoch and {size}");
    browser.close().await.unwrap();
}

#[tokio::test]
async fn the_onnx_download_link_of_a_trained_run_serves_an_onnx_model_from_transfer_studio() {
    the_onnx_download_serves_an_onnx_model(1280, 900).await;
}

#[tokio::test]
async fn on_a_phone_the_onnx_download_link_of_a_trained_run_serves_an_onnx_model_from_transfer_studio() {
    the_onnx_download_serves_an_onnx_model(390, 844).await;
}

/// The Download model menu's ONNX link, in a `width` x `height` window.
async fn the_onnx_download_serves_an_onnx_model(width: u32, height: u32) {
    let OpenPage { browser, _driver, server } =
        open_browser_with(serve_colors(2, 4, 2, 32).await, width, height, &[]).await;
    assert_eq!(start_run(&browser, "1").await, 1);
    assert_eq!(server.wait_until_finished(1).await.status, shared::RunStatus::Completed);
    let link = eventually("the ONNX download link", Duration::from_secs(30), || async {
        browser.find(Locator::Css("a#download-onnx")).await.ok()
    })
    .await;
    let href = link.attr("href").await.unwrap().unwrap_or_default();
    assert!(href.ends_with("export?format=onnx"), "{href}");
    assert_eq!(link.attr("download").await.unwrap().as_deref(), Some("run-1-resnet18.onnx"));
    // The menu opens on its summary and offers both formats.
    click(&browser, "details.download-menu summary").await;
    let safetensors = text_of(&browser, "a#download-checkpoint").await.unwrap_or_default();
    let onnx = text_of(&browser, "a#download-onnx").await.unwrap_or_default();
    assert_eq!((safetensors.as_str(), onnx.as_str()), ("safetensors (PyTorch)", "ONNX (verified)"));
    look_at(&browser, &format!("download-menu-{width}")).await;

    // What the link serves: a ModelProto, whose first field is ir_version (field 1, varint: tag 0x08), with
    // Transfer Studio as its producer.
    let url = link.prop("href").await.unwrap().unwrap();
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.unwrap();
    assert!(bytes.len() > 1_000_000, "{} bytes is too small for ResNet-18", bytes.len());
    assert_eq!(bytes[0], 0x08, "an ONNX model starts with its ir_version");
    assert!(bytes.windows(b"transfer-studio".len()).any(|w| w == b"transfer-studio"), "no producer name");
    browser.close().await.unwrap();
}

/// A colour dataset of two classes in which one test image is a copy of a training image and one training
/// file is not an image.
fn leaky_dataset_with_a_broken_file(data: &Path) -> (String, String) {
    write_color_dataset(data, "colors", 2, 4, 2, 32);
    let class = COLOR_CLASSES[0].0;
    let colors = data.join("colors");
    std::fs::copy(colors.join(format!("train/{class}/0001.png")), colors.join(format!("test/{class}/copied.png")))
        .unwrap();
    std::fs::write(colors.join(format!("train/{class}/broken.png")), b"not a picture").unwrap();
    (format!("train/{class}/broken.png"), format!("test/{class}/copied.png"))
}

#[tokio::test]
async fn dataset_health_lists_a_broken_file_and_a_leak_and_start_warns_of_the_leak() {
    health_lists_a_broken_file_and_a_leak_and_start_warns(1280, 900).await;
}

#[tokio::test]
async fn on_a_phone_dataset_health_lists_a_broken_file_and_a_leak_and_start_warns_of_the_leak() {
    health_lists_a_broken_file_and_a_leak_and_start_warns(390, 844).await;
}

/// The Health card and the leak warning beside Start in a `width` x `height` window.
async fn health_lists_a_broken_file_and_a_leak_and_start_warns(width: u32, height: u32) {
    let data = tempfile::tempdir().unwrap();
    let (broken, copied) = leaky_dataset_with_a_broken_file(data.path());
    let imagenet = stand_in_imagenet(data.path());
    let server = TestServer::start_with(data, move |s| s.imagenet = imagenet, Some(built_page())).await;
    let OpenPage { browser, _driver, server: _server } = open_browser_with(server, width, height, &[]).await;

    let unreadable = eventually("the unreadable images", Duration::from_secs(60), || async {
        text_of(&browser, "#dataset-health #health-unreadable").await
    })
    .await;
    assert!(unreadable.contains(&broken), "{unreadable:?} should name {broken}");
    let health = text_of(&browser, "#dataset-health").await.unwrap();
    assert!(health.contains("Runs skip these."), "{health}");
    let duplicates = text_of(&browser, "#health-duplicates").await.unwrap();
    assert!(duplicates.contains(&copied) && duplicates.contains("exact copy, train and test"), "{duplicates:?}");
    let classes = browser.find_all(Locator::Css("#health-classes tbody tr")).await.unwrap();
    assert_eq!(classes.len(), 2, "one row per class");
    // 5 training files in the first class (the broken one counts) against 4 in the second.
    assert!(text_of(&browser, "#health-imbalance").await.unwrap().contains(" : 1 (balanced)"));
    let card = browser.find(Locator::Css("#dataset-health")).await.unwrap();
    scroll_to(&browser, &card).await;
    look_at(&browser, &format!("dataset-health-{width}")).await;

    // Before any run: the warning beside Start, with a link to the card; Start stays enabled.
    let expected = "1 of 5 test images has a copy in the training images: the test accuracy will read too high";
    let warning = text_of(&browser, "#start-leak-warning").await.unwrap_or_default();
    assert!(warning.starts_with(expected), "{warning:?}");
    let link = browser.find(Locator::Css("#start-leak-warning a")).await.unwrap();
    assert_eq!(link.attr("href").await.unwrap().as_deref(), Some("#dataset-health"));
    let start = eventually("Start enabled beside the warning", Duration::from_secs(30), || async {
        let start = browser.find(Locator::Css("button#start")).await.ok()?;
        start.attr("disabled").await.ok()?.is_none().then_some(start)
    })
    .await;
    scroll_to(&browser, &start).await;
    look_at(&browser, &format!("leak-warning-beside-start-{width}")).await;
    browser.close().await.unwrap();
}

#[tokio::test]
async fn imagenet_weights_come_first_and_weights_files_are_uploaded_from_the_page() {
    imagenet_comes_first_and_weights_are_uploaded(1280, 900).await;
}

#[tokio::test]
async fn on_a_phone_imagenet_weights_come_first_and_weights_files_are_uploaded_from_the_page() {
    imagenet_comes_first_and_weights_are_uploaded(390, 844).await;
}

/// The address of a local server that answers every request with an empty `200`: a download address
/// that can be reached, for the weights list's availability check.
async fn downloadable_address() -> String {
    let app = axum::Router::new().fallback(|| async { "" });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}/resnet18-f37072fd.pth", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

/// The weights menu without ImageNet's file, and weights uploads, in a `width` x `height` window.
async fn imagenet_comes_first_and_weights_are_uploaded(width: u32, height: u32) {
    // No ImageNet file on the server, and its address answers (a local stand-in for the download server):
    // the menu says it will be downloaded.
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 2, 2, 1, 16);
    let download = downloadable_address().await;
    let reachable = move |s: &mut backend::studio::StudioSettings| s.imagenet = s.imagenet.clone().with_url(download);
    let OpenPage { browser, _driver, server } =
        open_browser_with(TestServer::start_with(data, reachable, Some(built_page())).await, width, height, &[]).await;
    let first = eventually("the ImageNet option", Duration::from_secs(30), || async {
        let option = browser.find(Locator::Css("select#weights option")).await.ok()?;
        let text = option.text().await.ok()?;
        text.contains("ImageNet").then_some((option, text))
    })
    .await;
    assert_eq!(first.0.attr("value").await.unwrap().as_deref(), Some("imagenet"));
    assert!(first.1.ends_with("— 44.7 MB download"), "{}", first.1);
    let chosen = browser.find(Locator::Css("select#weights")).await.unwrap().prop("value").await.unwrap();
    assert_eq!(chosen.as_deref(), Some("imagenet"), "a first visit starts from ImageNet's weights");
    let hint = text_of(&browser, "#weights-hint").await.unwrap_or_default();
    assert!(hint.contains("downloads 44.7 MB") && hint.contains("upload resnet18-f37072fd.pth"), "{hint}");
    look_at(&browser, &format!("weights-menu-{width}")).await;

    // A ResNet-18 state dict is kept, listed and chosen.
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("mine.safetensors");
    ResNet18::new(tch::Device::Cpu, 10, 1).save(&good, None).unwrap();
    let input = browser.find(Locator::Css("input#weights-file")).await.unwrap();
    input.send_keys(&good.display().to_string()).await.unwrap();
    eventually("the uploaded weights chosen", Duration::from_secs(60), || async {
        let chosen = browser.find(Locator::Css("select#weights")).await.ok()?.prop("value").await.ok()??;
        (chosen == "mine.safetensors").then_some(())
    })
    .await;
    assert!(server.data.path().join("weights/mine.safetensors").is_file());
    assert_eq!(text_of(&browser, "#weights-upload-error").await.as_deref(), Some(""));
    assert_eq!(text_of(&browser, "#weights-hint").await, None, "uploaded weights need no download");

    // Anything else is refused with the server's sentence, and the choice stays.
    let bad = dir.path().join("bad.pth");
    std::fs::write(&bad, b"not a checkpoint at all").unwrap();
    input.send_keys(&bad.display().to_string()).await.unwrap();
    let refusal = eventually("the refusal", Duration::from_secs(30), || async {
        text_of(&browser, "#weights-upload-error").await.filter(|t| !t.is_empty())
    })
    .await;
    assert!(refusal.starts_with("this file is not a ResNet-18 state dict"), "{refusal}");
    assert!(!server.data.path().join("weights/bad.pth").exists());
    let chosen = browser.find(Locator::Css("select#weights")).await.unwrap().prop("value").await.unwrap();
    assert_eq!(chosen.as_deref(), Some("mine.safetensors"));
    look_at(&browser, &format!("weights-upload-refused-{width}")).await;
    browser.close().await.unwrap();
}

#[tokio::test]
async fn explain_overlays_a_grad_cam_heat_map_with_one_cell_per_position_on_a_classified_image() {
    let OpenPage { browser, _driver, server } = open_page(3, 6, 2, 32).await;
    let run = server.create_run(json!({"dataset": "colors", "epochs": 1, "batch_size": 6})).await;
    assert_eq!(server.wait_until_finished(run).await.status, shared::RunStatus::Completed);
    eventually("the model to choose", Duration::from_secs(30), || async {
        browser.find(Locator::Css(&format!("select#classify-run option[value='{run}']"))).await.ok()
    })
    .await;

    click(&browser, "input#classify-explain").await;
    let image = tempfile::Builder::new().suffix(".png").tempfile().unwrap();
    std::fs::write(image.path(), png_bytes(COLOR_CLASSES[1].1, 48, 5)).unwrap();
    let input = browser.find(Locator::Css("input#classify-file")).await.unwrap();
    input.send_keys(&image.path().display().to_string()).await.unwrap();

    // At 32 px, `auto` explains layer2, whose output is 4x4.
    let heat_map = eventually("the heat map over the image", Duration::from_secs(30), || async {
        browser.find(Locator::Css(".classified-figure svg.heatmap")).await.ok()
    })
    .await;
    let mut size = Vec::new();
    for name in ["data-width", "data-height"] {
        size.push(heat_map.attr(name).await.unwrap().unwrap_or_default().parse::<usize>().unwrap());
    }
    let (width, height) = (size[0], size[1]);
    assert_eq!((width, height), (4, 4));
    assert_eq!(heat_map.attr("data-layer").await.unwrap().as_deref(), Some("layer2"));
    let cells = heat_map.find_all(Locator::Css("rect.cam-cell")).await.unwrap();
    assert_eq!(cells.len(), width * height);
    let label = heat_map.attr("aria-label").await.unwrap().unwrap_or_default();
    let top = text_of(&browser, "ul#predictions li.prediction .label").await.unwrap();
    assert!(label.contains(&top), "the map names the class it explains: {label}");
    // The map covers the image exactly.
    let picture = browser.find(Locator::Css("img#classify-preview")).await.unwrap();
    let (px, py, pw, ph) = picture.rectangle().await.unwrap();
    let (hx, hy, hw, hh) = heat_map.rectangle().await.unwrap();
    assert!((px - hx).abs() <= 1.5 && (py - hy).abs() <= 1.5, "map at {hx},{hy}, image at {px},{py}");
    assert!((pw - hw).abs() <= 2.5 && (ph - hh).abs() <= 2.5, "map {hw}x{hh}, image {pw}x{ph}");
    look_at(&browser, "browser-explained").await;

    // Unticking classifies again without the map.
    click(&browser, "input#classify-explain").await;
    eventually("the map to go", Duration::from_secs(30), || async {
        let gone = browser.find(Locator::Css("svg.heatmap")).await.is_err();
        let answered = browser.find_all(Locator::Css("ul#predictions li.prediction")).await.ok()?.len() == 3;
        (gone && answered).then_some(())
    })
    .await;

    // The highest-loss test images of the shown run get theirs on request too.
    let shown = eventually("the highest-loss test images", Duration::from_secs(30), || async {
        let images = browser.find_all(Locator::Css("div#high-loss img.test-image")).await.ok()?;
        (!images.is_empty()).then_some(images.len())
    })
    .await;
    click(&browser, "input#high-loss-explain").await;
    let maps = eventually("a heat map on every test image", Duration::from_secs(60), || async {
        let maps = browser.find_all(Locator::Css("div#high-loss .test-picture svg.heatmap")).await.ok()?;
        (maps.len() == shown).then_some(maps)
    })
    .await;
    assert_eq!(maps[0].find_all(Locator::Css("rect.cam-cell")).await.unwrap().len(), 16);
    scroll_to(&browser, &maps[0]).await;
    look_at(&browser, "browser-explained-test-images").await;
    browser.close().await.unwrap();
}

#[tokio::test]
async fn runs_show_headline_numbers_and_are_renamed_filtered_and_deleted_after_a_confirmation() {
    runs_are_shown_renamed_filtered_and_deleted(1280, 900).await;
}

#[tokio::test]
async fn on_a_phone_runs_show_headline_numbers_and_are_renamed_filtered_and_deleted() {
    runs_are_shown_renamed_filtered_and_deleted(390, 844).await;
}

/// The run list and the shown run's header in a `width` x `height` window: headline numbers, rename,
/// the status filter and delete after a confirmation.
async fn runs_are_shown_renamed_filtered_and_deleted(width: u32, height: u32) {
    let OpenPage { browser, _driver, server } =
        open_browser_with(serve_colors(2, 8, 2, 16).await, width, height, &[]).await;
    let completed = server.create_run(json!({"dataset": "colors", "epochs": 1, "batch_size": 4})).await;
    let finished = server.wait_until_finished(completed).await;
    assert_eq!(finished.status, shared::RunStatus::Completed);
    let stopped = server.create_run(json!({"dataset": "colors", "epochs": 500, "batch_size": 4})).await;
    server.wait_for_run(stopped, Duration::from_secs(60), |run| run.status == shared::RunStatus::Running).await;
    server.studio.stop_run(stopped).unwrap();
    assert_eq!(server.wait_until_finished(stopped).await.status, shared::RunStatus::Stopped);
    list_shows(&browser, &[stopped, completed]).await;

    // Each row: final and best test accuracy, date, training time and device.
    let row = format!("#runs li[data-run-id='{completed}']");
    let accuracy = format!("{:.1} %", 100.0 * finished.epochs[0].test_accuracy);
    assert_eq!(text_of(&browser, &format!("{row} .final-accuracy")).await.unwrap(), accuracy);
    assert_eq!(text_of(&browser, &format!("{row} .best-accuracy")).await.unwrap(), format!("best {accuracy}"));
    let date = text_of(&browser, &format!("{row} .run-date")).await.unwrap();
    let shape: Vec<usize> = date.split(['-', ' ', ':']).map(str::len).collect();
    assert_eq!(shape, [4, 2, 2, 2, 2], "a date and time: {date}");
    let duration = text_of(&browser, &format!("{row} .run-duration")).await.unwrap();
    assert!(duration.ends_with(" s"), "{duration}");
    assert_eq!(text_of(&browser, &format!("{row} .run-device")).await.unwrap(), "cpu");
    assert_eq!(text_of(&browser, &format!("{row} .run-name")).await.unwrap(), format!("Run #{completed}"));

    // The shown run's header has the same numbers, large.
    click(&browser, &format!("{row} .run-button")).await;
    eventually("the completed run's header", Duration::from_secs(10), || async {
        text_of(&browser, "#final-accuracy").await.filter(|shown| *shown == accuracy)
    })
    .await;
    assert_eq!(text_of(&browser, "#best-accuracy").await.unwrap(), accuracy);
    look_at(&browser, &format!("runs-headline-{width}")).await;

    // Rename in place: the row, the header and the history follow.
    click(&browser, "button#rename-run").await;
    set_value(&browser, "input#run-name", "  baseline  ").await;
    click(&browser, "button#save-name").await;
    eventually("the new name in the list", Duration::from_secs(10), || async {
        text_of(&browser, &format!("{row} .run-name")).await.filter(|name| name == "baseline")
    })
    .await;
    assert!(text_of(&browser, "#detail-title").await.unwrap().starts_with("baseline — colors"));
    let run: shared::Run =
        reqwest::get(server.url(&format!("/api/runs/{completed}"))).await.unwrap().json().await.unwrap();
    assert_eq!(run.name.as_deref(), Some("baseline"));

    // The filter shows only runs of one status.
    click(&browser, "#run-filter button[data-filter='stopped']").await;
    list_shows(&browser, &[stopped]).await;
    click(&browser, "#run-filter button[data-filter='completed']").await;
    list_shows(&browser, &[completed]).await;
    click(&browser, "#run-filter button[data-filter='failed']").await;
    list_shows(&browser, &[]).await;
    assert!(browser.find(Locator::Css("#no-matching-runs")).await.is_ok());
    look_at(&browser, &format!("runs-filtered-empty-{width}")).await;
    click(&browser, "#run-filter button[data-filter='all']").await;
    list_shows(&browser, &[stopped, completed]).await;

    // Delete asks first on the page; keeping it changes nothing. The shown run is still the renamed one.
    let folder = server.data.path().join(format!("runs/{completed}"));
    assert!(folder.join("model.safetensors").is_file(), "the completed run has its model");
    click(&browser, "button#delete-run").await;
    let question = text_of(&browser, "#delete-confirm").await.unwrap();
    assert!(question.contains("Delete baseline and its model files?"), "{question}");
    look_at(&browser, &format!("runs-delete-confirmation-{width}")).await;
    click(&browser, "button#cancel-delete").await;
    assert!(browser.find(Locator::Css("#delete-confirm")).await.is_err());
    assert!(folder.is_dir());
    click(&browser, "button#delete-run").await;
    click(&browser, "button#confirm-delete").await;
    list_shows(&browser, &[stopped]).await;
    let gone = reqwest::get(server.url(&format!("/api/runs/{completed}"))).await.unwrap();
    assert_eq!(gone.status(), reqwest::StatusCode::NOT_FOUND);
    assert!(!folder.exists(), "its folder went with it");
    browser.close().await.unwrap();
}

#[tokio::test]
async fn the_form_survives_a_reload_and_use_these_settings_fills_it_from_a_run() {
    let OpenPage { browser, _driver, server } = open_page(2, 4, 2, 16).await;
    set_value(&browser, "input#epochs", "7").await;
    set_value(&browser, "input#lr", "0.05").await;
    browser.refresh().await.unwrap();
    eventually("the dataset option after the reload", Duration::from_secs(30), || async {
        browser.find(Locator::Css("select#dataset option[value='colors']")).await.ok()
    })
    .await;
    assert_eq!(value_of(&browser, "input#epochs").await, "7", "the typed epochs survive a reload");
    assert_eq!(value_of(&browser, "input#lr").await, "0.05");

    let config = json!({"dataset": "colors", "epochs": 1, "batch_size": 4, "lr": 0.02, "momentum": 0.5,
        "horizontal_flip": true});
    let run = server.create_run(config).await;
    server.wait_until_finished(run).await;

    // On a phone: the run's actions fit, and Use these settings brings the filled form into view.
    browser.set_window_size(390, 844).await.unwrap();
    click(&browser, &format!("#runs li[data-run-id='{run}'] .run-button")).await;
    for control in ["button#use-settings", "button#rename-run", "button#delete-run", "#final-accuracy"] {
        assert!(browser.find(Locator::Css(control)).await.unwrap().is_displayed().await.unwrap(), "{control}");
    }
    click(&browser, "button#use-settings").await;
    eventually("the run's settings in the form", Duration::from_secs(10), || async {
        (value_of(&browser, "input#epochs").await == "1").then_some(())
    })
    .await;
    assert_eq!(value_of(&browser, "input#batch-size").await, "4");
    assert_eq!(value_of(&browser, "input#lr").await, "0.02");
    assert_eq!(value_of(&browser, "input#momentum").await, "0.5");
    let flip = browser.find(Locator::Css("input#horizontal-flip")).await.unwrap();
    assert_eq!(flip.prop("checked").await.unwrap().as_deref(), Some("true"));
    assert!(browser.find(Locator::Css("button#start")).await.unwrap().is_enabled().await.unwrap());
    let top = browser
        .execute("return document.getElementById('train-card').getBoundingClientRect().top;", Vec::new())
        .await
        .unwrap();
    let top = top.as_f64().unwrap();
    assert!((-10.0..844.0).contains(&top), "the form's top is in the window: {top}");
    look_at(&browser, "runs-use-settings-narrow").await;
    click(&browser, "#runs").await;
    look_at(&browser, "runs-narrow").await;
    browser.close().await.unwrap();
}

/// The last number in a text: `"2.5"` → 2.5, `"loss of this epoch so far 2.1034"` → 2.1034.
fn number_in(text: &str) -> Option<f64> {
    text.split_whitespace().rev().find_map(|word| word.parse().ok())
}

/// The run bar's `(class, value out of 100)`.
async fn run_bar(browser: &Client) -> (String, f64) {
    let class = browser.find(Locator::Css("#progress")).await.unwrap().attr("class").await.unwrap().unwrap_or_default();
    let value = browser.find(Locator::Css("#progress progress")).await.unwrap().attr("value").await.unwrap();
    (class, value.and_then(|v| v.parse().ok()).unwrap_or(f64::NAN))
}

#[tokio::test]
async fn the_loss_is_plotted_from_the_first_batch_and_stop_answers_at_once() {
    first_batches_and_stop(1280, 900).await;
}

#[tokio::test]
async fn on_a_phone_the_loss_is_plotted_from_the_first_batch_and_stop_answers_at_once() {
    first_batches_and_stop(390, 844).await;
}

/// The loss axis's top label and the highest loss on the batch line, found from the line's highest point
/// between the axis's 0 and top ticks (a tick's label sits 4 px below its line).
const LOSS_AXIS_AND_HIGHEST_POINT: &str = r##"
    const ticks = [...document.querySelectorAll("#chart .panel-loss text.tick[text-anchor='end']")]
        .map(tick => [parseFloat(tick.getAttribute('y')) - 4, parseFloat(tick.textContent)]);
    const [[zeroAt], [topAt, top]] = [ticks[0], ticks[ticks.length - 1]];
    const ys = document.querySelector('#chart polyline.loss-batches').getAttribute('points').trim().split(/\s+/)
        .map(point => parseFloat(point.split(',')[1]));
    return [top, (zeroAt - Math.min(...ys)) / (zeroAt - topAt) * top];
"##;

/// The loss from the first batch, and Stop answering at once, in a `width` x `height` window.
async fn first_batches_and_stop(width: u32, height: u32) {
    // 1920 images in batches of 16: 120 batches, an epoch of several seconds on the CPU.
    let OpenPage { browser, _driver, server: _server } =
        open_browser_with(serve_colors(2, 1920, 16, 32).await, width, height, &[]).await;
    browser.find(Locator::Css("select#dataset")).await.unwrap().select_by_value("colors").await.unwrap();
    click(&browser, "details#advanced summary").await;
    set_value(&browser, "input#batch-size", "16").await;
    let run_id = start_run(&browser, "3").await;

    // Before the first epoch ends, the loss panel already has a line of batches.
    let mut highest_reported = 0.0f64;
    eventually("batch points before the first epoch ends", Duration::from_secs(120), || async {
        let points =
            browser.find(Locator::Css("#chart polyline.loss-batches")).await.ok()?.attr("points").await.ok()??;
        (points.split_whitespace().count() >= 3).then_some(())
    })
    .await;
    let rows = browser.find_all(Locator::Css("table#epochs tr.epoch-row")).await.unwrap();
    assert!(rows.is_empty(), "the batch line came only after an epoch ended");
    if let Some(loss) = text_of(&browser, ".progress-loss").await.as_deref().and_then(number_in) {
        highest_reported = highest_reported.max(loss);
    }
    let latest = browser.find(Locator::Css("#chart circle.batch-latest title")).await.unwrap();
    let note = latest.prop("textContent").await.unwrap().unwrap_or_default();
    assert!(note.contains("train loss"), "hovering the latest batch shows its loss: {note}");
    if let Some(loss) = number_in(&note) {
        highest_reported = highest_reported.max(loss);
    }
    // The axis is scaled to the highest batch loss plotted so far, which may be an earlier batch's than
    // the latest the page reports: read it off the line, against the axis's own ticks, in one look.
    let (top, highest_plotted): (f64, f64) = evaluate(&browser, LOSS_AXIS_AND_HIGHEST_POINT, Vec::new()).await;
    assert!(highest_reported > 0.0, "the page reported a loss");
    assert!(top >= highest_reported, "the loss axis ({top}) fits the latest loss ({highest_reported})");
    assert!(top >= highest_plotted - 1e-9, "the loss axis ({top}) fits every batch plotted ({highest_plotted})");
    assert!(
        top < highest_plotted * 2.5 + 0.25,
        "the loss axis ({top}) is not far above the highest batch loss plotted ({highest_plotted})"
    );
    let (class, value) = run_bar(&browser).await;
    assert!(class.contains("bar-running"), "{class}");
    assert!(value > 0.0 && value < 100.0 / 3.0, "one bar for the whole run, inside its first third: {value}");
    let chart = browser.find(Locator::Css("#chart")).await.unwrap();
    scroll_to(&browser, &chart).await;
    look_at(&browser, &format!("live-first-batches-{width}")).await;

    // A second run waits in the queue. Its panel cancels it, and only it: not the run training.
    let queued_id = start_run(&browser, "1").await;
    let cancel = eventually("the queued run's own Cancel", Duration::from_secs(10), || async {
        text_of(&browser, "button#stop-live").await.filter(|label| label.starts_with("Cancel"))
    })
    .await;
    assert_eq!(cancel, format!("Cancel run #{queued_id}"));
    // Where each run is: the queued one waits for the one slot, the training one is in it.
    let waiting = text_of(&browser, &format!("#runs li[data-run-id='{queued_id}'] .run-placement")).await;
    assert_eq!(waiting.as_deref(), Some("waiting for a free slot"));
    assert_eq!(text_of(&browser, "#placement").await.as_deref(), Some("waiting for a free slot"), "the panel too");
    let placed = text_of(&browser, &format!("#runs li[data-run-id='{run_id}'] .run-placement")).await;
    assert!(placed.as_deref().is_some_and(|p| p.starts_with("slot 0 · cpu · ")), "{placed:?}");
    assert_eq!(text_of(&browser, "button#stop").await, Some(format!("Stop run #{run_id}")), "the form's Stop");
    click(&browser, "button#stop-live").await;
    eventually("the cancelled run's stopped badge", Duration::from_secs(10), || async {
        browser.find(Locator::Css(&format!("#runs li[data-run-id='{queued_id}'] .status-stopped"))).await.ok()
    })
    .await;
    assert!(
        browser.find(Locator::Css(&format!("#runs li[data-run-id='{run_id}'] .status-running"))).await.is_ok(),
        "cancelling the queued run left the training one training"
    );
    click(&browser, &format!("#runs li[data-run-id='{run_id}'] button.run-button")).await;

    // Stop says so at once, before the server has answered.
    click(&browser, "button#stop").await;
    let label = text_of(&browser, "button#stop").await.unwrap_or_default();
    assert_eq!(label, "Stopping…");
    let disabled = browser.find(Locator::Css("button#stop")).await.unwrap().attr("disabled").await.unwrap();
    assert!(disabled.is_some(), "a second press has nothing to add");
    look_at(&browser, &format!("live-stopping-{width}")).await;

    eventually("the stopped badge", Duration::from_secs(60), || async {
        browser.find(Locator::Css(&format!("#runs li[data-run-id='{run_id}'] .status-stopped"))).await.ok()
    })
    .await;
    let ended =
        eventually("where the run stopped", Duration::from_secs(10), || async { text_of(&browser, "#ended-at").await })
            .await;
    assert!(ended.starts_with("Stopped in epoch 1 of 3, near batch "), "{ended}");
    let (class, value) = run_bar(&browser).await;
    assert!(class.contains("bar-stopped"), "{class}");
    assert!(value < 100.0 / 3.0, "a stopped run's bar shows where it stopped: {value}");
    assert_ne!(text_of(&browser, "button#stop").await.as_deref(), Some("Stopping…"));
    let bar = browser.find(Locator::Css("#progress")).await.unwrap();
    scroll_to(&browser, &bar).await;
    look_at(&browser, &format!("live-stopped-{width}")).await;
    browser.close().await.unwrap();
}
