//! Overlapping tiles of large images, and anomaly maps stitched back from the tiles' maps.
//!
//! A model trained at a tile size scores images larger than it (high-resolution inspection)
//! by scoring every tile and averaging the tiles' maps where they overlap.

use candle_core::{DType, Tensor};

use crate::{Error, Result};

/// The tiling of square-or-not images into square tiles of `size` pixels that overlap by
/// `overlap` pixels (at least; the last tile of a row or column is moved back to end at the
/// image's edge, so every pixel is covered and no tile is padded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tiling {
    /// The tiles' side, in pixels.
    pub size: usize,
    /// The pixels neighbouring tiles share, at least; below `size`.
    pub overlap: usize,
}

impl Tiling {
    /// The tiling of `size`-pixel tiles overlapping by `overlap`.
    ///
    /// # Errors
    /// [`dmad_core::Error::InvalidConfig`] (field `tile_size` or `tile_overlap`) for a zero
    /// size or an overlap not below the size.
    pub fn new(size: usize, overlap: usize) -> Result<Self> {
        if size == 0 {
            return Err(Error::config("tile_size", "must be at least 1"));
        }
        if overlap >= size {
            return Err(Error::config(
                "tile_overlap",
                format!("must be below the tile size {size}, got {overlap}"),
            ));
        }
        Ok(Self { size, overlap })
    }

    /// The first pixel of each tile along an axis of `len` pixels: `0, stride, 2 stride, ...`
    /// with `stride = size - overlap`, the last one moved to `len - size`.
    ///
    /// # Errors
    /// [`dmad_core::Error::ShapeMismatch`] when the axis is shorter than a tile.
    pub fn starts(&self, len: usize) -> Result<Vec<usize>> {
        if len < self.size {
            return Err(Error::shape(
                "Tiling: image side",
                format!("at least the tile size {}", self.size),
                &[len],
            ));
        }
        let stride = self.size - self.overlap;
        let mut v: Vec<usize> = (0..)
            .map(|i| i * stride)
            .take_while(|&s| s + self.size < len)
            .collect();
        v.push(len - self.size);
        Ok(v)
    }

    /// The tiles of each image of `x` (`[batch, channel, height, width]`): `[batch * tiles,
    /// channel, size, size]`, image by image, each image's tiles in row-major order.
    ///
    /// # Errors
    /// [`dmad_core::Error::ShapeMismatch`] for another rank, an empty batch or an image smaller
    /// than a tile.
    pub fn split(&self, x: &Tensor) -> Result<Tensor> {
        let (b, h, w) = self.check(x.dims(), 4, "Tiling::split: x")?;
        let (rows, cols) = (self.starts(h)?, self.starts(w)?);
        let mut tiles = Vec::with_capacity(b * rows.len() * cols.len());
        for i in 0..b {
            let img = x.narrow(0, i, 1)?;
            for &r in &rows {
                for &c in &cols {
                    tiles.push(img.narrow(2, r, self.size)?.narrow(3, c, self.size)?);
                }
            }
        }
        Ok(Tensor::cat(&tiles, 0)?)
    }

    /// The number of tiles of one `height` x `width` image.
    ///
    /// # Errors
    /// As [`Tiling::starts`].
    pub fn count(&self, height: usize, width: usize) -> Result<usize> {
        Ok(self.starts(height)?.len() * self.starts(width)?.len())
    }

    /// The maps of `batch` images of `height` x `width` pixels from the maps of their tiles
    /// (`[batch * tiles, size, size]`, laid out as [`Tiling::split`] lays out the tiles): each
    /// pixel the mean of the tiles covering it.
    ///
    /// # Errors
    /// [`dmad_core::Error::ShapeMismatch`] when `maps` does not hold the tiles' maps.
    pub fn stitch(&self, maps: &Tensor, height: usize, width: usize) -> Result<Tensor> {
        let (rows, cols) = (self.starts(height)?, self.starts(width)?);
        let per = rows.len() * cols.len();
        let (n, s) = (maps.dims().first().copied().unwrap_or(0), self.size);
        if maps.rank() != 3 || n == 0 || !n.is_multiple_of(per) || maps.dims()[1..] != [s, s] {
            return Err(Error::shape(
                "Tiling::stitch: maps",
                format!("[batch * {per}, {s}, {s}]"),
                maps.dims(),
            ));
        }
        let b = n / per;
        let data = maps.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        let mut sum = vec![0f64; b * height * width];
        let mut count = vec![0u32; height * width];
        for (k, tile) in data.chunks_exact(s * s).enumerate() {
            let (img, t) = (k / per, k % per);
            let (r0, c0) = (rows[t / cols.len()], cols[t % cols.len()]);
            let out = &mut sum[img * height * width..(img + 1) * height * width];
            for y in 0..s {
                let row = (r0 + y) * width + c0;
                for x in 0..s {
                    out[row + x] += tile[y * s + x];
                    if img == 0 {
                        count[row + x] += 1;
                    }
                }
            }
        }
        for (i, v) in sum.iter_mut().enumerate() {
            *v /= count[i % (height * width)] as f64;
        }
        Ok(Tensor::from_vec(sum, (b, height, width), maps.device())?.to_dtype(maps.dtype())?)
    }

