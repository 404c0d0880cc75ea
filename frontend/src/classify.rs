//! The classify card: images come in through one picker, a drop onto the card or a paste (Ctrl+V anywhere
//! on the page while the card is on screen); each becomes a card with its top predictions, the run whose
//! model gave them and, with "Explain" ticked, a Grad-CAM heat map over the image. A result is never
//! re-scored behind the user's back: choosing another model, or a newer run finishing, applies to images
//! classified afterwards, and "Classify again with run N" re-scores the shown ones on request. Results sit
//! side by side as the card's width allows; pressing an image shows it large, with its heat map and the
//! legend of the map's colours. An image
//! the model got wrong can be added, with its right class, to a new version of the dataset the model
//! trained on ([`crate::versions::AddToDataset`]). The camera mode ([`crate::webcam`]) classifies
//! live frames in the same card.

use std::collections::HashMap;

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::{Explanation, ImageClassification, Prediction};
use wasm_bindgen::JsCast;

use crate::state::StudioState;
use crate::webcam::CameraMode;
use crate::{api, format, heatmap, studio};

/// The image types the picker offers and drops and pastes are taken in.
const IMAGE_TYPES: &str = "image/png,image/jpeg,image/webp,image/bmp,image/gif";

/// One image on the card and what a model said about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Classified {
    /// Identifies the image on this page, across re-classifications.
    pub key: u64,
    /// The file's name.
    pub name: String,
    /// Object URL of the file, for the `<img>`.
    pub url: String,
    /// The run whose model gave the predictions below; `None` before any answer.
    pub answered_by: Option<AnsweredBy>,
    /// The request this image waits for; `None` when it waits for none.
    pub pending: Option<u64>,
    /// Top classes, most likely first; empty until answered or when it failed.
    pub predictions: Vec<Prediction>,
    /// Why this image could not be classified.
    pub error: Option<String>,
    /// Grad-CAM of the top class, when "Explain" was ticked.
    pub explanation: Option<Explanation>,
    /// The path the server keeps the image under for adding to a dataset, once sent there
    /// ([`shared::AddedImage`]); the same for every dataset, as it names the image's bytes.
    pub added: Option<String>,
}

impl Classified {
    /// A new image, not yet sent.
    pub fn new(key: u64, name: String, url: String) -> Self {
        Classified {
            key,
            name,
            url,
            answered_by: None,
            pending: None,
            predictions: Vec::new(),
            error: None,
            explanation: None,
            added: None,
        }
    }
}

/// The run that answered for an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnsweredBy {
    /// The run's id.
    pub run_id: u64,
    /// How the card names it, e.g. `run 3 · my-run`.
    pub caption: String,
}

/// How a result names the run that produced it: `run 3 · my-run`, or `run 3` for an unnamed run.
pub fn run_caption(run_id: u64, name: Option<&str>) -> String {
    match name.map(str::trim).filter(|name| !name.is_empty()) {
        Some(name) => format!("run {run_id} · {name}"),
        None => format!("run {run_id}"),
    }
}

/// Marks the images `keys` as waiting for request `request`, clearing their errors.
pub fn mark_pending(cards: &mut [Classified], keys: &[u64], request: u64) {
    for card in cards.iter_mut().filter(|card| keys.contains(&card.key)) {
        card.pending = Some(request);
        card.error = None;
    }
}

/// Puts request `request`'s answers into the images `keys` (in that order), as given by `by`. Images that
/// no longer wait for this request (cleared, or sent again since) and every other image keep what they have.
pub fn fill(cards: &mut [Classified], keys: &[u64], request: u64, by: &AnsweredBy, results: Vec<ImageClassification>) {
    for (key, result) in keys.iter().zip(results) {
        if let Some(card) = cards.iter_mut().find(|card| card.key == *key && card.pending == Some(request)) {
            card.pending = None;
            card.answered_by = Some(by.clone());
            card.predictions = result.predictions;
            card.error = result.error;
            card.explanation = result.explanation;
        }
    }
}

