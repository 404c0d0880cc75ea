//! The `"imagenet"` weights value: torchvision's `ResNet18_Weights.IMAGENET1K_V1`, published as
//! `resnet18-f37072fd.pth`.
//!
//! [`resolve`] finds the file, in order: in the weights folder under its published name (put there by
//! hand, e.g. on a machine without network); in the weights folder's `.cache/`; else it downloads it into
//! that cache, streamed to a temporary file and renamed into place once its checksum passed, so an
//! interrupted or corrupt download leaves nothing behind.

use crate::data::download::{stream_to_file, StreamError};
use sha2::Sha256;
use shared::Preparation;
use std::fs;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// The weights value that selects torchvision's ImageNet ResNet-18.
pub const IMAGENET: &str = "imagenet";
/// torchvision's file name for ImageNet ResNet-18 (IMAGENET1K_V1).
pub const RESNET18_FILE: &str = "resnet18-f37072fd.pth";
/// torchvision's official address for it.
pub const RESNET18_URL: &str = "https://download.pytorch.org/models/resnet18-f37072fd.pth";
/// The start of the file's SHA-256, as torchvision's file name carries it.
pub const RESNET18_SHA256_PREFIX: &str = "f37072fd";
/// The file's size in bytes (44.7 MB).
pub const RESNET18_BYTES: u64 = 46_830_571;
/// Folder under the weights folder that downloads are kept in.
pub const CACHE_FOLDER: &str = ".cache";
/// Largest download accepted.
const MAX_BYTES: u64 = 1 << 30;
/// Longest the availability check waits for the download address to answer.
pub const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// A pretrained weights file: its name, where to download it and the checksum it must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PretrainedSource {
    /// File name in the weights folder and in its cache.
    pub file_name: String,
    /// HTTP(S) address to download it from.
    pub url: String,
    /// Lower-case hex the file's SHA-256 must start with.
    ///
    /// torchvision publishes only the first 8 hex digits of each file's SHA-256, in its name
    /// (`resnet18-f37072fd.pth`), and `torch.hub.download_url_to_file` checks nothing more than that
    /// prefix; so this check is that prefix too, not the full digest.
    pub sha256_prefix: String,
    /// What the file is, for messages.
    pub description: String,
    /// The file's size in bytes, shown before a download.
    pub size_bytes: u64,
}

impl PretrainedSource {
    /// torchvision's ImageNet ResNet-18 from its official address.
    pub fn imagenet_resnet18() -> Self {
        PretrainedSource {
            file_name: RESNET18_FILE.into(),
            url: RESNET18_URL.into(),
            sha256_prefix: RESNET18_SHA256_PREFIX.into(),
            description: "torchvision's ImageNet ResNet-18".into(),
            size_bytes: RESNET18_BYTES,
        }
    }

    /// The same file from another address (a mirror, or a local server in tests).
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }

    /// Whether a download of the file would start now: `Err` with why not (no network, say), after at
    /// most [`PROBE_TIMEOUT`].
    pub fn downloadable(&self) -> Result<(), String> {
        crate::data::download::reachable(&self.url, PROBE_TIMEOUT)
    }

    /// The sentence that says the file is neither here nor downloadable (`why`), and what to do.
    pub fn unavailable_sentence(&self, why: &str) -> String {
        format!(
            "{} ({}) is not on this machine and cannot be downloaded from here ({why}): put {} in the weights \
             folder, or upload it with \"Upload weights…\"",
            self.description, self.file_name, self.file_name
        )
    }

    /// The file if it is already here: `weights_dir/<file>`, else `weights_dir/.cache/<file>`.
    pub fn find(&self, weights_dir: &Path) -> Option<PathBuf> {
        [weights_dir.join(&self.file_name), weights_dir.join(CACHE_FOLDER).join(&self.file_name)]
            .into_iter()
            .find(|path| path.is_file())
    }
}

