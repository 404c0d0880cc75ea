//! What the integration tests share: a real server on `127.0.0.1:0` over a temporary data folder, and
//! small datasets made on the spot with a signal a network can learn.
#![allow(dead_code)]

pub mod browser;
pub mod process;
pub mod slurm;

use backend::data::download::DownloadSource;
use backend::studio::{Studio, StudioSettings};
use shared::Run;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::sync::oneshot;

/// The workspace root, where `dist/`, `.venv/` and `target/` are.
/// Where a run trained directly through the engine keeps its files: datasets in `data_dir`, weights in
/// `data_dir/weights`, checkpoints in `run_dir`. Closed local ports stand for CIFAR-10's and ImageNet's
/// download addresses: tests never reach beyond this machine.
pub fn offline_training_paths(data_dir: &Path, run_dir: PathBuf) -> backend::engine::training::TrainingPaths {
    backend::engine::training::TrainingPaths {
        data_dir: data_dir.to_path_buf(),
        weights_dir: data_dir.join("weights"),
        run_dir,
        cifar10: DownloadSource { url: "http://127.0.0.1:9/".into(), md5: String::new() },
        imagenet: backend::model::pretrained::PretrainedSource::imagenet_resnet18().with_url("http://127.0.0.1:9/"),
        dataset_memory: None,
    }
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A running server and its data folder; both go away when dropped.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The data folder.
    pub data: TempDir,
    /// The studio the server serves.
    pub studio: Studio,
    /// Stops the server when dropped.
    pub shutdown: Shutdown,
}

/// Stops a [`TestServer`]'s listener when dropped.
pub struct Shutdown(Option<oneshot::Sender<()>>);

impl Drop for Shutdown {
    fn drop(&mut self) {
        if let Some(shutdown) = self.0.take() {
            let _ = shutdown.send(());
        }
    }
}

impl TestServer {
    /// A server over an empty data folder.
    pub async fn start() -> Self {
        Self::start_with(tempfile::tempdir().unwrap(), |_| {}, None).await
    }

    /// A server over `data`, with settings adjusted by `adjust` and the page served from `ui_dir`.
    pub async fn start_with(data: TempDir, adjust: impl FnOnce(&mut StudioSettings), ui_dir: Option<PathBuf>) -> Self {
        Self::start_with_options(data, adjust, backend::web::ServerOptions { ui_dir, ..Default::default() }).await
    }

