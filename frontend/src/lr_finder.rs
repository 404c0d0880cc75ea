//! "Find learning rate" beside the learning-rate box of the New run form: asks the server to sweep the
//! form's config (`POST /api/lr-finder`), draws the smoothed loss against the learning rate on a log
//! axis as the points arrive over the WebSocket and then from the answer, marks the suggestion, and
//! "Use this" writes it into the box. While the sweep runs, "Stop" ends it (over the WebSocket) and the
//! curve so far stays, with a suggestion when enough points were swept and a sentence when not.
//!
//! The geometry ([`lr_curve`]) and the sentences are pure functions, tested natively.

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::{
    ClientMessage, LrFinderProgress, LrFinderResponse, LrPoint, LR_FINDER_BATCHES, LR_FINDER_END, LR_FINDER_START,
};

use crate::chart::{polyline, rate_label, Frame, Tick};
use crate::settings::FormSignals;
use crate::{api, studio};

/// Width of the curve's view box.
pub const WIDTH: f64 = 420.0;
/// Height of the curve's view box.
pub const HEIGHT: f64 = 220.0;
/// The plotting area inside the view box: room for the loss labels left and the rates below.
pub const FRAME: Frame = Frame { left: 48.0, top: 12.0, width: WIDTH - 48.0 - 14.0, height: HEIGHT - 12.0 - 34.0 };

/// What the curve's SVG draws, in view box units.
#[derive(Debug, Clone, PartialEq)]
pub struct LrCurve {
    /// The smoothed loss against the learning rate, as an SVG polyline's points.
    pub line: String,
    /// Powers of ten along the (logarithmic) learning-rate axis, 1e-7 to 10.
    pub x_ticks: Vec<Tick>,
    /// The lowest and highest loss plotted.
    pub y_ticks: Vec<Tick>,
    /// Where the suggestion is on the curve, when there is one.
    pub marker: Option<(f64, f64)>,
}

/// x of learning rate `lr`: the axis runs from [`LR_FINDER_START`] to [`LR_FINDER_END`] in log scale,
/// so a sweep in progress grows from the left.
pub fn x_of(lr: f64) -> f64 {
    let span = LR_FINDER_END.log10() - LR_FINDER_START.log10();
    FRAME.left + (lr.log10() - LR_FINDER_START.log10()) / span * FRAME.width
}

/// The loss range plotted: from the lowest loss to the highest before the last point, so the blow-up
/// that ends a sweep does not flatten the rest (it is drawn clipped at the top).
pub fn loss_range(points: &[LrPoint]) -> (f64, f64) {
    let kept = if points.len() > 2 { &points[..points.len() - 1] } else { points };
    let low = points.iter().map(|p| p.loss).fold(f64::INFINITY, f64::min);
    let high = kept.iter().map(|p| p.loss).fold(f64::NEG_INFINITY, f64::max);
    if high - low > 1e-9 {
        (low, high)
    } else {
        (low - 0.5, low + 0.5)
    }
}

/// A loss axis label to three significant figures, short enough for the frame's left margin ("2.40",
/// "0.785", "14.2").
pub fn loss_tick(loss: f64) -> String {
    match loss.abs() {
        l if l >= 100.0 => format!("{loss:.0}"),
        l if l >= 10.0 => format!("{loss:.1}"),
        l if l >= 1.0 => format!("{loss:.2}"),
        _ => format!("{loss:.3}"),
    }
}

/// The curve of `points` with `suggestion` marked; `None` before the first point.
pub fn lr_curve(points: &[LrPoint], suggestion: Option<f64>) -> Option<LrCurve> {
    if points.is_empty() {
        return None;
    }
    let (low, high) = loss_range(points);
    let y_of = |loss: f64| FRAME.bottom() - ((loss - low) / (high - low)).clamp(0.0, 1.0) * FRAME.height;
    let line: Vec<(f64, f64)> = points.iter().map(|p| (x_of(p.lr), y_of(p.loss))).collect();
    let x_ticks = (-7..=1)
        .step_by(2)
        .map(|power| {
            let lr = 10f64.powi(power);
            Tick { at: x_of(lr), label: rate_label(lr) }
        })
        .collect();
    let y_ticks = [low, high].into_iter().map(|loss| Tick { at: y_of(loss), label: loss_tick(loss) }).collect();
    let marker =
        suggestion.and_then(|lr| points.iter().find(|p| p.lr == lr)).map(|point| (x_of(point.lr), y_of(point.loss)));
    Some(LrCurve { line: polyline(&line), x_ticks, y_ticks, marker })
}

/// The line under the button while a sweep runs: `"Sweeping: 37 of at most 100 batches"`.
pub fn sweep_line(progress: Option<&LrFinderProgress>) -> String {
    let done = progress.filter(|p| !p.finished).map_or(0, |p| p.points.len());
    format!("Sweeping: {done} of at most {LR_FINDER_BATCHES} batches")
}

