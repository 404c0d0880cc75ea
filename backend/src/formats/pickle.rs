//! A restricted pickle reader: enough of Python's pickle virtual machine to read what `torch.save` writes
//! for state dicts and what NumPy writes for arrays (CIFAR's "python version" batches), and nothing more.
//!
//! Only the opcodes those writers emit are known, and only an allow-list of globals resolves: the tensor
//! and parameter rebuild functions, the storage types, `OrderedDict`, NumPy's array and dtype
//! reconstruction and `_codecs.encode` (how Python 3 pickles `bytes` at protocol 2). Any other global
//! (`os.system`, `builtins.eval`, ...) or opcode is refused, so a hostile file cannot run code: nothing
//! is ever imported or called beyond building tensors and arrays from bytes.
//!
//! The reader is total: any input gives a value or an error, never a panic. Containers nest at most
//! [`MAX_DEPTH`] deep (checked as they are built, so deep values are never made), and dropping a value
//! takes its containers apart with a work list, not recursion; a list or dict cannot change once it is inside another container (Python's
//! pickler never does that, and it keeps depths true and rules out cycles); the stack, marks and memo
//! are capped ([`MAX_VALUES`], [`MAX_MEMO`]); dicts are indexed by key, so building one is linear; sizes,
//! shapes and strides use checked arithmetic; lengths are checked against the input before anything is
//! allocated. The tensors a pickle builds (the storages it asks for, which a compressed checkpoint could
//! inflate without end, and the copies its strided views make) share one byte budget
//! ([`MAX_TENSOR_BYTES`], or the caller's), checked before each storage is loaded or each copy is made.
//!
//! No crate fitted: `serde-pickle` 1.2 refuses `BINPERSID` (persistent ids, which carry every storage)
//! and can only replace unknown globals by `None`, losing the `_rebuild_tensor_v2` arguments and NumPy's
//! array bytes; `candle-core`'s reader pulls in a whole tensor library; `pickle` on crates.io is unrelated.

use std::cell::{Cell, Ref, RefCell};
use std::collections::hash_map::{Entry, HashMap};
use std::fmt;
use std::rc::Rc;
use tch::{Kind, Tensor};

/// Deepest nesting of tuples, lists and dicts accepted (Python's own recursion limit). State dicts and
/// CIFAR batches nest under 5 deep.
pub(crate) const MAX_DEPTH: usize = 1000;
/// Most values a pickle may push in all (each costs 24 bytes or more): far above the ~200,000 of
/// CIFAR-100's training batch.
pub(crate) const MAX_VALUES: usize = 4_000_000;
/// Most memo entries a pickle may hold (CIFAR-100's training batch memoises ~50,000 file names).
pub(crate) const MAX_MEMO: usize = 1_000_000;
/// Most bytes one pickle and its tensors may take in all: the pickle, the storages it loads and the
/// copies its strided views make. ResNet-18's weights take 45 MiB (a training checkpoint with Adam's two moments
/// 135 MiB, in `float64` 270 MiB), so 512 MiB admits every real one.
pub(crate) const MAX_TENSOR_BYTES: u64 = 512 << 20;
/// Byte strings at least this long remember where they start in the pickle (see [`Array::data_offset`]).
const BLOB_MIN: usize = 1024;

/// The globals a pickle may name; everything else is refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    Storage(Kind),
    /// `numpy.core.multiarray._reconstruct(ndarray, shape, typecode)`: an empty array that `BUILD` fills.
    NumpyReconstruct,
    NumpyNdarray,
    /// `numpy.dtype(descr, align, copy)`; `BUILD` then sets its byte order.
    NumpyDtype,
    /// `_codecs.encode(text, "latin1")`: Python 3's `bytes` at protocols 0 to 2.
    CodecsEncode,
}

fn resolve_global(module: &str, name: &str) -> Option<Global> {
    Some(match (module, name) {
        ("collections", "OrderedDict") => Global::OrderedDict,
        ("numpy.core.multiarray" | "numpy._core.multiarray", "_reconstruct") => Global::NumpyReconstruct,
        ("numpy", "ndarray") => Global::NumpyNdarray,
        ("numpy", "dtype") => Global::NumpyDtype,
        ("_codecs", "encode") => Global::CodecsEncode,
        ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensorV2,
        ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
        ("torch", storage) => Global::Storage(match storage {
            "FloatStorage" => Kind::Float,
            "HalfStorage" => Kind::Half,
            "BFloat16Storage" => Kind::BFloat16,
            "DoubleStorage" => Kind::Double,
            "LongStorage" => Kind::Int64,
            "IntStorage" => Kind::Int,
            "ShortStorage" => Kind::Int16,
            "CharStorage" => Kind::Int8,
            "ByteStorage" => Kind::Uint8,
            "BoolStorage" => Kind::Bool,
            _ => return None,
        }),
        _ => return None,
    })
}

/// A value on the pickle machine's stack. Containers are shared, as Python objects are, so that a
/// memoised dict sees the items set on it later.
#[derive(Clone)]
// Scalars and bytes in a checkpoint (an epoch count, a learning rate) are kept as read though only
// tensors are used.
#[allow(dead_code)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Tuple(Rc<Node<Vec<Value>>>),
    List(Rc<Node<Vec<Value>>>),
    Dict(Rc<Node<DictItems>>),
    Global(Global),
    /// A storage from a persistent id: a 1-D tensor of its elements.
    Storage(Rc<Tensor>),
    Tensor(Rc<Tensor>),
    /// A NumPy dtype; filled in by `BUILD`.
    Dtype(Rc<RefCell<Dtype>>),
    /// A NumPy array; filled in by `BUILD`.
    Array(Rc<RefCell<Array>>),
}

/// A tuple's, list's or dict's items, with how deep containers nest in it (1 for one holding no
/// container) and whether it has been put inside another container, after which it may not change.
pub(crate) struct Node<T: Children> {
    items: RefCell<T>,
    depth: Cell<usize>,
    nested: Cell<bool>,
}

/// What a container holds, taken out so that dropping it does not recurse.
pub(crate) trait Children {
    /// Moves every value held into `out`.
    fn take_children(&mut self, out: &mut Vec<Value>);
}

impl Children for Vec<Value> {
    fn take_children(&mut self, out: &mut Vec<Value>) {
        out.append(self);
    }
}

impl Children for DictItems {
    fn take_children(&mut self, out: &mut Vec<Value>) {
        self.index.clear();
        out.extend(self.pairs.drain(..).flat_map(|(key, value)| [key, value]));
    }
}

