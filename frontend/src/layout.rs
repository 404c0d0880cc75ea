//! How the page fits a phone: the section tabs that keep Train, Runs and Classify one tap away, the Stop
//! button that the live run's panel carries (style.css moves that panel to the top of a narrow page while
//! a run is active), and whether the screen is narrow enough for the charts' narrow view box.

use leptos::prelude::*;
use shared::ClientMessage;

use crate::state::StudioState;
use crate::studio;

/// Windows at most this many CSS pixels wide draw the charts in [`crate::chart::NARROW_WIDTH`]-wide view
/// boxes; style.css's phone rules start at the same width.
pub const NARROW_SCREEN_PX: f64 = 480.0;

/// Whether the window is at most [`NARROW_SCREEN_PX`] wide, following resizes.
pub fn narrow_screen() -> Signal<bool> {
    let narrow_now = || {
        let width = web_sys::window().and_then(|w| w.inner_width().ok()).and_then(|w| w.as_f64());
        width.is_some_and(|width| width <= NARROW_SCREEN_PX)
    };
    let narrow = RwSignal::new(narrow_now());
    let listener = window_event_listener(leptos::ev::resize, move |_| {
        let now = narrow_now();
        if narrow.get_untracked() != now {
            narrow.set(now);
        }
    });
    on_cleanup(move || listener.remove());
    narrow.into()
}

/// The view box width the charts use now: [`crate::chart::WIDTH`], or [`crate::chart::NARROW_WIDTH`] on a
/// narrow screen.
pub fn chart_width(narrow: Signal<bool>) -> f64 {
    if narrow.get() {
        crate::chart::NARROW_WIDTH
    } else {
        crate::chart::WIDTH
    }
}

/// Tabs to the page's three places, in the sticky header: on a phone the form, the run list and the
/// classify card are otherwise thousands of pixels apart. style.css shows them on narrow screens only.
#[component]
pub fn SectionTabs() -> impl IntoView {
    view! {
        <nav id="section-tabs" class="section-tabs" aria-label="Sections">
            <a href="#train-card">"Train"</a>
            <a href="#runs-card">"Runs"</a>
            <a href="#classify">"Classify"</a>
        </nav>
    }
}

/// Stop for the run that is training or queued: it says "Stopping…" and turns off as soon as it is
/// pressed, because the run only stops at its next checkpoint, seconds away.
#[component]
pub fn StopButton(
    /// The button's id: the form and the live run's panel each carry one.
    id: &'static str,
) -> impl IntoView {
    let studio = studio();
    let stoppable = Memo::new(move |_| studio.state.with(StudioState::stoppable_run));
    let stopping = move || {
        let stopping = studio.state.with(|state| state.stopping);
        stopping.is_some() && stopping == stoppable.get()
    };
    let stop = move |_| {
        if let Some(run_id) = stoppable.get_untracked() {
            studio.state.update(|state| state.stop_requested(run_id));
            studio.send(ClientMessage::StopRun { run_id });
        }
    };
    view! {
        <button
            id=id
            type="button"
            class="danger"
            disabled=move || stoppable.get().is_none() || stopping() || !studio.connected.get()
            on:click=stop
        >
            {move || match stoppable.get() {
                Some(_) if stopping() => "Stopping…".to_string(),
                Some(id) => format!("Stop run #{id}"),
                None => "Stop".to_string(),
            }}
        </button>
    }
}

/// Whether a run is training or queued, which is when the live run's panel goes to the top of a phone's
/// page and carries its own Stop.
pub fn run_active() -> Memo<bool> {
    let studio = studio();
    Memo::new(move |_| studio.state.with(|state| state.stoppable_run().is_some()))
}
