"""Long fits report progress, and an interruption (Ctrl-C, or an exception of the callback)
stops the training cleanly: the exception propagates and the detector stays unfitted."""

import os
import signal
import threading

import numpy as np
import pytest

import dmad


def test_the_progress_callback_sees_every_training_step(rng):
    seen = []
    det = dmad.Detector("table", steps=12, progress=lambda done, total, loss: seen.append(
        (done, total, loss)))
    det.fit(rng.normal(size=(64, 3)))
    train = [s for s in seen if s[2] != 0.0]
    assert [s[0] for s in train] == list(range(1, 13))
    assert all(total == 12 and np.isfinite(loss) for _, total, loss in train)
    # Scoring reports its batches too (done, total, 0.0).
    seen.clear()
    det.decision_function(rng.normal(size=(10, 3)))
    assert seen[-1] == (10, 10, 0.0)


def test_progress_true_draws_a_bar_and_gives_the_same_scores(rng):
    X = rng.normal(size=(64, 3))
    quiet = dmad.Detector("table", steps=5).fit(X).decision_function(X)
    shown = dmad.Detector("table", steps=5, progress=True).fit(X).decision_function(X)
    np.testing.assert_array_equal(quiet, shown)


def test_an_exception_in_the_callback_stops_the_fit(rng):
    calls = []

    def stop_at_3(done, total, loss):
        calls.append(done)
        if done == 3:
            raise KeyboardInterrupt

    det = dmad.Detector("table", steps=10_000, progress=stop_at_3)
    with pytest.raises(KeyboardInterrupt):
        det.fit(rng.normal(size=(64, 3)))
    assert calls == [1, 2, 3]
    assert not hasattr(det, "model_")


@pytest.mark.skipif(os.name != "posix", reason="SIGINT to oneself")
def test_ctrl_c_stops_a_long_fit(rng):
    det = dmad.Detector("table", steps=1_000_000)
    # A process started in the background by a non-interactive shell inherits SIGINT ignored,
    # and Python then never turns it into KeyboardInterrupt (the fit would run its million
    # steps): give SIGINT Python's own handler for this test, as an interactive session has.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            det.fit(rng.normal(size=(64, 3)))
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert not hasattr(det, "model_")
