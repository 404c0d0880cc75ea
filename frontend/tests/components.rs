//! Component tests: the page's real Leptos components, mounted into headless Chromium.
//!
//! Each test mounts one or two components into a fresh element of the test page, with a [`Studio`]
//! made in memory (not connected; what it would send to the server is dropped), and
//! asserts on the DOM a person would see: after mounting, after typing or clicking, and after the
//! state changes as a WebSocket message would change it. The arithmetic behind these views is
//! tested natively in the crate's unit tests; these check that the views show it.
//!
//! Run with `cargo test -p frontend --target wasm32-unknown-unknown --test components`;
//! `.cargo/config.toml` makes `wasm-bindgen-test-runner` the runner, which drives Chromium through
//! the chromedriver named by `CHROMEDRIVER` (`scripts/env.sh` sets it).

#![cfg(target_arch = "wasm32")]

use frontend::classify::{classified_card, run_caption, AnsweredBy, Classified};
use frontend::form::TrainForm;
use frontend::sweeps::SweepsCard;
use frontend::train::TrainPanel;
use frontend::{ConnectionState, RunDetail, RunList, Studio};
use futures::channel::mpsc::unbounded;
use leptos::mount::{mount_to, UnmountHandle};
use leptos::prelude::*;
use shared::{
    BatchProgress, EpochMetrics, ImageClassification, Preparation, PreparationStep, Run, ServerMessage, TrainConfig,
};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use web_sys::{Element, Event, EventInit, HtmlElement, HtmlInputElement, HtmlProgressElement, HtmlSelectElement};

wasm_bindgen_test_configure!(run_in_browser);

/// A page's shared handle with nothing heard from the server and no connection.
fn offline_studio() -> Studio {
    let (outbox, _unread) = unbounded();
    Studio::new(outbox)
}

/// Mounts `view` into a fresh `<div>` of the document with `studio` in context, and lets its first
/// render finish (Leptos sets an input's value in a microtask, which would overwrite anything typed
/// before it runs). The view stays mounted while the returned handle lives.
async fn mount<F, N>(studio: Studio, view: F) -> (HtmlElement, UnmountHandle<N::State>)
where
    F: FnOnce() -> N + 'static,
    N: IntoView,
{
    let document = document();
    let root: HtmlElement = document.create_element("div").unwrap().unchecked_into();
    document.body().expect("the test page has a body").append_child(&root).unwrap();
    let handle = mount_to(root.clone(), move || {
        provide_context(studio);
        view()
    });
    settle().await;
    (root, handle)
}

/// Lets the reactive system catch up: effects run on microtasks, and a zero timeout runs after
/// every one queued so far.
async fn settle() {
    gloo_timers::future::TimeoutFuture::new(0).await;
}

/// The one element under `root` that `selector` matches; fails the test when there is none.
fn find(root: &Element, selector: &str) -> Element {
    root.query_selector(selector).unwrap().unwrap_or_else(|| panic!("nothing matches {selector}"))
}

/// Whether anything under `root` matches `selector`.
fn exists(root: &Element, selector: &str) -> bool {
    root.query_selector(selector).unwrap().is_some()
}

/// How many elements under `root` match `selector`.
fn count(root: &Element, selector: &str) -> u32 {
    root.query_selector_all(selector).unwrap().length()
}

/// The text of every element under `root` that `selector` matches, in document order.
fn texts(root: &Element, selector: &str) -> Vec<String> {
    let found = root.query_selector_all(selector).unwrap();
    (0..found.length()).map(|i| found.item(i).unwrap().text_content().unwrap_or_default()).collect()
}

/// The text of the element `selector` matches.
fn text(root: &Element, selector: &str) -> String {
    find(root, selector).text_content().unwrap_or_default()
}

/// The `name` attribute of the element `selector` matches.
fn attribute(root: &Element, selector: &str, name: &str) -> Option<String> {
    find(root, selector).get_attribute(name)
}

/// The `<input>` that `selector` matches.
fn input(root: &Element, selector: &str) -> HtmlInputElement {
    find(root, selector).dyn_into().expect("an <input>")
}

