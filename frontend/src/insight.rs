//! What the shown run learned, class by class: per-class accuracy, the confusion matrix, the most
//! confused pairs, the highest-loss test images (each with a Grad-CAM heat map on request) and the
//! run's full configuration. The arithmetic is in [`crate::analysis`].
//!
//! A confusion cell or a confused pair drills down in place: its test images open in a panel beside
//! the matrix (a sheet over it on narrow screens), without scrolling the page. Focus moves into the
//! panel; Escape or Close shuts it and hands focus back to the cell or pair that opened it.

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::{Explanation, Run, TestImage};
use std::collections::HashMap;
use wasm_bindgen::JsCast;
use web_sys::HtmlElement;

use crate::analysis::{self, class_name, ConfusedPair};
use crate::{api, format, heatmap};

/// Test images fetched for one confusion cell.
const CELL_IMAGES: usize = 24;
/// Test images in the highest-loss gallery.
const HIGH_LOSS_IMAGES: usize = 12;
/// Pairs in the most-confused list.
const CONFUSED_PAIRS: usize = 5;

/// The best epoch's class-level results, for one run.
#[derive(Debug, Clone, PartialEq)]
struct ClassResults {
    run_id: u64,
    epoch: u32,
    classes: Vec<String>,
    per_class_accuracy: Vec<f64>,
    confusion: Vec<Vec<u32>>,
}

/// A gallery being loaded: the images, or why there are none.
#[derive(Debug, Clone, PartialEq, Default)]
struct Gallery {
    images: Vec<TestImage>,
    loading: bool,
    error: Option<String>,
}

/// Everything below the epoch table of the run detail.
#[component]
pub fn RunInsight(shown: Memo<Option<Run>>) -> impl IntoView {
    let results = Memo::new(move |_| {
        shown.with(|run| {
            let run = run.as_ref()?;
            let best = analysis::best_epoch(&run.epochs)?;
            Some(ClassResults {
                run_id: run.id,
                epoch: best.epoch,
                classes: run.classes.clone(),
                per_class_accuracy: best.per_class_accuracy.clone(),
                confusion: best.confusion.clone(),
            })
        })
    });
    // The gallery is refreshed whenever the saved model may have changed.
    let model_key = Memo::new(move |_| {
        shown.with(|r| r.as_ref().filter(|r| r.has_model).map(|r| (r.id, r.epochs.len(), r.status)))
    });
    let classes = Memo::new(move |_| shown.with(|r| r.as_ref().map(|r| r.classes.clone()).unwrap_or_default()));
    let cell = RwSignal::new(None::<(u64, usize, usize)>);
    // The cell button or pair that opened the drill-down, which gets focus back when it closes.
    let opener = StoredValue::new_local(None::<HtmlElement>);
    let cell_gallery = RwSignal::new(Gallery::default());
    let high_loss = RwSignal::new(Gallery::default());
    let cell_requests = StoredValue::new(0u64);
    let gallery_requests = StoredValue::new(0u64);

    Effect::new(move |_| {
        let Some((run_id, _, _)) = model_key.get() else {
            high_loss.set(Gallery::default());
            return;
        };
        gallery_requests.update_value(|n| *n += 1);
        let request = gallery_requests.get_value();
        high_loss.update(|g| g.loading = true);
        spawn_local(async move {
            let answer = api::test_images(run_id, None, HIGH_LOSS_IMAGES).await;
            if gallery_requests.get_value() == request {
                high_loss.set(gallery(answer));
            }
        });
    });
    // Another run shown: the chosen cell belonged to the last one.
    Effect::new(move |_| {
        let run_id = shown.with(|r| r.as_ref().map(|r| r.id));
        if cell.get_untracked().is_some_and(|(id, _, _)| Some(id) != run_id) {
            cell.set(None);
            cell_gallery.set(Gallery::default());
        }
    });
    let open_cell = move |run_id: u64, actual: usize, predicted: usize, from: Option<HtmlElement>| {
        opener.set_value(from);
        cell.set(Some((run_id, actual, predicted)));
        cell_requests.update_value(|n| *n += 1);
        let request = cell_requests.get_value();
        cell_gallery.set(Gallery { loading: true, ..Gallery::default() });
        spawn_local(async move {
            let answer = api::test_images(run_id, Some((actual, predicted)), CELL_IMAGES).await;
            if cell_requests.get_value() == request {
                cell_gallery.set(gallery(answer));
            }
        });
    };
    let close_cell = move || {
        cell.set(None);
        if let Some(from) = opener.try_update_value(Option::take).flatten().filter(|from| from.is_connected()) {
            focus_in_place(&from);
        }
    };

    view! {
        {move || results.get().filter(|r| !r.per_class_accuracy.is_empty() || !r.confusion.is_empty()).map(|r| {
            let pairs = analysis::most_confused_pairs(&r.confusion, CONFUSED_PAIRS);
            view! {
                <div class="insight-grid" class:drilling=move || cell.with(Option::is_some)>
                    <section class="insight confusion-block" aria-labelledby="confusion-title">
                        <h3 id="confusion-title">{format!("Confusion matrix — epoch {} (best)", r.epoch)}</h3>
                        <p class="hint">"Rows: true class; columns: predicted. Shade: share of the row. Click a cell to see its test images."</p>
                        <ConfusionMatrix results=r.clone() open_cell=open_cell/>
                    </section>
                    <section class="insight" aria-labelledby="per-class-title">
                        <h3 id="per-class-title">"Per-class accuracy"</h3>
                        <PerClassTable results=r.clone()/>
                    </section>
                    <section class="insight" aria-labelledby="confused-title">
                        <h3 id="confused-title">"Most confused pairs"</h3>
                        <ConfusedPairs run_id=r.run_id classes=r.classes.clone() pairs=pairs open_cell=open_cell/>
                    </section>
                    <CellPanel cell=cell gallery=cell_gallery classes=classes close=close_cell/>
                </div>
            }
        })}
        <Show when=move || model_key.with(Option::is_some)>
            <section class="insight" aria-labelledby="high-loss-title">
                <h3 id="high-loss-title">"Highest-loss test images"</h3>
                <GalleryView id="high-loss" gallery=high_loss classes=classes run_id=Signal::derive(move || model_key.get().map(|k| k.0)) empty="No test images to show yet."/>
            </section>
        </Show>
    }
}

