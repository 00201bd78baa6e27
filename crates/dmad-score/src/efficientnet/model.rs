//! The EfficientNet-Lite network in inference mode, with batch normalisation folded into the
//! convolutions.

use std::collections::HashMap;
use std::path::Path;

use candle_core::safetensors::Load;
use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal, Uniform};

use super::config::{BlockSpec, EfficientNetConfig};
use super::depthwise::{pad_same, Depthwise};
use super::relu6::relu6;
use crate::{Error, Result};

/// The batch normalisation `gamma * (y - mean) / sqrt(var + eps) + beta` folded into the
/// preceding bias-free convolution: returns `(w * s, beta - mean * s)` with
/// `s = gamma / sqrt(var + eps)`, computed in `f64`.
fn fold_bn(weight: &Tensor, bn: [&Tensor; 4], eps: f64) -> Result<(Tensor, Tensor)> {
    let f = |t: &Tensor| -> Result<Tensor> { Ok(t.to_device(&Device::Cpu)?.to_dtype(DType::F64)?) };
    let (gamma, beta, mean, var) = (f(bn[0])?, f(bn[1])?, f(bn[2])?, f(bn[3])?);
    let scale = (gamma / (var + eps)?.sqrt()?)?;
    let bias = (beta - (mean * &scale)?)?;
    let c = scale.dim(0)?;
    let rest = weight.rank() - 1;
    let mut shape = vec![c];
    shape.extend(std::iter::repeat_n(1, rest));
    let w = f(weight)?.broadcast_mul(&scale.reshape(shape)?)?;
    Ok((w, bias))
}

/// A 1x1 convolution (with folded batch normalisation) as a matrix product.
#[derive(Debug, Clone)]
struct Pointwise {
    /// `[c_out, c_in]`.
    weight: Tensor,
    /// `[c_out, 1]`.
    bias: Tensor,
}

impl Pointwise {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let x = x.contiguous()?.reshape((b, c, h * w))?;
        let y = self
            .weight
            .broadcast_matmul(&x)?
            .broadcast_add(&self.bias)?;
        Ok(y.reshape((b, (), h, w))?)
    }
}

/// One MBConv block: [expand 1x1, ReLU6], depthwise kxk, ReLU6, project 1x1, [+ input].
#[derive(Debug, Clone)]
struct MbConv {
    expand: Option<Pointwise>,
    depthwise: Depthwise,
    project: Pointwise,
    residual: bool,
}

impl MbConv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        if let Some(e) = &self.expand {
            h = relu6(&e.forward(&h)?)?;
        }
        h = relu6(&self.depthwise.forward(&h)?)?;
        h = self.project.forward(&h)?;
        if self.residual {
            h = (h + x)?;
        }
        Ok(h)
    }
}

/// An EfficientNet-Lite network in inference mode (EfficientNet: Tan and Le, arXiv
/// 1905.11946), with the reference PyTorch implementation's tensor names.
///
/// The weights are frozen: they are plain tensors, not variables, and batch normalisation
/// uses its running statistics, folded into the preceding convolution at load time (in
/// `f64`). Every operation on the input is differentiable, so gradients flow back to the
/// input, as a perceptual loss needs. Dropout and drop-connect are off, as in `model.eval()`.
///
/// # Shapes
/// Input `[batch, 3, height, width]`, already normalised with the ImageNet mean and std (the
/// [`EfficientNetExtractor`](super::EfficientNetExtractor) does that). Block `i` returns
/// `[batch, c_i, ceil(height / s_i), ceil(width / s_i)]` where `s_i` is its
/// [`output_stride`](BlockSpec::output_stride).
#[derive(Debug, Clone)]
pub struct EfficientNet {
    config: EfficientNetConfig,
    specs: Vec<BlockSpec>,
    /// `[stem, 3, 3, 3]`.
    stem_weight: Tensor,
    /// `[1, stem, 1, 1]`.
    stem_bias: Tensor,
    blocks: Vec<MbConv>,
    head: Pointwise,
    /// `[classes, head]` and `[classes]`.
    classifier: Option<(Tensor, Tensor)>,
    dtype: DType,
    device: Device,
}

