//! The CUDA path: the same model gives the same logits on the GPU as on the CPU, the dataset and its
//! augmentation stay on the GPU as `u8`, bfloat16 autocast with channels-last and cuDNN's autotuner
//! still learns, and a run stopped on the GPU resumes exactly.
//!
//! Each test skips itself, saying why, on a machine without CUDA (CI's). `make gpu-check` builds this
//! file for the GPU machine, whose one command runs it there.

mod common;

use backend::data::augment::EpochAugmentation;
use backend::engine::training::{train, RunControl, TrainOutcome, TrainingEvent};
use backend::model::torch_extras;
use backend::model::ResNet18;
use shared::{EpochMetrics, TrainConfig};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// The GPU, or `None` after printing why the test does not run.
fn gpu() -> Option<Device> {
    if tch::Cuda::is_available() {
        Some(Device::Cuda(0))
    } else {
        eprintln!("skipped: no CUDA device on this machine; this test needs a GPU (make gpu-check runs it on one)");
        None
    }
}

/// Trains `run` on `device`; the outcome, every epoch's metrics (times zeroed) and the run's notes.
/// `stop_after` cancels the run when that epoch ends, as Stop pressed then.
fn train_on(
    device: Device,
    config: &TrainConfig,
    data_dir: &Path,
    run: &str,
    resume: bool,
    stop_after: Option<u32>,
) -> (TrainOutcome, Vec<EpochMetrics>, Vec<String>) {
    let control = RunControl::default();
    let (mut epochs, mut notes) = (Vec::new(), Vec::new());
    let outcome = train(
        config,
        &common::offline_training_paths(data_dir, data_dir.join(run)),
        device,
        &control,
        resume,
        &mut |event| match event {
            TrainingEvent::EpochCompleted(metrics) => {
                if Some(metrics.epoch) == stop_after {
                    control.cancel();
                }
                epochs.push(EpochMetrics { seconds: 0.0, ..metrics });
            }
            TrainingEvent::Note(note) => notes.push(note),
            _ => {}
        },
    )
    .unwrap();
    (outcome, epochs, notes)
}

#[test]
fn cuda_and_cpu_give_the_same_logits_within_1e_3_in_float32() {
    let Some(gpu) = gpu() else { return };
    // True float32 on the GPU: TF32 tensor cores (libtorch's default for convolutions) round to 10 bits.
    torch_extras::set_cuda_tf32(false);
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("model.safetensors");
    let cpu_model = ResNet18::new(Device::Cpu, 10, 3);
    cpu_model.save(&weights, None).unwrap();
    let mut gpu_model = ResNet18::new(gpu, 10, 0);
    gpu_model.load_all(&weights).unwrap();
    for side in [32, 224] {
        tch::manual_seed(11);
        let images = Tensor::randn([8, 3, side, side], (Kind::Float, Device::Cpu)); // [8, 3, S, S]
        let on_cpu = tch::no_grad(|| cpu_model.forward_t(&images, false)); // [8, 10]
        let on_gpu = tch::no_grad(|| gpu_model.forward_t(&images.to_device(gpu), false)).to_device(Device::Cpu);
        let difference = (on_cpu - on_gpu).abs().max().double_value(&[]);
        eprintln!("{side} px: largest logit difference CUDA vs CPU {difference:.2e}");
        assert!(difference <= 1e-3, "{side} px: logits differ by {difference}");
    }
    torch_extras::set_cuda_tf32(true);
}

#[test]
fn the_dataset_and_its_augmentation_stay_on_the_gpu_as_u8() {
    let Some(gpu) = gpu() else { return };
    let dir = tempfile::tempdir().unwrap();
    common::write_color_dataset(dir.path(), "colors", 3, 12, 4, 32);
    let dataset = backend::data::load(&backend::data::inspect(dir.path(), "colors").unwrap(), 32, 0.0, 0).unwrap();
    let on_gpu = dataset.train.in_memory(gpu).unwrap();
    assert_eq!((on_gpu.images.kind(), on_gpu.images.device()), (Kind::Uint8, gpu), "the split is u8 on the GPU");
    let count = on_gpu.images.size()[0];
    let augmented_on_gpu = EpochAugmentation::draw(5, 1, count, 32, true, true, gpu).apply(&on_gpu.images, 0);
    assert_eq!((augmented_on_gpu.kind(), augmented_on_gpu.device()), (Kind::Uint8, gpu), "augmented on the GPU");
    let augmented_on_cpu =
        EpochAugmentation::draw(5, 1, count, 32, true, true, Device::Cpu).apply(&dataset.train.images, 0);
    assert!(augmented_on_gpu.to_device(Device::Cpu).equal(&augmented_on_cpu), "the same crops and flips as on the CPU");
    assert!(!augmented_on_cpu.equal(&dataset.train.images), "the augmentation changed the images");
}

#[test]
fn on_cuda_bfloat16_autocast_channels_last_and_cudnn_benchmark_learn_the_colours() {
    let Some(gpu) = gpu() else { return };
    let dir = tempfile::tempdir().unwrap();
    common::write_color_dataset(dir.path(), "colors", 4, 40, 15, 32);
    let config = TrainConfig {
        epochs: 4,
        batch_size: 16,
        mixed_precision: true,
        cudnn_benchmark: true,
        channels_last: true,
        ..TrainConfig::for_dataset("colors")
    };
    let (outcome, epochs, notes) = train_on(gpu, &config, dir.path(), "run", false, None);
    assert_eq!(outcome, TrainOutcome::Completed);
    assert!(torch_extras::cuda_autocast_is_bfloat16(), "autocast computes in bfloat16");
    assert!(notes.iter().all(|n| !n.contains("ignored")), "{notes:?}");
    let last = epochs.last().unwrap();
    assert!(last.test_accuracy >= 0.9, "test accuracy after 4 epochs: {epochs:?}");
    // The checkpoint is ordinary NCHW float32, loadable anywhere.
    let mut model = ResNet18::new(Device::Cpu, 4, 0);
    model.load_all(&dir.path().join("run").join(backend::model::WEIGHTS_FILE)).unwrap();
}

#[test]
fn a_run_stopped_on_the_gpu_resumes_exactly_as_an_uninterrupted_one() {
    let Some(gpu) = gpu() else { return };
    let dir = tempfile::tempdir().unwrap();
    common::write_color_dataset(dir.path(), "colors", 3, 24, 6, 32);
    // cuDNN's autotuner off: deterministic algorithms, so two runs can be compared bit for bit.
    let config = TrainConfig { epochs: 3, batch_size: 8, seed: 4, ..TrainConfig::for_dataset("colors") };
    let (outcome, straight, _) = train_on(gpu, &config, dir.path(), "straight", false, None);
    assert_eq!((outcome, straight.len()), (TrainOutcome::Completed, 3));

    let (outcome, mut stopped, _) = train_on(gpu, &config, dir.path(), "stopped", false, Some(1));
    assert_eq!((outcome, stopped.len()), (TrainOutcome::Stopped, 1), "stopped after its first epoch");
    let (outcome, rest, _) = train_on(gpu, &config, dir.path(), "stopped", true, None);
    assert_eq!(outcome, TrainOutcome::Completed);
    stopped.extend(rest);
    assert_eq!(stopped, straight, "bit-identical metrics on CUDA after a stop and a resume");
}
