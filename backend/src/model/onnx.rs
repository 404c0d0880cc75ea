//! ONNX export of a trained ResNet-18, verified before it is handed out.
//!
//! [`export`] writes the model as an ONNX file (opset [`OPSET`]) from its safetensors weights: input
//! `input`, float32 `[N, 3, S, S]` already normalised as the run was trained; output `logits`, `[N, K]`;
//! `metadata_props` holding `classes`, `mean`, `std` (JSON lists) and `input_size`. The graph is
//! torchvision's ResNet-18 in evaluation mode, operation for operation: Conv, BatchNormalization, Relu,
//! MaxPool, Add, GlobalAveragePool, Flatten, Gemm.
//!
//! [`run`] executes such a file — parsed back from its bytes, not from what [`export`] meant to write —
//! with libtorch, node by node; [`export_verified`] compares its logits with the model's on given
//! images and refuses the file when any differs by more than [`TOLERANCE`].
//!
//! The protobuf messages are the subset of `onnx.proto` the file needs, derived with `prost` (field
//! numbers as in onnx.proto).

use crate::model::{ModelMetadata, ResNet18};
use prost::Message;
use std::collections::HashMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// The ONNX operator set the file declares.
pub const OPSET: i64 = 17;
/// ONNX IR version for opset 17.
const IR_VERSION: i64 = 8;
/// Largest difference in any logit between the file and the model for the file to be handed out.
pub const TOLERANCE: f64 = 1e-4;
/// torchvision's batch-norm epsilon.
const BATCH_NORM_EPSILON: f32 = 1e-5;

/// Why no ONNX file was produced.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// The checkpoint lacks a ResNet-18 weight.
    #[error("the checkpoint has no {0}: it is not a ResNet-18 saved by Transfer Studio")]
    MissingWeight(String),
    /// The file written does not compute what the model computes.
    #[error(
        "the exported ONNX file does not reproduce the model: its logits differ by up to {difference:.1e} \
         (more than {TOLERANCE:.0e}), so it was not exported"
    )]
    Mismatch {
        /// The largest difference found.
        difference: f64,
    },
    /// The file could not be read back or run.
    #[error("the exported ONNX file could not be run: {0}")]
    Unreadable(String),
    /// libtorch refused an operation.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

/// The ONNX file of the model whose weights are `weights` (torchvision names), described by `metadata`.
pub fn export(weights: &HashMap<String, Tensor>, metadata: &ModelMetadata) -> Result<Vec<u8>, OnnxError> {
    let mut graph = GraphWriter { weights, nodes: Vec::new(), initializers: Vec::new() };
    let mut x = graph.conv_bn("input", "conv1", "bn1", 2, 3)?;
    x = graph.node("Relu", &[&x], "relu", vec![]);
    x = graph.node(
        "MaxPool",
        &[&x],
        "maxpool",
        vec![ints("kernel_shape", &[3, 3]), ints("strides", &[2, 2]), ints("pads", &[1; 4])],
    );
    for layer in 1..=4 {
        for block in 0..2 {
            let stride = if layer > 1 && block == 0 { 2 } else { 1 };
            x = graph.basic_block(&x, &format!("layer{layer}.{block}"), stride)?;
        }
    }
    x = graph.node("GlobalAveragePool", &[&x], "avgpool", vec![]);
    x = graph.node("Flatten", &[&x], "flatten", vec![int("axis", 1)]);
    let (fc_weight, fc_bias) = (graph.weight("fc.weight")?, graph.weight("fc.bias")?);
    graph.nodes.push(node("Gemm", &[&x, &fc_weight, &fc_bias], "logits", "fc", vec![int("transB", 1)]));
    let side = i64::from(metadata.input_size);
    let classes = metadata.classes.len() as i64;
    let model = proto::Model {
        ir_version: IR_VERSION,
        opset_import: vec![proto::OperatorSetId { domain: String::new(), version: OPSET }],
        producer_name: "transfer-studio".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(proto::Graph {
            name: "resnet18".into(),
            node: graph.nodes,
            initializer: graph.initializers,
            input: vec![value_info("input", &[None, Some(3), Some(side), Some(side)])],
            output: vec![value_info("logits", &[None, Some(classes)])],
        }),
        metadata_props: vec![
            entry("classes", serde_json::to_string(&metadata.classes).expect("strings serialise")),
            entry("mean", serde_json::to_string(&metadata.mean).expect("numbers serialise")),
            entry("std", serde_json::to_string(&metadata.std).expect("numbers serialise")),
            entry("input_size", metadata.input_size.to_string()),
        ],
    };
    Ok(model.encode_to_vec())
}

