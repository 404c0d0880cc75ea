//! Browser tests of a run's analysis and of the comparison of runs (issue 12, points 4 and 8), each at
//! 1280x900 and at 390x844: a confusion cell opens its test images in place, in view and without
//! scrolling the page, takes focus, and Escape gives focus back; ticked runs, each checkbox labelled
//! with its run, are compared in an accuracy and a loss chart and a table of only the settings that differ.
//!
//! Runs are started through the API (the form is tested elsewhere) on a small colour dataset.

use crate::common;

use common::browser::*;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, Locator};
use serde_json::json;
use std::time::Duration;

/// The desktop window.
const DESKTOP: (u32, u32) = (1280, 900);
/// A phone's window.
const PHONE: (u32, u32) = (390, 844);

/// The settings of the two runs: they differ in epochs, batch size and learning rate only.
fn two_configs() -> [serde_json::Value; 2] {
    [
        json!({"dataset": "colors", "epochs": 1, "batch_size": 4, "lr": 0.01, "seed": 3}),
        json!({"dataset": "colors", "epochs": 2, "batch_size": 8, "lr": 0.05, "seed": 3}),
    ]
}

/// The form's ids of the settings that differ between [`two_configs`], in the configuration's order.
const DIFFERING_INPUTS: [&str; 3] = ["epochs", "batch-size", "lr"];

/// A browser in a `width` x `height` window showing two finished runs of [`two_configs`].
async fn two_finished_runs((width, height): (u32, u32)) -> (OpenPage, [u64; 2]) {
    let server = serve_colors(4, 12, 4, 32).await;
    let [first, second] = two_configs();
    let ids = [server.create_run(first).await, server.create_run(second).await];
    for id in ids {
        assert_eq!(server.wait_until_finished(id).await.status, shared::RunStatus::Completed);
    }
    let page = open_browser(server).await;
    // Chromium's --window-size keeps a window at least 500 px wide; resizing it afterwards does not.
    page.browser.set_window_size(width, height).await.unwrap();
    let inner = page.browser.execute("return window.innerWidth;", Vec::new()).await.unwrap();
    assert_eq!(inner.as_f64(), Some(f64::from(width)), "the page is {width} CSS pixels wide");
    list_shows(&page.browser, &[ids[1], ids[0]]).await;
    (page, ids)
}

async fn scroll_y(browser: &Client) -> f64 {
    browser.execute("return window.scrollY;", Vec::new()).await.unwrap().as_f64().unwrap()
}

/// True once the drill-down's first test image has loaded and is the topmost thing at its own centre,
/// inside the window: a person sees it without scrolling.
async fn first_cell_image_in_view(browser: &Client) -> bool {
    let seen = browser
        .execute(
            r#"const image = document.querySelector('#cell-panel #cell-images img.test-image');
            if (!image || !image.complete || image.naturalWidth === 0) return false;
            const r = image.getBoundingClientRect();
            if (r.top < 0 || r.left < 0 || r.bottom > innerHeight || r.right > innerWidth) return false;
            return document.elementFromPoint((r.left + r.right) / 2, (r.top + r.bottom) / 2) === image;"#,
            Vec::new(),
        )
        .await
        .unwrap();
    seen == json!(true)
}

/// True when keyboard focus is on `element` itself.
async fn has_focus(browser: &Client, element: &fantoccini::elements::Element) -> bool {
    let target = serde_json::to_value(element).unwrap();
    browser.execute("return document.activeElement === arguments[0];", vec![target]).await.unwrap() == json!(true)
}

async fn focus_is_inside(browser: &Client, css: &str) -> bool {
    let script = format!("return !!document.activeElement?.closest({css:?});");
    browser.execute(&script, Vec::new()).await.unwrap() == json!(true)
}

/// Presses and releases Escape wherever focus is, as a person does.
async fn press_escape(browser: &Client) {
    let escape = KeyActions::new("keyboard".to_string())
        .then(KeyAction::Down { value: Key::Escape.into() })
        .then(KeyAction::Up { value: Key::Escape.into() });
    browser.perform_actions(escape).await.unwrap();
}

