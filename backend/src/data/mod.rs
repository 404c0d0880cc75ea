//! Datasets: finding them under the data directory, recognising their layout, and decoding them once
//! into `u8` tensors that training keeps on the device.
//!
//! Two layouts are recognised ([`DatasetFormat`]):
//! - CIFAR-10 binary batches: `cifar-10-batches-bin/` inside the dataset folder, or the folder itself.
//! - CIFAR-10 python batches: `cifar-10-batches-py/` (or the folder itself), NumPy arrays in pickles,
//!   read by the restricted reader in [`crate::formats::pickle`] (nothing is executed).
//! - CIFAR-100 binary: `cifar-100-binary/` (or the folder itself), the fine labels.
//! - Class folders: `train/<class>/<image>` and `test/<class>/<image>`, PNG, JPEG, WebP, BMP or GIF of
//!   any size.
//! - One image folder: `<class>/<image>`, split into train and test per class by a fraction, which images
//!   by a seeded hash of each one's path.
//!
//! Decoding is the only place images are touched one at a time (in parallel, with rayon); from then on
//! a split is one `[N, 3, H, W]` `u8` tensor plus an `[N]` `i64` label tensor, and batches are index-selects.

pub mod augment;
pub mod download;
pub mod duplicates;
pub mod health;
pub(crate) mod images;
pub mod thumbnails;
pub(crate) mod upload;
pub mod versions;

mod decoding;
mod sources;
mod splitting;
mod test_images;
mod writers;

pub use decoding::{load, load_reporting};
pub(crate) use sources::inspect_folder;
#[cfg(test)]
pub(crate) use sources::parse_cifar10_files;
pub use sources::{discover, inspect};
pub(crate) use splitting::{is_cifar, relative_name};
pub(crate) use test_images::{labelled_paths, split_paths};
pub use test_images::{named_test_image, test_image};
pub use writers::{write_cifar_binary, write_cifar_python};
use {decoding::*, sources::*, splitting::*, test_images::*};

use crate::data::images::{decode_to_chw, Admission, ImageError};
use crate::formats::pickle::{self, Value};
use rayon::prelude::*;
use shared::{DatasetFormat, DatasetInfo};
use std::collections::HashMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;
use tch::{Device, Kind, Tensor};

/// CIFAR-10's image side.
const CIFAR_SIDE: i64 = 32;
/// Bytes of one CIFAR-10 record: a label byte, then 32x32 red, green and blue planes.
const CIFAR_RECORD: usize = 1 + 3 * 32 * 32;
/// CIFAR-10's training batch files.
const CIFAR_TRAIN_FILES: [&str; 5] =
    ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];
/// CIFAR-10's test batch file.
const CIFAR_TEST_FILE: &str = "test_batch.bin";
/// CIFAR-10's class names file.
const CIFAR_META_FILE: &str = "batches.meta.txt";
/// The folder name CIFAR-10's archive unpacks to.
pub const CIFAR_BIN_FOLDER: &str = "cifar-10-batches-bin";
/// The folder name CIFAR-10's "python version" archive unpacks to.
pub const CIFAR_PY_FOLDER: &str = "cifar-10-batches-py";
/// The folder name CIFAR-100's "python version" archive unpacks to.
pub const CIFAR100_PY_FOLDER: &str = "cifar-100-python";

/// Where a pickled ("python version") CIFAR layout keeps its parts.
struct PickledCifar {
    format: DatasetFormat,
    folder: &'static str,
    train_files: &'static [&'static str],
    test_file: &'static str,
    /// The pickled dict holding the class names under `names_key`.
    meta_file: &'static str,
    names_key: &'static str,
    /// The key of each batch's label list.
    labels_key: &'static str,
}

/// CIFAR-10's python version: five training batches, `label_names`, `labels`.
const CIFAR10_PICKLED: PickledCifar = PickledCifar {
    format: DatasetFormat::Cifar10Python,
    folder: CIFAR_PY_FOLDER,
    train_files: &["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"],
    test_file: "test_batch",
    meta_file: "batches.meta",
    names_key: "label_names",
    labels_key: "labels",
};

/// CIFAR-100's python version: one training file; the 100 fine labels are used.
const CIFAR100_PICKLED: PickledCifar = PickledCifar {
    format: DatasetFormat::Cifar100Python,
    folder: CIFAR100_PY_FOLDER,
    train_files: &["train"],
    test_file: "test",
    meta_file: "meta",
    names_key: "fine_label_names",
    labels_key: "fine_labels",
};

