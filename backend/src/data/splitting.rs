//! Splitting a folder dataset: the training and test files of each class, a seeded stratified split of
//! a one-folder dataset, and a version's edits (excluded and added images) applied to the lists.

use super::*;

/// Splits each class's files into train and test: `fraction` of each class (at least one image, and
/// never every image of a class of two or more) is held out. The images held out are those whose
/// [`split_rank`] is lowest, so an image's split follows from its own path and `seed`, not from which
/// other images the folder holds; each side lists its files by class, then by path.
pub(super) fn split_stratified(
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
pub(super) fn reported_split(classes: &[(String, Vec<PathBuf>)], root: &Path) -> (LabelledFiles, LabelledFiles) {
    split_stratified(classes, REPORTED_VALIDATION_FRACTION, shared::defaults::SEED, root)
}

/// Where an image ranks for being held out of training: the first eight bytes of the SHA-256 of the
/// seed and the image's path relative to the dataset. Excluding or relabelling other images, or adding
/// new ones, leaves it unchanged.
pub(super) fn split_rank(seed: u64, relative_path: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new().chain_update(seed.to_le_bytes()).chain_update(relative_path.as_bytes()).finalize();
    u64::from_le_bytes(digest[..8].try_into().expect("a SHA-256 digest is 32 bytes"))
}

/// `files` as the source's version has them: left-out files gone, relabelled ones under their new
/// label, listed by label, then by path.
pub(super) fn edited(files: LabelledFiles, source: &DatasetSource) -> LabelledFiles {
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
pub(super) fn labelled(classes: Vec<(String, Vec<PathBuf>)>) -> LabelledFiles {
    classes
        .into_iter()
        .enumerate()
        .flat_map(|(label, (_, files))| files.into_iter().map(move |f| (label as i64, f)))
        .collect()
}

/// The training and test files of a folder dataset, labelled, as its version has them (an image
/// folder split by `validation_fraction` with `seed`).
pub(super) fn folder_splits(
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
pub(super) fn added_files(source: &DatasetSource) -> LabelledFiles {
    source.edits.as_ref().map(|edits| edits.added_files()).unwrap_or_default()
}

/// Training files `train` (by label, then path) with the images the source's version adds, in order.
pub(super) fn with_added(mut train: LabelledFiles, source: &DatasetSource) -> LabelledFiles {
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
pub(super) fn class_listing(source: &DatasetSource, dir: &Path) -> Result<Vec<(String, Vec<PathBuf>)>, DataError> {
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

#[cfg(test)]
mod tests {
    use super::super::test_support::solid_png;
    use super::*;

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
}
