//! Run receipts ([`RunReceipt`]): what a run used and where it ran, so that it can be repeated and its
//! metrics checked bit for bit.
//!
//! The data is fingerprinted as the **decoded tensors** training reads, not as the source files: those
//! tensors are what reaches the model after decoding, resizing to the run's input size, the seeded
//! train/test split of a one-folder dataset and the skipping of unreadable images, so two equal
//! fingerprints mean the same pixels and labels in the same order, whatever the files' layout or
//! encoding. A decoder that changed its output would change the hash too; the program version is
//! compared as well. Hashing reads tensors already in memory, with no second pass over the disk.

use crate::data::{Dataset, Split};
use sha2::{Digest, Sha256};
use shared::{DataFingerprint, EpochMetrics, Precision, RunReceipt, SplitFingerprint, TrainConfig};
use tch::{Device, Kind};

/// Images hashed per copy out of a split tensor, to bound the memory a copy takes.
const HASH_CHUNK: i64 = 1024;

/// Why a receipt does not describe what this program would train.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    /// Another version of the program wrote it.
    #[error(
        "this receipt was written by Transfer Studio {receipt} and this is {program}: only the same version \
         repeats a run bit for bit"
    )]
    VersionDiffers {
        /// The receipt's version.
        receipt: String,
        /// This program's.
        program: String,
    },
    /// The dataset's content is not the one the run used.
    #[error(
        "dataset \"{dataset}\" is not the one the run used: {what} differ (SHA-256 {found} here, {expected} in \
         the receipt)"
    )]
    DataDiffers {
        /// The dataset's name.
        dataset: String,
        /// Which part differs, for a person: "the training images", "the class names".
        what: &'static str,
        /// The hash found here.
        found: String,
        /// The hash the receipt holds.
        expected: String,
    },
    /// A run asked to resume over data that changed since it started: its earlier epochs were measured on
    /// other images or labels, so the run would no longer be one run on one dataset.
    #[error(
        "the run cannot resume: dataset \"{dataset}\" changed since the run started ({what} differ: SHA-256 \
         {found} now, {expected} in the run's receipt). Put the data back as it was to resume, or start a new \
         run with the same settings to train on the data as it is now"
    )]
    ChangedSinceStart {
        /// The dataset's name.
        dataset: String,
        /// Which part differs, for a person: "the training images", "the class names".
        what: &'static str,
        /// The hash found now.
        found: String,
        /// The hash the run's receipt holds.
        expected: String,
    },
    /// The starting weights file is not the one the run used.
    #[error("the starting weights \"{weights}\" are not the file the run used (SHA-256 {found}, receipt {expected})")]
    WeightsDiffer {
        /// The config's weights value.
        weights: String,
        /// The hash found here (`"none"` for random weights).
        found: String,
        /// The hash the receipt holds.
        expected: String,
    },
}

/// The fingerprint of `dataset`'s splits as decoded (before they move to the training device).
pub fn fingerprint(dataset: &Dataset) -> DataFingerprint {
    let [train_pixels, test_pixels] = match &dataset.pixels_sha256 {
        Some(known) => known.clone().map(Some),
        None => [None, None],
    };
    let train = split_fingerprint(&dataset.train, train_pixels);
    let test = split_fingerprint(&dataset.test, test_pixels);
    let mut all = Sha256::new();
    for class in &dataset.classes {
        all.update(class.as_bytes());
        all.update(b"\n");
    }
    for hash in [&train.images_sha256, &train.labels_sha256, &test.images_sha256, &test.labels_sha256] {
        all.update(hash.as_bytes());
    }
    DataFingerprint { classes: dataset.classes.clone(), train, test, sha256: hex::encode(all.finalize()) }
}

/// The fingerprint of `split`, its pixels hashed unless their hash is `known` (the decoded cache's).
fn split_fingerprint(split: &Split, known: Option<String>) -> SplitFingerprint {
    let count = split.len();
    let labels = Vec::<i64>::try_from(split.labels.to_device(Device::Cpu).to_kind(Kind::Int64)).unwrap_or_default();
    let mut label_hash = Sha256::new();
    for label in labels {
        label_hash.update(label.to_le_bytes());
    }
    SplitFingerprint {
        images: count as u64,
        images_sha256: known.unwrap_or_else(|| pixels_sha256(split)),
        labels_sha256: hex::encode(label_hash.finalize()),
    }
}

