//! The command line: `serve` runs the studio; `sweep` runs a sweep on it headless; `train` and `classify` use
//! the same engine headless.

mod sweep;

use crate::engine::inference::Classifier;
use crate::engine::receipt;
use crate::engine::run_dir::RunDir;
use crate::engine::training::{self, RunControl, TrainError, TrainOutcome, TrainingEvent, TrainingPaths};
use crate::engine::{best_device, device_name};
use crate::studio::{Studio, StudioSettings};
use crate::web::ServerOptions;
use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use shared::{EpochMetrics, PreparationStep, RunReceipt};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use tch::Device;

/// Transfer Studio: train image classifiers by transfer learning, from a browser or the command line.
#[derive(Parser, Debug)]
#[command(version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the studio: the page at /, the API under /api, live events at /ws.
    Serve {
        /// Address to listen on. Loopback by default: nothing outside this machine can connect.
        #[arg(long, default_value = "127.0.0.1")]
        host: IpAddr,
        /// Port to listen on; 0 picks a free one.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Folder of datasets, run history and models.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// Folder of pretrained weight files [default: DATA_DIR/weights].
        #[arg(long)]
        weights_dir: Option<PathBuf>,
        /// Folder of the built page (Trunk's output).
        #[arg(long, default_value = "./dist")]
        ui_dir: PathBuf,
        /// Access token every request must carry: letters, digits and - . _ ~. Required, and at least 16
        /// characters long, when --host is not a loopback address.
        #[arg(long, env = "TRANSFER_STUDIO_TOKEN")]
        token: Option<String>,
        /// A host name the studio answers to besides loopback names and IP addresses, e.g. the name a
        /// reverse proxy forwards: `name` (any port) or `name:port`. Repeatable.
        #[arg(long = "allowed-host", value_name = "HOST")]
        allowed_hosts: Vec<String>,
        /// Seconds between two checkpoints inside a long epoch: a crash loses at most this much training.
        #[arg(long, default_value_t = 300)]
        checkpoint_interval: u64,
        #[command(flatten)]
        training: TrainingArgs,
    },
    /// Train one attempt of a run from the job file the studio wrote in its folder, reporting through the
    /// run folder; what a Slurm job runs (see `serve --executor slurm`).
    Worker {
        /// The attempt's job file (`runs/<id>/worker/attempt-<n>.json`).
        #[arg(long)]
        job: PathBuf,
    },
    /// Write a brotli (.br) and a gzip (.gz) copy beside each text and WebAssembly file of the built page,
    /// which `serve` then sends to browsers that accept them. `make run` and `make test` do this after
    /// Trunk builds the page.
    Precompress {
        /// Folder of the built page (Trunk's output).
        #[arg(long, default_value = "./dist")]
        ui_dir: PathBuf,
    },
    /// Train one run headless with a progress bar and a line per epoch; the model and the run's receipt
    /// (receipt.json, with every epoch's metrics) are saved to --out.
    Train {
        /// Repeat a finished run from its receipt (downloaded from the page or GET /api/runs/{id}/receipt):
        /// its config, seed and thread count, refused if the dataset's content or the program version
        /// differs; every epoch's metrics are compared with the receipt's, bit for bit.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["config", "dataset", "epochs", "batch_size", "lr", "seed", "weights"])]
        receipt: Option<PathBuf>,
        /// A JSON training config, the same format `POST /api/runs` takes. Flags below override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Dataset folder name (required without --config).
        #[arg(long)]
        dataset: Option<String>,
        /// Epochs to train.
        #[arg(long)]
        epochs: Option<u32>,
        /// Images per step.
        #[arg(long)]
        batch_size: Option<u32>,
        /// Learning rate.
        #[arg(long)]
        lr: Option<f64>,
        /// Seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Starting weights: "none", "imagenet" (downloaded on first use) or a file in the weights folder.
        #[arg(long)]
        weights: Option<String>,
        /// Folder of datasets.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// Folder of pretrained weight files [default: DATA_DIR/weights].
        #[arg(long)]
        weights_dir: Option<PathBuf>,
        /// Folder the trained model is written to.
        #[arg(long, default_value = "./model")]
        out: PathBuf,
    },
    /// Sweep the learning rate for a training config (as fastai's lr_find: 1e-7 up to 10 over at most 100
    /// batches on a throwaway copy of the starting model) and print the suggested rate; nothing is written.
    LrFind {
        /// A JSON training config, the same format `POST /api/runs` takes.
        #[arg(long)]
        config: PathBuf,
        /// Folder of datasets.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// Folder of pretrained weight files [default: DATA_DIR/weights].
        #[arg(long)]
        weights_dir: Option<PathBuf>,
    },
    /// Check a dataset (or a version, NAME@vN): class counts, imbalance, image sizes, unreadable images
    /// and duplicates, flagging copies between training and test images. Nothing is written.
    Health {
        /// The dataset's folder name in the data folder.
        dataset: String,
        /// Folder of datasets.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// Print the answer as JSON, as GET /api/datasets/{name}/health gives it.
        #[arg(long)]
        json: bool,
    },
    /// Export a saved model as ONNX (opset 17, input `input` [N,3,S,S] normalised, output `logits`, with
    /// classes, mean, std and input size in its metadata), checked against the model on up to 8 test
    /// images of its dataset (random images where the dataset is gone) before it is written.
    Export {
        /// A saved model: a run's folder (e.g. DATA_DIR/runs/7), a `train --out` folder, or a checkpoint
        /// .safetensors downloaded from the page.
        #[arg(long)]
        model: PathBuf,
        /// The ONNX file to write.
        #[arg(long)]
        out: PathBuf,
        /// Folder of datasets, for the test images the file is checked on.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
    },
    /// Run a sweep headless (the JSON `POST /api/sweeps` takes) on the studio of a data folder, with a
    /// progress bar and a line per trial, then print the leaderboard. The sweep is kept in the folder's
    /// history like one made from the page; stopped with Ctrl-C, it goes on at the next `serve` or
    /// `sweep` over the folder. Not while a `serve` uses the same folder.
    Sweep {
        /// The sweep, as JSON.
        #[arg(long)]
        config: PathBuf,
        /// Folder of datasets, run history and models.
        #[arg(long, default_value = "./data")]
        data_dir: PathBuf,
        /// Folder of pretrained weight files [default: DATA_DIR/weights].
        #[arg(long)]
        weights_dir: Option<PathBuf>,
        #[command(flatten)]
        training: TrainingArgs,
    },
    /// Classify images with a saved model, printing the top 5 classes of each.
    Classify {
        /// A saved model: a run's folder (e.g. DATA_DIR/runs/7) or a checkpoint .safetensors downloaded
        /// from the page.
        #[arg(long)]
        model: PathBuf,
        /// Image files.
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
}