/// Drops the containers below with a work list instead of recursion, so no nesting depth can overflow
/// the stack.
impl<T: Children> Drop for Node<T> {
    fn drop(&mut self) {
        let mut pending = Vec::new();
        self.items.get_mut().take_children(&mut pending);
        while let Some(value) = pending.pop() {
            match value {
                Value::Tuple(node) | Value::List(node) => {
                    if let Some(mut node) = Rc::into_inner(node) {
                        node.items.get_mut().take_children(&mut pending);
                    }
                }
                Value::Dict(node) => {
                    if let Some(mut node) = Rc::into_inner(node) {
                        node.items.get_mut().take_children(&mut pending);
                    }
                }
                _ => {}
            }
        }
    }
}

impl<T: Children> Node<T> {
    fn new(items: T, depth: usize) -> Rc<Self> {
        Rc::new(Node { items: RefCell::new(items), depth: Cell::new(depth), nested: Cell::new(false) })
    }

    /// The items.
    pub fn borrow(&self) -> Ref<'_, T> {
        self.items.borrow()
    }

    /// Refuses changes once the container is inside another one.
    fn check_open(&self, what: &str) -> Result<(), String> {
        if self.nested.get() {
            return Err(format!("a {what} is changed after it was put inside another container"));
        }
        Ok(())
    }
}

/// A dict's items in insertion order, indexed by their `str` and `bytes` keys: a repeated key replaces
/// the earlier value, as in Python, in constant time.
#[derive(Default)]
pub(crate) struct DictItems {
    pairs: Vec<(Value, Value)>,
    index: HashMap<Key, usize>,
}

#[derive(PartialEq, Eq, Hash)]
enum Key {
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
}

impl DictItems {
    /// The key-value pairs in insertion order.
    pub fn iter(&self) -> std::slice::Iter<'_, (Value, Value)> {
        self.pairs.iter()
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    fn insert(&mut self, key: Value, value: Value) {
        let indexed = match &key {
            Value::Str(text) => Key::Str(text.clone()),
            Value::Bytes(bytes) => Key::Bytes(bytes.clone()),
            _ => {
                self.pairs.push((key, value));
                return;
            }
        };
        match self.index.entry(indexed) {
            Entry::Occupied(at) => self.pairs[*at.get()].1 = value,
            Entry::Vacant(at) => {
                at.insert(self.pairs.len());
                self.pairs.push((key, value));
            }
        }
    }

    /// The value under `key` as a `str` or as UTF-8 `bytes`, whichever came first.
    fn get_text(&self, key: &str) -> Option<&Value> {
        let as_str = self.index.get(&Key::Str(key.into()));
        let as_bytes = self.index.get(&Key::Bytes(key.as_bytes().into()));
        as_str.into_iter().chain(as_bytes).min().map(|&i| &self.pairs[i].1)
    }
}

/// A NumPy dtype as pickled: its type string (`"u1"`, `"i8"`, `"f4"`) and byte order (`|`, `<`, `>`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Dtype {
    pub descr: String,
    pub byte_order: char,
}

/// A NumPy array as pickled: shape, element type, memory order and raw bytes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Array {
    pub shape: Vec<i64>,
    pub dtype: Dtype,
    pub fortran_order: bool,
    pub data: Rc<[u8]>,
    /// Where `data` starts in the pickle, when it was stored there as one byte string, so a reader can
    /// later fetch part of it from the file without unpickling again.
    pub data_offset: Option<usize>,
}

impl Array {
    /// Number of elements the shape holds; an error for a negative dimension or an overflowing product.
    pub fn numel(&self) -> Result<usize, String> {
        self.shape.iter().try_fold(1usize, |product, &d| {
            usize::try_from(d)
                .ok()
                .and_then(|d| product.checked_mul(d))
                .ok_or_else(|| format!("array shape {} has no valid element count", shape_text(&self.shape)))
        })
    }

    /// The array as a C-ordered tensor of `kind` (element width checked against the bytes).
    pub fn to_tensor(&self, kind: Kind) -> Result<Tensor, String> {
        let element = kind.elt_size_in_bytes();
        let little_or_single = self.dtype.byte_order != '>' || element == 1;
        if !little_or_single {
            return Err(format!("big-endian array dtype {}", self.dtype.descr));
        }
        let numel = self.numel()?;
        if numel.checked_mul(element) != Some(self.data.len()) {
            return Err(format!(
                "array of shape {} and dtype {} does not match its {} bytes",
                shape_text(&self.shape),
                self.dtype.descr,
                self.data.len()
            ));
        }
        let flat = Tensor::f_from_data_size(&self.data, &[numel as i64], kind).map_err(|e| e.to_string())?;
        let shaped = if self.fortran_order {
            let reversed: Vec<i64> = self.shape.iter().rev().copied().collect();
            let dims: Vec<i64> = (0..self.shape.len() as i64).rev().collect();
            flat.f_reshape(&reversed).and_then(|t| t.f_permute(&dims)).and_then(|t| t.f_contiguous())
        } else {
            flat.f_reshape(&self.shape)
        };
        shaped.map_err(|e| e.to_string())
    }
}

/// A shape for messages, cut short after eight dimensions.
fn shape_text(shape: &[i64]) -> String {
    if shape.len() <= 8 {
        return format!("{shape:?}");
    }
    format!("{:?} and {} more dimensions", &shape[..8], shape.len() - 8)
}

impl Value {
    /// The value under a `str` or `bytes` key of a dict (Python 2 pickles key by bytes).
    pub fn get(&self, key: &str) -> Option<Value> {
        let Value::Dict(dict) = self else { return None };
        dict.borrow().get_text(key).cloned()
    }

    /// What kind of value this is, for error messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "a bool",
            Value::Int(_) => "an int",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "a tuple",
            Value::List(_) => "a list",
            Value::Dict(_) => "a dict",
            Value::Global(_) => "a global",
            Value::Storage(_) => "a storage",
            Value::Tensor(_) => "a tensor",
            Value::Dtype(_) => "a dtype",
            Value::Array(_) => "an array",
        }
    }

    /// How deep containers nest in this value: 0 for a scalar.
    fn depth(&self) -> usize {
        match self {
            Value::Tuple(node) | Value::List(node) => node.depth.get(),
            Value::Dict(node) => node.depth.get(),
            _ => 0,
        }
    }

    /// Marks a container as held by another one, so it no longer changes.
    fn nest(&self) {
        match self {
            Value::Tuple(node) | Value::List(node) => node.nested.set(true),
            Value::Dict(node) => node.nested.set(true),
            _ => {}
        }
    }

    /// True when both are the same list or dict.
    fn is_same_container(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::List(a), Value::List(b)) => Rc::ptr_eq(a, b),
            (Value::Dict(a), Value::Dict(b)) => Rc::ptr_eq(a, b),
            _ => false,
        }
    }

    fn new_tuple(items: Vec<Value>) -> Result<Value, String> {
        let depth = depth_holding(&items)?;
        Ok(Value::Tuple(Node::new(items, depth)))
    }

    fn new_list(items: Vec<Value>) -> Result<Value, String> {
        let depth = depth_holding(&items)?;
        Ok(Value::List(Node::new(items, depth)))
    }

    fn new_dict(pairs: Vec<(Value, Value)>) -> Result<Value, String> {
        let dict = Value::Dict(Node::new(DictItems::default(), 1));
        set_items(&dict, pairs)?;
        Ok(dict)
    }
}

