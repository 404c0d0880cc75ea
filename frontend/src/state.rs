//! The page's copy of the server's state, and the one function that changes it.
//!
//! The state sits in signals cut along how often each part changes. [`StudioState`] holds the run list
//! and what goes with it (the refusal, the stop asked for, the learning-rate sweep, the hyperparameter
//! sweeps); it changes when a run is added, removed, renamed, finishes an epoch or trains its first batch,
//! and when a sweep moves on. [`LiveRuns`] holds what the batches say, each run in its own signal: progress
//! messages arrive several times a second while a run trains, and one for run 7 wakes only what reads run
//! 7's [`RunLive`], never the list or another run (only a run's first batch is the list's news too).
//!
//! [`PageState::apply`] is the one place a [`ServerMessage`] changes the page; the list's part,
//! [`StudioState::apply`], is pure, so its rules (a snapshot replaces everything, an update replaces one
//! run, an epoch is never added twice) are tested natively without a browser.

use std::collections::BTreeMap;

use leptos::prelude::*;
use shared::sweep::Sweep;
use shared::{BatchProgress, LrFinderProgress, Preparation, Run, RunStatus, ServerMessage};

use crate::live::LossTrace;

/// The run list and what goes with it: everything the server has told this page except the batches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StudioState {
    /// Every run, newest first.
    pub runs: Vec<Run>,
    /// The last command the server refused, as its sentence.
    pub error: Option<String>,
    /// The run this page asked to stop, until the server says it ended (or refuses a command).
    pub stopping: Option<u64>,
    /// The last learning-rate sweep the server reported (any page's), as it arrived.
    pub lr_finder: Option<LrFinderProgress>,
    /// Every hyperparameter sweep, newest first: listed over HTTP after each snapshot, then kept current by
    /// `SweepUpdated` and `SweepRemoved`.
    pub sweeps: Vec<Sweep>,
    /// Snapshots taken: one per connection, and one each time the page fell behind the server's messages,
    /// after which what a snapshot does not carry (the sweeps) is listed again.
    pub snapshots: u64,
    /// Moments a decoded cache may have appeared since the page opened: a run began training (its dataset
    /// is decoded by then) or ended. The caches section lists the caches again after each.
    pub cache_moments: u64,
    /// The queued runs' ids in the order the server will start them: the order this page saw each queued
    /// (the server hands runs to its executor as they are created or resumed), those a snapshot brings
    /// in id order (the order the server queues them again when it starts).
    queue: Vec<u64>,
    /// Sweep messages received so far, and for each sweep the count when a message last changed it, so
    /// a list asked for over HTTP never overwrites what a message said after the request was sent.
    sweep_messages: u64,
    sweep_changed_at: BTreeMap<u64, u64>,
}

