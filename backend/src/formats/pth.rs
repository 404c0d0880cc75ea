//! Reading PyTorch checkpoints written by `torch.save(model.state_dict(), "x.pth")`, the format of
//! torchvision's published weights, which libtorch (and so `tch`) cannot read.
//!
//! Since PyTorch 1.6 such a file is a zip archive holding, under one top folder (named after the file
//! when it was saved, so any name is accepted):
//! - `data.pkl`: a pickle (protocol 2 by default) of the state dict, a `collections.OrderedDict` whose
//!   values are `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)`
//!   calls; each storage is a persistent id `("storage", torch.FloatStorage, "<key>", "<device>", numel)`;
//! - `data/<key>`: each storage's raw bytes, little-endian (`byteorder` says so).
//!
//! The pickle is run by the restricted reader in [`crate::formats::pickle`], which refuses every global outside an
//! allow-list, so a hostile file cannot run code. Storages are loaded here, from the zip, as the pickle
//! names them.
//!
//! A zip entry can inflate a thousand times its size, so nothing is read by what the archive claims: the
//! pickle and all the tensors it builds share [`MAX_CHECKPOINT_BYTES`], each storage is charged its
//! declared size before its entry is opened, and no entry is inflated past what it was charged.

use crate::formats::pickle::{storage_bytes, unpickle_within, Value, MAX_TENSOR_BYTES};
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// Why a checkpoint could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PthError {
    /// The file could not be opened or read.
    #[error("could not read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is a pickle written without the zip container (PyTorch < 1.6 or the legacy flag).
    #[error(
        "{0} is a legacy PyTorch checkpoint (saved with _use_new_zipfile_serialization=False); \
         re-save it with PyTorch >= 1.6: torch.save(torch.load(f), f)"
    )]
    Legacy(PathBuf),
    /// The file is a TorchScript archive (`torch.jit.save`), not a state dict.
    #[error("{0} is a TorchScript archive (torch.jit.save); save the weights with torch.save(model.state_dict(), f)")]
    TorchScript(PathBuf),
    /// The zip container is damaged or lacks a part.
    #[error("{path} is not a readable PyTorch checkpoint: {why}")]
    Archive {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The pickle is malformed or uses something this reader refuses.
    #[error("{path}: cannot read the pickled state dict at byte {position}: {why}")]
    Pickle {
        /// The file.
        path: PathBuf,
        /// Offset in `data.pkl`.
        position: usize,
        /// What is wrong.
        why: String,
    },
    /// The pickle is readable but holds no tensors by name.
    #[error("{path} holds no state dict (a dict of tensors by name): {why}")]
    NotAStateDict {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        why: String,
    },
}

/// Most bytes `data.pkl` may unpack to (ResNet-18's is about 20 KB).
const MAX_PICKLE_BYTES: u64 = 64 * 1024 * 1024;
/// Most bytes a checkpoint may unpack to in all, its pickle and its tensors together: 512 MiB, where
/// ResNet-18's weights take 45 MiB and a training checkpoint holding Adam's moments in `float64` 270 MiB.
pub const MAX_CHECKPOINT_BYTES: u64 = MAX_TENSOR_BYTES;

/// Reads a PyTorch state dict: every tensor by name, in file order, contiguous and on the CPU.
///
/// Accepts the dict itself (`OrderedDict` or `dict`), or a training checkpoint dict holding it under
/// `"state_dict"`, `"model_state_dict"` or `"model"`. A `module.` prefix on every name (as
/// `DataParallel` writes) is removed. Errors name the file by its name alone, never its folder.
pub fn read_state_dict(path: &Path) -> Result<Vec<(String, Tensor)>, PthError> {
    let shown = PathBuf::from(path.file_name().unwrap_or(path.as_os_str()));
    let io = |source| PthError::Io { path: shown.clone(), source };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut magic = [0u8; 4];
    let n = read_up_to(&mut file, &mut magic).map_err(io)?;
    if n < 4 || &magic != b"PK\x03\x04" {
        if n >= 2 && magic[0] == 0x80 {
            return Err(PthError::Legacy(shown));
        }
        return Err(archive_error(&shown, "not a zip archive (is it a PyTorch checkpoint?)"));
    }
    file.rewind().map_err(io)?;
    read_state_dict_from(std::io::BufReader::new(file), &shown)
}

