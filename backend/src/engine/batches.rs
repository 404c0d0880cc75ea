//! How an epoch's training images are visited: the order and augmentation drawn for it ([`EpochPlan`]),
//! how it is cut into batches ([`Batches`]), and, for a dataset streamed from its decoded cache, the
//! thread that gathers each batch ahead of the step that needs it ([`BatchStream`]). A batch is the same
//! either way, so a streamed run and a resident one give the same results.

use crate::data::augment::EpochAugmentation;
use crate::data::{DataError, Split};
use shared::TrainConfig;
use std::sync::mpsc;
use tch::{Device, Kind, Tensor};

/// Batches a stream keeps ready beyond the one being gathered: two in flight in all.
const READY_BATCHES: usize = 1;

/// The order and augmentation of one epoch's training images, both drawn from the seed and the epoch.
pub(crate) struct EpochPlan {
    /// Positions of the training images in visiting order `[N]`, on the device.
    order: Tensor,
    /// The same order on the CPU, where a stream gathers its batches.
    order_on_cpu: Tensor,
    /// The epoch's crops and flips, when the config asks for any.
    augmentation: Option<EpochAugmentation>,
}

impl EpochPlan {
    /// The plan of `epoch` for `count` training images on `device`.
    pub(crate) fn draw(config: &TrainConfig, epoch: u32, count: i64, device: Device) -> Self {
        let order_on_cpu = epoch_order(config.seed, epoch, count); // [N]
        let augmentation = (config.random_crop || config.horizontal_flip).then(|| {
            let side = config.input_size as i64;
            EpochAugmentation::draw(config.seed, epoch, count, side, config.random_crop, config.horizontal_flip, device)
        });
        EpochPlan { order: order_on_cpu.to_device(device), order_on_cpu, augmentation }
    }

    /// The `len` images visited from position `start`, not augmented, and their labels.
    pub(crate) fn gather(&self, train: &Split, start: i64, len: i64) -> (Tensor, Tensor) {
        let index = self.order.narrow(0, start, len);
        (train.images.index_select(0, &index), train.labels.index_select(0, &index))
        // [B, 3, H, W] u8, [B]
    }

    /// The `len` images visited from position `start` of a split on the CPU (mapped from the decoded
    /// cache), not augmented, and their labels, moved to `device` as a stream moves them.
    pub(crate) fn gather_to(
        &self,
        train: &Split,
        start: i64,
        len: i64,
        device: Device,
    ) -> Result<(Tensor, Tensor), tch::TchError> {
        gather(&train.images, &train.labels, &self.order_on_cpu, start, len, device)
    }

    /// `images`, visited from position `start`, with the epoch's crops and flips.
    pub(crate) fn augment(&self, images: Tensor, start: i64) -> Tensor {
        match &self.augmentation {
            Some(augmentation) => augmentation.apply(&images, start),
            None => images,
        }
    }
}

/// The order training images are visited in during `epoch`: a permutation drawn from a generator seeded
/// by the run's seed and the epoch alone, so it is the same on every device and after a resume.
pub fn epoch_order(seed: u64, epoch: u32, count: i64) -> Tensor {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ (u64::from(epoch) << 32 | 0x5eed));
    let mut order: Vec<i64> = (0..count).collect();
    order.shuffle(&mut rng);
    Tensor::from_slice(&order)
}

/// How an epoch's training images are cut into batches: `size` images each, except that a last batch of
/// one image joins the batch before it. Batch norm cannot normalise a single image at a 1x1 stage (its
/// variance is 0/0, and PyTorch refuses such a batch), and a leftover image is common: 17 images in
/// batches of 8.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Batches {
    /// Images per batch, as configured.
    size: i64,
    /// Training images in an epoch.
    images: i64,
}

impl Batches {
    pub(crate) fn new(size: u32, images: i64) -> Self {
        Batches { size: i64::from(size.max(1)), images }
    }

    /// Batches in an epoch.
    pub(crate) fn count(&self) -> i64 {
        let (full, rest) = (self.images / self.size, self.images % self.size);
        if rest == 1 && full > 0 {
            full
        } else {
            full + i64::from(rest > 0)
        }
    }

    /// The position of batch `index`'s first image in the epoch's order, and its number of images.
    pub(crate) fn span(&self, index: i64) -> (i64, i64) {
        let start = index * self.size;
        let len = if index + 1 == self.count() { self.images - start } else { self.size };
        (start, len)
    }

