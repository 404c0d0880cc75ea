//! ResNet-18 in torchvision's layout, with a classification head sized to the dataset, and the files a
//! trained model is kept in.
//!
//! Variable names are exactly torchvision's (`conv1.weight`, `layer1.0.bn1.running_mean`, `fc.weight`, …),
//! so a torchvision state dict loads here and a saved model loads into `torchvision.models.resnet18`.
//! The backbone is built here rather than taken from `tch::vision` so that one case can be computed
//! faster: a convolution whose output is a single position (all of the last stage's on 32x32 inputs)
//! is the matrix product of the input with the kernel taps that touch it, and is computed as one; see
//! [`Conv`]. Everything else is torchvision's arithmetic, operation for operation.
//!
//! A saved model is `model.safetensors` (the weights) plus its [`ModelMetadata`] (class names,
//! normalisation, input size and the training config), so classification preprocesses exactly as training
//! did. The metadata is written twice: as `model.json` beside the weights, and as JSON in the safetensors
//! header's metadata under [`METADATA_KEY`], so a checkpoint downloaded from the page is enough on its own
//! (torchvision and the `safetensors` libraries ignore header metadata).

pub mod architecture;
pub mod folded;
pub mod onnx;
pub mod optim;
pub mod pretrained;
pub(crate) mod schedule;
pub mod torch_extras;
pub mod weights;

use serde::{Deserialize, Serialize};
use shared::TrainConfig;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::nn;
use tch::{Device, Kind, Tensor};

/// File name of a saved model's weights.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// File name of a saved model's metadata.
pub const METADATA_FILE: &str = "model.json";
/// Key of the [`ModelMetadata`] JSON in a saved model's safetensors header.
pub const METADATA_KEY: &str = "transfer_studio";
/// Features ResNet-18's backbone produces per image.
const FEATURES: i64 = 512;

/// What can go wrong building, loading or saving a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The weights file does not exist.
    #[error("weights file {0} does not exist")]
    MissingFile(PathBuf),
    /// libtorch could not read or write a file.
    #[error("could not read or write {path}: {source}")]
    Torch {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: tch::TchError,
    },
    /// A PyTorch checkpoint (`.pth`/`.pt`) could not be read.
    #[error(transparent)]
    Checkpoint(#[from] crate::formats::pth::PthError),
    /// A tensor the model needs is absent from the weights file.
    #[error("{path} has no tensor \"{name}\": is it a torchvision ResNet-18 state dict?")]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The variable name.
        name: String,
    },
    /// A tensor in the weights file has the wrong shape.
    #[error("{path}: tensor \"{name}\" has shape {found:?}, ResNet-18 needs {expected:?}")]
    ShapeMismatch {
        /// The file.
        path: PathBuf,
        /// The variable name.
        name: String,
        /// Shape in the file.
        found: Vec<i64>,
        /// Shape the model needs.
        expected: Vec<i64>,
    },
    /// The file's tensors are not exactly ResNet-18's.
    #[error("{path} is not a ResNet-18 state dict: {source}")]
    NotResNet18 {
        /// The file.
        path: PathBuf,
        /// How it differs.
        source: architecture::NotResNet18,
    },
    /// The metadata file could not be read or written.
    #[error("model metadata {path}: {why}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
}

/// Everything needed to use saved weights the way they were trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMetadata {
    /// Architecture name; always `"resnet18"` for now.
    pub architecture: String,
    /// Class names in output order.
    pub classes: Vec<String>,
    /// Per-channel mean subtracted from pixels in `[0, 1]`.
    pub mean: [f64; 3],
    /// Per-channel standard deviation pixels are divided by.
    pub std: [f64; 3],
    /// Side of the square input images are resized to.
    pub input_size: u32,
    /// The epoch these weights are from (1-based).
    pub epoch: u32,
    /// The full training configuration.
    pub config: TrainConfig,
}