/// Shallow on purpose: a derived `Debug` would recurse as deep as the value nests.
impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(v) => write!(f, "Bool({v})"),
            Value::Int(v) => write!(f, "Int({v})"),
            Value::Float(v) => write!(f, "Float({v})"),
            Value::Str(v) => write!(f, "Str({v:?})"),
            Value::Bytes(v) => write!(f, "Bytes({} bytes)", v.len()),
            Value::Tuple(node) | Value::List(node) => write!(f, "{} of {} items", self.describe(), node.borrow().len()),
            Value::Dict(node) => write!(f, "a dict of {} items", node.borrow().len()),
            Value::Global(global) => write!(f, "Global({global:?})"),
            other => f.write_str(other.describe()),
        }
    }
}

/// The depth of a container holding `items`, which are marked as nested; an error past [`MAX_DEPTH`].
fn depth_holding<'v>(items: impl IntoIterator<Item = &'v Value>) -> Result<usize, String> {
    let mut depth = 1;
    for item in items {
        item.nest();
        depth = depth.max(item.depth() + 1);
    }
    if depth > MAX_DEPTH {
        return Err(format!("containers nest more than {MAX_DEPTH} deep"));
    }
    Ok(depth)
}

/// Loads the storage a persistent id names: `(key, element kind, element count)`.
pub(crate) type StorageLoader<'a> = dyn FnMut(&str, Kind, i64) -> Result<Tensor, String> + 'a;

struct Machine<'a, 'l> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    /// Values pushed so far, against [`MAX_VALUES`].
    pushed: usize,
    /// Long byte strings read straight from the input, with their offsets.
    blobs: Vec<(Rc<[u8]>, usize)>,
    load_storage: &'l mut StorageLoader<'l>,
    storages: HashMap<String, Rc<Tensor>>,
    /// What the tensors built so far take, against the caller's limit.
    tensor_bytes: TensorBudget,
}

/// Bytes a pickle and the tensors it builds may take.
struct TensorBudget {
    /// Bytes taken so far (the pickle's own first).
    spent: u64,
    /// Most bytes it may take.
    limit: u64,
}

impl TensorBudget {
    /// Takes `bytes` for `what`, or refuses when they would go past the limit (nothing is taken then).
    fn spend(&mut self, bytes: u64, what: &str) -> Result<(), String> {
        let limit = self.limit;
        self.spent = self.spent.checked_add(bytes).filter(|&spent| spent <= limit).ok_or_else(|| {
            format!(
                "{what} ({bytes} bytes) would take the pickle and its tensors past {limit} bytes ({} MiB), \
                 the most a checkpoint may unpack to",
                limit >> 20
            )
        })?;
        Ok(())
    }
}

/// Bytes of a storage of `numel` elements of `kind`.
pub(crate) fn storage_bytes(kind: Kind, numel: i64) -> Result<u64, String> {
    u64::try_from(numel)
        .ok()
        .and_then(|n| n.checked_mul(kind.elt_size_in_bytes() as u64))
        .ok_or_else(|| format!("{numel} elements of {kind:?} is not a valid size"))
}

/// Runs the pickle, it and its tensors within [`MAX_TENSOR_BYTES`]; errors carry the byte offset.
pub(crate) fn unpickle<'l>(data: &[u8], load_storage: &'l mut StorageLoader<'l>) -> Result<Value, (usize, String)> {
    unpickle_within(data, load_storage, MAX_TENSOR_BYTES)
}

/// [`unpickle`] with the pickle's bytes and its tensors (storages loaded and view copies made) within
/// `limit` bytes together.
pub(crate) fn unpickle_within<'l>(
    data: &[u8],
    load_storage: &'l mut StorageLoader<'l>,
    limit: u64,
) -> Result<Value, (usize, String)> {
    let mut machine = Machine {
        data,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        pushed: 0,
        blobs: Vec::new(),
        load_storage,
        storages: HashMap::new(),
        tensor_bytes: TensorBudget { spent: data.len() as u64, limit },
    };
    machine.run().map_err(|why| (machine.pos, why))
}

