//! The page's copy of the server's state, and the one function that changes it.
//!
//! [`StudioState::apply`] folds every [`ServerMessage`] into the state. It is pure, so the rules
//! (a snapshot replaces everything, an update replaces one run, an epoch is never added twice) are
//! tested natively without a browser.

use std::collections::BTreeMap;

use shared::{BatchProgress, LrFinderProgress, Preparation, Run, RunStatus, ServerMessage};

use crate::live::LossTrace;

/// Everything the server has told this page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StudioState {
    /// Every run, newest first.
    pub runs: Vec<Run>,
    /// Progress of the epoch in flight, if a run is training.
    pub progress: Option<BatchProgress>,
    /// The preparation step in flight (download, unpacking, decoding) and its run, until the first batch.
    pub preparing: Option<(u64, Preparation)>,
    /// The last command the server refused, as its sentence.
    pub error: Option<String>,
    /// The loss of each run this page has seen train, by run id, as its progress messages arrived.
    pub live: BTreeMap<u64, LossTrace>,
    /// The run this page asked to stop, until the server says it ended (or refuses a command).
    pub stopping: Option<u64>,
    /// The last learning-rate sweep the server reported (any page's), as it arrived.
    pub lr_finder: Option<LrFinderProgress>,
}

impl StudioState {
    /// Folds one message from the server into the state.
    pub fn apply(&mut self, message: ServerMessage) {
        match message {
            ServerMessage::Snapshot { runs, progress } => {
                self.runs = runs;
                sort_newest_first(&mut self.runs);
                let known = |id: &u64| self.runs.iter().any(|run| run.id == *id);
                self.live.retain(|id, _| known(id));
                self.stopping =
                    self.stopping.filter(|id| self.runs.iter().any(|r| r.id == *id && !r.status.is_finished()));
                if let Some(progress) = &progress {
                    self.record(progress.clone());
                }
                self.progress = progress;
            }
            ServerMessage::RunUpdated { run } => {
                if run.status.is_finished() {
                    if self.stopping == Some(run.id) {
                        self.stopping = None;
                    }
                    if self.progress.as_ref().is_some_and(|p| p.run_id == run.id) {
                        self.progress = None;
                    }
                    if self.preparing.as_ref().is_some_and(|(id, _)| *id == run.id) {
                        self.preparing = None;
                    }
                }
                match self.runs.iter_mut().find(|known| known.id == run.id) {
                    Some(known) => *known = run,
                    None => {
                        self.runs.push(run);
                        sort_newest_first(&mut self.runs);
                    }
                }
            }
            ServerMessage::RunRemoved { run_id } => {
                self.runs.retain(|run| run.id != run_id);
                self.live.remove(&run_id);
                if self.stopping == Some(run_id) {
                    self.stopping = None;
                }
                if self.progress.as_ref().is_some_and(|p| p.run_id == run_id) {
                    self.progress = None;
                }
                if self.preparing.as_ref().is_some_and(|(id, _)| *id == run_id) {
                    self.preparing = None;
                }
            }
            ServerMessage::Progress(progress) => {
                self.preparing = None;
                self.record(progress.clone());
                self.progress = Some(progress);
            }
            ServerMessage::Preparing { run_id, preparation } => self.preparing = Some((run_id, preparation)),
            ServerMessage::EpochCompleted { run_id, metrics } => {
                // A run we do not know yet arrives with its epochs in the next update or snapshot.
                if let Some(run) = self.runs.iter_mut().find(|run| run.id == run_id) {
                    if !run.epochs.iter().any(|known| known.epoch == metrics.epoch) {
                        run.epochs.push(metrics);
                        run.epochs.sort_by_key(|m| m.epoch);
                    }
                }
            }
            ServerMessage::Error { message } => {
                // The refused command may have been the stop: let Stop be pressed again.
                self.stopping = None;
                self.error = Some(message);
            }
            ServerMessage::LrFinderProgress(progress) => self.lr_finder = Some(progress),
        }
    }

    /// Notes that this page asked run `run_id` to stop; Stop reads "Stopping…" until the run ends.
    pub fn stop_requested(&mut self, run_id: u64) {
        self.stopping = Some(run_id);
    }

    /// The loss trace of `run_id`, if this page saw it train.
    pub fn trace_of(&self, run_id: u64) -> Option<&LossTrace> {
        self.live.get(&run_id)
    }

    fn record(&mut self, progress: BatchProgress) {
        match self.live.get_mut(&progress.run_id) {
            Some(trace) => trace.push(progress),
            None => {
                self.live.insert(progress.run_id, LossTrace::new(progress));
            }
        }
    }

