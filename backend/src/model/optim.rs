//! Optimisers with state we own: SGD (momentum, Nesterov, weight decay) and AdamW, with PyTorch's update
//! rules, per-parameter learning-rate scales (a lower rate for the backbone) and gradient clipping.
//!
//! tch's built-in optimisers keep their momentum buffers inside libtorch where they cannot be saved, so
//! a resumed run would not continue exactly. Here every buffer is a named tensor that a checkpoint
//! stores and restores. The updates are whole-tensor, in-place operations, a few per parameter.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use tch::Tensor;

/// The scaled updates, which fail only on mismatched shapes: a gradient or buffer always has its
/// parameter's shape, so a failure is a bug.
fn add_scaled(tensor: &Tensor, other: &Tensor, alpha: f64) -> Tensor {
    crate::model::torch_extras::add_scaled(tensor, other, alpha).expect("update has its parameter's shape")
}
fn add_scaled_(tensor: &mut Tensor, other: &Tensor, alpha: f64) {
    crate::model::torch_extras::add_scaled_(tensor, other, alpha).expect("update has its parameter's shape");
}
fn addcmul_scaled_(tensor: &mut Tensor, a: &Tensor, b: &Tensor, value: f64) {
    crate::model::torch_extras::addcmul_scaled_(tensor, a, b, value).expect("update has its parameter's shape");
}
fn addcdiv_scaled_(tensor: &mut Tensor, numerator: &Tensor, denominator: &Tensor, value: f64) {
    crate::model::torch_extras::addcdiv_scaled_(tensor, numerator, denominator, value)
        .expect("update has its parameter's shape");
}

/// The update rule and its hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Rule {
    /// Stochastic gradient descent as `torch.optim.SGD` (dampening 0).
    Sgd {
        /// Momentum factor; 0 disables the buffer.
        momentum: f64,
        /// Nesterov momentum.
        nesterov: bool,
        /// L2 penalty added to the gradient.
        weight_decay: f64,
    },
    /// Adam with decoupled weight decay, as `torch.optim.AdamW`.
    AdamW {
        /// First-moment decay.
        beta1: f64,
        /// Second-moment decay.
        beta2: f64,
        /// Added to the denominator for stability.
        eps: f64,
        /// Decoupled weight decay.
        weight_decay: f64,
    },
}

/// A parameter the optimiser updates.
struct Parameter {
    name: String,
    tensor: Tensor,
    /// Multiplies the learning rate for this parameter.
    lr_scale: f64,
}

/// An optimiser over named parameters.
pub struct Optimizer {
    rule: Rule,
    parameters: Vec<Parameter>,
    /// Buffers by `"<parameter>/<buffer>"`: `momentum`, or `exp_avg` and `exp_avg_sq`.
    state: HashMap<String, Tensor>,
    /// Updates made so far (AdamW's bias correction needs it).
    steps: u64,
}

impl Optimizer {
    /// An optimiser for `parameters` (name, tensor, learning-rate scale). Tensors must require grad.
    pub fn new(rule: Rule, parameters: Vec<(String, Tensor, f64)>) -> Self {
        let parameters =
            parameters.into_iter().map(|(name, tensor, lr_scale)| Parameter { name, tensor, lr_scale }).collect();
        Optimizer { rule, parameters, state: HashMap::new(), steps: 0 }
    }

    /// Names of the parameters updated.
    pub fn parameter_names(&self) -> impl Iterator<Item = &str> {
        self.parameters.iter().map(|p| p.name.as_str())
    }

    /// Drops every parameter's gradient (PyTorch's `zero_grad(set_to_none=True)`): the next backward pass
    /// writes fresh gradients rather than adding into zeroed ones, a pass over the weights saved.
    pub fn zero_grad(&mut self) {
        for parameter in &mut self.parameters {
            crate::model::torch_extras::clear_grad(&mut parameter.tensor);
        }
    }

    /// Scales gradients down so their global L2 norm is at most `max_norm`; returns the norm before.
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> f64 {
        tch::no_grad(|| {
            let grads: Vec<Tensor> = self.parameters.iter().map(|p| p.tensor.grad()).filter(Tensor::defined).collect();
            if grads.is_empty() {
                return 0.0;
            }
            let squares: Vec<Tensor> = grads.iter().map(|g| g.square().sum(tch::Kind::Float)).collect();
            let norm = Tensor::stack(&squares, 0).sum(tch::Kind::Float).sqrt().double_value(&[]);
            if norm > max_norm {
                let scale = max_norm / (norm + 1e-6);
                for mut grad in grads {
                    grad *= scale;
                }
            }
            norm
        })
    }

