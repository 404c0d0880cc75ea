//! Parity with torchvision: the same ResNet-18 weights and input give the same logits here as in
//! PyTorch. The reference comes from `tests/python/parity.py`, run with the project venv's torchvision.

mod common;

use backend::model::ResNet18;
use std::collections::HashMap;
use std::process::Command;
use tch::{Device, Tensor};

fn torchvision_reference(dir: &std::path::Path, num_classes: usize) {
    let python = common::workspace_root().join(".venv/bin/python");
    let script = common::workspace_root().join("tests/python/parity.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg(dir)
        .arg(num_classes.to_string())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} (run scripts/setup.sh --test): {e}", python.display()));
    assert!(output.status.success(), "parity.py failed: {}", String::from_utf8_lossy(&output.stderr));
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

    let reference = read(&dir.path().join("weights.safetensors"));
    let ours = model.vs.variables();
    let same = |name: &str| (&ours[name] - &reference[name]).abs().max().double_value(&[]) == 0.0;
    assert!(same("conv1.weight") && same("layer4.1.bn2.running_var"));
    assert_eq!(ours["fc.weight"].size(), [7, 512]);
}