    /// The run with this id.
    pub fn run(&self, id: u64) -> Option<&Run> {
        self.runs.iter().find(|run| run.id == id)
    }

    /// The run that Stop acts on: the one training, else the newest queued one.
    pub fn stoppable_run(&self) -> Option<u64> {
        self.runs
            .iter()
            .find(|run| run.status == RunStatus::Running)
            .or_else(|| self.runs.iter().find(|run| run.status == RunStatus::Queued))
            .map(|run| run.id)
    }

    /// The run shown in detail: `chosen` while it exists, else the newest.
    pub fn shown_run(&self, chosen: Option<u64>) -> Option<&Run> {
        chosen.and_then(|id| self.run(id)).or_else(|| self.runs.first())
    }

    /// The run that classifies: `chosen` while it has a model, else the newest run with one.
    pub fn classifying_run(&self, chosen: Option<u64>) -> Option<u64> {
        let mut with_model = self.runs.iter().filter(|run| run.has_model);
        chosen
            .filter(|id| self.run(*id).is_some_and(|run| run.has_model))
            .or_else(|| with_model.next().map(|run| run.id))
    }

    /// The batch progress of `run_id`, while that run is still training.
    pub fn progress_of(&self, run_id: u64) -> Option<&BatchProgress> {
        let training = self.run(run_id).is_some_and(|run| !run.status.is_finished());
        self.progress.as_ref().filter(|p| training && p.run_id == run_id)
    }

    /// The preparation step (download, unpacking, decoding) of run `run_id`, while it is not yet training.
    pub fn preparation_of(&self, run_id: u64) -> Option<&Preparation> {
        let active = self.run(run_id).is_some_and(|run| !run.status.is_finished());
        self.preparing.as_ref().filter(|(id, _)| active && *id == run_id).map(|(_, preparation)| preparation)
    }
}

/// Which runs the list shows, by status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatusFilter {
    /// Every run.
    #[default]
    All,
    /// Queued or training.
    Running,
    /// Trained every epoch asked for (or stopped early by patience).
    Completed,
    /// Stopped by a person, or interrupted by a server stop: both can be resumed.
    Stopped,
    /// Ended by an error.
    Failed,
}

impl StatusFilter {
    /// Every filter, in the order the buttons show them.
    pub const ALL: [StatusFilter; 5] = [
        StatusFilter::All,
        StatusFilter::Running,
        StatusFilter::Completed,
        StatusFilter::Stopped,
        StatusFilter::Failed,
    ];

    /// The button's text.
    pub fn title(self) -> &'static str {
        match self {
            StatusFilter::All => "All",
            StatusFilter::Running => "Running",
            StatusFilter::Completed => "Completed",
            StatusFilter::Stopped => "Stopped",
            StatusFilter::Failed => "Failed",
        }
    }

    /// The button's `data-filter` value.
    pub fn key(self) -> &'static str {
        match self {
            StatusFilter::All => "all",
            StatusFilter::Running => "running",
            StatusFilter::Completed => "completed",
            StatusFilter::Stopped => "stopped",
            StatusFilter::Failed => "failed",
        }
    }

    /// True when a run in `status` is shown.
    pub fn admits(self, status: RunStatus) -> bool {
        match self {
            StatusFilter::All => true,
            StatusFilter::Running => matches!(status, RunStatus::Queued | RunStatus::Running),
            StatusFilter::Completed => status == RunStatus::Completed,
            StatusFilter::Stopped => matches!(status, RunStatus::Stopped | RunStatus::Interrupted),
            StatusFilter::Failed => status == RunStatus::Failed,
        }
    }
}

