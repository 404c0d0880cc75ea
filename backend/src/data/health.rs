//! Dataset health: per-class counts and balance, image sizes, images that cannot be decoded, and
//! duplicates: exact (the same decoded pixels) and near (verified alike, see [`super::duplicates`]),
//! flagged when one copy is a training image and the other a test image, since such leakage inflates
//! test accuracy, and when the copies carry different labels, since one of them is then mislabelled.
//!
//! Every image is decoded once at its own size and kept only as its [`Fingerprint`].
//!
//! [`HealthCache`] keeps the answer per dataset until its files change (their count, total size and
//! newest modification time).

use super::duplicates::{self, Fingerprint};
use super::{
    labelled, list_class_folders, read_bounded, read_cifar_pickle, relative_name, reported_split, DataError,
    DatasetSource, LabelledFiles, PickledCifar, CIFAR100_RECORD, CIFAR_RECORD, CIFAR_SIDE, CIFAR_TEST_FILE,
    CIFAR_TRAIN_FILES, MAX_CIFAR_RECORDS, MAX_IMAGE_FILE_BYTES,
};
use crate::data::images::{decode_rgb, Admission};
use crate::memory::MemoryBudget;
use image::RgbImage;
use rayon::prelude::*;
use shared::{
    ClassCount, DatasetFormat, DatasetHealth, DuplicateKind, DuplicatePair, ImageSizes, SizeCount, UnreadableImage,
};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

/// One image of the dataset.
struct Sample {
    /// Relative to the dataset folder; `file#index` for a CIFAR record.
    path: String,
    test: bool,
    label: usize,
    seen: Result<Fingerprint, String>,
}

/// Checks a recognised dataset. Reads and decodes every image (in parallel); a CIFAR file that cannot
/// be read fails the check, an image file that cannot be decoded is listed in `unreadable`.
/// Images are decoded within `budget`, each waiting for room (a check never fails for want of it).
pub fn check(source: &DatasetSource, budget: &MemoryBudget) -> Result<DatasetHealth, DataError> {
    let mut samples = samples(source, budget).map_err(|e| e.relative_to(&source.shown_from))?;
    if let Some(edits) = &source.edits {
        // A version: its left-out images are gone and its relabelled ones in their new class.
        samples.retain_mut(|sample| match edits.label(&sample.path, sample.label) {
            Some(label) => {
                sample.label = label;
                true
            }
            None => false,
        });
        samples.extend(file_samples(&source.root, edits.added_files(), false, budget));
    }
    let classes: Vec<ClassCount> = source
        .info
        .classes
        .iter()
        .enumerate()
        .map(|(label, name)| ClassCount {
            name: name.clone(),
            train: samples.iter().filter(|s| s.label == label && !s.test).count(),
            test: samples.iter().filter(|s| s.label == label && s.test).count(),
        })
        .collect();
    let (most, least) =
        classes.iter().fold((0, usize::MAX), |(most, least), c| (most.max(c.train), least.min(c.train)));
    let unreadable = samples
        .iter()
        .filter_map(|s| {
            s.seen.as_ref().err().map(|error| UnreadableImage {
                path: s.path.clone(),
                error: error.clone(),
                class: Some(s.label),
            })
        })
        .collect();
    let found = Duplicates::of(&samples);
    Ok(DatasetHealth {
        classes,
        imbalance: if least == 0 || least == usize::MAX { 0.0 } else { most as f64 / least as f64 },
        sizes: sizes(&samples),
        unreadable,
        duplicates: found.listed,
        duplicates_truncated: found.truncated,
        leaked_test_images: found.leaked_test_images,
        label_conflicts: found.label_conflicts,
        near_similarity: duplicates::NEAR_SIMILARITY,
    })
}

