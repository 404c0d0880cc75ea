//! Dataset versions: a dataset with some images left out and some given another class, made without
//! touching a byte of its files. A version is a manifest, `.versions/<dataset>/v<n>.json` in the data
//! folder, naming its parent (the dataset or an earlier version of it) and its own edits by the paths
//! the health check uses (`train/cat/1.png`; `data_batch_1.bin#17` for a CIFAR record). It is called
//! `<dataset>@v<n>`, numbered per dataset, and versions of versions fold their chain of manifests.
//!
//! A version can also add images (a classified upload the model got wrong, with its right class):
//! [`add_image`] keeps each one, named by the SHA-256 of its bytes, in `.versions/<dataset>/added/`, and a
//! manifest's `add` names it `.added/<sha256>.<ext>` with its class. Added images are always training
//! images, loaded after the dataset's own (a CIFAR dataset's decoded to 32 x 32 like its records); a
//! later version can leave one out or relabel it like any other image.
//!
//! Loading a version ([`super::inspect`] resolves the name) reads the original files and applies the
//! folded [`Edits`]: folder datasets before decoding (left-out files are never read), CIFAR records on
//! the decoded tensors. Training, test images and the health check all go through that one source.

use super::{DataError, DatasetSource};
use crate::memory::MemoryBudget;
use serde::{Deserialize, Serialize};
use shared::{DatasetEdits, DatasetFormat, DatasetInfo};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Folder in the data directory that holds each dataset's version manifests (hidden: never a dataset).
pub const VERSIONS_FOLDER: &str = ".versions";
/// Folder in a dataset's versions folder that holds the images its versions add.
const ADDED_FOLDER: &str = "added";
/// How the path of an added image begins, followed by its file's name.
pub use shared::ADDED_IMAGE_PREFIX as ADDED_PREFIX;
/// Largest manifest file read.
const MAX_MANIFEST_BYTES: u64 = 16 << 20;
/// Most images kept for adding to the versions of one dataset.
pub const MAX_ADDED_IMAGES: usize = 10_000;
/// Most bytes of images kept for adding to the versions of one dataset.
pub const MAX_ADDED_BYTES: u64 = 1 << 30;

/// A version's manifest file: what it changes of its parent.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    /// The dataset or version it was made from.
    parent: String,
    /// Its own edits of the parent.
    edits: DatasetEdits,
    /// Seconds since the Unix epoch.
    created_at: u64,
}

/// What a version changes of its original dataset: every manifest of its chain folded, later ones
/// winning.
#[derive(Debug, Default)]
pub struct Edits {
    /// Paths left out.
    excluded: HashSet<String>,
    /// Class index by path.
    relabelled: HashMap<String, usize>,
    /// Added images: their file and the class they were added with, by path.
    added: BTreeMap<String, (PathBuf, usize)>,
}

impl Edits {
    /// The class index of image `path` (labelled `label` in the original) in the version; `None` when the
    /// version leaves it out.
    pub(crate) fn label(&self, path: &str, label: usize) -> Option<usize> {
        if self.excluded.contains(path) {
            return None;
        }
        Some(self.relabelled.get(path).copied().unwrap_or(label))
    }

    /// Every edit in a fixed order, one per line: what a decoded cache of the version is keyed by.
    pub(crate) fn digest(&self) -> String {
        let mut lines: Vec<String> = self.excluded.iter().map(|path| format!("exclude {path}")).collect();
        lines.extend(self.relabelled.iter().map(|(path, label)| format!("relabel {path} {label}")));
        lines.extend(self.added.iter().map(|(path, (file, label))| format!("add {path} {} {label}", file.display())));
        lines.sort();
        lines.join("\n")
    }

    /// The images the version adds and has not left out since, as `(class index, file)`.
    pub(crate) fn added_files(&self) -> Vec<(i64, PathBuf)> {
        let kept = |(path, (file, label)): (&String, &(PathBuf, usize))| {
            Some((self.label(path, *label)? as i64, file.clone()))
        };
        self.added.iter().filter_map(kept).collect()
    }

