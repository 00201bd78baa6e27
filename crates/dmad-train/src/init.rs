//! Seeded initialisation of a network's weights.
//!
//! candle-nn's `VarMap` draws initial weights from candle's global RNG, which cannot be seeded
//! on the CPU, so two runs start from different weights. [`seeded_var_builder`] gives a
//! `VarBuilder` that stores its variables in a `VarMap` as usual but draws each one from a
//! ChaCha RNG seeded by the run's seed and the variable's name: the same seed gives the same
//! weights, whatever the order in which the network creates them.

use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::init::{Init, NormalOrUniform};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// A `VarBuilder` over `varmap` whose new variables are drawn from a seeded RNG.
///
/// Variables that already exist in `varmap` are returned as they are (after a shape check).
pub fn seeded_var_builder(
    varmap: &VarMap,
    seed: u64,
    dtype: DType,
    device: &Device,
) -> VarBuilder<'static> {
    let backend: Box<dyn SimpleBackend> = Box::new(SeededVarMap {
        varmap: varmap.clone(),
        seed,
    });
    VarBuilder::from_backend(backend, dtype, device.clone())
}

struct SeededVarMap {
    varmap: VarMap,
    seed: u64,
}

/// FNV-1a: a hash of the variable name that is stable across runs and platforms.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn draw(init: Init, shape: &Shape, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let n = shape.elem_count();
    let normal = |rng: &mut ChaCha8Rng, mean: f64, std: f64| {
        (0..n)
            .map(|_| {
                let z: f64 = StandardNormal.sample(rng);
                mean + std * z
            })
            .collect::<Vec<_>>()
    };
    let uniform = |rng: &mut ChaCha8Rng, lo: f64, up: f64| {
        (0..n)
            .map(|_| lo + (up - lo) * rng.random::<f64>())
            .collect::<Vec<_>>()
    };
    match init {
        Init::Const(c) => vec![c; n],
        Init::Randn { mean, stdev } => normal(rng, mean, stdev),
        Init::Uniform { lo, up } => uniform(rng, lo, up),
        Init::Kaiming {
            dist,
            fan,
            non_linearity,
        } => {
            let std = non_linearity.gain() / (fan.for_shape(shape) as f64).sqrt();
            match dist {
                NormalOrUniform::Uniform => {
                    let bound = 3f64.sqrt() * std;
                    uniform(rng, -bound, bound)
                }
                NormalOrUniform::Normal => normal(rng, 0.0, std),
            }
        }
    }
}

impl SimpleBackend for SeededVarMap {
    fn get(
        &self,
        s: Shape,
        name: &str,
        h: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let mut data = self.varmap.data().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(var) = data.get(name) {
            if var.shape() != &s {
                candle_core::bail!("shape mismatch on {name}: {s:?} <> {:?}", var.shape())
            }
            return Ok(var.as_tensor().clone());
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ name_hash(name));
        let values = draw(h, &s, &mut rng);
        let t = Tensor::from_vec(values, &s, &Device::Cpu)?
            .to_dtype(dtype)?
            .to_device(dev)?;
        let var = Var::from_tensor(&t)?;
        let out = var.as_tensor().clone();
        data.insert(name.to_string(), var);
        Ok(out)
    }

    fn get_unchecked(
        &self,
        name: &str,
        _dtype: DType,
        _dev: &Device,
    ) -> candle_core::Result<Tensor> {
        candle_core::bail!("`get_unchecked` needs a shape to create `{name}`; use `get`")
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.varmap
            .data()
            .lock()
            .map(|d| d.contains_key(name))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_weights_any_order() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let (a, b, c) = (VarMap::new(), VarMap::new(), VarMap::new());
        let va = seeded_var_builder(&a, 3, DType::F32, &dev);
        let vb = seeded_var_builder(&b, 3, DType::F32, &dev);
        let vc = seeded_var_builder(&c, 4, DType::F32, &dev);
        let x1 = candle_nn::linear(4, 3, va.pp("x"))?;
        let _ = candle_nn::linear(2, 2, va.pp("y"))?;
        let _ = candle_nn::linear(2, 2, vb.pp("y"))?;
        let x2 = candle_nn::linear(4, 3, vb.pp("x"))?;
        let x3 = candle_nn::linear(4, 3, vc.pp("x"))?;
        let w = |l: &candle_nn::Linear| l.weight().flatten_all()?.to_vec1::<f32>();
        assert_eq!(w(&x1)?, w(&x2)?);
        assert_ne!(w(&x1)?, w(&x3)?);
        // candle's linear bias is uniform in +-1/sqrt(fan_in) = +-0.5 here.
        let bias = x1.bias().unwrap().to_vec1::<f32>()?;
        assert!(bias.iter().all(|v| v.abs() <= 0.5));
        assert!(bias.iter().any(|v| v.abs() > 0.05));
        assert_eq!(a.all_vars().len(), 4);
        Ok(())
    }
}
