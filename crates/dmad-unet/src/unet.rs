//! The U-Net, generic over its spatial rank: [`UNet2d`] for images and scalograms, [`UNet1d`]
//! for series windows.

use std::marker::PhantomData;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use dmad_core::{Denoiser, PredictionType};

use crate::blocks::{AttentionSpec, DownBlock, MidBlock, ResnetSettings, UpBlock};
use crate::config::{TimeScaleShift, UNetConfig};
use crate::embedding::{sinusoidal_embedding, timesteps_f32, HybridTimeConv, TimestepEmbedding};
use crate::error::{invalid, Error, Result};
use crate::layers::{group_norm, use_kernels, ConvNd, GroupNorm, Rank};
use crate::pyramid::WaveletPyramid;
use crate::weights;

/// A spatial rank as a type, so that [`UNet`] is one generic network.
pub trait SpatialRank: Send + Sync + 'static {
    /// The rank.
    const RANK: Rank;
}

/// One spatial dimension: `[batch, channel, length]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct D1;

/// Two spatial dimensions: `[batch, channel, height, width]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct D2;

impl SpatialRank for D1 {
    const RANK: Rank = Rank::One;
}

impl SpatialRank for D2 {
    const RANK: Rank = Rank::Two;
}

/// The method's U-Net on images and scalograms, `[batch, channel, height, width]`.
pub type UNet2d = UNet<D2>;

/// The method's U-Net on series windows, `[batch, channel, length]`.
pub type UNet1d = UNet<D1>;

/// The input adapter of the method (modality-shared stem, section III-D c):
/// `conv1 (k3) -> act -> conv2 (k3)` from `in_channels` to `adapter_channels`.
#[derive(Debug, Clone)]
struct InputAdapter {
    conv1: ConvNd,
    conv2: ConvNd,
    act: crate::Activation,
}

impl InputAdapter {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.act.forward(&self.conv1.forward(x)?)?;
        self.conv2.forward(&h)
    }
}

/// A diffusers-compatible U-Net (`UNet2DModel`) with the method's four optional modules.
///
/// Use the aliases [`UNet2d`] and [`UNet1d`]. The layers, their order and their parameter
/// names are diffusers' (`conv_in`, `time_embedding.linear_1`, `down_blocks.0.resnets.0.conv1`,
/// `mid_block.attentions.0.to_q`, `up_blocks.1.upsamplers.0.conv`, `conv_norm_out`,
/// `conv_out`, ...), so a diffusers `UNet2DModel` safetensors file loads unchanged into a
/// [`UNet2d`] whose modules are all off. The modules add parameters under `input_adapter.*`,
/// `time_conv.*` and `wavelet_pyramid.*`.
///
/// # Shapes
/// - `x`: `[batch, in_channels, H, W]` (2D) or `[batch, in_channels, L]` (1D), every spatial
///   size divisible by `2^(levels - 1)`.
/// - `t`: `[batch]` timesteps, `u32` or a float dtype.
/// - returns: `[batch, out_channels, ...]`, in the dtype of `x`.
///
/// # Training
/// Build the network on a [`VarMap`] ([`UNet::with_varmap`], or
/// `VarBuilder::from_varmap(&varmap, ..)` + [`UNet::new`]); `varmap.all_vars()` are then all
/// the trainable parameters, and `varmap.save(path)` writes a file [`UNet::load`] reads.
#[derive(Debug, Clone)]
pub struct UNet<R: SpatialRank> {
    cfg: UNetConfig,
    dtype: DType,
    time_conv: Option<HybridTimeConv>,
    time_embedding: TimestepEmbedding,
    input_adapter: Option<InputAdapter>,
    conv_in: ConvNd,
    pyramid: Option<WaveletPyramid>,
    down_blocks: Vec<DownBlock>,
    mid_block: Option<MidBlock>,
    up_blocks: Vec<UpBlock>,
    conv_norm_out: GroupNorm,
    conv_out: ConvNd,
    rank: PhantomData<R>,
}

