//! `make bench-data` (issue 27, point 3): datasets of any size, on real-sized JPEGs.
//!
//! Two sub-commands, which `scripts/bench-data.sh` runs:
//!
//! - `bench jpegs DIR` writes `DIR/data/jpegs/{train,test}/classN/*.jpg`, 224x224 JPEGs (quality
//!   [`JPEG_QUALITY`]) of waves, discs and noise, so that decoding them costs what decoding photographs does;
//!   it keeps a set already there of the same sizes (`DIR/jpegs.complete` records them).
//! - `bench data-scale DIR --python PY --script scripts/bench_data_pytorch.py` measures, in one process,
//!   and prints one table:
//!   1. decoding per core: the decoded cache built afresh on a one-thread rayon pool (and one libtorch
//!      thread) from a subset of the files (hard links under `DIR/subset/data`), interleaved round by round
//!      with PIL + torchvision decoding the same files in one Python process; then built on every core from
//!      every file;
//!   2. time to the first batch of a real run ([`training::train`], cancelled at its first
//!      [`TrainingEvent::Progress`], which the engine sends after the first batch because a 224 px batch takes
//!      longer than its progress interval): with the cache removed (decoding, then the first batch), and with
//!      it present, held in memory and streamed;
//!   3. training throughput of real runs streamed from the cache's mapping (`dataset_memory: Some(1)`) and held
//!      in memory (`None`), over the same batches of the same epoch (the first warms up), and the compute
//!      ceiling of [`Ceiling`] between them, in interleaved rounds whose order alternates; then the batch
//!      preparation alone ([`pipeline`]) from the mapping and from memory.
//!
//! `scripts/bench-data.sh` runs it under libgomp's own waiting policy, as the product runs, unless
//! `BENCH_DATA_OMP_WAIT_POLICY` says otherwise; the table says which policy it ran under. Until
//! 2026-12-07 it ran with `OMP_WAIT_POLICY=PASSIVE`: the batch-stream thread then started an OpenMP team of
//! its own beside the trainer's, and libgomp throttles idle workers' spinning once a process has more
//! OpenMP threads than CPUs, so the three measurements stood on different terms (streamed came out 1.4x
//! to 2.4x faster than resident on a busy machine). The batch thread now gathers with one OpenMP thread
//! and starts no team (`backend/src/engine/teams.rs`).

use super::{load_average, median, pipeline, verdict, write_class_folders, Ceiling, PyTorch, CLASSES};
use backend::data::{self, download::DownloadSource, Recipe};
use backend::engine::training::{self, RunControl, TrainingEvent, TrainingPaths};
use rand::{Rng, SeedableRng};
use shared::{PreparationStep, TrainConfig};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::Device;

/// The dataset's folder name, under `DIR/data` and `DIR/subset/data`.
const DATASET: &str = "jpegs";
/// Side of every image and the runs' input size, in pixels.
const SIDE: u32 = 224;
/// JPEG quality of the written images (a common camera and web setting).
const JPEG_QUALITY: u8 = 85;
/// Bumped whenever `bench jpegs` writes different images, so that an older set is written again.
const JPEG_SET_VERSION: u32 = 1;

/// What `bench data-scale` is asked to measure.
pub(super) struct ScaleOptions {
    /// Benchmark folder (written by `bench jpegs`).
    pub(super) dir: PathBuf,
    /// Python interpreter with torch, torchvision and Pillow.
    pub(super) python: PathBuf,
    /// The PIL + torchvision side, scripts/bench_data_pytorch.py.
    pub(super) script: PathBuf,
    /// Files in the one-core decoding comparison.
    pub(super) subset: usize,
    /// Rounds of the decoding and training comparisons.
    pub(super) rounds: usize,
    /// Batches timed per training window, after one warm-up batch.
    pub(super) batches: usize,
    /// Images per training batch.
    pub(super) batch: u32,
}

// ---------------------------------------------------------------------------------------------------
// The images
// ---------------------------------------------------------------------------------------------------

