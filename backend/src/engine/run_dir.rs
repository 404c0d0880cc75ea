//! A run's folder and every file in it. Nothing else in the program knows these file names.
//!
//! - The **checkpoint** a run resumes from: the weights after the last step kept (`last-G.safetensors`),
//!   the optimiser's buffers (`optimizer-G.safetensors`) and the loop's counters. It is committed
//!   atomically: the generation-G files are written and flushed to the disk first, then one manifest,
//!   `checkpoint.json` (the counters and G), is written beside them, flushed, renamed over the old one,
//!   and the folder is flushed. Only then are generation G-1's files removed. A crash at any instant
//!   leaves either the old checkpoint or the new one whole: files the manifest does not name are
//!   leftovers, removed by [`RunDir::remove_leftovers`] (at start-up, and after a failed commit).
//! - The **best model**: `model.safetensors` with its metadata (`model.json`, also in the weights' header)
//!   and what it predicted for every test image (`test_predictions.json`). These are what classification
//!   and downloads use; training never reads them back, so a crash that leaves a newer best model than
//!   the committed checkpoint knows of costs nothing: the resumed run recomputes the same one.
//! - The **receipt** (`receipt.json`, a [`RunReceipt`]): what the run used and where it ran, written when
//!   training starts (see [`crate::engine::receipt`]).
//!
//! Every commit step passes a [`fault`] point, so tests can kill the process between any two writes.

use crate::fault;
use crate::files::write_atomically;
use crate::model::optim::Optimizer;
use crate::model::{ModelError, ModelMetadata, ResNet18};
use serde::{Deserialize, Serialize};
use shared::{EpochMetrics, RunReceipt, TestImage, TrainConfig};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// File name of a saved model's weights (the best epoch's), inside a run's folder.
pub const BEST_WEIGHTS_FILE: &str = crate::model::WEIGHTS_FILE;
/// The manifest naming the committed checkpoint.
const MANIFEST_FILE: &str = "checkpoint.json";
/// The run's receipt.
const RECEIPT_FILE: &str = "receipt.json";
/// What the best model predicted for every test image.
const TEST_PREDICTIONS_FILE: &str = "test_predictions.json";
/// Checkpoint files of versions before the manifest: counters, last weights and optimiser buffers,
/// still read so that runs interrupted before an upgrade resume.
const LEGACY_FILES: [&str; 3] = ["progress.json", "last.safetensors", "optimizer.safetensors"];

/// The steps of a commit, in order: a fault at one of these happens just before that step.
pub const COMMIT_STEPS: [&str; 9] = [
    "write-last",
    "write-optimizer",
    "write-best",
    "write-metadata",
    "write-predictions",
    "write-manifest",
    "sync-folder",
    "remove-old",
    "committed",
];

/// Why a run's folder could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    /// The disk holding the data folder is full.
    #[error("the disk is full: the checkpoint ({file}) could not be written; free some space, then resume the run")]
    DiskFull {
        /// The file being written, by its name in the run's folder.
        file: String,
    },
    /// Another file-system error.
    #[error("could not write or read {file} in the run's folder: {source}")]
    Io {
        /// The file, by its name in the run's folder.
        file: String,
        /// The cause.
        source: io::Error,
    },
    /// A file of the checkpoint is damaged.
    #[error("the run's checkpoint is damaged: {file}: {why}")]
    Damaged {
        /// The file, by its name in the run's folder.
        file: String,
        /// What is wrong.
        why: String,
    },
    /// Weights could not be turned into bytes or loaded back.
    #[error(transparent)]
    Model(#[from] ModelError),
}

impl RunDirError {
    fn io(file: &str) -> impl FnOnce(io::Error) -> RunDirError + '_ {
        move |source| {
            if source.kind() == io::ErrorKind::StorageFull {
                RunDirError::DiskFull { file: file.to_string() }
            } else {
                RunDirError::Io { file: file.to_string(), source }
            }
        }
    }
}

/// The manifest: which generation of files is the checkpoint, and the loop's counters at it.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    generation: u64,
    state: LoopState,
}

/// The best model to keep along with a checkpoint, when the epoch just ended improved on it.
pub struct BestModel<'a> {
    /// Its metadata (classes, preprocessing, config, epoch).
    pub metadata: &'a ModelMetadata,
    /// What it predicted for every test image.
    pub test_predictions: &'a [TestImage],
}