impl ModelMetadata {
    /// Writes the metadata as pretty JSON to `dir/model.json`.
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        let path = dir.join(METADATA_FILE);
        let json = serde_json::to_vec_pretty(self).expect("metadata serialises");
        crate::files::write_atomically(&path, &json).map_err(|e| ModelError::Metadata { path, why: e.to_string() })
    }

    /// Reads `dir/model.json`.
    pub fn load(dir: &Path) -> Result<Self, ModelError> {
        let path = dir.join(METADATA_FILE);
        let bytes =
            std::fs::read(&path).map_err(|e| ModelError::Metadata { path: path.clone(), why: e.to_string() })?;
        serde_json::from_slice(&bytes).map_err(|e| ModelError::Metadata { path, why: e.to_string() })
    }

    /// A saved model's metadata and weights file: `path` is a checkpoint `.safetensors` (the metadata in
    /// its header) or a folder holding [`WEIGHTS_FILE`] and [`METADATA_FILE`] (a run's, or `train --out`).
    pub fn locate(path: &Path) -> Result<(Self, PathBuf), ModelError> {
        if path.is_file() {
            Ok((ModelMetadata::from_checkpoint(path)?, path.to_path_buf()))
        } else {
            Ok((ModelMetadata::load(path)?, path.join(WEIGHTS_FILE)))
        }
    }

    /// Reads the metadata a saved model's safetensors file carries in its header.
    pub fn from_checkpoint(path: &Path) -> Result<Self, ModelError> {
        let error = |why: String| ModelError::Metadata { path: path.to_path_buf(), why };
        let bytes = std::fs::read(path).map_err(|e| error(e.to_string()))?;
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| error(format!("not a safetensors file ({e:?})")))?;
        let json = header.metadata().as_ref().and_then(|m| m.get(METADATA_KEY)).ok_or_else(|| {
            error(
                "no Transfer Studio metadata in its header (class names, preprocessing); give the run's \
                 folder, or a checkpoint downloaded from Transfer Studio"
                    .to_string(),
            )
        })?;
        serde_json::from_str(json).map_err(|e| error(e.to_string()))
    }
}

/// A tensor's bytes for the safetensors writer.
struct TensorBytes {
    dtype: safetensors::Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl TensorBytes {
    fn of(tensor: &Tensor) -> Result<Self, tch::TchError> {
        let dtype = match tensor.kind() {
            Kind::Float => safetensors::Dtype::F32,
            Kind::Double => safetensors::Dtype::F64,
            Kind::Half => safetensors::Dtype::F16,
            Kind::BFloat16 => safetensors::Dtype::BF16,
            Kind::Int64 => safetensors::Dtype::I64,
            other => return Err(tch::TchError::Convert(format!("cannot save a {other:?} tensor"))),
        };
        // Contiguous (NCHW) copies of channels-last weights: the file format, and torchvision, want NCHW.
        let tensor = tensor.to_device(Device::Cpu).contiguous();
        let numel = tensor.numel();
        let mut data = vec![0u8; numel * tensor.kind().elt_size_in_bytes()];
        tensor.f_copy_data_u8(&mut data, numel)?;
        Ok(TensorBytes { dtype, shape: tensor.size().iter().map(|&d| d as usize).collect(), data })
    }
}

impl safetensors::View for TensorBytes {
    fn dtype(&self) -> safetensors::Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// A convolution of the backbone: no bias, square kernel, stride and padding, as in torchvision's
/// ResNet.
///
/// When the output is a single position (a 1x1 feature map convolved with padding 1, or a 2x2 one with
/// stride 2: the whole last stage on 32x32 inputs), only the kernel taps that fall on the input take part
/// and the rest multiply zero padding. If a backward pass will follow, such a convolution is computed as
/// the matrix product of the flattened input window with those taps: the same sum without the zero
/// terms. oneDNN computes every tap, and its backward pass is slow on these shapes: a 512-channel one
/// took 11 ms per batch of 64 on two CPU cores, and the whole training step got 17 % faster with the
/// product. Gradients come out the same, zero for the taps that only ever see padding. Without gradients
/// (evaluation, classification) oneDNN's forward pass is fast and is kept: the product would first
/// gather the taps out of the weight, which costs more than it saves for one image.
struct Conv {
    weight: Tensor,
    stride: i64,
    padding: i64,
}

impl Conv {
    /// Creates the weight `path.weight`, `[c_out, c_in, kernel, kernel]`, initialised as `nn::conv2d` does.
    fn new(path: nn::Path, c_in: i64, c_out: i64, kernel: i64, padding: i64, stride: i64) -> Self {
        let config = nn::ConvConfig { stride, padding, bias: false, ..Default::default() };
        Conv { weight: nn::conv2d(path, c_in, c_out, kernel, config).ws, stride, padding }
    }