/// Writes `train` + `test` JPEGs in [`CLASSES`] class folders under `DIR/data/jpegs`, in parallel, unless
/// a complete set of these sizes is there already.
pub(super) fn write_jpegs(dir: &Path, train: usize, test: usize) -> anyhow::Result<()> {
    let root = dir.join("data").join(DATASET);
    let marker = dir.join("jpegs.complete");
    let sizes =
        format!("{train} train {test} test {SIDE} px {CLASSES} classes quality {JPEG_QUALITY} v{JPEG_SET_VERSION}");
    if root.is_dir() && std::fs::read_to_string(&marker).is_ok_and(|written| written == sizes) {
        eprintln!("[bench-data] keeping the {train} + {test} JPEGs in {}", root.display());
        return Ok(());
    }
    let _ = std::fs::remove_file(&marker);
    if root.exists() {
        std::fs::remove_dir_all(&root)?;
    }
    let started = Instant::now();
    write_class_folders(&root, (train, test), |folder, index, seed, class| {
        let file = std::io::BufWriter::new(std::fs::File::create(folder.join(format!("{index:05}.jpg")))?);
        let image = textured_image(seed, class);
        Ok(image::codecs::jpeg::JpegEncoder::new_with_quality(file, JPEG_QUALITY).encode_image(&image)?)
    })?;
    std::fs::write(&marker, sizes)?;
    eprintln!(
        "[bench-data] wrote {train} train + {test} test {SIDE}x{SIDE} JPEGs in {CLASSES} class folders to {} ({:.1} s)",
        root.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A `SIDE`-pixel image of class `class`: a class colour under a random wave pattern and a few random
/// discs, with per-pixel noise, so its JPEG has edges, texture and noise to code, as a photograph does.
fn textured_image(seed: u64, class: usize) -> image::RgbImage {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let class = class as f32;
    let base = [60.0 + 18.0 * class, 200.0 - 15.0 * class, 90.0 + 11.0 * ((class * 7.0) % 10.0)];
    let (fx, fy, phase) =
        (rng.random_range(0.02..0.3f32), rng.random_range(0.02..0.3f32), rng.random_range(0.0..6.3f32));
    let discs: Vec<([f32; 2], f32, [f32; 3])> = (0..4)
        .map(|_| {
            let centre = [rng.random_range(0.0..SIDE as f32), rng.random_range(0.0..SIDE as f32)];
            (centre, rng.random_range(10.0..60.0f32), [(); 3].map(|()| rng.random_range(0.0..255.0f32)))
        })
        .collect();
    image::RgbImage::from_fn(SIDE, SIDE, |x, y| {
        let (x, y) = (x as f32, y as f32);
        let wave = 50.0 * (x * fx + phase).sin() * (y * fy).cos();
        let disc = discs.iter().find(|(c, r, _)| (x - c[0]).powi(2) + (y - c[1]).powi(2) < r * r);
        let colour = disc.map_or(base.map(|b| b + wave), |(_, _, colour)| *colour);
        image::Rgb(colour.map(|c| (c + rng.random_range(-24.0..24.0f32)).clamp(0.0, 255.0) as u8))
    })
}

/// Hard-links about `count` of the images (the same share of each split, every class) into
/// `DIR/subset/data/jpegs`, made afresh; returns that data folder.
fn link_subset(dir: &Path, count: usize) -> anyhow::Result<PathBuf> {
    let data_dir = dir.join("subset").join("data");
    let _ = std::fs::remove_dir_all(dir.join("subset"));
    let source = data::inspect(&dir.join("data"), DATASET)?;
    let total = source.info.train_count + source.info.test_count;
    for split in ["train", "test"] {
        for class in 0..CLASSES {
            let from = source.root.join(split).join(format!("class{class}"));
            let to = data_dir.join(DATASET).join(split).join(format!("class{class}"));
            std::fs::create_dir_all(&to)?;
            let mut files: Vec<_> =
                std::fs::read_dir(&from)?.map(|entry| entry.map(|e| e.file_name())).collect::<Result<_, _>>()?;
            files.sort();
            let keep = files.len() * count / total;
            for name in files.into_iter().take(keep) {
                std::fs::hard_link(from.join(&name), to.join(&name))?;
            }
        }
    }
    Ok(data_dir)
}

// ---------------------------------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------------------------------

/// One build of a decoded cache.
struct CacheBuild {
    images: i64,
    /// From the call to the last progress report: listing, decoding, writing and hashing the pixels.
    decoding_seconds: f64,
    /// From the call to the mapped dataset: the above, then the labels, the header and the sync.
    seconds: f64,
}

impl CacheBuild {
    /// Images per second of the whole build, per thread of `threads`.
    fn per_core(&self, threads: usize) -> f64 {
        self.images as f64 / self.seconds / threads as f64
    }
}

/// Builds the cache of the dataset in `data_dir` afresh (any earlier one removed) on a rayon pool of
/// `threads` threads, with as many libtorch threads.
fn build_cache(data_dir: &Path, threads: usize) -> anyhow::Result<CacheBuild> {
    let _ = std::fs::remove_dir_all(data::cache_dir(data_dir));
    let source = data::inspect(data_dir, DATASET)?;
    let recipe = Recipe { input_size: SIDE, validation_fraction: 0.2, seed: 0 };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
    let torch_threads = tch::get_num_threads();
    tch::set_num_threads(threads as i32);
    let started = Instant::now();
    let mut decoding_seconds = 0.0;
    let dataset = pool.install(|| {
        data::load_reporting(&source, &recipe, &mut |done, total| {
            if done == total {
                decoding_seconds = started.elapsed().as_secs_f64();
            }
            ControlFlow::Continue(())
        })
    });
    let seconds = started.elapsed().as_secs_f64();
    tch::set_num_threads(torch_threads);
    let dataset = dataset?;
    Ok(CacheBuild { images: dataset.train.len() + dataset.test.len(), decoding_seconds, seconds })
}

/// `bench cache-build`: the decoded cache of every file under `dir/data` built afresh `rounds` times, on one
/// thread and on every core, each build's images per second printed with the load average.
pub(super) fn time_cache_builds(dir: &Path, rounds: usize) -> anyhow::Result<()> {
    let cpus = std::thread::available_parallelism()?.get();
    for round in 1..=rounds {
        for threads in [1, cpus] {
            let build = build_cache(&dir.join("data"), threads)?;
            println!(
                "round {round}, {threads} thread(s): {} images in {:.2} s (the last decoded at {:.2} s): {:.1} img/s, {:.1} per thread (load {})",
                build.images,
                build.seconds,
                build.decoding_seconds,
                build.images as f64 / build.seconds,
                build.per_core(threads),
                load_average()
            );
        }
    }
    Ok(())
}

/// The decoding comparison's figures.
struct Decoding {
    /// Per round: our one-thread build, PIL + torchvision's images/s on one thread.
    rounds: Vec<(CacheBuild, f64)>,
    /// Our build of every file on every core.
    every_core: CacheBuild,
    /// Images/s on one thread of two parts of our build, each alone: decoding with CHW reordering, and
    /// hashing the pixels.
    parts: (f64, f64),
}

/// Decoding per core: `rounds` interleaved rounds on the subset, then one build of every file on every core.
fn compare_decoding(
    options: &ScaleOptions,
    subset: &Path,
    python: &mut PyTorch,
    cpus: usize,
) -> anyhow::Result<Decoding> {
    let mut rounds = Vec::new();
    for round in 1..=options.rounds {
        let ours = build_cache(subset, 1)?;
        let theirs = python.ask_number("decode", "ips")?;
        eprintln!(
            "[bench-data] decoding round {round}: ours {:.1} img/s on one thread ({:.1} to the last image), PIL + torchvision {theirs:.1}",
            ours.per_core(1),
            ours.images as f64 / ours.decoding_seconds
        );
        rounds.push((ours, theirs));
    }
    let every_core = build_cache(&options.dir.join("data"), cpus)?;
    eprintln!(
        "[bench-data] cache of {} images on {cpus} threads: {:.1} s ({:.1} img/s per core)",
        every_core.images,
        every_core.seconds,
        every_core.per_core(cpus)
    );
    Ok(Decoding { rounds, every_core, parts: build_parts(subset)? })
}

/// Images/s on this thread of two parts of a cache build on the files under `data_dir`, each alone: the
/// image crate's decoding (what the cache's decoder calls, without its size limits) with the reordering to
/// channel planes, and the SHA-256 of the decoded pixels.
fn build_parts(data_dir: &Path) -> anyhow::Result<(f64, f64)> {
    let source = data::inspect(data_dir, DATASET)?;
    let mut files = Vec::new();
    for split in ["train", "test"] {
        for class in std::fs::read_dir(source.root.join(split))? {
            for file in std::fs::read_dir(class?.path())? {
                files.push(file?.path());
            }
        }
    }
    let started = Instant::now();
    let mut planes = Vec::with_capacity(files.len());
    for path in &files {
        let rgb = image::load_from_memory(&std::fs::read(path)?)?.into_rgb8(); // [H, W, 3]
        let plane = rgb.as_raw().len() / 3;
        let mut chw = vec![0u8; 3 * plane]; // [3, H, W]
        for (i, pixel) in rgb.pixels().enumerate() {
            (chw[i], chw[plane + i], chw[2 * plane + i]) = (pixel[0], pixel[1], pixel[2]);
        }
        planes.push(chw);
    }
    let decoding = files.len() as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut hash = <sha2::Sha256 as sha2::Digest>::new();
    for chw in &planes {
        sha2::Digest::update(&mut hash, chw);
    }
    std::hint::black_box(sha2::Digest::finalize(hash));
    Ok((decoding, files.len() as f64 / started.elapsed().as_secs_f64()))
}

/// A run of the JPEG dataset at 224 px, one epoch, `batch` images a batch.
fn run_config(batch: u32) -> TrainConfig {
    let mut config = TrainConfig::for_dataset(DATASET);
    config.input_size = SIDE;
    config.batch_size = batch;
    config.epochs = 1;
    config
}

/// Where a run over `DIR/data` keeps its files, holding at most `memory` bytes of images.
fn run_paths(dir: &Path, memory: Option<u64>) -> TrainingPaths {
    let data_dir = dir.join("data");
    let run_dir = dir.join("engine-run");
    let _ = std::fs::remove_dir_all(&run_dir);
    TrainingPaths {
        weights_dir: data_dir.join("weights"),
        data_dir,
        run_dir,
        cifar10: DownloadSource::cifar10(),
        imagenet: backend::model::pretrained::PretrainedSource::imagenet_resnet18(),
        dataset_memory: memory,
    }
}

/// What one run did before its batches, and when each progress report came.
struct RunTimeline {
    /// Whether it decoded the dataset (no cache was there).
    decoded: bool,
    /// Whether it streamed its batches from the cache.
    streamed: bool,
    /// Seconds from the call to `Started`.
    started: f64,
    /// (batches done, seconds from the call) of each progress report.
    progress: Vec<(u32, f64)>,
}

impl RunTimeline {
    /// Seconds from the call to the end of the first batch.
    fn first_batch(&self) -> f64 {
        self.progress.first().map_or(f64::NAN, |&(_, seconds)| seconds)
    }

    /// Images per second between the first progress report and the last.
    fn images_per_second(&self, batch: u32) -> f64 {
        match (self.progress.first(), self.progress.last()) {
            (Some(&(b0, t0)), Some(&(b1, t1))) if b1 > b0 => f64::from((b1 - b0) * batch) / (t1 - t0),
            _ => f64::NAN,
        }
    }
}

/// Runs the engine until `batches` batches are done, then cancels it, and returns what happened when.
fn run_until(dir: &Path, memory: Option<u64>, batch: u32, batches: u32) -> anyhow::Result<RunTimeline> {
    let (config, paths, control) = (run_config(batch), run_paths(dir, memory), RunControl::default());
    let mut timeline = RunTimeline { decoded: false, streamed: false, started: f64::NAN, progress: Vec::new() };
    let started = Instant::now();
    training::train(&config, &paths, Device::Cpu, &control, false, &mut |event| match event {
        TrainingEvent::Preparing(p) if p.step == PreparationStep::Decoding && p.done > 0 => timeline.decoded = true,
        TrainingEvent::Note(note) if note.contains("streaming") => timeline.streamed = true,
        TrainingEvent::Started { .. } => timeline.started = started.elapsed().as_secs_f64(),
        TrainingEvent::Progress(p) => {
            timeline.progress.push((p.batch, started.elapsed().as_secs_f64()));
            if p.batch >= batches {
                control.cancel();
            }
        }
        _ => {}
    })?;
    anyhow::ensure!(
        timeline.progress.last().is_some_and(|&(b, _)| b >= batches),
        "the run ended before {batches} batches"
    );
    Ok(timeline)
}

/// Time to the first batch: with the cache removed (held as a run holds it by default), then with it
/// present, held in memory and streamed.
fn first_batches(dir: &Path, batch: u32) -> anyhow::Result<[RunTimeline; 3]> {
    let _ = std::fs::remove_dir_all(data::cache_dir(&dir.join("data")));
    let mut runs = Vec::new();
    for (name, memory) in
        [("cold cache", None), ("warm cache, default memory", None), ("warm cache, streamed", Some(1))]
    {
        let run = run_until(dir, memory, batch, 1)?;
        eprintln!(
            "[bench-data] {name}: started after {:.1} s, first batch after {:.1} s (decoded: {}, streamed: {})",
            run.started,
            run.first_batch(),
            run.decoded,
            run.streamed
        );
        runs.push(run);
    }
    Ok(runs.try_into().unwrap_or_else(|_| unreachable!("three runs")))
}

/// One round of the training comparison, in images per second.
struct TrainingRound {
    streamed: f64,
    resident: f64,
    ceiling: f64,
}

/// The training comparison's figures.
struct Training {
    rounds: Vec<TrainingRound>,
    /// Milliseconds per batch of the batch preparation alone: from the mapping, from memory.
    pipeline_ms: (f64, f64),
}

/// Streamed against resident training over the same batches, with a ceiling window between them, in
/// rounds whose order alternates (so that a drift of the machine's speed favours neither); then the batch
/// preparation alone from the mapping and from memory.
fn compare_training(options: &ScaleOptions) -> anyhow::Result<Training> {
    let (dir, batch) = (options.dir.as_path(), options.batch);
    let source = data::inspect(&dir.join("data"), DATASET)?;
    let recipe = Recipe { input_size: SIDE, validation_fraction: 0.2, seed: 0 };
    let mapped = data::load_reporting(&source, &recipe, &mut |_, _| ControlFlow::Continue(()))?;
    let (mean, std) = run_config(batch).normalization.mean_std();
    let mut ceiling = Ceiling::new(&mapped.train, i64::from(batch), mean, std);
    let window = |memory| -> anyhow::Result<f64> {
        let run = run_until(dir, memory, batch, 1 + options.batches as u32)?;
        anyhow::ensure!(run.streamed == memory.is_some(), "the run was not held as asked");
        Ok(run.images_per_second(batch))
    };
    let mut rounds = Vec::new();
    for round in 0..options.rounds {
        let streamed_first = round % 2 == 0;
        let first = window(if streamed_first { Some(1) } else { None })?;
        let ceiling_ips = ceiling.window(options.batches);
        let second = window(if streamed_first { None } else { Some(1) })?;
        let (streamed, resident) = if streamed_first { (first, second) } else { (second, first) };
        eprintln!(
            "[bench-data] training round {}: streamed {streamed:.2} img/s, resident {resident:.2}, ceiling {ceiling_ips:.2}: {:.3}x",
            round + 1,
            streamed / resident
        );
        rounds.push(TrainingRound { streamed, resident, ceiling: ceiling_ips });
    }
    let batches = options.batches as i64;
    let from_mapping = pipeline(&mapped.train, i64::from(batch), batches, mean, std);
    let from_memory = pipeline(&mapped.train.in_memory(Device::Cpu)?, i64::from(batch), batches, mean, std);
    Ok(Training { rounds, pipeline_ms: (from_mapping, from_memory) })
}

/// `bench data-scale`: every measurement, then the table.
pub(super) fn measure(options: &ScaleOptions) -> anyhow::Result<()> {
    backend::engine::allocator::keep_freed_memory_for_training();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    tch::set_num_threads(cpus as i32);
    let load_start = load_average();
    let subset = link_subset(&options.dir, options.subset)?;
    let script_args = [subset.join(DATASET).into_os_string()];
    let mut python = PyTorch::start(&options.python, &options.script, &script_args)?;
    let decoding = compare_decoding(options, &subset, &mut python, cpus)?;
    let setup = python.setup.clone();
    drop(python);
    let starts = first_batches(&options.dir, options.batch)?;
    let training = compare_training(options)?;
    let report = Report { options, cpus, load_start, setup, decoding, starts, training };
    report.print();
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------------------

/// Everything `bench data-scale` measured.
struct Report<'a> {
    options: &'a ScaleOptions,
    cpus: usize,
    load_start: String,
    /// The Python worker's description of itself.
    setup: serde_json::Value,
    decoding: Decoding,
    starts: [RunTimeline; 3],
    training: Training,
}

impl Report<'_> {
    fn print(&self) {
        let (options, cpus) = (self.options, self.cpus);
        let images = self.decoding.every_core.images;
        println!();
        println!(
            "Transfer Studio, datasets of any size: {images} JPEGs of {SIDE}x{SIDE} (quality {JPEG_QUALITY}, {CLASSES} \
             classes), input {SIDE} px, CPU, {cpus} cores; PIL {} (libjpeg-turbo: {}), torch {}, torchvision {}",
            self.setup["pillow"].as_str().unwrap_or("?"),
            self.setup["libjpeg_turbo"],
            self.setup["torch"].as_str().unwrap_or("?"),
            self.setup["torchvision"].as_str().unwrap_or("?"),
        );
        println!(
            "Load average (1/5/15 min; the benchmark itself adds about 1-2): start {}, end {}. OMP_WAIT_POLICY: {}",
            self.load_start,
            load_average(),
            std::env::var("OMP_WAIT_POLICY").unwrap_or_else(|_| "unset (libgomp's default: spin, then sleep)".into())
        );
        self.print_decoding(cpus);
        self.print_starts();
        self.print_training(options);
    }

    fn print_decoding(&self, cpus: usize) {
        let rounds = &self.decoding.rounds;
        let ours = median(rounds.iter().map(|(build, _)| build.per_core(1)));
        let theirs = median(rounds.iter().map(|&(_, ips)| ips));
        let ratio = median(rounds.iter().map(|(build, ips)| build.per_core(1) / ips));
        let every = &self.decoding.every_core;
        println!();
        println!(
            "1. Decoding, images/s per core ({} files; medians of {} interleaved rounds)",
            rounds.first().map_or(0, |(build, _)| build.images),
            rounds.len()
        );
        println!("{:<62} {:>12} {:>18} {:>9}", "", "ours", "PIL+torchvision", "ratio");
        println!("{}", "-".repeat(104));
        println!(
            "{:<62} {ours:>12.1} {theirs:>18.1} {ratio:>8.2}x",
            "one thread: decoded cache built / open+convert+Resize+PILToTensor"
        );
        println!(
            "{:<62} {:>12.1}",
            "  ours to the last image (before labels, header and sync)",
            median(rounds.iter().map(|(build, _)| build.images as f64 / build.decoding_seconds))
        );
        println!(
            "{:<62} {:>12.1}   {} images in {:.1} s ({:.1} s to the last image) = {:.1} img/s, {:.2}x one thread",
            format!("every core ({cpus} threads), every file, per core"),
            every.per_core(cpus),
            every.images,
            every.seconds,
            every.decoding_seconds,
            every.images as f64 / every.seconds,
            every.per_core(cpus) * cpus as f64 / ours
        );
        let (decode_only, hashing) = self.decoding.parts;
        println!(
            "{:<62} {decode_only:>12.1}   (SHA-256 of the pixels alone: {hashing:.0} img/s)",
            "  ours, the image crate's decoder alone + CHW (no cache)"
        );
    }

    fn print_starts(&self) {
        println!();
        println!(
            "2. Time to the first batch of a real run (from the call to the end of batch 1, batch {})",
            self.options.batch
        );
        println!("{}", "-".repeat(104));
        let names = [
            "cold cache (removed: decode, then batch 1)",
            "warm cache, held in memory (the default)",
            "warm cache, streamed (dataset_memory 1 byte)",
        ];
        for (name, run) in names.iter().zip(&self.starts) {
            println!(
                "{name:<62} {:>8.1} s   (Started after {:.1} s; decoded: {}, streamed: {})",
                run.first_batch(),
                run.started,
                if run.decoded { "yes" } else { "no" },
                if run.streamed { "yes" } else { "no" }
            );
        }
    }

    fn print_training(&self, options: &ScaleOptions) {
        let rounds = &self.training.rounds;
        let of = |figure: fn(&TrainingRound) -> f64| median(rounds.iter().map(figure));
        let ratio = of(|r| r.streamed / r.resident);
        let (streamed_ms, resident_ms) = self.training.pipeline_ms;
        let step_ms = f64::from(options.batch) * 1000.0 / of(|r| r.ceiling);
        println!();
        println!(
            "3. Training at {SIDE} px on the CPU, batch {}: batches 2-{} of epoch 1 (batch 1 warms up); medians of {} rounds, \
             order alternating",
            options.batch,
            options.batches + 1,
            rounds.len()
        );
        println!("{:<62} {:>12} {:>18} {:>9}", "", "streamed", "held in memory", "ratio");
        println!("{}", "-".repeat(104));
        println!(
            "{:<62} {:>12.2} {:>18.2} {ratio:>8.3}x   >= 0.9x  {}",
            "training throughput (img/s)",
            of(|r| r.streamed),
            of(|r| r.resident),
            verdict(ratio >= 0.9)
        );
        println!("{:<62} {:>12.2}", "compute ceiling: one batch on device (img/s)", of(|r| r.ceiling));
        println!(
            "{:<62} {:>11.1}% {:>17.1}%",
            "data-pipeline overhead (1 - train/ceiling)",
            of(|r| 1.0 - r.streamed / r.ceiling) * 100.0,
            of(|r| 1.0 - r.resident / r.ceiling) * 100.0
        );
        println!(
            "{:<62} {streamed_ms:>9.2} ms {resident_ms:>15.2} ms   ({:.1} % and {:.1} % of a {step_ms:.0} ms step)",
            "batch preparation alone (index_select + float + normalise)",
            100.0 * streamed_ms / step_ms,
            100.0 * resident_ms / step_ms
        );
        println!("Rounds (img/s):");
        for (index, r) in rounds.iter().enumerate() {
            println!(
                "  {}{}: streamed {:.2}, held in memory {:.2}, ceiling {:.2}: {:.3}x",
                index + 1,
                if index % 2 == 0 { " (streamed first)" } else { " (held in memory first)" },
                r.streamed,
                r.resident,
                r.ceiling,
                r.streamed / r.resident
            );
        }
    }
}
