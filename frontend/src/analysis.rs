//! What a run's metrics say beyond the curves: its best epoch, per-class accuracy, the confusion
//! matrix as a heat map and the pairs of classes the model mixes up most.
//!
//! Plain functions over [`EpochMetrics`], tested natively; `insight.rs` draws them.

use shared::{EpochMetrics, Run, RunStatus};

/// The epoch with the highest test accuracy (the first of equals): the one whose model is saved.
pub fn best_epoch(epochs: &[EpochMetrics]) -> Option<&EpochMetrics> {
    epochs.iter().fold(None, |best: Option<&EpochMetrics>, m| match best {
        Some(b) if b.test_accuracy >= m.test_accuracy => Some(b),
        _ => Some(m),
    })
}

/// Two classes the model confuses: `count` test images of class `actual` were predicted `predicted`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfusedPair {
    /// True class index.
    pub actual: usize,
    /// Predicted class index.
    pub predicted: usize,
    /// Test images with this mistake.
    pub count: u32,
}

/// The `limit` largest off-diagonal cells of `confusion`, largest first; ties in row-major order.
/// Cells with no mistakes are left out.
pub fn most_confused_pairs(confusion: &[Vec<u32>], limit: usize) -> Vec<ConfusedPair> {
    let mut pairs: Vec<ConfusedPair> = confusion
        .iter()
        .enumerate()
        .flat_map(|(actual, row)| {
            row.iter().enumerate().filter_map(move |(predicted, &count)| {
                (actual != predicted && count > 0).then_some(ConfusedPair { actual, predicted, count })
            })
        })
        .collect();
    // A stable sort keeps row-major order among equal counts.
    pairs.sort_by_key(|pair| std::cmp::Reverse(pair.count));
    pairs.truncate(limit);
    pairs
}

/// Each count as a fraction of its row (the images of that true class); 0 for an empty row.
pub fn row_fractions(confusion: &[Vec<u32>]) -> Vec<Vec<f64>> {
    confusion
        .iter()
        .map(|row| {
            let total: u64 = row.iter().map(|&c| u64::from(c)).sum();
            row.iter().map(|&c| if total == 0 { 0.0 } else { f64::from(c) / total as f64 }).collect()
        })
        .collect()
}

/// Colours of one heat-map cell: background and text.
#[derive(Debug, Clone, PartialEq)]
pub struct HeatColour {
    /// CSS background colour.
    pub background: String,
    /// CSS text colour that stays readable on it.
    pub text: &'static str,
}

/// The cell colour for a row fraction in `[0, 1]`: white at 0, deepening to the accent blue at 1 on
/// the diagonal (right answers) and to red off it (mistakes).
pub fn heat_colour(fraction: f64, diagonal: bool) -> HeatColour {
    let f = if fraction.is_finite() { fraction.clamp(0.0, 1.0) } else { 0.0 };
    let (r, g, b) = if diagonal { (47.0, 111.0, 237.0) } else { (201.0, 42.0, 42.0) };
    let mix = |channel: f64| (255.0 + (channel - 255.0) * f).round() as u8;
    let background = [mix(r), mix(g), mix(b)];
    // White where it reaches WCAG's 4.5:1, else black, which then does (the two meet near luminance 0.18).
    let white = contrast_ratio(relative_luminance([255; 3]), relative_luminance(background));
    HeatColour {
        background: format!("rgb({}, {}, {})", background[0], background[1], background[2]),
        text: if white >= 4.5 { "#ffffff" } else { "#000000" },
    }
}

