//! How the page fits the screen it is on: the section tabs in the sticky header that keep Train, Runs,
//! Sweeps, Classify and Datasets one click or tap away at every width; the Stop button that the live run's panel
//! carries (style.css moves that panel to the top of a narrow page while a run is active) and the page
//! kept still under the person's thumb when it moves; and how a chart's view box and text sizes follow
//! the width it is drawn at.

use leptos::prelude::*;
use shared::{ClientMessage, RunStatus};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

use crate::state::StudioState;
use crate::studio;

/// How a chart's SVG is fitted to the width it is drawn at: its view box width, and the factor its text
/// sizes are multiplied by (style.css reads it as `--chart-text`) so that text is drawn at the size
/// style.css gives it, never smaller, at any window width.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChartFit {
    /// Width of the SVG's view box.
    pub view_width: f64,
    /// Text sizes in the view box are style.css's sizes times this.
    pub text_scale: f64,
}

impl ChartFit {
    /// A chart whose view box follows its drawn width `drawn` (CSS pixels; `None` before it is laid out),
    /// down to [`crate::chart::NARROW_WIDTH`], below which the view box stays and its text grows instead.
    pub fn following(drawn: Option<f64>) -> ChartFit {
        let view_width = drawn.map_or(crate::chart::WIDTH, |d| d.max(crate::chart::NARROW_WIDTH));
        ChartFit { view_width, text_scale: text_scale(view_width, drawn) }
    }

    /// A chart with a fixed view box `view_width` wide drawn `drawn` CSS pixels wide: its text grows as
    /// far as the chart is drawn smaller than its view box.
    pub fn fixed(view_width: f64, drawn: Option<f64>) -> ChartFit {
        ChartFit { view_width, text_scale: text_scale(view_width, drawn) }
    }

    /// The `style` attribute that hands the text scale to style.css.
    pub fn style(&self) -> String {
        format!("--chart-text: {:.4}", self.text_scale)
    }
}

fn text_scale(view_width: f64, drawn: Option<f64>) -> f64 {
    drawn.filter(|d| *d > 0.0).map_or(1.0, |d| (view_width / d).max(1.0))
}

/// The width, in CSS pixels, that the element behind `node` is drawn at, kept current by a
/// `ResizeObserver` (a window resize, a card appearing beside it, a scroll bar); `None` until it is laid out.
pub fn drawn_width<E>(node: NodeRef<E>) -> Signal<Option<f64>>
where
    E: leptos::html::ElementType,
    E::Output: JsCast + Clone + 'static,
{
    let width = RwSignal::new(None::<f64>);
    let observing = StoredValue::new_local(None::<(web_sys::ResizeObserver, Closure<dyn FnMut()>)>);
    Effect::new(move |_| {
        let Some(element) = node.get() else { return };
        let element: web_sys::Element = element.unchecked_into();
        let measured = element.clone();
        let on_resize = Closure::<dyn FnMut()>::new(move || {
            let drawn = measured.get_bounding_client_rect().width();
            if drawn > 0.0 && width.get_untracked() != Some(drawn) {
                width.set(Some(drawn));
            }
        });
        let Ok(observer) = web_sys::ResizeObserver::new(on_resize.as_ref().unchecked_ref()) else { return };
        observer.observe(&element);
        stop_observing(observing);
        observing.set_value(Some((observer, on_resize)));
    });
    on_cleanup(move || stop_observing(observing));
    width.into()
}

/// A resize observer with the callback it calls, kept alive together until the element goes.
type Observing = StoredValue<Option<(web_sys::ResizeObserver, Closure<dyn FnMut()>)>, LocalStorage>;

fn stop_observing(observing: Observing) {
    if let Some((observer, _)) = observing.try_update_value(Option::take).flatten() {
        observer.disconnect();
    }
}

/// Tabs to the page's five places, in the sticky header at every width: the form, the run list, the
/// sweeps, the classify card and the dataset cards are otherwise screens apart, on a phone thousands of
/// pixels.
#[component]
pub fn SectionTabs() -> impl IntoView {
    view! {
        <nav id="section-tabs" class="section-tabs" aria-label="Sections">
            <a href="#train-card">"Train"</a>
            <a href="#runs-card">"Runs"</a>
            <a href="#sweeps-card">"Sweeps"</a>
            <a href="#classify">"Classify"</a>
            <a href="#dataset-health">"Datasets"</a>
        </nav>
    }
}

/// Scrolls the card with id `id` into view: a button that fills or opens a card screens away (on a phone,
/// far above or below) brings that card to the person.
pub fn bring_into_view(id: &str) {
    let card = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id(id));
    if let Some(card) = card {
        card.scroll_into_view();
    }
}

/// Whether an element spanning `top`..`bottom` (CSS pixels from the top of the window, as
/// `getBoundingClientRect` gives them) shows in a window `viewport` pixels high. A hidden element has no box.
pub fn on_screen(top: f64, bottom: f64, viewport: f64) -> bool {
    bottom > top && bottom > 0.0 && top < viewport
}

