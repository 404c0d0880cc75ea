//! Transfer Studio's page: train an image classifier, watch it learn, and try it on a picture.
//!
//! The page is client-side rendered Leptos, laid out as in the Leptos examples: every component
//! lives here and `main.rs` only mounts [`App`]. The pieces it builds on are plain Rust:
//! - [`state`]: the page's copy of the server's state and [`state::StudioState::apply`], which folds
//!   each WebSocket message into it;
//! - [`form`]: the training form's fields, checked with the same rules the server applies;
//! - [`chart`]: the geometry of the accuracy and loss chart;
//! - [`format`]: how numbers and runs are written;
//! - [`ws`]: the WebSocket, reopened with backoff whenever it drops;
//! - [`api`]: the HTTP calls (datasets, weights, classify).
//!
//! Components share one [`Studio`] handle through context: a few signals, cheap to copy.

pub mod api;
pub mod chart;
pub mod form;
pub mod format;
pub mod state;
pub mod ws;

use futures::channel::mpsc::UnboundedSender;
use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::{defaults, ClientMessage, DatasetInfo, EpochMetrics, Normalization, Prediction, Run};
use wasm_bindgen::JsCast;

use crate::form::{problem_for, TrainForm};
use crate::state::StudioState;
use crate::ws::SocketEvent;

/// The dataset the server downloads by itself when it is not in the data folder.
const DOWNLOADABLE_DATASET: &str = "cifar10";

/// The configuration fields the form shows, each with its message under it.
const FORM_FIELDS: [&str; 9] =
    ["dataset", "epochs", "batch_size", "lr", "momentum", "seed", "input_size", "normalization", "weights"];

/// What every component of the page shares.
#[derive(Clone, Copy)]
pub struct Studio {
    /// What the server has told this page.
    pub state: RwSignal<StudioState>,
    /// True while the WebSocket is open.
    pub connected: RwSignal<bool>,
    /// The run a person picked in the list; `None` follows the newest.
    pub chosen_run: RwSignal<Option<u64>>,
    /// Messages for the server, sent by the WebSocket task.
    outbox: StoredValue<UnboundedSender<ClientMessage>>,
}

impl Studio {
    /// Sends `message` to the server over the WebSocket.
    pub fn send(&self, message: ClientMessage) {
        self.outbox.with_value(|outbox| {
            // Fails only when the socket task has ended, which it never does while the page lives.
            let _ = outbox.unbounded_send(message);
        });
    }
}

/// The whole page.
#[component]
pub fn App() -> impl IntoView {
    let state = RwSignal::new(StudioState::default());
    let connected = RwSignal::new(false);
    let outbox = ws::connect(ws::page_socket_url(), move |event| match event {
        SocketEvent::Connected => connected.set(true),
        SocketEvent::Disconnected => connected.set(false),
        SocketEvent::Message(message) => state.update(|state| state.apply(*message)),
    });
    provide_context(Studio {
        state,
        connected,
        chosen_run: RwSignal::new(None),
        outbox: StoredValue::new(outbox),
    });

    view! {
        <header class="topbar">
            <div class="brand">
                <span class="logo" aria-hidden="true">"◆"</span>
                <h1>"Transfer Studio"</h1>
                <span class="tagline">"ResNet-18 image classifiers, trained from the browser"</span>
            </div>
            <ConnectionState/>
        </header>
        <main class="layout">
            <div class="column side">
                <TrainPanel/>
                <ClassifyPanel/>
            </div>
            <div class="column main">
                <RunList/>
                <RunDetail/>
            </div>
        </main>
    }
}

fn studio() -> Studio {
    expect_context::<Studio>()
}

/// Whether the live connection is open.
#[component]
fn ConnectionState() -> impl IntoView {
    let connected = studio().connected;
    view! {
        <span
            id="connection"
            role="status"
            class=move || if connected.get() { "connection connected" } else { "connection disconnected" }
        >
            {move || if connected.get() { "Connected" } else { "Disconnected — reconnecting…" }}
        </span>
    }
}

