//! How numbers and runs are written on the page.

use shared::{
    BatchProgress, Checkpoint, Choice, DatasetInfo, DecodedCacheInfo, Preparation, PreparationStep, Run, RunStatus,
    Surroundings, TrainConfig, WeightsEntry, FIELDS,
};

/// A fraction in `[0, 1]` as a percentage with one decimal: `0.8123` → `"81.2 %"`.
pub fn percent(fraction: f64) -> String {
    format!("{:.1} %", fraction * 100.0)
}

/// A fraction as a percentage number without the sign, for table cells: `0.8123` → `"81.2"`.
pub fn percent_number(fraction: f64) -> String {
    format!("{:.1}", fraction * 100.0)
}

/// A headline accuracy: `Some(0.8734)` → `"87.3 %"`, `None` (no finished epoch yet) → `"—"`.
pub fn accuracy(fraction: Option<f64>) -> String {
    fraction.map_or_else(|| "—".to_string(), percent)
}

/// A moment as a date and time of day at `utc_offset_minutes` from UTC (east positive):
/// `1_795_000_000` at offset 0 → `"2026-11-18 11:06"`.
pub fn date_time(unix_seconds: u64, utc_offset_minutes: i64) -> String {
    let local = unix_seconds as i64 + utc_offset_minutes * 60;
    let (days, seconds) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    // Howard Hinnant's days-from-civil, inverted: the proleptic Gregorian date of a day count.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year}-{month:02}-{day:02} {:02}:{:02}", seconds / 3600, seconds % 3600 / 60)
}

/// A length of time, to the second under an hour: `"45 s"`, `"2 min 05 s"`, `"1 h 02 min"`.
pub fn duration(seconds: f64) -> String {
    let total = seconds.max(0.0).round() as u64;
    match total {
        0..60 => format!("{total} s"),
        60..3600 => format!("{} min {:02} s", total / 60, total % 60),
        _ => format!("{} h {:02} min", total / 3600, total % 3600 / 60),
    }
}

/// A loss for table cells.
pub fn loss(value: f64) -> String {
    format!("{value:.4}")
}

/// Bytes sent of a total, in megabytes (`"1.2 of 5.0 MB"`), or kilobytes when the total is under a
/// megabyte, so a small upload does not read "0.0 of 0.0 MB".
pub fn bytes_progress(sent: f64, total: f64) -> String {
    let (unit, size) = if total < 1e6 { ("kB", 1e3) } else { ("MB", 1e6) };
    format!("{:.1} of {:.1} {unit}", sent / size, total / size)
}

/// The line under the progress bar: `"epoch 1 — batch 10/782 — 640 img/s — 2:05 left"`.
pub fn progress_line(progress: &BatchProgress) -> String {
    let left = progress.eta_seconds.max(0.0).round() as u64;
    format!(
        "epoch {} — batch {}/{} — {:.0} img/s — {}:{:02} left",
        progress.epoch,
        progress.batch,
        progress.batches,
        progress.images_per_second,
        left / 60,
        left % 60
    )
}

/// The line under the progress bar while a run prepares: `"downloading CIFAR-10 — 45.3 of 170.5 MB"`,
/// `"unpacking CIFAR-10 — 4 files"`, `"decoding cifar10 — 12000 of 60000 images"`; with the step's rate once
/// the server gives one: `"… · 2.4 MB/s"`, `"… · 2310 images/s"`.
pub fn preparation_line(preparation: &Preparation) -> String {
    let subject = &preparation.subject;
    let done = preparation.done;
    let line = match (preparation.step, preparation.total) {
        (PreparationStep::Downloading, Some(total)) => {
            format!("downloading {subject} — {}", bytes_progress(done as f64, total as f64))
        }
        (PreparationStep::Downloading, None) => format!("downloading {subject} — {:.1} MB", done as f64 / 1e6),
        (PreparationStep::Unpacking, _) => format!("unpacking {subject} — {done} files"),
        (PreparationStep::Decoding, Some(total)) => format!("decoding {subject} — {done} of {total} images"),
        (PreparationStep::Decoding, None) => format!("decoding {subject} — {done} images"),
    };
    match preparation_rate(preparation.step, preparation.per_second) {
        Some(rate) => format!("{line} · {rate}"),
        None => line,
    }
}

