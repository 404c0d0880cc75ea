//! The training form speaks plainly (issue 12, points 5 and 10), in headless Chromium against a real server,
//! at 1280 x 900 and 390 x 844: a bad value is named by the form's label, a disabled Start says why with a
//! link to each setting at fault (opening the Advanced part when the setting is in it), a setting that
//! does not apply is hidden, every preset says what it does without hovering, and nothing on the page shows
//! a field identifier. Screenshots: `target/screenshots/form-*.png`.

use crate::common;

use common::browser::*;
use fantoccini::{Client, Locator};
use std::time::Duration;

/// The words of `text` that look like code identifiers: letters or digits joined by an underscore
/// (`batch_size`, `two_phase`).
fn identifiers(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|word| word.trim_matches('_').contains('_'))
        .map(str::to_string)
        .collect()
}

/// The page's visible text.
async fn page_text(browser: &Client) -> String {
    browser.execute("return document.body.innerText;", Vec::new()).await.unwrap().as_str().unwrap_or("").to_string()
}

/// The id of the element that has the keyboard focus.
async fn focused_id(browser: &Client) -> String {
    let id = browser.execute("return document.activeElement && document.activeElement.id;", Vec::new()).await;
    id.unwrap().as_str().unwrap_or("").to_string()
}

/// True when the Advanced part of the form is open.
async fn advanced_open(browser: &Client) -> bool {
    let open = browser.execute("return document.getElementById('advanced').open;", Vec::new()).await.unwrap();
    open.as_bool().unwrap()
}

/// Whether a control with `css` is on the page.
async fn present(browser: &Client, css: &str) -> bool {
    !browser.find_all(Locator::Css(css)).await.unwrap().is_empty()
}

async fn the_form_speaks_plainly(width: u32, height: u32) {
    let server = serve_colors(2, 2, 1, 16).await;
    let long = "a-dataset-whose-name-is-far-longer-than-any-menu-on-a-phone-is-wide";
    common::write_color_dataset(server.data.path(), long, 2, 2, 1, 16);
    let OpenPage { browser, _driver, server: _server } = open_browser_with(server, width, height, &[]).await;
    let size = format!("{width}");

    // A long dataset name may be cut by the menu's width; the menu's title holds the whole choice.
    let menu = eventually("the long-named dataset in the menu", Duration::from_secs(20), || async {
        let menu = browser.find(Locator::Css("select#dataset")).await.ok()?;
        menu.find(Locator::Css(&format!("option[value='{long}']"))).await.ok().map(|_| menu)
    })
    .await;
    menu.select_by_value(long).await.unwrap();
    let chosen = "const menu = document.querySelector('select#dataset'); \
                  return [menu.title, menu.options[menu.selectedIndex].textContent.trim()];";
    let (title, shown): (String, String) = evaluate(&browser, chosen, Vec::new()).await;
    assert!(shown.contains(long), "{shown}");
    assert_eq!(title.trim(), shown, "the title is the chosen dataset's whole label");
    menu.select_by_value("colors").await.unwrap();

    // Every preset says what it does, on the page, without hovering.
    let descriptions = browser.find_all(Locator::Css("button.preset .preset-description")).await.unwrap();
    assert_eq!(descriptions.len(), 4);
    for description in &descriptions {
        assert!(description.is_displayed().await.unwrap());
        let words = description.text().await.unwrap();
        assert!(words.len() > 20 && words.ends_with('.'), "a one-line description: {words:?}");
    }

    // A bad batch size is named by its label, and Start says why it is disabled.
    set_value(&browser, "input#batch-size", "0").await;
    let message = eventually("the batch size message", Duration::from_secs(10), || async {
        text_of(&browser, "#batch-size-error").await.filter(|t| !t.is_empty())
    })
    .await;
    assert_eq!(message, "Batch size must be between 1 and 4096, got 0");
    let start = browser.find(Locator::Css("button#start")).await.unwrap();
    assert!(!start.is_enabled().await.unwrap());
    let why = text_of(&browser, "#start-why").await.unwrap();
    assert_eq!(why, "Start needs a change to: Batch size");
    look_at(&browser, &format!("form-bad-batch-size-{size}")).await;

    // The link puts the cursor in the batch size box.
    click(&browser, "#start-why a[data-field='batch_size']").await;
    assert_eq!(focused_id(&browser).await, "batch-size");
    set_value(&browser, "input#batch-size", "16").await;
    eventually("Start enabled again", Duration::from_secs(10), || async {
        start.is_enabled().await.unwrap().then_some(())
    })
    .await;

    // A setting at fault inside the closed Advanced part: its link opens the part and focuses it.
    click(&browser, "#advanced summary").await;
    set_value(&browser, "input#label-smoothing", "1").await;
    click(&browser, "#advanced summary").await;
    assert!(!advanced_open(&browser).await);
    let link = "#start-why a[data-field='label_smoothing']";
    let label =
        eventually("the label smoothing link", Duration::from_secs(10), || async { text_of(&browser, link).await })
            .await;
    assert_eq!(label, "Label smoothing");
    click(&browser, link).await;
    assert!(advanced_open(&browser).await, "the link opened the Advanced part");
    assert_eq!(focused_id(&browser).await, "label-smoothing");
    set_value(&browser, "input#label-smoothing", "0").await;

    // Step size and drop factor show only with the step schedule; GPU options never on this CPU server.
    let schedule = browser.find(Locator::Css("select#schedule")).await.unwrap();
    schedule.select_by_value("step").await.unwrap();
    eventually("the step size box", Duration::from_secs(10), || async {
        present(&browser, "input#step-size").await.then_some(())
    })
    .await;
    assert!(present(&browser, "input#gamma").await);
    look_at(&browser, &format!("form-step-schedule-{size}")).await;
    schedule.select_by_value("constant").await.unwrap();
    eventually("the step size box hidden", Duration::from_secs(10), || async {
        (!present(&browser, "input#step-size").await).then_some(())
    })
    .await;
    assert!(!present(&browser, "input#gamma").await);
    assert!(!present(&browser, "input#mixed-precision").await, "GPU options are hidden on a CPU server");
    assert!(!present(&browser, "input#frozen-epochs").await, "frozen epochs only in two-phase mode");

    // Two-phase fine-tuning from random weights is refused in words, with the mode's label, not its value.
    browser.find(Locator::Css("select#weights")).await.unwrap().select_by_value("none").await.unwrap();
    browser.find(Locator::Css("select#mode")).await.unwrap().select_by_value("two_phase").await.unwrap();
    let refusal = eventually("the mode message", Duration::from_secs(10), || async {
        text_of(&browser, "#mode-error").await.filter(|t| !t.is_empty())
    })
    .await;
    assert!(refusal.starts_with("Fine-tune mode \"Two-phase: head, then all layers\" needs"), "{refusal}");
    assert!(present(&browser, "input#frozen-epochs").await, "frozen epochs show in two-phase mode");
    look_at(&browser, &format!("form-two-phase-{size}")).await;

    let text = page_text(&browser).await;
    assert_eq!(identifiers(&text), Vec::<String>::new(), "the page shows field identifiers");
    browser.close().await.unwrap();
}