/// Clicks the control at `css` (scrolled to the middle of the window first) and checks that its test
/// images open in view without the page scrolling, with focus in the panel; Escape then closes the panel
/// and gives focus back to the control.
async fn drills_down_in_place(browser: &Client, css: &str, screenshot: &str) {
    let opener =
        eventually(css, Duration::from_secs(20), || async { browser.find(Locator::Css(css)).await.ok() }).await;
    scroll_to(browser, &opener).await;
    let before = scroll_y(browser).await;
    opener.click().await.unwrap();
    eventually("the test images in view", Duration::from_secs(20), || async {
        first_cell_image_in_view(browser).await.then_some(())
    })
    .await;
    assert_eq!(scroll_y(browser).await, before, "opening the drill-down scrolled the page");
    assert!(focus_is_inside(browser, "#cell-panel").await, "focus moved into the panel");
    look_at(browser, screenshot).await;

    press_escape(browser).await;
    eventually("the panel to close", Duration::from_secs(10), || async {
        browser.find(Locator::Css("#cell-panel")).await.is_err().then_some(())
    })
    .await;
    assert!(has_focus(browser, &opener).await, "focus went back to {css}");
    assert_eq!(scroll_y(browser).await, before, "closing the drill-down scrolled the page");
}

async fn a_confusion_cell_and_a_confused_pair_open_their_images_in_place((width, height): (u32, u32)) {
    let (OpenPage { browser, _driver, server }, [_, shown]) = two_finished_runs((width, height)).await;
    eventually("the newest run's confusion matrix", Duration::from_secs(20), || async {
        browser.find(Locator::Css("table#confusion td.cell button.cell-button")).await.ok()
    })
    .await;
    let name = format!("analysis-drill-down-{width}");
    drills_down_in_place(&browser, "table#confusion td.cell button.cell-button", &format!("{name}-cell")).await;

    // A pair is listed when the best epoch made a mistake; it opens the same panel.
    let run = server.studio.run(shown).unwrap();
    // The page's best epoch is the first of equals; `max_by` keeps the last, hence `rev`.
    let best = run.epochs.iter().rev().max_by(|a, b| a.test_accuracy.total_cmp(&b.test_accuracy)).unwrap();
    let mistakes =
        best.confusion.iter().enumerate().any(|(i, row)| row.iter().enumerate().any(|(j, &n)| i != j && n > 0));
    if mistakes {
        drills_down_in_place(&browser, "#confused-pairs button", &format!("{name}-pair")).await;
    } else {
        assert!(browser.find(Locator::Css("#confused-pairs")).await.is_err(), "no mistake, no pair");
    }
    browser.close().await.unwrap();
}

#[tokio::test]
async fn at_1280_px_a_confusion_cell_opens_its_images_beside_the_matrix_and_escape_closes_them() {
    a_confusion_cell_and_a_confused_pair_open_their_images_in_place(DESKTOP).await;
}

#[tokio::test]
async fn at_390_px_a_confusion_cell_opens_its_images_over_the_matrix_and_escape_closes_them() {
    a_confusion_cell_and_a_confused_pair_open_their_images_in_place(PHONE).await;
}

/// Each chart's lines as drawn: (run id, points, stroke colour).
type Lines = Vec<(String, usize, String)>;

/// The accuracy and loss charts, the legend and the differing-settings table, read in one go (the card
/// is redrawn whenever a run changes).
async fn comparison(browser: &Client) -> (Lines, Lines, Vec<String>, Vec<Vec<String>>) {
    let drawn = browser
        .execute(
            r#"const lines = id => Array.from(document.querySelectorAll(`#${id} polyline.compare-line`), line =>
                [line.dataset.runId, line.getAttribute('points').trim().split(/\s+/).filter(Boolean).length,
                 line.style.stroke]);
            const text = el => el.textContent.replace(/\s+/g, ' ').trim();
            return [
                lines('compare-accuracy'),
                lines('compare-loss'),
                Array.from(document.querySelectorAll('.compare-legend li.compare-entry'), text),
                Array.from(document.querySelectorAll('#compare-settings tbody tr'),
                    row => Array.from(row.querySelectorAll('th, td'), text)),
            ];"#,
            Vec::new(),
        )
        .await
        .unwrap();
    serde_json::from_value(drawn).unwrap()
}

