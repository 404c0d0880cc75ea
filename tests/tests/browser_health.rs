//! The Dataset health card's images in headless Chromium, at a phone and a desktop width: both images of
//! a duplicate pair load as thumbnails named by their paths, marking the first image of the pair (not
//! only the second) puts it into the pending edits, each relabel menu offers every class but the image's
//! own, and an unreadable file can be excluded too. Needs
//! the built page (`make ui`).

use crate::common;

use common::browser::*;
use common::{write_color_dataset, TestServer, COLOR_CLASSES};
use std::time::Duration;

/// The Health card's first pair's images as the page has them: `(alt, loaded, natural width)` each.
const PAIR_IMAGES: &str = r#"
    const images = [...document.querySelectorAll('#health-duplicates li:first-child .health-image img')];
    return images.map(img => [img.alt, img.complete, img.naturalWidth]);
"#;

/// A colour dataset whose first test image of the first class is a copy of a training image, and whose
/// first class holds a file that is not a picture; the copy's pair and the broken path.
fn dataset_with_a_pair_and_a_broken_file(data: &std::path::Path) -> ((String, String), String) {
    write_color_dataset(data, "colors", 2, 4, 2, 32);
    let class = COLOR_CLASSES[0].0;
    let colors = data.join("colors");
    let (a, b) = (format!("train/{class}/0001.png"), format!("test/{class}/copied.png"));
    std::fs::copy(colors.join(&a), colors.join(&b)).unwrap();
    let broken = format!("train/{class}/broken.png");
    std::fs::write(colors.join(&broken), b"not a picture").unwrap();
    ((a, b), broken)
}

/// Opens the page at `width` x `height`, checks the pair's thumbnails, marks the pair's first image and
/// the broken file, and reads the pending edits.
async fn both_images_of_a_pair_load_and_the_first_can_be_marked(width: u32, height: u32) {
    let data = tempfile::tempdir().unwrap();
    let ((a, b), broken) = dataset_with_a_pair_and_a_broken_file(data.path());
    let imagenet = stand_in_imagenet(data.path());
    let server = TestServer::start_with(data, move |s| s.imagenet = imagenet, Some(built_page())).await;
    let OpenPage { browser, _driver, server: _server } = open_browser_with(server, width, height, &[]).await;

    let pair = "#health-duplicates li:first-child";
    let first = eventually("the pair's images", Duration::from_secs(60), || async {
        browser.find(fantoccini::Locator::Css(&format!("{pair} .health-image img"))).await.ok()
    })
    .await;
    scroll_to(&browser, &first).await;
    let images: Vec<(String, bool, u32)> = eventually("both thumbnails loaded", Duration::from_secs(20), || async {
        let images: Vec<(String, bool, u32)> = evaluate(&browser, PAIR_IMAGES, Vec::new()).await;
        images.iter().all(|(_, complete, width)| *complete && *width > 0).then_some(images)
    })
    .await;
    let named: Vec<&str> = images.iter().map(|(alt, _, _)| alt.as_str()).collect();
    assert_eq!(named, [a.as_str(), b.as_str()], "each thumbnail's alt text names its path");
    assert!(images.iter().all(|(_, _, natural)| *natural == 32), "32 px images are not enlarged: {images:?}");

    let exclude_first = format!("{pair} .health-image:first-child .mark-exclude");
    click(&browser, &exclude_first).await;
    assert_eq!(pending_edits(&browser, 1).await, "Pending edits (1) to colors");
    assert_eq!(text_of(&browser, &exclude_first).await.as_deref(), Some("Excluded"));
    let second = format!("{pair} .health-image:last-child .mark-exclude");
    assert_eq!(text_of(&browser, &second).await.as_deref(), Some("Exclude"), "only the first image is marked");
    let group = browser.find(fantoccini::Locator::Css(&format!("{pair} .health-image:first-child .mark-image"))).await;
    assert_eq!(group.unwrap().attr("aria-label").await.unwrap(), Some(format!("Edit {a}")));
    let offered = r#"return [...document.querySelectorAll(
        '#health-duplicates li:first-child .mark-relabel, #health-unreadable li:first-child .mark-relabel')]
        .map(menu => [...menu.options].map(option => option.value).filter(value => value));"#;
    let offered: Vec<Vec<String>> = evaluate(&browser, offered, Vec::new()).await;
    let other = vec![COLOR_CLASSES[1].0.to_string()];
    assert_eq!(offered, [other.clone(), other.clone(), other], "each menu leaves out the image's own class");

    let unreadable = "#health-unreadable li:first-child";
    assert!(text_of(&browser, unreadable).await.unwrap_or_default().contains(&broken));
    click(&browser, &format!("{unreadable} .mark-exclude")).await;
    assert_eq!(pending_edits(&browser, 2).await, "Pending edits (2) to colors", "the broken file pending too");
    scroll_to(&browser, &first).await;
    look_at(&browser, &format!("health-thumbnails-{width}")).await;
    browser.close().await.unwrap();
}

