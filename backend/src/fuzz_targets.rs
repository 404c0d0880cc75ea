//! Property-based fuzz targets, one per parser of outside bytes: the pickle reader, the CIFAR binary
//! and python readers, the `.pth` reader, the zip unpacker and image decoding.
//!
//! Each feeds arbitrary bytes and mutated valid inputs (bytes flipped, overwritten with boundary values
//! or lengths, inserted, removed, the input cut short) and requires an answer, `Ok` or `Err`: a panic
//! fails the case, an abort (stack overflow, allocation failure) fails the run. The number of cases
//! comes from `PROPTEST_CASES` (proptest's default 256 when unset), so `make test` runs them briefly and
//! `make fuzz` runs 100,000 each. Every target's name starts with `fuzz_`, so one filter selects them.
//!
//! cargo-fuzz needs a nightly compiler; these run on stable with the rest of the tests.

use crate::{data, data::images, data::upload, formats::pickle, formats::pth};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use std::io::{Cursor, Write};
use std::path::Path;
use tch::{Kind, Tensor};

/// A scratch folder in memory where the system has one (`/dev/shm`): the file-based targets run about
/// 20 times faster there than on a journalled disk.
fn scratch() -> tempfile::TempDir {
    let in_memory = Path::new("/dev/shm");
    let dir = if in_memory.is_dir() { in_memory.to_path_buf() } else { std::env::temp_dir() };
    tempfile::tempdir_in(dir).unwrap()
}

/// Proptest's defaults (which read `PROPTEST_CASES`), without writing failures into the source tree.
fn config() -> ProptestConfig {
    ProptestConfig { failure_persistence: None, ..ProptestConfig::default() }
}

/// One change to an input.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(Index, u8),
    Set(Index, u8),
    /// A little-endian length-like number written over four bytes.
    Number(Index, u32),
    Insert(Index, Vec<u8>),
    Remove(Index, usize),
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let boundary = select(vec![0u8, 1, 0x7f, 0x80, 0xff, b'(', b'.', b']', b'}', b'a', b'e', b'u']);
    let number = prop_oneof![select(vec![0u32, 1, 0xff, 0xffff, 0x7fff_ffff, u32::MAX]), any::<u32>()];
    prop_oneof![
        4 => (any::<Index>(), 1..=255u8).prop_map(|(at, bits)| Mutation::Flip(at, bits)),
        2 => (any::<Index>(), boundary).prop_map(|(at, value)| Mutation::Set(at, value)),
        2 => (any::<Index>(), number).prop_map(|(at, value)| Mutation::Number(at, value)),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(at, b)| Mutation::Insert(at, b)),
        1 => (any::<Index>(), 1..64usize).prop_map(|(at, n)| Mutation::Remove(at, n)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for mutation in mutations {
        if bytes.is_empty() {
            break;
        }
        let len = bytes.len();
        let at = |index: &Index| index.index(len);
        match mutation {
            Mutation::Flip(index, bits) => bytes[at(index)] ^= bits,
            Mutation::Set(index, value) => bytes[at(index)] = *value,
            Mutation::Number(index, value) => {
                let start = at(index);
                for (i, byte) in value.to_le_bytes().into_iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(start + i) {
                        *slot = byte;
                    }
                }
            }
            Mutation::Insert(index, inserted) => {
                let start = at(index);
                bytes.splice(start..start, inserted.iter().copied());
            }
            Mutation::Remove(index, n) => {
                let start = at(index);
                bytes.drain(start..(start + n).min(bytes.len()));
            }
            Mutation::Truncate(index) => bytes.truncate(at(index)),
        }
    }
    bytes
}

/// Arbitrary bytes (one case in five) or one of `seeds` changed in one to eight places.
fn inputs(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let mutated =
        (select(seeds), prop::collection::vec(mutation(), 1..8)).prop_map(|(seed, mutations)| apply(seed, &mutations));
    prop_oneof![1 => prop::collection::vec(any::<u8>(), 0..512), 4 => mutated]
}

/// Pickle opcodes (with their arguments) that the reader knows, for [`opcode_soup`].
const PICKLE_TOKENS: [&[u8]; 32] = [
    b"(",
    b")",
    b"]",
    b"}",
    b"N",
    b"K\x05",
    b"J\xff\xff\xff\x7f",
    b"\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x40",
    b"X\x01\x00\x00\x00k",
    b"U\x01k",
    b"T\x04\x00\x00\x00data",
    b"\x85",
    b"\x86",
    b"\x87",
    b"t",
    b"l",
    b"d",
    b"a",
    b"e",
    b"s",
    b"u",
    b"2",
    b"0",
    b"1",
    b"q\x00",
    b"h\x00",
    b"\x94",
    b"b",
    b"R",
    b"cnumpy\ndtype\n",
    b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n",
    b"ccollections\nOrderedDict\n",
];