/// The drill-down panel: one confusion cell's test images, beside the matrix. It takes focus when it
/// opens or shows another cell, and Escape closes it.
#[component]
fn CellPanel(
    cell: RwSignal<Option<(u64, usize, usize)>>,
    gallery: RwSignal<Gallery>,
    classes: Memo<Vec<String>>,
    close: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let panel = NodeRef::<leptos::html::Aside>::new();
    Effect::new(move |_| {
        if let (Some(_), Some(panel)) = (cell.get(), panel.get()) {
            focus_in_place(&panel);
        }
    });
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "Escape" {
            ev.prevent_default();
            close();
        }
    };
    view! {
        <Show when=move || cell.with(Option::is_some)>
            <aside
                id="cell-panel"
                class="cell-panel"
                role="dialog"
                aria-labelledby="cell-title"
                tabindex="-1"
                node_ref=panel
                on:keydown=on_key
            >
                <div class="cell-panel-head">
                    <h3 id="cell-title">
                        {move || cell.get().map(|(_, actual, predicted)| classes.with(|c| {
                            format!("Test images: {} predicted as {}", class_name(c, actual), class_name(c, predicted))
                        }))}
                    </h3>
                    <button type="button" class="small" id="close-cell" aria-label="Close the test images" on:click=move |_| close()>
                        "Close"
                    </button>
                </div>
                <GalleryView id="cell-images" gallery=gallery classes=classes run_id=Signal::derive(move || cell.get().map(|c| c.0)) empty="No test image of the best model falls in this cell."/>
            </aside>
        </Show>
    }
}

/// Focuses `element` without scrolling the page to it.
fn focus_in_place(element: &HtmlElement) {
    let options = web_sys::FocusOptions::new();
    options.set_prevent_scroll(true);
    // Fails only for an element that cannot take focus, which leaves focus where it was.
    let _ = element.focus_with_options(&options);
}

/// The element a click was heard on: the control that opens a drill-down.
fn clicked(ev: &leptos::ev::MouseEvent) -> Option<HtmlElement> {
    ev.current_target()?.dyn_into().ok()
}

fn gallery(answer: Result<Vec<TestImage>, api::ApiError>) -> Gallery {
    match answer {
        Ok(images) => Gallery { images, loading: false, error: None },
        Err(why) => Gallery { images: Vec::new(), loading: false, error: Some(why.to_string()) },
    }
}

