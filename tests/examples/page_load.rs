//! Benchmark, not a test: what the page costs to open in headless Chromium. Run it with `make bench-page`;
//! it prints, for a fresh browser (cold: empty cache) and for the same browser opening the page again
//! (warm: hashed files from its cache, `index.html` revalidated by its `ETag`), on loopback and through a
//! throttled link, the bytes on the wire, the bytes they decode to, and the time to the first rendered
//! run list. Each case is measured `PAGE_LOAD_SAMPLES` times (5 unless set); the table gives medians.
//!
//! The server is the real one (`backend::web::serve` on `127.0.0.1:0`) serving the built page (`dist/`,
//! precompressed by `make build`) over a temporary data folder with a history of runs, written through the
//! run store before the studio opens it, so the page has a list to draw.
//!
//! How the time is taken: before each visit a script is registered with the DevTools protocol
//! (`Page.addScriptToEvaluateOnNewDocument`, through chromedriver's `goog/cdp/execute`), so it runs in the
//! new document before any of the page's own scripts. It watches the document with a `MutationObserver`
//! and notes `performance.now()` in the observer callback that first finds `#runs li.run-item`. The time
//! origin of a navigation is its start, so that is the time from navigation start to the first row in the
//! DOM, to within a microtask; the benchmark then polls for the note every 10 ms, which adds nothing to it.
//! The first row is in the DOM, not necessarily painted yet.
//!
//! The bytes are the Resource Timing entries of the navigation and of every resource, read one second
//! after the first row appeared (so the page's first API requests are in): `transferSize`, the body as
//! sent plus 300 bytes that Chromium counts for the headers of anything that went over the network (0
//! for a file from the cache, 300 for a 304), and `decodedBodySize`, the page's files as it uses them,
//! from the network or the cache. The run list itself comes in the WebSocket's first message, which
//! Resource Timing does not count: its size is printed separately, read by a client of this program.
//!
//! The throttled link is chromedriver's `chromium/network_conditions` (DevTools' network emulation:
//! 10 Mbit/s each way and 40 ms added to each request), which leaves the cache on. The last row opens the
//! page cold on that link with `Accept-Encoding: identity` (DevTools' `Network.setExtraHTTPHeaders`), so
//! the server sends every file uncompressed: the difference is what the precompressed files save.

#[path = "../tests/common/mod.rs"]
mod common;

use axum::http::Method;
use common::browser::{built_page, ChromeDriver};
use common::{write_color_dataset, TestServer};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::Client;
use futures::StreamExt;
use reqwest::Url;
use serde_json::{json, Value};
use std::time::Duration;

/// Runs in the history, so the list has rows to draw.
const HISTORY: usize = 50;
/// Visits per case unless `PAGE_LOAD_SAMPLES` says otherwise.
const DEFAULT_SAMPLES: usize = 5;
/// How long after the first row the Resource Timing entries are read, so requests the page starts at
/// load (datasets, health, weights) are counted too.
const SETTLE: Duration = Duration::from_secs(1);
/// The first row the run list draws.
const RUN_ROW: &str = "#runs li.run-item";

/// Notes in `window.__firstRunRow` the `performance.now()` at which the first run row is in the DOM.
const WATCH_FOR_RUN_ROW: &str = r#"
    (() => {
        const observer = new MutationObserver(() => {
            if (window.__firstRunRow === undefined && document.querySelector('#runs li.run-item')) {
                window.__firstRunRow = performance.now();
                observer.disconnect();
            }
        });
        observer.observe(document, { childList: true, subtree: true });
    })();
"#;

/// Calls back with the note of [`WATCH_FOR_RUN_ROW`] once there is one, looking every 10 ms.
const FIRST_RUN_ROW: &str = r#"
    const done = arguments[arguments.length - 1];
    const look = () => window.__firstRunRow === undefined ? setTimeout(look, 10) : done(window.__firstRunRow);
    look();
"#;

/// The navigation's and every resource's Resource Timing entry.
const FETCHED: &str = r#"
    return performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))
        .map(e => ({
            name: new URL(e.name).pathname,
            transfer: e.transferSize,
            encoded: e.encodedBodySize,
            decoded: e.decodedBodySize,
            received_ms: e.responseEnd,
        }));
"#;

fn main() -> anyhow::Result<()> {
    // The server gets a runtime of its own, as in the binary, so the browser's driving never runs on
    // its workers.
    let server_runtime = tokio::runtime::Runtime::new()?;
    let data = tempfile::tempdir()?;
    write_color_dataset(data.path(), "colors", 3, 8, 4, 16);
    common::write_completed_runs(data.path(), HISTORY)?;
    let server = server_runtime.block_on(TestServer::start_with(data, |_| {}, Some(built_page())));
    let driving = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    driving.block_on(measure(&server))
}