/// WCAG 2's relative luminance of an sRGB colour.
pub fn relative_luminance(rgb: [u8; 3]) -> f64 {
    let linear = |channel: u8| {
        let c = f64::from(channel) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * linear(rgb[0]) + 0.7152 * linear(rgb[1]) + 0.0722 * linear(rgb[2])
}

/// WCAG 2's contrast ratio between a lighter and a darker relative luminance.
pub fn contrast_ratio(lighter: f64, darker: f64) -> f64 {
    (lighter + 0.05) / (darker + 0.05)
}

/// True when `run` stopped before its last epoch and can continue from where it was saved.
pub fn resumable(run: &Run) -> bool {
    matches!(run.status, RunStatus::Stopped | RunStatus::Interrupted | RunStatus::Failed)
        && (run.epochs.len() as u64) < u64::from(run.config.epochs)
}

/// The class name at `index`, or `#index` when the run does not know its classes.
pub fn class_name(classes: &[String], index: usize) -> String {
    classes.get(index).cloned().unwrap_or_else(|| format!("#{index}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(epoch: u32, test_accuracy: f64) -> EpochMetrics {
        serde_json::from_value(serde_json::json!({
            "epoch": epoch, "train_loss": 1.0, "train_accuracy": 0.5, "test_loss": 1.0,
            "test_accuracy": test_accuracy, "seconds": 1.0,
        }))
        .unwrap()
    }

    #[test]
    fn the_best_epoch_has_the_highest_test_accuracy_and_the_first_wins_ties() {
        let epochs = [metrics(1, 0.4), metrics(2, 0.7), metrics(3, 0.7), metrics(4, 0.6)];
        assert_eq!(best_epoch(&epochs).unwrap().epoch, 2);
        assert!(best_epoch(&[]).is_none());
    }

    #[test]
    fn confused_pairs_are_off_diagonal_largest_first() {
        let confusion = vec![vec![50, 3, 12], vec![12, 40, 0], vec![1, 7, 30]];
        let pairs = most_confused_pairs(&confusion, 3);
        let found: Vec<(usize, usize, u32)> = pairs.iter().map(|p| (p.actual, p.predicted, p.count)).collect();
        assert_eq!(found, [(0, 2, 12), (1, 0, 12), (2, 1, 7)]);
    }

    #[test]
    fn a_perfect_model_confuses_nothing() {
        assert!(most_confused_pairs(&[vec![5, 0], vec![0, 5]], 5).is_empty());
    }

    #[test]
    fn fractions_are_of_each_true_class() {
        let fractions = row_fractions(&[vec![3, 1], vec![0, 0]]);
        assert_eq!(fractions, [vec![0.75, 0.25], vec![0.0, 0.0]]);
    }

    #[test]
    fn heat_runs_from_white_to_full_colour_with_readable_text() {
        let empty = heat_colour(0.0, true);
        assert_eq!(empty.background, "rgb(255, 255, 255)");
        assert_eq!(empty.text, "#000000");
        let full = heat_colour(1.0, true);
        assert_eq!(full.background, "rgb(47, 111, 237)");
        assert_eq!(full.text, "#ffffff");
        assert_eq!(heat_colour(1.0, false).background, "rgb(201, 42, 42)");
        assert_eq!(heat_colour(f64::NAN, false), heat_colour(0.0, false));
        assert_eq!(heat_colour(2.0, true), full);
    }

    #[test]
    fn every_cell_colour_keeps_its_text_at_wcag_aa_contrast() {
        for diagonal in [true, false] {
            for step in 0..=200 {
                let colour = heat_colour(f64::from(step) / 200.0, diagonal);
                let channels: Vec<u8> =
                    colour.background[4..colour.background.len() - 1].split(", ").map(|c| c.parse().unwrap()).collect();
                let background = relative_luminance([channels[0], channels[1], channels[2]]);
                let text = if colour.text == "#ffffff" { 1.0 } else { 0.0 };
                let ratio = contrast_ratio(background.max(text), background.min(text));
                assert!(ratio >= 4.5, "{} on {}: {ratio:.2}:1", colour.text, colour.background);
            }
        }
    }

    #[test]
    fn only_unfinished_stopped_interrupted_or_failed_runs_resume() {
        let mut run: Run = serde_json::from_value(serde_json::json!({
            "id": 1, "status": "stopped", "config": {"dataset": "tiny", "epochs": 2},
            "epochs": [], "created_at": 0,
        }))
        .unwrap();
        assert!(resumable(&run));
        run.status = RunStatus::Completed;
        assert!(!resumable(&run));
        run.status = RunStatus::Interrupted;
        run.epochs = vec![metrics(1, 0.5), metrics(2, 0.6)];
        assert!(!resumable(&run), "every epoch is done");
    }
}
