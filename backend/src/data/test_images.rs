//! One test image's original picture, as its file's bytes or a PNG made from its CIFAR record, for the
//! page's galleries: only that image is read.

use super::*;

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

/// The record of the test file that test image `index` of a CIFAR source is (its version's left-out
/// records skipped); for a folder dataset, `index` itself.
pub(super) fn test_record(source: &DatasetSource, index: usize) -> Result<Option<usize>, DataError> {
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
pub(super) fn added_names(source: &DatasetSource) -> Vec<String> {
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
pub(super) fn cifar_record_image(
    path: &Path,
    record: usize,
    index: usize,
) -> Result<Option<(Vec<u8>, &'static str)>, DataError> {
    let offset = (index as u64).saturating_mul(record as u64);
    let bytes = read_at(path, offset, record)?;
    Ok(bytes.map(|bytes| (planes_to_png(&bytes[record - CIFAR_PIXELS..]), "image/png")))
}

/// Record `index` of the pickled CIFAR batch `file`, as a PNG: read from where the pixels lie in the
/// file when they are stored as they are, else by decoding the whole batch.
pub(super) fn pickled_record_image(
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
pub(super) fn folder_test_image(
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
pub(super) fn image_file(path: &Path) -> Result<(Vec<u8>, &'static str), DataError> {
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
pub(super) fn planes_to_png(planes: &[u8]) -> Vec<u8> {
    let plane = (CIFAR_SIDE * CIFAR_SIDE) as usize;
    let rgb: Vec<u8> = (0..plane).flat_map(|i| [planes[i], planes[plane + i], planes[2 * plane + i]]).collect();
    rgb_png(&image::RgbImage::from_raw(32, 32, rgb).expect("32x32 RGB"))
}

/// `image` as PNG bytes.
pub(super) fn rgb_png(image: &image::RgbImage) -> Vec<u8> {
    let mut png = std::io::Cursor::new(Vec::new());
    image.write_to(&mut png, image::ImageFormat::Png).expect("PNG encoding into memory cannot fail");
    png.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

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
