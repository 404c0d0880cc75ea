//! `make bench`'s classification figures: the whole `POST /api/classify` request over loopback HTTP
//! against PyTorch's bare eager forward of the same architecture on an already decoded tensor, in
//! [`ROUNDS`] alternating rounds (PyTorch's forwards, then our requests), the ratio being the median of
//! the rounds' ratios:
//!
//! 1. one 32x32 PNG, with the model `bench run` trains for one epoch on the synthetic set;
//! 2. one 224x224 JPEG, with a model trained for one epoch at 224 px on a few JPEGs written here;
//! 3. bursts of [`BURST`] concurrent single-image requests (one connection each, released at once),
//!    which the classifier thread answers in joined batches, against PyTorch's forward of one batch of
//!    [`BURST`] images, in images per second.
//!
//! The PyTorch side is a freshly initialised torchvision `resnet18` (10 classes): the same arithmetic
//! as our weights, without loading them. It has no HTTP, no decoding and no history lookup, so it is
//! the floor a request is held to.

use super::{median, percentile, verdict, PyTorch, CLASSES, DATASET, WARMUP_REQUESTS};
use backend::data::download::DownloadSource;
use backend::studio::{Studio, StudioSettings};
use backend::web::ServerOptions;
use rand::{Rng, SeedableRng};
use shared::{RunStatus, TrainConfig};
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use tch::Device;

/// Concurrent requests in one burst.
const BURST: usize = 64;
/// Bursts timed (after one untimed).
const BURSTS: usize = 5;
/// The 224 px dataset's folder under `DIR/data`, and its size.
const PHOTOS: &str = "photos224";
const PHOTO_SIDE: u32 = 224;
const PHOTOS_TRAIN: usize = 30;

/// Rounds of each latency comparison (PyTorch's forwards, then our requests); the ratio reported is
/// the median of the rounds' ratios.
const ROUNDS: usize = 3;

/// One latency comparison over [`ROUNDS`] rounds.
pub struct Latency {
    /// Milliseconds of the first (cold) request.
    pub first_ms: f64,
    /// Milliseconds of every timed request, sorted.
    pub ours_ms: Vec<f64>,
    /// Per round: our median request and PyTorch's median forward, in milliseconds.
    pub rounds: Vec<(f64, f64)>,
}

impl Latency {
    /// Per-round ratios of our median request to PyTorch's median forward.
    fn ratios(&self) -> Vec<f64> {
        self.rounds.iter().map(|(ours, pytorch)| ours / pytorch).collect()
    }
}

/// What the classification part of the bench measured.
pub struct ClassifyFigures {
    /// One 32x32 PNG.
    pub small: Latency,
    /// One 224x224 JPEG.
    pub photo: Latency,
    /// Bursts: our images per second (median of [`BURSTS`]), requests refused, PyTorch's batched images/s.
    pub burst_ips: f64,
    pub burst_refused: usize,
    pub pytorch_batch_ips: f64,
}

/// Trains the two models through a real studio and server on `127.0.0.1:0` over `DIR/data`, then
/// measures each comparison, PyTorch's side just before ours.
pub fn measure(
    dir: &Path,
    config: &TrainConfig,
    requests: usize,
    pytorch: &mut PyTorch,
) -> anyhow::Result<ClassifyFigures> {
    write_photos(dir)?;
    let server = BenchServer::start(&dir.join("data"))?;
    let small_run = server.train(TrainConfig { epochs: 1, ..config.clone() })?;
    let photo_run = server.train(TrainConfig {
        dataset: PHOTOS.into(),
        input_size: PHOTO_SIDE,
        batch_size: 10,
        epochs: 1,
        ..config.clone()
    })?;
    let small_png = std::fs::read(dir.join("data").join(DATASET).join("test").join("class3").join("00003.png"))?;
    let photo_jpeg = std::fs::read(dir.join("data").join(PHOTOS).join("test").join("class3").join("00003.jpg"))?;

    let small = server.compare(pytorch, (small_run, 32), ("image/png", &small_png), requests)?;
    let photo = server.compare(pytorch, (photo_run, PHOTO_SIDE), ("image/jpeg", &photo_jpeg), requests / 2)?;
    let pytorch_batch_ips = BURST as f64 * 1000.0 / pytorch_forward_ms(pytorch, 32, BURST)?;
    let (burst_ips, burst_refused) = server.bursts(small_run, &small_png)?;
    eprintln!("[bench] bursts of {BURST}: {burst_ips:.0} img/s ({burst_refused} refused); PyTorch batched {pytorch_batch_ips:.0} img/s");
    Ok(ClassifyFigures { small, photo, burst_ips, burst_refused, pytorch_batch_ips })
}

