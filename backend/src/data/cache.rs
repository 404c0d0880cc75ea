//! The decoded cache: a dataset's images decoded once, at a run's input size, into one record file in the
//! data folder's `.decoded/` folder, which later runs map instead of decoding again (FFCV's raw mode, its
//! smallest step).
//!
//! A cache is named by its key: the SHA-256 of everything its bytes depend on (the layout, the classes,
//! each source file's path, size and modification time with its label and split, a version's edits, the
//! input size and the resize method), as make and cargo decide what is stale. A dataset that changed gets
//! a new key, so it is never read through an old cache; the old cache of the same dataset and input size is
//! removed once the new one is complete.
//!
//! File layout (integers little-endian):
//! - bytes `0..4096`: `TSDECODE`, the format version (u32), the header's length (u32), the header as JSON
//!   ([`Header`]), zeros;
//! - from byte 4096: the training images, then the test images, `[N, 3, S, S]` u8 each;
//! - the training labels, then the test labels, i64 each;
//! - the rest of what a run needs ([`Meta`], JSON), its SHA-256 in the header.
//!
//! The file is built under a temporary name, its header written last, synced and renamed when complete,
//! so a cache is whole or absent. Each open checks its header, its length, its labels and its meta's
//! hash; a cache that fails is removed and built again. The pixels are not re-hashed on open (that would
//! read the whole file): their hashes at build time are what the run's receipt records.
//!
//! One build at a time per key, across threads and processes (a Slurm job on another node shares the
//! data folder): the builder holds an exclusive lock on `<key>.lock`, and the others wait for it, then map
//! what it built.

use super::decoding::{decode_into, ImageSink, SourceFiles};
use super::{DataError, Dataset, DatasetSource, Progress, Split};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::DecodedCacheInfo;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tch::{Device, Kind, Tensor};

/// The data folder's folder of decoded caches (hidden, so never listed as a dataset).
pub const CACHE_FOLDER: &str = ".decoded";
/// The first bytes of every cache file.
const MAGIC: &[u8; 8] = b"TSDECODE";
/// This layout's version; a cache of another is built again.
const FORMAT_VERSION: u32 = 1;
/// Bytes before the first image: the header block, a page, so the images start page-aligned.
const HEADER_BYTES: u64 = 4096;
/// How images are brought to the input size. Part of every key: change it whenever decoding or resizing
/// changes what a pixel becomes, and every cache is built again.
const RESIZE_METHOD: &str = "image-triangle+torch-bilinear-round/1";
/// Most bytes the meta may take (a million test paths fit).
const MAX_META_BYTES: u64 = 256 << 20;
/// A cache file's extension.
const EXTENSION: &str = "records";
/// How often a run waiting for another's build looks again.
const WAIT_STEP: Duration = Duration::from_millis(100);

/// The header: what the file holds and how to check it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Header {
    key: String,
    dataset: String,
    input_size: u32,
    resize: String,
    train: u64,
    test: u64,
    train_pixels_sha256: String,
    test_pixels_sha256: String,
    meta_len: u64,
    meta_sha256: String,
    file_len: u64,
    /// Seconds since the Unix epoch.
    built_at: u64,
}

/// What a run needs of its dataset besides pixels and labels.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Meta {
    pub(super) classes: Vec<String>,
    pub(super) test_paths: Vec<String>,
    /// Images left out because they could not be decoded, one sentence each.
    pub(super) unreadable: Vec<String>,
}

/// How a dataset is decoded for a run: what a cache is keyed by besides the files.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recipe {
    /// Side of every image, in pixels.
    pub input_size: u32,
    /// Fraction of an image-folder dataset held out for testing.
    pub validation_fraction: f64,
    /// Seed of that split.
    pub seed: u64,
}

/// The folder of `data_dir`'s decoded caches.
pub fn cache_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(CACHE_FOLDER)
}