impl EfficientNet {
    /// Builds the network from named tensors (`_conv_stem.weight`, ...; see
    /// [`EfficientNetConfig::tensor_shapes`]), e.g. a `VarBuilder` over a safetensors file.
    ///
    /// The network computes in `vb.dtype()` on `vb.device()`.
    ///
    /// # Errors
    /// [`dmad_core::Error::InvalidConfig`] for a bad `config`; a candle error if a tensor is
    /// missing or has the wrong shape (use [`EfficientNet::from_safetensors`] for errors that
    /// name the file and the tensor).
    pub fn new(config: &EfficientNetConfig, vb: VarBuilder) -> Result<Self> {
        config.validate()?;
        let mut map = HashMap::new();
        for (name, shape) in config.tensor_shapes() {
            let t = vb.get(shape, &name)?;
            map.insert(name, t);
        }
        Self::from_tensors(config, &map, vb.dtype(), vb.device())
    }

    /// Loads the network from a safetensors file, checking the name, shape and dtype of
    /// every tensor `config` needs (extra tensors are ignored).
    ///
    /// The tensors may be stored in any float dtype; the network computes in `dtype` on
    /// `device`. For EfficientNet-Lite0 the file is made by the `convert_efficientnet`
    /// example (see `docs/EFFICIENTNET.md`).
    ///
    /// # Errors
    /// - [`dmad_core::Error::Io`] if the file cannot be read;
    /// - [`Error::Weights`] naming the file (and the tensor) if it is not a safetensors file,
    ///   is truncated, or a tensor is missing or has the wrong shape or a non-float dtype;
    /// - [`dmad_core::Error::InvalidConfig`] for a bad `config`.
    pub fn from_safetensors(
        config: &EfficientNetConfig,
        path: impl AsRef<Path>,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| {
            Error::Core(dmad_core::Error::Io {
                path: path.to_owned(),
                source,
            })
        })?;
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| {
            Error::weights(path, None, format!("not a readable safetensors file: {e}"))
        })?;
        let mut map = HashMap::new();
        for (name, shape) in config.tensor_shapes() {
            let view = st
                .tensor(&name)
                .map_err(|_| Error::weights(path, Some(&name), "missing"))?;
            if view.shape() != shape.as_slice() {
                return Err(Error::weights(
                    path,
                    Some(&name),
                    format!("shape {:?}, expected {shape:?}", view.shape()),
                ));
            }
            use safetensors::Dtype as S;
            if !matches!(view.dtype(), S::F32 | S::F64 | S::F16 | S::BF16) {
                return Err(Error::weights(
                    path,
                    Some(&name),
                    format!("dtype {:?}, expected a float dtype", view.dtype()),
                ));
            }
            let t = view
                .load(&Device::Cpu)
                .map_err(|e| Error::weights(path, Some(&name), e.to_string()))?;
            map.insert(name, t);
        }
        Self::from_tensors(config, &map, dtype, device)
    }

    /// A network with seeded random weights, for tests and examples (see
    /// [`random_weights`]).
    ///
    /// # Errors
    /// [`dmad_core::Error::InvalidConfig`] for a bad `config`.
    pub fn random(
        config: &EfficientNetConfig,
        seed: u64,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let map = random_weights(config, seed)?;
        Self::from_tensors(config, &map, dtype, device)
    }

    fn from_tensors(
        config: &EfficientNetConfig,
        map: &HashMap<String, Tensor>,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        let get = |name: &str| -> Result<&Tensor> {
            map.get(name).ok_or_else(|| {
                Error::Candle(candle_core::Error::CannotFindTensor {
                    path: name.to_owned(),
                })
            })
        };
        let bn = |prefix: &str| -> Result<[&Tensor; 4]> {
            Ok([
                get(&format!("{prefix}.weight"))?,
                get(&format!("{prefix}.bias"))?,
                get(&format!("{prefix}.running_mean"))?,
                get(&format!("{prefix}.running_var"))?,
            ])
        };
        let eps = config.batch_norm_eps;
        let put = |t: Tensor| -> Result<Tensor> { Ok(t.to_dtype(dtype)?.to_device(device)?) };
        let pointwise = |conv: &str, bn_prefix: &str| -> Result<Pointwise> {
            let (w, b) = fold_bn(get(conv)?, bn(bn_prefix)?, eps)?;
            let (co, ci, _, _) = w.dims4()?;
            Ok(Pointwise {
                weight: put(w.reshape((co, ci))?)?,
                bias: put(b.reshape((co, 1))?)?,
            })
        };

        let (w, b) = fold_bn(get("_conv_stem.weight")?, bn("_bn0")?, eps)?;
        let stem_weight = put(w)?;
        let stem_bias = put(b.reshape((1, (), 1, 1))?)?;

        let specs = config.blocks();
        let mut blocks = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let p = format!("_blocks.{i}");
            let expand = if spec.expand {
                Some(pointwise(
                    &format!("{p}._expand_conv.weight"),
                    &format!("{p}._bn0"),
                )?)
            } else {
                None
            };
            let (w, b) = fold_bn(
                get(&format!("{p}._depthwise_conv.weight"))?,
                bn(&format!("{p}._bn1"))?,
                eps,
            )?;
            let depthwise = Depthwise::new(&put(w)?, &put(b)?, spec.kernel_size, spec.stride)?;
            let project = pointwise(&format!("{p}._project_conv.weight"), &format!("{p}._bn2"))?;
            blocks.push(MbConv {
                expand,
                depthwise,
                project,
                residual: spec.residual,
            });
        }
        let head = pointwise("_conv_head.weight", "_bn1")?;
        let classifier = match config.num_classes {
            Some(_) => Some((
                put(get("_fc.weight")?.clone())?,
                put(get("_fc.bias")?.clone())?,
            )),
            None => None,
        };
        Ok(Self {
            config: config.clone(),
            specs,
            stem_weight,
            stem_bias,
            blocks,
            head,
            classifier,
            dtype,
            device: device.clone(),
        })
    }

    /// The architecture.
    pub fn config(&self) -> &EfficientNetConfig {
        &self.config
    }

    /// The MBConv blocks with their channels and output strides.
    pub fn blocks(&self) -> &[BlockSpec] {
        &self.specs
    }

    /// The dtype the network computes in.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    fn check_input(&self, x: &Tensor) -> Result<()> {
        const CONTEXT: &str = "EfficientNet input";
        let expected = "[batch, 3, height, width] with batch, height and width at least 1";
        match x.dims() {
            &[b, 3, h, w] if b > 0 && h > 0 && w > 0 => Ok(()),
            d => Err(Error::shape(CONTEXT, expected, d)),
        }
    }

    /// Runs the stem and the blocks `0..=last_block` and returns each block's output.
    ///
    /// # Shapes
    /// `x`: `[batch, 3, height, width]`, normalised; see [`EfficientNet`].
    ///
    /// # Errors
    /// [`dmad_core::Error::ShapeMismatch`] for a bad `x`; [`dmad_core::Error::InvalidConfig`]
    /// (field `last_block`) if there is no such block.
    pub fn forward_blocks(&self, x: &Tensor, last_block: usize) -> Result<Vec<Tensor>> {
        self.check_input(x)?;
        if last_block >= self.blocks.len() {
            return Err(Error::config(
                "last_block",
                format!(
                    "the network has {} blocks, got index {last_block}",
                    self.blocks.len()
                ),
            ));
        }
        let x = x.to_dtype(self.dtype)?;
        let (xp, _, _) = pad_same(&x, 3, 2)?;
        let h = xp
            .conv2d(&self.stem_weight, 0, 2, 1, 1)?
            .broadcast_add(&self.stem_bias)?;
        let mut h = relu6(&h)?;
        let mut outs = Vec::with_capacity(last_block + 1);
        for block in &self.blocks[..=last_block] {
            h = block.forward(&h)?;
            outs.push(h.clone());
        }
        Ok(outs)
    }

    /// The head: the 1x1 convolution, batch normalisation and ReLU6 applied to the output of
    /// the last block (`extract_features` of the reference code).
    ///
    /// # Shapes
    /// `last`: `[batch, c_last, h, w]` → `[batch, head_channels, h, w]`.
    ///
    /// # Errors
    /// A shape error if `last` does not have the last block's channels.
    pub fn forward_head(&self, last: &Tensor) -> Result<Tensor> {
        let c = self
            .specs
            .last()
            .map_or(self.config.stem_channels, |b| b.out_channels);
        match last.dims() {
            &[_, ch, _, _] if ch == c => {}
            d => {
                return Err(Error::shape(
                    "EfficientNet::forward_head input",
                    format!("[batch, {c}, height, width]"),
                    d,
                ))
            }
        }
        relu6(&self.head.forward(last)?)
    }

    /// The classifier: global average pooling and the linear layer, giving logits.
    ///
    /// # Shapes
    /// `features`: `[batch, head_channels, h, w]` → `[batch, num_classes]`.
    ///
    /// # Errors
    /// [`dmad_core::Error::Unsupported`] if the network was built without a classifier; a
    /// shape error for a bad `features`.
    pub fn classify(&self, features: &Tensor) -> Result<Tensor> {
        let (w, b) = self
            .classifier
            .as_ref()
            .ok_or(Error::Core(dmad_core::Error::Unsupported(
                "this EfficientNet was built without a classifier (num_classes = None)",
            )))?;
        match features.dims() {
            &[_, c, _, _] if c == self.config.head_channels => {}
            d => {
                return Err(Error::shape(
                    "EfficientNet::classify input",
                    format!("[batch, {}, height, width]", self.config.head_channels),
                    d,
                ))
            }
        }
        let pooled = features.flatten_from(2)?.mean(D::Minus1)?;
        Ok(pooled.matmul(&w.t()?)?.broadcast_add(b)?)
    }

    /// The whole network: logits of `x`.
    ///
    /// # Shapes
    /// `x`: `[batch, 3, height, width]`, normalised → `[batch, num_classes]`.
    ///
    /// # Errors
    /// As [`forward_blocks`](Self::forward_blocks) and [`classify`](Self::classify).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let outs = self.forward_blocks(x, self.blocks.len() - 1)?;
        let last = outs.last().expect("the network has at least one block");
        self.classify(&self.forward_head(last)?)
    }
}