impl PickledCifar {
    fn of(format: DatasetFormat) -> Option<&'static PickledCifar> {
        [&CIFAR10_PICKLED, &CIFAR100_PICKLED].into_iter().find(|layout| layout.format == format)
    }
}
/// The folder name CIFAR-100's binary archive unpacks to.
pub const CIFAR100_BIN_FOLDER: &str = "cifar-100-binary";
/// CIFAR-100's record: coarse label, fine label, then the 3x32x32 planes.
const CIFAR100_RECORD: usize = 2 + 3 * 32 * 32;
/// File extensions read in class-folder datasets.
const IMAGE_EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "webp", "bmp", "gif"];
/// Held-out fraction used to report the counts of an image-folder dataset.
const REPORTED_VALIDATION_FRACTION: f64 = 0.2;
/// Most records a CIFAR split (training or test) may hold: the official archives hold 50,000 training
/// and 10,000 test images, so a larger file is refused before it is read (a sparse file of gigabytes
/// costs nothing to make).
pub const MAX_CIFAR_RECORDS: u64 = 60_000;
/// Most bytes a pickled CIFAR file may have: [`MAX_CIFAR_RECORDS`] images with their labels and names.
const MAX_PICKLE_FILE_BYTES: u64 = MAX_CIFAR_RECORDS * 3_300;
/// Most bytes a class names file may have.
const MAX_NAMES_FILE_BYTES: u64 = 1 << 20;
/// Most bytes an image file of a folder dataset may have.
pub const MAX_IMAGE_FILE_BYTES: u64 = 128 << 20;
/// Most bytes a decoded dataset may take: both splits' `u8` images at the run's input size, which
/// training keeps whole. CIFAR-10 at the largest input size (60,000 images of 224 x 224) takes 8.4 GiB;
/// a dataset that would take more is refused before anything is decoded. Decoding holds one chunk of
/// images more than this, never a second copy of a split.
pub const MAX_DECODED_BYTES: u64 = 10 << 30;

/// What can go wrong finding or reading a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The run decoding it was stopped.
    #[error("decoding was stopped")]
    Cancelled,
    /// No folder of that name under the data directory.
    #[error("dataset \"{0}\" does not exist in the data folder")]
    NotFound(String),
    /// The folder exists but is in no recognised layout.
    #[error("dataset \"{name}\" is not in a recognised layout: {why}")]
    UnknownLayout {
        /// Dataset name.
        name: String,
        /// What was looked for.
        why: String,
    },
    /// A file of the dataset could not be read.
    #[error("could not read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file's content is not what the layout requires.
    #[error("{path} is malformed: {why}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// An image of a class-folder dataset could not be decoded.
    #[error("{path}: {source}")]
    Image {
        /// The image file.
        path: PathBuf,
        /// The cause.
        source: ImageError,
    },
    /// A file (or a split) is larger than the layout allows; it is not read.
    #[error("{path} is too large: {why}")]
    TooLarge {
        /// The file, or the folder of a split's files.
        path: PathBuf,
        /// Its size and the limit.
        why: String,
    },
    /// The decoded images could not be put together (libtorch refused a tensor operation).
    #[error("the dataset could not be decoded: {0}")]
    Decode(String),
}

impl DataError {
    /// The same error with its file named relative to `base` (the data folder), so that messages never
    /// show where the server keeps its files.
    pub(crate) fn relative_to(mut self, base: &Path) -> Self {
        if let DataError::Io { path, .. }
        | DataError::Malformed { path, .. }
        | DataError::Image { path, .. }
        | DataError::TooLarge { path, .. } = &mut self
        {
            if let Ok(relative) = path.strip_prefix(base) {
                *path = relative.to_path_buf();
            }
        }
        self
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io { path: path.to_path_buf(), source }
}

/// One split of a dataset, decoded.
pub struct Split {
    /// `[N, 3, H, W]`, `u8`.
    pub images: Tensor,
    /// `[N]`, `i64` class indices.
    pub labels: Tensor,
}

impl Split {
    /// Number of images.
    pub fn len(&self) -> i64 {
        self.labels.size()[0]
    }

