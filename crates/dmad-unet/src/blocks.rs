//! diffusers' U-Net blocks (ResnetBlock2D, Attention, Downsample2D, Upsample2D and the down,
//! middle and up blocks), written once for both spatial ranks.

use candle_core::{Tensor, D};
use candle_nn::{Linear, Module, VarBuilder};

use crate::config::TimeScaleShift;
use crate::error::{invalid, Result};
use crate::layers::{group_norm, upsample_nearest2x, Activation, ConvNd, GroupNorm, Rank};

/// Settings shared by every residual block of a network.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResnetSettings {
    pub rank: Rank,
    pub temb_channels: usize,
    pub groups: usize,
    pub eps: f64,
    pub act: Activation,
    pub shift: TimeScaleShift,
}

/// diffusers' `ResnetBlock2D` (pre-norm residual block with a timestep projection).
#[derive(Debug, Clone)]
pub(crate) struct ResnetBlock {
    norm1: GroupNorm,
    conv1: ConvNd,
    time_emb_proj: Linear,
    norm2: GroupNorm,
    conv2: ConvNd,
    conv_shortcut: Option<ConvNd>,
    act: Activation,
    shift: TimeScaleShift,
    output_scale: f64,
    dims: usize,
}

impl ResnetBlock {
    pub(crate) fn new(
        s: &ResnetSettings,
        in_channels: usize,
        out_channels: usize,
        output_scale: f64,
        vb: VarBuilder,
    ) -> Result<Self> {
        let proj_out = match s.shift {
            TimeScaleShift::Default => out_channels,
            TimeScaleShift::ScaleShift => 2 * out_channels,
        };
        let conv_shortcut = if in_channels != out_channels {
            Some(ConvNd::same(
                s.rank,
                in_channels,
                out_channels,
                1,
                vb.pp("conv_shortcut"),
            )?)
        } else {
            None
        };
        Ok(Self {
            norm1: group_norm(
                s.groups,
                in_channels,
                s.eps,
                "norm_num_groups",
                vb.pp("norm1"),
            )?,
            conv1: ConvNd::same(s.rank, in_channels, out_channels, 3, vb.pp("conv1"))?,
            time_emb_proj: candle_nn::linear(s.temb_channels, proj_out, vb.pp("time_emb_proj"))?,
            norm2: group_norm(
                s.groups,
                out_channels,
                s.eps,
                "norm_num_groups",
                vb.pp("norm2"),
            )?,
            conv2: ConvNd::same(s.rank, out_channels, out_channels, 3, vb.pp("conv2"))?,
            conv_shortcut,
            act: s.act,
            shift: s.shift,
            output_scale,
            dims: s.rank.dims(),
        })
    }

    /// `x`: `[b, c_in, ...]`; `temb_act`: the activated time embedding `[b, temb]`.
    pub(crate) fn forward(&self, x: &Tensor, temb_act: &Tensor) -> Result<Tensor> {
        let h = self.norm1.forward_act(x, self.act)?;
        let h = self.conv1.forward(&h)?;
        let mut t = self.time_emb_proj.forward(temb_act)?;
        for _ in 0..self.dims {
            t = t.unsqueeze(D::Minus1)?;
        }
        let h = match self.shift {
            TimeScaleShift::Default => self.norm2.forward_act(&h.broadcast_add(&t)?, self.act)?,
            TimeScaleShift::ScaleShift => {
                let c = t.dim(1)? / 2;
                let scale = t.narrow(1, 0, c)?;
                let shift = t.narrow(1, c, c)?;
                let h = self
                    .norm2
                    .forward(&h)?
                    .broadcast_mul(&(scale + 1.0)?)?
                    .broadcast_add(&shift)?;
                self.act.forward(&h)?
            }
        };
        let h = self.conv2.forward(&h)?;
        let x = match &self.conv_shortcut {
            Some(c) => c.forward(x)?,
            None => x.clone(),
        };
        let out = (x + h)?;
        Ok(if self.output_scale == 1.0 {
            out
        } else {
            (out / self.output_scale)?
        })
    }
}

/// diffusers' `Attention` as built by `_from_deprecated_attn_block` (group norm, q/k/v
/// projections over the flattened spatial positions, `to_out.0`, residual): multi-head
/// scaled dot-product self-attention (Vaswani et al., arXiv 1706.03762).
#[derive(Debug, Clone)]
pub(crate) struct AttentionBlock {
    group_norm: Option<GroupNorm>,
    to_q: Linear,
    to_k: Linear,
    to_v: Linear,
    to_out: Linear,
    heads: usize,
    dim_head: usize,
    rescale: f64,
}

