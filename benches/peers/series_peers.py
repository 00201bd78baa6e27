#!/usr/bin/env python3
"""Time-series peers (issue 21): matrix-profile AB-join (STUMPY), Sub-PCA and Sub-KNN (as TSB-AD
1.5 defines them) on every time-series dataset of PROTOCOL.md.

Run (from the repository root):
    benches/peers/run_series_peers.sh                  # creates the venv, runs everything
    benches/peers/run_series_peers.sh --quick --out /tmp/series-quick   # Yahoo + ucr/Beef (CI)
    python benches/peers/series_peers.py --only yahoo --only ucr/Beef

Reads the data only from --data (default: $DMAD_DATA, else ../shared/data) with the loaders of
classical.py (imported, so both scripts see the same splits). Writes <out>.json (every record,
metric, wall time, window and command) and <out>.md (a readable table, with the strongest peer
of each dataset among these and the classical peers of --classical), and prints the table.
Deterministic: no randomness (PCA's full SVD and exact nearest neighbours).

Scores are "higher = more anomalous". Peers are fitted on the normal train part only, and the
window length comes from the train part only (never from the test part or its labels).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import classical as C  # noqa: E402 - the shared loaders and metrics

from scipy.spatial.distance import cdist  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.neighbors import NearestNeighbors  # noqa: E402

try:
    import stumpy
    from importlib.metadata import version as _pkg_version

    STUMPY_VERSION = _pkg_version("stumpy")
    NUMBA_VERSION = _pkg_version("numba")
except ImportError as e:  # pragma: no cover - environment problem
    sys.exit(f"error: {e}; run benches/peers/run_series_peers.sh (it installs the pinned packages)")

METHODS = ("MP-join", "Sub-PCA", "Sub-KNN")
# TSB-AD 1.5's tuned univariate settings (HP_list.py, Optimal_Uni_algo_HP_dict): the rank of
# the autocorrelation peak that gives the window (periodicity) and each model's parameter.
PERIODICITY = {"MP-join": 1, "Sub-PCA": 1, "Sub-KNN": 2}
SUB_KNN_K = 50
# TSB-AD's find_length_rank: ACF up to lag 400 of the first 20,000 points, peaks searched from
# lag 3; a peak index (from lag 3) outside [3, 300] or no peak at all gives the fallback 125.
ACF_LAGS = 400
ACF_BASE = 3
ACF_MAX_POINTS = 20000
PEAK_BOUNDS = (3, 300)
FALLBACK_WINDOW = 125
# Explained-variance ratios at or below this are a rank deficiency (fewer train samples than
# dimensions), not a direction: dividing by them would only amplify rounding noise.
PCA_RATIO_FLOOR = 1e-12
# UCR one-class sets: the most train points the matrix-profile join is given (whole train rows,
# evenly spaced): STUMPY's AB-join costs (test points) x (train points), FordA is 923,000 x
# 660,000 otherwise. Recorded in the record's params where it applies.
MP_MAX_TRAIN_POINTS = 50000

METHOD_DEFS = {
    "MP-join": "matrix-profile AB-join (STUMPY stump(T_A=test, m, T_B=train, "
    "ignore_trivial=False)): each test subsequence of length m's z-normalised Euclidean "
    "distance to its nearest train subsequence; a point's score is the MAX over the test "
    "subsequences covering it; m from the train part (periodicity rank 1)",
    "Sub-PCA": "TSB-AD's Sub-PCA (PyOD PCA on sliding windows): windows of length w, stride 1, "
    "standardised column-wise with the train windows' mean and standard deviation (columns "
    "of zero deviation dropped), sklearn PCA(n_components=None) fitted on the train windows; "
    "score = sum over the components j of ||x - v_j|| / r_j (v_j the unit component, r_j its "
    "explained-variance ratio; components with r_j <= 1e-12, a rank deficiency, dropped); a "
    "window's score goes to its centre point, the first and last ones padded (TSB-AD's "
    "mapping); w from the train part (periodicity rank 1)",
    "Sub-KNN": f"TSB-AD's Sub-KNN (PyOD KNN on sliding windows): windows of length w, stride "
    f"1, each z-normalised (ddof 1; zero deviation -> 0, train and test alike); score = "
    f"distance to the k-th nearest train window, k = min({SUB_KNN_K}, n_train) (the largest of "
    "the k, 'largest'); a window's score goes to its centre point (TSB-AD's mapping); w from "
    "the train part (periodicity rank 2, TSB-AD's tuned setting)",
}

WINDOW_RULE = (
    "TSB-AD 1.5's find_length_rank on the TRAIN part only (the first 20,000 points): the "
    "autocorrelation (statsmodels acf, fft, re-implemented in numpy) up to lag 400, its local "
    "maxima from lag 3; rank 1 = the highest peak, rank 2 = the highest peak at a longer lag "
    "than that one (else rank 1); a peak at lag < 6 or > 303, or none, gives the fallback 125; "
    "then capped at half the train length"
)

UCR_FORMS = {
    "MP-join": "each test row's subsequences of length m (m from the normal train rows "
    "concatenated, the same rule, capped at the row length) joined against every subsequence "
    "of every train row (rows separated by NaN so that no subsequence crosses two rows); the "
    "row's score is the MAX over its subsequences of the z-normalised nearest-neighbour "
    "distance; at most 50,000 train points (evenly spaced whole rows)",
    "Sub-PCA": "the whole z-normalised row is the window: column-wise standardisation with the "
    "train rows, PCA on the train rows, the same weighted distance",
    "Sub-KNN": f"the whole row is the window (z-normalised, ddof 1): distance to the k-th "
    f"nearest train row, k = min({SUB_KNN_K}, n_train)",
}


# ---------------------------------------------------------------------------------------------
# Window length from the train part (TSB-AD's find_length_rank)


def acf(x: np.ndarray, nlags: int) -> np.ndarray:
    """statsmodels' acf(x, nlags, fft=True) (adjusted=False): the biased autocovariance of the
    demeaned series over its lag-0 value, lags 0..min(nlags, n - 1)."""
    x = np.asarray(x, dtype=np.float64) - np.mean(x)
    n = len(x)
    size = 1 << (2 * n - 1).bit_length()
    f = np.fft.rfft(x, size)
    acov = np.fft.irfft(f * np.conj(f), size)[:n] / n
    if acov[0] == 0:
        return np.zeros(min(nlags, n - 1) + 1)
    return (acov / acov[0])[: nlags + 1]


def find_length_rank(x: np.ndarray, rank: int = 1) -> int:
    """The window (period) of a 1-D series, as TSB-AD 1.5's find_length_rank."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)[:ACF_MAX_POINTS]
    ac = acf(x, ACF_LAGS)[ACF_BASE:]
    if len(ac) < 3:
        return FALLBACK_WINDOW
    # scipy's argrelextrema(ac, np.greater): strictly greater than both neighbours.
    peaks = np.nonzero((ac[1:-1] > ac[:-2]) & (ac[1:-1] > ac[2:]))[0] + 1
    if len(peaks) == 0:
        return FALLBACK_WINDOW
    order = np.argsort(ac[peaks])[::-1]
    pick = order[0]
    if rank == 2:
        for i in order[1:]:
            if i > order[0]:
                pick = i
                break
    idx = int(peaks[pick])
    if idx < PEAK_BOUNDS[0] or idx > PEAK_BOUNDS[1]:
        return FALLBACK_WINDOW
    return idx + ACF_BASE


