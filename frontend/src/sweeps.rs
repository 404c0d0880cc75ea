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

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::sweep::{show_value, Distribution, Sweep, SweepMethod, SweepMetric, SweepStatus, Trial};
use shared::{Run, TrainConfig};

use crate::api::{self, SweepCommand};
use crate::layout::{self, ChartFit};
use crate::settings::control_id;
use crate::sweep_form::{self, RangeEdit, SpaceDraft, SweepDraft};
use crate::sweep_plot::{self, CurveChart, ParallelPlot};
use crate::{chart, format, studio};

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
        parts.push(format!("ASHA (grace {}, eta {})", format::epochs(early.asha.grace_epochs), early.asha.eta));
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
    let done = trials.iter().filter(|t| t.status.is_some_and(|s| s.is_finished())).count();
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
        spawn_local(async move {
            match api::sweeps().await {
                Ok(sweeps) => {
                    studio.state.update(|state| state.set_sweeps(sweeps));
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

/// Changes the open draft, if there is one.
fn edit(draft: RwSignal<Option<SweepDraft>>, change: impl FnOnce(&mut SweepDraft)) {
    draft.update(|open| {
        if let Some(open) = open.as_mut() {
            change(open)
        }
    });
}

/// The editor: the settings varied, how trials are drawn and ranked, early stopping, and before Start the
/// trial count, what it costs and every problem.
#[component]
fn SweepEditor(draft: RwSignal<Option<SweepDraft>>) -> impl IntoView {
    let studio = studio();
    let request = Memo::new(move |_| draft.with(|d| d.as_ref().map(|d| d.request().0)));
    let problems = Memo::new(move |_| {
        let slots = studio.slots.get();
        draft.with(|d| d.as_ref().map_or_else(Vec::new, |d| d.problems(slots)))
    });
    let names = Memo::new(move |_| {
        draft.with(|d| d.as_ref().map_or_else(Vec::new, |d| d.parameters.iter().map(|p| p.name).collect::<Vec<_>>()))
    });
    let refusal = RwSignal::new(None::<String>);
    let sending = RwSignal::new(false);
    let start = move |_| {
        let Some(request) = request.get_untracked() else { return };
        if !problems.with_untracked(Vec::is_empty) {
            return;
        }
        sending.set(true);
        refusal.set(None);
        spawn_local(async move {
            let answer = api::create_sweep(&request).await;
            sending.set(false);
            match answer {
                Ok(sweep) => {
                    let id = sweep.id;
                    studio.state.update(|state| state.sweep_updated(sweep));
                    studio.chosen_sweep.set(Some(id));
                    draft.set(None);
                    layout::bring_into_view("sweeps-card");
                }
                Err(why) => refusal.set(Some(why.to_string())),
            }
        });
    };
    let base = move || {
        draft.with(|d| d.as_ref().map(|d| format!("{} · {}", d.base.dataset, format::settings_summary(&d.base))))
    };
    view! {
        <div id="sweep-editor" class="sweep-editor" role="group" aria-labelledby="sweep-editor-title">
            <h3 id="sweep-editor-title">"New sweep"</h3>
            <p class="hint">"Every trial starts from: " {base}</p>
            <div class="field">
                <label for="sweep-name">"Name"</label>
                <input
                    id="sweep-name"
                    type="text"
                    autocomplete="off"
                    maxlength=shared::limits::MAX_RUN_NAME_CHARS
                    placeholder=move || format!("sweep of {}", names.get().join(", "))
                    prop:value=move || draft.with(|d| d.as_ref().map(|d| d.name.clone()).unwrap_or_default())
                    on:input=move |ev| {
                        let name = event_target_value(&ev);
                        edit(draft, |d| d.name = name);
                    }
                    on:change=move |ev| {
                        let name = event_target_value(&ev);
                        edit(draft, |d| d.name = name);
                    }
                />
            </div>
            <fieldset class="sweep-parameters">
                <legend>"Settings to vary"</legend>
                <For each=move || names.get() key=|name| *name children=move |name| view! { <ParameterRow name=name draft=draft/> }/>
                <AddParameter draft=draft names=names/>
            </fieldset>
            <SweepOptions draft=draft/>
            <SweepPlanned request=request problems=problems/>
            <p id="sweep-refusal" class="form-error" role="alert">{move || refusal.get()}</p>
            <div class="actions">
                <button
                    id="start-sweep"
                    type="button"
                    class="primary"
                    disabled=move || !problems.with(Vec::is_empty) || sending.get() || !studio.connected.get()
                    on:click=start
                >
                    {move || if sending.get() { "Starting…" } else { "Start sweep" }}
                </button>
                <button id="cancel-sweep" type="button" on:click=move |_| draft.set(None)>"Cancel"</button>
            </div>
        </div>
    }
}

/// Before Start: how many trials, what they cost at most, and every problem.
#[component]
fn SweepPlanned(request: Memo<Option<shared::sweep::SweepRequest>>, problems: Memo<Vec<String>>) -> impl IntoView {
    let count = Memo::new(move |_| request.with(|r| r.as_ref().and_then(|r| r.trial_count())));
    let cost = Memo::new(move |_| request.with(|r| r.as_ref().and_then(sweep_form::cost)));
    view! {
        <p id="sweep-summary" class="sweep-summary" role="status">
            <strong id="sweep-trial-count" data-count=move || count.get().map(|n| n.to_string())>
                {move || count.get().map_or_else(|| "No trials yet".to_string(), |n| sweep_form::count(n, "trial"))}
            </strong>
            <span id="sweep-cost">{move || cost.get().map(|cost| format!(": {cost}"))}</span>
        </p>
        <ul id="sweep-problems" class="sweep-problems">
            {move || problems.get().into_iter().map(|problem| view! { <li class="field-error">{problem}</li> }).collect_view()}
        </ul>
    }
}

/// One varied setting: its values (a list, the options ticked, or a range), and Remove.
#[component]
fn ParameterRow(name: &'static str, draft: RwSignal<Option<SweepDraft>>) -> impl IntoView {
    let label = shared::fields::label_of(name);
    let id = control_id(name);
    let parameter = Memo::new(move |_| {
        draft.with(|d| d.as_ref().and_then(|d| d.parameters.iter().find(|p| p.name == name).cloned()))
    });
    let how = Memo::new(move |_| {
        parameter.with(|p| match p.as_ref().map(|p| &p.space) {
            Some(SpaceDraft::Range { .. }) => "range",
            Some(SpaceDraft::Ticked(_)) => "ticked",
            _ => "values",
        })
    });
    let numeric = how.get_untracked() != "ticked";
    let how_id = format!("sweep-how-{id}");
    let how_select = numeric.then(|| {
        view! {
            <select
                id=how_id
                class="sweep-how"
                aria-label=format!("How {label} varies")
                on:change=move |ev| {
                    let range = event_target_value(&ev) == "range";
                    edit(draft, |d| {
                        let base = d.base.clone();
                        if let Some(p) = d.parameter_mut(name) {
                            if range { p.to_range(&base) } else { p.to_values() }
                        }
                    });
                }
            >
                <option value="values" prop:selected=move || how.get() == "values">"List of values"</option>
                <option value="range" prop:selected=move || how.get() == "range">"Range (random)"</option>
            </select>
        }
    });
    view! {
        <div class="sweep-parameter" data-parameter=name>
            <div class="sweep-parameter-head">
                <span class="sweep-parameter-name">{label}</span>
                <code>{name}</code>
                <span class="spacer"></span>
                {how_select}
                <button
                    id=format!("sweep-remove-{id}")
                    type="button"
                    class="small"
                    aria-label=format!("Remove {label}")
                    on:click=move |_| edit(draft, |d| d.keep(name))
                >
                    "Remove"
                </button>
            </div>
            {move || match how.get() {
                "range" => view! { <RangeInputs name=name draft=draft parameter=parameter/> }.into_any(),
                "ticked" => view! { <TickedOptions name=name draft=draft parameter=parameter/> }.into_any(),
                _ => view! { <ValuesInput name=name draft=draft parameter=parameter/> }.into_any(),
            }}
        </div>
    }
}

/// The values of a number setting, typed as a list.
#[component]
fn ValuesInput(
    name: &'static str,
    draft: RwSignal<Option<SweepDraft>>,
    parameter: Memo<Option<sweep_form::ParameterDraft>>,
) -> impl IntoView {
    let id = format!("sweep-values-{}", control_id(name));
    // `change` as well as `input`: clearing a box (by a script or autofill) fires only `change`.
    let type_values = move |ev: leptos::ev::Event| {
        let typed = event_target_value(&ev);
        edit(draft, |d| {
            if let Some(p) = d.parameter_mut(name) {
                p.space = SpaceDraft::Values(typed);
            }
        });
    };
    let text = move || {
        parameter.with(|p| match p.as_ref().map(|p| &p.space) {
            Some(SpaceDraft::Values(text)) => text.clone(),
            _ => String::new(),
        })
    };
    view! {
        <div class="field">
            <label for=id.clone()>"Values"</label>
            <input
                id=id.clone()
                type="text"
                inputmode="decimal"
                autocomplete="off"
                spellcheck="false"
                placeholder="e.g. 0.1, 0.01, 0.001"
                aria-describedby=format!("{id}-help")
                prop:value=text
                on:input=type_values
                on:change=type_values
            />
            <p class="field-help" id=format!("{id}-help")>"Separated by commas; a grid tries each, a random sweep draws among them."</p>
        </div>
    }
}

/// The ends of a number setting's range and how values are drawn from it.
#[component]
fn RangeInputs(
    name: &'static str,
    draft: RwSignal<Option<SweepDraft>>,
    parameter: Memo<Option<sweep_form::ParameterDraft>>,
) -> impl IntoView {
    let id = control_id(name);
    let range = move || {
        parameter.with(|p| match p.as_ref().map(|p| &p.space) {
            Some(SpaceDraft::Range { min, max, distribution }) => (min.clone(), max.clone(), *distribution),
            _ => (String::new(), String::new(), Distribution::Uniform),
        })
    };
    let set = move |change: RangeEdit| {
        edit(draft, |d| {
            if let Some(p) = d.parameter_mut(name) {
                p.edit_range(change);
            }
        });
    };
    let distributions = [
        (Distribution::LogUniform, "log_uniform", "Log-uniform"),
        (Distribution::Uniform, "uniform", "Uniform"),
        (Distribution::IntUniform, "int_uniform", "Whole numbers"),
    ];
    view! {
        <div class="sweep-range">
            <div class="field">
                <label for=format!("sweep-min-{id}")>"Min"</label>
                <input
                    id=format!("sweep-min-{id}")
                    type="text"
                    inputmode="decimal"
                    autocomplete="off"
                    prop:value=move || range().0
                    on:input=move |ev| set(RangeEdit::Min(event_target_value(&ev)))
                    on:change=move |ev| set(RangeEdit::Min(event_target_value(&ev)))
                />
            </div>
            <div class="field">
                <label for=format!("sweep-max-{id}")>"Max"</label>
                <input
                    id=format!("sweep-max-{id}")
                    type="text"
                    inputmode="decimal"
                    autocomplete="off"
                    prop:value=move || range().1
                    on:input=move |ev| set(RangeEdit::Max(event_target_value(&ev)))
                    on:change=move |ev| set(RangeEdit::Max(event_target_value(&ev)))
                />
            </div>
            <div class="field">
                <label for=format!("sweep-distribution-{id}")>"Drawn"</label>
                <select
                    id=format!("sweep-distribution-{id}")
                    on:change=move |ev| {
                        let chosen = event_target_value(&ev);
                        if let Some(&(picked, _, _)) = distributions.iter().find(|(_, key, _)| *key == chosen) {
                            set(RangeEdit::Drawn(picked));
                        }
                    }
                >
                    {distributions.into_iter().map(|(value, key, text)| view! {
                        <option value=key prop:selected=move || range().2 == value>{text}</option>
                    }).collect_view()}
                </select>
            </div>
        </div>
    }
}

/// The options of a choice or on/off setting, each ticked to be tried.
#[component]
fn TickedOptions(
    name: &'static str,
    draft: RwSignal<Option<SweepDraft>>,
    parameter: Memo<Option<sweep_form::ParameterDraft>>,
) -> impl IntoView {
    let options = parameter.with_untracked(|p| p.as_ref().map(|p| p.options()).unwrap_or_default());
    let ticked = move |value: &str| {
        parameter.with(|p| matches!(p.as_ref().map(|p| &p.space), Some(SpaceDraft::Ticked(names)) if names.iter().any(|n| n == value)))
    };
    let all = StoredValue::new(options.iter().map(|(option, _)| *option).collect::<Vec<_>>());
    let tick = move |value: &'static str, on: bool| {
        edit(draft, |d| {
            if let Some(SpaceDraft::Ticked(names)) = d.parameter_mut(name).map(|p| &mut p.space) {
                let kept = |option: &&str| if *option == value { on } else { names.iter().any(|n| n == option) };
                *names = all.with_value(|all| all.iter().copied().filter(kept).map(String::from).collect());
            }
        });
    };
    let label = shared::fields::label_of(name);
    view! {
        <fieldset class="sweep-ticks">
            <legend class="visually-hidden">{format!("{label}: values to try")}</legend>
            {options.into_iter().map(|(value, text)| {
                let id = format!("sweep-tick-{}-{}", control_id(name), control_id(value));
                let label_for = id.clone();
                view! {
                    <label class="sweep-tick" for=label_for>
                        <input
                            id=id
                            type="checkbox"
                            prop:checked=move || ticked(value)
                            on:change=move |ev| tick(value, event_target_checked(&ev))
                        />
                        {text}
                    </label>
                }
            }).collect_view()}
        </fieldset>
    }
}

/// The menu that adds a setting to vary.
#[component]
fn AddParameter(draft: RwSignal<Option<SweepDraft>>, names: Memo<Vec<&'static str>>) -> impl IntoView {
    view! {
        <div class="field sweep-add">
            <label for="sweep-add">"Vary a setting"</label>
            <select
                id="sweep-add"
                on:change=move |ev| {
                    if let Some(field) = shared::fields::field(&event_target_value(&ev)) {
                        edit(draft, |d| d.vary(field));
                    }
                }
            >
                // Chosen again whenever the list changes, so the menu always offers to add another.
                <option value="" prop:selected=move || names.with(|_| true)>"Add a setting…"</option>
                {sweep_form::sweepable().into_iter().map(|field| view! {
                    <option value=field.name disabled=move || names.with(|n| n.contains(&field.name))>
                        {field.label}
                    </option>
                }).collect_view()}
            </select>
        </div>
    }
}

/// A number box of the editor.
#[component]
fn DraftNumber(
    draft: RwSignal<Option<SweepDraft>>,
    id: &'static str,
    label: &'static str,
    #[prop(into)] help: Signal<String>,
    read: fn(&SweepDraft) -> String,
    write: fn(&mut SweepDraft, String),
) -> impl IntoView {
    let type_number = move |ev: leptos::ev::Event| {
        let typed = event_target_value(&ev);
        edit(draft, |d| write(d, typed));
    };
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <input
                id=id
                type="text"
                inputmode="numeric"
                autocomplete="off"
                aria-describedby=format!("{id}-help")
                prop:value=move || draft.with(|d| d.as_ref().map(read).unwrap_or_default())
                on:input=type_number
                on:change=type_number
            />
            <p class="field-help" id=format!("{id}-help")>{move || help.get()}</p>
        </div>
    }
}

/// How trials are drawn, trained and ranked, and early stopping.
#[component]
fn SweepOptions(draft: RwSignal<Option<SweepDraft>>) -> impl IntoView {
    let slots = studio().slots;
    let random = move || draft.with(|d| d.as_ref().is_some_and(|d| d.method == SweepMethod::Random));
    let asha = move || draft.with(|d| d.as_ref().is_some_and(|d| d.asha));
    let metric = move || draft.with(|d| d.as_ref().map_or(SweepMetric::TestAccuracy, |d| d.metric));
    let parallel_help = move || format!("Trials trained at once; this server trains at most {} at once.", slots.get());
    view! {
        <div class="field-grid sweep-options">
            <div class="field">
                <label for="sweep-method">"Method"</label>
                <select
                    id="sweep-method"
                    on:change=move |ev| {
                        let random = event_target_value(&ev) == "random";
                        edit(draft, |d| d.method = if random { SweepMethod::Random } else { SweepMethod::Grid });
                    }
                >
                    <option value="grid" prop:selected=move || !random()>"Grid: every combination"</option>
                    <option value="random" prop:selected=random>"Random: a number of draws"</option>
                </select>
            </div>
            <Show when=random>
                <DraftNumber draft=draft id="sweep-trials" label="Trials" help="How many trials to draw." read=|d| d.trials.clone() write=|d, v| d.trials = v/>
                <DraftNumber draft=draft id="sweep-seed" label="Seed" help="The same seed draws the same trials." read=|d| d.seed.clone() write=|d, v| d.seed = v/>
            </Show>
            <DraftNumber draft=draft id="sweep-parallel" label="Parallel" help=Signal::derive(parallel_help) read=|d| d.parallel.clone() write=|d, v| d.parallel = v/>
            <div class="field">
                <label for="sweep-metric">"Rank by"</label>
                <select
                    id="sweep-metric"
                    on:change=move |ev| {
                        let loss = event_target_value(&ev) == "test_loss";
                        edit(draft, |d| d.metric = if loss { SweepMetric::TestLoss } else { SweepMetric::TestAccuracy });
                    }
                >
                    <option value="test_accuracy" prop:selected=move || metric() == SweepMetric::TestAccuracy>"Test accuracy (higher is better)"</option>
                    <option value="test_loss" prop:selected=move || metric() == SweepMetric::TestLoss>"Test loss (lower is better)"</option>
                </select>
            </div>
            <div class="field">
                <label for="sweep-early">"Early stopping"</label>
                <select
                    id="sweep-early"
                    on:change=move |ev| {
                        let on = event_target_value(&ev) == "asha";
                        edit(draft, |d| d.asha = on);
                    }
                >
                    <option value="off" prop:selected=move || !asha()>"Off: every trial trains to its end"</option>
                    <option value="asha" prop:selected=asha>"ASHA: stop trials that fall behind"</option>
                </select>
            </div>
            <Show when=asha>
                <DraftNumber draft=draft id="sweep-grace" label="Grace epochs" help="Epochs every trial trains before it is first judged." read=|d| d.grace_epochs.clone() write=|d, v| d.grace_epochs = v/>
                <DraftNumber draft=draft id="sweep-eta" label="Eta" help="Each rung keeps the top 1/eta of the trials." read=|d| d.eta.clone() write=|d, v| d.eta = v/>
            </Show>
        </div>
    }
}

/// Every sweep, newest first; pressing one shows it below.
#[component]
fn SweepList() -> impl IntoView {
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
fn SweepView() -> impl IntoView {
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
                let status = trial.status.map_or("pending", |s| s.as_str());
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

/// Every trial's learning curve in one chart, fitted to its drawn width.
#[component]
fn SweepCurves(shown: Memo<Option<Sweep>>, board: Memo<Vec<Trial>>, runs: Memo<Vec<Run>>) -> impl IntoView {
    let holder = NodeRef::<leptos::html::Div>::new();
    let drawn = layout::drawn_width(holder);
    view! {
        <div class="sweep-chart" node_ref=holder>
            {move || {
                let fit = ChartFit::following(drawn.get());
                shown.with(|sweep| {
                    sweep.as_ref().map(|sweep| curves_svg(sweep_plot::learning_curves(sweep, &board.get(), &runs.get(), fit.view_width), fit))
                })
            }}
        </div>
    }
}

fn curves_svg(plot: CurveChart, fit: ChartFit) -> impl IntoView {
    let frame = plot.frame;
    let title = plot.metric.title();
    let curves = plot
        .curves
        .into_iter()
        .map(|curve| {
            let colour = curve.colour.clone();
            let markers = curve
                .points
                .iter()
                .zip(curve.notes)
                .map(|(&(x, y), note)| view! {
                    <circle class="marker" cx=x cy=y r="3" style=format!("fill: {colour}")><title>{note}</title></circle>
                })
                .collect_view();
            let stopped = curve.stopped.map(|((x, y), why)| view! {
                <path
                    class="stop-mark"
                    d=format!("M{} {}L{} {}M{} {}L{} {}", x - 5.0, y - 5.0, x + 5.0, y + 5.0, x - 5.0, y + 5.0, x + 5.0, y - 5.0)
                    style=format!("stroke: {}", curve.colour)
                >
                    <title>{why}</title>
                </path>
            });
            let pruned = stopped.is_some();
            view! {
                <polyline
                    class="series trial-curve"
                    class:pruned=pruned
                    data-trial=curve.trial
                    style=format!("stroke: {}", curve.colour)
                    points=chart::polyline(&curve.points)
                ></polyline>
                {markers}
                {stopped}
            }
        })
        .collect_view();
    view! {
        <svg
            id="sweep-curves"
            class="chart sweep-curves"
            viewBox=format!("0 0 {} {}", fit.view_width, chart::COMPARE_HEIGHT)
            style=fit.style()
            role="img"
            aria-label=format!("{title} per epoch of every trial; pruned trials dashed, with a cross where they stopped")
        >
            <text class="panel-title" x=frame.left y=frame.top - 14.0>{format!("{title} per epoch")}</text>
            {crate::axes(frame, &plot.x_ticks, &plot.y_ticks)}
            {curves}
        </svg>
    }
}

/// The parallel-coordinates plot, fitted to its drawn width, or scrolling sideways in its box when its
/// axes need more room.
#[component]
fn ParallelCoordinates(shown: Memo<Option<Sweep>>, board: Memo<Vec<Trial>>) -> impl IntoView {
    let holder = NodeRef::<leptos::html::Div>::new();
    let drawn = layout::drawn_width(holder);
    view! {
        <div class="sweep-chart sweep-parallel-box" node_ref=holder tabindex="0">
            {move || shown.with(|sweep| sweep.as_ref().map(|sweep| {
                let needed = sweep_plot::parallel_width(sweep);
                let scrolls = drawn.get().is_some_and(|d| d < needed);
                let fit = if scrolls { ChartFit::fixed(needed, Some(needed)) } else { ChartFit::following(drawn.get()) };
                parallel_svg(sweep_plot::parallel_plot(sweep, &board.get(), fit.view_width), fit, scrolls)
            }))}
        </div>
    }
}

fn parallel_svg(plot: ParallelPlot, fit: ChartFit, scrolls: bool) -> impl IntoView {
    let frame = plot.frame;
    let count = plot.axes.len();
    let lines = plot
        .lines
        .into_iter()
        .map(|line| {
            view! {
                <polyline
                    class="pc-line"
                    class:pruned=line.pruned
                    data-trial=line.trial
                    style=format!("stroke: {}", line.colour)
                    points=chart::polyline(&line.points)
                >
                    <title>{line.note}</title>
                </polyline>
            }
        })
        .collect_view();
    let axes = plot
        .axes
        .into_iter()
        .enumerate()
        .map(|(i, axis)| {
            let title_anchor = match i {
                0 => "start",
                i if i + 1 == count => "end",
                _ => "middle",
            };
            let offset = if axis.anchor == "end" { -7.0 } else { 7.0 };
            let ticks = axis
                .ticks
                .into_iter()
                .map(|tick| {
                    view! {
                        <line class="pc-tick" x1=axis.x - 3.0 x2=axis.x + 3.0 y1=tick.at y2=tick.at></line>
                        <text class="tick" x=axis.x + offset y=tick.at + 4.0 text-anchor=axis.anchor>{tick.label}</text>
                    }
                })
                .collect_view();
            view! {
                <g class="pc-axis">
                    <line class="axis" x1=axis.x x2=axis.x y1=frame.top y2=frame.bottom()></line>
                    <text class="axis-title" x=axis.x y=frame.top - 16.0 text-anchor=title_anchor>{axis.title}</text>
                    {ticks}
                </g>
            }
        })
        .collect_view();
    let style = if scrolls { format!("{}; min-width: {}px", fit.style(), plot.width) } else { fit.style() };
    view! {
        <svg
            id="sweep-parallel"
            class="chart sweep-parallel"
            viewBox=format!("0 0 {} {}", plot.width, sweep_plot::PARALLEL_HEIGHT)
            style=style
            role="img"
            aria-label="Parallel coordinates: each trial a line through its settings' values to its result, coloured by its result"
        >
            {lines}
            {axes}
        </svg>
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
