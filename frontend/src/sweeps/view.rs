//! The sweep list and the chosen sweep: its head (status, plan, best result) with what can be done with
//! it (stop, resume, delete, use the best settings, open the best run), its leaderboard, its charts
//! ([`super::plots`]) and its early-stopping decisions.

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::sweep::{show_value, Sweep, SweepMetric, SweepStatus, Trial};

use super::plots::{ParallelCoordinates, SweepCurves};
use super::{best_line, live_trials, plan_line, summary, trial_runs, SweepSummary};
use crate::api::{self, SweepCommand};
use crate::layout;
use crate::{studio, sweep_plot};

/// Every sweep, newest first; pressing one shows it below.
#[component]
pub(super) fn SweepList() -> impl IntoView {
    let studio = studio();
    let items = Memo::new(move |_| {
        studio.state.with(|s| s.sweeps.iter().map(|sweep| summary(sweep, &s.runs)).collect::<Vec<_>>())
    });
    let shown = Memo::new(move |_| studio.state.with(|s| s.shown_sweep(studio.chosen_sweep.get()).map(|s| s.id)));
    view! {
        <Show when=move || items.with(Vec::is_empty)>
            <p class="empty" id="no-sweeps">"No sweeps yet. “Sweep these settings”, in New run or on a run, opens the editor."</p>
        </Show>
        <ul id="sweep-list" class="run-list sweep-list">
            <For
                each=move || items.get()
                key=|item| item.clone()
                children=move |item: SweepSummary| {
                    let id = item.id;
                    view! {
                        <li class="run-item sweep-item" class:selected=move || shown.get() == Some(id) data-sweep-id=id>
                            <button
                                type="button"
                                class="run-button"
                                aria-pressed=move || (shown.get() == Some(id)).to_string()
                                on:click=move |_| studio.chosen_sweep.set(Some(id))
                            >
                                <span class="run-id">{format!("#{id}")}</span>
                                <span class="run-main">
                                    <span class="run-name">{item.name}</span>
                                    <span class="run-facts">{item.progress}</span>
                                </span>
                                <span class="sweep-list-best">{item.best}</span>
                                <span class=format!("badge status-{}", item.status)>{item.status}</span>
                            </button>
                        </li>
                    }
                }
            />
        </ul>
    }
}

/// The chosen sweep: its head and actions, leaderboard, learning curves, parallel coordinates and decisions.
#[component]
pub(super) fn SweepView() -> impl IntoView {
    let studio = studio();
    let shown = Memo::new(move |_| studio.state.with(|s| s.shown_sweep(studio.chosen_sweep.get()).cloned()));
    let board = Memo::new(move |_| {
        shown.with(|sweep| {
            sweep.as_ref().map_or_else(Vec::new, |sweep| studio.state.with(|s| live_trials(sweep, &s.runs)))
        })
    });
    let runs = Memo::new(move |_| {
        shown.with(|sweep| {
            sweep.as_ref().map_or_else(Vec::new, |sweep| studio.state.with(|s| trial_runs(sweep, &s.runs)))
        })
    });
    view! {
        <Show when=move || shown.with(Option::is_some)>
            <div id="sweep-view" class="sweep-view">
                <SweepHead shown=shown board=board/>
                <Leaderboard shown=shown board=board/>
                <h3 class="sweep-section">"Learning curves"</h3>
                <SweepCurves shown=shown board=board runs=runs/>
                <h3 class="sweep-section">"Parallel coordinates"</h3>
                <ParallelCoordinates shown=shown board=board/>
                <Decisions shown=shown/>
            </div>
        </Show>
    }
}

