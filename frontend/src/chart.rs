//! Geometry of the training chart: where each epoch's point goes and which ticks to label.
//!
//! The chart is three panels stacked in one SVG: accuracy (train and test, 0 – 100 %) on top, loss
//! below, then the learning rate. The x axis runs from the start of training (0) to the end of the last
//! epoch the run asked for, so the lines grow across it as training goes; the loss panel also draws the
//! loss reported between epochs, from the first batch. [`compare_chart`] draws one metric (test
//! accuracy or test loss, [`CompareMetric`]) of several runs in one panel.
//! Everything here is plain arithmetic; the components turn it into SVG elements.

use shared::{EpochMetrics, Run};

/// Width of the SVG's view box.
pub const WIDTH: f64 = 560.0;
/// Height of one panel in the view box.
pub const PANEL_HEIGHT: f64 = 210.0;
/// Height of the learning-rate panel, the lowest.
pub const LR_PANEL_HEIGHT: f64 = 170.0;
/// Height of the SVG's view box.
pub const HEIGHT: f64 = PANEL_HEIGHT * 2.0 + LR_PANEL_HEIGHT;
/// Height of the comparison chart's view box.
pub const COMPARE_HEIGHT: f64 = 250.0;
/// Line colours of compared runs, in the order runs are checked.
pub const COMPARE_COLOURS: [&str; 8] =
    ["#2f6fed", "#e8590c", "#2b8a3e", "#ae3ec9", "#c92a2a", "#0c8599", "#b8860b", "#495057"];

const MARGIN_LEFT: f64 = 52.0;
const MARGIN_RIGHT: f64 = 16.0;
const MARGIN_TOP: f64 = 34.0;
const MARGIN_BOTTOM: f64 = 38.0;

/// The plotting area of one panel, in view box units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    /// x of the y axis.
    pub left: f64,
    /// y of the top of the plot.
    pub top: f64,
    /// Width of the plot.
    pub width: f64,
    /// Height of the plot.
    pub height: f64,
}

impl Frame {
    /// x of the right edge.
    pub fn right(&self) -> f64 {
        self.left + self.width
    }

    /// y of the x axis.
    pub fn bottom(&self) -> f64 {
        self.top + self.height
    }
}

/// A labelled position along an axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    /// Coordinate in view box units (x for the x axis, y for the y axis).
    pub at: f64,
    /// Text written next to it.
    pub label: String,
}

/// One panel: its frame, ticks, and the train and test lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Names the panel in CSS classes: `panel-{key}`.
    pub key: &'static str,
    /// Heading written above the plot.
    pub title: &'static str,
    /// Where the plot is.
    pub frame: Frame,
    /// Ticks along the epoch axis.
    pub x_ticks: Vec<Tick>,
    /// Ticks along the value axis.
    pub y_ticks: Vec<Tick>,
    /// Points of the training line (the only line of the learning-rate panel).
    pub train: Vec<(f64, f64)>,
    /// Points of the test line; empty in the learning-rate panel.
    pub test: Vec<(f64, f64)>,
    /// What hovering each training point shows (its epoch and value), in the order of `train`.
    pub train_notes: Vec<String>,
    /// What hovering each test point shows, in the order of `test`.
    pub test_notes: Vec<String>,
    /// The loss as batches arrived, between the epoch points; empty outside the loss panel.
    pub batches: Vec<(f64, f64)>,
    /// The latest of `batches`, with what hovering it shows.
    pub latest_batch: Option<((f64, f64), String)>,
}

/// The accuracy panel (top) for these epochs of a run that asked for `planned` epochs.
pub fn accuracy_panel(epochs: &[EpochMetrics], planned: u32) -> Panel {
    let frame = frame_at(0.0, PANEL_HEIGHT);
    let scale = Scale { frame, epochs: x_domain(epochs, planned), y_max: 1.0 };
    Panel {
        key: "accuracy",
        title: "Accuracy",
        frame,
        x_ticks: scale.x_ticks(),
        y_ticks: (0..=4)
            .map(|i| {
                let value = i as f64 * 0.25;
                Tick { at: scale.y(value), label: format!("{:.0} %", value * 100.0) }
            })
            .collect(),
        train: epochs.iter().map(|m| scale.point(m.epoch, m.train_accuracy)).collect(),
        test: epochs.iter().map(|m| scale.point(m.epoch, m.test_accuracy)).collect(),
        train_notes: notes(epochs, "train accuracy", |m| m.train_accuracy, percent),
        test_notes: notes(epochs, "test accuracy", |m| m.test_accuracy, percent),
        batches: Vec::new(),
        latest_batch: None,
    }
}

