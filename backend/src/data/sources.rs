//! Finding datasets: listing the data folder, recognising each dataset's layout, and reading what it
//! holds (class names, record counts) without decoding it, within bounds on every file read.

use super::*;

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
pub(super) fn listable(name: &str) -> bool {
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
pub(super) fn listing_entry(data_dir: &Path, name: &str) -> Option<DatasetInfo> {
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

pub(super) fn unknown_layout(name: &str) -> DataError {
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
pub(super) fn recognise(folder: &Path) -> Result<Option<(DatasetFormat, PathBuf)>, DataError> {
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
pub(super) fn read_info(name: &str, format: DatasetFormat, root: &Path) -> Result<DatasetInfo, DataError> {
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
pub(super) fn read_bounded(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, DataError> {
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
pub(super) fn read_at(path: &Path, offset: u64, len: usize) -> Result<Option<Vec<u8>>, DataError> {
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

pub(super) fn read_class_names(path: &Path) -> Result<Vec<String>, DataError> {
    let bytes = read_bounded(path, MAX_NAMES_FILE_BYTES, "a class names file")?;
    let text = String::from_utf8_lossy(&bytes);
    let classes: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
    if classes.is_empty() {
        return Err(DataError::Malformed { path: path.to_path_buf(), why: "no class names".into() });
    }
    Ok(classes)
}

/// Records in a binary CIFAR file, by its size.
pub(super) fn count_records(path: &Path, record: usize) -> Result<u64, DataError> {
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
pub(super) fn check_split_size(path: &Path, records: u64) -> Result<usize, DataError> {
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

pub(super) fn inspect_cifar100(name: &str, root: &Path) -> Result<DatasetInfo, DataError> {
    let classes = read_class_names(&root.join("fine_label_names.txt"))?;
    let count = |file: &str| {
        let path = root.join(file);
        check_split_size(&path, count_records(&path, CIFAR100_RECORD)?)
    };
    let (train_count, test_count) = (count("train.bin")?, count("test.bin")?);
    Ok(DatasetInfo::new(name, DatasetFormat::Cifar100Binary, classes, train_count, test_count))
}

pub(super) fn inspect_cifar(name: &str, root: &Path) -> Result<DatasetInfo, DataError> {
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

pub(super) fn inspect_pickled(name: &str, root: &Path, layout: &PickledCifar) -> Result<DatasetInfo, DataError> {
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
pub(super) fn class_names(meta: &Value, layout: &PickledCifar) -> Result<Vec<String>, String> {
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
pub(super) fn read_pickle(path: &Path) -> Result<Value, DataError> {
    let bytes = read_bounded(path, MAX_PICKLE_FILE_BYTES, "a pickled CIFAR file")?;
    parse_pickle(&bytes).map_err(|why| DataError::Malformed { path: path.to_path_buf(), why })
}

pub(super) fn parse_pickle(bytes: &[u8]) -> Result<Value, String> {
    let mut no_storages = |_: &str, _: Kind, _: i64| -> Result<Tensor, String> {
        Err("persistent ids (PyTorch storages) do not belong in a dataset pickle".into())
    };
    pickle::unpickle(bytes, &mut no_storages)
        .map_err(|(position, why)| format!("cannot read the pickle at byte {position}: {why}"))
}

/// A pickled CIFAR batch, decoded.
pub(super) struct PickledBatch {
    pub(super) split: Split,
    /// Where the pixel bytes start in the file, when they are stored there as they are (C order).
    pub(super) data_offset: Option<u64>,
}

/// Reads one pickled CIFAR batch: `data`, a `uint8` array `[N, 3072]` (red, green, blue planes of
/// 32x32), and the layout's label list, N class indices below `num_classes`.
pub(super) fn read_cifar_pickle(
    path: &Path,
    num_classes: usize,
    layout: &PickledCifar,
) -> Result<PickledBatch, DataError> {
    let bytes = read_bounded(path, MAX_PICKLE_FILE_BYTES, "a pickled CIFAR batch")?;
    parse_cifar_pickle(&bytes, num_classes, layout)
        .map_err(|why| DataError::Malformed { path: path.to_path_buf(), why })
}

/// [`read_cifar_pickle`] of the file's bytes.
pub(super) fn parse_cifar_pickle(
    bytes: &[u8],
    num_classes: usize,
    layout: &PickledCifar,
) -> Result<PickledBatch, String> {
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
pub(super) fn label_list(batch: &Value, key: &str, num_classes: usize) -> Result<Vec<i64>, String> {
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
pub(super) struct BatchFacts {
    pub(super) records: usize,
    pub(super) data_offset: Option<u64>,
}

/// [`BatchFacts`] of a pickled CIFAR batch. Reading one means unpickling it, so they are remembered per
/// file, size and modification time: listing datasets and fetching test images stay instant after the
/// first time.
pub(super) fn pickled_batch_facts(
    path: &Path,
    num_classes: usize,
    layout: &PickledCifar,
) -> Result<BatchFacts, DataError> {
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
pub(super) fn list_class_folders(split_dir: &Path) -> Result<Vec<(String, Vec<PathBuf>)>, DataError> {
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

pub(super) fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

pub(super) fn inspect_class_folders(name: &str, root: &Path) -> Result<DatasetInfo, DataError> {
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
pub(super) type LabelledFiles = Vec<(i64, PathBuf)>;

#[cfg(test)]
mod tests {
    use super::super::test_support::solid_png;
    use super::super::writers::PickleWriter;
    use super::*;

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
}