/// Up to 300 known opcodes in any order, then STOP: reaches the machine's logic (depth, memo, dicts,
/// arrays) that random bytes rarely get past the first opcode to.
fn opcode_soup() -> impl Strategy<Value = Vec<u8>> {
    // Pushes (the first ten tokens) four times as likely as the rest, so the stack is rarely empty.
    let weighted: Vec<&[u8]> =
        PICKLE_TOKENS.iter().enumerate().flat_map(|(i, token)| vec![*token; if i < 10 { 4 } else { 1 }]).collect();
    prop::collection::vec(select(weighted), 0..300).prop_map(|tokens| [tokens.concat(), b".".to_vec()].concat())
}

/// Valid CIFAR-10 python files (`test_batch` of two records, `batches.meta`) and binary `test_batch.bin`.
fn cifar_seeds() -> (Vec<Vec<u8>>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let record = |i: usize| ((i % 3) as u8, (0..3072).map(|p| (p * 7 + i) as u8).collect());
    data::write_cifar_python(dir.path(), &["a", "b", "c"], 1, 2, record).unwrap();
    data::write_cifar_binary(dir.path(), &["a", "b", "c"], 1, 2, record).unwrap();
    let read = |file: &str| std::fs::read(dir.path().join(file)).unwrap();
    (vec![read("test_batch"), read("batches.meta")], read("test_batch.bin"))
}