/// Parses the command line and runs it, with the allocator tuned for training
/// ([`crate::engine::allocator`]).
/// Where `serve` trains runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExecutorKind {
    /// This machine, in `--slots` slots.
    Local,
    /// Batch jobs on a Slurm cluster, through `sbatch`, `squeue` and `scancel`; the data folder must be on
    /// a file system the nodes share.
    Slurm,
}

/// Where and how `serve` and `sweep` train runs.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainingArgs {
    /// Runs that train at once [default: one per visible GPU, each on its own; 1 on a CPU-only machine].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    slots: Option<u16>,
    /// libtorch threads each run trains with [default: the CPU's cores divided between the slots].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    threads_per_run: Option<u16>,
    /// Most memory a run's decoded images may take, e.g. 8GiB or 512MiB: a dataset that takes more is
    /// streamed from its decoded cache on disk [default: half of this machine's memory].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    memory_budget: Option<u64>,
    #[command(flatten)]
    slurm: SlurmArgs,
}

/// A size for a person: bytes, or a number with K, M, G or T (binary: 1G is 1 GiB), `B`, `iB` optional.
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let shift = match unit.trim().to_ascii_lowercase().trim_end_matches('b').trim_end_matches('i') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(format!("\"{unit}\" is not a unit: use K, M, G or T (1G is 1 GiB)")),
    };
    let number: f64 = number.parse().map_err(|_| format!("\"{text}\" is not a size such as 8GiB"))?;
    let bytes = number * (1u64 << shift) as f64;
    if !(1.0..1.8e19).contains(&bytes) {
        return Err(format!("\"{text}\" is not a size between 1 byte and 16 EiB"));
    }
    Ok(bytes as u64)
}

