"""Writes periodic-discord.csv: a synthetic periodic series with one discord, for the
imputation detector's tests (CC0, ours). numpy only; seed 3.

2000 points of a period-40 wave (a sine and its second harmonic) with mild noise; points
1500-1519 (half a period) are replaced by a flat segment at the wave's mean level plus noise,
a shape discord whose values stay inside the normal range (a level check does not find it).
Columns `data,label` (label 1 on the discord), as the labelled-CSV layout (Yahoo): the first
30% of points train.
"""
import numpy as np

rng = np.random.default_rng(3)
n, period = 2000, 40
t = np.arange(n)
x = np.sin(2 * np.pi * t / period) + 0.4 * np.sin(4 * np.pi * t / period)
x += 0.05 * rng.standard_normal(n)
label = np.zeros(n, dtype=int)
begin, end = 1500, 1520
x[begin:end] = 0.05 * rng.standard_normal(end - begin)
label[begin:end] = 1
with open("periodic-discord.csv", "w") as f:
    f.write("data,label\n")
    for v, l in zip(x, label):
        f.write(f"{v:.5f},{l}\n")
