#!/usr/bin/env python3
"""Reference trajectories of diffusers' schedulers with the options that change the numbers, for
dmad-diffusion's tests (`crates/dmad-diffusion/tests/scheduler_options.rs`).

Usage (diffusers 0.42.1, PyTorch, numpy; CPU):
    python -m venv venv && venv/bin/pip install diffusers==0.42.1 torch numpy
    venv/bin/python testdata/diffusers/gen_scheduler_options.py > testdata/diffusers/scheduler_options.json

Each case builds one scheduler (DDPMScheduler, DDIMScheduler, DPMSolverMultistepScheduler or
EulerDiscreteScheduler) from keyword arguments and records:
- `scheduler_config`: the scheduler's own `to_json_string()` (a diffusers `scheduler_config.json`,
  kept as text because it may hold `-Infinity`); the Rust test builds its sampler from it;
- `num_inference_steps` and `step_args` (arguments of `step`: DDIM's `eta` and
  `use_clipped_model_output`, Euler's `s_churn`, `s_tmin`, `s_tmax`, `s_noise`);
- `timesteps`, `sigmas` (DPM-Solver and Euler) and `init_noise_sigma` after `set_timesteps`;
- `x_T`: a fixed [2, 2, 4, 4] ([2, 3, 4, 4] for DPM-Solver with a learned variance, which
  diffusers cuts at 3 channels) standard normal draw (seed 7 + case index) times `x_scale`; the
  loop starts from `x_T * init_noise_sigma`;
- per step (tensors as the shortest decimals that round-trip in float32): `t`, `model_input` (after `scale_model_input`), `model_output`, `noise` (the variance
  noise the step used, or null) and `prev_sample`.

The "model" is model_output = 0.3 * x + 0.1 * sin(3 * x + t / 100) of the model input x, computed
in float64 and rounded to float32. For `variance_type` "learned" / "learned_range" the output has
twice the channels: the second half is 0.5 + 0.4 * sin(x + t / 100) (a variance in (0.1, 0.9), or
a log-variance interpolation weight in (-1, 1)). The noise of step k comes from
torch.Generator().manual_seed(1000 + k): drawn here and passed as `variance_noise` (DDIM,
SDE DPM-Solver), or drawn by the scheduler from the same seed (DDPM, Euler with churn).
"""

import json
import platform
import sys

import diffusers
import numpy as np
import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler
from diffusers.utils.torch_utils import randn_tensor

CLASSES = {
    "DDPMScheduler": DDPMScheduler,
    "DDIMScheduler": DDIMScheduler,
    "DPMSolverMultistepScheduler": DPMSolverMultistepScheduler,
    "EulerDiscreteScheduler": EulerDiscreteScheduler,
}

# A made-up trained beta table: quadratic from 1e-4 to 0.02.
TRAINED_BETAS = [1e-4 + (0.02 - 1e-4) * (i / 999.0) ** 2 for i in range(1000)]

DPM = "DPMSolverMultistepScheduler"
EULER = "EulerDiscreteScheduler"
DDIM = "DDIMScheduler"
DDPM = "DDPMScheduler"

