//! A run's life, in one place: what moves a run from one [`RunStatus`] to another, and from which statuses
//! each move is allowed. The studio changes a run's status only through [`Move::rule`], applied by the
//! history in one statement (`Store::change_status`), so two moves racing cannot both win.
//!
//! ```text
//!            create                 Begin                 End(completed | stopped | failed | interrupted)
//!   (none) ─────────▶ queued ─────────────▶ running ──────────────────────────────────────▶ (ended)
//!                       │  ▲  ▲   Continue     │ │ ServerDown
//!               Cancel  │  │  └──────────────── │ ▼
//!                       ▼  └──────────── stopped · interrupted · failed · pruned
//!                    stopped                            ▲ Prune (from running or ended, but completed)
//! ```
//!
//! `Continue` and `Prune` are a sweep's (see [`super::sweeps`]): a trial paused at an early-stopping rung
//! is queued again at once, or pruned.
//!
//! Two states of a run are not statuses: *placed* is a queued run whose executor has put it somewhere (a
//! pending Slurm job: `Run.placement` is set), and *stopping* is an active run whose stop was asked for
//! (its control is raised; it ends `stopped` at its next batch). Executors only report what happened
//! (began, ended, lost); the rules here decide what it means for the run.

use shared::RunStatus;

/// Something that happens to a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// Resume: a run that ended before its last epoch is queued again.
    Resume,
    /// Stop while still queued: it ends at once, never having trained.
    Cancel,
    /// Its executor began training it (or reports it training again).
    Begin,
    /// Its attempt ended: it completed, stopped at a stop, failed, or was lost (interrupted).
    End(RunStatus),
    /// The studio starts and finds it was training when the studio went down, with nothing to follow.
    ServerDown,
    /// A sweep's trial paused at a rung and goes on: it is queued again at once.
    Continue,
    /// A sweep's early stopping ends a trial: behind at a rung (paused there, or found there after a
    /// restart).
    Prune,
}

/// A move's rule: the statuses it may start from, and where it leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Statuses the run must have for the move to apply.
    pub from: &'static [RunStatus],
    /// Its status after.
    pub to: RunStatus,
}

/// Statuses a run can be resumed from (a pruned trial too: it goes on past the rung that stopped it).
pub const RESUMABLE: [RunStatus; 4] =
    [RunStatus::Stopped, RunStatus::Interrupted, RunStatus::Failed, RunStatus::Pruned];
/// Statuses of a run an executor has (queued or training).
pub const ACTIVE: [RunStatus; 2] = [RunStatus::Queued, RunStatus::Running];

impl Move {
    /// Where this move leads and from where. An [`Move::End`] to a status that is not an ending (queued or
    /// running) is a programming error and leads nowhere: its rule allows no status.
    pub fn rule(self) -> Rule {
        match self {
            Move::Resume => Rule { from: &RESUMABLE, to: RunStatus::Queued },
            Move::Cancel => Rule { from: &[RunStatus::Queued], to: RunStatus::Stopped },
            Move::Begin => Rule { from: &ACTIVE, to: RunStatus::Running },
            Move::End(status) if status.is_finished() && status != RunStatus::Pruned => {
                Rule { from: &ACTIVE, to: status }
            }
            Move::End(status) => Rule { from: &[], to: status },
            Move::ServerDown => Rule { from: &[RunStatus::Running], to: RunStatus::Interrupted },
            Move::Continue => Rule { from: &[RunStatus::Running], to: RunStatus::Queued },
            Move::Prune => Rule {
                from: &[RunStatus::Running, RunStatus::Stopped, RunStatus::Interrupted, RunStatus::Failed],
                to: RunStatus::Pruned,
            },
        }
    }

    /// The status a run in `status` has after this move, or `None` if the move does not apply to it.
    pub fn apply(self, status: RunStatus) -> Option<RunStatus> {
        let rule = self.rule();
        rule.from.contains(&status).then_some(rule.to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [RunStatus; 7] = RunStatus::ALL;
    const ENDINGS: [RunStatus; 4] =
        [RunStatus::Completed, RunStatus::Stopped, RunStatus::Failed, RunStatus::Interrupted];

    #[test]
    fn a_run_is_queued_then_runs_then_ends_each_way() {
        for ending in ENDINGS {
            let running = Move::Begin.apply(RunStatus::Queued).unwrap();
            assert_eq!(running, RunStatus::Running);
            assert_eq!(Move::Begin.apply(running), Some(RunStatus::Running), "a second report changes nothing");
            assert_eq!(Move::End(ending).apply(running), Some(ending));
            assert_eq!(Move::End(ending).apply(RunStatus::Queued), Some(ending), "an attempt can end before it began");
        }
    }

    #[test]
    fn an_ended_run_only_moves_again_by_a_resume_and_a_completed_one_never() {
        for ended in ENDINGS {
            for event in
                [Move::Begin, Move::Cancel, Move::ServerDown, Move::Continue].into_iter().chain(ENDINGS.map(Move::End))
            {
                assert_eq!(event.apply(ended), None, "{event:?} from {ended:?}");
            }
        }
        assert_eq!(Move::Resume.apply(RunStatus::Completed), None);
        for resumable in RESUMABLE {
            assert_eq!(Move::Resume.apply(resumable), Some(RunStatus::Queued));
        }
        for active in ACTIVE {
            assert_eq!(Move::Resume.apply(active), None, "an active run is not resumed twice");
        }
    }

    #[test]
    fn only_a_queued_run_is_cancelled_and_only_a_running_one_is_found_interrupted() {
        for status in ALL {
            let cancelled = Move::Cancel.apply(status);
            assert_eq!(cancelled.is_some(), status == RunStatus::Queued, "{status:?}");
            let down = Move::ServerDown.apply(status);
            assert_eq!(down, (status == RunStatus::Running).then_some(RunStatus::Interrupted), "{status:?}");
        }
    }

    #[test]
    fn an_end_to_a_status_that_is_no_ending_applies_to_nothing() {
        for status in ALL {
            assert_eq!(Move::End(RunStatus::Running).apply(status), None);
            assert_eq!(Move::End(RunStatus::Queued).apply(status), None);
        }
    }

    #[test]
    fn every_status_is_reached_by_some_move() {
        let moves = [Move::Resume, Move::Cancel, Move::Begin, Move::ServerDown, Move::Prune]
            .into_iter()
            .chain(ENDINGS.map(Move::End));
        let reached: Vec<RunStatus> = moves.map(|event| event.rule().to).collect();
        for status in ALL {
            assert!(reached.contains(&status), "{status:?} is never reached");
        }
    }

    #[test]
    fn a_trial_continues_only_from_running_and_is_pruned_from_anything_but_completed_or_queued() {
        for status in ALL {
            let continued = Move::Continue.apply(status);
            assert_eq!(continued, (status == RunStatus::Running).then_some(RunStatus::Queued), "{status:?}");
            let pruned = Move::Prune.apply(status);
            let prunable = !matches!(status, RunStatus::Completed | RunStatus::Queued | RunStatus::Pruned);
            assert_eq!(pruned, prunable.then_some(RunStatus::Pruned), "{status:?}");
        }
        assert_eq!(Move::End(RunStatus::Pruned).apply(RunStatus::Running), None, "only a sweep prunes");
        assert_eq!(Move::Resume.apply(RunStatus::Pruned), Some(RunStatus::Queued), "a person may go on past the rung");
    }
}
