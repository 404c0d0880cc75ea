//! The "New run" card: presets, the basic and advanced settings, Start and Stop; and the card
//! that adds a dataset from a zip.

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde::{de::DeserializeOwned, Serialize};
use shared::{
    defaults, ClientMessage, ConfigError, FineTuneMode, Normalization, OptimizerKind, Schedule, TrainConfig,
    WeightsEntry,
};

use crate::form::{problem_for, Preset, TrainForm};
use crate::state::StudioState;
use crate::{api, format, saved, studio};

/// The dataset the server downloads by itself when it is not in the data folder.
const DOWNLOADABLE_DATASET: &str = "cifar10";

/// The configuration fields the form shows, each with its message under it: nine basic ones, then the
/// Advanced section's.
pub const FORM_FIELDS: [&str; 28] = [
    "dataset",
    "epochs",
    "batch_size",
    "lr",
    "momentum",
    "seed",
    "input_size",
    "normalization",
    "weights",
    "mode",
    "frozen_epochs",
    "backbone_lr_scale",
    "optimizer",
    "nesterov",
    "weight_decay",
    "schedule",
    "warmup_epochs",
    "step_size",
    "gamma",
    "label_smoothing",
    "grad_clip_norm",
    "random_crop",
    "horizontal_flip",
    "early_stopping_patience",
    "validation_fraction",
    "mixed_precision",
    "cudnn_benchmark",
    "channels_last",
];

/// The fields inside the Advanced section (the form's fields from `mode` on), to count their problems on
/// its summary line.
const ADVANCED_FIELDS: &[&str] = FORM_FIELDS.split_at(9).1;

type Checked = Memo<Result<TrainConfig, Vec<ConfigError>>>;

