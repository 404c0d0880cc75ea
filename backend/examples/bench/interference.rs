//! `bench interference DIR`: whether classifying slows the training that follows, through the real
//! studio (and its server, [`BenchServer`]) as a person uses it (training on a slot's thread, classification on the classifier's): a
//! 3-epoch run, then [`REQUESTS`] classify calls, then the same run again, printing each run's epoch
//! times and the classify median.
//!
//! Until 2026-12-07 the classifier thread kept an OpenMP team for the server's life and libgomp
//! throttled every team once the process had more OpenMP threads than CPUs: on 2 CPUs the epochs after
//! one classify took 6.0-6.6 s against 3.9-4.4 s before (see `backend/src/engine/teams.rs`). `make bench`'s
//! training rounds cannot show this, since they train on the bench's main thread with nothing beside.

use super::classify::BenchServer;
use super::{bench_config, percentile, DATASET};
use std::path::Path;
use std::time::Instant;

/// Classify calls between the two runs.
const REQUESTS: usize = 40;
/// Epochs of each run.
const EPOCHS: u32 = 3;

/// Trains, classifies, trains again on a fresh history over `DIR/data`, and prints the figures.
pub fn measure(dir: &Path) -> anyhow::Result<()> {
    let data = dir.join("data");
    let server = BenchServer::start(&data)?;
    let config = shared::TrainConfig { epochs: EPOCHS, ..bench_config(64) };
    let epoch_seconds = |config: &shared::TrainConfig| -> anyhow::Result<Vec<f64>> {
        let run = server.studio.run(server.train(config.clone())?)?;
        Ok(run.epochs.iter().map(|epoch| epoch.seconds).collect())
    };
    let before = epoch_seconds(&config)?;
    let png = std::fs::read(data.join(DATASET).join("test").join("class3").join("00003.png"))?;
    let mut latencies = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let started = Instant::now();
        server.runtime.block_on(server.studio.classify_one(None, png.clone(), None))?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    let after = epoch_seconds(&config)?;
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
