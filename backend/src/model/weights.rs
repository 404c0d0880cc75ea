//! The weights folder as the studio offers it: the starting weights a run can name ([`entries`]) and
//! the files a person adds to it ([`install`]).
//!
//! An uploaded file is kept only if it is a ResNet-18 state dict: every backbone tensor present with
//! ResNet-18's shape (the head, `fc.*`, may have any number of classes, or be absent: runs replace
//! it). Under ImageNet's published name it must also have the published checksum, since it then stands
//! for `"imagenet"`.

use super::pretrained::PretrainedSource;
use super::read_tensors;
use sha2::{Digest, Sha256};
use shared::WeightsEntry;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Largest weights file accepted by upload (ResNet-18's is 44.7 MB).
pub const MAX_UPLOAD_BYTES: u64 = 1 << 30;
/// The extensions a weights file may have.
pub use shared::names::WEIGHTS_EXTENSIONS as EXTENSIONS;

/// Why an uploaded file was not kept.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// The name is not a plain file name with a weights extension.
    #[error("name {0}")]
    BadName(String),
    /// A file of that name is already in the weights folder.
    #[error("a weights file named \"{0}\" already exists; rename the new file or remove the old one first")]
    Exists(String),
    /// The file could not be read as a state dict at all.
    #[error("this file is not a ResNet-18 state dict: {0}")]
    Unreadable(String),
    /// The tensors are not exactly ResNet-18's.
    #[error("this file is not a ResNet-18 state dict: {0}")]
    NotResNet18(#[from] super::architecture::NotResNet18),
    /// Under ImageNet's published name, with another checksum.
    #[error("this is not torchvision's {file}: its SHA-256 is {found}, which does not start with {expected}")]
    Checksum {
        /// The published file name.
        file: String,
        /// The SHA-256 computed.
        found: String,
        /// The published prefix.
        expected: String,
    },
    /// Writing to the weights folder failed.
    #[error("could not store the weights file: {0}")]
    Io(#[from] io::Error),
}

/// The starting weights a run can name: ImageNet's always first (present when its file is in the
/// weights folder or its cache, otherwise downloaded on first use), then each weights file in the
/// folder by name. ImageNet's own file is not listed twice.
pub fn entries(weights_dir: &Path, imagenet: &PretrainedSource) -> Vec<WeightsEntry> {
    let found = imagenet.find(weights_dir);
    let first = WeightsEntry {
        name: shared::defaults::WEIGHTS_IMAGENET.into(),
        label: "ImageNet".into(),
        present: found.is_some(),
        size_bytes: found.as_deref().and_then(file_size),
        download_bytes: found.is_none().then_some(imagenet.size_bytes),
        unavailable: None,
    };
    let mut files: Vec<(String, u64)> = fs::read_dir(weights_dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.metadata().ok()?.len())))
        .filter(|(name, _)| has_weights_extension(name) && !name.starts_with('.') && *name != imagenet.file_name)
        .collect();
    files.sort();
    let listed = files.into_iter().map(|(name, size)| WeightsEntry {
        label: name.clone(),
        name,
        present: true,
        size_bytes: Some(size),
        download_bytes: None,
        unavailable: None,
    });
    std::iter::once(first).chain(listed).collect()
}

/// A new file for a weights upload called `name` to be received into before it is checked: hidden (so
/// [`entries`] does not list it), with the same extension (the reader goes by it), numbered (two uploads
/// of one name at once never write into the same file), and named `.upload-*`, so that one cut short by a
/// crash is removed when the studio next opens.
pub fn staging_path(weights_dir: &Path, name: &str) -> PathBuf {
    crate::files::staging_path(weights_dir, name, "")
}

/// Checks a name for an uploaded weights file: a plain file name ending in a weights extension, not
/// taken yet.
pub fn check_new_name(weights_dir: &Path, name: &str) -> Result<(), WeightsError> {
    shared::names::check_weights_name(name).map_err(WeightsError::BadName)?;
    if weights_dir.join(name).exists() {
        return Err(WeightsError::Exists(name.into()));
    }
    Ok(())
}