impl AttentionBlock {
    /// `groups = None` builds no norm. `heads * dim_head` must equal `channels`.
    pub(crate) fn new(
        channels: usize,
        heads: usize,
        groups: Option<usize>,
        eps: f64,
        rescale: f64,
        vb: VarBuilder,
    ) -> Result<Self> {
        if heads == 0 || !channels.is_multiple_of(heads) {
            return Err(invalid(
                "attention_head_dim",
                format!(
                    "`{}` has {channels} channels, which do not split into {heads} heads",
                    vb.prefix()
                ),
            ));
        }
        let group_norm = match groups {
            Some(g) => Some(group_norm(
                g,
                channels,
                eps,
                "norm_num_groups",
                vb.pp("group_norm"),
            )?),
            None => None,
        };
        Ok(Self {
            group_norm,
            to_q: candle_nn::linear(channels, channels, vb.pp("to_q"))?,
            to_k: candle_nn::linear(channels, channels, vb.pp("to_k"))?,
            to_v: candle_nn::linear(channels, channels, vb.pp("to_v"))?,
            to_out: candle_nn::linear(channels, channels, vb.pp("to_out").pp("0"))?,
            heads,
            dim_head: channels / heads,
            rescale,
        })
    }

    /// Splits `[b, n, heads * d]` into `[b * heads, n, d]`.
    fn split_heads(&self, x: &Tensor, b: usize, n: usize) -> Result<Tensor> {
        Ok(x.reshape((b, n, self.heads, self.dim_head))?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b * self.heads, n, self.dim_head))?)
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let (b, c) = (dims[0], dims[1]);
        let n: usize = dims[2..].iter().product();
        let h = match &self.group_norm {
            Some(g) => g.forward(x)?,
            None => x.clone(),
        };
        let h = h.reshape((b, c, n))?.transpose(1, 2)?.contiguous()?;
        let q = self.split_heads(&self.to_q.forward(&h)?, b, n)?;
        let k = self.split_heads(&self.to_k.forward(&h)?, b, n)?;
        let v = self.split_heads(&self.to_v.forward(&h)?, b, n)?;
        let scale = 1.0 / (self.dim_head as f64).sqrt();
        let o = if crate::layers::fast() {
            dmad_ops::attention(&q, &k, &v, Some(scale))?
        } else {
            let scores = (q.matmul(&k.t()?)? * scale)?;
            crate::softmax::softmax_last_dim(&scores)?.matmul(&v)?
        };
        let o = o
            .reshape((b, self.heads, n, self.dim_head))?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, n, c))?;
        let o = self
            .to_out
            .forward(&o)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape(dims)?;
        let out = (o + x)?;
        Ok(if self.rescale == 1.0 {
            out
        } else {
            (out / self.rescale)?
        })
    }
}

/// diffusers' `Downsample2D` with `use_conv=True`: a stride-2 3x3 convolution (`conv`).
#[derive(Debug, Clone)]
pub(crate) struct Downsample {
    conv: ConvNd,
    pad_right: bool,
    dims: usize,
}

impl Downsample {
    pub(crate) fn new(rank: Rank, channels: usize, padding: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            conv: ConvNd::new(rank, channels, channels, 3, 2, padding, vb.pp("conv"))?,
            pad_right: padding == 0,
            dims: rank.dims(),
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = x.clone();
        if self.pad_right {
            for d in 0..self.dims {
                x = x.pad_with_zeros(2 + d, 0, 1)?;
            }
        }
        self.conv.forward(&x)
    }
}

/// diffusers' `Upsample2D` with `use_conv=True`: nearest 2x, then a 3x3 convolution (`conv`).
#[derive(Debug, Clone)]
pub(crate) struct Upsample {
    conv: ConvNd,
}

impl Upsample {
    pub(crate) fn new(rank: Rank, channels: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            conv: ConvNd::same(rank, channels, channels, 3, vb.pp("conv"))?,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.conv.forward(&upsample_nearest2x(x)?)
    }
}

/// diffusers' `DownBlock2D` / `AttnDownBlock2D`.
#[derive(Debug, Clone)]
pub(crate) struct DownBlock {
    resnets: Vec<ResnetBlock>,
    attentions: Vec<AttentionBlock>,
    downsampler: Option<Downsample>,
}

/// How a block's attention layers are built: `None` for none.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AttentionSpec {
    pub heads: usize,
    pub groups: Option<usize>,
}

