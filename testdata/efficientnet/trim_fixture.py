"""Trim ../shared/fixtures/efficientnet/lite0_brick.json into the small files the tests read.

Usage (from the workspace root):
    python3 testdata/efficientnet/trim_fixture.py ../shared/fixtures/efficientnet/lite0_brick.json

The fixture's `input` is 3 x 224 x 224 float32 (3 MB of JSON). It is the grey image
skimage `brick.png` resized to 224 x 224 (8-bit values), repeated to RGB, divided by 255 and
normalised with the ImageNet mean and std. This script recovers the 8-bit grey image, checks
that re-normalising it in float32 reproduces the stored input bit for bit, and writes:

- `brick224_gray.u8`: the 224 x 224 grey image, row-major, one byte per pixel (50176 bytes);
- `lite0_brick_expected.json`: every key of the fixture except `input`, unchanged.
"""
import json
import sys
from pathlib import Path

import numpy as np

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def main(src: str) -> None:
    out_dir = Path(__file__).resolve().parent
    fixture = json.loads(Path(src).read_text())
    x = np.array(fixture["input"], dtype=np.float32)
    assert x.shape == (1, 3, 224, 224), x.shape
    u = np.round((x[0, 0].astype(np.float64) * 0.229 + 0.485) * 255.0)
    assert u.min() >= 0 and u.max() <= 255
    grey = u.astype(np.uint8)
    g = (grey.astype(np.float32) / np.float32(255.0))[None]
    again = (g - MEAN[:, None, None]) / STD[:, None, None]
    assert np.array_equal(again, x[0]), "re-normalised grey image differs from the stored input"
    (out_dir / "brick224_gray.u8").write_bytes(grey.tobytes())
    rest = {k: v for k, v in fixture.items() if k != "input"}
    rest["input_file"] = "brick224_gray.u8 (224 x 224 uint8, row-major; input = (u8/255 - mean)/std per channel, float32)"
    (out_dir / "lite0_brick_expected.json").write_text(json.dumps(rest))
    print("wrote", out_dir / "brick224_gray.u8", "and", out_dir / "lite0_brick_expected.json")


if __name__ == "__main__":
    main(sys.argv[1])
