//! The command line: `train` runs the engine headless, `classify` and `export` use what it saved,
//! `health` checks a dataset, and `sweep` runs a sweep headless.

use crate::common;

use std::process::Command;

fn binary() -> std::path::PathBuf {
    let binary = common::workspace_root().join("target/release/transfer-studio");
    assert!(binary.is_file(), "{} is missing: run `cargo build --release -p transfer-studio`", binary.display());
    binary
}

#[test]
fn train_then_classify_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    common::write_color_dataset(dir.path(), "colors", 3, 8, 2, 32);
    let config = dir.path().join("run.json");
    std::fs::write(&config, r#"{"dataset": "colors", "epochs": 1, "batch_size": 8}"#).unwrap();
    let model = dir.path().join("model");
    let output = Command::new(binary())
        .args(["train", "--config"])
        .arg(&config)
        .args(["--epochs", "2", "--data-dir"])
        .arg(dir.path())
        .arg("--out")
        .arg(&model)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("epoch   2  train loss"), "a line per epoch, the flag overriding the file: {stdout}");
    assert!(model.join("model.safetensors").is_file() && model.join("model.json").is_file());

    let image = dir.path().join("green.png");
    std::fs::write(&image, common::png_bytes(common::COLOR_CLASSES[2].1, 40, 1)).unwrap();
    let output = Command::new(binary()).args(["classify", "--model"]).arg(&model).arg(&image).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "the file name, then all 3 classes: {stdout}");
    assert!(lines[1..].iter().all(|l| l.contains('%')));

    // The checkpoint file alone (as downloaded from the page) carries what classifying needs.
    let lone = dir.path().join("downloaded").join("run-1-resnet18.safetensors");
    std::fs::create_dir_all(lone.parent().unwrap()).unwrap();
    std::fs::copy(model.join("model.safetensors"), &lone).unwrap();
    let alone = Command::new(binary()).args(["classify", "--model"]).arg(&lone).arg(&image).output().unwrap();
    assert!(alone.status.success(), "{}", String::from_utf8_lossy(&alone.stderr));
    assert_eq!(String::from_utf8_lossy(&alone.stdout), stdout, "same answer as from the run's folder");
    // A safetensors file from elsewhere says what it lacks.
    let foreign = dir.path().join("downloaded").join("other.safetensors");
    tch::Tensor::write_safetensors(&[("w", tch::Tensor::zeros([2], (tch::Kind::Float, tch::Device::Cpu)))], &foreign)
        .unwrap();
    let refused = Command::new(binary()).args(["classify", "--model"]).arg(&foreign).arg(&image).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no Transfer Studio metadata in its header"));

    // The folder exports as an ONNX file, checked on the dataset's 6 test images; the file read back
    // gives the model's logits.
    let onnx = dir.path().join("exported").join("colors.onnx");
    std::fs::create_dir_all(onnx.parent().unwrap()).unwrap();
    let export = |model: &std::path::Path| {
        let mut command = Command::new(binary());
        command.args(["export", "--model"]).arg(model).arg("--out").arg(&onnx).arg("--data-dir").arg(dir.path());
        command.output().unwrap()
    };
    let exported = export(&model);
    let said = String::from_utf8_lossy(&exported.stdout);
    assert!(exported.status.success(), "{said}{}", String::from_utf8_lossy(&exported.stderr));
    assert!(said.contains("checked on 6 images"), "{said}");
    let (metadata, weights) = backend::model::ModelMetadata::locate(&model).unwrap();
    let mut saved = backend::model::ResNet18::new(tch::Device::Cpu, metadata.classes.len(), 0);
    saved.load_all(&weights).unwrap();
    let images = tch::Tensor::randn([2, 3, 32, 32], (tch::Kind::Float, tch::Device::Cpu));
    let difference = backend::model::onnx::verify(&std::fs::read(&onnx).unwrap(), &saved, &images).unwrap();
    assert!(difference <= 1e-4, "{difference}");
    let refused = export(&foreign);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no Transfer Studio metadata in its header"));

    let bad = Command::new(binary())
        .args(["train", "--dataset", "colors", "--lr=-1", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("Learning rate must be greater than 0"));
}

#[test]
fn serving_beyond_loopback_without_a_token_is_refused() {
    let output = Command::new(binary()).args(["serve", "--host", "0.0.0.0", "--port", "0"]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("without --token"));
}

