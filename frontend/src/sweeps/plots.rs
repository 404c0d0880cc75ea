//! A sweep's charts drawn as SVG: every trial's learning curve in one chart (pruned trials dashed, a
//! cross where they stopped, a pause mark beside where one waits at a rung) and the parallel-coordinates
//! plot, each fitted to its drawn width. Their geometry (axes, ticks, colours) is computed by
//! [`crate::sweep_plot`].

use leptos::prelude::*;
use shared::sweep::{Sweep, Trial};
use shared::Run;

use crate::chart;
use crate::layout::{self, ChartFit};
use crate::sweep_plot::{self, CurveChart, ParallelPlot};

/// Every trial's learning curve in one chart, fitted to its drawn width.
#[component]
pub(super) fn SweepCurves(shown: Memo<Option<Sweep>>, board: Memo<Vec<Trial>>, runs: Memo<Vec<Run>>) -> impl IntoView {
    let holder = NodeRef::<leptos::html::Div>::new();
    let drawn = layout::drawn_width(holder);
    view! {
        <div class="sweep-chart" node_ref=holder>
            {move || {
                let fit = ChartFit::following(drawn.get());
                shown.with(|sweep| {
                    sweep.as_ref().map(|sweep| curves_svg(sweep_plot::learning_curves(sweep, &board.get(), &runs.get(), fit.view_width), fit))
                })
            }}
        </div>
    }
}

fn curves_svg(plot: CurveChart, fit: ChartFit) -> impl IntoView {
    let frame = plot.frame;
    let title = plot.metric.title();
    let curves = plot
        .curves
        .into_iter()
        .map(|curve| {
            let colour = curve.colour.clone();
            let markers = curve
                .points
                .iter()
                .zip(curve.notes)
                .map(|(&(x, y), note)| view! {
                    <circle class="marker" cx=x cy=y r="3" style=format!("fill: {colour}")><title>{note}</title></circle>
                })
                .collect_view();
            let stopped = curve.stopped.map(|((x, y), why)| view! {
                <path
                    class="stop-mark"
                    d=format!("M{} {}L{} {}M{} {}L{} {}", x - 5.0, y - 5.0, x + 5.0, y + 5.0, x - 5.0, y + 5.0, x + 5.0, y - 5.0)
                    style=format!("stroke: {}", curve.colour)
                >
                    <title>{why}</title>
                </path>
            });
            let waits = curve.waits.map(|((x, y), why)| view! {
                <path
                    class="wait-mark"
                    d=format!("M{} {}L{} {}M{} {}L{} {}", x + 7.0, y - 5.0, x + 7.0, y + 5.0, x + 11.0, y - 5.0, x + 11.0, y + 5.0)
                    style=format!("stroke: {}", curve.colour)
                >
                    <title>{why}</title>
                </path>
            });
            let pruned = stopped.is_some();
            view! {
                <polyline
                    class="series trial-curve"
                    class:pruned=pruned
                    data-trial=curve.trial
                    style=format!("stroke: {}", curve.colour)
                    points=chart::polyline(&curve.points)
                ></polyline>
                {markers}
                {stopped}
                {waits}
            }
        })
        .collect_view();
    view! {
        <svg
            id="sweep-curves"
            class="chart sweep-curves"
            viewBox=format!("0 0 {} {}", fit.view_width, chart::COMPARE_HEIGHT)
            style=fit.style()
            role="img"
            aria-label=format!(
                "{title} per epoch of every trial; pruned trials dashed, with a cross where they stopped; a pause \
                 mark where a trial waits at a rung"
            )
        >
            <text class="panel-title" x=frame.left y=frame.top - 14.0>{format!("{title} per epoch")}</text>
            {crate::axes(frame, &plot.x_ticks, &plot.y_ticks)}
            {curves}
        </svg>
    }
}

/// The parallel-coordinates plot, fitted to its drawn width, or scrolling sideways in its box when its
/// axes need more room.
#[component]
pub(super) fn ParallelCoordinates(shown: Memo<Option<Sweep>>, board: Memo<Vec<Trial>>) -> impl IntoView {
    let holder = NodeRef::<leptos::html::Div>::new();
    let drawn = layout::drawn_width(holder);
    view! {
        <div class="sweep-chart sweep-parallel-box" node_ref=holder tabindex="0">
            {move || shown.with(|sweep| sweep.as_ref().map(|sweep| {
                let needed = sweep_plot::parallel_width(sweep);
                let scrolls = drawn.get().is_some_and(|d| d < needed);
                let fit = if scrolls { ChartFit::fixed(needed, Some(needed)) } else { ChartFit::following(drawn.get()) };
                parallel_svg(sweep_plot::parallel_plot(sweep, &board.get(), fit.view_width), fit, scrolls)
            }))}
        </div>
    }
}

fn parallel_svg(plot: ParallelPlot, fit: ChartFit, scrolls: bool) -> impl IntoView {
    let frame = plot.frame;
    let count = plot.axes.len();
    let lines = plot
        .lines
        .into_iter()
        .map(|line| {
            view! {
                <polyline
                    class="pc-line"
                    class:pruned=line.pruned
                    data-trial=line.trial
                    style=format!("stroke: {}", line.colour)
                    points=chart::polyline(&line.points)
                >
                    <title>{line.note}</title>
                </polyline>
            }
        })
        .collect_view();
    let axes = plot
        .axes
        .into_iter()
        .enumerate()
        .map(|(i, axis)| {
            let title_anchor = match i {
                0 => "start",
                i if i + 1 == count => "end",
                _ => "middle",
            };
            let offset = if axis.anchor == "end" { -7.0 } else { 7.0 };
            let ticks = axis
                .ticks
                .into_iter()
                .map(|tick| {
                    view! {
                        <line class="pc-tick" x1=axis.x - 3.0 x2=axis.x + 3.0 y1=tick.at y2=tick.at></line>
                        <text class="tick" x=axis.x + offset y=tick.at + 4.0 text-anchor=axis.anchor>{tick.label}</text>
                    }
                })
                .collect_view();
            view! {
                <g class="pc-axis">
                    <line class="axis" x1=axis.x x2=axis.x y1=frame.top y2=frame.bottom()></line>
                    <text class="axis-title" x=axis.x y=frame.top - 16.0 text-anchor=title_anchor>{axis.title}</text>
                    {ticks}
                </g>
            }
        })
        .collect_view();
    let style = if scrolls { format!("{}; min-width: {}px", fit.style(), plot.width) } else { fit.style() };
    view! {
        <svg
            id="sweep-parallel"
            class="chart sweep-parallel"
            viewBox=format!("0 0 {} {}", plot.width, sweep_plot::PARALLEL_HEIGHT)
            style=style
            role="img"
            aria-label="Parallel coordinates: each trial a line through its settings' values to its result, coloured by its result"
        >
            {lines}
            {axes}
        </svg>
    }
}
