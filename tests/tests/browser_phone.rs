//! The page on a phone (390 x 844 CSS pixels) and its accessibility audit (issue 12, points 6 and 11), in
//! a real headless Chromium against a real server with real training: in every state a person reaches,
//! nothing scrolls sideways, no text is under 11 px, and axe-core finds no serious or critical violation
//! (`look_at`); while a run trains its panel with Stop comes first; tabs reach Train, Runs and Classify;
//! the confusion matrix scrolls in its own box. The same walk at 1280 x 900 audits the states the other
//! browser tests do not reach. Screenshots: `target/screenshots/phone-*.png`, `desktop-*.png`.

mod common;

use common::browser::*;
use common::{png_bytes, TestServer};
use fantoccini::{Client, Locator};
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

/// Ten classes with CIFAR-10's names, so the confusion matrix is as wide as the issue measured it.
const CLASSES: [(&str, [u8; 3]); 10] = [
    ("airplane", [20, 20, 20]),
    ("automobile", [30, 60, 220]),
    ("bird", [40, 200, 60]),
    ("cat", [220, 40, 40]),
    ("deer", [230, 220, 40]),
    ("dog", [240, 240, 240]),
    ("frog", [140, 40, 200]),
    ("horse", [40, 200, 210]),
    ("ship", [240, 140, 30]),
    ("truck", [120, 120, 120]),
];

/// The smallest font size of visible text allowed anywhere on the page, in CSS pixels as drawn.
const SMALLEST_TEXT_PX: f64 = 11.0;

/// A server over a ten-class dataset "colors" (8 training and 2 test images of 16 px per class) and a
/// browser `width` x `height` showing its page.
async fn open_ten_class_page(width: u32, height: u32) -> OpenPage {
    let data = tempfile::tempdir().unwrap();
    for (split, count) in [("train", 8), ("test", 2)] {
        for (seed, (class, colour)) in CLASSES.iter().enumerate() {
            let dir = data.path().join("colors").join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..count {
                std::fs::write(dir.join(format!("{i:04}.png")), png_bytes(*colour, 16, (seed * 100 + i) as u64))
                    .unwrap();
            }
        }
    }
    let imagenet = stand_in_imagenet(data.path());
    let server = TestServer::start_with(data, move |s| s.imagenet = imagenet, Some(built_page())).await;
    let page = open_browser(server).await;
    page.browser.set_window_size(width, height).await.unwrap();
    let inner = page.browser.execute("return window.innerWidth;", Vec::new()).await.unwrap();
    assert_eq!(inner.as_f64(), Some(f64::from(width)), "the page is {width} CSS pixels wide");
    eventually("the page to connect", Duration::from_secs(30), || async {
        text_of(&page.browser, "#connection").await.filter(|t| t == "Connected")
    })
    .await;
    page
}

/// The smallest visible text: its size as drawn (an SVG text's CSS size times the chart's scale), the
/// text, and the start of its element's HTML.
#[derive(Debug, Deserialize)]
struct SmallestText {
    size: f64,
    text: String,
    element: String,
}

const SMALLEST_VISIBLE_TEXT: &str = r#"
    let smallest = null;
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const text = node.textContent.trim();
        const element = node.parentElement;
        if (!text || !element || element.closest('.visually-hidden')
            || !element.checkVisibility({ visibilityProperty: true, opacityProperty: true })) continue;
        const range = document.createRange();
        range.selectNodeContents(node);
        const drawn = range.getBoundingClientRect();
        if (drawn.width <= 1 || drawn.height <= 1) continue;
        let size = parseFloat(getComputedStyle(element).fontSize);
        if (element instanceof SVGElement) {
            const matrix = element.getScreenCTM();
            if (matrix) size *= Math.hypot(matrix.a, matrix.b);
        }
        if (!smallest || size < smallest.size) {
            smallest = { size, text: text.slice(0, 60), element: element.outerHTML.slice(0, 160) };
        }
    }
    return smallest;
"#;