# (name, class, kwargs, num_inference_steps, step_args, x_scale)
CASES = [
    # DPM-Solver++ (multistep)
    ("dpm/solver_order=1", DPM, dict(solver_order=1), 10, {}, 1.0),
    ("dpm/solver_order=3/n=20", DPM, dict(solver_order=3), 20, {}, 1.0),
    ("dpm/solver_order=3/n=10", DPM, dict(solver_order=3), 10, {}, 1.0),
    (
        "dpm/solver_order=3/lower_order_final=false/sigma_min",
        DPM,
        dict(solver_order=3, lower_order_final=False, final_sigmas_type="sigma_min"),
        10,
        {},
        1.0,
    ),
    (
        "dpm/lower_order_final=false/sigma_min",
        DPM,
        dict(lower_order_final=False, final_sigmas_type="sigma_min"),
        10,
        {},
        1.0,
    ),
    ("dpm/final_sigmas_type=sigma_min/n=10", DPM, dict(final_sigmas_type="sigma_min"), 10, {}, 1.0),
    ("dpm/final_sigmas_type=sigma_min/n=20", DPM, dict(final_sigmas_type="sigma_min"), 20, {}, 1.0),
    (
        "dpm/euler_at_final/sigma_min/n=20",
        DPM,
        dict(euler_at_final=True, final_sigmas_type="sigma_min"),
        20,
        {},
        1.0,
    ),
    ("dpm/use_karras_sigmas", DPM, dict(use_karras_sigmas=True), 20, {}, 1.0),
    (
        "dpm/use_karras_sigmas/scaled_linear/v_prediction",
        DPM,
        dict(
            use_karras_sigmas=True,
            beta_schedule="scaled_linear",
            beta_start=0.00085,
            beta_end=0.012,
            prediction_type="v_prediction",
        ),
        15,
        {},
        1.0,
    ),
    (
        "dpm/use_karras_sigmas/scaled_linear/order=3",
        DPM,
        dict(
            use_karras_sigmas=True,
            beta_schedule="scaled_linear",
            beta_start=0.00085,
            beta_end=0.012,
            solver_order=3,
        ),
        25,
        {},
        1.0,
    ),
    ("dpm/use_lu_lambdas", DPM, dict(use_lu_lambdas=True), 20, {}, 1.0),
    # 50 steps repeat small timesteps ([..., 2, 1, 1, 0] on Stable Diffusion's schedule).
    (
        "dpm/use_karras_sigmas/scaled_linear/n=50",
        DPM,
        dict(use_karras_sigmas=True, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012),
        50,
        {},
        1.0,
    ),
    ("dpm/use_lu_lambdas/n=50/order=3", DPM, dict(use_lu_lambdas=True, solver_order=3), 50, {}, 1.0),
    ("dpm/use_exponential_sigmas", DPM, dict(use_exponential_sigmas=True), 20, {}, 1.0),
    ("dpm/thresholding", DPM, dict(thresholding=True), 10, {}, 2.0),
    (
        "dpm/thresholding/ratio=0.9/max=3/sample",
        DPM,
        dict(thresholding=True, dynamic_thresholding_ratio=0.9, sample_max_value=3.0, prediction_type="sample"),
        10,
        {},
        2.0,
    ),
    (
        "dpm/thresholding/ratio=0.8/max=2.5/order=3",
        DPM,
        dict(thresholding=True, dynamic_thresholding_ratio=0.8, sample_max_value=2.5, solver_order=3),
        12,
        {},
        3.0,
    ),
    ("dpm/solver_type=heun", DPM, dict(solver_type="heun"), 10, {}, 1.0),
    (
        "dpm/algorithm_type=dpmsolver/sigma_min",
        DPM,
        dict(algorithm_type="dpmsolver", final_sigmas_type="sigma_min"),
        10,
        {},
        1.0,
    ),
    (
        "dpm/algorithm_type=dpmsolver/heun/order=3/thresholding",
        DPM,
        dict(
            algorithm_type="dpmsolver",
            solver_type="heun",
            solver_order=3,
            final_sigmas_type="sigma_min",
            thresholding=True,
            sample_max_value=2.0,
        ),
        20,
        {},
        2.0,
    ),
    ("dpm/algorithm_type=sde-dpmsolver++", DPM, dict(algorithm_type="sde-dpmsolver++"), 10, {}, 1.0),
    (
        "dpm/algorithm_type=sde-dpmsolver++/heun/order=3/n=20",
        DPM,
        dict(algorithm_type="sde-dpmsolver++", solver_type="heun", solver_order=3),
        20,
        {},
        1.0,
    ),
    (
        "dpm/algorithm_type=sde-dpmsolver/sigma_min",
        DPM,
        dict(algorithm_type="sde-dpmsolver", final_sigmas_type="sigma_min"),
        10,
        {},
        1.0,
    ),
    (
        "dpm/algorithm_type=sde-dpmsolver/heun/sigma_min",
        DPM,
        dict(algorithm_type="sde-dpmsolver", solver_type="heun", final_sigmas_type="sigma_min"),
        10,
        {},
        1.0,
    ),
    (
        "dpm/lambda_min_clipped=-5.1/squaredcos_cap_v2",
        DPM,
        dict(lambda_min_clipped=-5.1, beta_schedule="squaredcos_cap_v2"),
        10,
        {},
        1.0,
    ),
    (
        "dpm/lambda_min_clipped=-5.1/squaredcos_cap_v2/trailing",
        DPM,
        dict(lambda_min_clipped=-5.1, beta_schedule="squaredcos_cap_v2", timestep_spacing="trailing"),
        10,
        {},
        1.0,
    ),
    (
        "dpm/lambda_min_clipped=-5.1/squaredcos_cap_v2/leading",
        DPM,
        dict(lambda_min_clipped=-5.1, beta_schedule="squaredcos_cap_v2", timestep_spacing="leading", steps_offset=1),
        10,
        {},
        1.0,
    ),
    ("dpm/variance_type=learned_range", DPM, dict(variance_type="learned_range"), 10, {}, 1.0),
    (
        "dpm/rescale_betas_zero_snr/v_prediction/trailing",
        DPM,
        dict(rescale_betas_zero_snr=True, prediction_type="v_prediction", timestep_spacing="trailing"),
        10,
        {},
        1.0,
    ),
    ("dpm/trained_betas", DPM, dict(trained_betas=TRAINED_BETAS), 10, {}, 1.0),
    # Euler
    ("euler/use_karras_sigmas", EULER, dict(use_karras_sigmas=True), 20, {}, 1.0),
    (
        "euler/use_karras_sigmas/leading/offset=1",
        EULER,
        dict(use_karras_sigmas=True, timestep_spacing="leading", steps_offset=1),
        20,
        {},
        1.0,
    ),
    (
        "euler/use_karras_sigmas/trailing/v_prediction",
        EULER,
        dict(use_karras_sigmas=True, timestep_spacing="trailing", prediction_type="v_prediction"),
        10,
        {},
        1.0,
    ),
    (
        "euler/use_karras_sigmas/sigma_min=0.1/sigma_max=10",
        EULER,
        dict(use_karras_sigmas=True, sigma_min=0.1, sigma_max=10.0),
        10,
        {},
        1.0,
    ),
    (
        "euler/use_karras_sigmas/final_sigmas_type=sigma_min",
        EULER,
        dict(use_karras_sigmas=True, final_sigmas_type="sigma_min"),
        10,
        {},
        1.0,
    ),
    ("euler/final_sigmas_type=sigma_min", EULER, dict(final_sigmas_type="sigma_min"), 10, {}, 1.0),
    ("euler/leading", EULER, dict(timestep_spacing="leading"), 10, {}, 1.0),
    ("euler/leading/offset=1/sample", EULER, dict(timestep_spacing="leading", steps_offset=1, prediction_type="sample"), 10, {}, 1.0),
    ("euler/trailing", EULER, dict(timestep_spacing="trailing"), 10, {}, 1.0),
    ("euler/use_exponential_sigmas", EULER, dict(use_exponential_sigmas=True), 10, {}, 1.0),
    (
        "euler/use_exponential_sigmas/sigma_min=0.05",
        EULER,
        dict(use_exponential_sigmas=True, sigma_min=0.05),
        10,
        {},
        1.0,
    ),
    ("euler/interpolation_type=log_linear", EULER, dict(interpolation_type="log_linear"), 10, {}, 1.0),
    (
        "euler/s_churn",
        EULER,
        dict(),
        20,
        dict(s_churn=1.0, s_tmin=0.5, s_tmax=50.0, s_noise=1.003),
        1.0,
    ),
    (
        "euler/s_churn/v_prediction/karras",
        EULER,
        dict(prediction_type="v_prediction", use_karras_sigmas=True),
        10,
        dict(s_churn=4.0),
        1.0,
    ),
    (
        "euler/rescale_betas_zero_snr/v_prediction/trailing",
        EULER,
        dict(rescale_betas_zero_snr=True, prediction_type="v_prediction", timestep_spacing="trailing"),
        10,
        {},
        1.0,
    ),
    # DDIM
    ("ddim/thresholding", DDIM, dict(thresholding=True), 10, {}, 2.0),
    (
        "ddim/thresholding/ratio=0.9/max=2.5/v_prediction",
        DDIM,
        dict(thresholding=True, dynamic_thresholding_ratio=0.9, sample_max_value=2.5, prediction_type="v_prediction"),
        10,
        {},
        3.0,
    ),
    (
        "ddim/thresholding/use_clipped_model_output/eta=0.5",
        DDIM,
        dict(thresholding=True, sample_max_value=2.0),
        10,
        dict(eta=0.5, use_clipped_model_output=True),
        2.0,
    ),
    (
        "ddim/clip_sample/use_clipped_model_output",
        DDIM,
        dict(clip_sample=True, clip_sample_range=1.5),
        10,
        dict(use_clipped_model_output=True),
        2.0,
    ),
    ("ddim/clip_sample=false", DDIM, dict(clip_sample=False), 10, {}, 2.0),
    ("ddim/set_alpha_to_one=false", DDIM, dict(set_alpha_to_one=False, clip_sample=False), 10, {}, 1.0),
    (
        "ddim/set_alpha_to_one=false/sample/eta=1",
        DDIM,
        dict(set_alpha_to_one=False, clip_sample=False, prediction_type="sample"),
        10,
        dict(eta=1.0),
        1.0,
    ),
    ("ddim/linspace/offset=1", DDIM, dict(timestep_spacing="linspace", steps_offset=1), 10, {}, 1.0),
    ("ddim/leading/offset=1", DDIM, dict(timestep_spacing="leading", steps_offset=1), 10, {}, 1.0),
    (
        "ddim/rescale_betas_zero_snr/v_prediction/trailing",
        DDIM,
        dict(rescale_betas_zero_snr=True, prediction_type="v_prediction", timestep_spacing="trailing", clip_sample=False),
        10,
        {},
        1.0,
    ),
    ("ddim/trained_betas", DDIM, dict(trained_betas=TRAINED_BETAS, clip_sample=False), 10, {}, 1.0),
    # DDPM
    ("ddpm/thresholding", DDPM, dict(thresholding=True), 10, {}, 2.0),
    (
        "ddpm/thresholding/ratio=0.9/max=3/sample",
        DDPM,
        dict(thresholding=True, dynamic_thresholding_ratio=0.9, sample_max_value=3.0, prediction_type="sample"),
        10,
        {},
        3.0,
    ),
    ("ddpm/clip_sample=false", DDPM, dict(clip_sample=False), 10, {}, 2.0),
    ("ddpm/clip_sample_range=2", DDPM, dict(clip_sample_range=2.0), 10, {}, 3.0),
    ("ddpm/variance_type=fixed_small_log", DDPM, dict(variance_type="fixed_small_log", clip_sample=False), 10, {}, 1.0),
    ("ddpm/variance_type=fixed_large", DDPM, dict(variance_type="fixed_large", clip_sample=False), 10, {}, 1.0),
    (
        "ddpm/variance_type=fixed_large/trailing",
        DDPM,
        dict(variance_type="fixed_large", clip_sample=False, timestep_spacing="trailing"),
        10,
        {},
        1.0,
    ),
    ("ddpm/variance_type=learned", DDPM, dict(variance_type="learned", clip_sample=False), 10, {}, 1.0),
    ("ddpm/variance_type=learned_range", DDPM, dict(variance_type="learned_range", clip_sample=False), 10, {}, 1.0),
    (
        "ddpm/variance_type=learned_range/v_prediction/squaredcos_cap_v2",
        DDPM,
        dict(
            variance_type="learned_range",
            clip_sample=False,
            prediction_type="v_prediction",
            beta_schedule="squaredcos_cap_v2",
        ),
        10,
        {},
        1.0,
    ),
    ("ddpm/sigmoid/linspace", DDPM, dict(beta_schedule="sigmoid", timestep_spacing="linspace", clip_sample=False), 10, {}, 1.0),
    ("ddpm/trained_betas", DDPM, dict(trained_betas=TRAINED_BETAS, clip_sample=False), 10, {}, 1.0),
]


