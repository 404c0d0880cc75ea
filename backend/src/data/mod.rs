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
//! Decoding is the only place images are touched one at a time (in parallel, with rayon), once per dataset
//! and input size: the result is kept in a decoded cache on disk ([`cache`]) that later runs map. From then
//! on a split is one `[N, 3, H, W]` `u8` tensor (mapped from the cache, or copied into memory) plus an `[N]`
//! `i64` label tensor, and batches are index-selects.

pub mod augment;
pub mod download;
pub mod duplicates;
pub mod health;
pub(crate) mod images;
pub mod thumbnails;
pub(crate) mod upload;
pub mod versions;

mod cache;
mod decoding;
mod sources;
mod splitting;
mod test_images;
mod writers;

pub use cache::{cache_dir, list as list_caches, remove as remove_cache, Recipe, CACHE_FOLDER};
pub use decoding::{load, load_reporting};
pub(crate) use decoding::{memory_size, Progress};
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
    /// The decoded cache could not be written (a full disk, say); nothing of it is kept.
    #[error("{}", cache_write_sentence(path, source))]
    CacheWrite {
        /// The cache file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
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
        | DataError::TooLarge { path, .. }
        | DataError::CacheWrite { path, .. } = &mut self
        {
            if let Ok(relative) = path.strip_prefix(base) {
                *path = relative.to_path_buf();
            }
        }
        self
    }
}

/// What a failed write of a decoded cache means to the person whose run it was.
fn cache_write_sentence(path: &Path, error: &std::io::Error) -> String {
    match crate::files::WriteFailure::of(error) {
        crate::files::WriteFailure::DiskFull => "the disk is full: the dataset's decoded cache could not be written \
             and nothing of it was kept; free some space (remove decoded caches you no longer use) and resume the run"
            .into(),
        _ => format!("could not write the decoded cache in {}: {error}", path.display()),
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

    /// The split held in memory on `device`: copied out of the decoded cache's mapping on the CPU, moved
    /// there on a GPU.
    pub fn in_memory(&self, device: Device) -> Result<Split, DataError> {
        let copy = || -> Result<Split, tch::TchError> {
            let images = match device {
                Device::Cpu => {
                    let mut owned = Tensor::f_empty(self.images.size(), (Kind::Uint8, device))?;
                    owned.f_copy_(&self.images)?;
                    owned
                }
                _ => self.images.f_to_device(device)?,
            };
            Ok(Split { images, labels: self.labels.f_to_device(device)? })
        };
        copy().map_err(|e| DataError::Decode(format!("copying the images into memory: {e}")))
    }

    /// Bytes of its images.
    pub fn image_bytes(&self) -> u64 {
        self.images.numel() as u64
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
    /// Image files left out because they could not be decoded, one sentence each.
    pub unreadable: Vec<String>,
    /// For a folder dataset, the path (relative to the dataset folder) of each test image, in the test
    /// split's order: unreadable files are left out, so a position is not enough to find a file. Empty
    /// for CIFAR, whose test images are records named by position ([`split_paths`]).
    pub test_paths: Vec<String>,
    /// The SHA-256 of each split's pixels (training, test) when known without reading them: the decoded
    /// cache records them as it is built.
    pub pixels_sha256: Option<[String; 2]>,
}

impl Dataset {
    /// The dataset with both splits in memory on `device` ([`Split::in_memory`]).
    pub fn in_memory(self, device: Device) -> Result<Dataset, DataError> {
        Ok(Dataset { train: self.train.in_memory(device)?, test: self.test.in_memory(device)?, ..self })
    }

    /// Bytes of both splits' images.
    pub fn image_bytes(&self) -> u64 {
        self.train.image_bytes() + self.test.image_bytes()
    }
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

impl DatasetSource {
    /// The data folder it was found in (the folder messages name its files from).
    pub fn data_dir(&self) -> &Path {
        &self.shown_from
    }
}

/// Bytes of a CIFAR record's pixels: the last 3x32x32.
const CIFAR_PIXELS: usize = 3 * 32 * 32;

/// What the data modules' tests share.
#[cfg(test)]
mod test_support {
    use std::path::Path;

    /// Writes a `side`-pixel PNG of one colour at `path`, making its folders.
    pub(super) fn solid_png(path: &Path, rgb: [u8; 3], side: u32) {
        let img = image::RgbImage::from_pixel(side, side, image::Rgb(rgb));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        img.save(path).unwrap();
    }
}