/// [`export`] of the checkpoint at `path`, run on `images` (`[N, 3, S, S]`, normalised) and compared
/// with the model: the file's bytes and the largest logit difference, or [`OnnxError::Mismatch`].
pub fn export_verified(path: &Path, metadata: &ModelMetadata, images: &Tensor) -> Result<(Vec<u8>, f64), OnnxError> {
    let weights: HashMap<String, Tensor> = Tensor::read_safetensors(path)?.into_iter().collect();
    let bytes = export(&weights, metadata)?;
    let mut model = ResNet18::new(Device::Cpu, metadata.classes.len(), 0);
    model.load_all(path).map_err(|e| OnnxError::Unreadable(e.to_string()))?;
    let difference = verify(&bytes, &model, images)?;
    Ok((bytes, difference))
}

/// Runs the ONNX file `bytes` and `model` on `images`: the largest logit difference, or
/// [`OnnxError::Mismatch`] when it is over [`TOLERANCE`].
pub fn verify(bytes: &[u8], model: &ResNet18, images: &Tensor) -> Result<f64, OnnxError> {
    let expected = tch::no_grad(|| model.forward_t(images, false)); // [N, K]
    let found = run(bytes, images)?; // [N, K]
    let difference = (expected - found).abs().max().double_value(&[]);
    if difference.is_nan() || difference > TOLERANCE {
        return Err(OnnxError::Mismatch { difference });
    }
    Ok(difference)
}

/// Runs the ONNX file `bytes` (of the operators [`export`] writes) on `input` with libtorch; its output.
pub fn run(bytes: &[u8], input: &Tensor) -> Result<Tensor, OnnxError> {
    let model = proto::Model::decode(bytes).map_err(|e| OnnxError::Unreadable(e.to_string()))?;
    let graph = model.graph.ok_or_else(|| OnnxError::Unreadable("no graph".into()))?;
    let mut values: HashMap<String, Tensor> = HashMap::new();
    for initializer in &graph.initializer {
        values.insert(initializer.name.clone(), tensor_of(initializer)?);
    }
    let input_name = graph.input.first().map_or("input", |i| i.name.as_str());
    values.insert(input_name.to_string(), input.shallow_clone());
    tch::no_grad(|| {
        for node in &graph.node {
            let output = run_node(node, &values)?;
            let name =
                node.output.first().ok_or_else(|| OnnxError::Unreadable(format!("{} has no output", node.name)))?;
            values.insert(name.clone(), output);
        }
        let output = graph.output.first().map_or("logits", |o| o.name.as_str());
        values.remove(output).ok_or_else(|| OnnxError::Unreadable(format!("nothing computes {output}")))
    })
}