/// Request `request` failed with `why`: the images still waiting for it say so and keep their last answer.
pub fn fail(cards: &mut [Classified], request: u64, why: &str) {
    for card in cards.iter_mut().filter(|card| card.pending == Some(request)) {
        card.pending = None;
        card.error = Some(format!("Could not classify: {why}"));
    }
}

/// The run to offer "Classify again with" for: the chosen model, when some shown image was answered by
/// another run.
pub fn offer_again(cards: &[Classified], chosen: Option<u64>) -> Option<u64> {
    let chosen = chosen?;
    cards.iter().any(|card| card.answered_by.as_ref().is_some_and(|by| by.run_id != chosen)).then_some(chosen)
}

/// The answered images without a heat map, grouped by the run that answered them (in order of first
/// appearance): ticking "Explain" asks each image's own run for its map, so no image changes model.
pub fn unexplained_by_run(cards: &[Classified]) -> Vec<(u64, Vec<u64>)> {
    let mut groups: Vec<(u64, Vec<u64>)> = Vec::new();
    let waiting = cards.iter().filter(|card| card.pending.is_none() && card.explanation.is_none());
    for (run_id, key) in waiting.filter_map(|card| card.answered_by.as_ref().map(|by| (by.run_id, card.key))) {
        match groups.iter_mut().find(|(id, _)| *id == run_id) {
            Some((_, keys)) => keys.push(key),
            None => groups.push((run_id, vec![key])),
        }
    }
    groups
}

/// Whether a file of this MIME type is an image the server can read.
pub fn is_image_type(mime: &str) -> bool {
    IMAGE_TYPES.split(',').any(|known| known.eq_ignore_ascii_case(mime))
}

/// The sentence for files that were not taken because they are not images.
pub fn skipped_sentence(skipped: &[String]) -> Option<String> {
    match skipped {
        [] => None,
        [one] => Some(format!("{one} is not a PNG, JPEG, WebP, BMP or GIF image, so it was left out.")),
        many => Some(format!("{} are not PNG, JPEG, WebP, BMP or GIF images, so they were left out.", many.join(", "))),
    }
}

/// The image shown large on the card, by key: one at a time, and kept while the card's list is redrawn.
#[derive(Clone, Copy)]
struct Enlarged(RwSignal<Option<u64>>);

/// The card's images and the requests that classify them.
#[derive(Clone, Copy)]
struct Images {
    cards: RwSignal<Vec<Classified>>,
    /// Each image's bytes by key, to send again.
    files: StoredValue<HashMap<u64, web_sys::Blob>, LocalStorage>,
    /// The last key and the last request number handed out.
    counters: StoredValue<(u64, u64)>,
    explain: RwSignal<bool>,
    error: RwSignal<Option<String>>,
    /// The page's state, for the names of the runs that answer.
    state: RwSignal<StudioState>,
    /// The page's marked dataset edits, where an image added to a dataset is marked.
    pending: RwSignal<crate::versions::PendingEdits>,
}

impl Images {
    fn new(state: RwSignal<StudioState>) -> Self {
        Images {
            state,
            pending: crate::versions::pending(),
            cards: RwSignal::new(Vec::new()),
            files: StoredValue::new_local(HashMap::new()),
            counters: StoredValue::new((0, 0)),
            explain: RwSignal::new(false),
            error: RwSignal::new(None),
        }
    }

    /// Shows `files` first on the card (the images among them) and classifies them with `run`.
    fn take(self, files: Vec<web_sys::File>, run: Option<u64>) {
        let (images, others): (Vec<_>, Vec<_>) = files.into_iter().partition(|file| is_image_type(&file.type_()));
        self.error.set(skipped_sentence(&others.iter().map(web_sys::File::name).collect::<Vec<_>>()));
        if images.is_empty() {
            return;
        }
        let Some(run_id) = run else {
            self.error.set(Some("No run has a trained model yet: train one first.".into()));
            return;
        };
        let mut added = Vec::with_capacity(images.len());
        for file in images {
            let key = self.counters.with_value(|(key, _)| key + 1);
            self.counters.update_value(|(last, _)| *last = key);
            let url = web_sys::Url::create_object_url_with_blob(&file).unwrap_or_default();
            added.push(Classified::new(key, file.name(), url));
            self.files.update_value(|files| {
                files.insert(key, file.into());
            });
        }
        let keys: Vec<u64> = added.iter().map(|card| card.key).collect();
        self.cards.update(|cards| {
            added.append(cards);
            *cards = added;
        });
        self.send(run_id, keys, self.explain.get_untracked());
    }

