//! The "Decoded caches" card beside the dataset cards: each dataset the server decoded once at an input
//! size and keeps on disk for later runs (`GET /api/caches`), the room each takes, and Remove. The list is
//! asked for when the card is shown, after each snapshot (every connection), and whenever a run begins
//! training or ends ([`StudioState::cache_moments`](crate::state::StudioState::cache_moments)): the moments
//! a cache may have appeared.

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::DecodedCacheInfo;

use crate::api;
use crate::{format, studio};

/// The "Decoded caches" card: one row per cache, their total size in its header.
#[component]
pub fn DecodedCachesCard() -> impl IntoView {
    let studio = studio();
    let moments = Memo::new(move |_| studio.state.with(|s| (s.snapshots, s.cache_moments)));
    // The caches as last listed; `None` until the first answer.
    let caches = LocalResource::new(move || {
        moments.track();
        api::decoded_caches()
    });
    let total = move || caches.get().and_then(|listed| format::caches_total(listed.as_deref().ok()?));
    // Kept by the card, not the list: the list is drawn again when the caches are listed after a removal.
    let removing = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    let remove = move |id: String| {
        removing.set(Some(id.clone()));
        error.set(None);
        spawn_local(async move {
            if let Err(why) = api::delete_decoded_cache(&id).await {
                error.set(Some(format!("The cache could not be removed: {why}")));
            }
            removing.set(None);
            // Listed again either way: a cache another page removed first is gone all the same.
            caches.refetch();
        });
    };
    view! {
        <section class="card caches" id="caches-card" aria-labelledby="caches-title">
            <div class="caches-head">
                <h2 id="caches-title">"Decoded caches"</h2>
                <span id="caches-total" class="caches-total">{total}</span>
            </div>
            {move || match caches.get() {
                None => view! { <p class="hint">"Listing the caches…"</p> }.into_any(),
                Some(Err(error)) => view! {
                    <p class="load-error" role="alert">{format!("The caches could not be listed: {error}")}</p>
                }.into_any(),
                Some(Ok(listed)) if listed.is_empty() => view! {
                    <p class="empty" id="caches-empty">
                        "No decoded caches yet: a run's first start decodes its dataset once and keeps it here."
                    </p>
                }.into_any(),
                Some(Ok(listed)) => view! { <CacheList listed=listed removing=removing remove=remove/> }.into_any(),
            }}
            <p class="error" role="alert">{move || error.get()}</p>
        </section>
    }
}

/// The rows of `listed`, each with its Remove button (which reads "Removing…" while `removing` is its cache).
#[component]
fn CacheList(
    listed: Vec<DecodedCacheInfo>,
    removing: RwSignal<Option<String>>,
    remove: impl Fn(String) + Copy + 'static,
) -> impl IntoView {
    let utc_offset = crate::utc_offset_minutes();
    let rows = listed
        .into_iter()
        .map(|cache| view! { <CacheRow cache=cache utc_offset=utc_offset removing=removing remove=remove/> })
        .collect_view();
    view! { <ul id="cache-list" class="cache-list">{rows}</ul> }
}

/// One cache: its dataset and input size, then its images, its size on disk and when it was built.
#[component]
fn CacheRow(
    cache: DecodedCacheInfo,
    utc_offset: i64,
    removing: RwSignal<Option<String>>,
    remove: impl Fn(String) + Copy + 'static,
) -> impl IntoView {
    let id = cache.id.clone();
    let busy = {
        let id = id.clone();
        Memo::new(move |_| removing.with(|removing| removing.as_deref() == Some(id.as_str())))
    };
    let label = format!("Remove the decoded cache of {} at {} px", cache.dataset, cache.input_size);
    view! {
        <li class="cache-item" data-cache-id=cache.id.clone()>
            <div class="cache-facts">
                <span class="cache-name">
                    <span class="cache-dataset">{cache.dataset.clone()}</span>
                    " "
                    <span class="cache-input-size">{format!("{} px", cache.input_size)}</span>
                </span>
                <span class="cache-details">
                    <span class="cache-images">{format::images(cache.images)}</span>
                    " · "
                    <span class="cache-bytes">{format::bytes(cache.bytes)}</span>
                    " · built "
                    <span class="cache-built">{format::date_time(cache.built_at, utc_offset)}</span>
                </span>
            </div>
            <button
                type="button"
                class="danger cache-remove"
                aria-label=label
                disabled=busy
                on:click=move |_| remove(id.clone())
            >
                {move || if busy.get() { "Removing…" } else { "Remove" }}
            </button>
        </li>
    }
}