/// The cache of `source` decoded by `recipe`, built now if missing, stale or damaged (reporting
/// `progress(done, total)` in images), or waited for while another run builds it. Its images stay in the
/// file, mapped: see [`Split::in_memory`] for a copy.
pub(super) fn open_or_build(
    source: &DatasetSource,
    recipe: &Recipe,
    progress: &mut Progress,
) -> Result<Dataset, DataError> {
    let dir = cache_dir(source.data_dir());
    fs::create_dir_all(&dir).map_err(|e| cache_io(&dir, e))?;
    // Listed once: the key names exactly the files a build then decodes.
    let files = SourceFiles::list(source, recipe)?;
    let key = key(source, recipe, &files);
    let path = dir.join(format!("{key}.{EXTENSION}"));
    let total = (source.info.train_count + source.info.test_count) as u64;
    loop {
        if let Some(dataset) = open_valid(&path, &key)? {
            return Ok(dataset);
        }
        let lock = dir.join(format!("{key}.lock"));
        let lock = File::create(&lock).map_err(|e| cache_io(&lock, e))?;
        match lock.try_lock() {
            Ok(()) => {
                // Another run may have finished the build between the look and the lock.
                if let Some(dataset) = open_valid(&path, &key)? {
                    return Ok(dataset);
                }
                build(source, (&files, recipe), &key, &path, progress)?;
                remove_stale(&dir, source, recipe, &key);
                drop(lock);
            }
            Err(fs::TryLockError::WouldBlock) => {
                progress(0, total)?;
                std::thread::sleep(WAIT_STEP);
            }
            Err(fs::TryLockError::Error(e)) => return Err(cache_io(&dir, e)),
        }
    }
}

/// The caches in `data_dir`, largest first.
pub fn list(data_dir: &Path) -> Vec<DecodedCacheInfo> {
    let Ok(entries) = fs::read_dir(cache_dir(data_dir)) else { return Vec::new() };
    let mut found: Vec<DecodedCacheInfo> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().extension().is_some_and(|e| e == EXTENSION))
        .filter_map(|entry| read_header(&entry.path()).ok())
        .map(|header| DecodedCacheInfo {
            id: header.key,
            dataset: header.dataset,
            input_size: header.input_size,
            images: header.train + header.test,
            bytes: header.file_len,
            built_at: header.built_at,
        })
        .collect();
    found.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.id.cmp(&b.id)));
    found
}

/// Removes cache `id` from `data_dir`; false when there is none of that id. A run training from it keeps
/// reading it (its mapping holds the file) and the next run builds it again.
pub fn remove(data_dir: &Path, id: &str) -> io::Result<bool> {
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
        return Ok(false);
    }
    match fs::remove_file(cache_dir(data_dir).join(format!("{id}.{EXTENSION}"))) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The key of `source`, made of `files`, decoded by `recipe`: see the module's documentation.
fn key(source: &DatasetSource, recipe: &Recipe, files: &SourceFiles) -> String {
    let mut hash = Sha256::new();
    let mut line = |text: String| {
        hash.update(text.as_bytes());
        hash.update(b"\n");
    };
    line(format!("transfer-studio decoded cache {FORMAT_VERSION} {RESIZE_METHOD}"));
    line(format!("{} {:?} {}", source.info.name, source.info.format, recipe.input_size));
    line(source.info.classes.join("\u{1f}"));
    for (split, files) in files.by_split() {
        for (label, file) in files {
            let (len, modified) = fs::metadata(file)
                .map(|m| (m.len(), m.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok())))
                .unwrap_or((u64::MAX, None));
            let nanos = modified.map_or(0, |t| t.as_nanos());
            line(format!("{split} {label} {} {len} {nanos}", file.display()));
        }
    }
    if let Some(edits) = &source.edits {
        line(edits.digest());
    }
    hex::encode(hash.finalize())
}

/// The cache at `path` when it is whole and of `key`; `None` when there is none, or there was a damaged
/// one (removed, so it is built again).
fn open_valid(path: &Path, key: &str) -> Result<Option<Dataset>, DataError> {
    if !path.exists() {
        return Ok(None);
    }
    match open(path, key) {
        Ok(dataset) => Ok(Some(dataset)),
        Err(why) => {
            tracing::warn!("decoded cache {} is damaged ({why}); building it again", path.display());
            fs::remove_file(path).map_err(|e| cache_io(path, e))?;
            Ok(None)
        }
    }
}