impl DownBlock {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        s: &ResnetSettings,
        layers: usize,
        in_channels: usize,
        out_channels: usize,
        attention: Option<AttentionSpec>,
        downsample_padding: Option<usize>,
        vb: VarBuilder,
    ) -> Result<Self> {
        let mut resnets = Vec::with_capacity(layers);
        let mut attentions = Vec::new();
        for i in 0..layers {
            let c_in = if i == 0 { in_channels } else { out_channels };
            resnets.push(ResnetBlock::new(
                s,
                c_in,
                out_channels,
                1.0,
                vb.pp("resnets").pp(i),
            )?);
            if let Some(a) = attention {
                attentions.push(AttentionBlock::new(
                    out_channels,
                    a.heads,
                    a.groups,
                    s.eps,
                    1.0,
                    vb.pp("attentions").pp(i),
                )?);
            }
        }
        let downsampler = match downsample_padding {
            Some(p) => Some(Downsample::new(
                s.rank,
                out_channels,
                p,
                vb.pp("downsamplers").pp(0),
            )?),
            None => None,
        };
        Ok(Self {
            resnets,
            attentions,
            downsampler,
        })
    }

    /// Returns the output and the states the decoder takes as skips (one per residual
    /// block, plus the downsampled output).
    pub(crate) fn forward(&self, x: &Tensor, temb_act: &Tensor) -> Result<(Tensor, Vec<Tensor>)> {
        let mut h = x.clone();
        let mut states = Vec::with_capacity(self.resnets.len() + 1);
        for (i, r) in self.resnets.iter().enumerate() {
            h = r.forward(&h, temb_act)?;
            if let Some(a) = self.attentions.get(i) {
                h = a.forward(&h)?;
            }
            states.push(h.clone());
        }
        if let Some(d) = &self.downsampler {
            h = d.forward(&h)?;
            states.push(h.clone());
        }
        Ok((h, states))
    }

    pub(crate) fn has_downsampler(&self) -> bool {
        self.downsampler.is_some()
    }
}

/// diffusers' `UNetMidBlock2D` with one attention layer.
#[derive(Debug, Clone)]
pub(crate) struct MidBlock {
    resnet_0: ResnetBlock,
    attention: Option<AttentionBlock>,
    resnet_1: ResnetBlock,
}

impl MidBlock {
    pub(crate) fn new(
        s: &ResnetSettings,
        channels: usize,
        attention: Option<AttentionSpec>,
        output_scale: f64,
        vb: VarBuilder,
    ) -> Result<Self> {
        let resnet_0 = ResnetBlock::new(s, channels, channels, output_scale, vb.pp("resnets.0"))?;
        let attention = match attention {
            Some(a) => Some(AttentionBlock::new(
                channels,
                a.heads,
                a.groups,
                s.eps,
                output_scale,
                vb.pp("attentions.0"),
            )?),
            None => None,
        };
        let resnet_1 = ResnetBlock::new(s, channels, channels, output_scale, vb.pp("resnets.1"))?;
        Ok(Self {
            resnet_0,
            attention,
            resnet_1,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor, temb_act: &Tensor) -> Result<Tensor> {
        let mut h = self.resnet_0.forward(x, temb_act)?;
        if let Some(a) = &self.attention {
            h = a.forward(&h)?;
        }
        self.resnet_1.forward(&h, temb_act)
    }
}

/// diffusers' `UpBlock2D` / `AttnUpBlock2D`.
#[derive(Debug, Clone)]
pub(crate) struct UpBlock {
    resnets: Vec<ResnetBlock>,
    attentions: Vec<AttentionBlock>,
    upsampler: Option<Upsample>,
}

impl UpBlock {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        s: &ResnetSettings,
        layers: usize,
        in_channels: usize,
        prev_output_channels: usize,
        out_channels: usize,
        attention: Option<AttentionSpec>,
        add_upsample: bool,
        vb: VarBuilder,
    ) -> Result<Self> {
        let mut resnets = Vec::with_capacity(layers);
        let mut attentions = Vec::new();
        for i in 0..layers {
            let skip = if i == layers - 1 {
                in_channels
            } else {
                out_channels
            };
            let c_in = if i == 0 {
                prev_output_channels
            } else {
                out_channels
            };
            resnets.push(ResnetBlock::new(
                s,
                c_in + skip,
                out_channels,
                1.0,
                vb.pp("resnets").pp(i),
            )?);
            if let Some(a) = attention {
                attentions.push(AttentionBlock::new(
                    out_channels,
                    a.heads,
                    a.groups,
                    s.eps,
                    1.0,
                    vb.pp("attentions").pp(i),
                )?);
            }
        }
        let upsampler = if add_upsample {
            Some(Upsample::new(
                s.rank,
                out_channels,
                vb.pp("upsamplers").pp(0),
            )?)
        } else {
            None
        };
        Ok(Self {
            resnets,
            attentions,
            upsampler,
        })
    }

    /// Pops one skip per residual block from the end of `skips`.
    pub(crate) fn forward(
        &self,
        x: &Tensor,
        skips: &mut Vec<Tensor>,
        temb_act: &Tensor,
    ) -> Result<Tensor> {
        let mut h = x.clone();
        for (i, r) in self.resnets.iter().enumerate() {
            let skip = skips
                .pop()
                .expect("the encoder pushes one skip per decoder residual block");
            h = r.forward(&Tensor::cat(&[&h, &skip], 1)?, temb_act)?;
            if let Some(a) = self.attentions.get(i) {
                h = a.forward(&h)?;
            }
        }
        if let Some(u) = &self.upsampler {
            h = u.forward(&h)?;
        }
        Ok(h)
    }
}
