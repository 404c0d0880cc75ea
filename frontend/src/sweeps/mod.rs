//! Hyperparameter sweeps on the page: "Sweep these settings" (on the New run form and on a run's panel)
//! opens the sweep editor with those settings as the base; the Sweeps card lists every sweep with its
//! status and best result, and shows the chosen one: its leaderboard, every trial's learning curve, the
//! parallel-coordinates plot, its early-stopping decisions, and what can be done with it (stop, resume,
//! delete, use the best settings, open the best run).
//!
//! The editor's fields are [`crate::sweep_form`], checked by the shared sweep rules before Start; the
//! charts' geometry is [`crate::sweep_plot`]. A sweep's trials are ordinary runs: the leaderboard takes
//! each trial's status, epochs and best result from its run as the page knows it ([`live_trials`]), so it
//! moves with every finished epoch, between the server's `SweepUpdated` messages.
//!
//! The module's files follow the card's parts: this file holds the trials as the page ranks them and the
//! entry points other parts of the page place (the button, a trial's link to its sweep, the card);
//! `editor.rs` is the "Sweep these settings" editor, `view.rs` the sweep list and the chosen sweep (its
//! head and actions, leaderboard and early-stopping decisions), `plots.rs` its learning curves and
//! parallel-coordinates plot.

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::sweep::{AshaVariant, Sweep, SweepMethod, SweepMetric, Trial};
use shared::{Run, TrainConfig};

use crate::layout;
use crate::sweep_form::{self, SweepDraft};
use crate::{api, format, studio};

mod editor;
mod plots;
mod view;

use editor::SweepEditor;
use view::{SweepList, SweepView};

/// The trials of `sweep` as their runs in `runs` stand now (status, epochs done, best result), ranked best
/// first by the sweep's metric, trials without a result after, in order. A trial whose run the page does
/// not know keeps what the server said.
pub fn live_trials(sweep: &Sweep, runs: &[Run]) -> Vec<Trial> {
    let metric = sweep.request.metric;
    let mut trials: Vec<Trial> = sweep
        .trials
        .iter()
        .map(|trial| match trial.run_id.and_then(|id| runs.iter().find(|run| run.id == id)) {
            Some(run) => {
                let live = trial.with_run(metric, run);
                Trial { best_metric: live.best_metric.or(trial.best_metric), ..live }
            }
            None => trial.clone(),
        })
        .collect();
    shared::sweep::rank(&mut trials, metric);
    trials
}

/// The runs of `sweep`'s trials that the page knows.
pub fn trial_runs(sweep: &Sweep, runs: &[Run]) -> Vec<Run> {
    runs.iter().filter(|run| run.sweep.is_some_and(|link| link.id == sweep.id)).cloned().collect()
}

/// How a sweep is asked to run, in one line: `"grid · 2 trials · 1 at a time · ranked by test accuracy"`.
pub fn plan_line(sweep: &Sweep) -> String {
    let request = &sweep.request;
    let method = match request.method {
        SweepMethod::Grid => "grid".to_string(),
        SweepMethod::Random => format!("random (seed {})", request.seed),
    };
    let mut parts = vec![
        method,
        sweep_form::count(sweep.trials.len() as u64, "trial"),
        format!("{} at a time", request.parallel),
        format!("ranked by {}", request.metric.label()),
    ];
    if let Some(early) = request.early_stopping {
        let variant = match early.asha.variant {
            AshaVariant::Stopping => "",
            AshaVariant::Promotion => ", promotion",
        };
        let (grace, eta) = (format::epochs(early.asha.grace_epochs), early.asha.eta);
        parts.push(format!("ASHA{variant} (grace {grace}, eta {eta})"));
    }
    parts.join(" · ")
}

/// The line about the best trial: `"Best: 87.5 % test accuracy, trial 2 (lr = 0.01)"`; `None` before any
/// trial has a result.
pub fn best_line(metric: SweepMetric, trials: &[Trial]) -> Option<String> {
    let best = trials.first()?;
    let value = best.best_metric?;
    let described = shared::sweep::describe(&best.parameters);
    Some(format!("Best: {} {}, trial {} ({described})", metric.show(value), metric.label(), best.trial))
}

/// What the sweep list shows of a sweep.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SweepSummary {
    /// The sweep.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// Its status's name.
    pub status: &'static str,
    /// `"2 of 6 trials done"`.
    pub progress: String,
    /// `"best 87.5 %"`, or that there is no result yet.
    pub best: String,
}

