//! Configuration of [`UNet2d`](crate::UNet2d) and [`UNet1d`](crate::UNet1d).

use dmad_core::PredictionType;
use serde::{Deserialize, Serialize};

use crate::error::{invalid, Result};
use crate::layers::{Activation, Kernels};

/// An encoder block type, with diffusers' names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DownBlockType {
    /// Residual blocks then a strided-conv downsampler (`"DownBlock2D"`, also read from
    /// `"DownBlock1D"`).
    #[serde(rename = "DownBlock2D", alias = "DownBlock1D")]
    DownBlock,
    /// Residual blocks each followed by self-attention, then a downsampler
    /// (`"AttnDownBlock2D"`, also read from `"AttnDownBlock1D"`).
    #[serde(rename = "AttnDownBlock2D", alias = "AttnDownBlock1D")]
    AttnDownBlock,
}

impl DownBlockType {
    /// Whether the block has self-attention layers.
    pub fn has_attention(self) -> bool {
        matches!(self, DownBlockType::AttnDownBlock)
    }
}

/// A decoder block type, with diffusers' names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UpBlockType {
    /// Residual blocks on the concatenated skips, then a nearest-upsample + conv
    /// (`"UpBlock2D"`, also read from `"UpBlock1D"`).
    #[serde(rename = "UpBlock2D", alias = "UpBlock1D")]
    UpBlock,
    /// As [`UpBlockType::UpBlock`], each residual block followed by self-attention
    /// (`"AttnUpBlock2D"`, also read from `"AttnUpBlock1D"`).
    #[serde(rename = "AttnUpBlock2D", alias = "AttnUpBlock1D")]
    AttnUpBlock,
}

impl UpBlockType {
    /// Whether the block has self-attention layers.
    pub fn has_attention(self) -> bool {
        matches!(self, UpBlockType::AttnUpBlock)
    }
}

/// The middle block type (diffusers' `mid_block_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum MidBlockType {
    /// Residual block, (optional) attention, residual block (`"UNetMidBlock2D"`).
    #[default]
    #[serde(rename = "UNetMidBlock2D", alias = "UNetMidBlock1D")]
    UNetMidBlock,
}

/// How the timestep embedding enters the residual blocks (diffusers'
/// `resnet_time_scale_shift`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum TimeScaleShift {
    /// Added to the features before the second norm (`"default"`).
    #[default]
    #[serde(rename = "default")]
    Default,
    /// FiLM after the second norm: `h * (1 + scale) + shift` (`"scale_shift"`).
    #[serde(rename = "scale_shift")]
    ScaleShift,
}

/// The timestep embedding type (diffusers' `time_embedding_type`). Only the sinusoidal
/// (`"positional"`) embedding is supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum TimeEmbeddingType {
    /// The sinusoidal embedding of DDPM (`"positional"`).
    #[default]
    #[serde(rename = "positional")]
    Positional,
}

/// The resampling layer type (diffusers' `downsample_type` / `upsample_type`). Only the
/// convolutional resamplers are supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ResampleType {
    /// Strided convolution down, nearest-upsample + convolution up (`"conv"`).
    #[default]
    #[serde(rename = "conv")]
    Conv,
}

/// How the wavelet pyramid's projected bands join the encoder features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum WaveletFusion {
    /// `h + conv1x1([A_l, D_l])` (`"add"`). The default.
    #[default]
    #[serde(rename = "add")]
    Add,
    /// `conv1x1([h, A_l, D_l])` back to the width of `h` (`"concat"`).
    #[serde(rename = "concat")]
    Concat,
}

