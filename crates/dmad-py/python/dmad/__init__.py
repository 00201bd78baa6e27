"""dmad: anomaly detection with diffusion models (images, time series, audio, tables), from
the dmad Rust library, with a PyOD / scikit-learn style API.

    >>> import numpy as np, dmad
    >>> X = np.random.default_rng(0).normal(size=(256, 4))
    >>> det = dmad.Detector("table", steps=200).fit(X)
    >>> scores = det.decision_function(X)       # higher = more anomalous
    >>> flags = det.predict(X)                   # 0/1 by the saved threshold_
    >>> det.save("model")                        # dmad score --model model ... reads it

See docs/PYTHON.md in the repository.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple, Optional

import numpy as np

from . import _native
from ._detector import Detector, MODALITIES, OPTIONS, SCORERS

__version__ = _native.__version__
DmadError = _native.DmadError
NotFittedError = _native.NotFittedError

__all__ = [
    "Detector",
    "DmadError",
    "NotFittedError",
    "MODALITIES",
    "SCORERS",
    "OPTIONS",
    "roc_auc",
    "auprc",
    "f1_max",
    "pauc",
    "vus_pr",
    "aupro",
    "pixel_auroc",
    "read_table",
    "read_split",
    "load_images",
    "load_audio",
    "read_series",
    "load_ucr_anomaly",
    "generate",
    "Images",
    "Clips",
]


# -- metrics (dmad-metrics: each matches its tool of record to 1e-9) -------------------------

def _labels(y_true: Any) -> bytes:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"y_true has shape {y.shape}: expected 1-D labels (1 = anomaly)")
    return np.ascontiguousarray(y != 0, dtype=np.uint8).tobytes()


def _scores(y_score: Any) -> bytes:
    s = np.asarray(y_score, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError(f"y_score has shape {s.shape}: expected 1-D scores")
    return np.ascontiguousarray(s).tobytes()


def roc_auc(y_true: Any, y_score: Any) -> float:
    """AUROC, as scikit-learn's ``roc_auc_score`` (labels 1 = anomaly)."""
    return _native.roc_auc(_labels(y_true), _scores(y_score))


def auprc(y_true: Any, y_score: Any) -> float:
    """Average precision, as scikit-learn's ``average_precision_score``."""
    return _native.auprc(_labels(y_true), _scores(y_score))


def f1_max(y_true: Any, y_score: Any) -> tuple[float, float]:
    """The best F1 over all thresholds, and that threshold (``score >= threshold``)."""
    return _native.f1_max(_labels(y_true), _scores(y_score))


def pauc(y_true: Any, y_score: Any, max_fpr: float = 0.1) -> float:
    """Partial AUROC up to ``max_fpr``, McClish-standardised (``roc_auc_score(max_fpr=)``)."""
    return _native.pauc(_labels(y_true), _scores(y_score), float(max_fpr))


def vus_pr(y_true: Any, y_score: Any, window: int = 100) -> float:
    """VUS-PR of per-point series scores (TSB-AD 1.5, sliding window ``window``)."""
    return _native.vus_pr(_labels(y_true), _scores(y_score), int(window))


def _maps(masks: Any, maps: Any):
    m = np.ascontiguousarray(maps, dtype=np.float64)
    k = np.asarray(masks)
    if m.ndim != 3 or k.shape != m.shape:
        raise ValueError(
            f"maps {m.shape} and masks {k.shape}: expected the same shape [n, height, width]"
        )
    return m.tobytes(), np.ascontiguousarray(k > 0.5, dtype=np.uint8).tobytes(), list(m.shape)


def aupro(masks: Any, maps: Any, fpr_limit: float = 0.3) -> float:
    """AUPRO up to ``fpr_limit`` (MVTec AD's per-region overlap) of maps ``[n, h, w]``
    against ground-truth masks of the same shape (> 0.5 = defect)."""
    m, k, shape = _maps(masks, maps)
    return _native.aupro(m, k, shape, float(fpr_limit))


def pixel_auroc(masks: Any, maps: Any) -> float:
    """Pixel AUROC of maps ``[n, h, w]`` against masks, all pixels pooled."""
    m, k, shape = _maps(masks, maps)
    return _native.pixel_auroc(m, k, shape)


# -- loaders (the CLI's, for data on disk) ----------------------------------------------------

def _u8(labels: bytes) -> np.ndarray:
    return np.frombuffer(labels, dtype=np.uint8).copy()