/// PyTorch's median eager forward of a `[batch, 3, side, side]` tensor, in milliseconds.
fn pytorch_forward_ms(pytorch: &mut PyTorch, side: u32, batch: usize) -> anyhow::Result<f64> {
    pytorch.ask_number(&format!("forward {side} {batch}"), "median_ms")
}

/// Writes a few 224x224 JPEGs in class folders under `DIR/data/photos224` (smooth colour fields with
/// noise, one hue per class), unless they are there.
fn write_photos(dir: &Path) -> anyhow::Result<()> {
    let root = dir.join("data").join(PHOTOS);
    if root.join("test").join("class3").join("00003.jpg").exists() {
        return Ok(());
    }
    super::write_class_folders(&root, (PHOTOS_TRAIN, CLASSES), |folder, index, seed, class| {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let hue = [(class * 25) as u8, 255 - (class * 20) as u8, (class * 13 % 256) as u8];
        let image = image::RgbImage::from_fn(PHOTO_SIDE, PHOTO_SIDE, |x, y| {
            image::Rgb(
                hue.map(|c| (i32::from(c) + ((x + y) / 8) as i32 + rng.random_range(-20..=20)).clamp(0, 255) as u8),
            )
        });
        Ok(image.save(folder.join(format!("{index:05}.jpg")))?)
    })
}