    /// The file of added image `path`, when the version adds it.
    pub(crate) fn added_file(&self, path: &str) -> Option<&Path> {
        self.added.get(path).map(|(file, _)| file.as_path())
    }

    /// A split's class folders (files by class, in class order) as the version has them: left-out files
    /// gone, relabelled ones moved to their class, each class's files sorted.
    pub(crate) fn apply_to_folders(
        &self,
        classes: Vec<(String, Vec<PathBuf>)>,
        root: &Path,
    ) -> Vec<(String, Vec<PathBuf>)> {
        let mut edited: Vec<(String, Vec<PathBuf>)> =
            classes.iter().map(|(class, _)| (class.clone(), Vec::new())).collect();
        for (label, (_, files)) in classes.into_iter().enumerate() {
            for file in files {
                let kept = self.label(&super::relative_name(&file, root), label);
                if let Some((_, files)) = kept.and_then(|label| edited.get_mut(label)) {
                    files.push(file);
                }
            }
        }
        for (_, files) in &mut edited {
            files.sort();
        }
        edited
    }
}

/// What can go wrong making a version.
#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    /// The dataset (or version) to edit does not exist.
    #[error("dataset \"{0}\" does not exist in the data folder")]
    NotFound(String),
    /// The edits cannot be applied; the sentence says which and why.
    #[error("{0}")]
    Invalid(String),
    /// A version with exactly these edits of this parent exists; the sentence names it.
    #[error("{0}")]
    Unchanged(String),
    /// The dataset already keeps as many added images as it may ([`MAX_ADDED_IMAGES`],
    /// [`MAX_ADDED_BYTES`]); the sentence says which limit.
    #[error("{0}")]
    Full(String),
    /// The dataset could not be read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The memory budget has no room to decode the image now.
    #[error(transparent)]
    Busy(#[from] crate::memory::OverBudget),
    /// The disk is full: nothing was written.
    #[error("the disk is full: nothing was saved; free some space and try again")]
    DiskFull,
    /// A manifest or an added image could not be written.
    #[error("could not write in the data folder's versions folder: {0}")]
    Io(std::io::Error),
}

impl From<std::io::Error> for VersionError {
    fn from(error: std::io::Error) -> Self {
        match crate::files::WriteFailure::of(&error) {
            crate::files::WriteFailure::DiskFull => VersionError::DiskFull,
            _ => VersionError::Io(error),
        }
    }
}

pub use shared::names::parse_version as parse_name;

/// The folder that holds the images added to versions of `dataset`.
fn added_folder(data_dir: &Path, dataset: &str) -> PathBuf {
    data_dir.join(VERSIONS_FOLDER).join(dataset).join(ADDED_FOLDER)
}

/// The file name in [`added_folder`] of added image `path` (`.added/<64 hex digits>.<image extension>`);
/// `None` for any other path.
fn added_file_name(path: &str) -> Option<&str> {
    let name = path.strip_prefix(ADDED_PREFIX)?;
    let (digest, extension) = name.split_once('.')?;
    let hex = digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (hex && super::IMAGE_EXTENSIONS.contains(&extension)).then_some(name)
}

fn manifest_path(data_dir: &Path, dataset: &str, number: u32) -> PathBuf {
    data_dir.join(VERSIONS_FOLDER).join(dataset).join(format!("v{number}.json"))
}

fn read_manifest(data_dir: &Path, dataset: &str, number: u32) -> Result<Manifest, DataError> {
    let path = manifest_path(data_dir, dataset, number);
    if !path.is_file() {
        return Err(DataError::NotFound(format!("{dataset}@v{number}")));
    }
    let bytes = super::read_bounded(&path, MAX_MANIFEST_BYTES, "a version manifest")?;
    serde_json::from_slice(&bytes).map_err(|e| DataError::Malformed { path, why: e.to_string() })
}

