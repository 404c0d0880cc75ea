//! Duplicate images, found and then verified rather than guessed from a hash.
//!
//! Each image gets a [`Fingerprint`] when it is decoded:
//! - its exact key, the SHA-256 of its size and RGB pixels: equal keys are the same picture;
//! - a 64-number *embedding*: the grey image shrunk to 8 x 8, its mean taken away and scaled to length 1;
//! - a *signature*: the grey image at [`SIGNATURE_SIDE`] x [`SIGNATURE_SIDE`], what a pair is verified on.
//!
//! [`find`] pairs every image of an exact group with the group's first, then looks for near copies among
//! the groups' first images in two steps (the way ciFAIR and fastdup do: retrieve candidates cheaply,
//! then confirm each):
//! 1. candidates: for each image, the [`CANDIDATES_PER_IMAGE`] others whose embeddings are most alike
//!    (cosine similarity at least [`CANDIDATE_COSINE`]), from one matrix product on libtorch;
//! 2. verification: the *similarity* of two signatures is the largest Pearson correlation of their pixels
//!    over shifts of up to [`MAX_SHIFT`] pixels either way (whole pixels of the smaller image, on the part
//!    they share); a pair is a near copy when it reaches [`NEAR_SIMILARITY`]. The correlation ignores
//!    brightness and contrast, the
//!    shifts absorb a crop or a translation, and the shared size absorbs resizing and re-encoding. Two
//!    different pictures of one class (two handwritten ones, two circles) differ in where their strokes
//!    lie, which no shift of two pixels undoes, and stay well below it.

use image::{imageops::FilterType, GrayImage, RgbImage};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use tch::{Kind, Tensor};

/// Side of the grey square a pair is verified on.
pub const SIGNATURE_SIDE: u32 = 32;
/// Side of the grey square whose pixels are an image's embedding.
const EMBEDDING_SIDE: u32 = 8;
/// Numbers in an embedding.
const EMBEDDING_LEN: usize = (EMBEDDING_SIDE * EMBEDDING_SIDE) as usize;
/// Least cosine similarity of two embeddings for the pair to be verified.
pub const CANDIDATE_COSINE: f32 = 0.8;
/// Most candidates verified per image.
pub const CANDIDATES_PER_IMAGE: i64 = 8;
/// Largest shift, in signature pixels either way, tried when verifying a pair.
pub const MAX_SHIFT: i32 = 2;
/// Least similarity (Pearson correlation of the signatures at their best shift) of a near copy.
pub const NEAR_SIMILARITY: f64 = 0.985;
/// Rows of the embedding matrix compared with all the others at once (bounds the product's memory:
/// 512 x 60,000 similarities are 123 MB).
const ROWS_PER_PRODUCT: i64 = 512;

/// What the duplicate search knows of one decoded image.
#[derive(Debug, Clone)]
pub struct Fingerprint {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// SHA-256 of the size and the RGB pixels.
    pub exact: [u8; 32],
    /// The grey 8 x 8 image less its mean, of length 1 (all zeros for a flat image).
    embedding: [f32; EMBEDDING_LEN],
    /// The grey [`SIGNATURE_SIDE`]-pixel square.
    signature: Vec<u8>,
}

impl Fingerprint {
    /// How alike the two images are (see [`similarity`]), shifted by whole pixels of the smaller one.
    pub fn similarity(&self, other: &Fingerprint) -> f64 {
        let smallest_side = self.width.min(self.height).min(other.width).min(other.height);
        similarity(&self.signature, &other.signature, shift_step(smallest_side))
    }

