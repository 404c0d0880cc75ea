//! How numbers and runs are written on the page.

use shared::{BatchProgress, DatasetInfo, Normalization, Run, RunStatus};

/// A fraction in `[0, 1]` as a percentage with one decimal: `0.8123` → `"81.2 %"`.
pub fn percent(fraction: f64) -> String {
    format!("{:.1} %", fraction * 100.0)
}

/// A fraction as a percentage number without the sign, for table cells: `0.8123` → `"81.2"`.
pub fn percent_number(fraction: f64) -> String {
    format!("{:.1}", fraction * 100.0)
}

/// A loss for table cells.
pub fn loss(value: f64) -> String {
    format!("{value:.4}")
}

/// The line under the progress bar: `"epoch 1 — batch 10/782 — 640 img/s"`.
pub fn progress_line(progress: &BatchProgress) -> String {
    format!(
        "epoch {} — batch {}/{} — {:.0} img/s",
        progress.epoch, progress.batch, progress.batches, progress.images_per_second
    )
}

/// What the progress bar says about a run that is not between batches.
pub fn idle_line(run: &Run) -> String {
    let done = run.epochs.len();
    let asked = run.config.epochs;
    match run.status {
        RunStatus::Queued => "waiting for the runs ahead of it".to_string(),
        RunStatus::Running => format!("preparing epoch {} of {asked}", done + 1),
        RunStatus::Completed => format!("completed {done} of {asked} epochs"),
        RunStatus::Stopped => format!("stopped after {done} of {asked} epochs"),
        RunStatus::Failed => format!("failed after {done} of {asked} epochs"),
        RunStatus::Interrupted => format!("interrupted after {done} of {asked} epochs"),
    }
}

/// An option of the dataset select: `"cifar10 — 10 classes, 50000 train / 10000 test"`.
pub fn dataset_option(dataset: &DatasetInfo) -> String {
    format!(
        "{} — {} classes, {} train / {} test",
        dataset.name,
        dataset.classes.len(),
        dataset.train_count,
        dataset.test_count
    )
}

/// The value of a normalisation option, as in JSON.
pub fn normalization_value(normalization: Normalization) -> &'static str {
    match normalization {
        Normalization::Imagenet => "imagenet",
        Normalization::Half => "half",
    }
}

/// Reads a normalisation option's value.
pub fn parse_normalization(value: &str) -> Normalization {
    match value {
        "half" => Normalization::Half,
        _ => Normalization::Imagenet,
    }
}

/// A one-line summary of a run's settings.
pub fn config_summary(run: &Run) -> String {
    let c = &run.config;
    format!(
        "{} epochs · batch {} · lr {} · momentum {} · seed {} · {}px · {} · weights {}",
        c.epochs,
        c.batch_size,
        c.lr,
        c.momentum,
        c.seed,
        c.input_size,
        normalization_value(c.normalization),
        c.weights
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_have_one_decimal_and_a_spaced_sign() {
        assert_eq!(percent(0.8123), "81.2 %");
        assert_eq!(percent(1.0), "100.0 %");
        assert_eq!(percent_number(0.3), "30.0");
    }

    #[test]
    fn the_progress_line_names_epoch_batch_and_speed() {
        let progress = BatchProgress { run_id: 1, epoch: 2, batch: 10, batches: 782, loss: 1.0, images_per_second: 639.6 };
        assert_eq!(progress_line(&progress), "epoch 2 — batch 10/782 — 640 img/s");
    }

    #[test]
    fn normalization_values_round_trip() {
        for n in [Normalization::Imagenet, Normalization::Half] {
            assert_eq!(parse_normalization(normalization_value(n)), n);
        }
    }
}