/// How fast a preparation step goes, in its own units: `"2.4 MB/s"` downloading, `"2310 images/s"` decoding.
/// Unpacking is over in moments, so it has none.
fn preparation_rate(step: PreparationStep, per_second: Option<f64>) -> Option<String> {
    let per_second = per_second.filter(|rate| rate.is_finite() && *rate >= 0.0)?;
    match step {
        PreparationStep::Downloading => Some(format!("{:.1} MB/s", per_second / 1e6)),
        PreparationStep::Decoding => Some(format!("{per_second:.0} images/s")),
        PreparationStep::Unpacking => None,
    }
}

/// A size on disk in decimal units, as the upload progress writes them: `"512 B"`, `"41.3 kB"`,
/// `"44.7 MB"`, `"9.6 GB"`.
pub fn bytes(count: u64) -> String {
    let count = count as f64;
    match count {
        c if c < 1e3 => format!("{c} B"),
        c if c < 1e6 => format!("{:.1} kB", c / 1e3),
        c if c < 1e9 => format!("{:.1} MB", c / 1e6),
        c => format!("{:.1} GB", c / 1e9),
    }
}

/// What the decoded caches hold together, for their section's header: `"2 caches · 9.6 GB"`; `None` when
/// there are none.
pub fn caches_total(caches: &[DecodedCacheInfo]) -> Option<String> {
    let total: u64 = caches.iter().map(|cache| cache.bytes).sum();
    match caches.len() {
        0 => None,
        1 => Some(format!("1 cache · {}", bytes(total))),
        n => Some(format!("{n} caches · {}", bytes(total))),
    }
}

/// `"1 image"`, `"16 images"`.
pub fn images(count: u64) -> String {
    if count == 1 {
        "1 image".to_string()
    } else {
        format!("{count} images")
    }
}

/// What the best checkpoint is: `"best: epoch 3 · 44.7 MB"`.
pub fn checkpoint(checkpoint: &Checkpoint) -> String {
    format!("best: epoch {} · {:.1} MB", checkpoint.epoch, checkpoint.bytes as f64 / 1e6)
}

/// Where a queued or training run is, for the run list and the run's panel: its slot or Slurm job
/// ("slot 1 · cpu · 2 threads", "Slurm job 42 · PENDING (Resources)"), or why it waits ("waiting for a free
/// slot"). `None` once it ended: its device is shown instead.
pub fn placement(run: &Run) -> Option<String> {
    if run.status.is_finished() {
        return None;
    }
    Some(match &run.placement {
        Some(placement) => placement.describe(),
        None => "waiting for a free slot".to_string(),
    })
}

/// `"1 epoch"`, `"3 epochs"`.
pub fn epochs(count: u32) -> String {
    if count == 1 {
        "1 epoch".to_string()
    } else {
        format!("{count} epochs")
    }
}

/// What the progress bar says about a run that is not between batches.
pub fn idle_line(run: &Run) -> String {
    let done = run.epochs.len();
    let asked = epochs(run.config.epochs);
    match run.status {
        RunStatus::Queued => "waiting for the runs ahead of it".to_string(),
        RunStatus::Running => format!("preparing epoch {} of {}", done + 1, run.config.epochs),
        RunStatus::Completed => format!("completed {done} of {asked}"),
        RunStatus::Stopped => format!("stopped after {done} of {asked}"),
        RunStatus::Failed => format!("failed after {done} of {asked}"),
        RunStatus::Interrupted => format!("interrupted after {done} of {asked}"),
        RunStatus::Pruned => format!("pruned by its sweep after {done} of {asked}"),
    }
}

/// An option of the dataset select: `"cifar10 — 10 classes, 50000 train / 10000 test"`.
pub fn dataset_option(dataset: &DatasetInfo) -> String {
    if let Some(error) = &dataset.error {
        return format!("{} — cannot be read: {error}", dataset.name);
    }
    format!(
        "{} — {} classes, {} train / {} test",
        dataset.name,
        dataset.classes.len(),
        dataset.train_count,
        dataset.test_count
    )
}

