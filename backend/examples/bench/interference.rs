//! `bench interference DIR`: whether classifying slows the training that follows, through the real
//! studio as a person uses it (training on a slot's thread, classification on the classifier's): a
//! 3-epoch run, then [`REQUESTS`] classify calls, then the same run again, printing each run's epoch
//! times and the classify median.
//!
//! Until 2026-12-07 the classifier thread kept an OpenMP team for the server's life and libgomp
//! throttled every team once the process had more OpenMP threads than CPUs: on 2 CPUs the epochs after
//! one classify took 6.0-6.6 s against 3.9-4.4 s before (see `backend/src/engine/teams.rs`). `make bench`'s
//! training rounds cannot show this, since they train on the bench's main thread with nothing beside.

use super::{bench_config, percentile, DATASET};
use backend::data::download::DownloadSource;
use backend::studio::{Studio, StudioSettings};
use std::path::Path;
use std::time::{Duration, Instant};

/// Classify calls between the two runs.
const REQUESTS: usize = 40;
/// Epochs of each run.
const EPOCHS: u32 = 3;

/// Trains, classifies, trains again on a fresh history over `DIR/data`, and prints the figures.
pub fn measure(dir: &Path) -> anyhow::Result<()> {
    let data = dir.join("data");
    let _ = std::fs::remove_file(data.join(backend::studio::DATABASE_FILE));
    let _ = std::fs::remove_dir_all(data.join(backend::studio::RUNS_FOLDER));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let _context = runtime.enter();
    let mut settings = StudioSettings::new(&data);
    settings.cifar10 = DownloadSource { url: "http://127.0.0.1:9/unused".into(), md5: "0".repeat(32) };
    let studio = Studio::open(settings, tch::Device::Cpu)?;
    let config = shared::TrainConfig { epochs: EPOCHS, ..bench_config(64) };
    let before = train(&studio, &config)?;
    let png = std::fs::read(data.join(DATASET).join("test").join("class3").join("00003.png"))?;
    let mut latencies = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let started = Instant::now();
        runtime.block_on(studio.classify_one(None, png.clone(), None))?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    let after = train(&studio, &config)?;
    let seconds = |epochs: &[f64]| epochs.iter().map(|s| format!("{s:.2}")).collect::<Vec<_>>().join(", ");
    println!(
        "training through the studio, epoch seconds: before any classify {}; after {REQUESTS} classify calls {} \
         (classify in process: median {:.2} ms)",
        seconds(&before),
        seconds(&after),
        percentile(&latencies, 0.5)
    );
    Ok(())
}

/// Trains a run of `config` through the studio to its end; its epochs' seconds.
fn train(studio: &Studio, config: &shared::TrainConfig) -> anyhow::Result<Vec<f64>> {
    let id = studio.create_run(config.clone())?.id;
    loop {
        let run = studio.run(id)?;
        if run.status.is_finished() {
            anyhow::ensure!(
                run.status == shared::RunStatus::Completed,
                "run {id} ended {:?}: {:?}",
                run.status,
                run.error
            );
            return Ok(run.epochs.iter().map(|epoch| epoch.seconds).collect());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