def train_window(train: np.ndarray, rank: int) -> tuple[int, dict]:
    """The window of a point series from its train part; (w, how) with the raw period."""
    period = find_length_rank(train, rank)
    w = min(period, len(train) // 2)
    how = {"period_rank": rank, "train_period": period, "window": w}
    if w != period:
        how["capped_at_half_train"] = True
    return w, how


# ---------------------------------------------------------------------------------------------
# Peers on a point series (1-D train and test parts)


def windows(x: np.ndarray, w: int) -> np.ndarray:
    return np.lib.stride_tricks.sliding_window_view(np.asarray(x, dtype=np.float64), w)


def centre_points(s: np.ndarray, w: int) -> np.ndarray:
    """TSB-AD's window-to-point mapping: window i's score goes to point i + ceil((w - 1) / 2);
    the first and last scores are repeated over the edges (n - w + 1 scores -> n points)."""
    return np.concatenate([np.full(math.ceil((w - 1) / 2), s[0]), s, np.full((w - 1) // 2, s[-1])])


def max_cover_points(s: np.ndarray, w: int) -> np.ndarray:
    """A point's score = the largest score of the windows covering it (n - w + 1 -> n)."""
    pad = np.concatenate([np.full(w - 1, -np.inf), s, np.full(w - 1, -np.inf)])
    return windows(pad, w).max(axis=1)


def mp_join_scores(train: np.ndarray, test: np.ndarray, m: int) -> np.ndarray:
    """Nearest-neighbour z-normalised distance of each subsequence of test within train."""
    p = stumpy.stump(np.asarray(test, dtype=np.float64), m, T_B=np.asarray(train, dtype=np.float64),
                     ignore_trivial=False)
    return np.asarray(p[:, 0], dtype=np.float64)


def standardise_columns(xtr: np.ndarray, xte: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """StandardScaler fitted on xtr (ddof 0), columns of zero deviation dropped (TSB-AD's
    zero_pruning); returns both and the number of columns kept."""
    mu, sd = xtr.mean(axis=0), xtr.std(axis=0)
    keep = sd > 0
    return (xtr[:, keep] - mu[keep]) / sd[keep], (xte[:, keep] - mu[keep]) / sd[keep], int(keep.sum())


def sub_pca_scores(xtr: np.ndarray, xte: np.ndarray) -> tuple[np.ndarray, dict]:
    ztr, zte, kept = standardise_columns(xtr, xte)
    pca = PCA(n_components=None, svd_solver="full").fit(ztr)
    ratio = pca.explained_variance_ratio_
    ok = ratio > PCA_RATIO_FLOOR
    s = (cdist(zte, pca.components_[ok]) / ratio[ok]).sum(axis=1)
    return s, {"n_components": int(ok.sum()), "columns_kept": kept,
               "components_dropped_rank": int((~ok).sum())}


def znorm_rows_ddof1(x: np.ndarray) -> np.ndarray:
    mu = x.mean(axis=1, keepdims=True)
    sd = x.std(axis=1, ddof=1, keepdims=True)
    return np.where(sd > 0, (x - mu) / np.where(sd > 0, sd, 1.0), 0.0)


def sub_knn_scores(xtr: np.ndarray, xte: np.ndarray) -> tuple[np.ndarray, dict]:
    ztr, zte = znorm_rows_ddof1(xtr), znorm_rows_ddof1(xte)
    k = min(SUB_KNN_K, len(ztr))
    dist, _ = NearestNeighbors(n_neighbors=k).fit(ztr).kneighbors(zte)
    return dist[:, -1], {"k": k, "reduce": "largest"}


def point_peer(method: str, train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, float, dict]:
    """Fits on the train part, scores every test point; (scores, wall s of window choice + fit +
    score + mapping, params)."""
    t0 = time.perf_counter()
    w, params = train_window(train, PERIODICITY[method])
    if len(test) < w:
        raise ValueError(f"test part of {len(test)} points is shorter than the window {w}")
    if method == "MP-join":
        pts = max_cover_points(mp_join_scores(train, test, w), w)
    else:
        fn = sub_pca_scores if method == "Sub-PCA" else sub_knn_scores
        s, extra = fn(windows(train, w), windows(test, w))
        params.update(extra)
        pts = centre_points(s, w)
    wall = time.perf_counter() - t0
    if len(pts) != len(test):
        raise RuntimeError(f"{len(pts)} point scores for {len(test)} points")
    return pts, wall, params


# ---------------------------------------------------------------------------------------------
# Peers on the UCR one-class sets (whole series)


def nan_joined(rows: np.ndarray) -> np.ndarray:
    """The rows one after another, a NaN between two (no subsequence spans two rows)."""
    n, length = rows.shape
    out = np.full(n * (length + 1) - 1, np.nan)
    for i, r in enumerate(rows):
        out[i * (length + 1): i * (length + 1) + length] = r
    return out


def ucr_peer(method: str, xtr: np.ndarray, xte: np.ndarray) -> tuple[np.ndarray, float, dict]:
    t0 = time.perf_counter()
    length = xtr.shape[1]
    if method == "MP-join":
        period = find_length_rank(xtr.reshape(-1), PERIODICITY[method])
        m = min(period, length)
        params = {"period_rank": PERIODICITY[method], "train_period": period, "window": m}
        rows = xtr
        if rows.size > MP_MAX_TRAIN_POINTS:
            keep = max(1, MP_MAX_TRAIN_POINTS // length)
            idx = np.linspace(0, len(rows) - 1, keep).round().astype(int)
            rows = rows[idx]
            params["train_rows_used"] = f"{len(rows)} of {len(xtr)} (evenly spaced)"
        p = mp_join_scores(nan_joined(rows), nan_joined(xte), m)
        per_row = length - m + 1
        s = np.empty(len(xte))
        for i in range(len(xte)):
            s[i] = p[i * (length + 1): i * (length + 1) + per_row].max()
    elif method == "Sub-PCA":
        s, params = sub_pca_scores(xtr, xte)
        params["window"] = f"the whole row ({length})"
    else:
        s, params = sub_knn_scores(xtr, xte)
        params["window"] = f"the whole row ({length})"
    return s, time.perf_counter() - t0, params


# ---------------------------------------------------------------------------------------------
# Runner


def jit_warmup() -> float:
    """Compiles STUMPY's numba kernels once (timed; not part of any dataset's wall time)."""
    r = np.random.default_rng(0)
    t0 = time.perf_counter()
    stumpy.stump(r.standard_normal(64), 8, T_B=r.standard_normal(64), ignore_trivial=False)
    return time.perf_counter() - t0


class Runner:
    def __init__(self, data: Path, command: str, only: list[str] | None, verbose: bool = True):
        self.data = data
        self.command = command
        self.only = only
        self.records: list[dict] = []
        self.notes: list[str] = []
        self.verbose = verbose
        self.current = "(start)"

    def wanted(self, name: str) -> bool:
        return not self.only or any(o in name for o in self.only)

    def log(self, msg: str) -> None:
        if self.verbose:
            print(msg, file=sys.stderr, flush=True)

    def add(self, rec: dict) -> None:
        rec["command"] = self.command
        self.records.append(rec)
        m = rec["metrics"]
        vus = m.get("vus_pr")
        self.log(f"  {rec['dataset']:<42} {rec['method']:<8} AUROC {m['auroc']:.4f}  "
                 f"AUPRC {m['auprc']:.4f}  VUS-PR {C.fmt(vus)}  w {rec['params'].get('window')}  "
                 f"{rec['wall_s']:.2f}s")

    def point_series(self) -> None:
        for sr in C.point_series_records(self.data):
            name = f"timeseries/{sr['name']}"
            if not self.wanted(name):
                continue
            self.current = sr["file"]
            if sr["train"].shape[1] != 1:
                raise ValueError(f"{sr['train'].shape[1]} channels; these peers take one")
            if sr["y"].sum() == 0:
                self.notes.append(f"{sr['name']}: no anomalous test point; skipped")
                continue
            train, test = C.z_train(sr["train"], sr["test"])
            train, test = train[:, 0], test[:, 0]
            for method in METHODS:
                pts, wall, params = point_peer(method, train, test)
                if not np.all(np.isfinite(pts)):
                    raise RuntimeError(f"{method}: non-finite scores")
                metrics = C.series_metrics(sr["y"], pts, sr["offset"], sr["ucr_range"])
                self.add(dict(
                    dataset=name, modality="series", method=method,
                    n_train=len(train), n_test=len(test), n_test_anomalies=int(sr["y"].sum()),
                    unit="points", metrics=metrics, wall_s=wall,
                    wall_note="window choice + fit + score + window-to-point mapping "
                    "(numba compilation excluded, metrics not timed)",
                    params=params, split=sr["split"], file=sr["file"],
                ))

    def ucr_classification(self) -> None:
        udir = self.data / "timeseries" / "ucr"
        if not udir.is_dir():
            raise C.fail(udir, "directory not found")
        for d in sorted(p for p in udir.iterdir() if p.is_dir()):
            name = f"timeseries/ucr/{d.name}"
            if not self.wanted(name):
                continue
            self.current = str(d)
            ds = C.load_ucr_one_class(d)
            for method in METHODS:
                s, wall, params = ucr_peer(method, ds["train"], ds["test"])
                if not np.all(np.isfinite(s)):
                    raise RuntimeError(f"{method}: non-finite scores")
                self.add(dict(
                    dataset=name, modality="series-classification", method=method,
                    n_train=len(ds["train"]), n_test=len(ds["test"]),
                    n_test_anomalies=int(ds["y"].sum()), unit="rows",
                    metrics=C.base_metrics(ds["y"], s), wall_s=wall,
                    wall_note="fit + score (numba compilation excluded)", params=params,
                    split=f"one-class: normal class {ds['normal_class']:g} (smallest label); "
                    "train on its TRAIN rows, test on every TEST row",
                ))


# ---------------------------------------------------------------------------------------------
# Summary and output


def dataset_entries(records: list[dict]) -> list[str]:
    out = []
    for r in records:
        if r["dataset"] not in out:
            out.append(r["dataset"])
    return out


def series_means(records: list[dict], methods) -> dict:
    """Mean AUROC and VUS-PR per method over the series entries: each point-labelled series
    once, the UCR one-class sets as ONE entry (their mean), as classical.py and the report."""
    out = {}
    for method in methods:
        rs = [r for r in records if r["method"] == method]
        point = [r for r in rs if r["modality"] == "series"]
        ucr = [r["metrics"]["auroc"] for r in rs if r["modality"] == "series-classification"]
        vals = [r["metrics"]["auroc"] for r in point] + ([float(np.mean(ucr))] if ucr else [])
        vus = [r["metrics"].get("vus_pr") for r in point]
        if vals:
            out[method] = {
                "mean_auroc": float(np.mean(vals)), "entries": len(vals),
                "ucr_sets_in_one_entry": len(ucr),
                "mean_vus_pr_point_series": (float(np.mean(vus)) if vus and None not in vus else None),
            }
    return out


def load_classical(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    try:
        v = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return [r for r in v.get("records", []) if r.get("modality") in ("series", "series-classification")]


def strongest(records: list[dict], classical: list[dict]) -> dict:
    """Per series dataset: the peer with the highest AUROC among these and the classical ones."""
    out = {}
    pool = records + classical
    for ds in dataset_entries(records):
        rs = [r for r in pool if r["dataset"] == ds]
        best = max(rs, key=lambda r: r["metrics"]["auroc"])
        out[ds] = {"peer": best["method"], "auroc": best["metrics"]["auroc"],
                   "vus_pr": best["metrics"].get("vus_pr"),
                   "source": "series_peers" if best in records else "classical"}
    return out


def markdown(result: dict, classical: list[dict]) -> str:
    v = result["versions"]
    L = [
        "# Time-series peers (MP-join, Sub-PCA, Sub-KNN) on the PROTOCOL.md series",
        "",
        f"Generated by `{result['command']}` on {result['generated']} (python {v['python']}, "
        f"numpy {v['numpy']}, scipy {v['scipy']}, scikit-learn {v['scikit-learn']}, stumpy "
        f"{v['stumpy']}, numba {v['numba']}, TSB-AD {v['TSB-AD'] or 'missing'}). Every figure is "
        f"in `{result['json']}`. Scores: higher = more anomalous; fitted on normal train data "
        f"only; windows from the train part only. STUMPY's numba compilation took "
        f"{result['jit_warmup_s']:.1f} s once per process (not in the wall times).",
        "",
        "## Mean AUROC over the series entries",
        "",
        "| method | mean AUROC | entries | mean VUS-PR (point-labelled series) |",
        "|---|---|---|---|",
    ]
    for m, s in result["series_mean"].items():
        L.append(f"| {m} | {s['mean_auroc']:.3f} | {s['entries']} (UCR one-class sets: "
                 f"{s['ucr_sets_in_one_entry']} as one) | {C.fmt(s['mean_vus_pr_point_series'])} |")
    L += ["", "## Per dataset: AUROC / VUS-PR / wall s (window)", "",
          "| dataset | " + " | ".join(METHODS) + " | strongest peer (with IForest, KNN, LOF) |",
          "|---|" + "---|" * len(METHODS) + "---|"]
    for ds in dataset_entries(result["records"]):
        row = f"| {ds.removeprefix('timeseries/')} |"
        for m in METHODS:
            r = next((r for r in result["records"] if r["dataset"] == ds and r["method"] == m), None)
            if r is None:
                row += " - |"
                continue
            mm = r["metrics"]
            row += (f" {mm['auroc']:.3f} / {C.fmt(mm.get('vus_pr'))} / {r['wall_s']:.2f} "
                    f"(w {r['params'].get('window')}) |")
        b = result["strongest_peer"][ds]
        row += f" **{b['peer']}** {b['auroc']:.3f} (VUS-PR {C.fmt(b['vus_pr'])}) |"
        L.append(row)
    L += ["", "Point-labelled series also: AUPRC / F1-max / top-1 hit", "",
          "| dataset | " + " | ".join(METHODS) + " |", "|---|" + "---|" * len(METHODS)]
    for ds in dataset_entries(result["records"]):
        rs = {r["method"]: r for r in result["records"] if r["dataset"] == ds}
        if next(iter(rs.values()))["modality"] != "series":
            continue
        L.append(f"| {ds.removeprefix('timeseries/')} | " + " | ".join(
            f"{rs[m]['metrics']['auprc']:.3f} / {rs[m]['metrics']['f1_max']:.3f} / "
            f"{int(rs[m]['metrics']['top1_hit'])}" if m in rs else "-" for m in METHODS) + " |")
    L += ["", "## The peers", ""]
    L += [f"- {k}: {d}." for k, d in result["methods"].items()]
    L += ["", f"Window: {result['window_rule']}.", "", "UCR one-class sets (whole series):", ""]
    L += [f"- {k}: {d}." for k, d in result["ucr_forms"].items()]
    if classical:
        L += ["", f"The classical peers in the last column come from `{result['classical']}`."]
    if result["notes"]:
        L += ["", "## Notes", ""] + [f"- {n}" for n in result["notes"]]
    L.append("")
    return "\n".join(L)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.environ.get("DMAD_DATA", "../shared/data"),
                    help="the data directory of PROTOCOL.md (default: $DMAD_DATA, else ../shared/data)")
    ap.add_argument("--out", default="docs/results/series_peers",
                    help="output path without extension: <out>.json and <out>.md")
    ap.add_argument("--classical", default="docs/results/classical.json",
                    help="classical.py's JSON, for the strongest-peer column (optional)")
    ap.add_argument("--quick", action="store_true", help="Yahoo and ucr/Beef only, for CI")
    ap.add_argument("--only", action="append",
                    help="only datasets whose name contains this (repeatable), e.g. yahoo, ucr/")
    ap.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = ap.parse_args(argv)

    data = Path(args.data)
    if not data.is_dir():
        print(f"error: {data}: data directory not found (set --data or DMAD_DATA)", file=sys.stderr)
        return 2
    command = os.environ.get("DMAD_PEERS_COMMAND") or shlex.join(
        ["python", "benches/peers/series_peers.py"] + (sys.argv[1:] if argv is None else argv))
    warnings.filterwarnings("ignore", category=UserWarning)
    only = ["timeseries/yahoo", "timeseries/ucr/Beef"] if args.quick else args.only
    runner = Runner(data, command, only, verbose=not args.quiet)
    jit = jit_warmup()
    runner.log(f"STUMPY/numba compilation: {jit:.1f} s")
    t0 = time.perf_counter()
    try:
        runner.point_series()
        runner.ucr_classification()
    except C.DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (ValueError, RuntimeError) as e:
        print(f"error: {runner.current}: {e}", file=sys.stderr)
        return 2
    if not runner.records:
        print(f"error: no series dataset matches {only}", file=sys.stderr)
        return 2
    if C._tsb_generate_curve is None:
        runner.notes.append("VUS-PR: TSB-AD is not installed; vus_pr is null (pip install --no-deps TSB-AD==1.5)")
    total = time.perf_counter() - t0
    classical = load_classical(Path(args.classical))
    import scipy
    import sklearn

    result = {
        "tool": "benches/peers/series_peers.py",
        "command": command,
        "data": str(args.data),
        "quick": bool(args.quick),
        "only": only,
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "total_wall_s": total,
        "jit_warmup_s": jit,
        "machine": f"{platform.machine()}, {os.cpu_count()} logical cores, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
        f"NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', 'unset')}",
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "scipy": scipy.__version__, "scikit-learn": sklearn.__version__,
                     "stumpy": STUMPY_VERSION, "numba": NUMBA_VERSION, "TSB-AD": C.TSB_AD_VERSION},
        "protocol": "PROTOCOL.md of the data directory: its splits and metrics (classical.py's loaders)",
        "metrics": {
            "auroc": "sklearn roc_auc_score", "auprc": "sklearn average_precision_score",
            "f1_max": "best F1 over all thresholds",
            "top1_hit": "point series: 1 if the arg-max of the test scores lies within [begin - 100, "
            "end + 100) of the UCR anomaly, or of any labelled segment (NAB, Yahoo, GutenTAG)",
            "vus_pr": f"TSB-AD {C.TSB_AD_VERSION or '(missing)'} generate_curve(labels, scores, "
            f"slidingWindow={C.VUS_WINDOW}), the VUS-PR value",
        },
        "methods": METHOD_DEFS,
        "window_rule": WINDOW_RULE,
        "ucr_forms": UCR_FORMS,
        "series_mean": series_means(runner.records, METHODS),
        "classical": args.classical if classical else None,
        "strongest_peer": strongest(runner.records, classical),
        "notes": runner.notes,
        "records": runner.records,
    }
    out = Path(args.out)
    result["json"] = out.with_suffix(".json").name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    md = markdown(result, classical)
    out.with_suffix(".md").write_text(md)
    print(md)
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')} in {total:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
