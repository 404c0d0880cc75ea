//! What the browser tests share: chromedriver and headless Chromium, a page opened on a real server, and
//! the steps a person takes (click, type, start a run) with the checks made at each screenshot.

use super::{write_color_dataset, TestServer};
use backend::model::pretrained::PretrainedSource;
use backend::model::ResNet18;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A chromedriver process on a free loopback port, killed when dropped.
pub struct ChromeDriver {
    process: Child,
    url: String,
}

impl ChromeDriver {
    /// Starts chromedriver on a port it picks itself (`--port=0`) and reads which from its own line, so no
    /// other process of the test run can take the port between a probe and chromedriver's bind.
    pub fn start() -> Self {
        let binary = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        // Its own process group, so dropping it also ends the Chromium it started, even after a panic.
        let mut process = Command::new(&binary)
            .process_group(0)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {binary} (run scripts/setup.sh --test): {e}"));
        let lines = BufReader::new(process.stdout.take().unwrap()).lines();
        let (found, port) = std::sync::mpsc::channel();
        // Keeps draining its output after the port line, so chromedriver never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("ChromeDriver was started successfully on port ") {
                    let _ = found.send(rest.trim_end_matches('.').parse::<u16>());
                }
            }
        });
        let port = match port.recv_timeout(Duration::from_secs(20)) {
            Ok(Ok(port)) => port,
            other => panic!("chromedriver did not say on which port it listens within 20 s: {other:?}"),
        };
        ChromeDriver { process, url: format!("http://127.0.0.1:{port}") }
    }

    pub async fn browser(&self, width: u32, height: u32) -> Client {
        self.browser_with_args(width, height, &[]).await
    }

    /// A browser like [`ChromeDriver::browser`], started with `extra` Chromium flags as well (e.g. the fake
    /// camera's `--use-fake-device-for-media-stream`).
    pub async fn browser_with_args(&self, width: u32, height: u32, extra: &[&str]) -> Client {
        let profile = tempfile::tempdir().unwrap().keep();
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ]
        .map(String::from)
        .to_vec();
        args.push(format!("--window-size={width},{height}"));
        args.push(format!("--user-data-dir={}", profile.display()));
        args.extend(extra.iter().map(|arg| arg.to_string()));
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
                "args": args,
            }
        });
        let serde_json::Value::Object(capabilities) = capabilities else { unreachable!() };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector).capabilities(capabilities).connect(&self.url).await;
        let client = client.unwrap_or_else(|e| panic!("chromium starts: {e:?}; chromedriver {}", self.state()));
        // Chromium's --window-size keeps a window at least 500 px wide; sizing it again once open is exact, so
        // a phone-sized test really sees a 390 px page.
        client.set_window_size(width, height).await.expect("the window takes the asked size");
        client
    }

    /// What the kernel says of the chromedriver process (its pid and `/proc` state: `Z` once it has died), so
    /// a failure to reach it says whether it still runs.
    fn state(&self) -> String {
        let pid = self.process.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_else(|e| e.to_string());
        let state = stat.rsplit_once(')').map_or("?", |(_, rest)| rest.split_whitespace().next().unwrap_or("?"));
        format!("pid {pid} at {}, state {state}", self.url)
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let group = format!("-{}", self.process.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

pub fn built_page() -> PathBuf {
    let dist = super::workspace_root().join("dist");
    assert!(dist.join("index.html").is_file(), "no built page in {}: run `make ui` first", dist.display());
    dist
}

pub fn screenshot_path(name: &str) -> PathBuf {
    let dir = super::workspace_root().join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{name}.png"))
}

/// Every visible control, link, progress bar and picture that a screen reader could not name, each written
/// as the start of its HTML. A name is an `aria-label`, an `aria-labelledby` with text, a `<label>` (by
/// `for` or wrapping), a `title`, or for buttons, links and summaries their own text; pictures need `alt`.
pub const UNNAMED_CONTROLS: &str = r#"
    const visible = el => el.checkVisibility
        ? el.checkVisibility({ visibilityProperty: true })
        : el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
    const text = el => (el ? el.textContent : '').replace(/\s+/g, ' ').trim();
    const name = el => {
        const byIds = (el.getAttribute('aria-labelledby') || '').split(/\s+/).filter(Boolean)
            .map(id => text(document.getElementById(id))).join(' ').trim();
        const byLabels = Array.from(el.labels || []).map(text).join(' ').trim();
        const own = el.matches('button, a[href], [role=button], summary')
            ? text(el) || Array.from(el.querySelectorAll('img[alt]')).map(img => img.alt.trim()).join(' ').trim()
            : '';
        return [(el.getAttribute('aria-label') || '').trim(), byIds, byLabels, (el.getAttribute('title') || '').trim(), own]
            .find(Boolean) || '';
    };
    const controls = 'input:not([type=hidden]), select, textarea, button, a[href], [role=button], summary, '
        + 'progress, svg[role=img]';
    const unnamed = Array.from(document.querySelectorAll(controls)).filter(el => visible(el) && !name(el));
    const unlabelled = Array.from(document.querySelectorAll('img')).filter(img => visible(img) && !img.hasAttribute('alt'));
    return unnamed.concat(unlabelled).map(el => el.outerHTML.slice(0, 200));
"#;

/// What a person sees in `state`: saves the screenshot `target/screenshots/{state}.png`, checks that
/// every visible control has an accessible name, listing those that have none, and that axe-core finds
/// no serious or critical accessibility violation.
pub async fn look_at(browser: &Client, state: &str) {
    let png = browser.screenshot().await.unwrap();
    std::fs::write(screenshot_path(state), png).unwrap();
    let unnamed = browser.execute(UNNAMED_CONTROLS, Vec::new()).await.unwrap();
    let unnamed: Vec<String> = serde_json::from_value(unnamed).unwrap();
    assert!(
        unnamed.is_empty(),
        "{state}: {} controls without an accessible name:\n{}",
        unnamed.len(),
        unnamed.join("\n")
    );
    let violations = accessibility_violations(browser).await;
    assert!(
        violations.is_empty(),
        "{state}: axe-core finds {} serious or critical violations:\n{}",
        violations.len(),
        violations.join("\n")
    );
}

/// axe-core's browser script, as `scripts/setup.sh --test` installs it (npm's `axe-core` in `.tools`).
fn axe_script() -> &'static str {
    static SCRIPT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SCRIPT.get_or_init(|| {
        let path = super::workspace_root().join(".tools/node_modules/axe-core/axe.min.js");
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {} (run scripts/setup.sh --test): {e}", path.display()))
    })
}

/// Runs axe-core (every rule of its default set) on the page as it stands and returns its serious and
/// critical violations, each as the rule, what it asks for and the first elements that break it. The
/// script is injected once per loaded page, as WebDriver script rather than through `eval`, which the
/// page's Content-Security-Policy forbids.
pub async fn accessibility_violations(browser: &Client) -> Vec<String> {
    let loaded = browser.execute("return typeof window.axe === 'object';", Vec::new()).await.unwrap();
    if loaded != json!(true) {
        browser.execute(&format!("{}\nreturn true;", axe_script()), Vec::new()).await.expect("axe-core loads");
    }
    let found = browser.execute_async(AXE_SERIOUS_VIOLATIONS, Vec::new()).await.expect("axe-core runs");
    serde_json::from_value(found).unwrap()
}

/// Calls back with axe-core's serious and critical violations as lines of text.
const AXE_SERIOUS_VIOLATIONS: &str = r#"
    const done = arguments[arguments.length - 1];
    const line = v => `${v.id} (${v.impact}): ${v.help}: ` + v.nodes.slice(0, 4)
        .map(n => `${n.target.join(' ')} [${(n.failureSummary || '').replace(/\s+/g, ' ')}] ${n.html.slice(0, 160)}`)
        .join(' | ');
    axe.run(document, { resultTypes: ['violations'] })
        .then(r => done(r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical').map(line)))
        .catch(e => done([`axe-core failed: ${e}`]));
"#;

/// Polls until `check` returns `Some`, failing with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the page's `script` returns (with `args`), read as `T`.
pub async fn evaluate<T: serde::de::DeserializeOwned>(
    browser: &Client,
    script: &str,
    args: Vec<serde_json::Value>,
) -> T {
    let value = browser.execute(script, args).await.unwrap_or_else(|e| panic!("{script}: {e}"));
    serde_json::from_value(value).unwrap_or_else(|e| panic!("{script}: {e}"))
}

pub async fn text_of(browser: &Client, css: &str) -> Option<String> {
    browser.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

/// Waits until the pending-edits bar counts `count` edits to a dataset, and answers its text.
pub async fn pending_edits(browser: &Client, count: usize) -> String {
    let counted = format!("({count})");
    eventually("the pending-edits bar", Duration::from_secs(10), || async {
        text_of(browser, ".pending-edits .pending-count").await.filter(|t| t.contains(&counted))
    })
    .await
}

/// A person's starting point: a server over a colour dataset (`classes` classes, `train`/`test` images each
/// of `side` pixels) serving the built page, and a browser showing it once the dataset list has loaded.
/// Fields drop in order: browser session, then chromedriver, then server.
pub struct OpenPage {
    pub browser: Client,
    pub _driver: ChromeDriver,
    pub server: TestServer,
}

pub async fn open_page(classes: usize, train: usize, test: usize, side: u32) -> OpenPage {
    open_browser(serve_colors(classes, train, test, side).await).await
}

/// The server of [`open_page`], without a browser yet.
pub async fn serve_colors(classes: usize, train: usize, test: usize, side: u32) -> TestServer {
    let data = tempfile::tempdir().unwrap();
    write_color_dataset(data.path(), "colors", classes, train, test, side);
    let imagenet = stand_in_imagenet(data.path());
    TestServer::start_with(data, move |s| s.imagenet = imagenet, Some(built_page())).await
}

/// `"imagenet"` as a ResNet-18 state dict already in the weights folder under `data`: the page's first
/// visit and its pretrained presets start from ImageNet's weights, and tests never download them.
pub fn stand_in_imagenet(data: &Path) -> PretrainedSource {
    let source = PretrainedSource {
        file_name: "imagenet-stand-in.safetensors".into(),
        ..PretrainedSource::imagenet_resnet18().with_url("http://127.0.0.1:9/")
    };
    let weights = data.join("weights");
    std::fs::create_dir_all(&weights).unwrap();
    ResNet18::new(tch::Device::Cpu, 1000, 0).save(&weights.join(&source.file_name), None).unwrap();
    source
}

/// A browser showing `server`'s page once its dataset list has loaded.
pub async fn open_browser(server: TestServer) -> OpenPage {
    open_browser_with(server, 1280, 900, &[]).await
}

/// [`open_browser`] in a `width` x `height` window, Chromium started with the `extra` flags as well.
pub async fn open_browser_with(server: TestServer, width: u32, height: u32, extra: &[&str]) -> OpenPage {
    let driver = ChromeDriver::start();
    let browser = driver.browser_with_args(width, height, extra).await;
    browser.goto(&server.base).await.unwrap();
    eventually("the dataset option", Duration::from_secs(30), || async {
        browser.find(Locator::Css("select#dataset option[value='colors']")).await.ok()
    })
    .await;
    OpenPage { browser, _driver: driver, server }
}

/// Scrolls the element to the middle of the window, as a person would, and clicks it (the page has a sticky
/// header that chromedriver's own scrolling can leave over the element).
pub async fn click(browser: &Client, css: &str) {
    let element = browser.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
    scroll_to(browser, &element).await;
    element.click().await.unwrap();
}

/// Scrolls `element` to the middle of the window.
pub async fn scroll_to(browser: &Client, element: &fantoccini::elements::Element) {
    let target = serde_json::to_value(element).unwrap();
    browser.execute("arguments[0].scrollIntoView({block: 'center'});", vec![target]).await.unwrap();
}

pub async fn set_value(browser: &Client, css: &str, value: &str) {
    let input = browser.find(Locator::Css(css)).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(value).await.unwrap();
}

/// Starts a run of `epochs` epochs from the form as it stands, as a person does, and returns its id once
/// the run list shows it.
pub async fn start_run(browser: &Client, epochs: &str) -> u64 {
    let listed = browser.find_all(Locator::Css("#runs li.run-item")).await.unwrap().len();
    set_value(browser, "input#epochs", epochs).await;
    click(browser, "button#start").await;
    // The list redraws a run's row as its status changes, so the row is read as soon as it is found.
    eventually("the new run in the list", Duration::from_secs(30), || async {
        let runs = browser.find_all(Locator::Css("#runs li.run-item")).await.ok()?;
        if runs.len() <= listed {
            return None;
        }
        runs.first()?.attr("data-run-id").await.ok()??.parse().ok()
    })
    .await
}

/// Waits until the run list shows run `id` as completed.
pub async fn completed_on_page(browser: &Client, id: u64) {
    let badge = format!("#runs li[data-run-id='{id}'] .status-completed");
    eventually(&format!("run {id}'s completed badge"), Duration::from_secs(30), || async {
        browser.find(Locator::Css(&badge)).await.ok()
    })
    .await;
}

/// The value of the form control at `css`.
pub async fn value_of(browser: &Client, css: &str) -> String {
    let control = browser.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
    control.prop("value").await.unwrap().unwrap_or_default()
}

/// The ids of the runs the list shows, top to bottom; `None` when a row was re-drawn while being read
/// (its element went stale), so the caller looks again.
pub async fn listed_runs(browser: &Client) -> Option<Vec<u64>> {
    let mut ids = Vec::new();
    for row in browser.find_all(Locator::Css("#runs li.run-item")).await.ok()? {
        ids.push(row.attr("data-run-id").await.ok()??.parse().ok()?);
    }
    Some(ids)
}

/// Waits until the run list shows exactly `expected`.
pub async fn list_shows(browser: &Client, expected: &[u64]) {
    eventually(&format!("the list to show runs {expected:?}"), Duration::from_secs(30), || async {
        (listed_runs(browser).await.as_deref() == Some(expected)).then_some(())
    })
    .await;
}

/// The run panel as it stands, read in one go (the panel redraws as messages arrive).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct RunPanel {
    /// Its heading: `"Run #3 — colors"`.
    pub title: String,
    /// The status badge beside the heading: `"running"`.
    pub status: String,
    /// Where the run is: `"slot 1 · cpu · 1 thread"`, `"Slurm job 42 · RUNNING on n1"`.
    pub placement: String,
    /// The line under the run bar: `"epoch 1 — batch 12/50 — 180 img/s — 0:03 left"` while batches arrive.
    pub line: String,
}

impl RunPanel {
    /// Whether the panel shows run `id` (unnamed, as "Run #id").
    pub fn shows(&self, id: u64) -> bool {
        self.title.starts_with(&format!("Run #{id} "))
    }

    /// The batch in flight as the bar's line says it, `(epoch, batch)`: later batches compare greater.
    /// `None` while no batch is in flight (preparing, or ended).
    pub fn batch(&self) -> Option<(u32, u32)> {
        let rest = self.line.strip_prefix("epoch ")?;
        let (epoch, rest) = rest.split_once(" — batch ")?;
        let (batch, _) = rest.split_once('/')?;
        Some((epoch.parse().ok()?, batch.parse().ok()?))
    }
}

const RUN_PANEL: &str = r#"
    const text = css => { const el = document.querySelector(css); return el ? el.textContent.trim() : ''; };
    return {
        title: text('#detail-title'),
        status: text('.detail-head .badge'),
        placement: text('#placement'),
        line: text('#progress .progress-text'),
    };
"#;

/// The run panel as it stands.
pub async fn run_panel(browser: &Client) -> RunPanel {
    evaluate(browser, RUN_PANEL, Vec::new()).await
}

/// Clicks run `id` in the run list, as a person picks it, and waits until the panel shows it. The list
/// redraws a row as its run changes, so a click that lands on a row being replaced is tried again.
pub async fn show_run(browser: &Client, id: u64) -> RunPanel {
    let row = format!("#runs li[data-run-id='{id}'] button.run-button");
    eventually(&format!("the panel to show run {id}"), Duration::from_secs(20), || async {
        let panel = run_panel(browser).await;
        if panel.shows(id) {
            return Some(panel);
        }
        let button = browser.find(Locator::Css(&row)).await.ok()?;
        let target = serde_json::to_value(&button).ok()?;
        browser.execute("arguments[0].scrollIntoView({block: 'center'});", vec![target]).await.ok()?;
        button.click().await.ok()?;
        None
    })
    .await
}
