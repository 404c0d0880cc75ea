//! `transfer-studio sweep --config sweep.json`: a sweep run headless on the studio of a data folder, with
//! a progress bar, a line per trial that begins, ends or is judged, and the leaderboard at the end. The
//! sweep is recorded in the folder's history as one made from the page is: interrupted (Ctrl-C), it goes
//! on at the next `serve` or `sweep` over the folder.

use crate::studio::{Studio, StudioSettings};
use anyhow::Context;
use shared::sweep::{describe, Sweep, SweepRequest, SweepStatus};
use shared::ServerMessage;
use std::collections::HashMap;
use std::path::Path;
use tokio::sync::broadcast::error::RecvError;

/// Runs the sweep in `config_file` on a studio over `settings` until it ends; prints its leaderboard.
pub fn run(config_file: &Path, settings: StudioSettings) -> anyhow::Result<()> {
    let request = read_request(config_file)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let _inside = runtime.enter();
    let studio = Studio::open(settings.clone(), crate::engine::best_device())
        .with_context(|| format!("opening the data folder {}", settings.data_dir.display()))?;
    let mut events = studio.subscribe();
    let sweep = studio.create_sweep(request)?;
    println!(
        "sweep #{} \"{}\": {} trials, {} at a time, ranked by {}",
        sweep.id,
        sweep.name,
        sweep.trials.len(),
        sweep.request.parallel,
        sweep.request.metric.label()
    );
    let bar = indicatif::ProgressBar::new(planned_epochs(&sweep));
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} epochs at most  {msg}")
            .expect("a valid template"),
    );
    let mut shown = Shown::default();
    let mut latest = sweep;
    while latest.status == SweepStatus::Running {
        match events.blocking_recv() {
            Ok(ServerMessage::SweepUpdated { sweep }) if sweep.id == latest.id => latest = sweep,
            Ok(ServerMessage::Progress(p)) => {
                bar.set_message(format!("run #{}: epoch {} loss {:.4}", p.run_id, p.epoch, p.loss))
            }
            Ok(_) => continue,
            Err(RecvError::Lagged(_)) => latest = studio.sweep(latest.id)?,
            Err(RecvError::Closed) => break,
        }
        bar.suspend(|| shown.print_news(&latest));
        bar.set_position(latest.trials.iter().map(|t| u64::from(t.epochs_done)).sum());
    }
    bar.finish_and_clear();
    studio.shut_down(std::time::Duration::from_secs(60));
    print!("{}", leaderboard(&latest));
    Ok(())
}

/// The sweep request in `path`, with the field at fault named when it does not parse.
fn read_request(path: &Path) -> anyhow::Result<SweepRequest> {
    let json = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Studio::parse_sweep_request(&json).with_context(|| format!("reading {}", path.display()))
}

/// Epochs the sweep trains if no trial is stopped early.
fn planned_epochs(sweep: &Sweep) -> u64 {
    sweep
        .trials
        .iter()
        .map(|trial| sweep.request.trial_config(&trial.parameters).map_or(0, |config| u64::from(config.epochs)))
        .sum()
}

/// What has been printed: each trial's last status and how many decisions.
#[derive(Default)]
struct Shown {
    statuses: HashMap<u32, Option<shared::RunStatus>>,
    decisions: usize,
}

impl Shown {
    /// Prints a line per new decision and per trial whose status changed.
    fn print_news(&mut self, sweep: &Sweep) {
        for decision in sweep.decisions.iter().skip(self.decisions) {
            println!("trial {:>3} {}", decision.trial, decision.sentence);
        }
        self.decisions = sweep.decisions.len();
        let mut trials: Vec<_> = sweep.trials.iter().collect();
        trials.sort_by_key(|trial| trial.trial);
        for trial in trials {
            let before = self.statuses.insert(trial.trial, trial.status);
            if before.flatten() != trial.status && trial.status.is_some() {
                let status = trial.status_word();
                println!("trial {:>3} ({}): {status}", trial.trial, describe(&trial.parameters));
            }
        }
    }
}

/// The trials ranked, a line each, then the best.
pub fn leaderboard(sweep: &Sweep) -> String {
    let metric = sweep.request.metric;
    let mut out = format!(
        "{:>4}  {:>5}  {:<11}  {:>6}  {:>13}  parameters\n",
        "rank",
        "trial",
        "status",
        "epochs",
        metric.label()
    );
    for (rank, trial) in sweep.trials.iter().enumerate() {
        let status = trial.status_word();
        let best = trial.best_metric.map_or("-".to_string(), |value| metric.show(value));
        out.push_str(&format!(
            "{:>4}  {:>5}  {status:<11}  {:>6}  {best:>13}  {}\n",
            rank + 1,
            trial.trial,
            trial.epochs_done,
            describe(&trial.parameters)
        ));
    }
    if let Some(best) = sweep.best() {
        let run = best.run_id.map_or(String::new(), |id| format!(", run #{id}"));
        let value = best.best_metric.map_or(String::new(), |v| metric.show(v));
        out.push_str(&format!("best: trial {} ({}): {value}{run}\n", best.trial, describe(&best.parameters)));
    }
    out
}
