"""The metrics against scikit-learn, and the loaders of data on disk."""

import pathlib

import numpy as np
import pytest

import dmad
from conftest import write_series_csv, write_table_csv

metrics = pytest.importorskip("sklearn.metrics")


def test_ranking_metrics_match_scikit_learn(rng):
    y = rng.integers(0, 2, size=200)
    s = rng.normal(size=200) + y
    assert dmad.roc_auc(y, s) == pytest.approx(metrics.roc_auc_score(y, s), abs=1e-9)
    assert dmad.auprc(y, s) == pytest.approx(metrics.average_precision_score(y, s), abs=1e-9)
    assert dmad.pauc(y, s, 0.1) == pytest.approx(
        metrics.roc_auc_score(y, s, max_fpr=0.1), abs=1e-9)
    f1, threshold = dmad.f1_max(y, s)
    p, r, _ = metrics.precision_recall_curve(y, s)
    assert f1 == pytest.approx(np.max(2 * p * r / np.maximum(p + r, 1e-300)), abs=1e-9)
    assert threshold in s
    with pytest.raises(ValueError):
        dmad.roc_auc(np.zeros(5), np.arange(5.0))


def test_map_and_series_metrics(rng):
    masks = np.zeros((2, 16, 16))
    masks[0, 4:8, 4:8] = 1
    maps = rng.uniform(size=(2, 16, 16)) * 0.1 + masks
    assert dmad.aupro(masks, maps) == pytest.approx(1.0, abs=1e-6)
    assert dmad.pixel_auroc(masks, maps) == pytest.approx(1.0)
    labels = np.zeros(500)
    labels[200:220] = 1
    assert dmad.vus_pr(labels, labels + 0.01 * rng.uniform(size=500)) > 0.8
    with pytest.raises(ValueError, match="same shape"):
        dmad.aupro(masks[:1], maps)


def test_the_table_and_series_loaders_read_what_the_cli_reads(rng, tmp_path):
    X = rng.normal(size=(12, 3))
    write_table_csv(tmp_path / "t.csv", X)
    got, y, names = dmad.read_table(tmp_path / "t.csv")
    np.testing.assert_array_equal(got, X)
    assert y is None and names == ["f0", "f1", "f2"]
    with open(tmp_path / "l.csv", "w") as f:
        f.write("a,b,label\n1,2,0\n3,4,1\n")
    got, y, _ = dmad.read_table(tmp_path / "l.csv")
    np.testing.assert_array_equal(got, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(y, [0, 1])
    x = rng.normal(size=50).astype(np.float32)
    write_series_csv(tmp_path / "s.csv", x)
    np.testing.assert_array_equal(dmad.read_series(tmp_path / "s.csv"), x)
    with pytest.raises(ValueError, match="bad.csv"):
        (tmp_path / "bad.csv").write_text("a,b\n1,zz\n")
        dmad.read_table(tmp_path / "bad.csv")


SHIPPED = pathlib.Path(__file__).resolve().parents[3] / "testdata" / "data"


def test_the_folder_loaders_read_the_shipped_data_as_the_cli_does():
    test = dmad.load_images(SHIPPED / "textures-ad" / "brick", split="test", image_size=32)
    n = len(test.y)
    assert test.X.shape == (n, 1, 32, 32) and test.X.min() >= 0.0 and test.X.max() <= 1.0
    assert test.masks.shape == (n, 32, 32)
    assert set(test.y) == {0, 1} and "good" not in {k for k, y in zip(test.kinds, test.y) if y}
    clips = dmad.load_audio(SHIPPED / "audio" / "hum", split="test", sample_rate=8000)
    assert clips.X.shape == (len(clips.y), 8000) and 1 in clips.y
    train, test_part, labels, (begin, end) = dmad.load_ucr_anomaly(
        SHIPPED / "ucr-anomaly" / "135_UCR_Anomaly_InternalBleeding16_1200_4187_4199.txt")
    assert len(train) == 1200 and len(labels) == len(test_part)
    assert (begin, end) == (4187, 4199) and labels.sum() == end - begin
    X, y, _ = dmad.read_table(SHIPPED / "tabular" / "wbc.csv")
    tr, te = dmad.read_split(SHIPPED / "tabular" / "splits" / "wbc.json", 0)
    assert y is not None and len(X) == len(y) and y[tr].sum() == 0 and len(te) > 0