/// Types `value` into the `<input>` `selector` matches, as a person would: the value changes and
/// an `input` event bubbles up.
fn type_into(root: &Element, selector: &str, value: &str) {
    let field = input(root, selector);
    field.set_value(value);
    let init = EventInit::new();
    init.set_bubbles(true);
    field.dispatch_event(&Event::new_with_event_init_dict("input", &init).unwrap()).unwrap();
}

/// Clicks the element `selector` matches.
fn click(root: &Element, selector: &str) {
    find(root, selector).unchecked_into::<HtmlElement>().click();
}

/// A run as the server reports it; fields not given take the protocol's defaults.
fn run(id: u64, status: &str, epochs: Vec<EpochMetrics>) -> Run {
    serde_json::from_value(serde_json::json!({
        "id": id,
        "status": status,
        "config": {"dataset": "tiny", "epochs": 3},
        "epochs": epochs,
        "classes": ["cat", "dog", "frog"],
        "created_at": 1_795_000_000 + id,
    }))
    .unwrap()
}

/// Metrics of one finished epoch.
fn epoch(epoch: u32, test_accuracy: f64) -> EpochMetrics {
    serde_json::from_value(serde_json::json!({
        "epoch": epoch,
        "train_loss": 1.234_56,
        "train_accuracy": 0.45,
        "test_loss": 1.3,
        "test_accuracy": test_accuracy,
        "seconds": 2.04,
        "lr": 0.001,
    }))
    .unwrap()
}

/// `studio` after a snapshot listing `runs`, as the server sends to every new connection.
fn with_runs(studio: Studio, runs: Vec<Run>) -> Studio {
    studio.apply(ServerMessage::Snapshot { runs, traces: Vec::new() });
    studio
}

#[wasm_bindgen_test]
async fn the_connection_badge_says_disconnected_until_the_socket_opens() {
    let studio = offline_studio();
    let (root, _mounted) = mount(studio, ConnectionState).await;
    assert_eq!(text(&root, "#connection"), "Disconnected — reconnecting…");
    assert!(find(&root, "#connection").class_list().contains("disconnected"));

    studio.connected.set(true);
    settle().await;
    assert_eq!(text(&root, "#connection"), "Connected");
    assert!(!find(&root, "#connection").class_list().contains("disconnected"));
}

#[wasm_bindgen_test]
async fn the_training_form_has_a_labelled_control_for_every_field() {
    let (root, _mounted) = mount(offline_studio(), TrainPanel).await;
    // Every setting that applies to the first visit's form on a CPU server; the others are hidden.
    let cpu = shared::Surroundings { gpu: false, held_out_test: false };
    let shown = shared::FIELDS.iter().filter(|f| TrainForm::first_visit().applies(f, &cpu)).map(|f| f.name);
    for field in shown {
        let controls = format!("#train-form [name=\"{field}\"]");
        assert_eq!(count(&root, &controls), 1, "one control for {field}");
        let id = find(&root, &controls).id();
        assert!(!id.is_empty(), "{field} has an id for its label");
        let label = text(&root, &format!("label[for=\"{id}\"]"));
        assert!(!label.trim().is_empty(), "{field} has a label with words");
    }
}

#[wasm_bindgen_test]
async fn a_number_that_breaks_a_rule_shows_the_shared_sentence_until_it_is_fixed() {
    let (root, _mounted) = mount(offline_studio(), TrainPanel).await;
    let rule = TrainConfig { epochs: 0, ..TrainConfig::for_dataset("tiny") }
        .problems()
        .into_iter()
        .find(|p| p.field == "epochs")
        .expect("the shared rules refuse 0 epochs")
        .message;
    assert!(!exists(&root, "#epochs-error"));

    type_into(&root, "#epochs", "0");
    settle().await;
    assert_eq!(text(&root, "#epochs-error"), rule);
    assert_eq!(attribute(&root, "#epochs", "aria-invalid").as_deref(), Some("true"));
    assert!(find(&root, "#epochs").parent_element().unwrap().class_list().contains("invalid"));

    type_into(&root, "#epochs", "3");
    settle().await;
    assert!(!exists(&root, "#epochs-error"));
    assert_eq!(attribute(&root, "#epochs", "aria-invalid").as_deref(), Some("false"));
}