/// One node's output.
fn run_node(node: &proto::Node, values: &HashMap<String, Tensor>) -> Result<Tensor, OnnxError> {
    let unreadable = |why: String| OnnxError::Unreadable(format!("node {} ({}): {why}", node.name, node.op_type));
    let inputs: Vec<&Tensor> = node
        .input
        .iter()
        .map(|name| values.get(name).ok_or_else(|| unreadable(format!("no value {name}"))))
        .collect::<Result<_, _>>()?;
    let attribute = |name: &str| node.attribute.iter().find(|a| a.name == name);
    let ints_of = |name: &str, default: &[i64]| attribute(name).map_or(default.to_vec(), |a| a.ints.clone());
    let symmetric = |pads: Vec<i64>| match pads.as_slice() {
        [top, left, bottom, right] if top == bottom && left == right => Ok([*top, *left]),
        _ => Err(unreadable(format!("pads {pads:?} are not symmetric"))),
    };
    let first = inputs.first().ok_or_else(|| unreadable("no input".into()))?;
    Ok(match node.op_type.as_str() {
        "Conv" => first.f_conv2d(
            inputs[1],
            inputs.get(2).copied(),
            ints_of("strides", &[1, 1]),
            symmetric(ints_of("pads", &[0; 4]))?,
            ints_of("dilations", &[1, 1]),
            attribute("group").map_or(1, |a| a.i),
        )?,
        "BatchNormalization" => {
            let epsilon = attribute("epsilon").map_or(1e-5, |a| f64::from(a.f));
            let [scale, bias, mean, var] = [1, 2, 3, 4].map(|i| inputs.get(i).copied());
            first.f_batch_norm(scale, bias, mean, var, false, 0.0, epsilon, false)?
        }
        "Relu" => first.f_relu()?,
        "Add" => first.f_add(inputs[1])?,
        "MaxPool" => first.f_max_pool2d(
            ints_of("kernel_shape", &[1, 1]),
            ints_of("strides", &[1, 1]),
            symmetric(ints_of("pads", &[0; 4]))?,
            [1, 1],
            false,
        )?,
        "GlobalAveragePool" => first.f_adaptive_avg_pool2d([1, 1])?,
        "Flatten" => first.f_flatten(attribute("axis").map_or(1, |a| a.i), -1)?,
        "Gemm" if attribute("transB").is_some_and(|a| a.i == 1) => {
            first.f_matmul(&inputs[1].f_tr()?)?.f_add(inputs[2])?
        }
        other => return Err(unreadable(format!("operator {other} is not one the exporter writes"))),
    })
}

/// A float32 initializer as a tensor.
fn tensor_of(initializer: &proto::Tensor) -> Result<Tensor, OnnxError> {
    if initializer.data_type != proto::FLOAT {
        return Err(OnnxError::Unreadable(format!("{} is not float32", initializer.name)));
    }
    let floats: Vec<f32> =
        initializer.raw_data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let expected: i64 = initializer.dims.iter().product();
    if floats.len() as i64 != expected {
        return Err(OnnxError::Unreadable(format!(
            "{} holds {} values for {:?}",
            initializer.name,
            floats.len(),
            initializer.dims
        )));
    }
    Ok(Tensor::from_slice(&floats).f_view(initializer.dims.as_slice())?)
}

/// Builds the graph: nodes in order, weights as initializers under their torchvision names.
struct GraphWriter<'a> {
    weights: &'a HashMap<String, Tensor>,
    nodes: Vec<proto::Node>,
    initializers: Vec<proto::Tensor>,
}