/// Looks at `state` (screenshot, accessible names, axe-core) and checks that the page is no wider than
/// the window and that no visible text is under 11 px.
async fn fits(browser: &Client, state: &str) {
    look_at(browser, state).await;
    let widths =
        browser.execute("return [document.documentElement.scrollWidth, window.innerWidth];", Vec::new()).await.unwrap();
    let [page, window]: [f64; 2] = serde_json::from_value(widths).unwrap();
    assert!(page <= window, "{state}: the page is {page} px wide in a {window} px window: it scrolls sideways");
    let smallest = browser.execute(SMALLEST_VISIBLE_TEXT, Vec::new()).await.unwrap();
    let smallest: SmallestText = serde_json::from_value(smallest).unwrap();
    assert!(
        smallest.size >= SMALLEST_TEXT_PX - 0.01,
        "{state}: text drawn at {:.2} px: {:?} in {}",
        smallest.size,
        smallest.text,
        smallest.element
    );
}

/// Where an element is in the window, in CSS pixels.
#[derive(Debug, Deserialize)]
struct Rect {
    top: f64,
    bottom: f64,
    right: f64,
}

async fn rect_of(browser: &Client, css: &str) -> Rect {
    let element = browser.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
    let rect = browser
        .execute(
            "const r = arguments[0].getBoundingClientRect(); return { top: r.top, bottom: r.bottom, right: r.right };",
            vec![serde_json::to_value(&element).unwrap()],
        )
        .await
        .unwrap();
    serde_json::from_value(rect).unwrap()
}

async fn window_height(browser: &Client) -> f64 {
    browser.execute("return window.innerHeight;", Vec::new()).await.unwrap().as_f64().unwrap()
}

/// While run `id` trains: on a phone its panel comes before the form, and its Stop and progress bar
/// are on the first screen of the page; then Stop (the panel's) stops it.
async fn stop_from_the_live_panel(browser: &Client, id: u64, phone: bool) {
    let stop = format!("Stop run #{id}");
    eventually("the live panel's Stop", Duration::from_secs(60), || async {
        let button = browser.find(Locator::Css("button#stop-live")).await.ok()?;
        let enabled = button.is_enabled().await.ok()?;
        (enabled && button.text().await.ok()? == stop).then_some(())
    })
    .await;
    if phone {
        browser.execute("window.scrollTo(0, 0);", Vec::new()).await.unwrap();
        let screen = window_height(browser).await;
        let panel = rect_of(browser, ".run-detail").await;
        let form = rect_of(browser, "#train-card").await;
        assert!(panel.top < form.top, "the live panel ({panel:?}) comes before the form ({form:?})");
        for css in ["button#stop-live", "#progress"] {
            let rect = rect_of(browser, css).await;
            assert!(rect.top >= 0.0 && rect.bottom <= screen, "{css} is on the first screen ({screen} px): {rect:?}");
        }
    }
    fits(browser, &format!("{}-training", prefix(phone))).await;
    click(browser, "button#stop-live").await;
    let badge = format!("#runs li[data-run-id='{id}'] .status-stopped");
    eventually(&format!("run {id} stopped"), Duration::from_secs(60), || async {
        browser.find(Locator::Css(&badge)).await.ok()
    })
    .await;
}

fn prefix(phone: bool) -> &'static str {
    if phone {
        "phone"
    } else {
        "desktop"
    }
}

/// On a phone, the confusion matrix is wider than its box and scrolls inside it; the page does not widen.
async fn confusion_matrix_scrolls_in_its_box(browser: &Client) {
    let measured = browser
        .execute(
            "const box = document.querySelector('#confusion').closest('.confusion-wrap');
             return { overflow: getComputedStyle(box).overflowX, box: box.clientWidth, matrix: box.scrollWidth,
                      right: box.getBoundingClientRect().right, window: window.innerWidth };",
            Vec::new(),
        )
        .await
        .unwrap();
    let overflow = measured["overflow"].as_str().unwrap();
    let [shown, matrix, right, window] = ["box", "matrix", "right", "window"].map(|k| measured[k].as_f64().unwrap());
    assert_eq!(overflow, "auto", "the matrix's box scrolls");
    assert!(matrix > shown, "ten classes make a matrix ({matrix} px) wider than its box ({shown} px)");
    assert!(right <= window, "the box ends inside the window: {right} > {window}");
    let scrolled = browser
        .execute(
            "const box = document.querySelector('#confusion').closest('.confusion-wrap');
             box.scrollLeft = box.scrollWidth; return box.scrollLeft;",
            Vec::new(),
        )
        .await
        .unwrap();
    assert!(scrolled.as_f64().unwrap() > 0.0, "the box scrolls sideways on its own");
}