/// The confusion matrix as a heat map, each cell a way into its test images.
#[component]
fn ConfusionMatrix(
    results: ClassResults,
    open_cell: impl Fn(u64, usize, usize, Option<HtmlElement>) + Copy + 'static,
) -> impl IntoView {
    let ClassResults { run_id, classes, confusion, .. } = results;
    let fractions = analysis::row_fractions(&confusion);
    let header = (0..confusion.len())
        .map(|i| {
            let name = class_name(&classes, i);
            let title = name.clone();
            view! { <th scope="col" title=title><span class="col-name">{name}</span></th> }
        })
        .collect_view();
    let rows = confusion
        .iter()
        .enumerate()
        .map(|(actual, row)| {
            let actual_name = class_name(&classes, actual);
            let cells = row
                .iter()
                .enumerate()
                .map(|(predicted, &count)| {
                    let fraction = fractions[actual][predicted];
                    let colour = analysis::heat_colour(fraction, actual == predicted);
                    let style = format!("background-color: {}; color: {}", colour.background, colour.text);
                    let description = format!(
                        "{} predicted as {}: {count} ({})",
                        actual_name,
                        class_name(&classes, predicted),
                        format::percent(fraction)
                    );
                    let content = if count > 0 {
                        view! {
                            <button
                                type="button"
                                class="cell-button"
                                aria-label=description.clone()
                                on:click=move |ev| open_cell(run_id, actual, predicted, clicked(&ev))
                            >
                                {count}
                            </button>
                        }
                        .into_any()
                    } else {
                        view! { <span>{count}</span> }.into_any()
                    };
                    view! {
                        <td
                            class="cell"
                            class:diagonal=actual == predicted
                            data-actual=actual
                            data-predicted=predicted
                            style=style
                            title=description
                        >
                            {content}
                        </td>
                    }
                })
                .collect_view();
            let title = actual_name.clone();
            view! {
                <tr>
                    <th scope="row" title=title>{actual_name}</th>
                    {cells}
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap confusion-wrap" tabindex="0">
            <table id="confusion" class="confusion">
                <caption class="visually-hidden">"Confusion matrix: rows are true classes, columns predicted classes"</caption>
                <thead>
                    <tr>
                        <th scope="col" class="corner">"true \u{2193} / predicted \u{2192}"</th>
                        {header}
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}

/// Test accuracy of every class at the best epoch.
#[component]
fn PerClassTable(results: ClassResults) -> impl IntoView {
    let rows = results
        .per_class_accuracy
        .iter()
        .enumerate()
        .map(|(i, &accuracy)| {
            let width = format!("width: {:.1}%", (accuracy * 100.0).clamp(0.0, 100.0));
            view! {
                <tr class="class-row">
                    <td>{class_name(&results.classes, i)}</td>
                    <td class="number">
                        <span class="mini-bar" aria-hidden="true"><span class="mini-bar-fill" style=width></span></span>
                        {format::percent_number(accuracy)}
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap per-class-wrap" tabindex="0">
            <table id="per-class" class="per-class">
                <thead>
                    <tr>
                        <th scope="col">"Class"</th>
                        <th scope="col">"Accuracy %"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}

/// The mistakes the model makes most.
#[component]
fn ConfusedPairs(
    run_id: u64,
    classes: Vec<String>,
    pairs: Vec<ConfusedPair>,
    open_cell: impl Fn(u64, usize, usize, Option<HtmlElement>) + Copy + 'static,
) -> impl IntoView {
    if pairs.is_empty() {
        return view! { <p class="empty">"No test image was misclassified."</p> }.into_any();
    }
    let items = pairs
        .into_iter()
        .map(|pair| {
            let ConfusedPair { actual, predicted, count } = pair;
            let text = format!("{} → {}: {count}", class_name(&classes, actual), class_name(&classes, predicted));
            view! {
                <li>
                    <button
                        type="button"
                        class="link-button"
                        data-actual=actual
                        data-predicted=predicted
                        on:click=move |ev| open_cell(run_id, actual, predicted, clicked(&ev))
                    >
                        {text}
                    </button>
                </li>
            }
        })
        .collect_view();
    view! { <ol id="confused-pairs" class="confused-pairs">{items}</ol> }.into_any()
}

/// Test images with their true and predicted classes and loss; with "Explain" ticked, each with the
/// Grad-CAM heat map of the model's top class over it, and the legend of its colours. Pressing a picture
/// shows it large across the gallery, with its map, and small again.
#[component]
fn GalleryView(
    id: &'static str,
    gallery: RwSignal<Gallery>,
    classes: Memo<Vec<String>>,
    run_id: Signal<Option<u64>>,
    empty: &'static str,
) -> impl IntoView {
    let explain = RwSignal::new(false);
    let explanations = RwSignal::new(HashMap::<usize, Explanation>::new());
    let explain_error = RwSignal::new(None::<String>);
    // The test image shown large, by index: one at a time, kept while the gallery is redrawn.
    let enlarged = RwSignal::new(None::<usize>);
    let requests = StoredValue::new(0u64);
    Effect::new(move |_| {
        let indices: Vec<usize> = gallery.with(|g| g.images.iter().map(|image| image.index).collect());
        requests.update_value(|n| *n += 1);
        explanations.set(HashMap::new());
        explain_error.set(None);
        let (Some(run_id), true) = (run_id.get(), explain.get()) else { return };
        if indices.is_empty() {
            return;
        }
        let request = requests.get_value();
        spawn_local(async move {
            let answer = api::explain_test_images(run_id, &indices).await;
            if requests.get_value() != request {
                return; // another gallery, run or toggle since
            }
            match answer {
                Ok(maps) => explanations
                    .set(indices.into_iter().zip(maps).filter_map(|(index, map)| Some((index, map?))).collect()),
                Err(why) => explain_error.set(Some(why.to_string())),
            }
        });
    });
    let toggle_id = format!("{id}-explain");
    view! {
        <div class="field check explain-toggle">
            <input
                id=toggle_id.clone()
                type="checkbox"
                prop:checked=move || explain.get()
                on:change=move |ev| explain.set(event_target_checked(&ev))
            />
            <label for=toggle_id title="A Grad-CAM heat map over each image: red where it counted most for the predicted class">
                "Explain (heat maps)"
            </label>
        </div>
        <p class="error" role="alert">{move || explain_error.get()}</p>
        <Show when=move || explain.get() && explanations.with(|maps| !maps.is_empty())>
            <heatmap::HeatLegend id=format!("{id}-legend") counted_for="the predicted class"/>
        </Show>
        <div id=id class="gallery" aria-busy=move || gallery.with(|g| g.loading).to_string()>
            {move || {
                let Gallery { images, loading, error } = gallery.get();
                let run_id = run_id.get()?;
                if let Some(error) = error {
                    return Some(view! { <p class="error">{error}</p> }.into_any());
                }
                if loading && images.is_empty() {
                    return Some(view! { <p class="empty">"Loading…"</p> }.into_any());
                }
                if images.is_empty() {
                    return Some(view! { <p class="empty">{empty}</p> }.into_any());
                }
                let maps = explanations.get();
                Some(classes.with(|classes| {
                    images
                        .into_iter()
                        .map(|image| {
                            let caption = format!(
                                "{} → {}, loss {:.2}",
                                class_name(classes, image.actual),
                                class_name(classes, image.predicted),
                                image.loss
                            );
                            let heat_map = maps.get(&image.index).map(|map| {
                                heatmap::heat_map(map, &class_name(classes, map.class_index))
                            });
                            let stretched = heat_map.is_some();
                            let index = image.index;
                            let large = move || enlarged.get() == Some(index);
                            let toggle = move |_| {
                                enlarged.update(|shown| *shown = if *shown == Some(index) { None } else { Some(index) })
                            };
                            view! {
                                <figure class="test-figure" class:wrong=image.actual != image.predicted class:enlarged=large>
                                    <div class="test-picture">
                                        <button
                                            type="button"
                                            class="figure-button"
                                            aria-label=format!("Large view of {caption}")
                                            aria-pressed=move || large().to_string()
                                            title=move || if large() { "Show smaller" } else { "Show large" }
                                            on:click=toggle
                                        >
                                            <img
                                                class="test-image"
                                                class:as-seen=stretched
                                                src=api::test_image_url(run_id, image.index)
                                                alt=caption.clone()
                                                loading="lazy"
                                                width="64"
                                                height="64"
                                            />
                                        </button>
                                        {heat_map}
                                    </div>
                                    <figcaption>{caption}</figcaption>
                                    <crate::versions::MarkImage dataset=crate::versions::run_dataset(run_id) path=image.path.clone() current=Some(image.actual)/>
                                </figure>
                            }
                        })
                        .collect_view()
                        .into_any()
                }))
            }}
        </div>
    }
}

/// Every setting that had an effect on the run, as it was started, in the form's words.
#[component]
pub fn RunConfig(shown: Memo<Option<Run>>) -> impl IntoView {
    let datasets = crate::studio().datasets;
    let fields = Memo::new(move |_| {
        shown.with(|r| {
            r.as_ref().map_or_else(Vec::new, |run| {
                let held_out_test = datasets.with(|list| {
                    list.iter().any(|d| d.name == run.config.dataset && d.format == shared::DatasetFormat::ImageFolder)
                });
                let gpu = run.device.as_deref().is_some_and(|device| device.starts_with("cuda"));
                format::applied_config_fields(&run.config, &shared::Surroundings { gpu, held_out_test })
            })
        })
    });
    view! {
        <details class="run-config-block" open>
            <summary>"Configuration"</summary>
            <dl id="run-config" class="run-config">
                {move || fields.get().into_iter().map(|(name, value)| view! {
                    <div class="config-item">
                        <dt>{name}</dt>
                        <dd>{value}</dd>
                    </div>
                }).collect_view()}
            </dl>
        </details>
    }
}