#[tokio::test]
async fn both_images_of_a_duplicate_pair_load_and_the_first_can_be_excluded_on_a_phone() {
    both_images_of_a_pair_load_and_the_first_can_be_marked(390, 844).await;
}

#[tokio::test]
async fn both_images_of_a_duplicate_pair_load_and_the_first_can_be_excluded_on_a_desktop() {
    both_images_of_a_pair_load_and_the_first_can_be_marked(1280, 900).await;
}

/// A page of another site (served from `origin_host`) showing the studio's thumbnail as an `<img>`: the
/// image must not load, and the studio must not decode anything for it (issue 24, finding 4).
async fn a_thumbnail_on_another_sites_page_does_not_load(
    browser: &fantoccini::Client,
    thumbnail: &str,
    origin_host: &str,
) {
    let page = format!(r#"<!doctype html><title>elsewhere</title><img id="stolen" alt="stolen" src="{thumbnail}">"#);
    let app = axum::Router::new().route("/", axum::routing::get(move || async move { axum::response::Html(page) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let site = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    browser.goto(&format!("http://{origin_host}:{port}/")).await.unwrap();
    let (complete, width): (bool, u32) = eventually("the image settled", Duration::from_secs(20), || async {
        let state: (bool, u32) = evaluate(
            browser,
            "const img = document.getElementById('stolen'); return [img.complete, img.naturalWidth];",
            Vec::new(),
        )
        .await;
        state.0.then_some(state)
    })
    .await;
    assert!(complete && width == 0, "a page on {origin_host}:{port} loaded the studio's thumbnail ({width} px wide)");
    site.abort();
}

#[tokio::test]
async fn pages_of_other_sites_cannot_load_the_studios_thumbnails() {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", 2, 2, 1, 32);
    let server = TestServer::start_with(data, |_| {}, Some(built_page())).await;
    let driver = ChromeDriver::start();
    let browser = driver.browser(800, 600).await;
    let thumbnail = server.url(&format!("/api/datasets/colors/image?path=train/{}/0001.png", COLOR_CLASSES[0].0));
    // Another site (localhost is not 127.0.0.1), and another port of the studio's own host.
    a_thumbnail_on_another_sites_page_does_not_load(&browser, &thumbnail, "localhost").await;
    a_thumbnail_on_another_sites_page_does_not_load(&browser, &thumbnail, "127.0.0.1").await;
    // The studio's own page shows the same address.
    browser.goto(&server.url("/")).await.unwrap();
    let own: u32 = eventually("the thumbnail on the studio's own page", Duration::from_secs(20), || async {
        let script = "return new Promise(done => { const img = new Image(); \
                      img.onload = () => done(img.naturalWidth); img.onerror = () => done(0); img.src = arguments[0]; });";
        let width: u32 = evaluate(&browser, script, vec![serde_json::json!(thumbnail)]).await;
        (width > 0).then_some(width)
    })
    .await;
    assert_eq!(own, 32);
    browser.close().await.unwrap();
}
