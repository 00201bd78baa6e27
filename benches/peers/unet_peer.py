#!/usr/bin/env python3
"""PyTorch + diffusers peer of examples/unet_throughput.rs (issue 5, Performance).

The same U-Net: diffusers UNet2DModel, block_out_channels (32, 64, 128), down
(DownBlock2D, AttnDownBlock2D, AttnDownBlock2D), up (AttnUpBlock2D, AttnUpBlock2D, UpBlock2D),
layers_per_block 2, norm_num_groups 32, attention_head_dim 8, 1 grey channel at 64x64.
Training: batch 16 of random data, AdamW lr 1e-4 (weight decay 1e-2, as dmad), MSE on epsilon
with one random timestep per sample (DDPMScheduler.add_noise, 1000 linear betas); one untimed
step, then STEPS timed steps. Sampling: one forward under torch.no_grad() plus one DDIM step
(50-step plan, first timestep), REPS timed runs after one untimed run. 2 threads.

Run: python3 benches/peers/unet_peer.py [--steps 20] [--reps 3]
Tested with torch 2.15.0 and diffusers 0.42.1 (CPU).
Prints one line: "torch train_samples_per_s=.. train_s_per_step=.. sample_images_per_s=..
sample_s_per_step=.. steps=.. reps=.."
"""

import argparse
import sys
import time

import torch
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel

BATCH = 16
SIZE = 64


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = UNet2DModel(
        sample_size=SIZE,
        in_channels=1,
        out_channels=1,
        block_out_channels=(32, 64, 128),
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        layers_per_block=2,
        norm_num_groups=32,
        attention_head_dim=8,
    )
    params = sum(p.numel() for p in model.parameters())
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-2)
    sched = DDPMScheduler(num_train_timesteps=1000)
    data = torch.randn(4 * BATCH, 1, SIZE, SIZE)

    def train_step():
        idx = torch.randint(0, data.shape[0], (BATCH,))
        x0 = data[idx]
        noise = torch.randn_like(x0)
        t = torch.randint(0, 1000, (BATCH,))
        x_t = sched.add_noise(x0, noise, t)
        pred = model(x_t, t).sample
        loss = torch.nn.functional.mse_loss(pred, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    print(
        f"torch: {params} parameters, {torch.get_num_threads()} threads; "
        f"warm-up step, then {args.steps} timed steps",
        file=sys.stderr,
    )
    train_step()
    start = time.perf_counter()
    for i in range(args.steps):
        s0 = time.perf_counter()
        loss = train_step()
        dt = time.perf_counter() - s0
        print(
            f"torch: step {i + 1:>2}/{args.steps}  loss {loss:.4f}  {BATCH / dt:.2f} samples/s",
            file=sys.stderr,
        )
    train_s = time.perf_counter() - start

    model.eval()
    ddim = DDIMScheduler(num_train_timesteps=1000)
    ddim.set_timesteps(50)
    t0 = ddim.timesteps[0]
    x = torch.randn(BATCH, 1, SIZE, SIZE)

    def sample_step():
        with torch.no_grad():
            out = model(x, t0).sample
            return ddim.step(out, t0, x).prev_sample

    sample_step()
    start = time.perf_counter()
    for _ in range(args.reps):
        y = sample_step()
        assert y.shape == x.shape
    sample_s = (time.perf_counter() - start) / args.reps

    print(
        f"torch train_samples_per_s={args.steps * BATCH / train_s:.3f} "
        f"train_s_per_step={train_s / args.steps:.3f} "
        f"sample_images_per_s={BATCH / sample_s:.3f} "
        f"sample_s_per_step={sample_s:.3f} steps={args.steps} reps={args.reps}"
    )


if __name__ == "__main__":
    main()