    /// `[B, c_in, H, W]` -> `[B, c_out, H', W']`.
    fn forward(&self, xs: &Tensor) -> Tensor {
        match self.product_taps(xs) {
            Some((rows, columns)) => {
                let batch = xs.size()[0];
                let (first_row, first_column) = (rows.start - self.padding, columns.start - self.padding);
                let (height, width) = (rows.end - rows.start, columns.end - columns.start);
                // The input window the taps see, and those taps, flattened alike (channel, row, column).
                let window = xs.narrow(2, first_row, height).narrow(3, first_column, width).reshape([batch, -1]);
                let taps = self.weight.narrow(2, rows.start, height).narrow(3, columns.start, width);
                let taps = taps.reshape([taps.size()[0], -1]); // [c_out, c_in * height * width]
                window.linear::<Tensor>(&taps, None).view([batch, -1, 1, 1])
            }
            None => xs.conv2d(&self.weight, None::<Tensor>, [self.stride; 2], [self.padding; 2], [1, 1], 1),
        }
    }

    /// The kernel rows and columns that fall on the input `xs` when it is to be convolved as a matrix
    /// product: its output is one position and a backward pass will follow. `None` otherwise.
    fn product_taps(&self, xs: &Tensor) -> Option<(std::ops::Range<i64>, std::ops::Range<i64>)> {
        let backward_follows =
            (self.weight.requires_grad() || xs.requires_grad()) && crate::model::torch_extras::grad_enabled();
        if !backward_follows {
            return None;
        }
        self.single_position_taps(xs.size()[2], xs.size()[3])
    }

    /// For an input of `height` x `width` whose output is one position, the kernel rows and columns that
    /// fall on the input (the others fall on padding); `None` for any larger output.
    fn single_position_taps(&self, height: i64, width: i64) -> Option<(std::ops::Range<i64>, std::ops::Range<i64>)> {
        let kernel = self.weight.size()[2];
        let outputs = |side: i64| (side + 2 * self.padding - kernel) / self.stride + 1;
        if outputs(height) != 1 || outputs(width) != 1 || self.padding >= kernel {
            return None;
        }
        // The output's window starts `padding` before the input: tap i sees input row i - padding.
        let taps = |side: i64| self.padding..(self.padding + side).min(kernel);
        Some((taps(height), taps(width)))
    }
}

/// torchvision's `BasicBlock`: two 3x3 convolutions with batch norm, and a shortcut that is a strided 1x1
/// convolution with batch norm where the shape changes.
struct BasicBlock {
    conv1: Conv,
    bn1: nn::BatchNorm,
    conv2: Conv,
    bn2: nn::BatchNorm,
    downsample: Option<(Conv, nn::BatchNorm)>,
}

impl BasicBlock {
    fn new(path: nn::Path, c_in: i64, c_out: i64, stride: i64) -> Self {
        let conv1 = Conv::new(&path / "conv1", c_in, c_out, 3, 1, stride);
        let bn1 = nn::batch_norm2d(&path / "bn1", c_out, Default::default());
        let conv2 = Conv::new(&path / "conv2", c_out, c_out, 3, 1, 1);
        let bn2 = nn::batch_norm2d(&path / "bn2", c_out, Default::default());
        let downsample = (stride != 1 || c_in != c_out).then(|| {
            let shortcut = &path / "downsample";
            let conv = Conv::new(&shortcut / "0", c_in, c_out, 1, 0, stride);
            (conv, nn::batch_norm2d(&shortcut / "1", c_out, Default::default()))
        });
        BasicBlock { conv1, bn1, conv2, bn2, downsample }
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let ys = self.conv1.forward(xs).apply_t(&self.bn1, train).relu();
        let ys = self.conv2.forward(&ys).apply_t(&self.bn2, train);
        let shortcut = match &self.downsample {
            Some((conv, bn)) => conv.forward(xs).apply_t(bn, train),
            None => xs.shallow_clone(),
        };
        (shortcut + ys).relu()
    }
}

/// ResNet-18 up to the pooled features `[B, 512]`, with torchvision's variable names (created in the
/// order `tch::vision::resnet` creates them, and initialised as it does).
struct Backbone {
    conv1: Conv,
    bn1: nn::BatchNorm,
    blocks: Vec<BasicBlock>,
}

impl Backbone {
    fn new(root: &nn::Path) -> Self {
        let conv1 = Conv::new(root / "conv1", 3, 64, 7, 3, 2);
        let bn1 = nn::batch_norm2d(root / "bn1", 64, Default::default());
        let mut blocks = Vec::new();
        let layers = [("layer1", 64, 64, 1), ("layer2", 64, 128, 2), ("layer3", 128, 256, 2), ("layer4", 256, 512, 2)];
        for (layer, c_in, c_out, stride) in layers {
            blocks.push(BasicBlock::new(root / layer / "0", c_in, c_out, stride));
            blocks.push(BasicBlock::new(root / layer / "1", c_out, c_out, 1));
        }
        Backbone { conv1, bn1, blocks }
    }

