//! "Find learning rate" in the New run form (issue 13.3), in headless Chromium against a real server, at
//! 1280 x 900 and 390 x 844: the button sweeps the form's config, the curve is drawn with the suggestion
//! marked, and "Use this" writes the suggestion into the learning-rate box; "Stop" ends a sweep part-way,
//! keeping its curve so far and saying why there is no suggestion when too few batches ran. Screenshots:
//! `target/screenshots/lr-finder-*.png`.

use crate::common;

use common::browser::*;
use fantoccini::{Client, Locator};
use std::time::Duration;

/// The number in "Suggested learning rate: 3.16e-3 (steepest fall of the loss)".
fn suggested_rate(sentence: &str) -> f64 {
    let rest = sentence.strip_prefix("Suggested learning rate: ").unwrap_or_else(|| panic!("{sentence:?}"));
    rest.split_whitespace().next().unwrap().parse().unwrap_or_else(|e| panic!("{sentence:?}: {e}"))
}

/// The number of points of the SVG polyline at `css`.
async fn polyline_points(browser: &Client, css: &str) -> usize {
    let line = browser.find(Locator::Css(css)).await.unwrap();
    line.attr("points").await.unwrap().unwrap_or_default().split_whitespace().count()
}

async fn find_the_learning_rate_and_use_it(width: u32, height: u32) {
    let OpenPage { browser, _driver, server: _server } =
        open_browser_with(serve_colors(2, 8, 2, 16).await, width, height, &[]).await;
    set_value(&browser, "input#batch-size", "8").await;
    set_value(&browser, "input#lr", "0.5").await;

    click(&browser, "button#find-lr").await;
    let sentence = eventually("the sweep's suggestion", Duration::from_secs(180), || async {
        text_of(&browser, "#lr-suggestion").await.filter(|t| !t.is_empty())
    })
    .await;
    let suggestion = suggested_rate(&sentence);
    assert!((1e-7..=10.0).contains(&suggestion), "{suggestion}");
    let points = polyline_points(&browser, "#lr-curve polyline.lr-line").await;
    assert!((2..=100).contains(&points), "the curve has one point per batch swept: {points}");
    assert!(browser.find(Locator::Css("#lr-curve circle.lr-suggestion-point")).await.is_ok(), "suggestion marked");
    look_at(&browser, &format!("lr-finder-curve-{width}")).await;

    click(&browser, "button#use-lr").await;
    let typed: f64 = eventually("the suggestion in the learning-rate box", Duration::from_secs(10), || async {
        value_of(&browser, "input#lr").await.parse::<f64>().ok().filter(|lr| *lr != 0.5)
    })
    .await;
    assert!((typed / suggestion - 1.0).abs() < 0.01, "the box holds {typed}, the suggestion is {suggestion}");
    let start = browser.find(Locator::Css("button#start")).await.unwrap();
    assert!(start.is_enabled().await.unwrap(), "the form takes the suggested rate");
    look_at(&browser, &format!("lr-finder-used-{width}")).await;
    browser.close().await.unwrap();
}

#[tokio::test]
async fn find_learning_rate_draws_the_curve_and_use_this_fills_the_box_at_1280_px() {
    find_the_learning_rate_and_use_it(1280, 900).await;
}

#[tokio::test]
async fn find_learning_rate_draws_the_curve_and_use_this_fills_the_box_at_390_px() {
    find_the_learning_rate_and_use_it(390, 844).await;
}

/// The number of batches in "Sweeping: 3 of at most 100 batches", once it is at least `least`.
async fn batches_swept(browser: &Client, least: usize) -> Option<usize> {
    let line = text_of(browser, "#lr-finder-status").await?;
    let done: usize = line.strip_prefix("Sweeping: ")?.split_whitespace().next()?.parse().ok()?;
    (done >= least).then_some(done)
}

async fn stop_a_sweep_part_way(width: u32, height: u32) {
    let OpenPage { browser, _driver, server: _server } =
        open_browser_with(serve_colors(2, 8, 2, 16).await, width, height, &[]).await;
    set_value(&browser, "input#batch-size", "8").await;
    // Large images make each batch slow enough to stop the sweep long before its end.
    set_value(&browser, "input#input-size", "160").await;
    click(&browser, "button#find-lr").await;
    eventually("two batches swept", Duration::from_secs(180), || batches_swept(&browser, 2)).await;
    look_at(&browser, &format!("lr-finder-sweeping-{width}")).await;

    click(&browser, "button#stop-lr").await;
    eventually("the Stop button gone once the sweep answered", Duration::from_secs(60), || async {
        browser.find(Locator::Css("button#stop-lr")).await.is_err().then_some(())
    })
    .await;
    let points = polyline_points(&browser, "#lr-curve polyline.lr-line").await;
    assert!((2..100).contains(&points), "the curve keeps the points swept before the stop: {points}");
    if points < 17 {
        let status = text_of(&browser, "#lr-finder-status").await.unwrap_or_default();
        let expected = format!("The sweep was stopped after {points} of 100 batches, too few to suggest");
        assert!(status.starts_with(&expected), "{status:?}");
        assert!(browser.find(Locator::Css("button#use-lr")).await.is_err(), "nothing to use");
    } else {
        let sentence = text_of(&browser, "#lr-suggestion").await.unwrap_or_default();
        assert!((1e-7..=10.0).contains(&suggested_rate(&sentence)), "{sentence}");
    }
    let find = browser.find(Locator::Css("button#find-lr")).await.unwrap();
    assert!(find.is_enabled().await.unwrap(), "a new sweep can be asked for");
    look_at(&browser, &format!("lr-finder-stopped-{width}")).await;
    browser.close().await.unwrap();
}

#[tokio::test]
async fn stop_ends_a_sweep_part_way_and_keeps_its_curve_at_1280_px() {
    stop_a_sweep_part_way(1280, 900).await;
}

#[tokio::test]
async fn stop_ends_a_sweep_part_way_and_keeps_its_curve_at_390_px() {
    stop_a_sweep_part_way(390, 844).await;
}

#[test]
fn the_suggested_rate_is_read_from_its_sentence() {
    assert_eq!(suggested_rate("Suggested learning rate: 3.16e-3 (steepest fall of the loss)"), 3.16e-3);
}