/// Maps the cache at `path`, checking it; an error says what is wrong with it.
fn open(path: &Path, key: &str) -> Result<Dataset, String> {
    let header = read_header(path)?;
    let actual_len = fs::metadata(path).map_err(|e| e.to_string())?.len();
    if header.key != key || actual_len != header.file_len {
        return Err(format!("{actual_len} bytes where the header says {}", header.file_len));
    }
    let layout = Layout::of(&header);
    if layout.meta_offset + header.meta_len != header.file_len || header.meta_len > MAX_META_BYTES {
        return Err("its parts do not add up to its length".into());
    }
    let mut file = File::open(path).map_err(|e| e.to_string())?;
    let labels = read_at(&mut file, layout.labels_offset, (header.train + header.test) * 8)?;
    let meta_bytes = read_at(&mut file, layout.meta_offset, header.meta_len)?;
    if hex::encode(Sha256::digest(&meta_bytes)) != header.meta_sha256 {
        return Err("its meta does not match its hash".into());
    }
    let meta: Meta = serde_json::from_slice(&meta_bytes).map_err(|e| e.to_string())?;
    let labels: Vec<i64> =
        labels.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap_or_default())).collect();
    if labels.iter().any(|&label| label < 0 || label as usize >= meta.classes.len()) {
        return Err("a label is outside its classes".into());
    }
    let file_str = path.to_str().ok_or("its path is not UTF-8")?;
    let all = Tensor::f_from_file(file_str, false, header.file_len as i64, (Kind::Uint8, Device::Cpu))
        .map_err(|e| e.to_string())?;
    let split = |offset: u64, count: u64, labels: &[i64]| -> Result<Split, tch::TchError> {
        let side = i64::from(header.input_size);
        let images = all.f_narrow(0, offset as i64, count as i64 * layout.image_bytes as i64)?;
        Ok(Split { images: images.f_view([count as i64, 3, side, side])?, labels: Tensor::from_slice(labels) })
    };
    let (train_labels, test_labels) = labels.split_at(header.train as usize);
    let train = split(HEADER_BYTES, header.train, train_labels).map_err(|e| e.to_string())?;
    let test = split(layout.test_offset, header.test, test_labels).map_err(|e| e.to_string())?;
    Ok(Dataset {
        classes: meta.classes,
        train,
        test,
        unreadable: meta.unreadable,
        test_paths: meta.test_paths,
        pixels_sha256: Some([header.train_pixels_sha256, header.test_pixels_sha256]),
    })
}

/// Where each part of a cache starts.
struct Layout {
    image_bytes: u64,
    test_offset: u64,
    labels_offset: u64,
    meta_offset: u64,
}

impl Layout {
    fn of(header: &Header) -> Self {
        let side = u64::from(header.input_size);
        let image_bytes = 3 * side * side;
        let test_offset = HEADER_BYTES + header.train * image_bytes;
        let labels_offset = test_offset + header.test * image_bytes;
        Layout {
            image_bytes,
            test_offset,
            labels_offset,
            meta_offset: labels_offset + (header.train + header.test) * 8,
        }
    }
}

/// The header of the cache at `path`.
fn read_header(path: &Path) -> Result<Header, String> {
    let mut file = File::open(path).map_err(|e| e.to_string())?;
    let block = read_at(&mut file, 0, HEADER_BYTES)?;
    if &block[..8] != MAGIC {
        return Err("it is not a decoded cache".into());
    }
    let version = u32::from_le_bytes([block[8], block[9], block[10], block[11]]);
    let len = u32::from_le_bytes([block[12], block[13], block[14], block[15]]) as usize;
    if version != FORMAT_VERSION || len > block.len() - 16 {
        return Err(format!("format {version}, not {FORMAT_VERSION}"));
    }
    serde_json::from_slice(&block[16..16 + len]).map_err(|e| format!("its header is unreadable: {e}"))
}