impl GraphWriter<'_> {
    /// Adds weight `name` as an initializer; its name.
    fn weight(&mut self, name: &str) -> Result<String, OnnxError> {
        let tensor = self.weights.get(name).ok_or_else(|| OnnxError::MissingWeight(name.to_string()))?;
        let tensor = tensor.to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
        let floats = Vec::<f32>::try_from(tensor.flatten(0, -1))?;
        self.initializers.push(proto::Tensor {
            dims: tensor.size(),
            data_type: proto::FLOAT,
            name: name.to_string(),
            raw_data: floats.iter().flat_map(|f| f.to_le_bytes()).collect(),
        });
        Ok(name.to_string())
    }

    /// Adds a node named `name` whose one output is also `name`; that name.
    fn node(&mut self, op: &str, inputs: &[&str], name: &str, attributes: Vec<proto::Attribute>) -> String {
        self.nodes.push(node(op, inputs, name, name, attributes));
        name.to_string()
    }

    /// A `kernel`-square convolution `conv` (no bias, padding kernel/2) then batch norm `bn`.
    fn conv_bn(&mut self, x: &str, conv: &str, bn: &str, stride: i64, padding: i64) -> Result<String, OnnxError> {
        let weight = self.weight(&format!("{conv}.weight"))?;
        let kernel = self.weights[&weight].size()[2];
        let conv_attributes = vec![
            ints("kernel_shape", &[kernel, kernel]),
            ints("strides", &[stride, stride]),
            ints("pads", &[padding; 4]),
        ];
        let convolved = self.node("Conv", &[x, &weight], conv, conv_attributes);
        let [scale, bias, mean, var] =
            ["weight", "bias", "running_mean", "running_var"].map(|part| self.weight(&format!("{bn}.{part}")));
        let inputs = [convolved.as_str(), &scale?, &bias?, &mean?, &var?];
        Ok(self.node("BatchNormalization", &inputs, bn, vec![float("epsilon", BATCH_NORM_EPSILON)]))
    }

    /// torchvision's `BasicBlock` named `block` (`layer2.0`): two 3x3 conv-bn, the shortcut (a 1x1
    /// conv-bn where the shape changes), their sum, ReLU.
    fn basic_block(&mut self, x: &str, block: &str, stride: i64) -> Result<String, OnnxError> {
        let first = self.conv_bn(x, &format!("{block}.conv1"), &format!("{block}.bn1"), stride, 1)?;
        let first = self.node("Relu", &[&first], &format!("{block}.relu1"), vec![]);
        let second = self.conv_bn(&first, &format!("{block}.conv2"), &format!("{block}.bn2"), 1, 1)?;
        let shortcut = if self.weights.contains_key(&format!("{block}.downsample.0.weight")) {
            let (conv, bn) = (format!("{block}.downsample.0"), format!("{block}.downsample.1"));
            self.conv_bn(x, &conv, &bn, stride, 0)?
        } else {
            x.to_string()
        };
        let sum = self.node("Add", &[&second, &shortcut], &format!("{block}.add"), vec![]);
        Ok(self.node("Relu", &[&sum], &format!("{block}.relu2"), vec![]))
    }
}

fn node(op: &str, inputs: &[&str], output: &str, name: &str, attribute: Vec<proto::Attribute>) -> proto::Node {
    proto::Node {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.to_string()],
        name: name.to_string(),
        op_type: op.to_string(),
        attribute,
    }
}

