//! Thumbnails of a dataset's own images, named the way the health check names them: a path relative to
//! the dataset's folder (`train/cat/a.png`), or `file#index` for a CIFAR record. A version (`cifar@v2`)
//! shows its dataset's files, left-out images included, since a person marks them there, and the images
//! it adds (`.added/<sha256>.png`).
//!
//! The path comes from a client, so it is only ever compared, never trusted: it must be relative, plain
//! (no `.` or `..` part, no hidden part) and one of the images the dataset lists; a listed file that is
//! a link must still lie inside the dataset's folder. Images are read within the dataset limits
//! ([`MAX_IMAGE_FILE_BYTES`], and [`decode_rgb`]'s size and allocation limits) and shrunk to fit a square.

use super::images::{decode_rgb, Admission, ImageError};
use super::{
    cifar_files, cifar_record_image, has_image_extension, is_cifar, pickled_record_image, read_bounded, rgb_png,
    DataError, DatasetSource, CIFAR100_RECORD, CIFAR_RECORD, MAX_IMAGE_FILE_BYTES,
};
use crate::memory::{MemoryBudget, OverBudget};
use image::{imageops::FilterType, RgbImage};
use shared::DatasetFormat;
use std::path::{Path, PathBuf};

/// Side of the square a thumbnail fits in when none is asked for, in pixels.
pub const DEFAULT_THUMBNAIL_SIDE: u32 = 96;
/// Smallest side a thumbnail may be asked for.
pub const MIN_THUMBNAIL_SIDE: u32 = 16;
/// Largest side a thumbnail may be asked for.
pub const MAX_THUMBNAIL_SIDE: u32 = 512;
/// Longest image path accepted, in bytes.
const MAX_PATH_LEN: usize = 1024;

