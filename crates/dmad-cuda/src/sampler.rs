//! A fused sampler update: the DDIM (arXiv:2010.02502) and DPM-Solver++ 2M (arXiv:2211.01095)
//! steps in one kernel over the batch, instead of a chain of elementwise candle ops.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};
use dmad_core::PredictionType;

use crate::util::{cpu_f32, cpu_store, supported};
use crate::{Error, Result};

/// Per-sample coefficients of the fused update
///
/// ```text
/// x0  = k0 x + k1 m            (clamped to [-clip, clip] when clip is set)
/// eps = k2 x + k3 m
/// out = k4 x + k5 x0 + k6 eps + k7 aux
/// ```
///
/// where `x` is the sample, `m` the model output and `aux` the noise (DDIM with `eta > 0`) or
/// the previous step's `x0` (DPM-Solver++ 2M).
#[derive(Debug, Clone, PartialEq)]
pub struct StepCoefs {
    /// `[k0, ..., k7]` per sample.
    pub k: Vec<[f64; 8]>,
    /// The clamp bound of `x0`, if any.
    pub clip: Option<f64>,
}

/// `x0` and `eps` as linear combinations of `(x, m)` at `alpha_bar = a` (diffusers' forms).
fn x0_eps(kind: PredictionType, a: f64) -> ([f64; 2], [f64; 2]) {
    let (sa, s1) = (a.sqrt(), (1.0 - a).sqrt());
    match kind {
        PredictionType::Epsilon => ([1.0 / sa, -s1 / sa], [0.0, 1.0]),
        PredictionType::VPrediction => ([sa, -s1], [s1, sa]),
        _ => ([0.0, 1.0], [1.0 / s1, -sa / s1]),
    }
}

impl StepCoefs {
    /// The DDIM step (eq. 12) from `alpha_bar_t` to `alpha_bar_prev` per sample, with
    /// stochasticity `eta` (then `aux` is the noise) and an optional clamp of `x0`; the same
    /// update as `dmad_diffusion::DdimSampler::step`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the two slices differ in length or a value is outside
    /// `(0, 1]`.
    pub fn ddim(
        prediction: PredictionType,
        alpha_bar_t: &[f64],
        alpha_bar_prev: &[f64],
        eta: f64,
        clip: Option<f64>,
    ) -> Result<Self> {
        if alpha_bar_t.len() != alpha_bar_prev.len() {
            return Err(Error::InvalidConfig {
                field: "alpha_bar_prev",
                reason: format!(
                    "has {} values for {} samples",
                    alpha_bar_prev.len(),
                    alpha_bar_t.len()
                ),
            });
        }
        let ok = |v: &f64| *v > 0.0 && *v <= 1.0;
        if !alpha_bar_t.iter().chain(alpha_bar_prev).all(ok) {
            return Err(Error::InvalidConfig {
                field: "alpha_bar",
                reason: "every value must be in (0, 1]".into(),
            });
        }
        let k = alpha_bar_t
            .iter()
            .zip(alpha_bar_prev)
            .map(|(&a, &ap)| {
                let (x0c, epsc) = x0_eps(prediction, a);
                let var = ((1.0 - ap) / (1.0 - a)) * (1.0 - a / ap);
                let std = eta * var.sqrt();
                let dir = (1.0 - ap - std * std).max(0.0).sqrt();
                [x0c[0], x0c[1], epsc[0], epsc[1], 0.0, ap.sqrt(), dir, std]
            })
            .collect();
        Ok(Self { k, clip })
    }

    /// The DPM-Solver++ 2M step between the variance-exploding sigmas `sigma_s0 -> sigma_t`
    /// per sample (diffusers' `DPMSolverMultistepScheduler`, `algorithm_type="dpmsolver++"`,
    /// `solver_order=2`, midpoint). `sigma_s1` is the previous step's sigma for a second-order
    /// step (then `aux` is the previous step's `x0`), `None` for a first-order step; the same
    /// update as `dmad_diffusion::DpmSolverSampler::step`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the slices differ in length.
    pub fn dpm_solver_pp(
        prediction: PredictionType,
        sigma_s1: &[Option<f64>],
        sigma_s0: &[f64],
        sigma_t: &[f64],
    ) -> Result<Self> {
        if sigma_s1.len() != sigma_s0.len() || sigma_t.len() != sigma_s0.len() {
            return Err(Error::InvalidConfig {
                field: "sigma_s1, sigma_t",
                reason: "need one value per sample each".into(),
            });
        }
        let asl = |s: f64| {
            let alpha = 1.0 / (s * s + 1.0).sqrt();
            let sigma = s * alpha;
            (alpha, sigma, alpha.ln() - sigma.ln())
        };
        let k = (0..sigma_s0.len())
            .map(|b| {
                let (alpha_s, sigma_s, lambda_s0) = asl(sigma_s0[b]);
                let (cx, co) = match prediction {
                    PredictionType::Epsilon => (1.0 / alpha_s, -sigma_s / alpha_s),
                    PredictionType::VPrediction => (alpha_s, -sigma_s),
                    _ => (0.0, 1.0),
                };
                let (alpha_t, sigma_t, lambda_t) = asl(sigma_t[b]);
                let h = lambda_t - lambda_s0;
                let bcoef = alpha_t * ((-h).exp() - 1.0);
                let k2 = match sigma_s1[b] {
                    Some(s1) => 0.5 * bcoef / ((lambda_s0 - asl(s1).2) / h),
                    None => 0.0,
                };
                let kx = if sigma_t == 0.0 {
                    0.0
                } else {
                    sigma_t / sigma_s
                };
                [cx, co, 0.0, 0.0, kx, -(bcoef + k2), 0.0, k2]
            })
            .collect();
        Ok(Self { k, clip: None })
    }
}

