"""core/windows.py against a hand-written reference loop, plus every bad input the Features step must refuse."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.dataset import Dataset
from core.errors import StudioError
from core.frequency import describe_steps
from core.windows import (Scaler, SplitSpec, WindowSpec, calendar_options, calendar_values, default_spec,
                          largest_window, make_windows, presets, shapes_sentence, split_parts, validate)


def _dataset(n=500, cols=("a", "b", "c"), freq="h", seed=0, index=None) -> Dataset:
    rng = np.random.default_rng(seed)
    if index is None:
        index = pd.date_range("2024-01-01", periods=n, freq=freq, name="time") if freq else \
            pd.RangeIndex(n, name="step")
    frame = pd.DataFrame({c: rng.normal(size=n).cumsum() * (i + 1) + 10 * i for i, c in enumerate(cols)}, index=index)
    return Dataset("test", frame, freq=freq, time_col="time" if freq else None, fingerprint=f"fp{seed}{n}")


def _reference(ds: Dataset, spec: WindowSpec, split: SplitSpec):
    """Plain loops: own split arithmetic, own min-max from the training rows, one window at a time."""
    n = len(ds.frame)
    t, v = round(n * split.train), round(n * (split.train + split.val))
    span = spec.window + spec.offset + spec.horizon
    ranges = {"train": (0, t), "val": (t, v), "test": (v, n)}
    raw_in = ds.frame[list(spec.features)].to_numpy()
    raw_y = ds.frame[list(spec.targets)].to_numpy()

    def scale(raw, cols):
        out = np.empty_like(raw)
        for j, c in enumerate(cols):
            train = ds.frame[c].to_numpy()[:t]
            out[:, j] = (raw[:, j] - train.min()) / (train.max() - train.min())
        return out

    xs, ys = scale(raw_in, spec.features), scale(raw_y, spec.targets)
    out = {}
    for part, (lo, hi) in ranges.items():
        stride = 1 if part == "test" else spec.stride
        # training: the whole window inside training; validation and test: the labels inside the part,
        # the inputs from the rows before the labels (an earlier part's rows too).
        s = lo if part == "train" else max(lo - spec.window - spec.offset, 0)
        X, Y = [], []
        while s + span <= hi:
            X.append(xs[s:s + spec.window])
            Y.append(ys[s + spec.window + spec.offset: s + spec.window + spec.offset + spec.horizon])
            s += stride
        out[part] = (np.array(X).reshape(-1, spec.window, len(spec.features)),
                     np.array(Y).reshape(-1, spec.horizon, len(spec.targets)), ranges[part])
    return out


@st.composite
def _cases(draw):
    n = draw(st.integers(40, 400))
    n_cols = draw(st.integers(1, 4))
    cols = tuple("abcd"[:n_cols])
    features = tuple(draw(st.lists(st.sampled_from(cols), min_size=1, max_size=n_cols, unique=True)))
    targets = tuple(draw(st.lists(st.sampled_from(cols), min_size=1, max_size=n_cols, unique=True)))
    spec = WindowSpec(targets=targets, features=features, window=draw(st.integers(1, 30)),
                      horizon=draw(st.integers(1, 8)), offset=draw(st.integers(0, 6)), stride=draw(st.integers(1, 9)))
    split = SplitSpec(train=draw(st.sampled_from([0.5, 0.6, 0.7, 0.8])), val=draw(st.sampled_from([0.1, 0.15, 0.2])))
    return _dataset(n, cols, seed=draw(st.integers(0, 10_000))), spec, split


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_cases())
def test_windows_equal_reference_loop(case):
    ds, spec, split = case
    problems = validate(ds, spec, split)
    if problems:
        # The same choices must be refused by make_windows, and only when the reference finds an empty part.
        with pytest.raises(StudioError):
            make_windows(ds, spec, split)
        return
    w = make_windows(ds, spec, split)
    ref = _reference(ds, spec, split)
    for part in ("train", "val", "test"):
        X_ref, y_ref, rng = ref[part]
        assert w.parts[part] == rng
        assert w.count(part) == len(X_ref) > 0
        X, y = w.X(part), w.y(part)
        assert X.shape == (len(X_ref), spec.window, spec.n_inputs) and X.dtype == np.float32
        assert y.shape == (len(y_ref), spec.horizon, spec.n_targets)
        np.testing.assert_allclose(X, X_ref, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
        # zero-copy: views into the one scaled array, not writable by consumers
        assert np.shares_memory(X, w.inputs) and np.shares_memory(y, w.target_values)
        assert not X.flags.writeable
        # numpy batches gather the same windows
        bx, by = zip(*w.batches(part, batch_size=7))
        np.testing.assert_array_equal(np.concatenate(bx), X)
        np.testing.assert_array_equal(np.concatenate(by), y)
        # times line up with rows
        starts = w.starts(part)
        assert (w.origin_times(part) == ds.frame.index[starts + spec.window - 1]).all()
        assert (w.label_times(part)[:, -1] == ds.frame.index[starts + spec.span - 1]).all()


@settings(max_examples=40, deadline=None)
@given(_cases())
def test_torch_dataset_equals_views(case):
    torch = pytest.importorskip("torch")
    ds, spec, split = case
    if validate(ds, spec, split):
        return
    w = make_windows(ds, spec, split)
    for part in ("train", "test"):
        tds = w.torch_dataset(part)
        assert len(tds) == w.count(part)
        loader = torch.utils.data.DataLoader(tds, batch_size=16, shuffle=False)
        xb, yb = zip(*loader)
        np.testing.assert_array_equal(torch.cat(xb).numpy(), w.X(part))
        np.testing.assert_array_equal(torch.cat(yb).numpy(), w.y(part))
        # items are slices of one shared tensor, not copies of it
        x0, _ = tds[0]
        assert x0.untyped_storage().data_ptr() == tds.inputs.untyped_storage().data_ptr()


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(_cases(), st.integers(1, 40), st.booleans())
def test_tf_dataset_equals_views(case, batch_size, shuffle):
    tf = pytest.importorskip("tensorflow")
    ds, spec, split = case
    if validate(ds, spec, split):
        return
    w = make_windows(ds, spec, split)
    for part in ("train", "val"):
        xs, ys = [], []
        for xb, yb in w.tf_dataset(part, batch_size=batch_size, shuffle=shuffle, seed=3):
            assert xb.shape[0] <= batch_size
            xs.append(xb.numpy())
            ys.append(yb.numpy())
        X, y = np.concatenate(xs), np.concatenate(ys)
        X_ref, y_ref = w.X(part), w.y(part)
        if shuffle:  # same windows, another order: match each window to its labels through the pairs
            order_ref = np.lexsort(X_ref.reshape(len(X_ref), -1).T)
            order = np.lexsort(X.reshape(len(X), -1).T)
            X, y, X_ref, y_ref = X[order], y[order], X_ref[order_ref], y_ref[order_ref]
        np.testing.assert_array_equal(X, X_ref)
        np.testing.assert_array_equal(y, y_ref)
    assert tf.is_tensor(w._tf[0])


def test_scaler_fitted_on_training_part_only():
    ds = _dataset(1000, ("a", "b"))
    frame = ds.frame.copy()
    frame.iloc[800:, 0] = 1e6  # a huge level only after training: must not leak into the scaler
    ds = Dataset("t", frame, freq="h")
    spec = WindowSpec(targets=("a",), features=("a", "b"), window=10)
    for kind in ("minmax", "standard"):
        w = make_windows(ds, spec, SplitSpec(0.7, 0.15), kind)
        train = frame.iloc[:700]
        if kind == "minmax":
            np.testing.assert_allclose(w.scaler.center, train.min().to_numpy())
            np.testing.assert_allclose(w.scaler.scale, (train.max() - train.min()).to_numpy())
            assert 0 <= w.X("train").min() and w.X("train").max() <= 1
            assert w.X("test").max() > 1000
        else:
            np.testing.assert_allclose(w.scaler.center, train.mean().to_numpy())
            np.testing.assert_allclose(w.scaler.scale, train.std(ddof=0).to_numpy())
        # inverse gives the data's units back
        np.testing.assert_allclose(w.y_data_units("test")[:, 0, 0],
                                   frame["a"].to_numpy()[w.starts("test") + spec.window], rtol=1e-5)


def test_scaler_constant_column_scale_one_and_round_trip():
    s = Scaler.fit({"x": np.full(50, 3.0), "y": np.arange(50.0)}, "minmax")
    assert s.constant == ("x",)
    np.testing.assert_allclose(s.scale, [1.0, 49.0])
    a = np.array([[3.0, 10.0], [4.0, 49.0]])
    t = s.transform(a)
    assert np.isfinite(t).all()
    np.testing.assert_allclose(s.inverse(t), a)
    np.testing.assert_allclose(s.transform(a[:, 1:], ["y"]), t[:, 1:])
    assert Scaler.fit({"x": np.full(5, 2.0)}, "standard").constant == ("x",)
    back = Scaler.from_dict(json.loads(json.dumps(s.to_dict())))
    np.testing.assert_array_equal(back.center, s.center)
    assert back.columns == s.columns and back.constant == s.constant
    with pytest.raises(StudioError, match="no column 'z'"):
        s.transform(a, ["z", "y"])
    with pytest.raises(StudioError, match="damaged"):
        Scaler.from_dict({"kind": "minmax"})
    with pytest.raises(StudioError, match="Unknown scaler"):
        Scaler.fit({"x": np.arange(3.0)}, "robust")


def test_parts_touch_and_validation_and_test_inputs_reach_back():
    ds = _dataset(600)
    spec = WindowSpec(targets=("a",), features=("a", "b"), window=20, horizon=5, offset=2)
    w = make_windows(ds, spec)
    t, v = 420, 510
    assert w.parts == {"train": (0, t), "val": (t, v), "test": (v, 600)}  # no gap between parts
    # training: every row a window reads (inputs and labels) is a training row
    assert w.starts("train").min() == 0 and w.starts("train").max() + spec.span <= t
    for part, (lo, hi) in (("val", (t, v)), ("test", (v, 600))):
        labels = w.starts(part)[:, None] + spec.label_start + np.arange(spec.horizon)
        assert labels.min() == lo and labels.max() == hi - 1  # the part's first and last rows are forecast
        assert w.points(part) == hi - lo                       # and every row between
        assert w.starts(part)[0] == lo - spec.window - spec.offset  # the first window reads the rows before
        assert w.part_of(int(w.starts(part)[0])) == part
    assert w.count("test") == 90 - spec.horizon + 1
    assert w.part_of(t - spec.span + 1) is None  # labels straddling training and validation: used by no part


def _rows_read(starts: np.ndarray, spec: WindowSpec) -> np.ndarray:
    return starts[:, None] + np.arange(spec.span)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_cases())
def test_no_training_window_reads_a_validation_or_test_row(case):
    ds, spec, split = case
    if validate(ds, spec, split):
        return
    w = make_windows(ds, spec, split)
    t = w.parts["train"][1]
    assert w.count("train") > 0 and _rows_read(w.starts("train"), spec).max() < t
    # and as data: whatever validation and test hold, the training windows stay the same
    frame = ds.frame.copy()
    frame.iloc[t:] = np.random.default_rng(1).normal(size=frame.iloc[t:].shape) * 1e6
    other = make_windows(Dataset("x", frame, freq=ds.freq), spec, split)
    np.testing.assert_array_equal(other.X("train"), w.X("train"))
    np.testing.assert_array_equal(other.y("train"), w.y("train"))
    np.testing.assert_array_equal(other.scaler.center, w.scaler.center)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_cases())
def test_validation_and_test_keep_every_label_row_a_full_window_can_reach(case):
    ds, spec, split = case
    if validate(ds, spec, split):
        return
    w = make_windows(ds, spec, split)
    for part in ("val", "test"):
        lo, hi = w.parts[part]
        # brute force: every start whose whole label block lies in the part, with a full window before it
        valid = [s for s in range(0, hi) if s + spec.label_start >= lo and s + spec.span <= hi]
        reachable = {s + spec.label_start + k for s in valid for k in range(spec.horizon)}
        starts = w.starts(part)
        covered = set((starts[:, None] + spec.label_start + np.arange(spec.horizon)).ravel().tolist())
        assert starts[0] == valid[0] and set(starts.tolist()) <= set(valid)
        if w.stride(part) == 1:
            assert covered == reachable and w.count(part) == len(valid)
        assert covered <= set(range(lo, hi)) and w.points(part) == len(covered)
    assert w.count("test") == len(range(max(w.parts["test"][0] - spec.label_start, 0), len(ds.frame) - spec.span + 1))


def test_spec_and_split_round_trip_and_columns():
    spec = WindowSpec(targets=["a"], features=("b", "a"), calendar=("hour", "doy"), window=168, horizon=2)
    assert spec.input_columns == ("b", "a", "hour_sin", "hour_cos", "doy_sin", "doy_cos")
    assert spec.n_inputs == 6 and spec.n_targets == 1 and spec.target_input_index == (1,)
    assert WindowSpec(targets=("c",), features=("a",)).target_input_index == (None,)
    assert WindowSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    split = SplitSpec(train_end="2024-01-10", val_end="2024-01-15")
    assert SplitSpec.from_dict(json.loads(json.dumps(split.to_dict()))) == split
    assert hash(spec) == hash(WindowSpec.from_dict(spec.to_dict()))
    with pytest.raises(StudioError, match="damaged"):
        WindowSpec.from_dict({"targets": ["a"]})
    with pytest.raises(StudioError, match="whole number"):
        WindowSpec(targets=("a",), features=("a",), window=2.5)


def test_calendar_features_values_and_fixed_scaling():
    idx = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 06:00", "2024-01-03 12:00"])
    v = calendar_values(idx, ("hour", "dow"))
    np.testing.assert_allclose(v[:, 0], [0, 1, 0], atol=1e-12)     # hour_sin at 0h, 6h, 12h
    np.testing.assert_allclose(v[:, 1], [1, 0, -1], atol=1e-12)    # hour_cos
    # Monday 00:00 is the start of the week cycle; Wednesday noon is 2.5/7 of it
    np.testing.assert_allclose(v[2, 2], np.sin(2 * np.pi * 2.5 / 7))
    ds = _dataset(24 * 30, ("a",))
    spec = WindowSpec(targets=("a",), features=("a",), calendar=("hour",), window=24)
    w = make_windows(ds, spec)
    assert w.scaler.columns == ("a", "hour_sin", "hour_cos")
    np.testing.assert_allclose(w.scaler.center[1:], [-1, -1])
    assert 0 <= w.inputs[:, 1:].min() and w.inputs[:, 1:].max() <= 1
    assert calendar_options(ds) == ("hour", "dow", "doy")
    assert calendar_options(_dataset(100, freq="D")) == ("dow", "doy")
    assert calendar_options(_dataset(100, freq="MS")) == ("doy",)
    assert calendar_options(_dataset(100, freq=None)) == ()


def test_last_window_future_times_and_times():
    ds = _dataset(300)
    spec = WindowSpec(targets=("a",), features=("a", "b"), window=12, horizon=3, offset=1)
    w = make_windows(ds, spec)
    lw = w.last_window()
    assert lw.shape == (1, 12, 2)
    np.testing.assert_array_equal(lw[0], w.inputs[-12:])
    last = ds.frame.index[-1]
    assert list(w.future_times()) == [last + pd.Timedelta(hours=k) for k in (2, 3, 4)]
    steps = make_windows(_dataset(300, freq=None), spec)
    assert list(steps.future_times()) == [301, 302, 303]


def test_presets_words_and_shapes():
    hourly = {(p.window, p.horizon): p.label for p in presets("h")}
    assert hourly[(168, 1)] == "1 week → next hour"
    assert hourly[(24, 6)] == "1 day → next 6 hours"
    assert hourly[(48, 24)] == "2 days → next day"
    assert (7, 1) in {(p.window, p.horizon) for p in presets("D")}
    assert (52, 4) in {(p.window, p.horizon) for p in presets("W-SUN")}
    assert (12, 1) in {(p.window, p.horizon) for p in presets("MS")}
    assert presets(None)[0].label == "24 steps → next step"
    assert all(2 * (p.window + p.horizon) <= 200 for p in presets("h", n_train=200))
    assert describe_steps(168, "h") == "168 steps = 7 days"
    assert describe_steps(1, "h") == "1 step = 1 hour"
    assert describe_steps(24, "15min") == "24 steps = 6 hours"
    assert describe_steps(12, "MS") == "12 steps = 1 year"
    assert describe_steps(36, "h") == "36 steps = 1.5 days"
    assert describe_steps(10, None) == "10 steps"
    spec = WindowSpec(targets=("a",), features=tuple("abcdefg"), window=168)
    assert shapes_sentence(spec) == "X: (n_windows, 168, 7) = 1,176 values per forecast; y: (n_windows, 1, 1)"


def test_default_spec_fits_and_skips_constant_columns():
    ds = _dataset(120, ("a", "b"))
    ds.frame["flat"] = 5.0
    spec = default_spec(ds)
    assert spec.targets == ("a",) and spec.features == ("a", "b")
    assert validate(ds, spec) == []


def test_split_by_date_and_by_step():
    ds = _dataset(24 * 20)
    spec = WindowSpec(targets=("a",), features=("a",), window=6)
    parts = split_parts(ds.frame.index, SplitSpec(train_end="2024-01-15", val_end="2024-01-18"))
    assert parts["train"] == (0, 14 * 24) and parts["val"] == (14 * 24, 17 * 24)
    steps = _dataset(200, freq=None)
    parts = split_parts(steps.frame.index, SplitSpec(train_end="120", val_end="160"))
    assert parts == {"train": (0, 120), "val": (120, 160), "test": (160, 200)}
    assert largest_window(steps.frame.index, SplitSpec(train_end="120", val_end="160"), horizon=1) == 119
    w = make_windows(steps, spec, SplitSpec(train_end="120", val_end="160"))
    assert w.counts() == {"train": 120 - 7 + 1, "val": 40, "test": 40}


# ---------------------------------------------------------------------------------------- bad input

def _messages(ds, spec, split=SplitSpec(), kind="minmax") -> str:
    problems = validate(ds, spec, split, kind)
    assert problems, "expected a problem"
    with pytest.raises(StudioError) as info:
        make_windows(ds, spec, split, kind)
    assert str(info.value) == str(problems[0])
    return " | ".join(map(str, problems))


def test_window_longer_than_training_part_says_largest_that_fits():
    ds = _dataset(1000)
    msg = _messages(ds, WindowSpec(targets=("a",), features=("a",), window=700))
    assert "longer than the training part (700 rows)" in msg
    fit = largest_window(ds.frame.index, SplitSpec(), 1)
    assert f"largest window that fits every part is {fit}" in msg
    ok = WindowSpec(targets=("a",), features=("a",), window=fit)
    assert validate(ds, ok) == []
    assert validate(ds, WindowSpec(targets=("a",), features=("a",), window=fit + 1))


def test_a_short_test_part_keeps_every_row():
    # 15 test rows and a 24-step window: with a gap before the test part (split rule 1) none was left
    ds = _dataset(300)
    w = make_windows(ds, WindowSpec(targets=("a",), features=("a",), window=24), SplitSpec(0.8, 0.15))
    assert w.counts()["test"] == 15 and w.points("test") == 15
    assert w.first_start("test") == 285 - 24


def test_split_leaving_a_part_without_window():
    ds = _dataset(300)
    msg = _messages(ds, WindowSpec(targets=("a",), features=("a",), window=24, horizon=20), SplitSpec(0.8, 0.15))
    assert "The test part has 15 rows, fewer than the horizon (20 steps)" in msg and "larger share" in msg
    msg = _messages(ds, WindowSpec(targets=("a",), features=("a",), window=5), SplitSpec(0.7, 0.3))
    assert "leave no room" in msg
    msg = _messages(ds, WindowSpec(targets=("a",), features=("a",), window=5),
                    SplitSpec(train_end="2030-01-01", val_end="2031-01-01"))
    assert "inside the data" in msg and "no labels, in the validation and test parts" in msg


def test_a_date_split_that_leaves_a_part_without_labels():
    ds = _dataset(24 * 20)  # 2024-01-01 .. 2024-01-20 23:00
    spec = WindowSpec(targets=("a",), features=("a",), window=6)
    msg = _messages(ds, spec, SplitSpec(train_end="2024-01-10", val_end="2024-01-10"))
    assert "no labels, in the validation part" in msg and "0 validation" in msg and "Move the dates" in msg
    msg = _messages(ds, spec, SplitSpec(train_end="2024-01-10", val_end="2024-02-01"))
    assert "no labels, in the test part" in msg
    msg = _messages(ds, spec, SplitSpec(train_end="2024-01-12", val_end="2024-01-10"))
    assert "starts (2024-01-10) before the validation part (2024-01-12)" in msg
    # a part holding rows, but fewer than the horizon: no forecast's labels fit in it
    msg = _messages(ds, WindowSpec(targets=("a",), features=("a",), window=6, horizon=30),
                    SplitSpec(train_end="2024-01-10", val_end="2024-01-11"))
    assert "The validation part has 24 rows, fewer than the horizon (30 steps)" in msg


def test_window_longer_than_everything_before_the_test_part():
    steps = _dataset(200, freq=None)
    split = SplitSpec(train_end="100", val_end="150")
    msg = _messages(steps, WindowSpec(targets=("a",), features=("a",), window=160), split)
    assert "Window 160 is longer than everything before the test part (150 rows)" in msg
    assert "largest window that fits every part is 99" in msg
    assert validate(steps, WindowSpec(targets=("a",), features=("a",), window=99), split) == []


def test_non_numeric_targets():
    ds = _dataset(200)
    ds.excluded["city"] = "text values"
    msg = _messages(ds, WindowSpec(targets=("city",), features=("a",)))
    assert "'city' is not numeric" in msg and "text values" in msg
    frame = ds.frame.copy()
    frame["label"] = ["x"] * len(frame)
    msg = _messages(Dataset("t", frame, freq="h"), WindowSpec(targets=("label",), features=("a",)))
    assert "'label' is not numeric" in msg
    assert "not a column" in _messages(ds, WindowSpec(targets=("nope",), features=("a",)))


def test_nans_send_back_to_data_step_with_count():
    ds = _dataset(200)
    ds.frame.iloc[[3, 50, 51], 1] = np.nan
    ds.frame.iloc[7, 1] = np.inf
    msg = _messages(ds, WindowSpec(targets=("a",), features=("a", "b"), window=5))
    assert "'b' still has 4 missing or infinite values" in msg and "Data step" in msg
    assert validate(ds, WindowSpec(targets=("a",), features=("a", "c"), window=5)) == []


def test_constant_column_carries_no_information():
    ds = _dataset(200)
    ds.frame["flat"] = 2.0
    msg = _messages(ds, WindowSpec(targets=("a",), features=("a", "flat")))
    assert "'flat' is constant in the training part" in msg and "carries no information" in msg
    daily = _dataset(200, freq="D")
    msg = _messages(daily, WindowSpec(targets=("a",), features=("a",), calendar=("hour",)))
    assert "hour of day" in msg and "carries no information" in msg


def test_absurd_sizes():
    ds = _dataset(1000)
    msg = _messages(ds, WindowSpec(targets=("a",), features=("a",), window=100_000))
    assert "Window 100,000" in msg and "longer than the whole series (1,000 rows)" in msg
    for name, value in (("horizon", 0), ("stride", 0), ("offset", -1), ("horizon", 10**6)):
        args = {"window": 10, name: value}
        msg = _messages(ds, WindowSpec(targets=("a",), features=("a",), **args))
        assert name.capitalize() in msg


def test_other_bad_choices():
    ds = _dataset(200)
    assert "No target" in _messages(ds, WindowSpec(targets=(), features=("a",)))
    assert "No input" in _messages(ds, WindowSpec(targets=("a",), features=()))
    assert "chosen twice" in _messages(ds, WindowSpec(targets=("a", "a"), features=("a",)))
    assert "Unknown scaler" in _messages(ds, WindowSpec(targets=("a",), features=("a",)), kind="robust")
    assert "Unknown calendar" in _messages(ds, WindowSpec(targets=("a",), features=("a",), calendar=("moon",)))
    steps = _dataset(200, freq=None)
    assert "time column" in _messages(steps, WindowSpec(targets=("a",), features=("a",), calendar=("hour",)))
    assert "not a step number" in _messages(steps, WindowSpec(targets=("a",), features=("a",)),
                                            SplitSpec(train_end="soon", val_end="later"))
    empty = Dataset("e", ds.frame.iloc[:0], freq="h")
    assert "no rows" in _messages(empty, WindowSpec(targets=("a",), features=("a",)))
    with pytest.raises(StudioError, match="Unknown part"):
        make_windows(ds, WindowSpec(targets=("a",), features=("a",), window=5)).X("holdout")


@pytest.mark.slow
def test_tf_shuffle_new_order_each_epoch_reproducible_from_seed():
    pytest.importorskip("tensorflow")
    w = make_windows(_dataset(1000, ("a", "b")), WindowSpec(targets=("a",), features=("a", "b"), window=10))

    def order(ds):
        return np.concatenate([x[:, 0, 0].numpy() for x, _ in ds])

    ds = w.tf_dataset("train", 32, shuffle=True, seed=1)
    first, second = order(ds), order(ds)
    assert (first != second).any()
    np.testing.assert_array_equal(first, order(w.tf_dataset("train", 32, shuffle=True, seed=1)))
    np.testing.assert_array_equal(np.sort(first), np.sort(w.X("train")[:, 0, 0]))
    assert [len(x) for x, _ in w.tf_dataset("train", 32)][-1] == w.count("train") % 32 or w.count("train") % 32 == 0


def test_every_window_size_is_scored_on_the_same_test_rows():
    # A sweep compares look-backs by their test MAE: each must forecast the same rows (rule 1 dropped
    # span - 1 rows from the test part's start, a different number per window).
    ds = _dataset(400)
    seen = []
    for window in (4, 24, 96):
        w = make_windows(ds, WindowSpec(targets=("a",), features=("a",), window=window, horizon=2))
        seen.append((w.label_times("test")[0].tolist(), w.label_times("test")[-1].tolist(), w.count("test")))
    assert seen[0] == seen[1] == seen[2]
