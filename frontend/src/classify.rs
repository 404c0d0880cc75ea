//! The classify card: choose or drop one or more images; they go to the server in one request and
//! each comes back as a card with its top predictions and, with "Explain" ticked, a Grad-CAM heat map
//! over the image.

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::{Explanation, ImageClassification, Prediction};
use wasm_bindgen::JsCast;

use crate::{api, format, heatmap, studio};

/// One chosen image and what the model said about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Classified {
    /// The file's name.
    pub name: String,
    /// Object URL of the file, for the `<img>`.
    pub url: String,
    /// Top classes, most likely first; empty until answered or when it failed.
    pub predictions: Vec<Prediction>,
    /// Why this image could not be classified.
    pub error: Option<String>,
    /// Grad-CAM of the top class, when "Explain" was ticked.
    pub explanation: Option<Explanation>,
}

/// Classifies chosen or dropped images with a trained run.
#[component]
pub fn ClassifyPanel() -> impl IntoView {
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
    let cards = RwSignal::new(Vec::<Classified>::new());
    let error = RwSignal::new(None::<String>);
    let pending = RwSignal::new(false);
    let explain = RwSignal::new(false);
    let dragging = RwSignal::new(false);
    let images = StoredValue::new_local(Vec::<web_sys::File>::new());
    let requests = StoredValue::new(0u64);

    let classify = move || {
        let files = images.get_value();
        if files.is_empty() {
            return;
        }
        cards.update(|cards| {
            for card in cards.iter_mut() {
                card.predictions.clear();
                card.error = None;
                card.explanation = None;
            }
        });
        error.set(None);
        let Some(run_id) = classifier.get_untracked() else {
            error.set(Some("No run has a trained model yet: train one first.".into()));
            return;
        };
        requests.update_value(|n| *n += 1);
        let request = requests.get_value();
        pending.set(true);
        spawn_local(async move {
            let answer = api::classify_batch(run_id, &files, explain.get_untracked()).await;
            if requests.get_value() != request {
                return; // newer images or another run were chosen meanwhile
            }
            pending.set(false);
            match answer {
                Ok(answer) => cards.update(|cards| fill(cards, answer.results)),
                Err(why) => error.set(Some(why.to_string())),
            }
        });
    };
    let take = move |files: web_sys::FileList| {
        let files: Vec<web_sys::File> = (0..files.length()).filter_map(|i| files.get(i)).collect();
        if files.is_empty() {
            return;
        }
        for old in cards.get_untracked() {
            let _ = web_sys::Url::revoke_object_url(&old.url);
        }
        cards.set(
            files
                .iter()
                .map(|file| Classified {
                    name: file.name(),
                    url: web_sys::Url::create_object_url_with_blob(file).unwrap_or_default(),
                    predictions: Vec::new(),
                    error: None,
                    explanation: None,
                })
                .collect(),
        );
        images.set_value(files);
        classify();
    };
    let on_file = move |ev: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        if let Some(files) = input.files() {
            take(files);
        }
    };
    let on_drop = move |ev: leptos::ev::DragEvent| {
        ev.prevent_default();
        dragging.set(false);
        if let Some(files) = ev.data_transfer().and_then(|t| t.files()) {
            take(files);
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
            <h2 id="classify-title">"Classify images"</h2>
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
                    <span class="file-button">"Choose images"</span>
                    <span class="file-hint">"PNG or JPEG, one or many — or drop them onto this panel"</span>
                </label>
                <input id="classify-file" type="file" multiple accept="image/png,image/jpeg" on:change=on_file/>
            </div>
            <div class="field check explain-toggle">
                <input
                    id="classify-explain"
                    type="checkbox"
                    prop:checked=move || explain.get()
                    on:change=move |ev| {
                        explain.set(event_target_checked(&ev));
                        classify();
                    }
                />
                <label for="classify-explain" title="A Grad-CAM heat map over each image: red where it counted most for its top class">
                    "Explain (heat map)"
                </label>
            </div>
            <p class="pending" role="status">
                {move || pending.get().then(|| {
                    let n = cards.with(Vec::len);
                    if n == 1 { "Classifying…".to_string() } else { format!("Classifying {n} images…") }
                })}
            </p>
            <p id="classify-error" class="error" role="alert">{move || error.get()}</p>
            <div class="classified-list">
                {move || cards.get().into_iter().enumerate().map(|(i, card)| classified_card(i == 0, card)).collect_view()}
            </div>
        </section>
    }
}

/// Puts each answer into the card of the same position.
fn fill(cards: &mut [Classified], results: Vec<ImageClassification>) {
    for (card, result) in cards.iter_mut().zip(results) {
        card.predictions = result.predictions;
        card.error = result.error;
        card.explanation = result.explanation;
    }
}

/// One image's card. The first keeps the ids `classify-preview` and `predictions`.
pub fn classified_card(first: bool, card: Classified) -> impl IntoView {
    let Classified { name, url, predictions, error, explanation } = card;
    let top_class = predictions.first().map(|p| p.label.clone()).unwrap_or_default();
    // The model saw the image stretched to a square; so does the map, and so the image under it.
    let heat_map = explanation.map(|explanation| heatmap::heat_map(&explanation, &top_class));
    let stretched = heat_map.is_some();
    let items = predictions
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
        .collect_view();
    let alt = format!("Uploaded image {name}");
    let title = name.clone();
    view! {
        <div class="classified">
            <div class="classified-figure">
                <img id=first.then_some("classify-preview") class="classified-image" class:as-seen=stretched src=url alt=alt/>
                {heat_map}
            </div>
            <div class="prediction-block">
                <p class="image-name" title=title>{name}</p>
                {error.map(|e| view! { <p class="error image-error">{e}</p> })}
                <ul id=first.then_some("predictions") class="predictions">{items}</ul>
            </div>
        </div>
    }
}
