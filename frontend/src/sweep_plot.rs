//! Geometry of a sweep's two charts: every trial's learning curve in one panel (the comparison chart of
//! [`crate::chart::compare_chart`], each trial coloured by its result, a pruned one marked where it stopped,
//! one waiting at a rung where it waits), and the parallel-coordinates plot: one vertical axis per varied
//! setting and the metric last, each trial a line through its values. An axis is categorical for names and
//! flags, logarithmic for a log-uniform range or values spanning a decade or more, linear otherwise
//! ([`AxisScale`]).
//! Everything here is plain arithmetic; [`crate::sweeps`] turns it into SVG elements.

use serde_json::Value as Json;
use shared::sweep::{show_value, Distribution, ParameterSpace, Sweep, SweepMetric, Trial};
use shared::{Run, RunStatus};

use crate::chart::{self, CompareMetric, Frame, Tick};

/// Height of the parallel-coordinates view box.
pub const PARALLEL_HEIGHT: f64 = 260.0;
/// The least room between two axes of the parallel-coordinates plot, in view box units (CSS pixels when
/// drawn at its width): with more axes than fit, the plot scrolls sideways in its box.
pub const AXIS_SPACING: f64 = 140.0;
/// Colour of a trial without a result yet.
pub const NO_RESULT: &str = "#adb5bd";

const PARALLEL_FRAME_TOP: f64 = 40.0;
const PARALLEL_FRAME_BOTTOM: f64 = 18.0;
const PARALLEL_SIDE: f64 = 24.0;

/// Where values sit along one axis.
#[derive(Debug, Clone, PartialEq)]
pub enum AxisScale {
    /// Numbers, evenly.
    Linear {
        /// The value at the bottom.
        min: f64,
        /// The value at the top.
        max: f64,
    },
    /// Positive numbers, evenly in their logarithm.
    Log {
        /// The value at the bottom.
        min: f64,
        /// The value at the top.
        max: f64,
    },
    /// Names or flags, evenly spaced from the bottom in this order.
    Categories(Vec<String>),
}