    fn forward_t(&self, images: &Tensor, train: bool) -> Tensor {
        let xs = self.stages(&self.stem(images, train), 0..4, train);
        xs.adaptive_avg_pool2d([1, 1]).flat_view()
    }

    /// `[B, 3, H, W]` -> `[B, 64, H/4, W/4]`: the convolution, batch norm, ReLU and max pool before `layer1`.
    fn stem(&self, images: &Tensor, train: bool) -> Tensor {
        let stem = self.conv1.forward(images).apply_t(&self.bn1, train).relu();
        stem.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false)
    }

    /// Runs `xs` through torchvision's `layer{i + 1}` for each `i` in `stages` (two blocks each).
    fn stages(&self, xs: &Tensor, stages: std::ops::Range<usize>, train: bool) -> Tensor {
        let mut xs = xs.shallow_clone();
        for block in &self.blocks[2 * stages.start..2 * stages.end] {
            xs = block.forward_t(&xs, train);
        }
        xs
    }
}

/// Sets every variable of `vs` as torchvision initialises a ResNet-18, drawing from a stream of its own
/// seeded by `seed`: convolutions Kaiming-normal on their fan-out, batch-norm scales one and shifts zero,
/// the head uniform within one over the square root of its inputs, as `torch.nn.Linear`.
///
/// libtorch's generator is process-wide: any tensor drawn on another thread (a second run starting, a
/// warm-up batch) would shift a model drawn from it, so the same seed would not always give the same network.
fn draw_initial_weights(vs: &nn::VarStore, seed: u64) {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal, Uniform};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, mut tensor) in variables {
        let dims = tensor.size();
        let mut draw = |distribution: &dyn Fn(&mut rand_chacha::ChaCha8Rng) -> f32| {
            let values: Vec<f32> = (0..tensor.numel()).map(|_| distribution(&mut rng)).collect();
            Tensor::from_slice(&values).view(dims.as_slice())
        };
        let initial = if name.starts_with("fc.") {
            let bound = 1.0 / (FEATURES as f32).sqrt();
            let uniform = Uniform::new(-bound, bound).expect("a positive bound");
            draw(&|rng| uniform.sample(rng))
        } else if dims.len() == 4 {
            let fan_out = nn::init::FanInOut::FanOut.for_weight_dims(&dims) as f32;
            let normal = Normal::new(0.0, (2.0 / fan_out).sqrt()).expect("a finite deviation");
            draw(&|rng| normal.sample(rng))
        } else if name.ends_with(".weight") {
            Tensor::ones(dims.as_slice(), (Kind::Float, Device::Cpu))
        } else {
            continue; // batch-norm shifts and running statistics start as tch makes them: zeros and ones
        };
        tch::no_grad(|| tensor.copy_(&initial.to_device(tensor.device())));
    }
}

/// ResNet-18: torchvision's backbone plus a linear head `fc` with one output per class.
pub struct ResNet18 {
    /// Owns every variable, named as in torchvision.
    pub vs: nn::VarStore,
    backbone: Backbone,
    head: nn::Linear,
    num_classes: i64,
    /// Names of the backbone's learnable tensors (batch-norm running statistics are not among them).
    backbone_parameters: Vec<String>,
    /// Whether convolution weights, and so inputs, are laid out channels-last (see [`ResNet18::use_channels_last`]).
    channels_last: bool,
}

impl ResNet18 {
    /// A network with `num_classes` outputs on `device`, initialised randomly from `seed`.
    pub fn new(device: Device, num_classes: usize, seed: u64) -> Self {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let backbone = Backbone::new(&root);
        let head = nn::linear(&root / "fc", FEATURES, num_classes as i64, Default::default());
        draw_initial_weights(&vs, seed);
        let mut backbone_parameters: Vec<String> = vs
            .variables()
            .into_iter()
            .filter(|(name, tensor)| !name.starts_with("fc.") && tensor.requires_grad())
            .map(|(name, _)| name)
            .collect();
        backbone_parameters.sort();
        ResNet18 { vs, backbone, head, num_classes: num_classes as i64, backbone_parameters, channels_last: false }
    }