    /// The fingerprint of a decoded image.
    pub fn of(rgb: &RgbImage) -> Self {
        let (width, height) = rgb.dimensions();
        let mut sha = Sha256::new();
        sha.update(width.to_le_bytes());
        sha.update(height.to_le_bytes());
        sha.update(rgb.as_raw());
        let grey = grey(rgb);
        let signature = image::imageops::resize(&grey, SIGNATURE_SIDE, SIGNATURE_SIDE, FilterType::Triangle).into_raw();
        let tiny = image::imageops::resize(&grey, EMBEDDING_SIDE, EMBEDDING_SIDE, FilterType::Triangle);
        Fingerprint { width, height, exact: sha.finalize().into(), embedding: embedding(tiny.as_raw()), signature }
    }
}

fn grey(rgb: &RgbImage) -> GrayImage {
    GrayImage::from_fn(rgb.width(), rgb.height(), |x, y| {
        let [r, g, b] = rgb.get_pixel(x, y).0.map(f32::from);
        image::Luma([(0.299 * r + 0.587 * g + 0.114 * b).round() as u8])
    })
}

/// `pixels` less their mean, scaled to length 1; zeros when they are all alike.
fn embedding(pixels: &[u8]) -> [f32; EMBEDDING_LEN] {
    let mean = pixels.iter().map(|&p| f32::from(p)).sum::<f32>() / pixels.len() as f32;
    let mut out = [0f32; EMBEDDING_LEN];
    for (o, &p) in out.iter_mut().zip(pixels) {
        *o = f32::from(p) - mean;
    }
    let norm = out.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 1e-3 {
        out.iter_mut().for_each(|v| *v /= norm);
    } else {
        out = [0.0; EMBEDDING_LEN];
    }
    out
}

/// Two images found to be the same picture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Copy {
    /// Index of one image (the first of its exact group, for exact copies).
    pub a: usize,
    /// Index of the other.
    pub b: usize,
    /// Same pixels; otherwise verified alike.
    pub exact: bool,
    /// The verified similarity, 1 for exact copies.
    pub similarity: f64,
}

/// Every exact and verified near copy among `prints` (an image that could not be decoded is `None`).
/// Exact copies come first (each image of a group paired with the group's first), then near ones from
/// the most alike; indices are `prints`'.
pub fn find(prints: &[Option<&Fingerprint>]) -> Vec<Copy> {
    let mut copies = Vec::new();
    let mut first_of: HashMap<[u8; 32], usize> = HashMap::new();
    let mut representatives = Vec::new();
    for (index, print) in prints.iter().enumerate() {
        let Some(print) = print else { continue };
        match first_of.get(&print.exact) {
            Some(&first) => copies.push(Copy { a: first, b: index, exact: true, similarity: 1.0 }),
            None => {
                first_of.insert(print.exact, index);
                representatives.push(index);
            }
        }
    }
    let embeddings: Vec<&[f32]> = representatives.iter().map(|&i| &prints[i].unwrap().embedding[..]).collect();
    let mut near: Vec<Copy> = candidates(&embeddings)
        .into_par_iter()
        .filter_map(|(x, y)| {
            let (a, b) = (representatives[x], representatives[y]);
            let similarity = prints[a].unwrap().similarity(prints[b].unwrap());
            (similarity >= NEAR_SIMILARITY).then_some(Copy { a, b, exact: false, similarity })
        })
        .collect();
    near.sort_by(|x, y| y.similarity.total_cmp(&x.similarity).then((x.a, x.b).cmp(&(y.a, y.b))));
    copies.extend(near);
    copies
}