impl AxisScale {
    /// The axis of a setting varied over `space`, holding the `seen` values of the trials as well.
    pub fn of(space: &ParameterSpace, seen: &[&Json]) -> AxisScale {
        let listed = space.values.iter().flatten();
        let all: Vec<&Json> = listed.chain(seen.iter().copied()).collect();
        if all.iter().any(|value| !value.is_number()) {
            let mut names: Vec<String> = Vec::new();
            for name in all.iter().map(|value| show_value(value)) {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            return AxisScale::Categories(names);
        }
        let numbers = all.iter().filter_map(|value| value.as_f64()).chain(space.min).chain(space.max);
        let (min, max) = numbers.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(x), hi.max(x)));
        let log_drawn = space.distribution == Some(Distribution::LogUniform);
        if min > 0.0 && max.is_finite() && (log_drawn || max / min >= 10.0) {
            AxisScale::Log { min, max }
        } else {
            AxisScale::Linear { min, max }
        }
    }

    /// The metric's axis: from the lowest to the highest result, widened a little when they are equal.
    pub fn of_metric(metric: SweepMetric, results: &[f64]) -> AxisScale {
        let finite = results.iter().copied().filter(|x| x.is_finite());
        let (min, max) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(x), hi.max(x)));
        if !min.is_finite() {
            return AxisScale::Linear { min: 0.0, max: 1.0 };
        }
        let (min, max) = match metric {
            _ if max > min => (min, max),
            SweepMetric::TestAccuracy => ((min - 0.05).max(0.0), (max + 0.05).min(1.0)),
            SweepMetric::TestLoss => (min * 0.9, max * 1.1 + 1e-6),
        };
        AxisScale::Linear { min, max }
    }

    /// Where `value` sits, from 0 (bottom) to 1 (top); the middle for an axis of one value; `None` for a
    /// value the axis does not hold.
    pub fn fraction(&self, value: &Json) -> Option<f64> {
        match self {
            AxisScale::Categories(names) => {
                let at = names.iter().position(|name| *name == show_value(value))?;
                Some(if names.len() == 1 { 0.5 } else { at as f64 / (names.len() - 1) as f64 })
            }
            AxisScale::Linear { min, max } => spread(value.as_f64()?, *min, *max),
            AxisScale::Log { min, max } => spread(value.as_f64()?.max(f64::MIN_POSITIVE).ln(), min.ln(), max.ln()),
        }
    }

    /// The labelled values along the axis of a setting varied over `space`: each value of a short list of
    /// numbers, else as [`AxisScale::ticks`] places them.
    pub fn ticks_of(&self, space: &ParameterSpace, written: impl Fn(f64) -> String) -> Vec<(f64, String)> {
        let listed: Vec<f64> = space.values.iter().flatten().filter_map(Json::as_f64).collect();
        if matches!(self, AxisScale::Categories(_)) || listed.is_empty() || listed.len() > 6 {
            return self.ticks(written);
        }
        let candidates = listed.into_iter().map(|x| (self.fraction(&Json::from(x)).unwrap_or(0.5), written(x)));
        spaced(candidates)
    }

    /// The labelled values along the axis, as (fraction, label): each category; the ends and middle of a
    /// linear axis; the ends and the powers of ten between them on a log axis. Labels closer than a tenth of
    /// the axis to one already placed are left out.
    pub fn ticks(&self, written: impl Fn(f64) -> String) -> Vec<(f64, String)> {
        let candidates: Vec<(f64, String)> = match self {
            AxisScale::Categories(names) => names
                .iter()
                .map(|name| (self.fraction(&Json::from(name.as_str())).unwrap_or(0.5), name.clone()))
                .collect(),
            AxisScale::Linear { min, max } if min == max => vec![(0.5, written(*min))],
            AxisScale::Linear { min, max } => [*min, (min + max) / 2.0, *max]
                .into_iter()
                .map(|x| (spread(x, *min, *max).unwrap_or(0.5), written(x)))
                .collect(),
            AxisScale::Log { min, max } => {
                let powers = (min.log10().ceil() as i32..=max.log10().floor() as i32).map(|p| 10f64.powi(p));
                [*min, *max]
                    .into_iter()
                    .chain(powers)
                    .map(|x| (self.fraction(&Json::from(x)).unwrap_or(0.5), written(x)))
                    .collect()
            }
        };
        spaced(candidates)
    }
}

/// `candidates` without those closer than a tenth of the axis to one placed before them.
fn spaced(candidates: impl IntoIterator<Item = (f64, String)>) -> Vec<(f64, String)> {
    let mut ticks: Vec<(f64, String)> = Vec::new();
    for (at, label) in candidates {
        if ticks.iter().all(|(placed, _)| (placed - at).abs() >= 0.1) {
            ticks.push((at, label));
        }
    }
    ticks
}

fn spread(x: f64, min: f64, max: f64) -> Option<f64> {
    if !x.is_finite() {
        return None;
    }
    Some(if max > min { ((x - min) / (max - min)).clamp(0.0, 1.0) } else { 0.5 })
}

/// How good `value` is among results from `worst` to `best`, 0 to 1 (1 when they are equal).
pub fn goodness(value: f64, worst: f64, best: f64) -> f64 {
    if (best - worst).abs() < 1e-12 {
        1.0
    } else {
        ((value - worst) / (best - worst)).clamp(0.0, 1.0)
    }
}

/// The colour of a trial `goodness` of the way from the worst result (0, orange) to the best (1, dark blue),
/// through purple: every colour reads on white.
pub fn result_colour(goodness: f64) -> String {
    const STOPS: [[f64; 3]; 3] = [[232.0, 89.0, 12.0], [174.0, 62.0, 201.0], [28.0, 60.0, 170.0]];
    let t = if goodness.is_finite() { goodness.clamp(0.0, 1.0) * 2.0 } else { 0.0 };
    let (from, to, share) = if t <= 1.0 { (STOPS[0], STOPS[1], t) } else { (STOPS[1], STOPS[2], t - 1.0) };
    let mix = |i: usize| (from[i] + (to[i] - from[i]) * share).round() as u8;
    format!("#{:02x}{:02x}{:02x}", mix(0), mix(1), mix(2))
}