    /// Applies one update with base learning rate `lr`. Each rule is PyTorch's single-tensor update,
    /// operation for operation (`add` and `add_` with `alpha`, `addcdiv_` with `value`), so a step
    /// allocates a tensor the size of a parameter only where PyTorch does too (weight decay and Nesterov
    /// for SGD, the denominator for AdamW), and makes the same passes over memory.
    pub fn step(&mut self, lr: f64) {
        self.steps += 1;
        let steps = self.steps;
        tch::no_grad(|| {
            for parameter in &mut self.parameters {
                let grad = parameter.tensor.grad();
                if !grad.defined() {
                    continue;
                }
                let lr = lr * parameter.lr_scale;
                match self.rule {
                    Rule::Sgd { momentum, nesterov, weight_decay } => {
                        let mut direction = grad;
                        if weight_decay != 0.0 {
                            direction = add_scaled(&direction, &parameter.tensor, weight_decay);
                        }
                        if momentum != 0.0 {
                            let key = format!("{}/momentum", parameter.name);
                            let buffer = match self.state.get_mut(&key) {
                                Some(buffer) => {
                                    *buffer *= momentum;
                                    *buffer += &direction;
                                    buffer.shallow_clone()
                                }
                                None => {
                                    let buffer = direction.detach().copy();
                                    self.state.insert(key, buffer.shallow_clone());
                                    buffer
                                }
                            };
                            direction = if nesterov { add_scaled(&direction, &buffer, momentum) } else { buffer };
                        }
                        add_scaled_(&mut parameter.tensor, &direction, -lr);
                    }
                    Rule::AdamW { beta1, beta2, eps, weight_decay } => {
                        if weight_decay != 0.0 {
                            parameter.tensor *= 1.0 - lr * weight_decay;
                        }
                        let mean_key = format!("{}/exp_avg", parameter.name);
                        let square_key = format!("{}/exp_avg_sq", parameter.name);
                        let mean = self.state.entry(mean_key).or_insert_with(|| grad.zeros_like());
                        let _ = mean.lerp_(&grad, 1.0 - beta1);
                        let mean = mean.shallow_clone();
                        let square = self.state.entry(square_key).or_insert_with(|| grad.zeros_like());
                        *square *= beta2;
                        addcmul_scaled_(square, &grad, &grad, 1.0 - beta2);
                        let correction1 = 1.0 - beta1.powi(steps as i32);
                        let correction2 = 1.0 - beta2.powi(steps as i32);
                        let mut denominator = square.sqrt();
                        denominator /= correction2.sqrt();
                        denominator += eps;
                        addcdiv_scaled_(&mut parameter.tensor, &mean, &denominator, -lr / correction1);
                    }
                }
            }
        });
    }

