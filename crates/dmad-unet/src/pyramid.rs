//! The method's wavelet pyramid module (section III-D a).

use candle_core::Tensor;
use candle_nn::VarBuilder;
use dmad_wavelets::tensor::{Dwt1d, Dwt2d};
use dmad_wavelets::{Mode, Wavelet};

use crate::config::{UNetConfig, WaveletFusion};
use crate::error::{invalid, Result};
use crate::layers::{ConvNd, Rank};

#[derive(Debug, Clone)]
enum Dwt {
    One(Dwt1d),
    Two(Dwt2d),
}

/// Wavelet pyramid: the level-`l` Daubechies DWT bands `{A_l, D_l}` of the input (the
/// approximation and the detail bands: three in 2D, one in 1D), projected by a 1x1
/// convolution and fused into the encoder features after the `l`-th downsampling, where the
/// resolutions match.
///
/// The DWT runs in periodization mode (exact halving) on the previous level's approximation
/// (`A_0 = x`). Level `l`'s bands are scaled by `2^(-l * dims / 2)`, so that `A_l` is the
/// local mean of `x` and keeps its range. Parameters: `wavelet_pyramid.proj.{i}` (bands ->
/// width of down block `i`) and, with concatenation, `wavelet_pyramid.fuse.{i}`
/// (`[h, proj]` -> width).
#[derive(Debug, Clone)]
pub(crate) struct WaveletPyramid {
    dwt: Dwt,
    levels: usize,
    dims: usize,
    proj: Vec<ConvNd>,
    fuse: Vec<ConvNd>,
}

impl WaveletPyramid {
    pub(crate) fn new(rank: Rank, cfg: &UNetConfig, vb: VarBuilder) -> Result<Self> {
        let m = &cfg.modules;
        let downs = cfg.downsamplings();
        if downs == 0 {
            return Err(invalid(
                "modules.wavelet_pyramid",
                "the network has one level and no downsampling to fuse wavelet bands into",
            ));
        }
        let levels = match m.wavelet_levels {
            0 => downs,
            l if l <= downs => l,
            l => {
                return Err(invalid(
                    "modules.wavelet_levels",
                    format!("{l} levels exceed the network's {downs} downsamplings"),
                ))
            }
        };
        let wavelet =
            Wavelet::new(&m.wavelet).map_err(|e| invalid("modules.wavelet", e.to_string()))?;
        let dwt = match rank {
            Rank::One => Dwt::One(Dwt1d::new(&wavelet, Mode::Periodization)),
            Rank::Two => Dwt::Two(Dwt2d::new(&wavelet, Mode::Periodization)),
        };
        let bands = (1usize << rank.dims()) * cfg.in_channels;
        let mut proj = Vec::with_capacity(levels);
        let mut fuse = Vec::new();
        for i in 0..levels {
            let c = cfg.block_out_channels[i];
            proj.push(ConvNd::same(rank, bands, c, 1, vb.pp("proj").pp(i))?);
            if m.wavelet_fusion == WaveletFusion::Concat {
                fuse.push(ConvNd::same(rank, 2 * c, c, 1, vb.pp("fuse").pp(i))?);
            }
        }
        Ok(Self {
            dwt,
            levels,
            dims: rank.dims(),
            proj,
            fuse,
        })
    }

    /// One `[A_l, D_l]` tensor per fused level, finest first: `[b, 4c, H/2^l, W/2^l]` (2D,
    /// PyWavelets' order cA, cH, cV, cD) or `[b, 2c, L/2^l]` (1D).
    pub(crate) fn decompose(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let c = x.dim(1)?;
        let mut a = x.clone();
        let mut out = Vec::with_capacity(self.levels);
        let scale = 0.5f64.powf(self.dims as f64 / 2.0);
        for _ in 0..self.levels {
            let bands = match &self.dwt {
                Dwt::One(d) => {
                    let (ca, cd) = d.forward(&a).map_err(crate::Error::from)?;
                    Tensor::cat(&[ca, cd], 1)?
                }
                Dwt::Two(d) => d.forward_stacked(&a).map_err(crate::Error::from)?,
            };
            let bands = (bands * scale)?;
            a = bands.narrow(1, 0, c)?;
            out.push(bands);
        }
        Ok(out)
    }

    /// Fuses `bands` (level `level + 1`) into `h`, the output of down block `level`.
    pub(crate) fn fuse(&self, level: usize, h: &Tensor, bands: &Tensor) -> Result<Tensor> {
        let p = self.proj[level].forward(bands)?;
        match self.fuse.get(level) {
            Some(f) => f.forward(&Tensor::cat(&[h, &p], 1)?),
            None => Ok((h + p)?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    fn cfg(levels: usize) -> UNetConfig {
        let mut c = UNetConfig::tiny(2);
        c.block_out_channels = vec![8, 8, 8];
        c.down_block_types = vec![crate::DownBlockType::DownBlock; 3];
        c.up_block_types = vec![crate::UpBlockType::UpBlock; 3];
        c.norm_num_groups = Some(4);
        c.modules.wavelet_pyramid = true;
        c.modules.wavelet_levels = levels;
        c
    }

    /// The pyramid's bands equal the f64 DWT of dmad-wavelets (the oracle), cascaded on the
    /// approximation and scaled by 1/2 per 2D level.
    #[test]
    fn bands_are_the_cascaded_dwt_of_the_input() -> Result<()> {
        let dev = Device::Cpu;
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F64, &dev);
        let p = WaveletPyramid::new(Rank::Two, &cfg(0), vb)?;
        let x = Tensor::randn(0f64, 1.0, (1, 2, 8, 8), &dev)?;
        let bands = p.decompose(&x)?;
        assert_eq!(bands.len(), 2);
        assert_eq!(bands[0].dims(), &[1, 8, 4, 4]);
        assert_eq!(bands[1].dims(), &[1, 8, 2, 2]);
        let w = Wavelet::new("db2").map_err(crate::Error::from)?;
        // Channel 1 of the input, level 1 cA, through the array DWT.
        let x1 = x.narrow(1, 1, 1)?.flatten_all()?.to_vec1::<f64>()?;
        let arr = dmad_wavelets::NdArray::new(vec![8, 8], x1).map_err(crate::Error::from)?;
        let (ca, _) = dmad_wavelets::dwt2(&arr, &w, Mode::Periodization, [0, 1])
            .map_err(crate::Error::from)?;
        let got = bands[0].narrow(1, 1, 1)?.flatten_all()?.to_vec1::<f64>()?;
        for (g, want) in got.iter().zip(ca.data()) {
            assert!((g - 0.5 * want).abs() < 1e-12, "{g} vs {}", 0.5 * want);
        }
        Ok(())
    }

    #[test]
    fn levels_are_limited_by_the_downsamplings() {
        let dev = Device::Cpu;
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
        let err = WaveletPyramid::new(Rank::One, &cfg(3), vb.clone()).unwrap_err();
        assert!(err.to_string().contains("modules.wavelet_levels"), "{err}");
        let mut c = cfg(1);
        c.modules.wavelet = "db99".into();
        let err = WaveletPyramid::new(Rank::One, &c, vb).unwrap_err();
        assert!(err.to_string().contains("modules.wavelet"), "{err}");
    }
}