    /// True when the split holds no image.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The same split on `device`.
    pub fn to_device(&self, device: Device) -> Split {
        Split { images: self.images.to_device(device), labels: self.labels.to_device(device) }
    }
}

/// A dataset decoded into tensors.
pub struct Dataset {
    /// Class names in label order.
    pub classes: Vec<String>,
    /// Training split.
    pub train: Split,
    /// Test split.
    pub test: Split,
    /// Image files left out because they could not be decoded ([`DataError::Image`] each).
    pub unreadable: Vec<DataError>,
    /// For a folder dataset, the path (relative to the dataset folder) of each test image, in the test
    /// split's order: unreadable files are left out, so a position is not enough to find a file. Empty
    /// for CIFAR, whose test images are records named by position ([`split_paths`]).
    pub test_paths: Vec<String>,
}

/// A recognised dataset folder, not yet decoded.
#[derive(Debug, Clone)]
pub struct DatasetSource {
    /// What the API reports about it.
    pub info: DatasetInfo,
    /// The folder the layout's files are in.
    pub root: PathBuf,
    /// The folder error messages name files relative to (the data folder).
    shown_from: PathBuf,
    /// For a version: what it changes of the dataset in `root` (see [`versions`]).
    pub(crate) edits: Option<std::sync::Arc<versions::Edits>>,
}

/// Bytes of a CIFAR record's pixels: the last 3x32x32.
const CIFAR_PIXELS: usize = 3 * 32 * 32;

#[cfg(test)]
mod tests {
    use super::*;
    use writers::PickleWriter;

    fn solid_png(path: &Path, rgb: [u8; 3], side: u32) {
        let img = image::RgbImage::from_pixel(side, side, image::Rgb(rgb));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        img.save(path).unwrap();
    }

    #[test]
    fn class_folders_are_recognised_counted_and_decoded_to_the_input_size() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("shapes");
        for (split, n) in [("train", 3), ("test", 2)] {
            for (class, rgb) in [("blue", [0, 0, 255]), ("red", [255, 0, 0])] {
                for i in 0..n {
                    solid_png(&root.join(split).join(class).join(format!("{i}.png")), rgb, 40 + i);
                }
            }
        }
        let source = inspect(dir.path(), "shapes").unwrap();
        assert_eq!(source.info.format, DatasetFormat::ClassFolders);
        assert_eq!(source.info.classes, ["blue", "red"]);
        assert_eq!((source.info.train_count, source.info.test_count), (6, 4));
        let data = load(&source, 32, 0.2, 0).unwrap();
        assert_eq!(data.train.images.size(), [6, 3, 32, 32]);
        assert_eq!(data.train.images.kind(), Kind::Uint8);
        assert_eq!(Vec::<i64>::try_from(&data.train.labels).unwrap(), [0, 0, 0, 1, 1, 1]);
        // Blue images have a full blue plane and an empty red one.
        assert_eq!(data.train.images.get(0).get(2).mean(Kind::Float).double_value(&[]), 255.0);
        assert_eq!(data.train.images.get(0).get(0).mean(Kind::Float).double_value(&[]), 0.0);
    }

    #[test]
    fn a_dataset_too_large_to_decode_is_refused_before_any_image_is_decoded() {
        let dir = tempfile::tempdir().unwrap();
        for (split, n) in [("train", 3), ("test", 2)] {
            for (class, rgb) in [("blue", [0, 0, 255]), ("red", [255, 0, 0])] {
                for i in 0..n {
                    solid_png(&dir.path().join(format!("shapes/{split}/{class}/{i}.png")), rgb, 8);
                }
            }
        }
        let source = inspect(dir.path(), "shapes").unwrap();
        // Ten images of 224 x 224 take 1.4 MiB decoded: past a budget of 1 MiB.
        let mut reports = 0;
        let refused = load_splits(&source, 224, 0.2, 0, 1 << 20, &mut |_, _| {
            reports += 1;
            Ok(())
        });
        let err = refused.err().expect("refused").relative_to(dir.path()).to_string();
        assert_eq!(
            err,
            "shapes is too large: 10 images of 224 x 224 pixels take 2 MiB decoded, and a dataset may take at most \
             1 MiB: lower the input size or use fewer images"
        );
        assert_eq!(reports, 0, "nothing was decoded");
        // At 32 x 32 the same images take 30 KB: they decode, each split filled in place.
        let data = load_splits(&source, 32, 0.2, 0, 1 << 20, &mut |_, _| Ok(())).unwrap();
        assert_eq!((data.train.images.size(), data.test.images.size()), (vec![6, 3, 32, 32], vec![4, 3, 32, 32]));
        assert_eq!(data.test.images.get(3).get(0).mean(Kind::Float).double_value(&[]), 255.0, "the last is red");
    }