impl<R: SpatialRank> UNet<R> {
    /// Builds the network from `cfg`, taking its parameters from `vb` (diffusers' names).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a config that cannot be built (naming the field and the
    /// layer), [`Error::Candle`] if `vb` lacks a parameter or has it with another shape
    /// (use [`UNet::load`] for a checked load from a file).
    pub fn new(cfg: UNetConfig, vb: VarBuilder) -> Result<Self> {
        cfg.validate()?;
        let rank = R::RANK;
        let m = &cfg.modules;
        let boc = &cfg.block_out_channels;
        let n = boc.len();
        let temb = cfg.time_embed_dim();
        let groups = cfg.groups();
        let s = ResnetSettings {
            rank,
            temb_channels: temb,
            groups,
            eps: cfg.norm_eps,
            act: cfg.act_fn,
            shift: cfg.resnet_time_scale_shift,
        };
        // Heads of an attention layer on `c` channels whose diffusers head width is `dim`.
        let heads = |c: usize, dim: Option<usize>| -> Result<usize> {
            if m.multi_head_attention {
                return Ok(m.attention_heads);
            }
            let d = dim.unwrap_or(c);
            if !c.is_multiple_of(d) {
                return Err(invalid(
                    "attention_head_dim",
                    format!("{d} does not divide the {c} channels of an attention layer"),
                ));
            }
            Ok(c / d)
        };

        let time_conv = if m.hybrid_time_embedding {
            Some(HybridTimeConv::new(
                m.time_conv_kernel,
                m.time_conv_channels,
                cfg.act_fn,
                vb.pp("time_conv"),
            )?)
        } else {
            None
        };
        let time_embedding = TimestepEmbedding::new(boc[0], temb, vb.pp("time_embedding"))?;
        let (input_adapter, stem_channels) = if m.input_adapter {
            let w = m.adapter_channels;
            let a = InputAdapter {
                conv1: ConvNd::same(rank, cfg.in_channels, w, 3, vb.pp("input_adapter.conv1"))?,
                conv2: ConvNd::same(rank, w, w, 3, vb.pp("input_adapter.conv2"))?,
                act: cfg.act_fn,
            };
            (Some(a), w)
        } else {
            (None, cfg.in_channels)
        };
        let conv_in = ConvNd::same(rank, stem_channels, boc[0], 3, vb.pp("conv_in"))?;

        let pyramid = if m.wavelet_pyramid {
            Some(WaveletPyramid::new(rank, &cfg, vb.pp("wavelet_pyramid"))?)
        } else {
            None
        };

        let mut down_blocks = Vec::with_capacity(n);
        let mut out_c = boc[0];
        for (i, ty) in cfg.down_block_types.iter().enumerate() {
            let in_c = out_c;
            out_c = boc[i];
            let is_final = i == n - 1;
            let attention = if ty.has_attention() || m.multi_head_attention {
                Some(AttentionSpec {
                    heads: heads(out_c, cfg.attention_head_dim)?,
                    groups: Some(groups),
                })
            } else {
                None
            };
            down_blocks.push(DownBlock::new(
                &s,
                cfg.layers_per_block,
                in_c,
                out_c,
                attention,
                (!is_final).then_some(cfg.downsample_padding),
                vb.pp("down_blocks").pp(i),
            )?);
        }

        let mid_block = match cfg.mid_block_type {
            None => None,
            Some(_) => {
                let c = boc[n - 1];
                let attention = if cfg.add_attention || m.multi_head_attention {
                    let g = match (cfg.attn_norm_num_groups, cfg.resnet_time_scale_shift) {
                        (Some(g), _) => Some(g),
                        (None, TimeScaleShift::Default) => Some(groups),
                        (None, TimeScaleShift::ScaleShift) => None,
                    };
                    Some(AttentionSpec {
                        heads: heads(c, Some(cfg.attention_head_dim.unwrap_or(c)))?,
                        groups: g,
                    })
                } else {
                    None
                };
                Some(MidBlock::new(
                    &s,
                    c,
                    attention,
                    cfg.mid_block_scale_factor,
                    vb.pp("mid_block"),
                )?)
            }
        };

        let rev: Vec<usize> = boc.iter().rev().copied().collect();
        let mut up_blocks = Vec::with_capacity(n);
        let mut out_c = rev[0];
        for (i, ty) in cfg.up_block_types.iter().enumerate() {
            let prev = out_c;
            out_c = rev[i];
            let in_c = rev[(i + 1).min(n - 1)];
            let is_final = i == n - 1;
            let attention = if ty.has_attention() || m.multi_head_attention {
                Some(AttentionSpec {
                    heads: heads(out_c, cfg.attention_head_dim)?,
                    groups: Some(groups),
                })
            } else {
                None
            };
            up_blocks.push(UpBlock::new(
                &s,
                cfg.layers_per_block + 1,
                in_c,
                prev,
                out_c,
                attention,
                !is_final,
                vb.pp("up_blocks").pp(i),
            )?);
        }

        let groups_out = cfg
            .norm_num_groups
            .unwrap_or_else(|| (boc[0] / 4).clamp(1, 32));
        let conv_norm_out = group_norm(
            groups_out,
            boc[0],
            cfg.norm_eps,
            "norm_num_groups",
            vb.pp("conv_norm_out"),
        )?;
        let conv_out = ConvNd::same(rank, boc[0], cfg.out_channels, 3, vb.pp("conv_out"))?;
        Ok(Self {
            dtype: vb.dtype(),
            cfg,
            time_conv,
            time_embedding,
            input_adapter,
            conv_in,
            pyramid,
            down_blocks,
            mid_block,
            up_blocks,
            conv_norm_out,
            conv_out,
            rank: PhantomData,
        })
    }