/// The manifests of version `number` of `dataset` and of its ancestors, oldest first.
fn chain(data_dir: &Path, dataset: &str, number: u32) -> Result<Vec<Manifest>, DataError> {
    let mut chain = Vec::new();
    let mut at = number;
    loop {
        let manifest = read_manifest(data_dir, dataset, at)?;
        let parent = manifest.parent.clone();
        chain.push(manifest);
        if parent == dataset {
            break;
        }
        // Each parent is an earlier version, so the chain ends.
        match parse_name(&parent) {
            Some((of, earlier)) if of == dataset && earlier < at => at = earlier,
            _ => {
                let why = format!("its parent \"{parent}\" is not {dataset} or an earlier version of it");
                return Err(DataError::Malformed { path: manifest_path(data_dir, dataset, at), why });
            }
        }
    }
    chain.reverse();
    Ok(chain)
}

/// The chain's edits folded, classes named by `classes`.
fn fold(chain: &[Manifest], classes: &[String], data_dir: &Path, dataset: &str) -> Result<Edits, DataError> {
    let malformed = |why: String| DataError::Malformed { path: data_dir.join(VERSIONS_FOLDER).join(dataset), why };
    let label_of = |class: &String| {
        classes
            .iter()
            .position(|c| c == class)
            .ok_or_else(|| malformed(format!("class \"{class}\" is not a class of {dataset}")))
    };
    let mut edits = Edits::default();
    for manifest in chain {
        for (path, class) in &manifest.edits.add {
            let name =
                added_file_name(path).ok_or_else(|| malformed(format!("\"{path}\" is not an added image's path")))?;
            edits.excluded.remove(path);
            edits.relabelled.remove(path);
            edits.added.insert(path.clone(), (added_folder(data_dir, dataset).join(name), label_of(class)?));
        }
        for path in &manifest.edits.exclude {
            edits.relabelled.remove(path);
            edits.excluded.insert(path.clone());
        }
        for (path, class) in &manifest.edits.relabel {
            edits.relabelled.insert(path.clone(), label_of(class)?);
        }
    }
    Ok(edits)
}

/// Inspects version `number` of `dataset`, to be called `name`: the original dataset with the folded
/// edits of its chain, its counts as the version has them.
pub(crate) fn inspect_version(
    data_dir: &Path,
    name: &str,
    dataset: &str,
    number: u32,
) -> Result<DatasetSource, DataError> {
    let chain = chain(data_dir, dataset, number).map_err(|e| e.relative_to(data_dir))?;
    let mut source = super::inspect_folder(&data_dir.join(dataset), dataset, data_dir)?;
    let edits = fold(&chain, &source.info.classes, data_dir, dataset).map_err(|e| e.relative_to(data_dir))?;
    source.edits = Some(Arc::new(edits));
    let (train, test) = super::split_paths(&source, super::REPORTED_VALIDATION_FRACTION, 0)?;
    let own = chain.last().map(|manifest| &manifest.edits);
    source.info = DatasetInfo {
        name: name.to_string(),
        train_count: train.len(),
        test_count: test.len(),
        parent: chain.last().map(|manifest| manifest.parent.clone()),
        excluded: own.map_or(0, |edits| edits.exclude.len()),
        relabelled: own.map_or(0, |edits| edits.relabel.len()),
        added_images: own.map_or(0, |edits| edits.add.len()),
        ..source.info
    };
    Ok(source)
}

/// The listing's lines for the versions of `dataset` (in `format`), by number; one that cannot be read
/// is listed with its error.
pub(crate) fn listing(data_dir: &Path, dataset: &str, format: DatasetFormat) -> Vec<DatasetInfo> {
    numbers(data_dir, dataset)
        .into_iter()
        .map(|number| {
            let name = format!("{dataset}@v{number}");
            inspect_version(data_dir, &name, dataset, number).map(|source| source.info).unwrap_or_else(|error| {
                let mut info = DatasetInfo::new(&name, format, Vec::new(), 0, 0);
                info.error = Some(error.to_string());
                info
            })
        })
        .collect()
}

