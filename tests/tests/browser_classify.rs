//! The classify card in headless Chromium against a real server with real training, at 1280x900 and
//! 390x844: one picker, a drop and a paste each classify; every result names the run that produced it and
//! keeps it when a newer run finishes until "Classify again" is pressed; Clear empties the card; the camera
//! mode (Chromium's fake camera) classifies frames live, shows frames per second and ends the camera's
//! tracks on Stop. Screenshots land in `target/screenshots/classify-*.png`.

use crate::common;

use common::browser::*;
use common::{png_bytes, TestServer, COLOR_CLASSES};
use fantoccini::{Client, Locator};
use serde_json::json;
use std::time::Duration;

/// The window sizes every test visits: desktop, then phone.
const SIZES: [(u32, u32); 2] = [(1280, 900), (390, 844)];

/// Chromium's stand-in camera (a moving test pattern) and no permission prompt.
const FAKE_CAMERA: [&str; 2] = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"];

/// Trains a one-epoch run on the colours, names it `name`, and waits until the page offers its model.
async fn trained_run(server: &TestServer, browser: &Client, name: &str) -> u64 {
    let run = server.create_run(json!({"dataset": "colors", "epochs": 1, "batch_size": 6})).await;
    assert_eq!(server.wait_until_finished(run).await.status, shared::RunStatus::Completed);
    let renamed = reqwest::Client::new()
        .patch(server.url(&format!("/api/runs/{run}")))
        .json(&json!({"name": name}))
        .send()
        .await
        .unwrap();
    assert!(renamed.status().is_success(), "{}", renamed.text().await.unwrap());
    let option = format!("select#classify-run option[value='{run}']");
    eventually(&format!("run {run} in the model menu"), Duration::from_secs(30), || async {
        let text = browser.find(Locator::Css(&option)).await.ok()?.text().await.ok()?;
        text.contains(name).then_some(())
    })
    .await;
    run
}

/// A PNG of the colour of class `class`, written to a temporary file.
fn image_file(class: usize, seed: u64) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new().suffix(".png").tempfile().unwrap();
    std::fs::write(file.path(), png_bytes(COLOR_CLASSES[class].1, 48, seed)).unwrap();
    file
}

/// What the card shows, top to bottom: each image's name, the run caption and its predictions as text.
async fn shown_cards(browser: &Client) -> Vec<(String, String, Vec<String>)> {
    let script = r#"return Array.from(document.querySelectorAll('#classify div.classified'), card => [
        card.querySelector('.image-name').textContent.trim(),
        (card.querySelector('.answered-by') || {textContent: ''}).textContent.trim(),
        Array.from(card.querySelectorAll('li.prediction'), li => li.textContent.replace(/\s+/g, ' ').trim()),
    ]);"#;
    evaluate(browser, script, Vec::new()).await
}

/// Waits until the card shows `count` images, all answered by the run captioned `caption`.
async fn answered_by(browser: &Client, count: usize, caption: &str) -> Vec<(String, String, Vec<String>)> {
    eventually(&format!("{count} images answered by {caption}"), Duration::from_secs(30), || async {
        let cards = shown_cards(browser).await;
        let done =
            cards.len() == count && cards.iter().all(|(_, by, predictions)| by == caption && !predictions.is_empty());
        done.then_some(cards)
    })
    .await
}

/// The page is no wider than the window.
async fn fits_the_window(browser: &Client, state: &str) {
    let widths = "return [document.documentElement.scrollWidth, window.innerWidth];";
    let [scroll, window]: [u64; 2] = evaluate(browser, widths, Vec::new()).await;
    assert!(scroll <= window, "{state}: the page is {scroll} px wide in a {window} px window");
}