/// Each trial's colour by its result among the trials: the best dark blue, the worst orange, none grey.
pub fn trial_colours(trials: &[Trial], metric: SweepMetric) -> Vec<(u32, String)> {
    let results: Vec<f64> = trials.iter().filter_map(|t| t.best_metric).filter(|x| x.is_finite()).collect();
    let pick = |better: bool| results.iter().copied().reduce(|a, b| if metric.better(a, b) == better { a } else { b });
    let (best, worst) = (pick(true), pick(false));
    trials
        .iter()
        .map(|trial| {
            let colour = match (trial.best_metric, best, worst) {
                (Some(value), Some(best), Some(worst)) => result_colour(goodness(value, worst, best)),
                _ => NO_RESULT.to_string(),
            };
            (trial.trial, colour)
        })
        .collect()
}

/// The colour of trial `trial` in `colours`.
pub fn colour_of(colours: &[(u32, String)], trial: u32) -> String {
    colours.iter().find(|(t, _)| *t == trial).map_or_else(|| NO_RESULT.to_string(), |(_, c)| c.clone())
}

/// The comparison chart's metric for a sweep's.
pub fn compare_metric(metric: SweepMetric) -> CompareMetric {
    match metric {
        SweepMetric::TestAccuracy => CompareMetric::TestAccuracy,
        SweepMetric::TestLoss => CompareMetric::TestLoss,
    }
}

/// One trial's learning curve.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialCurve {
    /// The trial.
    pub trial: u32,
    /// Its colour, by its result.
    pub colour: String,
    /// The metric per finished epoch.
    pub points: Vec<(f64, f64)>,
    /// What hovering each point shows.
    pub notes: Vec<String>,
    /// Where a pruned trial stopped, with why.
    pub stopped: Option<((f64, f64), String)>,
    /// Where a trial waits at a rung (ASHA's promotion variant), with what it waits for.
    pub waits: Option<((f64, f64), String)>,
}

/// Every trial's curve in one panel.
#[derive(Debug, Clone, PartialEq)]
pub struct CurveChart {
    /// What is drawn.
    pub metric: CompareMetric,
    /// Where the plot is.
    pub frame: Frame,
    /// Ticks along the epoch axis.
    pub x_ticks: Vec<Tick>,
    /// Ticks along the metric axis.
    pub y_ticks: Vec<Tick>,
    /// One curve per trial with a run, best first.
    pub curves: Vec<TrialCurve>,
}

/// The learning curves of `trials` (ranked, as [`crate::sweeps::live_trials`] gives them) from their runs
/// in `runs`, in a view box `width` wide.
pub fn learning_curves(sweep: &Sweep, trials: &[Trial], runs: &[Run], width: f64) -> CurveChart {
    let metric = sweep.request.metric;
    let drawn: Vec<(&Trial, Run)> = trials
        .iter()
        .filter_map(|trial| Some((trial, runs.iter().find(|run| Some(run.id) == trial.run_id)?.clone())))
        .collect();
    let trial_runs: Vec<Run> = drawn.iter().map(|(_, run)| run.clone()).collect();
    let plot = chart::compare_chart(&trial_runs, compare_metric(metric)).fit_width(width);
    let colours = trial_colours(trials, metric);
    let curves = drawn
        .iter()
        .zip(plot.lines)
        .map(|((trial, _), line)| {
            let notes: Vec<String> = line.notes.iter().map(|note| format!("Trial {}: {note}", trial.trial)).collect();
            let pruned = trial.status == Some(RunStatus::Pruned);
            let stopped = line.points.last().filter(|_| pruned).map(|&at| {
                let why = trial.note.clone().unwrap_or_else(|| "pruned".to_string());
                (at, format!("Trial {} was pruned: {why}", trial.trial))
            });
            let waits = line.points.last().filter(|_| trial.waiting_at.is_some()).map(|&at| {
                let why = trial.note.clone().unwrap_or_else(|| "waits at a rung".to_string());
                (at, format!("Trial {} {why}", trial.trial))
            });
            TrialCurve {
                trial: trial.trial,
                colour: colour_of(&colours, trial.trial),
                points: line.points,
                notes,
                stopped,
                waits,
            }
        })
        .collect();
    CurveChart { metric: plot.metric, frame: plot.frame, x_ticks: plot.x_ticks, y_ticks: plot.y_ticks, curves }
}