/// `len` bytes of `file` from `offset`; an error when the file ends first.
fn read_at(file: &mut File, offset: u64, len: u64) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(offset)).map_err(|e| e.to_string())?;
    file.take(len).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if (bytes.len() as u64) < len {
        return Err("it ends early".into());
    }
    Ok(bytes)
}

/// Decodes `source`, its listed files by its recipe, into a new cache at `path`: under a temporary name,
/// renamed when whole. A failed build (a full disk, a stop) leaves nothing behind.
fn build(
    source: &DatasetSource,
    input: (&SourceFiles, &Recipe),
    key: &str,
    path: &Path,
    progress: &mut Progress,
) -> Result<(), DataError> {
    let partial = path.with_extension(format!("{}.partial", std::process::id()));
    remove_partials(path);
    let written = write_cache(source, input, key, &partial, progress).and_then(|()| {
        fs::rename(&partial, path).map_err(|e| cache_io(path, e))?;
        crate::files::sync_folder(path.parent().unwrap_or(path)).map_err(|e| cache_io(path, e))
    });
    if written.is_err() {
        let _ = fs::remove_file(&partial);
    }
    written
}

/// Removes what builds cut short by a crash left: those of this key (the caller holds its lock), and
/// those of any other key whose lock is free (no build of it is under way, here or in another process).
fn remove_partials(path: &Path) {
    let (Some(dir), Some(own)) = (path.parent(), path.file_stem().and_then(|s| s.to_str())) else { return };
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(key) = name.strip_suffix(".partial").and_then(|rest| rest.split('.').next()) else { continue };
        let abandoned =
            key == own || File::open(dir.join(format!("{key}.lock"))).is_ok_and(|lock| lock.try_lock().is_ok());
        if abandoned {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Writes the whole cache file at `partial`.
fn write_cache(
    source: &DatasetSource,
    (files, recipe): (&SourceFiles, &Recipe),
    key: &str,
    partial: &Path,
    progress: &mut Progress,
) -> Result<(), DataError> {
    let io_error = |e| cache_io(partial, e);
    let total = (source.info.train_count + source.info.test_count) as u64;
    check_free_space(partial, total, recipe.input_size)?;
    let file = File::create(partial).map_err(io_error)?;
    let mut sink = RecordWriter::new(file).map_err(io_error)?;
    let decoded = decode_into(source, files, recipe.input_size, &mut sink, progress)?;
    let (train, test) = (decoded.train_labels.len() as u64, decoded.test_labels.len() as u64);
    let [train_pixels_sha256, test_pixels_sha256] = sink.split_hashes();
    let mut file = sink.finish().map_err(io_error)?;
    for label in decoded.train_labels.iter().chain(&decoded.test_labels) {
        file.write_all(&label.to_le_bytes()).map_err(io_error)?;
    }
    let meta = serde_json::to_vec(&decoded.meta).map_err(|e| DataError::Decode(e.to_string()))?;
    file.write_all(&meta).map_err(io_error)?;
    let file_len = file.stream_position().map_err(io_error)?;
    let header = Header {
        key: key.to_string(),
        dataset: source.info.name.clone(),
        input_size: recipe.input_size,
        resize: RESIZE_METHOD.into(),
        train,
        test,
        train_pixels_sha256,
        test_pixels_sha256,
        meta_len: meta.len() as u64,
        meta_sha256: hex::encode(Sha256::digest(&meta)),
        file_len,
        built_at: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
    };
    let mut file = file.into_inner().map_err(|e| io_error(e.into_error()))?;
    write_header(&mut file, &header).map_err(io_error)?;
    crate::fault::point("decoded-cache-sync").map_err(io_error)?;
    file.sync_all().map_err(io_error)
}

/// Writes `header` into the first block of `file`.
fn write_header(file: &mut File, header: &Header) -> io::Result<()> {
    let json = serde_json::to_vec(header).map_err(io::Error::other)?;
    let mut block = vec![0u8; HEADER_BYTES as usize];
    if json.len() > block.len() - 16 {
        return Err(io::Error::other("the header is too long"));
    }
    block[..8].copy_from_slice(MAGIC);
    block[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    block[12..16].copy_from_slice(&(json.len() as u32).to_le_bytes());
    block[16..16 + json.len()].copy_from_slice(&json);
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&block)
}

/// Refuses, before decoding, a build the disk cannot hold: `images` images of `side` pixels.
fn check_free_space(partial: &Path, images: u64, side: u32) -> Result<(), DataError> {
    let needed = HEADER_BYTES + images * (3 * u64::from(side) * u64::from(side) + 8);
    let dir = partial.parent().unwrap_or(partial);
    match free_bytes(dir) {
        Some(free) if free < needed => Err(DataError::TooLarge {
            path: dir.to_path_buf(),
            why: format!(
                "decoding {images} images of {side} x {side} pixels needs {} on disk and {} is free: free some \
                 space (remove decoded caches you no longer use) or lower the input size",
                super::decoding::memory_size(needed),
                super::decoding::memory_size(free)
            ),
        }),
        _ => Ok(()),
    }
}

/// Bytes free to this user on the file system holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a NUL-terminated string and `stats` a statvfs the call fills.
    let status = unsafe { libc::statvfs(path.as_ptr(), &mut stats) };
    (status == 0).then(|| stats.f_bavail as u64 * stats.f_frsize as u64)
}

/// Once a new cache of `source` at `recipe`'s size is complete, removes the others of that dataset and
/// size: their files changed, so no run will read them again.
fn remove_stale(dir: &Path, source: &DatasetSource, recipe: &Recipe, key: &str) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.filter_map(Result::ok) {
        let Ok(header) = read_header(&entry.path()) else { continue };
        if header.key != key && header.dataset == source.info.name && header.input_size == recipe.input_size {
            let _ = fs::remove_file(entry.path());
            let _ = fs::remove_file(dir.join(format!("{}.lock", header.key)));
        }
    }
}

