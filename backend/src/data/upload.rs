//! Datasets uploaded as a zip of class folders: unpacked into a staging folder with every entry's path
//! checked (no absolute paths, no `..`, no links, no name that is both a file and a folder), the unpacked
//! size capped by what was read (not what the headers claim) both absolutely and relative to the zip's own
//! size (zip bombs), the entry count capped, the layout recognised, and only then renamed into the data
//! folder. The staging folder's name starts with `.`, so listing never sees it, and it is removed
//! whatever happens.

use crate::data::{self, DataError};
use crate::files::WriteFailure;
use shared::DatasetInfo;
use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// Most bytes a dataset zip may unpack to.
pub const MAX_UNPACKED_BYTES: u64 = 8 * 1024 * 1024 * 1024;
/// Most a dataset zip may unpack to, as a multiple of its own size. Images hardly compress (1x to 3x) and
/// CIFAR batches barely; only crafted or wasteful archives go beyond this.
pub const MAX_EXPANSION: u64 = 200;
/// Most entries a dataset zip may hold.
pub const MAX_ENTRIES: usize = 500_000;

/// Why an uploaded zip did not become a dataset.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The name is not a plain folder name.
    #[error("name {0}")]
    BadName(String),
    /// A dataset of that name exists.
    #[error("a dataset named \"{0}\" already exists")]
    Exists(String),
    /// Not a zip archive, or a damaged one. The zip reader's own words ("Could not find EOCD") name its
    /// internals, so the sentence leaves them out; they stay in the value for the log.
    #[error("the file is not a zip archive, or it is damaged or cut short")]
    NotZip(String),
    /// The archive holds a path that would land outside the dataset folder.
    #[error("the zip holds an unsafe path \"{0}\"; entries must stay inside the archive's folder")]
    UnsafePath(String),
    /// One path is both a file and a folder in the archive.
    #[error("the zip holds \"{0}\" both as a file and as a folder")]
    NameClash(String),
    /// Too big when unpacked, or too many entries.
    #[error("the zip unpacks to more than {limit}; refused")]
    TooLarge {
        /// The limit that was crossed, in words.
        limit: String,
    },
    /// Unpacked, but not a dataset.
    #[error("the zip is not a dataset: {0}")]
    Layout(DataError),
    /// Another upload of the same name (in any case) is being received or unpacked.
    #[error("another upload named \"{0}\" is in progress; wait for it, or choose another name")]
    InProgress(String),
    /// The disk is full: nothing was kept.
    #[error("the disk is full: the dataset was not kept; free some space and upload it again")]
    DiskFull,
    /// A file name in the zip is longer than the file system takes.
    #[error("the zip holds a file name too long for this file system; shorten it and upload again")]
    NameTooLong,
    /// Writing to the data folder failed.
    #[error("could not write the dataset: {0}")]
    Io(io::Error),
}

impl From<io::Error> for UploadError {
    fn from(error: io::Error) -> Self {
        match WriteFailure::of(&error) {
            WriteFailure::DiskFull => UploadError::DiskFull,
            WriteFailure::BadName => UploadError::NameTooLong,
            WriteFailure::Other => UploadError::Io(error),
        }
    }
}

/// Names of the uploads being received or unpacked, lower case, so that two uploads of one name at once
/// cannot both go ahead: the second is refused at once, before its bytes are read.
#[derive(Clone, Default)]
pub struct UploadClaims(Arc<Mutex<HashSet<String>>>);

/// The right to install a dataset under a name, held from the first byte of its upload to the end of
/// its installation; dropped, it frees the name.
pub struct UploadClaim {
    claims: UploadClaims,
    key: String,
}

impl UploadClaims {
    /// Claims `name` for a new dataset in `data_dir`: refused when the name is not a dataset's
    /// ([`shared::check_dataset_name`]), when a folder of that name exists in any case, or while another
    /// upload holds it.
    pub fn claim(&self, data_dir: &Path, name: &str) -> Result<UploadClaim, UploadError> {
        shared::check_dataset_name(name).map_err(UploadError::BadName)?;
        if let Some(existing) = existing_entry(data_dir, name) {
            return Err(UploadError::Exists(existing));
        }
        let key = name.to_lowercase();
        let mut claimed = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !claimed.insert(key.clone()) {
            return Err(UploadError::InProgress(name.to_string()));
        }
        Ok(UploadClaim { claims: self.clone(), key })
    }
}