    /// Classifies the images `keys` with run `run_id`, in one request.
    fn send(self, run_id: u64, keys: Vec<u64>, explain: bool) {
        let request = self.counters.with_value(|(_, request)| request + 1);
        self.counters.update_value(|(_, last)| *last = request);
        let parts: Vec<(web_sys::Blob, String)> = self.cards.with_untracked(|cards| {
            self.files.with_value(|files| {
                keys.iter()
                    .filter_map(|key| {
                        let name = cards.iter().find(|card| card.key == *key)?.name.clone();
                        Some((files.get(key)?.clone(), name))
                    })
                    .collect()
            })
        });
        self.cards.update(|cards| mark_pending(cards, &keys, request));
        let state = self.state;
        spawn_local(async move {
            match api::classify_batch(run_id, &parts, explain).await {
                Ok(answer) => {
                    let name = state.with_untracked(|s| s.run(answer.run_id).and_then(|run| run.name.clone()));
                    let by = AnsweredBy { run_id: answer.run_id, caption: run_caption(answer.run_id, name.as_deref()) };
                    self.cards.update(|cards| fill(cards, &keys, request, &by, answer.results));
                }
                Err(why) => self.cards.update(|cards| fail(cards, request, &why.to_string())),
            }
        });
    }

    /// Sends every shown image again to `run_id`: the user asked for it.
    fn classify_again(self, run_id: u64) {
        let keys: Vec<u64> = self.cards.with_untracked(|cards| cards.iter().map(|card| card.key).collect());
        self.send(run_id, keys, self.explain.get_untracked());
    }

    /// Asks each answered image's own run for the heat maps they lack.
    fn explain_shown(self) {
        for (run_id, keys) in self.cards.with_untracked(|cards| unexplained_by_run(cards)) {
            self.send(run_id, keys, true);
        }
    }

    /// Sends image `key` to dataset `dataset` and marks it to be added there as `class` in the
    /// next version; an empty `class` forgets the mark.
    fn add_to_dataset(self, key: u64, dataset: String, class: String) {
        let pending = self.pending;
        let added = self.cards.with_untracked(|cards| cards.iter().find(|card| card.key == key)?.added.clone());
        if class.is_empty() {
            let forget = |path: String| pending.update(|p| p.set(&dataset, &path, crate::versions::Mark::Keep));
            added.map(forget);
            return;
        }
        let Some(blob) = self.files.with_value(|files| files.get(&key).cloned()) else { return };
        spawn_local(async move {
            match api::add_dataset_image(&dataset, &blob).await {
                Ok(added) => {
                    pending.update(|p| p.set(&dataset, &added.path, crate::versions::Mark::Relabel(class)));
                    self.cards.update(|cards| {
                        if let Some(card) = cards.iter_mut().find(|card| card.key == key) {
                            card.added = Some(added.path);
                        }
                    });
                }
                Err(why) => self.error.set(Some(format!("Could not add the image to {dataset}: {why}"))),
            }
        });
    }

    /// Removes every image and its answer from the card.
    fn clear(self) {
        for card in self.cards.get_untracked() {
            let _ = web_sys::Url::revoke_object_url(&card.url);
        }
        self.cards.set(Vec::new());
        self.files.set_value(HashMap::new());
        self.error.set(None);
    }
}

/// The files of a file list, a drop or a paste.
fn files_of(list: Option<web_sys::FileList>) -> Vec<web_sys::File> {
    list.map(|files| (0..files.length()).filter_map(|i| files.get(i)).collect()).unwrap_or_default()
}

