//! The page at every width a person uses (issue 12, points 5, 6 and 11), in headless Chromium against a
//! real server with real training: chart text (the training chart, the comparison charts, the learning-
//! rate curve) is drawn at 11 px or more from 320 to 1400 px wide, and every choice of every menu in the
//! New run form reads in full in its closed menu at 390 and 1280 px. Screenshots:
//! `target/screenshots/widths-*.png`.

use crate::common;

use common::browser::*;
use fantoccini::Client;
use serde::Deserialize;
use std::time::Duration;

/// The smallest size chart text may be drawn at, in CSS pixels.
const SMALLEST_CHART_TEXT_PX: f64 = 11.0;

/// One SVG text as drawn: its size (CSS font size times the SVG's scale on screen), what it says and
/// the chart it is in.
#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "every field is read through Debug, in the failure message")]
struct DrawnText {
    size: f64,
    text: String,
    chart: String,
}

/// Every text element of every visible chart, with its size as drawn.
const CHART_TEXTS: &str = r#"
    return Array.from(document.querySelectorAll('svg text')).filter(t => t.getClientRects().length > 0)
        .map(t => {
            const matrix = t.getScreenCTM();
            const scale = matrix ? Math.hypot(matrix.a, matrix.b) : 1;
            const svg = t.closest('svg');
            return { size: parseFloat(getComputedStyle(t).fontSize) * scale, text: t.textContent.trim(),
                     chart: svg.id || (svg.parentElement && svg.parentElement.id) || '' };
        });
"#;

/// Resizes the window to `width` x 900 and waits until every chart's text is drawn at 11 px or more
/// (each chart follows its drawn width through a ResizeObserver, a frame after the resize); fails with
/// the smallest texts otherwise.
async fn chart_text_fits_at(browser: &Client, width: u32, charts: &[&str]) {
    browser.set_window_size(width, 900).await.unwrap();
    let inner: f64 = evaluate(browser, "return window.innerWidth;", Vec::new()).await;
    assert_eq!(inner, f64::from(width), "the page is {width} CSS pixels wide");
    let (mut shown, mut small) = (false, Vec::new());
    for _ in 0..50 {
        let texts: Vec<DrawnText> = evaluate(browser, CHART_TEXTS, Vec::new()).await;
        shown = charts.iter().all(|chart| texts.iter().any(|t| t.chart == *chart));
        small = texts.into_iter().filter(|t| t.size < SMALLEST_CHART_TEXT_PX - 0.01).collect();
        if shown && small.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(shown, "at {width} px every chart of {charts:?} shows");
    assert!(small.is_empty(), "at {width} px chart text is drawn under 11 px: {small:#?}");
    browser.execute("window.scrollTo(0, 0);", Vec::new()).await.unwrap();
    look_at(browser, &format!("widths-charts-{width}")).await;
}

/// Sweeps the learning rate from the form and waits for the curve with its suggestion.
async fn find_the_learning_rate(browser: &Client) {
    set_value(browser, "input#batch-size", "8").await;
    click(browser, "button#find-lr").await;
    eventually("the sweep's suggestion", Duration::from_secs(180), || async {
        text_of(browser, "#lr-suggestion").await.filter(|t| !t.is_empty())
    })
    .await;
}

#[tokio::test]
async fn chart_text_is_drawn_at_11_px_or_more_at_every_width_from_320_to_1400_px() {
    let OpenPage { browser, _driver, server: _server } = open_page(2, 8, 2, 16).await;
    find_the_learning_rate(&browser).await;
    let first = start_run(&browser, "1").await;
    completed_on_page(&browser, first).await;
    let second = start_run(&browser, "2").await;
    completed_on_page(&browser, second).await;
    click(&browser, &format!("#runs li[data-run-id='{second}'] button.run-button")).await;
    for id in [first, second] {
        click(&browser, &format!("#runs li[data-run-id='{id}'] input.compare")).await;
    }
    let charts = ["chart", "compare-accuracy", "compare-loss", "lr-curve"];
    // 861 - 1020 px is where the two-column layout drew the charts smallest.
    for width in [320, 390, 900, 1000, 1280, 1400] {
        chart_text_fits_at(&browser, width, &charts).await;
    }
    browser.close().await.unwrap();
}

/// A choice of a menu whose label does not fit its closed menu: the menu, the label, and the widths.
#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "every field is read through Debug, in the failure message")]
struct CutChoice {
    menu: String,
    label: String,
    text: f64,
    room: f64,
}

/// Every option of every visible menu whose label is wider than the room its closed menu gives the
/// chosen label (its inner width less its padding and the arrow), measured in the menu's own font.
const CUT_CHOICES: &str = r#"
    const ARROW_PX = 24;
    const context = document.createElement('canvas').getContext('2d');
    const cut = [];
    for (const menu of document.querySelectorAll('select')) {
        if (!menu.checkVisibility()) continue;
        const style = getComputedStyle(menu);
        context.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
        const room = menu.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) - ARROW_PX;
        for (const option of menu.options) {
            const text = context.measureText(option.text).width;
            if (text > room) cut.push({ menu: menu.id, label: option.text, text, room });
        }
    }
    return cut;
"#;

async fn every_choice_reads_in_full(width: u32, height: u32) {
    let OpenPage { browser, _driver, server: _server } =
        open_browser_with(serve_colors(2, 8, 2, 16).await, width, height, &[]).await;
    click(&browser, "details#advanced > summary").await;
    let menus: usize = evaluate(&browser, "return document.querySelectorAll('select').length;", Vec::new()).await;
    assert!(menus >= 4, "the form has its menus: {menus}");
    let cut: Vec<CutChoice> = evaluate(&browser, CUT_CHOICES, Vec::new()).await;
    assert!(cut.is_empty(), "at {width} px, choices cut off in their menus: {cut:#?}");
    look_at(&browser, &format!("widths-menus-{width}")).await;
    browser.close().await.unwrap();
}

#[tokio::test]
async fn every_choice_of_every_menu_reads_in_full_at_390_px() {
    every_choice_reads_in_full(390, 844).await;
}

#[tokio::test]
async fn every_choice_of_every_menu_reads_in_full_at_1280_px() {
    every_choice_reads_in_full(1280, 900).await;
}