impl Machine<'_, '_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.data.len()).ok_or("the pickle ends early")?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut bytes = [0; N];
        bytes.copy_from_slice(self.take(N)?);
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        self.array().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Result<u32, String> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, String> {
        self.array().map(u64::from_le_bytes)
    }

    /// A length prefix of `width` bytes (1, 4 or 8).
    fn length(&mut self, width: usize) -> Result<usize, String> {
        let n = match width {
            1 => self.u8()? as u64,
            4 => self.u32()? as u64,
            _ => self.u64()?,
        };
        usize::try_from(n).map_err(|_| "length too large".to_string())
    }

    fn line(&mut self) -> Result<String, String> {
        let rest = &self.data[self.pos..];
        let end = rest.iter().position(|&b| b == b'\n').ok_or("unterminated line")?;
        let text = std::str::from_utf8(&rest[..end]).map_err(|_| "line is not UTF-8")?.to_string();
        self.pos += end + 1;
        Ok(text)
    }

    fn text(&mut self, n: usize) -> Result<Value, String> {
        let bytes = self.take(n)?;
        let text = std::str::from_utf8(bytes).map_err(|_| "string is not UTF-8")?;
        Ok(Value::Str(text.into()))
    }

    fn bytes(&mut self, n: usize) -> Result<Value, String> {
        let offset = self.pos;
        let bytes: Rc<[u8]> = self.take(n)?.into();
        if n >= BLOB_MIN {
            self.blobs.push((bytes.clone(), offset));
        }
        Ok(Value::Bytes(bytes))
    }

    fn push(&mut self, value: Value) -> Result<(), String> {
        self.pushed += 1;
        if self.pushed > MAX_VALUES {
            return Err(format!("more than {MAX_VALUES} values"));
        }
        self.stack.push(value);
        Ok(())
    }

    fn pop(&mut self) -> Result<Value, String> {
        if self.marks.last().is_some_and(|&mark| mark >= self.stack.len()) {
            return Err("pop across a mark".into());
        }
        self.stack.pop().ok_or_else(|| "pop from an empty stack".into())
    }

    fn top(&self) -> Result<&Value, String> {
        if self.marks.last().is_some_and(|&mark| mark >= self.stack.len()) {
            return Err("no value above the mark".into());
        }
        self.stack.last().ok_or_else(|| "empty stack".into())
    }

    fn mark(&mut self) -> Result<(), String> {
        if self.marks.len() >= MAX_DEPTH {
            return Err(format!("marks nest more than {MAX_DEPTH} deep"));
        }
        self.marks.push(self.stack.len());
        Ok(())
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let mark = self.marks.pop().ok_or("no mark on the stack")?;
        if mark > self.stack.len() {
            return Err("the stack is shorter than its mark".into());
        }
        Ok(self.stack.split_off(mark))
    }

    fn memo_put(&mut self, index: u32) -> Result<(), String> {
        if self.memo.len() >= MAX_MEMO && !self.memo.contains_key(&index) {
            return Err(format!("more than {MAX_MEMO} memo entries"));
        }
        let value = self.top()?.clone();
        self.memo.insert(index, value);
        Ok(())
    }

    fn memo_get(&mut self, index: u32) -> Result<(), String> {
        let value = self.memo.get(&index).ok_or_else(|| format!("memo {index} is not set"))?.clone();
        self.push(value)
    }

    fn run(&mut self) -> Result<Value, String> {
        loop {
            let opcode = self.u8()?;
            match opcode {
                b'.' => return self.pop(), // STOP
                0x80 => {
                    // PROTO
                    let version = self.u8()?;
                    if version > 5 {
                        return Err(format!("pickle protocol {version} is not supported"));
                    }
                }
                0x95 => {
                    // FRAME: the frame length is only a hint.
                    self.u64()?;
                }
                b'(' | b'0' | b'1' | b'2' => self.stack_op(opcode)?,
                b'N' | 0x88 | 0x89 | b'J' | b'K' | b'M' | 0x8a | b'G' | b'I' => self.number(opcode)?,
                b'X' | 0x8c | 0x8d | b'U' | b'T' | b'C' | b'B' | 0x8e => self.string(opcode)?,
                b')' | 0x85..=0x87 | b't' | b']' | b'l' | b'a' | b'e' | b'}' | b'd' | b's' | b'u' => {
                    self.container(opcode)?
                }
                b'q' | b'r' | 0x94 | b'h' | b'j' => self.memo_op(opcode)?,
                b'c' | 0x93 | b'Q' | b'R' | b'b' => self.object(opcode)?,
                other => return Err(format!("opcode 0x{other:02x} is not allowed")),
            }
        }
    }

    /// MARK, POP, POP_MARK, DUP.
    fn stack_op(&mut self, opcode: u8) -> Result<(), String> {
        match opcode {
            b'(' => self.mark(),
            b'0' => self.pop().map(drop),
            b'1' => self.pop_mark().map(drop),
            _ => {
                let value = self.top()?.clone();
                self.push(value)
            }
        }
    }

    /// None, booleans, integers and floats.
    fn number(&mut self, opcode: u8) -> Result<(), String> {
        let value = match opcode {
            b'N' => Value::None,
            0x88 => Value::Bool(true),
            0x89 => Value::Bool(false),
            b'J' => Value::Int(i64::from(i32::from_le_bytes(self.array()?))),
            b'K' => Value::Int(i64::from(self.u8()?)),
            b'M' => Value::Int(i64::from(self.u16()?)),
            0x8a => {
                // LONG1: little-endian two's complement of n bytes.
                let n = self.u8()? as usize;
                if n > 8 {
                    return Err("integer wider than 64 bits".into());
                }
                let bytes = self.take(n)?;
                let mut buffer = if bytes.last().is_some_and(|b| b & 0x80 != 0) { [0xff; 8] } else { [0; 8] };
                buffer[..n].copy_from_slice(bytes);
                Value::Int(i64::from_le_bytes(buffer))
            }
            b'G' => Value::Float(f64::from_be_bytes(self.array()?)), // BINFLOAT: big-endian double
            _ => {
                // INT as text; "00" and "01" are Python 2's False and True.
                let text = self.line()?;
                match text.as_str() {
                    "00" => Value::Bool(false),
                    "01" => Value::Bool(true),
                    digits => Value::Int(digits.parse().map_err(|_| format!("bad INT \"{digits}\""))?),
                }
            }
        };
        self.push(value)
    }

    /// Text strings (BINUNICODE, SHORT_BINUNICODE, BINUNICODE8) and byte strings (SHORT_BINSTRING,
    /// BINSTRING, SHORT_BINBYTES, BINBYTES, BINBYTES8).
    fn string(&mut self, opcode: u8) -> Result<(), String> {
        let value = match opcode {
            b'X' => {
                let n = self.length(4)?;
                self.text(n)?
            }
            0x8c => {
                let n = self.length(1)?;
                self.text(n)?
            }
            0x8d => {
                let n = self.length(8)?;
                self.text(n)?
            }
            b'U' | b'C' => {
                let n = self.length(1)?;
                self.bytes(n)?
            }
            b'T' | b'B' => {
                let n = self.length(4)?;
                self.bytes(n)?
            }
            _ => {
                let n = self.length(8)?;
                self.bytes(n)?
            }
        };
        self.push(value)
    }

    /// Tuples, lists and dicts: made empty or from the stack, and filled.
    fn container(&mut self, opcode: u8) -> Result<(), String> {
        match opcode {
            b')' => self.push(Value::new_tuple(Vec::new())?),
            0x85..=0x87 => {
                // TUPLE1, TUPLE2, TUPLE3
                let n = (opcode - 0x84) as usize;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.pop()?);
                }
                items.reverse();
                self.push(Value::new_tuple(items)?)
            }
            b't' => {
                let items = self.pop_mark()?;
                self.push(Value::new_tuple(items)?)
            }
            b']' => self.push(Value::new_list(Vec::new())?),
            b'l' => {
                let items = self.pop_mark()?;
                self.push(Value::new_list(items)?)
            }
            b'a' => {
                let item = self.pop()?;
                append(self.top()?, vec![item])
            }
            b'e' => {
                let items = self.pop_mark()?;
                append(self.top()?, items)
            }
            b'}' => self.push(Value::new_dict(Vec::new())?),
            b'd' => {
                let items = self.pop_mark()?;
                self.push(Value::new_dict(pairs(items)?)?)
            }
            b's' => {
                let value = self.pop()?;
                let key = self.pop()?;
                set_items(self.top()?, vec![(key, value)])
            }
            _ => {
                let items = self.pop_mark()?;
                set_items(self.top()?, pairs(items)?)
            }
        }
    }

    /// BINPUT, LONG_BINPUT, MEMOIZE, BINGET, LONG_BINGET.
    fn memo_op(&mut self, opcode: u8) -> Result<(), String> {
        match opcode {
            b'q' => {
                let i = self.u8()?;
                self.memo_put(u32::from(i))
            }
            b'r' => {
                let i = self.u32()?;
                self.memo_put(i)
            }
            0x94 => self.memo_put(self.memo.len() as u32),
            b'h' => {
                let i = self.u8()?;
                self.memo_get(u32::from(i))
            }
            _ => {
                let i = self.u32()?;
                self.memo_get(i)
            }
        }
    }

    /// GLOBAL, STACK_GLOBAL, BINPERSID, REDUCE, BUILD.
    fn object(&mut self, opcode: u8) -> Result<(), String> {
        match opcode {
            b'c' => {
                // GLOBAL: "module\nname\n"
                let module = self.line()?;
                let name = self.line()?;
                self.push_global(&module, &name)
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                match (module, name) {
                    (Value::Str(module), Value::Str(name)) => self.push_global(&module, &name),
                    _ => Err("STACK_GLOBAL needs two strings".into()),
                }
            }
            b'Q' => {
                let id = self.pop()?;
                let storage = self.persistent_load(id)?;
                self.push(storage)
            }
            b'R' => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let Value::Tuple(args) = args else {
                    return Err(format!("REDUCE with {} as arguments", args.describe()));
                };
                let result = reduce(callable, &args.borrow(), &mut self.tensor_bytes)?;
                self.push(result)
            }
            _ => {
                // BUILD: `OrderedDict` state (the state dict's `_metadata` attribute) is dropped;
                // NumPy dtypes and arrays take theirs.
                let state = self.pop()?;
                build(self.top()?, state, &self.blobs)
            }
        }
    }

    fn push_global(&mut self, module: &str, name: &str) -> Result<(), String> {
        let global = resolve_global(module, name)
            .ok_or_else(|| format!("refusing global {module}.{name}: only tensor and array rebuilding is allowed"))?;
        self.push(Value::Global(global))
    }

    /// `("storage", storage_type, key, location, numel)`: the storage `data/<key>`.
    fn persistent_load(&mut self, id: Value) -> Result<Value, String> {
        let Value::Tuple(id) = id else {
            return Err(format!("persistent id is {}", id.describe()));
        };
        let id = id.borrow();
        match id.as_slice() {
            [Value::Str(tag), Value::Global(Global::Storage(kind)), Value::Str(key), _location, Value::Int(numel)]
                if &**tag == "storage" =>
            {
                if let Some(storage) = self.storages.get(&**key) {
                    if storage.kind() != *kind || storage.numel() as i64 != *numel {
                        return Err(format!("storage {key} is used with two types or sizes"));
                    }
                    return Ok(Value::Storage(storage.clone()));
                }
                self.tensor_bytes.spend(storage_bytes(*kind, *numel)?, &format!("storage {key}"))?;
                let storage = Rc::new((self.load_storage)(key, *kind, *numel)?);
                self.storages.insert(key.to_string(), storage.clone());
                Ok(Value::Storage(storage))
            }
            _ => Err("unexpected persistent id: only (\"storage\", type, key, location, size) is allowed".into()),
        }
    }
}