/// Classifies chosen, dropped, pasted or filmed images with a trained run.
#[component]
pub fn ClassifyPanel() -> impl IntoView {
    let studio = studio();
    let chosen = RwSignal::new(None::<u64>);
    let classifier = Memo::new(move |_| studio.state.with(|s| s.classifying_run(chosen.get())));
    let images = Images::new(studio.state);
    let dragging = RwSignal::new(false);
    let card = NodeRef::<leptos::html::Section>::new();
    provide_context(Enlarged(RwSignal::new(None)));

    let paste = window_event_listener(leptos::ev::paste, move |ev: web_sys::ClipboardEvent| {
        let showing = card.get_untracked().is_some_and(|card| {
            let rect = card.get_bounding_client_rect();
            let viewport = window().inner_height().ok().and_then(|h| h.as_f64()).unwrap_or(0.0);
            crate::layout::on_screen(rect.top(), rect.bottom(), viewport)
        });
        let files = files_of(ev.clipboard_data().and_then(|data| data.files()));
        if showing && files.iter().any(|file| is_image_type(&file.type_())) {
            ev.prevent_default();
            images.take(files, classifier.get_untracked());
        }
    });
    on_cleanup(move || paste.remove());

    view! {
        <section
            class="card classify"
            class:dragging=move || dragging.get()
            id="classify"
            node_ref=card
            aria-labelledby="classify-title"
            on:dragover=move |ev: leptos::ev::DragEvent| {
                ev.prevent_default();
                dragging.set(true);
            }
            on:dragleave=move |ev: leptos::ev::DragEvent| {
                if !leaves_for_child(&ev) {
                    dragging.set(false);
                }
            }
            on:drop=move |ev: leptos::ev::DragEvent| {
                ev.prevent_default();
                dragging.set(false);
                images.take(files_of(ev.data_transfer().and_then(|t| t.files())), classifier.get_untracked());
            }
        >
            <h2 id="classify-title">"Classify images"</h2>
            <ModelChoice chosen classifier/>
            <div class="drop-zone">
                <input
                    id="classify-file"
                    class="visually-hidden"
                    type="file"
                    multiple
                    accept=IMAGE_TYPES
                    on:change=move |ev| {
                        let input: web_sys::HtmlInputElement = event_target(&ev);
                        images.take(files_of(input.files()), classifier.get_untracked());
                        input.set_value("");
                    }
                />
                <label for="classify-file" class="file-label">
                    <span class="file-button">"Choose images"</span>
                    <span class="file-hint">"PNG or JPEG, one or many — or drop them here, or paste one with Ctrl+V"</span>
                </label>
            </div>
            <ClassifyControls images classifier/>
            <CameraMode run=classifier/>
            <p id="classify-error" class="error" role="alert">{move || images.error.get()}</p>
            <Show when=move || images.explain.get() && images.cards.with(|cards| cards.iter().any(|c| c.explanation.is_some()))>
                <heatmap::HeatLegend id="classify-legend" counted_for="its top class"/>
            </Show>
            <div class="classified-list">
                {move || {
                    let explain = images.explain.get();
                    images.cards.get().into_iter().enumerate().map(|(i, card)| {
                        // Unticking "Explain" hides the maps; ticking it again shows them at once.
                        let card = if explain { card } else { Classified { explanation: None, ..card } };
                        let adding = add_control(images, &card);
                        classified_card(i == 0, card, adding)
                    }).collect_view()
                }}
            </div>
        </section>
    }
}

/// Whether a `dragleave` only moves onto a child of the card, which is not leaving it.
fn leaves_for_child(ev: &leptos::ev::DragEvent) -> bool {
    ev.related_target()
        .and_then(|t| t.dyn_into::<web_sys::Node>().ok())
        .zip(ev.current_target().and_then(|t| t.dyn_into::<web_sys::Node>().ok()))
        .is_some_and(|(to, card)| card.contains(Some(&to)))
}

