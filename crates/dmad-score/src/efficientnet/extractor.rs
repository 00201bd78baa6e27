//! EfficientNet as dmad's frozen perceptual network: preprocessing and tapped blocks.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use dmad_core::FeatureExtractor;

use super::config::EfficientNetConfig;
use super::model::EfficientNet;
use super::resize::resize_bilinear;
use crate::{Error, Result};

/// The ImageNet per-channel mean (RGB) that torchvision's pretrained networks expect.
pub const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
/// The ImageNet per-channel standard deviation (RGB).
pub const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

/// Which blocks' outputs the extractor returns.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum FeatureTaps {
    /// For each output stride, the last (deepest) block with that stride. For Lite0,
    /// strides 4, 8 and 16 are blocks 2, 4 and 10 (24, 40 and 112 channels).
    Strides(Vec<usize>),
    /// Block indices, 0-based in network order (Lite0 has blocks 0 to 15).
    Blocks(Vec<usize>),
}

/// Preprocessing and taps of an [`EfficientNetExtractor`].
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ExtractorConfig {
    /// `(height, width)` the input is resized to, bilinearly (`align_corners=False`, no
    /// antialiasing, as PyTorch's `F.interpolate`); `None` keeps the input's size. Default
    /// `Some((224, 224))`, Lite0's training resolution.
    pub image_size: Option<(usize, usize)>,
    /// The blocks to return. Default `FeatureTaps::Strides(vec![4, 8, 16])`.
    pub taps: FeatureTaps,
    /// Per-channel mean of the `[0, 1]` RGB input the network expects. Default
    /// [`IMAGENET_MEAN`].
    pub mean: [f64; 3],
    /// Per-channel standard deviation, positive. Default [`IMAGENET_STD`].
    pub std: [f64; 3],
}

impl Default for ExtractorConfig {
    fn default() -> Self {
        Self {
            image_size: Some((224, 224)),
            taps: FeatureTaps::Strides(vec![4, 8, 16]),
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
        }
    }
}

/// A frozen EfficientNet that maps `[-1, 1]` images to feature maps of several blocks:
/// dmad's [`FeatureExtractor`].
///
/// [`features`](FeatureExtractor::features) does, in order:
/// 1. checks that `x` is `[batch, 1 or 3, height, width]` and casts it to the network dtype;
/// 2. resizes it to [`ExtractorConfig::image_size`] (bilinear, see [`resize_bilinear`]);
/// 3. repeats a grey channel to RGB;
/// 4. maps `[-1, 1]` to `[0, 1]` and normalises with the mean and std:
///    `((x + 1) / 2 - mean) / std`;
/// 5. runs the network up to the deepest tapped block and returns the tapped outputs, from
///    the finest to the coarsest.
///
/// Every step is differentiable with respect to `x`.
#[derive(Debug, Clone)]
pub struct EfficientNetExtractor {
    net: EfficientNet,
    config: ExtractorConfig,
    tap_blocks: Vec<usize>,
    /// `[1, 3, 1, 1]`: `0.5 / std`.
    scale: Tensor,
    /// `[1, 3, 1, 1]`: `(0.5 - mean) / std`.
    shift: Tensor,
}

