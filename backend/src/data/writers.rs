//! Writing CIFAR-format files (binary batches and python pickles), for tests, benchmarks and exports.

use super::*;

/// Writes CIFAR-10 binary batches for tests and benchmarks: `per_file` records in each of the five
/// training files and `test_count` in the test file; `record(index)` gives each label and its 3x32x32
/// pixels (red, green, blue planes).
pub fn write_cifar_binary(
    dir: &Path,
    classes: &[&str],
    per_file: usize,
    test_count: usize,
    record: impl FnMut(usize) -> (u8, Vec<u8>),
) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    fs::write(dir.join(CIFAR_META_FILE), classes.join("\n") + "\n")?;
    let files = CIFAR_TRAIN_FILES.iter().chain([&CIFAR_TEST_FILE]);
    for (file, records) in files.zip(cifar_batches(per_file, test_count, record)) {
        let bytes: Vec<u8> = records.into_iter().flat_map(|(label, pixels)| [vec![label], pixels]).flatten().collect();
        fs::write(dir.join(file), bytes)?;
    }
    Ok(())
}

/// Writes CIFAR-10 "python version" batches byte for byte as the official archive has them (Python 2
/// `cPickle`, protocol 2: byte-string keys, `data` a NumPy `uint8` array `[N, 3072]`, `labels` a list),
/// with the same arguments as [`write_cifar_binary`].
pub fn write_cifar_python(
    dir: &Path,
    classes: &[&str],
    per_file: usize,
    test_count: usize,
    record: impl FnMut(usize) -> (u8, Vec<u8>),
) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let mut meta = PickleWriter::dict();
    meta.bytes(b"num_cases_per_batch").int(per_file as u32).bytes(b"label_names").op(b"](");
    for class in classes {
        meta.bytes(class.as_bytes());
    }
    meta.op(b"e").bytes(b"num_vis").int(3 * 32 * 32);
    fs::write(dir.join(CIFAR10_PICKLED.meta_file), meta.end_dict())?;
    let files = CIFAR10_PICKLED.train_files.iter().chain([&CIFAR10_PICKLED.test_file]);
    for (file, records) in files.zip(cifar_batches(per_file, test_count, record)) {
        let mut batch = PickleWriter::dict();
        batch.bytes(b"data").op(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R(K\x01");
        batch.int(records.len() as u32).int(3 * 32 * 32).op(b"\x86cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R");
        batch.op(b"(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89");
        let pixels: Vec<u8> = records.iter().flat_map(|(_, pixels)| pixels.iter().copied()).collect();
        batch.bytes(&pixels).op(b"tb").bytes(b"labels").op(b"](");
        for (label, _) in &records {
            batch.int(u32::from(*label));
        }
        batch.op(b"e").bytes(b"batch_label").bytes(file.as_bytes());
        fs::write(dir.join(file), batch.end_dict())?;
    }
    Ok(())
}

/// The records of CIFAR-10's six batch files (five training, one test), from `record(index)`.
pub(super) fn cifar_batches(
    per_file: usize,
    test_count: usize,
    mut record: impl FnMut(usize) -> (u8, Vec<u8>),
) -> Vec<Vec<(u8, Vec<u8>)>> {
    let mut index = 0;
    let counts = [per_file; 5].into_iter().chain([test_count]);
    counts
        .map(|count| {
            (0..count)
                .map(|_| {
                    let (label, pixels) = record(index);
                    assert_eq!(pixels.len(), CIFAR_RECORD - 1, "a CIFAR record holds 3x32x32 pixels");
                    index += 1;
                    (label, pixels)
                })
                .collect()
        })
        .collect()
}

/// Writes Python 2 protocol-2 pickles opcode by opcode, as `cPickle` does.
pub(super) struct PickleWriter(Vec<u8>);

impl PickleWriter {
    /// Opens a dict whose items follow.
    pub(super) fn dict() -> Self {
        PickleWriter(b"\x80\x02}(".to_vec())
    }

    pub(super) fn op(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.extend_from_slice(bytes);
        self
    }

    /// A Python 2 `str` (bytes).
    pub(super) fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        match u8::try_from(bytes.len()) {
            Ok(short) => self.op(&[b'U', short]),
            Err(_) => self.op(b"T").op(&(bytes.len() as u32).to_le_bytes()),
        }
        .op(bytes)
    }

    pub(super) fn int(&mut self, value: u32) -> &mut Self {
        match (u8::try_from(value), u16::try_from(value)) {
            (Ok(byte), _) => self.op(&[b'K', byte]),
            (_, Ok(short)) => self.op(b"M").op(&short.to_le_bytes()),
            _ => self.op(b"J").op(&value.to_le_bytes()),
        }
    }

    /// Closes the dict opened by [`PickleWriter::dict`] and the pickle.
    pub(super) fn end_dict(&mut self) -> Vec<u8> {
        self.op(b"u.");
        std::mem::take(&mut self.0)
    }
}