/// The four modules of the method (section III-D of the paper), each one switch.
///
/// With every switch off (the [`Default`]) the network is a plain diffusers-style U-Net, the
/// DDPM baseline; [`ModulesConfig::all`] switches all four on. An ablation flips one flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModulesConfig {
    /// Wavelet pyramid module: at encoder level `l` (after the `l`-th downsampling), the
    /// level-`l` Daubechies DWT of the input (`A_l` and the detail bands `D_l`: three in 2D,
    /// one in 1D) is projected by a 1x1 convolution and fused into the features.
    /// Default `false`.
    pub wavelet_pyramid: bool,
    /// The wavelet of the pyramid, PyWavelets' name. Default `"db2"`.
    pub wavelet: String,
    /// How many pyramid levels to fuse, at most the number of downsamplings; `0` means all of
    /// them. Default `0`.
    pub wavelet_levels: usize,
    /// How the pyramid joins the features. Default [`WaveletFusion::Add`].
    pub wavelet_fusion: WaveletFusion,
    /// Multi-head self-attention at every encoder and decoder stage (every down and up block
    /// and the middle block gets attention, not only those whose type says so), with
    /// [`ModulesConfig::attention_heads`] heads. Default `false`.
    ///
    /// Attention over `N` positions costs `O(N^2)` time and memory: at full resolution a
    /// 64x64 input means 4096 tokens and a `[batch * heads, 4096, 4096]` score tensor per
    /// layer, kept for the backward pass in training.
    pub multi_head_attention: bool,
    /// The number of heads when `multi_head_attention` is on; it must divide every block's
    /// width. Default `4`.
    pub attention_heads: usize,
    /// Modality-shared input adapter: a learnable convolutional stem
    /// (`conv3 -> act -> conv3`) from `in_channels` to `adapter_channels`, in front of
    /// `conv_in`. Default `false`.
    pub input_adapter: bool,
    /// The common width the adapter maps every modality to. Default `32`.
    pub adapter_channels: usize,
    /// Hybrid time embedding: `Embed(t) = e + Conv1D(e)` with `e = Sinusoidal(t)` (a
    /// `1 -> time_conv_channels -> 1` channel pair of 1D convolutions along the embedding
    /// axis), followed by the usual MLP. Default `false`.
    pub hybrid_time_embedding: bool,
    /// Kernel width of the first time convolution (odd). Default `3`.
    pub time_conv_kernel: usize,
    /// Hidden channels of the time convolution. Default `8`.
    pub time_conv_channels: usize,
}

impl Default for ModulesConfig {
    fn default() -> Self {
        Self {
            wavelet_pyramid: false,
            wavelet: "db2".to_string(),
            wavelet_levels: 0,
            wavelet_fusion: WaveletFusion::Add,
            multi_head_attention: false,
            attention_heads: 4,
            input_adapter: false,
            adapter_channels: 32,
            hybrid_time_embedding: false,
            time_conv_kernel: 3,
            time_conv_channels: 8,
        }
    }
}

impl ModulesConfig {
    /// Every module off: the DDPM baseline (same as [`Default`]).
    pub fn none() -> Self {
        Self::default()
    }

    /// Every module on, with the default sub-settings: the full method.
    pub fn all() -> Self {
        Self {
            wavelet_pyramid: true,
            multi_head_attention: true,
            input_adapter: true,
            hybrid_time_embedding: true,
            ..Self::default()
        }
    }

    /// The modules switched by the four bits of `mask` (bit 0: wavelet pyramid, bit 1:
    /// multi-head attention, bit 2: input adapter, bit 3: hybrid time embedding), for
    /// ablation sweeps.
    pub fn from_mask(mask: u8) -> Self {
        Self {
            wavelet_pyramid: mask & 1 != 0,
            multi_head_attention: mask & 2 != 0,
            input_adapter: mask & 4 != 0,
            hybrid_time_embedding: mask & 8 != 0,
            ..Self::default()
        }
    }
}

