//! Classification with a saved model: the image is decoded, resized and normalised exactly as the
//! model's training data was (from its [`ModelMetadata`]), and the top classes come back with
//! softmax probabilities; on request, with a Grad-CAM map of why the top class won (see [`Explanation`]).

use crate::data::images::{decode_to_chw, Admission, ImageError};
use crate::model::folded::FoldedResNet18;
use crate::model::{normalize, ModelError, ModelMetadata, ResNet18};
use shared::{ExplainLayer, Explanation, Prediction};
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
    #[error("the classifier is busy (its queue of {queued} requests, or of the images it may hold, is full): try again in a moment")]
    Busy {
        /// Requests its queue holds.
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

/// What the model says about one image.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageAnswer {
    /// Top classes, most likely first (at most [`TOP_K`]).
    pub predictions: Vec<Prediction>,
    /// Grad-CAM of the top class, when one was asked for.
    pub explanation: Option<Explanation>,
}

/// A trained model ready to classify.
pub struct Classifier {
    /// The model, for Grad-CAM's gradients.
    model: ResNet18,
    /// The same weights with the batch norms folded, for plain classification.
    folded: FoldedResNet18,
    /// How the model was trained: classes, preprocessing.
    pub metadata: ModelMetadata,
}

impl Classifier {
    /// Loads a saved model onto `device`: a run's folder (`model.safetensors` + `model.json`), or a
    /// checkpoint file on its own (its header carries the metadata, see [`crate::model`]).
    pub fn load(path: &Path, device: Device) -> Result<Self, ModelError> {
        let (metadata, weights) = ModelMetadata::locate(path)?;
        // Every variable is overwritten from the file; the seed only fills them until then.
        let mut model = ResNet18::new(device, metadata.classes.len(), 0);
        model.load_all(&weights)?;
        Classifier::new(model, metadata).map_err(|source| ModelError::Torch { path: weights, source })
    }

    /// A classifier of `model`, trained as `metadata` says.
    fn new(model: ResNet18, metadata: ModelMetadata) -> Result<Self, tch::TchError> {
        Ok(Classifier { folded: FoldedResNet18::of(&model)?, model, metadata })
    }

    /// Decodes each image and classifies the readable ones in one batch. The answer for each image is its
    /// top classes (at most [`TOP_K`]), most likely first, or why it could not be read.
    pub fn classify(&self, images: &[&[u8]]) -> Vec<Result<Vec<Prediction>, ImageError>> {
        let answers = self.answer(images, None, Admission::Unmetered);
        answers.into_iter().map(|answer| answer.map(|a| a.predictions)).collect()
    }

    /// Like [`Classifier::classify`], and with `explain`, each readable image's answer also carries the
    /// Grad-CAM map of its top class at that layer (see [`Classifier::explain_tensor`]).
    /// Each image is decoded within `admission` (one at a time: only one image's full-size pixels are held).
    pub fn answer(
        &self,
        images: &[&[u8]],
        explain: Option<ExplainLayer>,
        admission: Admission,
    ) -> Vec<Result<ImageAnswer, ImageError>> {
        let side = self.metadata.input_size;
        let decoded: Vec<Result<Vec<u8>, ImageError>> =
            images.iter().map(|bytes| decode_to_chw(bytes, side, admission)).collect();
        let pixels: Vec<u8> = decoded.iter().filter_map(|d| d.as_ref().ok()).flatten().copied().collect();
        let readable = decoded.iter().filter(|d| d.is_ok()).count() as i64;
        let mut answers = if readable == 0 {
            Vec::new()
        } else {
            let side = side as i64;
            let device = self.model.vs.device();
            let batch = Tensor::from_slice(&pixels).view([readable, 3, side, side]).to_device(device);
            match explain {
                None => self
                    .classify_tensor(&batch)
                    .into_iter()
                    .map(|predictions| ImageAnswer { predictions, explanation: None })
                    .collect(),
                Some(layer) => self
                    .explain_tensor(&batch, layer)
                    .into_iter()
                    .map(|(predictions, explanation)| ImageAnswer { predictions, explanation: Some(explanation) })
                    .collect(),
            }
        }
        .into_iter();
        decoded.into_iter().map(|d| d.map(|_| answers.next().unwrap_or_default())).collect()
    }

    /// Classifies `u8` images `[B, 3, H, W]` already at the model's input size.
    pub fn classify_tensor(&self, images: &Tensor) -> Vec<Vec<Prediction>> {
        let logits = tch::no_grad(|| {
            let input = normalize(images, self.metadata.mean, self.metadata.std); // [B, 3, H, W]
            self.folded.forward(&input) // [B, classes]
        });
        self.predictions(&logits)
    }