/// `serve`'s Slurm options.
#[derive(Debug, Clone, clap::Args)]
pub struct SlurmArgs {
    /// Where runs train.
    #[arg(long, value_enum, default_value = "local")]
    executor: ExecutorKind,
    /// The partition jobs go to (required with --executor slurm).
    #[arg(long, required_if_eq("executor", "slurm"))]
    slurm_partition: Option<String>,
    /// The account jobs are charged to.
    #[arg(long)]
    slurm_account: Option<String>,
    /// Generic resources each job asks for, e.g. gpu:1.
    #[arg(long)]
    slurm_gres: Option<String>,
    /// CPUs each job asks for, and its libtorch threads.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    slurm_cpus: u32,
    /// Each job's time limit, HH:MM:SS.
    #[arg(long)]
    slurm_time: Option<String>,
    /// Jobs kept on the cluster at once; more runs wait in the studio's queue.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    slurm_max_jobs: u32,
}

impl SlurmArgs {
    /// The executor these options ask for.
    fn choice(self) -> anyhow::Result<crate::studio::ExecutorChoice> {
        Ok(match self.executor {
            ExecutorKind::Local => crate::studio::ExecutorChoice::Local,
            ExecutorKind::Slurm => crate::studio::ExecutorChoice::Slurm(crate::studio::slurm::SlurmSettings {
                partition: self.slurm_partition.unwrap_or_default(),
                account: self.slurm_account,
                gres: self.slurm_gres,
                cpus: self.slurm_cpus,
                time: self.slurm_time,
                max_jobs: self.slurm_max_jobs,
                conf: None,
                worker: std::env::current_exe().context("could not find this program's path for the Slurm jobs")?,
            }),
        })
    }
}

/// `worker`: trains the attempt in `job`; a failed training is reported in the run folder, not here.
fn worker(job: &std::path::Path) -> anyhow::Result<()> {
    let outcome = crate::engine::worker::run(job)?;
    println!("{outcome:?}");
    Ok(())
}

/// `precompress`: compresses the page's files and prints each one's sizes.
fn precompress(ui_dir: &std::path::Path) -> anyhow::Result<()> {
    let written = crate::web::assets::precompress(ui_dir)
        .with_context(|| format!("could not compress the page in {}", ui_dir.display()))?;
    for file in written {
        println!("{}: {} bytes, gzip {}, brotli {}", file.name, file.raw, file.gzip, file.brotli);
    }
    Ok(())
}