def model_fn(x: torch.Tensor, t: float) -> torch.Tensor:
    xd = x.double()
    return (0.3 * xd + 0.1 * torch.sin(3.0 * xd + t / 100.0)).float()


def variance_fn(x: torch.Tensor, t: float) -> torch.Tensor:
    xd = x.double()
    return (0.5 + 0.4 * torch.sin(xd + t / 100.0)).float()


def f32(t):
    """A float32 tensor (or number) as nested lists of the shortest decimals that round-trip in
    float32 (half the text of float64 reprs, same values)."""
    if isinstance(t, torch.Tensor):
        t = t.tolist()
    if isinstance(t, list):
        return [f32(v) for v in t]
    return float(str(np.float32(t)))


def step_noise(k: int, shape) -> torch.Tensor:
    return randn_tensor(shape, generator=torch.Generator().manual_seed(1000 + k), dtype=torch.float32)


def run_case(index, name, cls_name, kwargs, n, step_args, x_scale):
    cls = CLASSES[cls_name]
    s = cls(**kwargs)
    s.set_timesteps(n)
    config_text = s.to_json_string()
    learned = kwargs.get("variance_type") in ("learned", "learned_range")
    # DPMSolverMultistepScheduler keeps the first 3 channels of a learned-variance output.
    channels = 3 if learned and cls is DPMSolverMultistepScheduler else 2
    gen = torch.Generator().manual_seed(7 + index)
    x_t = x_scale * torch.randn((2, channels, 4, 4), generator=gen, dtype=torch.float32)
    init_sigma = float(s.init_noise_sigma)
    x = x_t * s.init_noise_sigma
    stochastic_dpm = kwargs.get("algorithm_type", "").startswith("sde-")
    steps = []
    for k, t in enumerate(s.timesteps):
        tf = float(t)
        x_in = s.scale_model_input(x, t)
        out = model_fn(x_in, tf)
        if learned:
            out = torch.cat([out, variance_fn(x_in, tf)], dim=1)
        noise = None
        if cls is DDPMScheduler:
            if int(t) > 0:
                noise = step_noise(k, x.shape)
            x = s.step(out, t, x, generator=torch.Generator().manual_seed(1000 + k)).prev_sample
        elif cls is DDIMScheduler:
            eta = step_args.get("eta", 0.0)
            if eta > 0:
                noise = step_noise(k, x.shape)
            x = s.step(
                out,
                t,
                x,
                eta=eta,
                use_clipped_model_output=step_args.get("use_clipped_model_output", False),
                variance_noise=noise,
            ).prev_sample
        elif cls is DPMSolverMultistepScheduler:
            if stochastic_dpm:
                noise = step_noise(k, x.shape)
            x = s.step(out, t, x, variance_noise=noise).prev_sample
        else:
            if step_args.get("s_churn", 0.0) > 0:
                noise = step_noise(k, x.shape)
            x = s.step(out, t, x, generator=torch.Generator().manual_seed(1000 + k), **step_args).prev_sample
        steps.append(
            {
                "t": tf,
                "model_input": f32(x_in),
                "model_output": f32(out),
                "noise": None if noise is None else f32(noise),
                "prev_sample": f32(x),
            }
        )
        assert torch.isfinite(x).all(), f"{name}: non-finite sample at step {k}"
    sigmas = getattr(s, "sigmas", None)
    return {
        "name": name,
        "class_name": cls_name,
        "scheduler_config": config_text,
        "num_inference_steps": n,
        "step_args": step_args,
        "timesteps": [float(t) for t in s.timesteps],
        "sigmas": None if cls in (DDPMScheduler, DDIMScheduler) else f32(sigmas),
        "init_noise_sigma": init_sigma,
        "x_T": f32(x_t),
        "steps": steps,
    }


def main() -> None:
    torch.set_num_threads(1)
    out = {
        "diffusers_version": diffusers.__version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "generator": "testdata/diffusers/gen_scheduler_options.py",
        "model_fn": "model_output = 0.3*x + 0.1*sin(3*x + t/100) of the model input, float64 rounded to float32; "
        "learned variance channels (appended on dim 1): 0.5 + 0.4*sin(x + t/100)",
        "note": "start from x_T * init_noise_sigma; noise is the variance noise the step used (null if none)",
        "cases": [run_case(i, *case) for i, case in enumerate(CASES)],
    }
    json.dump(out, sys.stdout, allow_nan=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
