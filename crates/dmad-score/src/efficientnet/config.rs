//! The architecture of an EfficientNet-Lite network: stem, stages of MBConv blocks, head.

use crate::{Error, Result};

/// One stage of EfficientNet's block table: `repeats` MBConv blocks of the same kind.
///
/// The first block of a stage has `stride` and takes the previous stage's channels; the
/// others have stride 1 and a residual connection. The names follow the block strings of the
/// reference code (`r1_k3_s11_e1_i32_o16`: repeats, kernel, stride, expansion, in, out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct StageConfig {
    /// Number of blocks in the stage (`r`), at least 1.
    pub repeats: usize,
    /// Side of the square depthwise kernel (`k`): an odd number, 3 or 5 in Lite0.
    pub kernel_size: usize,
    /// Stride of the stage's first block (`s`): 1 or 2 in Lite0.
    pub stride: usize,
    /// Expansion ratio of the inverted bottleneck (`e`); 1 means no expansion convolution.
    pub expand_ratio: usize,
    /// Output channels of every block of the stage (`o`).
    pub out_channels: usize,
}

impl StageConfig {
    /// A stage from its block-string fields.
    pub const fn new(
        repeats: usize,
        kernel_size: usize,
        stride: usize,
        expand_ratio: usize,
        out_channels: usize,
    ) -> Self {
        Self {
            repeats,
            kernel_size,
            stride,
            expand_ratio,
            out_channels,
        }
    }
}

/// The architecture of an EfficientNet-Lite network (ReLU6, no squeeze-and-excitation).
///
/// The stem is a 3x3 convolution with stride 2 from 3 (RGB) channels; every convolution uses
/// TensorFlow's `SAME` padding (output size `ceil(input / stride)`, an odd total padding puts
/// the extra row and column at the bottom and right), as the reference implementation does.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct EfficientNetConfig {
    /// Output channels of the stem (32 in Lite0).
    pub stem_channels: usize,
    /// The stages of MBConv blocks (seven in Lite0, 16 blocks in all).
    pub stages: Vec<StageConfig>,
    /// Output channels of the 1x1 head convolution (1280 in Lite0).
    pub head_channels: usize,
    /// Number of classes of the final linear layer (`Some(1000)` in Lite0); `None` builds the
    /// network without a classifier (enough for feature extraction).
    pub num_classes: Option<usize>,
    /// Epsilon of every batch normalisation (`1e-3` in Lite0).
    pub batch_norm_eps: f64,
}

/// One MBConv block with its channels resolved, as [`EfficientNetConfig::blocks`] lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockSpec {
    /// Input channels.
    pub in_channels: usize,
    /// Channels after the expansion (`in_channels * expand_ratio`).
    pub mid_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Side of the depthwise kernel.
    pub kernel_size: usize,
    /// Stride of the depthwise convolution.
    pub stride: usize,
    /// Whether the block has an expansion convolution (`expand_ratio != 1`).
    pub expand: bool,
    /// Whether the block adds its input to its output (stride 1 and equal channels).
    pub residual: bool,
    /// Total stride of the block's output with respect to the network input.
    pub output_stride: usize,
}

impl EfficientNetConfig {
    /// EfficientNet-Lite0 (Tan and Le, arXiv 1905.11946; the Lite variants of TensorFlow's
    /// `efficientnet_lite_builder.py`): 16 blocks, 4.7 M parameters, 1000 ImageNet classes.
    pub fn lite0() -> Self {
        Self {
            stem_channels: 32,
            stages: vec![
                StageConfig::new(1, 3, 1, 1, 16),
                StageConfig::new(2, 3, 2, 6, 24),
                StageConfig::new(2, 5, 2, 6, 40),
                StageConfig::new(3, 3, 2, 6, 80),
                StageConfig::new(3, 5, 1, 6, 112),
                StageConfig::new(4, 5, 2, 6, 192),
                StageConfig::new(1, 3, 1, 6, 320),
            ],
            head_channels: 1280,
            num_classes: Some(1000),
            batch_norm_eps: 1e-3,
        }
    }

    /// A tiny network of the same kind for tests and examples: 5 blocks with output strides
    /// 2, 4, 4, 8 and 16, a few channels each, and a 10-class classifier.
    pub fn tiny() -> Self {
        Self {
            stem_channels: 8,
            stages: vec![
                StageConfig::new(1, 3, 1, 1, 8),
                StageConfig::new(2, 3, 2, 2, 12),
                StageConfig::new(1, 5, 2, 2, 16),
                StageConfig::new(1, 3, 2, 2, 24),
            ],
            head_channels: 32,
            num_classes: Some(10),
            batch_norm_eps: 1e-3,
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`dmad_core::Error::InvalidConfig`] (inside [`Error::Core`]) naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        if self.stem_channels == 0 {
            return Err(Error::config("stem_channels", "must be at least 1"));
        }
        if self.stages.is_empty() {
            return Err(Error::config("stages", "at least one stage is needed"));
        }
        for (i, s) in self.stages.iter().enumerate() {
            let bad = |reason: String| Error::config("stages", format!("stage {i}: {reason}"));
            if s.repeats == 0 {
                return Err(bad("repeats must be at least 1".into()));
            }
            if s.kernel_size == 0 || s.kernel_size % 2 == 0 {
                return Err(bad(format!(
                    "kernel_size must be odd, got {}",
                    s.kernel_size
                )));
            }
            if s.stride == 0 {
                return Err(bad("stride must be at least 1".into()));
            }
            if s.expand_ratio == 0 {
                return Err(bad("expand_ratio must be at least 1".into()));
            }
            if s.out_channels == 0 {
                return Err(bad("out_channels must be at least 1".into()));
            }
        }
        if self.head_channels == 0 {
            return Err(Error::config("head_channels", "must be at least 1"));
        }
        if self.num_classes == Some(0) {
            return Err(Error::config(
                "num_classes",
                "must be at least 1, or None for no classifier",
            ));
        }
        if !(self.batch_norm_eps.is_finite() && self.batch_norm_eps > 0.0) {
            return Err(Error::config(
                "batch_norm_eps",
                format!("must be finite and positive, got {}", self.batch_norm_eps),
            ));
        }
        Ok(())
    }

