//! The parts of the page that the first run list does not need, behind split points: in the page's own
//! build (the `split` feature, which `frontend/index.html` turns on for Trunk), each function here is a
//! Leptos `#[lazy]` function, and `scripts/split-page.sh` (Trunk's post-build hook) cuts the code only
//! it reaches into a wasm file of its own that the browser fetches the first time the part is shown. The
//! page's first wasm is then a third smaller; the parts follow a moment later.
//!
//! Without the feature (the component tests, native builds) they are plain `async` functions that are
//! ready when first polled, so once the first run list is in [`later`] shows them at once, exactly as if
//! they were inline.

use leptos::prelude::*;
use shared::Run;

use crate::caches::DecodedCachesCard;
use crate::classify::ClassifyPanel;
use crate::compare::CompareRuns;
use crate::health::DatasetHealthCard;
use crate::insight::{RunConfig, RunInsight};
use crate::receipt::RunReceiptSection;
use crate::studio::Studio;
use crate::sweeps::{SweepsCard, TrialOf};
use crate::versions::PendingEditsBar;

/// Shows the part `part` gives once its code is loaded (nothing before), and not before the page's first
/// run list: on a fast link the parts' fetches and compiles would otherwise hold the run list back. The
/// page runs on one thread, so the future that `Suspend` wants sendable is wrapped, as Leptos's own lazy
/// functions are.
pub fn later(part: impl std::future::Future<Output = AnyView> + 'static) -> impl IntoView {
    let studio = crate::studio::studio();
    Suspend::new(send_wrapper::SendWrapper::new(async move {
        first_run_list(studio).await;
        part.await
    }))
}

/// Done once the page has had its first snapshot of the runs (at once if it has).
async fn first_run_list(studio: Studio) {
    let arrived = move || studio.state.with_untracked(|state| state.snapshots > 0);
    if arrived() {
        return;
    }
    let (tell, told) = futures::channel::oneshot::channel();
    let mut tell = Some(tell);
    let watch = Effect::new(move |_| {
        if studio.state.with(|state| state.snapshots > 0) {
            if let Some(tell) = tell.take() {
                let _ = tell.send(());
            }
        }
    });
    let _ = told.await;
    watch.stop();
}

/// The dataset cards under the New run form: the chosen dataset's health and versions, and the decoded
/// caches.
#[cfg_attr(feature = "split", leptos::lazy)]
pub async fn dataset_cards() -> AnyView {
    view! {
        <DatasetHealthCard/>
        <DecodedCachesCard/>
    }
    .into_any()
}

/// Classifying images with a trained model (uploads, the camera, Grad-CAM), across the foot of the page.
#[cfg_attr(feature = "split", leptos::lazy)]
pub async fn classify_panel() -> AnyView {
    view! { <ClassifyPanel/> }.into_any()
}

/// Comparing runs, under the run list.
#[cfg_attr(feature = "split", leptos::lazy)]
pub async fn compare_runs() -> AnyView {
    view! { <CompareRuns/> }.into_any()
}

/// The sweeps, under the shown run.
#[cfg_attr(feature = "split", leptos::lazy)]
pub async fn sweeps_card() -> AnyView {
    view! { <SweepsCard/> }.into_any()
}

/// The bar of a dataset version's pending edits, at the foot of the page.
#[cfg_attr(feature = "split", leptos::lazy)]
pub async fn pending_edits_bar() -> AnyView {
    view! { <PendingEditsBar/> }.into_any()
}

/// Which sweep the shown run is a trial of, if any.
#[cfg_attr(feature = "split", leptos::lazy)]
pub async fn trial_of(shown: Memo<Option<Run>>) -> AnyView {
    view! { <TrialOf shown=shown/> }.into_any()
}

/// The shown run's analysis (per-class results, confusion, Grad-CAM gallery), its settings and its
/// receipt.
#[cfg_attr(feature = "split", leptos::lazy)]
pub async fn run_insight(shown: Memo<Option<Run>>) -> AnyView {
    view! {
        <RunInsight shown=shown/>
        <RunConfig shown=shown/>
        <RunReceiptSection shown=shown/>
    }
    .into_any()
}
