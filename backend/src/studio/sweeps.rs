//! Sweeps on the studio: a sweep's trials are ordinary runs, created as its `parallel` allows and placed
//! by the executor like any run. The history holds everything (the request, each trial's run, each
//! early-stopping decision), so a sweep goes on after a restart from where it was.
//!
//! What moves a sweep on is [`Studio::advance_sweep`], called whenever one of its trials ends and when the
//! studio opens: it retries a failed trial once (from its checkpoint), continues trials a restart or a
//! stop of the sweep left stopped, starts pending trials up to `parallel`, and marks the sweep completed
//! when nothing is left. With ASHA, a trial's attempt pauses after each rung's epoch
//! ([`Studio::pause_for`]). In the stopping variant [`Studio::trial_paused`] judges it
//! ([`super::asha::judge`]) and either queues it again at once or ends it `pruned`; in the promotion
//! variant it waits there (stopped) and [`Studio::advance_sweep`] promotes waiting trials before it starts
//! new ones ([`super::asha::promotions`]), and settles the waiting ones once nothing else is left.

use super::asha::{self, AtRung};
use super::lifecycle::Move;
use super::sweep_store::{SweepRow, TrialRow};
use super::{unix_now, Studio, StudioError};
use shared::sweep::{Asha, AshaVariant, RungDecision, Sweep, SweepMetric, SweepRef, SweepRequest, SweepStatus, Trial};
use shared::{Run, RunStatus, ServerMessage};

/// What a trial needs from the sweep now.
enum Next {
    /// Its run is queued or training.
    Active,
    /// Its run should go on from its checkpoint (a stop or a restart left it), without counting a retry.
    Continue(u64),
    /// Its run failed (or was lost) for the first time: retried once from its checkpoint.
    Retry(u64),
    /// It waits at this rung to be promoted (ASHA's promotion variant).
    Waiting(u32),
    /// It goes on from the rung it waited at, as decided (ASHA's promotion variant).
    Promote(u64, RungDecision),
    /// It has no run yet.
    Start,
    /// It ended, or waits for a person.
    Nothing,
}

impl Studio {
    /// Parses a sweep request from JSON, naming the field at fault (as [`Studio::parse_config`] does for
    /// a run): the API's body and the CLI's file alike.
    pub fn parse_sweep_request(json: &[u8]) -> Result<SweepRequest, StudioError> {
        let deserializer = &mut serde_json::Deserializer::from_slice(json);
        serde_path_to_error::deserialize(deserializer)
            .map_err(|e| StudioError::InvalidSweep(format!("invalid sweep: {}: {}", e.path(), e.inner())))
    }

    /// Checks `request` (its shape, every trial's configuration as a run's, its datasets and weights, and
    /// `parallel` against the executor's slots), records the sweep and starts its first trials.
    pub fn create_sweep(&self, mut request: SweepRequest) -> Result<Sweep, StudioError> {
        if request.name.trim().is_empty() {
            let fields: Vec<&str> = request.parameters.keys().map(String::as_str).collect();
            request.name = format!("sweep of {}", fields.join(", "));
        }
        let name = shared::check_run_name(&request.name).map_err(StudioError::InvalidName)?;
        request.name = name.unwrap_or_default();
        let trials = request
            .checked_trials(self.executor_info().slots)
            .map_err(|problems| StudioError::InvalidSweep(problems.join("; ")))?;
        let mut checked: Vec<(&str, &str)> = Vec::new();
        for (_, config) in &trials {
            let inputs = (config.dataset.as_str(), config.weights.as_str());
            if !checked.contains(&inputs) {
                self.check_trainable(config)?;
                checked.push(inputs);
            }
        }
        let plan: Vec<_> = trials.into_iter().map(|(parameters, _)| parameters).collect();
        let id = self.with_store(|store| store.create_sweep(&request, &plan, unix_now()))?;
        tracing::info!(sweep_id = id, trials = plan.len(), "sweep created");
        self.advance_sweep(id, false)?;
        self.sweep(id)
    }