/// Pairs `(i, j)`, `i < j`, where `j` is among the [`CANDIDATES_PER_IMAGE`] embeddings most like `i`'s
/// (or the other way round) with a cosine similarity of at least [`CANDIDATE_COSINE`].
fn candidates(embeddings: &[&[f32]]) -> BTreeSet<(usize, usize)> {
    let count = embeddings.len() as i64;
    let mut pairs = BTreeSet::new();
    if count < 2 {
        return pairs;
    }
    let flat: Vec<f32> = embeddings.iter().flat_map(|e| e.iter().copied()).collect();
    let k = CANDIDATES_PER_IMAGE.min(count - 1) + 1;
    // The products run in parallel on a thread whose OpenMP team ends with them (see engine::teams).
    crate::engine::teams::on_own_team_of_all_cores("duplicates", move || {
        let all = Tensor::from_slice(&flat).view([count, EMBEDDING_LEN as i64]); // [N, 64]
        tch::no_grad(|| {
            for start in (0..count).step_by(ROWS_PER_PRODUCT as usize) {
                let rows = all.narrow(0, start, ROWS_PER_PRODUCT.min(count - start)); // [R, 64]
                let cosines = rows.matmul(&all.tr()); // [R, N]
                let (best, which) = cosines.topk(k, 1, true, true); // [R, k] each
                let best = Vec::<f32>::try_from(best.flatten(0, -1)).unwrap_or_default();
                let which = Vec::<i64>::try_from(which.flatten(0, -1).to_kind(Kind::Int64)).unwrap_or_default();
                for (slot, (&cosine, &other)) in best.iter().zip(&which).enumerate() {
                    let row = start as usize + slot / k as usize;
                    let other = other as usize;
                    if other != row && cosine >= CANDIDATE_COSINE {
                        pairs.insert((row.min(other), row.max(other)));
                    }
                }
            }
        });
        pairs
    })
}

/// The shifts tried, in signature pixels, are multiples of this: one pixel of the smaller image, so an
/// image smaller than the signature is only moved by whole pixels of its own (half a pixel of an 8-pixel
/// image would align two different shapes the resampling blurred alike).
fn shift_step(smallest_side: u32) -> i32 {
    (SIGNATURE_SIDE / smallest_side.max(1)).max(1) as i32
}

/// The largest Pearson correlation of two signatures over shifts of up to [`MAX_SHIFT`] pixels that are
/// multiples of `step`, each computed on the part of the square both cover; 0 when either part is flat.
fn similarity(a: &[u8], b: &[u8], step: i32) -> f64 {
    let shifts = (-MAX_SHIFT..=MAX_SHIFT).filter(|shift| shift % step == 0);
    let mut best = f64::MIN;
    for dy in shifts.clone() {
        for dx in shifts.clone() {
            best = best.max(shifted_correlation(a, b, dx, dy));
        }
    }
    best.max(0.0)
}