/// Why the pretrained weights are not available.
#[derive(Debug, thiserror::Error)]
pub enum PretrainedError {
    /// The run that asked for the weights was stopped during the download; nothing was kept.
    #[error("the weights download was stopped")]
    Cancelled,
    /// The download failed (no network, server error).
    #[error(
        "could not download {file} from {url} ({why}). Without network, put {file} ({description}) in \
         {weights_dir} (the weights folder), or upload it in the studio with \"Upload weights…\""
    )]
    Fetch {
        /// The file name.
        file: String,
        /// What the file is.
        description: String,
        /// The address tried.
        url: String,
        /// The cause.
        why: String,
        /// Where the file can be put by hand.
        weights_dir: PathBuf,
    },
    /// The download arrived but its SHA-256 does not start with the published prefix.
    #[error(
        "the file downloaded from {url} has SHA-256 {found}, which does not start with {expected}; it was discarded"
    )]
    Checksum {
        /// The address.
        url: String,
        /// The full SHA-256 computed.
        found: String,
        /// The prefix required.
        expected: String,
    },
    /// Writing the file failed.
    #[error("could not store {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// The path of `source`'s file: `weights_dir/<file>`, else `weights_dir/.cache/<file>`, else downloaded
/// into the cache, reporting the bytes received.
pub fn resolve(
    weights_dir: &Path,
    source: &PretrainedSource,
    report: &mut dyn FnMut(Preparation) -> ControlFlow<()>,
) -> Result<PathBuf, PretrainedError> {
    if let Some(found) = source.find(weights_dir) {
        return Ok(found);
    }
    let cached = weights_dir.join(CACHE_FOLDER).join(&source.file_name);
    download(weights_dir, source, &cached, report)?;
    Ok(cached)
}

fn download(
    weights_dir: &Path,
    source: &PretrainedSource,
    target: &Path,
    report: &mut dyn FnMut(Preparation) -> ControlFlow<()>,
) -> Result<(), PretrainedError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PretrainedError::Io { path, source }
    };
    let cache = target.parent().expect("cache file has a folder");
    fs::create_dir_all(cache).map_err(io(cache))?;
    let partial = cache.join(format!(".{}.partial", source.file_name));
    let fetch_error = |why: String| PretrainedError::Fetch {
        file: source.file_name.clone(),
        description: source.description.clone(),
        url: source.url.clone(),
        why,
        weights_dir: weights_dir.to_path_buf(),
    };

    let result = (|| {
        let found = stream_to_file::<Sha256>(&source.url, &partial, &source.file_name, MAX_BYTES, report).map_err(
            |e| match e {
                StreamError::Fetch(why) => fetch_error(why),
                StreamError::Io(path, source) => PretrainedError::Io { path, source },
                StreamError::Cancelled => PretrainedError::Cancelled,
            },
        )?;
        if !found.starts_with(&source.sha256_prefix.to_ascii_lowercase()) {
            return Err(PretrainedError::Checksum {
                url: source.url.clone(),
                found,
                expected: source.sha256_prefix.clone(),
            });
        }
        fs::rename(&partial, target).map_err(io(target))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&partial);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_in_the_weights_folder_wins_over_the_cache_and_the_network() {
        let dir = tempfile::tempdir().unwrap();
        // An address nothing listens on: resolving must not need it.
        let source = PretrainedSource::imagenet_resnet18().with_url("http://127.0.0.1:9/none.pth");
        fs::create_dir_all(dir.path().join(CACHE_FOLDER)).unwrap();
        fs::write(dir.path().join(CACHE_FOLDER).join(RESNET18_FILE), b"cached").unwrap();
        let found = resolve(dir.path(), &source, &mut |_| ControlFlow::Continue(())).unwrap();
        assert_eq!(found, dir.path().join(CACHE_FOLDER).join(RESNET18_FILE));
        fs::write(dir.path().join(RESNET18_FILE), b"local").unwrap();
        assert_eq!(
            resolve(dir.path(), &source, &mut |_| ControlFlow::Continue(())).unwrap(),
            dir.path().join(RESNET18_FILE)
        );
    }

    #[test]
    fn offline_without_the_file_says_where_to_put_it() {
        let dir = tempfile::tempdir().unwrap();
        let source = PretrainedSource::imagenet_resnet18().with_url("http://127.0.0.1:9/resnet18-f37072fd.pth");
        let err = resolve(dir.path(), &source, &mut |_| ControlFlow::Continue(())).unwrap_err().to_string();
        let wanted =
            format!("put resnet18-f37072fd.pth (torchvision's ImageNet ResNet-18) in {}", dir.path().display());
        assert!(err.contains(&wanted), "{err}");
        assert!(!dir.path().join(CACHE_FOLDER).join(RESNET18_FILE).exists());
    }
}
