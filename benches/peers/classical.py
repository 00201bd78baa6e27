#!/usr/bin/env python3
"""Classical anomaly-detection peers (IForest, KNN, LOF) on every dataset of PROTOCOL.md.

Run (from the repository root):
    benches/peers/run_classical.sh                 # creates the venv, runs everything
    python benches/peers/classical.py --data ../shared/data --out docs/results/classical
    python benches/peers/classical.py --quick      # wbc table + Yahoo series (CI)

Reads the data only from --data (default: $DMAD_DATA, else ../shared/data) and follows
PROTOCOL.md there: the same splits and metrics as dmad's benchmark table. Writes
<out>.json (every record, metric, wall time, feature definition and command) and <out>.md
(a readable table), and prints the table. Deterministic: the only randomness is
IsolationForest's, seeded (the split seed for tables, 0 elsewhere).

Scores are "higher = more anomalous". Peers are fitted on the normal train part only.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import math
import os
import platform
import re
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np

try:
    import scipy
    import sklearn
    from PIL import Image
    from scipy.io import wavfile
    from sklearn.ensemble import IsolationForest
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score
    from sklearn.neighbors import LocalOutlierFactor, NearestNeighbors
except ImportError as e:  # pragma: no cover - environment problem
    sys.exit(f"error: {e}; run benches/peers/run_classical.sh (it installs the pinned packages)")

try:  # VUS-PR from TSB-AD (installed with --no-deps: its metric module needs only sklearn).
    from TSB_AD.evaluation.basic_metrics import generate_curve as _tsb_generate_curve

    TSB_AD_VERSION = None
    try:
        from importlib.metadata import version as _pkg_version

        TSB_AD_VERSION = _pkg_version("TSB-AD")
    except Exception:  # noqa: BLE001 - version lookup is informative only
        TSB_AD_VERSION = "unknown"
except ImportError:
    _tsb_generate_curve = None
    TSB_AD_VERSION = None

METHODS = ("IForest", "KNN", "LOF")
SERIES_WINDOW = 64
SERIES_STRIDE = 1
VUS_WINDOW = 100
UCR_HIT_MARGIN = 100
KNN_K = 5
LOF_K = 20
IFOREST_TREES = 100
# The most train samples a peer is fitted on (evenly spaced subsample beyond it). No dataset of
# PROTOCOL.md reaches it today (the largest train set is GutenTAG's 9,937 windows).
MAX_TRAIN = 20000
IMAGE_SIDE = 32
MNIST_SIDE = 28
MEL_BANDS = 64
N_FFT = 1024
HOP = 256

FEATURES = {
    "table": "the standardised rows (each feature z-scored with the train rows' mean and "
    "standard deviation; zero deviation -> 0)",
    "series-points": f"sliding windows of {SERIES_WINDOW} points, stride {SERIES_STRIDE}, over "
    "the series z-normalised with the train part's mean and standard deviation; train windows "
    "from the train part, test windows from the test part only; a point's score is the MEAN "
    "of the scores of the test windows covering it",
    "series-classification": "each series row is one sample, z-normalised per row (zero "
    "deviation -> 0); missing values (NaN, DodgerLoopDay only) linearly interpolated within "
    "the row first (edges: nearest value)",
    "image": f"the image resized to {IMAGE_SIDE}x{IMAGE_SIDE} grey (PIL bilinear, antialiased), "
    "flattened, pixel values in [0, 1]",
    "mnist": f"the {MNIST_SIDE}x{MNIST_SIDE} digit as is, flattened, pixel values in [0, 1]",
    "audio": f"{MEL_BANDS}-band log-mel power spectrum (HTK mel scale 0-8 kHz, triangular "
    f"filters, Hann window {N_FFT}, hop {HOP}, no padding, 10 log10(power + 1e-10)), mean and "
    f"standard deviation over the frames: {2 * MEL_BANDS} numbers per clip, z-scored with the "
    "train clips' mean and standard deviation (numpy only)",
}

METHOD_DEFS = {
    "IForest": f"sklearn IsolationForest(n_estimators={IFOREST_TREES}, random_state=seed); "
    "score = -score_samples",
    "KNN": f"distance to the k-th nearest train sample, k = min({KNN_K}, n_train) (the LARGEST "
    "of the k distances, PyOD KNN's default 'largest'); sklearn NearestNeighbors, Euclidean",
    "LOF": f"sklearn LocalOutlierFactor(n_neighbors=min({LOF_K}, n_train - 1), novelty=True); "
    "score = -score_samples",
}


class DataError(Exception):
    """A data file is missing or malformed; the message names the file."""


def fail(path: Path, reason: str) -> DataError:
    return DataError(f"{path}: {reason}")


# ---------------------------------------------------------------------------------------------
# Metrics


def f1_max(y: np.ndarray, s: np.ndarray) -> float:
    p, r, _ = precision_recall_curve(y, s)
    denom = p + r
    f1 = np.where(denom > 0, 2 * p * r / np.where(denom > 0, denom, 1), 0.0)
    return float(f1.max())


def base_metrics(y: np.ndarray, s: np.ndarray) -> dict:
    y = np.asarray(y, dtype=int)
    s = np.asarray(s, dtype=np.float64)
    if not np.all(np.isfinite(s)):
        raise RuntimeError("non-finite scores")
    if y.min() == y.max():
        raise RuntimeError("test labels hold a single class")
    return {
        "auroc": float(roc_auc_score(y, s)),
        "auprc": float(average_precision_score(y, s)),
        "f1_max": f1_max(y, s),
    }


def segments(y: np.ndarray) -> list[tuple[int, int]]:
    """[begin, end) of each run of ones."""
    d = np.diff(np.concatenate([[0], y.astype(int), [0]]))
    return list(zip(np.nonzero(d == 1)[0].tolist(), np.nonzero(d == -1)[0].tolist()))


def series_metrics(y: np.ndarray, s: np.ndarray, offset: int, ucr_range=None) -> dict:
    m = base_metrics(y, s)
    top = offset + int(np.argmax(s))
    if ucr_range is not None:
        ranges = [ucr_range]
    else:
        ranges = [(offset + b, offset + e) for b, e in segments(y)]
    m["top1_hit"] = float(
        any(b - UCR_HIT_MARGIN <= top < e + UCR_HIT_MARGIN for b, e in ranges)
    )
    if _tsb_generate_curve is not None:
        out = _tsb_generate_curve(y.astype(int), s.astype(np.float64), VUS_WINDOW)
        m["vus_pr"] = float(out[7])
        m["vus_roc"] = float(out[6])
    else:
        m["vus_pr"] = None
        m["vus_roc"] = None
    return m


# ---------------------------------------------------------------------------------------------
# Peers


def subsample(x: np.ndarray) -> tuple[np.ndarray, int | None]:
    if len(x) <= MAX_TRAIN:
        return x, None
    idx = np.linspace(0, len(x) - 1, MAX_TRAIN).round().astype(int)
    return x[idx], MAX_TRAIN


def run_peer(method: str, xtr: np.ndarray, xte: np.ndarray, seed: int) -> tuple[np.ndarray, float, dict]:
    """Fits on xtr, scores xte; returns (scores, fit+score wall seconds, effective params)."""
    xtr = np.ascontiguousarray(xtr, dtype=np.float64)
    xte = np.ascontiguousarray(xte, dtype=np.float64)
    xtr, sub = subsample(xtr)
    t0 = time.perf_counter()
    if method == "IForest":
        model = IsolationForest(n_estimators=IFOREST_TREES, random_state=seed)
        model.fit(xtr)
        s = -model.score_samples(xte)
        params = {"n_estimators": IFOREST_TREES, "random_state": seed}
    elif method == "KNN":
        k = min(KNN_K, len(xtr))
        nn = NearestNeighbors(n_neighbors=k).fit(xtr)
        dist, _ = nn.kneighbors(xte)
        s = dist[:, -1]
        params = {"k": k, "reduce": "largest"}
    elif method == "LOF":
        k = min(LOF_K, len(xtr) - 1)
        model = LocalOutlierFactor(n_neighbors=k, novelty=True)
        model.fit(xtr)
        s = -model.score_samples(xte)
        params = {"n_neighbors": k, "novelty": True}
    else:
        raise ValueError(method)
    wall = time.perf_counter() - t0
    params["n_train_fitted"] = len(xtr)
    if sub is not None:
        params["subsampled_train_to"] = sub
    return np.asarray(s, dtype=np.float64), wall, params


# ---------------------------------------------------------------------------------------------
# Loaders (each raises DataError naming the file)


def read_csv_matrix(path: Path, skip_header: bool = True) -> tuple[list[str], np.ndarray]:
    if not path.is_file():
        raise fail(path, "file not found")
    try:
        with path.open(newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise fail(path, f"cannot read: {e}") from e
    if not rows:
        raise fail(path, "empty file")
    header = rows[0] if skip_header else []
    body = rows[1:] if skip_header else rows
    if not body:
        raise fail(path, "no data rows")
    width = len(body[0])
    out = np.empty((len(body), width), dtype=np.float64)
    for i, r in enumerate(body):
        if len(r) != width:
            raise fail(path, f"line {i + 1 + skip_header}: {len(r)} fields, expected {width}")
        try:
            out[i] = [float(v) for v in r]
        except ValueError as e:
            raise fail(path, f"line {i + 1 + skip_header}: {e}") from e
    return header, out


def read_json(path: Path):
    if not path.is_file():
        raise fail(path, "file not found")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise fail(path, f"not valid JSON: {e}") from e


def standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mu = train.mean(axis=0)
    sd = train.std(axis=0)
    safe = np.where(sd > 0, sd, 1.0)
    return [np.where(sd > 0, (a - mu) / safe, 0.0) for a in (train, *others)]


def load_table(root: Path, name: str) -> tuple[np.ndarray, np.ndarray, dict]:
    path = root / "tabular" / f"{name}.csv"
    header, a = read_csv_matrix(path)
    if header[-1].strip() != "label":
        raise fail(path, f"last column is {header[-1]!r}, expected 'label'")
    x, y = a[:, :-1], a[:, -1].astype(int)
    if not set(np.unique(y)) <= {0, 1}:
        raise fail(path, "labels other than 0/1")
    spath = root / "tabular" / "splits" / f"{name}.json"
    sp = read_json(spath)
    try:
        splits = sp["splits"]
        for s in splits:
            for key in ("train", "test"):
                idx = np.asarray(s[key], dtype=int)
                if idx.size and (idx.min() < 0 or idx.max() >= len(y)):
                    raise fail(spath, f"seed {s['seed']}: {key} index out of range")
            if y[np.asarray(s["train"], dtype=int)].any():
                raise fail(spath, f"seed {s['seed']}: an anomaly in the train rows")
    except (KeyError, TypeError) as e:
        raise fail(spath, f"malformed split file: {e}") from e
    return x, y, sp


def z_train(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu, sd = train.mean(axis=0), train.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return (train - mu) / sd, (test - mu) / sd


def window_matrix(x: np.ndarray, w: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """x: [n, dims] -> windows [N, w * dims] and their starts (a last window ends at n)."""
    n = len(x)
    if n < w:
        raise ValueError(f"series of {n} points is shorter than the window {w}")
    starts = list(range(0, n - w + 1, stride))
    if starts[-1] != n - w:
        starts.append(n - w)
    starts = np.asarray(starts)
    view = np.lib.stride_tricks.sliding_window_view(x, w, axis=0)  # [n-w+1, dims, w]
    return view[starts].reshape(len(starts), -1), starts


def windows_to_points(scores: np.ndarray, starts: np.ndarray, w: int, n: int) -> np.ndarray:
    acc = np.zeros(n)
    cnt = np.zeros(n)
    for sc, st in zip(scores, starts):
        acc[st : st + w] += sc
        cnt[st : st + w] += 1
    if (cnt == 0).any():
        raise RuntimeError("a test point is covered by no window")
    return acc / cnt


def point_series_records(root: Path) -> list[dict]:
    """Each point-labelled series: name, train [n, d], test [m, d], test labels, offset, extras."""
    out = []
    ts = root / "timeseries"
    # UCR anomaly archive
    udir = ts / "ucr-anomaly"
    ufiles = sorted(udir.glob("*.txt")) if udir.is_dir() else []
    for f in ufiles:
        m = re.match(r"^(\d+)_UCR_Anomaly_(.+)_(\d+)_(\d+)_(\d+)\.txt$", f.name)
        if not m:
            raise fail(f, "name does not match NNN_UCR_Anomaly_<name>_<trainEnd>_<begin>_<end>.txt")
        train_end, begin, end = int(m.group(3)), int(m.group(4)), int(m.group(5))
        try:
            v = np.loadtxt(f, dtype=np.float64).reshape(-1)
        except ValueError as e:
            raise fail(f, f"not one number a line: {e}") from e
        if not (0 < train_end <= begin < end <= len(v)):
            raise fail(f, f"trainEnd {train_end}, anomaly [{begin}, {end}) do not fit {len(v)} points")
        y = np.zeros(len(v), dtype=int)
        y[begin:end] = 1
        out.append(dict(name=f"ucr-anomaly/{f.stem}", file=str(f.relative_to(root)),
                        train=v[:train_end, None], test=v[train_end:, None], y=y[train_end:],
                        offset=train_end, ucr_range=(begin, end),
                        split=f"train [0, {train_end}), test [{train_end}, {len(v)}), anomaly [{begin}, {end})"))
    # NAB
    ndir = ts / "nab"
    if ndir.is_dir():
        lpath = ndir / "labels" / "combined_windows.json"
        wins = read_json(lpath)
        if not isinstance(wins, dict):
            raise fail(lpath, "expected an object {series: [[start, end], ...]}")
        for key, wl in wins.items():
            path = ndir / "data" / key
            if not path.is_file():
                raise fail(path, f"file not found (listed in {lpath})")
            ts_list, vals = [], []
            with path.open(newline="") as fh:
                rd = csv.reader(fh)
                header = next(rd, None)
                if header is None or header[:2] != ["timestamp", "value"]:
                    raise fail(path, f"header {header}, expected timestamp,value")
                for i, r in enumerate(rd):
                    try:
                        ts_list.append(np.datetime64(r[0].strip().replace(" ", "T")))
                        vals.append(float(r[1]))
                    except (ValueError, IndexError) as e:
                        raise fail(path, f"line {i + 2}: {e}") from e
            tstamp = np.asarray(ts_list, dtype="datetime64[us]")
            v = np.asarray(vals)
            y = np.zeros(len(v), dtype=int)
            try:
                for a, b in wl:
                    lo = np.datetime64(a.strip().replace(" ", "T"), "us")
                    hi = np.datetime64(b.strip().replace(" ", "T"), "us")
                    y[(tstamp >= lo) & (tstamp <= hi)] = 1
            except (ValueError, TypeError) as e:
                raise fail(lpath, f"{key}: bad window: {e}") from e
            cut = int(math.floor(0.15 * len(v)))
            out.append(dict(name=f"nab/{key}", file=str(path.relative_to(root)),
                            train=v[:cut, None], test=v[cut:, None], y=y[cut:], offset=cut,
                            ucr_range=None,
                            split=f"train first 15% [0, {cut}), test [{cut}, {len(v)}); "
                            f"{int(y.sum())} labelled points in {len(wl)} windows"))
    # Yahoo
    ypath = ts / "labelled-csv" / "yahoo.csv"
    if ypath.exists():
        header, a = read_csv_matrix(ypath)
        if [h.strip() for h in header] != ["data", "label"]:
            raise fail(ypath, f"header {header}, expected data,label")
        cut = int(math.floor(0.30 * len(a)))
        out.append(dict(name="yahoo", file=str(ypath.relative_to(root)),
                        train=a[:cut, :1], test=a[cut:, :1], y=a[cut:, 1].astype(int),
                        offset=cut, ucr_range=None,
                        split=f"train first 30% [0, {cut}), test [{cut}, {len(a)})"))
    # GutenTAG
    gdir = ts / "gutentag"
    for test_path in sorted(gdir.glob("*_TEST.csv")) if gdir.is_dir() else []:
        stem = test_path.name[: -len("_TEST.csv")]
        train_path = gdir / f"{stem}_TRAIN_NA.csv"
        h_te, a_te = read_csv_matrix(test_path)
        h_tr, a_tr = read_csv_matrix(train_path)
        for p, h in ((test_path, h_te), (train_path, h_tr)):
            if h[0] != "timestamp" or h[-1] != "is_anomaly":
                raise fail(p, f"header {h}, expected timestamp,<values...>,is_anomaly")
        if a_tr[:, -1].any():
            raise fail(train_path, "the normal train series holds anomalous points")
        out.append(dict(name=f"gutentag/{stem}", file=str(test_path.relative_to(root)),
                        train=a_tr[:, 1:-1], test=a_te[:, 1:-1], y=a_te[:, -1].astype(int),
                        offset=0, ucr_range=None,
                        split=f"train {train_path.name} ({len(a_tr)} points), test "
                        f"{test_path.name} ({len(a_te)} points)"))
    return out


def interp_nan_rows(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    idx = np.arange(a.shape[1])
    for r in a:
        bad = np.isnan(r)
        if bad.all():
            r[:] = 0.0
        elif bad.any():
            r[bad] = np.interp(idx[bad], idx[~bad], r[~bad])
    return a


def znorm_rows(a: np.ndarray) -> np.ndarray:
    mu = a.mean(axis=1, keepdims=True)
    sd = a.std(axis=1, keepdims=True)
    return np.where(sd > 0, (a - mu) / np.where(sd > 0, sd, 1.0), 0.0)


def load_ucr_one_class(d: Path) -> dict:
    name = d.name
    arrs = {}
    for part in ("TRAIN", "TEST"):
        p = d / f"{name}_{part}.tsv"
        if not p.is_file():
            raise fail(p, "file not found")
        try:
            a = np.genfromtxt(p, delimiter="\t", dtype=np.float64)
        except ValueError as e:
            raise fail(p, f"malformed: {e}") from e
        if a.ndim != 2 or a.shape[1] < 2:
            raise fail(p, "expected rows of <class>\\t<values...>")
        if np.isnan(a[:, 0]).any():
            raise fail(p, "a class label is missing")
        arrs[part] = (p, a)
    (ptr, tr), (pte, te) = arrs["TRAIN"], arrs["TEST"]
    normal = float(np.min(tr[:, 0]))
    xtr = tr[tr[:, 0] == normal, 1:]
    nan_count = int(np.isnan(xtr).sum() + np.isnan(te[:, 1:]).sum())
    xtr = znorm_rows(interp_nan_rows(xtr))
    xte = znorm_rows(interp_nan_rows(te[:, 1:]))
    y = (te[:, 0] != normal).astype(int)
    return dict(name=f"ucr/{name}", file=str(ptr.parent), train=xtr, test=xte, y=y,
                normal_class=normal, nan_values=nan_count)


def load_grey(path: Path, side: int | None) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im = im.convert("L")
            if side is not None and im.size != (side, side):
                im = im.resize((side, side), Image.Resampling.BILINEAR)
            return np.asarray(im, dtype=np.float64).reshape(-1) / 255.0
    except OSError as e:
        raise fail(path, f"cannot read image: {e}") from e


def image_dir(path: Path) -> list[Path]:
    if not path.is_dir():
        raise fail(path, "directory not found")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"))
    if not files:
        raise fail(path, "no images")
    return files


def load_mvtec(root: Path, side: int) -> dict:
    """MVTec layout: train/good, test/<kind> (good = normal)."""
    xtr = np.stack([load_grey(p, side) for p in image_dir(root / "train" / "good")])
    kinds, xs = [], []
    tdir = root / "test"
    if not tdir.is_dir():
        raise fail(tdir, "directory not found")
    for kd in sorted(p for p in tdir.iterdir() if p.is_dir()):
        for p in image_dir(kd):
            xs.append(load_grey(p, side))
            kinds.append(kd.name)
    kinds = np.asarray(kinds)
    if "good" not in set(kinds):
        raise fail(tdir, "no test/good folder")
    return dict(train=xtr, test=np.stack(xs), y=(kinds != "good").astype(int), kinds=kinds)


def mel_filterbank(sr: int) -> np.ndarray:
    def hz2mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel2hz(m):
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    freqs = np.fft.rfftfreq(N_FFT, 1.0 / sr)
    pts = mel2hz(np.linspace(hz2mel(0.0), hz2mel(sr / 2.0), MEL_BANDS + 2))
    fb = np.zeros((MEL_BANDS, len(freqs)))
    for i in range(MEL_BANDS):
        lo, c, hi = pts[i], pts[i + 1], pts[i + 2]
        up = (freqs - lo) / (c - lo)
        down = (hi - freqs) / (hi - c)
        fb[i] = np.maximum(0.0, np.minimum(up, down))
    return fb


def audio_features(path: Path, fb_cache: dict) -> np.ndarray:
    try:
        sr, x = wavfile.read(path)
    except (OSError, ValueError) as e:
        raise fail(path, f"cannot read WAV: {e}") from e
    if x.ndim != 1:
        raise fail(path, f"expected mono, got shape {x.shape}")
    if np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float64) / float(np.iinfo(x.dtype).max)
    else:
        x = x.astype(np.float64)
    if len(x) < N_FFT:
        raise fail(path, f"{len(x)} samples, shorter than one {N_FFT}-sample frame")
    if sr not in fb_cache:
        fb_cache[sr] = mel_filterbank(sr)
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann
    frames = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::HOP] * win
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    logmel = 10.0 * np.log10(power @ fb_cache[sr].T + 1e-10)
    return np.concatenate([logmel.mean(axis=0), logmel.std(axis=0)])


def load_audio(root: Path) -> dict:
    fb_cache: dict = {}
    tr_files = sorted((root / "train").glob("normal_*.wav"))
    if not tr_files:
        raise fail(root / "train", "no normal_*.wav files")
    te_dir = root / "test"
    te_files = sorted(te_dir.glob("*.wav"))
    if not te_files:
        raise fail(te_dir, "no .wav files")
    xtr = np.stack([audio_features(p, fb_cache) for p in tr_files])
    xte = np.stack([audio_features(p, fb_cache) for p in te_files])
    y = np.asarray([p.name.startswith("anomaly_") for p in te_files], dtype=int)
    # Kinds, for the per-kind AUROC only (never shown to a peer).
    lpath = root / "labels.csv"
    kinds_csv = {}
    if lpath.is_file():
        with lpath.open(newline="") as fh:
            for r in csv.DictReader(fh):
                kinds_csv[r["file"]] = r["kind"]
    kinds, mismatches = [], []
    for p, lab in zip(te_files, y):
        name_kind = p.stem.split("_")[2] if lab and len(p.stem.split("_")) > 2 else "normal"
        csv_kind = kinds_csv.get(f"test/{p.name}")
        if csv_kind is not None and csv_kind != name_kind:
            mismatches.append(f"{p.name}: labels.csv {csv_kind}, name {name_kind}")
        kinds.append(csv_kind or name_kind)
    return dict(train=xtr, test=xte, y=y, kinds=np.asarray(kinds), kind_mismatches=mismatches,
                labels_csv=lpath.is_file())


# ---------------------------------------------------------------------------------------------
# Runner


class Runner:
    def __init__(self, data: Path, command: str, verbose: bool = True):
        self.data = data
        self.command = command
        self.records: list[dict] = []
        self.notes: list[str] = []
        self.verbose = verbose
        self.current = "(start)"

    def log(self, msg: str) -> None:
        if self.verbose:
            print(msg, file=sys.stderr, flush=True)

    def add(self, rec: dict) -> None:
        rec["command"] = self.command
        self.records.append(rec)
        m = rec["metrics"]
        self.log(f"  {rec['dataset']:<42} {rec['method']:<8} AUROC {m['auroc']:.4f}  "
                 f"AUPRC {m['auprc']:.4f}  {rec['wall_s']:.2f}s")

    # tables ------------------------------------------------------------------------------
    def tables(self, names: list[str]) -> None:
        for name in names:
            self.current = f"tabular/{name}"
            x, y, sp = load_table(self.data, name)
            for method in METHODS:
                per_seed, walls, params = [], [], None
                for s in sp["splits"]:
                    tr = np.asarray(s["train"], dtype=int)
                    te = np.asarray(s["test"], dtype=int)
                    xtr, xte = standardise(x[tr], x[te])
                    sc, wall, params = run_peer(method, xtr, xte, int(s["seed"]))
                    m = base_metrics(y[te], sc)
                    m["seed"] = int(s["seed"])
                    m["wall_s"] = wall
                    per_seed.append(m)
                    walls.append(wall)
                keys = ("auroc", "auprc", "f1_max")
                metrics = {k: float(np.mean([p[k] for p in per_seed])) for k in keys}
                metrics.update({f"{k}_std": float(np.std([p[k] for p in per_seed])) for k in keys})
                params = dict(params)
                params["random_state"] = "split seed" if method == "IForest" else None
                params.pop("n_train_fitted", None)
                s0 = sp["splits"][0]
                self.add(dict(
                    dataset=f"tabular/{name}", modality="table", method=method,
                    n_train=len(s0["train"]), n_test=len(s0["test"]),
                    n_test_anomalies=int(y[np.asarray(s0["test"], dtype=int)].sum()),
                    metrics=metrics, per_seed=per_seed, wall_s=float(np.sum(walls)),
                    wall_note=f"sum over {len(per_seed)} seeds (fit + score)",
                    features=FEATURES["table"], params={k: v for k, v in params.items() if v is not None},
                    split=f"tabular/splits/{name}.json, {len(sp['splits'])} seeds; metrics are the mean over seeds",
                ))

    # point series ------------------------------------------------------------------------
    def point_series(self, only_prefix: str | None = None) -> None:
        """Every point-labelled series, or only the first whose name starts with only_prefix."""
        records = point_series_records(self.data)
        if only_prefix is not None:
            records = [r for r in records if r["name"].startswith(only_prefix)][:1]
            if not records:
                raise fail(self.data / "timeseries", f"no series named {only_prefix}*")
        for sr in records:
            self.current = sr["file"]
            train, test = z_train(sr["train"], sr["test"])
            shift = float(np.abs(test.mean(axis=0)).max())
            if shift > 2.0:
                self.notes.append(
                    f"{sr['name']}: the test part's mean lies {shift:.1f} train standard deviations "
                    "from the train part's mean (trend or level shift), so with train-statistics "
                    "z-normalisation most test windows lie away from every train window")
            wtr, _ = window_matrix(train, SERIES_WINDOW, SERIES_STRIDE)
            wte, starts = window_matrix(test, SERIES_WINDOW, SERIES_STRIDE)
            if sr["y"].sum() == 0:
                self.notes.append(f"{sr['name']}: no anomalous test point; skipped")
                continue
            for method in METHODS:
                sc, wall, params = run_peer(method, wtr, wte, 0)
                t0 = time.perf_counter()
                pts = windows_to_points(sc, starts, SERIES_WINDOW, len(test))
                wall += time.perf_counter() - t0
                metrics = series_metrics(sr["y"], pts, sr["offset"], sr["ucr_range"])
                self.add(dict(
                    dataset=f"timeseries/{sr['name']}", modality="series", method=method,
                    n_train=len(wtr), n_test=len(test), n_test_anomalies=int(sr["y"].sum()),
                    unit="train: windows; test: points", metrics=metrics, wall_s=wall,
                    wall_note="fit + score + window-to-point mapping (metrics not timed)",
                    features=FEATURES["series-points"], params=params, split=sr["split"],
                    file=sr["file"],
                    top1_rule=("UCR: arg-max of the test scores in [begin - 100, end + 100)"
                               if sr["ucr_range"] else
                               "generalised: arg-max of the test scores within 100 points of "
                               "any labelled anomalous segment"),
                ))

    # UCR classification one-class ----------------------------------------------------------
    def ucr_classification(self) -> None:
        udir = self.data / "timeseries" / "ucr"
        if not udir.is_dir():
            raise fail(udir, "directory not found")
        for d in sorted(p for p in udir.iterdir() if p.is_dir()):
            self.current = str(d)
            ds = load_ucr_one_class(d)
            if ds["nan_values"]:
                self.notes.append(f"{ds['name']}: {ds['nan_values']} missing values (NaN) in the "
                                  "used rows, linearly interpolated within each row")
            if len(ds["train"]) <= LOF_K:
                self.notes.append(f"{ds['name']}: only {len(ds['train'])} train rows of the normal "
                                  f"class; LOF n_neighbors = {len(ds['train']) - 1}")
            for method in METHODS:
                sc, wall, params = run_peer(method, ds["train"], ds["test"], 0)
                self.add(dict(
                    dataset=f"timeseries/{ds['name']}", modality="series-classification",
                    method=method, n_train=len(ds["train"]), n_test=len(ds["test"]),
                    n_test_anomalies=int(ds["y"].sum()), metrics=base_metrics(ds["y"], sc),
                    wall_s=wall, features=FEATURES["series-classification"], params=params,
                    split=f"normal class {ds['normal_class']:g} (smallest label); train: its TRAIN "
                    "rows; test: every TEST row, other classes anomalous",
                ))

    # images ------------------------------------------------------------------------------
    def images(self) -> None:
        root = self.data / "images"
        elpv = root / "elpv-mono"
        self.current = str(elpv)
        ds = load_mvtec(elpv, IMAGE_SIDE)
        for method in METHODS:
            sc, wall, params = run_peer(method, ds["train"], ds["test"], 0)
            self.add(dict(
                dataset="images/elpv-mono", modality="image", method=method,
                n_train=len(ds["train"]), n_test=len(ds["test"]), n_test_anomalies=int(ds["y"].sum()),
                metrics=base_metrics(ds["y"], sc), wall_s=wall, features=FEATURES["image"],
                params=params, split="train/good; test/good + test/defect",
            ))
        # MNIST one-class
        mdir = root / "mnist"
        self.current = str(mdir)
        ipath, lpath = mdir / "images_u8_N28x28.npy", mdir / "labels_u8.npy"
        for p in (ipath, lpath):
            if not p.is_file():
                raise fail(p, "file not found")
        try:
            imgs = np.load(ipath)
            labels = np.load(lpath)
        except (OSError, ValueError) as e:
            raise fail(ipath, f"cannot load: {e}") from e
        if imgs.ndim != 3 or len(imgs) != len(labels):
            raise fail(ipath, f"shape {imgs.shape} does not match labels {labels.shape}")
        x = imgs.reshape(len(imgs), -1).astype(np.float64) / 255.0
        idx = np.arange(len(x))
        test_mask = idx % 5 == 0
        for method in METHODS:
            per_digit, walls = [], []
            for d in range(10):
                tr = (~test_mask) & (labels == d)
                sc, wall, params = run_peer(method, x[tr], x[test_mask], 0)
                m = base_metrics((labels[test_mask] != d).astype(int), sc)
                m["digit"] = d
                m["n_train"] = int(tr.sum())
                m["n_test_anomalies"] = int((labels[test_mask] != d).sum())
                m["wall_s"] = wall
                per_digit.append(m)
                walls.append(wall)
            keys = ("auroc", "auprc", "f1_max")
            params.pop("n_train_fitted", None)
            self.add(dict(
                dataset="images/mnist", modality="image", method=method,
                n_train=f"{min(p['n_train'] for p in per_digit)}-{max(p['n_train'] for p in per_digit)} per digit",
                n_test=int(test_mask.sum()),
                n_test_anomalies=f"{min(p['n_test_anomalies'] for p in per_digit)}-"
                f"{max(p['n_test_anomalies'] for p in per_digit)} per digit (every other digit)",
                metrics={k: float(np.mean([p[k] for p in per_digit])) for k in keys},
                per_digit=per_digit, wall_s=float(np.sum(walls)),
                wall_note="sum over the ten digits (fit + score)", features=FEATURES["mnist"],
                params=params, split="digit d: train class d with i % 5 != 0; test every i % 5 == 0; "
                "anomaly = class != d; metrics are the mean over the ten digits",
            ))
        # textures-ad
        for cat in ("brick", "grass"):
            self.current = str(root / "textures-ad" / cat)
            ds = load_mvtec(root / "textures-ad" / cat, IMAGE_SIDE)
            for method in METHODS:
                sc, wall, params = run_peer(method, ds["train"], ds["test"], 0)
                metrics = base_metrics(ds["y"], sc)
                good = ds["kinds"] == "good"
                per_defect = {}
                for k in sorted(set(ds["kinds"]) - {"good"}):
                    sel = good | (ds["kinds"] == k)
                    per_defect[k] = float(roc_auc_score(ds["y"][sel], sc[sel]))
                metrics["pixel_auroc"] = None
                metrics["aupro_0.3"] = None
                self.add(dict(
                    dataset=f"images/textures-ad/{cat}", modality="image", method=method,
                    n_train=len(ds["train"]), n_test=len(ds["test"]), n_test_anomalies=int(ds["y"].sum()),
                    metrics=metrics, auroc_per_defect=per_defect, wall_s=wall,
                    features=FEATURES["image"], params=params,
                    pixel_note="classical peers give no anomaly map: image level only "
                    "(pixel AUROC and AUPRO@0.3 not applicable)",
                    split="train/good; every image of test/ (not good = anomaly)",
                ))

    # audio -------------------------------------------------------------------------------
    def audio(self) -> None:
        for machine in ("mining-hard", "sawmill-hard"):
            root = self.data / "audio" / machine
            self.current = str(root)
            ds = load_audio(root)
            if ds["kind_mismatches"]:
                self.notes.append(f"audio/{machine}: kind in labels.csv differs from the file name: "
                                  + "; ".join(ds["kind_mismatches"]))
            xtr, xte = standardise(ds["train"], ds["test"])
            normal = ds["y"] == 0
            for method in METHODS:
                sc, wall, params = run_peer(method, xtr, xte, 0)
                metrics = base_metrics(ds["y"], sc)
                metrics["pauc_0.1"] = float(roc_auc_score(ds["y"], sc, max_fpr=0.1))
                per_kind = {}
                for k in sorted(set(ds["kinds"][~normal])):
                    sel = normal | (ds["kinds"] == k)
                    per_kind[k] = float(roc_auc_score(ds["y"][sel], sc[sel]))
                self.add(dict(
                    dataset=f"audio/{machine}", modality="audio", method=method,
                    n_train=len(xtr), n_test=len(xte), n_test_anomalies=int(ds["y"].sum()),
                    metrics=metrics, auroc_per_kind=per_kind, wall_s=wall,
                    features=FEATURES["audio"], params=params,
                    split="train/normal_*; test/ (anomaly_* = anomaly); the kind (labels.csv) "
                    "is used for the per-kind AUROC only",
                ))


# ---------------------------------------------------------------------------------------------
# Summary and output

MODALITY_OF = {"table": "tables", "series": "series", "series-classification": "series",
               "image": "images", "audio": "audio"}


def modality_means(records: list[dict]) -> dict:
    """Mean AUROC per modality and method. Each dataset counts once; the twelve UCR
    classification sets count as ONE series dataset (their mean), as the ten MNIST digits do."""
    out = {}
    for mod in ("tables", "series", "images", "audio"):
        per_method, per_method_pr, entries = {}, {}, None
        for method in METHODS:
            vals, prs, names = [], [], []
            ucr = [r["metrics"]["auroc"] for r in records
                   if r["method"] == method and r["modality"] == "series-classification"]
            ucr_pr = [r["metrics"]["auprc"] for r in records
                      if r["method"] == method and r["modality"] == "series-classification"]
            for r in records:
                if r["method"] != method or MODALITY_OF[r["modality"]] != mod:
                    continue
                if r["modality"] == "series-classification":
                    continue
                vals.append(r["metrics"]["auroc"])
                prs.append(r["metrics"]["auprc"])
                names.append(r["dataset"])
            if mod == "series" and ucr:
                vals.append(float(np.mean(ucr)))
                prs.append(float(np.mean(ucr_pr)))
                names.append(f"timeseries/ucr (mean of {len(ucr)} one-class sets)")
            if vals:
                per_method[method] = float(np.mean(vals))
                per_method_pr[method] = float(np.mean(prs))
                entries = names
        if per_method:
            best = max(per_method, key=per_method.get)
            flat = None
            if mod == "series":
                flat = {m: float(np.mean([r["metrics"]["auroc"] for r in records
                                          if r["method"] == m and MODALITY_OF[r["modality"]] == "series"]))
                        for m in per_method}
            out[mod] = {"mean_auroc": per_method, "mean_auprc": per_method_pr, "best_peer": best,
                        "best_mean_auroc": per_method[best], "datasets": entries}
            if flat is not None:
                out[mod]["mean_auroc_every_series_record"] = flat
    return out


def fmt(v, nd=3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def markdown(result: dict) -> str:
    L = []
    L.append("# Classical peers (IForest, KNN, LOF) on the PROTOCOL.md datasets")
    L.append("")
    L.append(f"Generated by `{result['command']}` on {result['generated']} "
             f"(python {result['versions']['python']}, numpy {result['versions']['numpy']}, "
             f"scipy {result['versions']['scipy']}, scikit-learn {result['versions']['scikit-learn']}, "
             f"pillow {result['versions']['pillow']}, TSB-AD {result['versions']['TSB-AD'] or 'missing'}). "
             f"Every figure below is in `{result['json']}` with its per-seed / per-digit values. "
             "Scores: higher = more anomalous; fitted on normal train data only.")
    L.append("")
    L.append("## Mean AUROC per modality")
    L.append("")
    L.append("| modality | " + " | ".join(METHODS) + " | best peer | datasets (each counts once) "
             "| mean AUPRC " + " / ".join(METHODS) + " |")
    L.append("|---|" + "---|" * len(METHODS) + "---|---|---|")
    for mod, v in result["modality_mean_auroc"].items():
        L.append(f"| {mod} | " + " | ".join(fmt(v["mean_auroc"].get(m)) for m in METHODS)
                 + f" | **{v['best_peer']} {v['best_mean_auroc']:.3f}** | {len(v['datasets'])} | "
                 + " / ".join(fmt(v["mean_auprc"].get(m)) for m in METHODS) + " |")
    if any(r["modality"] == "series-classification" for r in result["records"]):
        flat = result["modality_mean_auroc"]["series"]["mean_auroc_every_series_record"]
        L.append("")
        L.append("Series: the twelve UCR classification sets count as one dataset (their mean). "
                 "Counting each of them separately instead gives " +
                 ", ".join(f"{m} {flat[m]:.3f}" for m in flat) + ".")
    L.append("")
    L.append("## Per dataset")
    L.append("")
    L.append("| dataset | method | AUROC | AUPRC | F1-max | extra | wall s |")
    L.append("|---|---|---|---|---|---|---|")
    for r in result["records"]:
        m = r["metrics"]
        extra = []
        if "auroc_std" in m:
            extra.append(f"AUROC sd over seeds {m['auroc_std']:.3f}")
        if "top1_hit" in m:
            extra.append(f"top-1 hit {int(m['top1_hit'])}")
            extra.append(f"VUS-PR {fmt(m['vus_pr'])}")
        if "pauc_0.1" in m:
            extra.append(f"pAUC@0.1 {m['pauc_0.1']:.3f}")
            extra.append("per kind " + ", ".join(f"{k} {v:.3f}" for k, v in r["auroc_per_kind"].items()))
        if "auroc_per_defect" in r:
            extra.append("per defect " + ", ".join(f"{k} {v:.3f}" for k, v in r["auroc_per_defect"].items()))
            extra.append("pixel: n/a (no map)")
        if "per_digit" in r:
            extra.append("mean of 10 digits")
        L.append(f"| {r['dataset']} | {r['method']} | {m['auroc']:.3f} | {m['auprc']:.3f} | "
                 f"{m['f1_max']:.3f} | {'; '.join(extra)} | {r['wall_s']:.2f} |")
    L.append("")
    L.append("## What the peers see")
    L.append("")
    for k, v in result["features"].items():
        L.append(f"- {k}: {v}.")
    L.append("")
    L.append("## The peers")
    L.append("")
    for k, v in result["methods"].items():
        L.append(f"- {k}: {v}.")
    L.append("")
    L.append("Wall time: fit + score of one peer, single process, on the machine named in the JSON "
             "(`machine`), summed over the seeds (tables) or digits (MNIST). Feature extraction and "
             "metric computation are not timed.")
    if result["notes"]:
        L.append("")
        L.append("## Notes on the data")
        L.append("")
        for n in result["notes"]:
            L.append(f"- {n}")
    L.append("")
    return "\n".join(L)


TABLES = ["arrhythmia", "breastw", "cardio", "glass", "ionosphere", "lympho", "pima", "wbc", "wine"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("DMAD_DATA", "../shared/data"),
                    help="the data directory of PROTOCOL.md (default: $DMAD_DATA, else ../shared/data)")
    ap.add_argument("--out", default="docs/results/classical",
                    help="output path without extension: writes <out>.json and <out>.md "
                    "(default docs/results/classical)")
    ap.add_argument("--quick", action="store_true",
                    help="two small datasets only (tabular/wbc and the UCR anomaly series), for CI")
    ap.add_argument("--only", choices=["tables", "series", "images", "audio"], action="append",
                    help="run only these modalities (repeatable)")
    ap.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = ap.parse_args(argv)

    data = Path(args.data)
    if not data.is_dir():
        print(f"error: {data}: data directory not found (set --data or DMAD_DATA)", file=sys.stderr)
        return 2
    command = os.environ.get("DMAD_PEERS_COMMAND") or shlex.join(
        ["python", "benches/peers/classical.py"] + (sys.argv[1:] if argv is None else argv))
    warnings.filterwarnings("ignore", category=UserWarning)
    runner = Runner(data, command, verbose=not args.quiet)
    t0 = time.perf_counter()
    mods = set(args.only or ["tables", "series", "images", "audio"])
    try:
        if args.quick:
            runner.tables(["wbc"])
            runner.point_series(only_prefix="ucr-anomaly/")
        else:
            if "tables" in mods:
                runner.tables(TABLES)
            if "series" in mods:
                runner.point_series()
                runner.ucr_classification()
            if "images" in mods:
                runner.images()
            if "audio" in mods:
                runner.audio()
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (ValueError, RuntimeError) as e:
        print(f"error: {runner.current}: {e}", file=sys.stderr)
        return 2
    if _tsb_generate_curve is None:
        runner.notes.append("VUS-PR: TSB-AD is not installed; vus_pr is null (pip install --no-deps TSB-AD==1.5)")
    total = time.perf_counter() - t0

    result = {
        "tool": "benches/peers/classical.py",
        "command": command,
        "data": str(args.data),
        "quick": bool(args.quick),
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "total_wall_s": total,
        "machine": f"{platform.machine()}, {os.cpu_count()} logical cores, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}",
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "scipy": scipy.__version__, "scikit-learn": sklearn.__version__,
                     "pillow": Image.__version__, "TSB-AD": TSB_AD_VERSION},
        "protocol": "PROTOCOL.md of the data directory: its splits and metrics",
        "metrics": {
            "auroc": "sklearn roc_auc_score", "auprc": "sklearn average_precision_score",
            "f1_max": "best F1 over all thresholds (sklearn precision_recall_curve)",
            "top1_hit": "series: 1 if the arg-max of the test scores lies within [begin - 100, end + 100) "
            "of the (UCR) anomaly; for NAB/Yahoo/GutenTAG: of any labelled anomalous segment",
            "vus_pr": f"TSB-AD {TSB_AD_VERSION or '(missing)'} generate_curve(labels, scores, "
            f"slidingWindow={VUS_WINDOW}) (version 'opt', thre 250), the VUS-PR value",
            "pauc_0.1": "audio: sklearn roc_auc_score(max_fpr=0.1) (McClish-corrected, DCASE)",
            "auroc_per_kind": "audio: normal test clips against the clips of one kind",
            "auroc_per_defect": "textures-ad: test/good against one defect type",
            "pixel_auroc, aupro_0.3": "not applicable: the classical peers give no anomaly map",
        },
        "features": FEATURES,
        "methods": METHOD_DEFS,
        "modality_mean_auroc": modality_means(runner.records),
        "notes": runner.notes,
        "records": runner.records,
    }
    out = Path(args.out)
    result["json"] = out.with_suffix(".json").name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    md = markdown(result)
    out.with_suffix(".md").write_text(md)
    print(md)
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')} in {total:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
