//! `make bench`: Transfer Studio's training engine against the seed recipe's PyTorch loop, on one
//! machine and one set of images.
//!
//! Two sub-commands, which `scripts/bench.sh` runs around `scripts/bench_pytorch.py`:
//!
//! - `bench data DIR` writes a synthetic CIFAR-shaped dataset, `DIR/data/synthetic/{train,test}/classN/*.png`
//!   (32x32 RGB PNGs, ten class folders). Both sides read these same files: the engine decodes them once
//!   into a `u8` tensor (its class-folder layout), torchvision's `ImageFolder` + `DataLoader` decode them
//!   on every pass, as the seed recipe's loader does.
//! - `bench run DIR --pytorch FILE` measures the engine and prints the comparison table, taking the
//!   PyTorch figures from the JSON that `bench_pytorch.py` wrote. It measures:
//!   1. the real engine, [`backend::training::train`], for [`EPOCHS`] epochs; the first warms up and the
//!      fastest of the others is reported;
//!   2. evaluation throughput, [`backend::training::evaluate`] over the test split;
//!   3. the compute ceiling: the same model and optimiser stepping on one pre-made, normalised batch,
//!      after the engine run, in [`CEILING_WINDOWS`] windows of an epoch's worth of steps, the fastest
//!      reported; so the engine's data-pipeline overhead is `1 - engine / ceiling`;
//!   4. the memory of the decoded training split as `u8` against `float32`;
//!   5. the latency of `POST /api/classify` for one 32x32 PNG over loopback HTTP, against a real
//!      [`Studio`] + [`backend::server::serve`] with a model the bench trains for one epoch.
//!
//! Both sides are measured the same way (`scripts/bench_pytorch.py` takes the same epochs and windows
//! and reports the fastest): on a shared virtual machine the speed of identical work drifts by 10 % and
//! more between seconds, and the fastest of a few repeats is the figure least disturbed by others.
//!
//! Both sides use as many intra-op threads as the machine has CPUs, batch size `--batch`, SGD with
//! lr 0.001 and momentum 0.9, cross-entropy, random initialisation and the seed's (0.5, 0.5)
//! normalisation.

use backend::data;
use backend::download::DownloadSource;
use backend::model::{normalize, ResNet18};
use backend::optim::{Optimizer, Rule};
use backend::server::ServerOptions;
use backend::studio::{Studio, StudioSettings};
use backend::training::{self, RunControl, TrainingEvent, TrainingPaths};
use clap::{Parser, Subcommand};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use shared::{Normalization, RunStatus, TrainConfig};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tch::{Device, Kind, Reduction, Tensor};

/// Name of the dataset folder under `DIR/data`.
const DATASET: &str = "synthetic";
/// Number of classes (CIFAR-10's).
const CLASSES: usize = 10;
/// Image side (CIFAR-10's).
const SIDE: u32 = 32;
/// The seed recipe's learning rate and momentum.
const LR: f64 = 0.001;
const MOMENTUM: f64 = 0.9;
/// Passes over the test split for the evaluation figure; the median is reported.
const EVAL_REPEATS: usize = 3;
/// Epochs of the engine run (and of PyTorch's); the fastest after the first is reported.
const EPOCHS: u32 = 3;
/// Timed windows of the ceiling, each an epoch's worth of steps; the fastest is reported.
const CEILING_WINDOWS: usize = 3;
/// Optimiser steps run before any timing starts.
const WARMUP_STEPS: usize = 3;
/// Requests before the timed ones (the first loads the model into the classifier's cache).
const WARMUP_REQUESTS: usize = 5;