impl EfficientNetExtractor {
    /// Wraps `net` with the preprocessing and taps of `config`.
    ///
    /// # Errors
    /// [`dmad_core::Error::InvalidConfig`] if `image_size` has a zero side, a `std` is not
    /// positive, a mean or std is not finite, or the taps are empty, repeated, or name a
    /// stride or block the network does not have.
    pub fn new(net: EfficientNet, config: ExtractorConfig) -> Result<Self> {
        if let Some((h, w)) = config.image_size {
            if h == 0 || w == 0 {
                return Err(Error::config(
                    "image_size",
                    format!("both sides must be at least 1, got ({h}, {w})"),
                ));
            }
        }
        if config.mean.iter().any(|m| !m.is_finite()) {
            return Err(Error::config("mean", "must be finite"));
        }
        if config.std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(Error::config("std", "must be finite and positive"));
        }
        let tap_blocks = resolve_taps(&net, &config.taps)?;
        let scale: Vec<f64> = config.std.iter().map(|s| 0.5 / s).collect();
        let shift: Vec<f64> = (0..3)
            .map(|c| (0.5 - config.mean[c]) / config.std[c])
            .collect();
        let consts = |v: Vec<f64>| -> Result<Tensor> {
            Ok(Tensor::from_vec(v, (1, 3, 1, 1), &Device::Cpu)?
                .to_dtype(net.dtype())?
                .to_device(net.device())?)
        };
        Ok(Self {
            scale: consts(scale)?,
            shift: consts(shift)?,
            net,
            config,
            tap_blocks,
        })
    }

    /// EfficientNet-Lite0 from a safetensors file (see `docs/EFFICIENTNET.md` for how to make
    /// it), with the default [`ExtractorConfig`], computing in `f32` on `device`.
    ///
    /// # Errors
    /// As [`EfficientNet::from_safetensors`].
    pub fn lite0(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        Self::lite0_with(path, ExtractorConfig::default(), device)
    }

    /// EfficientNet-Lite0 from a safetensors file with the preprocessing and taps of
    /// `config`, computing in `f32` on `device`.
    ///
    /// # Errors
    /// As [`EfficientNet::from_safetensors`] and [`EfficientNetExtractor::new`].
    pub fn lite0_with(
        path: impl AsRef<Path>,
        config: ExtractorConfig,
        device: &Device,
    ) -> Result<Self> {
        let mut cfg = EfficientNetConfig::lite0();
        cfg.num_classes = None;
        let net = EfficientNet::from_safetensors(&cfg, path, DType::F32, device)?;
        Self::new(net, config)
    }

    /// The channels of each tapped block's output, in tap order.
    pub fn tap_channels(&self) -> Vec<usize> {
        self.tap_blocks
            .iter()
            .map(|&b| self.net.blocks()[b].out_channels)
            .collect()
    }

    /// The network.
    pub fn network(&self) -> &EfficientNet {
        &self.net
    }

    /// The preprocessing and taps.
    pub fn config(&self) -> &ExtractorConfig {
        &self.config
    }

    /// The indices of the tapped blocks, ascending (finest first).
    pub fn tap_blocks(&self) -> &[usize] {
        &self.tap_blocks
    }

    /// Steps 1 to 4 of [`EfficientNetExtractor`]: the network's input for `x`.
    ///
    /// # Shapes
    /// `x`: `[batch, 1 or 3, height, width]` in `[-1, 1]` → `[batch, 3, h', w']`.
    ///
    /// # Errors
    /// [`dmad_core::Error::ShapeMismatch`] if `x` is not 4-D, has other than 1 or 3
    /// channels, or an empty axis.
    pub fn preprocess(&self, x: &Tensor) -> Result<Tensor> {
        const CONTEXT: &str = "EfficientNetExtractor input";
        let expected = "[batch, 1 or 3, height, width] with batch, height and width at least 1";
        let (b, c) = match x.dims() {
            &[b, c @ (1 | 3), h, w] if b > 0 && h > 0 && w > 0 => (b, c),
            d => return Err(Error::shape(CONTEXT, expected, d)),
        };
        let mut x = x.to_dtype(self.net.dtype())?;
        if let Some((h, w)) = self.config.image_size {
            x = resize_bilinear(&x, h, w)?;
        }
        if c == 1 {
            let (_, _, h, w) = x.dims4()?;
            x = x.broadcast_as((b, 3, h, w))?;
        }
        Ok(x.broadcast_mul(&self.scale)?.broadcast_add(&self.shift)?)
    }

    /// [`FeatureExtractor::features`] with dmad-score's error.
    ///
    /// # Errors
    /// As [`preprocess`](Self::preprocess).
    pub fn extract(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let input = self.preprocess(x)?;
        let last = *self.tap_blocks.last().expect("taps are not empty");
        let outs = self.net.forward_blocks(&input, last)?;
        Ok(self.tap_blocks.iter().map(|&i| outs[i].clone()).collect())
    }
}

impl FeatureExtractor for EfficientNetExtractor {
    fn features(&self, x: &Tensor) -> dmad_core::Result<Vec<Tensor>> {
        Ok(self.extract(x)?)
    }
}

fn resolve_taps(net: &EfficientNet, taps: &FeatureTaps) -> Result<Vec<usize>> {
    let blocks = net.blocks();
    let mut out = match taps {
        FeatureTaps::Strides(strides) => {
            let mut out = Vec::with_capacity(strides.len());
            for &s in strides {
                let i = blocks.iter().rposition(|b| b.output_stride == s).ok_or_else(|| {
                    let mut have: Vec<usize> = blocks.iter().map(|b| b.output_stride).collect();
                    have.dedup();
                    Error::config(
                        "taps",
                        format!("no block has output stride {s}; the network's strides are {have:?}"),
                    )
                })?;
                out.push(i);
            }
            out
        }
        FeatureTaps::Blocks(idx) => {
            if let Some(&i) = idx.iter().find(|&&i| i >= blocks.len()) {
                return Err(Error::config(
                    "taps",
                    format!(
                        "block {i} does not exist; the network has {} blocks",
                        blocks.len()
                    ),
                ));
            }
            idx.clone()
        }
    };
    if out.is_empty() {
        return Err(Error::config("taps", "at least one block must be tapped"));
    }
    out.sort_unstable();
    if out.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::config(
            "taps",
            format!("a block is tapped twice: {taps:?}"),
        ));
    }
    Ok(out)
}