fn pairs(items: Vec<Value>) -> Result<Vec<(Value, Value)>, String> {
    if !items.len().is_multiple_of(2) {
        return Err("odd number of items for a dict".into());
    }
    let mut pairs = Vec::with_capacity(items.len() / 2);
    let mut items = items.into_iter();
    while let (Some(key), Some(value)) = (items.next(), items.next()) {
        pairs.push((key, value));
    }
    Ok(pairs)
}

/// APPEND and APPENDS: `items` added to the list `target`.
fn append(target: &Value, items: Vec<Value>) -> Result<(), String> {
    let Value::List(list) = target else {
        return Err(format!("APPEND to {}", target.describe()));
    };
    list.check_open("list")?;
    if items.iter().any(|item| item.is_same_container(target)) {
        return Err("a list is appended to itself".into());
    }
    let depth = depth_holding(&items)?;
    list.depth.set(list.depth.get().max(depth));
    list.items.borrow_mut().extend(items);
    Ok(())
}

/// SETITEM and SETITEMS: `pairs` set on the dict `target`.
fn set_items(target: &Value, pairs: Vec<(Value, Value)>) -> Result<(), String> {
    let Value::Dict(dict) = target else {
        return Err(format!("SETITEM on {}", target.describe()));
    };
    dict.check_open("dict")?;
    if pairs.iter().any(|(key, value)| key.is_same_container(target) || value.is_same_container(target)) {
        return Err("a dict is put into itself".into());
    }
    let depth = depth_holding(pairs.iter().flat_map(|(key, value)| [key, value]))?;
    dict.depth.set(dict.depth.get().max(depth));
    let mut items = dict.items.borrow_mut();
    for (key, value) in pairs {
        items.insert(key, value);
    }
    Ok(())
}

fn int_list(value: &Value, what: &str) -> Result<Vec<i64>, String> {
    let Value::Tuple(items) = value else {
        return Err(format!("{what} is {}, not a tuple", value.describe()));
    };
    let items = items.borrow();
    items
        .iter()
        .map(|item| match item {
            Value::Int(v) => Ok(*v),
            other => Err(format!("{what} holds {}", other.describe())),
        })
        .collect()
}

/// `BUILD`: sets the state of the object on top of the stack.
fn build(target: &Value, state: Value, blobs: &[(Rc<[u8]>, usize)]) -> Result<(), String> {
    match target {
        Value::Dict(_) => Ok(()),
        Value::Dtype(dtype) => {
            // (version, byte order, subarray, names, fields, elsize, alignment, flags)
            let Value::Tuple(items) = &state else {
                return Err(format!("dtype state is {}", state.describe()));
            };
            let items = items.borrow();
            let order = items.get(1).and_then(text_of).ok_or("dtype state without a byte order")?;
            if items.get(3).is_some_and(|names| !matches!(names, Value::None)) {
                return Err("structured NumPy dtypes are not supported".into());
            }
            dtype.borrow_mut().byte_order = order.chars().next().unwrap_or('|');
            Ok(())
        }
        Value::Array(array) => {
            *array.borrow_mut() = array_from_state(&state, blobs)?;
            Ok(())
        }
        other => Err(format!("BUILD on {}", other.describe())),
    }
}

