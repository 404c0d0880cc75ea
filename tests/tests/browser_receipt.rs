//! Browser test of a run's receipt (issue 13.6): the run's details show a Receipt section with the content
//! hash of the data it used, the program version, device, thread count, precision and seed, and a link
//! that downloads the same receipt the API answers; on a phone (390 x 844) the page does not scroll sideways
//! and the hashes wrap inside their box.

use crate::common;

use common::browser::*;
use fantoccini::Locator;
use serde_json::json;
use shared::RunReceipt;
use std::time::Duration;

/// What the receipt's box and the page measure on a narrow screen.
#[derive(Debug, serde::Deserialize)]
struct ReceiptFit {
    /// The page's scroll width and the window's inner width.
    page: (f64, f64),
    /// The right edge of the value reaching furthest right.
    value_right: f64,
    /// The right edge of the receipt's box.
    box_right: f64,
    /// Values whose text is wider than their box without a way to scroll it.
    cut: Vec<String>,
    /// The download link's left and right edges.
    link: (f64, f64),
}

/// Opens the page at `width` x `height` on a finished run's receipt and checks its lines, that it fits the
/// window, and its download link.
async fn the_receipt_is_shown_with_a_download_link(width: u32, height: u32) {
    let server = serve_colors(2, 6, 2, 32).await;
    let id = server.create_run(json!({"dataset": "colors", "epochs": 1, "batch_size": 4, "seed": 9})).await;
    assert_eq!(server.wait_until_finished(id).await.status, shared::RunStatus::Completed);
    let receipt: RunReceipt =
        reqwest::get(server.url(&format!("/api/runs/{id}/receipt"))).await.unwrap().json().await.unwrap();
    let page = open_browser_with(server, width, height, &[]).await;
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
    look_at(browser, &format!("receipt-{width}")).await;
    let fit: ReceiptFit = evaluate(
        browser,
        "const values = [...document.querySelectorAll('#receipt-lines dd')];
         const scrolls = (e) => ['auto', 'scroll'].includes(getComputedStyle(e).overflowX);
         const link = document.querySelector('#receipt-download').getBoundingClientRect();
         return { page: [document.documentElement.scrollWidth, window.innerWidth],
                  value_right: Math.max(...values.map((v) => v.getBoundingClientRect().right)),
                  box_right: document.querySelector('#receipt-lines').getBoundingClientRect().right,
                  cut: values.filter((v) => v.scrollWidth > v.clientWidth + 1 && !scrolls(v)).map((v) => v.textContent),
                  link: [link.left, link.right] };",
        Vec::new(),
    )
    .await;
    assert!(fit.page.0 <= fit.page.1, "no horizontal scroll at {width} px: {fit:?}");
    assert!(fit.value_right <= fit.box_right + 0.5, "every value inside the receipt's box: {fit:?}");
    assert!(fit.cut.is_empty(), "every hash wraps or scrolls inside its box: {fit:?}");
    assert!(fit.link.0 >= 0.0 && fit.link.1 <= f64::from(width), "the download link is on screen: {fit:?}");

    let link = browser.find(Locator::Css("a#receipt-download")).await.unwrap();
    assert_eq!(link.attr("download").await.unwrap().as_deref(), Some(format!("run-{id}-receipt.json").as_str()));
    let href = link.prop("href").await.unwrap().unwrap();
    let downloaded: RunReceipt = reqwest::get(&href).await.unwrap().json().await.unwrap();
    assert_eq!(downloaded, receipt, "the link downloads the receipt the API answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_run_shows_its_receipt_with_a_download_link() {
    the_receipt_is_shown_with_a_download_link(1280, 900).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_run_shows_its_receipt_with_a_download_link_on_a_phone() {
    the_receipt_is_shown_with_a_download_link(390, 844).await;
}
