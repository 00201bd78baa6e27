#!/usr/bin/env python3
"""Which scalogram representation carries the audio anomalies? (issue 9, audio rows)

Run:  DMAD_DATA=/work/shared/data python3 benches/peers/audio_representation.py
Needs numpy, scipy, scikit-learn and PyWavelets==1.8.0 (pip install ...).

dmad turns a 1 s, 16 kHz clip into a complex-Morlet (cmor1.5-1.0) CWT scalogram: rows are
geometrically spaced frequencies from 7 600 Hz down to 50 Hz (scale = fc * sr / f), pixels are
20 log10 |W| clipped to `range` dB below a top level and mapped to [-1, 1], then averaged over
`hop` samples per frame (dmad-wavelets `Scalogram`, dmad-data `AudioScalogram`). This script
rebuilds that map with PyWavelets and measures, on both protocol sets, how well plain distance
detectors separate anomalies when fed:

- the wavelet: cmor1.5-1.0 (dmad's so far: a wide band, about +-18 % of the centre
  frequency) or the narrower-band cmor10-1.0 and cmor20-1.0 (+-7 %, +-5 %);
- the reference level: each clip's own maximum (dmad's behaviour so far) or one fixed
  absolute level (`abs`: the top is fixed in dB of |W|, the same for every clip);
- 32 or 64 scales; dynamic ranges 40, 80 and 120 dB (cmor1.5-1.0; 80 dB for the others);
- the map with 32, 8, 4 or 1 frames (flattened; 1 frame is the time-averaged band profile),
  or the profile with the per-row standard deviation over the 32 frames (`prof+std`).

Detectors (fit on the 120 normal train clips, scored on the 120 test clips):
- KNN: distance to the 5th nearest train sample (the classical peer's KNN);
- DTE-like: the mean squared distance to the 5 nearest train samples (what the non-parametric
  DTE estimator is monotone in), on the raw features (no z-scoring, as dmad's DTE sees them);
- KNN-z: KNN on features z-scored with the train mean and standard deviation (as the peers).
The test labels are only used to compute AUROC; nothing is tuned on them beyond reading off
which of these few representations separates best.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pywt
from scipy.io import wavfile
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

SR = 16_000
F_MIN, F_MAX = 50.0, 0.95 * SR / 2.0
FRAMES = 32
WAVELETS = ["cmor1.5-1.0", "cmor10-1.0", "cmor20-1.0"]
K = 5
SETS = ["mining-hard", "sawmill-hard"]


def read(path: Path) -> np.ndarray:
    sr, x = wavfile.read(path)
    if sr != SR or x.ndim != 1:
        raise SystemExit(f"{path}: expected {SR} Hz mono, got {sr} Hz shape {x.shape}")
    x = x.astype(np.float64) / 32768.0  # as dmad-data's read_wav for 16-bit
    return np.resize(x, SR) if len(x) != SR else x


def scales(n: int, wavelet: str) -> np.ndarray:
    fc = pywt.central_frequency(wavelet)
    f = F_MAX * np.exp(np.log(F_MIN / F_MAX) * np.arange(n) / (n - 1))
    return fc * SR / f


def db_map(x: np.ndarray, n_scales: int, wavelet: str) -> np.ndarray:
    coef, _ = pywt.cwt(x, scales(n_scales, wavelet), wavelet, sampling_period=1.0 / SR,
                       method="fft")
    return 20.0 * np.log10(np.maximum(np.abs(coef), 1e-300))


def normalise_pool(db: np.ndarray, top: float, rng: float) -> np.ndarray:
    """dmad's pixel mapping then frame means: [scales, FRAMES]."""
    floor = top - rng
    px = 2.0 * (np.clip(db, floor, top) - floor) / rng - 1.0
    hop = db.shape[1] // FRAMES
    return px[:, : hop * FRAMES].reshape(db.shape[0], FRAMES, hop).mean(axis=2)


