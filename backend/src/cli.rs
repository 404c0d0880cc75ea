//! The command line: `serve` runs the studio; `train` and `classify` use the same engine headless.

use crate::engine::{best_device, device_name};
use crate::inference::Classifier;
use crate::studio::{Studio, StudioSettings};
use crate::training::{self, CancelFlag, TrainOutcome, TrainingEvent, TrainingPaths};
use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

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
        /// Access token every request must carry. Required when --host is not a loopback address.
        #[arg(long, env = "TRANSFER_STUDIO_TOKEN")]
        token: Option<String>,
    },
    /// Train one run headless, printing a line per epoch; the model is saved to --out.
    Train {
        /// A JSON training config, the same format `POST /api/runs` takes.
        #[arg(long)]
        config: PathBuf,
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
    /// Classify images with a saved model, printing the top 5 classes of each.
    Classify {
        /// Folder of a saved model (model.safetensors + model.json), e.g. DATA_DIR/runs/7.
        #[arg(long)]
        model: PathBuf,
        /// Image files.
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
}

/// Parses the command line and runs it.
pub fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Serve { host, port, data_dir, weights_dir, ui_dir, token } => {
            if !host.is_loopback() && token.as_deref().is_none_or(str::is_empty) {
                bail!(
                    "refusing to listen on {host} without --token: anyone who can reach this machine could \
                     train and read models. Pass --token <secret> (or TRANSFER_STUDIO_TOKEN), or keep the \
                     default 127.0.0.1"
                );
            }
            let mut settings = StudioSettings::new(data_dir);
            if let Some(dir) = weights_dir {
                settings.weights_dir = dir;
            }
            serve(SocketAddr::new(host, port), settings, ui_dir, token)
        }
        Command::Train { config, data_dir, weights_dir, out } => train(config, data_dir, weights_dir, out),
        Command::Classify { model, images } => classify(model, images),
    }
}

fn serve(address: SocketAddr, settings: StudioSettings, ui_dir: PathBuf, token: Option<String>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let device = best_device();
        let studio = Studio::open(settings.clone(), device)
            .with_context(|| format!("opening the data folder {}", settings.data_dir.display()))?;
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("listening on {address}"))?;
        let ui = if ui_dir.join("index.html").is_file() {
            Some(ui_dir)
        } else {
            tracing::warn!("no built page in {} (run `make ui`); serving the API only", ui_dir.display());
            None
        };
        let link = match &token {
            Some(token) => format!("http://{}/?token={token}", listener.local_addr()?),
            None => format!("http://{}", listener.local_addr()?),
        };
        tracing::info!("Transfer Studio on {link} (device {}, data in {})", device_name(device), settings.data_dir.display());
        let options = crate::server::ServerOptions { ui_dir: ui, token };
        crate::server::serve(listener, studio, options, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
        Ok(())
    })
}

fn train(config: PathBuf, data_dir: PathBuf, weights_dir: Option<PathBuf>, out: PathBuf) -> anyhow::Result<()> {
    let json = std::fs::read(&config).with_context(|| format!("reading {}", config.display()))?;
    let config = Studio::parse_config(&json)?;
    config.validate()?;
    let device = best_device();
    let paths = TrainingPaths {
        weights_dir: weights_dir.unwrap_or_else(|| data_dir.join("weights")),
        data_dir,
        run_dir: out.clone(),
        cifar10: crate::download::DownloadSource::cifar10(),
    };
    println!("training on {} with {}", device_name(device), serde_json::to_string(&config)?);
    let outcome = training::train(&config, &paths, device, &CancelFlag::default(), false, &mut |event| match event {
        TrainingEvent::Note(note) => println!("{note}"),
        TrainingEvent::Started { classes, train_count, test_count, .. } => {
            println!("{} classes, {train_count} training and {test_count} test images", classes.len())
        }
        TrainingEvent::Progress(p) => eprint!(
            "\repoch {} batch {}/{} loss {:.4} {:.0} img/s   ",
            p.epoch, p.batch, p.batches, p.loss, p.images_per_second
        ),
        TrainingEvent::EpochCompleted(m) => eprintln!(
            "\repoch {:>3}  train loss {:.4} acc {:.2}%  test loss {:.4} acc {:.2}%  {:.1}s",
            m.epoch,
            m.train_loss,
            100.0 * m.train_accuracy,
            m.test_loss,
            100.0 * m.test_accuracy,
            m.seconds
        ),
        TrainingEvent::ModelSaved { .. } => {}
    })?;
    if outcome == TrainOutcome::Stopped {
        bail!("training stopped before the last epoch");
    }
    println!("model saved in {}", out.display());
    Ok(())
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
