//! The queue view in the runs card: the runs that wait, first to start first, each with why it waits
//! (every slot busy, the Slurm job limit reached, or Slurm's own pending reason). It follows the run list,
//! so the WebSocket's messages keep it current; the slot count comes from `/api/health`.

use leptos::prelude::*;
use shared::{Run, RunStatus};

use crate::studio;

/// Where the server trains runs, as far as the queue is concerned (`/api/health`'s `executor.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExecutorKind {
    /// The server's own machine, in its `--slots`.
    #[default]
    Local,
    /// Batch jobs on a Slurm cluster, at most `--slurm-max-jobs` submitted at once.
    Slurm,
}

impl ExecutorKind {
    /// The kind `/api/health` names; anything but `"slurm"` is the local machine.
    pub fn named(kind: &str) -> Self {
        if kind == "slurm" {
            ExecutorKind::Slurm
        } else {
            ExecutorKind::Local
        }
    }
}

/// How much room the executor has: its slots (or Slurm job limit) and how many of them runs take now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Local slots or Slurm jobs.
    pub executor: ExecutorKind,
    /// Runs that can train (or, on Slurm, be submitted) at once.
    pub slots: u32,
    /// Runs that take one now: those training, and queued ones already placed (a pending Slurm job).
    pub busy: u32,
}

impl Capacity {
    /// The room `runs` leave in an executor of `slots` slots.
    pub fn of(runs: &[Run], executor: ExecutorKind, slots: u32) -> Self {
        let busy = runs
            .iter()
            .filter(|run| {
                run.status == RunStatus::Running || (run.status == RunStatus::Queued && run.placement.is_some())
            })
            .count() as u32;
        Capacity { executor, slots, busy }
    }
}

/// Why queued `run` waits, with `ahead` runs before it in the queue that are not placed yet:
/// "waiting for a free slot (2 of 2 slots busy)", "Slurm job 42 · PENDING (Resources)".
pub fn waits_for(run: &Run, ahead: u32, capacity: &Capacity) -> String {
    if let Some(placement) = &run.placement {
        return placement.describe();
    }
    let Capacity { executor, slots, busy } = *capacity;
    let room = busy + ahead < slots;
    match (executor, room) {
        (ExecutorKind::Local, true) => "starting".to_string(),
        (ExecutorKind::Local, false) => format!("waiting for a free slot ({busy} of {slots} slots busy)"),
        (ExecutorKind::Slurm, true) => "being submitted to Slurm".to_string(),
        (ExecutorKind::Slurm, false) => {
            format!("waiting to be submitted ({busy} of {slots} Slurm jobs submitted)")
        }
    }
}

/// One line of the queue: `"#7 cifar10 · waiting for a free slot (2 of 2 slots busy)"`; a named run
/// shows its name before its dataset.
pub fn queue_line(run: &Run, ahead: u32, capacity: &Capacity) -> String {
    let name = run.name.as_ref().map(|name| format!(" {name} ·")).unwrap_or_default();
    format!("#{}{name} {} · {}", run.id, run.config.dataset, waits_for(run, ahead, capacity))
}

/// The queue's heading: `"Queue — 2 waiting"`.
pub fn queue_heading(waiting: usize) -> String {
    format!("Queue — {waiting} waiting")
}

/// Every queued run's line, first to start first, with its id.
pub fn queue_lines(queued: &[&Run], capacity: &Capacity) -> Vec<(u64, String)> {
    let mut unplaced_ahead = 0;
    queued
        .iter()
        .map(|run| {
            let line = queue_line(run, unplaced_ahead, capacity);
            if run.placement.is_none() {
                unplaced_ahead += 1;
            }
            (run.id, line)
        })
        .collect()
}

