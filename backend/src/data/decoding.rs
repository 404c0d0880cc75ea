//! Decoding a dataset once, into its decoded cache: image files in parallel chunks with progress, CIFAR
//! records read whole, every image resized to the run's input size, a version's edits applied.

use super::*;

/// Images decoded between two progress reports of a folder dataset.
pub(super) const DECODE_CHUNK: usize = 512;

/// Decodes a recognised dataset into tensors in memory on the CPU, every image `input_size` square, through
/// its decoded cache ([`cache`]). An image-folder dataset is split by `validation_fraction` with `seed`.
pub fn load(
    source: &DatasetSource,
    input_size: u32,
    validation_fraction: f64,
    seed: u64,
) -> Result<Dataset, DataError> {
    let recipe = Recipe { input_size, validation_fraction, seed };
    load_reporting(source, &recipe, &mut |_, _| ControlFlow::Continue(()))?.in_memory(Device::Cpu)
}

/// The dataset decoded by `recipe`, mapped from its decoded cache, which is built first when missing
/// (calling `progress(done, total)` with the images decoded so far: after each chunk of files of a
/// folder dataset, after each split of a CIFAR one, and once at 0 before starting; and at 0 a few times
/// a second while another run builds it). A report answered with `ControlFlow::Break` stops with
/// [`DataError::Cancelled`].
pub fn load_reporting(
    source: &DatasetSource,
    recipe: &Recipe,
    progress: &mut dyn FnMut(u64, u64) -> ControlFlow<()>,
) -> Result<Dataset, DataError> {
    let mut progress = |done, total| if progress(done, total).is_break() { Err(DataError::Cancelled) } else { Ok(()) };
    cache::open_or_build(source, recipe, &mut progress).map_err(|e| e.relative_to(source.data_dir()))
}

/// Reports decoding progress; an error stops decoding.
pub(crate) type Progress<'a> = dyn FnMut(u64, u64) -> Result<(), DataError> + 'a;

/// Where decoded images go, in order: every training image, then (after [`ImageSink::end_train`]) every
/// test image, as `[3, S, S]` u8 pixels.
pub(super) trait ImageSink: Send {
    /// Takes the next images: the pixels of one or more whole `[3, S, S]` u8 images, one after another.
    fn push(&mut self, pixels: &[u8]) -> Result<(), DataError>;
    /// Marks the end of the training images.
    fn end_train(&mut self) {}
}

/// What decoding a dataset found besides the pixels, which went to the sink.
pub(super) struct Decoded {
    pub(super) train_labels: Vec<i64>,
    pub(super) test_labels: Vec<i64>,
    pub(super) meta: cache::Meta,
}

/// The files a dataset decoded by a recipe is made of, listed once: what its cache is keyed by, and what
/// decoding then reads.
pub(super) enum SourceFiles {
    /// A CIFAR dataset's record files (the labels are inside them).
    Records(LabelledFiles),
    /// A folder dataset's labelled images, split as the recipe splits them.
    Folders {
        /// Training images.
        train: LabelledFiles,
        /// Test images.
        test: LabelledFiles,
    },
}

impl SourceFiles {
    /// The files of `source` as `recipe` splits them.
    pub(super) fn list(source: &DatasetSource, recipe: &Recipe) -> Result<Self, DataError> {
        if is_cifar(source.info.format) {
            let files = cifar_files(source).into_iter().map(|(file, _)| (0, source.root.join(file))).collect();
            return Ok(SourceFiles::Records(files));
        }
        let (train, test) = folder_splits(source, recipe.validation_fraction, recipe.seed)?;
        Ok(SourceFiles::Folders { train, test })
    }

    /// The files by split: `"train"` and `"test"`, or a CIFAR dataset's under `"records"`.
    pub(super) fn by_split(&self) -> Vec<(&'static str, &LabelledFiles)> {
        match self {
            SourceFiles::Records(files) => vec![("records", files)],
            SourceFiles::Folders { train, test } => vec![("train", train), ("test", test)],
        }
    }
}

/// Decodes both splits of `source`, made of `files`, into `sink`, every image `input_size` square.
pub(super) fn decode_into(
    source: &DatasetSource,
    files: &SourceFiles,
    input_size: u32,
    sink: &mut dyn ImageSink,
    progress: &mut Progress,
) -> Result<Decoded, DataError> {
    let total = (source.info.train_count + source.info.test_count) as u64;
    progress(0, total)?;
    let mut meta = cache::Meta { classes: source.info.classes.clone(), ..Default::default() };
    let (train_labels, test_labels) = match files {
        SourceFiles::Records(_) => {
            let (train, test) = cifar_splits(source, total, progress)?;
            let labels =
                |split: &Split| Vec::<i64>::try_from(&split.labels).map_err(|e| DataError::Decode(e.to_string()));
            let (train_labels, test_labels) = (labels(&train)?, labels(&test)?);
            resize_into(train, input_size, sink)?;
            sink.end_train();
            resize_into(test, input_size, sink)?;
            progress(total, total)?;
            (train_labels, test_labels)
        }
        SourceFiles::Folders { train, test } => {
            decode_folders(source, (train, test), input_size, sink, &mut meta, progress)?
        }
    };
    Ok(Decoded { train_labels, test_labels, meta })
}