#[wasm_bindgen_test]
async fn a_problem_inside_the_closed_advanced_section_is_counted_on_its_summary() {
    let (root, _mounted) = mount(offline_studio(), TrainPanel).await;
    assert!(!exists(&root, "#advanced summary .problem-count"));

    type_into(&root, "#label-smoothing", "1");
    settle().await;
    assert_eq!(text(&root, "#advanced summary .problem-count"), "1 to fix");
    assert!(exists(&root, "#label-smoothing-error"));
}

#[wasm_bindgen_test]
async fn a_preset_rewrites_the_boxes_even_after_typing_and_shows_as_pressed() {
    let (root, _mounted) = mount(offline_studio(), TrainPanel).await;
    type_into(&root, "#epochs", "7");
    settle().await;
    assert_eq!(input(&root, "#epochs").value(), "7");
    assert_eq!(attribute(&root, "[data-preset=\"full-fine-tune\"]", "aria-pressed").as_deref(), Some("false"));

    click(&root, "[data-preset=\"full-fine-tune\"]");
    settle().await;
    assert_eq!(input(&root, "#epochs").value(), "10");
    assert_eq!(input(&root, "#lr").value(), "0.01");
    assert_eq!(input(&root, "#warmup-epochs").value(), "1");
    assert!(input(&root, "#nesterov").checked());
    assert!(input(&root, "#random-crop").checked());
    assert!(input(&root, "#horizontal-flip").checked());
    let schedule: HtmlSelectElement = find(&root, "#schedule").unchecked_into();
    assert_eq!(schedule.value(), "cosine");
    assert_eq!(attribute(&root, "[data-preset=\"full-fine-tune\"]", "aria-pressed").as_deref(), Some("true"));
    assert_eq!(attribute(&root, "[data-preset=\"quick-check\"]", "aria-pressed").as_deref(), Some("false"));
}

#[wasm_bindgen_test]
async fn the_epoch_table_has_a_row_per_finished_epoch_and_grows_with_the_next() {
    let studio = with_runs(offline_studio(), vec![run(1, "running", vec![epoch(1, 0.4), epoch(2, 0.5)])]);
    let (root, _mounted) = mount(studio, RunDetail).await;
    assert_eq!(text(&root, "#detail-title"), "Run #1 — tiny");
    assert_eq!(count(&root, "#epochs tbody tr"), 2);
    assert_eq!(texts(&root, "#epochs tbody tr:first-child td"), ["1", "1.2346", "45.0", "1.3000", "40.0", "2.0"]);

    studio.apply(ServerMessage::EpochCompleted { run_id: 1, metrics: epoch(3, 0.6) });
    settle().await;
    assert_eq!(count(&root, "#epochs tbody tr"), 3);
    assert_eq!(texts(&root, "#epochs tbody tr:last-child td")[4], "60.0");
}

#[wasm_bindgen_test]
async fn the_progress_bar_shows_the_preparation_step_then_the_batches() {
    let studio = with_runs(offline_studio(), vec![run(1, "running", vec![])]);
    let (root, _mounted) = mount(studio, RunDetail).await;
    assert_eq!(text(&root, "#progress .progress-text"), "preparing epoch 1 of 3");

    let preparation = Preparation {
        step: PreparationStep::Decoding,
        subject: "tiny".into(),
        done: 12,
        total: Some(48),
        per_second: Some(24.2),
    };
    studio.apply(ServerMessage::Preparing { run_id: 1, preparation });
    settle().await;
    assert_eq!(text(&root, "#progress .progress-text"), "decoding tiny — 12 of 48 images · 24 images/s");
    let bar: HtmlProgressElement = find(&root, "#progress progress").dyn_into().unwrap();
    assert_eq!((bar.value(), bar.max()), (25.0, 100.0), "the bar shows the step while preparing");

    let batch = BatchProgress {
        run_id: 1,
        epoch: 1,
        batch: 2,
        batches: 8,
        loss: 2.0,
        batch_loss: None,
        images_per_second: 100.0,
        eta_seconds: 65.0,
    };
    studio.apply(ServerMessage::Progress(batch));
    settle().await;
    assert!(text(&root, "#progress .progress-text").starts_with("epoch 1 — batch 2/8"), "the first batch replaces it");
    assert_eq!((bar.value(), bar.max()), (8.3, 100.0), "then the whole run: 2 of 8 batches of 1 of 3 epochs");
}

