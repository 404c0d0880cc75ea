//! Clean and retrain: a person marks images "exclude" or "relabel as <class>" wherever the page shows
//! dataset images ([`MarkImage`] beside the test-image galleries and the health card's duplicates), and
//! "add to the dataset as <class>" on a classified upload ([`AddToDataset`], which sends the image to
//! `POST /api/datasets/{name}/images` first); the marks wait in [`PendingEdits`] (a signal in context,
//! per dataset), and [`PendingEditsBar`] saves them as a new version of the dataset
//! (`POST /api/datasets/{name}/versions`), which the New run form then picks. [`PerClassChange`] shows, in the compare view, how each class's test accuracy moved between
//! two runs (on a dataset and its version, say).

use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::{DatasetEdits, DatasetInfo, Run};

use crate::{api, format, studio};

/// What a person chose for one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    /// Left as it is.
    Keep,
    /// Left out of the new version.
    Exclude,
    /// Given this class in the new version; an added image ([`shared::ADDED_IMAGE_PREFIX`]) is added
    /// with it.
    Relabel(String),
}

/// Marked, unsaved edits, by dataset.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PendingEdits(BTreeMap<String, DatasetEdits>);

impl PendingEdits {
    /// Marks image `path` of `dataset`; [`Mark::Keep`] forgets an earlier mark.
    pub fn set(&mut self, dataset: &str, path: &str, mark: Mark) {
        let edits = self.0.entry(dataset.to_string()).or_default();
        edits.exclude.retain(|excluded| excluded != path);
        edits.relabel.remove(path);
        edits.add.remove(path);
        match mark {
            Mark::Keep => {}
            Mark::Exclude => edits.exclude.push(path.to_string()),
            Mark::Relabel(class) if path.starts_with(shared::ADDED_IMAGE_PREFIX) => {
                edits.add.insert(path.to_string(), class);
            }
            Mark::Relabel(class) => {
                edits.relabel.insert(path.to_string(), class);
            }
        }
        if edits.is_empty() {
            self.0.remove(dataset);
        }
    }

    /// Excludes image `path` of `dataset`, or keeps it when it was excluded.
    pub fn toggle_exclude(&mut self, dataset: &str, path: &str) {
        let mark = if self.mark(dataset, path) == Mark::Exclude { Mark::Keep } else { Mark::Exclude };
        self.set(dataset, path, mark);
    }

    /// The mark of image `path` of `dataset`.
    pub fn mark(&self, dataset: &str, path: &str) -> Mark {
        let Some(edits) = self.0.get(dataset) else { return Mark::Keep };
        if edits.exclude.iter().any(|excluded| excluded == path) {
            return Mark::Exclude;
        }
        let class = edits.relabel.get(path).or_else(|| edits.add.get(path));
        class.map_or(Mark::Keep, |class| Mark::Relabel(class.clone()))
    }

    /// Each dataset with marks, with them.
    pub fn datasets(&self) -> Vec<(String, DatasetEdits)> {
        self.0.iter().map(|(name, edits)| (name.clone(), edits.clone())).collect()
    }

    /// Forgets the marks of `dataset` (saved or discarded).
    pub fn clear(&mut self, dataset: &str) {
        self.0.remove(dataset);
    }
}

/// The bar's words for `count` marks on `dataset`.
pub fn pending_line(dataset: &str, count: usize) -> String {
    format!("Pending edits ({count}) to {dataset}")
}

/// What a saved version holds, in a sentence.
pub fn saved_line(version: &DatasetInfo) -> String {
    let edits = [(version.excluded, "excluded"), (version.relabelled, "relabelled"), (version.added_images, "added")];
    let edits: Vec<String> =
        edits.iter().filter(|(count, _)| *count > 0).map(|(count, what)| format!("{count} {what}")).collect();
    format!(
        "Saved {}: {} training and {} test images ({} from {}). It is chosen in New run.",
        version.name,
        version.train_count,
        version.test_count,
        edits.join(", "),
        version.parent.as_deref().unwrap_or("its dataset")
    )
}

