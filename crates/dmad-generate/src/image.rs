//! Image anomalies: cut-paste, Perlin-noise texture, scratch and blob, on images in `[-1, 1]`.

use candle_core::{DType, Tensor};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::anomaly::Injected;
use crate::util::{check_strength, enforce_change, sample_rng};
use crate::{Error, Result};

/// The smallest change of an anomalous pixel: one grey level of an 8-bit image in `[-1, 1]`
/// (`2 / 255`), so a pixel of the mask still differs after the image is written as PNG.
pub const IMAGE_MIN_CHANGE: f32 = 2.0 / 255.0;

/// The kind of an image anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageAnomaly {
    /// A rectangle cut from another image of the batch (or the image itself for a batch of
    /// one) and pasted elsewhere (Li et al., *CutPaste*, arXiv 2104.04015), blended with weight
    /// `strength`.
    CutPaste,
    /// A Perlin-noise texture inside a thresholded Perlin-noise region, as DRAEM (Zavrtanik et
    /// al., arXiv 2108.07610), blended with weight `strength`.
    Perlin,
    /// A thin bright or dark line, 1 to 2 pixels wide, blended with weight `strength`.
    Scratch,
    /// An elliptical stain whose weight falls from `strength` at the centre towards its rim.
    Blob,
}

impl ImageAnomaly {
    /// All kinds.
    pub const ALL: [ImageAnomaly; 4] = [Self::CutPaste, Self::Perlin, Self::Scratch, Self::Blob];

    /// The kind's name: `cut_paste`, `perlin`, `scratch`, `blob`.
    pub fn name(self) -> &'static str {
        match self {
            Self::CutPaste => "cut_paste",
            Self::Perlin => "perlin",
            Self::Scratch => "scratch",
            Self::Blob => "blob",
        }
    }
}

/// Injects an anomaly of `kind` into each image of `x` with weight `strength` in `(0, 1]`.
/// Sample `i` is drawn from its own stream of `seed`, so the same seed gives the same
/// anomalies whatever the batch. The mask (`[batch, height, width]`) is 1 exactly on the
/// pixels that changed, in every channel by at least [`IMAGE_MIN_CHANGE`]; values stay in
/// `[-1, 1]`.
///
/// # Shapes
/// `x`: `[batch, channel, height, width]` with height and width at least 8.
///
/// # Errors
/// [`Error::InvalidConfig`] for a strength outside `(0, 1]`; [`Error::ShapeMismatch`] for
/// another rank or images smaller than 8 x 8.
///
/// # Example
/// ```
/// use candle_core::{Device, Tensor};
/// use dmad_generate::{inject_image, ImageAnomaly};
/// # fn main() -> dmad_generate::Result<()> {
/// let x = Tensor::zeros((2, 1, 32, 32), candle_core::DType::F32, &Device::Cpu)?;
/// let a = inject_image(&x, ImageAnomaly::Scratch, 0.8, 3)?;
/// assert_eq!(a.mask.dims(), &[2, 32, 32]);
/// # Ok(())
/// # }
/// ```
pub fn inject_image(x: &Tensor, kind: ImageAnomaly, strength: f64, seed: u64) -> Result<Injected> {
    check_strength(strength)?;
    let dims = x.dims().to_vec();
    if dims.len() != 4 || dims[0] == 0 || dims[1] == 0 || dims[2] < 8 || dims[3] < 8 {
        return Err(Error::shape(
            "inject_image: x",
            "[batch >= 1, channel >= 1, height >= 8, width >= 8]",
            &dims,
        ));
    }
    let (b, c, h, w) = (dims[0], dims[1], dims[2], dims[3]);
    let per = c * h * w;
    let data = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let mut out = data.clone();
    let mut mask = vec![0f32; b * h * w];
    let s = strength as f32;
    for i in 0..b {
        let mut rng = sample_rng(seed, i);
        let img = &data[i * per..(i + 1) * per];
        // Each kind gives a per-pixel weight in [0, 1] and a per-channel target image.
        let (weight, target) = match kind {
            ImageAnomaly::CutPaste => {
                // Drawn whatever the batch, so the rest of the stream does not depend on it.
                let r = rng.random::<u64>() as usize;
                let src_i = if b > 1 { (i + 1 + r % (b - 1)) % b } else { i };
                cut_paste(&data[src_i * per..(src_i + 1) * per], c, h, w, &mut rng)
            }
            ImageAnomaly::Perlin => perlin_texture(c, h, w, &mut rng),
            ImageAnomaly::Scratch => scratch(c, h, w, &mut rng),
            ImageAnomaly::Blob => blob(c, h, w, &mut rng),
        };
        let o = &mut out[i * per..(i + 1) * per];
        for ch in 0..c {
            for p in 0..h * w {
                let k = ch * h * w + p;
                let a = weight[p] * s;
                o[k] = (1.0 - a) * img[k] + a * target[k];
            }
        }
        let region: Vec<bool> = weight.iter().map(|&v| v > 0.0).collect();
        enforce_change(img, o, |k| region[k % (h * w)], IMAGE_MIN_CHANGE, -1.0, 1.0);
        for (m, r) in mask[i * h * w..(i + 1) * h * w].iter_mut().zip(&region) {
            *m = if *r { 1.0 } else { 0.0 };
        }
    }
    Ok(Injected {
        x: Tensor::from_vec(out, dims, x.device())?,
        mask: Tensor::from_vec(mask, (b, h, w), x.device())?,
    })
}

