//! Mixed precision: networks that compute in bf16 (or f16) over f32 master weights.
//!
//! A network built from [`training_var_builder`] reads each weight as a tracked cast of its f32
//! variable: the forward pass runs in the low precision, and `loss.backward()` carries the
//! gradients through the cast back to the f32 variables, which the optimiser updates in f32
//! (the master weights). Rebuild the network (cheap: it only takes tensor handles) after each
//! optimiser step so that it reads the updated weights. [`sampling_var_builder`] gives
//! untracked low-precision copies for sampling and scoring.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

fn tensors(varmap: &VarMap, detach: bool) -> HashMap<String, Tensor> {
    let data = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
    data.iter()
        .map(|(k, v)| {
            let t = v.as_tensor();
            (k.clone(), if detach { t.detach() } else { t.clone() })
        })
        .collect()
}

/// A `VarBuilder` whose tensors are `varmap`'s f32 variables cast to `dtype` with tracked
/// casts: a network built from it computes in `dtype` and its gradients reach the variables.
///
/// # Example
/// ```
/// use candle_core::{DType, Device, Module, Tensor};
/// let vm = candle_nn::VarMap::new();
/// let lin = candle_nn::linear(4, 2, candle_nn::VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu))?;
/// let bf = candle_nn::linear(4, 2, dmad_cuda::training_var_builder(&vm, DType::BF16, &Device::Cpu))?;
/// let x = Tensor::ones((3, 4), DType::BF16, &Device::Cpu)?;
/// let loss = bf.forward(&x)?.to_dtype(DType::F32)?.sum_all()?;
/// let grads = loss.backward()?;
/// let w = &vm.all_vars()[0];
/// assert_eq!(grads.get(w).unwrap().dtype(), DType::F32); // the master weight's gradient
/// # let _ = lin;
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn training_var_builder(varmap: &VarMap, dtype: DType, device: &Device) -> VarBuilder<'static> {
    VarBuilder::from_tensors(tensors(varmap, false), dtype, device)
}

/// A `VarBuilder` with untracked `dtype` copies of `varmap`'s variables, for sampling and
/// scoring without an autograd graph.
pub fn sampling_var_builder(varmap: &VarMap, dtype: DType, device: &Device) -> VarBuilder<'static> {
    VarBuilder::from_tensors(tensors(varmap, true), dtype, device)
}