/// Configuration of the U-Nets, with the field names and defaults of diffusers'
/// `UNet2DModel` (so a diffusers `config.json` deserialises into it; unknown keys such as
/// `_class_name` are ignored), plus `prediction_type` and the method's `modules`.
///
/// The same struct configures [`UNet2d`](crate::UNet2d) and [`UNet1d`](crate::UNet1d); the
/// network type fixes the spatial rank.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UNetConfig {
    /// The nominal sample size (height and width, or length). Informational: any size
    /// divisible by `2^(levels - 1)` is accepted. Default `32`.
    pub sample_size: usize,
    /// Input channels. Default `3`.
    pub in_channels: usize,
    /// Output channels. Default `3`.
    pub out_channels: usize,
    /// Map the input from `[0, 1]` to `[-1, 1]` first (`2x - 1`). Default `false`.
    pub center_input_sample: bool,
    /// The timestep embedding type; only `"positional"`. Default positional.
    pub time_embedding_type: TimeEmbeddingType,
    /// Width of the timestep embedding MLP; `None` means `4 * block_out_channels[0]`.
    /// Default `None`.
    pub time_embedding_dim: Option<usize>,
    /// diffusers' `freq_shift` of the sinusoidal embedding. Default `0`.
    pub freq_shift: f64,
    /// Order the sinusoidal embedding `cos, sin` (else `sin, cos`). Default `true`.
    pub flip_sin_to_cos: bool,
    /// One encoder block type per level. Default
    /// `[DownBlock2D, AttnDownBlock2D, AttnDownBlock2D, AttnDownBlock2D]`.
    pub down_block_types: Vec<DownBlockType>,
    /// The middle block; `None` for none. Default `Some(UNetMidBlock2D)`.
    pub mid_block_type: Option<MidBlockType>,
    /// One decoder block type per level, coarsest first. Default
    /// `[AttnUpBlock2D, AttnUpBlock2D, AttnUpBlock2D, UpBlock2D]`.
    pub up_block_types: Vec<UpBlockType>,
    /// The width of each level. Default `[224, 448, 672, 896]`.
    pub block_out_channels: Vec<usize>,
    /// Residual blocks per encoder level (decoder levels get one more). Default `2`.
    pub layers_per_block: usize,
    /// Output scale of the middle block's residual and attention layers. Default `1`.
    pub mid_block_scale_factor: f64,
    /// Padding of the downsampling convolution (`0` pads right/bottom by one). Default `1`.
    pub downsample_padding: usize,
    /// Downsampler type; only `"conv"`. Default conv.
    pub downsample_type: ResampleType,
    /// Upsampler type; only `"conv"`. Default conv.
    pub upsample_type: ResampleType,
    /// Dropout probability; dmad's networks have no training mode, so only `0` is accepted.
    /// Default `0`.
    pub dropout: f64,
    /// Activation of the residual blocks. Default silu.
    pub act_fn: Activation,
    /// Width of one attention head (heads = channels / head_dim); `None` means one head per
    /// layer. Default `Some(8)`.
    pub attention_head_dim: Option<usize>,
    /// Groups of every group norm; `None` means `min(block_out_channels[0] / 4, 32)` for the
    /// output norm and 32 elsewhere, as diffusers. Default `Some(32)`.
    pub norm_num_groups: Option<usize>,
    /// Groups of the middle block's attention norm; `None` follows `norm_num_groups` (and
    /// means no norm with `scale_shift`). Default `None`.
    pub attn_norm_num_groups: Option<usize>,
    /// Epsilon of every group norm. Default `1e-5`.
    pub norm_eps: f64,
    /// How the time embedding enters the residual blocks. Default `"default"`.
    pub resnet_time_scale_shift: TimeScaleShift,
    /// Whether the middle block has an attention layer. Default `true`.
    pub add_attention: bool,
    /// What the network predicts. Default epsilon.
    pub prediction_type: PredictionType,
    /// The method's four modules. Default all off (the DDPM baseline).
    pub modules: ModulesConfig,
    /// Which implementation runs the convolutions, group norms and attention (same results).
    /// Not part of the config file. Default [`Kernels::Fast`].
    #[serde(skip)]
    pub kernels: Kernels,
}