/// [`read_state_dict`] of a checkpoint's bytes from `reader`; `path` names it in errors.
pub(crate) fn read_state_dict_from<R: Read + Seek>(reader: R, path: &Path) -> Result<Vec<(String, Tensor)>, PthError> {
    read_state_dict_within(reader, path, MAX_CHECKPOINT_BYTES)
}

/// [`read_state_dict_from`], unpacking at most `limit` bytes in all.
fn read_state_dict_within<R: Read + Seek>(
    reader: R,
    path: &Path,
    limit: u64,
) -> Result<Vec<(String, Tensor)>, PthError> {
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| archive_error(path, &format!("damaged zip: {e}")))?;
    let prefix = pickle_prefix(&zip, path)?;
    if let Ok(entry) = zip.by_name(&format!("{prefix}byteorder")) {
        let mut order = String::new();
        let _ = entry.take(64).read_to_string(&mut order);
        if order.trim() != "little" {
            return Err(archive_error(path, &format!("byte order \"{}\" is not supported", order.trim())));
        }
    }
    let pickle = read_entry(&mut zip, &format!("{prefix}data.pkl"), MAX_PICKLE_BYTES.min(limit), path)?;
    let mut load_storage = |key: &str, kind: Kind, numel: i64| -> Result<Tensor, String> {
        if key.is_empty() || key.contains('/') || key.contains("..") {
            return Err(format!("bad storage key \"{key}\""));
        }
        let bytes = storage_bytes(kind, numel).map_err(|why| format!("storage {key}: {why}"))?;
        let data = read_entry(&mut zip, &format!("{prefix}data/{key}"), bytes, path).map_err(|e| e.to_string())?;
        storage_tensor(&data, kind, numel).map_err(|why| format!("storage {key}: {why}"))
    };
    let value = unpickle_within(&pickle, &mut load_storage, limit).map_err(|(position, why)| PthError::Pickle {
        path: path.to_path_buf(),
        position,
        why,
    })?;
    state_dict_from(value).map_err(|why| PthError::NotAStateDict { path: path.to_path_buf(), why })
}

/// The folder prefix of the archive's `data.pkl` (the shallowest one), e.g. `"archive/"`.
fn pickle_prefix<R: Read + Seek>(zip: &zip::ZipArchive<R>, path: &Path) -> Result<String, PthError> {
    let pickle_name = zip
        .file_names()
        .filter(|name| *name == "data.pkl" || name.ends_with("/data.pkl"))
        .min_by_key(|name| name.matches('/').count());
    match pickle_name {
        Some(name) => Ok(name.strip_suffix("data.pkl").unwrap_or_default().to_string()),
        None if zip.file_names().any(|name| name.ends_with("constants.pkl") || name.contains("/code/")) => {
            Err(PthError::TorchScript(path.to_path_buf()))
        }
        None => Err(archive_error(path, "no data.pkl in the archive")),
    }
}

fn read_up_to(file: &mut std::fs::File, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

fn archive_error(path: &Path, why: &str) -> PthError {
    PthError::Archive { path: path.to_path_buf(), why: why.to_string() }
}

/// An entry's bytes, refused past `limit` bytes (counting what it unpacks to, not what its header claims).
fn read_entry<R: Read + Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
    limit: u64,
    path: &Path,
) -> Result<Vec<u8>, PthError> {
    let entry = zip.by_name(name).map_err(|e| archive_error(path, &format!("{name}: {e}")))?;
    // The header's size is only a claim: reserve no more than a pickle's worth for it.
    let mut bytes = Vec::with_capacity(entry.size().min(limit).min(MAX_PICKLE_BYTES) as usize);
    entry
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| archive_error(path, &format!("{name}: {e}")))?;
    if bytes.len() as u64 > limit {
        return Err(archive_error(path, &format!("{name} unpacks to more than the {limit} bytes it may hold")));
    }
    Ok(bytes)
}

