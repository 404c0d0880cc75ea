//! Classification with a saved model: the image is decoded, resized and normalised exactly as the
//! model's training data was (from its [`ModelMetadata`]), and the top classes come back with
//! softmax probabilities.

use crate::data::images::{decode_to_chw, ImageError};
use crate::model::{normalize, ModelError, ModelMetadata, ResNet18, WEIGHTS_FILE};
use shared::Prediction;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// How many classes an answer lists at most.
pub const TOP_K: usize = 5;

/// Why images could not be classified at all.
#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    /// The model could not be loaded.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The classifier's queue is full: the request was not queued.
    #[error("the classifier is busy ({queued} requests are waiting): try again in a moment")]
    Busy {
        /// Requests already waiting.
        queued: usize,
    },
    /// Loading or running the model panicked; the details went to the server's log.
    #[error("the model crashed while {during}; the server's log has the details")]
    Crashed {
        /// What the classifier was doing: "loading" or "classifying".
        during: &'static str,
    },
    /// The classifier thread is gone (the server is shutting down).
    #[error("the classifier has stopped")]
    Stopped,
}

/// A trained model ready to classify.
pub struct Classifier {
    model: ResNet18,
    /// How the model was trained: classes, preprocessing.
    pub metadata: ModelMetadata,
}

impl Classifier {
    /// Loads a saved model onto `device`: a run's folder (`model.safetensors` + `model.json`), or a
    /// checkpoint file on its own (its header carries the metadata, see [`crate::model`]).
    pub fn load(path: &Path, device: Device) -> Result<Self, ModelError> {
        let (metadata, weights) = if path.is_file() {
            (ModelMetadata::from_checkpoint(path)?, path.to_path_buf())
        } else {
            (ModelMetadata::load(path)?, path.join(WEIGHTS_FILE))
        };
        // Every variable is overwritten from the file; the seed only fills them until then.
        let mut model = ResNet18::new(device, metadata.classes.len(), 0);
        model.load_all(&weights)?;
        Ok(Classifier { model, metadata })
    }

    /// Decodes each image and classifies the readable ones in one batch. The answer for each image is its
    /// top classes (at most [`TOP_K`]), most likely first, or why it could not be read.
    pub fn classify(&self, images: &[&[u8]]) -> Vec<Result<Vec<Prediction>, ImageError>> {
        let side = self.metadata.input_size;
        let decoded: Vec<Result<Vec<u8>, ImageError>> = images.iter().map(|bytes| decode_to_chw(bytes, side)).collect();
        let pixels: Vec<u8> = decoded.iter().filter_map(|d| d.as_ref().ok()).flatten().copied().collect();
        let readable = decoded.iter().filter(|d| d.is_ok()).count() as i64;
        let mut answers = if readable == 0 {
            Vec::new()
        } else {
            let side = side as i64;
            let device = self.model.vs.device();
            let batch = Tensor::from_slice(&pixels).view([readable, 3, side, side]).to_device(device);
            self.classify_tensor(&batch)
        }
        .into_iter();
        decoded.into_iter().map(|d| d.map(|_| answers.next().unwrap_or_default())).collect()
    }

    /// Classifies `u8` images `[B, 3, H, W]` already at the model's input size.
    pub fn classify_tensor(&self, images: &Tensor) -> Vec<Vec<Prediction>> {
        let probabilities = tch::no_grad(|| {
            let input = normalize(images, self.metadata.mean, self.metadata.std); // [B, 3, H, W]
            self.model.forward_t(&input, false).softmax(-1, Kind::Float) // [B, classes]
        });
        let k = TOP_K.min(self.metadata.classes.len()) as i64;
        let (values, indices) = probabilities.topk(k, -1, true, true); // [B, k] each
        let values = Vec::<Vec<f32>>::try_from(values.to_device(Device::Cpu)).unwrap_or_default();
        let indices = Vec::<Vec<i64>>::try_from(indices.to_device(Device::Cpu)).unwrap_or_default();
        values
            .into_iter()
            .zip(indices)
            .map(|(values, indices)| {
                values
                    .into_iter()
                    .zip(indices)
                    .map(|(probability, index)| Prediction {
                        label: self.metadata.classes[index as usize].clone(),
                        index: index as usize,
                        probability: probability as f64,
                    })
                    .collect()
            })
            .collect()
    }
}
