#!/usr/bin/env python3
"""DCASE-style audio peers (issue 17): kNN on log-mel statistics and on 5-frame log-mel windows.

Run (from the repository root):
    benches/peers/run_audio_dcase.sh                 # creates the venv, runs both sets
    python benches/peers/audio_dcase.py --data ../shared/data --out docs/results
    python benches/peers/audio_dcase.py --quick --out /tmp/audio-dcase   # mining-hard only (CI)

Reads the data only from --data (default: $DMAD_DATA, else ../shared/data) and follows the
"Audio" section of PROTOCOL.md there: fit on `train/normal_*`, score every clip of `test/`, a
file named `anomaly_*` is an anomaly; the kind (third `_` field of an anomaly's file name) is
read for the per-kind AUROC only. Writes <out>/audio_dcase.json (every record, metric, wall time,
feature definition, command and package versions) and <out>/audio_dcase.md (a small table), and
prints the table.

Features are built as the DCASE task-2 baselines build them (librosa.feature.melspectrogram with
its defaults, then 10 log10(mel + eps)), re-implemented with numpy/scipy only:
  log-mel: centred frames (the clip zero-padded by n_fft/2 on both sides, librosa's
  `center=True, pad_mode="constant"`), periodic Hann window of 1024, hop 256, |rfft|^2, 64 mel
  filters as librosa.filters.mel's default (Slaney mel scale, Slaney area normalisation, 0 Hz to
  sr/2), 10 log10(mel + 1e-10). A 1 s, 16 kHz clip gives 63 frames.
  Checked against librosa 0.11.0 (numpy 2.4.6, scipy 1.17.1; `--check-librosa`, run with a
  throwaway venv holding librosa): on all 480 clips of both sets (train and test) the largest
  absolute difference of the log-mel against librosa.feature.melspectrogram (defaults) was
  3.4e-07 dB (mean 5.5e-08 dB; the log-mel values lie between about -89 and +17 dB). It comes
  from librosa's float32 filterbank (its `dtype` default) against the float64 one here: against
  `librosa.filters.mel(..., dtype=np.float64)` and librosa.stft the difference was 0 (bitwise
  identical filterbank and log-mel).
Peers (fitted on the normal train clips only; higher score = more anomalous):
  logmel-stats-kNN: per clip the per-mel mean and standard deviation over frames (128 numbers),
  each dimension standardised with the train clips' mean and std (zero std -> 0); score = the
  Euclidean distance to the k-th nearest train clip, k = 1 (and k = 5 as a second setting).
  logmel-5frame-kNN: every run of 5 consecutive frames (stride 1: 59 per clip), flattened
  frame-major as the DCASE 2020 baseline does (64 * 5 = 320 numbers), standardised with the
  statistics of all train windows; the memory is every window of every train clip; a test
  window's score is the distance to its nearest train window (k = 1) and a clip's score is the
  largest over its windows.
  logmel-stats-delta-kNN (HTK): the library's own clip features for its log-mel DTE cells
  (classical.py's HTK log-mel on whole frames; per band the mean, the deviation and the
  deviation of the frame-to-frame differences, 192 numbers), standardised and scored as
  logmel-stats-kNN, k = 1 and 5: the peer on the representation the DTE sees.
kNN is exact: sklearn NearestNeighbors(algorithm="brute"), Euclidean, float64.

Deterministic: no randomness anywhere (no seeds needed); only the wall times change between runs.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

try:
    import scipy
    import sklearn
    from scipy.io import wavfile
    from scipy.signal import get_window
    from sklearn.metrics import average_precision_score, roc_auc_score
    from sklearn.neighbors import NearestNeighbors
except ImportError as e:  # pragma: no cover - environment problem
    sys.exit(f"error: {e}; run benches/peers/run_audio_dcase.sh (it installs the pinned packages)")

SR = 16_000
N_MELS = 64
N_FFT = 1024
HOP = 256
LOG_EPS = 1e-10
WINDOW_FRAMES = 5
CLIP_KS = (1, 5)
WINDOW_K = 1
PAUC_MAX_FPR = 0.1
# Each record is run this many times: the wall times are the medians (the runs are sub-second
# and the 2 cores are shared), and the scores must be identical across the runs.
REPEATS = 3
SETS = ("mining-hard", "sawmill-hard")

FEATURES = {
    "logmel": f"{N_MELS}-band log-mel as librosa.feature.melspectrogram's defaults (the DCASE "
    f"task-2 baselines' features): centred frames (zero padding of {N_FFT // 2} samples on both "
    f"sides), periodic Hann window {N_FFT}, hop {HOP}, power spectrum |rfft|^2, librosa's default "
    f"mel filterbank (Slaney mel scale, Slaney area normalisation, 0 Hz to sr/2), then "
    f"10 log10(mel + {LOG_EPS:g}); the WAV's 16-bit samples divided by 32768 (as librosa.load); "
    "numpy/scipy only",
    "logmel-htk": f"{N_MELS}-band log-mel as benches/peers/classical.py and the library's default "
    f"(`InputConfig::mel_htk`, `mel_center`): whole frames of the clip only (no padding), "
    f"periodic Hann window {N_FFT}, hop {HOP}, |rfft|^2, {N_MELS} triangular filters on HTK's mel "
    f"scale (0 Hz to sr/2, peak 1, no area normalisation), 10 log10(mel + {LOG_EPS:g}). A 1 s, "
    "16 kHz clip gives 59 frames",
    "logmel-stats-delta": f"per clip the mean and the standard deviation over frames of each mel "
    f"band and the standard deviation of its frame-to-frame differences x[t+1] - x[t] "
    f"({3 * N_MELS} numbers: the library's `MelStatistics::MeanStdDelta`), each dimension "
    "standardised with the train clips' mean and standard deviation (zero deviation -> 0)",
    "logmel-stats": f"per clip the mean and the standard deviation over frames of each mel band "
    f"({2 * N_MELS} numbers), each dimension standardised with the train clips' mean and "
    "standard deviation (zero deviation -> 0)",
    "logmel-5frame": f"every run of {WINDOW_FRAMES} consecutive log-mel frames (stride 1 frame), "
    f"flattened frame-major ({N_MELS} * {WINDOW_FRAMES} = {N_MELS * WINDOW_FRAMES} numbers), each "
    "dimension standardised with the mean and standard deviation of all train windows (zero "
    "deviation -> 0)",
}

METHOD_DEFS = {
    "logmel-stats-kNN": "memory = the standardised statistics of every train clip; score = "
    "Euclidean distance to the k-th nearest train clip (k = 1; k = 5 as a second setting, the "
    "LARGEST of the 5 distances as PyOD's KNN and classical.py)",
    "logmel-5frame-kNN": f"memory = every {WINDOW_FRAMES}-frame window of every train clip; a "
    f"test window's score = Euclidean distance to its nearest train window (k = {WINDOW_K}); "
    "clip score = the largest over the clip's windows",
}

LIBROSA_CHECK = (
    "log-mel compared with librosa 0.11.0 (numpy 2.4.6, scipy 1.17.1) on all 480 clips of "
    "mining-hard and sawmill-hard (`audio_dcase.py --check-librosa` in a throwaway venv): "
    "max abs difference 3.4e-07 dB (mean 5.5e-08 dB) against librosa.feature.melspectrogram "
    "with its defaults, from librosa's float32 filterbank; 0 (bitwise identical) against "
    "librosa.filters.mel(dtype=float64) applied to librosa.stft's power"
)


class DataError(Exception):
    """A data file is missing or malformed; the message names the file."""


def fail(path: Path, reason: str) -> DataError:
    return DataError(f"{path}: {reason}")


# ---------------------------------------------------------------------------------------------
# Log-mel (numpy/scipy only)


def hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa.hz_to_mel with htk=False): linear below 1 kHz, log above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp = 200.0 / 3.0
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(f >= min_log_hz,
                    min_log_mel + np.log(np.maximum(f, min_log_hz) / min_log_hz) / logstep,
                    f / f_sp)


def mel_to_hz(m: np.ndarray) -> np.ndarray:
    """Inverse of hz_to_mel (librosa.mel_to_hz with htk=False)."""
    m = np.asarray(m, dtype=np.float64)
    f_sp = 200.0 / 3.0
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(sr: int = SR, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """[n_mels, n_fft // 2 + 1], as librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)
    (fmin 0, fmax sr / 2, Slaney scale, norm="slaney"), in float64."""
    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2.0), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2:] - mel_f[:-2])  # Slaney: each filter has unit area
    return weights * enorm[:, None]


def htk_filterbank() -> np.ndarray:
    """[N_MELS, N_FFT // 2 + 1]: classical.py's own filterbank (triangles of peak 1 on HTK's mel
    scale, 0 Hz to sr / 2; librosa.filters.mel(htk=True, norm=None)), so the two peers' HTK
    log-mel cannot drift apart."""
    import classical  # same folder: benches/peers/

    if (classical.MEL_BANDS, classical.N_FFT) != (N_MELS, N_FFT):
        raise RuntimeError("classical.py's log-mel bands or FFT size differ from this script's")
    return classical.mel_filterbank(SR)


class LogMel:
    """Log-mel spectrogram of one clip: [frames, N_MELS] (frames = 1 + len(x) // HOP centred,
    else 1 + (len(x) - N_FFT) // HOP). `htk`: classical.py's log-mel (HTK filters, whole
    frames) instead of librosa's defaults."""

    def __init__(self, htk: bool = False) -> None:
        self.window = get_window("hann", N_FFT, fftbins=True)  # periodic, as librosa
        self.fb_t = (htk_filterbank() if htk else mel_filterbank()).T.copy()
        self.center = not htk

    def __call__(self, x: np.ndarray) -> np.ndarray:
        pad = N_FFT // 2 if self.center else 0
        xp = np.pad(x, (pad, pad), mode="constant")
        frames = np.lib.stride_tricks.sliding_window_view(xp, N_FFT)[::HOP] * self.window
        power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
        return 10.0 * np.log10(power @ self.fb_t + LOG_EPS)


def read_wav(path: Path) -> np.ndarray:
    try:
        sr, x = wavfile.read(path)
    except (OSError, ValueError) as e:
        raise fail(path, f"cannot read WAV: {e}") from e
    if sr != SR:
        raise fail(path, f"expected {SR} Hz, got {sr} Hz")
    if x.ndim != 1:
        raise fail(path, f"expected mono, got shape {x.shape}")
    if x.dtype == np.int16:
        x = x.astype(np.float64) / 32768.0  # as librosa.load (soundfile)
    elif np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    else:
        raise fail(path, f"unsupported sample type {x.dtype} (expected 16-bit PCM or float)")
    if len(x) < N_FFT:
        raise fail(path, f"{len(x)} samples, shorter than one {N_FFT}-sample frame")
    return x


def load_set(root: Path) -> dict:
    """The waveforms of one set; the kind (third `_` field of an anomaly's name) for analysis."""
    tr_files = sorted((root / "train").glob("normal_*.wav"))
    if not tr_files:
        raise fail(root / "train", "no normal_*.wav files")
    te_files = sorted((root / "test").glob("*.wav"))
    if not te_files:
        raise fail(root / "test", "no .wav files")
    y = np.asarray([p.name.startswith("anomaly_") for p in te_files], dtype=int)
    kinds = []
    for p, lab in zip(te_files, y):
        parts = p.stem.split("_")
        if lab and len(parts) < 3:
            raise fail(p, "an anomaly file name without a kind (expected anomaly_<id>_<kind>.wav)")
        kinds.append(parts[2] if lab else "normal")
    if y.min() == y.max():
        raise fail(root / "test", "the test clips hold a single class")
    xs = [read_wav(p) for p in tr_files + te_files]
    lengths = {len(x) for x in xs}
    if len(lengths) != 1:
        raise fail(root, f"clips of different lengths: {sorted(lengths)} samples")
    return dict(train=xs[: len(tr_files)], test=xs[len(tr_files):], y=y, kinds=np.asarray(kinds))


# ---------------------------------------------------------------------------------------------
# Peers


def standardiser(train: np.ndarray):
    """x -> (x - mean) / std with the train statistics; a zero-std dimension maps to 0."""
    mu = train.mean(axis=0)
    sd = train.std(axis=0)
    safe = np.where(sd > 0, sd, 1.0)
    return lambda a: np.where(sd > 0, (a - mu) / safe, 0.0)


def clip_stats(logmel: LogMel, clips: list[np.ndarray], delta: bool = False) -> np.ndarray:
    """Per clip the bands' means and deviations over frames; with `delta` also the deviations
    of the bands' frame-to-frame differences."""
    out = []
    for x in clips:
        m = logmel(x)
        parts = [m.mean(axis=0), m.std(axis=0)]
        if delta:
            parts.append(np.diff(m, axis=0).std(axis=0))
        out.append(np.concatenate(parts))
    return np.stack(out)


def clip_windows(logmel: LogMel, clips: list[np.ndarray]) -> np.ndarray:
    """[clips, windows, N_MELS * WINDOW_FRAMES]; a window is frames t..t+4, frame-major."""
    out = []
    for x in clips:
        m = logmel(x)
        w = np.lib.stride_tricks.sliding_window_view(m, WINDOW_FRAMES, axis=0)  # [W, mels, 5]
        out.append(w.transpose(0, 2, 1).reshape(w.shape[0], -1))
    return np.stack(out)


def nearest(k: int) -> NearestNeighbors:
    return NearestNeighbors(n_neighbors=k, algorithm="brute", metric="euclidean")


def run_stats_knn(train: list, test: list, k: int, htk: bool = False,
                  delta: bool = False) -> tuple[np.ndarray, float, float, dict]:
    t0 = time.perf_counter()
    logmel = LogMel(htk)
    ftr = clip_stats(logmel, train, delta)
    z = standardiser(ftr)
    nn = nearest(k).fit(z(ftr))
    t1 = time.perf_counter()
    dist, _ = nn.kneighbors(z(clip_stats(logmel, test, delta)))
    s = dist[:, -1]
    t2 = time.perf_counter()
    return s, t1 - t0, t2 - t1, {"k": k, "reduce": "k-th distance", "dims": ftr.shape[1],
                                 "memory": ftr.shape[0]}


def run_window_knn(train: list, test: list) -> tuple[np.ndarray, float, float, dict]:
    t0 = time.perf_counter()
    logmel = LogMel()
    wtr = clip_windows(logmel, train)
    wtr = wtr.reshape(-1, wtr.shape[-1])
    z = standardiser(wtr)
    nn = nearest(WINDOW_K).fit(z(wtr))
    t1 = time.perf_counter()
    wte = clip_windows(logmel, test)
    n_clips, n_win, dims = wte.shape
    dist, _ = nn.kneighbors(z(wte.reshape(-1, dims)))
    s = dist[:, -1].reshape(n_clips, n_win).max(axis=1)
    t2 = time.perf_counter()
    return s, t1 - t0, t2 - t1, {"k": WINDOW_K, "window_frames": WINDOW_FRAMES, "stride": 1,
                                 "dims": dims, "windows_per_clip": n_win, "memory": wtr.shape[0],
                                 "clip_reduce": "max over windows"}


def metrics(y: np.ndarray, kinds: np.ndarray, s: np.ndarray) -> tuple[dict, dict]:
    if not np.all(np.isfinite(s)):
        raise RuntimeError("non-finite scores")
    m = {"auroc": float(roc_auc_score(y, s)),
         "auprc": float(average_precision_score(y, s)),
         "pauc_0.1": float(roc_auc_score(y, s, max_fpr=PAUC_MAX_FPR))}
    normal = y == 0
    per_kind = {}
    for k in sorted(set(kinds[~normal])):
        sel = normal | (kinds == k)
        per_kind[k] = float(roc_auc_score(y[sel], s[sel]))
    return m, per_kind


# ---------------------------------------------------------------------------------------------
# Output


def markdown(result: dict) -> str:
    v = result["versions"]
    L = ["# DCASE-style audio peers (log-mel kNN)", ""]
    L.append(f"Generated by `{result['command']}` on {result['generated']} (python {v['python']}, "
             f"numpy {v['numpy']}, scipy {v['scipy']}, scikit-learn {v['scikit-learn']}; "
             f"{result['machine']}). Every figure is in `{result['json']}`. Fitted on "
             "`train/normal_*` only; higher score = more anomalous; deterministic (no randomness).")
    L.append("")
    kinds = sorted({k for r in result["records"] for k in r["auroc_per_kind"]})
    L.append("| dataset | method | AUROC | AUPRC | pAUC@0.1 | " + " | ".join(f"AUROC {k}" for k in kinds)
             + " | fit s | score s |")
    L.append("|---|---|---|---|---|" + "---|" * len(kinds) + "---|---|")
    for r in result["records"]:
        m = r["metrics"]
        L.append(f"| {r['dataset']} | {r['method']} | {m['auroc']:.3f} | {m['auprc']:.3f} | "
                 f"{m['pauc_0.1']:.3f} | "
                 + " | ".join(f"{r['auroc_per_kind'].get(k, float('nan')):.3f}" for k in kinds)
                 + f" | {r['wall_s']['fit']:.2f} | {r['wall_s']['score']:.2f} |")
    L.append("")
    for k, d in result["features"].items():
        L.append(f"- {k}: {d}.")
    for k, d in result["methods"].items():
        L.append(f"- {k}: {d}.")
    L.append(f"- Wall time: {result['timing']}.")
    L.append(f"- librosa check: {result['librosa_check']}.")
    L.append("")
    return "\n".join(L)


# ---------------------------------------------------------------------------------------------
# The librosa check (run once by hand; needs librosa, which the project's venv does not hold)


def check_librosa(data: Path) -> int:
    import librosa  # noqa: PLC0415 - only for this check

    logmel = LogMel()
    fb64 = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS, dtype=np.float64)
    worst = worst64 = 0.0
    total, count = 0.0, 0
    for name in SETS:
        for p in sorted((data / "audio" / name).glob("*/*.wav")):
            x = read_wav(p)
            ours = logmel(x)
            mel = librosa.feature.melspectrogram(y=x, sr=SR, n_fft=N_FFT, hop_length=HOP,
                                                 n_mels=N_MELS, power=2.0)
            ref = 10.0 * np.log10(mel + LOG_EPS).T
            spec = np.abs(librosa.stft(x, n_fft=N_FFT, hop_length=HOP)) ** 2
            ref64 = 10.0 * np.log10(fb64 @ spec + LOG_EPS).T
            if ours.shape != ref.shape:
                print(f"{p}: shape {ours.shape} vs librosa {ref.shape}", file=sys.stderr)
                return 1
            d = np.abs(ours - ref)
            worst, total, count = max(worst, float(d.max())), total + float(d.sum()), count + d.size
            worst64 = max(worst64, float(np.abs(ours - ref64).max()))
    print(f"librosa {librosa.__version__}, numpy {np.__version__}, scipy {scipy.__version__}: "
          f"{count // (N_MELS * ours.shape[0])} clips, log-mel max abs difference {worst:.2g} dB "
          f"(mean {total / count:.2g} dB); with a float64 filterbank {worst64:.2g} dB; "
          f"filterbank max abs difference (float64) {np.abs(mel_filterbank() - fb64).max():.2g}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("DMAD_DATA", "../shared/data"),
                    help="the data directory of PROTOCOL.md (default: $DMAD_DATA, else ../shared/data)")
    ap.add_argument("--out", default="docs/results",
                    help="output directory: writes audio_dcase.json and audio_dcase.md there "
                    "(default docs/results)")
    ap.add_argument("--quick", action="store_true", help="one set only (audio/mining-hard), for CI")
    ap.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    ap.add_argument("--check-librosa", action="store_true",
                    help="compare the log-mel with librosa's on every clip and exit (needs librosa)")
    args = ap.parse_args(argv)

    data = Path(args.data)
    if not data.is_dir():
        print(f"error: {data}: data directory not found (set --data or DMAD_DATA)", file=sys.stderr)
        return 2
    if args.check_librosa:
        return check_librosa(data)
    command = os.environ.get("DMAD_PEERS_COMMAND") or shlex.join(
        ["python", "benches/peers/audio_dcase.py"] + (sys.argv[1:] if argv is None else argv))
    records: list[dict] = []
    t_start = time.perf_counter()
    current = "(start)"
    try:
        for name in SETS[:1] if args.quick else SETS:
            current = str(data / "audio" / name)
            ds = load_set(data / "audio" / name)
            runs = [(f"logmel-stats-kNN (k={k})", "logmel-stats-kNN", "logmel", "logmel-stats",
                     lambda k=k: run_stats_knn(ds["train"], ds["test"], k)) for k in CLIP_KS]
            runs.append(("logmel-5frame-kNN (k=1, max)", "logmel-5frame-kNN", "logmel",
                         "logmel-5frame", lambda: run_window_knn(ds["train"], ds["test"])))
            # The library's own clip features (HTK log-mel, statistics with the frame-difference
            # deviations) under kNN: the peer on the representation the DTE cells see.
            runs += [(f"logmel-stats-delta-kNN (HTK, k={k})", "logmel-stats-delta-kNN",
                      "logmel-htk", "logmel-stats-delta",
                      lambda k=k: run_stats_knn(ds["train"], ds["test"], k, htk=True, delta=True))
                     for k in CLIP_KS]
            for label, method, mel, feat, run in runs:
                reps = [run() for _ in range(REPEATS)]
                s, _, _, params = reps[0]
                if any(not np.array_equal(s, r[0]) for r in reps[1:]):
                    raise RuntimeError(f"{label}: the scores differ between repeated runs")
                fit_runs = [r[1] for r in reps]
                score_runs = [r[2] for r in reps]
                fit_s, score_s = float(np.median(fit_runs)), float(np.median(score_runs))
                m, per_kind = metrics(ds["y"], ds["kinds"], s)
                records.append(dict(
                    dataset=f"audio/{name}", modality="audio", method=label, peer=method,
                    n_train=len(ds["train"]), n_test=len(ds["test"]),
                    n_test_anomalies=int(ds["y"].sum()), metrics=m, auroc_per_kind=per_kind,
                    wall_s={"fit": fit_s, "score": score_s, "total": fit_s + score_s,
                            "fit_runs": fit_runs, "score_runs": score_runs},
                    features=f"{FEATURES[mel]}; {FEATURES[feat]}", params=params,
                    split="train/normal_*; test/ (anomaly_* = anomaly); the kind (third `_` "
                    "field of the file name) is used for the per-kind AUROC only",
                    command=command))
                if not args.quiet:
                    print(f"  audio/{name:<13} {label:<29} AUROC {m['auroc']:.4f}  AUPRC "
                          f"{m['auprc']:.4f}  pAUC {m['pauc_0.1']:.4f}  fit {fit_s:.2f}s  "
                          f"score {score_s:.2f}s", file=sys.stderr, flush=True)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (ValueError, RuntimeError) as e:
        print(f"error: {current}: {e}", file=sys.stderr)
        return 2
    total = time.perf_counter() - t_start

    out = Path(args.out)
    result = {
        "tool": "benches/peers/audio_dcase.py",
        "command": command,
        "data": str(args.data),
        "quick": bool(args.quick),
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "total_wall_s": total,
        "machine": f"{platform.machine()}, {os.cpu_count()} logical cores, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}",
        "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "scipy": scipy.__version__, "scikit-learn": sklearn.__version__},
        "deterministic": "yes: no randomness (exact brute-force kNN, fixed features); no seeds; "
        f"the scores are checked to be identical over the {REPEATS} timed runs of each record; "
        "only the wall times vary",
        "protocol": "PROTOCOL.md of the data directory, section Audio: its splits and metrics",
        "metrics": {
            "auroc": "sklearn roc_auc_score", "auprc": "sklearn average_precision_score",
            "pauc_0.1": "sklearn roc_auc_score(max_fpr=0.1) (McClish-corrected, DCASE)",
            "auroc_per_kind": "the normal test clips against the clips of one kind",
        },
        "timing": f"one process (BLAS/OpenMP threads as in `machine`); each record is run "
        f"{REPEATS} times and the medians are reported (every run in fit_runs / score_runs); "
        "fit = log-mel and features of the train clips + standardisation + building the kNN "
        "memory; score = log-mel and features of the test clips + kNN (+ the max over windows); "
        "the WAVs are decoded once before the clock starts and the metrics are not timed; the 2 "
        "cores may be shared with other jobs (see load_average_at_end)",
        "features": FEATURES,
        "methods": METHOD_DEFS,
        "librosa_check": LIBROSA_CHECK,
        "json": "audio_dcase.json",
        "records": records,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "audio_dcase.json").write_text(json.dumps(result, indent=1) + "\n")
    md = markdown(result)
    (out / "audio_dcase.md").write_text(md)
    if not args.quiet:
        print(md)
        print(f"wrote {out / 'audio_dcase.json'} and {out / 'audio_dcase.md'} in {total:.1f} s",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