/// A number box: its id, the config field it fills, label, hint, (min, max, step) and the text it edits.
struct NumberBox {
    id: &'static str,
    field: &'static str,
    label: &'static str,
    hint: &'static str,
    attrs: (&'static str, Option<&'static str>, &'static str),
    text: fn(&mut TrainForm) -> &mut String,
}

/// The training form: presets, dataset, hyper-parameters, Start and Stop.
#[component]
pub fn TrainPanel() -> impl IntoView {
    let studio = studio();
    // What this browser typed last time, else the first visit's recipe.
    let form = RwSignal::new(saved::load_form().unwrap_or_else(TrainForm::first_visit));
    // Bumped when something other than typing (a preset) rewrites the boxes.
    let rewritten = RwSignal::new(0u32);
    let datasets = studio.datasets;
    let datasets_listed = RwSignal::new(false);
    let weights = RwSignal::new(Vec::<WeightsEntry>::new());
    let load_error = RwSignal::new(None::<String>);
    let checked: Checked = Memo::new(move |_| form.with(TrainForm::to_config));
    // Every change is kept for the next visit; the form as loaded is already what is stored or the default.
    Effect::new(move |loaded: Option<()>| {
        form.with(|f| {
            if loaded.is_some() {
                saved::save_form(f)
            }
        })
    });
    // "Use these settings" on a run fills the form with that run's configuration.
    Effect::new(move |_| {
        if let Some(config) = studio.form_request.get() {
            form.set(TrainForm::from_config(&config));
            rewritten.update(|n| *n += 1);
        }
    });

    // Lists are (re)loaded on every connection, so a restarted server's folders show up.
    Effect::new(move |_| {
        if !studio.connected.get() {
            return;
        }
        spawn_local(async move {
            let (found_datasets, found_weights) = futures::join!(api::datasets(), api::weights());
            let mut problems = Vec::new();
            match found_datasets {
                Ok(list) => {
                    datasets.set(list);
                    datasets_listed.set(true);
                }
                Err(error) => problems.push(format!("Datasets could not be listed: {error}")),
            }
            match found_weights {
                Ok(list) => {
                    form.update(|form| {
                        if form.weights != defaults::WEIGHTS_NONE && !list.iter().any(|w| w.name == form.weights) {
                            form.weights = defaults::WEIGHTS_NONE.to_string();
                        }
                    });
                    weights.set(list);
                }
                Err(error) => problems.push(format!("Weight files could not be listed: {error}")),
            }
            load_error.set((!problems.is_empty()).then(|| problems.join(" ")));
        });
    });
    // The chosen dataset follows the list: a dataset just uploaded is picked, one that went away is replaced.
    Effect::new(move |_| {
        if !datasets_listed.get() {
            return;
        }
        let uploaded = studio.uploaded_dataset.get();
        datasets.with(|list| {
            form.update(|form| {
                if let Some(name) = uploaded.filter(|name| list.iter().any(|d| &d.name == name)) {
                    form.dataset = name;
                } else if form.dataset.is_empty()
                    || !list.iter().any(|d| d.name == form.dataset && d.error.is_none())
                        && form.dataset != DOWNLOADABLE_DATASET
                {
                    let readable = list.iter().find(|d| d.error.is_none());
                    form.dataset = readable.map_or(DOWNLOADABLE_DATASET.to_string(), |d| d.name.clone());
                }
            })
        });
    });

    // The Dataset health card and the leak warning follow the dataset chosen here.
    Effect::new(move |_| {
        let chosen = form.with(|f| (!f.dataset.is_empty()).then(|| f.dataset.clone()));
        if studio.chosen_dataset.get_untracked() != chosen {
            studio.chosen_dataset.set(chosen);
        }
    });

    let start = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if !studio.connected.get_untracked() {
            return;
        }
        if let Ok(config) = checked.get_untracked() {
            studio.state.update(|state| state.error = None);
            studio.chosen_run.set(None);
            studio.send(ClientMessage::StartRun { config });
        }
    };
    let stoppable = Memo::new(move |_| studio.state.with(StudioState::stoppable_run));
    let stopping = move || {
        let stopping = studio.state.with(|state| state.stopping);
        stopping.is_some() && stopping == stoppable.get()
    };
    let stop = move |_| {
        if let Some(run_id) = stoppable.get_untracked() {
            // The run stops at its next checkpoint, seconds away: say so at once.
            studio.state.update(|state| state.stop_requested(run_id));
            studio.send(ClientMessage::StopRun { run_id });
        }
    };
    let apply = move |preset: Preset| {
        let applied = form.with_untracked(|f| preset.applied(f));
        form.set(applied);
        rewritten.update(|n| *n += 1);
    };

    // Number boxes are left uncontrolled while typing: writing the value back while someone types "0."
    // would rewrite it under the cursor. Only a preset writes into them. `change` is heard as well as
    // `input` because clearing a box (by a script or autofill) fires only `change`.
    let number = move |spec: NumberBox| {
        let NumberBox { id, field, label, hint, attrs: (min, max, step), text } = spec;
        let current = move || form.with_untracked(|f| text(&mut f.clone()).clone());
        let read = move |ev: leptos::ev::Event| {
            let value = event_target_value(&ev);
            if form.with_untracked(|f| *text(&mut f.clone()) != value) {
                form.update(|f| *text(f) = value);
            }
        };
        let optional = matches!(field, "grad_clip_norm" | "early_stopping_patience");
        view! {
            <div class="field" class:invalid=move || checked.with(|c| problem_for(c, field).is_some())>
                <label for=id>{label}</label>
                <input
                    id=id
                    name=field
                    type="number"
                    min=min
                    max=max
                    step=step
                    value=current()
                    prop:value=move || {
                        rewritten.track();
                        current()
                    }
                    placeholder=optional.then_some(if field == "grad_clip_norm" { "none" } else { "never" })
                    title=hint
                    aria-describedby=format!("{id}-error")
                    aria-invalid=move || checked.with(|c| problem_for(c, field).is_some()).to_string()
                    on:input=read
                    on:change=read
                />
                <FieldError checked=checked field=field id=id/>
            </div>
        }
    };
    let checkbox = move |id: &'static str,
                         field: &'static str,
                         label: &'static str,
                         hint: &'static str,
                         flag: fn(&mut TrainForm) -> &mut bool| {
        view! {
            <div class="field check" title=hint>
                <input
                    id=id
                    name=field
                    type="checkbox"
                    prop:checked=move || form.with(|f| *flag(&mut f.clone()))
                    on:change=move |ev| {
                        let on = event_target_checked(&ev);
                        form.update(|f| *flag(f) = on);
                    }
                />
                <label for=id>{label}</label>
                <FieldError checked=checked field=field id=id/>
            </div>
        }
    };