#[derive(Parser)]
#[command(about = "Transfer Studio benchmark (see scripts/bench.sh)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writes the synthetic dataset as PNG class folders under DIR/data/synthetic.
    Data {
        /// Benchmark folder.
        dir: PathBuf,
        /// Training images.
        #[arg(long, default_value_t = 2560)]
        train: usize,
        /// Test images.
        #[arg(long, default_value_t = 512)]
        test: usize,
    },
    /// Measures the engine and prints the comparison with the PyTorch figures.
    Run {
        /// Benchmark folder (written by `data`).
        dir: PathBuf,
        /// JSON written by scripts/bench_pytorch.py.
        #[arg(long)]
        pytorch: PathBuf,
        /// Images per training batch.
        #[arg(long, default_value_t = 64)]
        batch: u32,
        /// Classify requests timed.
        #[arg(long, default_value_t = 50)]
        requests: usize,
        /// Gzipped size of the page's wasm, in bytes (bench.sh measures it).
        #[arg(long)]
        wasm_gzip_bytes: Option<u64>,
        /// Raw size of the page's wasm, in bytes.
        #[arg(long)]
        wasm_raw_bytes: Option<u64>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Data { dir, train, test } => write_dataset(&dir, train, test),
        Command::Run { dir, pytorch, batch, requests, wasm_gzip_bytes, wasm_raw_bytes } => {
            let pytorch: serde_json::Value = serde_json::from_slice(&std::fs::read(&pytorch)?)?;
            let wasm = wasm_gzip_bytes.map(|gzip| (gzip, wasm_raw_bytes.unwrap_or(0)));
            run(&dir, &pytorch, batch, requests, wasm)
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// The dataset
// ---------------------------------------------------------------------------------------------------

/// Writes `train` + `test` noisy 32x32 PNGs, class `i % 10` for image `i`: each class shifts the mean
/// colour a little under strong uniform noise, so a network learns something but the loss does not
/// collapse to zero (vanishing gradients turn into denormal floats, which are slow on CPUs).
fn write_dataset(dir: &Path, train: usize, test: usize) -> anyhow::Result<()> {
    let root = dir.join("data").join(DATASET);
    if root.exists() {
        std::fs::remove_dir_all(&root)?;
    }
    let started = Instant::now();
    for (split, count, seed_offset) in [("train", train, 0u64), ("test", test, 1 << 32)] {
        for class in 0..CLASSES {
            std::fs::create_dir_all(root.join(split).join(format!("class{class}")))?;
        }
        (0..count).into_par_iter().try_for_each(|index| {
            let class = index % CLASSES;
            let shift = class as i32 - 5;
            let base = [128 + 4 * shift, 128 - 3 * shift, 128 + 2 * (shift % 3)];
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed_offset + index as u64);
            let pixels: Vec<u8> = (0..(SIDE * SIDE) as usize)
                .flat_map(|_| base.map(|b| (b + rng.random_range(-100..=100)).clamp(0, 255) as u8))
                .collect();
            let image = image::RgbImage::from_raw(SIDE, SIDE, pixels).expect("32x32 RGB");
            image.save(root.join(split).join(format!("class{class}")).join(format!("{index:05}.png")))
        })?;
    }
    eprintln!(
        "[bench] wrote {train} train + {test} test {SIDE}x{SIDE} PNGs in {} class folders to {} ({:.1} s)",
        CLASSES,
        root.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------------------------------

/// The engine's figures.
struct Ours {
    threads: i32,
    load_start: String,
    load_seconds: f64,
    train_count: i64,
    test_count: i64,
    /// Per epoch: training images/s (the engine's own measure, training loop only) and the wall time
    /// from the end of the previous epoch to the end of this one (train, test pass, checkpoint).
    epochs: Vec<(f64, f64)>,
    eval_ips: f64,
    /// The ceiling's windows, in images per second.
    ceilings: Vec<f64>,
    /// Milliseconds per batch of index-select + normalise alone.
    pipeline_ms: f64,
    u8_bytes: usize,
    f32_bytes: usize,
    /// Classify latencies in milliseconds: the cold first request, then the timed ones sorted.
    first_request_ms: f64,
    latencies_ms: Vec<f64>,
}

fn run(
    dir: &Path,
    pytorch: &serde_json::Value,
    batch: u32,
    requests: usize,
    wasm: Option<(u64, u64)>,
) -> anyhow::Result<()> {
    // As the `transfer-studio` binary does at start.
    backend::allocator::keep_freed_memory_for_training();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    tch::set_num_threads(cpus as i32);
    let threads = tch::get_num_threads();
    let device = Device::Cpu;
    let data_dir = dir.join("data");
    let (mean, std) = Normalization::Half.mean_std();
    let mut config = TrainConfig::for_dataset(DATASET);
    config.batch_size = batch;
    config.lr = LR;
    config.momentum = MOMENTUM;
    config.normalization = Normalization::Half;
    config.epochs = EPOCHS;
    let load_start = load_average();
    eprintln!("[bench] engine: {threads} libtorch threads, batch {batch}, load average {load_start}");

    // The decoded dataset, as the engine holds it.
    let started = Instant::now();
    let dataset = data::load(&data::inspect(&data_dir, DATASET)?, SIDE, 0.0, 0)?;
    let load_seconds = started.elapsed().as_secs_f64();
    let (train_split, test_split) = (&dataset.train, &dataset.test);
    let u8_bytes = train_split.images.numel() * train_split.images.kind().elt_size_in_bytes();
    let f32_bytes = train_split.images.numel() * Kind::Float.elt_size_in_bytes();
    let batches = (train_split.len() + batch as i64 - 1) / batch as i64;

    // The data pipeline alone: what the engine does per batch besides the step.
    let pipeline_ms = pipeline(train_split, batch as i64, batches, mean, std);
    eprintln!("[bench] data pipeline alone: {pipeline_ms:.2} ms/batch");

    // 1. The engine itself; the first epoch warms up.
    let run_dir = dir.join("engine-run");
    let _ = std::fs::remove_dir_all(&run_dir);
    let paths = TrainingPaths {
        data_dir: data_dir.clone(),
        weights_dir: data_dir.join("weights"),
        run_dir,
        cifar10: DownloadSource::cifar10(),
    };
    let mut epochs = Vec::new();
    let mut epoch_ips = 0.0;
    let mut epoch_began = None;
    training::train(&config, &paths, device, &RunControl::default(), false, &mut |event| match event {
        TrainingEvent::Started { .. } => epoch_began = Some(Instant::now()),
        TrainingEvent::Progress(p) if p.batch == p.batches => epoch_ips = p.images_per_second,
        TrainingEvent::EpochCompleted(m) => {
            let wall = epoch_began.map_or(m.seconds, |t: Instant| t.elapsed().as_secs_f64());
            eprintln!(
                "[bench] engine epoch {}: {epoch_ips:.1} img/s training, {wall:.2} s wall (loss {:.3}, test acc {:.3})",
                m.epoch, m.train_loss, m.test_accuracy
            );
            epochs.push((epoch_ips, wall));
            epoch_began = Some(Instant::now());
        }
        _ => {}
    })?;

    // 3. The ceiling, warm, after the engine run (PyTorch's also runs after its training).
    let (ceilings, model) = ceiling(train_split, batch as i64, batches as usize, mean, std);
    eprintln!("[bench] ceiling windows: {ceilings:.1?} img/s");

    // 2. Evaluation throughput.
    let mut eval_ips: Vec<f64> = (0..EVAL_REPEATS)
        .map(|_| {
            let started = Instant::now();
            training::evaluate(&model, test_split, mean, std);
            test_split.len() as f64 / started.elapsed().as_secs_f64()
        })
        .collect();
    eval_ips.sort_by(f64::total_cmp);
    eprintln!("[bench] evaluation: {:.1} img/s (median of {EVAL_REPEATS})", eval_ips[EVAL_REPEATS / 2]);

    // 5. Classify latency over HTTP.
    let (first_request_ms, latencies_ms) = classify_latency(dir, &config, requests)?;

    let ours = Ours {
        threads,
        load_start,
        load_seconds,
        train_count: train_split.len(),
        test_count: test_split.len(),
        epochs,
        eval_ips: eval_ips[EVAL_REPEATS / 2],
        ceilings,
        pipeline_ms,
        u8_bytes,
        f32_bytes,
        first_request_ms,
        latencies_ms,
    };
    print_report(&ours, pytorch, batch, wasm);
    Ok(())
}

/// Images per second of the model and optimiser alone, in [`CEILING_WINDOWS`] windows of `steps`
/// training steps on one normalised batch already on the device, as the engine runs them (forward in
/// training mode, cross-entropy, zero_grad, backward, SGD step). Returns each window's throughput and
/// the model.
fn ceiling(split: &data::Split, batch: i64, steps: usize, mean: [f64; 3], std: [f64; 3]) -> (Vec<f64>, ResNet18) {
    let model = ResNet18::new(split.images.device(), CLASSES, 0);
    let parameters = model.parameters().into_iter().map(|(name, tensor, _)| (name, tensor, 1.0)).collect();
    let mut optimizer = Optimizer::new(Rule::Sgd { momentum: MOMENTUM, nesterov: false, weight_decay: 0.0 }, parameters);
    // The first batch of a shuffled epoch, as the engine would draw it: the split itself is ordered by
    // class, and a one-class batch drives the loss to zero and the gradients into slow denormals.
    let rows = training::epoch_order(0, 1, split.len()).narrow(0, 0, batch);
    let images = normalize(&split.images.index_select(0, &rows), mean, std); // [B, 3, 32, 32] f32
    let labels = split.labels.index_select(0, &rows); // [B]
    let mut step = || {
        let logits = model.forward_parts(&images, true); // [B, classes]
        let loss = logits.cross_entropy_loss::<Tensor>(&labels, None, Reduction::Mean, -100, 0.0);
        optimizer.zero_grad();
        loss.backward();
        optimizer.step(LR);
    };
    for _ in 0..WARMUP_STEPS {
        step();
    }
    let windows = (0..CEILING_WINDOWS)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..steps {
                step();
            }
            (steps as i64 * batch) as f64 / started.elapsed().as_secs_f64()
        })
        .collect();
    drop(step);
    (windows, model)
}

/// Milliseconds per batch of the engine's batch preparation on its own: index-select of the shuffled
/// indices from the `u8` split, conversion to float and normalisation, and the labels' index-select.
fn pipeline(split: &data::Split, batch: i64, batches: i64, mean: [f64; 3], std: [f64; 3]) -> f64 {
    let order = training::epoch_order(0, 1, split.len());
    let started = Instant::now();
    for index in 0..batches {
        let start = index * batch;
        let rows = order.narrow(0, start, batch.min(split.len() - start));
        let images = normalize(&split.images.index_select(0, &rows), mean, std);
        let labels = split.labels.index_select(0, &rows);
        let _ = std::hint::black_box((images, labels));
    }
    started.elapsed().as_secs_f64() * 1000.0 / batches as f64
}

/// Starts a studio and its server on `127.0.0.1:0` over `DIR/data`, trains a model for one epoch
/// through it, then times `POST /api/classify?run=ID` with one 32x32 PNG. Returns the first (cold)
/// request's latency and the timed ones', sorted, in milliseconds.
fn classify_latency(dir: &Path, config: &TrainConfig, requests: usize) -> anyhow::Result<(f64, Vec<f64>)> {
    let data_dir = dir.join("data");
    for stale in [data_dir.join(backend::studio::DATABASE_FILE), data_dir.join(backend::studio::RUNS_FOLDER)] {
        let _ = std::fs::remove_file(&stale);
        let _ = std::fs::remove_dir_all(&stale);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let _context = runtime.enter();
    let mut settings = StudioSettings::new(&data_dir);
    settings.cifar10 = DownloadSource { url: "http://127.0.0.1:9/unused".into(), md5: "0".repeat(32) };
    let studio = Studio::open(settings, Device::Cpu)?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let base = format!("http://{}", listener.local_addr()?);
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = studio.clone();
    runtime.spawn(async move {
        let _ = backend::server::serve(listener, served, ServerOptions::default(), async {
            let _ = stopped.await;
        })
        .await;
    });

    let mut one_epoch = config.clone();
    one_epoch.epochs = 1;
    let started = Instant::now();
    let run = studio.create_run(one_epoch)?;
    let run = loop {
        let run = studio.run(run.id)?;
        if run.status.is_finished() {
            break run;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    anyhow::ensure!(run.status == RunStatus::Completed && run.has_model, "the studio's run ended {:?}: {:?}", run.status, run.error);
    eprintln!("[bench] studio trained run {} for 1 epoch in {:.1} s", run.id, started.elapsed().as_secs_f64());

    let png = std::fs::read(data_dir.join(DATASET).join("test").join("class3").join("00003.png"))?;
    let url = format!("{base}/api/classify?run={}", run.id);
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let classify = || -> anyhow::Result<f64> {
        let started = Instant::now();
        let mut response = agent.post(&url).header("content-type", "image/png").send(&png[..])?;
        let answer: shared::ClassifyResponse = serde_json::from_str(&response.body_mut().read_to_string()?)?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        anyhow::ensure!(!answer.predictions.is_empty(), "no predictions");
        Ok(ms)
    };
    let first = classify()?;
    for _ in 1..WARMUP_REQUESTS {
        classify()?;
    }
    let mut latencies = (0..requests).map(|_| classify()).collect::<anyhow::Result<Vec<f64>>>()?;
    latencies.sort_by(f64::total_cmp);
    let _ = shutdown.send(());
    eprintln!(
        "[bench] classify over HTTP: first {first:.1} ms, median {:.2} ms of {requests}",
        percentile(&latencies, 0.5)
    );
    drop(studio);
    runtime.shutdown_timeout(Duration::from_secs(2));
    Ok((first, latencies))
}

// ---------------------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------------------

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "MISS" }
}

fn print_report(ours: &Ours, py: &serde_json::Value, batch: u32, wasm: Option<(u64, u64)>) {
    let f = |key: &str| py[key].as_f64().unwrap_or(f64::NAN);
    // The fastest epoch after the first, and the fastest ceiling window, as on PyTorch's side.
    let (train_ips, epoch_seconds) =
        ours.epochs.iter().skip(1).copied().max_by(|a, b| a.0.total_cmp(&b.0)).expect("EPOCHS > 1");
    let ceiling = ours.ceilings.iter().copied().fold(0.0, f64::max);
    let step_ms = f64::from(batch) * 1000.0 / ceiling;
    let overhead = 1.0 - train_ips / ceiling;
    let py_overhead = 1.0 - f("train_ips") / f("ceiling_ips");
    let ratio = train_ips / f("train_ips");
    let median = percentile(&ours.latencies_ms, 0.5);
    let p90 = percentile(&ours.latencies_ms, 0.9);
    let mb = |bytes: usize| bytes as f64 / 1e6;

    println!();
    println!("Transfer Studio benchmark: ResNet-18 (random init), {}x{} RGB, batch {batch}, SGD lr {LR} momentum {MOMENTUM}, CPU", SIDE, SIDE);
    println!(
        "Data: {} train + {} test synthetic PNGs in {CLASSES} class folders, read by both sides (ours: decoded once to u8; \
         PyTorch: ImageFolder + DataLoader, num_workers={}, ToTensor + Normalize per image per pass)",
        ours.train_count,
        ours.test_count,
        py["num_workers"]
    );
    println!(
        "Threads: ours {} libtorch intra-op; PyTorch {} (torch {}, torchvision {}). Both sides: {EPOCHS} epochs, the fastest after the first reported; ceiling: fastest of {CEILING_WINDOWS} windows.",
        ours.threads, py["threads"], py["torch"].as_str().unwrap_or("?"), py["torchvision"].as_str().unwrap_or("?")
    );
    println!(
        "Load average (1/5/15 min; an idle machine reads near 0): PyTorch start {}, ours start {}, end {}",
        py["load_average_start"].as_str().unwrap_or("?"),
        ours.load_start,
        load_average()
    );
    println!();
    println!("{:<44} {:>16} {:>16} {:>9}   {}", "", "Transfer Studio", "PyTorch recipe", "ratio", "target");
    println!("{}", "-".repeat(104));
    let row = |name: &str, ours: f64, theirs: f64, target: &str| {
        println!("{name:<44} {ours:>16.1} {theirs:>16.1} {:>8.3}x   {target}", ours / theirs);
    };
    row("training throughput (img/s)", train_ips, f("train_ips"), &format!(">= 1.2x  {}", verdict(ratio >= 1.2)));
    println!(
        "{:<44} {:>16.2} {:>16.2} {:>8.3}x",
        "epoch time (s: train + test pass)",
        epoch_seconds,
        f("epoch_seconds"),
        f("epoch_seconds") / epoch_seconds
    );
    row("evaluation throughput (img/s)", ours.eval_ips, f("eval_ips"), "");
    row("compute ceiling: one batch on device (img/s)", ceiling, f("ceiling_ips"), "");
    println!(
        "{:<44} {:>15.1}% {:>15.1}% {:>9}   < 5 %  {}",
        "data-pipeline overhead (1 - train/ceiling)",
        overhead * 100.0,
        py_overhead * 100.0,
        "",
        if overhead < 0.0 { "NOISY: ceiling measured below the engine; machine busy?" } else { verdict(overhead < 0.05) }
    );
    println!(
        "{:<44} {:>16}   train split {:.1} MB as u8; {:.1} MB as float32 ({:.0}x); full CIFAR-10: {:.0} MB vs {:.0} MB",
        "dataset memory",
        "",
        mb(ours.u8_bytes),
        mb(ours.f32_bytes),
        ours.f32_bytes as f64 / ours.u8_bytes as f64,
        mb(50_000 * 3 * 32 * 32),
        mb(50_000 * 3 * 32 * 32 * 4)
    );
    println!(
        "{:<44} {:>16}   median {median:.2} ms, p90 {p90:.2} ms over {} requests (first, cold: {:.1} ms)   < 20 ms  {}",
        "classify one 32x32 PNG over HTTP",
        "",
        ours.latencies_ms.len(),
        ours.first_request_ms,
        verdict(median < 20.0)
    );
    match wasm {
        Some((gzip, raw)) => println!(
            "{:<44} {:>16}   {:.1} KB gzipped ({:.1} KB raw)   < 400 KB  {}",
            "page wasm bundle (dist/*.wasm)",
            "",
            gzip as f64 / 1024.0,
            raw as f64 / 1024.0,
            verdict(gzip < 400 * 1024)
        ),
        None => println!("{:<44} {:>16}   not measured (no dist/*.wasm)", "page wasm bundle", ""),
    }
    println!();
    println!("Details:");
    for (index, (ips, wall)) in ours.epochs.iter().enumerate() {
        println!("  ours epoch {}: {ips:.1} img/s training, {wall:.2} s wall (includes test pass and checkpoint)", index + 1);
    }
    if let Some(epochs) = py["epochs"].as_array() {
        for (index, epoch) in epochs.iter().enumerate() {
            println!(
                "  PyTorch epoch {}: {:.1} img/s training, {:.2} s train + {:.2} s test",
                index + 1,
                epoch["train_ips"].as_f64().unwrap_or(f64::NAN),
                epoch["train_seconds"].as_f64().unwrap_or(f64::NAN),
                epoch["test_seconds"].as_f64().unwrap_or(f64::NAN)
            );
        }
    }
    println!(
        "  ceiling windows (img/s): ours {:.1?}, PyTorch {}; {:.1} ms per step at our fastest",
        ours.ceilings, py["ceiling_windows"], step_ms
    );
    println!(
        "  ours batch preparation alone (index_select + float + normalise): {:.2} ms per batch = {:.1}% of a step",
        ours.pipeline_ms,
        100.0 * ours.pipeline_ms / step_ms
    );
    println!(
        "  ours one-off decode of {} PNGs into u8 tensors: {:.2} s (not in any epoch time)",
        ours.train_count + ours.test_count,
        ours.load_seconds
    );
    println!(
        "  PyTorch loading alone (iterate the train DataLoader, no model): {:.2} s per epoch",
        f("loader_seconds")
    );
}
