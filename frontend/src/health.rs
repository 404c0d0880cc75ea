//! The "Dataset health" card: what in the dataset chosen in the New run form could mislead training or
//! its test accuracy (class counts, imbalance, image sizes, unreadable images, duplicates), and the leak
//! warning shown beside Start. Both read one [`HealthCheck`] in the [`Studio`](crate::Studio) handle, fetched
//! from `GET /api/datasets/{name}/health` whenever the chosen dataset changes.

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::{DatasetHealth, DuplicateKind, DuplicatePair};

use crate::{api, studio};

/// Where the page stands with the health of the chosen dataset.
#[derive(Debug, Clone, PartialEq)]
pub enum HealthCheck {
    /// No dataset chosen, or one the server does not have yet (CIFAR-10 before its download).
    NotOnServer,
    /// Asked for; the first check of a dataset decodes every one of its `images`.
    Checking {
        /// The dataset asked about.
        dataset: String,
        /// Its images, train and test.
        images: usize,
    },
    /// The server's answer for `dataset`.
    Ready {
        /// The dataset it describes.
        dataset: String,
        /// What the server found.
        health: Box<DatasetHealth>,
    },
    /// The server could not answer, in a sentence.
    Failed(String),
}

impl HealthCheck {
    /// The server's answer, once it is here.
    pub fn answer(&self) -> Option<&DatasetHealth> {
        match self {
            HealthCheck::Ready { health, .. } => Some(health),
            _ => None,
        }
    }

    /// The test images that have a copy in the training images; 0 until an answer is here.
    pub fn leaks(&self) -> usize {
        self.answer().map_or(0, DatasetHealth::leaks)
    }
}

/// What the card says while the server decodes the dataset.
pub fn checking_line(images: usize) -> String {
    match images {
        0 => "Checking the images…".to_string(),
        1 => "Checking 1 image…".to_string(),
        n => format!("Checking {n} images…"),
    }
}

/// The warning beside Start when `leaks` of the `test_images` test images have a copy in training;
/// `None` when none has.
pub fn leak_warning(leaks: usize, test_images: usize) -> Option<String> {
    let too_high = "the test accuracy will read too high";
    match leaks {
        0 => None,
        1 => Some(format!("1 of {test_images} test images has a copy in the training images: {too_high}")),
        n => Some(format!("{n} of {test_images} test images have a copy in the training images: {too_high}")),
    }
}

/// The warning about copies that carry different labels; `None` when there are none.
pub fn label_conflict_warning(conflicts: usize) -> Option<String> {
    match conflicts {
        0 => None,
        1 => Some("1 pair of copies carries different labels: one of the two images is mislabelled".to_string()),
        n => Some(format!("{n} pairs of copies carry different labels: one image of each pair is mislabelled")),
    }
}

/// The imbalance ratio as a person reads it: "1.0 : 1 (balanced)", or how many times the largest class
/// outnumbers the smallest.
pub fn imbalance_line(imbalance: f64) -> String {
    if !imbalance.is_finite() {
        return "a class has no training images".to_string();
    }
    let ratio = format!("{imbalance:.1} : 1");
    if imbalance < 1.5 {
        format!("{ratio} (balanced)")
    } else {
        format!("{ratio} (the largest class has {imbalance:.1}× the training images of the smallest)")
    }
}

/// `[width, height]` as "32 × 32 px".
pub fn size(size: [u32; 2]) -> String {
    format!("{} × {} px", size[0], size[1])
}

/// A duplicate pair's kind: "exact copy", or "near copy (97 % alike)".
pub fn duplicate_kind(pair: &DuplicatePair) -> String {
    match pair.kind {
        DuplicateKind::Exact => "exact copy".to_string(),
        DuplicateKind::Near => format!("near copy ({} % alike)", percent_alike(pair.similarity)),
    }
}

/// A similarity as whole percent, never rounded up to 100 for a pair that is not exact.
fn percent_alike(similarity: f64) -> u32 {
    ((similarity * 100.0).floor() as u32).min(99)
}

/// The width of a class's bar, as a percentage of the largest count shown.
pub fn bar_percent(count: usize, largest: usize) -> f64 {
    if largest == 0 {
        0.0
    } else {
        100.0 * count as f64 / largest as f64
    }
}

/// Keeps `studio.health` on the dataset chosen in the form: asks the server whenever the choice changes
/// (or the dataset list does, as after an upload), and drops answers for a dataset no longer chosen.
fn follow_chosen_dataset() {
    let studio = studio();
    Effect::new(move |_| {
        let Some(dataset) = studio.chosen_dataset.get() else {
            studio.health.set(HealthCheck::NotOnServer);
            return;
        };
        let listed = studio.datasets.with(|list| {
            list.iter().find(|d| d.name == dataset).map(|d| (d.train_count + d.test_count, d.error.clone()))
        });
        let images = match listed {
            None => {
                studio.health.set(HealthCheck::NotOnServer);
                return;
            }
            Some((_, Some(error))) => {
                studio.health.set(HealthCheck::Failed(error));
                return;
            }
            Some((images, None)) => images,
        };
        studio.health.set(HealthCheck::Checking { dataset: dataset.clone(), images });
        spawn_local(async move {
            let answer = api::dataset_health(&dataset).await;
            if studio.chosen_dataset.get_untracked().as_deref() != Some(dataset.as_str()) {
                return;
            }
            studio.health.set(match answer {
                Ok(health) => HealthCheck::Ready { dataset, health: Box::new(health) },
                Err(error) => HealthCheck::Failed(format!("The health check failed: {error}")),
            });
        });
    });
}