#[wasm_bindgen_test]
async fn the_chart_draws_a_train_and_a_test_point_per_epoch() {
    let studio = with_runs(offline_studio(), vec![run(1, "running", vec![epoch(1, 0.4), epoch(2, 0.5)])]);
    let (root, _mounted) = mount(studio, RunDetail).await;
    for series in ["accuracy-train", "accuracy-test", "loss-train", "loss-test"] {
        let points = attribute(&root, &format!("#chart polyline.{series}"), "points").unwrap_or_default();
        assert_eq!(points.split_whitespace().count(), 2, "{series} has a point per epoch: {points:?}");
    }
    assert_eq!(count(&root, "#chart .panel-accuracy circle.marker.test"), 2);

    studio.apply(ServerMessage::EpochCompleted { run_id: 1, metrics: epoch(3, 0.6) });
    settle().await;
    assert_eq!(count(&root, "#chart .panel-accuracy circle.marker.test"), 3);
}

#[wasm_bindgen_test]
async fn the_confusion_matrix_has_a_labelled_cell_for_every_pair_of_classes() {
    let mut best = epoch(1, 0.8);
    best.confusion = vec![vec![5, 1, 0], vec![2, 3, 0], vec![0, 0, 4]];
    best.per_class_accuracy = vec![5.0 / 6.0, 0.6, 1.0];
    let studio = with_runs(offline_studio(), vec![run(1, "completed", vec![best])]);
    let (root, _mounted) = mount(studio, RunDetail).await;
    assert_eq!(count(&root, "#confusion tbody tr"), 3);
    assert_eq!(count(&root, "#confusion td.cell"), 9);
    assert_eq!(count(&root, "#confusion td.cell.diagonal"), 3);
    let dog_as_cat = find(&root, "#confusion td[data-actual=\"1\"][data-predicted=\"0\"] button");
    assert_eq!(dog_as_cat.get_attribute("aria-label").as_deref(), Some("dog predicted as cat: 2 (40.0 %)"));
    assert_eq!(dog_as_cat.text_content().as_deref(), Some("2"));
    // An empty cell has nothing to open.
    assert!(!exists(&root, "#confusion td[data-actual=\"0\"][data-predicted=\"2\"] button"));
    assert_eq!(texts(&root, "#per-class tbody tr td:first-child"), ["cat", "dog", "frog"]);
}

#[wasm_bindgen_test]
async fn picking_a_run_in_the_list_shows_it_in_the_detail() {
    let studio =
        with_runs(offline_studio(), vec![run(1, "completed", vec![epoch(1, 0.4)]), run(2, "running", Vec::new())]);
    let (root, _mounted) = mount(studio, || view! { <RunList/> <RunDetail/> }).await;
    assert_eq!(texts(&root, "#runs .run-id"), ["#2", "#1"]);
    // Only a run with a finished epoch has a training time to show.
    assert!(exists(&root, "#runs [data-run-id=\"1\"] .run-duration"));
    assert!(!exists(&root, "#runs [data-run-id=\"2\"] .run-duration"), "no \"0 s\" before the first epoch");
    assert_eq!(text(&root, "#detail-title"), "Run #2 — tiny");

    click(&root, "#runs [data-run-id=\"1\"] .run-button");
    settle().await;
    assert_eq!(text(&root, "#detail-title"), "Run #1 — tiny");
    assert_eq!(attribute(&root, "#runs [data-run-id=\"1\"] .run-button", "aria-pressed").as_deref(), Some("true"));
    assert_eq!(count(&root, "#epochs tbody tr"), 1);
}