impl StudioState {
    /// Folds the list's part of one message from the server into the state. Batches and preparation
    /// steps are not the list's: [`PageState::apply`] gives them to the run's [`RunLive`].
    pub fn apply(&mut self, message: ServerMessage) {
        match message {
            ServerMessage::Snapshot { runs, .. } => {
                self.snapshots += 1;
                self.runs = runs;
                sort_newest_first(&mut self.runs);
                self.queue_again();
                self.stopping =
                    self.stopping.filter(|id| self.runs.iter().any(|r| r.id == *id && !r.status.is_finished()));
            }
            ServerMessage::RunUpdated { run } => {
                if run.status.is_finished() && self.stopping == Some(run.id) {
                    self.stopping = None;
                }
                if run.status.is_finished() && self.run(run.id).is_none_or(|known| !known.status.is_finished()) {
                    self.cache_moments += 1;
                }
                match (run.status == RunStatus::Queued, self.queue.contains(&run.id)) {
                    (true, false) => self.queue.push(run.id),
                    (false, true) => self.queue.retain(|&id| id != run.id),
                    _ => {}
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
                self.queue.retain(|&id| id != run_id);
                if self.stopping == Some(run_id) {
                    self.stopping = None;
                }
            }
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
            ServerMessage::SweepUpdated { sweep } => {
                self.note_sweep_message(sweep.id);
                self.sweep_updated(sweep);
            }
            ServerMessage::SweepRemoved { sweep_id } => {
                self.note_sweep_message(sweep_id);
                self.sweeps.retain(|sweep| sweep.id != sweep_id);
            }
            ServerMessage::Progress(_) | ServerMessage::Preparing { .. } => {}
        }
    }

    /// After a snapshot: the runs still queued keep their places, and those this page did not know were
    /// queued follow, in id order.
    fn queue_again(&mut self) {
        let queued = |id: &u64| self.runs.iter().any(|run| run.id == *id && run.status == RunStatus::Queued);
        let mut queue: Vec<u64> = self.queue.iter().copied().filter(queued).collect();
        let mut newly: Vec<u64> = self
            .runs
            .iter()
            .filter(|run| run.status == RunStatus::Queued && !queue.contains(&run.id))
            .map(|run| run.id)
            .collect();
        newly.sort_unstable();
        queue.extend(newly);
        self.queue = queue;
    }

    /// The queued runs, first to start first.
    pub fn queued_runs(&self) -> Vec<&Run> {
        self.queue.iter().filter_map(|&id| self.run(id)).collect()
    }

    /// Notes that a run trained its first batch, so its dataset's decoded cache is there now.
    pub fn training_began(&mut self) {
        self.cache_moments += 1;
    }

    fn note_sweep_message(&mut self, sweep_id: u64) {
        self.sweep_messages += 1;
        self.sweep_changed_at.insert(sweep_id, self.sweep_messages);
    }

    /// Where the sweep messages stand now: give it to [`StudioState::set_sweeps`] with the list asked for
    /// from here.
    pub fn sweep_mark(&self) -> u64 {
        self.sweep_messages
    }

    /// Takes the server's list of sweeps, asked for at `mark` ([`StudioState::sweep_mark`]), in place of
    /// what this page knew, except a sweep a message changed (or removed) since `mark`: the message is newer.
    pub fn set_sweeps(&mut self, sweeps: Vec<Sweep>, mark: u64) {
        let newer = |id: u64| self.sweep_changed_at.get(&id).is_some_and(|&at| at > mark);
        let kept = self.sweeps.iter().filter(|sweep| newer(sweep.id)).cloned();
        let mut listed: Vec<Sweep> = sweeps.into_iter().filter(|sweep| !newer(sweep.id)).chain(kept).collect();
        listed.sort_by_key(|sweep| std::cmp::Reverse(sweep.id));
        self.sweeps = listed;
    }

    /// Takes a sweep as it is now (from a message or an HTTP answer), in its place or, new, at the top.
    pub fn sweep_updated(&mut self, sweep: Sweep) {
        match self.sweeps.iter_mut().find(|known| known.id == sweep.id) {
            Some(known) => *known = sweep,
            None => {
                self.sweeps.push(sweep);
                self.sweeps.sort_by_key(|sweep| std::cmp::Reverse(sweep.id));
            }
        }
    }

    /// The sweep shown: `chosen` while it exists, else the newest.
    pub fn shown_sweep(&self, chosen: Option<u64>) -> Option<&Sweep> {
        chosen.and_then(|id| self.sweeps.iter().find(|s| s.id == id)).or_else(|| self.sweeps.first())
    }

    /// Notes that this page asked run `run_id` to stop; Stop reads "Stopping…" until the run ends.
    pub fn stop_requested(&mut self, run_id: u64) {
        self.stopping = Some(run_id);
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
}

/// What one run's batches have told this page: the batch in flight, the preparation step before the
/// first batch, and the loss as it arrived.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunLive {
    /// The latest progress message, until the run ends.
    pub progress: Option<BatchProgress>,
    /// The preparation step in flight (download, unpacking, decoding), until the first batch.
    pub preparing: Option<Preparation>,
    /// The loss of every batch this page saw, kept after the run ends.
    pub trace: Option<LossTrace>,
}

impl RunLive {
    /// The batch in flight of `run` (whose live part this is), while it is still training.
    pub fn progress_of(&self, run: &Run) -> Option<&BatchProgress> {
        self.progress.as_ref().filter(|_| !run.status.is_finished())
    }

    /// The preparation step of `run` (whose live part this is), while it is not yet training.
    pub fn preparation_of(&self, run: &Run) -> Option<&Preparation> {
        self.preparing.as_ref().filter(|_| !run.status.is_finished())
    }

    fn record(&mut self, progress: BatchProgress) {
        self.preparing = None;
        match &mut self.trace {
            Some(trace) => trace.push(progress.clone()),
            None => self.trace = Some(LossTrace::new(progress.clone())),
        }
        self.progress = Some(progress);
    }