    /// Images in the first `done` batches.
    pub(crate) fn seen(&self, done: i64) -> i64 {
        if done >= self.count() {
            self.images
        } else {
            done * self.size
        }
    }
}

/// An epoch's batches gathered from a split mapped from its decoded cache, on a thread of their own, and
/// moved to the training device ahead of the step that needs them (through pinned memory on a GPU): the
/// next batch is gathered while the step before it runs, with [`READY_BATCHES`] more waiting. Batches come
/// in the epoch's order, from the one a resume starts at.
pub(crate) struct BatchStream {
    ready: mpsc::Receiver<Result<(Tensor, Tensor), String>>,
}

impl BatchStream {
    /// Starts gathering the batches of `plan` from batch `first` on, out of `train`, for `device`.
    pub(crate) fn start(
        train: &Split,
        plan: &EpochPlan,
        batches: Batches,
        first: i64,
        device: Device,
    ) -> Result<Self, DataError> {
        let (sender, ready) = mpsc::sync_channel(READY_BATCHES);
        let (images, labels) = (train.images.shallow_clone(), train.labels.shallow_clone());
        let order = plan.order_on_cpu.shallow_clone();
        let gather_all = move || {
            // Gathering is a copy: one OpenMP thread, so no team of this thread's stays beside the
            // trainer's (see super::teams).
            super::teams::single_threaded();
            for batch in first..batches.count() {
                let (start, len) = batches.span(batch);
                let gathered = gather(&images, &labels, &order, start, len, device).map_err(|e| e.to_string());
                if sender.send(gathered).is_err() {
                    return; // The epoch stopped.
                }
            }
        };
        std::thread::Builder::new()
            .name("batch-stream".into())
            .spawn(gather_all)
            .map_err(|e| DataError::Decode(format!("could not start the thread that streams batches: {e}")))?;
        Ok(BatchStream { ready })
    }

    /// The next batch's images `[B, 3, H, W]` u8 and labels `[B]`, on the device, not yet augmented.
    pub(crate) fn next_batch(&mut self) -> Result<(Tensor, Tensor), DataError> {
        match self.ready.recv() {
            Ok(Ok(batch)) => Ok(batch),
            Ok(Err(why)) => Err(DataError::Decode(format!("reading a batch from the decoded cache: {why}"))),
            Err(_) => Err(DataError::Decode("the batch stream ended before the epoch".into())),
        }
    }
}

/// The `len` images (and labels) visited from position `start` of `order`, on `device`.
fn gather(
    images: &Tensor,
    labels: &Tensor,
    order: &Tensor,
    start: i64,
    len: i64,
    device: Device,
) -> Result<(Tensor, Tensor), tch::TchError> {
    let index = order.f_narrow(0, start, len)?;
    let (batch, labels) = (images.f_index_select(0, &index)?, labels.f_index_select(0, &index)?);
    if device == Device::Cpu {
        return Ok((batch, labels));
    }
    let batch = batch.f_pin_memory(device)?.f_to_device_(device, Kind::Uint8, true, false)?;
    Ok((batch, labels.f_to_device(device)?))
}

#[cfg(test)]
mod tests {
    use super::Batches;

    /// Every batch's span, in order.
    fn spans(size: u32, images: i64) -> Vec<(i64, i64)> {
        let batches = Batches::new(size, images);
        (0..batches.count()).map(|index| batches.span(index)).collect()
    }

    #[test]
    fn a_leftover_single_image_joins_the_last_batch() {
        assert_eq!(spans(8, 17), [(0, 8), (8, 9)]);
        assert_eq!(Batches::new(8, 17).seen(1), 8);
        assert_eq!(Batches::new(8, 17).seen(2), 17);
    }

    #[test]
    fn other_remainders_make_a_short_last_batch() {
        assert_eq!(spans(8, 16), [(0, 8), (8, 8)]);
        assert_eq!(spans(8, 18), [(0, 8), (8, 8), (16, 2)]);
        assert_eq!(spans(8, 5), [(0, 5)]);
        assert_eq!(spans(8, 1), [(0, 1)], "a single image has nothing to join");
        assert_eq!(spans(1, 3), [(0, 1), (1, 1), (2, 1)], "a batch size of 1 is the user's choice");
    }
}
