//! What the page shows of a run between epochs: the loss as batches arrive, how far the whole run has
//! got, and where a stopped run stopped.
//!
//! Progress messages arrive a few times a second; [`LossTrace`] (in the protocol, since the server keeps
//! the same trace and sends it with its snapshot) keeps a bounded series of them per run so the loss
//! panel has a line from the first batch. Everything here is plain arithmetic, tested natively.

pub use shared::trace::{epochs_done, LossTrace};
use shared::{BatchProgress, Run, RunStatus};

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
        RunStatus::Pruned => "Pruned",
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