impl Drop for UploadClaim {
    fn drop(&mut self) {
        self.claims.0.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.key);
    }
}

/// The name of the entry of `data_dir` that `name` would collide with: the same name in any case.
fn existing_entry(data_dir: &Path, name: &str) -> Option<String> {
    let entries = fs::read_dir(data_dir).ok()?.filter_map(Result::ok);
    entries.filter_map(|entry| entry.file_name().into_string().ok()).find(|entry| shared::names::same_name(entry, name))
}

/// A folder removed with everything in it when dropped, so no failure leaves a staged upload behind.
struct StagingFolder(PathBuf);

impl Drop for StagingFolder {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Unpacks the zip at `archive` and installs it as dataset `name` under `data_dir`, the name claimed in
/// `claims` meanwhile (see [`UploadClaims::claim`]).
#[cfg(test)]
pub fn install_zip_dataset(
    data_dir: &Path,
    name: &str,
    archive: &Path,
    claims: &UploadClaims,
) -> Result<DatasetInfo, UploadError> {
    let _claim = claims.claim(data_dir, name)?;
    install_claimed(data_dir, name, archive)
}

/// [`install_zip_dataset`] for a name already claimed by the caller.
pub fn install_claimed(data_dir: &Path, name: &str, archive: &Path) -> Result<DatasetInfo, UploadError> {
    let target = data_dir.join(name);
    let staging = StagingFolder(crate::files::staging_path(data_dir, name, ".partial"));
    fs::create_dir_all(&staging.0)?;
    unpack(archive, &staging.0)?;
    let root = single_subfolder(&staging.0)?.unwrap_or_else(|| staging.0.clone());
    data::inspect_folder(&root, name, &root).map_err(UploadError::Layout)?;
    // Taking the name with `create_dir` fails if anything holds it, where a rename alone would replace
    // an empty folder: the dataset appears whole and only once.
    fs::create_dir(&target).map_err(|error| match error.kind() {
        io::ErrorKind::AlreadyExists => UploadError::Exists(name.to_string()),
        _ => error.into(),
    })?;
    if let Err(error) = fs::rename(&root, &target) {
        let _ = fs::remove_dir(&target);
        return Err(error.into());
    }
    data::inspect(data_dir, name).map(|source| source.info).map_err(UploadError::Layout)
}

/// How many bytes the zip may unpack to: [`MAX_EXPANSION`] times its size, at most [`MAX_UNPACKED_BYTES`].
fn unpacked_budget(archive_bytes: u64) -> (u64, String) {
    let relative = archive_bytes.saturating_mul(MAX_EXPANSION);
    if relative < MAX_UNPACKED_BYTES {
        (relative, format!("{MAX_EXPANSION} times its own size ({relative} bytes)"))
    } else {
        (MAX_UNPACKED_BYTES, format!("{} GiB", MAX_UNPACKED_BYTES >> 30))
    }
}

fn unpack(archive: &Path, staging: &Path) -> Result<(), UploadError> {
    let file = fs::File::open(archive)?;
    let (mut budget, limit) = unpacked_budget(file.metadata()?.len());
    let mut zip = zip::ZipArchive::new(file).map_err(|e| UploadError::NotZip(e.to_string()))?;
    if zip.len() > MAX_ENTRIES {
        return Err(UploadError::TooLarge { limit: format!("{MAX_ENTRIES} entries") });
    }
    let too_large = || UploadError::TooLarge { limit: limit.clone() };
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| UploadError::NotZip(e.to_string()))?;
        let raw_name = entry.name().to_string();
        let relative: PathBuf = entry.enclosed_name().ok_or_else(|| UploadError::UnsafePath(raw_name.clone()))?;
        if entry.is_symlink() || relative.components().next().is_none() {
            return Err(UploadError::UnsafePath(raw_name));
        }
        if relative
            .components()
            .any(|c| c.as_os_str().to_string_lossy().starts_with('.') || c.as_os_str() == "__MACOSX")
        {
            continue;
        }
        check_no_clash(staging, &relative, entry.is_dir())?;
        let out = staging.join(&relative);
        if entry.is_dir() {
            fs::create_dir_all(&out)?;
            continue;
        }
        if entry.size() > budget {
            return Err(too_large());
        }
        if let Some(parent) = out.parent() {
            fs::create_dir_all(parent)?;
        }
        // The declared size can lie: count what actually comes out.
        let mut writer = fs::File::create(&out)?;
        let written = io::copy(&mut (&mut entry).take(budget + 1), &mut writer)?;
        if written > budget {
            return Err(too_large());
        }
        budget -= written;
    }
    Ok(())
}