    view! {
        <section class="card" id="train-card" aria-labelledby="train-title">
            <h2 id="train-title">"New run"</h2>
            <div class="presets" role="group" aria-label="Presets">
                {Preset::ALL.into_iter().map(|preset| view! {
                    <button
                        type="button"
                        class="preset"
                        data-preset=preset.key()
                        title=preset.description()
                        aria-pressed=move || {
                            form.with(|f| preset.applied(f) == *f).to_string()
                        }
                        on:click=move |_| apply(preset)
                    >
                        {preset.title()}
                    </button>
                }).collect_view()}
            </div>
            <form id="train-form" novalidate on:submit=start>
                <div class="field wide" class:invalid=move || checked.with(|c| problem_for(c, "dataset").is_some())>
                    <label for="dataset">"Dataset"</label>
                    <select
                        id="dataset"
                        name="dataset"
                        aria-describedby="dataset-error"
                        on:change=move |ev| {
                            let value = event_target_value(&ev);
                            form.update(|f| f.dataset = value);
                        }
                    >
                        {move || {
                            let list = datasets.get();
                            let offers_download = !list.iter().any(|d| d.name == DOWNLOADABLE_DATASET);
                            let listed = list
                                .into_iter()
                                .map(|dataset| {
                                    let name = dataset.name.clone();
                                    let selected = name.clone();
                                    let unreadable = dataset.error.is_some();
                                    view! {
                                        <option
                                            value=name
                                            disabled=unreadable
                                            prop:selected=move || form.with(|f| f.dataset == selected)
                                        >
                                            {format::dataset_option(&dataset)}
                                        </option>
                                    }
                                })
                                .collect_view();
                            let download = offers_download.then(|| view! {
                                <option
                                    value=DOWNLOADABLE_DATASET
                                    prop:selected=move || form.with(|f| f.dataset == DOWNLOADABLE_DATASET)
                                >
                                    "cifar10 — downloaded on first use (170 MB)"
                                </option>
                            });
                            (listed, download)
                        }}
                    </select>
                    <FieldError checked=checked field="dataset" id="dataset"/>
                </div>
                <div class="field-grid">
                    {number(NumberBox { id: "epochs", field: "epochs", label: "Epochs", hint: "1 to 1000", attrs: ("1", Some("1000"), "1"), text: |f| &mut f.epochs })}
                    {number(NumberBox { id: "batch-size", field: "batch_size", label: "Batch size", hint: "1 to 4096", attrs: ("1", Some("4096"), "1"), text: |f| &mut f.batch_size })}
                    {number(NumberBox { id: "lr", field: "lr", label: "Learning rate", hint: "above 0, at most 10", attrs: ("0", Some("10"), "any"), text: |f| &mut f.lr })}
                    {number(NumberBox { id: "momentum", field: "momentum", label: "Momentum", hint: "0 to just below 1", attrs: ("0", Some("0.999"), "any"), text: |f| &mut f.momentum })}
                    {number(NumberBox { id: "seed", field: "seed", label: "Seed", hint: "any whole number", attrs: ("0", None, "1"), text: |f| &mut f.seed })}
                    {number(NumberBox { id: "input-size", field: "input_size", label: "Input size (px)", hint: "32 to 224", attrs: ("32", Some("224"), "1"), text: |f| &mut f.input_size })}
                    {choice(form, checked, "normalization", "normalization", "Normalization",
                        &[(Normalization::Imagenet, "ImageNet mean/std"), (Normalization::Half, "0.5 / 0.5")],
                        |f| f.normalization, |f, v| f.normalization = v)}
                    <div class="field weights-field" class:invalid=move || checked.with(|c| problem_for(c, "weights").is_some())>
                        <label for="weights">"Starting weights"</label>
                        <select
                            id="weights"
                            name="weights"
                            aria-describedby="weights-error"
                            on:change=move |ev| {
                                let value = event_target_value(&ev);
                                form.update(|f| f.weights = value);
                            }
                        >
                            {move || {
                                weights
                                    .get()
                                    .into_iter()
                                    .map(|entry| {
                                        let selected = entry.name.clone();
                                        view! {
                                            <option
                                                value=entry.name.clone()
                                                prop:selected=move || form.with(|f| f.weights == selected)
                                            >
                                                {format::weights_option(&entry)}
                                            </option>
                                        }
                                    })
                                    .collect_view()
                            }}
                            <option
                                value=defaults::WEIGHTS_NONE
                                prop:selected=move || form.with(|f| f.weights == defaults::WEIGHTS_NONE)
                            >
                                "none (random)"
                            </option>
                        </select>
                        {move || {
                            let chosen = form.with(|f| f.weights.clone());
                            let hint = weights.with(|list| list.iter().find(|w| w.name == chosen).and_then(format::weights_hint));
                            hint.map(|hint| view! { <p class="hint" id="weights-hint">{hint}</p> })
                        }}
                        <WeightsUpload weights=weights form=form/>
                        <FieldError checked=checked field="weights" id="weights"/>
                    </div>
                </div>
                <details id="advanced" class="advanced">
                    <summary>
                        "Advanced settings"
                        {move || {
                            let count = checked.with(|c| ADVANCED_FIELDS.iter().filter(|f| problem_for(c, f).is_some()).count());
                            (count > 0).then(|| view! {
                                <span class="problem-count">{format!("{count} to fix")}</span>
                            })
                        }}
                    </summary>
                    <fieldset class="field-grid">
                        <legend>"Which layers train"</legend>
                        {choice(form, checked, "mode", "mode", "Fine-tune mode",
                            &[(FineTuneMode::Full, "All layers"), (FineTuneMode::Frozen, "Frozen backbone (linear probe)"), (FineTuneMode::TwoPhase, "Two-phase: frozen, then all")],
                            |f| f.mode, |f, v| f.mode = v)}
                        {number(NumberBox { id: "frozen-epochs", field: "frozen_epochs", label: "Frozen epochs", hint: "two-phase: epochs before the backbone trains", attrs: ("1", None, "1"), text: |f| &mut f.frozen_epochs })}
                        {number(NumberBox { id: "backbone-lr-scale", field: "backbone_lr_scale", label: "Backbone lr scale", hint: "two-phase: backbone lr as a fraction of lr, above 0, at most 1", attrs: ("0", Some("1"), "any"), text: |f| &mut f.backbone_lr_scale })}
                    </fieldset>
                    <fieldset class="field-grid">
                        <legend>"Optimiser and schedule"</legend>
                        {choice(form, checked, "optimizer", "optimizer", "Optimizer",
                            &[(OptimizerKind::Sgd, "SGD"), (OptimizerKind::Adamw, "AdamW")],
                            |f| f.optimizer, |f, v| f.optimizer = v)}
                        {number(NumberBox { id: "weight-decay", field: "weight_decay", label: "Weight decay", hint: "0 to 1", attrs: ("0", Some("1"), "any"), text: |f| &mut f.weight_decay })}
                        {choice(form, checked, "schedule", "schedule", "LR schedule",
                            &[(Schedule::Constant, "Constant"), (Schedule::Step, "Step"), (Schedule::Cosine, "Cosine"), (Schedule::OneCycle, "One-cycle")],
                            |f| f.schedule, |f, v| f.schedule = v)}
                        {number(NumberBox { id: "warmup-epochs", field: "warmup_epochs", label: "Warm-up epochs", hint: "fewer than epochs", attrs: ("0", None, "1"), text: |f| &mut f.warmup_epochs })}
                        {number(NumberBox { id: "step-size", field: "step_size", label: "Step size (epochs)", hint: "step schedule: epochs between drops", attrs: ("1", None, "1"), text: |f| &mut f.step_size })}
                        {number(NumberBox { id: "gamma", field: "gamma", label: "Gamma", hint: "step schedule: factor of each drop, above 0, at most 1", attrs: ("0", Some("1"), "any"), text: |f| &mut f.gamma })}
                        {checkbox("nesterov", "nesterov", "Nesterov momentum", "SGD only", |f| &mut f.nesterov)}
                    </fieldset>
                    <fieldset class="field-grid">
                        <legend>"Regularisation and data"</legend>
                        {number(NumberBox { id: "label-smoothing", field: "label_smoothing", label: "Label smoothing", hint: "0 to just below 1", attrs: ("0", Some("0.999"), "any"), text: |f| &mut f.label_smoothing })}
                        {number(NumberBox { id: "grad-clip-norm", field: "grad_clip_norm", label: "Gradient clip norm", hint: "empty for no clipping", attrs: ("0", None, "any"), text: |f| &mut f.grad_clip_norm })}
                        {number(NumberBox { id: "early-stopping-patience", field: "early_stopping_patience", label: "Early-stopping patience", hint: "epochs without a better test accuracy; empty to never stop early", attrs: ("1", None, "1"), text: |f| &mut f.early_stopping_patience })}
                        {number(NumberBox { id: "validation-fraction", field: "validation_fraction", label: "Validation fraction", hint: "class folders without test/: share held out, between 0 and 1", attrs: ("0", Some("1"), "any"), text: |f| &mut f.validation_fraction })}
                        {checkbox("random-crop", "random_crop", "Random crop", "pad and crop at random", |f| &mut f.random_crop)}
                        {checkbox("horizontal-flip", "horizontal_flip", "Horizontal flip", "flip half the images", |f| &mut f.horizontal_flip)}
                    </fieldset>
                    <fieldset class="field-grid">
                        <legend>"GPU"</legend>
                        {checkbox("mixed-precision", "mixed_precision", "Mixed precision", "CUDA only: bfloat16 autocast", |f| &mut f.mixed_precision)}
                        {checkbox("cudnn-benchmark", "cudnn_benchmark", "cuDNN benchmark", "CUDA only", |f| &mut f.cudnn_benchmark)}
                        {checkbox("channels-last", "channels_last", "Channels-last", "CUDA only: NHWC layout", |f| &mut f.channels_last)}
                    </fieldset>
                </details>
                // Rules on settings this form does not show still block a start, so their messages
                // must be visible somewhere.
                {move || checked.with(|c| {
                    c.as_ref().err().map(|problems| {
                        problems
                            .iter()
                            .filter(|p| !FORM_FIELDS.contains(&p.field))
                            .map(|p| view! { <p class="field-error other-error">{p.message.clone()}</p> })
                            .collect_view()
                    })
                })}
                <p id="form-error" class="form-error" role="alert">
                    {move || studio.state.with(|s| s.error.clone())}
                </p>
                <p class="load-error">{move || load_error.get()}</p>
                <div class="actions">
                    <button
                        id="start"
                        type="submit"
                        class="primary"
                        disabled=move || checked.with(Result::is_err) || !studio.connected.get()
                    >
                        "Start training"
                    </button>
                    <button
                        id="stop"
                        type="button"
                        class="danger"
                        disabled=move || stoppable.get().is_none() || stopping() || !studio.connected.get()
                        on:click=stop
                    >
                        {move || match stoppable.get() {
                            Some(_) if stopping() => "Stopping…".to_string(),
                            Some(id) => format!("Stop run #{id}"),
                            None => "Stop".to_string(),
                        }}
                    </button>
                </div>
                <crate::health::LeakWarning/>
            </form>
        </section>
    }
}