/// An option of the weights select: its label, and for weights not on the server yet, that they will be
/// downloaded and how much. Sizes are in MB of 2^20 bytes, as torchvision gives them ("44.7 MB").
pub fn weights_option(entry: &WeightsEntry) -> String {
    if entry.unavailable.is_some() {
        return format!("{} — not available without network", entry.label);
    }
    match entry.download_bytes.filter(|_| !entry.present) {
        Some(bytes) => {
            format!("{} — {:.1} MB download", entry.label, bytes as f64 / 1_048_576.0)
        }
        None => entry.label.clone(),
    }
}

/// The line under the weights select for weights that are not on the server yet: when they will be
/// downloaded, and what to do without network.
pub fn weights_hint(entry: &WeightsEntry) -> Option<String> {
    let bytes = entry.download_bytes.filter(|_| !entry.present && entry.unavailable.is_none())?;
    let file = if entry.name == shared::defaults::WEIGHTS_IMAGENET { "resnet18-f37072fd.pth" } else { "the file" };
    Some(format!(
        "Not on the server yet: the first run that uses them downloads {:.1} MB. Without network, upload {file} \
         with Upload weights…",
        bytes as f64 / 1_048_576.0
    ))
}

/// Every setting of a configuration, in form order, as (label, value as a person reads it): choices by
/// their labels, flags as on/off, numbers with their unit (see [`shared::Field::shown`]).
pub fn config_fields(c: &TrainConfig) -> Vec<(&'static str, String)> {
    FIELDS.iter().map(|field| (field.label, field.shown(c))).collect()
}

/// The settings that had an effect on a run of `c` in `around`, as [`config_fields`] writes them.
pub fn applied_config_fields(c: &TrainConfig, around: &Surroundings) -> Vec<(&'static str, String)> {
    FIELDS.iter().filter(|field| field.applies(c, around)).map(|field| (field.label, field.shown(c))).collect()
}

/// A one-line summary of a run's settings, in the form's words.
pub fn config_summary(run: &Run) -> String {
    settings_summary(&run.config)
}