    /// Every sweep, newest first.
    pub fn sweeps(&self) -> Result<Vec<Sweep>, StudioError> {
        let ids = self.with_store(|store| store.sweep_ids())?;
        ids.into_iter().map(|id| self.sweep(id)).collect()
    }

    /// One sweep, its trials ranked by its metric (best first).
    pub fn sweep(&self, id: u64) -> Result<Sweep, StudioError> {
        // One read of the history, so the sweep is seen as it was at one moment.
        self.with_store(|store| {
            let row = store.sweep_row(id)?.ok_or(StudioError::SweepNotFound(id))?;
            let decisions = store.decisions(id)?;
            let mut trials = Vec::new();
            for (trial, run) in store.trials_with_runs(id)? {
                trials.push(trial_of(&row.request, trial, run.as_ref(), &decisions));
            }
            shared::sweep::rank(&mut trials, row.request.metric);
            let SweepRow { id, name, request, status, created_at } = row;
            Ok(Sweep { id, name, status, request, created_at, trials, decisions })
        })
    }

    /// Stops a running sweep: no trial starts, and its trials in training stop at their next batch
    /// (resumable, as any stopped run).
    pub fn stop_sweep(&self, id: u64) -> Result<Sweep, StudioError> {
        let row = self.sweep_in(id, &[SweepStatus::Running], "stopped")?;
        self.with_store(|store| store.set_sweep_status(id, SweepStatus::Stopped))?;
        let trials = self.with_store(|store| store.trials(row.id))?;
        for trial in trials {
            if let Some(run_id) = trial.run_id {
                match self.stop_attempt(run_id) {
                    Ok(_) | Err(StudioError::AlreadyFinished { .. }) => {}
                    Err(error) => tracing::warn!(sweep_id = id, run_id, "could not stop a trial: {error}"),
                }
            }
        }
        self.tell_sweep(id)?;
        self.sweep(id)
    }

    /// Resumes a stopped sweep: its stopped trials go on from their checkpoints, and pending ones start,
    /// `parallel` at a time.
    pub fn resume_sweep(&self, id: u64) -> Result<Sweep, StudioError> {
        self.sweep_in(id, &[SweepStatus::Stopped], "resumed")?;
        self.with_store(|store| {
            store.in_transaction(|store| {
                store.hold_trials(id, None, false)?;
                store.set_sweep_status(id, SweepStatus::Running)
            })
        })?;
        self.advance_sweep(id, true)?;
        self.sweep(id)
    }

    /// Deletes a sweep that is not running; its trials' runs stay, as ordinary runs.
    pub fn delete_sweep(&self, id: u64) -> Result<(), StudioError> {
        let row = self.sweep_in(id, &[SweepStatus::Stopped, SweepStatus::Completed], "deleted")?;
        let runs: Vec<u64> = self.with_store(|store| store.trials(row.id))?.iter().filter_map(|t| t.run_id).collect();
        self.with_store(|store| store.delete_sweep(id))?;
        self.broadcast(ServerMessage::SweepRemoved { sweep_id: id });
        for run_id in runs {
            self.tell(run_id)?;
        }
        Ok(())
    }

    /// The sweep's row if its status is one of `allowed`; else why it cannot be `what`.
    fn sweep_in(&self, id: u64, allowed: &[SweepStatus], what: &'static str) -> Result<SweepRow, StudioError> {
        let row = self.with_store(|store| store.sweep_row(id))?.ok_or(StudioError::SweepNotFound(id))?;
        if !allowed.contains(&row.status) {
            return Err(StudioError::SweepState { id, status: row.status.as_str(), what });
        }
        Ok(row)
    }

