"""Writes the small synthetic image set of the feature-space tests (MVTec AD layout).

Grey 64x64 images of diagonal stripes with a random phase and mild noise; each test defect is
a bright disc (radius 5 to 7 px) at a random position at least 12 px from the border, with its
mask in ground_truth/defect/NNN_mask.png (255 = defect). Made by this script with numpy and
Pillow, seed 17; CC0 like the rest of the project's own synthetic data.

    python3 testdata/data/feature-space/generate.py
"""
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent
SIDE = 64
rng = np.random.default_rng(17)


def stripes():
    y, x = np.mgrid[0:SIDE, 0:SIDE]
    phase = rng.uniform(0, 2 * np.pi)
    img = 0.5 + 0.25 * np.sin(2 * np.pi * (x + y) / 10.0 + phase)
    img += rng.normal(0, 0.03, img.shape)
    return img


def save(img, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8)).save(path)


for i in range(10):
    save(stripes(), ROOT / "train" / "good" / f"{i:03}.png")
for i in range(4):
    save(stripes(), ROOT / "test" / "good" / f"{i:03}.png")
for i in range(4):
    img = stripes()
    cy, cx = rng.integers(12, SIDE - 12, size=2)
    r = rng.uniform(5, 7)
    y, x = np.mgrid[0:SIDE, 0:SIDE]
    disc = (y - cy) ** 2 + (x - cx) ** 2 <= r * r
    img[disc] = 1.0
    save(img, ROOT / "test" / "defect" / f"{i:03}.png")
    save(disc.astype(float), ROOT / "ground_truth" / "defect" / f"{i:03}_mask.png")
