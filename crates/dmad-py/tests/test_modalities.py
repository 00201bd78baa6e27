"""Each modality end to end on tiny data and budgets: shapes, thresholds, save and load."""

import numpy as np
import pytest

import dmad

TINY_UNET = {"steps": 2, "warmup_steps": 0, "scoring_steps": 4, "strength": 0.5}


def test_tables_score_outliers_above_normals_and_predict_by_the_threshold(rng, tmp_path):
    X = rng.normal(size=(300, 4)).astype(np.float32)
    det = dmad.Detector("table", steps=150, seed=1).fit(X)
    Xt = np.vstack([rng.normal(size=(40, 4)), rng.normal(size=(10, 4)) + 6.0]).astype(np.float32)
    y = np.r_[np.zeros(40), np.ones(10)]
    scores = det.decision_function(Xt)
    assert scores.dtype == np.float64 and scores.shape == (50,)
    assert dmad.roc_auc(y, scores) > 0.9
    np.testing.assert_array_equal(det.predict(Xt), (scores >= det.threshold_).astype(int))
    assert det.calibration_["calibration_samples"] == 60
    det.save(tmp_path / "m")
    again = dmad.Detector.load(tmp_path / "m")
    np.testing.assert_array_equal(again.decision_function(Xt), scores)
    assert again.threshold_ == det.threshold_
    # float32 and float64 input give the same scores (values exact in both).
    np.testing.assert_array_equal(det.decision_function(Xt.astype(np.float64)), scores)


def test_parametric_dte_trains_a_time_classifier_that_scores_outliers_and_reloads(rng, tmp_path):
    # Rows on a ring in 4 dimensions: a time classifier learns where noise moves them off it.
    # (On an isotropic Gaussian blob of unit spread it cannot: docs/SCORERS.md.)
    def ring(n):
        t = rng.uniform(0, 2 * np.pi, n)
        return np.c_[np.cos(t), np.sin(t), np.cos(2 * t), np.sin(2 * t)] + 0.05 * rng.normal(
            size=(n, 4)
        )

    X = ring(300).astype(np.float32)
    det = dmad.Detector("table", scorer="dte-categorical", steps=150, seed=1).fit(X)
    assert det.config_["scorer"] == {"kind": "dte_categorical", "bins": 7, "surprisal": False}
    Xt = np.vstack([ring(40), 0.7 * rng.normal(size=(10, 4))]).astype(np.float32)
    y = np.r_[np.zeros(40), np.ones(10)]
    scores = det.decision_function(Xt)
    assert dmad.roc_auc(y, scores) > 0.8
    det.save(tmp_path / "m")
    again = dmad.Detector.load(tmp_path / "m")
    assert again.scorer == "dte-categorical"
    np.testing.assert_array_equal(again.decision_function(Xt), scores)


def test_series_are_scored_per_point_with_one_or_more_channels(rng):
    t = np.arange(700)
    x = np.stack([np.sin(t / 7.0), np.cos(t / 11.0)], axis=1) + 0.05 * rng.normal(size=(700, 2))
    det = dmad.Detector("series", scorer="dte", window=16, train_stride=2, test_stride=4)
    det.fit(x[:400])
    test = x[400:].copy()
    test[150:160, 1] += 4.0
    scores = det.decision_function(test)
    assert scores.shape == (300,)
    assert 140 <= int(np.argmax(scores)) < 170
    one = dmad.Detector("series", window=16, **TINY_UNET).fit(x[:400, 0])
    assert one.decision_function(x[400:, 0]).shape == (300,)


def test_images_give_scores_and_maps_of_their_size(rng):
    X = rng.uniform(0.4, 0.6, size=(6, 16, 16)).astype(np.float32)
    det = dmad.Detector("image", **TINY_UNET).fit(X)
    assert det.config_["input"]["channels"] == 1
    assert det.decision_function(X).shape == (6,)
    maps = det.anomaly_map(X[:2])
    assert maps.shape == (2, 16, 16) and np.isfinite(maps).all()
    rgb = (rng.uniform(size=(4, 3, 16, 16)) * 255).astype(np.uint8)
    det3 = dmad.Detector("image", **TINY_UNET).fit(rgb)
    assert det3.anomaly_map(rgb).shape == (4, 16, 16)