/// Every image of the dataset, decoded and hashed.
fn samples(source: &DatasetSource, budget: &MemoryBudget) -> Result<Vec<Sample>, DataError> {
    let root = &source.root;
    let classes = source.info.classes.len();
    match source.info.format {
        DatasetFormat::Cifar10Binary => {
            let mut samples = Vec::new();
            for file in CIFAR_TRAIN_FILES {
                samples.extend(cifar_file_samples(root, file, false, CIFAR_RECORD, 0)?);
            }
            samples.extend(cifar_file_samples(root, CIFAR_TEST_FILE, true, CIFAR_RECORD, 0)?);
            Ok(samples)
        }
        DatasetFormat::Cifar100Binary => {
            let mut samples = cifar_file_samples(root, "train.bin", false, CIFAR100_RECORD, 1)?;
            samples.extend(cifar_file_samples(root, "test.bin", true, CIFAR100_RECORD, 1)?);
            Ok(samples)
        }
        DatasetFormat::Cifar10Python | DatasetFormat::Cifar100Python => {
            let layout = PickledCifar::of(source.info.format).ok_or_else(|| DataError::Decode("no layout".into()))?;
            let files = layout.train_files.iter().map(|f| (*f, false)).chain([(layout.test_file, true)]);
            let mut samples = Vec::new();
            for (file, test) in files {
                let batch = read_cifar_pickle(&root.join(file), classes, layout)?.split;
                let pixels =
                    Vec::<u8>::try_from(batch.images.flatten(0, -1)).map_err(|e| DataError::Decode(e.to_string()))?;
                let labels = Vec::<i64>::try_from(&batch.labels).map_err(|e| DataError::Decode(e.to_string()))?;
                samples.extend(planes_samples(file, test, &pixels, labels.iter().map(|&l| l as usize)));
            }
            Ok(samples)
        }
        DatasetFormat::ClassFolders => {
            let mut samples = folder_samples(root, &root.join("train"), false, budget)?;
            samples.extend(folder_samples(root, &root.join("test"), true, budget)?);
            Ok(samples)
        }
        DatasetFormat::ImageFolder => {
            // The test split is drawn per run: counted here as a run with the form's defaults draws it.
            let (train, held_out) = reported_split(&list_class_folders(root)?, root);
            let mut samples = file_samples(root, train, false, budget);
            samples.extend(file_samples(root, held_out, true, budget));
            Ok(samples)
        }
    }
}

/// The records of one binary CIFAR file (`record` bytes each, the label at byte `label_at`).
fn cifar_file_samples(
    root: &Path,
    file: &str,
    test: bool,
    record: usize,
    label_at: usize,
) -> Result<Vec<Sample>, DataError> {
    let path = root.join(file);
    let bytes = read_bounded(&path, MAX_CIFAR_RECORDS * record as u64, "a CIFAR file")?;
    if !bytes.len().is_multiple_of(record) {
        let why = format!("size {} is not a whole number of {record}-byte records", bytes.len());
        return Err(DataError::Malformed { path, why });
    }
    let planes: Vec<u8> = bytes.chunks_exact(record).flat_map(|r| r[record - PLANES..].iter().copied()).collect();
    let labels = bytes.chunks_exact(record).map(|r| usize::from(r[label_at]));
    Ok(planes_samples(file, test, &planes, labels))
}

/// Bytes of one 32x32 CIFAR image: red, green and blue planes.
const PLANES: usize = 3 * (CIFAR_SIDE * CIFAR_SIDE) as usize;

/// Samples of consecutive 32x32 images stored as colour planes, named `file#index`.
fn planes_samples(file: &str, test: bool, planes: &[u8], labels: impl Iterator<Item = usize>) -> Vec<Sample> {
    let labels: Vec<usize> = labels.collect();
    planes
        .par_chunks_exact(PLANES)
        .zip(labels.into_par_iter())
        .enumerate()
        .map(|(index, (image, label))| {
            let side = CIFAR_SIDE as usize;
            let rgb = RgbImage::from_fn(side as u32, side as u32, |x, y| {
                let at = y as usize * side + x as usize;
                image::Rgb([image[at], image[side * side + at], image[2 * side * side + at]])
            });
            Sample { path: format!("{file}#{index}"), test, label, seen: Ok(Fingerprint::of(&rgb)) }
        })
        .collect()
}

/// The images of a split's class folders, labelled in class order; paths relative to `root`.
fn folder_samples(root: &Path, split_dir: &Path, test: bool, budget: &MemoryBudget) -> Result<Vec<Sample>, DataError> {
    if test && !split_dir.is_dir() {
        return Ok(Vec::new());
    }
    Ok(file_samples(root, labelled(list_class_folders(split_dir)?), test, budget))
}