/// Keeps the file received at `staged` as `weights_dir/name` if it is a ResNet-18 state dict; removes
/// it whatever happens otherwise. Returns its entry.
pub fn install(
    weights_dir: &Path,
    name: &str,
    staged: &Path,
    imagenet: &PretrainedSource,
) -> Result<WeightsEntry, WeightsError> {
    let result = (|| -> Result<PathBuf, WeightsError> {
        check_new_name(weights_dir, name)?;
        if name == imagenet.file_name {
            check_checksum(staged, imagenet)?;
        }
        check_state_dict(staged, name)?;
        let target = weights_dir.join(name);
        // A hard link fails if the name was taken meanwhile, where a rename would replace the file.
        fs::hard_link(staged, &target).map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => WeightsError::Exists(name.into()),
            _ => WeightsError::Io(e),
        })?;
        Ok(target)
    })();
    let _ = fs::remove_file(staged);
    let target = result?;
    let name = name.to_string();
    let entry = if name == imagenet.file_name {
        entries(weights_dir, imagenet).swap_remove(0)
    } else {
        WeightsEntry {
            label: name.clone(),
            name,
            present: true,
            size_bytes: file_size(&target),
            download_bytes: None,
            unavailable: None,
        }
    };
    Ok(entry)
}

/// Whether every backbone tensor of ResNet-18 is in the file at `path` with its shape; messages name
/// the file `name`, not the staged file.
pub fn check_state_dict(path: &Path, name: &str) -> Result<(), WeightsError> {
    let staged_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tensors = read_tensors(path).map_err(|e| {
        let why = e.to_string().replace(&path.display().to_string(), name).replace(&staged_name, name);
        WeightsError::Unreadable(why)
    })?;
    Ok(super::architecture::check_resnet18(&tensors)?)
}

/// SHA-256 of a file, lower-case hex.
pub fn file_sha256(path: &Path) -> io::Result<String> {
    let mut hasher = Sha256::new();
    io::copy(&mut fs::File::open(path)?, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

fn check_checksum(path: &Path, source: &PretrainedSource) -> Result<(), WeightsError> {
    let found = file_sha256(path)?;
    if found.starts_with(&source.sha256_prefix.to_ascii_lowercase()) {
        Ok(())
    } else {
        Err(WeightsError::Checksum { file: source.file_name.clone(), found, expected: source.sha256_prefix.clone() })
    }
}

fn has_weights_extension(name: &str) -> bool {
    EXTENSIONS.iter().any(|extension| name.ends_with(extension))
}

fn file_size(path: &Path) -> Option<u64> {
    fs::metadata(path).ok().map(|m| m.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_being_received_and_other_kinds_of_file_are_not_listed() {
        let dir = tempfile::tempdir().unwrap();
        let imagenet = PretrainedSource::imagenet_resnet18();
        for name in ["b.pt", "a.safetensors", "notes.txt"] {
            fs::write(dir.path().join(name), b"x").unwrap();
        }
        fs::write(staging_path(dir.path(), "c.pth"), b"x").unwrap();
        let names: Vec<String> = entries(dir.path(), &imagenet).into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["imagenet", "a.safetensors", "b.pt"]);
    }

    #[test]
    fn a_refused_file_is_removed_and_a_taken_name_is_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let imagenet = PretrainedSource::imagenet_resnet18();
        let staged = staging_path(dir.path(), "w.pth");
        fs::write(&staged, b"not a checkpoint").unwrap();
        let err = install(dir.path(), "w.pth", &staged, &imagenet).unwrap_err();
        assert!(matches!(err, WeightsError::Unreadable(_)), "{err}");
        assert!(!staged.exists() && !dir.path().join("w.pth").exists());
        fs::write(dir.path().join("w.pth"), b"x").unwrap();
        assert!(matches!(check_new_name(dir.path(), "w.pth"), Err(WeightsError::Exists(_))));
        assert!(matches!(check_new_name(dir.path(), "../w.pth"), Err(WeightsError::BadName(_))));
    }
}