def test_audio_waveforms_with_a_sample_rate_become_scalogram_maps(rng):
    rate = 4000
    t = np.arange(rate) / rate
    clips = np.stack([np.sin(2 * np.pi * 440 * t + p) for p in rng.uniform(0, 6, 6)])
    det = dmad.Detector("audio", sample_rate=rate, scales=16, frames=4, **TINY_UNET)
    det.fit(clips.astype(np.float32), sample_rate=rate)
    assert det.decision_function(clips, sample_rate=rate).shape == (6,)
    # Clips at another rate are resampled to the model's, as the WAV loader does.
    slow = clips[:, ::2]
    assert det.anomaly_map(slow, sample_rate=rate // 2).shape == (6, 16, 4)


def test_log_mel_dte_scores_audio_clips_by_their_log_mel_statistics(rng):
    rate = 16000
    t = np.arange(rate) / rate

    def clips(n, hum):
        out = []
        for _ in range(n):
            x = 0.3 * np.sin(2 * np.pi * rng.uniform(430, 450) * t + rng.uniform(0, 6))
            x += 0.05 * rng.normal(size=rate)
            if hum:
                x += 0.1 * np.sin(2 * np.pi * 3000 * t)
            out.append(x)
        return np.stack(out).astype(np.float32)

    det = dmad.Detector("audio", scorer="log-mel-dte", steps=300, seed=3)
    det.fit(clips(30, False), sample_rate=rate)
    assert det.scorer == "log-mel-dte"
    normal, hum = clips(5, False), clips(5, True)
    s = det.decision_function(np.concatenate([normal, hum]), sample_rate=rate)
    assert s.shape == (10,)
    assert s[5:].min() > s[:5].max(), s


def test_choose_picks_log_mel_settings_on_generated_anomalies(rng):
    rate = 16000
    t = np.arange(rate) / rate
    clips = np.stack(
        [
            0.3 * np.sin(2 * np.pi * rng.uniform(430, 450) * t) + 0.05 * rng.normal(size=rate)
            for _ in range(12)
        ]
    ).astype(np.float32)
    det = dmad.Detector("audio", scorer="log-mel-dte", choose=True, steps=50, seed=2)
    det.fit(clips, sample_rate=rate)
    assert len(det.choice_) == 4 and sum(c["chosen"] for c in det.choice_) == 1
    assert {(c["mel_statistics"], c["bins"]) for c in det.choice_} == {
        ("mean_std_delta", 7),
        ("mean_std_delta", 50),
        ("mean_std", 7),
        ("mean_std", 50),
    }
    assert all(0.0 <= c["auroc"] <= 1.0 for c in det.choice_)
    chosen = next(c for c in det.choice_ if c["chosen"])
    assert det.config_["input"]["mel_statistics"] == chosen["mel_statistics"]
    assert det.config_["scorer"]["bins"] == chosen["bins"]
    assert det.decision_function(clips[:3], sample_rate=rate).shape == (3,)
    assert det.get_params()["choose"] is True
    with pytest.raises(ValueError, match="log-mel-dte"):
        dmad.Detector("audio", choose=True, steps=2).fit(clips, sample_rate=rate)


def test_log_mel_unet_maps_audio_clips_over_bands_and_time(rng):
    rate = 16000
    t = np.arange(rate) / rate
    clips = np.stack(
        [0.3 * np.sin(2 * np.pi * 440 * t + p) for p in rng.uniform(0, 6, 6)]
    ).astype(np.float32)
    det = dmad.Detector("audio", scorer="log-mel-unet", steps=3, warmup_steps=0, seed=1)
    det.fit(clips, sample_rate=rate)
    assert det.scorer == "log-mel-unet"
    assert det.config_["input"]["audio_features"] == "log_mel_image"
    assert det.config_["scoring"]["mean_reconstruction"] is True
    # 64 bands (highest on top) x 32 columns of the clip.
    maps = det.anomaly_map(clips[:2], sample_rate=rate)
    assert maps.shape == (2, 64, 32) and np.isfinite(maps).all()


def test_generate_gives_samples_in_the_units_fit_took(rng):
    X = rng.normal(size=(200, 3)) * [1.0, 10.0, 100.0] + [0.0, 50.0, -500.0]
    det = dmad.Detector("table", steps=100).fit(X)
    samples, masks = dmad.generate(det, 64, steps=10)
    assert samples.shape == (64, 3) and masks is None
    assert abs(float(np.median(samples[:, 2])) + 500.0) < 200.0
    anomalies, masks = det.generate(8, kind="global", steps=10)
    assert anomalies.shape == (8, 3) and masks.shape == (8, 3)



def test_imputation_takes_its_window_from_the_training_period(rng):
    t = np.arange(800)
    x = np.sin(2 * np.pi * t / 20) + 0.05 * rng.normal(size=800)
    det = dmad.Detector("series", scorer="imputation", steps=2, warmup_steps=0).fit(x[:500])
    window = det.config_["input"]["window"]
    # Two periods of 20, rounded up to a multiple of 8, as `dmad fit --scorer imputation`.
    assert window in (40, 48), window
    # A fifth of the period, an odd number of segments per period (prepare::imputation_segment):
    # the step one period away from a masked step is observed.
    assert det.config_["train"]["imputation"]["segment"] == 4
    assert det.get_params()["scorer"] == "imputation"
    assert det.decision_function(x[500:]).shape == (300,)
    fixed = dmad.Detector("series", scorer="imputation", window=64, steps=1, warmup_steps=0)
    fixed.fit(x[:500])
    assert fixed.config_["input"]["window"] == 64
    # A given window is taken as two periods: imputation_segment(32) = 11 (32 / 11 ~ 3, odd).
    assert fixed.config_["train"]["imputation"]["segment"] == 11
    with pytest.raises(ValueError, match="series windows"):
        dmad.Detector("table", scorer="imputation").fit(rng.normal(size=(20, 3)))
