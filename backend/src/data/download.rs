//! Fetching CIFAR-10 from its official address when a run asks for the `cifar10` dataset and it is not in
//! the data folder: streamed to a temporary file, its MD5 checked against the published one, unpacked
//! into a temporary folder and renamed into place, so a failed or interrupted download leaves nothing.

use md5::{Digest, Md5};
use shared::{Preparation, PreparationStep};
use std::fs;
use std::io::{Read, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Dataset name that triggers the download.
pub const CIFAR10_NAME: &str = "cifar10";
/// The official archive of CIFAR-10's binary version.
pub const CIFAR10_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
/// MD5 of that archive as published on the CIFAR page.
pub const CIFAR10_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";
/// Least time between two progress reports.
pub const REPORT_INTERVAL: Duration = Duration::from_millis(250);

/// Where an archive comes from and the checksum it must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadSource {
    /// HTTP(S) address of a `.tar.gz` archive.
    pub url: String,
    /// Expected MD5, lower-case hex.
    pub md5: String,
}

impl DownloadSource {
    /// CIFAR-10's official binary archive.
    pub fn cifar10() -> Self {
        DownloadSource { url: CIFAR10_URL.into(), md5: CIFAR10_MD5.into() }
    }
}

/// Why a download did not produce a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The server could not be reached or answered with an error.
    #[error(
        "could not download CIFAR-10 from {url} ({why}). Without network, download cifar-10-binary.tar.gz \
         elsewhere and unpack it so that {expected} in the data folder holds data_batch_1.bin … test_batch.bin"
    )]
    Fetch {
        /// The address tried.
        url: String,
        /// The cause.
        why: String,
        /// The folder the files belong in, relative to the data folder.
        expected: PathBuf,
    },
    /// The archive arrived but its checksum is wrong.
    #[error("the CIFAR-10 archive from {url} has MD5 {found}, expected {expected}; it was discarded")]
    Checksum {
        /// The address.
        url: String,
        /// The MD5 computed.
        found: String,
        /// The MD5 required.
        expected: String,
    },
    /// The run that asked for it was stopped; nothing was kept.
    #[error("the CIFAR-10 download was stopped")]
    Cancelled,
    /// Writing or unpacking failed.
    #[error("could not store the CIFAR-10 archive in {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Why [`stream_to_file`] did not produce a file.
#[derive(Debug)]
pub enum StreamError {
    /// The server could not be reached, answered with an error, or the body broke off.
    Fetch(String),
    /// The file could not be written.
    Io(PathBuf, std::io::Error),
    /// The report callback asked to stop.
    Cancelled,
}

/// Whether `url` answers a `HEAD` request with success within `timeout`: a download from it would start.
/// `Err` says why not (no network, no such host, the server's status).
pub fn reachable(url: &str, timeout: Duration) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(timeout)).build().into();
    agent.head(url).call().map(drop).map_err(|e| e.to_string())
}