/// The sweep's name, status, plan and best result, and what can be done with it.
#[component]
fn SweepHead(shown: Memo<Option<Sweep>>, board: Memo<Vec<Trial>>) -> impl IntoView {
    let studio = studio();
    let status = Memo::new(move |_| shown.with(|s| s.as_ref().map(|s| s.status)));
    let id = Memo::new(move |_| shown.with(|s| s.as_ref().map(|s| s.id)));
    let best = Memo::new(move |_| board.with(|trials| trials.first().filter(|t| t.best_metric.is_some()).cloned()));
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let confirming = RwSignal::new(false);
    Effect::new(move |_| {
        id.track();
        confirming.set(false);
        error.set(None);
    });
    let command = move |command: SweepCommand| {
        let Some(sweep_id) = id.get_untracked() else { return };
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            match api::command_sweep(sweep_id, command).await {
                Ok(sweep) => studio.state.update(|state| state.sweep_updated(sweep)),
                Err(why) => error.set(Some(why.to_string())),
            }
            busy.set(false);
        });
    };
    let delete = move |_| {
        let Some(sweep_id) = id.get_untracked() else { return };
        busy.set(true);
        spawn_local(async move {
            match api::delete_sweep(sweep_id).await {
                Ok(()) => {
                    studio.state.update(|state| state.sweeps.retain(|s| s.id != sweep_id));
                    studio.chosen_sweep.set(None);
                }
                Err(why) => error.set(Some(why.to_string())),
            }
            confirming.set(false);
            busy.set(false);
        });
    };
    let use_best = move |_| {
        let config = shown.with_untracked(|s| {
            let (sweep, trial) = (s.as_ref()?, best.get_untracked()?);
            Some(sweep.request.trial_config(&trial.parameters))
        });
        match config {
            Some(Ok(config)) => {
                studio.form_request.set(Some(config));
                layout::bring_into_view("train-card");
            }
            Some(Err(why)) => error.set(Some(why)),
            None => {}
        }
    };
    let open_best = move |_| {
        if let Some(run_id) = best.get_untracked().and_then(|t| t.run_id) {
            studio.chosen_run.set(Some(run_id));
            layout::bring_into_view("runs-card");
        }
    };
    let is = move |wanted: SweepStatus| status.get() == Some(wanted);
    view! {
        <div class="detail-head sweep-head">
            <h3 id="sweep-title">{move || shown.with(|s| s.as_ref().map(|s| format!("#{} {}", s.id, s.name)))}</h3>
            {move || status.get().map(|status| view! {
                <span id="sweep-status" class=format!("badge status-{}", status.as_str())>{status.as_str()}</span>
            })}
        </div>
        <p class="config-summary">{move || shown.with(|s| s.as_ref().map(plan_line))}</p>
        <p id="sweep-best" class="sweep-best">
            {move || shown.with(|s| s.as_ref().and_then(|s| best_line(s.request.metric, &board.get())))
                .unwrap_or_else(|| "No trial has a result yet.".to_string())}
        </p>
        <div class="run-actions sweep-actions">
            <button id="use-best" type="button" class="small primary" disabled=move || best.with(Option::is_none) on:click=use_best>
                "Use the best settings"
            </button>
            <button id="open-best" type="button" class="small" disabled=move || best.with(|b| b.as_ref().and_then(|t| t.run_id).is_none()) on:click=open_best>
                "Open the best run"
            </button>
            <Show when=move || is(SweepStatus::Running)>
                <button id="stop-sweep" type="button" class="small danger" disabled=move || busy.get() on:click=move |_| command(SweepCommand::Stop)>
                    "Stop sweep"
                </button>
            </Show>
            <Show when=move || is(SweepStatus::Stopped)>
                <button id="resume-sweep" type="button" class="small" disabled=move || busy.get() on:click=move |_| command(SweepCommand::Resume)>
                    "Resume sweep"
                </button>
            </Show>
            <button
                id="delete-sweep"
                type="button"
                class="small danger"
                title=move || if is(SweepStatus::Running) { "Stop the sweep first" } else { "Forget this sweep; its runs stay" }
                disabled=move || is(SweepStatus::Running) || busy.get()
                on:click=move |_| confirming.set(true)
            >
                "Delete sweep"
            </button>
            <Show when=move || confirming.get()>
                <div id="delete-sweep-confirm" class="delete-confirm" role="alertdialog" aria-labelledby="delete-sweep-question">
                    <p id="delete-sweep-question">"Delete this sweep? Its trials stay in the run list as ordinary runs."</p>
                    <button id="confirm-delete-sweep" type="button" class="small danger" on:click=delete>"Delete sweep"</button>
                    <button id="keep-sweep" type="button" class="small" on:click=move |_| confirming.set(false)>"Keep it"</button>
                </div>
            </Show>
        </div>
        <p id="sweep-error" class="form-error" role="alert">{move || error.get()}</p>
    }
}

