//! Writing generated samples: PNG images and masks, WAV clips, CSV rows.

use std::path::Path;

use candle_core::{DType, Tensor};

use crate::{Error, Result};

fn io_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Writes an image `[channel, height, width]` in `[-1, 1]` (1 channel grey, 3 RGB; other
/// counts write the channel mean) as an 8-bit PNG: `round((v + 1) * 127.5)`, clamped.
///
/// # Errors
/// [`Error::ShapeMismatch`] for another rank; [`Error::Io`] naming the file.
pub fn write_png(path: impl AsRef<Path>, image: &Tensor) -> Result<()> {
    let path = path.as_ref();
    let (c, h, w) = image
        .dims3()
        .map_err(|_| Error::shape("write_png: image", "[channel, height, width]", image.dims()))?;
    let v = image
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let q = |x: f32| ((x.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8;
    if c == 3 {
        let mut buf = Vec::with_capacity(h * w * 3);
        for p in 0..h * w {
            for ch in 0..3 {
                buf.push(q(v[ch * h * w + p]));
            }
        }
        image::RgbImage::from_raw(w as u32, h as u32, buf)
            .ok_or_else(|| io_err(path, "buffer size"))?
            .save(path)
            .map_err(|e| io_err(path, e))
    } else {
        let buf: Vec<u8> = (0..h * w)
            .map(|p| q((0..c).map(|ch| v[ch * h * w + p]).sum::<f32>() / c as f32))
            .collect();
        image::GrayImage::from_raw(w as u32, h as u32, buf)
            .ok_or_else(|| io_err(path, "buffer size"))?
            .save(path)
            .map_err(|e| io_err(path, e))
    }
}

/// Writes a mask `[height, width]` as a PNG (255 where the mask is above 0.5, as MVTec AD's
/// ground truth).
///
/// # Errors
/// [`Error::ShapeMismatch`] for another rank; [`Error::Io`] naming the file.
pub fn write_mask_png(path: impl AsRef<Path>, mask: &Tensor) -> Result<()> {
    let path = path.as_ref();
    let (h, w) = mask
        .dims2()
        .map_err(|_| Error::shape("write_mask_png: mask", "[height, width]", mask.dims()))?;
    let buf: Vec<u8> = mask
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?
        .into_iter()
        .map(|v| if v > 0.5 { 255 } else { 0 })
        .collect();
    image::GrayImage::from_raw(w as u32, h as u32, buf)
        .ok_or_else(|| io_err(path, "buffer size"))?
        .save(path)
        .map_err(|e| io_err(path, e))
}

/// Writes a mono clip (values in `[-1, 1]`, clamped) as a 16-bit PCM WAV.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_wav(path: impl AsRef<Path>, samples: &[f32], sample_rate: u32) -> Result<()> {
    let path = path.as_ref();
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).map_err(|e| io_err(path, e))?;
    for &s in samples {
        w.write_sample((s.clamp(-1.0, 1.0) * 32767.0).round() as i16)
            .map_err(|e| io_err(path, e))?;
    }
    w.finalize().map_err(|e| io_err(path, e))
}

/// Writes rows as CSV with a header line (no quoting: names must not hold commas).
///
/// # Errors
/// [`Error::ShapeMismatch`] if a row's length is not the header's; [`Error::Io`] naming the
/// file.
pub fn write_csv(path: impl AsRef<Path>, header: &[String], rows: &[Vec<f64>]) -> Result<()> {
    let path = path.as_ref();
    let mut text = header.join(",");
    text.push('\n');
    for r in rows {
        if r.len() != header.len() {
            return Err(Error::shape(
                "write_csv: row",
                format!("{} values (as the header)", header.len()),
                &[r.len()],
            ));
        }
        let line: Vec<String> = r.iter().map(|v| format!("{v}")).collect();
        text.push_str(&line.join(","));
        text.push('\n');
    }
    std::fs::write(path, text).map_err(|e| io_err(path, e))
}