/// The model menu: the runs with a model, the newest preselected until the user picks one. Picking one
/// changes nothing already shown.
#[component]
fn ModelChoice(chosen: RwSignal<Option<u64>>, classifier: Memo<Option<u64>>) -> impl IntoView {
    let studio = studio();
    let model_runs = Memo::new(move |_| {
        studio.state.with(|s| {
            s.runs
                .iter()
                .filter(|r| r.has_model)
                .map(|r| {
                    (
                        r.id,
                        format!(
                            "{} — {} ({})",
                            run_caption(r.id, r.name.as_deref()),
                            r.config.dataset,
                            r.status.as_str()
                        ),
                    )
                })
                .collect::<Vec<_>>()
        })
    });
    view! {
        <div class="field wide">
            <label for="classify-run">"Model"</label>
            <select id="classify-run" on:change=move |ev| chosen.set(event_target_value(&ev).parse().ok())>
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
    }
}

/// Explain, Clear, the waiting line and the offer to classify the shown images again with the chosen model.
#[component]
fn ClassifyControls(images: Images, classifier: Memo<Option<u64>>) -> impl IntoView {
    let studio = studio();
    let waiting =
        Memo::new(move |_| images.cards.with(|cards| cards.iter().filter(|card| card.pending.is_some()).count()));
    let again = Memo::new(move |_| images.cards.with(|cards| offer_again(cards, classifier.get())));
    let again_label = move || {
        again.get().map(|id| {
            let name = studio.state.with(|s| s.run(id).and_then(|run| run.name.clone()));
            format!("Classify again with {}", run_caption(id, name.as_deref()))
        })
    };
    view! {
        <div class="classify-controls">
            <div class="field check explain-toggle">
                <input
                    id="classify-explain"
                    type="checkbox"
                    prop:checked=move || images.explain.get()
                    on:change=move |ev| {
                        images.explain.set(event_target_checked(&ev));
                        if images.explain.get_untracked() {
                            images.explain_shown();
                        }
                    }
                />
                <label for="classify-explain" title="A Grad-CAM heat map over each image: red where it counted most for its top class">
                    "Explain (heat map)"
                </label>
            </div>
            <button
                id="classify-clear"
                type="button"
                disabled=move || images.cards.with(Vec::is_empty)
                on:click=move |_| images.clear()
            >
                "Clear results"
            </button>
        </div>
        <Show when=move || again.get().is_some()>
            <button
                id="classify-again"
                type="button"
                on:click=move |_| {
                    if let Some(id) = again.get_untracked() {
                        images.classify_again(id);
                    }
                }
            >
                {again_label}
            </button>
        </Show>
        <p class="pending" role="status">
            {move || match waiting.get() {
                0 => None,
                1 => Some("Classifying…".to_string()),
                n => Some(format!("Classifying {n} images…")),
            }}
        </p>
    }
}

/// The top predictions as a list of labelled bars, most likely first.
pub fn prediction_items(predictions: Vec<Prediction>) -> impl IntoView {
    predictions
        .into_iter()
        .map(|p| {
            let width = format!("width: {:.1}%", (p.probability * 100.0).clamp(0.0, 100.0));
            view! {
                <li class="prediction">
                    <span class="label">{p.label}</span>
                    <span class="probability">{format::percent(p.probability)}</span>
                    <div class="bar" aria-hidden="true"><div class="bar-fill" style=width></div></div>
                </li>
            }
        })
        .collect_view()
}

/// "Add to <dataset> as…" for an answered image whose run trained on a dataset the page lists.
fn add_control(images: Images, card: &Classified) -> Option<impl IntoView> {
    // A file the model could not read (a text file named .png) is nothing to add.
    let run_id = card.answered_by.as_ref().filter(|_| card.pending.is_none() && card.error.is_none())?.run_id;
    let dataset = crate::versions::run_dataset(run_id);
    let listed = studio().datasets.with_untracked(|list| crate::versions::takes_added_images(list, &dataset));
    let key = card.key;
    let choose = {
        let dataset = dataset.clone();
        Callback::new(move |class: String| images.add_to_dataset(key, dataset.clone(), class))
    };
    listed.then(|| view! { <crate::versions::AddToDataset dataset added=card.added.clone() choose/> })
}