pub fn main() -> anyhow::Result<()> {
    crate::engine::allocator::keep_freed_memory_for_training();
    let command = Cli::parse().command;
    // A sweep prints its own lines; the studio's log would bury them.
    let quiet = matches!(command, Command::Sweep { .. });
    let default_filter = if quiet { "warn" } else { "info,tower_http=warn" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into()),
        )
        .init();
    match command {
        Command::Serve {
            host,
            port,
            data_dir,
            weights_dir,
            ui_dir,
            token,
            checkpoint_interval,
            allowed_hosts,
            training,
        } => {
            crate::web::check_access(host, token.as_deref())?;
            let mut settings = studio_settings(data_dir, weights_dir, training)?;
            settings.checkpoint_every = std::time::Duration::from_secs(checkpoint_interval);
            let options = ServerOptions { ui_dir: Some(ui_dir), token, allowed_hosts, ..ServerOptions::default() };
            serve(SocketAddr::new(host, port), settings, options)
        }
        Command::Precompress { ui_dir } => precompress(&ui_dir),
        Command::Worker { job } => worker(&job),
        Command::Train { receipt: Some(receipt), data_dir, weights_dir, out, .. } => {
            repeat(&receipt, data_dir, weights_dir, out)
        }
        Command::Train {
            receipt: None,
            config,
            dataset,
            epochs,
            batch_size,
            lr,
            seed,
            weights,
            data_dir,
            weights_dir,
            out,
        } => {
            let mut config = match config {
                Some(path) => read_config(&path)?,
                None => shared::TrainConfig::for_dataset(
                    dataset.clone().context("give --config run.json or --dataset NAME")?,
                ),
            };
            if let Some(dataset) = dataset {
                config.dataset = dataset;
            }
            config.epochs = epochs.unwrap_or(config.epochs);
            config.batch_size = batch_size.unwrap_or(config.batch_size);
            config.lr = lr.unwrap_or(config.lr);
            config.seed = seed.unwrap_or(config.seed);
            config.weights = weights.unwrap_or(config.weights);
            train(config, data_dir, weights_dir, out)
        }
        Command::LrFind { config, data_dir, weights_dir } => lr_find(&config, data_dir, weights_dir),
        Command::Sweep { config, data_dir, weights_dir, training } => {
            sweep::run(&config, studio_settings(data_dir, weights_dir, training)?)
        }
        Command::Classify { model, images } => classify(model, images),
        Command::Health { dataset, data_dir, json } => health(&dataset, &data_dir, json),
        Command::Export { model, out, data_dir } => export(&model, &out, &data_dir),
    }
}

/// The studio's settings for `serve` and `sweep`.
fn studio_settings(
    data_dir: PathBuf,
    weights_dir: Option<PathBuf>,
    training: TrainingArgs,
) -> anyhow::Result<StudioSettings> {
    let mut settings = StudioSettings::new(data_dir);
    if let Some(dir) = weights_dir {
        settings.weights_dir = dir;
    }
    settings.slots = training.slots.map_or(0, usize::from);
    settings.threads_per_run = training.threads_per_run.map(usize::from);
    settings.dataset_memory = training.memory_budget;
    settings.executor = training.slurm.choice()?;
    Ok(settings)
}

/// Writes the saved model `model` as the verified ONNX file `out` (see [`crate::studio::verified_onnx`]).
fn export(model: &Path, out: &Path, data_dir: &Path) -> anyhow::Result<()> {
    let (metadata, weights) = crate::model::ModelMetadata::locate(model)?;
    let export = crate::studio::verified_onnx(&weights, &metadata, data_dir)?;
    crate::files::write_atomically(out, &export.bytes).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "wrote {} ({} bytes): checked on {} images, largest logit difference {:.2e}",
        out.display(),
        export.bytes.len(),
        export.images,
        export.difference
    );
    Ok(())
}

/// Checks `dataset` in `data_dir` (see [`crate::data::health`]) and prints the answer: as JSON, or as
/// lines a person reads.
fn health(dataset: &str, data_dir: &Path, json: bool) -> anyhow::Result<()> {
    shared::check_dataset_reference(dataset).map_err(|why| anyhow::anyhow!("dataset name {dataset:?}: {why}"))?;
    let source = crate::data::inspect(data_dir, dataset)?;
    let health = crate::data::health::check(&source, &crate::memory::MemoryBudget::default())?;
    if json {
        println!("{}", serde_json::to_string_pretty(&health)?);
        return Ok(());
    }
    for class in &health.classes {
        println!("{:<24} {:>7} train {:>7} test", class.name, class.train, class.test);
    }
    println!("imbalance (largest / smallest training class): {:.2}", health.imbalance);
    let size = |[width, height]: [u32; 2]| format!("{width}x{height}");
    println!("sizes: smallest {}, largest {}", size(health.sizes.smallest), size(health.sizes.largest));
    for image in &health.unreadable {
        println!("unreadable: {}: {}", image.path, image.error);
    }
    for pair in &health.duplicates {
        let leak = if pair.across_splits { " (train and test: a leak)" } else { "" };
        println!("{:?} duplicate, {:.1} % alike: {} ~ {}{leak}", pair.kind, pair.similarity * 100.0, pair.a, pair.b);
    }
    let leaks = health.leaks();
    println!(
        "{} unreadable, {} duplicate pairs listed, {leaks} test images with a copy in training",
        health.unreadable.len(),
        health.duplicates.len()
    );
    Ok(())
}