/// The sentence beside "Use this": `"Suggested learning rate: 3.16e-3 (steepest fall of the loss)"`.
pub fn suggestion_line(suggestion: f64) -> String {
    format!("Suggested learning rate: {} (steepest fall of the loss)", rate_label(suggestion))
}

/// The line under the button once a sweep answered: the error, the note of a sweep stopped too early
/// to suggest a rate, or nothing (the suggestion has its own line).
pub fn status_line(answer: &Result<LrFinderResponse, String>) -> Option<String> {
    match answer {
        Err(error) => Some(error.clone()),
        Ok(found) => found.note.clone(),
    }
}

/// What the learning-rate box gets from "Use this": the suggestion to three significant digits, written
/// without an exponent (`0.00316`).
pub fn field_text(suggestion: f64) -> String {
    let rounded: f64 = format!("{suggestion:.2e}").parse().unwrap_or(suggestion);
    rounded.to_string()
}

/// The button, and below the form's first settings the curve with "Use this". Disabled while the form
/// has a problem, the page is offline or a sweep is running.
#[component]
pub fn LrFinder(signals: FormSignals) -> impl IntoView {
    let studio = studio();
    let answer = RwSignal::new(None::<Result<LrFinderResponse, String>>);
    let sweeping = RwSignal::new(false);
    let find = move |_| {
        let Ok(config) = signals.checked.get_untracked() else { return };
        sweeping.set(true);
        answer.set(None);
        spawn_local(async move {
            let found = api::find_learning_rate(&config).await.map_err(|e| e.to_string());
            answer.set(Some(found));
            sweeping.set(false);
        });
    };
    let use_it = move |_| {
        if let Some(suggestion) = answer.get_untracked().and_then(Result::ok).and_then(|found| found.suggestion) {
            signals.form.update(|f| f.set("lr", field_text(suggestion)));
            signals.rewritten.update(|n| *n += 1);
        }
    };
    let stop = move |_| studio.send(ClientMessage::StopLrFinder);
    let live = move || studio.state.with(|s| s.lr_finder.clone().filter(|p| !p.finished));
    let curve = move || match answer.get() {
        Some(Ok(found)) => lr_curve(&found.points, found.suggestion),
        _ if sweeping.get() => live().and_then(|p| lr_curve(&p.points, None)),
        _ => None,
    };
    view! {
        <div class="field lr-finder">
            <button
                id="find-lr"
                type="button"
                on:click=find
                disabled=move || sweeping.get() || signals.checked.with(Result::is_err) || !studio.connected.get()
            >
                "Find learning rate"
            </button>
            <Show when=move || sweeping.get()>
                <button id="stop-lr" type="button" on:click=stop>"Stop"</button>
            </Show>
            <p class="field-help" id="lr-finder-status" role="status">
                {move || {
                    if sweeping.get() {
                        Some(sweep_line(live().as_ref()))
                    } else {
                        answer.with(|a| a.as_ref().and_then(status_line))
                    }
                }}
            </p>
        </div>
        {move || curve().map(|curve| view! { <LrCurveView curve=curve answer=answer use_it=use_it/> })}
    }
}