/// A select of enum values, written as their JSON names.
#[allow(clippy::too_many_arguments)]
fn choice<T>(
    form: RwSignal<TrainForm>,
    checked: Checked,
    id: &'static str,
    field: &'static str,
    label: &'static str,
    options: &'static [(T, &'static str)],
    get: fn(&TrainForm) -> T,
    set: fn(&mut TrainForm, T),
) -> impl IntoView
where
    T: Copy + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    view! {
        <div class="field" class:invalid=move || checked.with(|c| problem_for(c, field).is_some())>
            <label for=id>{label}</label>
            <select
                id=id
                name=field
                aria-describedby=format!("{id}-error")
                on:change=move |ev| {
                    if let Some(value) = format::parse_enum::<T>(&event_target_value(&ev)) {
                        form.update(|f| set(f, value));
                    }
                }
            >
                {options.iter().map(|&(value, text)| view! {
                    <option value=format::enum_value(value) prop:selected=move || form.with(|f| get(f) == value)>
                        {text}
                    </option>
                }).collect_view()}
            </select>
            <FieldError checked=checked field=field id=id/>
        </div>
    }
}

/// The message under a form field, while the field breaks a rule.
#[component]
fn FieldError(checked: Checked, field: &'static str, id: &'static str) -> impl IntoView {
    move || {
        checked.with(|c| problem_for(c, field).map(str::to_string)).map(|message| {
            view! { <p class="field-error" id=format!("{id}-error")>{message}</p> }
        })
    }
}