impl Default for UNetConfig {
    fn default() -> Self {
        Self {
            sample_size: 32,
            in_channels: 3,
            out_channels: 3,
            center_input_sample: false,
            time_embedding_type: TimeEmbeddingType::Positional,
            time_embedding_dim: None,
            freq_shift: 0.0,
            flip_sin_to_cos: true,
            down_block_types: vec![
                DownBlockType::DownBlock,
                DownBlockType::AttnDownBlock,
                DownBlockType::AttnDownBlock,
                DownBlockType::AttnDownBlock,
            ],
            mid_block_type: Some(MidBlockType::UNetMidBlock),
            up_block_types: vec![
                UpBlockType::AttnUpBlock,
                UpBlockType::AttnUpBlock,
                UpBlockType::AttnUpBlock,
                UpBlockType::UpBlock,
            ],
            block_out_channels: vec![224, 448, 672, 896],
            layers_per_block: 2,
            mid_block_scale_factor: 1.0,
            downsample_padding: 1,
            downsample_type: ResampleType::Conv,
            upsample_type: ResampleType::Conv,
            dropout: 0.0,
            act_fn: Activation::Silu,
            attention_head_dim: Some(8),
            norm_num_groups: Some(32),
            attn_norm_num_groups: None,
            norm_eps: 1e-5,
            resnet_time_scale_shift: TimeScaleShift::Default,
            add_attention: true,
            prediction_type: PredictionType::Epsilon,
            modules: ModulesConfig::default(),
            kernels: Kernels::Fast,
        }
    }
}

impl UNetConfig {
    /// A small configuration for tests and toy problems: widths `[32, 64]`, one layer per
    /// block, attention at the lower level, 8 groups, head width 8.
    pub fn tiny(in_channels: usize) -> Self {
        Self {
            sample_size: 16,
            in_channels,
            out_channels: in_channels,
            down_block_types: vec![DownBlockType::DownBlock, DownBlockType::AttnDownBlock],
            up_block_types: vec![UpBlockType::AttnUpBlock, UpBlockType::UpBlock],
            block_out_channels: vec![32, 64],
            layers_per_block: 1,
            norm_num_groups: Some(8),
            ..Self::default()
        }
    }

    /// Parses a JSON config (diffusers' `config.json` or one written by
    /// [`UNetConfig::to_json`]).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) (field `json`) naming the serde
    /// error.
    pub fn from_json(json: &str) -> Result<Self> {
        serde_json_lite::from_str(json)
    }

    /// The time embedding width: `time_embedding_dim` or `4 * block_out_channels[0]`.
    pub fn time_embed_dim(&self) -> usize {
        self.time_embedding_dim
            .unwrap_or(4 * self.block_out_channels.first().copied().unwrap_or(0))
    }

    /// The number of resolution levels (`block_out_channels.len()`).
    pub fn levels(&self) -> usize {
        self.block_out_channels.len()
    }

    /// The number of downsamplings (`levels - 1`); inputs must be divisible by
    /// `2^downsamplings` along every spatial axis.
    pub fn downsamplings(&self) -> usize {
        self.levels().saturating_sub(1)
    }

    /// The group count of the residual and attention norms (diffusers falls back to 32).
    pub(crate) fn groups(&self) -> usize {
        self.norm_num_groups.unwrap_or(32)
    }