fn ints(name: &str, values: &[i64]) -> proto::Attribute {
    proto::Attribute { name: name.into(), ints: values.to_vec(), r#type: proto::ATTRIBUTE_INTS, ..Default::default() }
}

fn int(name: &str, value: i64) -> proto::Attribute {
    proto::Attribute { name: name.into(), i: value, r#type: proto::ATTRIBUTE_INT, ..Default::default() }
}

fn float(name: &str, value: f32) -> proto::Attribute {
    proto::Attribute { name: name.into(), f: value, r#type: proto::ATTRIBUTE_FLOAT, ..Default::default() }
}

fn entry(key: &str, value: String) -> proto::StringStringEntry {
    proto::StringStringEntry { key: key.into(), value }
}

/// A float32 tensor value of `dims` (`None`: a dimension named `N`, the batch).
fn value_info(name: &str, dims: &[Option<i64>]) -> proto::ValueInfo {
    let dim = dims
        .iter()
        .map(|d| match d {
            Some(value) => proto::Dimension { value: Some(proto::dimension::Value::DimValue(*value)) },
            None => proto::Dimension { value: Some(proto::dimension::Value::DimParam("N".into())) },
        })
        .collect();
    let tensor_type = proto::TensorType { elem_type: proto::FLOAT, shape: Some(proto::Shape { dim }) };
    proto::ValueInfo { name: name.into(), r#type: Some(proto::Type { tensor_type: Some(tensor_type) }) }
}

/// The messages of `onnx.proto` the exporter writes, with its field numbers.
mod proto {
    /// `TensorProto.DataType.FLOAT`.
    pub const FLOAT: i32 = 1;
    /// `AttributeProto.AttributeType` values.
    pub const ATTRIBUTE_FLOAT: i32 = 1;
    pub const ATTRIBUTE_INT: i32 = 2;
    pub const ATTRIBUTE_INTS: i32 = 7;

    /// `ModelProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Model {
        #[prost(int64, tag = "1")]
        pub ir_version: i64,
        #[prost(string, tag = "2")]
        pub producer_name: String,
        #[prost(string, tag = "3")]
        pub producer_version: String,
        #[prost(message, optional, tag = "7")]
        pub graph: Option<Graph>,
        #[prost(message, repeated, tag = "8")]
        pub opset_import: Vec<OperatorSetId>,
        #[prost(message, repeated, tag = "14")]
        pub metadata_props: Vec<StringStringEntry>,
    }

    /// `OperatorSetIdProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct OperatorSetId {
        #[prost(string, tag = "1")]
        pub domain: String,
        #[prost(int64, tag = "2")]
        pub version: i64,
    }

    /// `StringStringEntryProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StringStringEntry {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// `GraphProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Graph {
        #[prost(message, repeated, tag = "1")]
        pub node: Vec<Node>,
        #[prost(string, tag = "2")]
        pub name: String,
        #[prost(message, repeated, tag = "5")]
        pub initializer: Vec<Tensor>,
        #[prost(message, repeated, tag = "11")]
        pub input: Vec<ValueInfo>,
        #[prost(message, repeated, tag = "12")]
        pub output: Vec<ValueInfo>,
    }

    /// `NodeProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Node {
        #[prost(string, repeated, tag = "1")]
        pub input: Vec<String>,
        #[prost(string, repeated, tag = "2")]
        pub output: Vec<String>,
        #[prost(string, tag = "3")]
        pub name: String,
        #[prost(string, tag = "4")]
        pub op_type: String,
        #[prost(message, repeated, tag = "5")]
        pub attribute: Vec<Attribute>,
    }

    /// `AttributeProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Attribute {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(float, tag = "2")]
        pub f: f32,
        #[prost(int64, tag = "3")]
        pub i: i64,
        #[prost(int64, repeated, tag = "8")]
        pub ints: Vec<i64>,
        #[prost(int32, tag = "20")]
        pub r#type: i32,
    }

    /// `TensorProto`, float data as little-endian `raw_data`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Tensor {
        #[prost(int64, repeated, tag = "1")]
        pub dims: Vec<i64>,
        #[prost(int32, tag = "2")]
        pub data_type: i32,
        #[prost(string, tag = "8")]
        pub name: String,
        #[prost(bytes = "vec", tag = "9")]
        pub raw_data: Vec<u8>,
    }

    /// `ValueInfoProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ValueInfo {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "2")]
        pub r#type: Option<Type>,
    }

    /// `TypeProto` (tensor types only).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Type {
        #[prost(message, optional, tag = "1")]
        pub tensor_type: Option<TensorType>,
    }

    /// `TypeProto.Tensor`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorType {
        #[prost(int32, tag = "1")]
        pub elem_type: i32,
        #[prost(message, optional, tag = "2")]
        pub shape: Option<Shape>,
    }

    /// `TensorShapeProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Shape {
        #[prost(message, repeated, tag = "1")]
        pub dim: Vec<Dimension>,
    }

    /// `TensorShapeProto.Dimension`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dimension {
        #[prost(oneof = "dimension::Value", tags = "1, 2")]
        pub value: Option<dimension::Value>,
    }

    /// The oneof of [`Dimension`].
    pub mod dimension {
        /// A fixed size or a named one.
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Value {
            #[prost(int64, tag = "1")]
            DimValue(i64),
            #[prost(string, tag = "2")]
            DimParam(String),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(classes: usize, side: u32) -> ModelMetadata {
        ModelMetadata {
            architecture: "resnet18".into(),
            classes: (0..classes).map(|i| format!("class {i}")).collect(),
            mean: [0.5; 3],
            std: [0.25; 3],
            input_size: side,
            epoch: 1,
            config: shared::TrainConfig::for_dataset("x"),
        }
    }

    /// A model with trained-looking batch-norm statistics (fresh ones are 0 and 1, which hide mistakes).
    fn saved_model(dir: &Path, classes: usize) -> std::path::PathBuf {
        let model = ResNet18::new(Device::Cpu, classes, 4);
        tch::manual_seed(5);
        for (name, tensor, _) in model.parameters() {
            if name.ends_with("running_mean") || name.ends_with("running_var") || name.contains("bn") {
                tch::no_grad(|| tensor.shallow_clone().copy_(&(Tensor::rand_like(&tensor) * 0.5 + 0.75)));
            }
        }
        let path = dir.join("model.safetensors");
        model.save(&path, None).unwrap();
        path
    }

    #[test]
    fn the_exported_file_computes_the_models_logits() {
        let dir = tempfile::tempdir().unwrap();
        let path = saved_model(dir.path(), 3);
        tch::manual_seed(1);
        for side in [32, 64] {
            let images = Tensor::randn([2, 3, side, side], (Kind::Float, Device::Cpu));
            let (bytes, difference) = export_verified(&path, &metadata(3, side as u32), &images).unwrap();
            assert!(difference <= 1e-5, "{side} px: {difference}");
            assert_eq!(run(&bytes, &images).unwrap().size(), [2, 3]);
        }
    }

    #[test]
    fn the_file_declares_opset_17_its_io_and_the_preprocessing() {
        let dir = tempfile::tempdir().unwrap();
        let path = saved_model(dir.path(), 3);
        let weights: HashMap<String, Tensor> = Tensor::read_safetensors(&path).unwrap().into_iter().collect();
        let model = proto::Model::decode(export(&weights, &metadata(3, 32)).unwrap().as_slice()).unwrap();
        assert_eq!(model.opset_import[0].version, 17);
        let graph = model.graph.unwrap();
        assert_eq!((graph.input[0].name.as_str(), graph.output[0].name.as_str()), ("input", "logits"));
        let props: HashMap<&str, &str> =
            model.metadata_props.iter().map(|e| (e.key.as_str(), e.value.as_str())).collect();
        assert_eq!(props["classes"], r#"["class 0","class 1","class 2"]"#);
        assert_eq!((props["mean"], props["std"], props["input_size"]), ("[0.5,0.5,0.5]", "[0.25,0.25,0.25]", "32"));
    }

    #[test]
    fn a_file_that_computes_something_else_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = saved_model(dir.path(), 3);
        let mut weights: HashMap<String, Tensor> = Tensor::read_safetensors(&path).unwrap().into_iter().collect();
        let mut model = ResNet18::new(Device::Cpu, 3, 0);
        model.load_all(&path).unwrap();
        let images = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        // The file of a model whose head is shifted by 0.01 does not pass for the real model.
        let shifted = weights["fc.bias"].shallow_clone() + 0.01;
        weights.insert("fc.bias".into(), shifted);
        let bytes = export(&weights, &metadata(3, 32)).unwrap();
        assert!(
            matches!(verify(&bytes, &model, &images), Err(OnnxError::Mismatch { difference }) if difference > 0.009)
        );
        weights.remove("layer3.0.bn1.running_var");
        assert!(
            matches!(export(&weights, &metadata(3, 32)), Err(OnnxError::MissingWeight(name)) if name == "layer3.0.bn1.running_var")
        );
    }
}