/// A state dict pickle as `torch.save` writes it: `{"w": FloatStorage "0" of 6, viewed [2, 3]}`.
fn state_dict_pickle() -> Vec<u8> {
    let mut p = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01X\x01\x00\x00\x00wq\x02".to_vec();
    p.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\nq\x03((X\x07\x00\x00\x00storageq\x04");
    p.extend_from_slice(b"ctorch\nFloatStorage\nq\x05X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06tq\x06Q");
    p.extend_from_slice(b"K\x00K\x02K\x03\x86K\x03K\x01\x86\x89h\x00)Rq\x07tq\x08Rq\x09s}X\x09\x00\x00\x00_metadata");
    p.extend_from_slice(b"}sb.");
    p
}

/// A `.pth` zip around `pickle`, with storage `0` of six floats.
fn pth_archive(pickle: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let storage: Vec<u8> = (0..6).flat_map(|i| (i as f32).to_le_bytes()).collect();
    for (name, bytes) in [("w/data.pkl", pickle), ("w/byteorder", b"little"), ("w/data/0", &storage)] {
        zip.start_file(name, options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// An 8x8 picture in each format the studio reads.
fn image_seeds() -> Vec<Vec<u8>> {
    let picture = image::RgbImage::from_fn(8, 8, |x, y| image::Rgb([x as u8 * 30, y as u8 * 30, 128]));
    let formats = [image::ImageFormat::Png, image::ImageFormat::Jpeg, image::ImageFormat::Gif, image::ImageFormat::Bmp];
    let mut seeds: Vec<Vec<u8>> = formats
        .into_iter()
        .map(|format| {
            let mut out = Cursor::new(Vec::new());
            picture.write_to(&mut out, format).unwrap();
            out.into_inner()
        })
        .collect();
    let mut webp = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(picture).to_rgba8().write_to(&mut webp, image::ImageFormat::WebP).unwrap();
    seeds.push(webp.into_inner());
    seeds
}

/// A zip of a class-folder dataset: two classes of two tiny PNGs each.
fn dataset_zip() -> Vec<u8> {
    let png = image_seeds().swap_remove(0);
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for name in ["set/cat/1.png", "set/cat/2.png", "set/dog/1.png", "set/dog/2.png"] {
        zip.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(&png).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// A zip of the entries given, names and contents as they are; `None` where the zip writer refuses
/// them (it refuses a repeated name).
fn zip_of(entries: &[(String, Vec<u8>)]) -> Option<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes) in entries {
        zip.start_file(name.as_str(), zip::write::SimpleFileOptions::default()).ok()?;
        zip.write_all(bytes).ok()?;
    }
    zip.finish().ok().map(Cursor::into_inner)
}

/// Storages for pickles that ask for them: zeros, when small.
fn small_storages(_: &str, kind: Kind, numel: i64) -> Result<Tensor, String> {
    match numel {
        0..=4096 => Ok(Tensor::zeros([numel], (kind, tch::Device::Cpu))),
        _ => Err("too large for the fuzz target".into()),
    }
}

/// Installs the zip `bytes` as a dataset in a fresh data folder, then lists and loads it.
fn unpack_and_use(bytes: &[u8]) {
    let dir = scratch();
    let archive = dir.path().join("upload.zip");
    std::fs::write(&archive, bytes).unwrap();
    let data_dir = dir.path().join("data");
    std::fs::create_dir(&data_dir).unwrap();
    if upload::install_zip_dataset(&data_dir, "set", &archive, &Default::default()).is_ok() {
        if let Ok(source) = data::inspect(&data_dir, "set") {
            let _ = data::load(&source, 8, 0.5, 0);
        }
    }
    let _ = data::discover(&data_dir);
}

/// Writes `test_batch` as a CIFAR-10 binary dataset's test file, then lists, loads and shows it.
fn use_cifar_binary(test_batch: &[u8]) {
    let dir = scratch();
    let root = dir.path().join("set");
    data::write_cifar_binary(&root, &["a", "b", "c"], 0, 0, |_| (0, Vec::new())).unwrap();
    std::fs::write(root.join("test_batch.bin"), test_batch).unwrap();
    let _ = data::discover(dir.path());
    if let Ok(source) = data::inspect(dir.path(), "set") {
        let _ = data::load(&source, 32, 0.2, 0);
        for index in [0, 1, source.info.test_count] {
            let _ = data::test_image(&source, 0.2, 0, index);
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_pickle_reader(bytes in prop_oneof![inputs([cifar_seeds().0, vec![state_dict_pickle()]].concat()), opcode_soup()]) {
        if let Ok(value) = pickle::unpickle(&bytes, &mut small_storages) {
            if let Some(pickle::Value::Array(array)) = value.get("data") {
                let _ = array.borrow().to_tensor(Kind::Uint8);
            }
        }
    }

    #[test]
    fn fuzz_cifar_binary_reader(bytes in inputs(vec![cifar_seeds().1])) {
        use_cifar_binary(&bytes);
    }

    #[test]
    fn fuzz_cifar_python_reader(bytes in inputs(cifar_seeds().0)) {
        let _ = data::parse_cifar10_files(&bytes);
    }

    #[test]
    fn fuzz_pth_reader(bytes in inputs(vec![pth_archive(&state_dict_pickle())])) {
        let _ = pth::read_state_dict_from(Cursor::new(bytes), Path::new("w.pth"));
    }

    #[test]
    fn fuzz_pth_reader_pickle(pickle in inputs(vec![state_dict_pickle()])) {
        let _ = pth::read_state_dict_from(Cursor::new(pth_archive(&pickle)), Path::new("w.pth"));
    }

    #[test]
    fn fuzz_zip_unpacker(bytes in inputs(vec![dataset_zip()])) {
        unpack_and_use(&bytes);
    }

    #[test]
    fn fuzz_zip_unpacker_names(entries in prop::collection::vec(("[a-c./]{0,10}", prop::collection::vec(any::<u8>(), 0..8)), 1..6)) {
        if let Some(zip) = zip_of(&entries) {
            unpack_and_use(&zip);
        }
    }

    #[test]
    fn fuzz_image_decoding(bytes in inputs(image_seeds())) {
        let _ = images::decode_to_chw(&bytes, 16, images::Admission::Unmetered);
    }
}

#[test]
fn the_seeds_are_valid_inputs() {
    let (python, binary) = cifar_seeds();
    assert_eq!(data::parse_cifar10_files(&python[0]), Ok(2));
    assert_eq!(data::parse_cifar10_files(&python[1]), Ok(3), "three class names");
    assert_eq!(binary.len(), 2 * 3073);
    let tensors =
        pth::read_state_dict_from(Cursor::new(pth_archive(&state_dict_pickle())), Path::new("w.pth")).unwrap();
    assert_eq!((tensors[0].0.as_str(), tensors[0].1.size()), ("w", vec![2, 3]));
    for seed in image_seeds() {
        assert_eq!(images::decode_to_chw(&seed, 16, images::Admission::Unmetered).unwrap().len(), 3 * 16 * 16);
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("set.zip"), dataset_zip()).unwrap();
    let info =
        upload::install_zip_dataset(dir.path(), "set", &dir.path().join("set.zip"), &Default::default()).unwrap();
    assert_eq!(info.classes, ["cat", "dog"]);
}