fn sort_newest_first(runs: &mut [Run]) {
    runs.sort_by_key(|run| std::cmp::Reverse(run.id));
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::{EpochMetrics, PreparationStep};

    // Built from JSON so that fields the protocol adds later take their serde defaults here too.
    fn run(id: u64, status: RunStatus) -> Run {
        serde_json::from_value(serde_json::json!({
            "id": id,
            "status": status,
            "config": {"dataset": "tiny"},
            "epochs": [],
            "classes": ["cat", "dog"],
            "created_at": 1_795_000_000 + id,
        }))
        .unwrap()
    }

    fn metrics(epoch: u32) -> EpochMetrics {
        serde_json::from_value(serde_json::json!({
            "epoch": epoch,
            "train_loss": 1.0,
            "train_accuracy": 0.5,
            "test_loss": 1.1,
            "test_accuracy": 0.4,
            "seconds": 2.0,
        }))
        .unwrap()
    }

    fn progress(run_id: u64) -> BatchProgress {
        BatchProgress {
            run_id,
            epoch: 1,
            batch: 3,
            batches: 10,
            loss: 0.9,
            batch_loss: None,
            images_per_second: 120.0,
            eta_seconds: 4.0,
        }
    }

    #[test]
    fn a_snapshot_replaces_everything_and_sorts_newest_first() {
        let mut state = StudioState { runs: vec![run(9, RunStatus::Failed)], ..Default::default() };
        state.apply(ServerMessage::Snapshot {
            runs: vec![run(1, RunStatus::Completed), run(2, RunStatus::Running)],
            progress: Some(progress(2)),
        });
        let ids: Vec<u64> = state.runs.iter().map(|r| r.id).collect();
        assert_eq!(ids, [2, 1]);
        assert_eq!(state.progress, Some(progress(2)));
    }

    #[test]
    fn an_update_inserts_a_new_run_at_the_top_and_replaces_a_known_one() {
        let mut state = StudioState::default();
        state.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Queued) });
        state.apply(ServerMessage::RunUpdated { run: run(2, RunStatus::Queued) });
        state.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Running) });
        assert_eq!(state.runs.len(), 2);
        assert_eq!(state.runs[0].id, 2);
        assert_eq!(state.run(1).unwrap().status, RunStatus::Running);
    }

    #[test]
    fn a_finished_run_clears_its_progress() {
        let mut state = StudioState::default();
        state.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Running) });
        state.apply(ServerMessage::Progress(progress(1)));
        assert!(state.progress_of(1).is_some());
        state.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Completed) });
        assert_eq!(state.progress, None);
    }

    #[test]
    fn an_epoch_is_added_once_in_epoch_order() {
        let mut state = StudioState::default();
        state.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Running) });
        for epoch in [2, 1, 2] {
            state.apply(ServerMessage::EpochCompleted { run_id: 1, metrics: metrics(epoch) });
        }
        let epochs: Vec<u32> = state.run(1).unwrap().epochs.iter().map(|m| m.epoch).collect();
        assert_eq!(epochs, [1, 2]);
    }

    #[test]
    fn a_removed_run_leaves_the_list_and_an_unknown_one_changes_nothing() {
        let mut state = StudioState::default();
        for id in [1, 2] {
            state.apply(ServerMessage::RunUpdated { run: run(id, RunStatus::Completed) });
        }
        state.apply(ServerMessage::RunRemoved { run_id: 1 });
        assert_eq!(state.runs.iter().map(|r| r.id).collect::<Vec<_>>(), [2]);
        state.apply(ServerMessage::RunRemoved { run_id: 42 });
        assert_eq!(state.runs.len(), 1);
        assert_eq!(state.shown_run(Some(1)).unwrap().id, 2, "a deleted choice falls back to the newest");
    }

    #[test]
    fn each_status_falls_under_exactly_one_filter_besides_all() {
        for status in RunStatus::ALL {
            let admitting: Vec<StatusFilter> =
                StatusFilter::ALL[1..].iter().copied().filter(|f| f.admits(status)).collect();
            assert_eq!(admitting.len(), 1, "{status:?}: {admitting:?}");
            assert!(StatusFilter::All.admits(status));
        }
        assert!(StatusFilter::Running.admits(RunStatus::Queued));
        assert!(StatusFilter::Stopped.admits(RunStatus::Interrupted));
    }

    #[test]
    fn an_epoch_of_an_unknown_run_is_ignored() {
        let mut state = StudioState::default();
        state.apply(ServerMessage::EpochCompleted { run_id: 5, metrics: metrics(1) });
        assert!(state.runs.is_empty());
    }

    #[test]
    fn a_refusal_is_kept_for_the_form() {
        let mut state = StudioState::default();
        state.apply(ServerMessage::Error { message: "dataset does not exist".into() });
        assert_eq!(state.error.as_deref(), Some("dataset does not exist"));
    }

    #[test]
    fn stop_targets_the_running_run_before_the_newest_queued_one() {
        let mut state = StudioState::default();
        assert_eq!(state.stoppable_run(), None);
        for r in [run(1, RunStatus::Completed), run(2, RunStatus::Queued), run(3, RunStatus::Queued)] {
            state.apply(ServerMessage::RunUpdated { run: r });
        }
        assert_eq!(state.stoppable_run(), Some(3));
        state.apply(ServerMessage::RunUpdated { run: run(2, RunStatus::Running) });
        assert_eq!(state.stoppable_run(), Some(2));
    }

    #[test]
    fn the_shown_run_defaults_to_the_newest() {
        let mut state = StudioState::default();
        state.apply(ServerMessage::Snapshot {
            runs: vec![run(1, RunStatus::Completed), run(2, RunStatus::Running)],
            progress: None,
        });
        assert_eq!(state.shown_run(None).unwrap().id, 2);
        assert_eq!(state.shown_run(Some(1)).unwrap().id, 1);
        assert_eq!(state.shown_run(Some(42)).unwrap().id, 2);
    }

    #[test]
    fn classification_uses_the_newest_run_with_a_model_unless_one_is_chosen() {
        let mut with_model = run(1, RunStatus::Completed);
        with_model.has_model = true;
        let mut newer_with_model = run(2, RunStatus::Stopped);
        newer_with_model.has_model = true;
        let mut state = StudioState::default();
        state.apply(ServerMessage::Snapshot {
            runs: vec![with_model, newer_with_model, run(3, RunStatus::Running)],
            progress: None,
        });
        assert_eq!(state.classifying_run(None), Some(2));
        assert_eq!(state.classifying_run(Some(1)), Some(1));
        assert_eq!(state.classifying_run(Some(3)), Some(2));
    }

    #[test]
    fn a_preparation_shows_until_the_first_batch_and_only_for_its_run() {
        let mut state = StudioState::default();
        state.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Running) });
        let decoding =
            Preparation { step: PreparationStep::Decoding, subject: "colors".into(), done: 5, total: Some(9) };
        state.apply(ServerMessage::Preparing { run_id: 1, preparation: decoding.clone() });
        assert_eq!(state.preparation_of(1), Some(&decoding));
        assert_eq!(state.preparation_of(2), None);
        state.apply(ServerMessage::Progress(progress(1)));
        assert_eq!(state.preparation_of(1), None, "the first batch ends the preparation");
        state.apply(ServerMessage::Preparing { run_id: 1, preparation: decoding });
        state.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Failed) });
        assert_eq!(state.preparation_of(1), None, "a run that ended is not preparing");
    }

    #[test]
    fn progress_of_another_run_is_not_shown() {
        let mut state = StudioState::default();
        state.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Running) });
        state.apply(ServerMessage::RunUpdated { run: run(2, RunStatus::Queued) });
        state.apply(ServerMessage::Progress(progress(1)));
        assert!(state.progress_of(2).is_none());
        assert_eq!(state.progress_of(1).unwrap().batch, 3);
    }

    #[test]
    fn progress_messages_build_a_loss_trace_that_outlives_the_run() {
        let mut state = StudioState::default();
        state.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Running) });
        state.apply(ServerMessage::Progress(progress(1)));
        state.apply(ServerMessage::Progress(BatchProgress { batch: 6, loss: 0.7, ..progress(1) }));
        assert_eq!(state.trace_of(1).unwrap().points, [(0.3, 0.9), (0.6, 0.7)]);
        state.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Stopped) });
        assert_eq!(state.trace_of(1).unwrap().last.batch, 6, "a stopped run keeps where it was");
        state.apply(ServerMessage::RunRemoved { run_id: 1 });
        assert!(state.trace_of(1).is_none());
    }

    #[test]
    fn stopping_lasts_until_the_run_ends_or_a_command_is_refused() {
        let mut state = StudioState::default();
        state.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Running) });
        state.stop_requested(1);
        state.apply(ServerMessage::Progress(progress(1)));
        assert_eq!(state.stopping, Some(1), "batches still arrive while the run stops");
        state.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Stopped) });
        assert_eq!(state.stopping, None);
        state.stop_requested(1);
        state.apply(ServerMessage::Error { message: "no such run".into() });
        assert_eq!(state.stopping, None);
    }

    #[test]
    fn a_learning_rate_sweep_replaces_the_last_one_as_its_points_arrive() {
        let mut state = StudioState::default();
        let point = |lr: f64| shared::LrPoint { lr, loss: 1.0 };
        let sweep = |points: Vec<shared::LrPoint>, finished| {
            ServerMessage::LrFinderProgress(LrFinderProgress { points, suggestion: None, finished })
        };
        state.apply(sweep(vec![point(1e-7)], false));
        state.apply(sweep(vec![point(1e-7), point(1.2e-7)], false));
        assert_eq!(state.lr_finder.as_ref().map(|p| p.points.len()), Some(2));
        state.apply(sweep(vec![point(1e-7), point(1.2e-7)], true));
        assert!(state.lr_finder.as_ref().is_some_and(|p| p.finished));
        assert!(state.runs.is_empty(), "a sweep is not a run");
    }
}