    /// Classifies `u8` images `[B, 3, H, W]` already at the model's input size and explains each one's top
    /// class with Grad-CAM at the output of `layer`: channel weights are the spatial means of the gradient
    /// of that class's logit with respect to the output, the map is ReLU of the weighted sum of channels
    /// divided by its maximum (zeros when that is 0). The model stays in evaluation mode throughout.
    pub fn explain_tensor(&self, images: &Tensor, layer: ExplainLayer) -> Vec<(Vec<Prediction>, Explanation)> {
        let stage = layer.stage_for(self.metadata.input_size);
        let input = tch::no_grad(|| normalize(images, self.metadata.mean, self.metadata.std)); // [B, 3, H, W]
        let (activation, logits) = self.model.forward_from_stage(&input, stage); // [B, C, h, w], [B, classes]

        // Images do not interact in evaluation mode, so one backward pass over the sum of every image's own top
        // logit gives each image the gradient of its logit alone.
        let top = logits.argmax(-1, false); // [B]
        let chosen = logits.gather(1, &top.unsqueeze(1), false).sum(Kind::Float);
        let gradient = Tensor::run_backward(&[chosen], &[&activation], false, false).remove(0); // [B, C, h, w]
        let (cams, logits) = tch::no_grad(|| {
            let weights = gradient.mean_dim([2i64, 3].as_slice(), true, Kind::Float); // [B, C, 1, 1]
            let cam = (weights * activation.detach()).sum_dim_intlist([1i64].as_slice(), false, Kind::Float).relu(); // [B, h, w]
            let peak = cam.amax([1, 2], true); // [B, 1, 1]
            let divisor = &peak + peak.eq(0.0).to_kind(Kind::Float); // a zero map stays zero
            (cam / divisor, logits.detach())
        });
        let (height, width) = (cams.size()[1], cams.size()[2]);
        let cams = Vec::<f32>::try_from(cams.to_device(Device::Cpu).flatten(0, -1)).unwrap_or_default();
        let top = Vec::<i64>::try_from(top.to_device(Device::Cpu)).unwrap_or_default();
        let per_image = (height * width) as usize;
        self.predictions(&logits)
            .into_iter()
            .zip(top)
            .zip(cams.chunks(per_image.max(1)))
            .map(|((predictions, class_index), cam)| {
                let explanation = Explanation {
                    layer: format!("layer{stage}"),
                    class_index: class_index as usize,
                    width: width as u32,
                    height: height as u32,
                    cam: cam.to_vec(),
                };
                (predictions, explanation)
            })
            .collect()
    }

    /// The top classes of each row of `logits` `[B, classes]`, most likely first.
    fn predictions(&self, logits: &Tensor) -> Vec<Vec<Prediction>> {
        let probabilities = logits.softmax(-1, Kind::Float); // [B, classes]
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

#[cfg(test)]
mod tests {
    use super::*;

    fn random_classifier(classes: usize, input_size: u32) -> Classifier {
        let metadata = ModelMetadata {
            architecture: "resnet18".into(),
            classes: (0..classes).map(|i| format!("class{i}")).collect(),
            mean: [0.5; 3],
            std: [0.25; 3],
            input_size,
            epoch: 1,
            config: shared::TrainConfig::for_dataset("random"),
        };
        Classifier::new(ResNet18::new(Device::Cpu, classes, 3), metadata).unwrap()
    }

    fn random_images(count: i64, side: i64) -> Tensor {
        Tensor::randint(256, [count, 3, side, side], (Kind::Uint8, Device::Cpu))
    }

    #[test]
    fn an_explanation_is_a_normalised_map_of_the_top_class_at_the_chosen_layer() {
        let classifier = random_classifier(4, 32);
        let images = random_images(3, 32);
        let plain = classifier.classify_tensor(&images);
        for (layer, side) in [(ExplainLayer::Auto, 4), (ExplainLayer::Stage(1), 8), (ExplainLayer::Stage(3), 2)] {
            let explained = classifier.explain_tensor(&images, layer);
            assert_eq!(explained.len(), 3);
            for ((predictions, explanation), plain) in explained.iter().zip(&plain) {
                assert_eq!(predictions[0].index, plain[0].index, "the same top class as without explaining");
                assert!((predictions[0].probability - plain[0].probability).abs() < 1e-5);
                assert_eq!(explanation.class_index, predictions[0].index);
                assert_eq!((explanation.width, explanation.height), (side, side), "{layer:?}");
                assert_eq!(explanation.cam.len(), (side * side) as usize);
                let peak = explanation.cam.iter().copied().fold(0.0f32, f32::max);
                assert!(explanation.cam.iter().all(|v| (0.0..=1.0).contains(v)), "{:?}", explanation.cam);
                assert!(peak == 1.0 || peak == 0.0, "divided by its maximum: {peak}");
            }
        }
        assert_eq!(classifier.explain_tensor(&images, ExplainLayer::Auto)[0].1.layer, "layer2");
    }

    #[test]
    fn images_explained_together_get_the_maps_they_get_alone() {
        let classifier = random_classifier(5, 32);
        let images = random_images(3, 32);
        let together = classifier.explain_tensor(&images, ExplainLayer::Stage(1));
        for (i, (_, explanation)) in together.iter().enumerate() {
            let alone = &classifier.explain_tensor(&images.narrow(0, i as i64, 1), ExplainLayer::Stage(1))[0].1;
            assert_eq!(alone.class_index, explanation.class_index);
            let diff = alone.cam.iter().zip(&explanation.cam).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(diff < 1e-5, "image {i}: maps differ by {diff}");
        }
    }
}