    /// A copy of the buffers and the step count as named tensors, for a checkpoint.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut tensors: Vec<(String, Tensor)> =
                        // Contiguous: buffers of channels-last parameters are channels-last, and safetensors needs NCHW.
            self.state.iter().map(|(name, tensor)| (name.clone(), tensor.copy().contiguous())).collect();
        tensors.push(("steps".into(), Tensor::from(self.steps as i64)));
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        tensors
    }

    /// Restores what [`Optimizer::state_tensors`] saved; buffers land on each parameter's device.
    pub fn load_state(&mut self, tensors: Vec<(String, Tensor)>) {
        let devices: HashMap<&str, tch::Device> =
            self.parameters.iter().map(|p| (p.name.as_str(), p.tensor.device())).collect();
        self.state.clear();
        for (name, tensor) in tensors {
            if name == "steps" {
                self.steps = tensor.int64_value(&[]) as u64;
                continue;
            }
            let parameter = name.rsplit_once('/').map_or("", |(p, _)| p);
            if let Some(device) = devices.get(parameter) {
                self.state.insert(name, tensor.to_device(*device));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    /// Runs `steps` updates of `rule` on f(w) = sum((w - target)^2) and returns w.
    fn descend(rule: Rule, steps: usize, lr: f64) -> Vec<f32> {
        let w = Tensor::from_slice(&[1.0f32, -2.0, 3.0]).set_requires_grad(true);
        let target = Tensor::from_slice(&[0.5f32, 0.5, 0.5]);
        let mut optimizer = Optimizer::new(rule, vec![("w".into(), w.shallow_clone(), 1.0)]);
        for _ in 0..steps {
            optimizer.zero_grad();
            (&w - &target).square().sum(Kind::Float).backward();
            optimizer.step(lr);
        }
        Vec::<f32>::try_from(w.detach()).unwrap()
    }

    #[test]
    fn sgd_with_momentum_matches_torch() {
        // torch.optim.SGD([w], lr=0.1, momentum=0.9, weight_decay=0.01), 3 steps, same f.
        let rule = Rule::Sgd { momentum: 0.9, nesterov: false, weight_decay: 0.01 };
        let w = descend(rule, 3, 0.1);
        let expected = [0.526_754_f32, 0.352_172, 0.643_143];
        for (got, want) in w.iter().zip(expected) {
            assert!((got - want).abs() < 1e-4, "{w:?} vs {expected:?}");
        }
    }

    #[test]
    fn sgd_with_nesterov_and_weight_decay_matches_torch() {
        // torch.optim.SGD([w], lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01), 3 steps, same f.
        let rule = Rule::Sgd { momentum: 0.9, nesterov: true, weight_decay: 0.01 };
        let w = descend(rule, 3, 0.1);
        let expected = [0.441_409_f32, 0.776_362, 0.218_107];
        for (got, want) in w.iter().zip(expected) {
            assert!((got - want).abs() < 1e-4, "{w:?} vs {expected:?}");
        }
    }

    #[test]
    fn adamw_matches_torch() {
        // torch.optim.AdamW([w], lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01), 3 steps.
        let rule = Rule::AdamW { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 };
        let w = descend(rule, 3, 0.1);
        let expected = [0.702_258_f32, -1.694_791, 2.691_8];
        for (got, want) in w.iter().zip(expected) {
            assert!((got - want).abs() < 1e-4, "{w:?} vs {expected:?}");
        }
    }

    #[test]
    fn saved_state_continues_exactly() {
        let rule = Rule::Sgd { momentum: 0.9, nesterov: true, weight_decay: 0.0 };
        let make = || Tensor::from_slice(&[1.0f32, 2.0]).set_requires_grad(true);
        let loss = |w: &Tensor| (w * w).sum(Kind::Float);
        let (a, b) = (make(), make());
        let mut first = Optimizer::new(rule, vec![("w".into(), a.shallow_clone(), 1.0)]);
        for _ in 0..2 {
            first.zero_grad();
            loss(&a).backward();
            first.step(0.05);
        }
        tch::no_grad(|| b.detach().copy_(&a));
        let mut second = Optimizer::new(rule, vec![("w".into(), b.shallow_clone(), 1.0)]);
        second.load_state(first.state_tensors());
        for (optimizer, w) in [(&mut first, &a), (&mut second, &b)] {
            optimizer.zero_grad();
            loss(w).backward();
            optimizer.step(0.05);
        }
        assert_eq!(Vec::<f32>::try_from(a.detach()).unwrap(), Vec::<f32>::try_from(b.detach()).unwrap());
        assert_eq!(second.state_tensors().len(), 2, "one buffer and the step count");
    }

    #[test]
    fn clipping_bounds_the_global_gradient_norm() {
        let w = Tensor::from_slice(&[3.0f32, 4.0]).set_requires_grad(true);
        let mut optimizer = Optimizer::new(
            Rule::Sgd { momentum: 0.0, nesterov: false, weight_decay: 0.0 },
            vec![("w".into(), w.shallow_clone(), 1.0)],
        );
        (&w * &w).sum(Kind::Float).backward(); // grad = [6, 8], norm 10
        let before = optimizer.clip_grad_norm(1.0);
        assert!((before - 10.0).abs() < 1e-5);
        let grad = Vec::<f32>::try_from(w.grad()).unwrap();
        assert!((grad[0] - 0.6).abs() < 1e-4 && (grad[1] - 0.8).abs() < 1e-4, "{grad:?}");
    }
}