/// Keeps the `live` class of the page's `<main>` in step with [`run_active`] (on a phone style.css then
/// moves the live run's panel to the top), and keeps the page still under the person's thumb when that
/// moves cards: the card they last pressed or focused in (Stop or Resume in the run's panel, Start in
/// the form) stays where it was on screen. Without such a card on screen, the card at the top of the
/// window stays, unless the page is at its very top, where a run that is training comes first.
pub fn follow_live_run(main: NodeRef<leptos::html::Main>) {
    let acting = StoredValue::new_local(None::<web_sys::Element>);
    let remember = move |target: Option<web_sys::EventTarget>| {
        let card = target.and_then(|t| t.dyn_into::<web_sys::Element>().ok()).and_then(|e| e.closest(".card").ok()?);
        if card.is_some() {
            acting.set_value(card);
        }
    };
    let pressed = window_event_listener(leptos::ev::pointerdown, move |ev| remember(ev.target()));
    let focused = window_event_listener(leptos::ev::focusin, move |ev| remember(ev.target()));
    on_cleanup(move || {
        pressed.remove();
        focused.remove();
    });
    let active = run_active();
    Effect::new(move |_| {
        let live = active.get();
        let Some(main) = main.get() else { return };
        let anchor = acting.with_value(|card| card_to_keep(card.clone()));
        keep_in_place(anchor.as_ref(), || {
            main.set_class_name(if live { "layout live" } else { "layout" });
        });
    });
}

/// The card to keep still while the layout changes: `acting` when it is on screen, else the card at
/// the top of the window, or none at the very top of the page.
fn card_to_keep(acting: Option<web_sys::Element>) -> Option<web_sys::Element> {
    let window = web_sys::window()?;
    let viewport = window.inner_height().ok()?.as_f64()?;
    let shows = |card: &web_sys::Element| {
        let rect = card.get_bounding_client_rect();
        card.is_connected() && on_screen(rect.top(), rect.bottom(), viewport)
    };
    if let Some(card) = acting.filter(shows) {
        return Some(card);
    }
    if window.scroll_y().ok()? <= 0.0 {
        return None;
    }
    let document = window.document()?;
    let below_header =
        document.get_element_by_id("section-tabs").map_or(0.0, |tabs| tabs.get_bounding_client_rect().bottom());
    let width = window.inner_width().ok()?.as_f64()?;
    document.element_from_point((width / 2.0) as f32, (below_header + 24.0) as f32)?.closest(".card").ok()?
}

/// Runs `change`, then scrolls the window by as much as it moved `anchor`, so that `anchor` stays where it
/// was on screen.
fn keep_in_place(anchor: Option<&web_sys::Element>, change: impl FnOnce()) {
    let before = anchor.map(|anchor| anchor.get_bounding_client_rect().top());
    change();
    let (Some(anchor), Some(before)) = (anchor, before) else { return };
    let moved = anchor.get_bounding_client_rect().top() - before;
    if moved.abs() >= 0.5 {
        if let Some(window) = web_sys::window() {
            window.scroll_by_with_x_and_y(0.0, moved);
        }
    }
}

/// Stop for the run that is training or queued (or for `run`, when given): it says "Stopping…" and turns off
/// as soon as it is pressed, because the run only stops at its next checkpoint, seconds away. A queued run
/// is cancelled instead, at once.
#[component]
pub fn StopButton(
    /// The button's id: the form and the live run's panel each carry one.
    id: &'static str,
    /// The run this button stops; by default the one training, else the newest queued one.
    #[prop(optional)]
    run: Option<Memo<Option<u64>>>,
) -> impl IntoView {
    let studio = studio();
    let stoppable = Memo::new(move |_| match run {
        Some(run) => run.get(),
        None => studio.state.with(StudioState::stoppable_run),
    });
    let queued = Memo::new(move |_| {
        let id = stoppable.get();
        studio.state.with(|state| id.and_then(|id| state.run(id)).is_some_and(|r| r.status == RunStatus::Queued))
    });
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
                Some(id) if queued.get() => format!("Cancel run #{id}"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::{NARROW_WIDTH, WIDTH};

    #[test]
    fn a_chart_following_its_drawn_width_draws_text_at_its_css_size_down_to_the_narrowest_view_box() {
        assert_eq!(ChartFit::following(None), ChartFit { view_width: WIDTH, text_scale: 1.0 });
        for drawn in [NARROW_WIDTH, 450.0, 720.0, 1400.0] {
            assert_eq!(ChartFit::following(Some(drawn)), ChartFit { view_width: drawn, text_scale: 1.0 });
        }
        let phone = ChartFit::following(Some(NARROW_WIDTH / 1.25));
        assert_eq!(phone, ChartFit { view_width: NARROW_WIDTH, text_scale: 1.25 });
    }

    #[test]
    fn an_element_is_on_screen_when_any_of_it_is_in_the_window() {
        assert!(on_screen(100.0, 400.0, 900.0));
        assert!(on_screen(-300.0, 10.0, 900.0));
        assert!(on_screen(850.0, 1200.0, 900.0));
        assert!(!on_screen(900.0, 1200.0, 900.0), "below the window");
        assert!(!on_screen(-400.0, 0.0, 900.0), "above the window");
        assert!(!on_screen(0.0, 0.0, 900.0), "not rendered");
    }

    #[test]
    fn a_fixed_view_box_grows_its_text_as_far_as_it_is_drawn_smaller() {
        assert_eq!(ChartFit::fixed(420.0, Some(210.0)).text_scale, 2.0);
        assert_eq!(ChartFit::fixed(420.0, Some(840.0)).text_scale, 1.0, "text never shrinks below its CSS size");
        assert_eq!(ChartFit::fixed(420.0, None).text_scale, 1.0);
        assert_eq!(ChartFit::fixed(420.0, Some(210.0)).style(), "--chart-text: 2.0000");
    }
}