    /// Tells every client of sweep `id` as it is now.
    fn tell_sweep(&self, id: u64) -> Result<(), StudioError> {
        let sweep = self.sweep(id)?;
        self.broadcast(ServerMessage::SweepUpdated { sweep });
        Ok(())
    }

    /// Moves every running sweep on, after the studio opened: trials the restart left interrupted or
    /// stopped go on without counting a retry.
    pub(super) fn advance_sweeps_at_open(&self) -> Result<(), StudioError> {
        let ids = self.with_store(|store| store.sweep_ids())?;
        for id in ids {
            self.advance_sweep(id, true)?;
        }
        Ok(())
    }

    /// After run `run_id` ended (or was stopped while queued): moves its sweep on, if it is a trial.
    pub(super) fn trial_ended(&self, run_id: u64) {
        let link = match self.with_store(|store| store.trial_of_run(run_id)) {
            Ok(Some(link)) => link,
            Ok(None) => return,
            Err(error) => return tracing::error!(run_id, "could not read the run's sweep: {error}"),
        };
        if let Err(error) = self.advance_sweep(link.id, false) {
            tracing::error!(sweep_id = link.id, "could not move the sweep on: {error}");
        }
    }

    /// Retries, continues and starts the trials of sweep `id` as its `parallel` allows, and marks it
    /// completed once no trial is left to train. `revive`: trials a restart or a stop left interrupted go
    /// on without counting a retry. One sweep moves on at a time.
    fn advance_sweep(&self, id: u64, revive: bool) -> Result<(), StudioError> {
        let _one_at_a_time = self.0.sweeping.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(row) = self.with_store(|store| store.sweep_row(id))? else { return Ok(()) };
        if row.status != SweepStatus::Running || self.live().shutting_down {
            return Ok(());
        }
        // Read once: what the loop below may add are stopping-variant decisions, which no waiting needs.
        let decisions = self.with_store(|store| store.decisions(id))?;
        let mut entries = Vec::new();
        for (trial, run) in self.with_store(|store| store.trials_with_runs(id))? {
            let next = self.next_for(&row, &trial, run.as_ref(), &decisions, revive)?;
            entries.push(Entry { trial, run, next });
        }
        let promotion = promotion_variant(&row.request);
        if let Some(asha) = promotion {
            promote_waiting(&row.request, asha, &mut entries);
        }
        let (mut active, left) = self.begin_what_can(&row, &mut entries);
        if active == 0 && left == 0 {
            if let Some(asha) = promotion {
                active += self.settle_at_end(&row, asha, &mut entries)?;
            }
        }
        if active == 0 && left == 0 {
            self.with_store(|store| store.set_sweep_status(id, SweepStatus::Completed))?;
            tracing::info!(sweep_id = id, "sweep completed");
        }
        self.tell_sweep(id)
    }

    /// Begins what `entries` need, as many as the sweep's `parallel` allows, what has begun first
    /// (continued, retried, promoted) before anything new: (trials now active, trials left to begin).
    fn begin_what_can(&self, row: &SweepRow, entries: &mut [Entry]) -> (usize, usize) {
        let mut active = entries.iter().filter(|entry| matches!(entry.next, Next::Active)).count();
        let mut left = 0;
        let metric = row.request.metric;
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_by(|&a, &b| begins_before(metric, &entries[a], &entries[b]));
        for index in order {
            let entry = &mut entries[index];
            if matches!(entry.next, Next::Active | Next::Nothing | Next::Waiting(_)) {
                continue;
            }
            if active >= row.request.parallel as usize {
                left += 1;
                continue;
            }
            let next = std::mem::replace(&mut entry.next, Next::Nothing);
            if self.begin_trial(row, &entry.trial, next) {
                entry.next = Next::Active;
                active += 1;
            }
        }
        (active, left)
    }

