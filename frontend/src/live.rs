//! What the page shows of a run between epochs: the loss as batches arrive, how far the whole run has
//! got, and where a stopped run stopped.
//!
//! Progress messages arrive a few times a second; [`LossTrace`] keeps a bounded series of them per run
//! so the loss panel has a line from the first batch. Everything here is plain arithmetic, tested natively.

use shared::{BatchProgress, Run, RunStatus};

/// Most points a trace keeps; past it, every other point is dropped and new ones are taken half as often.
pub const TRACE_CAP: usize = 2_000;

/// The training loss of one run as its progress messages reported it, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct LossTrace {
    /// `(epochs done, as a fraction, loss)`: 1.5 is halfway through the second epoch. The loss is the last
    /// batch's own ([`BatchProgress::batch_loss`]), or the epoch's mean so far from a server that does not
    /// send it.
    pub points: Vec<(f64, f64)>,
    /// The latest progress message, kept even when decimation skips its point.
    pub last: BatchProgress,
    /// Take one message in `stride`; doubles each time the trace is thinned.
    stride: u64,
    /// Messages heard since the trace began.
    heard: u64,
}

impl LossTrace {
    /// A trace that starts with this message.
    pub fn new(progress: BatchProgress) -> Self {
        let mut trace = LossTrace { points: Vec::new(), last: progress.clone(), stride: 1, heard: 0 };
        trace.push(progress);
        trace
    }

    /// Adds one progress message; thins the trace to half when it would pass [`TRACE_CAP`].
    pub fn push(&mut self, progress: BatchProgress) {
        // Each batch's own loss where the server sends it; older servers send only the epoch's mean so far.
        let loss = progress.batch_loss.unwrap_or(progress.loss);
        if self.heard.is_multiple_of(self.stride) && loss.is_finite() {
            self.points.push((epochs_done(&progress), loss));
            if self.points.len() > TRACE_CAP {
                let mut index = 0usize;
                self.points.retain(|_| {
                    index += 1;
                    !index.is_multiple_of(2)
                });
                self.stride *= 2;
            }
        }
        self.heard += 1;
        self.last = progress;
    }
}

/// Epochs done at this progress message, as a fraction: `(epoch - 1) + batch / batches`.
pub fn epochs_done(progress: &BatchProgress) -> f64 {
    f64::from(progress.epoch.saturating_sub(1)) + f64::from(progress.batch) / f64::from(progress.batches.max(1))
}

/// How much of the whole run is done, 0 – 1: finished epochs plus the share of the epoch in flight, over
/// the epochs asked for. Only a completed run is full; a stopped or failed one shows where it ended.
pub fn run_fraction(run: &Run, progress: Option<&BatchProgress>) -> f64 {
    if run.status == RunStatus::Completed {
        return 1.0;
    }
    let planned = f64::from(run.config.epochs.max(1));
    let finished = run.epochs.len() as f64;
    let done = progress.map_or(finished, |p| epochs_done(p).max(finished));
    (done / planned).clamp(0.0, 1.0)
}

/// Where a run that did not complete ended, for a person reading it afterwards: "Stopped in epoch 2 of
/// 3, near batch 40 of 120." when the page saw its last batches (progress comes a few times a second, so
/// the run may have trained a few batches past the last report), else "Stopped after epoch 1 of 3.".
/// `None` for a run that is still going or completed.
pub fn ended_at(run: &Run, last: Option<&BatchProgress>) -> Option<String> {
    let verb = match run.status {
        RunStatus::Stopped => "Stopped",
        RunStatus::Failed => "Failed",
        RunStatus::Interrupted => "Interrupted",
        RunStatus::Queued | RunStatus::Running | RunStatus::Completed => return None,
    };
    let planned = run.config.epochs;
    let finished = run.epochs.len() as u32;
    // A progress message from an epoch that then finished says no more than the epoch count does.
    let inside = last.filter(|p| p.epoch > finished && p.batch < p.batches);
    Some(match inside {
        Some(p) => format!("{verb} in epoch {} of {planned}, near batch {} of {}.", p.epoch, p.batch, p.batches),
        None if finished == 0 => format!("{verb} before the first epoch ended."),
        None => format!("{verb} after epoch {finished} of {planned}."),
    })
}