/// One image's card, with `actions` under its predictions. The first keeps the ids `classify-preview`
/// and `predictions`. The picture is a button that shows it large, with its heat map, and small again.
pub fn classified_card(first: bool, card: Classified, actions: impl IntoView) -> impl IntoView {
    let Classified { key, name, url, answered_by, pending, predictions, error, explanation, added: _ } = card;
    let top_class = predictions.first().map(|p| p.label.clone()).unwrap_or_default();
    // The model saw the image stretched to a square; so does the map, and so the image under it.
    let heat_map = explanation.map(|explanation| heatmap::heat_map(&explanation, &top_class));
    let stretched = heat_map.is_some();
    let alt = format!("Uploaded image {name}");
    // A file the browser cannot draw shows a plain box saying so, not a broken-image icon and its alt text.
    let unreadable = RwSignal::new(false);
    let title = name.clone();
    let enlarged = use_context::<Enlarged>().map_or_else(|| RwSignal::new(None), |Enlarged(key)| key);
    let large = move || enlarged.get() == Some(key);
    let toggle = move |_| enlarged.update(|shown| *shown = if *shown == Some(key) { None } else { Some(key) });
    let figure_label = format!("Large view of {name}");
    let answered = answered_by.map(|by| {
        let title = format!("Classified by {}", by.caption);
        view! { <p class="answered-by" data-run-id=by.run_id.to_string() title=title>{by.caption}</p> }
    });
    view! {
        <div class="classified" class:enlarged=large data-key=key.to_string() aria-busy=pending.is_some().then_some("true")>
            // The map is beside the button, not in it, so that it keeps its own label for screen readers.
            <div class="classified-figure">
                <button
                    type="button"
                    class="figure-button"
                    aria-label=figure_label
                    aria-pressed=move || large().to_string()
                    title=move || if large() { "Show smaller" } else { "Show large" }
                    on:click=toggle
                >
                <img
                    id=first.then_some("classify-preview")
                    class="classified-image"
                    class:as-seen=stretched
                    class:hidden=move || unreadable.get()
                    src=url
                    alt=alt
                    on:error=move |_| unreadable.set(true)
                />
                    <Show when=move || unreadable.get()>
                        <span class="classified-image not-an-image" role="img" aria-label="Not an image the browser can show">
                            "Not an image"
                        </span>
                    </Show>
                </button>
                {heat_map}
            </div>
            <div class="prediction-block">
                <p class="image-name" title=title>{name}</p>
                {answered}
                {error.map(|e| view! { <p class="error image-error">{e}</p> })}
                <ul id=first.then_some("predictions") class="predictions">{prediction_items(predictions)}</ul>
                {actions}
            </div>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(key: u64) -> Classified {
        Classified::new(key, format!("image{key}.png"), String::new())
    }

    fn answer(label: &str) -> ImageClassification {
        serde_json::from_value(serde_json::json!({
            "name": "x.png",
            "predictions": [{"label": label, "index": 0, "probability": 0.9}],
        }))
        .unwrap()
    }

    fn by(run_id: u64) -> AnsweredBy {
        AnsweredBy { run_id, caption: run_caption(run_id, None) }
    }

    #[test]
    fn a_result_names_its_run_with_its_name_when_it_has_one() {
        assert_eq!(run_caption(3, Some("my-run")), "run 3 · my-run");
        assert_eq!(run_caption(3, None), "run 3");
        assert_eq!(run_caption(3, Some("  ")), "run 3");
    }

    #[test]
    fn an_answer_fills_only_the_images_it_was_asked_for() {
        let mut cards = vec![card(1), card(2), card(3)];
        mark_pending(&mut cards, &[1, 2], 7);
        fill(&mut cards, &[1, 2], 7, &by(4), vec![answer("red"), answer("blue")]);
        assert_eq!(cards[0].predictions[0].label, "red");
        assert_eq!(cards[1].predictions[0].label, "blue");
        assert_eq!(cards[1].answered_by, Some(by(4)));
        assert_eq!(cards[1].pending, None);
        assert!(cards[2].predictions.is_empty() && cards[2].answered_by.is_none(), "image 3 was not asked about");
    }

    #[test]
    fn a_late_answer_does_not_overwrite_a_newer_request_or_a_cleared_image() {
        let mut cards = vec![card(1)];
        mark_pending(&mut cards, &[1], 1);
        mark_pending(&mut cards, &[1], 2);
        fill(&mut cards, &[1, 9], 1, &by(1), vec![answer("old"), answer("gone")]);
        assert!(cards[0].predictions.is_empty(), "request 1 was overtaken by request 2");
        assert_eq!(cards[0].pending, Some(2));
        fill(&mut cards, &[1], 2, &by(2), vec![answer("new")]);
        assert_eq!(cards[0].predictions[0].label, "new");
        assert_eq!(cards.len(), 1);
    }

    #[test]
    fn a_failed_request_says_so_on_its_images_and_keeps_their_last_answer() {
        let mut cards = vec![card(1), card(2)];
        mark_pending(&mut cards, &[1, 2], 1);
        fill(&mut cards, &[1, 2], 1, &by(1), vec![answer("red"), answer("blue")]);
        mark_pending(&mut cards, &[1], 2);
        fail(&mut cards, 2, "the server answered 503");
        assert_eq!(cards[0].error.as_deref(), Some("Could not classify: the server answered 503"));
        assert_eq!(cards[0].predictions[0].label, "red");
        assert_eq!(cards[0].pending, None);
        assert_eq!(cards[1].error, None);
    }

    #[test]
    fn classifying_again_is_offered_only_when_a_shown_image_came_from_another_run() {
        let mut cards = vec![card(1), card(2)];
        assert_eq!(offer_again(&cards, Some(2)), None, "nothing answered yet");
        mark_pending(&mut cards, &[1, 2], 1);
        fill(&mut cards, &[1, 2], 1, &by(1), vec![answer("red"), answer("blue")]);
        assert_eq!(offer_again(&cards, Some(1)), None);
        assert_eq!(offer_again(&cards, None), None);
        assert_eq!(offer_again(&cards, Some(2)), Some(2));
    }

    #[test]
    fn explaining_asks_each_image_s_own_run() {
        let mut cards = vec![card(1), card(2), card(3), card(4)];
        mark_pending(&mut cards, &[1, 3], 1);
        fill(&mut cards, &[1, 3], 1, &by(5), vec![answer("a"), answer("b")]);
        mark_pending(&mut cards, &[2], 2);
        fill(&mut cards, &[2], 2, &by(6), vec![answer("c")]);
        assert_eq!(unexplained_by_run(&cards), vec![(5, vec![1, 3]), (6, vec![2])], "image 4 has no answer yet");
        cards[0].explanation =
            Some(Explanation { layer: "layer2".into(), class_index: 0, width: 1, height: 1, cam: vec![1.0] });
        assert_eq!(unexplained_by_run(&cards), vec![(6, vec![2]), (5, vec![3])], "in order of first appearance");
    }

    #[test]
    fn only_images_are_taken_and_the_others_are_named() {
        assert!(is_image_type("image/png") && is_image_type("image/JPEG") && is_image_type("image/webp"));
        assert!(!is_image_type("text/plain") && !is_image_type(""));
        assert_eq!(skipped_sentence(&[]), None);
        assert_eq!(
            skipped_sentence(&["notes.txt".into()]).unwrap(),
            "notes.txt is not a PNG, JPEG, WebP, BMP or GIF image, so it was left out."
        );
        assert!(skipped_sentence(&["a.txt".into(), "b.pdf".into()]).unwrap().starts_with("a.txt, b.pdf are not"));
    }
}