def _array(out, dtype=np.float32) -> np.ndarray:
    data, shape = out
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def read_table(path: str | os.PathLike):
    """A table file: CSV (a ``label`` column is optional), NPY ``(rows, features)`` or NPZ
    with ``X`` and ``y``. Returns ``(X, y, names)``: raw float64 features, uint8 labels (or
    ``None`` when unlabelled) and the column names."""
    x, y, names = _native.read_table(os.fspath(path))
    X = _array(x, np.float64)
    return X, (None if y is None else np.frombuffer(y, dtype=np.uint8).copy()), names


def read_split(path: str | os.PathLike, index: int = 0):
    """The ``(train, test)`` row indices of split ``index`` of an ADBench/DTE split file."""
    train, test = _native.read_split(os.fspath(path), int(index))
    return np.asarray(train, dtype=np.int64), np.asarray(test, dtype=np.int64)


class Images(NamedTuple):
    """Images read from disk: ``X`` ``[n, c, s, s]`` in [0, 1], labels (1 = defect), kinds
    (defect folder names), masks ``[n, s, s]`` (or ``None``) and the files."""

    X: np.ndarray
    y: np.ndarray
    kinds: list
    masks: Optional[np.ndarray]
    sources: list


def load_images(path: str | os.PathLike, split: str = "train", image_size: int = 64,
                channels: int = 1) -> Images:
    """Images as ``dmad fit/score`` read them: an MVTec AD category folder (its ``split``), a
    plain folder or one file, resized to ``image_size``."""
    x, y, kinds, masks, sources = _native.load_images(
        os.fspath(path), split, int(image_size), int(channels)
    )
    m = None if masks is None else _array(masks)
    return Images(_array(x), _u8(y), kinds, m, sources)


class Clips(NamedTuple):
    """Audio clips: waveforms ``X`` ``[n, sample_rate]`` (one second each), labels, kinds,
    files, and the sample rate."""

    X: np.ndarray
    y: np.ndarray
    kinds: list
    sources: list
    sample_rate: int


def load_audio(path: str | os.PathLike, split: str = "train",
               sample_rate: int = 16000) -> Clips:
    """WAV clips as ``dmad fit/score`` read them: a DCASE folder (its ``split``), a plain
    folder or one file, resampled to ``sample_rate`` and cropped or padded to one second."""
    x, y, kinds, sources = _native.load_audio(os.fspath(path), split, int(sample_rate))
    return Clips(_array(x), _u8(y), kinds, sources, int(sample_rate))


def read_series(path: str | os.PathLike) -> np.ndarray:
    """A plain series file (one time step a line): ``[points]`` for one channel, else
    ``[points, channels]``."""
    s = _array(_native.read_series(os.fspath(path)))
    return s[:, 0].copy() if s.shape[1] == 1 else s


def load_ucr_anomaly(path: str | os.PathLike):
    """A UCR Anomaly Archive file: ``(train, test, test_labels, (begin, end))``, split as its
    name says (the anomaly ``[begin, end)`` in whole-series coordinates)."""
    train, test, labels, anomaly = _native.load_ucr_anomaly(os.fspath(path))
    return (
        np.frombuffer(train, dtype=np.float32).copy(),
        np.frombuffer(test, dtype=np.float32).copy(),
        _u8(labels),
        tuple(anomaly),
    )


# -- generation ----------------------------------------------------------------------------

def generate(detector: Detector, n: int, kind: Optional[str] = None, strength: float = 0.5,
             seed: int = 0, steps: int = 50):
    """Samples from a fitted detector's network: ``n`` normal samples, or with ``kind``
    (``scratch``, ``level_shift``, ``local_outlier``, ... of the modality) anomalies injected
    and harmonised. Returns ``(X, masks)`` (``masks`` is ``None`` for normal samples), in the
    units ``fit`` took: table rows and series windows ``[n, window, channels]`` un-standardised
    with the training statistics, images in [0, 1], audio waveforms at the model's rate."""
    import json

    model = detector._model()
    x, mask = _native.generate(model, int(n), kind, float(strength), int(seed), int(steps))
    X = _array(x)
    masks = None if mask is None else _array(mask)
    data = json.loads(model.data_json())
    modality = detector.config_["modality"]
    if modality == "table" and data.get("table"):
        t = data["table"]
        X = X * np.asarray(t["std"], dtype=np.float32) + np.asarray(t["mean"], dtype=np.float32)
    elif modality == "series" and X.ndim == 3:
        X = np.transpose(X, (0, 2, 1))
        if data.get("series"):
            s = data["series"]
            X = X * np.asarray(s["std"], dtype=np.float32) + np.asarray(s["mean"], dtype=np.float32)
    elif modality == "image":
        X = np.clip((X + 1.0) / 2.0, 0.0, 1.0)
    return X, masks
