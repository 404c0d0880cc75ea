//! A restricted pickle reader: enough of Python's pickle virtual machine to read what `torch.save` writes
//! for state dicts and what NumPy writes for arrays (CIFAR's "python version" batches), and nothing more.
//!
//! Only the opcodes those writers emit are known, and only an allow-list of globals resolves: the tensor
//! and parameter rebuild functions, the storage types, `OrderedDict`, NumPy's array and dtype
//! reconstruction and `_codecs.encode` (how Python 3 pickles `bytes` at protocol 2). Any other global
//! (`os.system`, `builtins.eval`, ...) or opcode is refused, so a hostile file cannot run code: nothing
//! is ever imported or called beyond building tensors and arrays from bytes.
//!
//! No crate fitted: `serde-pickle` 1.2 refuses `BINPERSID` (persistent ids, which carry every storage)
//! and can only replace unknown globals by `None`, losing the `_rebuild_tensor_v2` arguments and NumPy's
//! array bytes; `candle-core`'s reader pulls in a whole tensor library; `pickle` on crates.io is unrelated.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use tch::{Kind, Tensor};

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
#[derive(Debug, Clone)]
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
    Tuple(Rc<Vec<Value>>),
    List(Rc<RefCell<Vec<Value>>>),
    Dict(Rc<RefCell<Vec<(Value, Value)>>>),
    Global(Global),
    /// A storage from a persistent id: a 1-D tensor of its elements.
    Storage(Rc<Tensor>),
    Tensor(Rc<Tensor>),
    /// A NumPy dtype; filled in by `BUILD`.
    Dtype(Rc<RefCell<Dtype>>),
    /// A NumPy array; filled in by `BUILD`.
    Array(Rc<RefCell<Array>>),
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
}

impl Array {
    /// The array as a C-ordered tensor of `kind` (element width checked against the bytes).
    pub fn to_tensor(&self, kind: Kind) -> Result<Tensor, String> {
        let element = kind.elt_size_in_bytes();
        let little_or_single = self.dtype.byte_order != '>' || element == 1;
        if !little_or_single {
            return Err(format!("big-endian array dtype {}", self.dtype.descr));
        }
        let numel: i64 = self.shape.iter().product();
        if self.shape.iter().any(|&d| d < 0) || (numel as usize).checked_mul(element) != Some(self.data.len()) {
            return Err(format!(
                "array of shape {:?} and dtype {} does not match its {} bytes",
                self.shape, self.dtype.descr, self.data.len()
            ));
        }
        let tensor = Tensor::f_from_data_size(&self.data, &[numel], kind).map_err(|e| e.to_string())?;
        Ok(if self.fortran_order {
            let reversed: Vec<i64> = self.shape.iter().rev().copied().collect();
            let dims: Vec<i64> = (0..self.shape.len() as i64).rev().collect();
            tensor.reshape(&reversed).permute(&dims).contiguous()
        } else {
            tensor.reshape(&self.shape)
        })
    }
}

impl Value {
    /// The value under a `str` or `bytes` key of a dict (Python 2 pickles key by bytes).
    pub fn get(&self, key: &str) -> Option<Value> {
        let Value::Dict(dict) = self else { return None };
        dict.borrow().iter().find(|(k, _)| text_of(k) == Some(key)).map(|(_, v)| v.clone())
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
}

/// Upper bound on the stack depth and memo size, against hostile files that try to exhaust memory.
pub(crate) const MAX_ITEMS: usize = 10_000_000;

/// Loads the storage a persistent id names: `(key, element kind, element count)`.
pub(crate) type StorageLoader<'a> = dyn FnMut(&str, Kind, i64) -> Result<Tensor, String> + 'a;

struct Machine<'a, 'l> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    load_storage: &'l mut StorageLoader<'l>,
    storages: HashMap<String, Rc<Tensor>>,
}