#[derive(Debug, Clone)]
struct StepOp {
    k: Vec<f32>,
    clip: f32,
    want_x0: bool,
}

impl StepOp {
    /// The CPU twin of `step_*`.
    fn run(&self, x: &[f32], m: &[f32], aux: &[f32]) -> Vec<f32> {
        let n = x.len();
        let batch = self.k.len() / 8;
        let per = n / batch.max(1);
        let mut out = vec![0.0f32; if self.want_x0 { 2 * n } else { n }];
        for i in 0..n {
            let k = &self.k[8 * (i / per)..8 * (i / per) + 8];
            let mut x0 = k[0] * x[i] + k[1] * m[i];
            if self.clip > 0.0 {
                x0 = x0.clamp(-self.clip, self.clip);
            }
            let eps = k[2] * x[i] + k[3] * m[i];
            let mut o = k[4] * x[i] + k[5] * x0 + k[6] * eps;
            if k[7] != 0.0 {
                o += k[7] * aux[i];
            }
            out[i] = o;
            if self.want_x0 {
                out[n + i] = x0;
            }
        }
        out
    }

    fn out_shape(&self, l: &Layout) -> Shape {
        if self.want_x0 {
            let mut d = vec![2];
            d.extend_from_slice(l.dims());
            Shape::from(d)
        } else {
            l.shape().clone()
        }
    }
}

impl CustomOp3 for StepOp {
    fn name(&self) -> &'static str {
        "dmad-cuda-sampler-step"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = cpu_f32(s1, l1, self.name())?;
        let m = cpu_f32(s2, l2, self.name())?;
        let aux = cpu_f32(s3, l3, self.name())?;
        Ok((
            cpu_store(self.run(&x, &m, &aux), s1.dtype()),
            self.out_shape(l1),
        ))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let out = crate::cuda::sampler_step(
            (s1, l1),
            (s2, l2),
            (s3, l3),
            &self.k,
            self.clip,
            self.want_x0,
        )?;
        Ok((out, self.out_shape(l1)))
    }
}

/// One fused sampler update (see [`StepCoefs`]) on this crate's kernels: CUDA on a CUDA
/// device, the CPU twin on the CPU. Returns the next sample and, when `want_x0`, the
/// (clamped) `x0` prediction (DPM-Solver++ keeps it for its next step). Not differentiable
/// (sampling runs without autograd).
///
/// # Shapes
/// `sample`, `model_output`, `aux`: `[batch, ...]`, one shape; `coefs.k`: `batch` entries.
///
/// # Errors
/// [`Error::ShapeMismatch`] for differing shapes or a coefficient count that is not the
/// batch, [`Error::InvalidConfig`] when the coefficients use `aux` and none is given,
/// [`Error::Unsupported`] for dtypes other than f32 and bf16 or mixed dtypes.
pub fn sampler_step(
    sample: &Tensor,
    model_output: &Tensor,
    aux: Option<&Tensor>,
    coefs: &StepCoefs,
    want_x0: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    let batch = sample.dims().first().copied().unwrap_or(0);
    for (t, what) in [
        (Some(model_output), "sampler_step: model_output"),
        (aux, "sampler_step: aux"),
    ] {
        if let Some(t) = t {
            if t.dims() != sample.dims() {
                return Err(Error::ShapeMismatch {
                    context: what,
                    expected: format!("{:?} (the sample's shape)", sample.dims()),
                    got: t.dims().to_vec(),
                });
            }
            if t.dtype() != sample.dtype() {
                return Err(Error::Unsupported("sampler_step: mixed dtypes"));
            }
        }
    }
    if sample.rank() == 0 || coefs.k.len() != batch {
        return Err(Error::ShapeMismatch {
            context: "sampler_step: coefs.k (one entry per sample)",
            expected: format!("{batch} entries for a [batch, ...] sample"),
            got: vec![coefs.k.len()],
        });
    }
    if !supported(sample.dtype()) {
        return Err(Error::Unsupported("sampler_step takes f32 or bf16 tensors"));
    }
    if aux.is_none() && coefs.k.iter().any(|k| k[7] != 0.0) {
        return Err(Error::InvalidConfig {
            field: "aux",
            reason: "the coefficients use aux (k7 != 0: DDIM's noise for eta > 0, or \
                     DPM-Solver++'s previous x0) but none was given"
                .into(),
        });
    }
    let k: Vec<f32> = coefs.k.iter().flat_map(|k| k.map(|v| v as f32)).collect();
    let op = StepOp {
        k,
        clip: coefs.clip.map_or(0.0, |c| c as f32),
        want_x0,
    };
    let x = sample.contiguous()?;
    let aux = match aux {
        Some(a) => a.contiguous()?,
        None => x.clone(),
    };
    let y = x.apply_op3_no_bwd(&model_output.contiguous()?, &aux, &op)?;
    if want_x0 {
        Ok((y.get(0)?, Some(y.get(1)?)))
    } else {
        Ok((y, None))
    }
}