    /// Takes the server's `trace` of this run; its last message is the batch in flight while `training`.
    fn adopt(&mut self, trace: LossTrace, training: bool) {
        self.progress = training.then(|| trace.last.clone());
        if training {
            self.preparing = None;
        }
        self.trace = Some(trace);
    }

    /// Forgets the batch and the preparation in flight; true when there was one.
    fn end(&mut self) -> bool {
        let in_flight = self.progress.is_some() || self.preparing.is_some();
        self.progress = None;
        self.preparing = None;
        in_flight
    }
}

/// Each run's [`RunLive`] in its own signal, by run id. The map itself changes only when a run first
/// reports or leaves; a batch changes only its run's signal.
#[derive(Clone, Copy)]
pub struct LiveRuns(RwSignal<BTreeMap<u64, ArcRwSignal<RunLive>>>);

impl LiveRuns {
    fn new() -> Self {
        LiveRuns(RwSignal::new(BTreeMap::new()))
    }

    /// Reads the live part of `run_id` (empty when the page has heard nothing of it), tracking only that
    /// run's signal and the map's membership.
    pub fn with<T>(&self, run_id: u64, read: impl FnOnce(&RunLive) -> T) -> T {
        match self.signal_of(run_id) {
            Some(live) => live.with(read),
            None => read(&RunLive::default()),
        }
    }

    /// The signal of `run_id`, if the page has heard its batches.
    pub fn signal_of(&self, run_id: u64) -> Option<ArcRwSignal<RunLive>> {
        self.0.with(|runs| runs.get(&run_id).cloned())
    }

    /// Changes the live part of `run_id`, adding its signal when this is the run's first report.
    fn update(&self, run_id: u64, change: impl FnOnce(&mut RunLive)) {
        let known = self.0.with_untracked(|runs| runs.get(&run_id).cloned());
        let live = known.unwrap_or_else(|| {
            let live = ArcRwSignal::new(RunLive::default());
            self.0.update(|runs| {
                runs.insert(run_id, live.clone());
            });
            live
        });
        live.update(change);
    }

    /// Changes the live part of `run_id` if the page has one; its readers wake only when `change` says it
    /// changed something.
    fn change(&self, run_id: u64, change: impl FnOnce(&mut RunLive) -> bool) {
        if let Some(live) = self.0.with_untracked(|runs| runs.get(&run_id).cloned()) {
            live.maybe_update(change);
        }
    }

    /// Keeps only the runs `keep` admits.
    fn retain(&self, keep: impl Fn(u64) -> bool) {
        if self.0.with_untracked(|runs| runs.keys().any(|&id| !keep(id))) {
            self.0.update(|runs| runs.retain(|&id, _| keep(id)));
        }
    }
}

/// Everything the server has told this page, in signals: the list in one, each run's batches in its own.
#[derive(Clone, Copy)]
pub struct PageState {
    /// The run list and what goes with it.
    pub list: RwSignal<StudioState>,
    /// Each run's batches.
    pub live: LiveRuns,
}

impl PageState {
    /// A page that has heard nothing from the server yet.
    pub fn new() -> Self {
        PageState { list: RwSignal::new(StudioState::default()), live: LiveRuns::new() }
    }

