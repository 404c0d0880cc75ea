//! Datasets: finding them under the data directory, recognising their layout, and decoding them once
//! into `u8` tensors that training keeps on the device.
//!
//! Two layouts are recognised ([`DatasetFormat`]):
//! - CIFAR-10 binary batches: `cifar-10-batches-bin/` inside the dataset folder, or the folder itself.
//! - CIFAR-10 python batches: `cifar-10-batches-py/` (or the folder itself), NumPy arrays in pickles,
//!   read by the restricted reader in [`crate::pickle`] (nothing is executed).
//! - CIFAR-100 binary: `cifar-100-binary/` (or the folder itself), the fine labels.
//! - Class folders: `train/<class>/<image>` and `test/<class>/<image>`, PNG, JPEG, WebP, BMP or GIF of
//!   any size.
//! - One image folder: `<class>/<image>`, split into train and test per class by a seeded fraction.
//!
//! Decoding is the only place images are touched one at a time (in parallel, with rayon); from then on
//! a split is one `[N, 3, H, W]` `u8` tensor plus an `[N]` `i64` label tensor, and batches are index-selects.

use crate::images::{decode_to_chw, ImageError};
use crate::pickle::{self, Value};
use rayon::prelude::*;
use shared::{DatasetFormat, DatasetInfo};
use std::fs;
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;
use tch::{Device, Kind, Tensor};

/// CIFAR-10's image side.
const CIFAR_SIDE: i64 = 32;
/// Bytes of one CIFAR-10 record: a label byte, then 32x32 red, green and blue planes.
const CIFAR_RECORD: usize = 1 + 3 * 32 * 32;
/// CIFAR-10's training batch files.
const CIFAR_TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
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
}

/// A recognised dataset folder, not yet decoded.
#[derive(Debug, Clone)]
pub struct DatasetSource {
    /// What the API reports about it.
    pub info: DatasetInfo,
    /// The folder the layout's files are in.
    pub root: PathBuf,
}