    /// ASHA's promotion variant when nothing is left to train: the waiting trials of the highest rung
    /// that has any are decided for good (the best goes on if none went on from that rung; the others are
    /// pruned), then the next rung down, until one goes on. Returns how many went on.
    fn settle_at_end(&self, row: &SweepRow, asha: Asha, entries: &mut [Entry]) -> Result<usize, StudioError> {
        for (epoch, reached) in rung_standings(&row.request, asha, entries) {
            if !reached.iter().any(|at| at.waiting) {
                continue;
            }
            let decisions = asha::promotions(row.request.metric, asha.eta, epoch, &reached, true);
            let mut went_on = 0;
            for decision in decisions {
                let Some(entry) = entries.iter_mut().find(|entry| entry.trial.trial == decision.trial) else {
                    continue;
                };
                let Some(run) = &entry.run else { continue };
                let link = SweepRef { id: row.id, trial: decision.trial };
                if decision.continued {
                    if self.begin_trial(row, &entry.trial, Next::Promote(run.id, decision)) {
                        went_on += 1;
                    }
                } else {
                    self.with_store(|store| store.add_decision(row.id, &decision))?;
                    self.prune(run.id, link, &decision)?;
                }
                entry.next = Next::Nothing;
            }
            if went_on > 0 {
                return Ok(went_on);
            }
        }
        Ok(0)
    }

    /// What trial `trial` (whose run is `run`) needs now, given the sweep's `decisions`. A run that
    /// reached a rung with no decision recorded (the studio went down between the two) waits there in the
    /// promotion variant, and is judged first in the stopping one.
    fn next_for(
        &self,
        row: &SweepRow,
        trial: &TrialRow,
        run: Option<&Run>,
        decisions: &[RungDecision],
        revive: bool,
    ) -> Result<Next, StudioError> {
        let Some(run) = run else {
            return Ok(if trial.run_id.is_some() { Next::Nothing } else { Next::Start });
        };
        let epochs_left = (run.epochs.len() as u32) < run.config.epochs;
        let resumable = [RunStatus::Stopped, RunStatus::Interrupted, RunStatus::Failed].contains(&run.status);
        if resumable && epochs_left {
            let link = SweepRef { id: row.id, trial: trial.trial };
            if let Some(rung) = waiting_rung(&row.request, trial.trial, run, decisions) {
                return Ok(Next::Waiting(rung));
            }
            if let Some(decision) = self.judge_at_rung(row, link, run)? {
                if !decision.continued {
                    self.prune(run.id, link, &decision)?;
                    return Ok(Next::Nothing);
                }
            }
        }
        Ok(match run.status {
            RunStatus::Queued | RunStatus::Running => Next::Active,
            RunStatus::Stopped if epochs_left && !trial.held => Next::Continue(run.id),
            RunStatus::Interrupted if epochs_left && revive => Next::Continue(run.id),
            RunStatus::Failed | RunStatus::Interrupted if trial.retries == 0 => Next::Retry(run.id),
            _ => Next::Nothing,
        })
    }