/// Labelled image files (as the listing labels them, from 0) decoded in parallel; paths relative to `root`
/// (see [`relative_name`]).
fn file_samples(root: &Path, files: LabelledFiles, test: bool, budget: &MemoryBudget) -> Vec<Sample> {
    files
        .into_par_iter()
        .map(|(label, file)| {
            let label = label as usize;
            let decoded = read_bounded(&file, MAX_IMAGE_FILE_BYTES, "an image file")
                .map_err(|e| e.relative_to(root).to_string())
                .and_then(|bytes| decode_rgb(&bytes, Admission::Waiting(budget)).map_err(|e| e.to_string()));
            Sample { path: relative_name(&file, root), test, label, seen: decoded.map(|rgb| Fingerprint::of(&rgb)) }
        })
        .collect()
}

/// Counts of each size, smallest and largest.
fn sizes(samples: &[Sample]) -> ImageSizes {
    let mut counts: HashMap<(u32, u32), usize> = HashMap::new();
    for seen in samples.iter().filter_map(|s| s.seen.as_ref().ok()) {
        *counts.entry((seen.width, seen.height)).or_default() += 1;
    }
    let area = |&(w, h): &(u32, u32)| u64::from(w) * u64::from(h);
    let smallest = counts.keys().copied().min_by_key(|size| (area(size), *size)).unwrap_or((0, 0));
    let largest = counts.keys().copied().max_by_key(|size| (area(size), *size)).unwrap_or((0, 0));
    let mut most_common: Vec<SizeCount> =
        counts.into_iter().map(|((width, height), count)| SizeCount { width, height, count }).collect();
    most_common.sort_by_key(|s| (std::cmp::Reverse(s.count), s.width, s.height));
    most_common.truncate(5);
    ImageSizes { smallest: [smallest.0, smallest.1], largest: [largest.0, largest.1], most_common }
}

/// The duplicates of a dataset as the health check reports them.
struct Duplicates {
    /// Exact pairs (all of them), then near pairs from the most alike, up to
    /// [`DatasetHealth::MAX_DUPLICATES`] pairs in all.
    listed: Vec<DuplicatePair>,
    /// Whether near pairs were left out.
    truncated: bool,
    /// Distinct test images with a copy in the training split.
    leaked_test_images: usize,
    /// Pairs whose images carry different labels.
    label_conflicts: usize,
}

impl Duplicates {
    fn of(samples: &[Sample]) -> Self {
        let prints: Vec<Option<&Fingerprint>> = samples.iter().map(|s| s.seen.as_ref().ok()).collect();
        let copies = duplicates::find(&prints);
        let mut leaked = HashSet::new();
        let mut label_conflicts = 0;
        let mut listed = Vec::new();
        let mut truncated = false;
        for copy in &copies {
            let (a, b) = (&samples[copy.a], &samples[copy.b]);
            if a.test != b.test {
                leaked.insert(if a.test { copy.a } else { copy.b });
            }
            label_conflicts += usize::from(a.label != b.label);
            if !copy.exact && listed.len() >= DatasetHealth::MAX_DUPLICATES {
                truncated = true;
                continue;
            }
            listed.push(DuplicatePair {
                a: a.path.clone(),
                b: b.path.clone(),
                kind: if copy.exact { DuplicateKind::Exact } else { DuplicateKind::Near },
                similarity: copy.similarity,
                across_splits: a.test != b.test,
                a_class: Some(a.label),
                b_class: Some(b.label),
            });
        }
        Duplicates { listed, truncated, leaked_test_images: leaked.len(), label_conflicts }
    }
}

/// What a dataset's files look like now: when it changes, a cached check is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FolderPrint {
    files: u64,
    bytes: u64,
    newest: Option<SystemTime>,
}

fn folder_print(folder: &Path) -> FolderPrint {
    let mut print = FolderPrint { files: 0, bytes: 0, newest: None };
    let mut pending = vec![folder.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.filter_map(Result::ok) {
            let Ok(meta) = entry.metadata() else { continue };
            let modified = meta.modified().ok();
            print.newest = print.newest.max(modified);
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                print.files += 1;
                print.bytes += meta.len();
            }
        }
    }
    print
}

/// A dataset or version in the cache: its folder and its name (a version shares its dataset's folder).
type CacheKey = (PathBuf, String);