/// The numbers of `dataset`'s versions, ascending.
fn numbers(data_dir: &Path, dataset: &str) -> Vec<u32> {
    let Ok(entries) = fs::read_dir(data_dir.join(VERSIONS_FOLDER).join(dataset)) else { return Vec::new() };
    let mut numbers: Vec<u32> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter_map(|file| file.strip_prefix('v')?.strip_suffix(".json")?.parse().ok())
        .filter(|&number| number > 0)
        .collect();
    numbers.sort_unstable();
    numbers
}

/// One image of a dataset as a version sees it.
struct Item {
    /// Class index.
    label: usize,
    /// In the test split (always false for an image-folder dataset, whose test split is drawn per run).
    test: bool,
}

/// Makes a version of dataset (or version) `name` with `edits`, after checking them against it: every
/// path must be one of its images, every class one of its classes and not the image's own, no image
/// both left out and relabelled, and every class must keep a training image. Returns the new version.
pub fn create(data_dir: &Path, name: &str, edits: &DatasetEdits, now: u64) -> Result<DatasetInfo, VersionError> {
    let parent = match super::inspect(data_dir, name) {
        Err(DataError::NotFound(_)) => return Err(VersionError::NotFound(name.to_string())),
        found => found?,
    };
    let items = items(&parent).map_err(|e| e.relative_to(data_dir))?;
    let dataset = parse_name(name).map_or(name, |(dataset, _)| dataset);
    check(&parent, &items, edits).map_err(VersionError::Invalid)?;
    check_added(data_dir, dataset, &parent, &items, &edits.add).map_err(VersionError::Invalid)?;
    let mut exclude = edits.exclude.clone();
    exclude.sort();
    exclude.dedup();
    let edits = DatasetEdits { exclude, relabel: edits.relabel.clone(), add: edits.add.clone() };
    if let Some(same) = version_with(data_dir, dataset, name, &edits) {
        return Err(VersionError::Unchanged(format!(
            "{dataset}@v{same} already is {name} with exactly these edits: train on it, or change the edits"
        )));
    }
    let manifest = Manifest { parent: name.to_string(), edits, created_at: now };
    let number = write_manifest(data_dir, dataset, &manifest)?;
    let made = inspect_version(data_dir, &format!("{dataset}@v{number}"), dataset, number)?;
    Ok(made.info)
}

/// The number of `dataset`'s version made from `parent` with exactly `edits` (exclusions sorted and
/// without repeats), if there is one: saving the same edits twice makes no second, identical version.
fn version_with(data_dir: &Path, dataset: &str, parent: &str, edits: &DatasetEdits) -> Option<u32> {
    numbers(data_dir, dataset).into_iter().find(|&number| {
        read_manifest(data_dir, dataset, number).is_ok_and(|made| made.parent == parent && made.edits == *edits)
    })
}