/// The training config in the JSON file at `path`, checked as `POST /api/runs` checks it.
fn read_config(path: &Path) -> anyhow::Result<shared::TrainConfig> {
    let json = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Studio::parse_config(&json)?)
}

/// Sweeps the learning rate for the config in `config_file` (see [`crate::engine::lr_finder`]), printing
/// a line per batch and the suggestion.
fn lr_find(config_file: &Path, data_dir: PathBuf, weights_dir: Option<PathBuf>) -> anyhow::Result<()> {
    use crate::engine::lr_finder::{self, LrFinderEvent};
    let config = read_config(config_file)?;
    config.validate()?;
    let device = best_device();
    // The sweep writes nothing, so its paths name no output folder.
    let paths = training_paths(data_dir, weights_dir, Path::new(""));
    let found =
        lr_finder::find_learning_rate(&config, &paths, device, &RunControl::default(), &mut |event| match event {
            LrFinderEvent::Note(note) => println!("{note}"),
            LrFinderEvent::Point(point) => println!("lr {:.3e}  smoothed loss {:.4}", point.lr, point.loss),
        })?;
    match found.suggestion {
        Some(suggestion) => println!("suggested learning rate: {suggestion:.3e}"),
        None => println!("{}", shared::lr_finder_too_few_points(found.points.len())),
    }
    Ok(())
}

/// Opens the studio and serves it on `address`; the page comes from `options.ui_dir` when that holds a
/// build.
fn serve(address: SocketAddr, settings: StudioSettings, mut options: ServerOptions) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let served = runtime.block_on(async move {
        let device = best_device();
        let studio = Studio::open(settings.clone(), device)
            .with_context(|| format!("opening the data folder {}", settings.data_dir.display()))?;
        let listener =
            tokio::net::TcpListener::bind(address).await.with_context(|| format!("listening on {address}"))?;
        if let Some(dir) = options.ui_dir.take_if(|dir| !dir.join("index.html").is_file()) {
            tracing::warn!("no built page in {} (run `make ui`); serving the API only", dir.display());
        }
        let address = listener.local_addr()?;
        tracing::info!(
            "Transfer Studio on http://{address} (device {}, data in {})",
            device_name(device),
            settings.data_dir.display()
        );
        if options.token.is_some() {
            // Never the token itself: logs are read by more people than the link is meant for.
            tracing::info!("open /?token=<your token> once: it sets a cookie and leaves the address bar");
        }
        let (stop_serving, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(crate::web::serve(listener, studio.clone(), options, async {
            let _ = stopped.await;
        }));
        shutdown_signal().await;
        shut_down(studio, stop_serving, server).await
    });
    // Connections still open after the drain (idle WebSockets, say) are dropped with the runtime.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    served
}

/// Longest a shutdown waits for the run in training to checkpoint and stop.
const SHUTDOWN_CHECKPOINT: std::time::Duration = std::time::Duration::from_secs(120);
/// Longest a shutdown waits for open connections to finish.
const SHUTDOWN_DRAIN: std::time::Duration = std::time::Duration::from_secs(10);

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).ok();
    let terminated = async {
        match terminate.as_mut() {
            Some(terminate) => drop(terminate.recv().await),
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminated => {}
    }
}