/// One row per trial, best first: rank, trial, each setting's value, status (with why a pruned trial
/// stopped), epochs done and best result.
#[component]
fn Leaderboard(shown: Memo<Option<Sweep>>, board: Memo<Vec<Trial>>) -> impl IntoView {
    let studio = studio();
    let names = Memo::new(move |_| {
        shown.with(|s| s.as_ref().map_or_else(Vec::new, |s| s.request.parameters.keys().cloned().collect::<Vec<_>>()))
    });
    let metric = Memo::new(move |_| shown.with(|s| s.as_ref().map_or(SweepMetric::TestAccuracy, |s| s.request.metric)));
    let rows = move || {
        let trials = board.get();
        let colours = sweep_plot::trial_colours(&trials, metric.get());
        let planned = |trial: &Trial| {
            shown.with(|s| s.as_ref().and_then(|s| s.request.trial_config(&trial.parameters).ok()).map(|c| c.epochs))
        };
        trials
            .iter()
            .enumerate()
            .map(|(place, trial)| {
                let rank = trial.best_metric.map_or_else(|| "—".to_string(), |_| (place + 1).to_string());
                let swatch = format!("background: {}", sweep_plot::colour_of(&colours, trial.trial));
                let status = trial.status_word();
                let values = names.get().into_iter().map(|name| view! {
                    <td>{trial.parameters.get(&name).map(show_value).unwrap_or_else(|| "—".to_string())}</td>
                }).collect_view();
                let run_id = trial.run_id;
                let number = trial.trial;
                let trial_cell = match run_id {
                    Some(run_id) => view! {
                        <button type="button" class="link-button" title=format!("Show run #{run_id}") on:click=move |_| {
                            studio.chosen_run.set(Some(run_id));
                            layout::bring_into_view("runs-card");
                        }>{format!("Trial {number}")}</button>
                    }.into_any(),
                    None => format!("Trial {number}").into_any(),
                };
                let epochs = planned(trial).map_or_else(|| trial.epochs_done.to_string(), |p| format!("{}/{p}", trial.epochs_done));
                view! {
                    <tr class="trial-row" data-trial=number data-status=status>
                        <td class="rank"><span class="swatch" style=swatch aria-hidden="true"></span>{rank}</td>
                        <td class="trial-name">{trial_cell}</td>
                        {values}
                        <td class="trial-status">
                            <span class=format!("badge status-{status}")>{status}</span>
                            {trial.note.clone().map(|note| view! { <span class="trial-note">{note}</span> })}
                        </td>
                        <td>{epochs}</td>
                        <td class="trial-best">{trial.best_metric.map_or_else(|| "—".to_string(), |v| metric.get().show(v))}</td>
                    </tr>
                }
            })
            .collect_view()
    };
    view! {
        <div class="table-wrap" tabindex="0">
            <table id="sweep-leaderboard" class="epochs leaderboard">
                <thead>
                    <tr>
                        <th scope="col">"Rank"</th>
                        <th scope="col">"Trial"</th>
                        {move || names.get().into_iter().map(|name| view! {
                            <th scope="col" title=name.clone()>{shared::fields::label_of(&name).to_string()}</th>
                        }).collect_view()}
                        <th scope="col">"Status"</th>
                        <th scope="col">"Epochs"</th>
                        <th scope="col">{move || format!("Best {}", metric.get().label())}</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}

/// Every early-stopping decision, in the order made, each its sentence.
#[component]
fn Decisions(shown: Memo<Option<Sweep>>) -> impl IntoView {
    let decisions = Memo::new(move |_| shown.with(|s| s.as_ref().map_or_else(Vec::new, |s| s.decisions.clone())));
    view! {
        <Show when=move || !decisions.with(Vec::is_empty)>
            <h3 class="sweep-section">"Early-stopping decisions"</h3>
            <ol id="sweep-decisions" class="sweep-decisions">
                {move || decisions.get().into_iter().map(|decision| view! {
                    <li class:pruned=!decision.continued>{decision.sentence}</li>
                }).collect_view()}
            </ol>
        </Show>
    }
}
