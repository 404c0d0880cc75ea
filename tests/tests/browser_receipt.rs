//! Browser test of a run's receipt (issue 13.6): the run's details show a Receipt section with the content
//! hash of the data it used, the program version, device, thread count, precision and seed, and a link
//! that downloads the same receipt the API answers.

mod common;

use common::browser::*;
use fantoccini::Locator;
use serde_json::json;
use shared::RunReceipt;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_run_shows_its_receipt_with_a_download_link() {
    let server = serve_colors(2, 6, 2, 32).await;
    let id = server.create_run(json!({"dataset": "colors", "epochs": 1, "batch_size": 4, "seed": 9})).await;
    assert_eq!(server.wait_until_finished(id).await.status, shared::RunStatus::Completed);
    let receipt: RunReceipt =
        reqwest::get(server.url(&format!("/api/runs/{id}/receipt"))).await.unwrap().json().await.unwrap();
    let page = open_browser(server).await;
    let browser = &page.browser;
    click(browser, &format!("#runs li[data-run-id='{id}'] .run-button")).await;
    click(browser, "#run-receipt summary").await;

    let lines = eventually("the receipt's lines", Duration::from_secs(30), || async {
        text_of(browser, "#receipt-lines").await.filter(|text| text.contains(&receipt.data.sha256))
    })
    .await;
    for shown in [
        format!("Transfer Studio {}", receipt.version),
        format!("{} images · SHA-256 {}", receipt.data.train.images, receipt.data.train.images_sha256),
        "float32".to_string(),
        "cpu".to_string(),
    ] {
        assert!(lines.contains(&shown), "{shown} in {lines}");
    }
    let seed = text_of(browser, "#receipt-lines .config-item:last-child").await.unwrap();
    assert!(seed.contains("Seed") && seed.ends_with('9'), "{seed}");
    look_at(browser, "receipt-1280").await;

    let link = browser.find(Locator::Css("a#receipt-download")).await.unwrap();
    assert_eq!(link.attr("download").await.unwrap().as_deref(), Some(format!("run-{id}-receipt.json").as_str()));
    let href = link.prop("href").await.unwrap().unwrap();
    let downloaded: RunReceipt = reqwest::get(&href).await.unwrap().json().await.unwrap();
    assert_eq!(downloaded, receipt, "the link downloads the receipt the API answers");
}