/// The loss panel (middle) for these epochs of a run that asked for `planned` epochs, with the loss
/// reported between epochs as `(epochs done as a fraction, loss)`, oldest first.
pub fn loss_panel(epochs: &[EpochMetrics], planned: u32, batches: &[(f64, f64)]) -> Panel {
    let frame = frame_at(PANEL_HEIGHT, PANEL_HEIGHT);
    let highest = epochs
        .iter()
        .flat_map(|m| [m.train_loss, m.test_loss])
        .chain(batches.iter().map(|&(_, loss)| loss))
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let (top, step) = loss_axis(highest);
    let scale = Scale { frame, epochs: x_domain(epochs, planned), y_max: top };
    let steps = (top / step).round() as u32;
    let batch_points: Vec<(f64, f64)> = batches.iter().map(|&(done, loss)| (scale.x_at(done), scale.y(loss))).collect();
    let latest_batch = batches.last().zip(batch_points.last()).map(|(&(done, loss), &at)| {
        let epoch = (done.ceil() as u32).max(1);
        (at, format!("epoch {epoch} so far ({done:.2} epochs done): train loss {}", loss_label(loss)))
    });
    Panel {
        key: "loss",
        title: "Loss",
        frame,
        x_ticks: scale.x_ticks(),
        y_ticks: (0..=steps)
            .map(|i| {
                let value = f64::from(i) * step;
                Tick { at: scale.y(value), label: rate_label(value) }
            })
            .collect(),
        train: epochs.iter().map(|m| scale.point(m.epoch, m.train_loss)).collect(),
        test: epochs.iter().map(|m| scale.point(m.epoch, m.test_loss)).collect(),
        train_notes: notes(epochs, "train loss", |m| m.train_loss, loss_label),
        test_notes: notes(epochs, "test loss", |m| m.test_loss, loss_label),
        batches: batch_points,
        latest_batch,
    }
}

/// The top of the loss axis and the step between its ticks for losses up to `highest`: the top is the
/// smallest of 1, 2, 2.5 or 5 times a power of ten at or above it, cut into four or five round steps
/// (2.1 gives 0 – 2.5 in steps of 0.5).
pub fn loss_axis(highest: f64) -> (f64, f64) {
    let top = nice_ceiling(highest);
    let mantissa = top / 10f64.powf(top.log10().floor());
    let parts = if mantissa > 2.25 { 5.0 } else { 4.0 };
    (top, top / parts)
}

/// The learning-rate panel (lowest): the rate at the end of each epoch.
pub fn lr_panel(epochs: &[EpochMetrics], planned: u32) -> Panel {
    let frame = frame_at(PANEL_HEIGHT * 2.0, LR_PANEL_HEIGHT);
    let highest = epochs.iter().map(|m| m.lr).filter(|v| v.is_finite()).fold(0.0, f64::max);
    let step = if highest > 0.0 { nice_ceiling(highest / 2.0) } else { 0.0005 };
    let scale = Scale { frame, epochs: x_domain(epochs, planned), y_max: step * 2.0 };
    Panel {
        key: "lr",
        title: "Learning rate",
        frame,
        x_ticks: scale.x_ticks(),
        y_ticks: (0..=2)
            .map(|i| {
                let value = f64::from(i) * step;
                Tick { at: scale.y(value), label: rate_label(value) }
            })
            .collect(),
        train: epochs.iter().map(|m| scale.point(m.epoch, m.lr)).collect(),
        test: Vec::new(),
        train_notes: notes(epochs, "learning rate", |m| m.lr, rate_label),
        test_notes: Vec::new(),
        batches: Vec::new(),
        latest_batch: None,
    }
}

