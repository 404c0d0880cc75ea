//! Hyperparameter sweeps on the page (issue 26, point 4), in headless Chromium against a real server with
//! real training on a tiny dataset: at 1280 x 900, "Sweep these settings" on the New run form opens the
//! editor, two learning rates make two trials (shown before Start), the leaderboard fills with both trials
//! completed and a best result, the learning curves and the parallel-coordinates plot draw a line per
//! trial, "Open the best run" shows the best trial's run, and "Use the best settings" writes the best
//! learning rate into the form; at 390 x 844 the editor
//! names the problem of an empty list of values with Start disabled, and the editor and a sweep's view fit
//! the phone's width. Screenshots: `target/screenshots/sweeps-*.png`.

use crate::common;

use common::browser::*;
use fantoccini::{Client, Locator};
use std::time::Duration;

/// A server over a two-class colour dataset of 16 px images and a browser `width` x `height` showing its
/// page once it is connected.
async fn open_connected_page(width: u32, height: u32) -> OpenPage {
    let page = open_browser_with(serve_colors(2, 8, 2, 16).await, width, height, &[]).await;
    eventually("the page to connect", Duration::from_secs(30), || async {
        text_of(&page.browser, "#connection").await.filter(|t| t == "Connected")
    })
    .await;
    page
}

/// Opens the sweep editor from the New run form (one epoch, the rest as a first visit fills it), names the
/// sweep `name` and varies the learning rate over `values`.
async fn edit_a_sweep_of_the_form(browser: &Client, name: &str, values: &str) {
    set_value(browser, "input#epochs", "1").await;
    click(browser, "button#sweep-form").await;
    eventually("the sweep editor", Duration::from_secs(10), || async {
        browser.find(Locator::Css("#sweep-editor")).await.ok()
    })
    .await;
    set_value(browser, "#sweep-name", name).await;
    let add = browser.find(Locator::Css("select#sweep-add")).await.unwrap();
    scroll_to(browser, &add).await;
    add.select_by_value("lr").await.unwrap();
    let values_box = "input#sweep-values-lr";
    eventually("the learning rate's values box", Duration::from_secs(10), || async {
        browser.find(Locator::Css(values_box)).await.ok()
    })
    .await;
    set_value(browser, values_box, values).await;
}

/// The problems the editor lists under the trial count.
async fn problems_shown(browser: &Client) -> Vec<String> {
    evaluate(
        browser,
        "return Array.from(document.querySelectorAll('#sweep-problems li')).map(li => li.textContent.trim());",
        Vec::new(),
    )
    .await
}

/// What the leaderboard's rows say, top to bottom: each row's status, and its best result's text.
async fn leaderboard(browser: &Client) -> Vec<(String, String)> {
    evaluate(
        browser,
        "return Array.from(document.querySelectorAll('#sweep-leaderboard tbody tr.trial-row'))
             .map(tr => [tr.dataset.status, tr.querySelector('td.trial-best').textContent.trim()]);",
        Vec::new(),
    )
    .await
}

/// Waits until the shown sweep has `trials` completed trials, each with a result, and says it is completed.
async fn sweep_completes(browser: &Client, trials: usize) -> Vec<(String, String)> {
    let rows =
        eventually(&format!("{trials} completed trials on the leaderboard"), Duration::from_secs(180), || async {
            let rows = leaderboard(browser).await;
            let done =
                rows.len() == trials && rows.iter().all(|(status, best)| status == "completed" && best.ends_with('%'));
            done.then_some(rows)
        })
        .await;
    eventually("the sweep's status: completed", Duration::from_secs(30), || async {
        // The badge is written in capitals by style.css.
        text_of(browser, "#sweep-status").await.filter(|status| status.eq_ignore_ascii_case("completed"))
    })
    .await;
    rows
}

/// How many elements the page has at `css`.
async fn count(browser: &Client, css: &str) -> usize {
    browser.find_all(Locator::Css(css)).await.unwrap().len()
}

/// The number of points of each SVG polyline at `css`.
async fn points_of(browser: &Client, css: &str) -> Vec<usize> {
    let mut counts = Vec::new();
    for line in browser.find_all(Locator::Css(css)).await.unwrap() {
        counts.push(line.attr("points").await.unwrap().unwrap_or_default().split_whitespace().count());
    }
    counts
}