/// The sweep list's entry of `sweep`, with its trials as `runs` stand now.
pub fn summary(sweep: &Sweep, runs: &[Run]) -> SweepSummary {
    let trials = live_trials(sweep, runs);
    let done = trials.iter().filter(|t| t.is_done()).count();
    let best = trials.first().and_then(|t| t.best_metric);
    SweepSummary {
        id: sweep.id,
        name: sweep.name.clone(),
        status: sweep.status.as_str(),
        progress: format!("{done} of {} done", sweep_form::count(trials.len() as u64, "trial")),
        best: best.map_or_else(|| "no result yet".to_string(), |v| format!("best {}", sweep.request.metric.show(v))),
    }
}

/// "Sweep these settings": opens the sweep editor with `base` as every trial's starting configuration;
/// disabled while there is none (a form with a problem).
#[component]
pub fn SweepButton(
    /// The button's id: the form and the run's panel each carry one.
    id: &'static str,
    /// The configuration the sweep starts from.
    base: Signal<Option<TrainConfig>>,
) -> impl IntoView {
    let studio = studio();
    view! {
        <button
            id=id
            type="button"
            class="sweep-these"
            title="Open the sweep editor with these settings as every trial's base"
            disabled=move || base.with(Option::is_none)
            on:click=move |_| {
                if let Some(config) = base.get_untracked() {
                    studio.sweep_base.set(Some(config));
                    layout::bring_into_view("sweeps-card");
                }
            }
        >
            "Sweep these settings"
        </button>
    }
}

/// In a trial's panel: which sweep it belongs to, a button that shows that sweep.
#[component]
pub fn TrialOf(
    /// The run shown.
    shown: Memo<Option<Run>>,
) -> impl IntoView {
    let studio = studio();
    let link = Memo::new(move |_| {
        let link = shown.with(|r| r.as_ref().and_then(|r| r.sweep))?;
        let name = studio.state.with(|s| s.sweeps.iter().find(|sweep| sweep.id == link.id).map(|s| s.name.clone()));
        Some((link, name))
    });
    move || {
        link.get().map(|(link, name)| {
            let named = name.map(|name| format!(" ({name})")).unwrap_or_default();
            view! {
                <button
                    id="trial-of"
                    type="button"
                    class="link-button trial-of"
                    on:click=move |_| {
                        studio.chosen_sweep.set(Some(link.id));
                        layout::bring_into_view("sweeps-card");
                    }
                >
                    {format!("Trial {} of sweep #{}{named}", link.trial, link.id)}
                </button>
            }
        })
    }
}