/// The visible text of the label of run `id`'s compare checkbox, if it has exactly one label.
async fn compare_label(browser: &Client, id: u64) -> Option<String> {
    let script = format!(
        "const box = document.querySelector(\"#runs li[data-run-id='{id}'] input.compare\");
         return box && box.labels.length === 1 ? box.labels[0].innerText.replace(/\\s+/g, ' ').trim() : null;"
    );
    serde_json::from_value(browser.execute(&script, Vec::new()).await.unwrap()).unwrap()
}

async fn ticked_runs_are_compared_by_accuracy_loss_and_differing_settings((width, height): (u32, u32)) {
    let (OpenPage { browser, _driver, server: _server }, [first, second]) = two_finished_runs((width, height)).await;
    for id in [first, second] {
        assert_eq!(compare_label(&browser, id).await.as_deref(), Some(format!("Compare run {id}").as_str()));
    }
    // Ticked by their labels, as a person taps them.
    click(&browser, &format!("label[for='compare-{first}']")).await;
    assert!(browser.find(Locator::Css("#compare-accuracy")).await.is_err(), "one ticked run is nothing to compare");
    click(&browser, &format!("label[for='compare-{second}']")).await;

    let (accuracy, loss, legend, table) = eventually("two runs compared", Duration::from_secs(10), || async {
        let drawn = comparison(&browser).await;
        (drawn.0.len() == 2 && drawn.1.len() == 2).then_some(drawn)
    })
    .await;
    // One point per finished epoch, one colour per run, the same in both charts.
    let points: Vec<(String, usize)> = accuracy.iter().map(|(id, n, _)| (id.clone(), *n)).collect();
    assert_eq!(points, [(first.to_string(), 1), (second.to_string(), 2)]);
    assert_eq!(accuracy, loss, "the loss chart has the same runs, points and colours");
    assert_ne!(accuracy[0].2, accuracy[1].2, "each run has its own colour");
    assert_eq!(legend.len(), 2, "{legend:?}");
    assert!(legend[0].starts_with(&format!("Run #{first} — colors")), "{legend:?}");
    assert!(legend[1].starts_with(&format!("Run #{second} — colors")), "{legend:?}");

    // Exactly the settings that differ, named as the form names them, with each run's value.
    let labels = browser
        .execute(
            "return arguments[0].map(id => document.querySelector(`label[for='${id}']`)?.textContent.trim());",
            vec![json!(DIFFERING_INPUTS)],
        )
        .await
        .unwrap();
    let expected: Vec<String> = serde_json::from_value(labels).expect("the form labels each differing setting");
    let settings: Vec<&str> = table.iter().map(|row| row[0].as_str()).collect();
    assert_eq!(settings, expected, "{table:?}");
    let values: Vec<&[String]> = table.iter().map(|row| &row[1..]).collect();
    assert_eq!(values, [["1", "2"], ["4", "8"], ["0.01", "0.05"]]);
    look_at(&browser, &format!("analysis-compare-{width}")).await;
    browser.close().await.unwrap();
}

#[tokio::test]
async fn at_1280_px_ticked_runs_are_compared_by_accuracy_loss_and_the_settings_that_differ() {
    ticked_runs_are_compared_by_accuracy_loss_and_differing_settings(DESKTOP).await;
}

#[tokio::test]
async fn at_390_px_ticked_runs_are_compared_by_accuracy_loss_and_the_settings_that_differ() {
    ticked_runs_are_compared_by_accuracy_loss_and_differing_settings(PHONE).await;
}
