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

/// Lists the datasets under `data_dir`, sorted by name. Folders whose names start with `.` (uploads
/// being unpacked, partial files) and folders in no layout are skipped; a folder in a recognised layout
/// that cannot be read is listed with its error (see [`DatasetInfo::error`]).
pub fn discover(data_dir: &Path) -> Vec<DatasetInfo> {
    let Ok(entries) = fs::read_dir(data_dir) else { return Vec::new() };
    let mut found: Vec<DatasetInfo> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| listable(name))
        .filter_map(|name| listing_entry(data_dir, &name))
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    // Each dataset's versions follow it.
    found
        .into_iter()
        .flat_map(|info| {
            let versions = versions::listing(data_dir, &info.name, info.format);
            std::iter::once(info).chain(versions)
        })
        .collect()
}

/// Whether folder `name` of the data folder may be listed as a dataset: hidden folders and the studio's
/// own are left out quietly, any other name a new dataset could not take (one that would shadow a
/// version, say) with a warning, so that no folder is ever mistaken for something else.
fn listable(name: &str) -> bool {
    if name.starts_with('.') {
        return false;
    }
    match shared::check_dataset_name(name) {
        Ok(()) => true,
        Err(why) => {
            if !shared::names::RESERVED_NAMES.contains(&name) {
                tracing::warn!("folder {name:?} of the data folder is not listed as a dataset: its name {why}");
            }
            false
        }
    }
}

/// Folder `name`'s line in the listing: its info, or its error when its layout is recognised but it
/// cannot be read; `None` when it is in no layout.
fn listing_entry(data_dir: &Path, name: &str) -> Option<DatasetInfo> {
    let (format, root) = match recognise(&data_dir.join(name)) {
        Ok(found) => found?,
        Err(error) => {
            tracing::warn!("dataset folder {name}: {}", error.relative_to(data_dir));
            return None;
        }
    };
    // Readers return errors, but one bad folder must never take the listing down with it.
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_info(name, format, &root)));
    let error = match read {
        Ok(Ok(info)) => return Some(info),
        Ok(Err(error)) => error.relative_to(data_dir).to_string(),
        Err(_) => format!("dataset \"{name}\" could not be read"),
    };
    let mut info = DatasetInfo::new(name, format, Vec::new(), 0, 0);
    info.error = Some(error);
    Some(info)
}

/// Recognises the layout of the dataset folder `name` under `data_dir` and counts its images; a version
/// name (`cifar@v2`, see [`versions`]) is always that version of its dataset, never a folder.
/// `name` must already be a plain folder name (see `shared::TrainConfig::validate`).
pub fn inspect(data_dir: &Path, name: &str) -> Result<DatasetSource, DataError> {
    let folder = data_dir.join(name);
    match versions::parse_name(name) {
        Some((dataset, number)) => versions::inspect_version(data_dir, name, dataset, number),
        None => inspect_folder(&folder, name, data_dir),
    }
}

/// [`inspect`] of a dataset folder anywhere (an upload being unpacked), called `name` in messages, which
/// name its files relative to `shown_from`.
pub(crate) fn inspect_folder(folder: &Path, name: &str, shown_from: &Path) -> Result<DatasetSource, DataError> {
    let found = if folder.is_dir() { recognise(folder) } else { Err(DataError::NotFound(name.to_string())) };
    let source = found.and_then(|found| {
        let (format, root) = found.ok_or_else(|| unknown_layout(name))?;
        let info = read_info(name, format, &root)?;
        Ok(DatasetSource { info, root, shown_from: shown_from.to_path_buf(), edits: None })
    });
    source.map_err(|error| error.relative_to(shown_from))
}

fn unknown_layout(name: &str) -> DataError {
    DataError::UnknownLayout {
        name: name.to_string(),
        why: format!(
            "expected {CIFAR_BIN_FOLDER}/ or {CIFAR_PY_FOLDER}/ with CIFAR-10 batches, {CIFAR100_BIN_FOLDER}/ or \
             {CIFAR100_PY_FOLDER}/ with CIFAR-100, train/<class>/ and test/<class>/ image \
             folders, or at least two <class>/ folders of two or more images each"
        ),
    }
}

/// The layout of `folder` and the folder holding its files, by the files present; `None` when it is in
/// no layout. Nothing is read but folder listings.
fn recognise(folder: &Path) -> Result<Option<(DatasetFormat, PathBuf)>, DataError> {
    for root in [folder.join(CIFAR_BIN_FOLDER), folder.to_path_buf()] {
        if root.join(CIFAR_TEST_FILE).is_file() {
            return Ok(Some((DatasetFormat::Cifar10Binary, root)));
        }
    }
    for layout in [&CIFAR10_PICKLED, &CIFAR100_PICKLED] {
        for root in [folder.join(layout.folder), folder.to_path_buf()] {
            if root.join(layout.test_file).is_file() && root.join(layout.meta_file).is_file() {
                return Ok(Some((layout.format, root)));
            }
        }
    }
    for root in [folder.join(CIFAR100_BIN_FOLDER), folder.to_path_buf()] {
        if root.join("fine_label_names.txt").is_file() && root.join("test.bin").is_file() {
            return Ok(Some((DatasetFormat::Cifar100Binary, root)));
        }
    }
    if folder.join("train").is_dir() {
        return Ok(Some((DatasetFormat::ClassFolders, folder.to_path_buf())));
    }
    let classes = list_class_folders(folder)?;
    let images = classes.len() >= 2 && classes.iter().all(|(_, files)| files.len() >= 2);
    Ok(images.then(|| (DatasetFormat::ImageFolder, folder.to_path_buf())))
}

/// Reads what the listing reports about a dataset in `format` whose files are in `root`.
fn read_info(name: &str, format: DatasetFormat, root: &Path) -> Result<DatasetInfo, DataError> {
    match format {
        DatasetFormat::Cifar10Binary => inspect_cifar(name, root),
        DatasetFormat::Cifar100Binary => inspect_cifar100(name, root),
        DatasetFormat::Cifar10Python | DatasetFormat::Cifar100Python => {
            inspect_pickled(name, root, PickledCifar::of(format).unwrap_or(&CIFAR10_PICKLED))
        }
        DatasetFormat::ClassFolders => inspect_class_folders(name, root),
        DatasetFormat::ImageFolder => {
            let classes = list_class_folders(root)?;
            let (train, test) = reported_split(&classes, root);
            let names = classes.into_iter().map(|(class, _)| class).collect();
            Ok(DatasetInfo::new(name, format, names, train.len(), test.len()))
        }
    }
}

