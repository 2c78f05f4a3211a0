"""core.linear_reference: the ridge autoregression the "change_linear" form adds back (issue 34)."""
from __future__ import annotations

import numpy as np
import pytest

from core import linear_reference as LR
from core.errors import StudioError
from core.models import ModelSpec


def _windows(series: np.ndarray, window: int, horizon: int):
    n = len(series) - window - horizon + 1
    X = np.stack([series[i:i + window] for i in range(n)])[:, :, None].astype(np.float32)
    Y = np.stack([series[i + window:i + window + horizon] for i in range(n)])[:, :, None].astype(np.float32)
    return X, Y


def test_recovers_an_autoregression_and_its_weights_sum_to_one():
    rng = np.random.default_rng(0)
    y = np.zeros(3000)
    for t in range(2, len(y)):
        y[t] = 0.6 * y[t - 1] + 0.3 * y[t - 2] + rng.normal(0, 0.1)
    X, Y = _windows(y, 6, 2)
    ref = LR.fit(X[:2400], Y[:2400], (0,), 0, X[2400:], Y[2400:])
    w = ref.weights[0]
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-5)  # level-invariant: a shift moves the forecast with it
    # (weights sum to one because the fit is on changes; the intercept takes the AR's pull toward its mean)
    np.testing.assert_allclose(w[0, -2:], [0.3, 0.6], atol=0.06)
    pred = LR.reference_values(ref, X[2400:], (0,))
    naive = np.abs(X[2400:, -1:, 0] - Y[2400:, :, 0]).mean()
    assert np.abs(pred[..., 0] - Y[2400:, :, 0]).mean() < naive


def test_a_random_walk_shrinks_to_the_last_value():
    rng = np.random.default_rng(1)
    y = np.cumsum(rng.normal(0, 1, 1500))
    X, Y = _windows(y, 10, 1)
    ref = LR.fit(X[:1000], Y[:1000], (0,), 0, X[1000:], Y[1000:])
    pred = LR.reference_values(ref, X[1000:], (0,))[..., 0]
    last = X[1000:, -1:, 0]
    lin, naive = np.abs(pred - Y[1000:, :, 0]).mean(), np.abs(last - Y[1000:, :, 0]).mean()
    assert lin <= naive * 1.02, (lin, naive)


def test_a_season_chooses_the_seasonal_base():
    t = np.arange(2000)
    y = np.sin(2 * np.pi * t / 12) * 5 + np.random.default_rng(2).normal(0, 0.05, len(t))
    X, Y = _windows(y, 24, 3)
    ref = LR.fit(X[:1500], Y[:1500], (0,), 12, X[1500:], Y[1500:])
    pred = LR.reference_values(ref, X[1500:], (0,))[..., 0]
    assert np.abs(pred - Y[1500:, :, 0]).mean() < 0.1


def test_values_are_summed_in_double_in_row_order_then_rounded_once():
    rng = np.random.default_rng(3)
    ref = LR.LinearReference(rng.normal(0, 1, (2, 3, 5)).astype(np.float32), rng.normal(0, 1, (2, 3)).astype(np.float32))
    X = rng.normal(0, 1, (4, 5, 3)).astype(np.float32)
    got = LR.reference_values(ref, X, (2, 0))
    for n in range(4):
        for j, c in enumerate((2, 0)):
            for k in range(3):
                acc = float(ref.bias[j, k])
                for r in range(5):
                    acc += float(ref.weights[j, k, r]) * float(X[n, r, c])
                assert got[n, k, j] == np.float32(acc)


def test_too_few_windows_and_mismatched_sizes_are_refused_in_words():
    X, Y = _windows(np.arange(12.0), 6, 1)
    with pytest.raises(StudioError, match="at least 8 training windows"):
        LR.fit(X, Y, (0,))
    with pytest.raises(StudioError, match="does not match its shapes"):
        ModelSpec(target_form="change_linear", window=4, n_inputs=1, target_input_index=(0,),
                  linear_weights=[0, 0, 1], linear_bias=[0.0]).validate()


def test_a_spec_carries_its_reference_through_json():
    spec = ModelSpec(target_form="change_linear", window=4, n_inputs=1, target_input_index=(0,),
                     linear_weights=[0, 0, 0.25, 0.75], linear_bias=[0.5]).validate()
    again = ModelSpec.from_dict(spec.to_dict())
    assert again == spec and again.linear_reference.weights.shape == (1, 1, 4)
    assert "linear forecast" in spec.label


def test_each_target_keeps_its_own_base_and_penalty_and_says_them():
    """Two targets: a pure season and a random walk, fitted apart; the words name each (the command line prints them)."""
    rng = np.random.default_rng(4)
    t = np.arange(1600)
    season = np.sin(2 * np.pi * t / 12) * 5 + rng.normal(0, 0.05, len(t))
    walk = np.cumsum(rng.normal(0, 1, len(t)))
    Xs, Ys = _windows(season, 24, 1)
    Xw, Yw = _windows(walk, 24, 1)
    X, Y = np.concatenate([Xs, Xw], axis=2), np.concatenate([Ys, Yw], axis=2)
    ref = LR.fit(X[:1200], Y[:1200], (0, 1), 12, X[1200:], Y[1200:])
    assert len(ref.bases) == len(ref.penalties) == 2 and ref.weights.shape == (2, 1, 24)
    words = ref.describe(("temp", "price"))
    assert words.startswith("temp: toward ") and "; price: toward " in words
    one = LR.LinearReference(np.zeros((1, 1, 4), np.float32), np.zeros((1, 1), np.float32), ("season",), (0.1,))
    assert one.describe() == "toward the same phase last season, penalty 0.1"