#[wasm_bindgen_test]
async fn a_classified_image_shows_its_top_five_with_percentages_and_bars() {
    let answer: ImageClassification = serde_json::from_value(serde_json::json!({
        "name": "kitten.png",
        "predictions": [
            {"label": "cat", "index": 3, "probability": 0.625},
            {"label": "dog", "index": 5, "probability": 0.2},
            {"label": "deer", "index": 4, "probability": 0.1},
            {"label": "frog", "index": 6, "probability": 0.05},
            {"label": "bird", "index": 2, "probability": 0.025},
        ],
    }))
    .unwrap();
    let card = Classified {
        answered_by: Some(AnsweredBy { run_id: 3, caption: run_caption(3, Some("kittens")) }),
        predictions: answer.predictions,
        error: answer.error,
        explanation: answer.explanation,
        ..Classified::new(1, answer.name, String::new())
    };
    let (root, _mounted) = mount(offline_studio(), move || classified_card(true, card, ())).await;
    assert_eq!(text(&root, ".image-name"), "kitten.png");
    assert_eq!(text(&root, ".answered-by"), "run 3 · kittens");
    assert_eq!(texts(&root, "#predictions .label"), ["cat", "dog", "deer", "frog", "bird"]);
    assert_eq!(texts(&root, "#predictions .probability"), ["62.5 %", "20.0 %", "10.0 %", "5.0 %", "2.5 %"]);
    let widths: Vec<String> = (1..=5)
        .map(|n| attribute(&root, &format!("#predictions li:nth-child({n}) .bar-fill"), "style").unwrap_or_default())
        .collect();
    assert_eq!(widths, ["width: 62.5%", "width: 20.0%", "width: 10.0%", "width: 5.0%", "width: 2.5%"]);
    assert!(!exists(&root, ".image-error"));
}

#[wasm_bindgen_test]
async fn an_image_the_server_could_not_read_shows_why_and_no_predictions() {
    let card = Classified {
        error: Some("not a PNG, JPEG, WebP, BMP or GIF image".into()),
        ..Classified::new(1, "notes.png".into(), String::new())
    };
    let (root, _mounted) = mount(offline_studio(), move || classified_card(true, card, ())).await;
    assert_eq!(text(&root, ".image-error"), "not a PNG, JPEG, WebP, BMP or GIF image");
    assert_eq!(count(&root, "#predictions li"), 0);
}

#[wasm_bindgen_test]
async fn an_explained_image_is_overlaid_with_one_heat_map_cell_per_position() {
    let answer: ImageClassification = serde_json::from_value(serde_json::json!({
        "name": "kitten.png",
        "predictions": [{"label": "cat", "index": 3, "probability": 0.9}],
        "explanation": {"layer": "layer3", "class_index": 3, "width": 3, "height": 2, "cam": [0, 0.5, 1, 0, 0, 0.25]},
    }))
    .unwrap();
    let card = Classified {
        predictions: answer.predictions,
        explanation: answer.explanation,
        ..Classified::new(1, answer.name, String::new())
    };
    let (root, _mounted) = mount(offline_studio(), move || classified_card(true, card, ())).await;
    assert_eq!(attribute(&root, "svg.heatmap", "data-width").as_deref(), Some("3"));
    assert_eq!(attribute(&root, "svg.heatmap", "data-height").as_deref(), Some("2"));
    assert_eq!(count(&root, "svg.heatmap rect.cam-cell"), 6);
    assert_eq!(attribute(&root, "svg.heatmap rect:nth-child(3)", "fill").as_deref(), Some("hsl(0, 100%, 50%)"));
    assert!(attribute(&root, "svg.heatmap", "aria-label").unwrap_or_default().contains("cat"));
}

/// A run of sweep 1's trial `trial`, ended as `status` after epochs of these test accuracies.
fn trial_run(id: u64, trial: u32, status: &str, accuracies: &[f64]) -> Run {
    let epochs = accuracies.iter().enumerate().map(|(i, &a)| epoch(i as u32 + 1, a)).collect();
    let mut run = run(id, status, epochs);
    run.sweep = Some(shared::sweep::SweepRef { id: 1, trial });
    run
}

