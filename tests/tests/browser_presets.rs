//! The preset buttons of the New run form in headless Chromium against a real server (issue 30, point 5):
//! a preset shows as pressed while the form holds its recipe, an edit of a setting the preset sets
//! un-presses it, an edit of one it keeps (dataset, seed, input size, weights) does not, and neither
//! hovering nor focusing a preset can pass for pressed. Screenshot: `target/screenshots/presets.png`.

use crate::common;

use common::browser::*;
use fantoccini::actions::{InputSource, MouseActions, PointerAction};
use fantoccini::{Client, Locator};
use serde::Deserialize;
use std::time::Duration;

const QUICK_CHECK: &str = "button.preset[data-preset='quick-check']";
const SEED_RECIPE: &str = "button.preset[data-preset='seed-recipe']";

async fn pressed(browser: &Client, css: &str) -> bool {
    let button = browser.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
    button.attr("aria-pressed").await.unwrap().as_deref() == Some("true")
}

/// Waits until the preset at `css` shows as `expected` (pressed or not).
async fn shows_pressed(browser: &Client, css: &str, expected: bool) {
    eventually(&format!("{css} pressed: {expected}"), Duration::from_secs(5), || async {
        (pressed(browser, css).await == expected).then_some(())
    })
    .await;
}

/// How a preset button is drawn: what tells a pressed one apart.
#[derive(Debug, PartialEq, Deserialize)]
struct Look {
    background: String,
    shadow: String,
    /// The mark before its title (a tick when pressed).
    mark: String,
}

async fn look_of(browser: &Client, css: &str) -> Look {
    let button = browser.find(Locator::Css(css)).await.unwrap();
    evaluate(
        browser,
        "const style = getComputedStyle(arguments[0]);
         const mark = getComputedStyle(arguments[0].querySelector('.preset-title'), '::before').content;
         return { background: style.backgroundColor, shadow: style.boxShadow, mark };",
        vec![serde_json::to_value(&button).unwrap()],
    )
    .await
}

#[tokio::test]
async fn a_preset_is_pressed_until_a_setting_it_sets_is_edited_and_hover_or_focus_never_look_pressed() {
    let OpenPage { browser, _driver, server: _server } = open_page(2, 8, 2, 16).await;
    click(&browser, QUICK_CHECK).await;
    shows_pressed(&browser, QUICK_CHECK, true).await;
    assert!(!pressed(&browser, SEED_RECIPE).await, "one recipe at a time");
    let pressed_look = look_of(&browser, QUICK_CHECK).await;
    assert!(pressed_look.mark.contains('✓'), "a pressed preset carries a tick: {pressed_look:?}");

    // Epochs is a setting Quick check sets (1): editing it leaves the recipe.
    set_value(&browser, "input#epochs", "3").await;
    shows_pressed(&browser, QUICK_CHECK, false).await;
    assert_eq!(value_of(&browser, "input#epochs").await, "3");
    click(&browser, QUICK_CHECK).await;
    shows_pressed(&browser, QUICK_CHECK, true).await;
    assert_eq!(value_of(&browser, "input#epochs").await, "1", "pressing it again restores its recipe");

    // The seed is the person's, kept by every preset: editing it is still the same recipe.
    set_value(&browser, "input#seed", "123").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(pressed(&browser, QUICK_CHECK).await, "a seed of one's own is still Quick check");

    // Hovering or focusing a preset that is not pressed does not draw it as pressed.
    let seed_recipe = browser.find(Locator::Css(SEED_RECIPE)).await.unwrap();
    scroll_to(&browser, &seed_recipe).await;
    let hover = MouseActions::new("mouse".into()).then(PointerAction::MoveToElement {
        element: seed_recipe.clone(),
        duration: None,
        x: 0.0,
        y: 0.0,
    });
    browser.perform_actions(hover).await.unwrap();
    let hovered: bool =
        evaluate(&browser, "return arguments[0].matches(':hover');", vec![serde_json::to_value(&seed_recipe).unwrap()])
            .await;
    assert!(hovered, "the pointer is over Seed recipe");
    let hovered_look = look_of(&browser, SEED_RECIPE).await;
    assert_ne!(hovered_look.background, pressed_look.background, "hover: {hovered_look:?}, pressed: {pressed_look:?}");
    assert_ne!(hovered_look.shadow, pressed_look.shadow, "hover: {hovered_look:?}, pressed: {pressed_look:?}");
    assert!(!hovered_look.mark.contains('✓'), "hover draws no tick: {hovered_look:?}");
    seed_recipe.send_keys("").await.unwrap();
    let focused: bool = evaluate(
        &browser,
        "return document.activeElement === arguments[0];",
        vec![serde_json::to_value(&seed_recipe).unwrap()],
    )
    .await;
    assert!(focused, "Seed recipe has the focus");
    let focused_look = look_of(&browser, SEED_RECIPE).await;
    assert_ne!(focused_look.background, pressed_look.background, "focus: {focused_look:?}");
    assert!(!focused_look.mark.contains('✓'), "focus draws no tick: {focused_look:?}");
    assert!(!pressed(&browser, SEED_RECIPE).await);
    look_at(&browser, "presets").await;
    browser.close().await.unwrap();
}