    /// Folds one message from the server into the page's signals: a batch or a preparation step changes
    /// only its run's [`RunLive`]; the rest changes the list, and the live part of a run that ended or left.
    pub fn apply(&self, message: ServerMessage) {
        match message {
            ServerMessage::Progress(progress) => {
                let mut first_batch = false;
                self.live.update(progress.run_id, |live| {
                    first_batch = live.progress.is_none();
                    live.record(progress);
                });
                if first_batch {
                    self.list.update(StudioState::training_began);
                }
            }
            ServerMessage::Preparing { run_id, preparation } => {
                self.live.update(run_id, |live| live.preparing = Some(preparation));
            }
            ServerMessage::Snapshot { runs, traces } => {
                self.live.retain(|id| runs.iter().any(|run| run.id == id));
                let traced: Vec<u64> = traces.iter().map(|trace| trace.last.run_id).collect();
                for id in runs.iter().map(|run| run.id).filter(|id| !traced.contains(id)) {
                    self.live.change(id, |live| live.progress.take().is_some());
                }
                // The server's traces replace this page's: every tab, and a reload, draws the same line.
                for trace in traces {
                    let training = runs.iter().any(|run| run.id == trace.last.run_id && !run.status.is_finished());
                    self.live.update(trace.last.run_id, |live| live.adopt(trace, training));
                }
                self.list.update(|list| list.apply(ServerMessage::Snapshot { runs, traces: Vec::new() }));
            }
            ServerMessage::RunUpdated { run } => {
                if run.status.is_finished() {
                    self.live.change(run.id, RunLive::end);
                }
                let began = run.status == RunStatus::Running
                    && self
                        .list
                        .with_untracked(|list| list.run(run.id).is_some_and(|r| r.status != RunStatus::Running));
                if began {
                    // A resumed run's line starts again from its first batch, as the server's trace does.
                    self.live.change(run.id, |live| live.trace.take().is_some());
                }
                self.list.update(|list| list.apply(ServerMessage::RunUpdated { run }));
            }
            ServerMessage::RunRemoved { run_id } => {
                self.live.retain(|id| id != run_id);
                self.list.update(|list| list.apply(ServerMessage::RunRemoved { run_id }));
            }
            other => self.list.update(|list| list.apply(other)),
        }
    }
}

impl Default for PageState {
    fn default() -> Self {
        PageState::new()
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
    /// Trained every epoch asked for, or ended early on purpose: by patience, or pruned by its sweep.
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
            StatusFilter::Completed => matches!(status, RunStatus::Completed | RunStatus::Pruned),
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
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

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

    /// The batch in flight of `run_id` as the progress bar reads it: only while the run trains.
    fn progress_shown(page: &PageState, run_id: u64) -> Option<BatchProgress> {
        let run = page.list.with_untracked(|list| list.run(run_id).cloned())?;
        page.live.with(run_id, |live| live.progress_of(&run).cloned())
    }

    /// The preparation step of `run_id` as the progress bar reads it: only while the run has not ended.
    fn preparation_shown(page: &PageState, run_id: u64) -> Option<Preparation> {
        let run = page.list.with_untracked(|list| list.run(run_id).cloned())?;
        page.live.with(run_id, |live| live.preparation_of(&run).cloned())
    }

    /// How many times `read` has run again since it first ran, read as a memo reads it after each change:
    /// a memo runs again only when a signal it read was notified.
    fn wake_counter<T: PartialEq + Send + Sync + 'static>(
        read: impl Fn() -> T + Send + Sync + 'static,
    ) -> impl Fn() -> usize {
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        let memo = ArcMemo::new(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
            read()
        });
        memo.with_untracked(|_| ());
        move || {
            memo.with_untracked(|_| ());
            runs.load(Ordering::SeqCst) - 1
        }
    }