/// Lists the recognised datasets under `data_dir`, sorted by name. Folders in no layout are skipped.
pub fn discover(data_dir: &Path) -> Vec<DatasetInfo> {
    let Ok(entries) = fs::read_dir(data_dir) else { return Vec::new() };
    let mut found: Vec<DatasetInfo> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            inspect(data_dir, &name).ok().map(|source| source.info)
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

/// Recognises the layout of the dataset folder `name` under `data_dir` and counts its images.
/// `name` must already be a plain folder name (see `shared::TrainConfig::validate`).
pub fn inspect(data_dir: &Path, name: &str) -> Result<DatasetSource, DataError> {
    let folder = data_dir.join(name);
    if !folder.is_dir() {
        return Err(DataError::NotFound(name.to_string()));
    }
    for root in [folder.join(CIFAR_BIN_FOLDER), folder.clone()] {
        if root.join(CIFAR_TEST_FILE).is_file() {
            return inspect_cifar(name, root);
        }
    }
    for layout in [&CIFAR10_PICKLED, &CIFAR100_PICKLED] {
        for root in [folder.join(layout.folder), folder.clone()] {
            if root.join(layout.test_file).is_file() && root.join(layout.meta_file).is_file() {
                return inspect_pickled(name, root, layout);
            }
        }
    }
    for root in [folder.join(CIFAR100_BIN_FOLDER), folder.clone()] {
        if root.join("fine_label_names.txt").is_file() && root.join("test.bin").is_file() {
            return inspect_cifar100(name, root);
        }
    }
    if folder.join("train").is_dir() {
        return inspect_class_folders(name, folder);
    }
    let classes = list_class_folders(&folder)?;
    if classes.len() >= 2 && classes.iter().all(|(_, files)| files.len() >= 2) {
        let (train, test) = split_stratified(&classes, REPORTED_VALIDATION_FRACTION, 0);
        let info = DatasetInfo {
            name: name.to_string(),
            format: DatasetFormat::ImageFolder,
            classes: classes.into_iter().map(|(class, _)| class).collect(),
            train_count: train.len(),
            test_count: test.len(),
            added: None,
        };
        return Ok(DatasetSource { info, root: folder });
    }
    Err(DataError::UnknownLayout {
        name: name.to_string(),
        why: format!(
            "expected {CIFAR_BIN_FOLDER}/ or {CIFAR_PY_FOLDER}/ with CIFAR-10 batches, {CIFAR100_BIN_FOLDER}/ or \
             {CIFAR100_PY_FOLDER}/ with CIFAR-100, train/<class>/ and test/<class>/ image \
             folders, or at least two <class>/ folders of two or more images each"
        ),
    })
}

fn read_class_names(path: &Path) -> Result<Vec<String>, DataError> {
    let text = fs::read_to_string(path).map_err(io_error(path))?;
    let classes: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    if classes.is_empty() {
        return Err(DataError::Malformed { path: path.to_path_buf(), why: "no class names".into() });
    }
    Ok(classes)
}

fn count_records(path: &Path, record: usize) -> Result<usize, DataError> {
    let len = fs::metadata(path).map_err(io_error(path))?.len() as usize;
    if !len.is_multiple_of(record) {
        return Err(DataError::Malformed {
            path: path.to_path_buf(),
            why: format!("size {len} is not a multiple of the {record}-byte record"),
        });
    }
    Ok(len / record)
}

fn inspect_cifar100(name: &str, root: PathBuf) -> Result<DatasetSource, DataError> {
    let classes = read_class_names(&root.join("fine_label_names.txt"))?;
    let train_count = count_records(&root.join("train.bin"), CIFAR100_RECORD)?;
    let test_count = count_records(&root.join("test.bin"), CIFAR100_RECORD)?;
    let info = DatasetInfo { name: name.to_string(), format: DatasetFormat::Cifar100Binary, classes, train_count, test_count, added: None };
    Ok(DatasetSource { info, root })
}

fn inspect_cifar(name: &str, root: PathBuf) -> Result<DatasetSource, DataError> {
    let classes = read_class_names(&root.join(CIFAR_META_FILE))?;
    let count = |file: &str| count_records(&root.join(file), CIFAR_RECORD);
    let mut train_count = 0;
    for file in CIFAR_TRAIN_FILES {
        train_count += count(file)?;
    }
    let test_count = count(CIFAR_TEST_FILE)?;
    Ok(DatasetSource {
        info: DatasetInfo {
            name: name.to_string(),
            format: DatasetFormat::Cifar10Binary,
            classes,
            train_count,
            test_count,
            added: None,
        },
        root,
    })
}

fn inspect_pickled(name: &str, root: PathBuf, layout: &PickledCifar) -> Result<DatasetSource, DataError> {
    let meta_path = root.join(layout.meta_file);
    let meta = read_pickle(&meta_path)?;
    let classes: Vec<String> = match meta.get(layout.names_key) {
        Some(Value::List(names)) => names.borrow().iter().filter_map(pickle::text_of).map(String::from).collect(),
        _ => Vec::new(),
    };
    if classes.is_empty() {
        return Err(DataError::Malformed { path: meta_path, why: format!("no {} list", layout.names_key) });
    }
    let mut train_count = 0;
    for file in layout.train_files {
        train_count += count_pickled_records(&root.join(file), classes.len(), layout)?;
    }
    let test_count = count_pickled_records(&root.join(layout.test_file), classes.len(), layout)?;
    let info = DatasetInfo { name: name.to_string(), format: layout.format, classes, train_count, test_count, added: None };
    Ok(DatasetSource { info, root })
}

/// Unpickles a whole file with the restricted reader (no persistent ids: those are PyTorch's).
fn read_pickle(path: &Path) -> Result<Value, DataError> {
    let bytes = fs::read(path).map_err(io_error(path))?;
    let mut no_storages = |_: &str, _: Kind, _: i64| -> Result<Tensor, String> {
        Err("persistent ids (PyTorch storages) do not belong in a dataset pickle".into())
    };
    pickle::unpickle(&bytes, &mut no_storages).map_err(|(position, why)| DataError::Malformed {
        path: path.to_path_buf(),
        why: format!("cannot read the pickle at byte {position}: {why}"),
    })
}

/// Reads one pickled CIFAR batch: `data`, a `uint8` array `[N, 3072]` (red, green, blue planes of
/// 32x32), and the layout's label list, N class indices below `num_classes`.
fn read_cifar_pickle(path: &Path, num_classes: usize, layout: &PickledCifar) -> Result<Split, DataError> {
    let malformed = |why: String| DataError::Malformed { path: path.to_path_buf(), why };
    let batch = read_pickle(path)?;
    let Some(Value::Array(array)) = batch.get("data") else {
        return Err(malformed("no \"data\" array".into()));
    };
    let array = array.borrow();
    let pixels = 3 * CIFAR_SIDE * CIFAR_SIDE;
    if array.dtype.descr != "u1" || array.shape.len() != 2 || array.shape[1] != pixels {
        return Err(malformed(format!(
            "\"data\" is a {} array of shape {:?}, expected uint8 [N, {pixels}]",
            array.dtype.descr, array.shape
        )));
    }
    let images = array.to_tensor(Kind::Uint8).map_err(&malformed)?;
    let labels: Vec<i64> = match batch.get(layout.labels_key) {
        Some(Value::List(labels)) => labels
            .borrow()
            .iter()
            .map(|label| match label {
                Value::Int(i) if (0..num_classes as i64).contains(i) => Ok(*i),
                _ => Err(malformed(format!("a label is not a class index below {num_classes}"))),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(malformed(format!("no \"{}\" list", layout.labels_key))),
    };
    let records = array.shape[0];
    if labels.len() as i64 != records {
        return Err(malformed(format!("{} labels for {records} images", labels.len())));
    }
    Ok(Split { images: images.view([records, 3, CIFAR_SIDE, CIFAR_SIDE]), labels: Tensor::from_slice(&labels) })
}

/// Records in a pickled CIFAR batch. Reading one means unpickling it, so counts are remembered per
/// file, size and modification time: listing datasets stays instant after the first time.
fn count_pickled_records(path: &Path, num_classes: usize, layout: &PickledCifar) -> Result<usize, DataError> {
    /// Records by (file, size, modification time).
    type Counts = HashMap<(PathBuf, u64, SystemTime), usize>;
    static COUNTS: Mutex<Option<Counts>> = Mutex::new(None);
    let metadata = fs::metadata(path).map_err(io_error(path))?;
    let key = (path.to_path_buf(), metadata.len(), metadata.modified().map_err(io_error(path))?);
    if let Some(&count) = COUNTS.lock().expect("count cache").get_or_insert_with(HashMap::new).get(&key) {
        return Ok(count);
    }
    let count = read_cifar_pickle(path, num_classes, layout)?.len() as usize;
    COUNTS.lock().expect("count cache").get_or_insert_with(HashMap::new).insert(key, count);
    Ok(count)
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

fn inspect_class_folders(name: &str, root: PathBuf) -> Result<DatasetSource, DataError> {
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
        return Err(layout_error(format!(
            "test/ must have the same class folders as train/ ({})",
            classes.join(", ")
        )));
    }
    Ok(DatasetSource {
        info: DatasetInfo {
            name: name.to_string(),
            format: DatasetFormat::ClassFolders,
            classes,
            train_count: train.iter().map(|(_, f)| f.len()).sum(),
            test_count: test.iter().map(|(_, f)| f.len()).sum(),
            added: None,
        },
        root,
    })
}

/// Labelled files of a split, in label order.
type LabelledFiles = Vec<(i64, PathBuf)>;

/// Splits each class's files into train and test: `fraction` of each class (at least one image) is held
/// out, chosen by a generator seeded with `seed`.
fn split_stratified(classes: &[(String, Vec<PathBuf>)], fraction: f64, seed: u64) -> (LabelledFiles, LabelledFiles) {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5b117);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (label, (_, files)) in classes.iter().enumerate() {
        let mut files = files.clone();
        files.shuffle(&mut rng);
        let held_out = ((files.len() as f64 * fraction).round() as usize).clamp(1, files.len().saturating_sub(1).max(1));
        for (i, file) in files.into_iter().enumerate() {
            if i < held_out { &mut test } else { &mut train }.push((label as i64, file));
        }
    }
    (train, test)
}

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
pub fn load(source: &DatasetSource, input_size: u32, validation_fraction: f64, seed: u64) -> Result<Dataset, DataError> {
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
    let mut total = (source.info.train_count + source.info.test_count) as u64;
    let mut progress = |done, total| if progress(done, total).is_break() { Err(DataError::Cancelled) } else { Ok(()) };
    progress(0, total)?;
    let (train, test) = match source.info.format {
        DatasetFormat::Cifar10Binary => {
            let train_paths: Vec<PathBuf> =
                CIFAR_TRAIN_FILES.iter().map(|f| source.root.join(f)).collect();
            let classes = source.info.classes.len();
            let train = load_cifar_records(&train_paths, classes, CIFAR_RECORD, 0)?;
            progress(train.len() as u64, total)?;
            let test = load_cifar_records(&[source.root.join(CIFAR_TEST_FILE)], classes, CIFAR_RECORD, 0)?;
            (resize_split(train, input_size), resize_split(test, input_size))
        }
        DatasetFormat::Cifar10Python | DatasetFormat::Cifar100Python => {
            let layout = PickledCifar::of(source.info.format).expect("a pickled layout");
            let classes = source.info.classes.len();
            let read = |file: &str| read_cifar_pickle(&source.root.join(file), classes, layout);
            let mut done = 0;
            let mut train = Vec::new();
            for file in layout.train_files {
                train.push(read(file)?);
                done += train.last().map_or(0, |split| split.len() as u64);
                progress(done, total)?;
            }
            let train = Split {
                images: Tensor::cat(&train.iter().map(|s| &s.images).collect::<Vec<_>>(), 0),
                labels: Tensor::cat(&train.iter().map(|s| &s.labels).collect::<Vec<_>>(), 0),
            };
            (resize_split(train, input_size), resize_split(read(layout.test_file)?, input_size))
        }
        DatasetFormat::Cifar100Binary => {
            let classes = source.info.classes.len();
            // The fine label is the second byte of each record.
            let train = load_cifar_records(&[source.root.join("train.bin")], classes, CIFAR100_RECORD, 1)?;
            progress(train.len() as u64, total)?;
            let test = load_cifar_records(&[source.root.join("test.bin")], classes, CIFAR100_RECORD, 1)?;
            (resize_split(train, input_size), resize_split(test, input_size))
        }
        DatasetFormat::ClassFolders | DatasetFormat::ImageFolder => {
            let (train, test) = if source.info.format == DatasetFormat::ClassFolders {
                let train = labelled(list_class_folders(&source.root.join("train"))?);
                (train, labelled(list_class_folders(&source.root.join("test"))?))
            } else {
                split_stratified(&list_class_folders(&source.root)?, validation_fraction, seed)
            };
            // The files may have changed since the dataset was listed.
            total = (train.len() + test.len()) as u64;
            let train = decode_files(&train, input_size, 0, total, &mut progress)?;
            let decoded = train.len() as u64;
            (train, decode_files(&test, input_size, decoded, total, &mut progress)?)
        }
    };
    progress(total, total)?;
    Ok(Dataset { classes: source.info.classes.clone(), train, test })
}

/// Reads CIFAR binary files of `record`-byte records (labels first, the label used at byte `label_at`,
/// pixels in the last 3072 bytes) as whole byte buffers and splits them with tensor ops.
fn load_cifar_records(paths: &[PathBuf], num_classes: usize, record: usize, label_at: i64) -> Result<Split, DataError> {
    let mut bytes = Vec::new();
    for path in paths {
        let mut file_bytes = fs::read(path).map_err(io_error(path))?;
        if file_bytes.len() % record != 0 {
            return Err(DataError::Malformed {
                path: path.clone(),
                why: "size is not a whole number of records".into(),
            });
        }
        bytes.append(&mut file_bytes);
    }
    let records = (bytes.len() / record) as i64;
    let pixels = 3 * CIFAR_SIDE * CIFAR_SIDE;
    let table = Tensor::from_slice(&bytes).view([records, record as i64]); // [N, record] u8
    let labels = table.select(1, label_at).to_kind(Kind::Int64); // [N]
    let images = table.narrow(1, record as i64 - pixels, pixels).reshape([records, 3, CIFAR_SIDE, CIFAR_SIDE]);
    if records > 0 && labels.max().int64_value(&[]) >= num_classes as i64 {
        return Err(DataError::Malformed {
            path: paths[0].clone(),
            why: format!("a label is outside the {num_classes} classes of {CIFAR_META_FILE}"),
        });
    }
    Ok(Split { images, labels })
}

/// Resizes a `u8` split to `side` x `side` with bilinear interpolation, in chunks to bound memory.
fn resize_split(split: Split, side: u32) -> Split {
    let side = side as i64;
    let size = split.images.size();
    if size[2] == side && size[3] == side {
        return split;
    }
    const CHUNK: i64 = 1024;
    let chunks: Vec<Tensor> = (0..split.len())
        .step_by(CHUNK as usize)
        .map(|start| {
            let len = CHUNK.min(split.len() - start);
            split
                .images
                .narrow(0, start, len)
                .to_kind(Kind::Float)
                .upsample_bilinear2d([side, side], false, None, None)
                .round()
                .clamp(0.0, 255.0)
                .to_kind(Kind::Uint8)
        })
        .collect();
    Split { images: Tensor::cat(&chunks, 0), labels: split.labels }
}

/// Decodes labelled image files in parallel into one tensor.
/// Each chunk of [`DECODE_CHUNK`] files is decoded in parallel, then `progress(done_before + decoded, total)`.
fn decode_files(
    files: &[(i64, PathBuf)],
    input_size: u32,
    done_before: u64,
    total: u64,
    progress: &mut dyn FnMut(u64, u64) -> Result<(), DataError>,
) -> Result<Split, DataError> {
    let pixels_per_image = 3 * (input_size as usize).pow(2);
    let mut pixels = vec![0u8; files.len() * pixels_per_image];
    let mut done = done_before;
    for (pixel_chunk, file_chunk) in
        pixels.chunks_mut((pixels_per_image * DECODE_CHUNK).max(1)).zip(files.chunks(DECODE_CHUNK))
    {
        pixel_chunk.par_chunks_mut(pixels_per_image.max(1)).zip(file_chunk.par_iter()).try_for_each(
            |(out, (_, path))| {
                let bytes = fs::read(path).map_err(io_error(path))?;
                let chw = decode_to_chw(&bytes, input_size)
                    .map_err(|source| DataError::Image { path: path.clone(), source })?;
                out.copy_from_slice(&chw);
                Ok::<(), DataError>(())
            },
        )?;
        done += file_chunk.len() as u64;
        progress(done, total)?;
    }
    let n = files.len() as i64;
    let side = input_size as i64;
    let labels: Vec<i64> = files.iter().map(|(label, _)| *label).collect();
    Ok(Split {
        images: Tensor::from_slice(&pixels).view([n, 3, side, side]),
        labels: Tensor::from_slice(&labels),
    })
}

/// The original picture of test image `index`, as its file's bytes and MIME type: the file itself for
/// folder datasets, a PNG made from the record for CIFAR. `validation_fraction` and `seed` must be the
/// run's, so an image-folder split is the one the run used.
pub fn test_image(
    source: &DatasetSource,
    validation_fraction: f64,
    seed: u64,
    index: usize,
) -> Result<Option<(Vec<u8>, &'static str)>, DataError> {
    let plane = (CIFAR_SIDE * CIFAR_SIDE) as usize;
    let path = match source.info.format {
        DatasetFormat::Cifar10Binary | DatasetFormat::Cifar100Binary => {
            let (file, size) = if source.info.format == DatasetFormat::Cifar10Binary {
                (CIFAR_TEST_FILE, CIFAR_RECORD)
            } else {
                ("test.bin", CIFAR100_RECORD)
            };
            let path = source.root.join(file);
            let bytes = fs::read(&path).map_err(io_error(&path))?;
            let Some(record) = bytes.chunks_exact(size).nth(index) else { return Ok(None) };
            return Ok(Some((planes_to_png(&record[size - 3 * plane..]), "image/png")));
        }
        DatasetFormat::Cifar10Python | DatasetFormat::Cifar100Python => {
            let layout = PickledCifar::of(source.info.format).expect("a pickled layout");
            let test = read_cifar_pickle(&source.root.join(layout.test_file), source.info.classes.len(), layout)?;
            if index as i64 >= test.len() {
                return Ok(None);
            }
            let planes = Vec::<u8>::try_from(test.images.get(index as i64).flatten(0, -1)).expect("u8 record");
            return Ok(Some((planes_to_png(&planes), "image/png")));
        }
        DatasetFormat::ClassFolders => labelled(list_class_folders(&source.root.join("test"))?).into_iter().nth(index),
        DatasetFormat::ImageFolder => {
            split_stratified(&list_class_folders(&source.root)?, validation_fraction, seed).1.into_iter().nth(index)
        }
    };
    let Some((_, path)) = path else { return Ok(None) };
    let bytes = fs::read(&path).map_err(io_error(&path))?;
    let mime = match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("webp") => "image/webp",
        Some("bmp") => "image/bmp",
        Some("gif") => "image/gif",
        _ => "application/octet-stream",
    };
    Ok(Some((bytes, mime)))
}

/// A PNG of one CIFAR record's red, green and blue 32x32 planes.
fn planes_to_png(planes: &[u8]) -> Vec<u8> {
    let plane = (CIFAR_SIDE * CIFAR_SIDE) as usize;
    let rgb: Vec<u8> = (0..plane).flat_map(|i| [planes[i], planes[plane + i], planes[2 * plane + i]]).collect();
    let image = image::RgbImage::from_raw(32, 32, rgb).expect("32x32 RGB");
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
}
