//! The page on a phone (390 x 844 CSS pixels) and at 1280 x 900, and its accessibility audit (issue 12,
//! points 6 and 11; issue 30, points 4 and 5), in a real headless Chromium against a real server with real
//! training: in every state a person reaches, nothing scrolls sideways, no text is under 11 px, and
//! axe-core finds no serious or critical violation (`look_at`); the first screen is New run, or the run
//! training with its Stop; Stop and Resume leave the run's panel where it was under the thumb; tabs reach
//! Train, Runs, Classify and Datasets in one click at both widths; Start is on the first screen at
//! 1280 px; classify results sit side by side at 1280 px and one opens large with its heat map and
//! legend; no setting or class name is cut; the confusion matrix scrolls in its own box. Screenshots:
//! `target/screenshots/phone-*.png`, `desktop-*.png`.

use crate::common;

use common::browser::*;
use common::{png_bytes, TestServer};
use fantoccini::{Client, Locator};
use serde::Deserialize;
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
    left: f64,
    right: f64,
}

impl Rect {
    fn width(&self) -> f64 {
        self.right - self.left
    }
}

async fn rect_of(browser: &Client, css: &str) -> Rect {
    let element = browser.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
    let rect = browser
        .execute(
            "const r = arguments[0].getBoundingClientRect();
             return { top: r.top, bottom: r.bottom, left: r.left, right: r.right };",
            vec![serde_json::to_value(&element).unwrap()],
        )
        .await
        .unwrap();
    serde_json::from_value(rect).unwrap()
}

/// Clicks the element at `css` where it is, without scrolling it first (as [`click`] does), as a thumb
/// presses what is under it.
async fn press_in_place(browser: &Client, css: &str) {
    browser.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).click().await.unwrap();
}

/// How far the run's panel moved on screen while `what` happened: its top before `act`, less its top once
/// `done` says it happened.
async fn panel_moved<A, D, DF>(browser: &Client, what: &str, act: A, done: D) -> f64
where
    A: std::future::Future<Output = ()>,
    D: FnMut() -> DF,
    DF: std::future::Future<Output = Option<()>>,
{
    let before = rect_of(browser, ".run-detail").await.top;
    act.await;
    eventually(what, Duration::from_secs(60), done).await;
    // A frame for the page to settle after the change.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = rect_of(browser, ".run-detail").await.top;
    eprintln!("{what}: the run's panel was at {before:.1} px, now at {after:.1} px");
    after - before
}

/// Whether the page's layout shows a run as active (on a phone, its panel first).
async fn layout_live(browser: &Client) -> bool {
    evaluate(browser, "return document.querySelector('main.layout').classList.contains('live');", Vec::new()).await
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
    if !phone {
        click(browser, "button#stop-live").await;
        stopped_on_page(browser, id).await;
        return;
    }
    // On a phone the panel leaves the top of the page when the run stops and comes back when it resumes:
    // the page moves with it, so that what the thumb pressed stays under it.
    let moved = panel_moved(browser, "Stop", press_in_place(browser, "button#stop-live"), || async {
        let badge = format!("#runs li[data-run-id='{id}'] .status-stopped");
        let stopped = browser.find(Locator::Css(&badge)).await.is_ok();
        (stopped && !layout_live(browser).await).then_some(())
    })
    .await;
    assert!(moved.abs() <= 2.0, "Stop moved the run's panel by {moved:.1} px");
    fits(browser, "phone-stopped").await;
    let moved = panel_moved(browser, "Resume", press_in_place(browser, "button#resume"), || async {
        let button = browser.find(Locator::Css("button#stop-live")).await.ok()?;
        let training = button.is_enabled().await.ok()? && button.text().await.ok()? == stop;
        (training && layout_live(browser).await).then_some(())
    })
    .await;
    assert!(moved.abs() <= 2.0, "Resume moved the run's panel by {moved:.1} px");
    let moved = panel_moved(browser, "Stop again", press_in_place(browser, "button#stop-live"), || async {
        let badge = format!("#runs li[data-run-id='{id}'] .status-stopped");
        let stopped = browser.find(Locator::Css(&badge)).await.is_ok();
        (stopped && !layout_live(browser).await).then_some(())
    })
    .await;
    assert!(moved.abs() <= 2.0, "Stop moved the run's panel by {moved:.1} px");
}