/// The Sweeps card: the editor while one is open, the list of sweeps, and the chosen sweep.
#[component]
pub fn SweepsCard() -> impl IntoView {
    let studio = studio();
    let draft = RwSignal::new(None::<SweepDraft>);
    let load_error = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        if let Some(base) = studio.sweep_base.get() {
            draft.set(Some(SweepDraft::new(base)));
        }
    });
    // Listed again after every snapshot (each connection, and each time the page fell behind): a snapshot
    // carries the runs but not the sweeps, whose messages missed meanwhile are in the list.
    let snapshots = Memo::new(move |_| studio.state.with(|s| s.snapshots));
    Effect::new(move |_| {
        snapshots.track();
        if !studio.connected.get_untracked() {
            return;
        }
        let mark = studio.state.with_untracked(|state| state.sweep_mark());
        spawn_local(async move {
            match api::sweeps().await {
                Ok(sweeps) => {
                    studio.state.update(|state| state.set_sweeps(sweeps, mark));
                    load_error.set(None);
                }
                Err(error) => load_error.set(Some(format!("Sweeps could not be listed: {error}"))),
            }
        });
    });
    view! {
        <section class="card sweeps-card" id="sweeps-card" aria-labelledby="sweeps-title">
            <h2 id="sweeps-title">"Sweeps"</h2>
            <Show when=move || draft.with(Option::is_some)>
                <SweepEditor draft=draft/>
            </Show>
            <p class="load-error">{move || load_error.get()}</p>
            <SweepList/>
            <SweepView/>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sweep(trials: serde_json::Value) -> Sweep {
        serde_json::from_value(json!({
            "id": 4, "name": "sweep of lr", "status": "running", "created_at": 0, "trials": trials,
            "request": {"base": {"dataset": "colors", "epochs": 2}, "parameters": {"lr": {"values": [0.1, 0.01, 0.001]}}},
        }))
        .unwrap()
    }

    fn trial(number: u32, run_id: Option<u64>, best: Option<f64>) -> serde_json::Value {
        let lr = [0.1, 0.01, 0.001][number as usize - 1];
        json!({
            "trial": number, "parameters": {"lr": lr}, "run_id": run_id,
            "status": run_id.map(|_| "queued"), "epochs_done": 0, "best_metric": best, "retries": 0,
        })
    }

    fn run(id: u64, trial: u32, accuracies: &[f64]) -> Run {
        let epochs: Vec<serde_json::Value> = accuracies
            .iter()
            .enumerate()
            .map(|(i, a)| json!({"epoch": i + 1, "train_loss": 1.0, "train_accuracy": a, "test_loss": 1.0 - a, "test_accuracy": a, "seconds": 1.0}))
            .collect();
        serde_json::from_value(json!({
            "id": id, "status": "running", "config": {"dataset": "colors", "epochs": 2}, "epochs": epochs,
            "created_at": 0, "sweep": {"id": 4, "trial": trial},
        }))
        .unwrap()
    }

    #[test]
    fn the_leaderboard_moves_with_each_finished_epoch_of_the_trials_runs() {
        let sweep = sweep(json!([trial(1, Some(11), Some(0.6)), trial(2, Some(12), None), trial(3, None, None)]));
        let runs = [run(11, 1, &[0.6]), run(12, 2, &[0.5, 0.8])];
        let trials = live_trials(&sweep, &runs);
        let order: Vec<u32> = trials.iter().map(|t| t.trial).collect();
        assert_eq!(order, [2, 1, 3], "trial 2's second epoch put it ahead; trial 3 has no result");
        assert_eq!((trials[0].epochs_done, trials[0].best_metric), (2, Some(0.8)));
        assert_eq!(trials[0].status, Some(shared::RunStatus::Running));
        assert_eq!(trials[2].status, None, "no run yet");
        assert_eq!(
            best_line(SweepMetric::TestAccuracy, &trials).as_deref(),
            Some("Best: 80.0 % test accuracy, trial 2 (lr = 0.01)")
        );
    }

    #[test]
    fn ranked_by_test_loss_the_lowest_comes_first() {
        let mut sweep = sweep(json!([trial(1, Some(11), None), trial(2, Some(12), None)]));
        sweep.request.metric = SweepMetric::TestLoss;
        let runs = [run(11, 1, &[0.9]), run(12, 2, &[0.6])];
        let trials = live_trials(&sweep, &runs);
        assert_eq!(trials[0].trial, 1);
        assert!((trials[0].best_metric.unwrap() - 0.1).abs() < 1e-9);
    }

    #[test]
    fn a_trial_whose_run_the_page_does_not_know_keeps_what_the_server_said() {
        let sweep = sweep(json!([trial(1, Some(11), Some(0.7))]));
        let trials = live_trials(&sweep, &[]);
        assert_eq!(trials[0].best_metric, Some(0.7));
        assert_eq!(best_line(SweepMetric::TestAccuracy, &live_trials(&self::sweep(json!([])), &[])), None);
    }

    #[test]
    fn the_list_says_how_far_a_sweep_is_and_its_best_result() {
        let sweep = sweep(json!([trial(1, Some(11), None), trial(2, Some(12), None), trial(3, None, None)]));
        let mut done = run(11, 1, &[0.5, 0.75]);
        done.status = shared::RunStatus::Completed;
        let entry = summary(&sweep, &[done, run(12, 2, &[0.25])]);
        assert_eq!(
            (entry.status, entry.progress.as_str(), entry.best.as_str()),
            ("running", "1 of 3 trials done", "best 75.0 %")
        );
        assert_eq!(plan_line(&sweep), "grid · 3 trials · 1 at a time · ranked by test accuracy");
        // A trial waiting at a rung (its run stopped) will train again: it is not done.
        let mut waiting = sweep.clone();
        waiting.trials[0].waiting_at = Some(1);
        let mut stopped = run(11, 1, &[0.5]);
        stopped.status = shared::RunStatus::Stopped;
        assert_eq!(summary(&waiting, &[stopped.clone(), run(12, 2, &[0.25])]).progress, "0 of 3 trials done");
        waiting.trials[0].waiting_at = None;
        assert_eq!(summary(&waiting, &[stopped, run(12, 2, &[0.25])]).progress, "1 of 3 trials done");
        let mut judged = sweep.clone();
        let asha = |variant| shared::sweep::Asha { grace_epochs: 1, eta: 3, variant };
        judged.request.early_stopping = Some(shared::sweep::EarlyStopping { asha: asha(AshaVariant::Stopping) });
        assert!(plan_line(&judged).ends_with(" · ASHA (grace 1 epoch, eta 3)"), "{}", plan_line(&judged));
        judged.request.early_stopping = Some(shared::sweep::EarlyStopping { asha: asha(AshaVariant::Promotion) });
        assert!(plan_line(&judged).ends_with(" · ASHA, promotion (grace 1 epoch, eta 3)"), "{}", plan_line(&judged));
    }

    #[test]
    fn a_sweeps_runs_are_those_linked_to_it() {
        let sweep = sweep(json!([]));
        let mut other: Run = run(13, 1, &[]);
        other.sweep = None;
        let runs = trial_runs(&sweep, &[run(11, 1, &[]), other]);
        assert_eq!(runs.iter().map(|r| r.id).collect::<Vec<_>>(), [11]);
    }
}
