//! The sweep editor that "Sweep these settings" opens: the settings varied (a list of values, a range, or
//! the options ticked), how trials are drawn, trained and ranked, early stopping, and before Start the
//! trial count, what it costs and every problem. The typed text is parsed and checked by
//! [`crate::sweep_form`].

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::sweep::{AshaVariant, Distribution, SweepMethod, SweepMetric};

use crate::api;
use crate::layout;
use crate::settings::control_id;
use crate::sweep_form::{self, RangeEdit, SpaceDraft, SweepDraft};
use crate::{format, studio};

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
pub(super) fn SweepEditor(draft: RwSignal<Option<SweepDraft>>) -> impl IntoView {
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
    let variant = move || draft.with(|d| d.as_ref().and_then(|d| d.asha));
    let asha = move || variant().is_some();
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
                        let chosen = match event_target_value(&ev).as_str() {
                            "asha" => Some(AshaVariant::Stopping),
                            "asha-promotion" => Some(AshaVariant::Promotion),
                            _ => None,
                        };
                        edit(draft, |d| d.asha = chosen);
                    }
                >
                    <option value="off" prop:selected=move || !asha()>"Off: every trial trains to its end"</option>
                    <option value="asha" prop:selected=move || variant() == Some(AshaVariant::Stopping)>
                        "ASHA: stop trials that fall behind as they reach a rung"
                    </option>
                    <option value="asha-promotion" prop:selected=move || variant() == Some(AshaVariant::Promotion)>
                        "ASHA, promotion: trials wait at a rung until they are among the best"
                    </option>
                </select>
            </div>
            <Show when=asha>
                <DraftNumber draft=draft id="sweep-grace" label="Grace epochs" help="Epochs every trial trains before it is first judged." read=|d| d.grace_epochs.clone() write=|d, v| d.grace_epochs = v/>
                <DraftNumber draft=draft id="sweep-eta" label="Eta" help="Each rung keeps the top 1/eta of the trials." read=|d| d.eta.clone() write=|d, v| d.eta = v/>
            </Show>
        </div>
    }
}
