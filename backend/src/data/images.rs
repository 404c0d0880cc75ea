//! Image decoding shared by dataset loading and classification, so a model sees uploads exactly the way
//! it saw its training images: decoded to RGB, resized (squashed) to the input square with the same
//! filter, laid out as `[3, H, W]` bytes.
//!
//! Decoding is total and bounded: any bytes give pixels or an error, and an image is refused by its
//! header's dimensions (at most [`MAX_IMAGE_SIDE`] a side and [`MAX_IMAGE_PIXELS`] in all) before any
//! pixel is decoded, with the decoder's own allocation limit behind that. Images end up at most 224
//! pixels a side, so nothing is lost by refusing bigger ones, and one huge upload cannot hold the single
//! classifier thread for a second.

use crate::memory::{Admitted, MemoryBudget, OverBudget};
use image::{imageops::FilterType, ImageDecoder, ImageReader, Limits, RgbImage};
use std::io::Cursor;

/// Largest width or height accepted, in pixels.
pub const MAX_IMAGE_SIDE: u32 = 8192;
/// Most pixels accepted in one image: 16 megapixels (4096x4096, or a 12-megapixel phone photo).
pub const MAX_IMAGE_PIXELS: u64 = 16 * 1024 * 1024;
/// Most bytes the decoder may allocate for one image: the largest accepted image at 16-bit RGBA.
const MAX_DECODE_ALLOC: u64 = MAX_IMAGE_PIXELS * 8;

/// Why an image could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Not a format we read, or not an image at all.
    #[error("this file is not a PNG, JPEG, WebP, BMP or GIF image")]
    UnknownFormat,
    /// Wider or taller than [`MAX_IMAGE_SIDE`], or more than [`MAX_IMAGE_PIXELS`] in all.
    #[error(
        "image is {width}x{height} pixels; at most {MAX_IMAGE_SIDE} pixels a side and 16 megapixels in all \
         are accepted (images are scaled down to the model's input anyway)"
    )]
    TooLarge {
        /// Width the file claims.
        width: u32,
        /// Height the file claims.
        height: u32,
    },
    /// The decoder failed part-way: a truncated or corrupt file.
    #[error("image could not be decoded: {0}")]
    Corrupt(String),
    /// The memory budget has no room for this image now.
    #[error(transparent)]
    Busy(#[from] OverBudget),
}