/// A run's folder. Cheap: it holds only the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// The run folder at `path` (created on the first commit).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        RunDir { path: path.into() }
    }

    /// Removes the folder and every file in it; a folder that was never made is no error.
    pub fn remove(&self) -> io::Result<()> {
        match fs::remove_dir_all(&self.path) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The best model's weights file (which may not exist yet).
    pub fn best_weights(&self) -> PathBuf {
        self.path.join(BEST_WEIGHTS_FILE)
    }

    fn last_weights(&self, generation: u64) -> String {
        format!("last-{generation:06}.safetensors")
    }

    fn optimizer_buffers(&self, generation: u64) -> String {
        format!("optimizer-{generation:06}.safetensors")
    }

    fn manifest(&self) -> Result<Option<Manifest>, RunDirError> {
        let bytes = match fs::read(self.path.join(MANIFEST_FILE)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(RunDirError::io(MANIFEST_FILE)(e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| RunDirError::Damaged { file: MANIFEST_FILE.into(), why: e.to_string() })
    }

    /// The loop's counters of the committed checkpoint, if there is one and it is readable.
    pub fn saved_progress(&self) -> Option<LoopState> {
        if let Ok(Some(manifest)) = self.manifest() {
            return Some(manifest.state);
        }
        serde_json::from_slice(&fs::read(self.path.join(LEGACY_FILES[0])).ok()?).ok()
    }

    /// Commits a checkpoint: `model`'s weights, `optimizer`'s buffers and `state`, plus `best` when the
    /// epoch just ended is the best so far. Atomic (see the module's documentation); on an error, the
    /// files of this attempt are removed and the previous checkpoint stays the committed one.
    pub fn commit(
        &self,
        model: &ResNet18,
        optimizer: &Optimizer,
        state: &LoopState,
        best: Option<BestModel<'_>>,
    ) -> Result<(), RunDirError> {
        fs::create_dir_all(&self.path).map_err(RunDirError::io("the run's folder"))?;
        let previous = self.manifest().ok().flatten().map(|m| m.generation);
        let generation = previous.map_or(1, |g| g + 1);
        let result = self.write_generation(model, optimizer, state, best, generation);
        if result.is_err() {
            let _ = self.remove_leftovers();
        }
        result?;
        step("remove-old")?;
        let _ = self.remove_leftovers();
        step("committed")
    }

    fn write_generation(
        &self,
        model: &ResNet18,
        optimizer: &Optimizer,
        state: &LoopState,
        best: Option<BestModel<'_>>,
        generation: u64,
    ) -> Result<(), RunDirError> {
        let torch = |source| RunDirError::Model(ModelError::Torch { path: self.path.clone(), source });
        step("write-last")?;
        let last = self.last_weights(generation);
        self.write(&last, &model.to_safetensors(None).map_err(torch)?)?;
        step("write-optimizer")?;
        let buffers = self.optimizer_buffers(generation);
        self.write(&buffers, &crate::model::safetensors_bytes(optimizer.state_tensors(), None).map_err(torch)?)?;
        if let Some(best) = best {
            self.write_best(model, best)?;
        }
        step("write-manifest")?;
        let manifest = Manifest { generation, state: state.clone() };
        self.write(MANIFEST_FILE, &serde_json::to_vec_pretty(&manifest).expect("the manifest serialises"))?;
        step("sync-folder")?;
        fs::File::open(&self.path).and_then(|folder| folder.sync_all()).map_err(RunDirError::io("the run's folder"))
    }

    fn write_best(&self, model: &ResNet18, best: BestModel<'_>) -> Result<(), RunDirError> {
        step("write-best")?;
        let torch = |source| RunDirError::Model(ModelError::Torch { path: self.best_weights(), source });
        self.write(BEST_WEIGHTS_FILE, &model.to_safetensors(Some(best.metadata)).map_err(torch)?)?;
        step("write-metadata")?;
        let json = serde_json::to_vec_pretty(best.metadata).expect("metadata serialises");
        self.write(crate::model::METADATA_FILE, &json)?;
        step("write-predictions")?;
        self.write(TEST_PREDICTIONS_FILE, &serde_json::to_vec(best.test_predictions).expect("test images serialise"))
    }

    fn write(&self, file: &str, bytes: &[u8]) -> Result<(), RunDirError> {
        write_atomically(&self.path.join(file), bytes).map_err(RunDirError::io(file))
    }

    /// Loads the committed checkpoint into `model` and `optimizer` and returns its counters; `None`
    /// when the run has none yet.
    pub fn restore(&self, model: &mut ResNet18, optimizer: &mut Optimizer) -> Result<Option<LoopState>, RunDirError> {
        let (state, weights, buffers) = match self.manifest()? {
            Some(manifest) => {
                (manifest.state, self.last_weights(manifest.generation), self.optimizer_buffers(manifest.generation))
            }
            None => match self.saved_progress() {
                Some(state) => (state, LEGACY_FILES[1].to_string(), LEGACY_FILES[2].to_string()),
                None => return Ok(None),
            },
        };
        model.load_all(&self.path.join(&weights))?;
        let tensors = tch::Tensor::read_safetensors(self.path.join(&buffers))
            .map_err(|e| RunDirError::Damaged { file: buffers, why: e.to_string() })?;
        optimizer.load_state(tensors);
        Ok(Some(state))
    }

    /// Writes the run's receipt (atomically, replacing an earlier one).
    pub fn write_receipt(&self, receipt: &RunReceipt) -> Result<(), RunDirError> {
        fs::create_dir_all(&self.path).map_err(RunDirError::io("the run's folder"))?;
        self.write(RECEIPT_FILE, &serde_json::to_vec_pretty(receipt).expect("a receipt serialises"))
    }

    /// The run's receipt, if training has started and the file is readable.
    pub fn receipt(&self) -> Option<RunReceipt> {
        serde_json::from_slice(&fs::read(self.path.join(RECEIPT_FILE)).ok()?).ok()
    }

    /// What the best model predicted for each test image, if it has been saved.
    pub fn test_predictions(&self) -> Option<Vec<TestImage>> {
        serde_json::from_slice(&fs::read(self.path.join(TEST_PREDICTIONS_FILE)).ok()?).ok()
    }

    /// Removes what a crash or a failed commit left behind: temporary files, and checkpoint files of
    /// generations the manifest does not name. Returns how many files were removed.
    pub fn remove_leftovers(&self) -> io::Result<usize> {
        let Ok(entries) = fs::read_dir(&self.path) else { return Ok(0) };
        let keep = match self.manifest() {
            Ok(Some(manifest)) => {
                vec![self.last_weights(manifest.generation), self.optimizer_buffers(manifest.generation)]
            }
            Ok(None) => Vec::new(),
            // A manifest that cannot be read is left for a person to look at, and so are its files.
            Err(_) => return Ok(0),
        };
        let mut removed = 0;
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let generation_file = ["last-", "optimizer-"].iter().any(|p| name.starts_with(p));
            let temporary = name.ends_with(".partial") || name.ends_with(".tmp") || name.contains(".partial.");
            let superseded = !keep.is_empty() && LEGACY_FILES.contains(&name.as_str());
            if temporary || superseded || (generation_file && !keep.contains(&name)) {
                fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// The loop's counters, saved after every epoch next to the checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoopState {
    /// The last finished epoch.
    pub epoch: u32,
    /// Best test accuracy so far.
    pub best_accuracy: f64,
    /// The epoch that reached it.
    pub best_epoch: u32,
    /// Epochs since the best, for early stopping.
    pub epochs_without_improvement: u32,
    /// What every finished epoch measured, in order, so a history that missed one (a crash between this
    /// file and the database, or a database write refused by a full disk) can be completed from the
    /// checkpoint.
    #[serde(default)]
    pub epochs: Vec<EpochMetrics>,
    /// The epoch a stop interrupted, so a resume continues it from the next batch.
    #[serde(default)]
    pub partial: Option<PartialEpoch>,
}

impl LoopState {
    /// Whether early stopping ends a run of `config` here: its patience has run out.
    pub fn patience_run_out(&self, config: &TrainConfig) -> bool {
        config.early_stopping_patience.is_some_and(|patience| self.epochs_without_improvement >= patience)
    }

    /// Whether a run of `config` has nothing left to train from this state: no epoch half done, and
    /// every epoch trained or early stopping's patience run out.
    pub fn ends_training(&self, config: &TrainConfig) -> bool {
        self.partial.is_none() && (self.epoch >= config.epochs || self.patience_run_out(config))
    }
}

/// How far a stopped epoch had got: with the weights and optimiser buffers saved at that batch, enough
/// to finish the epoch exactly as if it had not stopped (the batch order and augmentation of an epoch
/// are drawn from the seed and the epoch number).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartialEpoch {
    /// The epoch (1-based).
    pub epoch: u32,
    /// Batches of it already trained.
    pub batches_done: i64,
    /// Sum over those batches of the mean loss times the batch size.
    pub loss_sum: f64,
    /// Correct training predictions in those batches.
    pub correct: i64,
    /// Seconds the epoch had run.
    pub seconds: f64,
}

fn step(name: &str) -> Result<(), RunDirError> {
    fault::point(name).map_err(RunDirError::io(name))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::optim::Rule;
    use tch::Device;

    /// A fresh three-class model and its SGD optimiser, for checkpoints made in tests.
    pub(crate) fn model_and_optimizer(seed: u64) -> (ResNet18, Optimizer) {
        let model = ResNet18::new(Device::Cpu, 3, seed);
        let parameters = model.parameters().into_iter().map(|(name, tensor, _)| (name, tensor, 1.0)).collect();
        let optimizer = Optimizer::new(Rule::Sgd { momentum: 0.9, nesterov: false, weight_decay: 0.0 }, parameters);
        (model, optimizer)
    }

    fn files(dir: &RunDir) -> Vec<String> {
        let mut names: Vec<String> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn each_commit_replaces_the_last_generation_and_restores_exactly() {
        let folder = tempfile::tempdir().unwrap();
        let dir = RunDir::new(folder.path().join("run"));
        let (model, optimizer) = model_and_optimizer(1);
        for epoch in 1..=3 {
            let state = LoopState { epoch, ..LoopState::default() };
            dir.commit(&model, &optimizer, &state, None).unwrap();
        }
        assert_eq!(files(&dir), ["checkpoint.json", "last-000003.safetensors", "optimizer-000003.safetensors"]);
        let (mut restored, mut restored_optimizer) = model_and_optimizer(2);
        let state = dir.restore(&mut restored, &mut restored_optimizer).unwrap().unwrap();
        assert_eq!(state.epoch, 3);
        let input = tch::Tensor::ones([1, 3, 32, 32], (tch::Kind::Float, Device::Cpu));
        let same = model.forward_t(&input, false).equal(&restored.forward_t(&input, false));
        assert!(same, "the restored weights are the committed ones");
    }

    #[test]
    fn leftovers_of_an_unfinished_commit_are_removed_and_the_committed_one_kept() {
        let folder = tempfile::tempdir().unwrap();
        let dir = RunDir::new(folder.path().join("run"));
        let (model, optimizer) = model_and_optimizer(1);
        dir.commit(&model, &optimizer, &LoopState { epoch: 1, ..LoopState::default() }, None).unwrap();
        // What a crash during the next commit leaves: its files written, the manifest not switched.
        for stray in [
            "last-000002.safetensors",
            "optimizer-000002.safetensors",
            "checkpoint.json.partial",
            "model.safetensors.partial",
        ] {
            fs::write(dir.path().join(stray), b"half").unwrap();
        }
        assert_eq!(dir.remove_leftovers().unwrap(), 4);
        assert_eq!(files(&dir), ["checkpoint.json", "last-000001.safetensors", "optimizer-000001.safetensors"]);
        assert_eq!(dir.saved_progress().unwrap().epoch, 1);
    }

    #[test]
    fn a_checkpoint_of_the_layout_before_the_manifest_still_resumes() {
        let folder = tempfile::tempdir().unwrap();
        let dir = RunDir::new(folder.path());
        let (model, optimizer) = model_and_optimizer(1);
        model.save(&folder.path().join("last.safetensors"), None).unwrap();
        let buffers = crate::model::safetensors_bytes(optimizer.state_tensors(), None).unwrap();
        fs::write(folder.path().join("optimizer.safetensors"), buffers).unwrap();
        let state = LoopState { epoch: 4, ..LoopState::default() };
        fs::write(folder.path().join("progress.json"), serde_json::to_vec(&state).unwrap()).unwrap();
        let (mut restored, mut restored_optimizer) = model_and_optimizer(2);
        assert_eq!(dir.restore(&mut restored, &mut restored_optimizer).unwrap().unwrap().epoch, 4);
        dir.commit(&restored, &restored_optimizer, &LoopState { epoch: 5, ..LoopState::default() }, None).unwrap();
        assert_eq!(files(&dir), ["checkpoint.json", "last-000001.safetensors", "optimizer-000001.safetensors"]);
    }

    #[test]
    fn training_ends_after_every_epoch_or_when_early_stoppings_patience_runs_out() {
        let config = TrainConfig { epochs: 5, early_stopping_patience: Some(2), ..TrainConfig::for_dataset("tiny") };
        let state =
            |epoch, epochs_without_improvement| LoopState { epoch, epochs_without_improvement, ..LoopState::default() };
        assert!(!state(3, 1).ends_training(&config));
        assert!(state(3, 2).ends_training(&config), "patience run out");
        assert!(state(5, 0).ends_training(&config), "every epoch");
        let never_early = TrainConfig { early_stopping_patience: None, ..config.clone() };
        assert!(!state(3, 4).ends_training(&never_early));
        let half_done = LoopState {
            partial: Some(PartialEpoch { epoch: 6, batches_done: 1, loss_sum: 0.0, correct: 0, seconds: 0.0 }),
            ..state(5, 0)
        };
        assert!(!half_done.ends_training(&config), "an epoch half done is left to finish");
    }
}