/// A NumPy array's state: `(version, shape, dtype, is_fortran, raw bytes)`.
fn array_from_state(state: &Value, blobs: &[(Rc<[u8]>, usize)]) -> Result<Array, String> {
    let Value::Tuple(items) = state else {
        return Err(format!("array state is {}", state.describe()));
    };
    let items = items.borrow();
    let [Value::Int(_), shape, Value::Dtype(dtype), fortran, data] = items.as_slice() else {
        return Err("array state is not (version, shape, dtype, is_fortran, bytes)".into());
    };
    let fortran_order = match fortran {
        Value::Bool(b) => *b,
        Value::Int(i) => *i != 0,
        other => return Err(format!("array order flag is {}", other.describe())),
    };
    let (data, data_offset) = match data {
        Value::Bytes(bytes) => {
            let offset = blobs.iter().find(|(blob, _)| Rc::ptr_eq(blob, bytes)).map(|&(_, offset)| offset);
            (bytes.clone(), offset)
        }
        Value::Str(text) => (latin1(text)?, None),
        other => return Err(format!("array data is {} (object arrays are not supported)", other.describe())),
    };
    let shape = int_list(shape, "array shape")?;
    let dtype = dtype.borrow().clone();
    Ok(Array { shape, dtype, fortran_order, data, data_offset })
}

/// A string's characters as bytes, each below 256 (Python's latin-1 encoding).
fn latin1(text: &str) -> Result<Rc<[u8]>, String> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).map_err(|_| "text is not latin-1".to_string()))
        .collect::<Result<Vec<u8>, String>>()
        .map(Rc::from)
}

/// The text of a `str`, or of Python 2 `bytes` that are UTF-8.
pub(crate) fn text_of(value: &Value) -> Option<&str> {
    match value {
        Value::Str(text) => Some(text),
        Value::Bytes(bytes) => std::str::from_utf8(bytes).ok(),
        _ => None,
    }
}

/// Calls an allow-listed global.
fn reduce(callable: Value, args: &[Value], tensor_bytes: &mut TensorBudget) -> Result<Value, String> {
    let Value::Global(global) = callable else {
        return Err(format!("REDUCE on {}", callable.describe()));
    };
    match global {
        Global::OrderedDict => match args {
            [] => Value::new_dict(Vec::new()),
            _ => Err("OrderedDict with arguments".into()),
        },
        Global::RebuildTensorV2 => rebuild_tensor_v2(args, tensor_bytes),
        Global::RebuildParameter => match args {
            [tensor @ Value::Tensor(_), Value::Bool(_), _hooks] => Ok(tensor.clone()),
            _ => Err("_rebuild_parameter needs (tensor, requires_grad, hooks)".into()),
        },
        Global::NumpyReconstruct => match args {
            [Value::Global(Global::NumpyNdarray), ..] => Ok(Value::Array(Rc::default())),
            _ => Err("_reconstruct only builds numpy.ndarray".into()),
        },
        Global::NumpyDtype => {
            let descr = args.first().and_then(text_of).ok_or("numpy.dtype needs a type string")?;
            Ok(Value::Dtype(Rc::new(RefCell::new(Dtype { descr: descr.to_string(), byte_order: '|' }))))
        }
        Global::CodecsEncode => match args {
            [Value::Str(text), encoding] if text_of(encoding) == Some("latin1") => Ok(Value::Bytes(latin1(text)?)),
            _ => Err("_codecs.encode only with (text, \"latin1\")".into()),
        },
        Global::NumpyNdarray | Global::Storage(_) => Err("types cannot be called".into()),
    }
}

/// `(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])`.
fn rebuild_tensor_v2(args: &[Value], tensor_bytes: &mut TensorBudget) -> Result<Value, String> {
    let [Value::Storage(storage), Value::Int(offset), size, stride, ..] = args else {
        return Err("_rebuild_tensor_v2 needs (storage, offset, size, stride, …)".into());
    };
    if !(6..=7).contains(&args.len()) {
        return Err(format!("_rebuild_tensor_v2 with {} arguments", args.len()));
    }
    let size = int_list(size, "size")?;
    let stride = int_list(stride, "stride")?;
    Ok(Value::Tensor(Rc::new(rebuild_tensor(storage, *offset, &size, &stride, tensor_bytes)?)))
}