/// Refuses an entry whose path runs through an unpacked file, or a file entry where a folder was
/// unpacked: the archive names one path both ways.
fn check_no_clash(staging: &Path, relative: &Path, is_dir: bool) -> Result<(), UploadError> {
    let clash = |path: &Path| UploadError::NameClash(path.to_string_lossy().into_owned());
    let mut folder = PathBuf::new();
    let components: Vec<_> = relative.components().collect();
    let (last, parents) = components.split_last().ok_or_else(|| clash(relative))?;
    for component in parents {
        folder.push(component);
        if fs::symlink_metadata(staging.join(&folder)).is_ok_and(|m| !m.is_dir()) {
            return Err(clash(&folder));
        }
    }
    folder.push(last);
    let existing = fs::symlink_metadata(staging.join(&folder));
    if existing.is_ok_and(|m| m.is_dir() != is_dir) {
        return Err(clash(&folder));
    }
    Ok(())
}

/// The one folder inside `dir` when it holds exactly one folder and no files (a zipped folder).
fn single_subfolder(dir: &Path) -> Result<Option<PathBuf>, UploadError> {
    let entries: Vec<fs::DirEntry> = fs::read_dir(dir)?.filter_map(Result::ok).collect();
    let is_dataset_root = entries.iter().any(|e| e.file_name() == "train");
    match entries.as_slice() {
        [only] if only.file_type()?.is_dir() && !is_dataset_root => Ok(Some(only.path())),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn png() -> Vec<u8> {
        let mut out = io::Cursor::new(Vec::new());
        image::RgbImage::from_pixel(4, 4, image::Rgb([9, 9, 9])).write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    fn zip_of(entries: &[(&str, Vec<u8>)]) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut zip = zip::ZipWriter::new(file.reopen().unwrap());
        for (name, bytes) in entries {
            zip.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
        file
    }

    #[test]
    fn a_zipped_folder_of_class_folders_becomes_a_dataset() {
        let data = tempfile::tempdir().unwrap();
        let archive = zip_of(&[
            ("pets/train/cat/1.png", png()),
            ("pets/train/dog/1.png", png()),
            ("pets/test/cat/1.png", png()),
            ("pets/test/dog/1.png", png()),
            ("__MACOSX/pets/._x", vec![1]),
        ]);
        let info = install_zip_dataset(data.path(), "pets", archive.path(), &UploadClaims::default()).unwrap();
        assert_eq!(info.classes, ["cat", "dog"]);
        assert_eq!((info.train_count, info.test_count), (2, 2));
        let err = install_zip_dataset(data.path(), "pets", archive.path(), &UploadClaims::default()).unwrap_err();
        assert!(matches!(err, UploadError::Exists(_)));
    }

    #[test]
    fn traversal_and_non_datasets_are_refused_and_leave_nothing() {
        let data = tempfile::tempdir().unwrap();
        let evil = zip_of(&[("../../escape.png", png())]);
        let err = install_zip_dataset(data.path(), "evil", evil.path(), &UploadClaims::default()).unwrap_err();
        assert!(matches!(err, UploadError::UnsafePath(_)), "{err}");
        let flat = zip_of(&[("readme.txt", b"hi".to_vec())]);
        let err = install_zip_dataset(data.path(), "flat", flat.path(), &UploadClaims::default()).unwrap_err();
        assert!(matches!(err, UploadError::Layout(_)), "{err}");
        let not_zip = tempfile::NamedTempFile::new().unwrap();
        fs::write(not_zip.path(), b"plain text").unwrap();
        let refused = install_zip_dataset(data.path(), "x", not_zip.path(), &UploadClaims::default()).unwrap_err();
        assert!(matches!(refused, UploadError::NotZip(_)));
        assert_eq!(refused.to_string(), "the file is not a zip archive, or it is damaged or cut short");
        assert!(matches!(
            install_zip_dataset(data.path(), "../x", not_zip.path(), &UploadClaims::default()),
            Err(UploadError::BadName(_))
        ));
        let left: Vec<_> = fs::read_dir(data.path()).unwrap().collect();
        assert!(left.is_empty(), "nothing left behind: {left:?}");
    }

    fn left_in(data: &Path) -> Vec<fs::DirEntry> {
        fs::read_dir(data).unwrap().map(Result::unwrap).collect()
    }

    #[test]
    fn a_zip_bomb_is_refused_by_its_expansion_and_leaves_nothing() {
        // 1 GiB of zeros deflates to about 1 MB.
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut zip = zip::ZipWriter::new(file.reopen().unwrap());
        zip.start_file("bomb/cifar-10-batches-bin/test_batch.bin", zip::write::SimpleFileOptions::default()).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..1024 {
            zip.write_all(&zeros).unwrap();
        }
        zip.finish().unwrap();
        let compressed = fs::metadata(file.path()).unwrap().len();
        assert!(compressed < 2 << 20, "{compressed} bytes");
        let data = tempfile::tempdir().unwrap();
        let err = install_zip_dataset(data.path(), "bomb", file.path(), &UploadClaims::default()).unwrap_err();
        assert!(matches!(err, UploadError::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("200 times its own size"), "{err}");
        assert!(left_in(data.path()).is_empty());
    }

    #[test]
    fn a_name_that_is_both_a_file_and_a_folder_is_a_clear_error_in_either_order() {
        let data = tempfile::tempdir().unwrap();
        for entries in [[("set/a/b", png()), ("set/a/b/c.png", png())], [("set/a/b/c.png", png()), ("set/a/b", png())]]
        {
            let err =
                install_zip_dataset(data.path(), "set", zip_of(&entries).path(), &UploadClaims::default()).unwrap_err();
            assert!(matches!(err, UploadError::NameClash(_)), "{err}");
            assert_eq!(err.to_string(), "the zip holds \"set/a/b\" both as a file and as a folder");
            assert!(left_in(data.path()).is_empty());
        }
    }

    #[test]
    fn a_deep_pickle_in_an_uploaded_cifar_dataset_is_refused_and_leaves_nothing() {
        let staged = tempfile::tempdir().unwrap();
        data::write_cifar_python(staged.path(), &["a", "b"], 1, 1, |_| (0, vec![0; 3072])).unwrap();
        let deep = [b"]".repeat(100_000), b"a".repeat(99_999), b".".to_vec()].concat();
        fs::write(staged.path().join("data_batch_1"), deep).unwrap();
        let entries: Vec<(String, Vec<u8>)> = fs::read_dir(staged.path())
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| {
                (format!("deep/cifar-10-batches-py/{}", e.file_name().to_string_lossy()), fs::read(e.path()).unwrap())
            })
            .collect();
        let entries: Vec<(&str, Vec<u8>)> = entries.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
        let data = tempfile::tempdir().unwrap();
        let err =
            install_zip_dataset(data.path(), "deep", zip_of(&entries).path(), &UploadClaims::default()).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, UploadError::Layout(_)), "{message}");
        assert!(message.contains("cifar-10-batches-py/data_batch_1 is malformed"), "{message}");
        assert!(message.contains("containers nest more than 1000 deep"), "{message}");
        assert!(!message.contains(&data.path().display().to_string()), "no server path: {message}");
        assert!(left_in(data.path()).is_empty());
    }
}