    #[test]
    fn the_decoding_budget_admits_cifar10_at_the_largest_input_size() {
        let largest = shared::limits::MAX_INPUT_SIZE;
        assert!(check_decoded_size(Path::new("cifar10"), MAX_CIFAR_RECORDS, largest, MAX_DECODED_BYTES).is_ok());
        let err = check_decoded_size(Path::new("big"), 80_000, largest, MAX_DECODED_BYTES).unwrap_err().to_string();
        assert!(err.starts_with("big is too large: 80000 images of 224 x 224 pixels take 11.2 GiB decoded"), "{err}");
        assert!(err.contains("may take at most 10.0 GiB"), "{err}");
    }

    #[test]
    fn cifar_binary_records_become_labelled_planes() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("c10").join(CIFAR_BIN_FOLDER);
        write_cifar_binary(&bin, &["a", "b", "c"], 2, 3, |i| {
            let mut px = vec![0u8; 3072];
            px[1024..2048].fill(i as u8); // green plane carries the index
            ((i % 3) as u8, px)
        })
        .unwrap();
        let source = inspect(dir.path(), "c10").unwrap();
        assert_eq!(source.info.format, DatasetFormat::Cifar10Binary);
        assert_eq!((source.info.train_count, source.info.test_count), (10, 3));
        let data = load(&source, 32, 0.2, 0).unwrap();
        assert_eq!(Vec::<i64>::try_from(&data.test.labels).unwrap(), [1, 2, 0]);
        assert_eq!(data.train.images.int64_value(&[4, 1, 5, 5]), 4);
        assert_eq!(data.train.images.int64_value(&[4, 0, 5, 5]), 0);
        let bigger = load(&source, 64, 0.2, 0).unwrap();
        assert_eq!(bigger.test.images.size(), [3, 3, 64, 64]);
        assert_eq!(bigger.test.images.int64_value(&[2, 1, 10, 10]), 12);
    }

    #[test]
    fn cifar_python_pickles_read_as_the_same_records_as_the_binary_batches() {
        let dir = tempfile::tempdir().unwrap();
        let classes = ["airplane", "automobile", "bird"];
        // Pixels vary within and across records; 300 records per file make the data a BINSTRING
        // (over 255 bytes) and labels past 255 records.
        let record = |i: usize| (((i * 7) % 3) as u8, (0..3072).map(|p| ((i * 31 + p * 13) % 251) as u8).collect());
        write_cifar_binary(&dir.path().join("bin").join(CIFAR_BIN_FOLDER), &classes, 300, 40, record).unwrap();
        write_cifar_python(&dir.path().join("py").join(CIFAR_PY_FOLDER), &classes, 300, 40, record).unwrap();

        let python = inspect(dir.path(), "py").unwrap();
        assert_eq!(python.info.format, DatasetFormat::Cifar10Python);
        assert_eq!(python.info.classes, classes);
        assert_eq!((python.info.train_count, python.info.test_count), (1500, 40));
        let binary = load(&inspect(dir.path(), "bin").unwrap(), 32, 0.2, 0).unwrap();
        let from_pickles = load(&python, 32, 0.2, 0).unwrap();
        for (a, b) in [(&binary.train, &from_pickles.train), (&binary.test, &from_pickles.test)] {
            assert_eq!(a.images.size(), b.images.size());
            assert!(a.images.equal(&b.images), "pixels differ");
            assert!(a.labels.equal(&b.labels), "labels differ");
        }
        let (png, _) = test_image(&python, 0.2, 0, 39).unwrap().unwrap();
        assert_eq!(png, test_image(&inspect(dir.path(), "bin").unwrap(), 0.2, 0, 39).unwrap().unwrap().0);
        assert!(test_image(&python, 0.2, 0, 40).unwrap().is_none());
    }

    #[test]
    fn a_cifar_python_batch_with_a_bad_label_or_cut_short_says_which_file_and_why() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("py");
        write_cifar_python(&root, &["a", "b"], 2, 2, |i| ((i % 3) as u8, vec![0; 3072])).unwrap();
        // Listing reads every batch, so a bad one is named before any run starts.
        let err = inspect(dir.path(), "py").unwrap_err().to_string();
        assert!(err.contains("data_batch_2") && err.contains("not a class index below 2"), "{err}");

        // A truncated file: the pickle ends inside the pixel bytes.
        write_cifar_python(&root, &["a", "b"], 2, 2, |i| ((i % 2) as u8, vec![0; 3072])).unwrap();
        let batch = root.join("test_batch");
        let bytes = fs::read(&batch).unwrap();
        fs::write(&batch, &bytes[..bytes.len() / 2]).unwrap();
        let err = inspect(dir.path(), "py").unwrap_err().to_string();
        assert!(err.contains("test_batch") && err.contains("ends early"), "{err}");
    }

    #[test]
    fn one_image_folder_is_split_per_class_by_the_seeded_fraction() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("flat");
        for (class, n) in [("cat", 10), ("dog", 5)] {
            for i in 0..n {
                solid_png(&root.join(class).join(format!("{i}.png")), [i as u8, 0, 0], 8);
            }
        }
        let source = inspect(dir.path(), "flat").unwrap();
        assert_eq!(source.info.format, DatasetFormat::ImageFolder);
        assert_eq!((source.info.train_count, source.info.test_count), (12, 3));
        let data = load(&source, 32, 0.4, 1).unwrap();
        let test_labels = Vec::<i64>::try_from(&data.test.labels).unwrap();
        assert_eq!(test_labels, [0, 0, 0, 0, 1, 1], "40 % of each class");
        assert_eq!(data.train.len(), 9);
        let again = load(&source, 32, 0.4, 1).unwrap();
        assert!(again.test.images.equal(&data.test.images), "the same seed holds out the same images");
    }

    #[test]
    fn cifar100_binary_uses_the_fine_labels() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("c100").join(CIFAR100_BIN_FOLDER);
        fs::create_dir_all(&root).unwrap();
        let fine: Vec<String> = (0..100).map(|i| format!("class{i}")).collect();
        fs::write(root.join("fine_label_names.txt"), fine.join("\n")).unwrap();
        let record = |coarse: u8, label: u8, value: u8| {
            let mut r = vec![coarse, label];
            r.extend(vec![value; 3072]);
            r
        };
        fs::write(root.join("train.bin"), [record(1, 42, 7), record(2, 99, 8)].concat()).unwrap();
        fs::write(root.join("test.bin"), record(3, 5, 9)).unwrap();
        let source = inspect(dir.path(), "c100").unwrap();
        assert_eq!(source.info.format, DatasetFormat::Cifar100Binary);
        assert_eq!((source.info.classes.len(), source.info.train_count, source.info.test_count), (100, 2, 1));
        let data = load(&source, 32, 0.2, 0).unwrap();
        assert_eq!(Vec::<i64>::try_from(&data.train.labels).unwrap(), [42, 99]);
        assert_eq!(data.train.images.int64_value(&[1, 2, 31, 31]), 8);
        let (png, mime) = test_image(&source, 0.2, 0, 0).unwrap().unwrap();
        assert_eq!(mime, "image/png");
        assert_eq!(image::load_from_memory(&png).unwrap().to_rgb8().get_pixel(0, 0).0, [9, 9, 9]);
    }

    #[test]
    fn folders_in_no_layout_are_not_listed_and_say_why() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("empty")).unwrap();
        assert!(discover(dir.path()).is_empty());
        let err = inspect(dir.path(), "empty").unwrap_err().to_string();
        assert!(err.contains("train/<class>/"), "{err}");
        let err = inspect(dir.path(), "missing").unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
    }

    #[test]
    fn a_test_split_with_other_classes_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("odd");
        solid_png(&root.join("train/a/0.png"), [1, 2, 3], 8);
        solid_png(&root.join("train/b/0.png"), [1, 2, 3], 8);
        solid_png(&root.join("test/a/0.png"), [1, 2, 3], 8);
        let err = inspect(dir.path(), "odd").unwrap_err().to_string();
        assert!(err.contains("same class folders"), "{err}");
    }

    /// A CIFAR-10 python dataset `name` of one record per file, with `test_batch` replaced by `test_batch`.
    fn python_dataset_with_test_batch(data_dir: &Path, name: &str, test_batch: &[u8]) -> PathBuf {
        let root = data_dir.join(name).join(CIFAR_PY_FOLDER);
        write_cifar_python(&root, &["a", "b"], 1, 1, |_| (0, vec![0; 3072])).unwrap();
        fs::write(root.join("test_batch"), test_batch).unwrap();
        root
    }

    /// A pickled batch whose `data` claims shape [2^54, 3072] over no bytes.
    fn giant_shape_batch() -> Vec<u8> {
        let mut batch = PickleWriter::dict();
        batch.bytes(b"data").op(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R(K\x01");
        batch
            .op(b"\x8a\x08")
            .op(&(1i64 << 54).to_le_bytes())
            .int(3072)
            .op(b"\x86cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R");
        batch.op(b"(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89").bytes(b"").op(b"tb");
        batch.bytes(b"labels").op(b"](e");
        batch.end_dict()
    }

    #[test]
    fn a_pickled_array_whose_size_overflows_is_a_listed_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        python_dataset_with_test_batch(dir.path(), "giant", &giant_shape_batch());
        let err = inspect(dir.path(), "giant").unwrap_err().to_string();
        assert!(err.contains("18014398509481984 records") && err.contains("at most 60000"), "{err}");
        let listed = discover(dir.path());
        assert_eq!(listed.len(), 1);
        let error = listed[0].error.as_deref().expect("listed with its error");
        assert!(error.starts_with("giant/cifar-10-batches-py/test_batch is malformed"), "{error}");
        assert!(!error.contains(&dir.path().display().to_string()), "no server path: {error}");
    }

    #[test]
    fn dot_folders_are_never_datasets_and_unreadable_ones_are_listed_with_their_error() {
        let dir = tempfile::tempdir().unwrap();
        write_cifar_binary(&dir.path().join(".upload-x.partial"), &["a", "b"], 1, 1, |_| (0, vec![0; 3072])).unwrap();
        write_cifar_binary(&dir.path().join("good"), &["a", "b"], 1, 1, |_| (1, vec![0; 3072])).unwrap();
        python_dataset_with_test_batch(dir.path(), "cut", b"\x80\x02}(U\x04data");
        let listed = discover(dir.path());
        let names: Vec<&str> = listed.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["cut", "good"]);
        assert_eq!((listed[1].error.as_deref(), listed[1].test_count), (None, 1));
        let error = listed[0].error.as_deref().expect("an error");
        assert_eq!(listed[0].format, DatasetFormat::Cifar10Python);
        assert!(error.contains("cut/cifar-10-batches-py/test_batch") && error.contains("ends early"), "{error}");
        assert!(!error.contains(&dir.path().display().to_string()), "no server path: {error}");
    }

    #[test]
    fn a_sparse_giant_cifar_file_is_refused_by_its_size_without_being_read() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("big").join(CIFAR_BIN_FOLDER);
        write_cifar_binary(&root, &["a", "b"], 1, 1, |_| (0, vec![0; 3072])).unwrap();
        // 349,000 records: 1 GiB that takes no disk.
        fs::File::options().write(true).open(root.join(CIFAR_TEST_FILE)).unwrap().set_len(349_000 * 3073).unwrap();
        let err = inspect(dir.path(), "big").unwrap_err();
        assert!(matches!(err, DataError::TooLarge { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.starts_with("big/cifar-10-batches-bin/test_batch.bin is too large: 349000 records"),
            "{message}"
        );
        assert!(discover(dir.path())[0].error.as_deref() == Some(message.as_str()));
    }

    #[test]
    fn a_test_image_reads_only_its_own_record() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("c10").join(CIFAR_BIN_FOLDER);
        write_cifar_binary(&root, &["a", "b"], 1, 2, |i| (0, vec![(i * 40) as u8; 3072])).unwrap();
        let source = inspect(dir.path(), "c10").unwrap();
        // The file grows to a terabyte after listing (sparse): reading it whole could never succeed.
        let records: u64 = (1 << 40) / 3073;
        fs::File::options().write(true).open(root.join(CIFAR_TEST_FILE)).unwrap().set_len(records * 3073).unwrap();
        let pixel = |png: Vec<u8>| image::load_from_memory(&png).unwrap().to_rgb8().get_pixel(5, 5).0;
        let (png, _) = test_image(&source, 0.2, 0, 1).unwrap().unwrap();
        assert_eq!(pixel(png), [240, 240, 240], "record 1 of the test file is the seventh written");
        let (png, _) = test_image(&source, 0.2, 0, records as usize - 1).unwrap().unwrap();
        assert_eq!(pixel(png), [0, 0, 0]);
        assert!(test_image(&source, 0.2, 0, records as usize).unwrap().is_none());
        assert!(test_image(&source, 0.2, 0, usize::MAX).unwrap().is_none());
    }
}
