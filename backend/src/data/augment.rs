//! Data augmentation as batched tensor operations on the training device: random crop with zero padding
//! and random horizontal flip. The random choices for an epoch are drawn up front from a generator seeded
//! by the run's seed and the epoch, so a resumed run augments exactly as an uninterrupted one.

use rand::{Rng, SeedableRng};
use tch::{Device, Kind, Tensor};

/// The random choices for every image of one epoch, in visiting order.
pub struct EpochAugmentation {
    /// `[N, 2]` crop offsets (rows, columns) into the padded image, `i64`.
    offsets: Tensor,
    /// `[N]` true where the image is flipped.
    flips: Tensor,
    /// Zero padding on each side.
    padding: i64,
    crop: bool,
    flip: bool,
}

impl EpochAugmentation {
    /// Draws the choices for `count` images of `side` pixels in `epoch`.
    pub fn draw(seed: u64, epoch: u32, count: i64, side: i64, crop: bool, flip: bool, device: Device) -> Self {
        let padding = (side / 8).max(4);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ (u64::from(epoch) << 32 | 0xa06));
        let offsets: Vec<i64> = (0..2 * count).map(|_| rng.random_range(0..=2 * padding)).collect();
        let flips: Vec<bool> = (0..count).map(|_| rng.random_bool(0.5)).collect();
        EpochAugmentation {
            offsets: Tensor::from_slice(&offsets).view([count, 2]).to_device(device),
            flips: Tensor::from_slice(&flips).to_device(device),
            padding,
            crop,
            flip,
        }
    }

    /// Augments the batch of `u8` images `[B, 3, H, W]` that starts at position `start` of the epoch.
    pub fn apply(&self, images: &Tensor, start: i64) -> Tensor {
        let size = images.size();
        let (batch, height, width) = (size[0], size[2], size[3]);
        let mut out = images.shallow_clone();
        if self.crop {
            let p = self.padding;
            let padded = out.constant_pad_nd([p, p, p, p]); // [B, 3, H+2p, W+2p]
            let offsets = self.offsets.narrow(0, start, batch); // [B, 2]
            let device = images.device();
            let rows =
                offsets.select(1, 0).view([batch, 1]) + Tensor::arange(height, (Kind::Int64, device)).view([1, height]); // [B, H]
            let cols =
                offsets.select(1, 1).view([batch, 1]) + Tensor::arange(width, (Kind::Int64, device)).view([1, width]); // [B, W]
            let row_index = rows.view([batch, 1, height, 1]).expand([batch, 3, height, width + 2 * p], false);
            let cropped_rows = padded.gather(2, &row_index, false); // [B, 3, H, W+2p]
            let col_index = cols.view([batch, 1, 1, width]).expand([batch, 3, height, width], false);
            out = cropped_rows.gather(3, &col_index, false); // [B, 3, H, W]
        }
        if self.flip {
            let flips = self.flips.narrow(0, start, batch).view([batch, 1, 1, 1]);
            out = out.flip([3]).where_self(&flips, &out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp() -> Tensor {
        // [2, 3, 8, 8] with value = column index, so shifts and flips are visible.
        Tensor::arange(8, (Kind::Uint8, Device::Cpu)).view([1, 1, 1, 8]).expand([2, 3, 8, 8], false).contiguous()
    }

    #[test]
    fn flips_mirror_exactly_the_chosen_images() {
        let augmentation = EpochAugmentation::draw(1, 1, 2, 8, false, true, Device::Cpu);
        let flips = Vec::<bool>::try_from(&augmentation.flips).unwrap();
        let out = augmentation.apply(&ramp(), 0);
        for (i, flipped) in flips.iter().enumerate() {
            let first = out.int64_value(&[i as i64, 0, 0, 0]);
            assert_eq!(first, if *flipped { 7 } else { 0 });
        }
    }

    #[test]
    fn crops_shift_within_the_padding_and_keep_the_shape() {
        let augmentation = EpochAugmentation::draw(3, 2, 2, 8, true, false, Device::Cpu);
        let out = augmentation.apply(&ramp(), 0);
        assert_eq!(out.size(), [2, 3, 8, 8]);
        for i in 0..2 {
            let dx = augmentation.offsets.int64_value(&[i, 1]) - augmentation.padding;
            // Column c of the output shows input column c + dx, or zero padding outside the image.
            for c in 0..8 {
                let source = c + dx;
                let expected = if (0..8).contains(&source) { source } else { 0 };
                assert_eq!(out.int64_value(&[i, 1, 4, c]), expected, "image {i} column {c} dx {dx}");
            }
        }
    }

    #[test]
    fn the_same_seed_and_epoch_draw_the_same_choices() {
        let a = EpochAugmentation::draw(5, 3, 100, 32, true, true, Device::Cpu);
        let b = EpochAugmentation::draw(5, 3, 100, 32, true, true, Device::Cpu);
        let c = EpochAugmentation::draw(5, 4, 100, 32, true, true, Device::Cpu);
        assert!(a.offsets.equal(&b.offsets) && a.flips.equal(&b.flips));
        assert!(!a.offsets.equal(&c.offsets));
    }
}