    /// A server over `data` with every web option given.
    pub async fn start_with_options(
        data: TempDir,
        adjust: impl FnOnce(&mut StudioSettings),
        options: backend::web::ServerOptions,
    ) -> Self {
        let mut settings = StudioSettings::new(data.path());
        // Tests never reach beyond this machine: a closed local port stands for "no network".
        settings.cifar10 =
            DownloadSource { url: "http://127.0.0.1:9/cifar-10-binary.tar.gz".into(), md5: "0".repeat(32) };
        settings.imagenet = backend::model::pretrained::PretrainedSource::imagenet_resnet18()
            .with_url("http://127.0.0.1:9/resnet18-f37072fd.pth");
        adjust(&mut settings);
        let studio = Studio::open(settings, tch::Device::Cpu).expect("studio opens");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (shutdown, stopped) = oneshot::channel::<()>();
        let served = studio.clone();
        tokio::spawn(async move {
            backend::web::serve(listener, served, options, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        TestServer { base, data, studio, shutdown: Shutdown(Some(shutdown)) }
    }

    /// Absolute URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The `ws://` address of this server's WebSocket.
    pub fn ws_url(&self) -> String {
        self.url("/ws").replace("http://", "ws://")
    }

    /// Starts a run of `config` with `POST /api/runs`, asserting it is created, and returns its id.
    pub async fn create_run(&self, config: serde_json::Value) -> u64 {
        let response = reqwest::Client::new().post(self.url("/api/runs")).json(&config).send().await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::CREATED, "{}", response.text().await.unwrap());
        response.json::<shared::RunCreated>().await.unwrap().id
    }

    /// Polls `GET /api/runs/{id}` until `done` holds, failing after `timeout`.
    pub async fn wait_for_run(&self, id: u64, timeout: Duration, done: impl Fn(&Run) -> bool) -> Run {
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            let run: Run = client.get(self.url(&format!("/api/runs/{id}"))).send().await.unwrap().json().await.unwrap();
            if done(&run) {
                return run;
            }
            assert!(started.elapsed() < timeout, "run {id} did not get there within {timeout:?}: {run:#?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until run `id` has finished (completed, stopped or failed).
    pub async fn wait_until_finished(&self, id: u64) -> Run {
        self.wait_for_run(id, Duration::from_secs(300), |run| run.status.is_finished()).await
    }
}

/// Reads WebSocket messages until a text one arrives, and parses it; fails after two minutes.
pub async fn next_server_message<S>(socket: &mut S) -> shared::ServerMessage
where
    S: futures::Stream<Item = Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>>
        + Unpin,
{
    use futures::StreamExt;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(120), socket.next())
            .await
            .expect("a message within two minutes")
            .expect("the socket is open")
            .expect("a valid frame");
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
            return serde_json::from_str(&text).expect("a ServerMessage");
        }
    }
}

/// Plausible metrics of a three-class run's `epoch`, for histories written straight into the run store.
pub fn epoch_metrics(epoch: u32) -> shared::EpochMetrics {
    shared::EpochMetrics {
        epoch,
        train_loss: 1.0 / f64::from(epoch),
        train_accuracy: 0.5,
        test_loss: 1.1 / f64::from(epoch),
        test_accuracy: 0.45,
        seconds: 12.5,
        test_top5_accuracy: None,
        lr: 0.001,
        per_class_accuracy: vec![0.4, 0.5, 0.45],
        confusion: vec![vec![4, 2, 2], vec![2, 4, 2], vec![2, 2, 4]],
    }
}

/// Writes `count` completed runs of three epochs each ([`epoch_metrics`]) of dataset `colors` straight
/// into the run store of `data_dir`, before a studio opens it: a history to list.
pub fn write_completed_runs(data_dir: &Path, count: usize) -> Result<(), backend::studio::store::StoreError> {
    let store = backend::studio::store::Store::open(&data_dir.join(backend::studio::DATABASE_FILE))?;
    let config = shared::TrainConfig::for_dataset("colors");
    for _ in 0..count {
        let run = store.create_run(&config, 1_795_000_000)?;
        for epoch in 1..=3 {
            store.add_epoch(run.id, &epoch_metrics(epoch))?;
        }
        store.set_status(run.id, shared::RunStatus::Completed, None)?;
    }
    Ok(())
}

/// Colours of the synthetic classes: each class is one colour, images are that colour plus noise.
pub const COLOR_CLASSES: [(&str, [u8; 3]); 6] = [
    ("black", [20, 20, 20]),
    ("blue", [30, 60, 220]),
    ("green", [40, 200, 60]),
    ("red", [220, 40, 40]),
    ("white", [235, 235, 235]),
    ("yellow", [230, 220, 50]),
];

/// A small deterministic pseudo-random generator (xorshift), so datasets need no extra crate.
pub struct Noise(u64);

impl Noise {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Noise(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Next value in `0..bound`.
    pub fn below(&mut self, bound: u32) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound as u64) as u32
    }
}

/// An RGB image of `side` pixels: `color` with +-`spread` noise on every pixel.
pub fn noisy_image(color: [u8; 3], side: u32, spread: u32, noise: &mut Noise) -> image::RgbImage {
    image::RgbImage::from_fn(side, side, |_, _| {
        image::Rgb(color.map(|c| (c as i32 + noise.below(2 * spread + 1) as i32 - spread as i32).clamp(0, 255) as u8))
    })
}

/// PNG file bytes of a noisy image of `color`.
pub fn png_bytes(color: [u8; 3], side: u32, seed: u64) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    noisy_image(color, side, 20, &mut Noise::new(seed)).write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// Writes a class-folder dataset `data_dir/name` with the first `classes` of [`COLOR_CLASSES`],
/// `train` and `test` PNG images per class, of `side` pixels.
pub fn write_color_dataset(data_dir: &Path, name: &str, classes: usize, train: usize, test: usize, side: u32) {
    let mut noise = Noise::new(7);
    for (split, count) in [("train", train), ("test", test)] {
        for (class, color) in &COLOR_CLASSES[..classes] {
            let dir = data_dir.join(name).join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..count {
                noisy_image(*color, side, 40, &mut noise).save(dir.join(format!("{i:04}.png"))).unwrap();
            }
        }
    }
}

/// Zip file bytes holding `entries`, each a (path inside the zip, file bytes) pair.
pub fn zip_dataset(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in entries {
        zip.start_file(name.as_str(), zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// Runs `tests/python/<script>` with the project's `.venv` Python and `args`, failing with its stderr.
pub fn run_python(script: &str, args: &[&std::ffi::OsStr]) {
    let python = workspace_root().join(".venv/bin/python");
    let output = std::process::Command::new(&python)
        .arg(workspace_root().join("tests/python").join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} (run scripts/setup.sh --test): {e}", python.display()));
    assert!(output.status.success(), "{script} failed: {}", String::from_utf8_lossy(&output.stderr));
}
