//! `bench result DIR`: time to result, the whole of it, as a person meets it: from starting a process to
//! its exit with the trained model's test accuracy, ours (`transfer-studio train`) against the seed
//! recipe (`scripts/bench_pytorch.py DIR --whole EPOCHS`: importing torch, `ImageFolder` over the PNGs,
//! then the seed's train and test loops each epoch), on the same data (`DIR/data/synthetic`, from
//! `bench data`) and settings: ResNet-18 from random weights, SGD lr 0.001 momentum 0.9, batch 64, no
//! augmentation, 32 px, every core.
//!
//! The two alternate, in a different order each round, since this machine's speed drifts within
//! seconds. Ours trains over a data folder of its own, so its first round decodes the images into a new
//! decoded cache; later rounds reuse it, as a person's second run on the same data does (the seed decodes every epoch). Each
//! round's ratio is printed, then the ratio of the medians of the warm rounds (all but the first) and of
//! the first alone.

use super::{load_average, median, DATASET, LR, MOMENTUM};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Seconds from spawning `command` to its successful exit.
fn wall_seconds(mut command: Command) -> anyhow::Result<f64> {
    let started = Instant::now();
    let status = command.stdout(Stdio::null()).stderr(Stdio::null()).status()?;
    anyhow::ensure!(status.success(), "{command:?} failed: {status}");
    Ok(started.elapsed().as_secs_f64())
}

/// A data folder of its own under `dir` holding a copy of the dataset, so our first round starts with no
/// decoded cache whatever ran before.
fn fresh_data_folder(dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let data = dir.join("result-data");
    if data.exists() {
        std::fs::remove_dir_all(&data)?;
    }
    for split in ["train", "test"] {
        let from = dir.join("data").join(DATASET).join(split);
        for class in std::fs::read_dir(&from)? {
            let class = class?;
            let to = data.join(DATASET).join(split).join(class.file_name());
            std::fs::create_dir_all(&to)?;
            for image in std::fs::read_dir(class.path())? {
                let image = image?;
                std::fs::copy(image.path(), to.join(image.file_name()))?;
            }
        }
    }
    Ok(data)
}

/// Our side: `transfer-studio train` over `data` with the seed's settings, its model written to a scratch
/// folder.
fn ours(dir: &Path, data: &Path, epochs: u32, batch: u32) -> anyhow::Result<Command> {
    let binary =
        std::env::current_exe()?.parent().and_then(Path::parent).map(|release| release.join("transfer-studio"));
    let binary = binary.filter(|path| path.is_file()).ok_or_else(|| anyhow::anyhow!("build the server first"))?;
    let config = serde_json::json!({
        "dataset": DATASET, "epochs": epochs, "batch_size": batch, "lr": LR, "momentum": MOMENTUM,
        "weights": "none", "normalization": "half", "input_size": 32,
        "random_crop": false, "horizontal_flip": false,
    });
    let config_file = dir.join("result-config.json");
    std::fs::write(&config_file, config.to_string())?;
    let mut command = Command::new(binary);
    command.arg("train").arg("--config").arg(&config_file);
    command.arg("--data-dir").arg(data).arg("--out").arg(dir.join("result-model"));
    Ok(command)
}

/// Times `rounds` alternating rounds of `epochs` epochs each and prints them.
pub fn measure(dir: &Path, python: &Path, script: &Path, epochs: u32, rounds: usize) -> anyhow::Result<()> {
    let batch = 64;
    let data = fresh_data_folder(dir)?;
    println!("Load average at the start (1/5/15 min): {}", load_average());
    let mut times: Vec<(f64, f64)> = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let seed = || {
            let mut command = Command::new(python);
            command.arg(script).arg(dir).arg("--batch").arg(batch.to_string());
            command.arg("--whole").arg(epochs.to_string());
            command
        };
        let (studio, pytorch) = if round % 2 == 0 {
            let studio = wall_seconds(ours(dir, &data, epochs, batch)?)?;
            (studio, wall_seconds(seed())?)
        } else {
            let pytorch = wall_seconds(seed())?;
            (wall_seconds(ours(dir, &data, epochs, batch)?)?, pytorch)
        };
        println!(
            "round {}: ours {studio:.2} s, the seed recipe {pytorch:.2} s: {:.2}x{}",
            round + 1,
            pytorch / studio,
            if round == 0 { " (our decoded cache built in this round)" } else { "" }
        );
        times.push((studio, pytorch));
    }
    let warm = &times[1.min(times.len())..];
    let ratios: Vec<f64> = warm.iter().map(|(ours, seed)| seed / ours).collect();
    let spread = ratios.iter().copied().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| (lo.min(r), hi.max(r)));
    let (ours, seed) = (median(warm.iter().map(|t| t.0)), median(warm.iter().map(|t| t.1)));
    println!(
        "time to result, {epochs} epochs: ours {ours:.2} s, the seed recipe {seed:.2} s (medians of rounds \
         2-{rounds}): {:.2}x (rounds {:.2}x to {:.2}x; target 2.5x); first round {:.2}x",
        seed / ours,
        spread.0,
        spread.1,
        times[0].1 / times[0].0
    );
    println!("Load average at the end: {}", load_average());
    Ok(())
}
