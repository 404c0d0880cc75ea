//! Transfer Studio's page: train an image classifier, watch it learn, and try it on a picture.
//!
//! The page is client-side rendered Leptos, laid out as in the Leptos examples: every component
//! lives here and `main.rs` only mounts [`App`]. The pieces it builds on are plain Rust:
//! - [`studio`]: the [`Studio`] handle every component shares through context;
//! - [`state`]: the page's copy of the server's state, the run list in one signal and each run's batches
//!   in its own, and [`state::PageState::apply`], which folds each WebSocket message into them;
//! - [`form`]: the training form's fields and presets, checked with the same rules the server applies;
//! - [`chart`]: the geometry of the training and comparison charts;
//! - [`analysis`]: best epoch, confused pairs and heat-map colours from a run's metrics;
//! - [`format`]: how numbers and runs are written;
//! - [`queue`]: the queue view in the runs card, what waits and why;
//! - [`health`]: the Dataset health card and the leak warning beside Start;
//! - [`lr_finder`]: "Find learning rate" beside the learning-rate box, its log-scale curve and "Use this";
//! - [`sweep_form`]: the sweep editor's fields, read into a request checked by the shared sweep rules;
//! - [`sweep_plot`]: the geometry of a sweep's learning curves and parallel-coordinates plot;
//! - [`saved`]: the training form kept in the browser, so a reload keeps what was typed;
//! - [`settings`]: the form's setting controls, built from the shared field table (`shared::FIELDS`);
//! - [`layout`]: what fits the page to the screen (section tabs, the live run's Stop and the page kept still when
//!   it moves, charts fitted to their drawn width);
//! - [`ws`]: the WebSocket, reopened with backoff whenever it drops;
//! - [`api`]: the HTTP calls (datasets, weights, uploads, classify, test images, decoded caches).
//!
//! The page's cards are components: the run list and detail here, the form and the dataset upload in
//! [`train`], the decoded caches in [`caches`], the class-level results in [`insight`], the classify card in [`classify`] (its
//! camera mode in [`webcam`]), the comparison of ticked runs in [`compare`], hyperparameter sweeps (their
//! editor, list, leaderboard and charts) in [`sweeps`].
//! They share one [`Studio`] handle through context: a few signals, cheap to copy. [`App`] wires it to
//! the WebSocket; [`Studio::new`] alone gives a card in-memory state, which is how the component tests
//! in `tests/` mount one.

pub mod analysis;
pub mod api;
pub mod caches;
pub mod chart;
pub mod classify;
pub mod compare;
pub mod deferred;
pub mod form;
pub mod format;
pub mod health;
pub mod heatmap;
pub mod insight;
pub mod layout;
pub mod live;
pub mod lr_finder;
pub mod queue;
pub mod receipt;
pub mod saved;
pub mod settings;
pub mod state;
pub mod studio;
pub mod sweep_form;
pub mod sweep_plot;
pub mod sweeps;
pub mod train;
pub mod versions;
pub mod webcam;
pub mod ws;

use futures::channel::mpsc::unbounded;
use leptos::prelude::*;
use shared::{ClientMessage, EpochMetrics, Run};

use crate::compare::CompareToggle;
use crate::state::StatusFilter;
pub(crate) use crate::studio::studio;
pub use crate::studio::Studio;
use crate::train::{DatasetUpload, TrainPanel};
use crate::ws::SocketEvent;

/// The whole page.
#[component]
pub fn App() -> impl IntoView {
    let (outbox, outgoing) = unbounded();
    let studio = Studio::new(outbox);
    let connected = studio.connected;
    ws::connect(ws::page_socket_url(), outgoing, move |event| match event {
        SocketEvent::Connected => connected.set(true),
        SocketEvent::Disconnected => connected.set(false),
        SocketEvent::Message(message) => studio.apply(*message),
    });
    provide_context(studio);
    versions::provide_pending_edits();
    let main = NodeRef::<leptos::html::Main>::new();
    layout::follow_live_run(main);

    view! {
        <header class="topbar">
            <div class="brand">
                <span class="logo" aria-hidden="true">"◆"</span>
                <h1>"Transfer Studio"</h1>
                <span class="tagline">"ResNet-18 image classifiers, trained from the browser"</span>
            </div>
            <ConnectionState/>
            <layout::SectionTabs/>
        </header>
        // The form and the dataset cards beside the runs; the classify card below both, as wide as the page,
        // so its results sit side by side. On a phone one column, in the order style.css gives.
        <main class="layout" node_ref=main>
            <div class="column side">
                <TrainPanel/>
                {deferred::later(deferred::dataset_cards())}
                <DatasetUpload/>
            </div>
            <div class="column main">
                <RunList/>
                {deferred::later(deferred::compare_runs())}
                <RunDetail/>
                {deferred::later(deferred::sweeps_card())}
            </div>
            {deferred::later(deferred::classify_panel())}
        </main>
        {deferred::later(deferred::pending_edits_bar())}
    }
}

