#!/usr/bin/env python3
"""Reference log-mel spectrograms for dmad-data's `LogMel` tests: testdata/logmel/logmel.json.

Run from the repository root with the packages the two peers import (the venv that
benches/peers/run_classical.sh creates has them):
    python tools/logmel_fixture.py

Two settings on one deterministic 4000-sample signal at 16 kHz (two tones, a chirp and a click;
no randomness):
  - `librosa`: benches/peers/audio_dcase.py's LogMel, librosa.feature.melspectrogram's defaults
    (centred frames with zero padding, periodic Hann 1024, hop 256, Slaney mel scale and area
    normalisation, 64 mels, 0 Hz to sr/2), 10 log10(mel + 1e-10). audio_dcase.py records that
    this is bitwise librosa 0.11.0 with a float64 filterbank.
  - `htk`: benches/peers/classical.py's audio log-mel, its own filterbank (HTK mel scale, no
    normalisation) on frames that are not centred.
Values are [frames, n_mels] row-major, float64 printed with 17 significant digits.
"""

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benches" / "peers"))
import audio_dcase as A  # noqa: E402
import classical as C  # noqa: E402


def signal() -> np.ndarray:
    n = np.arange(4000, dtype=np.float64)
    t = n / 16000.0
    x = 0.4 * np.sin(2 * np.pi * 440.0 * t) + 0.2 * np.sin(2 * np.pi * 3100.0 * t)
    x += 0.1 * np.sin(2 * np.pi * (200.0 * t + 12000.0 * t * t))
    x[2000:2008] += 0.5
    return x


def main() -> None:
    x = signal()
    lib = A.LogMel()(x)
    # classical.py's audio_features, from the samples instead of a WAV file.
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(C.N_FFT) / C.N_FFT)
    frames = np.lib.stride_tricks.sliding_window_view(x, C.N_FFT)[:: C.HOP] * win
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    htk = 10.0 * np.log10(power @ C.mel_filterbank(A.SR).T + 1e-10)
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
