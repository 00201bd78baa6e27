//! The method's wavelet pyramid module (section III-D a).

use candle_core::Tensor;
use candle_nn::VarBuilder;

use crate::config::UNetConfig;
use crate::error::{Error, Result};
use crate::layers::Rank;

/// Wavelet pyramid: the level-`l` DWT bands of the input, projected and fused into the
/// encoder features after the `l`-th downsampling.
#[derive(Debug, Clone)]
pub(crate) struct WaveletPyramid {}

impl WaveletPyramid {
    pub(crate) fn new(_rank: Rank, _cfg: &UNetConfig, _vb: VarBuilder) -> Result<Self> {
        Err(Error::Unsupported(
            "the wavelet pyramid module needs dmad-wavelets' tensor DWT, which is not wired yet",
        ))
    }

    /// One `[A_l, D_l]` tensor per fused level, finest first.
    pub(crate) fn decompose(&self, _x: &Tensor) -> Result<Vec<Tensor>> {
        Err(Error::Unsupported("wavelet pyramid"))
    }

    /// Fuses the bands of level `level + 1` into `h`.
    pub(crate) fn fuse(&self, _level: usize, _h: &Tensor, _bands: &Tensor) -> Result<Tensor> {
        Err(Error::Unsupported("wavelet pyramid"))
    }
}
