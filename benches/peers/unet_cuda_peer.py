#!/usr/bin/env python3
"""PyTorch + diffusers peer of crates/dmad-cuda/benches/gpu.rs (issue 11, Performance), on CUDA.

The network is the image defaults' U-Net of dmad (`DetectorConfig::for_images(3)`) with the
method's modules off, as diffusers' UNet2DModel: sample_size 256, 3 channels in and out,
block_out_channels (32, 64, 64), down (DownBlock2D, DownBlock2D, AttnDownBlock2D), up
(AttnUpBlock2D, UpBlock2D, UpBlock2D), layers_per_block 1, norm_num_groups 8,
attention_head_dim 8, diffusers' defaults otherwise (mid block with attention, SiLU).
Random weights (seed 0), batch 32 at 256x256, eval mode under torch.no_grad().

- unet step: one forward at t = 500.
- ddim10: x_t = add_noise(x0, noise, 900), then the 10 steps of DDIMScheduler.set_timesteps(10)
  (900, 800, ..., 0), each one forward plus scheduler.step.

Each is run once untimed, then --reps times; torch.cuda.synchronize() before every clock read.
Prints one line per dtype: "torch <dtype> unet_step_images_per_s=.. ddim10_images_per_s=..
unet_step_s=.. ddim10_s=.. reps=.. tf32=.. sdpa=..".

TF32: PyTorch's default lets cuDNN convolutions use TF32 in f32 (torch.backends.cudnn.allow_tf32
is True) but not matmuls; candle uses neither. --no-tf32 turns it off for a like-for-like f32
row; the default keeps PyTorch's defaults (what a user gets). diffusers uses
scaled_dot_product_attention (flash / memory-efficient kernels) when available.

Run (on the GPU machine, in the same session as the dmad bench):
  python3 benches/peers/unet_cuda_peer.py [--reps 10] [--no-tf32] [--dtypes f32,bf16]
Needs torch with CUDA and diffusers (written for diffusers 0.42.1); not run yet.
"""

import argparse
import sys
import time

import torch
from diffusers import DDIMScheduler, UNet2DModel

BATCH = 32
SIZE = 256
CHANNELS = 3


def build(dtype):
    torch.manual_seed(0)
    model = UNet2DModel(
        sample_size=SIZE,
        in_channels=CHANNELS,
        out_channels=CHANNELS,
        block_out_channels=(32, 64, 64),
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        layers_per_block=1,
        norm_num_groups=8,
        attention_head_dim=8,
    )
    return model.to("cuda", dtype=dtype).eval()


def timed(fn, reps):
    fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / reps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--no-tf32", action="store_true")
    ap.add_argument("--dtypes", default="f32,bf16")
    args = ap.parse_args()
    assert torch.cuda.is_available(), "needs a CUDA GPU"
    if args.no_tf32:
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    print(
        f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}, "
        f"cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}",
        file=sys.stderr,
    )
    dtypes = {"f32": torch.float32, "bf16": torch.bfloat16}
    for name in args.dtypes.split(","):
        dtype = dtypes[name]
        model = build(dtype)
        g = torch.Generator(device="cuda").manual_seed(0)
        x0 = torch.randn(BATCH, CHANNELS, SIZE, SIZE, device="cuda", generator=g)
        noise = torch.randn(BATCH, CHANNELS, SIZE, SIZE, device="cuda", generator=g)
        t = torch.full((BATCH,), 500, device="cuda", dtype=torch.long)
        ddim = DDIMScheduler(num_train_timesteps=1000)
        ddim.set_timesteps(10)

        @torch.no_grad()
        def step():
            return model(x0.to(dtype), t).sample

        @torch.no_grad()
        def ddim10():
            # The sampler state stays in f32, the network runs in `dtype` (as dmad's bench).
            x = ddim.add_noise(x0, noise, ddim.timesteps[:1].repeat(BATCH).cpu()).to("cuda")
            for tt in ddim.timesteps:
                eps = model(x.to(dtype), tt.to("cuda")).sample.float()
                x = ddim.step(eps, tt, x).prev_sample
            return x

        s_step = timed(step, args.reps)
        s_ddim = timed(ddim10, max(1, args.reps // 3))
        print(
            f"torch {name} unet_step_images_per_s={BATCH / s_step:.2f} "
            f"ddim10_images_per_s={BATCH / s_ddim:.2f} unet_step_s={s_step:.4f} "
            f"ddim10_s={s_ddim:.4f} reps={args.reps} tf32={torch.backends.cudnn.allow_tf32} "
            f"sdpa={hasattr(torch.nn.functional, 'scaled_dot_product_attention')}",
            flush=True,
        )
        del model
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