/// A person's whole visit: the form, Advanced, a run training and stopped from its panel, a trained run
/// with a confusion cell opened, an image classified, two runs compared; each state checked by [`fits`].
async fn visit_every_state(browser: &Client, phone: bool) {
    let name = |state: &str| format!("{}-{state}", prefix(phone));
    fits(browser, &name("initial")).await;
    click(browser, "details#advanced > summary").await;
    fits(browser, &name("advanced-open")).await;
    click(browser, "details#advanced > summary").await;

    let long = start_run(browser, "500").await;
    stop_from_the_live_panel(browser, long, phone).await;

    let short = start_run(browser, "2").await;
    completed_on_page(browser, short).await;
    click(browser, &format!("#runs li[data-run-id='{short}'] button.run-button")).await;
    eventually("the confusion matrix", Duration::from_secs(30), || async {
        browser.find(Locator::Css("#confusion .cell-button")).await.ok()
    })
    .await;
    if phone {
        confusion_matrix_scrolls_in_its_box(browser).await;
    }
    click(browser, "#confusion .cell-button").await;
    eventually("the cell's images", Duration::from_secs(30), || async {
        browser.find(Locator::Css("#cell-images figure, #cell-images p")).await.ok()
    })
    .await;
    fits(browser, &name("trained-analysis")).await;

    classify_one_image(browser, short).await;
    fits(browser, &name("classified")).await;

    for id in [long, short] {
        click(browser, &format!("#runs li[data-run-id='{id}'] input.compare")).await;
    }
    eventually("the comparison", Duration::from_secs(30), || async {
        browser.find(Locator::Css(".compare-card svg")).await.ok()
    })
    .await;
    fits(browser, &name("compare")).await;
}

/// Classifies a picture of the "bird" colour with run `id` and waits for its predictions.
async fn classify_one_image(browser: &Client, id: u64) {
    let image = tempfile::Builder::new().suffix(".png").tempfile().unwrap();
    std::fs::write(image.path(), png_bytes(CLASSES[2].1, 48, 3)).unwrap();
    eventually("the trained model to choose", Duration::from_secs(30), || async {
        browser.find(Locator::Css(&format!("select#classify-run option[value='{id}']"))).await.ok()
    })
    .await;
    upload(browser, "input#classify-file", image.path()).await;
    eventually("the predictions", Duration::from_secs(60), || async {
        browser.find(Locator::Css("#classify .prediction")).await.ok()
    })
    .await;
}

async fn upload(browser: &Client, css: &str, file: &Path) {
    let input = browser.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
    input.send_keys(&file.display().to_string()).await.unwrap();
}

#[tokio::test]
async fn on_a_phone_every_state_fits_the_screen_with_text_of_11_px_or_more_and_passes_the_audit() {
    let OpenPage { browser, _driver, server: _server } = open_ten_class_page(390, 844).await;
    visit_every_state(&browser, true).await;
    browser.close().await.unwrap();
}

#[tokio::test]
async fn on_a_desktop_the_live_panel_analysis_classify_and_compare_pass_the_audit() {
    let OpenPage { browser, _driver, server: _server } = open_ten_class_page(1280, 900).await;
    visit_every_state(&browser, false).await;
    browser.close().await.unwrap();
}

#[tokio::test]
async fn on_a_phone_train_runs_and_classify_are_each_one_tap_away() {
    let OpenPage { browser, _driver, server: _server } = open_ten_class_page(390, 844).await;
    let screen = window_height(&browser).await;
    // From the bottom of the page, and back up: each tab brings its section under the sticky header.
    browser.execute("window.scrollTo(0, document.body.scrollHeight);", Vec::new()).await.unwrap();
    for (tab, section) in [("#classify", "#classify"), ("#runs-card", "#runs-card"), ("#train-card", "#train-card")] {
        let link = browser.find(Locator::Css(&format!("#section-tabs a[href='{tab}']"))).await.unwrap();
        assert!(link.is_displayed().await.unwrap(), "the {tab} tab shows wherever the page is scrolled");
        link.click().await.unwrap();
        eventually(&format!("{section} under the header"), Duration::from_secs(5), || async {
            let header = rect_of(&browser, "header.topbar").await;
            let shown = rect_of(&browser, section).await;
            (shown.top >= header.bottom - 1.0 && shown.top < screen / 2.0).then_some(())
        })
        .await;
    }
    look_at(&browser, "phone-tabs").await;
    let tabs = rect_of(&browser, "#section-tabs").await;
    assert!(tabs.right <= 390.0, "the tabs fit the screen: {tabs:?}");
    browser.close().await.unwrap();
}
