//! Whether a state dict is exactly torchvision's ResNet-18: every backbone tensor present with its shape,
//! and nothing else but a head (`fc.weight` `[classes, 512]`, `fc.bias` `[classes]`, any number of
//! classes) and the batch-norm counters `num_batches_tracked` that torchvision saves and nothing reads.
//! A ResNet-34 holds every ResNet-18 tensor and more (`layer1.2.*`), so only looking for what ResNet-18
//! needs would take it for one; extra tensors are what tell it apart.

use super::ResNet18;
use std::collections::{BTreeMap, HashMap};
use tch::Tensor;

/// Features the backbone gives the head.
const FEATURES: i64 = 512;

/// How a state dict differs from ResNet-18's, as the end of a sentence that starts "this file is not a
/// ResNet-18 state dict: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotResNet18 {
    /// Backbone tensors are missing.
    #[error("it has no {first}{others}{guess}")]
    Missing {
        /// The first missing tensor, in name order.
        first: String,
        /// How many more are missing, in words (empty if none).
        others: String,
        /// What the file seems to be instead, in words (empty if nothing is known).
        guess: String,
    },
    /// A tensor has another shape.
    #[error("{name} has shape {found:?}, ResNet-18's is {expected:?}")]
    Shape {
        /// The tensor.
        name: String,
        /// Its shape in the file.
        found: Vec<i64>,
        /// ResNet-18's.
        expected: Vec<i64>,
    },
    /// Tensors ResNet-18 does not have.
    #[error("it has {count} {tensors} ResNet-18 does not, such as {first}{guess}", tensors = if *.count == 1 { "tensor" } else { "tensors" })]
    Extra {
        /// The first extra tensor, in name order.
        first: String,
        /// How many there are.
        count: usize,
        /// What the file seems to be instead, in words.
        guess: String,
    },
}

/// What a state dict holding these tensor names seems to be, beside ResNet-18: `": a ResNet-34..."`, or
/// empty when nothing is recognised.
fn guess(names: &[&str]) -> String {
    let has = |pattern: &str| names.iter().any(|name| name.contains(pattern));
    let what = if has("conv3.") {
        "a ResNet with bottleneck blocks (ResNet-50, 101 or 152)"
    } else if has("layer1.2.") || has("layer3.2.") {
        "a deeper ResNet (ResNet-34)"
    } else if has("features.") || has("classifier.") {
        "another family of network (its tensors are named features.* and classifier.*, as in MobileNet, VGG, \
         EfficientNet or DenseNet)"
    } else {
        return String::new();
    };
    format!(" (it looks like {what})")
}

/// Checks that `tensors` is exactly a ResNet-18 state dict with a head of any size.
pub fn check_resnet18(tensors: &HashMap<String, Tensor>) -> Result<(), NotResNet18> {
    let reference = ResNet18::new(tch::Device::Cpu, 1, 0);
    let backbone: BTreeMap<String, Vec<i64>> = reference
        .vs
        .variables()
        .into_iter()
        .filter(|(name, _)| !name.starts_with("fc."))
        .map(|(name, tensor)| (name, tensor.size()))
        .collect();
    let mut names: Vec<&str> = tensors.keys().map(String::as_str).collect();
    names.sort_unstable();
    let missing: Vec<&String> = backbone.keys().filter(|name| !tensors.contains_key(*name)).collect();
    // For a file that shares tensors with ResNet-18, the extra ones come first: they tell best what it is
    // instead (a deeper ResNet has every tensor of ResNet-18, a bottleneck one its names with other shapes).
    let extra: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| !backbone.contains_key(*name) && !is_head(name) && !is_counter_of(name, &backbone))
        .collect();
    if let Some(first) = extra.first().filter(|_| missing.len() < backbone.len()) {
        return Err(NotResNet18::Extra { first: first.to_string(), count: extra.len(), guess: guess(&names) });
    }
    if let Some(first) = missing.first() {
        let others = match missing.len() - 1 {
            0 => String::new(),
            1 => " (nor 1 other ResNet-18 tensor)".into(),
            n => format!(" (nor {n} other ResNet-18 tensors)"),
        };
        return Err(NotResNet18::Missing { first: first.to_string(), others, guess: guess(&names) });
    }
    for (name, expected) in &backbone {
        let found = tensors[name].size();
        if &found != expected {
            return Err(NotResNet18::Shape { name: name.clone(), found, expected: expected.clone() });
        }
    }
    check_head(tensors)
}

fn is_head(name: &str) -> bool {
    name == "fc.weight" || name == "fc.bias"
}

/// Whether `name` is the `num_batches_tracked` counter of one of ResNet-18's batch norms.
fn is_counter_of(name: &str, backbone: &BTreeMap<String, Vec<i64>>) -> bool {
    name.strip_suffix(".num_batches_tracked")
        .is_some_and(|layer| backbone.contains_key(&format!("{layer}.running_mean")))
}

/// A head, when there is one, is `[classes, 512]` weights and `[classes]` biases.
fn check_head(tensors: &HashMap<String, Tensor>) -> Result<(), NotResNet18> {
    let Some(weight) = tensors.get("fc.weight") else { return Ok(()) };
    let classes = weight.size().first().copied().unwrap_or(0);
    let shape = |name: &str, expected: Vec<i64>| match tensors.get(name) {
        Some(tensor) if tensor.size() != expected => {
            Err(NotResNet18::Shape { name: name.into(), found: tensor.size(), expected })
        }
        _ => Ok(()),
    };
    shape("fc.weight", vec![classes, FEATURES])?;
    shape("fc.bias", vec![classes])
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    fn state_dict(classes: usize) -> HashMap<String, Tensor> {
        let model = ResNet18::new(tch::Device::Cpu, classes, 0);
        model.vs.variables().into_iter().collect()
    }

    #[test]
    fn a_resnet18_with_any_head_and_its_counters_passes() {
        let mut tensors = state_dict(10);
        tensors.insert("bn1.num_batches_tracked".into(), Tensor::from(5i64));
        assert_eq!(check_resnet18(&tensors), Ok(()));
        let mut headless = state_dict(3);
        headless.retain(|name, _| !name.starts_with("fc."));
        assert_eq!(check_resnet18(&headless), Ok(()));
    }

    #[test]
    fn extra_blocks_missing_ones_and_odd_heads_are_named() {
        let mut deeper = state_dict(1000);
        deeper.insert("layer1.2.conv1.weight".into(), Tensor::zeros([64, 64, 3, 3], (Kind::Float, tch::Device::Cpu)));
        let refused = check_resnet18(&deeper).unwrap_err().to_string();
        assert_eq!(refused, "it has 1 tensor ResNet-18 does not, such as layer1.2.conv1.weight (it looks like a deeper ResNet (ResNet-34))");

        let mut partial = state_dict(10);
        partial.retain(|name, _| !name.starts_with("layer4."));
        let refused = check_resnet18(&partial).unwrap_err().to_string();
        assert!(refused.starts_with("it has no layer4.0.bn1.bias (nor "), "{refused}");

        let mut odd_head = state_dict(10);
        odd_head.insert("fc.bias".into(), Tensor::zeros([7], (Kind::Float, tch::Device::Cpu)));
        assert_eq!(check_resnet18(&odd_head).unwrap_err().to_string(), "fc.bias has shape [7], ResNet-18's is [10]");

        let mut stray_counter = state_dict(10);
        stray_counter.insert("layer9.num_batches_tracked".into(), Tensor::from(1i64));
        assert!(matches!(check_resnet18(&stray_counter), Err(NotResNet18::Extra { count: 1, .. })));
    }
}