/// The last check of each dataset and version, kept until its files change. Checks of one dataset asked
/// for at once are made once: the others wait for it and share the answer.
#[derive(Default)]
pub struct HealthCache {
    answers: Mutex<HashMap<CacheKey, (FolderPrint, Arc<DatasetHealth>)>>,
    /// Held while a dataset's check is made.
    making: Mutex<HashMap<CacheKey, Arc<Mutex<()>>>>,
}

impl HealthCache {
    /// The check of `source`, from the cache when its files are as they were, else computed (and kept).
    pub fn check(&self, source: &DatasetSource, budget: &MemoryBudget) -> Result<Arc<DatasetHealth>, DataError> {
        let key = (source.root.clone(), source.info.name.clone());
        let making = self.making.lock().unwrap_or_else(PoisonError::into_inner).entry(key.clone()).or_default().clone();
        let _making = making.lock().unwrap_or_else(PoisonError::into_inner);
        let now = folder_print(&source.root);
        let cached = self.answers.lock().unwrap_or_else(PoisonError::into_inner).get(&key).cloned();
        if let Some((_, health)) = cached.filter(|(print, _)| *print == now) {
            return Ok(health);
        }
        let health = Arc::new(check(source, budget)?);
        self.answers.lock().unwrap_or_else(PoisonError::into_inner).insert(key, (now, health.clone()));
        Ok(health)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::inspect;

    fn save(path: &Path, rgb: &RgbImage) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        rgb.save(path).unwrap();
    }

    /// A picture of its own for each `shift`: every channel's pattern depends on it.
    fn gradient(side: u32, shift: u8) -> RgbImage {
        RgbImage::from_fn(side, side, |x, y| {
            let (x, y) = (x as u8, y as u8);
            image::Rgb([
                x.wrapping_mul(7) ^ shift,
                y.wrapping_mul(5) ^ shift.rotate_left(3),
                (x ^ y).wrapping_mul(shift | 1),
            ])
        })
    }

    /// cat and dog folders: train/cat/a.png is copied to test/cat/a-copy.png (a leak), train/dog/b.png
    /// has a one-pixel-brighter twin in train/dog/b2.png (near), and train/dog/bad.png is not an image.
    fn dataset(dir: &Path) -> DatasetSource {
        let root = dir.join("pets");
        save(&root.join("train/cat/a.png"), &gradient(32, 0));
        save(&root.join("train/cat/c.png"), &gradient(40, 99));
        save(&root.join("test/cat/a-copy.png"), &gradient(32, 0));
        let twin = gradient(32, 60);
        let mut brighter = twin.clone();
        brighter.get_pixel_mut(3, 3).0[0] = brighter.get_pixel(3, 3).0[0].saturating_add(1);
        save(&root.join("train/dog/b.png"), &twin);
        save(&root.join("train/dog/b2.png"), &brighter);
        std::fs::write(root.join("train/dog/bad.png"), b"not a png at all").unwrap();
        save(&root.join("test/dog/d.png"), &gradient(32, 200));
        inspect(dir, "pets").unwrap()
    }