    /// Starts, continues or retries a trial; false (with a note on the trial) if it could not.
    fn begin_trial(&self, row: &SweepRow, trial: &TrialRow, next: Next) -> bool {
        let link = SweepRef { id: row.id, trial: trial.trial };
        let begun = match next {
            Next::Start => self.start_trial(row, trial),
            Next::Continue(run_id) => self.queue_to_continue(run_id).map(drop),
            Next::Retry(run_id) => {
                let why = self.run(run_id).ok().and_then(|run| run.error).unwrap_or_else(|| "it was lost".into());
                let note = format!("retried once from its checkpoint after: {why}");
                self.with_store(|store| store.note_trial(link, true, &note))
                    .map_err(StudioError::from)
                    .and_then(|()| self.queue_to_continue(run_id).map(drop))
            }
            Next::Promote(run_id, decision) => self
                .with_store(|store| {
                    store.in_transaction(|store| {
                        store.add_decision(row.id, &decision)?;
                        store.note_trial(link, false, &decision.sentence)
                    })
                })
                .map_err(StudioError::from)
                .and_then(|()| self.queue_to_continue(run_id).map(drop)),
            Next::Active | Next::Nothing | Next::Waiting(_) => return false,
        };
        match begun {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(sweep_id = row.id, trial = trial.trial, "could not begin the trial: {error}");
                let _ = self.with_store(|store| store.note_trial(link, false, &format!("could not begin: {error}")));
                false
            }
        }
    }

    /// Creates trial `trial`'s run (named after the sweep) and queues it.
    fn start_trial(&self, row: &SweepRow, trial: &TrialRow) -> Result<(), StudioError> {
        let link = SweepRef { id: row.id, trial: trial.trial };
        let config = row.request.trial_config(&trial.parameters).map_err(StudioError::InvalidConfig)?;
        let name = shared::check_run_name(&format!("{} · trial {}", row.name, trial.trial)).ok().flatten();
        let run = self.with_store(|store| {
            store.in_transaction(|store| {
                let run = store.create_run(&config, unix_now())?;
                store.set_trial_run(link, run.id)?;
                store.set_name(run.id, name.as_deref())?;
                Ok(run)
            })
        })?;
        self.enqueue(run.id, config, false)?;
        self.tell(run.id)
    }

    /// The epoch run `run_id`'s next attempt pauses after: its sweep's next ASHA rung, if it is a trial
    /// of a sweep with early stopping and has a rung left.
    pub(super) fn pause_for(&self, run_id: u64) -> Option<u32> {
        self.with_store(|store| {
            let link = store.trial_of_run(run_id).ok()??;
            let asha = store.sweep_row(link.id).ok()??.request.early_stopping?.asha;
            let run = store.run_outline(run_id).ok()??;
            asha.next_rung(run.epochs.len() as u32, run.config.epochs)
        })
    }

    /// Trial run `run_id` paused after `epoch`, a rung: judged, it is queued again at once or pruned.
    pub(super) fn trial_paused(&self, run_id: u64, epoch: u32) -> Result<(), StudioError> {
        {
            let mut live = self.live();
            live.jobs.remove(&run_id);
            live.running.remove(&run_id);
        }
        let run = self.run(run_id)?;
        let link = self.with_store(|store| store.trial_of_run(run_id))?;
        let row = match link {
            Some(link) => self.with_store(|store| store.sweep_row(link.id))?,
            None => None,
        };
        let (Some(link), Some(row)) = (link, row) else {
            // Its sweep is gone: the pause ends the attempt as a stop would.
            return self.move_run(run_id, Move::End(RunStatus::Stopped), None);
        };
        if promotion_variant(&row.request).is_some() {
            // It waits at the rung, stopped, until it is promoted or the sweep settles it. The note goes
            // first: a trial shown stopped at a rung is never shown without it.
            let note = format!("waits after epoch {epoch} until it is among the best of the trials that reach it");
            self.with_store(|store| store.note_trial(link, false, &note))?;
            self.move_run(run_id, Move::End(RunStatus::Stopped), None)?;
            return self.advance_sweep(link.id, false);
        }
        let decision = self.judge_at_rung(&row, link, &run)?;
        tracing::info!(run_id, epoch, decision = ?decision.as_ref().map(|d| &d.sentence), "trial paused at a rung");
        match decision {
            Some(decision) if !decision.continued => self.prune(run_id, link, &decision)?,
            _ => {
                self.move_run(run_id, Move::Continue, None)?;
                self.enqueue(run_id, run.config, true)?;
            }
        }
        self.advance_sweep(link.id, false)
    }

    /// Run `run_id` was resumed by a person: if it is a trial of ASHA's promotion variant that waited at a
    /// rung, that rung is decided for it as gone on by hand ([`asha::by_hand`]), so the sweep's record says
    /// why it went on and no later promotion or settling judges it there again.
    pub(super) fn went_on_by_hand(&self, run_id: u64) -> Result<(), StudioError> {
        let _one_at_a_time = self.0.sweeping.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(link) = self.with_store(|store| store.trial_of_run(run_id))? else { return Ok(()) };
        let Some(row) = self.with_store(|store| store.sweep_row(link.id))? else { return Ok(()) };
        let Some(asha) = promotion_variant(&row.request) else { return Ok(()) };
        let Some(run) = self.with_store(|store| store.run_outline(run_id))? else { return Ok(()) };
        let decisions = self.with_store(|store| store.decisions(link.id))?;
        let Some(epoch) = undecided_rung(asha, link.trial, &run, &decisions) else { return Ok(()) };
        let entries: Vec<Entry> = self
            .with_store(|store| store.trials_with_runs(link.id))?
            .into_iter()
            .map(|(trial, run)| Entry { trial, run, next: Next::Nothing })
            .collect();
        let standings = rung_standings(&row.request, asha, &entries);
        let Some((_, reached)) = standings.iter().find(|(rung, _)| *rung == epoch) else { return Ok(()) };
        let Some(decision) = asha::by_hand(row.request.metric, asha.eta, link.trial, epoch, reached) else {
            return Ok(());
        };
        self.with_store(|store| {
            store.in_transaction(|store| {
                store.add_decision(link.id, &decision)?;
                store.note_trial(link, false, &decision.sentence)
            })
        })?;
        tracing::info!(run_id, sweep_id = link.id, epoch, "a waiting trial was resumed by hand");
        self.tell_sweep(link.id)
    }

    /// Judges trial `link` (run `run`) if it has just finished a rung of its sweep's ASHA: the decision
    /// recorded for that rung, or a new one, recorded. `None` when no decision is due.
    fn judge_at_rung(&self, row: &SweepRow, link: SweepRef, run: &Run) -> Result<Option<RungDecision>, StudioError> {
        let Some(early) = row.request.early_stopping else { return Ok(None) };
        let done = run.epochs.len() as u32;
        if !early.asha.rungs(run.config.epochs).contains(&done) {
            return Ok(None);
        }
        let decisions = self.with_store(|store| store.decisions(row.id))?;
        if let Some(made) = decisions.iter().find(|d| d.trial == link.trial && d.epoch == done) {
            return Ok(Some(made.clone()));
        }
        let metric = row.request.metric;
        let value = run.epochs.last().map_or(f64::NAN, |epoch| metric.of(epoch));
        let earlier: Vec<f64> = decisions.iter().filter(|d| d.epoch == done).map(|d| d.metric).collect();
        let decision = asha::judge(metric, early.asha.eta, link.trial, done, value, &earlier);
        self.with_store(|store| store.add_decision(row.id, &decision))?;
        Ok(Some(decision))
    }

    /// Ends trial `link`'s run `run_id` as pruned, with the decision's sentence as the trial's note.
    fn prune(&self, run_id: u64, link: SweepRef, decision: &RungDecision) -> Result<(), StudioError> {
        self.with_store(|store| store.note_trial(link, false, &decision.sentence))?;
        self.finish(run_id, RunStatus::Pruned, None);
        Ok(())
    }
}