/// A link between the browser and the server.
#[derive(Debug, Clone, Copy)]
enum Link {
    /// Loopback as it is.
    Loopback,
    /// DevTools' emulation of a slower link.
    Throttled {
        /// Bits per second, each way.
        bits_per_second: u64,
        /// Added to each request, in milliseconds.
        latency_ms: u64,
    },
}

/// The throttled link of the benchmark: 10 Mbit/s, 40 ms.
const THROTTLED: Link = Link::Throttled { bits_per_second: 10_000_000, latency_ms: 40 };

impl Link {
    fn name(self) -> String {
        match self {
            Link::Loopback => "loopback".into(),
            Link::Throttled { bits_per_second, latency_ms } => {
                format!("{} Mbit/s, {latency_ms} ms", bits_per_second / 1_000_000)
            }
        }
    }
}

/// One visit's figures.
#[derive(Debug, Clone)]
struct Visit {
    /// From navigation start to the first run row in the DOM.
    first_run_row_ms: f64,
    /// Every file the visit fetched (the navigation first), as Resource Timing saw it.
    fetched: Vec<Fetched>,
}

impl Visit {
    fn wire_bytes(&self) -> u64 {
        self.fetched.iter().map(|file| file.transfer).sum()
    }

    fn decoded_bytes(&self) -> u64 {
        self.fetched.iter().map(|file| file.decoded).sum()
    }
}

/// A Resource Timing entry, reduced to what the benchmark prints.
#[derive(Debug, Clone, serde::Deserialize)]
struct Fetched {
    /// The path asked for.
    name: String,
    /// Bytes on the wire, headers included; 0 when served from the cache.
    transfer: u64,
    /// The body as sent (compressed, when it was).
    encoded: u64,
    /// The body once decoded.
    decoded: u64,
    /// When its last byte arrived, in ms from navigation start.
    received_ms: f64,
}

/// The samples of one row of the table.
struct Case {
    name: String,
    visits: Vec<Visit>,
}

async fn measure(server: &TestServer) -> anyhow::Result<()> {
    let samples = std::env::var("PAGE_LOAD_SAMPLES").ok().and_then(|n| n.parse().ok()).unwrap_or(DEFAULT_SAMPLES);
    let driver = ChromeDriver::start();
    let mut cases = Vec::new();
    for link in [Link::Loopback, THROTTLED] {
        let (mut cold, mut warm) = (Vec::new(), Vec::new());
        for _ in 0..samples {
            let browser = fresh_browser(&driver, link, Encoding::Compressed).await?;
            cold.push(visit(&browser, &server.base).await?);
            warm.push(visit(&browser, &server.base).await?);
            browser.close().await?;
        }
        cases.push(Case { name: format!("{}, cold", link.name()), visits: cold });
        cases.push(Case { name: format!("{}, warm", link.name()), visits: warm });
    }
    let mut identity = Vec::new();
    for _ in 0..samples {
        let browser = fresh_browser(&driver, THROTTLED, Encoding::Identity).await?;
        identity.push(visit(&browser, &server.base).await?);
        browser.close().await?;
    }
    cases.push(Case { name: format!("{}, cold, uncompressed", THROTTLED.name()), visits: identity });

    let snapshot = snapshot_bytes(server).await?;
    report(&cases, samples, snapshot);
    Ok(())
}

/// What the browser asks the server for in `Accept-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Encoding {
    /// What Chromium asks for by itself.
    Compressed,
    /// `identity`: every file as built.
    Identity,
}

/// A browser with a fresh profile on `link`, asking for `encoding`, that notes when the first run row
/// appears in every page it opens.
async fn fresh_browser(driver: &ChromeDriver, link: Link, encoding: Encoding) -> anyhow::Result<Client> {
    let browser = driver.browser(1280, 900).await;
    devtools(&browser, "Page.addScriptToEvaluateOnNewDocument", json!({"source": WATCH_FOR_RUN_ROW})).await?;
    set_link(&browser, link).await?;
    if encoding == Encoding::Identity {
        devtools(&browser, "Network.enable", json!({})).await?;
        let headers = json!({"headers": {"Accept-Encoding": "identity"}});
        devtools(&browser, "Network.setExtraHTTPHeaders", headers).await?;
    }
    Ok(browser)
}

/// Opens the page from `about:blank` (so a second visit is a navigation, not a reload) and waits for the
/// first run row; returns when it appeared and, [`SETTLE`] later, what was fetched.
async fn visit(browser: &Client, base: &str) -> anyhow::Result<Visit> {
    browser.goto("about:blank").await?;
    browser.goto(base).await?;
    let first_run_row_ms = browser.execute_async(FIRST_RUN_ROW, Vec::new()).await?;
    let first_run_row_ms = serde_json::from_value(first_run_row_ms)?;
    tokio::time::sleep(SETTLE).await;
    let fetched = serde_json::from_value(browser.execute(FETCHED, Vec::new()).await?)?;
    anyhow::ensure!(
        browser.find(fantoccini::Locator::Css(RUN_ROW)).await.is_ok(),
        "the run list is still drawn after {SETTLE:?}"
    );
    Ok(Visit { first_run_row_ms, fetched })
}