#[test]
fn lr_find_prints_a_suggested_learning_rate_from_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    common::write_color_dataset(dir.path(), "colors", 3, 8, 2, 32);
    let config = dir.path().join("run.json");
    std::fs::write(&config, r#"{"dataset": "colors", "batch_size": 8}"#).unwrap();
    let output =
        Command::new(binary()).args(["lr-find", "--config"]).arg(&config).arg("--data-dir").arg(dir.path()).output();
    let output = output.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let swept = stdout.lines().filter(|line| line.starts_with("lr ")).count();
    assert!((2..=100).contains(&swept), "a line per batch swept: {stdout}");
    let suggestion: f64 = stdout
        .lines()
        .find_map(|line| line.strip_prefix("suggested learning rate: "))
        .unwrap_or_else(|| panic!("no suggestion: {stdout}"))
        .parse()
        .unwrap();
    assert!((1e-7..=10.0).contains(&suggestion), "{suggestion}");
    let mut left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    left.sort();
    // Nothing but the dataset's decoded cache, which the run the sweep is for would build anyway.
    assert_eq!(left, [".decoded", "colors", "run.json"], "nothing else is written");
}

#[test]
fn health_prints_the_same_check_as_the_api_and_flags_a_leak() {
    let dir = tempfile::tempdir().unwrap();
    common::write_color_dataset(dir.path(), "colors", 2, 4, 2, 16);
    let colors = dir.path().join("colors");
    std::fs::copy(colors.join("train/black/0001.png"), colors.join("test/black/copy.png")).unwrap();
    let run = |json: bool| {
        let mut command = Command::new(binary());
        command.args(["health", "colors", "--data-dir"]).arg(dir.path());
        if json {
            command.arg("--json");
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    let health: shared::DatasetHealth = serde_json::from_str(&run(true)).unwrap();
    assert_eq!(health.classes.iter().map(|c| (c.train, c.test)).collect::<Vec<_>>(), [(4, 3), (4, 2)]);
    let source = backend::data::inspect(dir.path(), "colors").unwrap();
    let expected = backend::data::health::check(&source, &backend::memory::MemoryBudget::default()).unwrap();
    assert_eq!(health, expected, "the JSON is the health check's own answer");

    let lines = run(false);
    assert!(lines.contains("train/black/0001.png ~ test/black/copy.png (train and test: a leak)"), "{lines}");
    assert!(lines.contains("0 unreadable, 1 duplicate pairs listed, 1 test images with a copy in training"), "{lines}");
    let mut left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    left.sort();
    assert_eq!(left, ["colors"], "nothing is written");

    let missing = Command::new(binary()).args(["health", "nowhere", "--data-dir"]).arg(dir.path()).output().unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nowhere"), "the error names the dataset");
}

#[test]
fn sweep_runs_a_grid_headless_and_prints_the_leaderboard_and_the_history_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    common::write_color_dataset(dir.path(), "colors", 3, 8, 2, 32);
    let config = dir.path().join("sweep.json");
    let request = r#"{"name": "two rates", "base": {"dataset": "colors", "epochs": 1, "batch_size": 8},
        "parameters": {"lr": {"values": [0.001, 0.0001]}}}"#;
    std::fs::write(&config, request).unwrap();
    let sweep = |config: &std::path::Path| {
        Command::new(binary())
            .args(["sweep", "--threads-per-run", "1", "--config"])
            .arg(config)
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let output = sweep(&config);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.starts_with("sweep #1 \"two rates\": 2 trials, 1 at a time, ranked by test accuracy"), "{stdout}");
    let board: Vec<&str> = stdout.lines().skip_while(|line| !line.starts_with("rank")).collect();
    assert_eq!(board.len(), 4, "header, two trials, the best: {stdout}");
    assert!(board[1..3].iter().all(|line| line.contains("completed") && line.contains('%')), "{stdout}");
    assert!(board[3].starts_with("best: trial "), "{stdout}");
    let history = backend::studio::store::Store::open(&dir.path().join("studio.db")).unwrap();
    let kept = history.sweep_row(1).unwrap().unwrap();
    assert_eq!((kept.name.as_str(), kept.status), ("two rates", shared::sweep::SweepStatus::Completed));

    std::fs::write(&config, r#"{"base": {"dataset": "colors"}, "parameters": {"lr": {"values": []}}}"#).unwrap();
    let refused = sweep(&config);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("lr: values is empty"), "{refused:?}");
}