/// The "Dataset health" card for the dataset chosen in the New run form.
#[component]
pub fn DatasetHealthCard() -> impl IntoView {
    follow_chosen_dataset();
    let health = studio().health;
    view! {
        <section class="card health" id="dataset-health" aria-labelledby="health-title">
            <h2 id="health-title">"Dataset health"</h2>
            {move || match health.get() {
                HealthCheck::NotOnServer => view! {
                    <p class="hint">"The chosen dataset is not on the server yet: it is checked once it is there."</p>
                }.into_any(),
                HealthCheck::Checking { images, .. } => view! {
                    <p class="hint" id="health-checking" role="status">{checking_line(images)}</p>
                }.into_any(),
                HealthCheck::Failed(error) => view! { <p class="run-error" role="alert">{error}</p> }.into_any(),
                HealthCheck::Ready { dataset, health } => view! { <HealthReport dataset=dataset health=*health/> }.into_any(),
            }}
        </section>
    }
}

/// What the server found in `dataset`.
#[component]
fn HealthReport(dataset: String, health: DatasetHealth) -> impl IntoView {
    let largest = health.classes.iter().map(|c| c.train.max(c.test)).max().unwrap_or(0);
    let classes = health
        .classes
        .iter()
        .map(|class| {
            let train = format!("width: {:.1}%", bar_percent(class.train, largest));
            let test = format!("width: {:.1}%", bar_percent(class.test, largest));
            view! {
                <tr>
                    <th scope="row">{class.name.clone()}</th>
                    <td>
                        <span class="count-bar train" style=train></span>
                        <span class="count">{class.train}</span>
                    </td>
                    <td>
                        <span class="count-bar test" style=test></span>
                        <span class="count">{class.test}</span>
                    </td>
                </tr>
            }
        })
        .collect_view();
    let common = health
        .sizes
        .most_common
        .iter()
        .map(|s| format!("{} ({})", size([s.width, s.height]), s.count))
        .collect::<Vec<_>>()
        .join(", ");
    let unreadable = (!health.unreadable.is_empty()).then(|| {
        let items = health
            .unreadable
            .iter()
            .map(|image| {
                view! {
                    <li>
                        <code class="path">{image.path.clone()}</code>
                        " — "
                        {image.error.clone()}
                        <crate::versions::MarkImage dataset=dataset.clone() path=Some(image.path.clone()) current=image.class/>
                    </li>
                }
            })
            .collect_view();
        view! {
            <h3>{format!("Unreadable images ({})", health.unreadable.len())}</h3>
            <p class="hint">"Runs skip these."</p>
            <ul id="health-unreadable" class="health-list" tabindex="0">{items}</ul>
        }
    });
    let duplicates = if health.duplicates.is_empty() {
        view! { <p id="health-duplicates" class="hint">"No duplicate images."</p> }.into_any()
    } else {
        let items = health
            .duplicates
            .iter()
            .map(|pair| {
                let leak = pair.across_splits;
                let conflict = pair.a_class != pair.b_class;
                view! {
                    <li class="duplicate-pair" class:leak=leak class:label-conflict=conflict>
                        <p class="pair-kind">
                            {duplicate_kind(pair)}
                            {leak.then_some(", train and test")}
                            {conflict.then_some(", different labels")}
                        </p>
                        <div class="pair-images">
                            <HealthImage dataset=dataset.clone() path=pair.a.clone() class=pair.a_class/>
                            <HealthImage dataset=dataset.clone() path=pair.b.clone() class=pair.b_class/>
                        </div>
                    </li>
                }
            })
            .collect_view();
        let more = health
            .duplicates_truncated
            .then(|| view! { <p class="hint">"More near copies exist than are listed (every exact copy is)."</p> });
        view! { <ul id="health-duplicates" class="health-list pairs" tabindex="0">{items}</ul> {more} }.into_any()
    };
    let leaks = leak_warning(health.leaks(), health.test_images());
    let conflicts = label_conflict_warning(health.label_conflicts);
    let rule = format!(
        "{dataset}: near copies are verified pixel by pixel, at least {} % alike.",
        (health.near_similarity * 100.0).round()
    );
    view! {
        <p class="hint">{rule}</p>
        {leaks.map(|warning| view! { <p class="leak-warning" id="health-leaks" role="alert">{warning}</p> })}
        {conflicts.map(|warning| view! { <p class="leak-warning" id="health-label-conflicts">{warning}</p> })}
        <table class="health-classes" id="health-classes">
            <thead>
                <tr><th scope="col">"Class"</th><th scope="col">"Train"</th><th scope="col">"Test"</th></tr>
            </thead>
            <tbody>{classes}</tbody>
        </table>
        <dl class="health-facts">
            <dt>"Imbalance"</dt>
            <dd id="health-imbalance">{imbalance_line(health.imbalance)}</dd>
            <dt>"Sizes"</dt>
            <dd id="health-sizes">
                {format!("smallest {}, largest {}", size(health.sizes.smallest), size(health.sizes.largest))}
            </dd>
            <dt>"Most common"</dt>
            <dd>{common}</dd>
        </dl>
        {unreadable}
        <h3>{format!("Duplicates ({})", health.duplicates.len())}</h3>
        {duplicates}
    }
}

