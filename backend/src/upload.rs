//! Datasets uploaded as a zip of class folders: unpacked into a staging folder with every entry's path
//! checked (no absolute paths, no `..`, no links), the total unpacked size and the entry count capped
//! (zip bombs), the layout recognised, and only then renamed into the data folder.

use crate::data::{self, DataError};
use shared::DatasetInfo;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Most bytes a dataset zip may unpack to.
pub const MAX_UNPACKED_BYTES: u64 = 8 * 1024 * 1024 * 1024;
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
    /// Not a zip archive, or a damaged one.
    #[error("the upload is not a readable zip archive: {0}")]
    NotZip(String),
    /// The archive holds a path that would land outside the dataset folder.
    #[error("the zip holds an unsafe path \"{0}\"; entries must stay inside the archive's folder")]
    UnsafePath(String),
    /// Too big when unpacked, or too many entries.
    #[error("the zip unpacks to more than {limit}; refused")]
    TooLarge {
        /// The limit that was crossed, in words.
        limit: String,
    },
    /// Unpacked, but not a dataset.
    #[error("the zip is not a dataset: {0}")]
    Layout(DataError),
    /// Writing to the data folder failed.
    #[error("could not write the dataset: {0}")]
    Io(#[from] io::Error),
}

/// Unpacks the zip at `archive` and installs it as dataset `name` under `data_dir`.
pub fn install_zip_dataset(data_dir: &Path, name: &str, archive: &Path) -> Result<DatasetInfo, UploadError> {
    shared::check_file_name(name).map_err(UploadError::BadName)?;
    let target = data_dir.join(name);
    if target.exists() {
        return Err(UploadError::Exists(name.to_string()));
    }
    let staging = data_dir.join(format!(".upload-{name}.partial"));
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging)?;
    let result = unpack(archive, &staging).and_then(|()| {
        let root = single_subfolder(&staging)?.unwrap_or_else(|| staging.clone());
        let staged_name = root.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        data::inspect(root.parent().unwrap_or(data_dir), &staged_name).map_err(UploadError::Layout)?;
        fs::rename(&root, &target)?;
        data::inspect(data_dir, name).map(|source| source.info).map_err(UploadError::Layout)
    });
    let _ = fs::remove_dir_all(&staging);
    result
}

fn unpack(archive: &Path, staging: &Path) -> Result<(), UploadError> {
    let file = fs::File::open(archive)?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| UploadError::NotZip(e.to_string()))?;
    if zip.len() > MAX_ENTRIES {
        return Err(UploadError::TooLarge { limit: format!("{MAX_ENTRIES} entries") });
    }
    let too_large = || UploadError::TooLarge { limit: format!("{} GiB", MAX_UNPACKED_BYTES >> 30) };
    let mut budget = MAX_UNPACKED_BYTES;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| UploadError::NotZip(e.to_string()))?;
        let raw_name = entry.name().to_string();
        let relative: PathBuf = entry.enclosed_name().ok_or_else(|| UploadError::UnsafePath(raw_name.clone()))?;
        if entry.is_symlink() {
            return Err(UploadError::UnsafePath(raw_name));
        }
        if relative.components().any(|c| c.as_os_str().to_string_lossy().starts_with('.') || c.as_os_str() == "__MACOSX") {
            continue;
        }
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
        let info = install_zip_dataset(data.path(), "pets", archive.path()).unwrap();
        assert_eq!(info.classes, ["cat", "dog"]);
        assert_eq!((info.train_count, info.test_count), (2, 2));
        let err = install_zip_dataset(data.path(), "pets", archive.path()).unwrap_err();
        assert!(matches!(err, UploadError::Exists(_)));
    }

    #[test]
    fn traversal_and_non_datasets_are_refused_and_leave_nothing() {
        let data = tempfile::tempdir().unwrap();
        let evil = zip_of(&[("../../escape.png", png())]);
        let err = install_zip_dataset(data.path(), "evil", evil.path()).unwrap_err();
        assert!(matches!(err, UploadError::UnsafePath(_)), "{err}");
        let flat = zip_of(&[("readme.txt", b"hi".to_vec())]);
        let err = install_zip_dataset(data.path(), "flat", flat.path()).unwrap_err();
        assert!(matches!(err, UploadError::Layout(_)), "{err}");
        let not_zip = tempfile::NamedTempFile::new().unwrap();
        fs::write(not_zip.path(), b"plain text").unwrap();
        assert!(matches!(install_zip_dataset(data.path(), "x", not_zip.path()), Err(UploadError::NotZip(_))));
        assert!(matches!(install_zip_dataset(data.path(), "../x", not_zip.path()), Err(UploadError::BadName(_))));
        let left: Vec<_> = fs::read_dir(data.path()).unwrap().collect();
        assert!(left.is_empty(), "nothing left behind: {left:?}");
    }
}