/// "Upload weights…": sends a .pth, .pt or .safetensors file to the weights folder; the server keeps it
/// only if it is a ResNet-18 state dict, and then it is listed and chosen. A refusal shows the server's
/// sentence.
#[component]
fn WeightsUpload(weights: RwSignal<Vec<WeightsEntry>>, form: RwSignal<TrainForm>) -> impl IntoView {
    let progress = RwSignal::new(None::<(f64, f64)>);
    let error = RwSignal::new(None::<String>);
    let on_file = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let Some(file) = input.files().and_then(|files| files.get(0)) else { return };
        // The same file can be picked again after a refusal.
        input.set_value("");
        error.set(None);
        progress.set(Some((0.0, file.size())));
        spawn_local(async move {
            let answer =
                api::upload_weights(&file.name(), &file, move |sent, total| progress.set(Some((sent, total)))).await;
            progress.set(None);
            match answer {
                Ok(entry) => {
                    let name = entry.name.clone();
                    weights.update(|list| match list.iter_mut().find(|w| w.name == entry.name) {
                        Some(listed) => *listed = entry,
                        None => {
                            list.push(entry);
                            // ImageNet's stays first; files follow by name.
                            list[1..].sort_by(|a, b| a.name.cmp(&b.name));
                        }
                    });
                    form.update(|f| f.weights = name);
                }
                Err(why) => error.set(Some(why.to_string())),
            }
        });
    };
    view! {
        <label class="button-link small weights-upload" for="weights-file" title="A ResNet-18 state dict: .pth, .pt or .safetensors">
            "Upload weights…"
        </label>
        <input
            id="weights-file"
            class="visually-hidden"
            type="file"
            accept=".pth,.pt,.safetensors"
            disabled=move || progress.with(Option::is_some)
            on:change=on_file
        />
        <span id="weights-upload-progress" class="progress-text" role="status">
            {move || progress.get().map(|(sent, total)| {
                if sent >= total { "Checking the file…".to_string() } else { format!("Uploading {}", format::bytes_progress(sent, total)) }
            })}
        </span>
        <p id="weights-upload-error" class="field-error" role="alert">{move || error.get()}</p>
    }
}