/// Why a thumbnail was refused.
#[derive(Debug, thiserror::Error)]
pub enum ThumbnailError {
    /// The path is not a plain relative path (absolute, `..`, a hidden part, empty); the sentence says
    /// what is wrong with it.
    #[error("the image path {0}")]
    BadPath(&'static str),
    /// The path is well formed but the dataset has no such image.
    #[error("dataset \"{dataset}\" has no image {path:?}")]
    NotInDataset {
        /// The dataset asked about.
        dataset: String,
        /// The path asked for.
        path: String,
    },
    /// The side asked for is out of range.
    #[error("size must be {MIN_THUMBNAIL_SIDE} to {MAX_THUMBNAIL_SIDE} pixels, not {0}")]
    BadSize(u32),
    /// The image is listed but could not be read or decoded.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The memory budget has no room to decode the image now.
    #[error(transparent)]
    Busy(#[from] OverBudget),
}

/// A PNG of image `path` of `source`, shrunk (never enlarged) to fit a `side` x `side` square.
/// The image is decoded within `budget` ([`ThumbnailError::Busy`] when it has no room now).
pub fn thumbnail(
    source: &DatasetSource,
    path: &str,
    side: u32,
    budget: &MemoryBudget,
) -> Result<Vec<u8>, ThumbnailError> {
    if !(MIN_THUMBNAIL_SIDE..=MAX_THUMBNAIL_SIDE).contains(&side) {
        return Err(ThumbnailError::BadSize(side));
    }
    let missing = || ThumbnailError::NotInDataset { dataset: source.info.name.clone(), path: path.to_string() };
    let bytes = match source.edits.as_ref().and_then(|edits| edits.added_file(path)) {
        // An image the version adds: its file is the version's, found by the path, never made from it.
        Some(file) => {
            read_bounded(file, MAX_IMAGE_FILE_BYTES, "an image file").map_err(|e| e.relative_to(&source.shown_from))?
        }
        None => {
            check_plain(path)?;
            let bytes =
                if is_cifar(source.info.format) { cifar_record(source, path)? } else { folder_image(source, path)? };
            bytes.ok_or_else(missing)?
        }
    };
    let rgb = decode_rgb(&bytes, Admission::Now(budget)).map_err(|error| match error {
        ImageError::Busy(busy) => ThumbnailError::Busy(busy),
        error => DataError::Image { path: path.into(), source: error }.into(),
    })?;
    Ok(rgb_png(&shrink(rgb, side)))
}

/// Refuses a path that is not plain and relative, before anything is looked up.
fn check_plain(path: &str) -> Result<(), ThumbnailError> {
    let refuse = |why| Err(ThumbnailError::BadPath(why));
    if path.is_empty() || path.len() > MAX_PATH_LEN {
        return refuse("must be 1 to 1024 bytes long");
    }
    if path.starts_with('/') || path.contains('\\') || path.contains('\0') {
        return refuse("must be relative to the dataset's folder, with / between its parts");
    }
    if path.split('/').any(|part| part.is_empty() || part.starts_with('.')) {
        return refuse("must not have empty, '.', '..' or hidden parts");
    }
    Ok(())
}

/// The PNG of CIFAR record `file#index`, when the dataset has that file and that record.
fn cifar_record(source: &DatasetSource, path: &str) -> Result<Option<Vec<u8>>, ThumbnailError> {
    let Some((file, index)) = path.rsplit_once('#') else { return Ok(None) };
    let Some((file, _)) = cifar_files(source).into_iter().find(|(name, _)| *name == file) else { return Ok(None) };
    let Ok(index) = index.parse::<usize>() else { return Ok(None) };
    let record = match source.info.format {
        DatasetFormat::Cifar10Binary => cifar_record_image(&source.root.join(file), CIFAR_RECORD, index),
        DatasetFormat::Cifar100Binary => cifar_record_image(&source.root.join(file), CIFAR100_RECORD, index),
        _ => pickled_record_image(source, file, index),
    };
    let record = record.map_err(|e| e.relative_to(&source.shown_from))?;
    Ok(record.map(|(png, _)| png))
}

/// The bytes of folder image `path`, when the dataset lists it and it lies inside the dataset's folder.
fn folder_image(source: &DatasetSource, path: &str) -> Result<Option<Vec<u8>>, ThumbnailError> {
    if !is_listed(source, path) {
        return Ok(None);
    }
    let Some(file) = inside(&source.root, &source.root.join(path)) else { return Ok(None) };
    let bytes = read_bounded(&file, MAX_IMAGE_FILE_BYTES, "an image file");
    Ok(Some(bytes.map_err(|e| e.relative_to(&source.shown_from))?))
}

/// Whether plain path `path` (see [`check_plain`]) is one of the images the folder dataset's listing
/// finds: an image file right in one of its class folders (`train/<class>/` or `test/<class>/`, or
/// `<class>/` for an image folder). A version shows its dataset's files, so the images it leaves out
/// can be seen too. Checked from the path's own parts, without listing the dataset.
fn is_listed(source: &DatasetSource, path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    let class = match (source.info.format, parts.as_slice()) {
        (DatasetFormat::ClassFolders, [split, class, _]) if ["train", "test"].contains(split) => class,
        (DatasetFormat::ImageFolder, [class, _]) => class,
        _ => return false,
    };
    let file = source.root.join(path);
    source.info.classes.iter().any(|known| known == class) && has_image_extension(&file) && file.is_file()
}

/// `file` resolved (links followed), when it lies inside `folder` resolved.
fn inside(folder: &Path, file: &Path) -> Option<PathBuf> {
    let folder = std::fs::canonicalize(folder).ok()?;
    std::fs::canonicalize(file).ok().filter(|file| file.starts_with(&folder))
}

/// `rgb` shrunk to fit a `side` x `side` square, keeping its shape; as it is when it already fits.
fn shrink(rgb: RgbImage, side: u32) -> RgbImage {
    let (width, height) = rgb.dimensions();
    if width <= side && height <= side {
        return rgb;
    }
    let scale = f64::from(side) / f64::from(width.max(height));
    let fit = |length: u32| ((f64::from(length) * scale).round() as u32).clamp(1, side);
    image::imageops::resize(&rgb, fit(width), fit(height), FilterType::Triangle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_pass_the_first_check() {
        for good in ["train/cat/a.png", "data_batch_1.bin#3", "dog/b b.jpg"] {
            assert!(check_plain(good).is_ok(), "{good}");
        }
        for bad in ["", "/etc/passwd", "../x.png", "train/../../x.png", "train/./a.png", ".versions/a", "a//b", "a\\b"]
        {
            assert!(matches!(check_plain(bad), Err(ThumbnailError::BadPath(_))), "{bad}");
        }
    }

    #[test]
    fn a_large_image_shrinks_to_fit_the_square_and_a_small_one_stays_as_it_is() {
        assert_eq!(shrink(RgbImage::new(400, 200), 96).dimensions(), (96, 48));
        assert_eq!(shrink(RgbImage::new(10, 3000), 96).dimensions(), (1, 96));
        assert_eq!(shrink(RgbImage::new(32, 32), 96).dimensions(), (32, 32));
    }
}