/// A one-line summary of a configuration, in the form's words: `"2 epochs · batch 32 · SGD at learning rate
/// 0.001 · …"`.
pub fn settings_summary(c: &TrainConfig) -> String {
    let mut parts = vec![
        epochs(c.epochs),
        format!("batch {}", c.batch_size),
        format!("{} at learning rate {}", c.optimizer.label(), c.lr),
        format!("{} schedule", c.schedule.label()),
        c.mode.label().to_string(),
        format!("{} px", c.input_size),
        format!("{} weights", shared::fields::weights_label(&c.weights)),
    ];
    if c.random_crop || c.horizontal_flip {
        parts.push("augmented".to_string());
    }
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::Schedule;

    #[test]
    fn a_run_says_where_it_trains_or_why_it_waits_until_it_ends() {
        let mut run: Run = serde_json::from_value(serde_json::json!({
            "id": 3, "status": "queued", "config": {"dataset": "tiny"}, "epochs": [], "created_at": 0,
        }))
        .unwrap();
        assert_eq!(placement(&run).as_deref(), Some("waiting for a free slot"));
        run.status = RunStatus::Running;
        run.placement = Some(shared::Placement::Local { device: "cuda:1".into(), slot: 1, threads: 8 });
        assert_eq!(placement(&run).as_deref(), Some("slot 1 · cuda:1 · 8 threads"));
        run.placement = Some(shared::Placement::Slurm {
            job_id: "42".into(),
            node: None,
            state: "PENDING".into(),
            reason: Some("Priority".into()),
            restarts: 0,
        });
        assert_eq!(placement(&run).as_deref(), Some("Slurm job 42 · PENDING (Priority)"));
        run.status = RunStatus::Completed;
        assert_eq!(placement(&run), None);
    }

    #[test]
    fn percentages_have_one_decimal_and_a_spaced_sign() {
        assert_eq!(percent(0.8123), "81.2 %");
        assert_eq!(percent(1.0), "100.0 %");
        assert_eq!(percent_number(0.3), "30.0");
    }

    #[test]
    fn a_headline_accuracy_is_a_percentage_or_a_dash_before_the_first_epoch() {
        assert_eq!(accuracy(Some(0.8734)), "87.3 %");
        assert_eq!(accuracy(None), "—");
    }

    #[test]
    fn dates_are_written_year_first_at_the_given_offset() {
        assert_eq!(date_time(0, 0), "1970-01-01 00:00");
        assert_eq!(date_time(1_795_000_000, 0), "2026-11-18 11:06");
        assert_eq!(date_time(1_795_000_000, 60), "2026-11-18 12:06");
        assert_eq!(date_time(1_795_000_000, -12 * 60), "2026-11-17 23:06");
        assert_eq!(date_time(951_782_400, 0), "2000-02-29 00:00", "a leap day");
    }

    #[test]
    fn durations_are_seconds_then_minutes_then_hours() {
        assert_eq!(duration(44.6), "45 s");
        assert_eq!(duration(125.0), "2 min 05 s");
        assert_eq!(duration(3725.0), "1 h 02 min");
        assert_eq!(duration(-1.0), "0 s");
    }

    #[test]
    fn upload_progress_is_in_megabytes() {
        assert_eq!(bytes_progress(1_260_000.0, 5_000_000.0), "1.3 of 5.0 MB");
    }

    #[test]
    fn imagenet_weights_not_on_the_server_say_they_will_be_downloaded() {
        let mut imagenet = WeightsEntry {
            name: "imagenet".into(),
            label: "ImageNet".into(),
            present: false,
            size_bytes: None,
            download_bytes: Some(46_830_571),
            unavailable: None,
        };
        assert_eq!(weights_option(&imagenet), "ImageNet — 44.7 MB download");
        assert_eq!(
            weights_hint(&imagenet).as_deref(),
            Some(
                "Not on the server yet: the first run that uses them downloads 44.7 MB. Without network, upload \
                 resnet18-f37072fd.pth with Upload weights…"
            )
        );
        imagenet.present = true;
        assert_eq!(weights_option(&imagenet), "ImageNet");
        assert_eq!(weights_hint(&imagenet), None);
    }

    #[test]
    fn a_small_upload_is_counted_in_kilobytes() {
        assert_eq!(bytes_progress(20_000.0, 41_260.0), "20.0 of 41.3 kB");
    }

    #[test]
    fn a_checkpoint_names_its_epoch_and_size() {
        let best = Checkpoint { epoch: 3, bytes: 44_730_000, saved_at: 0 };
        assert_eq!(checkpoint(&best), "best: epoch 3 · 44.7 MB");
    }

    #[test]
    fn one_epoch_is_singular() {
        assert_eq!((epochs(1).as_str(), epochs(3).as_str()), ("1 epoch", "3 epochs"));
    }

    #[test]
    fn preparation_lines_say_what_is_done_of_what() {
        let line = |step, done, total| {
            preparation_line(&Preparation { step, subject: "CIFAR-10".into(), done, total, per_second: None })
        };
        let downloading = line(PreparationStep::Downloading, 45_300_000, Some(170_500_000));
        assert_eq!(downloading, "downloading CIFAR-10 — 45.3 of 170.5 MB");
        assert_eq!(line(PreparationStep::Downloading, 2_000_000, None), "downloading CIFAR-10 — 2.0 MB");
        assert_eq!(line(PreparationStep::Unpacking, 4, None), "unpacking CIFAR-10 — 4 files");
        assert_eq!(line(PreparationStep::Decoding, 12, Some(60)), "decoding CIFAR-10 — 12 of 60 images");
    }

    #[test]
    fn preparation_lines_add_the_rate_once_the_server_gives_one() {
        let line = |step, subject: &str, done, total, per_second| {
            preparation_line(&Preparation { step, subject: subject.into(), done, total, per_second })
        };
        assert_eq!(
            line(PreparationStep::Decoding, "cifar10", 41_200, Some(101_000), Some(2_310.4)),
            "decoding cifar10 — 41200 of 101000 images · 2310 images/s"
        );
        assert_eq!(
            line(PreparationStep::Downloading, "CIFAR-10", 45_300_000, Some(170_500_000), Some(2_449_000.0)),
            "downloading CIFAR-10 — 45.3 of 170.5 MB · 2.4 MB/s"
        );
        assert_eq!(
            line(PreparationStep::Downloading, "CIFAR-10", 2_000_000, None, Some(1_000_000.0)),
            "downloading CIFAR-10 — 2.0 MB · 1.0 MB/s"
        );
        assert_eq!(line(PreparationStep::Unpacking, "CIFAR-10", 4, None, Some(8.0)), "unpacking CIFAR-10 — 4 files");
        assert_eq!(
            line(PreparationStep::Decoding, "cifar10", 12, Some(60), None),
            "decoding cifar10 — 12 of 60 images",
            "no rate before the server can say one"
        );
    }

    #[test]
    fn sizes_on_disk_are_written_in_decimal_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(41_260), "41.3 kB");
        assert_eq!(bytes(44_730_000), "44.7 MB");
        assert_eq!(bytes(9_633_792_000), "9.6 GB");
    }

    #[test]
    fn one_image_is_singular() {
        assert_eq!((images(1).as_str(), images(16).as_str()), ("1 image", "16 images"));
    }

    #[test]
    fn the_caches_header_counts_them_and_adds_their_sizes() {
        let cache = |bytes| DecodedCacheInfo {
            id: "colors-32".into(),
            dataset: "colors".into(),
            input_size: 32,
            images: 16,
            bytes,
            built_at: 0,
        };
        assert_eq!(caches_total(&[]), None);
        assert_eq!(caches_total(&[cache(49_152)]).as_deref(), Some("1 cache · 49.2 kB"));
        let both = [cache(9_633_792_000), cache(150_528_000)];
        assert_eq!(caches_total(&both).as_deref(), Some("2 caches · 9.8 GB"));
    }

    #[test]
    fn the_progress_line_names_epoch_batch_and_speed() {
        let progress = BatchProgress {
            run_id: 1,
            epoch: 2,
            batch: 10,
            batches: 782,
            loss: 1.0,
            batch_loss: None,
            images_per_second: 639.6,
            eta_seconds: 125.4,
        };
        assert_eq!(progress_line(&progress), "epoch 2 — batch 10/782 — 640 img/s — 2:05 left");
    }

    #[test]
    fn the_config_list_shows_every_setting_by_its_label_and_plain_values() {
        let config = TrainConfig { schedule: Schedule::OneCycle, ..TrainConfig::for_dataset("tiny") };
        let fields = config_fields(&config);
        assert_eq!(fields.len(), shared::FIELDS.len());
        assert!(fields.contains(&("Learning-rate schedule", "One-cycle".to_string())));
        assert!(fields.contains(&("Gradient clip norm", "no clipping".to_string())));
        for (label, value) in &fields {
            assert!(!label.contains('_') && !value.contains('_'), "{label}: {value}");
        }
    }

    #[test]
    fn only_settings_that_applied_are_listed_for_a_run() {
        let cpu = Surroundings { gpu: false, held_out_test: false };
        let constant = applied_config_fields(&TrainConfig::for_dataset("tiny"), &cpu);
        assert!(!constant.iter().any(|(label, _)| *label == "Step size" || *label == "Mixed precision"));
        let step = TrainConfig { schedule: Schedule::Step, ..TrainConfig::for_dataset("tiny") };
        assert!(applied_config_fields(&step, &cpu).contains(&("Step size", "10 epochs".to_string())));
    }

    #[test]
    fn the_summary_uses_the_form_words() {
        let run: Run = serde_json::from_value(serde_json::json!({
            "id": 1, "status": "completed", "created_at": 0, "epochs": [],
            "config": {"dataset": "d", "mode": "two_phase", "weights": "imagenet", "schedule": "one_cycle"}
        }))
        .unwrap();
        assert_eq!(
            config_summary(&run),
            "2 epochs · batch 64 · SGD at learning rate 0.001 · One-cycle schedule · Two-phase: head, then all \
             layers · 32 px · ImageNet weights"
        );
    }
}