/// Refuses edits that do not fit `parent`, with a sentence.
fn check(parent: &DatasetSource, items: &HashMap<String, Item>, edits: &DatasetEdits) -> Result<(), String> {
    let name = &parent.info.name;
    if edits.is_empty() {
        return Err("the edits are empty: name at least one image to exclude, relabel or add".into());
    }
    let known = |path: &String| items.get(path).ok_or_else(|| format!("\"{path}\" is not an image of dataset {name}"));
    for path in &edits.exclude {
        known(path)?;
        if edits.relabel.contains_key(path) {
            return Err(format!("\"{path}\" is both excluded and relabelled: choose one"));
        }
    }
    let classes = &parent.info.classes;
    let mut train_counts = vec![0usize; classes.len()];
    for item in items.values().filter(|item| !item.test) {
        train_counts[item.label] += 1;
    }
    for (path, class) in &edits.relabel {
        let item = known(path)?;
        let Some(label) = classes.iter().position(|c| c == class) else {
            return Err(format!("\"{class}\" is not a class of dataset {name} ({})", classes.join(", ")));
        };
        if label == item.label {
            return Err(format!("\"{path}\" is already labelled {class}"));
        }
        if !item.test {
            train_counts[item.label] -= 1;
            train_counts[label] += 1;
        }
    }
    for path in edits.exclude.iter().collect::<HashSet<_>>() {
        let item = known(path)?;
        if !item.test {
            train_counts[item.label] -= 1;
        }
    }
    // An image folder holds one image of each class out for testing.
    let least = if parent.info.format == DatasetFormat::ImageFolder { 2 } else { 1 };
    match train_counts.iter().position(|&count| count < least) {
        Some(label) => Err(format!(
            "these edits leave class {} with {} training images; it needs at least {least}",
            classes[label], train_counts[label]
        )),
        None => Ok(()),
    }
}

/// Refuses added images that do not fit `parent` (of `dataset`), with a sentence: each must be kept in
/// the dataset's added images ([`add_image`]), not already one of its images, and added with one of its
/// classes.
fn check_added(
    data_dir: &Path,
    dataset: &str,
    parent: &DatasetSource,
    items: &HashMap<String, Item>,
    add: &BTreeMap<String, String>,
) -> Result<(), String> {
    let name = &parent.info.name;
    for (path, class) in add {
        let kept = added_file_name(path).is_some_and(|file| added_folder(data_dir, dataset).join(file).is_file());
        if !kept {
            return Err(format!("\"{path}\" is not an image sent to POST /api/datasets/{dataset}/images"));
        }
        if items.contains_key(path) {
            return Err(format!("\"{path}\" is already an image of dataset {name}"));
        }
        if !parent.info.classes.contains(class) {
            return Err(format!("\"{class}\" is not a class of dataset {name} ({})", parent.info.classes.join(", ")));
        }
    }
    Ok(())
}

/// Keeps image `bytes` (PNG, JPEG, WebP, BMP or GIF that decodes within the size limits) for adding to
/// dataset `name` (or a version of it) and returns its path for [`DatasetEdits::add`]. The file
/// is named by the SHA-256 of its bytes, so sending the same image twice keeps it once. The dataset's
/// own folder is not touched.
pub fn add_image(data_dir: &Path, name: &str, bytes: &[u8], budget: &MemoryBudget) -> Result<String, VersionError> {
    use super::images::{decode_rgb, Admission, ImageError};
    // Only a dataset the studio can read takes images.
    match super::inspect(data_dir, name) {
        Err(DataError::NotFound(_)) => return Err(VersionError::NotFound(name.to_string())),
        found => found?,
    };
    decode_rgb(bytes, Admission::Now(budget)).map_err(|error| match error {
        ImageError::Busy(busy) => VersionError::Busy(busy),
        other => VersionError::Invalid(other.to_string()),
    })?;
    let extension = image::guess_format(bytes)
        .ok()
        .and_then(|format| format.extensions_str().first().copied())
        .filter(|extension| super::IMAGE_EXTENSIONS.contains(extension))
        .ok_or_else(|| VersionError::Invalid(ImageError::UnknownFormat.to_string()))?;
    use sha2::{Digest, Sha256};
    let file_name = format!("{}.{extension}", hex::encode(Sha256::digest(bytes)));
    let dataset = parse_name(name).map_or(name, |(dataset, _)| dataset);
    let folder = added_folder(data_dir, dataset);
    fs::create_dir_all(&folder)?;
    let file = folder.join(&file_name);
    if !file.is_file() {
        check_room(&folder, dataset, bytes.len() as u64)?;
        crate::files::write_atomically(&file, bytes)?;
    }
    Ok(format!("{ADDED_PREFIX}{file_name}"))
}