/// A trial of a sweep being moved on: its row, its run, and what it needs.
struct Entry {
    trial: TrialRow,
    run: Option<Run>,
    next: Next,
}

/// Which of two trials begins first: continued and retried ones, then promoted ones (highest rung first,
/// then best first), then new ones, each in trial order.
fn begins_before(metric: SweepMetric, a: &Entry, b: &Entry) -> std::cmp::Ordering {
    let stage = |next: &Next| match next {
        Next::Continue(_) | Next::Retry(_) => 0,
        Next::Promote(..) => 1,
        _ => 2,
    };
    let promoted = match (&a.next, &b.next) {
        (Next::Promote(_, x), Next::Promote(_, y)) => {
            y.epoch.cmp(&x.epoch).then_with(|| asha::rank(metric, x.metric, y.metric))
        }
        _ => std::cmp::Ordering::Equal,
    };
    stage(&a.next).cmp(&stage(&b.next)).then(promoted).then(a.trial.trial.cmp(&b.trial.trial))
}

/// The sweep's ASHA, if it is the promotion variant.
fn promotion_variant(request: &SweepRequest) -> Option<Asha> {
    let asha = request.early_stopping?.asha;
    (asha.variant == AshaVariant::Promotion).then_some(asha)
}

/// Every rung some trial reached, highest first, with the trials that reached it (for each, the rung is
/// one of its own: below its last epoch).
fn rung_standings(request: &SweepRequest, asha: Asha, entries: &[Entry]) -> Vec<(u32, Vec<AtRung>)> {
    let mut rungs = std::collections::BTreeMap::<u32, Vec<AtRung>>::new();
    for entry in entries {
        let Some(run) = &entry.run else { continue };
        for epoch in asha.rungs(run.config.epochs) {
            let Some(metrics) = run.epochs.get(epoch as usize - 1) else { break };
            let waiting = matches!(entry.next, Next::Waiting(rung) if rung == epoch);
            let at = AtRung { trial: entry.trial.trial, value: request.metric.of(metrics), waiting };
            rungs.entry(epoch).or_default().push(at);
        }
    }
    rungs.into_iter().rev().collect()
}