/// A graceful shutdown: the run in training checkpoints and ends `stopped` (resumable) while the page
/// can still watch it, then the server stops accepting and drains connections for at most
/// [`SHUTDOWN_DRAIN`].
async fn shut_down(
    studio: Studio,
    stop_serving: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
) -> anyhow::Result<()> {
    tracing::info!("shutting down: stopping the run in training at a checkpoint");
    let stopped = tokio::task::spawn_blocking(move || studio.shut_down(SHUTDOWN_CHECKPOINT)).await?;
    if !stopped {
        tracing::warn!("the run in training did not stop in time; it will show as interrupted");
    }
    let _ = stop_serving.send(());
    match tokio::time::timeout(SHUTDOWN_DRAIN, server).await {
        Ok(served) => served??,
        Err(_) => tracing::warn!("connections still open after {SHUTDOWN_DRAIN:?}; closing them"),
    }
    tracing::info!("stopped");
    Ok(())
}

fn train(
    config: shared::TrainConfig,
    data_dir: PathBuf,
    weights_dir: Option<PathBuf>,
    out: PathBuf,
) -> anyhow::Result<()> {
    config.validate()?;
    let device = best_device();
    let paths = training_paths(data_dir, weights_dir, &out);
    println!("training on {} with {}", device_name(device), serde_json::to_string(&config)?);
    let epochs = with_progress(|emit| training::train(&config, &paths, device, &RunControl::default(), false, emit))?;
    keep_epochs_in_receipt(&out, epochs)?;
    println!("model saved in {}", out.display());
    Ok(())
}

/// `train --receipt`: repeats the run a receipt describes and compares every epoch with it.
fn repeat(receipt_file: &Path, data_dir: PathBuf, weights_dir: Option<PathBuf>, out: PathBuf) -> anyhow::Result<()> {
    let bytes = std::fs::read(receipt_file).with_context(|| format!("reading {}", receipt_file.display()))?;
    let receipt: RunReceipt =
        serde_json::from_slice(&bytes).with_context(|| format!("{} is not a run receipt", receipt_file.display()))?;
    receipt::check_version(&receipt)?;
    let device = if receipt.device == "cpu" { Device::Cpu } else { best_device() };
    if receipt.device != device_name(device) {
        println!(
            "the run trained on {} and this repeat runs on {}: metrics are repeated bit for bit only on the CPU",
            receipt.device,
            device_name(device)
        );
    }
    tch::set_num_threads(receipt.threads as i32);
    println!(
        "repeating a run of {} on {} with {} threads, seed {}",
        receipt.config.dataset,
        device_name(device),
        receipt.threads,
        receipt.seed
    );
    let paths = training_paths(data_dir, weights_dir, &out);
    let epochs = with_progress(|emit| training::repeat(&receipt, &paths, device, &RunControl::default(), emit))?;
    let differences: Vec<String> = epochs
        .iter()
        .filter_map(|repeated| {
            let recorded = receipt.epochs.iter().find(|recorded| recorded.epoch == repeated.epoch)?;
            receipt::epoch_difference(recorded, repeated)
        })
        .collect();
    let compared = epochs.iter().filter(|e| receipt.epochs.iter().any(|r| r.epoch == e.epoch)).count();
    keep_epochs_in_receipt(&out, epochs)?;
    if let Some(first) = differences.first() {
        bail!("the repeat differs from the receipt in {} epochs; first, {first}", differences.len());
    }
    if compared == 0 {
        println!(
            "the receipt records no epochs to compare with; this repeat's are in {}",
            out.join("receipt.json").display()
        );
    } else {
        println!("reproduced the receipt's {compared} epochs bit for bit");
    }
    Ok(())
}

/// Where a command-line run reads its data and weights and writes its model.
fn training_paths(data_dir: PathBuf, weights_dir: Option<PathBuf>, out: &Path) -> TrainingPaths {
    TrainingPaths {
        weights_dir: weights_dir.unwrap_or_else(|| data_dir.join("weights")),
        data_dir,
        run_dir: out.to_path_buf(),
        cifar10: crate::data::download::DownloadSource::cifar10(),
        imagenet: crate::model::pretrained::PretrainedSource::imagenet_resnet18(),
        dataset_memory: None,
    }
}