/// Runs the pickle; errors carry the byte offset.
pub(crate) fn unpickle<'l>(data: &[u8], load_storage: &'l mut StorageLoader<'l>) -> Result<Value, (usize, String)> {
    let mut machine = Machine {
        data,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        load_storage,
        storages: HashMap::new(),
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

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
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

    fn push(&mut self, value: Value) -> Result<(), String> {
        if self.stack.len() >= MAX_ITEMS {
            return Err("stack too deep".into());
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

    fn top(&mut self) -> Result<&mut Value, String> {
        self.stack.last_mut().ok_or_else(|| "empty stack".into())
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let mark = self.marks.pop().ok_or("no mark on the stack")?;
        Ok(self.stack.split_off(mark))
    }

    fn memo_put(&mut self, index: u32) -> Result<(), String> {
        if self.memo.len() >= MAX_ITEMS {
            return Err("memo too large".into());
        }
        let value = self.stack.last().ok_or("memoise from an empty stack")?.clone();
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
                b'.' => {
                    // STOP
                    let value = self.pop()?;
                    return Ok(value);
                }
                b'(' => self.marks.push(self.stack.len()), // MARK
                b'0' => {
                    // POP
                    self.pop()?;
                }
                b'1' => {
                    // POP_MARK
                    self.pop_mark()?;
                }
                b'2' => {
                    // DUP
                    let value = self.top()?.clone();
                    self.push(value)?;
                }
                b'N' => self.push(Value::None)?,
                0x88 => self.push(Value::Bool(true))?,
                0x89 => self.push(Value::Bool(false))?,
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(Value::Int(v as i64))?
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(v as i64))?
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Value::Int(v as i64))?
                }
                0x8a => {
                    // LONG1: little-endian two's complement of n bytes.
                    let n = self.u8()? as usize;
                    if n > 8 {
                        return Err("integer wider than 64 bits".into());
                    }
                    let bytes = self.take(n)?;
                    let mut buffer = if bytes.last().is_some_and(|b| b & 0x80 != 0) { [0xff; 8] } else { [0; 8] };
                    buffer[..n].copy_from_slice(bytes);
                    self.push(Value::Int(i64::from_le_bytes(buffer)))?
                }
                b'G' => {
                    // BINFLOAT: big-endian double.
                    let v = f64::from_be_bytes(self.take(8)?.try_into().unwrap());
                    self.push(Value::Float(v))?
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let v = self.text(n)?;
                    self.push(v)?
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let v = self.text(n)?;
                    self.push(v)?
                }
                0x8d => {
                    let n = usize::try_from(self.u64()?).map_err(|_| "string too long")?;
                    let v = self.text(n)?;
                    self.push(v)?
                }
                b'U' | b'T' | b'C' | b'B' => {
                    // SHORT_BINSTRING, BINSTRING, SHORT_BINBYTES, BINBYTES
                    let n = if opcode == b'U' || opcode == b'C' { self.u8()? as usize } else { self.u32()? as usize };
                    let bytes: Rc<[u8]> = self.take(n)?.into();
                    self.push(Value::Bytes(bytes))?
                }
                b')' => self.push(Value::Tuple(Rc::new(Vec::new())))?,
                0x85..=0x87 => {
                    // TUPLE1, TUPLE2, TUPLE3
                    let n = (opcode - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Value::Tuple(Rc::new(items)))?
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Value::Tuple(Rc::new(items)))?
                }
                b']' => self.push(Value::List(Rc::new(RefCell::new(Vec::new()))))?,
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Value::List(Rc::new(RefCell::new(items))))?
                }
                b'a' => {
                    let item = self.pop()?;
                    match self.top()? {
                        Value::List(list) => list.borrow_mut().push(item),
                        other => return Err(format!("APPEND to {}", other.describe())),
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    match self.top()? {
                        Value::List(list) => list.borrow_mut().extend(items),
                        other => return Err(format!("APPENDS to {}", other.describe())),
                    }
                }
                b'}' => self.push(Value::Dict(Rc::new(RefCell::new(Vec::new()))))?,
                b'd' => {
                    let items = self.pop_mark()?;
                    let pairs = pairs(items)?;
                    self.push(Value::Dict(Rc::new(RefCell::new(pairs))))?
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    set_items(self.top()?, vec![(key, value)])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let pairs = pairs(items)?;
                    set_items(self.top()?, pairs)?;
                }
                b'q' => {
                    let i = self.u8()? as u32;
                    self.memo_put(i)?
                }
                b'r' => {
                    let i = self.u32()?;
                    self.memo_put(i)?
                }
                0x94 => {
                    // MEMOIZE
                    let i = self.memo.len() as u32;
                    self.memo_put(i)?
                }
                b'h' => {
                    let i = self.u8()? as u32;
                    self.memo_get(i)?
                }
                b'j' => {
                    let i = self.u32()?;
                    self.memo_get(i)?
                }
                b'c' => {
                    // GLOBAL: "module\nname\n"
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push_global(&module, &name)?
                }
                0x93 => {
                    // STACK_GLOBAL
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(module), Value::Str(name)) => self.push_global(&module, &name)?,
                        _ => return Err("STACK_GLOBAL needs two strings".into()),
                    }
                }
                b'Q' => {
                    // BINPERSID
                    let id = self.pop()?;
                    let storage = self.persistent_load(id)?;
                    self.push(storage)?
                }
                b'R' => {
                    // REDUCE
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let Value::Tuple(args) = args else {
                        return Err(format!("REDUCE with {} as arguments", args.describe()));
                    };
                    let result = reduce(callable, &args)?;
                    self.push(result)?
                }
                b'b' => {
                    // BUILD: `OrderedDict` state (the state dict's `_metadata` attribute) is dropped;
                    // NumPy dtypes and arrays take theirs.
                    let state = self.pop()?;
                    build(self.top()?, state)?;
                }
                b'I' => {
                    // INT as text; "00" and "01" are Python 2's False and True.
                    let text = self.line()?;
                    let value = match text.as_str() {
                        "00" => Value::Bool(false),
                        "01" => Value::Bool(true),
                        digits => Value::Int(digits.parse().map_err(|_| format!("bad INT \"{digits}\""))?),
                    };
                    self.push(value)?
                }
                other => return Err(format!("opcode 0x{other:02x} is not allowed")),
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
                let storage = Rc::new((self.load_storage)(key, *kind, *numel)?);
                self.storages.insert(key.to_string(), storage.clone());
                Ok(Value::Storage(storage))
            }
            _ => Err("unexpected persistent id: only (\"storage\", type, key, location, size) is allowed".into()),
        }
    }
}

