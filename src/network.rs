//! The denoising network of a detector: a U-Net (1D or 2D) or an MLP, built with seeded
//! weights in a `VarMap` so that it can be trained, saved and loaded.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use dmad_core::{Denoiser, PredictionType};
use dmad_unet::{MlpDenoiser, UNet1d, UNet2d};

use crate::config::NetworkConfig;
use crate::Result;

/// A built network; implements [`Denoiser`].
pub(crate) enum Network {
    Unet2d(UNet2d),
    Unet1d(UNet1d),
    Mlp(MlpDenoiser),
}

impl Network {
    /// Builds the network with weights drawn from `seed`, in a fresh `VarMap`.
    pub(crate) fn build(cfg: &NetworkConfig, seed: u64, device: &Device) -> Result<(Self, VarMap)> {
        let varmap = VarMap::new();
        let vb = dmad_train::seeded_var_builder(&varmap, seed, DType::F32, device);
        let net = match cfg {
            NetworkConfig::Unet2d(c) => Self::Unet2d(UNet2d::new(c.clone(), vb)?),
            NetworkConfig::Unet1d(c) => Self::Unet1d(UNet1d::new(c.clone(), vb)?),
            NetworkConfig::Mlp(c) => Self::Mlp(MlpDenoiser::new(c.clone(), vb)?),
        };
        Ok((net, varmap))
    }

    /// An inference copy of the network whose weights are untracked views of `varmap`'s
    /// variables: it follows the trained weights but records no autograd graph, so scoring
    /// frees each step's activations.
    pub(crate) fn frozen(cfg: &NetworkConfig, varmap: &VarMap, device: &Device) -> Result<Self> {
        let vb = candle_nn::VarBuilder::from_tensors(
            dmad_unet::frozen_tensors(varmap),
            DType::F32,
            device,
        );
        Ok(match cfg {
            NetworkConfig::Unet2d(c) => Self::Unet2d(UNet2d::new(c.clone(), vb)?),
            NetworkConfig::Unet1d(c) => Self::Unet1d(UNet1d::new(c.clone(), vb)?),
            NetworkConfig::Mlp(c) => Self::Mlp(MlpDenoiser::new(c.clone(), vb)?),
        })
    }

    /// The input rank of one sample (without the batch axis).
    pub(crate) fn sample_rank(&self) -> usize {
        match self {
            Self::Unet2d(_) => 3,
            Self::Unet1d(_) => 2,
            Self::Mlp(_) => 1,
        }
    }
}

impl Denoiser for Network {
    fn predict(&self, x_t: &Tensor, t: &Tensor) -> dmad_core::Result<Tensor> {
        match self {
            Self::Unet2d(n) => n.predict(x_t, t),
            Self::Unet1d(n) => n.predict(x_t, t),
            Self::Mlp(n) => n.predict(x_t, t),
        }
    }

    fn prediction_type(&self) -> PredictionType {
        match self {
            Self::Unet2d(n) => n.prediction_type(),
            Self::Unet1d(n) => n.prediction_type(),
            Self::Mlp(n) => n.prediction_type(),
        }
    }
}