/// Decodes the image files of a folder dataset, its `(train, test)` splits, into `sink`, noting in `meta`
/// the test images' paths and the files that could not be decoded; returns the splits' labels.
fn decode_folders(
    source: &DatasetSource,
    (train, test): (&LabelledFiles, &LabelledFiles),
    size: u32,
    sink: &mut dyn ImageSink,
    meta: &mut cache::Meta,
    progress: &mut Progress,
) -> Result<(Vec<i64>, Vec<i64>), DataError> {
    // The files may have changed since the dataset was listed.
    let total = (train.len() + test.len()) as u64;
    let (train_labels, mut skipped) = decode_files(train, size, 0, total, sink, progress)?;
    sink.end_train();
    let (test_labels, skipped_test) = decode_files(test, size, train.len() as u64, total, sink, progress)?;
    meta.test_paths = decoded_names(test, &skipped_test, &source.root);
    skipped.extend(skipped_test);
    if let Some((path, error)) = skipped.first().filter(|_| train_labels.is_empty() || test_labels.is_empty()) {
        let why = if train_labels.is_empty() { "no training image" } else { "no test image" };
        return Err(DataError::Malformed {
            path: path.clone(),
            why: format!("{why} could be decoded ({error}, for one)"),
        });
    }
    let shown_from = source.data_dir();
    meta.unreadable = skipped
        .into_iter()
        .map(|(path, source)| DataError::Image { path, source }.relative_to(shown_from).to_string())
        .collect();
    progress(total, total)?;
    Ok((train_labels, test_labels))
}

/// The training and test splits of a CIFAR dataset at 32 x 32 pixels, with its version's edits applied.
fn cifar_splits(source: &DatasetSource, total: u64, progress: &mut Progress) -> Result<(Split, Split), DataError> {
    let classes = source.info.classes.len();
    let root = &source.root;
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
        _ => load_pickled(source, total, progress)?,
    };
    match &source.edits {
        Some(edits) => Ok((
            with_added_records(edit_records(train, &cifar_record_names(source, false)?, edits)?, edits)?,
            edit_records(test, &cifar_record_names(source, true)?, edits)?,
        )),
        None => Ok((train, test)),
    }
}

/// The names (relative to `root`) of `files` that decoded, in order: those not in `skipped`.
pub(super) fn decoded_names(files: &LabelledFiles, skipped: &[(PathBuf, ImageError)], root: &Path) -> Vec<String> {
    let skipped: std::collections::HashSet<&PathBuf> = skipped.iter().map(|(path, _)| path).collect();
    files.iter().filter(|(_, file)| !skipped.contains(file)).map(|(_, file)| relative_name(file, root)).collect()
}