/// A rectangle of `src` (side 1/8 to 1/4 of the image, at least 2 pixels) at a random place,
/// to be pasted at another random place.
fn cut_paste(
    src: &[f32],
    c: usize,
    h: usize,
    w: usize,
    rng: &mut ChaCha8Rng,
) -> (Vec<f32>, Vec<f32>) {
    let ph = rng.random_range((h / 8).max(2)..=(h / 4).max(3));
    let pw = rng.random_range((w / 8).max(2)..=(w / 4).max(3));
    let (sy, sx) = (rng.random_range(0..=h - ph), rng.random_range(0..=w - pw));
    let (dy, dx) = (rng.random_range(0..=h - ph), rng.random_range(0..=w - pw));
    // A brightness jitter, as CutPaste's colour jitter, so a patch from the same texture still
    // differs.
    let jitter = rng.random_range(-0.3f32..0.3);
    let mut weight = vec![0f32; h * w];
    let mut target = vec![0f32; c * h * w];
    for y in 0..ph {
        for x in 0..pw {
            let p = (dy + y) * w + dx + x;
            weight[p] = 1.0;
            for ch in 0..c {
                target[ch * h * w + p] =
                    (src[ch * h * w + (sy + y) * w + sx + x] + jitter).clamp(-1.0, 1.0);
            }
        }
    }
    (weight, target)
}

/// 2D Perlin (gradient) noise on a `h x w` grid with `period` pixels per lattice cell, values
/// roughly in `[-0.7, 0.7]`.
pub(crate) fn perlin(h: usize, w: usize, period: f64, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let gh = (h as f64 / period).ceil() as usize + 2;
    let gw = (w as f64 / period).ceil() as usize + 2;
    let grads: Vec<(f64, f64)> = (0..gh * gw)
        .map(|_| {
            let a = rng.random_range(0.0..std::f64::consts::TAU);
            (a.cos(), a.sin())
        })
        .collect();
    let fade = |t: f64| t * t * t * (t * (t * 6.0 - 15.0) + 10.0);
    let mut out = vec![0f32; h * w];
    for y in 0..h {
        for x in 0..w {
            let (fy, fx) = (y as f64 / period, x as f64 / period);
            let (iy, ix) = (fy.floor() as usize, fx.floor() as usize);
            let (ty, tx) = (fy - iy as f64, fx - ix as f64);
            let dot = |cy: usize, cx: usize| {
                let g = grads[(iy + cy) * gw + ix + cx];
                g.0 * (tx - cx as f64) + g.1 * (ty - cy as f64)
            };
            let (u, v) = (fade(tx), fade(ty));
            let top = dot(0, 0) + u * (dot(0, 1) - dot(0, 0));
            let bot = dot(1, 0) + u * (dot(1, 1) - dot(1, 0));
            out[y * w + x] = (top + v * (bot - top)) as f32;
        }
    }
    out
}