/// A contiguous copy of `storage` viewed with `size`, `stride` and `offset`, after checking that the
/// view stays inside the storage (libtorch would otherwise be asked to read out of bounds) and holds no
/// more elements than it (a stride-0 view could otherwise ask for any amount of memory). A view that is
/// not contiguous is copied, and the copy is taken from `tensor_bytes` first.
fn rebuild_tensor(
    storage: &Tensor,
    offset: i64,
    size: &[i64],
    stride: &[i64],
    tensor_bytes: &mut TensorBudget,
) -> Result<Tensor, String> {
    let view = format!("size {}, stride {} at offset {offset}", shape_text(size), shape_text(stride));
    if size.len() != stride.len() {
        return Err(format!("tensor of {view}: size and stride differ in length"));
    }
    if offset < 0 || size.iter().any(|&s| s < 0) || stride.iter().any(|&s| s < 0) {
        return Err(format!("tensor of {view}: negative offset, size or stride"));
    }
    let numel = storage.numel() as i128;
    let too_big = || format!("tensor of {view} holds more elements than its storage of {numel}");
    let count = size.iter().try_fold(1i128, |n, &s| n.checked_mul(s as i128).filter(|&n| n <= numel));
    let Some(count) = count else {
        return Err(too_big());
    };
    if !size.contains(&0) {
        let last = size.iter().zip(stride).try_fold(offset as i128, |last, (&s, &st)| {
            (s as i128 - 1).checked_mul(st as i128).and_then(|step| last.checked_add(step))
        });
        if last.is_none_or(|last| last >= numel) {
            return Err(format!("tensor of {view} reaches past its storage of {numel} elements"));
        }
    }
    let strided = storage.f_as_strided(size, stride, offset).map_err(|e| e.to_string())?;
    if !strided.is_contiguous() {
        let bytes = count as u64 * storage.kind().elt_size_in_bytes() as u64;
        tensor_bytes.spend(bytes, &format!("a copy of the tensor of {view}"))?;
    }
    strided.f_contiguous().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_storages(_: &str, _: Kind, _: i64) -> Result<Tensor, String> {
        Err("no storages here".into())
    }

    fn run(pickle: &[u8]) -> Result<Value, String> {
        unpickle(pickle, &mut no_storages).map_err(|(_, why)| why)
    }

    /// `numpy.array(..., order)` of shape [2, 3] as NumPy pickles it at protocol 2 (Python 2 strings).
    fn pickled_array(descr: &str, byte_order: &str, fortran: bool, data: &[u8]) -> Vec<u8> {
        pickled_array_of_shape(&[2, 3], descr, byte_order, fortran, data)
    }

    /// An array of any shape; each dimension a LONG1 of eight bytes.
    fn pickled_array_of_shape(shape: &[i64], descr: &str, byte_order: &str, fortran: bool, data: &[u8]) -> Vec<u8> {
        let mut p =
            b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R(K\x01(".to_vec();
        for dim in shape {
            p.extend_from_slice(b"\x8a\x08");
            p.extend_from_slice(&dim.to_le_bytes());
        }
        p.extend_from_slice(b"tcnumpy\ndtype\nU\x02");
        p.extend_from_slice(descr.as_bytes());
        p.extend_from_slice(b"K\x00K\x01\x87R(K\x03U\x01");
        p.extend_from_slice(byte_order.as_bytes());
        p.extend_from_slice(b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb");
        p.extend_from_slice(if fortran { b"I01\n" } else { b"I00\n" });
        p.push(b'T');
        p.extend_from_slice(&(data.len() as u32).to_le_bytes());
        p.extend_from_slice(data);
        p.extend_from_slice(b"tb.");
        p
    }

    fn array(pickle: &[u8]) -> Array {
        match run(pickle).unwrap() {
            Value::Array(array) => array.borrow().clone(),
            other => panic!("unpickled {}", other.describe()),
        }
    }

    /// `prefix`, `middle` `n` times, `suffix` `n` times, then STOP.
    fn repeated(prefix: &[u8], middle: &[u8], suffix: &[u8], n: usize) -> Vec<u8> {
        let mut p = prefix.to_vec();
        p.extend(middle.repeat(n));
        p.extend(suffix.repeat(n));
        p.push(b'.');
        p
    }

    #[test]
    fn numpy_arrays_in_c_and_fortran_order_become_the_same_tensor() {
        let values = [1i64, 2, 3, 4, 5, 6]; // [[1, 2, 3], [4, 5, 6]]
        let c_order: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let f_order: Vec<u8> = [1i64, 4, 2, 5, 3, 6].iter().flat_map(|v| v.to_le_bytes()).collect();
        for (fortran, bytes) in [(false, c_order), (true, f_order)] {
            let array = array(&pickled_array("i8", "<", fortran, &bytes));
            assert_eq!((array.shape.as_slice(), array.fortran_order), (&[2i64, 3][..], fortran));
            let tensor = array.to_tensor(Kind::Int64).unwrap();
            assert_eq!(tensor.size(), [2, 3]);
            assert_eq!(Vec::<i64>::try_from(tensor.flatten(0, -1)).unwrap(), values, "fortran order {fortran}");
        }
    }

    #[test]
    fn big_endian_and_mis_sized_arrays_are_refused() {
        let bytes = vec![0u8; 6 * 8];
        let err = array(&pickled_array("i8", ">", false, &bytes)).to_tensor(Kind::Int64).unwrap_err();
        assert!(err.contains("big-endian"), "{err}");
        let err = array(&pickled_array("i8", "<", false, &bytes[..40])).to_tensor(Kind::Int64).unwrap_err();
        assert!(err.contains("does not match its 40 bytes"), "{err}");
    }

    #[test]
    fn an_array_shape_whose_size_overflows_is_an_error_not_a_panic() {
        // 2^54 * 3072 = 3 * 2^64: the product wraps to 0, which matched the empty data before.
        for shape in [[1i64 << 54, 3072], [i64::MAX, 3], [-1, -3072]] {
            let array = array(&pickled_array_of_shape(&shape, "u1", "|", false, b""));
            let err = array.to_tensor(Kind::Uint8).unwrap_err();
            assert!(err.contains("no valid element count"), "{shape:?}: {err}");
        }
    }

    #[test]
    fn a_long_byte_string_remembers_where_it_starts_in_the_pickle() {
        let data: Vec<u8> = (0..6 * 200).map(|i| (i % 251) as u8).collect();
        let pickle = pickled_array_of_shape(&[6, 200], "u1", "|", false, &data);
        let offset = array(&pickle).data_offset.expect("an offset");
        assert_eq!(&pickle[offset..offset + data.len()], &data[..]);
        assert_eq!(array(&pickled_array("u1", "|", false, &[0; 6])).data_offset, None, "short strings have none");
    }

    /// 100,000-deep pickles of every container kind and every way of filling one.
    fn deep_pickles() -> Vec<(&'static str, Vec<u8>)> {
        const N: usize = 100_000;
        let mut memo_chain = Vec::new();
        for i in 0..N as u32 {
            memo_chain.extend_from_slice(b"]r");
            memo_chain.extend_from_slice(&i.to_le_bytes());
            memo_chain.push(b'0');
        }
        for i in 1..N as u32 {
            for (op, index) in [(b'j', i - 1), (b'j', i)] {
                memo_chain.push(op);
                memo_chain.extend_from_slice(&index.to_le_bytes());
            }
            memo_chain.extend_from_slice(b"a0");
        }
        memo_chain.extend_from_slice(b"N.");
        vec![
            ("lists by APPEND", repeated(b"", b"]", b"a", N)),
            ("lists by MARK and LIST", repeated(b"", b"(", b"l", N)),
            ("lists by APPENDS", repeated(b"]", b"(]", b"e", N)),
            ("tuples by TUPLE1", repeated(b"N", b"", b"\x85", N)),
            ("tuples by MARK and TUPLE", repeated(b"", b"(", b"t", N)),
            ("dicts by SETITEM", repeated(b"}", b"N}", b"s", N)),
            ("dicts by MARK and DICT", [b"(N".repeat(N), b"}".to_vec(), b"d".repeat(N), b".".to_vec()].concat()),
            ("dicts by SETITEMS", repeated(b"}", b"(N}", b"u", N)),
            ("BUILD state", repeated(b"}N", b"", b"\x85", N).into_iter().take(N + 2).chain(*b"b.").collect()),
            ("REDUCE arguments", repeated(b"ccollections\nOrderedDict\nN", b"", b"\x85", N)),
            ("sets", repeated(b"", b"\x8f", b"", N)),
            ("frozensets", repeated(b"", b"(N\x91", b"", N)),
            ("lists changed after nesting, through the memo", memo_chain),
        ]
    }

    #[test]
    fn deep_pickles_of_every_container_kind_are_refused_without_overflowing_the_stack() {
        for (kind, pickle) in deep_pickles() {
            let err = run(&pickle).unwrap_err();
            let expected = ["nest more than 1000 deep", "is not allowed", "changed after it was put inside"];
            assert!(expected.iter().any(|e| err.contains(e)), "{kind}: {err}");
        }
    }

    #[test]
    fn a_pickle_at_the_depth_limit_is_read_and_dropped_on_a_small_stack() {
        // `MAX_DEPTH` lists, each appended to the one below: the outermost is at the limit.
        let nested = |n: usize| [b"]".repeat(n), b"a".repeat(n - 1), b".".to_vec()].concat();
        let pickle = nested(MAX_DEPTH);
        let depth = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || run(&pickle).map(|value| value.depth()))
            .unwrap()
            .join()
            .expect("no stack overflow");
        assert_eq!(depth, Ok(MAX_DEPTH));
        let err = run(&nested(MAX_DEPTH + 1)).unwrap_err();
        assert!(err.contains("nest more than 1000 deep"), "{err}");
    }

    #[test]
    fn containers_holding_themselves_are_refused() {
        assert!(run(b"]q\x00h\x00a.").unwrap_err().contains("appended to itself"));
        assert!(run(b"}q\x00Nh\x00s.").unwrap_err().contains("put into itself"));
    }

    #[test]
    fn a_dict_of_80000_keys_is_built_in_linear_time_and_a_repeated_key_replaces() {
        let mut p = b"\x80\x02}(".to_vec();
        for i in 0..80_000u32 {
            let key = format!("key{i}");
            p.push(0x8c);
            p.push(key.len() as u8);
            p.extend_from_slice(key.as_bytes());
            p.push(b'J');
            p.extend_from_slice(&i.to_le_bytes());
        }
        p.extend_from_slice(b"\x8c\x04key7Kcu.");
        let started = std::time::Instant::now();
        let dict = run(&p).unwrap();
        println!("80,000-key dict read in {:?}", started.elapsed());
        let Value::Dict(items) = &dict else { panic!("{dict:?}") };
        assert_eq!(items.borrow().len(), 80_000);
        assert!(matches!(dict.get("key79999"), Some(Value::Int(79_999))));
        assert!(matches!(dict.get("key7"), Some(Value::Int(99))), "the repeated key's value replaces the first");
    }

    #[test]
    fn memo_stack_and_mark_floods_are_refused() {
        let memo_flood = repeated(b"N", b"\x94", b"", MAX_MEMO + 1);
        assert!(run(&memo_flood).unwrap_err().contains("memo entries"));
        let stack_flood = repeated(b"N", b"2", b"", MAX_VALUES);
        assert!(run(&stack_flood).unwrap_err().contains("more than 4000000 values"));
        let list_flood = repeated(b"](N", b"2", b"", MAX_VALUES).into_iter().chain(*b"e.").collect::<Vec<u8>>();
        assert!(run(&list_flood).unwrap_err().contains("more than 4000000 values"));
        let marks = repeated(b"", b"(", b"", MAX_DEPTH + 1);
        assert!(run(&marks).unwrap_err().contains("marks nest more than"));
    }

    #[test]
    fn lengths_past_the_end_of_the_input_are_refused_before_allocating() {
        for pickle in [
            &b"X\xff\xff\xff\xff"[..],
            b"\x8d\xff\xff\xff\xff\xff\xff\xff\xff",
            b"B\xff\xff\xff\x7f",
            b"\x8e\0\0\0\0\0\0\0\x80",
        ] {
            assert!(run(pickle).unwrap_err().contains("ends early"), "{pickle:?}");
        }
    }

    /// A budget as large as the reader's own.
    fn full_budget() -> TensorBudget {
        TensorBudget { spent: 0, limit: MAX_TENSOR_BYTES }
    }

    #[test]
    fn tensor_views_with_overflowing_or_expanding_shapes_are_refused() {
        let storage = Tensor::zeros([4], (Kind::Float, tch::Device::Cpu));
        let huge = [i64::MAX, i64::MAX, i64::MAX];
        let err = rebuild_tensor(&storage, 0, &huge, &huge, &mut full_budget()).unwrap_err();
        assert!(err.contains("more elements than its storage"), "{err}");
        // A stride-0 view of 2^28 elements over 4 would take a gigabyte.
        let err = rebuild_tensor(&storage, 0, &[1 << 14, 1 << 14], &[0, 0], &mut full_budget()).unwrap_err();
        assert!(err.contains("more elements than its storage of 4"), "{err}");
        let err = rebuild_tensor(&storage, i64::MAX, &[2], &[i64::MAX], &mut full_budget()).unwrap_err();
        assert!(err.contains("reaches past its storage"), "{err}");
        assert_eq!(rebuild_tensor(&storage, 1, &[3, 0], &[1, 1], &mut full_budget()).unwrap().size(), [3, 0]);
    }

    #[test]
    fn copies_of_strided_views_are_taken_from_the_budget_and_refused_past_it() {
        let storage = Tensor::arange(16, (Kind::Float, tch::Device::Cpu)); // 64 bytes
        let mut budget = TensorBudget { spent: 0, limit: 2 * 64 };
        // Contiguous views share the storage: they cost nothing, however many there are.
        for _ in 0..10 {
            assert_eq!(rebuild_tensor(&storage, 0, &[4, 4], &[4, 1], &mut budget).unwrap().size(), [4, 4]);
        }
        assert_eq!(budget.spent, 0);
        // A transposed view is a copy of 64 bytes: two fit, the third is refused before it is made.
        for _ in 0..2 {
            let transposed = rebuild_tensor(&storage, 0, &[4, 4], &[1, 4], &mut budget).unwrap();
            assert_eq!(transposed.double_value(&[0, 1]), 4.0);
        }
        let err = rebuild_tensor(&storage, 0, &[4, 4], &[1, 4], &mut budget).unwrap_err();
        assert!(err.contains("(64 bytes) would take the pickle and its tensors past 128 bytes"), "{err}");
        assert_eq!(budget.spent, 128, "a refused copy takes nothing");
    }

    #[test]
    fn storages_past_the_budget_are_refused_before_they_are_loaded() {
        // A persistent id ("storage", FloatStorage, "0", "cpu", 2^20): four MiB of floats.
        let mut p = b"\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000".to_vec();
        p.extend_from_slice(b"X\x03\x00\x00\x00cpuJ\x00\x00\x10\x00tQ.");
        let loaded = RefCell::new(Vec::new());
        let mut loader = |key: &str, _: Kind, numel: i64| -> Result<Tensor, String> {
            loaded.borrow_mut().push(key.to_string());
            Ok(Tensor::zeros([numel], (Kind::Float, tch::Device::Cpu)))
        };
        let (_, err) = unpickle_within(&p, &mut loader, 1 << 20).unwrap_err();
        assert!(
            err.contains("storage 0 (4194304 bytes) would take the pickle and its tensors past 1048576 bytes (1 MiB)"),
            "{err}"
        );
        assert!(loaded.borrow().is_empty(), "nothing was loaded");
        assert!(matches!(unpickle_within(&p, &mut loader, 5 << 20), Ok(Value::Storage(_))));
        assert_eq!(*loaded.borrow(), ["0"]);
    }
}