async fn stopped_on_page(browser: &Client, id: u64) {
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
    nothing_is_cut(browser, &name("trained-analysis")).await;
    click(browser, "button#close-cell").await;
    a_test_image_opens_large_with_its_heat_map_and_legend(browser, &name("gallery-large")).await;

    classify_two_explained_images(browser, short).await;
    fits(browser, &name("classified")).await;
    if !phone {
        results_sit_side_by_side(browser).await;
    }
    an_image_opens_large_with_its_heat_map_and_legend(browser, &name("classified-large")).await;

    for id in [long, short] {
        click(browser, &format!("#runs li[data-run-id='{id}'] input.compare")).await;
    }
    eventually("the comparison", Duration::from_secs(30), || async {
        browser.find(Locator::Css(".compare-card svg")).await.ok()
    })
    .await;
    fits(browser, &name("compare")).await;
}

/// Every element of the run's settings, per-class table and confusion matrix whose text is cut (wider
/// than its box, which hides the rest or ends it with an ellipsis), and the per-class table's box when
/// it hides rows: what each says, its box and its text widths.
const CUT_TEXT: &str = r#"
    const cut = [];
    for (const element of document.querySelectorAll('#run-config *, #per-class *, #confusion *')) {
        if (element.closest('.visually-hidden') || !element.checkVisibility()) continue;
        const style = getComputedStyle(element);
        const hides = style.overflowX !== 'visible' || style.textOverflow === 'ellipsis';
        if (hides && element.scrollWidth > element.clientWidth + 1) {
            cut.push(`${element.textContent.trim().slice(0, 60)}: ${element.scrollWidth} px in ${element.clientWidth} px`);
        }
    }
    const box = document.querySelector('.per-class-wrap');
    if (box.scrollHeight > box.clientHeight + 1) {
        cut.push(`the per-class table: ${box.scrollHeight} px of rows in a ${box.clientHeight} px box`);
    }
    return cut;
"#;

/// No setting of the shown run, no row of its per-class table and no class name of its confusion matrix
/// is cut off (issue 30, point 5): long values wrap, and ten classes show in full.
async fn nothing_is_cut(browser: &Client, state: &str) {
    let values: usize =
        evaluate(browser, "return document.querySelectorAll('#run-config dd').length;", Vec::new()).await;
    assert!(values >= 10, "{state}: the run's settings show: {values}");
    let cut: Vec<String> = evaluate(browser, CUT_TEXT, Vec::new()).await;
    assert!(cut.is_empty(), "{state}: text is cut: {cut:#?}");
}

/// Ticks Explain over the highest-loss test images, and presses the first: it shows large across the
/// gallery with its heat map over it, beside the legend of the map's colours. `state` names the audited
/// screenshot; pressing it again shows it small.
async fn a_test_image_opens_large_with_its_heat_map_and_legend(browser: &Client, state: &str) {
    const PICTURE: &str = "#high-loss .test-figure:first-child .test-picture";
    click(browser, "input#high-loss-explain").await;
    eventually("the test images' heat maps", Duration::from_secs(60), || async {
        browser.find(Locator::Css(&format!("{PICTURE} svg.heatmap"))).await.ok()
    })
    .await;
    let words = text_of(browser, "#high-loss-legend").await.expect("the gallery's legend shows");
    assert!(words.contains("blue") && words.contains("red"), "the legend says what the colours mean: {words}");
    let small = rect_of(browser, &format!("{PICTURE} svg.heatmap")).await;
    let button = format!("{PICTURE} button.figure-button");
    click(browser, &button).await;
    let pressed = browser.find(Locator::Css(&button)).await.unwrap().attr("aria-pressed").await.unwrap();
    assert_eq!(pressed.as_deref(), Some("true"));
    let large = rect_of(browser, &format!("{PICTURE} svg.heatmap")).await;
    let image = rect_of(browser, &format!("{PICTURE} img.test-image")).await;
    eprintln!("test image's heat map {:.0} px wide, shown large {:.0} px", small.width(), large.width());
    assert!(large.width() >= 2.5 * small.width(), "large: {large:?}, small: {small:?}");
    assert!(
        (large.top - image.top).abs() <= 2.5 && (large.width() - image.width()).abs() <= 4.5,
        "the map covers the image: {large:?} {image:?}"
    );
    fits(browser, state).await;
    click(browser, &button).await;
    let again = rect_of(browser, &format!("{PICTURE} svg.heatmap")).await;
    assert!((again.width() - small.width()).abs() < 1.0, "pressed again, it is small: {again:?}");
}