/// One axis of the parallel-coordinates plot.
#[derive(Debug, Clone, PartialEq)]
pub struct ParallelAxis {
    /// What it shows: a setting's label, or the metric.
    pub title: String,
    /// x of the axis.
    pub x: f64,
    /// Its labelled values.
    pub ticks: Vec<Tick>,
    /// Where its labels go: `"start"` (right of the axis) or `"end"` (left of it, for the last axis).
    pub anchor: &'static str,
}

/// One trial's line through the axes.
#[derive(Debug, Clone, PartialEq)]
pub struct ParallelLine {
    /// The trial.
    pub trial: u32,
    /// Its colour, by its result.
    pub colour: String,
    /// Its point on each axis it has a value on; without a result it ends before the metric's axis.
    pub points: Vec<(f64, f64)>,
    /// What hovering it shows: the trial, its values and result.
    pub note: String,
    /// True when it was pruned.
    pub pruned: bool,
}

/// The parallel-coordinates plot.
#[derive(Debug, Clone, PartialEq)]
pub struct ParallelPlot {
    /// Width of its view box.
    pub width: f64,
    /// The axes' top and height.
    pub frame: Frame,
    /// One per varied setting, then the metric.
    pub axes: Vec<ParallelAxis>,
    /// One per trial, those without a result first so that results are drawn over them.
    pub lines: Vec<ParallelLine>,
}

/// The width the parallel-coordinates plot of `sweep` needs for its axes to keep [`AXIS_SPACING`] apart.
pub fn parallel_width(sweep: &Sweep) -> f64 {
    (sweep.request.parameters.len() as f64) * AXIS_SPACING + 2.0 * PARALLEL_SIDE + 40.0
}

