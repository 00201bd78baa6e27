"""``dmad.Detector``: the Rust detector with PyOD / scikit-learn conventions."""

from __future__ import annotations

import copy
import json
import os
import sys
import time
from typing import Any, Callable, Optional

import numpy as np

from . import _native

MODALITIES = ("table", "series", "image", "audio")
SCORERS = (
    "reconstruction",
    "dte",
    "dte-categorical",
    "denoising",
    "feature",
    "combined",
    "feature-diffusion",
    "feature-recon",
    "feature-dte",
    "log-mel-dte",
    "log-mel-windows-dte",
    "log-mel-unet",
    "imputation",
)


def _set(path: tuple):
    def apply(cfg: dict, value: Any) -> None:
        node = cfg
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value

    return apply


def _seed(cfg: dict, value: Any) -> None:
    cfg["train"]["seed"] = int(value)
    cfg["scoring"]["seed"] = int(value)


def _k(cfg: dict, value: Any) -> None:
    if cfg["scorer"].get("kind") != "dte":
        raise ValueError("k (neighbours) applies to scorer='dte' only")
    cfg["scorer"]["k"] = int(value)


def _lambda(cfg: dict, value: Any) -> None:
    if cfg["scorer"].get("kind") != "combined":
        raise ValueError("lambda_ applies to scorer='combined' only")
    cfg["scorer"]["lambda"] = float(value)


def _quantile(cfg: dict, value: Any) -> None:
    cfg["threshold"] = {"kind": "quantile", "q": float(value)}


def _mlp(field: str):
    def apply(cfg: dict, value: Any) -> None:
        if cfg["network"].get("kind") != "mlp":
            raise ValueError(f"{field} applies to MLP networks (tables, feature space) only")
        cfg["network"][field] = int(value)

    return apply


def _positions(cfg: dict, value: Any) -> None:
    if not value:
        return
    try:
        placed = json.loads(_native.with_patch_positions(json.dumps(cfg)))
    except ValueError as e:
        raise ValueError(
            "positions=True appends each patch's position to its EfficientNet-Lite0 "
            "features: use it with scorer='feature-dte', 'feature-diffusion' or "
            f"'feature-recon' ({e})"
        ) from None
    cfg.clear()
    cfg.update(placed)


_PATCH_NORMS = ("global", "isotropic", "per_position")


def _patch_norm(cfg: dict, value: Any) -> None:
    norm = str(value).replace("-", "_")
    if norm not in _PATCH_NORMS:
        raise ValueError(f"patch_norm={value!r}: one of {', '.join(_PATCH_NORMS)}")
    if not cfg.get("feature_space"):
        raise ValueError(
            "patch_norm standardises the EfficientNet-Lite0 patch features: use it with "
            "scorer='feature-dte', 'feature-diffusion' or 'feature-recon' (this detector has "
            "no feature_space)"
        )
    cfg["feature_space"]["normalisation"] = norm


def _merge(cfg: dict, value: Any) -> None:
    if not isinstance(value, dict):
        raise ValueError("config must be a dict (parts of a DetectorConfig, merged in)")

    def merge(dst: dict, src: dict) -> None:
        for key, val in src.items():
            if isinstance(val, dict) and isinstance(dst.get(key), dict) and "kind" not in val:
                merge(dst[key], val)
            else:
                dst[key] = copy.deepcopy(val)

    merge(cfg, value)