/// Adds a dataset: a zip of class folders, sent with a progress bar.
#[component]
pub fn DatasetUpload() -> impl IntoView {
    let studio = studio();
    let name = RwSignal::new(String::new());
    let zip = StoredValue::new_local(None::<web_sys::File>);
    let has_zip = RwSignal::new(false);
    let progress = RwSignal::new(None::<(f64, f64)>);
    let error = RwSignal::new(None::<String>);
    let done = RwSignal::new(None::<String>);
    let sending = RwSignal::new(false);
    let name_problem =
        Memo::new(move |_| name.with(|n| shared::check_file_name(n.trim()).err().map(|why| format!("name {why}"))));

    let on_file = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let file = input.files().and_then(|files| files.get(0));
        if let Some(file) = &file {
            if name.with_untracked(String::is_empty) {
                let file_name = file.name();
                name.set(file_name.strip_suffix(".zip").unwrap_or(&file_name).to_string());
            }
        }
        has_zip.set(file.is_some());
        zip.set_value(file);
        error.set(None);
        done.set(None);
    };
    let upload = move |_| {
        let Some(file) = zip.get_value() else { return };
        if name_problem.get_untracked().is_some() {
            return;
        }
        let dataset = name.get_untracked().trim().to_string();
        sending.set(true);
        error.set(None);
        done.set(None);
        progress.set(Some((0.0, file.size())));
        spawn_local(async move {
            let answer =
                api::upload_dataset(&dataset, &file, move |sent, total| progress.set(Some((sent, total)))).await;
            sending.set(false);
            match answer {
                Ok(info) => {
                    done.set(Some(format!("Added {}", format::dataset_option(&info))));
                    let added = info.name.clone();
                    studio.datasets.update(|list| {
                        list.retain(|d| d.name != info.name);
                        list.push(info);
                        list.sort_by(|a, b| a.name.cmp(&b.name));
                    });
                    studio.uploaded_dataset.set(Some(added));
                }
                Err(why) => {
                    progress.set(None);
                    error.set(Some(why.to_string()));
                }
            }
        });
    };

    view! {
        <section class="card upload" id="upload-card" aria-labelledby="upload-title">
            <h2 id="upload-title">"Add a dataset"</h2>
            <p class="hint">"A .zip of class folders: " <code>"train/<class>/…"</code> " and " <code>"test/<class>/…"</code> ", or " <code>"<class>/…"</code> " only."</p>
            <div class="upload-grid">
                <div class="field">
                    <label for="dataset-zip">"Zip file"</label>
                    <input id="dataset-zip" type="file" accept=".zip,application/zip" on:change=on_file/>
                </div>
                <div class="field" class:invalid=move || has_zip.get() && name_problem.with(Option::is_some)>
                    <label for="dataset-name">"Dataset name"</label>
                    <input
                        id="dataset-name"
                        type="text"
                        autocomplete="off"
                        spellcheck="false"
                        prop:value=move || name.get()
                        on:input=move |ev| name.set(event_target_value(&ev))
                    />
                    {move || (has_zip.get()).then(|| name_problem.get()).flatten().map(|why| view! {
                        <p class="field-error" id="dataset-name-error">{why}</p>
                    })}
                </div>
            </div>
            <div class="actions">
                <button
                    id="upload-dataset"
                    type="button"
                    disabled=move || !has_zip.get() || sending.get() || name_problem.with(Option::is_some)
                    on:click=upload
                >
                    {move || if sending.get() { "Uploading…" } else { "Upload dataset" }}
                </button>
            </div>
            <div class="upload-status" class:hidden=move || progress.with(Option::is_none)>
                <progress
                    id="upload-progress"
                    aria-label="Upload progress"
                    max=move || progress.with(|p| p.map_or(1.0, |p| p.1.max(1.0)))
                    value=move || progress.with(|p| p.map_or(0.0, |p| p.0))
                ></progress>
                <span class="progress-text">
                    {move || progress.get().map(|(sent, total)| {
                        if sending.get() && sent >= total { "Unpacking…".to_string() } else { format::bytes_progress(sent, total) }
                    })}
                </span>
            </div>
            <p class="ok" role="status">{move || done.get()}</p>
            <p id="upload-error" class="error" role="alert">{move || error.get()}</p>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_advanced_section_starts_at_mode_and_ends_with_the_form() {
        assert_eq!(ADVANCED_FIELDS.first(), Some(&"mode"));
        assert_eq!(ADVANCED_FIELDS.len(), 19);
        assert_eq!(ADVANCED_FIELDS.last(), FORM_FIELDS.last());
    }
}