/// Ticks Explain and classifies pictures of the "bird" and "cat" colours with run `id`, then waits for
/// both images' predictions and heat maps.
async fn classify_two_explained_images(browser: &Client, id: u64) {
    let images: Vec<_> = [2, 3]
        .map(|class| {
            let image = tempfile::Builder::new().suffix(".png").tempfile().unwrap();
            std::fs::write(image.path(), png_bytes(CLASSES[class].1, 48, 3)).unwrap();
            image
        })
        .into();
    eventually("the trained model to choose", Duration::from_secs(30), || async {
        browser.find(Locator::Css(&format!("select#classify-run option[value='{id}']"))).await.ok()
    })
    .await;
    click(browser, "input#classify-explain").await;
    let paths: Vec<String> = images.iter().map(|image| image.path().display().to_string()).collect();
    let input = browser.find(Locator::Css("input#classify-file")).await.unwrap();
    input.send_keys(&paths.join("\n")).await.unwrap();
    eventually("both images' predictions and heat maps", Duration::from_secs(60), || async {
        let maps = browser.find_all(Locator::Css("#classify .classified svg.heatmap")).await.ok()?.len();
        let answered = browser.find_all(Locator::Css("#classify .classified .prediction")).await.ok()?.len();
        (maps == 2 && answered >= 2).then_some(())
    })
    .await;
    let legend = browser.find(Locator::Css("#classify-legend")).await.expect("the heat maps' legend shows");
    let words = legend.text().await.unwrap();
    assert!(words.contains("blue") && words.contains("red"), "the legend says what the colours mean: {words}");
    let card = browser.find(Locator::Css("#classify")).await.unwrap();
    scroll_to(browser, &card).await;
}

/// At 1280 px the classify card spans the page and its two results sit side by side.
async fn results_sit_side_by_side(browser: &Client) {
    let card = rect_of(browser, "#classify").await;
    let page = rect_of(browser, "main.layout").await;
    assert!(card.width() > 0.9 * page.width(), "the classify card ({card:?}) spans the page ({page:?})");
    let first = rect_of(browser, "#classify .classified:nth-child(1)").await;
    let second = rect_of(browser, "#classify .classified:nth-child(2)").await;
    eprintln!("classify card {:.0} px wide; results at {first:?} and {second:?}", card.width());
    assert!((first.top - second.top).abs() < 1.0 && second.left >= first.right, "side by side: {first:?}, {second:?}");
}