/// The SHA-256 of `split`'s pixels in order.
fn pixels_sha256(split: &Split) -> String {
    let count = split.len();
    let images = split.images.to_device(Device::Cpu).to_kind(Kind::Uint8); // [N, 3, S, S]
    let mut pixels = Sha256::new();
    let mut buffer = Vec::new();
    for start in (0..count).step_by(HASH_CHUNK as usize) {
        let chunk = images.narrow(0, start, HASH_CHUNK.min(count - start)).contiguous();
        let bytes = chunk.numel();
        buffer.resize(bytes, 0);
        chunk.copy_data_u8(&mut buffer, bytes);
        pixels.update(&buffer);
    }
    hex::encode(pixels.finalize())
}

/// The receipt of a run of `config` on `data`, starting from the weights hashed `weights_sha256`, on
/// `device` with libtorch's current thread count.
pub fn record(
    config: &TrainConfig,
    device: Device,
    data: DataFingerprint,
    weights_sha256: Option<String>,
) -> RunReceipt {
    let precision =
        if config.mixed_precision && device.is_cuda() { Precision::Bfloat16Autocast } else { Precision::Float32 };
    RunReceipt {
        version: program_version().to_string(),
        device: super::device_name(device),
        threads: tch::get_num_threads().max(1) as u32,
        precision,
        seed: config.seed,
        data,
        weights_sha256,
        config: config.clone(),
        epochs: Vec::new(),
    }
}

/// This program's version, as receipts record it.
pub fn program_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Refuses a receipt written by another version of the program.
pub fn check_version(receipt: &RunReceipt) -> Result<(), ReceiptError> {
    if receipt.version == program_version() {
        Ok(())
    } else {
        Err(ReceiptError::VersionDiffers { receipt: receipt.version.clone(), program: program_version().into() })
    }
}

/// Refuses data whose fingerprint differs from the receipt's, naming the first part that differs.
pub fn check_data(receipt: &RunReceipt, found: &DataFingerprint) -> Result<(), ReceiptError> {
    let expected = &receipt.data;
    if expected.sha256 == found.sha256 {
        return Ok(());
    }
    let parts = [
        ("the training images", &found.train.images_sha256, &expected.train.images_sha256),
        ("the training labels", &found.train.labels_sha256, &expected.train.labels_sha256),
        ("the test images", &found.test.images_sha256, &expected.test.images_sha256),
        ("the test labels", &found.test.labels_sha256, &expected.test.labels_sha256),
    ];
    let (what, found, expected) = parts
        .into_iter()
        .find(|(_, found, expected)| found != expected)
        .map(|(what, found, expected)| (what, found.clone(), expected.clone()))
        .unwrap_or(("the class names", found.sha256.clone(), expected.sha256.clone()));
    Err(ReceiptError::DataDiffers { dataset: receipt.config.dataset.clone(), what, found, expected })
}

/// Refuses to resume a run over data whose fingerprint differs from the one in the run's receipt
/// (`earlier`, written when it started), naming the first part that differs.
pub fn check_resume(earlier: &RunReceipt, found: &DataFingerprint) -> Result<(), ReceiptError> {
    check_data(earlier, found).map_err(|error| match error {
        ReceiptError::DataDiffers { dataset, what, found, expected } => {
            ReceiptError::ChangedSinceStart { dataset, what, found, expected }
        }
        other => other,
    })
}

/// Refuses starting weights whose hash differs from the receipt's.
pub fn check_weights(receipt: &RunReceipt, found: Option<&str>) -> Result<(), ReceiptError> {
    if receipt.weights_sha256.as_deref() == found {
        return Ok(());
    }
    let shown = |hash: Option<&str>| hash.unwrap_or("none").to_string();
    Err(ReceiptError::WeightsDiffer {
        weights: receipt.config.weights.clone(),
        found: shown(found),
        expected: shown(receipt.weights_sha256.as_deref()),
    })
}