    /// Builds a freshly initialised network whose parameters live in a new [`VarMap`]
    /// (the one to hand to an optimiser: `varmap.all_vars()`).
    ///
    /// # Errors
    /// As [`UNet::new`].
    pub fn with_varmap(cfg: UNetConfig, dtype: DType, device: &Device) -> Result<(Self, VarMap)> {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, dtype, device);
        let net = Self::new(cfg, vb)?;
        Ok((net, varmap))
    }

    /// Loads a network from a safetensors file (diffusers' names), in `f32` on `device`, after
    /// checking that the file holds exactly the parameters `cfg` needs with their shapes.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read; [`Error::Checkpoint`] naming the file if it
    /// is empty, truncated or malformed, or if a parameter is missing, has another shape or is
    /// unknown to `cfg` (a file of another config); [`Error::InvalidConfig`] for a bad `cfg`.
    pub fn load(path: impl AsRef<Path>, cfg: UNetConfig, device: &Device) -> Result<Self> {
        let path = path.as_ref();
        let expected = Self::parameter_shapes(&cfg)?;
        let tensors = weights::read_checked(path, &expected, device)?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        Self::new(cfg, vb)
    }

    /// The names and shapes of every parameter a network of `cfg` has, sorted by name.
    ///
    /// # Errors
    /// As [`UNet::new`].
    pub fn parameter_shapes(cfg: &UNetConfig) -> Result<Vec<(String, Vec<usize>)>> {
        let (_, varmap) = Self::with_varmap(cfg.clone(), DType::F32, &Device::Cpu)?;
        Ok(weights::varmap_shapes(&varmap))
    }

    /// The configuration the network was built from.
    pub fn config(&self) -> &UNetConfig {
        &self.cfg
    }

    /// The spatial rank of the network.
    pub fn rank(&self) -> Rank {
        R::RANK
    }

    /// Checks `x` against the config: rank, channels and divisible spatial sizes.
    fn check_input(&self, x: &Tensor) -> Result<()> {
        let rank = R::RANK;
        let layout = rank.layout(self.cfg.in_channels);
        let dims = x.dims();
        let factor = 1usize << self.cfg.downsamplings();
        if dims.len() != rank.tensor_rank() || dims[1] != self.cfg.in_channels {
            return Err(Error::ShapeMismatch {
                context: "U-Net input x",
                expected: layout,
                got: dims.to_vec(),
            });
        }
        if dims[0] == 0 || dims[2..].iter().any(|&d| d == 0 || d % factor != 0) {
            return Err(Error::ShapeMismatch {
                context: "U-Net input x",
                expected: format!(
                    "{layout} with a non-empty batch and spatial sizes divisible by {factor} (2^{} downsamplings)",
                    self.cfg.downsamplings()
                ),
                got: dims.to_vec(),
            });
        }
        if !x.dtype().is_float() {
            return Err(Error::ShapeMismatch {
                context: "U-Net input x (dtype must be a float type)",
                expected: layout,
                got: dims.to_vec(),
            });
        }
        Ok(())
    }

    /// The time embedding `[batch, time_embed_dim]` (before the residual blocks' activation).
    fn time_embed(&self, t: &Tensor, batch: usize, x_device: &Device) -> Result<Tensor> {
        let t = timesteps_f32(t, batch, x_device)?;
        let e = sinusoidal_embedding(
            &t,
            self.cfg.block_out_channels[0],
            self.cfg.flip_sin_to_cos,
            self.cfg.freq_shift,
        )?
        .to_dtype(self.dtype)?;
        let e = match &self.time_conv {
            Some(c) => c.forward(&e)?,
            None => e,
        };
        self.time_embedding.forward(&e)
    }

    /// Runs the network: the model output for `x` at timesteps `t`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] if `x` does not fit the config (rank, `in_channels`, spatial
    /// sizes divisible by `2^(levels - 1)`) or `t` is not `[batch]`.
    pub fn forward(&self, x: &Tensor, t: &Tensor) -> Result<Tensor> {
        self.check_input(x)?;
        let _kernels = use_kernels(self.cfg.kernels);
        let in_dtype = x.dtype();
        let mut x = x.to_dtype(self.dtype)?;
        if self.cfg.center_input_sample {
            x = ((x * 2.0)? - 1.0)?;
        }
        let emb = self.time_embed(t, x.dim(0)?, x.device())?;
        let emb_act = self.cfg.act_fn.forward(&emb)?;

        let bands = match &self.pyramid {
            Some(p) => p.decompose(&x)?,
            None => Vec::new(),
        };
        let stem = match &self.input_adapter {
            Some(a) => a.forward(&x)?,
            None => x,
        };
        let mut h = self.conv_in.forward(&stem)?;
        let mut skips = vec![h.clone()];
        for (i, block) in self.down_blocks.iter().enumerate() {
            let (out, mut states) = block.forward(&h, &emb_act)?;
            h = out;
            if let (Some(p), true) = (&self.pyramid, block.has_downsampler()) {
                if let Some(b) = bands.get(i) {
                    h = p.fuse(i, &h, b)?;
                    states.pop();
                    states.push(h.clone());
                }
            }
            skips.extend(states);
        }
        if let Some(mid) = &self.mid_block {
            h = mid.forward(&h, &emb_act)?;
        }
        for block in &self.up_blocks {
            h = block.forward(&h, &mut skips, &emb_act)?;
        }
        let h = self.conv_norm_out.forward_silu(&h)?;
        let out = self.conv_out.forward(&h)?;
        Ok(out.to_dtype(in_dtype)?)
    }
}

impl<R: SpatialRank> Denoiser for UNet<R> {
    fn predict(&self, x_t: &Tensor, t: &Tensor) -> dmad_core::Result<Tensor> {
        Ok(self.forward(x_t, t)?)
    }

    fn prediction_type(&self) -> PredictionType {
        self.cfg.prediction_type
    }
}