/// Pressing a classified image shows it large with its heat map over it and the legend; pressing it
/// again (with the keyboard) shows it small again. `state` names the audited screenshot.
async fn an_image_opens_large_with_its_heat_map_and_legend(browser: &Client, state: &str) {
    const FIGURE: &str = "#classify .classified:nth-child(1) .classified-figure";
    let small = rect_of(browser, &format!("{FIGURE} svg.heatmap")).await;
    let button = format!("{FIGURE} button.figure-button");
    click(browser, &button).await;
    let figure = browser.find(Locator::Css(&button)).await.unwrap();
    assert_eq!(figure.attr("aria-pressed").await.unwrap().as_deref(), Some("true"));
    let large = rect_of(browser, &format!("{FIGURE} svg.heatmap")).await;
    let image = rect_of(browser, &format!("{FIGURE} img.classified-image")).await;
    eprintln!("heat map {:.0} px wide, shown large {:.0} px", small.width(), large.width());
    assert!(large.width() >= 250.0 && large.width() >= 2.5 * small.width(), "large: {large:?}, small: {small:?}");
    assert!(
        (large.top - image.top).abs() <= 1.5 && (large.width() - image.width()).abs() <= 2.5,
        "the map covers the image: {large:?} {image:?}"
    );
    let legend = rect_of(browser, "#classify-legend").await;
    assert!(legend.width() > 0.0, "the legend shows beside the large map");
    fits(browser, state).await;
    figure.send_keys("\u{E007}").await.unwrap();
    eventually("the image small again", Duration::from_secs(5), || async {
        (figure.attr("aria-pressed").await.ok()?.as_deref() == Some("false")).then_some(())
    })
    .await;
    let again = rect_of(browser, &format!("{FIGURE} svg.heatmap")).await;
    assert!((again.width() - small.width()).abs() < 1.0, "Enter showed it small again: {again:?}");
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
async fn on_a_phone_the_first_screen_is_new_run_and_train_runs_classify_and_datasets_are_each_one_tap_away() {
    let OpenPage { browser, _driver, server: _server } = open_ten_class_page(390, 844).await;
    let header = rect_of(&browser, "header.topbar").await;
    let first: String = evaluate(
        &browser,
        "const card = document.elementFromPoint(window.innerWidth / 2, arguments[0] + 30).closest('.card');
         return card ? card.id : '';",
        vec![serde_json::json!(header.bottom)],
    )
    .await;
    let form = rect_of(&browser, "#train-card").await;
    eprintln!("390 x 844: header ends at {:.0} px, New run starts at {:.0} px", header.bottom, form.top);
    assert_eq!(first, "train-card", "the first card under the header is New run (form at {form:?})");
    each_tab_brings_its_card_under_the_header(&browser, "phone-tabs").await;
    let tabs = rect_of(&browser, "#section-tabs").await;
    assert!(tabs.right <= 390.0, "the tabs fit the screen: {tabs:?}");
    browser.close().await.unwrap();
}

#[tokio::test]
async fn at_1280_px_start_is_on_the_first_screen_and_the_tabs_reach_every_card_in_one_click() {
    let OpenPage { browser, _driver, server: _server } = open_ten_class_page(1280, 900).await;
    let screen = window_height(&browser).await;
    let start = rect_of(&browser, "button#start").await;
    let header = rect_of(&browser, "header.topbar").await;
    eprintln!(
        "1280 x 900: Start spans {:.0}-{:.0} px, the header ends at {:.0} px",
        start.top, start.bottom, header.bottom
    );
    assert!(
        start.top >= header.bottom && start.bottom <= screen,
        "Start ({start:?}) is on the first screen ({screen} px)"
    );
    let uncovered: bool = evaluate(
        &browser,
        "const r = document.querySelector('button#start').getBoundingClientRect();
         const under = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
         return !!under && !!under.closest('button#start');",
        Vec::new(),
    )
    .await;
    assert!(uncovered, "nothing covers Start");
    each_tab_brings_its_card_under_the_header(&browser, "desktop-tabs").await;
    browser.close().await.unwrap();
}

/// From the bottom of the page, and back up: each tab of the sticky header shows wherever the page is
/// scrolled, and one click brings its card on screen, under the header (or as far up as the page scrolls).
async fn each_tab_brings_its_card_under_the_header(browser: &Client, state: &str) {
    let screen = window_height(browser).await;
    browser.execute("window.scrollTo(0, document.body.scrollHeight);", Vec::new()).await.unwrap();
    let tabs =
        [("#classify", "Classify"), ("#dataset-health", "Datasets"), ("#runs-card", "Runs"), ("#train-card", "Train")];
    for (card, name) in tabs {
        let link = browser.find(Locator::Css(&format!("#section-tabs a[href='{card}']"))).await.unwrap();
        assert!(link.is_displayed().await.unwrap(), "the {name} tab shows wherever the page is scrolled");
        assert_eq!(link.text().await.unwrap(), name);
        link.click().await.unwrap();
        eventually(&format!("{card} under the header"), Duration::from_secs(5), || async {
            let header = rect_of(browser, "header.topbar").await;
            let shown = rect_of(browser, card).await;
            let at_bottom: bool = evaluate(
                browser,
                "return window.scrollY + window.innerHeight >= document.documentElement.scrollHeight - 1;",
                Vec::new(),
            )
            .await;
            let under_header = shown.top >= header.bottom - 1.0;
            (under_header && (shown.top < screen / 2.0 || at_bottom && shown.top < screen - 100.0)).then_some(())
        })
        .await;
    }
    look_at(browser, state).await;
}