    /// The learnable tensors by name, sorted, each with whether it belongs to the backbone.
    pub fn parameters(&self) -> Vec<(String, Tensor, bool)> {
        let variables = self.vs.variables();
        let mut names: Vec<&String> = self.backbone_parameters.iter().collect();
        let head = ["fc.bias".to_string(), "fc.weight".to_string()];
        names.extend(head.iter());
        names
            .into_iter()
            .map(|name| (name.clone(), variables[name].shallow_clone(), !name.starts_with("fc.")))
            .collect()
    }

    /// Freezes or unfreezes the backbone's learnable tensors; the head always trains.
    pub fn set_backbone_trainable(&mut self, trainable: bool) {
        let variables = self.vs.variables();
        for name in &self.backbone_parameters {
            let _ = variables[name].set_requires_grad(trainable);
        }
    }

    /// Logits `[B, classes]` with the backbone in training mode only when `train_backbone`: a frozen
    /// backbone must also keep its batch-norm statistics, so it runs in evaluation mode.
    pub fn forward_parts(&self, images: &Tensor, train_backbone: bool) -> Tensor {
        if self.channels_last {
            let images = crate::model::torch_extras::channels_last(images).expect("images are [B, 3, H, W]");
            return self.backbone.forward_t(&images, train_backbone).apply(&self.head);
        }
        self.backbone.forward_t(images, train_backbone).apply(&self.head)
    }

    /// For Grad-CAM: the output of torchvision's `layer{stage}` (`stage` in 1..=4) `[B, C, h, w]`, as a leaf
    /// that requires grad, and the logits `[B, classes]` computed from it, both in evaluation mode. Only
    /// the part after the stage records a graph: gradients with respect to the activation are all a
    /// caller can take.
    pub fn forward_from_stage(&self, images: &Tensor, stage: u8) -> (Tensor, Tensor) {
        let stage = usize::from(stage.clamp(1, 4));
        let images = if self.channels_last {
            crate::model::torch_extras::channels_last(images).expect("images are [B, 3, H, W]")
        } else {
            images.shallow_clone()
        };
        let activation = tch::no_grad(|| self.backbone.stages(&self.backbone.stem(&images, false), 0..stage, false));
        let activation = activation.detach().set_requires_grad(true);
        let features = self.backbone.stages(&activation, stage..4, false).adaptive_avg_pool2d([1, 1]).flat_view();
        (activation, features.apply(&self.head))
    }

    /// Lays every convolution weight out channels-last (NHWC), and from then on each input too: the
    /// layout tensor-core GPUs convolve fastest. Values, names and saved files are unchanged.
    pub fn use_channels_last(&mut self) -> Result<(), tch::TchError> {
        for (_, mut variable) in self.vs.variables() {
            if variable.dim() == 4 {
                let nhwc = crate::model::torch_extras::channels_last(&variable)?;
                tch::no_grad(|| variable.set_data(&nhwc));
            }
        }
        self.channels_last = true;
        Ok(())
    }

    /// The device its variables are on.
    pub fn device(&self) -> tch::Device {
        self.vs.device()
    }

    /// Number of classes the head predicts.
    pub fn num_classes(&self) -> i64 {
        self.num_classes
    }

    /// Logits `[B, classes]` for normalised images `[B, 3, H, W]`. `train` selects batch statistics
    /// (and updates the running ones) rather than the running statistics.
    pub fn forward_t(&self, images: &Tensor, train: bool) -> Tensor {
        self.forward_parts(images, train)
    }

    /// Copies every backbone tensor (all but `fc.*`) from a torchvision ResNet-18 state dict, in
    /// safetensors format or a PyTorch `.pth`/`.pt` checkpoint (see [`crate::formats::pth`]); the head keeps its
    /// fresh initialisation. Returns how many tensors were loaded.
    pub fn load_backbone(&mut self, path: &Path) -> Result<usize, ModelError> {
        let tensors = read_resnet18(path)?;
        let mut loaded = 0;
        tch::no_grad(|| {
            for (name, mut var) in self.vs.variables() {
                if name.starts_with("fc.") {
                    continue;
                }
                copy_into(&mut var, &name, &tensors, path)?;
                loaded += 1;
            }
            Ok::<(), ModelError>(())
        })?;
        Ok(loaded)
    }

