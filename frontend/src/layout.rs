//! How the page fits a phone: the section tabs that keep Train, Runs and Classify one tap away, the Stop
//! button that the live run's panel carries (style.css moves that panel to the top of a narrow page while
//! a run is active), and how a chart's view box and text sizes follow the width it is drawn at.

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
    fn a_fixed_view_box_grows_its_text_as_far_as_it_is_drawn_smaller() {
        assert_eq!(ChartFit::fixed(420.0, Some(210.0)).text_scale, 2.0);
        assert_eq!(ChartFit::fixed(420.0, Some(840.0)).text_scale, 1.0, "text never shrinks below its CSS size");
        assert_eq!(ChartFit::fixed(420.0, None).text_scale, 1.0);
        assert_eq!(ChartFit::fixed(420.0, Some(210.0)).style(), "--chart-text: 2.0000");
    }
}
