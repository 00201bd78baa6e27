"""Shared fixtures of the binding's tests (run by .ci/run; see docs/PYTHON.md)."""

import os
import pathlib

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def cli() -> str:
    """The `dmad` command line: $DMAD_CLI, else the workspace's target/release/dmad."""
    path = os.environ.get("DMAD_CLI") or str(ROOT / "target" / "release" / "dmad")
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"the dmad CLI is not at {path}: build it with `cargo build --release -p dmad-cli` "
            "or set DMAD_CLI"
        )
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def write_table_csv(path, X):
    """A headed CSV of the rows of X, every value written so that it reads back exactly."""
    with open(path, "w") as f:
        f.write(",".join(f"f{j}" for j in range(X.shape[1])) + "\n")
        for row in X:
            f.write(",".join(repr(float(v)) for v in row) + "\n")


def write_series_csv(path, x):
    with open(path, "w") as f:
        f.write("value\n")
        for v in np.asarray(x, dtype=np.float32):
            f.write(repr(float(v)) + "\n")