/// Sweep 1 as the server reports it: a random sweep of a log-uniform learning rate and the optimizer, with
/// ASHA, whose trial 2 was pruned after its first epoch.
fn pruned_sweep() -> shared::sweep::Sweep {
    let sentence = "stopped after epoch 1: 40.0 % was not in the top third of the 2 trials that reached epoch 1 \
                    (the cut was 80.0 %)";
    serde_json::from_value(serde_json::json!({
        "id": 1, "name": "sweep of lr, optimizer", "status": "completed", "created_at": 0,
        "request": {
            "base": {"dataset": "tiny", "epochs": 3},
            "parameters": {
                "lr": {"min": 0.0001, "max": 0.1, "distribution": "log_uniform"},
                "optimizer": {"values": ["sgd", "adamw"]},
            },
            "method": "random", "trials": 2, "early_stopping": {"asha": {"grace_epochs": 1, "eta": 3}},
        },
        "trials": [
            {"trial": 1, "parameters": {"lr": 0.01, "optimizer": "sgd"}, "run_id": 11, "status": "completed",
             "epochs_done": 3, "best_metric": 0.9, "retries": 0},
            {"trial": 2, "parameters": {"lr": 0.0003, "optimizer": "adamw"}, "run_id": 12, "status": "pruned",
             "epochs_done": 1, "best_metric": 0.4, "retries": 0, "note": sentence},
        ],
        "decisions": [
            {"trial": 1, "epoch": 1, "metric": 0.8, "reached": 1, "cut": 0.8, "continued": true,
             "sentence": "went on after epoch 1: 80.0 % was in the top third of the 1 trial that reached epoch 1"},
            {"trial": 2, "epoch": 1, "metric": 0.4, "reached": 2, "cut": 0.8, "continued": false, "sentence": sentence},
        ],
    }))
    .unwrap()
}

#[wasm_bindgen_test]
async fn a_sweep_ranks_its_trials_draws_a_pruned_one_dashed_with_why_and_lists_its_decisions() {
    let studio = with_runs(
        offline_studio(),
        vec![trial_run(11, 1, "completed", &[0.8, 0.85, 0.9]), trial_run(12, 2, "pruned", &[0.4])],
    );
    studio.apply(ServerMessage::SweepUpdated { sweep: pruned_sweep() });
    let (root, _mounted) = mount(studio, SweepsCard).await;
    assert_eq!(texts(&root, "#sweep-list .run-facts"), ["2 of 2 trials done"]);
    assert_eq!(attribute(&root, "#sweep-leaderboard tbody tr:first-child", "data-trial").as_deref(), Some("1"));
    assert_eq!(texts(&root, "#sweep-leaderboard td.trial-best"), ["90.0 %", "40.0 %"]);
    let note = text(&root, "#sweep-leaderboard tr[data-status='pruned'] .trial-note");
    assert!(note.starts_with("stopped after epoch 1: 40.0 %"), "{note}");
    assert_eq!(text(&root, "#sweep-best"), "Best: 90.0 % test accuracy, trial 1 (lr = 0.01, optimizer = sgd)");

    assert_eq!(count(&root, "#sweep-curves polyline.trial-curve"), 2);
    assert_eq!(count(&root, "#sweep-curves polyline.trial-curve.pruned"), 1);
    assert_eq!(attribute(&root, "#sweep-curves polyline.pruned", "data-trial").as_deref(), Some("2"));
    assert!(text(&root, "#sweep-curves path.stop-mark title").starts_with("Trial 2 was pruned: stopped after epoch 1"));

    assert_eq!(texts(&root, "#sweep-parallel .axis-title"), ["Learning rate", "Optimizer", "Test accuracy"]);
    let ticks = texts(&root, "#sweep-parallel g.pc-axis:nth-of-type(2) .tick");
    assert_eq!(ticks, ["sgd", "adamw"], "the optimizer's axis is categorical");
    let lr_ticks = texts(&root, "#sweep-parallel g.pc-axis:first-of-type .tick");
    assert!(lr_ticks.contains(&"0.001".to_string()) && lr_ticks.contains(&"0.01".to_string()), "{lr_ticks:?}");
    assert_eq!(count(&root, "#sweep-parallel polyline.pc-line"), 2);
    assert_eq!(count(&root, "#sweep-parallel polyline.pc-line.pruned"), 1);

    assert_eq!(count(&root, "#sweep-decisions li"), 2);
    assert_eq!(count(&root, "#sweep-decisions li.pruned"), 1);
    assert!(!exists(&root, "#stop-sweep") && !exists(&root, "#resume-sweep"), "a completed sweep is neither");
}