/// The training and test splits of a pickled CIFAR dataset, reporting after each training batch.
pub(super) fn load_pickled(
    source: &DatasetSource,
    total: u64,
    progress: &mut Progress,
) -> Result<(Split, Split), DataError> {
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
pub(super) fn concatenate(splits: &[Split]) -> Result<Split, String> {
    let images: Vec<&Tensor> = splits.iter().map(|s| &s.images).collect();
    let labels: Vec<&Tensor> = splits.iter().map(|s| &s.labels).collect();
    let joined = Tensor::f_cat(&images, 0).and_then(|images| Ok(Split { images, labels: Tensor::f_cat(&labels, 0)? }));
    joined.map_err(|e| e.to_string())
}

/// Reads CIFAR binary files of `record`-byte records (labels first, the label used at byte `label_at`,
/// pixels in the last 3072 bytes), at most [`MAX_CIFAR_RECORDS`] in all.
pub(super) fn load_cifar_records(
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
pub(super) fn cifar_records(bytes: &[u8], num_classes: usize, record: usize, label_at: usize) -> Result<Split, String> {
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

/// Resizes a `u8` split to `side` x `side` with bilinear interpolation into `sink`, a chunk at a time.
pub(super) fn resize_into(split: Split, side: u32, sink: &mut dyn ImageSink) -> Result<(), DataError> {
    const CHUNK: i64 = 1024;
    let side = side as i64;
    let same_size = split.images.size().get(2..4) == Some(&[side, side][..]);
    let resize = |start: i64| -> Result<Tensor, tch::TchError> {
        let chunk = split.images.f_narrow(0, start, CHUNK.min(split.len() - start))?;
        if same_size {
            return Ok(chunk);
        }
        chunk
            .f_to_kind(Kind::Float)?
            .f_upsample_bilinear2d([side, side], false, None, None)?
            .f_round()?
            .f_clamp(0.0, 255.0)?
            .f_to_kind(Kind::Uint8)
    };
    let pixels = |chunk: Tensor| Vec::<u8>::try_from(chunk.f_contiguous()?.f_view([-1])?);
    for start in (0..split.len()).step_by(CHUNK as usize) {
        sink.push(&resize(start).and_then(pixels).map_err(|e| DataError::Decode(format!("resizing: {e}")))?)?;
    }
    Ok(())
}

/// `bytes` for a person: MiB below a GiB, GiB with one decimal from there.
pub(crate) fn memory_size(bytes: u64) -> String {
    if bytes < 1 << 30 {
        format!("{} MiB", bytes.div_ceil(1 << 20))
    } else {
        format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
    }
}

/// `[N, 3, side, side]` `u8` images allocated once and filled a chunk at a time, so that putting a
/// split together never holds it twice.
pub(super) struct ImageRows {
    images: Tensor,
    filled: i64,
}

impl ImageRows {
    /// Room for `capacity` images of `side` x `side`.
    fn new(capacity: i64, side: i64) -> Result<Self, tch::TchError> {
        Ok(ImageRows { images: Tensor::f_empty([capacity, 3, side, side], (Kind::Uint8, Device::Cpu))?, filled: 0 })
    }

    /// The images pushed.
    fn finish(self) -> Result<Tensor, tch::TchError> {
        self.images.f_narrow(0, 0, self.filled)
    }
}

impl ImageSink for ImageRows {
    /// Copies the images of `pixels` in after the images already there.
    fn push(&mut self, pixels: &[u8]) -> Result<(), DataError> {
        let side = self.images.size()[2];
        let count = pixels.len() as i64 / (3 * side * side);
        let copied = Tensor::f_from_slice(pixels)
            .and_then(|chunk| chunk.f_view([count, 3, side, side]))
            .and_then(|chunk| self.images.f_narrow(0, self.filled, count)?.f_copy_(&chunk));
        copied.map_err(|e| DataError::Decode(e.to_string()))?;
        self.filled += count;
        Ok(())
    }
}

/// Image files that could not be decoded, with why.
pub(super) type Unreadable = Vec<(PathBuf, ImageError)>;

/// Decodes labelled image files in parallel into `sink`, leaving out (and listing) the files that cannot
/// be decoded; returns the labels of those decoded. Each chunk of [`DECODE_CHUNK`] files is decoded in
/// parallel, then `progress(done_before + decoded, total)`. A file that cannot be read at all (I/O) fails.
/// A chunk goes into the sink (hashed and written, for the cache) while the next one is decoded, so that
/// the sink's work, which is serial, does not leave the decoding threads idle.
pub(super) fn decode_files(
    files: &[(i64, PathBuf)],
    input_size: u32,
    done_before: u64,
    total: u64,
    sink: &mut dyn ImageSink,
    progress: &mut Progress,
) -> Result<(Vec<i64>, Unreadable), DataError> {
    let mut stored = Stored::default();
    let mut done = done_before;
    let mut decoded: Option<DecodedChunk> = None;
    for file_chunk in files.chunks(DECODE_CHUNK) {
        let previous = decoded.take();
        let (next, pushed) = rayon::join(
            || decode_chunk(file_chunk, input_size),
            || previous.map_or(Ok(()), |chunk| stored.push(chunk, sink)),
        );
        pushed?;
        decoded = Some((file_chunk, next?));
        done += file_chunk.len() as u64;
        progress(done, total)?;
    }
    if let Some(chunk) = decoded {
        stored.push(chunk, sink)?;
    }
    Ok((stored.labels, stored.unreadable))
}

/// A chunk of labelled files with, for each, its pixels or why it could not be decoded.
type DecodedChunk<'a> = (&'a [(i64, PathBuf)], Vec<Result<Vec<u8>, ImageError>>);

/// Decodes `files` in parallel at `input_size`; a file that cannot be read at all (I/O) fails.
fn decode_chunk(files: &[(i64, PathBuf)], input_size: u32) -> Result<Vec<Result<Vec<u8>, ImageError>>, DataError> {
    files
        .par_iter()
        .map(|(_, path)| {
            let bytes = read_bounded(path, MAX_IMAGE_FILE_BYTES, "an image file")?;
            Ok(decode_to_chw(&bytes, input_size, Admission::Unmetered))
        })
        .collect()
}

/// What went into a sink so far: the labels of the images pushed, and the files left out.
#[derive(Default)]
struct Stored {
    labels: Vec<i64>,
    unreadable: Unreadable,
}

impl Stored {
    /// Pushes the decoded images of `chunk` into `sink`, in order, noting their labels and the files that
    /// could not be decoded.
    fn push(&mut self, (files, images): DecodedChunk, sink: &mut dyn ImageSink) -> Result<(), DataError> {
        for ((label, path), image) in files.iter().zip(images) {
            match image {
                Ok(chw) => {
                    sink.push(&chw)?;
                    self.labels.push(*label);
                }
                Err(error) => self.unreadable.push((path.clone(), error)),
            }
        }
        Ok(())
    }
}

/// The files of a CIFAR dataset with their split (true for test), training files first.
pub(super) fn cifar_files(source: &DatasetSource) -> Vec<(&'static str, bool)> {
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
pub(super) fn cifar_record_count(source: &DatasetSource, file: &str) -> Result<u64, DataError> {
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
pub(super) fn cifar_labels(source: &DatasetSource, file: &str) -> Result<Vec<usize>, DataError> {
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
pub(super) fn cifar_record_names(source: &DatasetSource, test: bool) -> Result<Vec<String>, DataError> {
    let mut names = Vec::new();
    for (file, _) in cifar_files(source).into_iter().filter(|(_, in_test)| *in_test == test) {
        let records = cifar_record_count(source, file)?;
        names.extend((0..records).map(|index| format!("{file}#{index}")));
    }
    Ok(names)
}

/// A CIFAR split whose records are named `names` with a version's edits applied.
pub(super) fn edit_records(split: Split, names: &[String], edits: &versions::Edits) -> Result<Split, DataError> {
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
pub(super) fn with_added_records(split: Split, edits: &versions::Edits) -> Result<Split, DataError> {
    let added = edits.added_files();
    if added.is_empty() {
        return Ok(split);
    }
    let mut rows = ImageRows::new(added.len() as i64, CIFAR_SIDE).map_err(|e| DataError::Decode(e.to_string()))?;
    let (labels, unreadable) = decode_files(&added, CIFAR_SIDE as u32, 0, 0, &mut rows, &mut |_, _| Ok(()))?;
    if let Some((path, source)) = unreadable.into_iter().next() {
        return Err(DataError::Image { path, source });
    }
    let images = rows.finish().map_err(|e| DataError::Decode(e.to_string()))?;
    concatenate(&[split, Split { images, labels: Tensor::from_slice(&labels) }]).map_err(DataError::Decode)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::solid_png;
    use super::*;

    /// Over several chunks (each pushed into the cache while the next is decoded), every image lands in
    /// file order with its label and its own pixels, an unreadable file in the middle is left out and
    /// listed, and the recorded hash is of exactly the pixels the split holds.
    #[test]
    fn images_over_several_chunks_keep_their_order_labels_and_pixels_with_an_unreadable_one_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("many");
        let per_class = DECODE_CHUNK + 100;
        let colour = |class: usize, i: usize| [(i % 256) as u8, (i / 256) as u8, 255 * class as u8];
        for (class, name) in ["a", "b"].iter().enumerate() {
            for i in 0..per_class {
                solid_png(&root.join("train").join(name).join(format!("{i:04}.png")), colour(class, i), 4);
            }
            solid_png(&root.join("test").join(name).join("0.png"), colour(class, 0), 4);
        }
        let broken = DECODE_CHUNK / 2;
        fs::write(root.join(format!("train/a/{broken:04}.png")), b"not an image").unwrap();
        let data = load(&inspect(dir.path(), "many").unwrap(), 4, 0.2, 0).unwrap();

        let expected: Vec<(usize, usize)> = (0..2)
            .flat_map(|class| (0..per_class).map(move |i| (class, i)))
            .filter(|&(class, i)| (class, i) != (0, broken))
            .collect();
        assert_eq!(data.train.images.size(), [expected.len() as i64, 3, 4, 4]);
        let labels = Vec::<i64>::try_from(&data.train.labels).unwrap();
        let pixels = Vec::<u8>::try_from(data.train.images.view([-1])).unwrap();
        for (position, &(class, i)) in expected.iter().enumerate() {
            assert_eq!(labels[position], class as i64, "label of image {position}");
            let image = &pixels[position * 48..(position + 1) * 48];
            let planes: Vec<u8> = image.chunks(16).map(|plane| plane[0]).collect();
            assert_eq!(planes, colour(class, i), "pixels of image {position} (class {class}, file {i})");
            assert!(image.chunks(16).all(|plane| plane.iter().all(|&v| v == plane[0])), "image {position} is solid");
        }
        assert_eq!(data.unreadable.len(), 1, "{:?}", data.unreadable);
        assert!(data.unreadable[0].contains(&format!("{broken:04}.png")), "{:?}", data.unreadable);
        let recorded = data.pixels_sha256.clone().expect("the cache records its hashes");
        assert_eq!(
            recorded[0],
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&pixels)),
            "the hash is of the split's pixels"
        );
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
}