/// The whole file, refused when it is larger than `limit` bytes (checked before reading, and again while
/// reading in case it grows).
fn read_bounded(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, DataError> {
    let file = fs::File::open(path).map_err(io_error(path))?;
    let len = file.metadata().map_err(io_error(path))?.len();
    let too_large = |size: u64| DataError::TooLarge {
        path: path.to_path_buf(),
        why: format!("{size} bytes; {what} may have at most {limit}"),
    };
    if len > limit {
        return Err(too_large(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io_error(path))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// `len` bytes of the file at `offset`; `None` when the file ends first.
fn read_at(path: &Path, offset: u64, len: usize) -> Result<Option<Vec<u8>>, DataError> {
    let mut file = fs::File::open(path).map_err(io_error(path))?;
    let size = file.metadata().map_err(io_error(path))?.len();
    if offset.checked_add(len as u64).is_none_or(|end| end > size) {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(offset)).map_err(io_error(path))?;
    let mut bytes = vec![0; len];
    file.read_exact(&mut bytes).map_err(io_error(path))?;
    Ok(Some(bytes))
}

fn read_class_names(path: &Path) -> Result<Vec<String>, DataError> {
    let bytes = read_bounded(path, MAX_NAMES_FILE_BYTES, "a class names file")?;
    let text = String::from_utf8_lossy(&bytes);
    let classes: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    if classes.is_empty() {
        return Err(DataError::Malformed { path: path.to_path_buf(), why: "no class names".into() });
    }
    Ok(classes)
}

/// Records in a binary CIFAR file, by its size.
fn count_records(path: &Path, record: usize) -> Result<u64, DataError> {
    let len = fs::metadata(path).map_err(io_error(path))?.len();
    if !len.is_multiple_of(record as u64) {
        return Err(DataError::Malformed {
            path: path.to_path_buf(),
            why: format!("size {len} is not a multiple of the {record}-byte record"),
        });
    }
    Ok(len / record as u64)
}

/// Refuses a split of more than [`MAX_CIFAR_RECORDS`] records; `path` is the file (or folder) holding it.
fn check_split_size(path: &Path, records: u64) -> Result<usize, DataError> {
    if records > MAX_CIFAR_RECORDS {
        return Err(DataError::TooLarge {
            path: path.to_path_buf(),
            why: format!(
                "{records} records; a CIFAR split may hold at most {MAX_CIFAR_RECORDS} (the official archives \
                 hold 50000 training and 10000 test images)"
            ),
        });
    }
    Ok(records as usize)
}

fn inspect_cifar100(name: &str, root: &Path) -> Result<DatasetInfo, DataError> {
    let classes = read_class_names(&root.join("fine_label_names.txt"))?;
    let count = |file: &str| {
        let path = root.join(file);
        check_split_size(&path, count_records(&path, CIFAR100_RECORD)?)
    };
    let (train_count, test_count) = (count("train.bin")?, count("test.bin")?);
    Ok(DatasetInfo::new(name, DatasetFormat::Cifar100Binary, classes, train_count, test_count))
}

fn inspect_cifar(name: &str, root: &Path) -> Result<DatasetInfo, DataError> {
    let classes = read_class_names(&root.join(CIFAR_META_FILE))?;
    let mut train_records = 0;
    for file in CIFAR_TRAIN_FILES {
        train_records += count_records(&root.join(file), CIFAR_RECORD)?;
    }
    let train_count = check_split_size(root, train_records)?;
    let test = root.join(CIFAR_TEST_FILE);
    let test_count = check_split_size(&test, count_records(&test, CIFAR_RECORD)?)?;
    Ok(DatasetInfo::new(name, DatasetFormat::Cifar10Binary, classes, train_count, test_count))
}

fn inspect_pickled(name: &str, root: &Path, layout: &PickledCifar) -> Result<DatasetInfo, DataError> {
    let meta_path = root.join(layout.meta_file);
    let classes =
        class_names(&read_pickle(&meta_path)?, layout).map_err(|why| DataError::Malformed { path: meta_path, why })?;
    let mut train_records = 0;
    for file in layout.train_files {
        train_records += pickled_batch_facts(&root.join(file), classes.len(), layout)?.records as u64;
    }
    let train_count = check_split_size(root, train_records)?;
    let test_count = pickled_batch_facts(&root.join(layout.test_file), classes.len(), layout)?.records;
    Ok(DatasetInfo::new(name, layout.format, classes, train_count, test_count))
}

/// The class names of an unpickled meta file.
fn class_names(meta: &Value, layout: &PickledCifar) -> Result<Vec<String>, String> {
    let classes: Vec<String> = match meta.get(layout.names_key) {
        Some(Value::List(names)) => names.borrow().iter().filter_map(pickle::text_of).map(String::from).collect(),
        _ => Vec::new(),
    };
    if classes.is_empty() {
        return Err(format!("no {} list", layout.names_key));
    }
    Ok(classes)
}

/// Reads `bytes` as a CIFAR-10 python file the way listing does: as a batch (giving its record count)
/// or, failing that, as `batches.meta` (giving its class count). For the fuzz targets.
#[cfg(test)]
pub(crate) fn parse_cifar10_files(bytes: &[u8]) -> Result<usize, String> {
    match parse_cifar_pickle(bytes, 10, &CIFAR10_PICKLED) {
        Ok(batch) => Ok(batch.split.len() as usize),
        Err(_) => class_names(&parse_pickle(bytes)?, &CIFAR10_PICKLED).map(|classes| classes.len()),
    }
}

/// Unpickles a whole file with the restricted reader (no persistent ids: those are PyTorch's).
fn read_pickle(path: &Path) -> Result<Value, DataError> {
    let bytes = read_bounded(path, MAX_PICKLE_FILE_BYTES, "a pickled CIFAR file")?;
    parse_pickle(&bytes).map_err(|why| DataError::Malformed { path: path.to_path_buf(), why })
}

fn parse_pickle(bytes: &[u8]) -> Result<Value, String> {
    let mut no_storages = |_: &str, _: Kind, _: i64| -> Result<Tensor, String> {
        Err("persistent ids (PyTorch storages) do not belong in a dataset pickle".into())
    };
    pickle::unpickle(bytes, &mut no_storages)
        .map_err(|(position, why)| format!("cannot read the pickle at byte {position}: {why}"))
}

/// A pickled CIFAR batch, decoded.
struct PickledBatch {
    split: Split,
    /// Where the pixel bytes start in the file, when they are stored there as they are (C order).
    data_offset: Option<u64>,
}

/// Reads one pickled CIFAR batch: `data`, a `uint8` array `[N, 3072]` (red, green, blue planes of
/// 32x32), and the layout's label list, N class indices below `num_classes`.
fn read_cifar_pickle(path: &Path, num_classes: usize, layout: &PickledCifar) -> Result<PickledBatch, DataError> {
    let bytes = read_bounded(path, MAX_PICKLE_FILE_BYTES, "a pickled CIFAR batch")?;
    parse_cifar_pickle(&bytes, num_classes, layout)
        .map_err(|why| DataError::Malformed { path: path.to_path_buf(), why })
}

/// [`read_cifar_pickle`] of the file's bytes.
fn parse_cifar_pickle(bytes: &[u8], num_classes: usize, layout: &PickledCifar) -> Result<PickledBatch, String> {
    let batch = parse_pickle(bytes)?;
    let Some(Value::Array(array)) = batch.get("data") else {
        return Err("no \"data\" array".into());
    };
    let array = array.borrow();
    let pixels = 3 * CIFAR_SIDE * CIFAR_SIDE;
    let records = match array.shape.as_slice() {
        [records, width] if array.dtype.descr == "u1" && *width == pixels => *records,
        _ => {
            return Err(format!(
                "\"data\" is a {} array of shape {:?}, expected uint8 [N, {pixels}]",
                array.dtype.descr,
                &array.shape[..array.shape.len().min(8)]
            ))
        }
    };
    if !(0..=MAX_CIFAR_RECORDS as i64).contains(&records) {
        return Err(format!("\"data\" holds {records} records; a CIFAR file may hold at most {MAX_CIFAR_RECORDS}"));
    }
    let labels = label_list(&batch, layout.labels_key, num_classes)?;
    if labels.len() as i64 != records {
        return Err(format!("{} labels for {records} images", labels.len()));
    }
    let images =
        array.to_tensor(Kind::Uint8)?.f_view([records, 3, CIFAR_SIDE, CIFAR_SIDE]).map_err(|e| e.to_string())?;
    let data_offset = array.data_offset.filter(|_| !array.fortran_order).map(|offset| offset as u64);
    Ok(PickledBatch { split: Split { images, labels: Tensor::from_slice(&labels) }, data_offset })
}

/// The class indices under `key`, each below `num_classes`.
fn label_list(batch: &Value, key: &str, num_classes: usize) -> Result<Vec<i64>, String> {
    let Some(Value::List(labels)) = batch.get(key) else {
        return Err(format!("no \"{key}\" list"));
    };
    let labels = labels.borrow();
    labels
        .iter()
        .map(|label| match label {
            Value::Int(i) if (0..num_classes as i64).contains(i) => Ok(*i),
            _ => Err(format!("a label is not a class index below {num_classes}")),
        })
        .collect()
}

/// What listing and test images need of a pickled batch: its records and where its pixels start.
#[derive(Clone, Copy)]
struct BatchFacts {
    records: usize,
    data_offset: Option<u64>,
}

/// [`BatchFacts`] of a pickled CIFAR batch. Reading one means unpickling it, so they are remembered per
/// file, size and modification time: listing datasets and fetching test images stay instant after the
/// first time.
fn pickled_batch_facts(path: &Path, num_classes: usize, layout: &PickledCifar) -> Result<BatchFacts, DataError> {
    /// Facts by (file, size, modification time).
    type Facts = HashMap<(PathBuf, u64, SystemTime), BatchFacts>;
    static FACTS: Mutex<Option<Facts>> = Mutex::new(None);
    let metadata = fs::metadata(path).map_err(io_error(path))?;
    let key = (path.to_path_buf(), metadata.len(), metadata.modified().map_err(io_error(path))?);
    let known =
        FACTS.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert_with(HashMap::new).get(&key).copied();
    if let Some(facts) = known {
        return Ok(facts);
    }
    let batch = read_cifar_pickle(path, num_classes, layout)?;
    let facts = BatchFacts { records: batch.split.len() as usize, data_offset: batch.data_offset };
    FACTS.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert_with(HashMap::new).insert(key, facts);
    Ok(facts)
}

/// Image files of one split, grouped by class in class order, each group sorted by file name.
fn list_class_folders(split_dir: &Path) -> Result<Vec<(String, Vec<PathBuf>)>, DataError> {
    let mut classes = Vec::new();
    for entry in fs::read_dir(split_dir).map_err(io_error(split_dir))? {
        let entry = entry.map_err(io_error(split_dir))?;
        if !entry.file_type().map_err(io_error(split_dir))?.is_dir() {
            continue;
        }
        let Ok(class) = entry.file_name().into_string() else { continue };
        if class.starts_with('.') {
            continue;
        }
        let class_dir = entry.path();
        let mut files: Vec<PathBuf> = fs::read_dir(&class_dir)
            .map_err(io_error(&class_dir))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && has_image_extension(p))
            .collect();
        files.sort();
        classes.push((class, files));
    }
    classes.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(classes)
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn inspect_class_folders(name: &str, root: &Path) -> Result<DatasetInfo, DataError> {
    let train = list_class_folders(&root.join("train"))?;
    let test_dir = root.join("test");
    let test = if test_dir.is_dir() { list_class_folders(&test_dir)? } else { Vec::new() };
    let classes: Vec<String> = train.iter().map(|(c, _)| c.clone()).collect();
    let layout_error = |why: String| DataError::UnknownLayout { name: name.to_string(), why };
    if classes.len() < 2 {
        return Err(layout_error("train/ needs at least two class folders".into()));
    }
    if let Some((class, _)) = train.iter().find(|(_, files)| files.is_empty()) {
        return Err(layout_error(format!("train/{class}/ holds no PNG, JPEG, WebP, BMP or GIF image")));
    }
    let test_classes: Vec<&String> = test.iter().map(|(c, _)| c).collect();
    if test_classes != classes.iter().collect::<Vec<_>>() {
        return Err(layout_error(format!("test/ must have the same class folders as train/ ({})", classes.join(", "))));
    }
    let train_count = train.iter().map(|(_, f)| f.len()).sum();
    let test_count = test.iter().map(|(_, f)| f.len()).sum();
    Ok(DatasetInfo::new(name, DatasetFormat::ClassFolders, classes, train_count, test_count))
}

/// Labelled files of a split, in label order.
type LabelledFiles = Vec<(i64, PathBuf)>;

/// Splits each class's files into train and test: `fraction` of each class (at least one image, and
/// never every image of a class of two or more) is held out. The images held out are those whose
/// [`split_rank`] is lowest, so an image's split follows from its own path and `seed`, not from which
/// other images the folder holds; each side lists its files by class, then by path.
fn split_stratified(
    classes: &[(String, Vec<PathBuf>)],
    fraction: f64,
    seed: u64,
    root: &Path,
) -> (LabelledFiles, LabelledFiles) {
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (label, (_, files)) in classes.iter().enumerate() {
        let mut ranked: Vec<(u64, &PathBuf)> =
            files.iter().map(|file| (split_rank(seed, &relative_name(file, root)), file)).collect();
        ranked.sort();
        let held_out =
            ((files.len() as f64 * fraction).round() as usize).clamp(1, files.len().saturating_sub(1).max(1));
        let (held, kept) = ranked.split_at(held_out.min(ranked.len()));
        for (side, part) in [(&mut test, held), (&mut train, kept)] {
            let mut part: Vec<&PathBuf> = part.iter().map(|(_, file)| *file).collect();
            part.sort();
            side.extend(part.into_iter().map(|file| (label as i64, file.clone())));
        }
    }
    (train, test)
}

/// The split the listing and the health check report for an image folder: the one a run with the
/// form's defaults draws (20 % held out, seed 0).
fn reported_split(classes: &[(String, Vec<PathBuf>)], root: &Path) -> (LabelledFiles, LabelledFiles) {
    split_stratified(classes, REPORTED_VALIDATION_FRACTION, shared::defaults::SEED, root)
}

/// Where an image ranks for being held out of training: the first eight bytes of the SHA-256 of the
/// seed and the image's path relative to the dataset. Excluding or relabelling other images, or adding
/// new ones, leaves it unchanged.
fn split_rank(seed: u64, relative_path: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new().chain_update(seed.to_le_bytes()).chain_update(relative_path.as_bytes()).finalize();
    u64::from_le_bytes(digest[..8].try_into().expect("a SHA-256 digest is 32 bytes"))
}

/// `files` as the source's version has them: left-out files gone, relabelled ones under their new
/// label, listed by label, then by path.
fn edited(files: LabelledFiles, source: &DatasetSource) -> LabelledFiles {
    let Some(edits) = &source.edits else { return files };
    let mut kept: LabelledFiles = files
        .into_iter()
        .filter_map(|(label, file)| {
            let label = edits.label(&relative_name(&file, &source.root), label as usize)?;
            Some((label as i64, file))
        })
        .collect();
    kept.sort();
    kept
}

/// The files of listed class folders, labelled by the folders' order.
fn labelled(classes: Vec<(String, Vec<PathBuf>)>) -> LabelledFiles {
    classes
        .into_iter()
        .enumerate()
        .flat_map(|(label, (_, files))| files.into_iter().map(move |f| (label as i64, f)))
        .collect()
}

/// Images decoded between two progress reports of a folder dataset.
const DECODE_CHUNK: usize = 512;

/// Decodes a recognised dataset into tensors on the CPU, every image `input_size` square. An image-folder
/// dataset is split by `validation_fraction` with `seed`.
pub fn load(
    source: &DatasetSource,
    input_size: u32,
    validation_fraction: f64,
    seed: u64,
) -> Result<Dataset, DataError> {
    load_reporting(source, input_size, validation_fraction, seed, &mut |_, _| ControlFlow::Continue(()))
}

/// [`load`], calling `progress(done, total)` with the images decoded so far: after each chunk of files
/// of a folder dataset, after each split of a CIFAR one, and once at 0 before starting. A report answered
/// with `ControlFlow::Break` stops decoding with [`DataError::Cancelled`].
pub fn load_reporting(
    source: &DatasetSource,
    input_size: u32,
    validation_fraction: f64,
    seed: u64,
    progress: &mut dyn FnMut(u64, u64) -> ControlFlow<()>,
) -> Result<Dataset, DataError> {
    let mut progress = |done, total| if progress(done, total).is_break() { Err(DataError::Cancelled) } else { Ok(()) };
    let budget = MAX_DECODED_BYTES;
    let mut dataset = load_splits(source, input_size, validation_fraction, seed, budget, &mut progress)
        .map_err(|e| e.relative_to(&source.shown_from))?;
    dataset.unreadable = dataset.unreadable.into_iter().map(|e| e.relative_to(&source.shown_from)).collect();
    Ok(dataset)
}

/// Reports decoding progress; an error stops decoding.
type Progress<'a> = dyn FnMut(u64, u64) -> Result<(), DataError> + 'a;

/// Decodes both splits, refusing before it starts a dataset whose images would take more than `budget`
/// bytes decoded.
fn load_splits(
    source: &DatasetSource,
    input_size: u32,
    validation_fraction: f64,
    seed: u64,
    budget: u64,
    progress: &mut Progress,
) -> Result<Dataset, DataError> {
    let mut total = (source.info.train_count + source.info.test_count) as u64;
    check_decoded_size(&source.root, total, input_size, budget)?;
    progress(0, total)?;
    let classes = source.info.classes.len();
    let root = &source.root;
    let mut unreadable = Vec::new();
    let mut test_paths = Vec::new();
    let (train, test) = match source.info.format {
        DatasetFormat::Cifar10Binary => {
            let train_paths: Vec<PathBuf> = CIFAR_TRAIN_FILES.iter().map(|f| root.join(f)).collect();
            let train = load_cifar_records(&train_paths, classes, CIFAR_RECORD, 0)?;
            progress(train.len() as u64, total)?;
            (train, load_cifar_records(&[root.join(CIFAR_TEST_FILE)], classes, CIFAR_RECORD, 0)?)
        }
        DatasetFormat::Cifar100Binary => {
            // The fine label is the second byte of each record.
            let train = load_cifar_records(&[root.join("train.bin")], classes, CIFAR100_RECORD, 1)?;
            progress(train.len() as u64, total)?;
            (train, load_cifar_records(&[root.join("test.bin")], classes, CIFAR100_RECORD, 1)?)
        }
        DatasetFormat::Cifar10Python | DatasetFormat::Cifar100Python => load_pickled(source, total, progress)?,
        DatasetFormat::ClassFolders | DatasetFormat::ImageFolder => {
            let (train, test) = folder_splits(source, validation_fraction, seed)?;
            // The files may have changed since the dataset was listed.
            total = (train.len() + test.len()) as u64;
            check_decoded_size(&source.root, total, input_size, budget)?;
            let (train, mut skipped) = decode_files(&train, input_size, 0, total, progress)?;
            let (decoded, skipped_test) = decode_files(&test, input_size, train.len() as u64, total, progress)?;
            test_paths = decoded_names(&test, &skipped_test, root);
            let test = decoded;
            skipped.extend(skipped_test);
            if let Some((path, source)) = skipped.first().filter(|_| train.is_empty() || test.is_empty()) {
                let why = if train.is_empty() { "no training image" } else { "no test image" };
                return Err(DataError::Malformed {
                    path: path.clone(),
                    why: format!("{why} could be decoded ({source}, for one)"),
                });
            }
            unreadable = skipped.into_iter().map(|(path, source)| DataError::Image { path, source }).collect();
            (train, test)
        }
    };
    progress(total, total)?;
    let (train, test) = match &source.edits {
        Some(edits) if is_cifar(source.info.format) => (
            with_added_records(edit_records(train, &cifar_record_names(source, false)?, edits)?, edits)?,
            edit_records(test, &cifar_record_names(source, true)?, edits)?,
        ),
        _ => (train, test),
    };
    let (train, test) = (resize_split(train, input_size)?, resize_split(test, input_size)?);
    Ok(Dataset { classes: source.info.classes.clone(), train, test, unreadable, test_paths })
}

/// The names (relative to `root`) of `files` that decoded, in order: those not in `skipped`.
fn decoded_names(files: &LabelledFiles, skipped: &[(PathBuf, ImageError)], root: &Path) -> Vec<String> {
    let skipped: std::collections::HashSet<&PathBuf> = skipped.iter().map(|(path, _)| path).collect();
    files.iter().filter(|(_, file)| !skipped.contains(file)).map(|(_, file)| relative_name(file, root)).collect()
}

/// The training and test splits of a pickled CIFAR dataset, reporting after each training batch.
fn load_pickled(source: &DatasetSource, total: u64, progress: &mut Progress) -> Result<(Split, Split), DataError> {
    let layout = PickledCifar::of(source.info.format).unwrap_or(&CIFAR10_PICKLED);
    let classes = source.info.classes.len();
    let read = |file: &str| read_cifar_pickle(&source.root.join(file), classes, layout).map(|batch| batch.split);
    let mut done = 0;
    let mut train = Vec::new();
    for file in layout.train_files {
        let batch = read(file)?;
        done += batch.len() as u64;
        check_split_size(&source.root, done)?;
        train.push(batch);
        progress(done, total)?;
    }
    let train = concatenate(&train).map_err(DataError::Decode)?;
    Ok((train, read(layout.test_file)?))
}

/// The splits one after the other.
fn concatenate(splits: &[Split]) -> Result<Split, String> {
    let images: Vec<&Tensor> = splits.iter().map(|s| &s.images).collect();
    let labels: Vec<&Tensor> = splits.iter().map(|s| &s.labels).collect();
    let joined = Tensor::f_cat(&images, 0).and_then(|images| Ok(Split { images, labels: Tensor::f_cat(&labels, 0)? }));
    joined.map_err(|e| e.to_string())
}

/// Reads CIFAR binary files of `record`-byte records (labels first, the label used at byte `label_at`,
/// pixels in the last 3072 bytes), at most [`MAX_CIFAR_RECORDS`] in all.
fn load_cifar_records(
    paths: &[PathBuf],
    num_classes: usize,
    record: usize,
    label_at: usize,
) -> Result<Split, DataError> {
    let mut splits = Vec::new();
    let mut records = 0;
    for path in paths {
        let bytes = read_bounded(path, MAX_CIFAR_RECORDS * record as u64, "a CIFAR file")?;
        records += (bytes.len() / record) as u64;
        check_split_size(path, records)?;
        let split = cifar_records(&bytes, num_classes, record, label_at);
        splits.push(split.map_err(|why| DataError::Malformed { path: path.clone(), why })?);
    }
    concatenate(&splits).map_err(DataError::Decode)
}

/// Splits the bytes of a binary CIFAR file into labels and `[N, 3, 32, 32]` images with tensor ops.
fn cifar_records(bytes: &[u8], num_classes: usize, record: usize, label_at: usize) -> Result<Split, String> {
    let pixels = 3 * CIFAR_SIDE * CIFAR_SIDE;
    if record < pixels as usize + label_at + 1 || !bytes.len().is_multiple_of(record) {
        return Err(format!("size {} is not a whole number of {record}-byte records", bytes.len()));
    }
    if bytes.chunks_exact(record).any(|r| usize::from(r[label_at]) >= num_classes) {
        return Err(format!("a label is outside the {num_classes} classes of the class names file"));
    }
    let records = (bytes.len() / record) as i64;
    let split = || -> Result<Split, tch::TchError> {
        let table = Tensor::f_from_slice(bytes)?.f_view([records, record as i64])?; // [N, record] u8
        let labels = table.f_select(1, label_at as i64)?.f_to_kind(Kind::Int64)?; // [N]
        let planes = table.f_narrow(1, record as i64 - pixels, pixels)?;
        Ok(Split { images: planes.f_reshape([records, 3, CIFAR_SIDE, CIFAR_SIDE])?, labels })
    };
    split().map_err(|e| e.to_string())
}

/// Resizes a `u8` split to `side` x `side` with bilinear interpolation, in chunks to bound memory.
fn resize_split(split: Split, side: u32) -> Result<Split, DataError> {
    let side = side as i64;
    let size = split.images.size();
    if size.get(2..4) == Some(&[side, side][..]) {
        return Ok(split);
    }
    const CHUNK: i64 = 1024;
    let resize = |start: i64| -> Result<Tensor, tch::TchError> {
        let len = CHUNK.min(split.len() - start);
        split
            .images
            .f_narrow(0, start, len)?
            .f_to_kind(Kind::Float)?
            .f_upsample_bilinear2d([side, side], false, None, None)?
            .f_round()?
            .f_clamp(0.0, 255.0)?
            .f_to_kind(Kind::Uint8)
    };
    let resized = || -> Result<Tensor, tch::TchError> {
        let mut rows = ImageRows::new(split.len(), side)?;
        for start in (0..split.len()).step_by(CHUNK as usize) {
            rows.push(&resize(start)?)?;
        }
        rows.finish()
    };
    let images = resized().map_err(|e| DataError::Decode(format!("resizing: {e}")))?;
    Ok(Split { images, labels: split.labels })
}

/// Refuses `images` images of `input_size` x `input_size` when decoded they would take more than
/// `budget` bytes; `folder` is the dataset's.
fn check_decoded_size(folder: &Path, images: u64, input_size: u32, budget: u64) -> Result<(), DataError> {
    let side = u64::from(input_size);
    let bytes = images.saturating_mul(3 * side * side);
    if bytes <= budget {
        return Ok(());
    }
    Err(DataError::TooLarge {
        path: folder.to_path_buf(),
        why: format!(
            "{images} images of {input_size} x {input_size} pixels take {} decoded, and a dataset may take at \
             most {}: lower the input size or use fewer images",
            memory_size(bytes),
            memory_size(budget)
        ),
    })
}

/// `bytes` for a person: MiB below a GiB, GiB with one decimal from there.
fn memory_size(bytes: u64) -> String {
    if bytes < 1 << 30 {
        format!("{} MiB", bytes.div_ceil(1 << 20))
    } else {
        format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
    }
}

/// `[N, 3, side, side]` `u8` images allocated once and filled a chunk at a time, so that putting a
/// split together never holds it twice.
struct ImageRows {
    images: Tensor,
    filled: i64,
}

impl ImageRows {
    /// Room for `capacity` images of `side` x `side`.
    fn new(capacity: i64, side: i64) -> Result<Self, tch::TchError> {
        Ok(ImageRows { images: Tensor::f_empty([capacity, 3, side, side], (Kind::Uint8, Device::Cpu))?, filled: 0 })
    }

    /// Copies `chunk` (`[n, 3, side, side]`) in after the images already there.
    fn push(&mut self, chunk: &Tensor) -> Result<(), tch::TchError> {
        let count = chunk.size()[0];
        self.images.f_narrow(0, self.filled, count)?.f_copy_(chunk)?;
        self.filled += count;
        Ok(())
    }

    /// The images pushed.
    fn finish(self) -> Result<Tensor, tch::TchError> {
        self.images.f_narrow(0, 0, self.filled)
    }
}

/// Decodes labelled image files in parallel into one tensor, leaving out (and listing) the files that
/// cannot be decoded. Each chunk of [`DECODE_CHUNK`] files is decoded in parallel, then
/// `progress(done_before + decoded, total)`. A file that cannot be read at all (I/O) fails the split.
fn decode_files(
    files: &[(i64, PathBuf)],
    input_size: u32,
    done_before: u64,
    total: u64,
    progress: &mut Progress,
) -> Result<(Split, Vec<(PathBuf, ImageError)>), DataError> {
    let side = input_size as i64;
    let tensor_error = |e: tch::TchError| DataError::Decode(e.to_string());
    let mut rows = ImageRows::new(files.len() as i64, side).map_err(tensor_error)?;
    let mut labels = Vec::new();
    let mut unreadable = Vec::new();
    let mut done = done_before;
    for file_chunk in files.chunks(DECODE_CHUNK) {
        let decoded: Vec<Result<Vec<u8>, ImageError>> = file_chunk
            .par_iter()
            .map(|(_, path)| {
                let bytes = read_bounded(path, MAX_IMAGE_FILE_BYTES, "an image file")?;
                Ok::<_, DataError>(decode_to_chw(&bytes, input_size, Admission::Unmetered))
            })
            .collect::<Result<_, _>>()?;
        let mut pixels = Vec::new();
        for ((label, path), image) in file_chunk.iter().zip(decoded) {
            match image {
                Ok(chw) => {
                    pixels.extend_from_slice(&chw);
                    labels.push(*label);
                }
                Err(error) => unreadable.push((path.clone(), error)),
            }
        }
        let count = (labels.len() as i64) - rows.filled;
        let chunk = Tensor::f_from_slice(&pixels).and_then(|chunk| chunk.f_view([count, 3, side, side]));
        chunk.and_then(|chunk| rows.push(&chunk)).map_err(tensor_error)?;
        done += file_chunk.len() as u64;
        progress(done, total)?;
    }
    let images = rows.finish().map_err(tensor_error)?;
    Ok((Split { images, labels: Tensor::from_slice(&labels) }, unreadable))
}

/// The original picture of test image `index`, as its file's bytes and MIME type: the file itself for
/// folder datasets, a PNG made from the record for CIFAR (only that record is read). `validation_fraction`
/// and `seed` must be the run's, so an image-folder split is the one the run used.
pub fn test_image(
    source: &DatasetSource,
    validation_fraction: f64,
    seed: u64,
    index: usize,
) -> Result<Option<(Vec<u8>, &'static str)>, DataError> {
    let index = match test_record(source, index) {
        Ok(Some(index)) => index,
        Ok(None) => return Ok(None),
        Err(error) => return Err(error.relative_to(&source.shown_from)),
    };
    let image = match source.info.format {
        DatasetFormat::Cifar10Binary => cifar_record_image(&source.root.join(CIFAR_TEST_FILE), CIFAR_RECORD, index),
        DatasetFormat::Cifar100Binary => cifar_record_image(&source.root.join("test.bin"), CIFAR100_RECORD, index),
        DatasetFormat::Cifar10Python | DatasetFormat::Cifar100Python => {
            let layout = PickledCifar::of(source.info.format).unwrap_or(&CIFAR10_PICKLED);
            pickled_record_image(source, layout.test_file, index)
        }
        DatasetFormat::ClassFolders | DatasetFormat::ImageFolder => {
            folder_test_image(source, validation_fraction, seed, index)
        }
    };
    image.map_err(|e| e.relative_to(&source.shown_from))
}

/// Bytes of a CIFAR record's pixels: the last 3x32x32.
const CIFAR_PIXELS: usize = 3 * 32 * 32;

/// The training and test files of a folder dataset, labelled, as its version has them (an image
/// folder split by `validation_fraction` with `seed`).
fn folder_splits(
    source: &DatasetSource,
    validation_fraction: f64,
    seed: u64,
) -> Result<(LabelledFiles, LabelledFiles), DataError> {
    let root = &source.root;
    if source.info.format == DatasetFormat::ClassFolders {
        let train = labelled(class_listing(source, &root.join("train"))?);
        Ok((with_added(train, source), labelled(class_listing(source, &root.join("test"))?)))
    } else {
        // Split before the version's edits, so an edit moves no other image between train and test.
        let (train, test) = split_stratified(&list_class_folders(root)?, validation_fraction, seed, root);
        Ok((with_added(edited(train, source), source), edited(test, source)))
    }
}

/// The images the source's version adds (none for a dataset), labelled, in the order they are loaded.
fn added_files(source: &DatasetSource) -> LabelledFiles {
    source.edits.as_ref().map(|edits| edits.added_files()).unwrap_or_default()
}

/// Training files `train` (by label, then path) with the images the source's version adds, in order.
fn with_added(mut train: LabelledFiles, source: &DatasetSource) -> LabelledFiles {
    let added = added_files(source);
    if added.is_empty() {
        return train;
    }
    train.extend(added);
    // Each name once, not once per comparison.
    train.sort_by_cached_key(|(label, file)| (*label, relative_name(file, &source.root)));
    train
}

/// [`list_class_folders`] of `dir`, with the edits of the source's version applied.
fn class_listing(source: &DatasetSource, dir: &Path) -> Result<Vec<(String, Vec<PathBuf>)>, DataError> {
    let classes = list_class_folders(dir)?;
    Ok(match &source.edits {
        Some(edits) => edits.apply_to_folders(classes, &source.root),
        None => classes,
    })
}

/// A file's name relative to the dataset's root, as the health check and versions name images; an image
/// a version adds (the only file outside the root) is named `.added/<file name>`.
pub(crate) fn relative_name(file: &Path, root: &Path) -> String {
    match file.strip_prefix(root) {
        Ok(inside) => inside.to_string_lossy().into_owned(),
        Err(_) => format!("{}{}", versions::ADDED_PREFIX, file.file_name().unwrap_or_default().to_string_lossy()),
    }
}

pub(crate) fn is_cifar(format: DatasetFormat) -> bool {
    !matches!(format, DatasetFormat::ClassFolders | DatasetFormat::ImageFolder)
}

/// The files of a CIFAR dataset with their split (true for test), training files first.
fn cifar_files(source: &DatasetSource) -> Vec<(&'static str, bool)> {
    let (train, test): (&[&'static str], &'static str) = match source.info.format {
        DatasetFormat::Cifar10Binary => (&CIFAR_TRAIN_FILES, CIFAR_TEST_FILE),
        DatasetFormat::Cifar100Binary => (&["train.bin"], "test.bin"),
        format => match PickledCifar::of(format) {
            Some(layout) => (layout.train_files, layout.test_file),
            None => return Vec::new(),
        },
    };
    train.iter().map(|file| (*file, false)).chain([(test, true)]).collect()
}

/// Records in one file of a CIFAR dataset.
fn cifar_record_count(source: &DatasetSource, file: &str) -> Result<u64, DataError> {
    let path = source.root.join(file);
    match source.info.format {
        DatasetFormat::Cifar10Binary => count_records(&path, CIFAR_RECORD),
        DatasetFormat::Cifar100Binary => count_records(&path, CIFAR100_RECORD),
        format => {
            let layout = PickledCifar::of(format).unwrap_or(&CIFAR10_PICKLED);
            Ok(pickled_batch_facts(&path, source.info.classes.len(), layout)?.records as u64)
        }
    }
}

/// The original class index of every record of one file of a CIFAR dataset.
fn cifar_labels(source: &DatasetSource, file: &str) -> Result<Vec<usize>, DataError> {
    let path = source.root.join(file);
    let (record, label_at) = match source.info.format {
        DatasetFormat::Cifar10Binary => (CIFAR_RECORD, 0),
        DatasetFormat::Cifar100Binary => (CIFAR100_RECORD, 1),
        format => {
            let layout = PickledCifar::of(format).unwrap_or(&CIFAR10_PICKLED);
            let labels = read_cifar_pickle(&path, source.info.classes.len(), layout)?.split.labels;
            let labels = Vec::<i64>::try_from(&labels).map_err(|e| DataError::Decode(e.to_string()))?;
            return Ok(labels.into_iter().map(|label| label as usize).collect());
        }
    };
    let bytes = read_bounded(&path, MAX_CIFAR_RECORDS * record as u64, "a CIFAR file")?;
    Ok(bytes.chunks_exact(record).map(|r| usize::from(r[label_at])).collect())
}

/// The names (`file#index`) of a CIFAR split's records in the order they are loaded, before any edit.
fn cifar_record_names(source: &DatasetSource, test: bool) -> Result<Vec<String>, DataError> {
    let mut names = Vec::new();
    for (file, _) in cifar_files(source).into_iter().filter(|(_, in_test)| *in_test == test) {
        let records = cifar_record_count(source, file)?;
        names.extend((0..records).map(|index| format!("{file}#{index}")));
    }
    Ok(names)
}

/// A CIFAR split whose records are named `names` with a version's edits applied.
fn edit_records(split: Split, names: &[String], edits: &versions::Edits) -> Result<Split, DataError> {
    let labels = Vec::<i64>::try_from(&split.labels).map_err(|e| DataError::Decode(e.to_string()))?;
    if labels.len() != names.len() {
        return Err(DataError::Decode(format!("{} records were read where {} are listed", labels.len(), names.len())));
    }
    let (kept, labels): (Vec<i64>, Vec<i64>) = names
        .iter()
        .zip(labels)
        .enumerate()
        .filter_map(|(row, (name, label))| Some((row as i64, edits.label(name, label as usize)? as i64)))
        .unzip();
    let images = split.images.f_index_select(0, &Tensor::from_slice(&kept)); // [kept, 3, 32, 32]
    let images = images.map_err(|e| DataError::Decode(e.to_string()))?;
    Ok(Split { images, labels: Tensor::from_slice(&labels) })
}

/// A CIFAR training split with the images its version adds after its records, decoded to 32 x 32 pixels
/// as CIFAR's own images are (so resizing to the input size treats them alike).
fn with_added_records(split: Split, edits: &versions::Edits) -> Result<Split, DataError> {
    let added = edits.added_files();
    if added.is_empty() {
        return Ok(split);
    }
    let (decoded, unreadable) = decode_files(&added, CIFAR_SIDE as u32, 0, 0, &mut |_, _| Ok(()))?;
    if let Some((path, source)) = unreadable.into_iter().next() {
        return Err(DataError::Image { path, source });
    }
    concatenate(&[split, decoded]).map_err(DataError::Decode)
}

/// The record of the test file that test image `index` of a CIFAR source is (its version's left-out
/// records skipped); for a folder dataset, `index` itself.
fn test_record(source: &DatasetSource, index: usize) -> Result<Option<usize>, DataError> {
    let Some(edits) = source.edits.as_ref().filter(|_| is_cifar(source.info.format)) else { return Ok(Some(index)) };
    let names = cifar_record_names(source, true)?;
    Ok(names.iter().enumerate().filter(|(_, name)| edits.label(name, 0).is_some()).nth(index).map(|(record, _)| record))
}

/// The paths of the training and test images in the order runs load them (an image folder split by
/// `validation_fraction` with `seed`), a version's edits applied: what [`crate::data::health`] and
/// [`shared::TestImage::path`] name images by.
pub(crate) fn split_paths(
    source: &DatasetSource,
    validation_fraction: f64,
    seed: u64,
) -> Result<(Vec<String>, Vec<String>), DataError> {
    if is_cifar(source.info.format) {
        let kept = |names: Vec<String>| -> Vec<String> {
            names.into_iter().filter(|name| source.edits.as_ref().is_none_or(|e| e.label(name, 0).is_some())).collect()
        };
        let mut train = kept(cifar_record_names(source, false)?);
        train.extend(added_names(source));
        return Ok((train, kept(cifar_record_names(source, true)?)));
    }
    let (train, test) = folder_splits(source, validation_fraction, seed)?;
    let names = |files: LabelledFiles| files.iter().map(|(_, file)| relative_name(file, &source.root)).collect();
    Ok((names(train), names(test)))
}

/// The paths of the images the source's version adds, in the order they are loaded.
fn added_names(source: &DatasetSource) -> Vec<String> {
    added_files(source).iter().map(|(_, file)| relative_name(file, &source.root)).collect()
}

/// Every image of a dataset as `(path, class index, in the test split)`, a version's edits applied. An
/// image folder's images are all listed as training images: its test split is drawn per run.
pub(crate) fn labelled_paths(source: &DatasetSource) -> Result<Vec<(String, usize, bool)>, DataError> {
    let root = &source.root;
    let named = |files: LabelledFiles, test: bool| {
        files.into_iter().map(move |(label, file)| (relative_name(&file, root), label as usize, test))
    };
    match source.info.format {
        DatasetFormat::ClassFolders => {
            let (train, test) = folder_splits(source, 0.0, 0)?;
            Ok(named(train, false).chain(named(test, true)).collect())
        }
        DatasetFormat::ImageFolder => {
            Ok(named(with_added(labelled(class_listing(source, root)?), source), false).collect())
        }
        _ => {
            let mut items = Vec::new();
            for (file, test) in cifar_files(source) {
                for (index, label) in cifar_labels(source, file)?.into_iter().enumerate() {
                    let path = format!("{file}#{index}");
                    let label = source.edits.as_ref().map_or(Some(label), |edits| edits.label(&path, label));
                    items.extend(label.map(|label| (path, label, test)));
                }
            }
            let added = added_files(source).into_iter();
            items.extend(added.map(|(label, file)| (relative_name(&file, root), label as usize, false)));
            Ok(items)
        }
    }
}

/// Record `index` of a binary CIFAR file of `record`-byte records, as a PNG.
fn cifar_record_image(path: &Path, record: usize, index: usize) -> Result<Option<(Vec<u8>, &'static str)>, DataError> {
    let offset = (index as u64).saturating_mul(record as u64);
    let bytes = read_at(path, offset, record)?;
    Ok(bytes.map(|bytes| (planes_to_png(&bytes[record - CIFAR_PIXELS..]), "image/png")))
}

/// Record `index` of the pickled CIFAR batch `file`, as a PNG: read from where the pixels lie in the
/// file when they are stored as they are, else by decoding the whole batch.
fn pickled_record_image(
    source: &DatasetSource,
    file: &str,
    index: usize,
) -> Result<Option<(Vec<u8>, &'static str)>, DataError> {
    let layout = PickledCifar::of(source.info.format).unwrap_or(&CIFAR10_PICKLED);
    let path = source.root.join(file);
    let facts = pickled_batch_facts(&path, source.info.classes.len(), layout)?;
    if index >= facts.records {
        return Ok(None);
    }
    let planes = match facts.data_offset {
        Some(start) => read_at(&path, start + (index * CIFAR_PIXELS) as u64, CIFAR_PIXELS)?,
        None => {
            let test = read_cifar_pickle(&path, source.info.classes.len(), layout)?.split;
            let record = test.images.f_get(index as i64).and_then(|r| r.f_flatten(0, -1));
            record.and_then(Vec::<u8>::try_from).ok()
        }
    };
    Ok(planes.filter(|p| p.len() == CIFAR_PIXELS).map(|planes| (planes_to_png(&planes), "image/png")))
}

/// Test image `index` of a folder dataset: its file's bytes and MIME type.
fn folder_test_image(
    source: &DatasetSource,
    validation_fraction: f64,
    seed: u64,
    index: usize,
) -> Result<Option<(Vec<u8>, &'static str)>, DataError> {
    let test = folder_splits(source, validation_fraction, seed)?.1;
    let Some((_, path)) = test.into_iter().nth(index) else { return Ok(None) };
    image_file(&path).map(Some)
}

/// The test image of a folder dataset named `name` (relative to the dataset folder, as
/// [`Dataset::test_paths`] names it): its file's bytes and MIME type; `None` when the run's test split
/// (`validation_fraction`, `seed`) has no such file, or the dataset is CIFAR.
pub fn named_test_image(
    source: &DatasetSource,
    validation_fraction: f64,
    seed: u64,
    name: &str,
) -> Result<Option<(Vec<u8>, &'static str)>, DataError> {
    if is_cifar(source.info.format) {
        return Ok(None);
    }
    let test = folder_splits(source, validation_fraction, seed)?.1;
    let Some((_, path)) = test.into_iter().find(|(_, file)| relative_name(file, &source.root) == name) else {
        return Ok(None);
    };
    image_file(&path).map(Some).map_err(|e| e.relative_to(&source.shown_from))
}

/// An image file's bytes and its MIME type, from its extension.
fn image_file(path: &Path) -> Result<(Vec<u8>, &'static str), DataError> {
    let bytes = read_bounded(path, MAX_IMAGE_FILE_BYTES, "an image file")?;
    let mime = match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("bmp") => "image/bmp",
        Some("gif") => "image/gif",
        _ => "application/octet-stream",
    };
    Ok((bytes, mime))
}

/// A PNG of one CIFAR record's red, green and blue 32x32 planes.
fn planes_to_png(planes: &[u8]) -> Vec<u8> {
    let plane = (CIFAR_SIDE * CIFAR_SIDE) as usize;
    let rgb: Vec<u8> = (0..plane).flat_map(|i| [planes[i], planes[plane + i], planes[2 * plane + i]]).collect();
    rgb_png(&image::RgbImage::from_raw(32, 32, rgb).expect("32x32 RGB"))
}

/// `image` as PNG bytes.
fn rgb_png(image: &image::RgbImage) -> Vec<u8> {
    let mut png = std::io::Cursor::new(Vec::new());
    image.write_to(&mut png, image::ImageFormat::Png).expect("PNG encoding into memory cannot fail");
    png.into_inner()
}

/// Writes CIFAR-10 binary batches for tests and benchmarks: `per_file` records in each of the five
/// training files and `test_count` in the test file; `record(index)` gives each label and its 3x32x32
/// pixels (red, green, blue planes).
pub fn write_cifar_binary(
    dir: &Path,
    classes: &[&str],
    per_file: usize,
    test_count: usize,
    record: impl FnMut(usize) -> (u8, Vec<u8>),
) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    fs::write(dir.join(CIFAR_META_FILE), classes.join("\n") + "\n")?;
    let files = CIFAR_TRAIN_FILES.iter().chain([&CIFAR_TEST_FILE]);
    for (file, records) in files.zip(cifar_batches(per_file, test_count, record)) {
        let bytes: Vec<u8> = records.into_iter().flat_map(|(label, pixels)| [vec![label], pixels]).flatten().collect();
        fs::write(dir.join(file), bytes)?;
    }
    Ok(())
}

/// Writes CIFAR-10 "python version" batches byte for byte as the official archive has them (Python 2
/// `cPickle`, protocol 2: byte-string keys, `data` a NumPy `uint8` array `[N, 3072]`, `labels` a list),
/// with the same arguments as [`write_cifar_binary`].
pub fn write_cifar_python(
    dir: &Path,
    classes: &[&str],
    per_file: usize,
    test_count: usize,
    record: impl FnMut(usize) -> (u8, Vec<u8>),
) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let mut meta = PickleWriter::dict();
    meta.bytes(b"num_cases_per_batch").int(per_file as u32).bytes(b"label_names").op(b"](");
    for class in classes {
        meta.bytes(class.as_bytes());
    }
    meta.op(b"e").bytes(b"num_vis").int(3 * 32 * 32);
    fs::write(dir.join(CIFAR10_PICKLED.meta_file), meta.end_dict())?;
    let files = CIFAR10_PICKLED.train_files.iter().chain([&CIFAR10_PICKLED.test_file]);
    for (file, records) in files.zip(cifar_batches(per_file, test_count, record)) {
        let mut batch = PickleWriter::dict();
        batch.bytes(b"data").op(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R(K\x01");
        batch.int(records.len() as u32).int(3 * 32 * 32).op(b"\x86cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R");
        batch.op(b"(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89");
        let pixels: Vec<u8> = records.iter().flat_map(|(_, pixels)| pixels.iter().copied()).collect();
        batch.bytes(&pixels).op(b"tb").bytes(b"labels").op(b"](");
        for (label, _) in &records {
            batch.int(u32::from(*label));
        }
        batch.op(b"e").bytes(b"batch_label").bytes(file.as_bytes());
        fs::write(dir.join(file), batch.end_dict())?;
    }
    Ok(())
}

/// The records of CIFAR-10's six batch files (five training, one test), from `record(index)`.
fn cifar_batches(
    per_file: usize,
    test_count: usize,
    mut record: impl FnMut(usize) -> (u8, Vec<u8>),
) -> Vec<Vec<(u8, Vec<u8>)>> {
    let mut index = 0;
    let counts = [per_file; 5].into_iter().chain([test_count]);
    counts
        .map(|count| {
            (0..count)
                .map(|_| {
                    let (label, pixels) = record(index);
                    assert_eq!(pixels.len(), CIFAR_RECORD - 1, "a CIFAR record holds 3x32x32 pixels");
                    index += 1;
                    (label, pixels)
                })
                .collect()
        })
        .collect()
}

/// Writes Python 2 protocol-2 pickles opcode by opcode, as `cPickle` does.
struct PickleWriter(Vec<u8>);

impl PickleWriter {
    /// Opens a dict whose items follow.
    fn dict() -> Self {
        PickleWriter(b"\x80\x02}(".to_vec())
    }

    fn op(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.extend_from_slice(bytes);
        self
    }

    /// A Python 2 `str` (bytes).
    fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        match u8::try_from(bytes.len()) {
            Ok(short) => self.op(&[b'U', short]),
            Err(_) => self.op(b"T").op(&(bytes.len() as u32).to_le_bytes()),
        }
        .op(bytes)
    }

    fn int(&mut self, value: u32) -> &mut Self {
        match (u8::try_from(value), u16::try_from(value)) {
            (Ok(byte), _) => self.op(&[b'K', byte]),
            (_, Ok(short)) => self.op(b"M").op(&short.to_le_bytes()),
            _ => self.op(b"J").op(&value.to_le_bytes()),
        }
    }

    /// Closes the dict opened by [`PickleWriter::dict`] and the pickle.
    fn end_dict(&mut self) -> Vec<u8> {
        self.op(b"u.");
        std::mem::take(&mut self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