/// ASHA's promotion variant: a trial waiting at a rung shows as waiting, not as the stopped run it is.
#[wasm_bindgen_test]
async fn a_trial_waiting_at_a_rung_shows_as_waiting_with_its_note() {
    let studio =
        with_runs(offline_studio(), vec![trial_run(21, 1, "stopped", &[0.5]), trial_run(22, 2, "running", &[0.3])]);
    let waits = "waits after epoch 1 until it is among the best of the trials that reach it";
    let sweep = serde_json::from_value(serde_json::json!({
        "id": 1, "name": "promoted", "status": "running", "created_at": 0,
        "request": {
            "base": {"dataset": "tiny", "epochs": 3}, "parameters": {"lr": {"values": [0.1, 0.01]}},
            "early_stopping": {"asha": {"grace_epochs": 1, "eta": 3, "variant": "promotion"}},
        },
        "trials": [
            {"trial": 1, "parameters": {"lr": 0.1}, "run_id": 21, "status": "stopped", "epochs_done": 1,
             "best_metric": 0.5, "retries": 0, "note": waits, "waiting_at": 1},
            {"trial": 2, "parameters": {"lr": 0.01}, "run_id": 22, "status": "running", "epochs_done": 1,
             "best_metric": 0.3, "retries": 0},
        ],
        "decisions": [],
    }))
    .unwrap();
    studio.apply(ServerMessage::SweepUpdated { sweep });
    let (root, _mounted) = mount(studio, SweepsCard).await;
    assert_eq!(text(&root, "#sweep-leaderboard tr[data-trial='1'] .trial-status .badge"), "waiting");
    assert_eq!(text(&root, "#sweep-leaderboard tr[data-trial='1'] .trial-note"), waits);
    assert_eq!(text(&root, "#sweep-leaderboard tr[data-trial='2'] .trial-status .badge"), "running");
    // Its curve ends in a pause mark saying what it waits for; nobody's in a cross.
    assert_eq!(count(&root, "#sweep-curves path.wait-mark"), 1);
    assert_eq!(text(&root, "#sweep-curves path.wait-mark title"), format!("Trial 1 {waits}"));
    assert_eq!(count(&root, "#sweep-curves path.stop-mark"), 0);
    assert!(text(&root, ".config-summary").ends_with("ASHA, promotion (grace 1 epoch, eta 3)"));
}

#[wasm_bindgen_test]
async fn the_editor_counts_the_trials_as_values_are_typed_and_names_each_problem() {
    let studio = offline_studio();
    studio.sweep_base.set(Some(serde_json::from_value(serde_json::json!({"dataset": "tiny", "epochs": 2})).unwrap()));
    let (root, _mounted) = mount(studio, SweepsCard).await;
    assert_eq!(texts(&root, "#sweep-problems li"), ["a sweep varies at least one setting: parameters is empty"]);
    let add: HtmlSelectElement = find(&root, "select#sweep-add").dyn_into().unwrap();
    add.set_value("lr");
    let init = EventInit::new();
    init.set_bubbles(true);
    add.dispatch_event(&Event::new_with_event_init_dict("change", &init).unwrap()).unwrap();
    settle().await;
    type_into(&root, "#sweep-values-lr", "0.1, 0.01, 0.001");
    settle().await;
    assert_eq!(text(&root, "#sweep-summary"), "3 trials: 3 trials × 2 epochs = 6 epochs at most");
    assert!(texts(&root, "#sweep-problems li").is_empty());
    type_into(&root, "#sweep-values-lr", "0.1, fast");
    settle().await;
    assert_eq!(texts(&root, "#sweep-problems li"), ["lr: \"fast\" is not a number"]);
    assert_eq!(text(&root, "#sweep-summary"), "1 trial: 1 trial × 2 epochs = 2 epochs at most", "what was read counts");
    // Either variant of ASHA can be chosen; its grace and eta show with it.
    assert_eq!(count(&root, "#sweep-grace"), 0);
    let early: HtmlSelectElement = find(&root, "select#sweep-early").dyn_into().unwrap();
    let options = texts(&root, "select#sweep-early option");
    assert_eq!(options.len(), 3, "{options:?}");
    assert!(options[2].starts_with("ASHA, promotion: trials wait at a rung"), "{options:?}");
    early.set_value("asha-promotion");
    early.dispatch_event(&Event::new_with_event_init_dict("change", &init).unwrap()).unwrap();
    settle().await;
    assert_eq!(count(&root, "#sweep-grace"), 1);
    assert_eq!(early.value(), "asha-promotion", "the choice stays chosen as the editor redraws");
    assert!(text(&root, "#sweep-summary").ends_with("ASHA trains fewer, judging trials after epoch 1"));
}