    /// The mean of the tiles' scores of each image (`batch * tiles` scores, as
    /// [`Tiling::split`] lays them out).
    ///
    /// # Errors
    /// [`dmad_core::Error::ShapeMismatch`] when the count is not a multiple of the tiles.
    pub fn mean_scores(&self, scores: &[f32], height: usize, width: usize) -> Result<Vec<f32>> {
        let per = self.count(height, width)?;
        if scores.is_empty() || !scores.len().is_multiple_of(per) {
            return Err(Error::shape(
                "Tiling::mean_scores: scores",
                format!("a multiple of {per} (the tiles of an image)"),
                &[scores.len()],
            ));
        }
        Ok(scores
            .chunks_exact(per)
            .map(|c| (c.iter().map(|&v| v as f64).sum::<f64>() / per as f64) as f32)
            .collect())
    }

    fn check(
        &self,
        dims: &[usize],
        rank: usize,
        context: &'static str,
    ) -> Result<(usize, usize, usize)> {
        if dims.len() != rank || dims[0] == 0 {
            return Err(Error::shape(
                context,
                "[batch >= 1, channel, height, width]",
                dims,
            ));
        }
        let (h, w) = (dims[rank - 2], dims[rank - 1]);
        if h < self.size || w < self.size {
            return Err(Error::shape(
                context,
                format!("images of at least {0}x{0} (the tile size)", self.size),
                dims,
            ));
        }
        Ok((dims[0], h, w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn starts_cover_the_axis_and_end_at_its_edge() {
        let t = Tiling::new(64, 16).unwrap();
        assert_eq!(t.starts(64).unwrap(), vec![0]);
        assert_eq!(t.starts(160).unwrap(), vec![0, 48, 96]);
        assert_eq!(t.starts(150).unwrap(), vec![0, 48, 86]);
        assert_eq!(t.count(150, 64).unwrap(), 3);
        assert!(t.starts(63).is_err());
    }

    #[test]
    fn stitching_the_tiles_of_an_image_gives_the_image_back() {
        let dev = Device::Cpu;
        let (h, w) = (37usize, 53usize);
        let v: Vec<f32> = (0..2 * h * w)
            .map(|i| ((i * 7919) % 1000) as f32 / 7.0)
            .collect();
        let x = Tensor::from_vec(v, (2, 1, h, w), &dev).unwrap();
        for (size, overlap) in [(16, 0), (16, 5), (20, 19), (37, 3)] {
            let t = Tiling::new(size, overlap).unwrap();
            let tiles = t.split(&x).unwrap();
            assert_eq!(tiles.dims(), &[2 * t.count(h, w).unwrap(), 1, size, size]);
            let back = t.stitch(&tiles.squeeze(1).unwrap(), h, w).unwrap();
            let d = (back - x.squeeze(1).unwrap())
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert_eq!(d, 0.0, "tile {size}, overlap {overlap}");
        }
    }

    #[test]
    fn overlaps_are_averaged_and_scores_meaned() {
        let dev = Device::Cpu;
        let t = Tiling::new(4, 2).unwrap();
        // A 4x6 image: tiles at columns 0 and 2; columns 2-3 are covered twice.
        let maps = Tensor::cat(
            &[
                Tensor::full(1f32, (1, 4, 4), &dev).unwrap(),
                Tensor::full(3f32, (1, 4, 4), &dev).unwrap(),
            ],
            0,
        )
        .unwrap();
        let m = t.stitch(&maps, 4, 6).unwrap().to_vec3::<f32>().unwrap();
        assert_eq!(m[0][0], vec![1.0, 1.0, 2.0, 2.0, 3.0, 3.0]);
        assert_eq!(t.mean_scores(&[1.0, 3.0], 4, 6).unwrap(), vec![2.0]);
    }

    #[test]
    fn bad_tilings_and_shapes_are_named() {
        assert!(matches!(
            Tiling::new(0, 0),
            Err(Error::Core(dmad_core::Error::InvalidConfig {
                field: "tile_size",
                ..
            }))
        ));
        assert!(matches!(
            Tiling::new(8, 8),
            Err(Error::Core(dmad_core::Error::InvalidConfig {
                field: "tile_overlap",
                ..
            }))
        ));
        let t = Tiling::new(8, 2).unwrap();
        let small = Tensor::zeros((1, 1, 7, 9), DType::F32, &Device::Cpu).unwrap();
        assert!(matches!(
            t.split(&small),
            Err(Error::Core(dmad_core::Error::ShapeMismatch { .. }))
        ));
        let maps = Tensor::zeros((3, 8, 8), DType::F32, &Device::Cpu).unwrap();
        assert!(t.stitch(&maps, 8, 14).is_err());
    }
}
