"""dmad from Python against PyOD (KNN, IForest) and against the same dmad call from Rust.

Run through benches/peers/run_python_binding.sh (it builds the venv, the package and the CLI).
One table of the data directory's PROTOCOL.md (default tabular/cardio), its 5 split seeds:
each method fits on the train rows and scores the test rows; the time is fit + score wall time
(summed over the seeds) and AUROC is the mean over the seeds.

- dmad (Python): dmad.Detector("table", scorer=...) on the raw rows as NumPy arrays (the binding
  standardises with the train rows' statistics, as the protocol says and as the CLI does).
- dmad (Rust, CLI): `dmad fit --split ... --split-index i` then `dmad eval` on the same split:
  two processes, so its time also holds the process starts, reading the CSV twice and saving and
  loading the model (the binding keeps the model in memory). Its AUROC must equal the binding's.
- PyOD KNN (n_neighbors=5, largest) and IForest (100 trees, random_state = split seed) on the
  standardised rows (zero deviation -> 0).
Writes <out>.json (every record) and <out>.md (the table).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import dmad


def standardise(train: np.ndarray, test: np.ndarray):
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    safe = np.where(std > 0, std, 1.0)
    f = lambda a: np.where(std > 0, (a - mean) / safe, 0.0)  # noqa: E731
    return f(train), f(test)


def run_python(scorer: str, xtr, xte):
    t = time.perf_counter()
    det = dmad.Detector("table", scorer=scorer).fit(xtr)
    scores = det.decision_function(xte)
    return time.perf_counter() - t, scores


def run_cli(cli: str, scorer: str, csv: Path, split: Path, index: int, tmp: Path):
    model = tmp / f"model-{scorer}-{index}"
    report = tmp / f"eval-{scorer}-{index}.json"
    fit = [cli, "--quiet", "fit", "--modality", "table", "--data", str(csv), "--split", str(split),
           "--split-index", str(index), "--out", str(model), "--force"]
    if scorer == "dte":
        fit += ["--scorer", "dte"]
    ev = [cli, "--quiet", "eval", "--model", str(model), "--data", str(csv), "--split",
          str(split), "--split-index", str(index), "--json", str(report)]
    t = time.perf_counter()
    subprocess.run(fit, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(ev, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - t
    return seconds, json.loads(report.read_text())["auroc"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.environ.get("DMAD_DATA", "../shared/data"))
    ap.add_argument("--table", default="cardio")
    ap.add_argument("--cli", default="target/release/dmad")
    ap.add_argument("--out", default="docs/results/python_binding")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--scorers", default="dte,reconstruction")
    args = ap.parse_args()

    from pyod.models.iforest import IForest
    from pyod.models.knn import KNN
    import pyod

    root = Path(args.data)
    csv = root / "tabular" / f"{args.table}.csv"
    split = root / "tabular" / "splits" / f"{args.table}.json"
    X, y, _ = dmad.read_table(csv)
    if y is None:
        print(f"error: {csv}: no label column", file=sys.stderr)
        return 2
    scorers = [s for s in args.scorers.split(",") if s]
    rows: dict[str, dict] = {}

    def record(name: str, seconds: float, auroc: float) -> None:
        r = rows.setdefault(name, {"method": name, "wall_s": [], "auroc": []})
        r["wall_s"].append(seconds)
        r["auroc"].append(auroc)
        print(f"  {name:<32} {seconds:8.3f} s  AUROC {auroc:.4f}", flush=True)

    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for i in range(args.seeds):
            tr, te = dmad.read_split(split, i)
            xtr, xte = X[tr], X[te]
            yte = y[te]
            print(f"{args.table} split {i}: {len(tr)} train rows, {len(te)} test rows", flush=True)
            for scorer in scorers:
                seconds, scores = run_python(scorer, xtr, xte)
                record(f"dmad {scorer} (Python binding)", seconds, dmad.roc_auc(yte, scores))
                seconds, auroc = run_cli(args.cli, scorer, csv, split, i, tmp)
                record(f"dmad {scorer} (Rust, dmad CLI)", seconds, auroc)
            str_, ste = standardise(xtr, xte)
            for name, make in [("PyOD KNN", lambda: KNN(n_neighbors=5, method="largest")),
                               ("PyOD IForest", lambda: IForest(n_estimators=100, random_state=i))]:
                t = time.perf_counter()
                model = make().fit(str_)
                scores = model.decision_function(ste)
                seconds = time.perf_counter() - t
                record(name, seconds, dmad.roc_auc(yte, scores))

    records = []
    for r in rows.values():
        records.append({
            **r,
            "wall_s_total": float(np.sum(r["wall_s"])),
            "auroc_mean": float(np.mean(r["auroc"])),
        })
    meta = {
        "table": f"tabular/{args.table}",
        "rows": int(X.shape[0]),
        "features": int(X.shape[1]),
        "seeds": args.seeds,
        "protocol": "PROTOCOL.md tabular: train on the split's train rows (normal), test on its "
                    "test rows; AUROC mean over seeds; wall time = fit + score, summed over seeds",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "dmad": dmad.__version__,
        "pyod": pyod.__version__,
        "numpy": np.__version__,
        "threads": "dmad: dmad::init_cpu at import (one candle thread); PyOD/scikit-learn: "
                   f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}",
        "command": os.environ.get("DMAD_PEERS_COMMAND", "benches/peers/run_python_binding.sh"),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "records": records}, indent=2))
    lines = [
        f"# dmad from Python vs PyOD vs dmad from Rust: {meta['table']}",
        "",
        f"{meta['rows']} rows, {meta['features']} features; {meta['seeds']} split seeds of "
        f"`tabular/splits/{args.table}.json`. Time = fit + score wall time summed over the "
        "seeds; AUROC = mean over the seeds. Written by `benches/peers/run_python_binding.sh` "
        f"(`{meta['command']}`) on {meta['machine']}, Python {meta['python']}, "
        f"PyOD {meta['pyod']}, numpy {meta['numpy']}.",
        "",
        "| method | time (s) | AUROC |",
        "|---|---:|---:|",
    ]
    for r in records:
        lines.append(f"| {r['method']} | {r['wall_s_total']:.2f} | {r['auroc_mean']:.4f} |")
    lines += [
        "",
        "The CLI's time holds two process starts, two reads of the CSV and a save and load of "
        "the model per seed; the binding's holds the copy of the arrays into Rust.",
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