/// What a comparison chart draws for each run, per epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareMetric {
    /// Test accuracy, on a 0 – 100 % axis.
    TestAccuracy,
    /// Test loss, on an axis that fits the highest loss.
    TestLoss,
}

impl CompareMetric {
    /// Both, in the order the page shows them.
    pub const ALL: [CompareMetric; 2] = [CompareMetric::TestAccuracy, CompareMetric::TestLoss];

    /// Names the chart in ids and CSS classes: `compare-{key}`.
    pub fn key(self) -> &'static str {
        match self {
            CompareMetric::TestAccuracy => "accuracy",
            CompareMetric::TestLoss => "loss",
        }
    }

    /// Heading written above the plot.
    pub fn title(self) -> &'static str {
        match self {
            CompareMetric::TestAccuracy => "Test accuracy",
            CompareMetric::TestLoss => "Test loss",
        }
    }

    fn value(self, metrics: &EpochMetrics) -> f64 {
        match self {
            CompareMetric::TestAccuracy => metrics.test_accuracy,
            CompareMetric::TestLoss => metrics.test_loss,
        }
    }

    fn written(self, value: f64) -> String {
        match self {
            CompareMetric::TestAccuracy => percent(value),
            CompareMetric::TestLoss => loss_label(value),
        }
    }

    /// The top of the value axis and its ticks' values for these runs.
    fn axis(self, runs: &[Run]) -> (f64, Vec<f64>) {
        match self {
            CompareMetric::TestAccuracy => (1.0, (0..=4).map(|i| f64::from(i) * 0.25).collect()),
            CompareMetric::TestLoss => {
                let highest = runs
                    .iter()
                    .flat_map(|run| run.epochs.iter().map(|m| m.test_loss))
                    .filter(|v| v.is_finite())
                    .fold(0.0, f64::max);
                let (top, step) = loss_axis(highest);
                (top, (0..=(top / step).round() as u32).map(|i| f64::from(i) * step).collect())
            }
        }
    }

    fn tick_label(self, value: f64) -> String {
        match self {
            CompareMetric::TestAccuracy => format!("{:.0} %", value * 100.0),
            CompareMetric::TestLoss => rate_label(value),
        }
    }
}

/// One run's line in a comparison chart.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareLine {
    /// The run drawn.
    pub run_id: u64,
    /// CSS colour of its line and legend entry: the same in every comparison chart.
    pub colour: &'static str,
    /// Its value per finished epoch.
    pub points: Vec<(f64, f64)>,
    /// What hovering each point shows, in the order of `points`.
    pub notes: Vec<String>,
}

/// A comparison chart: one metric of several runs on one epoch axis.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareChart {
    /// What is drawn.
    pub metric: CompareMetric,
    /// Where the plot is.
    pub frame: Frame,
    /// Ticks along the epoch axis.
    pub x_ticks: Vec<Tick>,
    /// Ticks along the value axis.
    pub y_ticks: Vec<Tick>,
    /// One line per run, in the order given.
    pub lines: Vec<CompareLine>,
}

/// The colour of the compared run at `position` in the order runs were ticked (the palette repeats).
pub fn compare_colour(position: usize) -> &'static str {
    COMPARE_COLOURS[position % COMPARE_COLOURS.len()]
}