/// Seeded random weights for `config`, as `f32` tensors on the CPU under the reference
/// names: He-normal convolutions, batch normalisations with `gamma, var ~ U(0.5, 1.5)` and
/// `beta, mean ~ N(0, 0.1)`, a normal classifier with zero bias. Suitable for tests and for
/// writing small safetensors files.
///
/// # Errors
/// [`dmad_core::Error::InvalidConfig`] for a bad `config`.
pub fn random_weights(config: &EfficientNetConfig, seed: u64) -> Result<HashMap<String, Tensor>> {
    config.validate()?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let unit = Uniform::new(0.5f32, 1.5).expect("a valid range");
    let small = Normal::new(0f32, 0.1).expect("a valid std");
    let mut map = HashMap::new();
    for (name, shape) in config.tensor_shapes() {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = if name.ends_with(".running_var")
            || name.ends_with("._bn0.weight")
            || name.ends_with("._bn1.weight")
            || name.ends_with("._bn2.weight")
            || name == "_bn0.weight"
            || name == "_bn1.weight"
        {
            (0..n).map(|_| unit.sample(&mut rng)).collect()
        } else if name.ends_with(".bias") && name != "_fc.bias" || name.ends_with(".running_mean") {
            (0..n).map(|_| small.sample(&mut rng)).collect()
        } else if name == "_fc.bias" {
            vec![0.0; n]
        } else {
            // Convolutions [c_out, c_in / groups, k, k] and the linear layer [out, in].
            let fan_in: usize = shape[1..].iter().product();
            let std = (2.0 / fan_in as f32).sqrt();
            let normal = Normal::new(0f32, std).expect("a valid std");
            (0..n).map(|_| normal.sample(&mut rng)).collect()
        };
        map.insert(name, Tensor::from_vec(data, shape, &Device::Cpu)?);
    }
    Ok(map)
}