/// Streams `url` into the file `dest` (at most `limit` bytes), hashing every byte with `D`, and reports
/// the bytes received as [`PreparationStep::Downloading`] of `subject` at most every [`REPORT_INTERVAL`]
/// and once at the end; a report answered with `ControlFlow::Break` stops the download. Returns the hex
/// digest. On any failure or stop the partial file is removed.
pub fn stream_to_file<D: Digest>(
    url: &str,
    dest: &Path,
    subject: &str,
    limit: u64,
    report: &mut dyn FnMut(Preparation) -> ControlFlow<()>,
) -> Result<String, StreamError> {
    let io = |e| StreamError::Io(dest.to_path_buf(), e);
    let result = (|| {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_recv_body(Some(Duration::from_secs(60)))
            .build()
            .into();
        let mut response = agent.get(url).call().map_err(|e| StreamError::Fetch(e.to_string()))?;
        let total: Option<u64> =
            response.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        let mut body = response.body_mut().with_config().limit(limit).reader();
        let mut file = fs::File::create(dest).map_err(io)?;
        let mut hasher = D::new();
        let mut buffer = vec![0u8; 1 << 16];
        let mut received: u64 = 0;
        let progress = |done| Preparation {
            step: PreparationStep::Downloading,
            subject: subject.to_string(),
            done,
            total,
            per_second: None,
        };
        let mut report = |done| if report(progress(done)).is_break() { Err(StreamError::Cancelled) } else { Ok(()) };
        report(0)?;
        let mut last_report = Instant::now();
        loop {
            let n = body.read(&mut buffer).map_err(|e| StreamError::Fetch(e.to_string()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            file.write_all(&buffer[..n]).map_err(io)?;
            received += n as u64;
            if last_report.elapsed() >= REPORT_INTERVAL {
                last_report = Instant::now();
                report(received)?;
            }
        }
        report(received)?;
        file.sync_all().map_err(io)?;
        Ok(hex::encode(hasher.finalize()))
    })();
    if result.is_err() {
        let _ = fs::remove_file(dest);
    }
    result
}

/// Downloads `source` and unpacks it to `data_dir/cifar10/`, reporting bytes downloaded and files unpacked;
/// a report answered with `ControlFlow::Break` stops it, leaving nothing behind.
pub fn fetch_cifar10(
    data_dir: &Path,
    source: &DownloadSource,
    report: &mut dyn FnMut(Preparation) -> ControlFlow<()>,
) -> Result<(), DownloadError> {
    let target = data_dir.join(CIFAR10_NAME);
    // Messages name files relative to the data folder, never where the server keeps it.
    let shown = |path: &Path| match path.strip_prefix(data_dir) {
        Ok(relative) if relative.as_os_str().is_empty() => PathBuf::from("the data folder"),
        Ok(relative) => relative.to_path_buf(),
        Err(_) => path.to_path_buf(),
    };
    let io = |path: &Path| {
        let path = shown(path);
        move |source| DownloadError::Io { path, source }
    };
    fs::create_dir_all(data_dir).map_err(io(data_dir))?;
    let archive = data_dir.join(".cifar10.tar.gz.partial");
    let fetch_error = |why: String| DownloadError::Fetch {
        url: source.url.clone(),
        why,
        expected: Path::new(CIFAR10_NAME).join(crate::data::CIFAR_BIN_FOLDER),
    };

    let found = stream_to_file::<Md5>(&source.url, &archive, "CIFAR-10", 1 << 30, report).map_err(|e| match e {
        StreamError::Fetch(why) => fetch_error(why),
        StreamError::Io(path, source) => DownloadError::Io { path: shown(&path), source },
        StreamError::Cancelled => DownloadError::Cancelled,
    })?;
    if found != source.md5 {
        let _ = fs::remove_file(&archive);
        return Err(DownloadError::Checksum { url: source.url.clone(), found, expected: source.md5.clone() });
    }

    let staging = data_dir.join(".cifar10.partial");
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging).map_err(io(&staging))?;
    let unpacked = unpack(&archive, &staging, report);
    let _ = fs::remove_file(&archive);
    if let Err(error) = unpacked {
        let _ = fs::remove_dir_all(&staging);
        if error.kind() == std::io::ErrorKind::Interrupted {
            return Err(DownloadError::Cancelled);
        }
        return Err(io(&staging)(error));
    }
    fs::rename(&staging, &target).map_err(io(&target))?;
    Ok(())
}

/// Unpacks a `.tar.gz` into `dest` entry by entry (`unpack_in` refuses paths that leave `dest`),
/// reporting each file; a stop is an `Interrupted` error.
fn unpack(archive: &Path, dest: &Path, report: &mut dyn FnMut(Preparation) -> ControlFlow<()>) -> std::io::Result<()> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(fs::File::open(archive)?));
    for (unpacked, entry) in tar.entries()?.enumerate() {
        entry?.unpack_in(dest)?;
        let done = unpacked as u64 + 1;
        let preparation = Preparation {
            step: PreparationStep::Unpacking,
            subject: "CIFAR-10".into(),
            done,
            total: None,
            per_second: None,
        };
        if report(preparation).is_break() {
            return Err(std::io::Error::new(std::io::ErrorKind::Interrupted, "stopped"));
        }
    }
    Ok(())
}