def frames(maps: np.ndarray, n: int) -> np.ndarray:
    """[clips, scales, FRAMES] maps averaged down to n frames each, flattened: the same as
    pooling with hop = SR / n (FRAMES is a multiple of n, and SR of FRAMES)."""
    c, s, f = maps.shape
    return maps.reshape(c, s, n, f // n).mean(axis=3).reshape(c, -1)


def load(root: Path):
    tr = sorted((root / "train").glob("normal_*.wav"))
    te = sorted((root / "test").glob("*.wav"))
    y = np.array([p.name.startswith("anomaly_") for p in te], dtype=int)
    kinds = np.array([p.stem.split("_")[2] if p.name.startswith("anomaly_") else "normal"
                      for p in te])
    return [read(p) for p in tr], [read(p) for p in te], y, kinds


def knn_scores(xtr, xte, z: bool):
    if z:
        mu, sd = xtr.mean(0), xtr.std(0)
        sd[sd == 0] = 1.0
        xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    nn = NearestNeighbors(n_neighbors=K).fit(xtr)
    d, _ = nn.kneighbors(xte)
    return d[:, -1], (d ** 2).mean(1)


def per_kind(y, kinds, s):
    out = {}
    for k in sorted(set(kinds) - {"normal"}):
        m = (kinds == "normal") | (kinds == k)
        out[k] = roc_auc_score(y[m], s[m])
    return out


def main() -> int:
    data = os.environ.get("DMAD_DATA")
    if not data:
        print("DMAD_DATA is unset: nothing to do")
        return 0
    results: dict[tuple, dict] = {}
    for name in SETS:
        t0 = time.perf_counter()
        tr, te, y, kinds = load(Path(data) / "audio" / name)
        for wav in WAVELETS:
            for ns in (32, 64):
                dtr = [db_map(x, ns, wav) for x in tr]
                dte = [db_map(x, ns, wav) for x in te]
                # The absolute top: one level for every clip, read off the TRAIN clips only
                # (the largest |W| in dB over all normal training clips, rounded up to 10 dB).
                abs_top = float(np.ceil(max(d.max() for d in dtr) / 10.0) * 10.0)
                for ref in ("clipmax", "abs"):
                    for rng in (40.0, 80.0, 120.0) if wav == WAVELETS[0] else (80.0,):
                        def rep(d):
                            top = d.max() if ref == "clipmax" else abs_top
                            return normalise_pool(d, top, rng)
                        mtr = np.stack([rep(d) for d in dtr])
                        mte = np.stack([rep(d) for d in dte])
                        feats = {f"map{f}": (frames(mtr, f), frames(mte, f)) for f in (32, 8, 4, 1)}
                        feats["prof+std"] = (np.concatenate([mtr.mean(2), mtr.std(2)], 1),
                                             np.concatenate([mte.mean(2), mte.std(2)], 1))
                        for fname, (a, b) in feats.items():
                            knn, dte_like = knn_scores(a, b, z=False)
                            knn_z, _ = knn_scores(a, b, z=True)
                            results[(name, wav, ns, ref, rng, fname)] = dict(
                                knn=roc_auc_score(y, knn), dte=roc_auc_score(y, dte_like),
                                knn_z=roc_auc_score(y, knn_z),
                                kinds_dte=per_kind(y, kinds, dte_like),
                                top=abs_top if ref == "abs" else None)
        print(f"# {name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    print(f"AUROC; k = {K}; 50-{F_MAX:.0f} Hz; dte = DTE-like (mean squared distance to the "
          f"{K} nearest), on the raw features")
    print(f"{'wavelet':>11} {'scales':>6} {'ref':>7} {'range':>5} {'features':>8} | "
          + " | ".join(f"{s[:6]:>6}: knn   dte   knn-z" for s in SETS)
          + " | mean dte | per kind, dte (mining; sawmill)")
    keys = sorted({k[1:] for k in results},
                  key=lambda k: (WAVELETS.index(k[0]), k[1], k[2], k[3], k[4]))
    for k in keys:
        rows = [results[(s, *k)] for s in SETS]
        cells = " | ".join(f"        {r['knn']:.3f} {r['dte']:.3f} {r['knn_z']:.3f}" for r in rows)
        mean_dte = np.mean([r["dte"] for r in rows])
        kinds = "; ".join(" ".join(f"{kk[:3]} {v:.2f}" for kk, v in r["kinds_dte"].items())
                          for r in rows)
        print(f"{k[0]:>11} {k[1]:>6} {k[2]:>7} {k[3]:>5.0f} {k[4]:>8} | {cells} | {mean_dte:.3f}"
              f"    | {kinds}")
    for s in SETS:
        tops = {(w, ns): results[(s, w, ns, "abs", 80.0, "map32")]["top"]
                for w in WAVELETS for ns in (32, 64)}
        print(f"abs top (dB of |W|, from {s}'s train clips): {tops}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