# The keyword options of Detector: name -> how it changes the DetectorConfig (JSON).
OPTIONS: dict[str, Callable[[dict, Any], None]] = {
    "steps": _set(("train", "steps")),
    "batch_size": _set(("train", "batch_size")),
    "learning_rate": _set(("train", "learning_rate")),
    "warmup_steps": _set(("train", "lr_warmup_steps")),
    # Timesteps drawn per batch, each shared by batch_size / k samples: a cheaper step for the
    # MLP denoiser (docs/SCORERS.md); None (default) draws one per sample.
    "distinct_timesteps": _set(("train", "distinct_timesteps")),
    # Early stopping: every this many steps, the held-out loss on the calibration split; the
    # weights of the lowest are kept (docs/SCORERS.md). None (default): the last weights.
    "validate_every": _set(("train", "validate_every")),
    # Train on the timesteps [begin, end) only, e.g. [0, 500] for a denoising score that
    # queries levels up to strength 0.5 (docs/SCORERS.md). None (default): the whole schedule.
    "timestep_range": _set(("train", "timestep_range")),
    "seed": _seed,
    "k": _k,
    "lambda_": _lambda,
    "strength": _set(("scoring", "strength")),
    "sampler": _set(("scoring", "sampler")),
    "scoring_steps": _set(("scoring", "steps")),
    "draws": _set(("scoring", "draws")),
    "score_batch_size": _set(("scoring", "batch_size")),
    "efficientnet": _set(("scoring", "feature_weights")),
    "threshold_quantile": _quantile,
    "calibration_fraction": _set(("calibration_fraction",)),
    "window": _set(("input", "window")),
    "train_stride": _set(("input", "train_stride")),
    "test_stride": _set(("input", "test_stride")),
    "sample_rate": _set(("input", "sample_rate")),
    "scales": _set(("input", "scales")),
    "frames": _set(("input", "image_size")),
    "flip_augment": _set(("input", "flip_augment")),
    "width": _mlp("width"),
    "depth": _mlp("depth"),
    # Feature space: each patch's row and column as two more features (aligned objects).
    "positions": _positions,
    # Feature space: "global" (default), "isotropic" (the extractor's own distances) or
    # "per_position" standardisation of the patch features (docs/SCORERS.md).
    "patch_norm": _patch_norm,
    # Applied last: any part of a DetectorConfig (docs/PYTHON.md), e.g. a saved config.json's.
    "config": _merge,
}


class _Progress:
    """A tqdm bar when tqdm is installed, else a line on stderr every few seconds."""

    def __init__(self, what: str):
        self.what = what
        self.bar = None
        self.start = self.last = time.monotonic()

    def __call__(self, done: int, total: int, loss: float) -> None:
        if self.bar is None:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # pragma: no cover - depends on the environment
                tqdm = None
            self.bar = tqdm(total=total, desc=self.what, leave=False) if tqdm else False
        if self.bar:
            self.bar.update(done - self.bar.n)
            if loss:
                self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        elif time.monotonic() - self.last >= 5 or done == total:
            self.last = time.monotonic()
            spent = self.last - self.start
            eta = spent / max(done, 1) * (total - done)
            print(f"{self.what}: {done}/{total} ({spent:.0f} s, ETA {eta:.0f} s)", file=sys.stderr)

    def close(self) -> None:
        if self.bar:
            self.bar.close()


def _as_float(X: Any, modality: str, name: str = "X") -> np.ndarray:
    a = np.asarray(X)
    if a.dtype == np.uint8 and modality == "image":
        return a.astype(np.float32) / 255.0
    if a.dtype.kind in "biu":
        return a.astype(np.float64 if modality == "table" else np.float32)
    if a.dtype.kind != "f":
        raise ValueError(
            f"{name} has dtype {a.dtype}: dmad takes float32 or float64 arrays "
            "(uint8 for images)"
        )
    return a


def _wire(a: np.ndarray, modality: str) -> tuple:
    # Tables keep float64 (the CLI reads CSV values as f64 and standardises in f64).
    f64 = modality == "table" and a.dtype == np.float64
    a = np.ascontiguousarray(a, dtype=np.float64 if f64 else np.float32)
    return a.tobytes(), list(a.shape), f64


def _dims(a: np.ndarray, modality: str) -> int:
    if modality == "table":
        return a.shape[1] if a.ndim == 2 else 1
    if modality == "series":
        return a.shape[1] if a.ndim == 2 else 1
    if modality == "image":
        return a.shape[1] if a.ndim == 4 else 1
    return 1


