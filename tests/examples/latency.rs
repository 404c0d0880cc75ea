//! Benchmark, not a test: how long `GET /api/health` takes while eight clients keep listing a history of
//! 500 runs and a short run trains. Run it with `make latency`; it prints the percentiles.
//!
//! Each lister is a client of its own, on a thread of its own that waits for each answer, as eight
//! browser tabs or scripts are. With `LATENCY_LISTERS=shared` they are instead eight tasks sharing the
//! client runtime's workers (one per core), as this benchmark ran until 2026-12-01: those workers never
//! wait, so the client side alone keeps every core busy, which no eight separate clients do.
//!
//! The listers send `Accept-Encoding` as Chromium does, so they get the list gzip-encoded; with
//! `LATENCY_ENCODING=identity` in the environment they ask for plain JSON instead.
//!
//! The server is the real one (`backend::web::serve` on `127.0.0.1:0` over a temporary data folder);
//! the history is written through the run store before the studio opens it.

#[path = "../tests/common/mod.rs"]
mod common;

use common::{write_color_dataset, TestServer};
use serde_json::json;
use shared::{RunCreated, RunStatus};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs already in the history.
const HISTORY: usize = 500;
/// Clients listing `GET /api/runs` in a loop.
const LISTERS: usize = 8;
/// Health requests timed (4,000, so that the p99 is not one of ten slowest requests).
const SAMPLES: usize = 4000;

fn main() -> anyhow::Result<()> {
    // The server gets a runtime of its own, as in the binary, so the clients' work never runs on its
    // workers.
    let server_runtime = tokio::runtime::Runtime::new()?;
    let data = tempfile::tempdir()?;
    write_color_dataset(data.path(), "colors", 3, 40, 8, 32);
    common::write_completed_runs(data.path(), HISTORY)?;
    let server = server_runtime.block_on(TestServer::start_with(data, |_| {}, None));
    let clients = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    clients.block_on(measure(&server))
}

async fn measure(server: &TestServer) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let run: RunCreated = client
        .post(server.url("/api/runs"))
        .json(&json!({"dataset": "colors", "epochs": 1000, "batch_size": 8}))
        .send()
        .await?
        .json()
        .await?;
    server.wait_for_run(run.id, Duration::from_secs(120), |run| run.status == RunStatus::Running).await;

    let stop = Arc::new(AtomicBool::new(false));
    let listed = Arc::new(AtomicU64::new(0));
    let encoding = lister_encoding();
    let shared = listers_share_workers();
    let listers: Vec<_> = (0..LISTERS)
        .map(|_| {
            let lister = list_until(server.url("/api/runs"), encoding, stop.clone(), listed.clone());
            if shared {
                tokio::spawn(lister)
            } else {
                tokio::task::spawn_blocking(move || on_own_runtime(lister))
            }
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;

    let health = server.url("/api/health");
    let (mut latencies, elapsed) = tokio::task::spawn_blocking(move || time_health(health)).await??;
    stop.store(true, Ordering::Relaxed);
    for lister in listers {
        lister.await??;
    }
    client.post(server.url(&format!("/api/runs/{}/stop", run.id))).send().await?;
    // The trainer must be done with the data folder before it is deleted.
    server.wait_until_finished(run.id).await;
    let model = if shared { "tasks sharing the client runtime's workers" } else { "a thread each" };
    println!("listers: {model}; Accept-Encoding: {encoding}");
    report(&mut latencies, listed.load(Ordering::Relaxed), elapsed);
    Ok(())
}

/// Times [`SAMPLES`] requests to `url`, one after the other, from a runtime of its own on this thread:
/// sharing the listers' workers, the timer would also measure its wait behind their tasks, which a
/// separate client (a browser tab) does not have.
fn time_health(url: String) -> anyhow::Result<(Vec<Duration>, Duration)> {
    on_own_runtime(async {
        let client = reqwest::Client::new();
        let started = Instant::now();
        let mut latencies = Vec::with_capacity(SAMPLES);
        for _ in 0..SAMPLES {
            let sent = Instant::now();
            client.get(&url).send().await?.bytes().await?;
            latencies.push(sent.elapsed());
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok((latencies, started.elapsed()))
    })
}

/// Runs `client` to its end on a single-threaded runtime of its own on the calling thread, as a separate
/// client would.
fn on_own_runtime<T>(client: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(client)
}

/// Whether the listers run as tasks sharing the client runtime's workers (`LATENCY_LISTERS=shared`)
/// rather than a thread each.
fn listers_share_workers() -> bool {
    std::env::var("LATENCY_LISTERS").as_deref() == Ok("shared")
}

/// What the listers send as `Accept-Encoding`: Chromium's list, or `identity` when
/// `LATENCY_ENCODING=identity`.
fn lister_encoding() -> &'static str {
    match std::env::var("LATENCY_ENCODING").as_deref() {
        Ok("identity") => "identity",
        _ => "gzip, deflate, br, zstd",
    }
}

async fn list_until(
    url: String,
    encoding: &'static str,
    stop: Arc<AtomicBool>,
    listed: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    while !stop.load(Ordering::Relaxed) {
        // Only the bytes: inflating or parsing them here would measure this client, not the server.
        let answer = client.get(&url).header("accept-encoding", encoding).send().await?.error_for_status()?;
        // About 10 bytes a run gzipped, over 100 as JSON.
        anyhow::ensure!(answer.bytes().await?.len() > HISTORY * 10, "the whole history is listed");
        listed.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

fn report(latencies: &mut [Duration], listed: u64, elapsed: Duration) {
    latencies.sort();
    let at = |fraction: f64| latencies[((latencies.len() - 1) as f64 * fraction).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "GET /api/health over {} requests while {LISTERS} clients list {HISTORY} runs and a run trains:",
        latencies.len()
    );
    println!(
        "  p50 {:.2} ms   p90 {:.2} ms   p99 {:.2} ms   max {:.2} ms",
        ms(at(0.5)),
        ms(at(0.9)),
        ms(at(0.99)),
        ms(at(1.0))
    );
    println!(
        "  listings answered: {listed} in {:.1} s ({:.0}/s)",
        elapsed.as_secs_f64(),
        listed as f64 / elapsed.as_secs_f64()
    );
}