/// A chromedriver command beyond WebDriver's own, under `/session/{id}/`.
#[derive(Debug)]
struct ChromiumCommand {
    /// Its path under the session: `chromium/network_conditions`, `goog/cdp/execute`.
    path: &'static str,
    body: Value,
}

impl WebDriverCompatibleCommand for ChromiumCommand {
    // `<Url as FromStr>::Err` is the url crate's `ParseError`, which nothing here re-exports.
    fn endpoint(&self, base_url: &Url, session_id: Option<&str>) -> Result<Url, <Url as std::str::FromStr>::Err> {
        let session = session_id.expect("chromedriver commands are sent within a session");
        base_url.join(&format!("session/{session}/{}", self.path))
    }

    fn method_and_body(&self, _request_url: &Url) -> (Method, Option<String>) {
        (Method::POST, Some(self.body.to_string()))
    }
}

/// Sends DevTools protocol command `cmd` with `params` to the page's target.
async fn devtools(browser: &Client, cmd: &str, params: Value) -> anyhow::Result<Value> {
    let body = json!({"cmd": cmd, "params": params});
    Ok(browser.issue_cmd(ChromiumCommand { path: "goog/cdp/execute", body }).await?)
}

/// Puts the browser on `link`; the emulation keeps the HTTP cache on.
async fn set_link(browser: &Client, link: Link) -> anyhow::Result<()> {
    let Link::Throttled { bits_per_second, latency_ms } = link else { return Ok(()) };
    let bytes_per_second = bits_per_second / 8;
    let body = json!({"network_conditions": {
        "offline": false,
        "latency": latency_ms,
        "download_throughput": bytes_per_second,
        "upload_throughput": bytes_per_second,
    }});
    browser.issue_cmd(ChromiumCommand { path: "chromium/network_conditions", body }).await?;
    Ok(())
}

/// The size of the server's first WebSocket message, the snapshot the page draws its run list from.
async fn snapshot_bytes(server: &TestServer) -> anyhow::Result<usize> {
    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_url()).await?;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("the socket closed before its snapshot"))??;
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
            return Ok(text.len());
        }
    }
}

fn report(cases: &[Case], samples: usize, snapshot: usize) {
    println!("The page with {HISTORY} runs, headless Chromium, median of {samples} visits each (min-max):");
    println!();
    println!(
        "| {:<38} | {:>13} | {:>13} | {:>8} | {:>22} | {:>14} |",
        "case", "on the wire", "decoded", "requests", "first run row", "wasm received"
    );
    println!("|{:-<40}|{:->15}|{:->15}|{:->10}|{:->24}|{:->16}|", "", "", "", "", "", "");
    for case in cases {
        let wire = median(case.visits.iter().map(|v| v.wire_bytes() as f64).collect());
        let decoded = median(case.visits.iter().map(|v| v.decoded_bytes() as f64).collect());
        let requests = median(case.visits.iter().map(|v| v.fetched.len() as f64).collect());
        let times: Vec<f64> = case.visits.iter().map(|v| v.first_run_row_ms).collect();
        let wasm = median(case.visits.iter().filter_map(wasm_received_ms).collect());
        let (min, max) = times.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &t| (lo.min(t), hi.max(t)));
        println!(
            "| {:<38} | {:>13} | {:>13} | {:>8} | {:>22} | {:>14} |",
            case.name,
            format!("{} B", thousands(wire)),
            format!("{} B", thousands(decoded)),
            format!("{requests:.0}"),
            format!("{:.0} ms ({:.0}-{:.0})", median(times), min, max),
            format!("{wasm:.0} ms"),
        );
    }
    println!();
    println!("The run list's WebSocket snapshot (not in Resource Timing): {} B of JSON.", thousands(snapshot as f64));
    println!();
    for case in cases {
        let Some(visit) = case.visits.first() else { continue };
        println!("{} (first visit), file by file: path, on the wire, as sent, decoded, received at", case.name);
        for file in &visit.fetched {
            println!(
                "  {:<40} {:>11} B {:>11} B {:>11} B {:>7.0} ms",
                file.name,
                thousands(file.transfer as f64),
                thousands(file.encoded as f64),
                thousands(file.decoded as f64),
                file.received_ms
            );
        }
    }
}

/// When the page's wasm had arrived, from the network or the cache.
fn wasm_received_ms(visit: &Visit) -> Option<f64> {
    visit.fetched.iter().find(|file| file.name.ends_with(".wasm")).map(|file| file.received_ms)
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

/// `1234567.0` as `1,234,567`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value);
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}