/// "Download model": the best checkpoint as safetensors, or as ONNX (which the server checks against its
/// own model before answering).
#[component]
fn DownloadMenu(run_id: u64) -> impl IntoView {
    view! {
        <details class="download-menu">
            <summary class="button-link small">"Download model"</summary>
            <div class="download-options">
                <a
                    id="download-checkpoint"
                    href=api::checkpoint_url(run_id)
                    download=format!("run-{run_id}-resnet18.safetensors")
                >
                    "safetensors (PyTorch)"
                </a>
                <a id="download-onnx" href=api::onnx_url(run_id) download=format!("run-{run_id}-resnet18.onnx")>
                    "ONNX (verified)"
                </a>
            </div>
        </details>
    }
}

/// Whether the live connection is open.
#[component]
pub fn ConnectionState() -> impl IntoView {
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

/// Minutes the browser's time zone is ahead of UTC, for writing dates as the person reads them.
pub(crate) fn utc_offset_minutes() -> i64 {
    -(js_sys::Date::new_0().get_timezone_offset() as i64)
}

/// When a run was created, how long it trained and on what: `"2026-11-30 10:53 · 2 min 05 s · cpu"`. A
/// run without a finished epoch shows no duration rather than "0 s".
fn run_facts(run: &Run, utc_offset: i64) -> impl IntoView {
    let device = run.device.clone().map(|device| view! { <span class="run-device">{device}</span> });
    let placement = format::placement(run).map(|place| view! { <span class="run-placement">{place}</span> });
    let duration = (!run.epochs.is_empty()).then(|| {
        view! {
            <span class="run-duration" title="Time spent in finished epochs">
                {format::duration(run.training_seconds())}
            </span>
        }
    });
    view! {
        <span class="run-facts">
            <span class="run-date">{format::date_time(run.created_at, utc_offset)}</span>
            {duration}
            {placement}
            {device}
        </span>
    }
}

/// Every run, newest first, optionally only those of one status; clicking one shows it below.
#[component]
pub fn RunList() -> impl IntoView {
    let studio = studio();
    let filter = RwSignal::new(StatusFilter::All);
    let all_runs = Memo::new(move |_| studio.state.with(|s| s.runs.clone()));
    let runs = Memo::new(move |_| {
        let filter = filter.get();
        all_runs.with(|runs| runs.iter().filter(|run| filter.admits(run.status)).cloned().collect::<Vec<_>>())
    });
    let shown = Memo::new(move |_| studio.state.with(|s| s.shown_run(studio.chosen_run.get()).map(|r| r.id)));
    let utc_offset = utc_offset_minutes();
    view! {
        <section class="card" id="runs-card" aria-labelledby="runs-title">
            <div class="runs-head">
                <h2 id="runs-title">"Runs"</h2>
                <div id="run-filter" class="run-filter" role="group" aria-label="Show runs by status">
                    {StatusFilter::ALL.into_iter().map(|choice| view! {
                        <button
                            type="button"
                            class="filter"
                            data-filter=choice.key()
                            aria-pressed=move || (filter.get() == choice).to_string()
                            on:click=move |_| filter.set(choice)
                        >
                            {choice.title()}
                        </button>
                    }).collect_view()}
                </div>
            </div>
            <queue::QueueView/>
            <Show when=move || all_runs.with(Vec::is_empty)>
                <p class="empty">"No runs yet. Pick a dataset and press Start training."</p>
            </Show>
            <Show when=move || runs.with(Vec::is_empty) && !all_runs.with(Vec::is_empty)>
                <p class="empty" id="no-matching-runs">"No run has this status."</p>
            </Show>
            <ul id="runs" class="run-list">
                <For
                    each=move || runs.get()
                    key=|run| (
                        run.id,
                        run.status.as_str(),
                        run.has_model,
                        run.epochs.len(),
                        run.name.clone(),
                        run.device.clone(),
                        format::placement(run),
                    )
                    children=move |run: Run| {
                        let id = run.id;
                        let status = run.status.as_str();
                        view! {
                            <li
                                class="run-item"
                                class:selected=move || shown.get() == Some(id)
                                data-run-id=id
                            >
                                <CompareToggle run_id=id name=run.name.clone()/>
                                <button
                                    type="button"
                                    class="run-button"
                                    aria-pressed=move || (shown.get() == Some(id)).to_string()
                                    on:click=move |_| studio.chosen_run.set(Some(id))
                                >
                                    <span class="run-id">{format!("#{id}")}</span>
                                    <span class="run-main">
                                        <span class="run-title">
                                            <span class="run-name">{run.title()}</span>
                                            <span class="run-dataset">{run.config.dataset.clone()}</span>
                                        </span>
                                        {run_facts(&run, utc_offset)}
                                    </span>
                                    <span class="run-accuracy" title="Test accuracy: final, and best of any epoch">
                                        <strong class="final-accuracy">{format::accuracy(run.final_test_accuracy())}</strong>
                                        <span class="best-accuracy">
                                            {format!("best {}", format::accuracy(run.best_test_accuracy()))}
                                        </span>
                                    </span>
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

/// The shown run: settings, batch progress, charts, epoch table and class-level results.
#[component]
pub fn RunDetail() -> impl IntoView {
    let studio = studio();
    let shown = Memo::new(move |_| studio.state.with(|s| s.shown_run(studio.chosen_run.get()).cloned()));
    let has_run = move || shown.with(Option::is_some);
    let resumable = Memo::new(move |_| shown.with(|r| r.as_ref().filter(|r| analysis::resumable(r)).map(|r| r.id)));
    let model = Memo::new(move |_| shown.with(|r| r.as_ref().filter(|r| r.has_model).map(|r| r.id)));
    // The shown run while it is queued or training: the panel's Stop (or Cancel) acts on it, not on another.
    let shown_active = Memo::new(move |_| shown.with(|r| r.as_ref().filter(|r| !r.status.is_finished()).map(|r| r.id)));
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
                        {move || shown.with(|r| r.as_ref().map(|r| format!("{} — {}", r.title(), r.config.dataset)))}
                    </h2>
                    {move || shown.with(|r| r.as_ref().map(|r| {
                        let status = r.status.as_str();
                        view! { <span class=format!("badge status-{status}")>{status}</span> }
                    }))}
                    <span class="spacer"></span>
                    <Show when=move || shown_active.with(Option::is_some)>
                        <layout::StopButton id="stop-live" run=shown_active/>
                    </Show>
                    {move || resumable.get().map(|run_id| view! {
                        <button
                            id="resume"
                            type="button"
                            class="small"
                            disabled=move || !studio.connected.get()
                            on:click=move |_| {
                                studio.state.update(|state| state.error = None);
                                studio.send(ClientMessage::ResumeRun { run_id });
                            }
                        >
                            "Resume"
                        </button>
                    })}
                    {move || model.get().map(|run_id| view! { <DownloadMenu run_id=run_id/> })}
                    <span id="placement" class="placement" role="status">
                        {move || shown.with(|r| r.as_ref().and_then(format::placement))}
                    </span>
                    <span id="checkpoint-info" class="checkpoint-info">
                        {move || shown.with(|r| r.as_ref().and_then(|r| r.best_checkpoint.as_ref()).map(format::checkpoint))}
                    </span>
                </div>
                {deferred::later(deferred::trial_of(shown))}
                <RunActions shown=shown/>
                <Headline shown=shown/>
                <p class="config-summary">{move || shown.with(|r| r.as_ref().map(format::config_summary))}</p>
                {move || shown.with(|r| r.as_ref().and_then(|r| r.error.clone())).map(|error| {
                    view! { <p class="run-error" role="alert">{error}</p> }
                })}
                <BatchProgressBar shown=shown/>
                <TrainingChart shown=shown/>
                <EpochTable shown=shown/>
                {deferred::later(deferred::run_insight(shown))}
            </Show>
        </section>
    }
}

/// The shown run's headline numbers: final and best test accuracy, large, with its date, training time
/// and device.
#[component]
fn Headline(shown: Memo<Option<Run>>) -> impl IntoView {
    let utc_offset = utc_offset_minutes();
    move || {
        shown.with(|run| {
            run.as_ref().map(|run| {
                view! {
                    <div id="headline" class="headline">
                        <div class="headline-item">
                            <span id="final-accuracy" class="headline-value">
                                {format::accuracy(run.final_test_accuracy())}
                            </span>
                            <span class="headline-label">"final test accuracy"</span>
                        </div>
                        <div class="headline-item">
                            <span id="best-accuracy" class="headline-value best">
                                {format::accuracy(run.best_test_accuracy())}
                            </span>
                            <span class="headline-label">"best test accuracy"</span>
                        </div>
                        {run_facts(run, utc_offset)}
                    </div>
                }
            })
        })
    }
}

/// What a person can do with the shown run: rename it in place, start a new run from its settings, and
/// delete it with its files after confirming on the page.
#[component]
fn RunActions(shown: Memo<Option<Run>>) -> impl IntoView {
    let studio = studio();
    let run_id = Memo::new(move |_| shown.with(|r| r.as_ref().map(|r| r.id)));
    let active = Memo::new(move |_| shown.with(|r| r.as_ref().is_some_and(|r| !r.status.is_finished())));
    let renaming = RwSignal::new(false);
    let draft = RwSignal::new(String::new());
    let confirming = RwSignal::new(false);
    // Another run shown: whatever was half done on the last one is dropped.
    Effect::new(move |_| {
        run_id.track();
        renaming.set(false);
        confirming.set(false);
    });
    let name_problem = Memo::new(move |_| draft.with(|name| shared::check_run_name(name).err()));
    let save_name = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(run_id) = run_id.get_untracked() else { return };
        if name_problem.with_untracked(Option::is_some) {
            return;
        }
        studio.state.update(|state| state.error = None);
        studio.send(ClientMessage::RenameRun { run_id, name: draft.get_untracked() });
        renaming.set(false);
    };
    let delete = move |_| {
        let Some(run_id) = run_id.get_untracked() else { return };
        studio.state.update(|state| state.error = None);
        studio.send(ClientMessage::DeleteRun { run_id });
        studio.compared.update(|ids| ids.retain(|&id| id != run_id));
        studio.chosen_run.set(None);
        confirming.set(false);
    };
    let title = move || shown.with(|r| r.as_ref().map(Run::title).unwrap_or_default());

    view! {
        <div class="run-actions">
            <Show
                when=move || renaming.get()
                fallback=move || view! {
                    <button
                        id="rename-run"
                        type="button"
                        class="small"
                        disabled=move || !studio.connected.get()
                        on:click=move |_| {
                            draft.set(shown.with_untracked(|r| r.as_ref().and_then(|r| r.name.clone()).unwrap_or_default()));
                            renaming.set(true);
                        }
                    >
                        "Rename"
                    </button>
                }
            >
                <form id="rename-form" class="rename-form" on:submit=save_name>
                    <input
                        id="run-name"
                        type="text"
                        aria-label="Run name"
                        placeholder=move || shown.with(|r| r.as_ref().map(|r| format!("Run #{}", r.id)))
                        maxlength=shared::limits::MAX_RUN_NAME_CHARS
                        autocomplete="off"
                        prop:value=move || draft.get()
                        on:input=move |ev| draft.set(event_target_value(&ev))
                    />
                    <button id="save-name" type="submit" class="small primary" disabled=move || name_problem.with(Option::is_some)>
                        "Save"
                    </button>
                    <button id="cancel-rename" type="button" class="small" on:click=move |_| renaming.set(false)>
                        "Cancel"
                    </button>
                    {move || name_problem.get().map(|why| view! { <p class="field-error" id="run-name-error">{why}</p> })}
                </form>
            </Show>
            <button
                id="use-settings"
                type="button"
                class="small"
                title="Fill the New run form with this run's settings"
                on:click=move |_| {
                    if let Some(config) = shown.with_untracked(|r| r.as_ref().map(|r| r.config.clone())) {
                        studio.form_request.set(Some(config));
                        // On a phone the form is far above: bring it into view.
                        layout::bring_into_view("train-card");
                    }
                }
            >
                "Use these settings"
            </button>
            <sweeps::SweepButton
                id="sweep-run"
                base=Signal::derive(move || shown.with(|r| r.as_ref().map(|r| r.config.clone())))
            />
            <button
                id="delete-run"
                type="button"
                class="small danger"
                title=move || if active.get() { "Stop the run first" } else { "Delete this run and its model files" }
                disabled=move || active.get() || !studio.connected.get()
                on:click=move |_| confirming.set(true)
            >
                "Delete"
            </button>
            <Show when=move || confirming.get()>
                <div id="delete-confirm" class="delete-confirm" role="alertdialog" aria-labelledby="delete-question">
                    <p id="delete-question">
                        {move || format!("Delete {} and its model files? This cannot be undone.", title())}
                    </p>
                    <button id="confirm-delete" type="button" class="small danger" on:click=delete>"Delete run"</button>
                    <button id="cancel-delete" type="button" class="small" on:click=move |_| confirming.set(false)>
                        "Keep it"
                    </button>
                </div>
            </Show>
        </div>
    }
}

/// How far the shown run has got: one bar for the whole run, coloured by its state, the line under it,
/// and where the run ended when it did not complete.
#[component]
fn BatchProgressBar(shown: Memo<Option<Run>>) -> impl IntoView {
    let studio = studio();
    let bar = Memo::new(move |_| {
        shown.with(|run| {
            let run = run.as_ref()?;
            let stopping = studio.state.with(|s| s.stopping == Some(run.id));
            Some(studio.live.with(run.id, |s| {
                let class = live::bar_class(run.status, stopping);
                let progress = s.progress_of(run);
                let (fraction, line, loss) = match (progress, s.preparation_of(run)) {
                    (Some(p), _) => (live::run_fraction(run, Some(p)), format::progress_line(p), Some(p.loss)),
                    (None, Some(p)) => {
                        // Preparing comes before the first batch: the bar shows the step, not the run.
                        let fraction = p.total.map_or(0.0, |total| p.done as f64 / total.max(1) as f64);
                        (fraction, format::preparation_line(p), None)
                    }
                    (None, None) => (live::run_fraction(run, None), format::idle_line(run), None),
                };
                let line = if stopping && !run.status.is_finished() { format!("Stopping… {line}") } else { line };
                let ended = live::ended_at(run, s.trace.as_ref().map(|t| &t.last));
                RunBar { class, fraction, line, loss, ended }
            }))
        })
    });
    let percent = move || bar.with(|b| b.as_ref().map_or(0.0, |b| b.fraction * 100.0));
    view! {
        <div class="progress-block">
            <div id="progress" class=move || format!("progress {}", bar.with(|b| b.as_ref().map_or(String::new(), |b| b.class.clone())))>
                <progress
                    aria-label="Run progress"
                    max="100"
                    value=move || format!("{:.1}", percent())
                ></progress>
                <span class="progress-text">{move || bar.with(|b| b.as_ref().map(|b| b.line.clone()))}</span>
            </div>
            <span class="progress-loss">
                {move || bar.with(|b| b.as_ref().and_then(|b| b.loss)).map(|loss| format!("loss of this epoch so far {loss:.4}"))}
            </span>
            {move || bar.with(|b| b.as_ref().and_then(|b| b.ended.clone())).map(|ended| {
                view! { <p id="ended-at" class="ended-at">{ended}</p> }
            })}
        </div>
    }
}

/// What the run's progress bar shows.
#[derive(Debug, Clone, PartialEq)]
struct RunBar {
    /// `bar-running`, `bar-stopped`, … (see [`live::bar_class`]).
    class: String,
    /// Share of the bar filled, 0 – 1.
    fraction: f64,
    /// The line under the bar.
    line: String,
    /// The loss of the epoch in flight so far.
    loss: Option<f64>,
    /// Where a run that did not complete ended.
    ended: Option<String>,
}

/// Accuracy, loss and learning rate per epoch, train and test, with the loss drawn from the first batch.
#[component]
fn TrainingChart(shown: Memo<Option<Run>>) -> impl IntoView {
    let studio = studio();
    let data = Memo::new(move |_| {
        shown.with(|r| r.as_ref().map_or((0, Vec::new(), 1), |r| (r.id, r.epochs.clone(), r.config.epochs)))
    });
    let batches = Memo::new(move |_| {
        let run_id = data.with(|d| d.0);
        studio.live.with(run_id, |s| s.trace.as_ref().map_or_else(Vec::new, |t| t.points.clone()))
    });
    let svg = NodeRef::<leptos::svg::Svg>::new();
    let drawn = layout::drawn_width(svg);
    let fit = Memo::new(move |_| layout::ChartFit::following(drawn.get()));
    view! {
        <svg
            id="chart"
            class="chart"
            node_ref=svg
            viewBox=move || format!("0 0 {} {}", fit.get().view_width, chart::HEIGHT)
            style=move || fit.get().style()
            role="img"
            aria-label="Accuracy and loss per epoch, for training and test data, the training loss as batches arrive, and the learning rate"
        >
            {move || {
                let (_, epochs, planned) = data.get();
                let panels = [
                    chart::accuracy_panel(&epochs, planned),
                    batches.with(|batches| chart::loss_panel(&epochs, planned, batches)),
                    chart::lr_panel(&epochs, planned),
                ];
                let width = fit.get().view_width;
                panels.into_iter().map(|panel| chart_panel(panel.fit_width(width))).collect_view()
            }}
        </svg>
    }
}

fn chart_panel(panel: chart::Panel) -> impl IntoView {
    let frame = panel.frame;
    let class = panel.key;
    let legend_y = frame.top - 14.0;
    // Each point carries a <title>: hovering shows its values, and screen readers read them.
    let markers = |points: &[(f64, f64)], notes: &[String], series: &'static str| {
        points
            .iter()
            .zip(notes)
            .map(|(&(x, y), note)| {
                view! { <circle class=format!("marker {series}") cx=x cy=y r="3.5"><title>{note.clone()}</title></circle> }
            })
            .collect_view()
    };
    let legend = if panel.test.is_empty() && panel.key != "loss" {
        None
    } else {
        // Packed to the right so that it clears the panel's title in a narrow view box too.
        let batches = (panel.key == "loss").then(|| view! {
            <line class="batches" x1=frame.right() - 200.0 x2=frame.right() - 182.0 y1=legend_y - 4.0 y2=legend_y - 4.0></line>
            <text class="legend-label" x=frame.right() - 177.0 y=legend_y>"batches"</text>
        });
        Some(view! {
            <g class="legend">
                {batches}
                <line class="train" x1=frame.right() - 122.0 x2=frame.right() - 104.0 y1=legend_y - 4.0 y2=legend_y - 4.0></line>
                <text class="legend-label" x=frame.right() - 99.0 y=legend_y>"train"</text>
                <line class="test" x1=frame.right() - 60.0 x2=frame.right() - 42.0 y1=legend_y - 4.0 y2=legend_y - 4.0></line>
                <text class="legend-label" x=frame.right() - 37.0 y=legend_y>"test"</text>
            </g>
        })
    };
    let latest_batch = panel.latest_batch.clone().map(|((x, y), note)| {
        view! { <circle class="marker batch-latest" cx=x cy=y r="3.5"><title>{note}</title></circle> }
    });
    let batch_line = (!panel.batches.is_empty()).then(|| {
        view! {
            <polyline class=format!("series batches {class}-batches") points=chart::polyline(&panel.batches)>
                <title>"Training loss of the epoch in flight, as batches arrive"</title>
            </polyline>
        }
    });
    view! {
        <g class=format!("panel panel-{class}")>
            <text class="panel-title" x=frame.left y=legend_y>{panel.title}</text>
            {legend}
            {axes(frame, &panel.x_ticks, &panel.y_ticks)}
            {batch_line}
            <polyline class=format!("series train {class}-train") points=chart::polyline(&panel.train)></polyline>
            <polyline class=format!("series test {class}-test") points=chart::polyline(&panel.test)></polyline>
            {markers(&panel.train, &panel.train_notes, "train")}
            {markers(&panel.test, &panel.test_notes, "test")}
            {latest_batch}
        </g>
    }
}

/// Grid lines, tick labels and axes of one chart frame.
pub(crate) fn axes(frame: chart::Frame, x_ticks: &[chart::Tick], y_ticks: &[chart::Tick]) -> impl IntoView {
    let y_ticks = y_ticks
        .iter()
        .map(|tick| {
            view! {
                <line class="grid" x1=frame.left x2=frame.right() y1=tick.at y2=tick.at></line>
                <text class="tick" x=frame.left - 6.0 y=tick.at + 4.0 text-anchor="end">{tick.label.clone()}</text>
            }
        })
        .collect_view();
    let x_ticks = x_ticks
        .iter()
        .map(|tick| {
            view! {
                <text class="tick" x=tick.at y=frame.bottom() + 16.0 text-anchor="middle">{tick.label.clone()}</text>
            }
        })
        .collect_view();
    view! {
        {y_ticks}
        {x_ticks}
        <line class="axis" x1=frame.left x2=frame.left y1=frame.top y2=frame.bottom()></line>
        <line class="axis" x1=frame.left x2=frame.right() y1=frame.bottom() y2=frame.bottom()></line>
        <text class="axis-label" x=frame.left + frame.width / 2.0 y=frame.bottom() + 32.0 text-anchor="middle">"epoch"</text>
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
    // Focusable, as every box that can scroll: a keyboard scrolls it (axe-core's scrollable-region-focusable).
    view! {
        <div class="table-wrap" tabindex="0">
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