/// A studio and its server, on a runtime of their own.
pub(super) struct BenchServer {
    pub(super) runtime: tokio::runtime::Runtime,
    pub(super) studio: Studio,
    base: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl BenchServer {
    /// Opens a fresh history over `data_dir` (the datasets stay) and serves it on `127.0.0.1:0`.
    pub(super) fn start(data_dir: &Path) -> anyhow::Result<Self> {
        for stale in [data_dir.join(backend::studio::DATABASE_FILE), data_dir.join(backend::studio::RUNS_FOLDER)] {
            let _ = std::fs::remove_file(&stale);
            let _ = std::fs::remove_dir_all(&stale);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let _context = runtime.enter();
        let mut settings = StudioSettings::new(data_dir);
        settings.cifar10 = DownloadSource { url: "http://127.0.0.1:9/unused".into(), md5: "0".repeat(32) };
        let studio = Studio::open(settings, Device::Cpu)?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let base = format!("http://{}", listener.local_addr()?);
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = studio.clone();
        runtime.spawn(async move {
            let _ = backend::web::serve(listener, served, ServerOptions::default(), async {
                let _ = stopped.await;
            })
            .await;
        });
        Ok(BenchServer { runtime, studio, base, shutdown: Some(shutdown) })
    }

    /// Trains a run of `config` to the end; its id.
    pub(super) fn train(&self, config: TrainConfig) -> anyhow::Result<u64> {
        let _context = self.runtime.enter();
        let started = Instant::now();
        let epochs = config.epochs;
        let id = self.studio.create_run(config)?.id;
        let run = loop {
            let run = self.studio.run(id)?;
            if run.status.is_finished() {
                break run;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        anyhow::ensure!(
            run.status == RunStatus::Completed && run.has_model,
            "the studio's run ended {:?}: {:?}",
            run.status,
            run.error
        );
        eprintln!("[bench] studio trained run {id} for {epochs} epochs in {:.1} s", started.elapsed().as_secs_f64());
        Ok(id)
    }

    fn classify_url(&self, run: u64) -> String {
        format!("{}/api/classify?run={run}", self.base)
    }

    /// [`ROUNDS`] rounds of PyTorch's forwards of one `side` image, then `requests` of ours classifying
    /// `image` (of type `mime`) with run `run`'s model.
    fn compare(
        &self,
        pytorch: &mut PyTorch,
        (run, side): (u64, u32),
        (mime, image): (&str, &[u8]),
        requests: usize,
    ) -> anyhow::Result<Latency> {
        let mut latency = Latency { first_ms: 0.0, ours_ms: Vec::new(), rounds: Vec::new() };
        for round in 0..ROUNDS {
            let pytorch_ms = pytorch_forward_ms(pytorch, side, 1)?;
            let (first_ms, ours_ms) = self.latencies(run, mime, image, requests)?;
            if round == 0 {
                latency.first_ms = first_ms;
            }
            latency.rounds.push((percentile(&ours_ms, 0.5), pytorch_ms));
            latency.ours_ms.extend(ours_ms);
            eprintln!(
                "[bench] classify {mime}, round {}: median {:.2} ms of {requests}; PyTorch forward {pytorch_ms:.2} ms",
                round + 1,
                percentile(&latency.ours_ms, 0.5)
            );
        }
        latency.ours_ms.sort_by(f64::total_cmp);
        Ok(latency)
    }

    /// Times `requests` requests classifying `image` with run `run`'s model, one after another on one
    /// connection, after [`WARMUP_REQUESTS`] untimed ones; the first (cold on the first call) and the
    /// timed ones, sorted, in milliseconds.
    fn latencies(&self, run: u64, mime: &str, image: &[u8], requests: usize) -> anyhow::Result<(f64, Vec<f64>)> {
        let (url, agent): (_, ureq::Agent) = (self.classify_url(run), ureq::Agent::config_builder().build().into());
        let classify = || -> anyhow::Result<f64> {
            let started = Instant::now();
            let mut response = agent.post(&url).header("content-type", mime).send(image)?;
            let answer: shared::ClassifyResponse = serde_json::from_str(&response.body_mut().read_to_string()?)?;
            anyhow::ensure!(!answer.predictions.is_empty(), "no predictions");
            Ok(started.elapsed().as_secs_f64() * 1000.0)
        };
        let first_ms = classify()?;
        for _ in 1..WARMUP_REQUESTS {
            classify()?;
        }
        let mut ours_ms = (0..requests.max(1)).map(|_| classify()).collect::<anyhow::Result<Vec<f64>>>()?;
        ours_ms.sort_by(f64::total_cmp);
        Ok((first_ms, ours_ms))
    }

    /// One untimed burst, then [`BURSTS`] timed ones: [`BURST`] threads, each with a connection of its
    /// own, send one request at the same moment; a burst's time runs to its last answer. Returns the
    /// median images per second and how many requests were refused (503) in all.
    fn bursts(&self, run: u64, image: &[u8]) -> anyhow::Result<(f64, usize)> {
        let url = self.classify_url(run);
        let mut rates = Vec::new();
        let mut refused = 0;
        for timed in std::iter::once(false).chain([true; BURSTS]) {
            let (seconds, answers) = burst(&url, image)?;
            let served = answers.iter().filter(|&&status| status == 200).count();
            anyhow::ensure!(answers.iter().all(|&s| s == 200 || s == 503), "unexpected answers: {answers:?}");
            if timed {
                rates.push(served as f64 / seconds);
                refused += BURST - served;
            }
        }
        Ok((median(rates), refused))
    }
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Sends [`BURST`] requests at once from as many threads, each with a client of its own; the seconds
/// from their release to the last answer, and each answer's status.
fn burst(url: &str, image: &[u8]) -> anyhow::Result<(f64, Vec<u16>)> {
    let ready = Arc::new(Barrier::new(BURST + 1));
    let image: Arc<[u8]> = image.into();
    let senders: Vec<_> = (0..BURST)
        .map(|_| {
            let (ready, url, image) = (ready.clone(), url.to_owned(), image.clone());
            std::thread::spawn(move || -> anyhow::Result<u16> {
                let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
                ready.wait();
                let mut response = agent.post(&url).header("content-type", "image/png").send(&image[..])?;
                response.body_mut().read_to_string()?;
                Ok(response.status().as_u16())
            })
        })
        .collect();
    ready.wait();
    let started = Instant::now();
    let answers = senders
        .into_iter()
        .map(|sender| sender.join().map_err(|_| anyhow::anyhow!("a sender panicked"))?)
        .collect::<anyhow::Result<Vec<u16>>>()?;
    Ok((started.elapsed().as_secs_f64(), answers))
}

/// Prints the classification rows of `make bench`'s table.
pub fn print(figures: &ClassifyFigures) {
    let latency_row = |name: &str, latency: &Latency| {
        let ratios = latency.ratios();
        let ratio = median(ratios.iter().copied());
        let (lowest, highest) = ratios.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        println!(
            "{name:<44} {:>13.2} ms {:>13.2} ms {ratio:>8.3}x   <= 1.0x  {} (rounds {lowest:.3}x to {highest:.3}x; ours: p90 {:.2} ms of {}, first {:.1} ms)",
            percentile(&latency.ours_ms, 0.5),
            median(latency.rounds.iter().map(|round| round.1)),
            verdict(ratio <= 1.0),
            percentile(&latency.ours_ms, 0.9),
            latency.ours_ms.len(),
            latency.first_ms,
        );
    };
    latency_row("classify 32x32 PNG: request vs bare forward", &figures.small);
    latency_row("classify 224x224 JPEG: request vs forward", &figures.photo);
    let ratio = figures.burst_ips / figures.pytorch_batch_ips;
    println!(
        "{:<44} {:>12.0}/s {:>14.0}/s {ratio:>8.3}x   images/s; {} of {} requests refused",
        format!("burst of {BURST} requests vs batched forward"),
        figures.burst_ips,
        figures.pytorch_batch_ips,
        figures.burst_refused,
        BURST * BURSTS,
    );
}