/// The progress bar's state class: `bar-running`, `bar-stopped`, … (`bar-stopping` while a stop is asked
/// for and the run has not ended yet).
pub fn bar_class(status: RunStatus, stopping: bool) -> String {
    if stopping && !status.is_finished() {
        return "bar-stopping".to_string();
    }
    format!("bar-{}", status.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(epoch: u32, batch: u32, batches: u32, loss: f64) -> BatchProgress {
        BatchProgress {
            run_id: 1,
            epoch,
            batch,
            batches,
            loss,
            batch_loss: Some(loss),
            images_per_second: 100.0,
            eta_seconds: 10.0,
        }
    }

    fn run(status: RunStatus, planned: u32, finished: u32) -> Run {
        let epochs: Vec<serde_json::Value> = (1..=finished)
            .map(|epoch| {
                serde_json::json!({"epoch": epoch, "train_loss": 1.0, "train_accuracy": 0.5,
                    "test_loss": 1.0, "test_accuracy": 0.5, "seconds": 1.0})
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "id": 1, "status": status, "config": {"dataset": "tiny", "epochs": planned},
            "epochs": epochs, "created_at": 0,
        }))
        .unwrap()
    }

    #[test]
    fn a_trace_places_each_batch_at_its_fraction_of_the_epochs() {
        let mut trace = LossTrace::new(progress(1, 5, 20, 2.1));
        trace.push(progress(2, 10, 20, 1.4));
        assert_eq!(trace.points, [(0.25, 2.1), (1.5, 1.4)]);
        assert_eq!(trace.last.batch, 10);
    }

    #[test]
    fn a_long_trace_is_thinned_and_keeps_its_ends() {
        let mut trace = LossTrace::new(progress(1, 0, 100_000, 3.0));
        for batch in 1..=10_000 {
            trace.push(progress(1, batch, 100_000, 1.0));
        }
        assert!(trace.points.len() <= TRACE_CAP, "{}", trace.points.len());
        assert!(trace.points.len() > TRACE_CAP / 4, "{}", trace.points.len());
        assert_eq!(trace.points[0], (0.0, 3.0), "the first batch stays");
        assert!(trace.points.last().unwrap().0 > 0.099, "the line reaches the latest batches");
        assert_eq!(trace.last.batch, 10_000);
        assert!(trace.points.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn the_run_fraction_counts_the_epoch_in_flight() {
        let running = run(RunStatus::Running, 4, 1);
        assert_eq!(run_fraction(&running, Some(&progress(2, 10, 20, 1.0))), 0.375);
        assert_eq!(run_fraction(&running, None), 0.25);
        assert_eq!(run_fraction(&run(RunStatus::Queued, 4, 0), None), 0.0);
    }

    #[test]
    fn only_a_completed_run_fills_the_bar() {
        assert_eq!(run_fraction(&run(RunStatus::Completed, 4, 2), None), 1.0, "early stopping completes a run");
        assert_eq!(run_fraction(&run(RunStatus::Stopped, 4, 2), None), 0.5);
        assert_eq!(run_fraction(&run(RunStatus::Failed, 4, 0), None), 0.0);
        assert_eq!(run_fraction(&run(RunStatus::Stopped, 4, 1), Some(&progress(2, 5, 10, 1.0))), 0.375);
    }

    #[test]
    fn a_stopped_run_says_the_batch_it_stopped_at() {
        let stopped = run(RunStatus::Stopped, 3, 1);
        assert_eq!(
            ended_at(&stopped, Some(&progress(2, 40, 120, 1.0))).as_deref(),
            Some("Stopped in epoch 2 of 3, near batch 40 of 120.")
        );
        assert_eq!(ended_at(&stopped, None).as_deref(), Some("Stopped after epoch 1 of 3."));
        assert_eq!(
            ended_at(&stopped, Some(&progress(1, 120, 120, 1.0))).as_deref(),
            Some("Stopped after epoch 1 of 3."),
            "the last batch of a finished epoch says no more than the epoch"
        );
        assert_eq!(
            ended_at(&run(RunStatus::Failed, 3, 0), None).as_deref(),
            Some("Failed before the first epoch ended.")
        );
        assert_eq!(ended_at(&run(RunStatus::Completed, 3, 3), None), None);
        assert_eq!(ended_at(&run(RunStatus::Running, 3, 1), None), None);
    }

    #[test]
    fn the_bar_is_classed_by_state() {
        assert_eq!(bar_class(RunStatus::Running, false), "bar-running");
        assert_eq!(bar_class(RunStatus::Running, true), "bar-stopping");
        assert_eq!(bar_class(RunStatus::Stopped, true), "bar-stopped");
        assert_eq!(bar_class(RunStatus::Failed, false), "bar-failed");
    }

    #[test]
    fn the_trace_plots_each_batchs_own_loss_and_the_mean_only_when_that_is_missing() {
        let mut trace = LossTrace::new(BatchProgress { batch_loss: Some(2.5), ..progress(1, 1, 10, 2.0) });
        trace.push(BatchProgress { batch_loss: None, ..progress(1, 2, 10, 1.9) });
        let losses: Vec<f64> = trace.points.iter().map(|&(_, loss)| loss).collect();
        assert_eq!(losses, [2.5, 1.9]);
    }
}
