#!/usr/bin/env python3
"""PyTorch peer of benches/train_step.rs: one training step of the feature-space MLP denoiser.

The same network as dmad's MlpDenoiser (width W, 3 residual blocks, 152 inputs): a sinusoidal
timestep embedding (128, flip_sin_to_cos) through Linear(128, W), SiLU, Linear(W, W), SiLU;
proj_in Linear(152, W); each block h + Linear(W, W)(SiLU(Linear(W, W)(LayerNorm(h)) +
Linear(W, W)(temb))); LayerNorm, SiLU, Linear(W, 152). Training as dmad's Trainer does it:
batch 512 drawn from 20000 random rows, DDPM add_noise (1000 linear betas), MSE on epsilon,
global gradient-norm clipping at 1, AdamW lr 1e-3 (weight decay 1e-2), EMA of the weights
(decay warm-up min(0.999, (1 + n) / (10 + n))). One timestep per sample, or K timesteps shared
by 512 / K samples each (--distinct K). One untimed step, then STEPS timed steps. 2 threads.

Run: python3 benches/peers/mlp_peer.py [--width 512] [--steps 30] [--distinct 32]
Prints one line: "torch width=.. distinct=.. ms_per_step=.."
"""

import argparse
import math
import time

import torch
from torch import nn

FEATURES = 152
BATCH = 512


class Mlp(nn.Module):
    def __init__(self, width, depth=3, temb=128):
        super().__init__()
        self.temb = temb
        self.t1 = nn.Linear(temb, width)
        self.t2 = nn.Linear(width, width)
        self.proj_in = nn.Linear(FEATURES, width)
        self.blocks = nn.ModuleList(
            nn.ModuleDict(
                {
                    "norm": nn.LayerNorm(width),
                    "linear_1": nn.Linear(width, width),
                    "time_proj": nn.Linear(width, width),
                    "linear_2": nn.Linear(width, width),
                }
            )
            for _ in range(depth)
        )
        self.norm_out = nn.LayerNorm(width)
        self.proj_out = nn.Linear(width, FEATURES)

    def embed(self, t):
        half = self.temb // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        args = t.float()[:, None] * freqs[None]
        e = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
        return nn.functional.silu(self.t2(nn.functional.silu(self.t1(e))))

    def forward(self, x, t):
        temb = self.embed(t)
        h = self.proj_in(x)
        for b in self.blocks:
            z = b["linear_1"](b["norm"](h)) + b["time_proj"](temb)
            h = h + b["linear_2"](nn.functional.silu(z))
        return self.proj_out(nn.functional.silu(self.norm_out(h)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--distinct", type=int, default=0, help="0: one timestep per sample")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = Mlp(args.width)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    ema = [p.detach().clone() for p in model.parameters()]
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    alpha_bar = torch.cumprod(1 - betas, 0).float()
    data = torch.randn(20000, FEATURES)
    updates = 0

    def step():
        nonlocal updates
        x0 = data[torch.randint(0, data.shape[0], (BATCH,))]
        if args.distinct:
            drawn = torch.randint(0, 1000, (args.distinct,))
            t = drawn[torch.arange(BATCH) % args.distinct]
        else:
            t = torch.randint(0, 1000, (BATCH,))
        noise = torch.randn_like(x0)
        a = alpha_bar[t][:, None]
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
        loss = nn.functional.mse_loss(model(x_t, t), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        d = min(0.999, (1 + updates) / (10 + updates))
        with torch.no_grad():
            torch._foreach_lerp_(ema, [p.detach() for p in model.parameters()], 1 - d)
        updates += 1

    step()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    ms = (time.perf_counter() - t0) / args.steps * 1e3
    print(f"torch width={args.width} distinct={args.distinct} ms_per_step={ms:.1f}")


if __name__ == "__main__":
    main()