/// The drawn curve, and, once the sweep answered, its suggestion and "Use this".
#[component]
fn LrCurveView(
    curve: LrCurve,
    answer: RwSignal<Option<Result<LrFinderResponse, String>>>,
    use_it: impl Fn(leptos::ev::MouseEvent) + 'static,
) -> impl IntoView {
    let suggestion = answer.with_untracked(|a| a.as_ref().and_then(|a| a.as_ref().ok()).and_then(|f| f.suggestion));
    let bottom = FRAME.bottom();
    let svg = NodeRef::<leptos::svg::Svg>::new();
    let drawn = crate::layout::drawn_width(svg);
    view! {
        <div class="lr-finder-curve" id="lr-curve">
            <svg
                node_ref=svg
                viewBox=format!("0 0 {WIDTH} {HEIGHT}")
                style=move || crate::layout::ChartFit::fixed(WIDTH, drawn.get()).style()
                role="img"
                aria-label="Smoothed training loss against the learning rate, log scale"
            >
                <line class="axis" x1=FRAME.left y1=bottom x2=FRAME.right() y2=bottom/>
                <line class="axis" x1=FRAME.left y1=FRAME.top x2=FRAME.left y2=bottom/>
                {curve.x_ticks.into_iter().map(|tick| view! {
                    <text class="tick" x=tick.at y=bottom + 16.0 text-anchor="middle">{tick.label}</text>
                }).collect_view()}
                {curve.y_ticks.into_iter().map(|tick| view! {
                    <text class="tick" x=FRAME.left - 6.0 y=tick.at + 4.0 text-anchor="end">{tick.label}</text>
                }).collect_view()}
                <text class="axis-title" x=FRAME.left + FRAME.width / 2.0 y=HEIGHT - 4.0 text-anchor="middle">
                    "learning rate"
                </text>
                <polyline class="lr-line" points=curve.line fill="none"/>
                {curve.marker.map(|(x, y)| view! {
                    <line class="lr-suggestion" x1=x y1=FRAME.top x2=x y2=bottom/>
                    <circle class="lr-suggestion-point" cx=x cy=y r="4"/>
                })}
            </svg>
            {suggestion.map(|lr| view! {
                <p class="lr-suggested">
                    <span id="lr-suggestion">{suggestion_line(lr)}</span>
                    " "
                    <button id="use-lr" type="button" on:click=use_it>"Use this"</button>
                </p>
            })}
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep(losses: &[f64]) -> Vec<LrPoint> {
        let ratio = (LR_FINDER_END / LR_FINDER_START).powf(1.0 / (LR_FINDER_BATCHES - 1) as f64);
        losses
            .iter()
            .enumerate()
            .map(|(i, &loss)| LrPoint { lr: LR_FINDER_START * ratio.powi(i as i32), loss })
            .collect()
    }

    #[test]
    fn the_rate_axis_is_logarithmic_from_1e_7_to_10() {
        assert!((x_of(1e-7) - FRAME.left).abs() < 1e-9);
        assert!((x_of(10.0) - FRAME.right()).abs() < 1e-9);
        assert!((x_of(1e-3) - (FRAME.left + FRAME.width / 2.0)).abs() < 1e-9, "1e-3 is halfway in log scale");
    }

    #[test]
    fn loss_labels_fit_the_left_margin() {
        // At the tick font (11 px, about 7 px a character) the margin has room for six characters.
        for (loss, label) in
            [(2.396_123, "2.40"), (0.785_44, "0.785"), (14.23, "14.2"), (123.4, "123"), (2400.0, "2400")]
        {
            assert_eq!(loss_tick(loss), label);
            assert!(label.len() as f64 * 7.0 <= FRAME.left - 6.0, "{label}");
        }
    }

    #[test]
    fn the_rate_ticks_are_every_other_power_of_ten() {
        let curve = lr_curve(&sweep(&[2.0, 1.0]), None).unwrap();
        let labels: Vec<&str> = curve.x_ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["1e-7", "1e-5", "1e-3", "0.1", "10"]);
    }

    #[test]
    fn the_blow_up_at_the_end_is_clipped_instead_of_flattening_the_curve() {
        let points = sweep(&[2.0, 1.5, 1.0, 50.0]);
        assert_eq!(loss_range(&points), (1.0, 2.0));
        let curve = lr_curve(&points, None).unwrap();
        let last_y: f64 = curve.line.rsplit(',').next().unwrap().parse().unwrap();
        assert!((last_y - FRAME.top).abs() < 0.1, "the last point sits on the top edge: {}", curve.line);
    }

    #[test]
    fn the_suggestion_is_marked_on_its_point() {
        let points = sweep(&[2.0, 1.0, 1.5]);
        let curve = lr_curve(&points, Some(points[1].lr)).unwrap();
        let (x, y) = curve.marker.unwrap();
        assert!((x - x_of(points[1].lr)).abs() < 1e-9);
        assert!((y - FRAME.bottom()).abs() < 1e-9, "the lowest loss is on the bottom edge");
        assert_eq!(lr_curve(&points, None).unwrap().marker, None);
    }

    #[test]
    fn no_curve_before_the_first_point() {
        assert_eq!(lr_curve(&[], None), None);
    }

    #[test]
    fn one_point_or_a_flat_sweep_still_has_a_loss_range() {
        let (low, high) = loss_range(&sweep(&[1.2]));
        assert!(low < 1.2 && high > 1.2);
    }

    #[test]
    fn the_lines_say_how_far_the_sweep_is_and_what_it_suggests() {
        let progress =
            LrFinderProgress { points: sweep(&[2.0, 1.9, 1.8]), suggestion: None, finished: false, stopped: false };
        assert_eq!(sweep_line(Some(&progress)), "Sweeping: 3 of at most 100 batches");
        assert_eq!(sweep_line(None), "Sweeping: 0 of at most 100 batches");
        assert_eq!(suggestion_line(0.003162), "Suggested learning rate: 3.16e-3 (steepest fall of the loss)");
    }

    #[test]
    fn a_sweep_stopped_too_early_says_so_under_the_button() {
        let note = shared::lr_finder_too_few_points(4);
        let found = LrFinderResponse { points: sweep(&[2.0; 4]), suggestion: None, stopped: true, note: Some(note) };
        assert_eq!(
            status_line(&Ok(found)).as_deref(),
            Some("The sweep was stopped after 4 of 100 batches, too few to suggest a learning rate (it takes 17).")
        );
        assert_eq!(status_line(&Err("offline".into())).as_deref(), Some("offline"));
    }

    #[test]
    fn use_this_writes_three_significant_digits_without_an_exponent() {
        assert_eq!(field_text(3.1623e-4), "0.000316");
        assert_eq!(field_text(0.05372), "0.0537");
        assert_eq!(field_text(2.5), "2.5");
        assert_eq!(field_text(1e-7), "0.0000001");
    }
}
