"""The binding and the `dmad` CLI share one model format and one code path: the same saved
model gives the same scores from both (the CLI writes each f32 score in full; the tolerance is
1e-6, relative for scores far from 1 such as DTE's)."""

import csv
import subprocess

import numpy as np

import dmad
from conftest import write_series_csv, write_table_csv


def cli_scores(cli, model, data, out):
    subprocess.run(
        [cli, "--quiet", "score", "--model", str(model), "--data", str(data), "--out", str(out)],
        check=True,
    )
    with open(out / "scores.csv") as f:
        return np.array([float(r["score"]) for r in csv.DictReader(f)])


def test_a_table_model_saved_from_python_scores_the_same_in_the_cli(cli, rng, tmp_path):
    X = rng.normal(size=(200, 3))
    Xt = np.vstack([rng.normal(size=(30, 3)), rng.normal(size=(10, 3)) * 4])
    det = dmad.Detector("table", steps=30, seed=3).fit(X)
    det.save(tmp_path / "model")
    write_table_csv(tmp_path / "test.csv", Xt)
    ours = det.decision_function(Xt)
    theirs = cli_scores(cli, tmp_path / "model", tmp_path / "test.csv", tmp_path / "out")
    assert ours.shape == theirs.shape == (40,)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)
    # And the threshold: the CLI's 0/1 column is predict's.
    with open(tmp_path / "out" / "scores.csv") as f:
        flags = np.array([int(r["anomalous"]) for r in csv.DictReader(f)])
    np.testing.assert_array_equal(flags, det.predict(Xt))


def test_a_series_model_saved_from_python_scores_the_same_in_the_cli(cli, rng, tmp_path):
    x = (np.sin(np.arange(1600) / 9.0) + 0.1 * rng.normal(size=1600)).astype(np.float32)
    x[1300:1320] += 3.0
    det = dmad.Detector("series", scorer="dte", window=32, train_stride=4, test_stride=8)
    det.fit(x[:800]).save(tmp_path / "model")
    write_series_csv(tmp_path / "test.csv", x[800:])
    ours = det.decision_function(x[800:])
    theirs = cli_scores(cli, tmp_path / "model", tmp_path / "test.csv", tmp_path / "out")
    assert ours.shape == theirs.shape == (800,)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)
    assert 480 <= int(np.argmax(ours)) < 540


def test_an_imputation_model_smooths_its_points_the_same_in_python_and_the_cli(cli, rng, tmp_path):
    # 2000 training points of period 20: the last fifth (400 points, five chunks of two
    # 40-step windows) is held out to choose the point smoothing (dmad::series::fit_series).
    t = np.arange(2600)
    x = (np.sin(2 * np.pi * t / 20) + 0.05 * rng.normal(size=2600)).astype(np.float32)
    x[2300:2330] += 2.0
    det = dmad.Detector("series", scorer="imputation", steps=20, warmup_steps=2, seed=1)
    det.fit(x[:2000]).save(tmp_path / "model")
    window = det.config_["input"]["window"]
    sigma = det.config_["scoring"]["point_sigma"]
    assert sigma in [f * window for f in (0.0, 0.125, 0.25, 0.5, 1.0)], sigma
    write_series_csv(tmp_path / "test.csv", x[2000:])
    ours = det.decision_function(x[2000:])
    theirs = cli_scores(cli, tmp_path / "model", tmp_path / "test.csv", tmp_path / "out")
    assert ours.shape == theirs.shape == (600,)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


def test_a_model_fitted_by_the_cli_loads_in_python_with_the_same_scores(cli, rng, tmp_path):
    X = rng.normal(size=(160, 4)) * [1.0, 2.0, 0.5, 3.0] + [0.0, 1.0, -2.0, 5.0]
    Xt = rng.normal(size=(25, 4)) * 2
    write_table_csv(tmp_path / "train.csv", X)
    write_table_csv(tmp_path / "test.csv", Xt)
    subprocess.run(
        [cli, "--quiet", "fit", "--modality", "table", "--data", str(tmp_path / "train.csv"),
         "--out", str(tmp_path / "model"), "--steps", "20"],
        check=True,
    )
    det = dmad.Detector.load(tmp_path / "model")
    assert det.get_params()["modality"] == "table"
    assert det.n_features_in_ == 4
    theirs = cli_scores(cli, tmp_path / "model", tmp_path / "test.csv", tmp_path / "out")
    np.testing.assert_allclose(det.decision_function(Xt), theirs, rtol=1e-6, atol=1e-6)
    # The CLI standardised with the training rows' statistics; so does the binding.
    data = dmad.read_table(tmp_path / "train.csv")[0]
    np.testing.assert_array_equal(data, X)