/// The pending edits of the page, from context.
pub fn pending() -> RwSignal<PendingEdits> {
    expect_context::<RwSignal<PendingEdits>>()
}

/// Puts an empty [`PendingEdits`] in context for [`MarkImage`] and [`PendingEditsBar`].
pub fn provide_pending_edits() {
    provide_context(RwSignal::new(PendingEdits::default()));
}

/// The dataset run `run_id` trained on, as far as the page knows it.
pub fn run_dataset(run_id: u64) -> String {
    studio().state.with_untracked(|state| state.run(run_id).map(|run| run.config.dataset.clone()).unwrap_or_default())
}

/// "Exclude" and "Relabel as <class>" for image `path` of `dataset` (whose class is `current`, when
/// known); nothing when the image has no path (an upload, or an older server).
#[component]
pub fn MarkImage(
    dataset: String,
    path: Option<String>,
    #[prop(optional_no_strip)] current: Option<usize>,
) -> impl IntoView {
    let Some(path) = path.filter(|_| !dataset.is_empty()) else { return ().into_any() };
    let pending = pending();
    let image = StoredValue::new((dataset.clone(), path.clone()));
    let mark = Memo::new(move |_| image.with_value(|(dataset, path)| pending.with(|p| p.mark(dataset, path))));
    let datasets = studio().datasets;
    let classes = Memo::new(move |_| {
        datasets.with(|list| list.iter().find(|d| d.name == dataset).map(|d| d.classes.clone()).unwrap_or_default())
    });
    let options = move || {
        classes.with(|classes| {
            let other = |(index, _): &(usize, &String)| Some(*index) != current;
            let named = |(_, class): (usize, &String)| view! { <option value=class.clone()>{class.clone()}</option> };
            classes.iter().enumerate().filter(other).map(named).collect_view()
        })
    };
    let relabel = move |class: String| {
        let mark = if class.is_empty() { Mark::Keep } else { Mark::Relabel(class) };
        image.with_value(|(dataset, path)| pending.update(|p| p.set(dataset, path, mark)));
    };
    view! {
        <div class="mark-image" role="group" aria-label=format!("Edit {path}")>
            <button
                type="button"
                class="small mark-exclude"
                aria-pressed=move || (mark.get() == Mark::Exclude).to_string()
                title=format!("Leave {path} out of a new version of the dataset")
                on:click=move |_| image.with_value(|(dataset, path)| pending.update(|p| p.toggle_exclude(dataset, path)))
            >
                {move || if mark.get() == Mark::Exclude { "Excluded" } else { "Exclude" }}
            </button>
            <select
                class="mark-relabel"
                aria-label=format!("Relabel {path} as")
                prop:value=move || match mark.get() {
                    Mark::Relabel(class) => class,
                    _ => String::new(),
                }
                on:change=move |ev| relabel(event_target_value(&ev))
            >
                <option value="">"Relabel as…"</option>
                {options}
            </select>
        </div>
    }
    .into_any()
}

/// Whether images can be added to dataset `name`: one the page lists as usable.
pub fn takes_added_images(datasets: &[DatasetInfo], name: &str) -> bool {
    datasets.iter().any(|d| d.name == name && d.error.is_none())
}