/// Completes the receipt training wrote into `out` with the metrics of every epoch.
fn keep_epochs_in_receipt(out: &Path, epochs: Vec<EpochMetrics>) -> anyhow::Result<()> {
    let run_dir = RunDir::new(out);
    let mut receipt = run_dir.receipt().context("training wrote no readable receipt.json")?;
    receipt.epochs = epochs;
    run_dir.write_receipt(&receipt)?;
    Ok(())
}

/// Where training reports its events.
type EmitEvent<'a> = dyn FnMut(TrainingEvent) + 'a;

/// Runs `training` with a progress bar on stderr and a line per event on stdout; returns every finished
/// epoch's metrics, or fails if training stopped before the last epoch.
fn with_progress(
    training: impl FnOnce(&mut EmitEvent<'_>) -> Result<TrainOutcome, TrainError>,
) -> anyhow::Result<Vec<EpochMetrics>> {
    let bar = indicatif::ProgressBar::hidden();
    bar.set_style(
        indicatif::ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} batches  {msg}  eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let preparing = indicatif::ProgressBar::hidden();
    let mut preparing_step = None;
    let mut epochs = Vec::new();
    let outcome = training(&mut |event| match event {
        TrainingEvent::Note(note) => bar.suspend(|| println!("{note}")),
        TrainingEvent::Preparing(p) => {
            if preparing_step != Some(p.step) {
                preparing_step = Some(p.step);
                let counter =
                    if p.step == PreparationStep::Downloading { "{bytes}/{total_bytes}" } else { "{pos}/{len}" };
                let template = format!("{{msg}} [{{bar:30}}] {counter}  eta {{eta}}");
                preparing.set_style(
                    indicatif::ProgressStyle::with_template(&template).expect("valid template").progress_chars("=> "),
                );
                preparing.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                preparing.reset();
            }
            preparing.set_message(format!("{:?} {}", p.step, p.subject).to_lowercase());
            match p.total {
                Some(total) => preparing.set_length(total),
                None => preparing.unset_length(),
            }
            preparing.set_position(p.done);
        }
        TrainingEvent::Started { classes, train_count, test_count, .. } => {
            preparing.finish_and_clear();
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.suspend(|| println!("{} classes, {train_count} training and {test_count} test images", classes.len()))
        }
        TrainingEvent::Progress(p) => {
            bar.set_prefix(p.epoch.to_string());
            bar.set_length(u64::from(p.batches));
            bar.set_position(u64::from(p.batch));
            bar.set_message(format!("loss {:.4}  {:.0} img/s", p.loss, p.images_per_second));
        }
        TrainingEvent::EpochCompleted(m) => {
            bar.suspend(|| {
                println!(
                    "epoch {:>3}  train loss {:.4} acc {:.2}%  test loss {:.4} acc {:.2}%  {:.1}s",
                    m.epoch,
                    m.train_loss,
                    100.0 * m.train_accuracy,
                    m.test_loss,
                    100.0 * m.test_accuracy,
                    m.seconds
                )
            });
            epochs.push(m);
        }
        TrainingEvent::CheckpointedMidEpoch { epoch, batches_done } => {
            bar.suspend(|| println!("checkpoint: epoch {epoch}, {batches_done} batches"))
        }
        TrainingEvent::DatasetDownloaded { name } => bar.suspend(|| println!("downloaded {name} into the data folder")),
        TrainingEvent::ModelSaved { epoch } => bar.suspend(|| println!("best model so far: epoch {epoch}")),
    });
    preparing.finish_and_clear();
    bar.finish_and_clear();
    if matches!(outcome?, TrainOutcome::Stopped | TrainOutcome::Paused { .. }) {
        bail!("training stopped before the last epoch");
    }
    Ok(epochs)
}

fn classify(model: PathBuf, images: Vec<PathBuf>) -> anyhow::Result<()> {
    let classifier = Classifier::load(&model, best_device())?;
    for path in images {
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let predictions = classifier.classify(&[&bytes]).remove(0).with_context(|| format!("{}", path.display()))?;
        println!("{}", path.display());
        for p in &predictions {
            println!("  {:>6.2}%  {}", 100.0 * p.probability, p.label);
        }
    }
    Ok(())
}