fn pairs(items: Vec<Value>) -> Result<Vec<(Value, Value)>, String> {
    let mut pairs = Vec::with_capacity(items.len() / 2);
    let mut items = items.into_iter();
    while let Some(key) = items.next() {
        let value = items.next().ok_or("odd number of items for a dict")?;
        pairs.push((key, value));
    }
    Ok(pairs)
}

fn set_items(target: &mut Value, items: Vec<(Value, Value)>) -> Result<(), String> {
    let Value::Dict(dict) = target else {
        return Err(format!("SETITEM on {}", target.describe()));
    };
    let mut dict = dict.borrow_mut();
    for (key, value) in items {
        // Python semantics: a repeated string key replaces the earlier value.
        let existing = match &key {
            Value::Str(k) => dict.iter().position(|(old, _)| matches!(old, Value::Str(o) if o == k)),
            _ => None,
        };
        match existing {
            Some(i) => dict[i].1 = value,
            None => dict.push((key, value)),
        }
    }
    Ok(())
}

fn int_list(value: &Value, what: &str) -> Result<Vec<i64>, String> {
    let Value::Tuple(items) = value else {
        return Err(format!("{what} is {}, not a tuple", value.describe()));
    };
    items
        .iter()
        .map(|item| match item {
            Value::Int(v) => Ok(*v),
            other => Err(format!("{what} holds {}", other.describe())),
        })
        .collect()
}

