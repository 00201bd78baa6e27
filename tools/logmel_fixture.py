#!/usr/bin/env python3
"""Reference log-mel spectrograms for dmad-data's `LogMel` tests: testdata/logmel/logmel.json.

Run from the repository root with numpy and scipy (for example the venv that
benches/peers/run_audio_dcase.sh creates):
    python tools/logmel_fixture.py

Two settings on one deterministic 4000-sample signal at 16 kHz (two tones, a chirp and a click;
no randomness):
  - `librosa`: benches/peers/audio_dcase.py's LogMel, librosa.feature.melspectrogram's defaults
    (centred frames with zero padding, periodic Hann 1024, hop 256, Slaney mel scale and area
    normalisation, 64 mels, 0 Hz to sr/2), 10 log10(mel + 1e-10). audio_dcase.py records that
    this is bitwise librosa 0.11.0 with a float64 filterbank.
  - `htk`: benches/peers/classical.py's audio features: HTK mel scale, no normalisation, frames
    not centred.
Values are [frames, n_mels] row-major, float64 printed with 17 significant digits.
"""

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benches" / "peers"))
import audio_dcase as A  # noqa: E402


def signal() -> np.ndarray:
    n = np.arange(4000, dtype=np.float64)
    t = n / 16000.0
    x = 0.4 * np.sin(2 * np.pi * 440.0 * t) + 0.2 * np.sin(2 * np.pi * 3100.0 * t)
    x += 0.1 * np.sin(2 * np.pi * (200.0 * t + 12000.0 * t * t))
    x[2000:2008] += 0.5
    return x


def htk_filterbank(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    def hz2mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel2hz(m):
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    pts = mel2hz(np.linspace(hz2mel(0.0), hz2mel(sr / 2.0), n_mels + 2))
    fb = np.zeros((n_mels, len(freqs)))
    for i in range(n_mels):
        lo, c, hi = pts[i], pts[i + 1], pts[i + 2]
        fb[i] = np.maximum(0.0, np.minimum((freqs - lo) / (c - lo), (hi - freqs) / (hi - c)))
    return fb


def main() -> None:
    x = signal()
    lib = A.LogMel()(x)
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(A.N_FFT) / A.N_FFT)
    frames = np.lib.stride_tricks.sliding_window_view(x, A.N_FFT)[:: A.HOP] * win
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    htk = 10.0 * np.log10(power @ htk_filterbank(A.SR, A.N_FFT, A.N_MELS).T + 1e-10)
    out = {
        "source": "tools/logmel_fixture.py (numpy %s); see its docstring" % np.__version__,
        "sample_rate": A.SR,
        "n_fft": A.N_FFT,
        "hop_length": A.HOP,
        "n_mels": A.N_MELS,
        "signal": [float(v) for v in x],
        "librosa": {"frames": lib.shape[0], "values": [float(v) for v in lib.ravel()]},
        "htk": {"frames": htk.shape[0], "values": [float(v) for v in htk.ravel()]},
    }
    path = ROOT / "testdata" / "logmel" / "logmel.json"
    path.write_text(json.dumps(out) + "\n")
    print(f"wrote {path}: librosa {lib.shape}, htk {htk.shape}")


if __name__ == "__main__":
    main()