/// Refuses an image of `size` bytes that would take `dataset`'s added images (kept in `folder`) past
/// [`MAX_ADDED_IMAGES`] or [`MAX_ADDED_BYTES`]. Two uploads at once may both fit and pass the limit by one
/// image each.
fn check_room(folder: &Path, dataset: &str, size: u64) -> Result<(), VersionError> {
    let (mut count, mut bytes) = (0_usize, 0_u64);
    for entry in fs::read_dir(folder)? {
        let metadata = entry?.metadata()?;
        if metadata.is_file() {
            count += 1;
            bytes = bytes.saturating_add(metadata.len());
        }
    }
    let instead = "upload them as a dataset of their own instead (a zip of class folders)";
    if count >= MAX_ADDED_IMAGES {
        return Err(VersionError::Full(format!(
            "dataset \"{dataset}\" already keeps {count} added images, the most it may ({MAX_ADDED_IMAGES}); {instead}"
        )));
    }
    if bytes.saturating_add(size) > MAX_ADDED_BYTES {
        return Err(VersionError::Full(format!(
            "the images added to dataset \"{dataset}\" would pass {} MiB with this one ({} MiB now); {instead}",
            MAX_ADDED_BYTES >> 20,
            bytes >> 20
        )));
    }
    Ok(())
}

/// Removes what an interrupted save left in the versions folder: staged manifests (`.staged-*`) and
/// partly written added images (`*.partial`). Returns how many files went.
pub fn remove_leftovers(data_dir: &Path) -> usize {
    let datasets = fs::read_dir(data_dir.join(VERSIONS_FOLDER)).into_iter().flatten().filter_map(Result::ok);
    let folders = datasets.flat_map(|dataset| [dataset.path(), dataset.path().join(ADDED_FOLDER)]);
    let files = folders.flat_map(|folder| fs::read_dir(folder).into_iter().flatten().filter_map(Result::ok));
    let leftover = |name: &str| name.starts_with(".staged-") || name.ends_with(".partial");
    files
        .filter(|file| file.file_type().is_ok_and(|kind| kind.is_file()))
        .filter(|file| leftover(&file.file_name().to_string_lossy()))
        .filter(|file| fs::remove_file(file.path()).is_ok())
        .count()
}

/// Every image of `source` (a version's edits applied) with its class and split, by path.
fn items(source: &DatasetSource) -> Result<HashMap<String, Item>, DataError> {
    let labelled = super::labelled_paths(source)?;
    let items = labelled.into_iter().map(|(path, label, test)| (path, Item { label, test }));
    Ok(items.collect())
}