#[tokio::test]
async fn a_result_names_its_run_keeps_it_when_a_newer_run_finishes_and_clear_empties_the_card() {
    let OpenPage { browser, _driver, server } = open_page(3, 6, 2, 32).await;
    let mut run = trained_run(&server, &browser, "first").await;
    for (i, (width, height)) in SIZES.into_iter().enumerate() {
        browser.set_window_size(width, height).await.unwrap();
        let caption = format!("run {run} · {}", if i == 0 { "first" } else { "second" });

        // One picker: the file input is the only one, and its label is the visible button.
        assert_eq!(browser.find_all(Locator::Css("#classify input[type=file]")).await.unwrap().len(), 1);
        let image = image_file(1, 7);
        let input = browser.find(Locator::Css("input#classify-file")).await.unwrap();
        input.send_keys(&image.path().display().to_string()).await.unwrap();
        let before = answered_by(&browser, 1, &caption).await;
        assert_eq!(before[0].2.len(), 3, "three classes, three predictions: {before:?}");
        let preview = browser.find(Locator::Css("img#classify-preview")).await.unwrap();
        assert!(preview.attr("src").await.unwrap().unwrap_or_default().starts_with("blob:"));
        show_card(&browser, true).await;
        look_at(&browser, &format!("classify-answered-{width}")).await;
        fits_the_window(&browser, "classified").await;

        // A newer run finishes: the menu now offers it, the shown result stays exactly as it was.
        let newer = trained_run(&server, &browser, if i == 0 { "second" } else { "third" }).await;
        let again = eventually("the offer to classify again", Duration::from_secs(30), || async {
            text_of(&browser, "button#classify-again").await
        })
        .await;
        assert!(again.starts_with(&format!("Classify again with run {newer} · ")), "{again}");
        assert_eq!(shown_cards(&browser).await, before, "the shown result was not re-scored");
        show_card(&browser, true).await;
        look_at(&browser, &format!("classify-newer-run-{width}")).await;

        // Explain asks the image's own run for its map: the run and the predictions stay.
        click(&browser, "input#classify-explain").await;
        eventually("the heat map from the image's own run", Duration::from_secs(30), || async {
            browser.find(Locator::Css(".classified-figure svg.heatmap")).await.ok()
        })
        .await;
        assert_eq!(shown_cards(&browser).await, before, "explaining kept the run and its predictions");
        click(&browser, "input#classify-explain").await;
        eventually("the map to be hidden", Duration::from_secs(10), || async {
            browser.find(Locator::Css("svg.heatmap")).await.is_err().then_some(())
        })
        .await;

        // Only on request does it change model.
        click(&browser, "button#classify-again").await;
        let newer_caption = format!("run {newer} · {}", if i == 0 { "second" } else { "third" });
        let after = answered_by(&browser, 1, &newer_caption).await;
        assert_eq!(after[0].0, before[0].0, "the same image");
        assert!(browser.find(Locator::Css("button#classify-again")).await.is_err(), "nothing left to re-score");

        click(&browser, "button#classify-clear").await;
        eventually("the card to empty", Duration::from_secs(10), || async {
            shown_cards(&browser).await.is_empty().then_some(())
        })
        .await;
        let clear = browser.find(Locator::Css("button#classify-clear")).await.unwrap();
        assert!(!clear.is_enabled().await.unwrap(), "nothing left to clear");
        look_at(&browser, &format!("classify-cleared-{width}")).await;
        run = newer;
    }
    browser.close().await.unwrap();
}

/// Builds a PNG `File` named `name` in the page and hands it to the page as `how` does: `drop` onto the
/// card's title, or `paste` on the page's body. Returns whether the page took it (`preventDefault`).
const HAND_OVER: &str = r#"
    const [bytes, name, how] = arguments;
    const file = new File([new Uint8Array(bytes)], name, {type: 'image/png'});
    const data = new DataTransfer();
    data.items.add(file);
    const event = how === 'drop'
        ? new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true})
        : new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true});
    const target = how === 'drop' ? document.querySelector('#classify-title') : document.body;
    return !target.dispatchEvent(event);
"#;

async fn hand_over(browser: &Client, class: usize, name: &str, how: &str) -> bool {
    let bytes = png_bytes(COLOR_CLASSES[class].1, 40, 3);
    evaluate(browser, HAND_OVER, vec![json!(bytes), json!(name), json!(how)]).await
}

/// Scrolls so that the classify card is (`true`) or is not (`false`) in the window.
async fn show_card(browser: &Client, shown: bool) {
    let script = if shown {
        "document.querySelector('#classify').scrollIntoView({block: 'start'});"
    } else {
        "const card = document.querySelector('#classify').getBoundingClientRect();
         window.scrollTo(0, card.top + window.scrollY - window.innerHeight - 50);"
    };
    browser.execute(script, Vec::new()).await.unwrap();
    let rect = "const r = document.querySelector('#classify').getBoundingClientRect(); \
                return [r.top, r.bottom, window.innerHeight];";
    let [top, bottom, height]: [f64; 3] = evaluate(browser, rect, Vec::new()).await;
    assert_eq!(bottom > 0.0 && top < height, shown, "card at {top}..{bottom} in a {height} px window");
}