    /// Checks the values that do not depend on the layer shapes (those are checked while the
    /// layers are built).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) naming the field.
    pub fn validate(&self) -> Result<()> {
        let n = self.block_out_channels.len();
        if n == 0 {
            return Err(invalid("block_out_channels", "must not be empty"));
        }
        if let Some(i) = self.block_out_channels.iter().position(|&c| c == 0) {
            return Err(invalid(
                "block_out_channels",
                format!("entry {i} is 0; every width must be positive"),
            ));
        }
        if self.down_block_types.len() != n {
            return Err(invalid(
                "down_block_types",
                format!(
                    "has {} entries but block_out_channels has {n}",
                    self.down_block_types.len()
                ),
            ));
        }
        if self.up_block_types.len() != n {
            return Err(invalid(
                "up_block_types",
                format!(
                    "has {} entries but block_out_channels has {n}",
                    self.up_block_types.len()
                ),
            ));
        }
        if self.in_channels == 0 {
            return Err(invalid("in_channels", "must be at least 1"));
        }
        if self.out_channels == 0 {
            return Err(invalid("out_channels", "must be at least 1"));
        }
        if self.layers_per_block == 0 {
            return Err(invalid("layers_per_block", "must be at least 1"));
        }
        if self.time_embedding_dim == Some(0) {
            return Err(invalid("time_embedding_dim", "must be positive"));
        }
        if self.block_out_channels[0] < 2 {
            return Err(invalid(
                "block_out_channels",
                "the first width is the sinusoidal embedding width and must be at least 2",
            ));
        }
        if self.dropout != 0.0 {
            return Err(invalid(
                "dropout",
                format!(
                    "{} is not supported: dmad networks have no training mode; use 0",
                    self.dropout
                ),
            ));
        }
        if !(self.norm_eps > 0.0 && self.norm_eps.is_finite()) {
            return Err(invalid("norm_eps", "must be positive and finite"));
        }
        if !(self.mid_block_scale_factor.is_finite() && self.mid_block_scale_factor != 0.0) {
            return Err(invalid(
                "mid_block_scale_factor",
                "must be finite and non-zero",
            ));
        }
        if !self.freq_shift.is_finite() {
            return Err(invalid("freq_shift", "must be finite"));
        }
        if self.attention_head_dim == Some(0) {
            return Err(invalid("attention_head_dim", "must be positive"));
        }
        if self.norm_num_groups == Some(0) {
            return Err(invalid("norm_num_groups", "must be positive"));
        }
        if self.attn_norm_num_groups == Some(0) {
            return Err(invalid("attn_norm_num_groups", "must be positive"));
        }
        if self.downsample_padding > 1 {
            return Err(invalid(
                "downsample_padding",
                "only 0 and 1 keep the encoder and decoder resolutions aligned",
            ));
        }
        let m = &self.modules;
        if m.multi_head_attention && m.attention_heads == 0 {
            return Err(invalid("modules.attention_heads", "must be at least 1"));
        }
        if m.input_adapter && m.adapter_channels == 0 {
            return Err(invalid("modules.adapter_channels", "must be at least 1"));
        }
        if m.hybrid_time_embedding {
            if m.time_conv_kernel.is_multiple_of(2) {
                return Err(invalid(
                    "modules.time_conv_kernel",
                    format!("{} is even; use an odd width", m.time_conv_kernel),
                ));
            }
            if m.time_conv_channels == 0 {
                return Err(invalid("modules.time_conv_channels", "must be at least 1"));
            }
        }
        Ok(())
    }
}

/// JSON (de)serialisation without a public serde_json dependency in the API.
pub(crate) mod serde_json_lite {
    use crate::error::{invalid, Result};

    pub(crate) fn from_str<T: serde::de::DeserializeOwned>(json: &str) -> Result<T> {
        serde_json::from_str(json).map_err(|e| invalid("json", e.to_string()))
    }

    pub(crate) fn to_string<T: serde::Serialize>(value: &T) -> Result<String> {
        serde_json::to_string_pretty(value).map_err(|e| invalid("json", e.to_string()))
    }
}

impl UNetConfig {
    /// Writes the config as pretty JSON (round-trips through [`UNetConfig::from_json`]).
    ///
    /// # Errors
    /// Only if serialisation fails (it does not for valid configs).
    pub fn to_json(&self) -> Result<String> {
        serde_json_lite::to_string(self)
    }
}