/// Writes `manifest` as the next version of `dataset`, never over an existing one (two saves at once
/// get two numbers), and returns its number.
fn write_manifest(data_dir: &Path, dataset: &str, manifest: &Manifest) -> Result<u32, VersionError> {
    let folder = data_dir.join(VERSIONS_FOLDER).join(dataset);
    fs::create_dir_all(&folder)?;
    let bytes = serde_json::to_vec_pretty(manifest).map_err(std::io::Error::other)?;
    static STAGED: AtomicU64 = AtomicU64::new(0);
    let staged = folder.join(format!(".staged-{}-{}", std::process::id(), STAGED.fetch_add(1, Ordering::Relaxed)));
    let written = fs::File::create(&staged).and_then(|mut file| {
        crate::fault::point("version-manifest")?;
        std::io::Write::write_all(&mut file, &bytes)
    });
    if let Err(error) = written {
        let _ = fs::remove_file(&staged);
        return Err(error.into());
    }
    let mut number = numbers(data_dir, dataset).last().map_or(1, |last| last + 1);
    let linked = loop {
        // A hard link fails when the name is taken: the manifest appears whole and only once.
        match fs::hard_link(&staged, manifest_path(data_dir, dataset, number)) {
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => number += 1,
            other => break other,
        }
    };
    let _ = fs::remove_file(&staged);
    linked?;
    Ok(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_manifests_win_when_a_chain_is_folded() {
        let manifest = |parent: &str, exclude: &[&str], relabel: &[(&str, &str)]| Manifest {
            parent: parent.into(),
            edits: DatasetEdits {
                exclude: exclude.iter().map(|p| p.to_string()).collect(),
                relabel: relabel.iter().map(|(p, c)| (p.to_string(), c.to_string())).collect(),
                add: BTreeMap::new(),
            },
            created_at: 0,
        };
        let chain = [manifest("d", &["a"], &[("b", "dog"), ("c", "dog")]), manifest("d@v1", &["b"], &[("c", "cat")])];
        let classes = ["cat".to_string(), "dog".to_string()];
        let edits = fold(&chain, &classes, Path::new("/data"), "d").unwrap();
        assert_eq!(edits.label("a", 1), None);
        assert_eq!(edits.label("b", 0), None, "excluded by the second version");
        assert_eq!(edits.label("c", 1), Some(0), "relabelled twice, the later wins");
        assert_eq!(edits.label("e", 1), Some(1), "untouched");
        let unknown = fold(&[manifest("d", &[], &[("a", "bird")])], &classes, Path::new("/data"), "d");
        assert!(unknown.unwrap_err().to_string().contains("\"bird\" is not a class of d"));
    }

    #[test]
    fn leftovers_of_interrupted_saves_are_removed_and_nothing_else() {
        let data = tempfile::tempdir().unwrap();
        let versions = data.path().join(VERSIONS_FOLDER).join("d");
        fs::create_dir_all(versions.join(ADDED_FOLDER)).unwrap();
        let kept = ["v1.json", "added/ab.png"];
        let gone = [".staged-7-0", "added/ab.png.partial"];
        for file in kept.iter().chain(&gone) {
            fs::write(versions.join(file), b"x").unwrap();
        }
        assert_eq!(remove_leftovers(data.path()), 2);
        assert!(kept.iter().all(|file| versions.join(file).is_file()), "manifests and added images stay");
        assert!(!gone.iter().any(|file| versions.join(file).exists()));
        assert_eq!(remove_leftovers(&data.path().join("nowhere")), 0);
    }

    #[test]
    fn an_added_image_can_be_left_out_and_added_again_by_later_versions() {
        let image = format!("{ADDED_PREFIX}{}.png", "ab".repeat(32));
        let adding = |parent: &str, class: &str| Manifest {
            parent: parent.into(),
            edits: DatasetEdits { add: [(image.clone(), class.to_string())].into(), ..DatasetEdits::default() },
            created_at: 0,
        };
        let leaving_out = || Manifest {
            parent: "d@v1".into(),
            edits: DatasetEdits { exclude: vec![image.clone()], ..DatasetEdits::default() },
            created_at: 0,
        };
        let classes = ["cat".to_string(), "dog".to_string()];
        let file = Path::new("/data/.versions/d/added").join(image.trim_start_matches(ADDED_PREFIX));
        let folded = |chain: &[Manifest]| fold(chain, &classes, Path::new("/data"), "d").unwrap().added_files();
        assert_eq!(folded(&[adding("d", "dog")]), [(1, file.clone())]);
        assert_eq!(folded(&[adding("d", "dog"), leaving_out()]), []);
        assert_eq!(folded(&[adding("d", "dog"), leaving_out(), adding("d@v2", "cat")]), [(0, file)]);
        let odd = Manifest {
            edits: DatasetEdits { add: [("../x.png".into(), "cat".into())].into(), ..DatasetEdits::default() },
            ..adding("d", "cat")
        };
        let refused = fold(&[odd], &classes, Path::new("/data"), "d").unwrap_err().to_string();
        assert!(refused.contains("is not an added image's path"), "{refused}");
    }
}