    /// The blocks, one per MBConv block in network order, with channels and strides resolved.
    pub fn blocks(&self) -> Vec<BlockSpec> {
        let mut out = Vec::new();
        let mut in_channels = self.stem_channels;
        let mut total_stride = 2; // the stem
        for s in &self.stages {
            for r in 0..s.repeats {
                let stride = if r == 0 { s.stride } else { 1 };
                total_stride *= stride;
                out.push(BlockSpec {
                    in_channels,
                    mid_channels: in_channels * s.expand_ratio,
                    out_channels: s.out_channels,
                    kernel_size: s.kernel_size,
                    stride,
                    expand: s.expand_ratio != 1,
                    residual: stride == 1 && in_channels == s.out_channels,
                    output_stride: total_stride,
                });
                in_channels = s.out_channels;
            }
        }
        out
    }

    /// The names and shapes of the network's tensors, in the reference implementation's
    /// state-dict names (`_conv_stem.weight`, `_blocks.3._bn1.running_var`, ...).
    ///
    /// Batch normalisations have `weight`, `bias`, `running_mean` and `running_var`;
    /// convolutions have no bias. `_fc.*` is listed only when `num_classes` is set.
    pub fn tensor_shapes(&self) -> Vec<(String, Vec<usize>)> {
        fn bn(out: &mut Vec<(String, Vec<usize>)>, prefix: &str, c: usize) {
            for p in ["weight", "bias", "running_mean", "running_var"] {
                out.push((format!("{prefix}.{p}"), vec![c]));
            }
        }
        let mut out = Vec::new();
        out.push((
            "_conv_stem.weight".to_owned(),
            vec![self.stem_channels, 3, 3, 3],
        ));
        bn(&mut out, "_bn0", self.stem_channels);
        let blocks = self.blocks();
        for (i, b) in blocks.iter().enumerate() {
            let p = format!("_blocks.{i}");
            if b.expand {
                out.push((
                    format!("{p}._expand_conv.weight"),
                    vec![b.mid_channels, b.in_channels, 1, 1],
                ));
                bn(&mut out, &format!("{p}._bn0"), b.mid_channels);
            }
            out.push((
                format!("{p}._depthwise_conv.weight"),
                vec![b.mid_channels, 1, b.kernel_size, b.kernel_size],
            ));
            bn(&mut out, &format!("{p}._bn1"), b.mid_channels);
            out.push((
                format!("{p}._project_conv.weight"),
                vec![b.out_channels, b.mid_channels, 1, 1],
            ));
            bn(&mut out, &format!("{p}._bn2"), b.out_channels);
        }
        let last = blocks.last().map_or(self.stem_channels, |b| b.out_channels);
        out.push((
            "_conv_head.weight".to_owned(),
            vec![self.head_channels, last, 1, 1],
        ));
        bn(&mut out, "_bn1", self.head_channels);
        if let Some(n) = self.num_classes {
            out.push(("_fc.weight".to_owned(), vec![n, self.head_channels]));
            out.push(("_fc.bias".to_owned(), vec![n]));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lite0_has_the_reference_tensor_list() {
        let cfg = EfficientNetConfig::lite0();
        cfg.validate().unwrap();
        let blocks = cfg.blocks();
        assert_eq!(blocks.len(), 16);
        let strides: Vec<usize> = blocks.iter().map(|b| b.output_stride).collect();
        assert_eq!(
            strides,
            [2, 4, 4, 8, 8, 16, 16, 16, 16, 16, 16, 32, 32, 32, 32, 32]
        );
        // 247 tensors in the reference state dict (no `num_batches_tracked`).
        assert_eq!(cfg.tensor_shapes().len(), 247);
        let n_params: usize = cfg
            .tensor_shapes()
            .iter()
            .filter(|(n, _)| !n.contains("running_"))
            .map(|(_, s)| s.iter().product::<usize>())
            .sum();
        assert_eq!(n_params, 4_652_008);
    }

    #[test]
    fn bad_configs_name_the_field() {
        let mut cfg = EfficientNetConfig::tiny();
        cfg.stages[1].kernel_size = 4;
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("stages") && e.contains("stage 1"), "{e}");
        let mut cfg = EfficientNetConfig::tiny();
        cfg.num_classes = Some(0);
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("num_classes"));
        let mut cfg = EfficientNetConfig::tiny();
        cfg.batch_norm_eps = -1.0;
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("batch_norm_eps"));
        let mut cfg = EfficientNetConfig::tiny();
        cfg.stages.clear();
        assert!(cfg.validate().unwrap_err().to_string().contains("stages"));
    }
}