/// The first way `repeated` differs from the epoch of the same number in `recorded`, as a sentence;
/// `None` when every measured value is bit-identical (wall-clock seconds are not compared).
pub fn epoch_difference(recorded: &EpochMetrics, repeated: &EpochMetrics) -> Option<String> {
    let epoch = repeated.epoch;
    let values = [
        ("train loss", recorded.train_loss, repeated.train_loss),
        ("train accuracy", recorded.train_accuracy, repeated.train_accuracy),
        ("test loss", recorded.test_loss, repeated.test_loss),
        ("test accuracy", recorded.test_accuracy, repeated.test_accuracy),
        ("learning rate", recorded.lr, repeated.lr),
    ];
    if let Some((name, was, now)) = values.into_iter().find(|(_, was, now)| was.to_bits() != now.to_bits()) {
        return Some(format!("epoch {epoch}: {name} {now:?} here, {was:?} in the receipt"));
    }
    let same_top5 = recorded.test_top5_accuracy.map(f64::to_bits) == repeated.test_top5_accuracy.map(f64::to_bits);
    let same_classes = recorded.per_class_accuracy.len() == repeated.per_class_accuracy.len()
        && recorded
            .per_class_accuracy
            .iter()
            .zip(&repeated.per_class_accuracy)
            .all(|(a, b)| a.to_bits() == b.to_bits());
    match (same_top5, same_classes, recorded.confusion == repeated.confusion) {
        (false, _, _) => Some(format!("epoch {epoch}: the top-5 test accuracy differs from the receipt")),
        (_, false, _) => Some(format!("epoch {epoch}: the per-class test accuracies differ from the receipt")),
        (_, _, false) => Some(format!("epoch {epoch}: the confusion matrix differs from the receipt")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Tensor;

    fn dataset(first_pixel: u8) -> Dataset {
        let mut pixels = vec![7u8; 2 * 3 * 4 * 4];
        pixels[0] = first_pixel;
        let split = |pixels: &[u8]| Split {
            images: Tensor::from_slice(pixels).view([2, 3, 4, 4]),
            labels: Tensor::from_slice(&[0i64, 1]),
        };
        Dataset {
            classes: vec!["cat".into(), "dog".into()],
            train: split(&pixels),
            test: split(&[9u8; 2 * 3 * 4 * 4]),
            unreadable: Vec::new(),
            test_paths: Vec::new(),
            pixels_sha256: None,
        }
    }

    #[test]
    fn the_fingerprint_hashes_the_decoded_bytes_and_little_endian_labels() {
        let found = fingerprint(&dataset(7));
        assert_eq!(found.train.images_sha256, hex::encode(Sha256::digest([7u8; 96])));
        let labels: Vec<u8> = [0i64, 1].iter().flat_map(|l| l.to_le_bytes()).collect();
        assert_eq!(found.train.labels_sha256, hex::encode(Sha256::digest(labels)));
        assert_eq!(found.train.images, 2);
        assert_eq!(found, fingerprint(&dataset(7)), "the same content gives the same fingerprint");
    }

    #[test]
    fn one_changed_pixel_is_refused_naming_the_split() {
        let receipt = record(&TrainConfig::for_dataset("pets"), Device::Cpu, fingerprint(&dataset(7)), None);
        assert!(check_data(&receipt, &fingerprint(&dataset(7))).is_ok());
        let refused = check_data(&receipt, &fingerprint(&dataset(8))).unwrap_err().to_string();
        assert!(refused.starts_with("dataset \"pets\" is not the one the run used: the training images differ"));
    }

    #[test]
    fn another_version_is_refused_with_both_versions_named() {
        let mut receipt = record(&TrainConfig::for_dataset("pets"), Device::Cpu, fingerprint(&dataset(7)), None);
        assert!(check_version(&receipt).is_ok());
        receipt.version = "0.0.1".into();
        let refused = check_version(&receipt).unwrap_err().to_string();
        assert!(refused.contains("written by Transfer Studio 0.0.1 and this is"), "{refused}");
    }

    #[test]
    fn metrics_are_compared_bit_for_bit_except_the_seconds() {
        let recorded = EpochMetrics {
            epoch: 1,
            train_loss: 0.5,
            train_accuracy: 0.75,
            test_loss: 0.25,
            test_accuracy: 1.0,
            seconds: 3.0,
            test_top5_accuracy: None,
            lr: 0.1,
            per_class_accuracy: vec![1.0, 1.0],
            confusion: vec![vec![1, 0], vec![0, 1]],
        };
        assert_eq!(epoch_difference(&recorded, &EpochMetrics { seconds: 9.0, ..recorded.clone() }), None);
        let nudged = EpochMetrics { test_loss: f64::from_bits(0.25f64.to_bits() + 1), ..recorded.clone() };
        let said = epoch_difference(&recorded, &nudged).unwrap();
        assert!(said.starts_with("epoch 1: test loss 0.25000000000000006 here, 0.25 in the receipt"), "{said}");
    }
}