/// Side of the thumbnails the card asks the server for, in pixels.
const THUMBNAIL_SIDE: u32 = 96;

/// One image of `dataset` in the card: its thumbnail (loaded when scrolled near), its path, and the
/// Exclude / Relabel marks for a new version (relabelling to any class but its own, `class`).
#[component]
fn HealthImage(dataset: String, path: String, class: Option<usize>) -> impl IntoView {
    let src = api::dataset_image_url(&dataset, &path, THUMBNAIL_SIDE);
    view! {
        <figure class="health-image">
            <img src=src alt=path.clone() loading="lazy" decoding="async" width="72" height="72"/>
            <figcaption><code class="path">{path.clone()}</code></figcaption>
            <crate::versions::MarkImage dataset=dataset path=Some(path) current=class/>
        </figure>
    }
}

/// The leak warning beside Start: shown when the chosen dataset's test images copy training images. It
/// does not stop a run.
#[component]
pub fn LeakWarning() -> impl IntoView {
    let health = studio().health;
    move || {
        health.with(|h| h.answer().and_then(|answer| leak_warning(answer.leaks(), answer.test_images()))).map(
            |warning| {
                view! {
                    <p class="leak-warning" id="start-leak-warning" role="alert">
                        {warning}
                        " "
                        <a href="#dataset-health">"See Dataset health"</a>
                    </p>
                }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checking_names_the_images_to_decode() {
        assert_eq!(checking_line(1200), "Checking 1200 images…");
        assert_eq!(checking_line(1), "Checking 1 image…");
        assert_eq!(checking_line(0), "Checking the images…");
    }

    #[test]
    fn the_leak_warning_counts_the_test_images_and_is_absent_without_leaks() {
        assert_eq!(leak_warning(0, 36), None);
        assert_eq!(
            leak_warning(3, 36).as_deref(),
            Some("3 of 36 test images have a copy in the training images: the test accuracy will read too high")
        );
        assert!(leak_warning(1, 36).unwrap().starts_with("1 of 36 test images has a copy"));
    }

    #[test]
    fn copies_with_different_labels_are_called_mislabelled() {
        assert_eq!(label_conflict_warning(0), None);
        assert!(label_conflict_warning(1).unwrap().contains("one of the two images is mislabelled"));
        assert!(label_conflict_warning(4).unwrap().starts_with("4 pairs of copies carry different labels"));
    }

    #[test]
    fn imbalance_reads_as_a_ratio_and_says_when_it_is_balanced() {
        assert_eq!(imbalance_line(1.0), "1.0 : 1 (balanced)");
        assert!(imbalance_line(4.0).starts_with("4.0 : 1 (the largest class has 4.0×"));
        assert_eq!(imbalance_line(f64::INFINITY), "a class has no training images");
    }

    #[test]
    fn duplicates_say_how_alike_they_are() {
        let pair = |kind, similarity| DuplicatePair {
            a: "a".into(),
            b: "b".into(),
            kind,
            similarity,
            across_splits: true,
            a_class: None,
            b_class: None,
        };
        assert_eq!(duplicate_kind(&pair(DuplicateKind::Exact, 1.0)), "exact copy");
        assert_eq!(duplicate_kind(&pair(DuplicateKind::Near, 0.9731)), "near copy (97 % alike)");
        assert_eq!(duplicate_kind(&pair(DuplicateKind::Near, 0.99999)), "near copy (99 % alike)");
    }

    #[test]
    fn bars_are_scaled_to_the_largest_count() {
        assert_eq!(bar_percent(5, 10), 50.0);
        assert_eq!(bar_percent(0, 0), 0.0);
        assert_eq!(size([32, 48]), "32 × 48 px");
    }

    #[test]
    fn only_an_answer_has_leaks() {
        assert_eq!(HealthCheck::Checking { dataset: "d".into(), images: 3 }.leaks(), 0);
        assert_eq!(HealthCheck::NotOnServer.leaks(), 0);
    }
}