/// `BUILD`: sets the state of the object on top of the stack.
fn build(target: &mut Value, state: Value) -> Result<(), String> {
    match target {
        Value::Dict(_) => Ok(()),
        Value::Dtype(dtype) => {
            // (version, byte order, subarray, names, fields, elsize, alignment, flags)
            let Value::Tuple(items) = &state else {
                return Err(format!("dtype state is {}", state.describe()));
            };
            let order = items.get(1).and_then(|v| text_of(v)).ok_or("dtype state without a byte order")?;
            if items.get(3).is_some_and(|names| !matches!(names, Value::None)) {
                return Err("structured NumPy dtypes are not supported".into());
            }
            dtype.borrow_mut().byte_order = order.chars().next().unwrap_or('|');
            Ok(())
        }
        Value::Array(array) => {
            // (version, shape, dtype, is_fortran, raw bytes)
            let Value::Tuple(items) = &state else {
                return Err(format!("array state is {}", state.describe()));
            };
            let [Value::Int(_), shape, Value::Dtype(dtype), fortran, data] = items.as_slice() else {
                return Err("array state is not (version, shape, dtype, is_fortran, bytes)".into());
            };
            let fortran_order = match fortran {
                Value::Bool(b) => *b,
                Value::Int(i) => *i != 0,
                other => return Err(format!("array order flag is {}", other.describe())),
            };
            let data = match data {
                Value::Bytes(bytes) => bytes.clone(),
                Value::Str(text) => latin1(text)?,
                other => return Err(format!("array data is {} (object arrays are not supported)", other.describe())),
            };
            *array.borrow_mut() =
                Array { shape: int_list(shape, "array shape")?, dtype: dtype.borrow().clone(), fortran_order, data };
            Ok(())
        }
        other => Err(format!("BUILD on {}", other.describe())),
    }
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
fn reduce(callable: Value, args: &[Value]) -> Result<Value, String> {
    let Value::Global(global) = callable else {
        return Err(format!("REDUCE on {}", callable.describe()));
    };
    match global {
        Global::OrderedDict => match args {
            [] => Ok(Value::Dict(Rc::new(RefCell::new(Vec::new())))),
            _ => Err("OrderedDict with arguments".into()),
        },
        Global::RebuildTensorV2 => {
            // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
            let [Value::Storage(storage), Value::Int(offset), size, stride, ..] = args else {
                return Err("_rebuild_tensor_v2 needs (storage, offset, size, stride, …)".into());
            };
            if !(6..=7).contains(&args.len()) {
                return Err(format!("_rebuild_tensor_v2 with {} arguments", args.len()));
            }
            let size = int_list(size, "size")?;
            let stride = int_list(stride, "stride")?;
            Ok(Value::Tensor(Rc::new(rebuild_tensor(storage, *offset, &size, &stride)?)))
        }
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

/// A contiguous copy of `storage` viewed with `size`, `stride` and `offset`, after checking that the
/// view stays inside the storage (libtorch would otherwise be asked to read out of bounds).
fn rebuild_tensor(storage: &Tensor, offset: i64, size: &[i64], stride: &[i64]) -> Result<Tensor, String> {
    if size.len() != stride.len() {
        return Err(format!("size {size:?} and stride {stride:?} differ in length"));
    }
    if offset < 0 || size.iter().any(|&s| s < 0) || stride.iter().any(|&s| s < 0) {
        return Err(format!("negative offset, size or stride: {offset}, {size:?}, {stride:?}"));
    }
    let numel = storage.numel() as i64;
    if !size.contains(&0) {
        let mut last = offset as i128;
        for (&s, &st) in size.iter().zip(stride) {
            last += (s as i128 - 1) * st as i128;
        }
        if last >= numel as i128 {
            return Err(format!(
                "tensor of size {size:?}, stride {stride:?} at offset {offset} reaches past its storage of {numel} elements"
            ));
        }
    }
    storage.f_as_strided(size, stride, offset).and_then(|view| view.f_contiguous()).map_err(|e| e.to_string())
}


#[cfg(test)]
mod tests {
    use super::*;

    fn no_storages(_: &str, _: Kind, _: i64) -> Result<Tensor, String> {
        Err("no storages here".into())
    }

    /// `numpy.array(..., order)` of shape [2, 3] as NumPy pickles it at protocol 2 (Python 2 strings).
    fn pickled_array(descr: &str, byte_order: &str, fortran: bool, data: &[u8]) -> Vec<u8> {
        let mut p = b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R(K\x01K\x02K\x03\x86"
            .to_vec();
        p.extend_from_slice(b"cnumpy\ndtype\nU\x02");
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
        match unpickle(pickle, &mut no_storages).unwrap() {
            Value::Array(array) => array.borrow().clone(),
            other => panic!("unpickled {}", other.describe()),
        }
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
}