/// The training form: dataset, hyper-parameters, Start and Stop.
#[component]
fn TrainPanel() -> impl IntoView {
    let studio = studio();
    let form = RwSignal::new(TrainForm::default());
    let datasets = RwSignal::new(Vec::<DatasetInfo>::new());
    let weights = RwSignal::new(Vec::<String>::new());
    let load_error = RwSignal::new(None::<String>);
    let checked = Memo::new(move |_| form.with(TrainForm::to_config));

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
                    form.update(|form| {
                        if !list.iter().any(|d| d.name == form.dataset) && form.dataset != DOWNLOADABLE_DATASET
                            || form.dataset.is_empty()
                        {
                            form.dataset = list
                                .first()
                                .map_or(DOWNLOADABLE_DATASET.to_string(), |d| d.name.clone());
                        }
                    });
                    datasets.set(list);
                }
                Err(error) => problems.push(format!("Datasets could not be listed: {error}")),
            }
            match found_weights {
                Ok(list) => {
                    form.update(|form| {
                        if form.weights != defaults::WEIGHTS_NONE && !list.contains(&form.weights) {
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
    let stop = move |_| {
        if let Some(run_id) = stoppable.get_untracked() {
            studio.send(ClientMessage::StopRun { run_id });
        }
    };

    // Number boxes are left uncontrolled: writing the value back while someone types "0." would
    // rewrite it under the cursor. `change` is heard as well as `input` because clearing a box
    // (by a script or autofill) fires only `change`.
    let number = move |id: &'static str,
                       field: &'static str,
                       label: &'static str,
                       hint: &'static str,
                       attrs: (&'static str, Option<&'static str>, &'static str),
                       text: fn(&mut TrainForm) -> &mut String| {
        let (min, max, step) = attrs;
        let initial = form.with_untracked(|f| {
            let mut f = f.clone();
            text(&mut f).clone()
        });
        let read = move |ev: leptos::ev::Event| {
            let value = event_target_value(&ev);
            if form.with_untracked(|f| *text(&mut f.clone()) != value) {
                form.update(|f| *text(f) = value);
            }
        };
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
                    value=initial
                    title=hint
                    on:input=read
                    on:change=read
                />
                <FieldError checked=checked field=field id=id/>
            </div>
        }
    };

    view! {
        <section class="card" id="train-card" aria-labelledby="train-title">
            <h2 id="train-title">"New run"</h2>
            <form id="train-form" novalidate on:submit=start>
                <div class="field wide" class:invalid=move || checked.with(|c| problem_for(c, "dataset").is_some())>
                    <label for="dataset">"Dataset"</label>
                    <select
                        id="dataset"
                        name="dataset"
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
                                    view! {
                                        <option
                                            value=name
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
                    {number("epochs", "epochs", "Epochs", "1 to 1000", ("1", Some("1000"), "1"), |f| &mut f.epochs)}
                    {number("batch-size", "batch_size", "Batch size", "1 to 4096", ("1", Some("4096"), "1"), |f| &mut f.batch_size)}
                    {number("lr", "lr", "Learning rate", "above 0, at most 10", ("0", Some("10"), "any"), |f| &mut f.lr)}
                    {number("momentum", "momentum", "Momentum", "0 to just below 1", ("0", Some("0.999"), "any"), |f| &mut f.momentum)}
                    {number("seed", "seed", "Seed", "any whole number", ("0", None, "1"), |f| &mut f.seed)}
                    {number("input-size", "input_size", "Input size (px)", "32 to 224", ("32", Some("224"), "1"), |f| &mut f.input_size)}
                    <div class="field">
                        <label for="normalization">"Normalization"</label>
                        <select
                            id="normalization"
                            name="normalization"
                            on:change=move |ev| {
                                let value = format::parse_normalization(&event_target_value(&ev));
                                form.update(|f| f.normalization = value);
                            }
                        >
                            <option
                                value="imagenet"
                                prop:selected=move || form.with(|f| f.normalization == Normalization::Imagenet)
                            >
                                "ImageNet mean/std"
                            </option>
                            <option
                                value="half"
                                prop:selected=move || form.with(|f| f.normalization == Normalization::Half)
                            >
                                "0.5 / 0.5"
                            </option>
                        </select>
                    </div>
                    <div class="field" class:invalid=move || checked.with(|c| problem_for(c, "weights").is_some())>
                        <label for="weights">"Starting weights"</label>
                        <select
                            id="weights"
                            name="weights"
                            on:change=move |ev| {
                                let value = event_target_value(&ev);
                                form.update(|f| f.weights = value);
                            }
                        >
                            <option
                                value=defaults::WEIGHTS_NONE
                                prop:selected=move || form.with(|f| f.weights == defaults::WEIGHTS_NONE)
                            >
                                "none (random)"
                            </option>
                            {move || {
                                weights
                                    .get()
                                    .into_iter()
                                    .map(|file| {
                                        let selected = file.clone();
                                        let value = file.clone();
                                        view! {
                                            <option
                                                value=value
                                                prop:selected=move || form.with(|f| f.weights == selected)
                                            >
                                                {file}
                                            </option>
                                        }
                                    })
                                    .collect_view()
                            }}
                        </select>
                        <FieldError checked=checked field="weights" id="weights"/>
                    </div>
                </div>
                // Rules on settings this form does not show (they keep their defaults) still block a
                // start, so their messages must be visible somewhere.
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
                        disabled=move || stoppable.get().is_none() || !studio.connected.get()
                        on:click=stop
                    >
                        {move || match stoppable.get() {
                            Some(id) => format!("Stop run #{id}"),
                            None => "Stop".to_string(),
                        }}
                    </button>
                </div>
            </form>
        </section>
    }
}

/// The message under a form field, while the field breaks a rule.
#[component]
fn FieldError(
    checked: Memo<Result<shared::TrainConfig, Vec<shared::ConfigError>>>,
    field: &'static str,
    id: &'static str,
) -> impl IntoView {
    move || {
        checked.with(|c| problem_for(c, field).map(str::to_string)).map(|message| {
            view! { <p class="field-error" id=format!("{id}-error")>{message}</p> }
        })
    }
}

/// Every run, newest first; clicking one shows it below.
#[component]
fn RunList() -> impl IntoView {
    let studio = studio();
    let runs = Memo::new(move |_| studio.state.with(|s| s.runs.clone()));
    let shown = Memo::new(move |_| studio.state.with(|s| s.shown_run(studio.chosen_run.get()).map(|r| r.id)));
    view! {
        <section class="card" aria-labelledby="runs-title">
            <h2 id="runs-title">"Runs"</h2>
            <Show when=move || runs.with(Vec::is_empty)>
                <p class="empty">"No runs yet. Pick a dataset and press Start training."</p>
            </Show>
            <ul id="runs" class="run-list">
                <For
                    each=move || runs.get()
                    key=|run| (run.id, run.status.as_str(), run.has_model, run.epochs.len())
                    children=move |run: Run| {
                        let id = run.id;
                        let status = run.status.as_str();
                        view! {
                            <li
                                class="run-item"
                                class:selected=move || shown.get() == Some(id)
                                data-run-id=id
                            >
                                <button
                                    type="button"
                                    class="run-button"
                                    aria-pressed=move || (shown.get() == Some(id)).to_string()
                                    on:click=move |_| studio.chosen_run.set(Some(id))
                                >
                                    <span class="run-id">{format!("#{id}")}</span>
                                    <span class="run-dataset">{run.config.dataset.clone()}</span>
                                    <span class="run-epochs">
                                        {format!("{}/{} epochs", run.epochs.len(), run.config.epochs)}
                                    </span>
                                    <span class=format!("badge status-{status}")>{status}</span>
                                </button>
                            </li>
                        }
                    }
                />
            </ul>
        </section>
    }
}

/// The shown run: settings, batch progress, chart and epoch table.
#[component]
fn RunDetail() -> impl IntoView {
    let studio = studio();
    let shown = Memo::new(move |_| studio.state.with(|s| s.shown_run(studio.chosen_run.get()).cloned()));
    let has_run = move || shown.with(Option::is_some);
    view! {
        <section class="card run-detail" aria-labelledby="detail-title">
            <Show
                when=has_run
                fallback=|| view! {
                    <h2 id="detail-title">"Training"</h2>
                    <p class="empty">"The selected run's progress, chart and epochs appear here."</p>
                }
            >
                <div class="detail-head">
                    <h2 id="detail-title">
                        {move || shown.with(|r| r.as_ref().map(|r| format!("Run #{} — {}", r.id, r.config.dataset)))}
                    </h2>
                    {move || shown.with(|r| r.as_ref().map(|r| {
                        let status = r.status.as_str();
                        view! { <span class=format!("badge status-{status}")>{status}</span> }
                    }))}
                </div>
                <p class="config-summary">{move || shown.with(|r| r.as_ref().map(format::config_summary))}</p>
                {move || shown.with(|r| r.as_ref().and_then(|r| r.error.clone())).map(|error| {
                    view! { <p class="run-error" role="alert">{error}</p> }
                })}
                <BatchProgressBar shown=shown/>
                <TrainingChart shown=shown/>
                <EpochTable shown=shown/>
            </Show>
        </section>
    }
}

/// Where the shown run is inside its current epoch.
#[component]
fn BatchProgressBar(shown: Memo<Option<Run>>) -> impl IntoView {
    let studio = studio();
    // (done, total, line, loss of the epoch so far)
    let bar = Memo::new(move |_| {
        shown.with(|run| {
            let run = run.as_ref()?;
            Some(studio.state.with(|s| match s.progress_of(run.id) {
                Some(p) => (
                    f64::from(p.batch),
                    f64::from(p.batches.max(1)),
                    format::progress_line(p),
                    Some(p.loss),
                ),
                None => {
                    let done = if run.status.is_finished() { 1.0 } else { 0.0 };
                    (done, 1.0, format::idle_line(run), None)
                }
            }))
        })
    });
    view! {
        <div class="progress-block">
            <div id="progress" class="progress">
                <progress
                    max=move || bar.with(|b| b.as_ref().map_or(1.0, |b| b.1))
                    value=move || bar.with(|b| b.as_ref().map_or(0.0, |b| b.0))
                ></progress>
                <span class="progress-text">{move || bar.with(|b| b.as_ref().map(|b| b.2.clone()))}</span>
            </div>
            <span class="progress-loss">
                {move || bar.with(|b| b.as_ref().and_then(|b| b.3)).map(|loss| format!("batch loss {loss:.4}"))}
            </span>
        </div>
    }
}

/// Accuracy and loss per epoch, train and test.
#[component]
fn TrainingChart(shown: Memo<Option<Run>>) -> impl IntoView {
    let data = Memo::new(move |_| {
        shown.with(|r| r.as_ref().map_or((Vec::new(), 1), |r| (r.epochs.clone(), r.config.epochs)))
    });
    view! {
        <svg
            id="chart"
            class="chart"
            viewBox=format!("0 0 {} {}", chart::WIDTH, chart::HEIGHT)
            role="img"
            aria-label="Accuracy and loss per epoch, for training and test data"
        >
            {move || {
                let (epochs, planned) = data.get();
                let panels = [chart::accuracy_panel(&epochs, planned), chart::loss_panel(&epochs, planned)];
                panels.into_iter().map(chart_panel).collect_view()
            }}
        </svg>
    }
}

fn chart_panel(panel: chart::Panel) -> impl IntoView {
    let frame = panel.frame;
    let class = panel.title.to_lowercase();
    let legend_y = frame.top - 14.0;
    let y_ticks = panel
        .y_ticks
        .iter()
        .map(|tick| {
            view! {
                <line class="grid" x1=frame.left x2=frame.right() y1=tick.at y2=tick.at></line>
                <text class="tick" x=frame.left - 6.0 y=tick.at + 4.0 text-anchor="end">{tick.label.clone()}</text>
            }
        })
        .collect_view();
    let x_ticks = panel
        .x_ticks
        .iter()
        .map(|tick| {
            view! {
                <text class="tick" x=tick.at y=frame.bottom() + 16.0 text-anchor="middle">{tick.label.clone()}</text>
            }
        })
        .collect_view();
    let markers = |points: &[(f64, f64)], series: &'static str| {
        points
            .iter()
            .map(|&(x, y)| view! { <circle class=format!("marker {series}") cx=x cy=y r="3"></circle> })
            .collect_view()
    };
    view! {
        <g class=format!("panel panel-{class}")>
            <text class="panel-title" x=frame.left y=legend_y>{panel.title}</text>
            <g class="legend">
                <line class="train" x1=frame.right() - 150.0 x2=frame.right() - 128.0 y1=legend_y - 4.0 y2=legend_y - 4.0></line>
                <text class="legend-label" x=frame.right() - 122.0 y=legend_y>"train"</text>
                <line class="test" x1=frame.right() - 70.0 x2=frame.right() - 48.0 y1=legend_y - 4.0 y2=legend_y - 4.0></line>
                <text class="legend-label" x=frame.right() - 42.0 y=legend_y>"test"</text>
            </g>
            {y_ticks}
            {x_ticks}
            <line class="axis" x1=frame.left x2=frame.left y1=frame.top y2=frame.bottom()></line>
            <line class="axis" x1=frame.left x2=frame.right() y1=frame.bottom() y2=frame.bottom()></line>
            <text class="axis-label" x=frame.left + frame.width / 2.0 y=frame.bottom() + 32.0 text-anchor="middle">"epoch"</text>
            <polyline class=format!("series train {class}-train") points=chart::polyline(&panel.train)></polyline>
            <polyline class=format!("series test {class}-test") points=chart::polyline(&panel.test)></polyline>
            {markers(&panel.train, "train")}
            {markers(&panel.test, "test")}
        </g>
    }
}

/// One row per finished epoch, filling in as epochs complete.
#[component]
fn EpochTable(shown: Memo<Option<Run>>) -> impl IntoView {
    let rows = Memo::new(move |_| {
        shown.with(|r| {
            r.as_ref().map_or_else(Vec::new, |r| r.epochs.iter().map(|m| (r.id, m.clone())).collect::<Vec<_>>())
        })
    });
    view! {
        <div class="table-wrap">
            <table id="epochs" class="epochs">
                <thead>
                    <tr>
                        <th scope="col">"Epoch"</th>
                        <th scope="col">"Train loss"</th>
                        <th scope="col">"Train acc %"</th>
                        <th scope="col">"Test loss"</th>
                        <th scope="col">"Test acc %"</th>
                        <th scope="col">"Seconds"</th>
                    </tr>
                </thead>
                <tbody>
                    <For
                        each=move || rows.get()
                        key=|(run_id, m)| (*run_id, m.epoch)
                        children=|(_, m): (u64, EpochMetrics)| {
                            view! {
                                <tr class="epoch-row">
                                    <td>{m.epoch}</td>
                                    <td>{format::loss(m.train_loss)}</td>
                                    <td>{format::percent_number(m.train_accuracy)}</td>
                                    <td>{format::loss(m.test_loss)}</td>
                                    <td>{format::percent_number(m.test_accuracy)}</td>
                                    <td>{format!("{:.1}", m.seconds)}</td>
                                </tr>
                            }
                        }
                    />
                </tbody>
            </table>
            <Show when=move || rows.with(Vec::is_empty)>
                <p class="empty">"No finished epoch yet."</p>
            </Show>
        </div>
    }
}

/// Classifies a chosen or dropped image with a trained run.
#[component]
fn ClassifyPanel() -> impl IntoView {
    let studio = studio();
    let chosen = RwSignal::new(None::<u64>);
    let model_runs = Memo::new(move |_| {
        studio.state.with(|s| {
            s.runs
                .iter()
                .filter(|r| r.has_model)
                .map(|r| (r.id, format!("#{} — {} ({})", r.id, r.config.dataset, r.status.as_str())))
                .collect::<Vec<_>>()
        })
    });
    let classifier = Memo::new(move |_| studio.state.with(|s| s.classifying_run(chosen.get())));
    let preview = RwSignal::new(None::<String>);
    let predictions = RwSignal::new(Vec::<Prediction>::new());
    let error = RwSignal::new(None::<String>);
    let pending = RwSignal::new(false);
    let dragging = RwSignal::new(false);
    let image = StoredValue::new_local(None::<web_sys::File>);
    let requests = StoredValue::new(0u64);

    let classify = move || {
        let Some(file) = image.get_value() else { return };
        predictions.set(Vec::new());
        error.set(None);
        let Some(run_id) = classifier.get_untracked() else {
            error.set(Some("No run has a trained model yet: train one first.".into()));
            return;
        };
        requests.update_value(|n| *n += 1);
        let request = requests.get_value();
        pending.set(true);
        spawn_local(async move {
            let answer = api::classify(run_id, &file).await;
            if requests.get_value() != request {
                return; // a newer image or run was chosen meanwhile
            }
            pending.set(false);
            match answer {
                Ok(answer) => predictions.set(answer.predictions),
                Err(why) => error.set(Some(why.to_string())),
            }
        });
    };
    let take = move |file: web_sys::File| {
        if let Some(old) = preview.get_untracked() {
            let _ = web_sys::Url::revoke_object_url(&old);
        }
        preview.set(web_sys::Url::create_object_url_with_blob(&file).ok());
        image.set_value(Some(file));
        classify();
    };
    let on_file = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        if let Some(file) = input.files().and_then(|files| files.get(0)) {
            take(file);
        }
    };
    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        dragging.set(false);
        if let Some(file) = ev.data_transfer().and_then(|t| t.files()).and_then(|files| files.get(0)) {
            take(file);
        }
    };

    view! {
        <section
            class="card classify"
            class:dragging=move || dragging.get()
            id="classify"
            aria-labelledby="classify-title"
            on:dragover=move |ev: leptos::ev::DragEvent| {
                ev.prevent_default();
                dragging.set(true);
            }
            on:dragleave=move |ev: leptos::ev::DragEvent| {
                // Leaving for a child element is not leaving the panel.
                let inside = ev
                    .related_target()
                    .and_then(|t| t.dyn_into::<web_sys::Node>().ok())
                    .zip(ev.current_target().and_then(|t| t.dyn_into::<web_sys::Node>().ok()))
                    .is_some_and(|(to, panel)| panel.contains(Some(&to)));
                if !inside {
                    dragging.set(false);
                }
            }
            on:drop=on_drop
        >
            <h2 id="classify-title">"Classify an image"</h2>
            <div class="field wide">
                <label for="classify-run">"Model"</label>
                <select
                    id="classify-run"
                    on:change=move |ev| {
                        chosen.set(event_target_value(&ev).parse().ok());
                        classify();
                    }
                >
                    {move || {
                        let runs = model_runs.get();
                        if runs.is_empty() {
                            view! { <option value="" disabled=true selected=true>"No trained model yet"</option> }.into_any()
                        } else {
                            runs.into_iter()
                                .map(|(id, label)| view! {
                                    <option value=id.to_string() prop:selected=move || classifier.get() == Some(id)>{label}</option>
                                })
                                .collect_view()
                                .into_any()
                        }
                    }}
                </select>
            </div>
            <div class="drop-zone">
                <label for="classify-file" class="file-label">
                    <span class="file-button">"Choose an image"</span>
                    <span class="file-hint">"PNG or JPEG — or drop one onto this panel"</span>
                </label>
                <input id="classify-file" type="file" accept="image/png,image/jpeg" on:change=on_file/>
            </div>
            <div class="classify-result">
                {move || preview.get().map(|url| view! {
                    <img id="classify-preview" src=url alt="The image being classified"/>
                })}
                <div class="prediction-block">
                    <p class="pending">{move || pending.get().then_some("Classifying…")}</p>
                    <p id="classify-error" class="error" role="alert">{move || error.get()}</p>
                    <ul id="predictions" class="predictions">
                        {move || predictions.get().into_iter().map(|p| {
                            let width = format!("width: {:.1}%", (p.probability * 100.0).clamp(0.0, 100.0));
                            view! {
                                <li class="prediction">
                                    <span class="label">{p.label}</span>
                                    <span class="probability">{format::percent(p.probability)}</span>
                                    <div class="bar"><div class="bar-fill" style=width></div></div>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                </div>
            </div>
        </section>
    }
}