/// "Add to <dataset> as <class>" for a classified upload whose model trained on `dataset`: choosing a
/// class calls `choose` (which sends the image and marks it, see [`PendingEdits::set`]); the menu shows
/// the mark of the image's `added` path once it was sent.
#[component]
pub fn AddToDataset(dataset: String, added: Option<String>, choose: Callback<String>) -> impl IntoView {
    let pending = pending();
    let datasets = studio().datasets;
    let classes = {
        let dataset = dataset.clone();
        move || {
            datasets.with(|list| list.iter().find(|d| d.name == dataset).map(|d| d.classes.clone()).unwrap_or_default())
        }
    };
    let chosen = {
        let dataset = dataset.clone();
        move || match added.as_deref().map(|path| pending.with(|p| p.mark(&dataset, path))) {
            Some(Mark::Relabel(class)) => class,
            _ => String::new(),
        }
    };
    let options = move || {
        let named = |class: String| view! { <option value=class.clone()>{format!("Add as {class}")}</option> };
        classes().into_iter().map(named).collect_view()
    };
    view! {
        <div class="add-to-dataset">
            <select
                class="add-as"
                aria-label=format!("Add this image to {dataset} as")
                title=format!("Add this image to the training images of a new version of {dataset}")
                prop:value=chosen
                on:change=move |ev| choose.run(event_target_value(&ev))
            >
                <option value="">{format!("Add to {dataset} as…")}</option>
                {options}
            </select>
        </div>
    }
}

/// "Pending edits (N) to <dataset> — Save as new version" for each dataset with marks; saving makes the
/// version and picks it in the New run form.
#[component]
pub fn PendingEditsBar() -> impl IntoView {
    let pending = pending();
    // Taken now: context cannot be looked up from inside the request's task.
    let studio = studio();
    let outcome = RwSignal::new(None::<Result<String, String>>);
    let saving = RwSignal::new(false);
    let save = move |dataset: String, edits: DatasetEdits| {
        saving.set(true);
        spawn_local(async move {
            let saved = api::create_dataset_version(&dataset, &edits).await;
            saving.set(false);
            match saved {
                Ok(version) => {
                    pending.update(|p| p.clear(&dataset));
                    if let Ok(list) = api::datasets().await {
                        studio.datasets.set(list);
                    }
                    // The form picks the dataset added last: the new version.
                    studio.uploaded_dataset.set(Some(version.name.clone()));
                    outcome.set(Some(Ok(saved_line(&version))));
                }
                Err(why) => outcome.set(Some(Err(why.to_string()))),
            }
        });
    };
    let rows = move || {
        pending
            .with(PendingEdits::datasets)
            .into_iter()
            .map(move |(dataset, edits)| {
                let line = pending_line(&dataset, edits.len());
                let forget = dataset.clone();
                view! {
                    <div class="pending-row">
                        <span class="pending-count">{line}</span>
                        " — "
                        <button
                            type="button"
                            class="primary save-version"
                            disabled=move || saving.get()
                            on:click=move |_| save(dataset.clone(), edits.clone())
                        >
                            "Save as new version"
                        </button>
                        <button type="button" class="small" on:click=move |_| pending.update(|p| p.clear(&forget))>
                            "Discard"
                        </button>
                    </div>
                }
            })
            .collect_view()
    };
    view! {
        <Show when=move || pending.with(|p| !p.0.is_empty()) || outcome.with(Option::is_some)>
            <section class="pending-edits" aria-label="Pending dataset edits">
                {rows}
                {move || outcome.get().map(|outcome| match outcome {
                    Ok(line) => view! { <p class="saved" role="status">{line}</p> }.into_any(),
                    Err(why) => view! { <p class="error" role="alert">{why}</p> }.into_any(),
                })}
                {move || outcome.with(Option::is_some).then(|| view! {
                    <button type="button" class="small" on:click=move |_| outcome.set(None)>"Close"</button>
                })}
            </section>
        </Show>
    }
}

/// One class's final test accuracy in two runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassChange {
    /// The class name.
    pub class: String,
    /// Its accuracy in the first run, when that run has the class.
    pub before: Option<f64>,
    /// Its accuracy in the second run, when that run has the class.
    pub after: Option<f64>,
}

impl ClassChange {
    /// The change in percentage points, `"+12.5"`, `"-3.0"` or `"—"` when one side is missing.
    pub fn change(&self) -> String {
        match (self.before, self.after) {
            (Some(before), Some(after)) => format!("{:+.1}", (after - before) * 100.0),
            _ => "—".to_string(),
        }
    }
}

