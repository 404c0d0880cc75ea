//! ResNet-18 for inference, with every batch norm folded into the convolution before it.
//!
//! In evaluation mode a batch norm is a fixed affine map per channel, `y = (x - mean) / sqrt(var + eps) *
//! gamma + beta`, and the convolution before it is linear, so the two are one convolution with a bias:
//! weights scaled by `gamma / sqrt(var + eps)` per output channel, bias `beta - mean * scale`. That saves a
//! pass over every activation of the network (20 of them) per forward, which is most of what a small
//! image's classification costs besides the convolutions themselves. The folded weights are made once
//! from a trained [`ResNet18`] (classification keeps them for the model's life; evaluation makes them
//! each epoch, in milliseconds) and give the same logits within float rounding (tested to 1e-5).

use super::{BasicBlock, Conv, ResNet18};
use tch::{nn, Tensor};

/// A convolution with the batch norm after it folded in.
struct FoldedConv {
    weight: Tensor,
    bias: Tensor,
    stride: i64,
    padding: i64,
}

impl FoldedConv {
    /// `conv` followed by `bn` in evaluation mode, as one convolution.
    fn of(conv: &Conv, bn: &nn::BatchNorm) -> Result<Self, tch::TchError> {
        let eps = nn::BatchNormConfig::default().eps;
        let (gamma, beta) = match (&bn.ws, &bn.bs) {
            (Some(gamma), Some(beta)) => (gamma.shallow_clone(), beta.shallow_clone()),
            _ => return Err(tch::TchError::Kind("a batch norm without scale and shift".into())),
        };
        tch::no_grad(|| {
            let scale = gamma.f_div(&bn.running_var.f_add_scalar(eps)?.f_sqrt()?)?; // [c_out]
            let weight = conv.weight.f_mul(&scale.f_view([-1, 1, 1, 1])?)?.f_contiguous()?;
            let bias = beta.f_sub(&bn.running_mean.f_mul(&scale)?)?;
            Ok(FoldedConv { weight, bias, stride: conv.stride, padding: conv.padding })
        })
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        xs.conv2d(&self.weight, Some(&self.bias), [self.stride; 2], [self.padding; 2], [1, 1], 1)
    }
}

/// A [`BasicBlock`] folded.
struct FoldedBlock {
    conv1: FoldedConv,
    conv2: FoldedConv,
    downsample: Option<FoldedConv>,
}

impl FoldedBlock {
    fn of(block: &BasicBlock) -> Result<Self, tch::TchError> {
        Ok(FoldedBlock {
            conv1: FoldedConv::of(&block.conv1, &block.bn1)?,
            conv2: FoldedConv::of(&block.conv2, &block.bn2)?,
            downsample: block.downsample.as_ref().map(|(conv, bn)| FoldedConv::of(conv, bn)).transpose()?,
        })
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        let ys = self.conv2.forward(&self.conv1.forward(xs).relu());
        let shortcut = self.downsample.as_ref().map_or_else(|| xs.shallow_clone(), |conv| conv.forward(xs));
        (shortcut + ys).relu()
    }
}

/// A trained [`ResNet18`] with its batch norms folded, for forward passes without gradients.
pub struct FoldedResNet18 {
    stem: FoldedConv,
    blocks: Vec<FoldedBlock>,
    head_weight: Tensor,
    head_bias: Option<Tensor>,
    channels_last: bool,
}

impl FoldedResNet18 {
    /// The folded copy of `model`'s current weights, on its device (in its memory layout).
    pub fn of(model: &ResNet18) -> Result<Self, tch::TchError> {
        let backbone = &model.backbone;
        let blocks = backbone.blocks.iter().map(FoldedBlock::of).collect::<Result<_, _>>()?;
        Ok(FoldedResNet18 {
            stem: FoldedConv::of(&backbone.conv1, &backbone.bn1)?,
            blocks,
            head_weight: model.head.ws.detach(),
            head_bias: model.head.bs.as_ref().map(Tensor::detach),
            channels_last: model.channels_last,
        })
    }

    /// Logits `[B, classes]` of normalised images `[B, 3, H, W]`, as [`ResNet18::forward_t`] in evaluation
    /// mode computes them. Call without gradients.
    pub fn forward(&self, images: &Tensor) -> Tensor {
        let images = match self.channels_last {
            true => super::torch_extras::channels_last(images).expect("images are [B, 3, H, W]"),
            false => images.shallow_clone(),
        };
        let stem = self.stem.forward(&images).relu().max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        let features = self.blocks.iter().fold(stem, |xs, block| block.forward(&xs));
        let pooled = features.adaptive_avg_pool2d([1, 1]).flat_view(); // [B, 512]
        pooled.linear(&self.head_weight, self.head_bias.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// A model whose batch norms are far from the identity: random running statistics, scales and shifts.
    fn trained_looking_model() -> ResNet18 {
        let model = ResNet18::new(Device::Cpu, 10, 7);
        tch::manual_seed(11);
        tch::no_grad(|| {
            for (name, mut variable) in model.vs.variables() {
                let size = variable.size();
                let random = |low: f64, high: f64| {
                    Tensor::rand(size.as_slice(), (Kind::Float, Device::Cpu)) * (high - low) + low
                };
                if name.ends_with("running_var") {
                    variable.copy_(&random(0.2, 3.0));
                } else if name.ends_with("running_mean") || name.ends_with("bn1.bias") || name.ends_with("bn2.bias") {
                    variable.copy_(&random(-1.0, 1.0));
                } else if size.len() == 1 && name.contains("bn") {
                    variable.copy_(&random(0.5, 1.5));
                }
            }
        });
        model
    }

    #[test]
    fn folded_logits_equal_the_evaluation_mode_forward() {
        let model = trained_looking_model();
        let folded = FoldedResNet18::of(&model).unwrap();
        for side in [32, 64] {
            let images = Tensor::randn([3, 3, side, side], (Kind::Float, Device::Cpu));
            let (expected, found) = tch::no_grad(|| (model.forward_t(&images, false), folded.forward(&images)));
            let scale = expected.abs().max().double_value(&[]).max(1.0);
            let difference = (&expected - &found).abs().max().double_value(&[]);
            assert!(difference <= 1e-5 * scale, "{side} px: differs by {difference} (logits up to {scale})");
            assert_eq!(found.size(), [3, 10]);
        }
    }
}