/// The learning rate in "Best: 75.0 % test accuracy, trial 2 (lr = 0.01)".
fn best_learning_rate(line: &str) -> f64 {
    let value = line.split("lr = ").nth(1).unwrap_or_else(|| panic!("{line:?}"));
    value.trim_end_matches(')').parse().unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

#[tokio::test]
async fn at_1280_px_a_sweep_of_two_learning_rates_fills_its_leaderboard_and_charts_and_its_best_settings_fill_the_form()
{
    let OpenPage { browser, _driver, server: _server } = open_connected_page(1280, 900).await;
    edit_a_sweep_of_the_form(&browser, "desktop sweep", "0.01, 0.001").await;
    let shown = eventually("the trial count", Duration::from_secs(10), || async {
        text_of(&browser, "#sweep-summary").await.filter(|t| t.starts_with("2 trials"))
    })
    .await;
    assert_eq!(shown, "2 trials: 2 trials × 1 epoch = 2 epochs at most");
    assert_eq!(problems_shown(&browser).await, Vec::<String>::new());
    let start = browser.find(Locator::Css("button#start-sweep")).await.unwrap();
    assert!(start.is_enabled().await.unwrap(), "a sweep without problems can start");
    look_at(&browser, "sweeps-editor-1280").await;

    click(&browser, "button#start-sweep").await;
    eventually("the editor closed and the sweep shown", Duration::from_secs(30), || async {
        let title = text_of(&browser, "#sweep-title").await?;
        (title.ends_with("desktop sweep") && browser.find(Locator::Css("#sweep-editor")).await.is_err()).then_some(())
    })
    .await;
    let rows = sweep_completes(&browser, 2).await;
    let best_line = text_of(&browser, "#sweep-best").await.unwrap();
    assert!(best_line.starts_with(&format!("Best: {} test accuracy, trial ", rows[0].1)), "{best_line:?}, {rows:?}");
    let listed = text_of(&browser, "#sweep-list li.selected").await.unwrap();
    assert!(listed.contains("desktop sweep") && listed.contains("2 of 2 trials done"), "{listed:?}");

    assert_eq!(points_of(&browser, "#sweep-curves polyline.trial-curve").await, [1, 1], "one epoch per trial's curve");
    assert_eq!(count(&browser, "#sweep-parallel g.pc-axis").await, 2, "the learning rate's axis and the metric's");
    assert_eq!(points_of(&browser, "#sweep-parallel polyline.pc-line").await, [2, 2], "each trial crosses both axes");
    let charts = browser.find(Locator::Css("#sweep-curves")).await.unwrap();
    scroll_to(&browser, &charts).await;
    look_at(&browser, "sweeps-view-1280").await;

    let best_trial = best_line.split("trial ").nth(1).and_then(|rest| rest.split_whitespace().next()).unwrap();
    click(&browser, "button#open-best").await;
    let opened = format!("desktop sweep · trial {best_trial}");
    eventually("the best run chosen in the list and shown in its panel", Duration::from_secs(10), || async {
        let listed = text_of(&browser, "#runs li.selected .run-name").await?;
        let panel = text_of(&browser, "#trial-of").await?;
        (listed == opened && panel.starts_with(&format!("Trial {best_trial} of sweep #"))).then_some(())
    })
    .await;

    let best_lr = best_learning_rate(&best_line);
    click(&browser, "button#use-best").await;
    let typed: f64 = eventually("the best learning rate in the form", Duration::from_secs(10), || async {
        value_of(&browser, "input#lr").await.parse::<f64>().ok().filter(|lr| (lr - best_lr).abs() < 1e-12)
    })
    .await;
    assert_eq!(typed, best_lr);
    assert_eq!(value_of(&browser, "input#epochs").await, "1", "the rest of the trial's settings came along");
    browser.close().await.unwrap();
}

/// The page's widest element beyond the window's right edge, if anything makes the page scroll sideways.
async fn sideways_overflow(browser: &Client) -> Option<String> {
    evaluate(
        browser,
        "const width = document.documentElement.clientWidth;
         if (document.documentElement.scrollWidth <= width) return null;
         const wide = Array.from(document.querySelectorAll('body *'))
             .filter(el => el.getBoundingClientRect().right > width + 1 && !el.closest('.table-wrap, .sweep-parallel-box'));
         return wide.length ? wide[wide.length - 1].outerHTML.slice(0, 160) : 'the page scrolls sideways';",
        Vec::new(),
    )
    .await
}

/// Fails unless the element at `css` is shown whole across the window's width once scrolled to.
async fn visible_across(browser: &Client, css: &str) {
    let element = browser.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
    scroll_to(browser, &element).await;
    assert!(element.is_displayed().await.unwrap(), "{css} shows");
    let (left, right, width): (f64, f64, f64) = evaluate(
        browser,
        "const r = arguments[0].getBoundingClientRect(); return [r.left, r.right, document.documentElement.clientWidth];",
        vec![serde_json::to_value(&element).unwrap()],
    )
    .await;
    assert!(left >= 0.0 && right <= width, "{css} spans {left}-{right} of {width} px");
}

#[tokio::test]
async fn at_390_px_the_editor_names_an_empty_list_with_start_disabled_and_the_editor_and_sweep_fit_the_width() {
    let OpenPage { browser, _driver, server: _server } = open_connected_page(390, 844).await;
    edit_a_sweep_of_the_form(&browser, "phone sweep", "").await;
    let problems = eventually("the empty list's problem", Duration::from_secs(10), || async {
        let problems = problems_shown(&browser).await;
        problems.iter().any(|p| p == "lr: values is empty; list at least one").then_some(problems)
    })
    .await;
    assert_eq!(problems, ["lr: values is empty; list at least one"]);
    assert_eq!(text_of(&browser, "#sweep-trial-count").await.as_deref(), Some("No trials yet"));
    let start = browser.find(Locator::Css("button#start-sweep")).await.unwrap();
    assert!(!start.is_enabled().await.unwrap(), "Start waits for the problem to be fixed");
    for control in ["select#sweep-add", "input#sweep-values-lr", "select#sweep-method", "button#start-sweep"] {
        visible_across(&browser, control).await;
    }
    assert_eq!(sideways_overflow(&browser).await, None);
    look_at(&browser, "sweeps-editor-390").await;

    set_value(&browser, "input#sweep-values-lr", "0.01").await;
    eventually("Start enabled", Duration::from_secs(10), || async { start.is_enabled().await.ok().filter(|on| *on) })
        .await;
    click(&browser, "button#start-sweep").await;
    eventually("the phone's sweep shown", Duration::from_secs(30), || async {
        text_of(&browser, "#sweep-title").await.filter(|title| title.ends_with("phone sweep"))
    })
    .await;
    sweep_completes(&browser, 1).await;
    for control in ["#sweep-curves", "button#use-best", "button#open-best", "button#delete-sweep"] {
        visible_across(&browser, control).await;
    }
    assert_eq!(sideways_overflow(&browser).await, None);
    look_at(&browser, "sweeps-view-390").await;
    browser.close().await.unwrap();
}