/// A 1-D tensor over a storage's bytes.
fn storage_tensor(bytes: &[u8], kind: Kind, numel: i64) -> Result<Tensor, String> {
    let expected = storage_bytes(kind, numel)?;
    // `from_data_size` copies `numel * element` bytes without checking the slice: check here.
    if (bytes.len() as u64) < expected {
        let element = kind.elt_size_in_bytes();
        return Err(format!("has {} bytes, {numel} elements of {element} bytes need more", bytes.len()));
    }
    let used = &bytes[..expected as usize];
    Tensor::f_from_data_size(used, &[numel], kind).map_err(|e| e.to_string())
}

/// Picks the tensors out of the unpickled object.
fn state_dict_from(value: Value) -> Result<Vec<(String, Tensor)>, String> {
    let Value::Dict(dict) = value else {
        return Err(format!("the pickle holds {}", value.describe()));
    };
    let entries = dict.borrow();
    let tensors: Vec<(String, Tensor)> = entries
        .iter()
        .filter_map(|(key, value)| match (key, value) {
            (Value::Str(name), Value::Tensor(t)) => Some((name.to_string(), t.shallow_clone())),
            _ => None,
        })
        .collect();
    if tensors.is_empty() {
        for wanted in ["state_dict", "model_state_dict", "model"] {
            let inner = entries.iter().find(|(k, _)| matches!(k, Value::Str(s) if &**s == wanted));
            if let Some((_, inner @ Value::Dict(_))) = inner {
                return state_dict_from(inner.clone());
            }
        }
        return Err("a dict without tensors".into());
    }
    let strip = tensors.iter().all(|(name, _)| name.starts_with("module."));
    Ok(tensors
        .into_iter()
        .map(|(name, t)| (if strip { name["module.".len()..].to_string() } else { name }, t))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::io::Write;

    /// Writes pickles by opcode, as `torch.save` does.
    #[derive(Default)]
    struct Pickle(Vec<u8>);

    impl Pickle {
        fn op(&mut self, bytes: &[u8]) -> &mut Self {
            self.0.extend_from_slice(bytes);
            self
        }
        fn string(&mut self, s: &str) -> &mut Self {
            self.0.push(b'X');
            self.0.extend_from_slice(&(s.len() as u32).to_le_bytes());
            self.op(s.as_bytes())
        }
        fn int(&mut self, v: i64) -> &mut Self {
            self.0.push(b'J');
            self.op(&(v as i32).to_le_bytes())
        }
        fn global(&mut self, module: &str, name: &str) -> &mut Self {
            self.op(format!("c{module}\n{name}\n").as_bytes())
        }
        fn ints(&mut self, values: &[i64]) -> &mut Self {
            self.op(b"(");
            for &v in values {
                self.int(v);
            }
            self.op(b"t")
        }
        /// `key: _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`
        #[allow(clippy::too_many_arguments)]
        fn tensor(
            &mut self,
            key: &str,
            storage_type: &str,
            storage: &str,
            numel: i64,
            offset: i64,
            size: &[i64],
            stride: &[i64],
        ) -> &mut Self {
            self.string(key).global("torch._utils", "_rebuild_tensor_v2").op(b"(");
            self.op(b"(")
                .string("storage")
                .global("torch", storage_type)
                .string(storage)
                .string("cpu")
                .int(numel)
                .op(b"tQ");
            self.int(offset).ints(size).ints(stride).op(b"\x89").global("collections", "OrderedDict").op(b")R");
            self.op(b"tR")
        }
    }

    fn write_checkpoint(path: &Path, folder: &str, pickle: &[u8], storages: &[(&str, Vec<u8>)]) {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        zip.start_file(format!("{folder}/data.pkl"), options).unwrap();
        zip.write_all(pickle).unwrap();
        zip.start_file(format!("{folder}/byteorder"), options).unwrap();
        zip.write_all(b"little").unwrap();
        for (key, bytes) in storages {
            zip.start_file(format!("{folder}/data/{key}"), options).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
    }

    fn le<T: Copy, const N: usize>(values: &[T], to: impl Fn(T) -> [u8; N]) -> Vec<u8> {
        values.iter().flat_map(|&v| to(v)).collect()
    }

    fn values(t: &Tensor) -> Vec<f64> {
        Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).unwrap()
    }

    #[test]
    fn reads_every_storage_type_with_offsets_and_strides() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.pth");
        let mut p = Pickle::default();
        p.op(b"\x80\x02").global("collections", "OrderedDict").op(b")R").op(b"q\x00(");
        // A transposed [2, 3] matrix: size [3, 2], stride [1, 3].
        p.tensor("a.weight", "FloatStorage", "0", 6, 0, &[3, 2], &[1, 3]);
        // A slice [2:5] of ten halves.
        p.tensor("b.half", "HalfStorage", "1", 10, 2, &[3], &[1]);
        p.tensor("c.bf16", "BFloat16Storage", "2", 2, 0, &[2], &[1]);
        p.tensor("d.num_batches_tracked", "LongStorage", "3", 1, 0, &[], &[]);
        p.tensor("e.empty", "FloatStorage", "4", 0, 0, &[0], &[1]);
        // A second view of storage 0.
        p.tensor("f.view", "FloatStorage", "0", 6, 4, &[2], &[1]);
        p.op(b"u").op(b"}").string("_metadata").op(b"}s").op(b"b.");
        let floats = le(&[0f32, 1., 2., 3., 4., 5.], f32::to_le_bytes);
        let halves: Vec<u8> = (0..10).flat_map(|i| half_bits(i as f32).to_le_bytes()).collect();
        let bf16 = le(&[0x3f80u16, 0xc000], u16::to_le_bytes); // 1.0, -2.0
        let longs = le(&[123_456_789_012i64], i64::to_le_bytes);
        write_checkpoint(
            &path,
            "some_other_name",
            &p.0,
            &[("0", floats), ("1", halves), ("2", bf16), ("3", longs), ("4", vec![])],
        );

        let tensors = read_state_dict(&path).unwrap();
        let names: Vec<&str> = tensors.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a.weight", "b.half", "c.bf16", "d.num_batches_tracked", "e.empty", "f.view"]);
        let t: HashMap<&str, &Tensor> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
        assert_eq!(t["a.weight"].size(), [3, 2]);
        assert_eq!(t["a.weight"].kind(), Kind::Float);
        assert_eq!(values(t["a.weight"]), [0., 3., 1., 4., 2., 5.]);
        assert!(t["a.weight"].is_contiguous());
        assert_eq!(t["b.half"].kind(), Kind::Half);
        assert_eq!(values(t["b.half"]), [2., 3., 4.]);
        assert_eq!((t["c.bf16"].kind(), values(t["c.bf16"])), (Kind::BFloat16, vec![1., -2.]));
        assert_eq!(t["d.num_batches_tracked"].size(), Vec::<i64>::new());
        assert_eq!(t["d.num_batches_tracked"].int64_value(&[]), 123_456_789_012);
        assert_eq!(t["e.empty"].size(), [0]);
        assert_eq!(values(t["f.view"]), [4., 5.]);
    }

    /// IEEE half bits of a small whole number.
    fn half_bits(v: f32) -> u16 {
        if v == 0.0 {
            return 0;
        }
        let exponent = v.log2().floor() as i32;
        let mantissa = ((v / 2f32.powi(exponent) - 1.0) * 1024.0) as u16;
        (((exponent + 15) as u16) << 10) | mantissa
    }

    #[test]
    fn a_nested_training_checkpoint_and_a_dataparallel_prefix_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ckpt.pt");
        let mut p = Pickle::default();
        p.op(b"\x80\x02}(").string("epoch").int(7).string("state_dict").op(b"}(");
        p.tensor("module.fc.bias", "FloatStorage", "0", 2, 0, &[2], &[1]);
        p.op(b"u").string("lr").op(b"G").op(&0.1f64.to_be_bytes()).op(b"u.");
        write_checkpoint(&path, "archive", &p.0, &[("0", le(&[1f32, 2.], f32::to_le_bytes))]);
        let tensors = read_state_dict(&path).unwrap();
        assert_eq!(tensors.len(), 1);
        assert_eq!(tensors[0].0, "fc.bias");
        assert_eq!(values(&tensors[0].1), [1., 2.]);
    }

    #[test]
    fn globals_outside_the_allow_list_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("evil.pth");
        let mut p = Pickle::default();
        p.op(b"\x80\x02").global("os", "system").op(b"(").string("touch /tmp/pwned").op(b"tR.");
        write_checkpoint(&path, "archive", &p.0, &[]);
        let err = read_state_dict(&path).unwrap_err().to_string();
        assert!(err.contains("refusing global os.system"), "{err}");
        // Also through STACK_GLOBAL (protocol 4).
        let mut p = Pickle::default();
        p.op(b"\x80\x04").string("builtins").string("eval").op(b"\x93.");
        write_checkpoint(&path, "archive", &p.0, &[]);
        let err = read_state_dict(&path).unwrap_err().to_string();
        assert!(err.contains("refusing global builtins.eval"), "{err}");
    }

    #[test]
    fn other_opcodes_bad_views_and_short_storages_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.pth");
        // INST (opcode 'i') can build arbitrary objects: refused.
        write_checkpoint(&path, "archive", b"\x80\x02(ios\nsystem\n.", &[]);
        let err = read_state_dict(&path).unwrap_err().to_string();
        assert!(err.contains("opcode 0x69 is not allowed"), "{err}");

        let mut p = Pickle::default();
        p.op(b"\x80\x02}(").tensor("w", "FloatStorage", "0", 4, 2, &[2, 2], &[2, 1]).op(b"u.");
        write_checkpoint(&path, "archive", &p.0, &[("0", le(&[0f32; 4], f32::to_le_bytes))]);
        let err = read_state_dict(&path).unwrap_err().to_string();
        assert!(err.contains("reaches past its storage of 4 elements"), "{err}");

        let mut p = Pickle::default();
        p.op(b"\x80\x02}(").tensor("w", "FloatStorage", "0", 4, 0, &[4], &[1]).op(b"u.");
        write_checkpoint(&path, "archive", &p.0, &[("0", vec![0; 12])]);
        let err = read_state_dict(&path).unwrap_err().to_string();
        assert!(err.contains("storage 0: has 12 bytes"), "{err}");

        write_checkpoint(&path, "archive", b"\x80\x02}(X\x01\x00\x00\x00a", &[]);
        let err = read_state_dict(&path).unwrap_err().to_string();
        assert!(err.contains("ends early"), "{err}");
    }

    #[test]
    fn legacy_and_non_checkpoint_files_get_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let legacy = dir.path().join("old.pth");
        std::fs::write(&legacy, b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.").unwrap();
        let err = read_state_dict(&legacy).unwrap_err().to_string();
        assert!(err.contains("_use_new_zipfile_serialization=False") && err.contains("PyTorch >= 1.6"), "{err}");

        let text = dir.path().join("notes.pth");
        std::fs::write(&text, b"hello").unwrap();
        assert!(read_state_dict(&text).unwrap_err().to_string().contains("not a zip archive"));

        let script = dir.path().join("script.pt");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&script).unwrap());
        zip.start_file("script/constants.pkl", zip::write::SimpleFileOptions::default()).unwrap();
        zip.finish().unwrap();
        assert!(read_state_dict(&script).unwrap_err().to_string().contains("TorchScript"));

        let mut p = Pickle::default();
        p.op(b"\x80\x02").int(3).op(b".");
        write_checkpoint(&dir.path().join("int.pth"), "archive", &p.0, &[]);
        let err = read_state_dict(&dir.path().join("int.pth")).unwrap_err().to_string();
        assert!(err.contains("holds no state dict") && err.contains("an int"), "{err}");
    }

    /// An archive reader that counts the bytes read from inside `watched` (one entry's compressed data).
    struct Watched<R> {
        inner: R,
        watched: std::ops::Range<u64>,
        read_inside: u64,
    }

    impl<R: Read + Seek> Read for Watched<R> {
        fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
            let start = self.inner.stream_position()?;
            let n = self.inner.read(buffer)?;
            let (from, to) = (start.max(self.watched.start), (start + n as u64).min(self.watched.end));
            self.read_inside += to.saturating_sub(from);
            Ok(n)
        }
    }

    impl<R: Seek> Seek for Watched<R> {
        fn seek(&mut self, position: std::io::SeekFrom) -> std::io::Result<u64> {
            self.inner.seek(position)
        }
    }

    /// A checkpoint whose pickle declares storage `0` as `numel` floats, and whose `data/0` entry is
    /// `inflated` zero bytes, deflated about a thousand to one; with the entry's compressed byte range.
    fn zip_bomb(numel: i64, inflated: u64) -> (Vec<u8>, std::ops::Range<u64>) {
        let mut p = Pickle::default();
        p.op(b"\x80\x02}(").tensor("w", "FloatStorage", "0", numel, 0, &[numel], &[1]).op(b"u.");
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        zip.start_file("bomb/data.pkl", stored).unwrap();
        zip.write_all(&p.0).unwrap();
        let deflated = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(inflated >= u32::MAX as u64);
        zip.start_file("bomb/data/0", deflated).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for start in (0..inflated).step_by(zeros.len()) {
            zip.write_all(&zeros[..(inflated - start).min(zeros.len() as u64) as usize]).unwrap();
        }
        let bytes = zip.finish().unwrap().into_inner();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).unwrap();
        let entry = archive.by_name("bomb/data/0").unwrap();
        let range = entry.data_start()..entry.data_start() + entry.compressed_size();
        drop(entry);
        (bytes, range)
    }

    /// Reads `archive` within `limit` bytes; the error and how many of the watched bytes were read.
    fn read_watched(archive: Vec<u8>, watched: std::ops::Range<u64>, limit: u64) -> (String, u64) {
        let mut reader = Watched { inner: std::io::Cursor::new(archive), watched, read_inside: 0 };
        let err = read_state_dict_within(&mut reader, Path::new("bomb.pth"), limit).unwrap_err().to_string();
        (err, reader.read_inside)
    }

    #[test]
    fn a_storage_declared_past_the_budget_is_refused_without_inflating_its_entry() {
        // 256 MiB of zeros in about 256 KB, declared as 2^24 floats (64 MiB), read within 32 MiB.
        let (archive, entry) = zip_bomb(1 << 24, 256 << 20);
        assert!(archive.len() < 512 << 10, "a small zip: {} bytes", archive.len());
        let (err, inflated_from) = read_watched(archive, entry, 32 << 20);
        assert!(err.starts_with("bomb.pth: cannot read the pickled state dict"), "{err}");
        assert!(err.contains("storage 0 (67108864 bytes) would take the pickle and its tensors past"), "{err}");
        assert!(err.contains("the most a checkpoint may unpack to"), "{err}");
        // Inflating 64 MiB would read a quarter of the entry; the archive's own buffering reads a little of it.
        assert!(inflated_from < 8 << 10, "read {inflated_from} bytes of the entry");
    }

    #[test]
    fn an_entry_inflating_past_its_declared_size_is_cut_off_where_it_passes_it() {
        // 256 MiB of zeros behind a storage declared as four floats.
        let (archive, entry) = zip_bomb(4, 256 << 20);
        let compressed = entry.end - entry.start;
        let (err, inflated_from) = read_watched(archive, entry, MAX_CHECKPOINT_BYTES);
        assert!(err.contains("data/0 unpacks to more than the 16 bytes it may hold"), "{err}");
        assert!(inflated_from < compressed / 4, "read {inflated_from} of the entry's {compressed} bytes");
    }

    #[test]
    fn views_larger_than_their_storage_and_impossible_sizes_are_errors_not_allocations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.pth");
        // A stride-0 view of 2^28 floats over a storage of 4: a gigabyte from 16 bytes.
        let mut p = Pickle::default();
        p.op(b"\x80\x02}(").tensor("w", "FloatStorage", "0", 4, 0, &[1 << 14, 1 << 14], &[0, 0]).op(b"u.");
        write_checkpoint(&path, "archive", &p.0, &[("0", le(&[0f32; 4], f32::to_le_bytes))]);
        let err = read_state_dict(&path).unwrap_err().to_string();
        assert!(err.contains("holds more elements than its storage of 4"), "{err}");
        assert!(err.starts_with("w.pth: "), "named without its folder: {err}");

        let mut p = Pickle::default();
        p.op(b"\x80\x02}(").tensor("w", "FloatStorage", "0", -1, 0, &[1], &[1]).op(b"u.");
        write_checkpoint(&path, "archive", &p.0, &[("0", vec![0; 4])]);
        let err = read_state_dict(&path).unwrap_err().to_string();
        assert!(err.contains("-1 elements of Float is not a valid size"), "{err}");
    }
}