    #[test]
    fn a_run_that_begins_training_or_ends_asks_for_the_decoded_caches_again() {
        let page = PageState::new();
        let moments = || page.list.with_untracked(|list| list.cache_moments);
        page.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Running) });
        assert_eq!(moments(), 0, "a run that only began preparing has not decoded yet");
        page.apply(ServerMessage::Progress(progress(1)));
        assert_eq!(moments(), 1, "its first batch: the dataset is decoded");
        page.apply(ServerMessage::Progress(progress(1)));
        assert_eq!(moments(), 1, "later batches change nothing");
        page.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Completed) });
        assert_eq!(moments(), 2, "its end");
        page.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Completed) });
        assert_eq!(moments(), 2, "a finished run renamed has not ended again");
        page.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Running) });
        page.apply(ServerMessage::Progress(progress(1)));
        assert_eq!(moments(), 3, "a resumed run's first batch");
    }

    #[test]
    fn a_snapshot_replaces_everything_and_sorts_newest_first() {
        let mut state = StudioState { runs: vec![run(9, RunStatus::Failed)], ..Default::default() };
        state.apply(ServerMessage::Snapshot {
            runs: vec![run(1, RunStatus::Completed), run(2, RunStatus::Running)],
            traces: vec![LossTrace::new(progress(2))],
        });
        let ids: Vec<u64> = state.runs.iter().map(|r| r.id).collect();
        assert_eq!(ids, [2, 1]);
    }

    #[test]
    fn a_snapshot_gives_each_traced_run_its_line_and_batch_and_ends_the_others() {
        let page = PageState::new();
        page.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Running) });
        page.apply(ServerMessage::Progress(progress(1)));
        let mut server_trace = LossTrace::new(progress(2));
        server_trace.push(progress(2));
        page.apply(ServerMessage::Snapshot {
            runs: vec![run(1, RunStatus::Running), run(2, RunStatus::Running), run(3, RunStatus::Running)],
            traces: vec![server_trace.clone(), LossTrace::new(progress(3))],
        });
        assert_eq!(progress_shown(&page, 2), Some(progress(2)));
        assert_eq!(progress_shown(&page, 3), Some(progress(3)), "two runs train at once");
        assert_eq!(page.live.with(2, |live| live.trace.clone()), Some(server_trace), "the server's line");
        assert_eq!(progress_shown(&page, 1), None, "the server has no batch of run 1 in flight");
        assert!(page.live.with(1, |live| live.trace.is_some()), "run 1 keeps the loss it showed");
    }

    fn queue_of(state: &StudioState) -> Vec<u64> {
        state.queued_runs().iter().map(|run| run.id).collect()
    }

    #[test]
    fn the_queue_lists_runs_in_the_order_they_were_queued_and_a_resumed_run_last() {
        let mut state = StudioState::default();
        for id in [1, 2, 3] {
            state.apply(ServerMessage::RunUpdated { run: run(id, RunStatus::Queued) });
        }
        state.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Running) });
        state.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Stopped) });
        state.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Queued) });
        assert_eq!(queue_of(&state), [2, 3, 1], "run 1 was resumed after runs 2 and 3 were created");
        state.apply(ServerMessage::RunUpdated { run: run(2, RunStatus::Running) });
        assert_eq!(queue_of(&state), [3, 1], "a run that began training leaves the queue");
        state.apply(ServerMessage::RunUpdated { run: run(3, RunStatus::Queued) });
        assert_eq!(queue_of(&state), [3, 1], "an update of a queued run (its Slurm job pending) keeps its place");
        state.apply(ServerMessage::RunRemoved { run_id: 3 });
        state.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Stopped) });
        assert_eq!(queue_of(&state), Vec::<u64>::new(), "removed and cancelled runs leave it");
    }

    #[test]
    fn a_snapshot_keeps_the_queue_it_knew_and_adds_the_runs_it_did_not_in_id_order() {
        let mut state = StudioState::default();
        for id in [4, 2] {
            state.apply(ServerMessage::RunUpdated { run: run(id, RunStatus::Queued) });
        }
        state.apply(ServerMessage::Snapshot {
            runs: [(6, RunStatus::Queued), (5, RunStatus::Queued), (4, RunStatus::Running), (2, RunStatus::Queued)]
                .map(|(id, status)| run(id, status))
                .into(),
            traces: Vec::new(),
        });
        assert_eq!(queue_of(&state), [2, 5, 6]);
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
    fn a_resumed_run_starts_its_line_again_and_a_renamed_running_run_keeps_it() {
        let page = PageState::new();
        page.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Running) });
        page.apply(ServerMessage::Progress(progress(1)));
        page.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Running) });
        assert!(page.live.with(1, |live| live.trace.is_some()), "news of a running run keeps its line");
        page.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Stopped) });
        assert!(page.live.with(1, |live| live.trace.is_some()), "a stopped run shows where it got");
        page.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Running) });
        assert_eq!(page.live.with(1, |live| live.trace.clone()), None, "resumed, as the server's trace");
    }

    #[test]
    fn a_finished_run_clears_its_progress() {
        let page = PageState::new();
        page.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Running) });
        page.apply(ServerMessage::Progress(progress(1)));
        assert!(progress_shown(&page, 1).is_some());
        page.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Completed) });
        assert_eq!(page.live.with(1, |live| live.progress.clone()), None);
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
        assert!(StatusFilter::Completed.admits(RunStatus::Pruned), "a sweep ended it on purpose");
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
            traces: Vec::new(),
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
            traces: Vec::new(),
        });
        assert_eq!(state.classifying_run(None), Some(2));
        assert_eq!(state.classifying_run(Some(1)), Some(1));
        assert_eq!(state.classifying_run(Some(3)), Some(2));
    }

    #[test]
    fn a_preparation_shows_until_the_first_batch_and_only_for_its_run() {
        let page = PageState::new();
        page.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Running) });
        page.apply(ServerMessage::RunUpdated { run: run(2, RunStatus::Queued) });
        let decoding = Preparation {
            step: PreparationStep::Decoding,
            subject: "colors".into(),
            done: 5,
            total: Some(9),
            per_second: None,
        };
        page.apply(ServerMessage::Preparing { run_id: 1, preparation: decoding.clone() });
        assert_eq!(preparation_shown(&page, 1), Some(decoding.clone()));
        assert_eq!(preparation_shown(&page, 2), None);
        page.apply(ServerMessage::Progress(progress(1)));
        assert_eq!(preparation_shown(&page, 1), None, "the first batch ends the preparation");
        page.apply(ServerMessage::Preparing { run_id: 1, preparation: decoding });
        page.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Failed) });
        assert_eq!(preparation_shown(&page, 1), None, "a run that ended is not preparing");
    }

    #[test]
    fn progress_of_another_run_is_not_shown() {
        let page = PageState::new();
        page.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Running) });
        page.apply(ServerMessage::RunUpdated { run: run(2, RunStatus::Queued) });
        page.apply(ServerMessage::Progress(progress(1)));
        assert!(progress_shown(&page, 2).is_none());
        assert_eq!(progress_shown(&page, 1).unwrap().batch, 3);
    }

    #[test]
    fn progress_messages_build_a_loss_trace_that_outlives_the_run() {
        let page = PageState::new();
        let trace = move || page.live.with(1, |live| live.trace.clone());
        page.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Running) });
        page.apply(ServerMessage::Progress(progress(1)));
        page.apply(ServerMessage::Progress(BatchProgress { batch: 6, loss: 0.7, ..progress(1) }));
        assert_eq!(trace().unwrap().points, [(0.3, 0.9), (0.6, 0.7)]);
        page.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Stopped) });
        assert_eq!(trace().unwrap().last.batch, 6, "a stopped run keeps where it was");
        page.apply(ServerMessage::RunRemoved { run_id: 1 });
        assert!(trace().is_none());
        assert!(page.live.signal_of(1).is_none(), "a removed run's signal is let go");
    }

    #[test]
    fn stopping_lasts_until_the_run_ends_or_a_command_is_refused() {
        let page = PageState::new();
        let stopping = move || page.list.with_untracked(|list| list.stopping);
        page.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Running) });
        page.list.update(|list| list.stop_requested(1));
        page.apply(ServerMessage::Progress(progress(1)));
        assert_eq!(stopping(), Some(1), "batches still arrive while the run stops");
        page.apply(ServerMessage::RunUpdated { run: run(1, RunStatus::Stopped) });
        assert_eq!(stopping(), None);
        page.list.update(|list| list.stop_requested(1));
        page.apply(ServerMessage::Error { message: "no such run".into() });
        assert_eq!(stopping(), None);
    }

    #[test]
    fn a_learning_rate_sweep_replaces_the_last_one_as_its_points_arrive() {
        let mut state = StudioState::default();
        let point = |lr: f64| shared::LrPoint { lr, loss: 1.0 };
        let sweep = |points: Vec<shared::LrPoint>, finished| {
            ServerMessage::LrFinderProgress(LrFinderProgress { points, suggestion: None, finished, stopped: false })
        };
        state.apply(sweep(vec![point(1e-7)], false));
        state.apply(sweep(vec![point(1e-7), point(1.2e-7)], false));
        assert_eq!(state.lr_finder.as_ref().map(|p| p.points.len()), Some(2));
        state.apply(sweep(vec![point(1e-7), point(1.2e-7)], true));
        assert!(state.lr_finder.as_ref().is_some_and(|p| p.finished));
        assert!(state.runs.is_empty(), "a sweep is not a run");
    }

    fn sweep(id: u64, status: &str) -> Sweep {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": format!("sweep {id}"), "status": status, "created_at": 0, "trials": [],
            "request": {"base": {"dataset": "tiny"}, "parameters": {"lr": {"values": [0.1]}}},
        }))
        .unwrap()
    }

    #[test]
    fn sweeps_are_listed_newest_first_updated_in_place_and_removed() {
        let mut state = StudioState::default();
        state.set_sweeps(vec![sweep(1, "completed"), sweep(3, "running")], state.sweep_mark());
        state.apply(ServerMessage::SweepUpdated { sweep: sweep(2, "running") });
        assert_eq!(state.sweeps.iter().map(|s| s.id).collect::<Vec<_>>(), [3, 2, 1]);
        state.apply(ServerMessage::SweepUpdated { sweep: sweep(3, "stopped") });
        assert_eq!(state.sweeps[0].status, shared::sweep::SweepStatus::Stopped);
        assert_eq!(state.shown_sweep(None).map(|s| s.id), Some(3), "the newest by default");
        assert_eq!(state.shown_sweep(Some(1)).map(|s| s.id), Some(1));
        state.apply(ServerMessage::SweepRemoved { sweep_id: 1 });
        assert_eq!(state.shown_sweep(Some(1)).map(|s| s.id), Some(3), "a removed choice falls back to the newest");
        state.apply(ServerMessage::Snapshot { runs: Vec::new(), traces: Vec::new() });
        assert_eq!(state.sweeps.len(), 2, "a snapshot of the runs keeps the sweeps");
        assert_eq!(state.snapshots, 1, "and counts, so that the sweeps are listed again");
    }

    #[test]
    fn a_list_asked_for_before_a_message_never_overwrites_what_the_message_said() {
        let mut state = StudioState::default();
        state.set_sweeps(vec![sweep(1, "running"), sweep(2, "running")], state.sweep_mark());
        let mark = state.sweep_mark();
        // While the list is on its way: sweep 1 completes, sweep 2 is deleted.
        state.apply(ServerMessage::SweepUpdated { sweep: sweep(1, "completed") });
        state.apply(ServerMessage::SweepRemoved { sweep_id: 2 });
        // The list, as the server had it when asked: older for 1 and 2, and news of sweep 3.
        state.set_sweeps(vec![sweep(1, "running"), sweep(2, "running"), sweep(3, "running")], mark);
        let listed: Vec<(u64, String)> = state.sweeps.iter().map(|s| (s.id, s.status.as_str().to_string())).collect();
        assert_eq!(listed, [(3, "running".into()), (1, "completed".into())]);
        // A list asked for after the messages is taken whole.
        state.set_sweeps(vec![sweep(1, "completed")], state.sweep_mark());
        assert_eq!(state.sweeps.len(), 1);
    }

    /// A page where runs 7 and 8 have both reported a batch.
    fn two_runs_training() -> PageState {
        let page = PageState::new();
        for id in [7, 8] {
            page.apply(ServerMessage::RunUpdated { run: run(id, RunStatus::Running) });
            page.apply(ServerMessage::Progress(progress(id)));
        }
        page
    }

    #[test]
    fn a_batch_of_one_run_wakes_neither_the_list_nor_another_run() {
        let page = two_runs_training();
        let list_woken = wake_counter(move || page.list.with(|list| list.runs.clone()));
        let run_7_woken = wake_counter(move || page.live.with(7, |live| live.progress.clone()));
        let run_8_woken = wake_counter(move || page.live.with(8, |live| live.progress.clone()));
        for batch in 4..14 {
            page.apply(ServerMessage::Progress(BatchProgress { batch, ..progress(7) }));
            assert_eq!(run_7_woken(), (batch - 3) as usize, "run 7's readers see each of its batches");
        }
        assert_eq!(run_8_woken(), 0, "run 8's readers slept through run 7's batches");
        assert_eq!(list_woken(), 0, "the run list slept through run 7's batches");
    }

    #[test]
    fn an_epoch_or_a_new_run_changes_the_list_but_not_another_runs_batches() {
        let page = two_runs_training();
        let list_woken = wake_counter(move || page.list.with(|list| list.runs.clone()));
        let run_8_woken = wake_counter(move || page.live.with(8, |live| live.progress.clone()));
        page.apply(ServerMessage::EpochCompleted { run_id: 7, metrics: metrics(1) });
        assert_eq!(list_woken(), 1, "an epoch changes what the list shows");
        page.apply(ServerMessage::RunUpdated { run: run(9, RunStatus::Queued) });
        assert_eq!(list_woken(), 2, "a new run joins the list");
        page.apply(ServerMessage::RunUpdated { run: run(7, RunStatus::Completed) });
        assert_eq!(list_woken(), 3);
        assert_eq!(run_8_woken(), 0, "nothing of this was run 8's");
    }
}