#[tokio::test]
async fn a_dropped_image_and_a_pasted_image_are_each_classified() {
    let OpenPage { browser, _driver, server } = open_page(3, 6, 2, 32).await;
    let run = trained_run(&server, &browser, "colours").await;
    let caption = format!("run {run} · colours");
    for (width, height) in SIZES {
        browser.set_window_size(width, height).await.unwrap();
        show_card(&browser, true).await;
        assert!(hand_over(&browser, 0, "dropped.png", "drop").await, "the card takes a drop");
        let cards = answered_by(&browser, 1, &caption).await;
        assert_eq!(cards[0].0, "dropped.png");

        assert!(hand_over(&browser, 2, "pasted.png", "paste").await, "the page takes a paste while the card shows");
        let cards = answered_by(&browser, 2, &caption).await;
        let names: Vec<&str> = cards.iter().map(|(name, _, _)| name.as_str()).collect();
        assert_eq!(names, ["pasted.png", "dropped.png"], "the newest first, the earlier kept");
        show_card(&browser, true).await;
        look_at(&browser, &format!("classify-dropped-and-pasted-{width}")).await;
        fits_the_window(&browser, "dropped and pasted").await;

        // A text file named .png: a plain box says it is not an image, with the server's reason, and nothing
        // offers to add it to the dataset.
        let text = json!(b"just some notes, not pixels".to_vec());
        assert!(evaluate::<bool>(&browser, HAND_OVER, vec![text, json!("notes.png"), json!("drop")]).await);
        let why = eventually("the text file's error", Duration::from_secs(30), || async {
            text_of(&browser, ".classified .image-error").await.filter(|t| !t.is_empty())
        })
        .await;
        assert!(why.contains("not a PNG, JPEG, WebP, BMP or GIF image"), "{why}");
        let card = ".classified:first-child";
        let placeholder = text_of(&browser, &format!("{card} .not-an-image")).await;
        assert_eq!(placeholder.as_deref(), Some("Not an image"), "a box, not a broken-image icon");
        let shown: bool = evaluate(
            &browser,
            "return getComputedStyle(document.querySelector(arguments[0] + ' img.classified-image')).display !== 'none';",
            vec![json!(card)],
        )
        .await;
        assert!(!shown, "the broken image itself is not drawn");
        assert!(browser.find(Locator::Css(&format!("{card} select.add-as"))).await.is_err(), "nothing to add");
        fits_the_window(&browser, "a text file named .png").await;

        // Elsewhere on the page, a paste is left to the page.
        show_card(&browser, false).await;
        assert!(
            !hand_over(&browser, 2, "elsewhere.png", "paste").await,
            "no paste is taken while the card is off screen"
        );
        show_card(&browser, true).await;
        click(&browser, "button#classify-clear").await;
        eventually("the card to empty", Duration::from_secs(10), || async {
            shown_cards(&browser).await.is_empty().then_some(())
        })
        .await;
    }
    browser.close().await.unwrap();
}

/// Every camera stream the page opens, recorded by wrapping `getUserMedia` (which still opens the camera).
const RECORD_STREAMS: &str = r#"
    window.cameraStreams = [];
    const open = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
    navigator.mediaDevices.getUserMedia = async constraints => {
        const stream = await open(constraints);
        window.cameraStreams.push(stream);
        return stream;
    };
"#;

/// The `readyState` of every track of every recorded stream.
async fn track_states(browser: &Client) -> Vec<String> {
    let states = "return window.cameraStreams.flatMap(stream => stream.getTracks().map(track => track.readyState));";
    evaluate(browser, states, Vec::new()).await
}

#[tokio::test]
async fn the_camera_classifies_frames_live_and_stop_ends_its_tracks() {
    let server = serve_colors(3, 6, 2, 32).await;
    let OpenPage { browser, _driver, server } = open_browser_with(server, 1280, 900, &FAKE_CAMERA).await;
    let run = trained_run(&server, &browser, "live").await;
    browser.execute(RECORD_STREAMS, Vec::new()).await.unwrap();
    for (width, height) in SIZES {
        browser.set_window_size(width, height).await.unwrap();
        click(&browser, "button#camera-start").await;
        let rate = eventually("a frame rate and live predictions", Duration::from_secs(60), || async {
            let rate = text_of(&browser, "#camera-rate").await?;
            let rate: f64 = rate.strip_suffix(" frames/s")?.parse().ok()?;
            let predictions = browser.find_all(Locator::Css("#camera-predictions li.prediction")).await.ok()?;
            (rate > 0.0 && !predictions.is_empty()).then_some(rate)
        })
        .await;
        assert!(rate > 0.0);
        assert_eq!(text_of(&browser, "#camera-run").await.unwrap(), format!("run {run} · live"));
        let states = track_states(&browser).await;
        assert_eq!(states.last().map(String::as_str), Some("live"), "{states:?}");
        look_at(&browser, &format!("classify-camera-{width}")).await;
        fits_the_window(&browser, "camera").await;

        click(&browser, "button#camera-stop").await;
        let states = track_states(&browser).await;
        assert!(!states.is_empty() && states.iter().all(|s| s == "ended"), "every track ended: {states:?}");
        let detached = "return document.querySelector('#camera-video').srcObject === null;";
        assert!(evaluate::<bool>(&browser, detached, Vec::new()).await, "the video lets go of the camera");
        eventually("Use camera again", Duration::from_secs(10), || async {
            browser.find(Locator::Css("button#camera-start")).await.ok()
        })
        .await;
    }
    browser.close().await.unwrap();
}