/// The runs that wait, first to start first, and why; nothing while none waits.
#[component]
pub fn QueueView() -> impl IntoView {
    let studio = studio();
    let lines = Memo::new(move |_| {
        let (executor, slots) = (studio.executor.get(), studio.slots.get());
        studio.state.with(|state| queue_lines(&state.queued_runs(), &Capacity::of(&state.runs, executor, slots)))
    });
    view! {
        <Show when=move || lines.with(|lines| !lines.is_empty())>
            <section id="queue" class="queue" aria-labelledby="queue-title">
                <h3 id="queue-title">{move || queue_heading(lines.with(Vec::len))}</h3>
                <ol class="queue-list">
                    <For
                        each=move || lines.get()
                        key=|line| line.clone()
                        children=|(id, line)| view! { <li class="queue-item" data-run-id=id>{line}</li> }
                    />
                </ol>
            </section>
        </Show>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::Placement;

    fn run(id: u64, status: RunStatus) -> Run {
        serde_json::from_value(serde_json::json!({
            "id": id, "status": status, "config": {"dataset": "cifar10"}, "epochs": [], "created_at": 0,
        }))
        .unwrap()
    }

    fn pending(id: u64, reason: &str) -> Run {
        Run {
            placement: Some(Placement::Slurm {
                job_id: format!("{}", 40 + id),
                node: None,
                state: "PENDING".into(),
                reason: Some(reason.into()),
                restarts: 0,
            }),
            ..run(id, RunStatus::Queued)
        }
    }

    #[test]
    fn a_queued_run_waits_for_a_free_slot_while_every_slot_is_busy() {
        let runs = [run(7, RunStatus::Queued), run(6, RunStatus::Running), run(5, RunStatus::Running)];
        let capacity = Capacity::of(&runs, ExecutorKind::Local, 2);
        assert_eq!(capacity.busy, 2);
        assert_eq!(queue_line(&runs[0], 0, &capacity), "#7 cifar10 · waiting for a free slot (2 of 2 slots busy)");
        let named = Run { name: Some("wide lr".into()), ..runs[0].clone() };
        assert_eq!(
            queue_line(&named, 0, &capacity),
            "#7 wide lr · cifar10 · waiting for a free slot (2 of 2 slots busy)"
        );
    }

    #[test]
    fn the_runs_that_a_free_slot_takes_are_starting_and_those_behind_them_wait() {
        let runs = [run(9, RunStatus::Queued), run(8, RunStatus::Queued), run(5, RunStatus::Running)];
        let capacity = Capacity::of(&runs, ExecutorKind::Local, 2);
        let lines = queue_lines(&[&runs[1], &runs[0]], &capacity);
        assert_eq!(
            lines,
            [
                (8, "#8 cifar10 · starting".to_string()),
                (9, "#9 cifar10 · waiting for a free slot (1 of 2 slots busy)".into())
            ]
        );
    }

    #[test]
    fn on_slurm_a_submitted_run_says_its_pending_reason_and_the_rest_wait_for_the_job_limit() {
        let runs = [run(4, RunStatus::Queued), pending(3, "Resources"), run(2, RunStatus::Running)];
        let capacity = Capacity::of(&runs, ExecutorKind::named("slurm"), 2);
        assert_eq!(capacity.busy, 2, "a pending job takes one of the jobs the studio submits");
        let lines = queue_lines(&[&runs[1], &runs[0]], &capacity);
        assert_eq!(
            lines,
            [
                (3, "#3 cifar10 · Slurm job 43 · PENDING (Resources)".to_string()),
                (4, "#4 cifar10 · waiting to be submitted (2 of 2 Slurm jobs submitted)".into()),
            ]
        );
        let roomy = Capacity { slots: 4, ..capacity };
        assert_eq!(waits_for(&runs[0], 0, &roomy), "being submitted to Slurm");
    }

    #[test]
    fn the_heading_counts_the_runs_that_wait() {
        assert_eq!(queue_heading(2), "Queue — 2 waiting");
        assert_eq!(ExecutorKind::named("local"), ExecutorKind::Local);
    }
}