/// How a decode gets the memory it needs from the [`MemoryBudget`].
#[derive(Clone, Copy)]
pub enum Admission<'a> {
    /// Refused at once ([`ImageError::Busy`]) when the budget has no room: a request's image.
    Now(&'a MemoryBudget),
    /// Waits for room: one of many images of work that must not fail halfway (a health check).
    Waiting(&'a MemoryBudget),
    /// Not counted: a run's dataset, decoded on the thread pool's few threads a chunk at a time into its
    /// decoded cache on disk.
    Unmetered,
}

/// Decodes `bytes` (PNG, JPEG, WebP, BMP or GIF), converts to RGB and resizes to `side` x `side`.
/// Returns the pixels as `[3, side, side]` bytes (channel planes, then rows).
pub fn decode_to_chw(bytes: &[u8], side: u32, admission: Admission) -> Result<Vec<u8>, ImageError> {
    let rgb = decode_rgb(bytes, admission)?;
    let rgb = if rgb.dimensions() == (side, side) {
        rgb
    } else {
        image::imageops::resize(&rgb, side, side, FilterType::Triangle)
    };
    let plane = side as usize * side as usize;
    let mut chw = vec![0u8; 3 * plane];
    let (red, green_blue) = chw.split_at_mut(plane);
    let (green, blue) = green_blue.split_at_mut(plane);
    // Zipped slices rather than indexing: no bounds checks in the loop.
    for (((pixel, r), g), b) in rgb.as_raw().chunks_exact(3).zip(red).zip(green).zip(blue) {
        (*r, *g, *b) = (pixel[0], pixel[1], pixel[2]);
    }
    Ok(chw)
}

/// Decodes `bytes` (PNG, JPEG, WebP, BMP or GIF) at its own size, converted to RGB, within the size
/// limits above and the memory `admission` gives it.
pub(crate) fn decode_rgb(bytes: &[u8], admission: Admission) -> Result<RgbImage, ImageError> {
    // The decoders return errors for bad files; should one of them panic instead, the file is corrupt
    // all the same and the thread decoding it carries on.
    std::panic::catch_unwind(|| decode(bytes, admission))
        .unwrap_or_else(|_| Err(ImageError::Corrupt("the decoder failed on this file".into())))
}

fn decode(bytes: &[u8], admission: Admission) -> Result<RgbImage, ImageError> {
    let corrupt = |e: image::ImageError| ImageError::Corrupt(e.to_string());
    let mut reader =
        ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| ImageError::Corrupt(e.to_string()))?;
    if reader.format().is_none() {
        return Err(ImageError::UnknownFormat);
    }
    // The header only: dimensions and sample type, nothing decoded yet; the limits apply from here.
    reader.no_limits();
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    if width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE || u64::from(width) * u64::from(height) > MAX_IMAGE_PIXELS {
        return Err(ImageError::TooLarge { width, height });
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    decoder.set_limits(limits).map_err(corrupt)?;
    let _admitted = admit(admission, decoded_bytes(decoder.total_bytes(), width, height))?;
    let decoded = image::DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    Ok(match decoded {
        image::DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    })
}

/// The most a decode holds at once: the image as the file stores it (`stored` bytes, 16-bit samples
/// and alpha included) and its 8-bit RGB copy.
fn decoded_bytes(stored: u64, width: u32, height: u32) -> u64 {
    stored.saturating_add(3 * u64::from(width) * u64::from(height))
}

fn admit(admission: Admission, bytes: u64) -> Result<Option<Admitted>, ImageError> {
    Ok(match admission {
        Admission::Now(budget) => Some(budget.try_admit(bytes)?),
        Admission::Waiting(budget) => Some(budget.admit_waiting(bytes)),
        Admission::Unmetered => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_bytes(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image::RgbImage::from_pixel(width, height, image::Rgb(rgb))
            .write_to(&mut out, image::ImageFormat::Png)
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn pixels_come_out_as_channel_planes_of_the_requested_side() {
        let chw = decode_to_chw(&png_bytes(50, 20, [10, 20, 30]), 32, Admission::Unmetered).unwrap();
        assert_eq!(chw.len(), 3 * 32 * 32);
        assert!(chw[..1024].iter().all(|&v| v == 10));
        assert!(chw[1024..2048].iter().all(|&v| v == 20));
        assert!(chw[2048..].iter().all(|&v| v == 30));
    }

    #[test]
    fn text_is_not_an_image() {
        assert!(matches!(decode_to_chw(b"hello, I am text", 32, Admission::Unmetered), Err(ImageError::UnknownFormat)));
        assert!(matches!(decode_to_chw(b"", 32, Admission::Unmetered), Err(ImageError::UnknownFormat)));
    }

    #[test]
    fn a_truncated_png_is_corrupt() {
        let bytes = png_bytes(64, 64, [1, 2, 3]);
        let err = decode_to_chw(&bytes[..bytes.len() / 2], 32, Admission::Unmetered).unwrap_err();
        assert!(matches!(err, ImageError::Corrupt(_)), "{err}");
    }

    #[test]
    fn a_header_claiming_huge_dimensions_is_refused_before_decoding() {
        let mut bytes = png_bytes(4, 4, [1, 2, 3]);
        // IHDR width and height live at bytes 16..24 of a PNG.
        bytes[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32fast::hash(&bytes[12..29]); // chunk type and data of IHDR
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        let err = decode_to_chw(&bytes, 32, Admission::Unmetered).unwrap_err();
        assert!(matches!(err, ImageError::TooLarge { width: 100_000, height: 100_000 }), "{err}");
    }

    /// A 4x4 PNG whose header claims `width` x `height`.
    fn png_claiming(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = png_bytes(4, 4, [1, 2, 3]);
        bytes[16..20].copy_from_slice(&width.to_be_bytes());
        bytes[20..24].copy_from_slice(&height.to_be_bytes());
        let crc = crc32fast::hash(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        bytes
    }

    #[test]
    fn an_8192_pixel_square_is_refused_by_its_pixel_count_before_decoding() {
        let err = decode_to_chw(&png_claiming(8192, 8192), 32, Admission::Unmetered).unwrap_err();
        assert!(matches!(err, ImageError::TooLarge { width: 8192, height: 8192 }), "{err}");
        assert!(err.to_string().contains("16 megapixels"), "{err}");
        // Within both limits, the header is believed and the short data is what fails.
        let err = decode_to_chw(&png_claiming(4096, 4096), 32, Admission::Unmetered).unwrap_err();
        assert!(matches!(err, ImageError::Corrupt(_)), "{err}");
    }
}