    #[test]
    fn counts_sizes_unreadable_images_leaks_and_near_duplicates_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let health = check(&dataset(dir.path()), &MemoryBudget::default()).unwrap();
        let counts: Vec<(&str, usize, usize)> =
            health.classes.iter().map(|c| (c.name.as_str(), c.train, c.test)).collect();
        assert_eq!(counts, [("cat", 2, 1), ("dog", 3, 1)]);
        assert_eq!(health.imbalance, 1.5);
        assert_eq!((health.sizes.smallest, health.sizes.largest), ([32, 32], [40, 40]));
        assert_eq!(health.sizes.most_common[0], SizeCount { width: 32, height: 32, count: 5 });
        assert_eq!(health.unreadable.len(), 1);
        assert_eq!(health.unreadable[0].path, "train/dog/bad.png");
        let found: Vec<(&str, &str, DuplicateKind, bool)> =
            health.duplicates.iter().map(|d| (d.a.as_str(), d.b.as_str(), d.kind, d.across_splits)).collect();
        assert_eq!(
            found,
            [
                ("train/cat/a.png", "test/cat/a-copy.png", DuplicateKind::Exact, true),
                ("train/dog/b.png", "train/dog/b2.png", DuplicateKind::Near, false),
            ]
        );
        assert_eq!(health.leaks(), 1);
    }

    #[test]
    fn cifar_records_are_named_file_and_index_and_a_copied_test_record_is_a_leak() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cifar").join(super::super::CIFAR_BIN_FOLDER);
        let record = |label: u8, seed: u8| {
            let mut r = vec![label];
            r.extend((0..PLANES).map(|i| (i as u8).wrapping_mul(seed).wrapping_add(seed)));
            r
        };
        let train: Vec<u8> = (0..10u8).flat_map(|i| record(i % 2, 11 + 17 * i)).collect();
        std::fs::create_dir_all(&root).unwrap();
        for file in CIFAR_TRAIN_FILES {
            std::fs::write(root.join(file), &train).unwrap();
        }
        let mut test = record(0, 11 + 17 * 3);
        test.extend(record(1, 250));
        std::fs::write(root.join(CIFAR_TEST_FILE), &test).unwrap();
        std::fs::write(root.join(super::super::CIFAR_META_FILE), "a\nb\n").unwrap();
        let health = check(&inspect(dir.path(), "cifar").unwrap(), &MemoryBudget::default()).unwrap();
        assert_eq!(health.classes.iter().map(|c| c.train + c.test).sum::<usize>(), 52);
        let leak = health.duplicates.iter().find(|d| d.across_splits).expect("the copied test record");
        assert_eq!(
            (leak.a.as_str(), leak.b.as_str(), leak.kind),
            ("data_batch_1.bin#3", "test_batch.bin#0", DuplicateKind::Exact)
        );
        // The five training files are the same records: every record of files 2-5 is an exact copy.
        assert!(health.duplicates.iter().filter(|d| d.kind == DuplicateKind::Exact).count() >= 40);
    }

    #[test]
    fn an_image_folder_is_counted_as_the_listing_splits_it() {
        let dir = tempfile::tempdir().unwrap();
        for (class, images) in [("cat", 5u8), ("dog", 10)] {
            for i in 0..images {
                // Cat i and dogs i and i + 5 are the same picture.
                let picture = i % 5;
                save(
                    &dir.path().join(format!("snaps/{class}/{i}.png")),
                    &gradient(16 + u32::from(picture), picture * 23),
                );
            }
        }
        let source = inspect(dir.path(), "snaps").unwrap();
        assert_eq!(source.info.format, DatasetFormat::ImageFolder);
        let health = check(&source, &MemoryBudget::default()).unwrap();
        let counts: Vec<(&str, usize, usize)> =
            health.classes.iter().map(|c| (c.name.as_str(), c.train, c.test)).collect();
        assert_eq!(counts, [("cat", 4, 1), ("dog", 8, 2)]);
        let (train, test): (usize, usize) =
            health.classes.iter().map(|c| (c.train, c.test)).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        assert_eq!((train, test), (source.info.train_count, source.info.test_count));
        // A copy held out for testing of a training image is a leak, and every such pair is flagged.
        let (_, held_out) = reported_split(&list_class_folders(&source.root).unwrap(), &source.root);
        let held_out: HashSet<String> = held_out.iter().map(|(_, file)| relative_name(file, &source.root)).collect();
        let exact = health.duplicates.iter().filter(|pair| pair.kind == DuplicateKind::Exact);
        for pair in exact {
            assert_eq!(pair.across_splits, held_out.contains(&pair.a) != held_out.contains(&pair.b), "{pair:?}");
        }
        assert!(health.duplicates.iter().any(|pair| pair.across_splits), "a held-out copy is a leak");
    }

    #[test]
    fn a_check_is_cached_until_the_files_change() {
        let dir = tempfile::tempdir().unwrap();
        let source = dataset(dir.path());
        let cache = HealthCache::default();
        let first = cache.check(&source, &MemoryBudget::default()).unwrap();
        assert!(
            Arc::ptr_eq(&first, &cache.check(&source, &MemoryBudget::default()).unwrap()),
            "the same answer, not recomputed"
        );
        std::fs::remove_file(source.root.join("train/dog/bad.png")).unwrap();
        let after = cache.check(&source, &MemoryBudget::default()).unwrap();
        assert!(after.unreadable.is_empty(), "recomputed once the files changed");
    }
}