/// Pearson correlation of `a`'s pixel `(x, y)` with `b`'s pixel `(x + dx, y + dy)` over every position
/// where both exist.
fn shifted_correlation(a: &[u8], b: &[u8], dx: i32, dy: i32) -> f64 {
    let side = SIGNATURE_SIDE as i32;
    let (mut n, mut sa, mut sb, mut saa, mut sbb, mut sab) = (0f64, 0f64, 0f64, 0f64, 0f64, 0f64);
    for y in 0.max(-dy)..side.min(side - dy) {
        let (row_a, row_b) = ((y * side) as usize, ((y + dy) * side) as usize);
        for x in 0.max(-dx)..side.min(side - dx) {
            let (pa, pb) = (f64::from(a[row_a + x as usize]), f64::from(b[row_b + (x + dx) as usize]));
            n += 1.0;
            sa += pa;
            sb += pb;
            saa += pa * pa;
            sbb += pb * pb;
            sab += pa * pb;
        }
    }
    let covariance = sab - sa * sb / n;
    let (va, vb) = (saa - sa * sa / n, sbb - sb * sb / n);
    if va <= 1e-9 * n || vb <= 1e-9 * n {
        return 0.0;
    }
    covariance / (va * vb).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    /// A deterministic generator (xorshift), so the test images need no crate.
    struct Noise(u64);

    impl Noise {
        fn below(&mut self, bound: u32) -> u32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % u64::from(bound)) as u32
        }

        fn unit(&mut self) -> f32 {
            self.below(10_000) as f32 / 10_000.0
        }
    }

    /// A photo-like 32 px picture: a smooth background of two gradients, three blobs of colour and a
    /// little grain, different for each seed.
    fn picture(seed: u64) -> RgbImage {
        let mut noise = Noise(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let base: [f32; 3] = [noise.unit() * 200.0, noise.unit() * 200.0, noise.unit() * 200.0];
        let blobs: Vec<(f32, f32, f32, [f32; 3])> = (0..3)
            .map(|_| {
                let colour = [noise.unit() * 255.0, noise.unit() * 255.0, noise.unit() * 255.0];
                (noise.unit() * 32.0, noise.unit() * 32.0, 3.0 + noise.unit() * 8.0, colour)
            })
            .collect();
        let (gx, gy) = (noise.unit() * 3.0 - 1.5, noise.unit() * 3.0 - 1.5);
        RgbImage::from_fn(32, 32, |x, y| {
            let (fx, fy) = (x as f32, y as f32);
            let mut pixel = base.map(|c| c + gx * fx + gy * fy);
            for &(cx, cy, radius, colour) in &blobs {
                let weight = (-((fx - cx).powi(2) + (fy - cy).powi(2)) / (radius * radius)).exp();
                for channel in 0..3 {
                    pixel[channel] = pixel[channel] * (1.0 - weight) + colour[channel] * weight;
                }
            }
            Rgb(pixel.map(|c| (c + noise.unit() * 6.0).clamp(0.0, 255.0) as u8))
        })
    }

    fn jpeg_at_quality_70(rgb: &RgbImage) -> RgbImage {
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 70).encode_image(rgb).unwrap();
        image::load_from_memory(&bytes).unwrap().to_rgb8()
    }

    fn resized(rgb: &RgbImage, factor: f32) -> RgbImage {
        let side = (rgb.width() as f32 * factor).round() as u32;
        image::imageops::resize(rgb, side, side, FilterType::Triangle)
    }

    /// Moved `by` pixels right and down, the uncovered edge filled from the nearest pixel.
    fn shifted(rgb: &RgbImage, by: u32) -> RgbImage {
        RgbImage::from_fn(rgb.width(), rgb.height(), |x, y| *rgb.get_pixel(x.saturating_sub(by), y.saturating_sub(by)))
    }

    fn brighter(rgb: &RgbImage, by: u8) -> RgbImage {
        RgbImage::from_fn(rgb.width(), rgb.height(), |x, y| Rgb(rgb.get_pixel(x, y).0.map(|c| c.saturating_add(by))))
    }

    fn found(images: &[RgbImage]) -> Vec<Copy> {
        let prints: Vec<Fingerprint> = images.iter().map(Fingerprint::of).collect();
        find(&prints.iter().map(Some).collect::<Vec<_>>())
    }

    /// The highest similarity between two of `images`, for the failure message.
    fn most_alike(images: &[RgbImage]) -> f64 {
        let prints: Vec<Fingerprint> = images.iter().map(Fingerprint::of).collect();
        let mut best = 0f64;
        for (i, a) in prints.iter().enumerate() {
            for b in &prints[i + 1..] {
                best = best.max(a.similarity(b));
            }
        }
        best
    }

    #[test]
    fn planted_copies_are_all_found_and_distinct_pictures_are_not_paired() {
        let originals: Vec<RgbImage> = (0..40).map(picture).collect();
        let copies = [
            jpeg_at_quality_70(&originals[3]),
            resized(&originals[7], 0.9),
            shifted(&originals[11], 2),
            brighter(&originals[15], 10),
            originals[19].clone(),
        ];
        let mut images = originals.clone();
        images.extend(copies);
        let found = found(&images);
        let pairs: Vec<(usize, usize, bool)> = found.iter().map(|c| (c.a, c.b, c.exact)).collect();
        assert_eq!(pairs[0], (19, 44, true), "the exact copy first: {found:?}");
        let mut near: Vec<(usize, usize)> = found[1..].iter().map(|c| (c.a, c.b)).collect();
        near.sort();
        assert_eq!(
            near,
            [(3, 40), (7, 41), (11, 42), (15, 43)],
            "each planted copy, and nothing else: {found:?} (most alike originals: {:.4})",
            most_alike(&originals)
        );
        assert!(found.iter().all(|c| c.similarity >= NEAR_SIMILARITY && c.similarity <= 1.0 + 1e-9));
    }

    /// The `index`-th of 18 distinct handwritten-looking ones at `side` pixels: a stroke at one of three
    /// places, with one of three slants, with or without a serif; each pixel the share of 4 x 4 points
    /// inside it that are ink, as a scanner sees it. Any two differ by more than a shift of two pixels.
    fn one(index: usize, side: u32) -> RgbImage {
        let s = side as f32;
        let top_x = s * [0.3, 0.5, 0.7][index % 3];
        let slant = s * [-0.25, 0.0, 0.25][index / 3 % 3];
        let serif = index / 9 == 1;
        let (top_y, bottom_y, width) = (s * 0.15, s * 0.85, s * 0.08);
        let inked = |px: f32, py: f32| {
            let t = ((py - top_y) / (bottom_y - top_y)).clamp(0.0, 1.0);
            let on_stroke = (px - (top_x + slant * t)).abs() < width && py >= top_y && py <= bottom_y;
            on_stroke || serif && (py - top_y).abs() < width && px < top_x && px > top_x - s * 0.25
        };
        drawn(side, inked, [10, 10, 10], [230, 230, 230])
    }

    /// The `index`-th of 27 distinct filled circles at `side` pixels: three places across, three down,
    /// three radii.
    fn circle(index: usize, side: u32) -> RgbImage {
        let s = side as f32;
        let (cx, cy) = (s * [0.3, 0.5, 0.7][index % 3], s * [0.3, 0.5, 0.7][index / 3 % 3]);
        let radius = s * [0.1, 0.18, 0.26][index / 9 % 3];
        drawn(side, |x, y| (x - cx).powi(2) + (y - cy).powi(2) < radius * radius, [240, 240, 240], [200, 40, 40])
    }

    /// A `side`-pixel drawing of `shape` in `ink` on `paper`, each pixel mixed by the share of its 4 x 4
    /// points inside the shape.
    fn drawn(side: u32, shape: impl Fn(f32, f32) -> bool, paper: [u8; 3], ink: [u8; 3]) -> RgbImage {
        RgbImage::from_fn(side, side, |x, y| {
            let inside = (0..16)
                .filter(|i| shape(x as f32 + (i % 4) as f32 / 4.0 + 0.125, y as f32 + (i / 4) as f32 / 4.0 + 0.125))
                .count() as f32
                / 16.0;
            Rgb(std::array::from_fn(|c| (f32::from(paper[c]) * (1.0 - inside) + f32::from(ink[c]) * inside) as u8))
        })
    }

    #[test]
    fn distinct_low_resolution_digits_and_shapes_of_one_class_are_not_copies() {
        for side in [8, 16, 28] {
            let ones: Vec<RgbImage> = (0..18).map(|index| one(index, side)).collect();
            assert_eq!(found(&ones), [], "ones at {side} px (most alike: {:.4})", most_alike(&ones));
            let circles: Vec<RgbImage> = (0..27).map(|index| circle(index, side)).collect();
            assert_eq!(found(&circles), [], "circles at {side} px (most alike: {:.4})", most_alike(&circles));
        }
    }

    #[test]
    fn similarity_ignores_brightness_and_finds_the_shift() {
        let a = Fingerprint::of(&picture(1));
        let b = Fingerprint::of(&brighter(&shifted(&picture(1), 1), 20));
        assert!(similarity(&a.signature, &b.signature, 1) > 0.97);
        let flat = Fingerprint::of(&RgbImage::from_pixel(32, 32, Rgb([9, 9, 9])));
        assert_eq!(similarity(&flat.signature, &a.signature, 1), 0.0, "a flat image is like nothing");
    }
}
