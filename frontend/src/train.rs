//! The "New run" card: presets, the basic and advanced settings, Start and Stop; and the card
//! that adds a dataset from a zip.

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::fields::Section;
use shared::{defaults, ClientMessage, DatasetFormat, Surroundings, WeightsEntry};

use crate::form::{problem_for, Preset, TrainForm};
use crate::queue::ExecutorKind;
use crate::settings::{fields_of, Checked, FieldError, FormSignals, SettingField, SettingsSection, StartBlockers};
use crate::{api, format, saved, studio};

/// The dataset the server downloads by itself when it is not in the data folder.
const DOWNLOADABLE_DATASET: &str = "cifar10";

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
    let server_gpu = RwSignal::new(false);
    // Some settings apply only on a GPU server, or to a dataset without a test split.
    let around = Memo::new(move |_| {
        let held_out_test = form.with(|f| {
            datasets
                .with(|list| list.iter().any(|d| d.name == f.text("dataset") && d.format == DatasetFormat::ImageFolder))
        });
        Surroundings { gpu: server_gpu.get(), held_out_test }
    });
    let signals = FormSignals { form, checked, rewritten, around };
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
            let (found_datasets, found_weights, health) =
                futures::join!(api::datasets(), api::weights(), api::server_health());
            if let Ok(health) = health {
                server_gpu.set(health.device.starts_with("cuda"));
                studio.slots.set(health.executor.slots);
                studio.executor.set(ExecutorKind::named(&health.executor.kind));
            }
            let mut problems = Vec::new();
            match found_datasets {
                Ok(list) => {
                    datasets.set(list);
                    datasets_listed.set(true);
                }
                Err(error) => problems.push(list_error("Datasets", error)),
            }
            match found_weights {
                Ok(list) => {
                    // Weights that cannot be had (ImageNet's without network) give way to ones that can.
                    let mut usable = form.get_untracked();
                    if usable.with_usable_weights(&list) {
                        form.set(usable);
                        rewritten.update(|n| *n += 1);
                    }
                    weights.set(list);
                }
                Err(error) => problems.push(list_error("Weight files", error)),
            }
            problems.dedup();
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
                let chosen = form.text("dataset").to_string();
                if let Some(name) = uploaded.filter(|name| list.iter().any(|d| &d.name == name)) {
                    form.set("dataset", name);
                } else if chosen.is_empty()
                    || !list.iter().any(|d| d.name == chosen && d.error.is_none()) && chosen != DOWNLOADABLE_DATASET
                {
                    let readable = list.iter().find(|d| d.error.is_none());
                    form.set("dataset", readable.map_or(DOWNLOADABLE_DATASET.to_string(), |d| d.name.clone()));
                }
            })
        });
    });

    // The Dataset health card and the leak warning follow the dataset chosen here.
    Effect::new(move |_| {
        let chosen = form.with(|f| (!f.text("dataset").is_empty()).then(|| f.text("dataset").to_string()));
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
    view! {
        <section class="card" id="train-card" aria-labelledby="train-title">
            <h2 id="train-title">"New run"</h2>
            <Presets signals=signals/>
            <form id="train-form" novalidate on:submit=start>
                <DatasetSelect signals=signals/>
                <div class="field-grid">
                    {fields_of(Section::Basic).map(|field| view! {
                        <SettingField field=field signals=signals/>
                        {(field.name == "lr").then(|| view! { <crate::lr_finder::LrFinder signals=signals/> })}
                    }).collect_view()}
                    <WeightsSelect signals=signals weights=weights/>
                </div>
                <AdvancedSettings signals=signals/>
                // Rules on settings this form does not show here (a GPU option on a CPU server) still block a
                // start, so their messages must be visible somewhere.
                {move || checked.with(|c| {
                    c.as_ref().err().map(|problems| {
                        problems
                            .iter()
                            .filter(|p| shared::fields::field(p.field).is_none_or(|f| !signals.applies(f)))
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
                    <crate::layout::StopButton id="stop"/>
                    <crate::sweeps::SweepButton id="sweep-form" base=Signal::derive(move || checked.get().ok())/>
                    <StartBlockers checked=checked connected=studio.connected/>
                </div>
                <crate::health::LeakWarning/>
            </form>
        </section>
    }
}

/// The preset buttons, each with what it does written under its name.
#[component]
fn Presets(signals: FormSignals) -> impl IntoView {
    let FormSignals { form, rewritten, .. } = signals;
    let apply = move |preset: Preset| {
        let applied = form.with_untracked(|f| preset.applied(f));
        form.set(applied);
        rewritten.update(|n| *n += 1);
    };
    view! {
        <div class="presets" role="group" aria-label="Presets">
            {Preset::ALL.into_iter().map(|preset| view! {
                <button
                    type="button"
                    class="preset"
                    data-preset=preset.key()
                    aria-pressed=move || form.with(|f| preset.holds(f)).to_string()
                    on:click=move |_| apply(preset)
                >
                    <span class="preset-title">{preset.title()}</span>
                    <span class="preset-description">{preset.description()}</span>
                </button>
            }).collect_view()}
        </div>
    }
}

/// The dataset menu: every listed dataset, and CIFAR-10 to download when it is not in the data folder.
#[component]
fn DatasetSelect(signals: FormSignals) -> impl IntoView {
    let form = signals.form;
    let datasets = studio().datasets;
    let chosen_text = move || {
        let chosen = form.with(|f| f.text("dataset").to_string());
        datasets.with(|list| list.iter().find(|d| d.name == chosen).map(format::dataset_option))
    };
    name_menu(
        signals,
        "dataset",
        "field wide",
        chosen_text,
        move || {
            let list = datasets.get();
            let offers_download = !list.iter().any(|d| d.name == DOWNLOADABLE_DATASET);
            let listed = list
                .into_iter()
                .map(|dataset| {
                    let text = format::dataset_option(&dataset);
                    name_option(form, "dataset", dataset.name, text, dataset.error.is_some())
                })
                .collect_view();
            let download = offers_download.then(|| {
                let text = "cifar10 — 170 MB download".to_string();
                name_option(form, "dataset", DOWNLOADABLE_DATASET.to_string(), text, false)
            });
            (listed, download)
        },
        (),
    )
}

/// The starting weights menu, the hint for weights still to download, and the weights upload.
#[component]
fn WeightsSelect(signals: FormSignals, weights: RwSignal<Vec<WeightsEntry>>) -> impl IntoView {
    let form = signals.form;
    let options = move || {
        let listed = weights
            .get()
            .into_iter()
            .map(|entry| {
                let text = format::weights_option(&entry);
                name_option(form, "weights", entry.name, text, false)
            })
            .collect_view();
        let none = shared::fields::weights_label(defaults::WEIGHTS_NONE).to_string();
        (listed, name_option(form, "weights", defaults::WEIGHTS_NONE.to_string(), none, false))
    };
    let chosen = move || {
        let chosen = form.with(|f| f.text("weights").to_string());
        weights.with(|list| list.iter().find(|w| w.name == chosen).cloned())
    };
    let offline = move || weights.with(|list| list.iter().find_map(|entry| entry.unavailable.clone()));
    let under = view! {
        {move || {
            let hint = chosen().and_then(|entry| format::weights_hint(&entry));
            hint.map(|hint| view! { <p class="hint" id="weights-hint">{hint}</p> })
        }}
        {move || offline().map(|why| view! { <p class="hint warning" id="weights-offline" role="status">{why}</p> })}
        <WeightsUpload weights=weights form=form/>
    };
    let chosen_text = move || chosen().map(|entry| format::weights_option(&entry));
    name_menu(signals, "weights", "field weights-field", chosen_text, options, under)
}

/// The collapsed Advanced part: a fieldset per section with the settings that apply, and on its summary
/// how many of them need a change.
#[component]
fn AdvancedSettings(signals: FormSignals) -> impl IntoView {
    let checked = signals.checked;
    view! {
        <details id="advanced" class="advanced">
            <summary>
                "Advanced settings"
                {move || {
                    let count = checked.with(|c| {
                        shared::FIELDS.iter().filter(|f| f.section.is_advanced() && problem_for(c, f.name).is_some()).count()
                    });
                    (count > 0).then(|| view! {
                        <span class="problem-count">{format!("{count} to fix")}</span>
                    })
                }}
            </summary>
            {Section::ALL.into_iter().filter(|section| section.is_advanced()).map(|section| view! {
                <SettingsSection section=section signals=signals/>
            }).collect_view()}
        </details>
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
                    form.update(|f| f.set("weights", name));
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
    // Whether the person typed the name: a name taken from a zip's file name follows the next zip chosen.
    let name_typed = RwSignal::new(false);
    let zip = StoredValue::new_local(None::<web_sys::File>);
    let has_zip = RwSignal::new(false);
    let progress = RwSignal::new(None::<(f64, f64)>);
    let error = RwSignal::new(None::<String>);
    let done = RwSignal::new(None::<String>);
    let sending = RwSignal::new(false);
    let name_problem = Memo::new(move |_| {
        name.with(|n| shared::check_dataset_name(n.trim()).err().map(|why| format!("Dataset name {why}")))
    });

    let on_file = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let file = input.files().and_then(|files| files.get(0));
        if let Some(file) = &file {
            if !name_typed.get_untracked() || name.with_untracked(|n| n.trim().is_empty()) {
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
                    name.set(String::new());
                    name_typed.set(false);
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
                        on:input=move |ev| {
                            name.set(event_target_value(&ev));
                            name_typed.set(true);
                        }
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

/// The menu of a name setting (dataset, weights): its label, the menu with `options` (titled with
/// `chosen_text`, the chosen option's text), what goes `under` it, and its message.
fn name_menu(
    signals: FormSignals,
    name: &'static str,
    class: &'static str,
    chosen_text: impl Fn() -> Option<String> + Send + Sync + 'static,
    options: impl IntoView + 'static,
    under: impl IntoView + 'static,
) -> impl IntoView {
    let FormSignals { form, checked, .. } = signals;
    view! {
        <div class=class class:invalid=move || checked.with(|c| problem_for(c, name).is_some())>
            <label for=name>{label(name)}</label>
            // A long name can be cut by the menu's width: its title holds the chosen option whole.
            <select
                id=name
                name=name
                title=chosen_text
                aria-describedby=format!("{name}-error")
                on:change=move |ev| {
                    let value = event_target_value(&ev);
                    form.update(|f| f.set(name, value));
                }
            >
                {options}
            </select>
            {under}
            <FieldError checked=checked field=name id=name.to_string()/>
        </div>
    }
}

/// An option of the dataset or weights menu: `value` of the setting `name`, shown as `text`, selected while
/// the form holds it.
fn name_option(
    form: RwSignal<TrainForm>,
    name: &'static str,
    value: String,
    text: String,
    disabled: bool,
) -> impl IntoView {
    let selected = value.clone();
    view! {
        <option value=value disabled=disabled prop:selected=move || form.with(|f| f.text(name) == selected)>
            {text}
        </option>
    }
}

/// The label of the setting named `name`, as the field table gives it.
fn label(name: &str) -> &'static str {
    shared::fields::field(name).map_or("", |field| field.label)
}

/// The sentence for a list the form could not load: the server's refusal as it said it, or, when the
/// server could not be reached, that the lists come again with the connection.
fn list_error(what: &str, error: api::ApiError) -> String {
    match error {
        api::ApiError::Network(_) => {
            "The server could not be reached; it will be retried when the connection is back.".to_string()
        }
        other => format!("{what} could not be listed: {other}"),
    }
}