def _scorer_name(cfg: dict) -> str:
    kind = cfg["scorer"]["kind"]
    if kind == "imputation":
        return "imputation"
    if cfg.get("feature_space"):
        if kind == "dte_categorical":
            return "feature-dte"
        return "feature-diffusion" if kind == "denoising" else "feature-recon"
    if kind == "dte_categorical":
        features = cfg.get("input", {}).get("audio_features")
        if features == "log_mel_statistics":
            return "log-mel-dte"
        if features == "log_mel_windows":
            return "log-mel-windows-dte"
        return "dte-categorical"
    if kind == "reconstruction" and cfg.get("input", {}).get("audio_features") == "log_mel_image":
        return "log-mel-unet"
    return kind


class Detector:
    """An anomaly detector: a diffusion model trained on normal data, as a PyOD / scikit-learn
    estimator.

    Parameters
    ----------
    modality : {"table", "series", "image", "audio"}
        The kind of data. Tables are ``[n_samples, n_features]``; series 1-D ``[n_points]`` or
        ``[n_points, n_channels]`` (scored per point); images ``[n, h, w]`` or ``[n, c, h, w]``
        floats in [0, 1] (or uint8); audio ``[n_clips, n_samples]`` waveforms with their
        ``sample_rate``.
    scorer : str
        ``reconstruction`` (default), ``dte`` (nearest-neighbour diffusion time, no training),
        ``dte-categorical`` (a trained classifier of the diffusion time), ``denoising``,
        ``feature``/``combined`` (images and audio, need EfficientNet-Lite0),
        ``feature-diffusion``/``feature-recon``/``feature-dte`` (feature-space detector; the
        last is parametric DTE on the patch features), ``log-mel-dte`` (audio: parametric DTE
        on each clip's log-mel statistics, the DCASE baselines' features; no EfficientNet),
        ``log-mel-unet`` (audio: the method's pixel-space U-Net on log-mel images).
    choose : bool
        ``log-mel-dte`` only: choose the log-mel statistics and time bins on audio anomalies
        generated in a held-out fifth of the training clips (at least 10), as ``dmad fit
        --choose`` does; the chosen configuration is refitted on every clip. Five fits.
    progress : bool or callable
        ``True``: a tqdm bar (or a line every few seconds without tqdm) during fit and scoring;
        a callable is called as ``progress(done, total, loss)``.
    **config
        Options of the configuration: ``steps``, ``batch_size``, ``learning_rate``,
        ``warmup_steps``, ``distinct_timesteps``, ``validate_every``, ``timestep_range``, ``seed``, ``k``, ``lambda_``, ``strength``, ``sampler``,
        ``scoring_steps``, ``draws``, ``score_batch_size``, ``efficientnet``,
        ``threshold_quantile``, ``calibration_fraction``, ``window``, ``train_stride``,
        ``test_stride``, ``sample_rate``, ``scales``, ``frames``, ``flip_augment``, ``width``,
        ``depth``, and ``config`` (a dict merged into the DetectorConfig, last).

    Attributes (after ``fit`` or ``load``)
    --------------------------------------
    threshold_ : float
        The decision threshold, set from held-out normal samples; ``predict`` flags scores at
        or above it.
    config_ : dict
        The full DetectorConfig, as saved in the model's ``config.json``.
    choice_ : list of dict
        With ``choose=True``: each candidate's ``mel_statistics``, ``bins`` and mean
        ``auroc`` on the generated anomalies, and ``chosen`` (True for the one fitted).
    """

    def __init__(
        self,
        modality: str = "table",
        scorer: str = "reconstruction",
        progress: Any = False,
        choose: bool = False,
        **config: Any,
    ):
        unknown = sorted(set(config) - set(OPTIONS))
        if unknown:
            raise TypeError(
                f"Detector() got unknown option(s) {unknown}; known: {sorted(OPTIONS)}"
            )
        self.modality = modality
        self.scorer = scorer
        self.progress = progress
        self.choose = choose
        self._options = list(config)
        for key, value in config.items():
            setattr(self, key, value)

    # -- scikit-learn conventions ---------------------------------------------------------

    def get_params(self, deep: bool = True) -> dict:
        params = {
            "modality": self.modality,
            "scorer": self.scorer,
            "progress": self.progress,
            "choose": self.choose,
        }
        for key in self._options:
            params[key] = getattr(self, key)
        return params

    def set_params(self, **params: Any) -> "Detector":
        for key, value in params.items():
            if key in ("modality", "scorer", "progress", "choose"):
                setattr(self, key, value)
            elif key in OPTIONS:
                if key not in self._options:
                    self._options.append(key)
                setattr(self, key, value)
            else:
                raise ValueError(
                    f"invalid parameter {key!r} for Detector; valid: "
                    f"{sorted(['modality', 'scorer', 'progress', 'choose', *OPTIONS])}"
                )
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"Detector({args})"

    def __sklearn_tags__(self):
        from sklearn.utils import Tags, TargetTags

        tags = Tags(estimator_type="outlier_detector", target_tags=TargetTags(required=False))
        tags.non_deterministic = False
        return tags

    # -- configuration ------------------------------------------------------------------

    def _config(self, dims: int, a: Optional[np.ndarray] = None) -> dict:
        if self.modality not in MODALITIES:
            raise ValueError(f"modality {self.modality!r}: expected one of {MODALITIES}")
        base = self.scorer
        if base not in SCORERS:
            # A loaded model's scorer that has no name here (its config= holds the scorer).
            given = getattr(self, "config", None)
            if not (isinstance(given, dict) and "scorer" in given):
                raise ValueError(f"scorer {self.scorer!r}: expected one of {SCORERS}")
            base = "reconstruction"
        if base == "imputation":
            if self.modality != "series":
                raise ValueError(
                    f"scorer 'imputation' fills masked segments of series windows, not "
                    f"{self.modality} data"
                )
            # The window: two periods of the training series (its first channel), as
            # `dmad fit --scorer imputation` chooses it, unless window= is given.
            first = np.zeros(0) if a is None else (a[:, 0] if a.ndim == 2 else a.reshape(-1))
            first = np.ascontiguousarray(first, dtype=np.float64)
            window = getattr(self, "window", None)
            cfg = json.loads(
                _native.imputation_config(
                    first.tobytes(), dims, None if window is None else int(window)
                )
            )
        else:
            cfg = json.loads(_native.default_config(self.modality, dims, base))
        for key in sorted(self._options, key=lambda k: k == "config"):
            value = getattr(self, key)
            if value is not None:
                OPTIONS[key](cfg, value)
        _native.validate_config(json.dumps(cfg))
        return cfg

    def _callback(self, what: str):
        if callable(self.progress):
            return self.progress, None
        if self.progress:
            bar = _Progress(what)
            return bar, bar
        return None, None

    # -- fit / score ----------------------------------------------------------------------

    def fit(self, X: Any, y: Any = None, sample_rate: Optional[int] = None) -> "Detector":
        """Fits on normal data ``X`` (``y`` is ignored, as in PyOD); returns ``self``.

        Ctrl-C stops the training cleanly (``KeyboardInterrupt``; the detector stays
        unfitted).
        """
        a = _as_float(X, self.modality)
        cfg = self._config(_dims(a, self.modality), a)
        if self.modality == "image" and a.ndim in (3, 4):
            cfg["input"]["image_size"] = int(a.shape[-1])
        model = _native.Model(json.dumps(cfg))
        if self.choose:
            if self.scorer != "log-mel-dte":
                raise ValueError(
                    f"choose=True picks log-mel statistics and time bins: it needs "
                    f"scorer='log-mel-dte', not {self.scorer!r}"
                )
            seed = int(cfg["train"]["seed"])
            configs, aurocs, index = model.fit_choose(*_wire(a, self.modality), sample_rate, seed)
            self.choice_ = [
                {
                    "mel_statistics": json.loads(c)["input"]["mel_statistics"],
                    "bins": json.loads(c)["scorer"]["bins"],
                    "auroc": auroc,
                    "chosen": i == index,
                }
                for i, (c, auroc) in enumerate(zip(configs, aurocs))
            ]
        else:
            callback, bar = self._callback("fit")
            try:
                model.fit(*_wire(a, self.modality), sample_rate, callback)
            finally:
                if bar:
                    bar.close()
        self.model_ = model
        self._fitted_from(model)
        return self

    def _fitted_from(self, model: Any) -> None:
        self.threshold_ = float(model.threshold)
        self.config_ = json.loads(model.config_json())
        self.calibration_ = json.loads(model.calibration_json())
        data = json.loads(model.data_json())
        if self.config_["modality"] == "table" and data.get("table"):
            self.n_features_in_ = len(data["table"]["names"])

    def _model(self):
        model = getattr(self, "model_", None)
        if model is None:
            raise _native.NotFittedError(
                "this Detector is not fitted: call fit(X) or Detector.load(path) first"
            )
        return model

    def _score(self, X: Any, sample_rate: Optional[int]):
        model = self._model()
        modality = self.config_["modality"]
        a = _as_float(X, modality)
        callback, bar = self._callback("score")
        try:
            scores, maps = model.score(*_wire(a, modality), sample_rate, callback)
        finally:
            if bar:
                bar.close()
        scores = np.frombuffer(scores, dtype=np.float32).astype(np.float64)
        if maps is not None:
            data, shape = maps
            maps = np.frombuffer(data, dtype=np.float32).reshape(shape).copy()
        return scores, maps

    def decision_function(self, X: Any, sample_rate: Optional[int] = None) -> np.ndarray:
        """Anomaly scores, higher = more anomalous (PyOD's convention): one per sample, one per
        point for a series."""
        return self._score(X, sample_rate)[0]

    def predict(self, X: Any, sample_rate: Optional[int] = None) -> np.ndarray:
        """0 (normal) / 1 (anomalous) by the saved threshold: a score at or above
        ``threshold_`` is anomalous."""
        scores = self.decision_function(X, sample_rate)
        return self.predict_scores(scores)

    def predict_scores(self, scores: Any) -> np.ndarray:
        """0/1 flags of scores already computed (``decision_function``'s)."""
        s = np.ascontiguousarray(scores, dtype=np.float32)
        flags = self._model().predict(s.tobytes())
        return np.frombuffer(flags, dtype=np.uint8).astype(np.int64)

    def fit_predict(self, X: Any, y: Any = None, sample_rate: Optional[int] = None) -> np.ndarray:
        return self.fit(X, sample_rate=sample_rate).predict(X, sample_rate=sample_rate)

    def anomaly_map(self, X: Any, sample_rate: Optional[int] = None) -> np.ndarray:
        """Per-position anomaly maps: ``[n, h, w]`` for images, ``[n, scales, frames]`` for
        audio scalograms. Tables have none; series are scored per point by
        ``decision_function``."""
        self._model()
        modality = self.config_["modality"]
        if modality not in ("image", "audio"):
            raise ValueError(
                f"{modality} data has no anomaly maps: decision_function gives "
                + ("one score per point" if modality == "series" else "one score per row")
            )
        return self._score(X, sample_rate)[1]

    def set_threshold(self, value: float) -> "Detector":
        """Replaces the decision threshold (saved with the model)."""
        self._model().set_threshold(float(value))
        self.threshold_ = float(self._model().threshold)
        return self

    # -- persistence ----------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Saves the model directory (the ``dmad`` CLI's format: ``dmad score --model PATH``
        scores with it). Written beside ``path`` and swapped into place."""
        self._model().save(os.fspath(path))

    @classmethod
    def load(cls, path: str | os.PathLike, progress: Any = False) -> "Detector":
        """Loads a model saved by ``Detector.save`` or by ``dmad fit``."""
        model = _native.Model.load(os.fspath(path))
        cfg = json.loads(model.config_json())
        det = cls(
            modality=cfg["modality"], scorer=_scorer_name(cfg), progress=progress, config=cfg
        )
        det.model_ = model
        det._fitted_from(model)
        return det

    def generate(self, n: int, kind: Optional[str] = None, strength: float = 0.5,
                 seed: int = 0, steps: int = 50):
        """Samples from the fitted network (see ``dmad.generate``)."""
        from . import generate

        return generate(self, n, kind=kind, strength=strength, seed=seed, steps=steps)