/// Each class's final test accuracy in `before` and `after`, matched by name (the first run's classes
/// first); empty when either run has no per-class accuracy yet.
pub fn per_class_changes(before: &Run, after: &Run) -> Vec<ClassChange> {
    let accuracies = |run: &Run| -> Option<Vec<(String, f64)>> {
        let last = run.epochs.last().filter(|e| !e.per_class_accuracy.is_empty())?;
        Some(run.classes.iter().cloned().zip(last.per_class_accuracy.iter().copied()).collect())
    };
    let (Some(first), Some(second)) = (accuracies(before), accuracies(after)) else { return Vec::new() };
    let find = |list: &[(String, f64)], class: &str| list.iter().find(|(c, _)| c == class).map(|(_, a)| *a);
    let mut classes: Vec<&String> = first.iter().map(|(c, _)| c).collect();
    classes.extend(second.iter().map(|(c, _)| c).filter(|c| !first.iter().any(|(f, _)| f == *c)));
    classes
        .into_iter()
        .map(|class| ClassChange { class: class.clone(), before: find(&first, class), after: find(&second, class) })
        .collect()
}

/// The per-class test accuracy change from the first compared run to the second.
#[component]
pub fn PerClassChange(runs: Memo<Vec<Run>>) -> impl IntoView {
    move || {
        let runs = runs.get();
        let [before, after, ..] = runs.as_slice() else { return None };
        let changes = per_class_changes(before, after);
        if changes.is_empty() {
            return None;
        }
        let title = format!(
            "Per-class test accuracy: {} ({}) → {} ({})",
            before.title(),
            before.config.dataset,
            after.title(),
            after.config.dataset
        );
        let cell = |accuracy: Option<f64>| accuracy.map_or_else(|| "—".to_string(), format::percent_number);
        let rows = changes
            .into_iter()
            .map(|change| {
                view! {
                    <tr>
                        <th scope="row">{change.class.clone()}</th>
                        <td>{cell(change.before)}</td>
                        <td>{cell(change.after)}</td>
                        <td>{change.change()}</td>
                    </tr>
                }
            })
            .collect_view();
        Some(view! {
            <div class="per-class-change">
                <h3>{title}</h3>
                <table id="per-class-change">
                    <thead>
                        <tr><th scope="col">"Class"</th><th scope="col">"Before %"</th><th scope="col">"After %"</th><th scope="col">"Change (points)"</th></tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::{DatasetFormat, EpochMetrics, RunStatus, TrainConfig};

    #[test]
    fn a_mark_replaces_the_last_one_and_keep_forgets_it() {
        let mut pending = PendingEdits::default();
        pending.set("colors", "train/a.png", Mark::Exclude);
        assert_eq!(pending.mark("colors", "train/a.png"), Mark::Exclude);
        pending.set("colors", "train/a.png", Mark::Relabel("blue".into()));
        assert_eq!(pending.mark("colors", "train/a.png"), Mark::Relabel("blue".into()));
        let edits = &pending.datasets()[0].1;
        assert!(edits.exclude.is_empty() && edits.relabel.len() == 1, "one mark per image: {edits:?}");
        pending.set("colors", "train/a.png", Mark::Keep);
        assert!(pending.datasets().is_empty(), "a dataset without marks is not pending");
        assert_eq!(pending.mark("other", "train/a.png"), Mark::Keep);
    }

    #[test]
    fn exclude_toggles_and_datasets_are_kept_apart() {
        let mut pending = PendingEdits::default();
        pending.toggle_exclude("colors", "test/b.png");
        pending.toggle_exclude("colors@v1", "test/b.png");
        pending.toggle_exclude("colors", "test/c.png");
        let counts: Vec<(String, usize)> = pending.datasets().into_iter().map(|(d, e)| (d, e.len())).collect();
        assert_eq!(counts, [("colors".to_string(), 2), ("colors@v1".to_string(), 1)]);
        pending.toggle_exclude("colors", "test/b.png");
        assert_eq!(pending.mark("colors", "test/b.png"), Mark::Keep);
        pending.clear("colors");
        assert_eq!(pending.datasets().len(), 1);
    }

    #[test]
    fn the_bar_and_the_saved_version_read_as_sentences() {
        assert_eq!(pending_line("colors", 3), "Pending edits (3) to colors");
        let classes = vec!["a".into(), "b".into()];
        let version = DatasetInfo {
            parent: Some("colors".into()),
            excluded: 2,
            relabelled: 1,
            ..DatasetInfo::new("colors@v1", DatasetFormat::ClassFolders, classes, 17, 5)
        };
        assert_eq!(
            saved_line(&version),
            "Saved colors@v1: 17 training and 5 test images (2 excluded, 1 relabelled from colors). It is chosen in New run."
        );
        let added = DatasetInfo { excluded: 0, relabelled: 0, added_images: 1, train_count: 20, ..version };
        assert_eq!(
            saved_line(&added),
            "Saved colors@v1: 20 training and 5 test images (1 added from colors). It is chosen in New run."
        );
    }

    #[test]
    fn an_added_image_is_marked_with_its_class_under_add_and_keep_forgets_it() {
        let mut pending = PendingEdits::default();
        let path = format!("{}{}.png", shared::ADDED_IMAGE_PREFIX, "a".repeat(64));
        pending.set("colors", &path, Mark::Relabel("blue".into()));
        assert_eq!(pending.mark("colors", &path), Mark::Relabel("blue".into()));
        let edits = &pending.datasets()[0].1;
        assert_eq!((edits.add.get(&path).map(String::as_str), edits.relabel.len()), (Some("blue"), 0), "{edits:?}");
        assert_eq!(edits.len(), 1);
        pending.set("colors", &path, Mark::Keep);
        assert!(pending.datasets().is_empty());
    }

    #[test]
    fn only_a_listed_usable_dataset_takes_added_images() {
        let listed = |name: &str| DatasetInfo::new(name, DatasetFormat::Cifar10Binary, Vec::new(), 0, 0);
        let broken = DatasetInfo { error: Some("unreadable".into()), ..listed("broken") };
        let datasets = [listed("cifar"), broken];
        assert!(takes_added_images(&datasets, "cifar"));
        assert!(!takes_added_images(&datasets, "broken"));
        assert!(!takes_added_images(&datasets, "gone"));
    }

    fn run(id: u64, dataset: &str, classes: &[&str], accuracies: &[f64]) -> Run {
        let epoch = EpochMetrics {
            epoch: 1,
            train_loss: 1.0,
            train_accuracy: 0.5,
            test_loss: 1.0,
            test_accuracy: 0.5,
            seconds: 1.0,
            test_top5_accuracy: None,
            lr: 0.01,
            per_class_accuracy: accuracies.to_vec(),
            confusion: Vec::new(),
        };
        let mut run: Run = serde_json::from_value(serde_json::json!({
            "id": id, "status": "completed", "config": TrainConfig::for_dataset(dataset), "epochs": [], "created_at": 0
        }))
        .unwrap();
        assert_eq!(run.status, RunStatus::Completed);
        run.classes = classes.iter().map(|c| c.to_string()).collect();
        run.epochs = vec![epoch];
        run
    }

    #[test]
    fn per_class_changes_match_classes_by_name_and_count_points() {
        let before = run(1, "colors", &["black", "blue", "green"], &[0.5, 1.0, 0.25]);
        let after = run(2, "colors@v1", &["black", "blue", "green", "red"], &[0.75, 0.9, 0.25, 1.0]);
        let changes = per_class_changes(&before, &after);
        let shown: Vec<(&str, String)> = changes.iter().map(|c| (c.class.as_str(), c.change())).collect();
        assert_eq!(
            shown,
            [("black", "+25.0".into()), ("blue", "-10.0".into()), ("green", "+0.0".into()), ("red", "—".into())]
        );
        let mut untrained = after.clone();
        untrained.epochs.clear();
        assert!(per_class_changes(&before, &untrained).is_empty());
    }
}
