"""scikit-learn's estimator conventions: clone, get/set_params, fit returns self, pipelines."""

import numpy as np
import pytest

import dmad

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402


def test_clone_gives_an_unfitted_detector_with_the_same_params(rng):
    det = dmad.Detector("table", scorer="dte", k=7, seed=2)
    det.fit(rng.normal(size=(60, 3)))
    twin = clone(det)
    assert twin is not det
    assert twin.get_params() == det.get_params()
    assert not hasattr(twin, "model_")
    with pytest.raises(dmad.NotFittedError):
        twin.decision_function(rng.normal(size=(2, 3)))
    # A clone fits to the same scores (everything is seeded).
    X = rng.normal(size=(60, 3))
    Xt = rng.normal(size=(10, 3))
    np.testing.assert_array_equal(
        clone(det).fit(X).decision_function(Xt), clone(det).fit(X).decision_function(Xt)
    )


def test_a_loaded_detector_clones_to_its_saved_configuration(rng, tmp_path):
    det = dmad.Detector("table", steps=5, width=32, depth=1).fit(rng.normal(size=(40, 2)))
    det.save(tmp_path / "m")
    loaded = dmad.Detector.load(tmp_path / "m")
    twin = clone(loaded).fit(rng.normal(size=(40, 2)))
    assert twin.config_["network"] == det.config_["network"]
    assert twin.config_["train"]["steps"] == 5


def test_get_and_set_params_follow_sklearn():
    det = dmad.Detector("series", window=16)
    assert det.get_params() == {
        "modality": "series", "scorer": "reconstruction", "progress": False, "choose": False,
        "window": 16,
    }
    assert det.set_params(steps=3, scorer="dte") is det
    assert det.get_params()["steps"] == 3 and det.scorer == "dte"
    with pytest.raises(ValueError, match="invalid parameter 'stepz'"):
        det.set_params(stepz=3)
    with pytest.raises(TypeError, match="unknown option"):
        dmad.Detector("table", stepz=3)


def test_fit_returns_self_and_the_detector_works_in_a_pipeline(rng):
    X = rng.normal(size=(120, 4)) * 100 + 50
    det = dmad.Detector("table", scorer="dte")
    assert det.fit(X) is det
    pipe = make_pipeline(StandardScaler(), dmad.Detector("table", scorer="dte"))
    pipe.fit(X)
    outliers = np.full((5, 4), 2000.0)
    scores = pipe.decision_function(np.vstack([X[:5], outliers]))
    assert scores.shape == (10,)
    assert scores[5:].min() > scores[:5].max()
    assert set(np.unique(pipe.predict(outliers))) == {1}
    pipe.set_params(detector__k=3)
    assert pipe.named_steps["detector"].k == 3


def test_config_merges_any_part_of_the_detector_config(rng):
    det = dmad.Detector("table", steps=7, config={"train": {"batch_size": 8},
                                                  "threshold": {"kind": "mean_std", "k": 3.0}})
    det.fit(rng.normal(size=(40, 2)))
    assert det.config_["train"]["steps"] == 7 and det.config_["train"]["batch_size"] == 8
    assert det.config_["threshold"] == {"kind": "mean_std", "k": 3.0}
    with pytest.raises(ValueError, match="unknown variant"):
        dmad.Detector("table", config={"scorer": {"kind": "nope"}}).fit(rng.normal(size=(9, 2)))


def test_distinct_timesteps_reaches_the_training_config_and_is_checked(rng):
    X = rng.normal(size=(40, 2))
    det = dmad.Detector(
        "table", steps=3, width=16, depth=1, batch_size=8, distinct_timesteps=2
    ).fit(X)
    assert det.config_["train"]["distinct_timesteps"] == 2
    assert np.isfinite(det.decision_function(X)).all()
    with pytest.raises(dmad.DmadError, match="`distinct_timesteps`: must be at least 1"):
        dmad.Detector("table", steps=3, distinct_timesteps=0).fit(X)


def test_timestep_range_reaches_the_training_config_and_is_checked(rng):
    X = rng.normal(size=(40, 2))
    det = dmad.Detector(
        "table", steps=4, width=16, depth=1, batch_size=8, timestep_range=[0, 500]
    ).fit(X)
    assert det.config_["train"]["timestep_range"] == [0, 500]
    assert np.isfinite(det.decision_function(X)).all()
    # Checked with the configuration, before any data is read.
    with pytest.raises(ValueError, match="train.timestep_range"):
        dmad.Detector("table", steps=3, timestep_range=[5, 5]).fit(X)
    with pytest.raises(ValueError, match="train.timestep_range"):
        dmad.Detector("table", steps=3, timestep_range=[0, 2000]).fit(X)


def test_validate_every_reaches_the_training_config_and_is_checked(rng):
    X = rng.normal(size=(40, 2))
    det = dmad.Detector(
        "table", steps=4, width=16, depth=1, batch_size=8, validate_every=2
    ).fit(X)
    assert det.config_["train"]["validate_every"] == 2
    assert np.isfinite(det.decision_function(X)).all()
    with pytest.raises(dmad.DmadError, match="validate_every"):
        dmad.Detector("table", steps=3, validate_every=0).fit(X)
    with pytest.raises(ValueError, match="held-out normals"):
        dmad.Detector("table", steps=3, validate_every=2, calibration_fraction=0.0).fit(X)