/// The parallel-coordinates plot of `trials` of `sweep`, in a view box `width` wide (at least
/// [`parallel_width`]).
pub fn parallel_plot(sweep: &Sweep, trials: &[Trial], width: f64) -> ParallelPlot {
    let width = width.max(parallel_width(sweep));
    let metric = sweep.request.metric;
    let frame = Frame {
        left: PARALLEL_SIDE,
        top: PARALLEL_FRAME_TOP,
        width: width - 2.0 * PARALLEL_SIDE,
        height: PARALLEL_HEIGHT - PARALLEL_FRAME_TOP - PARALLEL_FRAME_BOTTOM,
    };
    let mut scales: Vec<(String, AxisScale, Option<&ParameterSpace>)> = sweep
        .request
        .parameters
        .iter()
        .map(|(name, space)| {
            let seen: Vec<&Json> = trials.iter().filter_map(|t| t.parameters.get(name)).collect();
            (shared::fields::label_of(name).to_string(), AxisScale::of(space, &seen), Some(space))
        })
        .collect();
    let results: Vec<f64> = trials.iter().filter_map(|t| t.best_metric).collect();
    scales.push((capitalised(metric.label()), AxisScale::of_metric(metric, &results), None));
    let count = scales.len();
    let x_of = |i: usize| frame.left + frame.width * i as f64 / (count - 1).max(1) as f64;
    let y_of = |fraction: f64| frame.bottom() - fraction * frame.height;
    let axes = scales
        .iter()
        .enumerate()
        .map(|(i, (title, scale, space))| {
            let metric_axis = i + 1 == count;
            let written = |x: f64| if metric_axis { metric.show(x) } else { show_value(&Json::from(x)) };
            let ticks = match space {
                Some(space) => scale.ticks_of(space, written),
                None => scale.ticks(written),
            };
            let ticks = ticks.into_iter().map(|(at, label)| Tick { at: y_of(at), label }).collect();
            ParallelAxis { title: title.clone(), x: x_of(i), ticks, anchor: if metric_axis { "end" } else { "start" } }
        })
        .collect();
    let colours = trial_colours(trials, metric);
    let mut lines: Vec<ParallelLine> = trials
        .iter()
        .map(|trial| {
            let values = sweep.request.parameters.keys().map(|name| trial.parameters.get(name).cloned());
            let with_result = values.chain(std::iter::once(trial.best_metric.map(Json::from)));
            let points = with_result
                .zip(&scales)
                .enumerate()
                .filter_map(|(i, (value, (_, scale, _)))| Some((x_of(i), y_of(scale.fraction(&value?)?))))
                .collect();
            let result = trial.best_metric.map_or_else(|| "no result yet".to_string(), |x| metric.show(x));
            let described = shared::sweep::describe(&trial.parameters);
            ParallelLine {
                trial: trial.trial,
                colour: colour_of(&colours, trial.trial),
                points,
                note: format!("Trial {}: {described} → {result}", trial.trial),
                pruned: trial.status == Some(RunStatus::Pruned),
            }
        })
        .collect();
    lines.sort_by_key(|line| trials.iter().any(|t| t.trial == line.trial && t.best_metric.is_some()));
    ParallelPlot { width, frame, axes, lines }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| first.to_uppercase().chain(chars).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn trial(number: u32, parameters: Json, best: Option<f64>) -> Trial {
        serde_json::from_value(json!({
            "trial": number, "parameters": parameters, "run_id": number + 10, "status": "completed",
            "epochs_done": 1, "best_metric": best, "retries": 0,
        }))
        .unwrap()
    }

    fn sweep(parameters: Json) -> Sweep {
        serde_json::from_value(json!({
            "id": 1, "name": "s", "status": "completed", "created_at": 0, "trials": [],
            "request": {"base": {"dataset": "colors"}, "parameters": parameters},
        }))
        .unwrap()
    }

    #[test]
    fn a_log_uniform_range_or_values_over_a_decade_get_a_log_axis() {
        let range = ParameterSpace::range(1e-4, 1e-1, Distribution::LogUniform);
        assert_eq!(AxisScale::of(&range, &[]), AxisScale::Log { min: 1e-4, max: 1e-1 });
        let wide = ParameterSpace::values(vec![json!(0.1), json!(0.001)]);
        assert_eq!(AxisScale::of(&wide, &[]), AxisScale::Log { min: 0.001, max: 0.1 });
        let decade = ParameterSpace::values(vec![json!(0.01), json!(0.001)]);
        assert_eq!(AxisScale::of(&decade, &[]), AxisScale::Log { min: 0.001, max: 0.01 });
        let narrow = ParameterSpace::values(vec![json!(16), json!(64)]);
        assert_eq!(AxisScale::of(&narrow, &[]), AxisScale::Linear { min: 16.0, max: 64.0 });
        let scale = AxisScale::Log { min: 0.001, max: 0.1 };
        assert!((scale.fraction(&json!(0.01)).unwrap() - 0.5).abs() < 1e-9, "0.01 is halfway in log scale");
    }

    #[test]
    fn names_and_flags_get_a_categorical_axis_in_the_listed_order() {
        let space = ParameterSpace::values(vec![json!("sgd"), json!("adamw")]);
        let scale = AxisScale::of(&space, &[]);
        assert_eq!(scale, AxisScale::Categories(vec!["sgd".into(), "adamw".into()]));
        assert_eq!(scale.fraction(&json!("adamw")), Some(1.0));
        assert_eq!(scale.fraction(&json!("lamb")), None);
        let flags = AxisScale::of(&ParameterSpace::values(vec![json!(true)]), &[]);
        assert_eq!(flags.fraction(&json!(true)), Some(0.5), "one value sits in the middle");
        let labels: Vec<String> = scale.ticks(|x| x.to_string()).into_iter().map(|t| t.1).collect();
        assert_eq!(labels, ["sgd", "adamw"]);
    }

    #[test]
    fn ticks_are_the_values_listed_or_the_ends_and_the_powers_of_ten_between_them() {
        let ticks = AxisScale::Log { min: 1e-4, max: 0.05 }.ticks(|x| show_value(&json!(x)));
        let labels: Vec<&str> = ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["1.000e-4", "0.05", "0.001", "0.01"]);
        let listed = ParameterSpace::values(vec![json!(4), json!(8)]);
        let batch = AxisScale::of(&listed, &[]).ticks_of(&listed, |x| x.to_string());
        assert_eq!(batch, [(0.0, "4".into()), (1.0, "8".into())], "a short list is labelled value by value");
        let linear = AxisScale::Linear { min: 0.5, max: 0.9 }.ticks(|x| format!("{x:.1}"));
        let labels: Vec<&str> = linear.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["0.5", "0.7", "0.9"]);
        assert!((linear[1].0 - 0.5).abs() < 1e-9, "the middle value halfway up");
    }

    #[test]
    fn one_result_gets_an_axis_around_it() {
        let AxisScale::Linear { min, max } = AxisScale::of_metric(SweepMetric::TestAccuracy, &[0.5, 0.5]) else {
            panic!("a metric axis is linear")
        };
        assert!((min - 0.45).abs() < 1e-9 && (max - 0.55).abs() < 1e-9, "{min} - {max}");
        assert_eq!(AxisScale::of_metric(SweepMetric::TestAccuracy, &[]), AxisScale::Linear { min: 0.0, max: 1.0 });
    }

    #[test]
    fn the_best_trial_is_dark_blue_the_worst_orange_and_one_without_a_result_grey() {
        let trials = [trial(1, json!({}), Some(0.9)), trial(2, json!({}), Some(0.5)), trial(3, json!({}), None)];
        let colours = trial_colours(&trials, SweepMetric::TestAccuracy);
        assert_eq!(colours, [(1, "#1c3caa".into()), (2, "#e8590c".into()), (3, NO_RESULT.into())]);
        let by_loss = trial_colours(&trials, SweepMetric::TestLoss);
        assert_eq!(colour_of(&by_loss, 2), "#1c3caa", "the lower loss is the better one");
        assert_eq!(result_colour(0.5), "#ae3ec9");
    }

    #[test]
    fn each_trial_is_a_line_through_its_values_to_its_result() {
        let sweep = sweep(json!({"lr": {"values": [0.1, 0.001]}, "optimizer": {"values": ["sgd", "adamw"]}}));
        let trials = [
            trial(1, json!({"lr": 0.1, "optimizer": "sgd"}), Some(0.8)),
            trial(2, json!({"lr": 0.001, "optimizer": "adamw"}), None),
        ];
        let plot = parallel_plot(&sweep, &trials, 600.0);
        let titles: Vec<&str> = plot.axes.iter().map(|a| a.title.as_str()).collect();
        assert_eq!(titles, ["Learning rate", "Optimizer", "Test accuracy"]);
        assert_eq!(plot.axes[0].x, plot.frame.left);
        assert_eq!(plot.axes[2].x, plot.frame.right());
        assert_eq!(plot.axes[2].anchor, "end");
        assert_eq!(plot.lines[0].trial, 2, "a line without a result is drawn first, under the others");
        assert_eq!(plot.lines[0].points.len(), 2, "it stops before the metric's axis");
        let best = &plot.lines[1];
        assert_eq!(best.points.len(), 3);
        assert_eq!(best.points[0].1, plot.frame.top, "lr 0.1 is the top of its axis");
        assert_eq!(best.points[1].1, plot.frame.bottom(), "sgd is the first category, at the bottom");
        assert_eq!(best.note, "Trial 1: lr = 0.1, optimizer = sgd → 80.0 %");
    }

    #[test]
    fn many_axes_keep_their_spacing_and_the_plot_widens() {
        let names = ["lr", "momentum", "batch_size", "epochs", "weight_decay"];
        let parameters: serde_json::Map<String, Json> =
            names.iter().map(|name| (name.to_string(), json!({"values": [1]}))).collect();
        let sweep = sweep(Json::Object(parameters));
        let plot = parallel_plot(&sweep, &[], 320.0);
        assert!(plot.width >= 5.0 * AXIS_SPACING, "{}", plot.width);
        let gaps: Vec<f64> = plot.axes.windows(2).map(|pair| pair[1].x - pair[0].x).collect();
        assert!(gaps.iter().all(|gap| *gap >= AXIS_SPACING * 5.0 / 6.0 - 1e-9), "{gaps:?}");
    }
}
