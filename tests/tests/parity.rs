//! Parity with torchvision: the same ResNet-18 weights and input give the same logits here as in
//! PyTorch. The reference comes from `tests/python/parity.py`, run with the project venv's torchvision.

use crate::common;

use backend::model::ResNet18;
use std::collections::HashMap;
use tch::{Device, Tensor};

fn torchvision_reference(dir: &std::path::Path, num_classes: usize) {
    common::run_python("parity.py", &[dir.as_os_str(), num_classes.to_string().as_ref()]);
}

fn read(path: &std::path::Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(path).unwrap().into_iter().collect()
}

#[test]
fn a_torchvision_state_dict_gives_torchvisions_logits() {
    let dir = tempfile::tempdir().unwrap();
    torchvision_reference(dir.path(), 10);
    let mut model = ResNet18::new(Device::Cpu, 10, 0);
    model.load_all(&dir.path().join("weights.safetensors")).unwrap();
    let io = read(&dir.path().join("io.safetensors"));
    let logits = tch::no_grad(|| model.forward_t(&io["input"], false));
    let diff = (logits - &io["logits"]).abs().max().double_value(&[]);
    assert!(diff <= 1e-4, "max abs difference to torchvision: {diff}");
}

#[test]
fn an_imagenet_shaped_backbone_loads_under_a_new_head() {
    let dir = tempfile::tempdir().unwrap();
    torchvision_reference(dir.path(), 1000);
    let mut model = ResNet18::new(Device::Cpu, 7, 0);
    let loaded = model.load_backbone(&dir.path().join("weights.safetensors")).unwrap();
    // 122 keys in torchvision's state dict: 20 num_batches_tracked counters and fc's 2 are not loaded.
    assert_eq!(loaded, 100, "every backbone tensor but fc's");
    let reference = read(&dir.path().join("weights.safetensors"));
    let ours = model.vs.variables();
    let same = |name: &str| (&ours[name] - &reference[name]).abs().max().double_value(&[]) == 0.0;
    assert!(same("conv1.weight") && same("layer4.1.bn2.running_var"));
    assert_eq!(ours["fc.weight"].size(), [7, 512]);
}

#[test]
fn an_exported_checkpoint_loads_into_torchvision_strictly_and_predicts_the_same() {
    use backend::engine::training::{train, RunControl};
    let dir = tempfile::tempdir().unwrap();
    common::write_color_dataset(dir.path(), "colors", 3, 6, 2, 32);
    let config = shared::TrainConfig { epochs: 1, batch_size: 6, ..shared::TrainConfig::for_dataset("colors") };
    let paths = common::offline_training_paths(dir.path(), dir.path().join("run"));
    train(&config, &paths, Device::Cpu, &RunControl::default(), false, &mut |_| {}).unwrap();
    let exported = paths.run_dir.join("model.safetensors");

    let input = Tensor::randn([5, 3, 32, 32], (tch::Kind::Float, Device::Cpu));
    let io = dir.path().join("io.safetensors");
    Tensor::write_safetensors(&[("input", &input)], &io).unwrap();
    let out = dir.path().join("torchvision.safetensors");
    // Fails (with torchvision's message) if strict loading refuses the export.
    common::run_python("load_export.py", &[exported.as_os_str(), "3".as_ref(), io.as_os_str(), out.as_os_str()]);
    let theirs = &read(&out)["logits"];

    let mut model = ResNet18::new(Device::Cpu, 3, 0);
    model.load_all(&exported).unwrap();
    let ours = tch::no_grad(|| model.forward_t(&input, false));
    let diff = (&ours - theirs).abs().max().double_value(&[]);
    assert!(diff <= 1e-4, "max abs difference to torchvision: {diff}");
    assert!(ours.argmax(-1, false).equal(&theirs.argmax(-1, false)), "same predicted classes");
}