/// `metric` per epoch of each of `runs`, on an epoch axis long enough for the longest run. A run's
/// colour is its place in `runs`, so the accuracy and loss charts of one comparison agree.
pub fn compare_chart(runs: &[Run], metric: CompareMetric) -> CompareChart {
    let frame = frame_at(0.0, COMPARE_HEIGHT);
    let epochs = runs.iter().map(|r| x_domain(&r.epochs, r.config.epochs)).max().unwrap_or(1);
    let (y_max, ticks) = metric.axis(runs);
    let scale = Scale { frame, epochs, y_max };
    CompareChart {
        metric,
        frame,
        x_ticks: scale.x_ticks(),
        y_ticks: ticks.into_iter().map(|value| Tick { at: scale.y(value), label: metric.tick_label(value) }).collect(),
        lines: runs
            .iter()
            .enumerate()
            .map(|(position, run)| CompareLine {
                run_id: run.id,
                colour: compare_colour(position),
                points: run.epochs.iter().map(|m| scale.point(m.epoch, metric.value(m))).collect(),
                notes: run
                    .epochs
                    .iter()
                    .map(|m| {
                        let value = metric.written(metric.value(m));
                        format!("Run #{}, epoch {}: {} {value}", run.id, m.epoch, metric.title().to_lowercase())
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// The narrowest view box a chart fitted to its drawn width uses (see [`crate::layout::ChartFit`]): its
/// plot keeps room for the legend beside the panel's title; a chart drawn narrower (a 320 px phone)
/// scales its text up instead.
pub const NARROW_WIDTH: f64 = 320.0;

impl Frame {
    /// This frame in a view box `width` wide: the same margins around a narrower or wider plot.
    fn in_view_box(self, width: f64) -> Frame {
        Frame { width: width - MARGIN_LEFT - MARGIN_RIGHT, ..self }
    }

    /// Where `x` in this frame lands in `other`, at the same share of the plot's width.
    fn x_in(&self, other: &Frame, x: f64) -> f64 {
        other.left + (x - self.left) / self.width * other.width
    }
}

/// `points` moved from frame `from` to frame `to` along x.
fn points_in(points: &[(f64, f64)], from: &Frame, to: &Frame) -> Vec<(f64, f64)> {
    points.iter().map(|&(x, y)| (from.x_in(to, x), y)).collect()
}

/// `ticks` moved from frame `from` to frame `to` along x.
fn x_ticks_in(ticks: &[Tick], from: &Frame, to: &Frame) -> Vec<Tick> {
    ticks.iter().map(|tick| Tick { at: from.x_in(to, tick.at), label: tick.label.clone() }).collect()
}

impl Panel {
    /// The panel in a view box `width` wide instead of [`WIDTH`]: every x is stretched to the new plot,
    /// every y and label stays.
    pub fn fit_width(self, width: f64) -> Panel {
        let frame = self.frame.in_view_box(width);
        let from = &self.frame;
        Panel {
            x_ticks: x_ticks_in(&self.x_ticks, from, &frame),
            train: points_in(&self.train, from, &frame),
            test: points_in(&self.test, from, &frame),
            batches: points_in(&self.batches, from, &frame),
            latest_batch: self.latest_batch.clone().map(|((x, y), note)| ((from.x_in(&frame, x), y), note)),
            frame,
            ..self
        }
    }
}

impl CompareChart {
    /// The chart in a view box `width` wide instead of [`WIDTH`], as [`Panel::fit_width`].
    pub fn fit_width(self, width: f64) -> CompareChart {
        let frame = self.frame.in_view_box(width);
        let from = &self.frame;
        CompareChart {
            x_ticks: x_ticks_in(&self.x_ticks, from, &frame),
            lines: self
                .lines
                .iter()
                .map(|line| CompareLine { points: points_in(&line.points, from, &frame), ..line.clone() })
                .collect(),
            frame,
            ..self
        }
    }
}

/// A learning rate for an axis label: `0`, `0.01`, `2.5e-4`.
pub fn rate_label(value: f64) -> String {
    if value == 0.0 {
        "0".to_string()
    } else if value < 0.01 {
        let written = format!("{value:.2e}");
        let (mantissa, exponent) = written.split_once('e').unwrap_or((&written, "0"));
        format!("{}e{exponent}", mantissa.trim_end_matches('0').trim_end_matches('.'))
    } else {
        trim_number(value)
    }
}

/// Points as the `points` attribute of an SVG polyline: `"52.0,176.0 300.0,90.5"`.
pub fn polyline(points: &[(f64, f64)]) -> String {
    points.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect::<Vec<_>>().join(" ")
}

/// The smallest of 1, 2, 2.5, 5 times a power of ten that is at least `value`; 0.25 for nothing.
pub fn nice_ceiling(value: f64) -> f64 {
    if !value.is_finite() || value <= 0.0 {
        return 0.25;
    }
    let power = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|step| step * power)
        .find(|candidate| *candidate >= value * (1.0 - 1e-9))
        .unwrap_or(10.0 * power)
}

/// What hovering an epoch's point shows: `"epoch 3: test loss 0.4123"`.
fn notes(
    epochs: &[EpochMetrics],
    what: &str,
    value: impl Fn(&EpochMetrics) -> f64,
    written: impl Fn(f64) -> String,
) -> Vec<String> {
    epochs.iter().map(|m| format!("epoch {}: {what} {}", m.epoch, written(value(m)))).collect()
}

fn percent(value: f64) -> String {
    format!("{:.1} %", value * 100.0)
}

fn loss_label(value: f64) -> String {
    format!("{value:.4}")
}

fn trim_number(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn frame_at(top: f64, height: f64) -> Frame {
    Frame {
        left: MARGIN_LEFT,
        top: top + MARGIN_TOP,
        width: WIDTH - MARGIN_LEFT - MARGIN_RIGHT,
        height: height - MARGIN_TOP - MARGIN_BOTTOM,
    }
}

fn x_domain(epochs: &[EpochMetrics], planned: u32) -> u32 {
    epochs.iter().map(|m| m.epoch).max().unwrap_or(0).max(planned).max(1)
}

struct Scale {
    frame: Frame,
    epochs: u32,
    y_max: f64,
}

impl Scale {
    /// x of the end of `epoch`.
    fn x(&self, epoch: u32) -> f64 {
        self.x_at(f64::from(epoch))
    }

    /// x after `done` epochs (a fraction inside an epoch).
    fn x_at(&self, done: f64) -> f64 {
        let done = if done.is_finite() { done.clamp(0.0, f64::from(self.epochs)) } else { 0.0 };
        self.frame.left + done / f64::from(self.epochs) * self.frame.width
    }

    fn y(&self, value: f64) -> f64 {
        let clamped = if value.is_finite() { value.clamp(0.0, self.y_max) } else { self.y_max };
        self.frame.bottom() - clamped / self.y_max * self.frame.height
    }

    fn point(&self, epoch: u32, value: f64) -> (f64, f64) {
        (self.x(epoch), self.y(value))
    }

    fn x_ticks(&self) -> Vec<Tick> {
        let every = self.epochs.div_ceil(8).max(1) as usize;
        (0..=self.epochs).step_by(every).map(|epoch| Tick { at: self.x(epoch), label: epoch.to_string() }).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(epoch: u32, accuracy: f64, loss: f64) -> EpochMetrics {
        serde_json::from_value(serde_json::json!({
            "epoch": epoch,
            "train_loss": loss,
            "train_accuracy": accuracy,
            "test_loss": loss,
            "test_accuracy": accuracy,
            "seconds": 1.0,
        }))
        .unwrap()
    }

    #[test]
    fn nice_ceilings_round_up_to_readable_steps() {
        assert_eq!(nice_ceiling(0.46), 0.5);
        assert_eq!(nice_ceiling(2.1), 2.5);
        assert_eq!(nice_ceiling(3.0), 5.0);
        assert_eq!(nice_ceiling(0.0), 0.25);
        assert_eq!(nice_ceiling(1.0), 1.0);
    }

    #[test]
    fn accuracy_spans_the_plot_from_zero_to_one() {
        let panel = accuracy_panel(&[metrics(1, 0.0, 1.0), metrics(3, 1.0, 1.0)], 3);
        let frame = panel.frame;
        assert_eq!(panel.train[0], (frame.left + frame.width / 3.0, frame.bottom()));
        assert_eq!(panel.train[1], (frame.right(), frame.top));
        assert_eq!(panel.test_notes[1], "epoch 3: test accuracy 100.0 %", "hovering a point shows its values");
        assert_eq!(panel.y_ticks.last().unwrap().label, "100 %");
    }

    #[test]
    fn the_x_axis_runs_from_the_start_to_the_last_planned_epoch() {
        let panel = accuracy_panel(&[metrics(1, 0.5, 1.0)], 5);
        let labels: Vec<&str> = panel.x_ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["0", "1", "2", "3", "4", "5"]);
        assert_eq!(panel.x_ticks[0].at, panel.frame.left);
        assert_eq!(panel.train[0].0, panel.frame.left + panel.frame.width / 5.0, "an epoch's point is at its end");
    }

    #[test]
    fn loss_ticks_are_round_numbers_above_the_highest_loss() {
        let panel = loss_panel(&[metrics(1, 0.1, 2.3), metrics(2, 0.2, 1.7)], 2, &[]);
        let labels: Vec<&str> = panel.y_ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["0", "0.5", "1", "1.5", "2", "2.5"]);
        assert_eq!(panel.train_notes[0], "epoch 1: train loss 2.3000");
        assert!(panel.frame.top > PANEL_HEIGHT, "the loss panel sits below the accuracy panel");
    }

    #[test]
    fn the_learning_rate_panel_sits_lowest_with_readable_small_numbers() {
        let mut first = metrics(1, 0.5, 1.0);
        first.lr = 0.001;
        let mut second = metrics(2, 0.5, 1.0);
        second.lr = 0.0005;
        let panel = lr_panel(&[first, second], 2);
        assert!(panel.frame.top > PANEL_HEIGHT * 2.0);
        assert!(panel.frame.bottom() < HEIGHT);
        let labels: Vec<&str> = panel.y_ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["0", "5e-4", "1e-3"]);
        assert!((panel.train[0].1 - panel.frame.top).abs() < 1e-6, "the highest rate touches the top");
        assert!(panel.test.is_empty());
    }

    fn finished_run(id: u64, planned: u32, epochs: &[(f64, f64)]) -> Run {
        let mut run: Run = serde_json::from_value(serde_json::json!({
            "id": id, "status": "completed", "config": {"dataset": "tiny", "epochs": planned},
            "epochs": [], "created_at": 0,
        }))
        .unwrap();
        run.epochs = epochs.iter().enumerate().map(|(i, &(a, loss))| metrics(i as u32 + 1, a, loss)).collect();
        run
    }

    #[test]
    fn compared_runs_get_their_own_colour_on_the_longest_axis() {
        let runs = [finished_run(3, 2, &[(0.5, 1.0), (1.0, 1.0)]), finished_run(5, 4, &[(0.25, 1.0)])];
        let chart = compare_chart(&runs, CompareMetric::TestAccuracy);
        assert_eq!(chart.x_ticks.len(), 5);
        assert_eq!(chart.lines.len(), 2);
        assert_eq!((chart.lines[0].run_id, chart.lines[1].run_id), (3, 5));
        assert_ne!(chart.lines[0].colour, chart.lines[1].colour);
        assert_eq!(chart.lines[0].points[1].1, chart.frame.top, "100 % is the top");
        assert_eq!(chart.lines[1].points[0].0, chart.frame.left + chart.frame.width / 4.0);
        assert_eq!(chart.lines[1].notes, ["Run #5, epoch 1: test accuracy 25.0 %"]);
    }

    #[test]
    fn the_compared_loss_axis_fits_the_highest_test_loss_of_any_run() {
        let runs = [finished_run(1, 2, &[(0.5, 2.1), (0.6, 1.2)]), finished_run(2, 2, &[(0.5, 0.4)])];
        let chart = compare_chart(&runs, CompareMetric::TestLoss);
        let labels: Vec<&str> = chart.y_ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["0", "0.5", "1", "1.5", "2", "2.5"]);
        let frame = chart.frame;
        let y_of = |loss: f64| frame.bottom() - loss / 2.5 * frame.height;
        assert!((chart.lines[0].points[0].1 - y_of(2.1)).abs() < 1e-9);
        assert!((chart.lines[1].points[0].1 - y_of(0.4)).abs() < 1e-9);
        assert_eq!(chart.lines[0].notes[1], "Run #1, epoch 2: test loss 1.2000");
    }

    #[test]
    fn a_run_keeps_its_colour_in_the_accuracy_and_loss_charts() {
        let runs = [finished_run(7, 1, &[(0.5, 1.0)]), finished_run(4, 1, &[(0.7, 0.8)])];
        let colours =
            |metric| compare_chart(&runs, metric).lines.iter().map(|l| (l.run_id, l.colour)).collect::<Vec<_>>();
        assert_eq!(colours(CompareMetric::TestAccuracy), colours(CompareMetric::TestLoss));
        assert_eq!(colours(CompareMetric::TestLoss)[0], (7, COMPARE_COLOURS[0]));
    }

    #[test]
    fn runs_without_a_finished_epoch_draw_no_points_on_a_default_axis() {
        let chart = compare_chart(&[finished_run(1, 3, &[]), finished_run(2, 3, &[])], CompareMetric::TestLoss);
        assert!(chart.lines.iter().all(|l| l.points.is_empty() && l.notes.is_empty()));
        assert_eq!(chart.y_ticks.last().unwrap().label, "0.25");
    }

    #[test]
    fn a_panel_in_a_narrow_view_box_keeps_its_margins_labels_and_each_point_at_its_share_of_the_plot() {
        let epochs = [metrics(1, 0.5, 1.0), metrics(2, 0.75, 0.5)];
        let wide = loss_panel(&epochs, 4, &[(0.5, 1.2), (1.5, 0.8)]);
        let narrow = wide.clone().fit_width(NARROW_WIDTH);
        assert_eq!(narrow.frame.left, wide.frame.left);
        assert_eq!(NARROW_WIDTH - narrow.frame.right(), WIDTH - wide.frame.right(), "the same right margin");
        assert_eq!((narrow.frame.top, narrow.frame.height), (wide.frame.top, wide.frame.height));
        let share = |panel: &Panel, x: f64| (x - panel.frame.left) / panel.frame.width;
        let pairs = wide.train.iter().zip(&narrow.train).chain(wide.test.iter().zip(&narrow.test));
        for (before, after) in pairs.chain(wide.batches.iter().zip(&narrow.batches)) {
            assert!((share(&wide, before.0) - share(&narrow, after.0)).abs() < 1e-9);
            assert_eq!(before.1, after.1, "y does not move");
        }
        assert_eq!(narrow.batches.len(), 2);
        assert_eq!(narrow.train[1].0, narrow.frame.left + narrow.frame.width / 2.0, "epoch 2 of 4 is half way");
        assert_eq!(narrow.x_ticks.last().unwrap().at, narrow.frame.right());
        assert_eq!(narrow.y_ticks, wide.y_ticks);
        let labels = |panel: &Panel| panel.x_ticks.iter().map(|t| t.label.clone()).collect::<Vec<_>>();
        assert_eq!(labels(&narrow), labels(&wide));
        assert_eq!(narrow.latest_batch.as_ref().map(|b| b.0), narrow.batches.last().copied());
    }

    #[test]
    fn the_loss_axis_fits_the_losses_with_round_steps() {
        assert_eq!(loss_axis(2.1), (2.5, 0.5));
        assert_eq!(loss_axis(0.9), (1.0, 0.25));
        assert_eq!(loss_axis(1.3), (2.0, 0.5));
        assert_eq!(loss_axis(3.7), (5.0, 1.0));
        assert_eq!(loss_axis(0.0), (0.25, 0.05));
        for highest in [0.013, 0.31, 0.77, 1.0, 2.4, 6.9, 42.0] {
            let (top, step) = loss_axis(highest);
            assert!(top >= highest && top < highest * 2.5, "{highest}: {top}");
            let steps = top / step;
            assert!((steps - steps.round()).abs() < 1e-9 && (4.0..=5.0).contains(&steps.round()), "{highest}: {step}");
        }
    }

    #[test]
    fn the_batch_loss_is_drawn_from_the_first_batch_and_the_axis_holds_it() {
        let panel = loss_panel(&[], 3, &[(0.05, 2.1), (0.5, 1.6)]);
        let frame = panel.frame;
        assert_eq!(panel.batches.len(), 2);
        assert_eq!(panel.batches[0].0, frame.left + frame.width * 0.05 / 3.0);
        assert_eq!(panel.y_ticks.last().unwrap().label, "2.5", "the axis is not stuck at 0 - 1");
        assert!(panel.batches[0].1 > frame.top && panel.batches[0].1 < frame.bottom());
        let ((x, y), note) = panel.latest_batch.clone().unwrap();
        assert_eq!((x, y), panel.batches[1]);
        assert!(note.starts_with("epoch 1 so far") && note.ends_with("train loss 1.6000"), "{note}");
    }

    #[test]
    fn points_are_written_for_a_polyline() {
        assert_eq!(polyline(&[(1.0, 2.0), (3.26, 4.0)]), "1.0,2.0 3.3,4.0");
    }
}