fn cache_io(path: &Path, source: io::Error) -> DataError {
    DataError::CacheWrite { path: path.to_path_buf(), source }
}

/// Bytes written between two requests to the kernel to start writing them to the disk.
const WRITEBACK_STEP: u64 = 64 << 20;

/// Writes decoded images after the header block, hashing each split's pixels as they go.
struct RecordWriter {
    file: BufWriter<File>,
    hash: Sha256,
    /// Hash of the training images, once they are all written.
    train_hash: Option<String>,
    /// Bytes written to the file so far, header included.
    written: u64,
    /// Bytes whose writing to the disk has been started.
    written_back: u64,
}

impl RecordWriter {
    fn new(file: File) -> io::Result<Self> {
        let mut file = BufWriter::with_capacity(8 << 20, file);
        file.write_all(&[0u8; HEADER_BYTES as usize])?;
        Ok(RecordWriter { file, hash: Sha256::new(), train_hash: None, written: HEADER_BYTES, written_back: 0 })
    }

    /// Every [`WRITEBACK_STEP`] bytes, asks the kernel to start writing what was written since the last
    /// time to the disk, without waiting for it (`sync_file_range`, as RocksDB's `bytes_per_sync` does):
    /// the disk then works while images are decoded, and the `fsync` that ends a build has only the tail
    /// left to wait for, instead of the whole file. The final `fsync` is what makes the file durable; this
    /// only moves work earlier, so its outcome is not needed.
    fn start_writeback(&mut self) -> io::Result<()> {
        if self.written - self.written_back < WRITEBACK_STEP {
            return Ok(());
        }
        self.file.flush()?;
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let (start, len) =
                (self.written_back as libc::off64_t, (self.written - self.written_back) as libc::off64_t);
            // SAFETY: the descriptor is this writer's open file; the call reads no memory of ours.
            unsafe { libc::sync_file_range(self.file.get_ref().as_raw_fd(), start, len, libc::SYNC_FILE_RANGE_WRITE) };
        }
        self.written_back = self.written;
        Ok(())
    }

    /// The hashes of the training images and of the test images.
    fn split_hashes(&mut self) -> [String; 2] {
        let test = hex::encode(std::mem::take(&mut self.hash).finalize());
        [self.train_hash.take().unwrap_or_default(), test]
    }

    fn finish(mut self) -> io::Result<BufWriter<File>> {
        self.file.flush()?;
        Ok(self.file)
    }
}