/// Marks the waiting trials of `entries` that are now among the best of their rung to be promoted
/// ([`asha::promotions`]).
fn promote_waiting(request: &SweepRequest, asha: Asha, entries: &mut [Entry]) {
    for (epoch, reached) in rung_standings(request, asha, entries) {
        for decision in asha::promotions(request.metric, asha.eta, epoch, &reached, false) {
            let Some(entry) = entries.iter_mut().find(|entry| entry.trial.trial == decision.trial) else { continue };
            if let Some(run) = &entry.run {
                entry.next = Next::Promote(run.id, decision);
            }
        }
    }
}

/// A trial as the API shows it, from its row, its run and the sweep's decisions.
fn trial_of(request: &SweepRequest, trial: TrialRow, run: Option<&Run>, decisions: &[RungDecision]) -> Trial {
    let planned = Trial {
        trial: trial.trial,
        parameters: trial.parameters,
        run_id: trial.run_id,
        status: None,
        epochs_done: 0,
        best_metric: None,
        retries: trial.retries,
        note: trial.note,
        waiting_at: None,
    };
    match run {
        Some(run) => {
            let waiting_at = waiting_rung(request, trial.trial, run, decisions);
            Trial { waiting_at, ..planned.with_run(request.metric, run) }
        }
        None => planned,
    }
}

/// The rung trial `trial` (run `run`) waits at, in ASHA's promotion variant: its run ended (stopped,
/// interrupted or failed) with epochs left, exactly at a rung where no decision about it was made yet.
fn waiting_rung(request: &SweepRequest, trial: u32, run: &Run, decisions: &[RungDecision]) -> Option<u32> {
    let asha = promotion_variant(request)?;
    let ended = [RunStatus::Stopped, RunStatus::Interrupted, RunStatus::Failed].contains(&run.status);
    undecided_rung(asha, trial, run, decisions).filter(|_| ended)
}

/// The rung trial `trial`'s run `run` has just finished, with epochs left after it, if `decisions` has no
/// decision about it there.
fn undecided_rung(asha: Asha, trial: u32, run: &Run, decisions: &[RungDecision]) -> Option<u32> {
    let done = run.epochs.len() as u32;
    let at_rung = done < run.config.epochs && asha.rungs(run.config.epochs).contains(&done);
    let decided = decisions.iter().any(|d| d.trial == trial && d.epoch == done);
    (at_rung && !decided).then_some(done)
}