    /// Loads a whole saved model (backbone and head) from a safetensors file or a `.pth`/`.pt` state dict.
    pub fn load_all(&mut self, path: &Path) -> Result<(), ModelError> {
        let tensors = read_resnet18(path)?;
        tch::no_grad(|| {
            for (name, mut var) in self.vs.variables() {
                copy_into(&mut var, &name, &tensors, path)?;
            }
            Ok(())
        })
    }

    /// Saves every variable, with torchvision's names, to a safetensors file, with `metadata` (if any) in
    /// its header under [`METADATA_KEY`]. Written durably through a temporary file (see [`crate::files::write_atomically`]).
    pub fn save(&self, path: &Path, metadata: Option<&ModelMetadata>) -> Result<(), ModelError> {
        let torch = |source| ModelError::Torch { path: path.to_path_buf(), source };
        let bytes = self.to_safetensors(metadata).map_err(torch)?;
        crate::files::write_atomically(path, &bytes).map_err(|e| torch(e.into()))
    }

    /// Every variable, with torchvision's names, as the bytes of a safetensors file with `metadata` (if
    /// any) in its header under [`METADATA_KEY`].
    pub fn to_safetensors(&self, metadata: Option<&ModelMetadata>) -> Result<Vec<u8>, tch::TchError> {
        let header = metadata.map(|m| {
            HashMap::from([(METADATA_KEY.to_string(), serde_json::to_string(m).expect("metadata serialises"))])
        });
        safetensors_bytes(self.vs.variables(), header)
    }
}

/// Named tensors as the bytes of a safetensors file (copied to the CPU, contiguous), with `header`
/// metadata if given.
pub fn safetensors_bytes(
    tensors: impl IntoIterator<Item = (String, Tensor)>,
    header: Option<HashMap<String, String>>,
) -> Result<Vec<u8>, tch::TchError> {
    let views = tensors
        .into_iter()
        .map(|(name, tensor)| Ok((name, TensorBytes::of(&tensor)?)))
        .collect::<Result<Vec<_>, tch::TchError>>()?;
    safetensors::serialize(views, &header).map_err(|e| tch::TchError::Convert(format!("writing safetensors: {e:?}")))
}

fn read_tensors(path: &Path) -> Result<HashMap<String, Tensor>, ModelError> {
    if !path.is_file() {
        return Err(ModelError::MissingFile(path.to_path_buf()));
    }
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let tensors = match extension.as_deref() {
        Some("pth" | "pt") => crate::formats::pth::read_state_dict(path)?,
        _ => Tensor::read_safetensors(path).map_err(|source| ModelError::Torch { path: path.to_path_buf(), source })?,
    };
    Ok(tensors.into_iter().collect())
}

/// The tensors of the weights file `path`, refused unless they are exactly a ResNet-18's (see
/// [`architecture::check_resnet18`]).
fn read_resnet18(path: &Path) -> Result<HashMap<String, Tensor>, ModelError> {
    let tensors = read_tensors(path)?;
    architecture::check_resnet18(&tensors)
        .map_err(|source| ModelError::NotResNet18 { path: path.to_path_buf(), source })?;
    Ok(tensors)
}

fn copy_into(var: &mut Tensor, name: &str, tensors: &HashMap<String, Tensor>, path: &Path) -> Result<(), ModelError> {
    let source = tensors
        .get(name)
        .ok_or_else(|| ModelError::MissingTensor { path: path.to_path_buf(), name: name.to_string() })?;
    if source.size() != var.size() {
        return Err(ModelError::ShapeMismatch {
            path: path.to_path_buf(),
            name: name.to_string(),
            found: source.size(),
            expected: var.size(),
        });
    }
    var.copy_(&source.to_device(var.device()).to_kind(var.kind()));
    Ok(())
}

