"""Bad input raises a Python exception with a clear message (ValueError for bad arrays), never
a crash of the interpreter."""

import numpy as np
import pytest

import dmad


@pytest.fixture(scope="module")
def table():
    return dmad.Detector("table", scorer="dte").fit(np.random.default_rng(0).normal(size=(50, 3)))


@pytest.mark.parametrize(
    "X, message",
    [
        (np.zeros(3), r"shape \[3\]: table data is \[n_samples, n_features\]"),
        (np.zeros((2, 3, 1)), r"shape \[2, 3, 1\]: table data"),
        (np.zeros((0, 3)), r"X is empty \(shape \[0, 3\]\)"),
        (np.array([[0.0, np.nan, 1.0]]), r"X\[0, 1\] is NaN \(shape \[1, 3\]\)"),
        (np.array([[0.0, 1.0, 1.0], [0.0, 1.0, np.inf]]), r"X\[1, 2\] is inf"),
        (np.zeros((4, 5)), r"X has 5 features \(shape \[4, 5\]\), the model was fitted on 3"),
        (np.array([["a", "b", "c"]]), r"dtype <U1: dmad takes float32 or float64"),
    ],
)
def test_bad_arrays_raise_value_error_naming_the_shape(table, X, message):
    with pytest.raises(ValueError, match=message):
        table.decision_function(X)


@pytest.mark.parametrize(
    "modality, X, message",
    [
        ("table", np.zeros((0, 2)), "X is empty"),
        ("table", np.full((5, 2), np.nan), r"X\[0, 0\] is NaN"),
        ("series", np.zeros((3, 4, 5)), "a series is 1-D"),
        ("series", np.zeros(10), "fewer than one window of 64"),
        ("image", np.zeros((2, 8)), r"images are \[n, height, width\]"),
        ("image", np.full((2, 8, 8), 3.0), r"images are floats in \[0, 1\]"),
        ("audio", np.zeros((2, 100)), "audio needs its sample rate"),
        ("audio", np.zeros((2, 0)), r"shape \[2, 0\]: audio needs at least one clip"),
    ],
)
def test_fit_rejects_bad_arrays(modality, X, message):
    with pytest.raises(ValueError, match=message):
        dmad.Detector(modality, steps=1).fit(X)


def test_bad_options_are_value_errors_naming_the_field():
    X = np.zeros((10, 2))
    with pytest.raises(ValueError, match="modality 'tables!'"):
        dmad.Detector("tables!").fit(X)
    with pytest.raises(ValueError, match="scorer 'nope'"):
        dmad.Detector("table", scorer="nope").fit(X)
    with pytest.raises(ValueError, match="scoring.strength"):
        dmad.Detector("table", strength=2.0).fit(X)
    with pytest.raises(ValueError, match="k \\(neighbours\\) applies to scorer='dte' only"):
        dmad.Detector("table", k=3).fit(X)


def test_an_unfitted_detector_and_a_missing_model_are_errors(tmp_path):
    with pytest.raises(dmad.NotFittedError, match="not fitted"):
        dmad.Detector("table").predict(np.zeros((1, 2)))
    assert issubclass(dmad.NotFittedError, ValueError)
    with pytest.raises(ValueError, match="config.json: missing"):
        dmad.Detector.load(tmp_path / "nothing")


def test_saving_over_a_folder_that_is_not_a_model_is_refused(table, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="exists and is not a dmad model"):
        table.save(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_positions_widen_a_feature_space_config_and_are_refused_elsewhere():
    cfg = dmad.Detector("image", scorer="feature-dte", positions=True)._config(1)
    assert cfg["feature_space"]["positional"] is True
    # Lite0's 152 patch features and the row and column.
    assert cfg["network"]["in_features"] == 154
    with pytest.raises(ValueError, match=r"positions=True .* scorer='feature-dte'.*feature_space"):
        dmad.Detector("table", positions=True).fit(np.zeros((10, 2)))


def test_patch_norm_sets_a_feature_space_standardisation_and_is_refused_elsewhere():
    cfg = dmad.Detector("image", scorer="feature-diffusion", patch_norm="isotropic")._config(1)
    assert cfg["feature_space"]["normalisation"] == "isotropic"
    cfg = dmad.Detector("image", scorer="feature-dte", patch_norm="per-position")._config(1)
    assert cfg["feature_space"]["normalisation"] == "per_position"
    with pytest.raises(ValueError, match=r"patch_norm='cosine': one of global, isotropic"):
        dmad.Detector("image", scorer="feature-dte", patch_norm="cosine")._config(1)
    with pytest.raises(ValueError, match=r"patch_norm .* scorer='feature-dte'.*feature_space"):
        dmad.Detector("table", patch_norm="isotropic").fit(np.zeros((10, 2)))