impl ImageSink for RecordWriter {
    fn push(&mut self, pixels: &[u8]) -> Result<(), DataError> {
        self.hash.update(pixels);
        let io_error = |e| cache_io(Path::new(CACHE_FOLDER), e);
        crate::fault::point("decoded-cache-write").map_err(io_error)?;
        self.file.write_all(pixels).map_err(io_error)?;
        self.written += pixels.len() as u64;
        self.start_writeback().map_err(io_error)
    }

    fn end_train(&mut self) {
        self.train_hash = Some(hex::encode(std::mem::take(&mut self.hash).finalize()));
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::solid_png;
    use super::super::{inspect, load_reporting};
    use super::*;
    use std::ops::ControlFlow;
    use std::sync::{Arc, Barrier};

    /// A class-folder dataset `name` of two classes, `per_class` training and 2 test images each.
    fn write_dataset(data: &Path, name: &str, per_class: u32) {
        for (split, count) in [("train", per_class), ("test", 2)] {
            for (class, rgb) in [("blue", [0, 0, 255]), ("red", [255, 0, 0])] {
                for i in 0..count {
                    solid_png(&data.join(format!("{name}/{split}/{class}/{i}.png")), rgb, 20 + i);
                }
            }
        }
    }

    const RECIPE: Recipe = Recipe { input_size: 16, validation_fraction: 0.2, seed: 0 };

    /// Loads `name` through its cache, returning the dataset and how many images this call decoded.
    fn load_counting(data: &Path, name: &str) -> (Dataset, u64) {
        let mut decoded = 0;
        let dataset = load_reporting(&inspect(data, name).unwrap(), &RECIPE, &mut |done, _| {
            decoded = decoded.max(done);
            ControlFlow::Continue(())
        })
        .unwrap();
        (dataset, decoded)
    }

    fn cache_files(data: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = fs::read_dir(cache_dir(data))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == EXTENSION || e == "partial"))
            .collect();
        files.sort();
        files
    }

    #[test]
    fn a_second_load_maps_the_cache_without_decoding_and_gives_the_same_tensors() {
        let data = tempfile::tempdir().unwrap();
        write_dataset(data.path(), "shapes", 3);
        let (first, decoded) = load_counting(data.path(), "shapes");
        assert_eq!(decoded, 10, "the first load decodes every image");
        let (second, decoded) = load_counting(data.path(), "shapes");
        assert_eq!(decoded, 0, "the second decodes none");
        assert!(first.train.images.equal(&second.train.images) && first.test.labels.equal(&second.test.labels));
        assert_eq!(second.train.images.size(), [6, 3, 16, 16]);
        assert_eq!(second.classes, ["blue", "red"]);
        assert_eq!(second.test_paths, ["test/blue/0.png", "test/blue/1.png", "test/red/0.png", "test/red/1.png"]);
        let listed = list(data.path());
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].dataset.as_str(), listed[0].input_size, listed[0].images), ("shapes", 16, 10));
        assert_eq!(listed[0].bytes, fs::metadata(&cache_files(data.path())[0]).unwrap().len());
    }

    #[test]
    fn a_changed_image_makes_a_new_cache_and_the_stale_one_goes() {
        let data = tempfile::tempdir().unwrap();
        write_dataset(data.path(), "shapes", 3);
        let (before, _) = load_counting(data.path(), "shapes");
        let old = cache_files(data.path());
        // The first training image (blue) becomes green.
        solid_png(&data.path().join("shapes/train/blue/0.png"), [0, 255, 0], 20);
        let (after, decoded) = load_counting(data.path(), "shapes");
        assert_eq!(decoded, 10, "decoded again");
        assert_eq!(after.train.images.int64_value(&[0, 1, 4, 4]), 255, "the new pixels are read");
        assert_eq!(before.train.images.int64_value(&[0, 1, 4, 4]), 0);
        let now = cache_files(data.path());
        assert_eq!(now.len(), 1, "one cache of this dataset and size: {now:?}");
        assert_ne!(now, old);
    }

    #[test]
    fn a_truncated_or_damaged_cache_is_built_again() {
        let data = tempfile::tempdir().unwrap();
        write_dataset(data.path(), "shapes", 2);
        let (whole, _) = load_counting(data.path(), "shapes");
        let file = cache_files(data.path()).remove(0);
        let bytes = fs::read(&file).unwrap();
        let damages: [(&str, Vec<u8>); 4] = [
            ("truncated", bytes[..bytes.len() - 100].to_vec()),
            ("empty", Vec::new()),
            ("meta changed", [&bytes[..bytes.len() - 3], b"!!!"].concat()),
            ("header garbled", [&b"garbage!"[..], &bytes[8..]].concat()),
        ];
        for (damage, damaged) in damages {
            fs::write(&file, damaged).unwrap();
            let (again, decoded) = load_counting(data.path(), "shapes");
            assert_eq!(decoded, 8, "{damage}: decoded again");
            assert!(again.train.images.equal(&whole.train.images), "{damage}");
            assert_eq!(fs::read(&file).unwrap().len(), bytes.len(), "{damage}: rebuilt whole");
        }
    }

    #[test]
    fn runs_starting_at_once_share_one_build() {
        let data = Arc::new(tempfile::tempdir().unwrap());
        write_dataset(data.path(), "shapes", 40);
        let start = Arc::new(Barrier::new(4));
        let loads: Vec<_> = (0..4)
            .map(|_| {
                let (data, start) = (data.clone(), start.clone());
                std::thread::spawn(move || {
                    let source = inspect(data.path(), "shapes").unwrap();
                    let (mut decoded, mut zero_reports) = (0, 0);
                    start.wait();
                    let dataset = load_reporting(&source, &RECIPE, &mut |done, _| {
                        if done == 0 {
                            zero_reports += 1;
                        } else if decoded == 0 {
                            // The builder takes its time, so the others find the build under way.
                            std::thread::sleep(Duration::from_millis(400));
                        }
                        decoded = decoded.max(done);
                        ControlFlow::Continue(())
                    });
                    (Vec::<i64>::try_from(&dataset.unwrap().train.labels).unwrap(), decoded, zero_reports)
                })
            })
            .collect();
        let results: Vec<(Vec<i64>, u64, u32)> = loads.into_iter().map(|load| load.join().unwrap()).collect();
        let counts: Vec<(u64, u32)> = results.iter().map(|r| (r.1, r.2)).collect();
        assert_eq!(counts.iter().filter(|(decoded, _)| *decoded > 0).count(), 1, "exactly one decoded: {counts:?}");
        assert!(counts.iter().any(|&(decoded, zeros)| decoded == 0 && zeros >= 2), "others waited: {counts:?}");
        assert!(results.iter().all(|(labels, ..)| *labels == results[0].0 && labels.len() == 80));
        assert_eq!(cache_files(data.path()).len(), 1, "one file, no partial left");
    }

    #[test]
    fn a_version_gets_a_cache_of_its_own_with_its_edits() {
        let data = tempfile::tempdir().unwrap();
        write_dataset(data.path(), "shapes", 3);
        let (original, _) = load_counting(data.path(), "shapes");
        let added = crate::data::versions::add_image(
            data.path(),
            "shapes",
            &std::fs::read(data.path().join("shapes/train/red/2.png")).unwrap(),
            &crate::memory::MemoryBudget::default(),
        )
        .unwrap();
        let edits = shared::DatasetEdits {
            exclude: vec!["train/blue/0.png".into(), "train/blue/1.png".into()],
            add: [(added, "blue".to_string())].into(),
            ..Default::default()
        };
        let version = crate::data::versions::create(data.path(), "shapes", &edits, 0).unwrap();
        let (edited, decoded) = load_counting(data.path(), &version.name);
        assert_eq!(decoded, 9, "the version is decoded: 6 - 2 + 1 training images and 4 test images");
        assert_eq!(Vec::<i64>::try_from(&edited.train.labels).unwrap(), [0, 0, 1, 1, 1]);
        // The added (red) image is a blue training image of the version.
        let added_red = (0..2).any(|row| edited.train.images.int64_value(&[row, 0, 2, 2]) == 255);
        assert!(added_red, "the added image is among the blue ones");
        assert_eq!(cache_files(data.path()).len(), 2, "the dataset's cache stays beside the version's");
        let (again, decoded) = load_counting(data.path(), "shapes");
        assert_eq!(decoded, 0);
        assert!(again.train.images.equal(&original.train.images));
    }

    #[test]
    fn a_cifar_dataset_is_cached_and_a_rewritten_batch_file_invalidates_it() {
        let data = tempfile::tempdir().unwrap();
        let write = |shade: u8| {
            let folder = data.path().join("c10").join(super::super::CIFAR_BIN_FOLDER);
            super::super::write_cifar_binary(&folder, &["a", "b"], 3, 2, |i| ((i % 2) as u8, vec![shade; 3072]))
                .unwrap();
        };
        write(10);
        let (first, decoded) = load_counting(data.path(), "c10");
        assert_eq!((decoded, first.train.images.size()), (17, vec![15, 3, 16, 16]), "15 training and 2 test records");
        let (_, decoded) = load_counting(data.path(), "c10");
        assert_eq!(decoded, 0, "mapped, not read again");
        write(200);
        let (changed, decoded) = load_counting(data.path(), "c10");
        assert_eq!((decoded, changed.test.images.int64_value(&[1, 2, 3, 3])), (17, 200), "the new records are read");
        assert_eq!(cache_files(data.path()).len(), 1, "the stale cache is gone");
    }

    #[test]
    fn a_partial_build_is_removed_unless_its_build_is_under_way() {
        let data = tempfile::tempdir().unwrap();
        write_dataset(data.path(), "shapes", 2);
        let dir = cache_dir(data.path());
        fs::create_dir_all(&dir).unwrap();
        let (abandoned, building) = ("a".repeat(64), "b".repeat(64));
        for key in [&abandoned, &building] {
            fs::write(dir.join(format!("{key}.records.7.partial")), b"half").unwrap();
            File::create(dir.join(format!("{key}.lock"))).unwrap();
        }
        let held = File::open(dir.join(format!("{building}.lock"))).unwrap();
        held.lock().unwrap();
        load_counting(data.path(), "shapes");
        let left: Vec<String> =
            cache_files(data.path()).iter().map(|p| p.file_name().unwrap().to_string_lossy().into()).collect();
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left.iter().any(|name| name.starts_with(&building)), "the build under way keeps its file: {left:?}");
        assert!(!left.iter().any(|name| name.starts_with(&abandoned)), "the abandoned one goes: {left:?}");
    }

    #[test]
    fn only_a_cache_id_names_a_file_to_remove() {
        let data = tempfile::tempdir().unwrap();
        write_dataset(data.path(), "shapes", 2);
        load_counting(data.path(), "shapes");
        for hostile in ["../shapes", "", "x".repeat(64).as_str(), &"A".repeat(64)] {
            assert!(!remove(data.path(), hostile).unwrap(), "{hostile}");
        }
        let id = list(data.path())[0].id.clone();
        assert!(remove(data.path(), &id).unwrap());
        assert!(list(data.path()).is_empty() && !remove(data.path(), &id).unwrap());
        assert!(data.path().join("shapes/train/blue/0.png").is_file(), "the dataset is untouched");
    }
}