#[tokio::test]
async fn the_form_speaks_plainly_at_1280_px() {
    the_form_speaks_plainly(1280, 900).await;
}

#[tokio::test]
async fn the_form_speaks_plainly_at_390_px() {
    the_form_speaks_plainly(390, 844).await;
}

#[test]
fn identifiers_are_words_joined_by_underscores() {
    assert_eq!(identifiers("Batch size must be between 1 and 4096"), Vec::<String>::new());
    assert_eq!(identifiers("batch_size must be, mode two_phase."), ["batch_size", "two_phase"]);
    assert_eq!(identifiers("a __ b _x"), Vec::<String>::new());
}

/// A first visit to a studio without ImageNet's weights and without network (issue 30, point 3): the page
/// says so beside the weights menu before Start, has already chosen weights that work, and the first run
/// trains instead of failing.
async fn the_first_run_works_offline(width: u32, height: u32) {
    let data = tempfile::tempdir().unwrap();
    common::write_color_dataset(data.path(), "colors", 2, 4, 2, 32);
    // No stand-in ImageNet file: its address is a closed local port, as without network.
    let server = common::TestServer::start_with(data, |_| {}, Some(built_page())).await;
    let OpenPage { browser, _driver, server } = open_browser_with(server, width, height, &[]).await;
    let note = eventually("the offline note", Duration::from_secs(30), || async {
        text_of(&browser, "#weights-offline").await
    })
    .await;
    assert!(note.contains("cannot be downloaded from here") && note.contains("resnet18-f37072fd.pth"), "{note}");
    assert_eq!(value_of(&browser, "select#weights").await, "none", "random weights are chosen");
    let option = text_of(&browser, "select#weights option[value='imagenet']").await.unwrap_or_default();
    assert!(option.contains("not available without network"), "{option}");
    look_at(&browser, &format!("form-offline-{width}")).await;
    let id = start_run(&browser, "1").await;
    let run = server.wait_until_finished(id).await;
    assert_eq!(run.status, shared::RunStatus::Completed, "{:?}", run.error);
    assert_eq!(run.config.weights, "none");
}

#[tokio::test]
async fn the_first_run_works_offline_at_1280_px() {
    the_first_run_works_offline(1280, 900).await;
}

#[tokio::test]
async fn the_first_run_works_offline_at_390_px() {
    the_first_run_works_offline(390, 844).await;
}