/// Turns `u8` images `[B, 3, H, W]` into normalised floats `[B, 3, H, W]` on the same device.
pub fn normalize(images: &Tensor, mean: [f64; 3], std: [f64; 3]) -> Tensor {
    let device = images.device();
    let mean = Tensor::from_slice(&mean.map(|m| m as f32)).to_device(device).view([1, 3, 1, 1]);
    let std = Tensor::from_slice(&std.map(|s| s as f32)).to_device(device).view([1, 3, 1, 1]);
    (images.to_kind(Kind::Float) / 255.0 - mean) / std
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_carry_torchvision_names() {
        let model = ResNet18::new(Device::Cpu, 4, 0);
        let names = model.vs.variables();
        for name in ["conv1.weight", "bn1.running_var", "layer2.0.downsample.1.weight", "layer4.1.conv2.weight"] {
            assert!(names.contains_key(name), "missing {name}");
        }
        assert_eq!(names["fc.weight"].size(), [4, 512]);
        assert_eq!(model.forward_t(&Tensor::zeros([2, 3, 32, 32], (Kind::Float, Device::Cpu)), false).size(), [2, 4]);
    }

    #[test]
    fn a_single_position_convolution_computes_and_differentiates_as_the_full_one() {
        let vs = nn::VarStore::new(Device::Cpu);
        // (input side, kernel, padding, stride): the last stage's three shapes on 32x32 inputs.
        for (side, kernel, padding, stride) in [(1, 3, 1, 1), (2, 3, 1, 2), (2, 1, 0, 2)] {
            let conv = Conv::new(vs.root() / format!("c{side}{kernel}{stride}"), 16, 8, kernel, padding, stride);
            let x = Tensor::randn([4, 16, side, side], (Kind::Float, Device::Cpu)).set_requires_grad(true);
            assert!(conv.product_taps(&x).is_some(), "{side} {kernel} {stride} is one position, taken as a product");
            assert!(tch::no_grad(|| conv.product_taps(&x)).is_none(), "without gradients, oneDNN's convolution");
            let fast = conv.forward(&x);
            let full = x.conv2d(&conv.weight, None::<Tensor>, [stride; 2], [padding; 2], [1, 1], 1);
            assert_eq!(fast.size(), full.size());
            assert!((&fast - &full).abs().max().double_value(&[]) < 1e-5, "outputs of {side} {kernel} {stride}");
            let upstream = Tensor::randn(full.size(), (Kind::Float, Device::Cpu));
            let grads = |y: &Tensor| {
                let g = Tensor::run_backward(&[y * &upstream], &[&x, &conv.weight], false, false);
                (g[0].copy(), g[1].copy())
            };
            let ((fast_x, fast_w), (full_x, full_w)) = (grads(&fast), grads(&full));
            assert!((&fast_x - &full_x).abs().max().double_value(&[]) < 1e-5, "input gradients");
            assert!((&fast_w - &full_w).abs().max().double_value(&[]) < 1e-5, "weight gradients");
        }
        // Larger outputs take the ordinary convolution.
        let conv = Conv::new(vs.root() / "big", 16, 8, 3, 1, 1);
        assert!(conv.single_position_taps(2, 2).is_none() && conv.single_position_taps(4, 4).is_none());
    }

    #[test]
    fn one_seed_gives_one_network_while_other_threads_draw_random_tensors() {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let drawing = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = Tensor::randn([64, 64], (Kind::Float, Device::Cpu));
                }
            })
        };
        let (a, b) = (ResNet18::new(Device::Cpu, 3, 7), ResNet18::new(Device::Cpu, 3, 7));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        drawing.join().unwrap();
        let other = ResNet18::new(Device::Cpu, 3, 8);
        let (vb, vo) = (b.vs.variables(), other.vs.variables());
        for (name, tensor) in a.vs.variables() {
            assert!(tensor.equal(&vb[&name]), "{name} differs between two builds from seed 7");
            if tensor.dim() >= 2 {
                assert!(!tensor.equal(&vo[&name]), "{name} is the same for seeds 7 and 8");
            }
        }
    }

    #[test]
    fn a_fresh_network_is_initialised_as_torchvision_initialises_resnet18() {
        let model = ResNet18::new(Device::Cpu, 10, 3);
        let variables = model.vs.variables();
        let std = |name: &str| variables[name].std(true).double_value(&[]);
        // Kaiming-normal on the fan-out: 64 * 3 * 3 outputs per input for layer1's convolutions.
        let expected = (2.0f64 / (64.0 * 9.0)).sqrt();
        assert!((std("layer1.0.conv1.weight") / expected - 1.0).abs() < 0.05, "{}", std("layer1.0.conv1.weight"));
        assert_eq!(variables["layer3.1.bn2.weight"].min().double_value(&[]), 1.0);
        assert_eq!(variables["layer3.1.bn2.weight"].max().double_value(&[]), 1.0);
        assert_eq!(variables["layer3.1.bn2.bias"].abs().max().double_value(&[]), 0.0);
        let head_bound = variables["fc.weight"].abs().max().double_value(&[]);
        assert!(head_bound <= 1.0 / 512f64.sqrt() && head_bound > 0.9 / 512f64.sqrt(), "{head_bound}");
    }

    #[test]
    fn a_saved_model_loads_back_identically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        let a = ResNet18::new(Device::Cpu, 3, 1);
        a.save(&path, None).unwrap();
        let mut b = ResNet18::new(Device::Cpu, 3, 2);
        b.load_all(&path).unwrap();
        let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        let diff = (a.forward_t(&x, false) - b.forward_t(&x, false)).abs().max().double_value(&[]);
        assert_eq!(diff, 0.0);
    }

    #[test]
    fn a_channels_last_model_computes_trains_and_saves_like_the_plain_one() {
        let dir = tempfile::tempdir().unwrap();
        let plain = ResNet18::new(Device::Cpu, 3, 1);
        let mut nhwc = ResNet18::new(Device::Cpu, 3, 1);
        nhwc.use_channels_last().unwrap();
        let conv = &nhwc.vs.variables()["layer1.0.conv1.weight"];
        assert!(crate::model::torch_extras::is_channels_last(conv) && !conv.is_contiguous());
        let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        let diff = (plain.forward_t(&x, false) - nhwc.forward_t(&x, false)).abs().max().double_value(&[]);
        assert!(diff < 1e-4, "logits differ by {diff}");
        // Gradients flow into the channels-last weights.
        nhwc.forward_t(&x, true).sum(Kind::Float).backward();
        assert!(conv.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0);
        // Saved as ordinary NCHW tensors that a plain model loads to the same outputs.
        let path = dir.path().join("m.safetensors");
        nhwc.save(&path, None).unwrap();
        let mut reloaded = ResNet18::new(Device::Cpu, 3, 2);
        reloaded.load_all(&path).unwrap();
        // (The training-mode pass above moved the batch-norm statistics, so compare with the model saved.)
        let diff = (reloaded.forward_t(&x, false) - nhwc.forward_t(&x, false)).abs().max().double_value(&[]);
        assert!(diff < 1e-4, "reloaded logits differ by {diff}");
    }

    #[test]
    fn a_backbone_with_another_head_size_loads_and_keeps_the_new_head() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("imagenet.safetensors");
        ResNet18::new(Device::Cpu, 1000, 0).save(&path, None).unwrap();
        let mut model = ResNet18::new(Device::Cpu, 10, 0);
        assert_eq!(model.load_backbone(&path).unwrap(), model.vs.variables().len() - 2);
        assert_eq!(model.vs.variables()["fc.weight"].size(), [10, 512]);
        let err = model.load_all(&path).unwrap_err().to_string();
        assert!(err.contains("tensor \"fc.") && err.contains("ResNet-18 needs [10"), "{err}");
    }

    #[test]
    fn freezing_the_backbone_leaves_only_the_head_learning() {
        let mut model = ResNet18::new(Device::Cpu, 3, 0);
        let parameters = model.parameters();
        assert_eq!(parameters.iter().filter(|(_, _, backbone)| !backbone).count(), 2);
        assert_eq!(parameters.len(), 62, "ResNet-18 has 62 learnable tensors");
        let learning = |model: &ResNet18| model.parameters().iter().filter(|(_, t, _)| t.requires_grad()).count();
        model.set_backbone_trainable(false);
        assert_eq!(learning(&model), 2);
        model.set_backbone_trainable(true);
        assert_eq!(learning(&model), 62);
    }

    #[test]
    fn normalisation_maps_bytes_through_mean_and_std() {
        let img = Tensor::from_slice(&[0u8, 255, 51]).view([1, 3, 1, 1]);
        let out = normalize(&img, [0.5; 3], [0.5; 3]);
        let values = Vec::<f32>::try_from(out.flatten(0, -1)).unwrap();
        assert!((values[0] + 1.0).abs() < 1e-6 && (values[1] - 1.0).abs() < 1e-6);
        assert!((values[2] + 0.6).abs() < 1e-6);
    }
}