/// A Perlin-thresholded region (3 % to 20 % of the image) and a Perlin texture in `[-1, 1]`.
fn perlin_texture(c: usize, h: usize, w: usize, rng: &mut ChaCha8Rng) -> (Vec<f32>, Vec<f32>) {
    let side = h.min(w) as f64;
    let region_noise = perlin(h, w, side / rng.random_range(2.0..5.0), rng);
    let mut sorted = region_noise.clone();
    sorted.sort_by(f32::total_cmp);
    let frac = rng.random_range(0.03..0.2);
    let tau = sorted[((1.0 - frac) * (sorted.len() - 1) as f64) as usize];
    let weight: Vec<f32> = region_noise
        .iter()
        .map(|&v| if v > tau { 1.0 } else { 0.0 })
        .collect();
    let mut target = Vec::with_capacity(c * h * w);
    for _ in 0..c {
        let tex = perlin(h, w, rng.random_range(2.0..6.0), rng);
        target.extend(tex.iter().map(|v| (v * 1.6).clamp(-1.0, 1.0)));
    }
    (weight, target)
}

/// A scratch: a slightly bent line of 30 % to 60 % of the side, 1 or 2 pixels wide, bright or
/// dark.
fn scratch(c: usize, h: usize, w: usize, rng: &mut ChaCha8Rng) -> (Vec<f32>, Vec<f32>) {
    let side = h.min(w) as f64;
    let len = rng.random_range(0.3..0.6) * side;
    let (y0, x0) = (
        rng.random_range(0.0..h as f64),
        rng.random_range(0.0..w as f64),
    );
    let angle = rng.random_range(0.0..std::f64::consts::TAU);
    let bend = rng.random_range(-0.5..0.5) / len.max(1.0);
    let width = rng.random_range(1..=2) as f64;
    let value = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
    let mut weight = vec![0f32; h * w];
    let steps = (len * 4.0) as usize + 1;
    let (mut y, mut x, mut a) = (y0, x0, angle);
    for _ in 0..steps {
        for dy in 0..width as usize {
            let (py, px) = (y.round() as i64 + dy as i64, x.round() as i64);
            if py >= 0 && px >= 0 && (py as usize) < h && (px as usize) < w {
                weight[py as usize * w + px as usize] = 1.0;
            }
        }
        y += 0.25 * a.sin();
        x += 0.25 * a.cos();
        a += bend * 0.25;
    }
    if weight.iter().all(|&v| v == 0.0) {
        weight[(h / 2) * w + w / 2] = 1.0;
    }
    (weight, vec![value; c * h * w])
}

/// A stain: an ellipse (semi-axes 1/12 to 1/5 of the side) whose weight is `1 - r^2` at
/// normalised radius `r`, towards a random grey level.
fn blob(c: usize, h: usize, w: usize, rng: &mut ChaCha8Rng) -> (Vec<f32>, Vec<f32>) {
    let side = h.min(w) as f64;
    let (ay, ax) = (
        rng.random_range(side / 12.0..side / 5.0).max(1.5),
        rng.random_range(side / 12.0..side / 5.0).max(1.5),
    );
    let (cy, cx) = (
        rng.random_range(0.0..h as f64),
        rng.random_range(0.0..w as f64),
    );
    let rot = rng.random_range(0.0..std::f64::consts::PI);
    let value: f32 = if rng.random_bool(0.5) {
        rng.random_range(0.5..1.0)
    } else {
        rng.random_range(-1.0..-0.5)
    };
    let mut weight = vec![0f32; h * w];
    for y in 0..h {
        for x in 0..w {
            let (dy, dx) = (y as f64 - cy, x as f64 - cx);
            let (u, v) = (
                dx * rot.cos() + dy * rot.sin(),
                -dx * rot.sin() + dy * rot.cos(),
            );
            let r2 = (u / ax).powi(2) + (v / ay).powi(2);
            if r2 < 1.0 {
                weight[y * w + x] = (1.0 - r2) as f32;
            }
        }
    }
    let p = (cy.floor() as usize).min(h - 1) * w + (cx.floor() as usize).min(w - 1);
    if weight[p] == 0.0 {
        weight[p] = 1.0;
    }
    (weight, vec![value; c * h * w])
}
