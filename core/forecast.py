"""Forecasts from a trained run: the test set against actuals and baselines, errors per horizon step,
a rolling-origin backtest, and forecasts past the end of the data (direct or recursive).

Every function here is a pure function of a run and the windows it was trained on, so the Forecast
page can cache the results per run (its directory and modification time) and redraw in milliseconds.
Everything returned is in the targets' own units; the model works in scaled units internally.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core import metrics as metrics_mod
from core.config import DEFAULTS
from core.errors import StudioError

BASELINE_PREFIX = "baseline_"
# The tidy forecast table: one row per (origin, target, step). These come first, in this order,
# because they are what the CSV download promises; the baselines follow.
FORECAST_COLUMNS = ["timestamp", "target", "step", "prediction", "actual", "residual", "origin"]


# ---------------------------------------------------------------------------------------------
# Small adapters between the window arithmetic and tidy tables


def _targets(windows) -> list[str]:
    return [str(t) for t in windows.spec.targets]


def to_units(windows, y_scaled: np.ndarray) -> np.ndarray:
    """Scaled (n, horizon, n_targets) values back into the targets' own units (float64)."""
    y = np.asarray(y_scaled, dtype=np.float64)
    flat = y.reshape(-1, y.shape[-1])
    out = np.asarray(windows.scaler.inverse(flat, list(windows.spec.targets)), dtype=np.float64)
    return out.reshape(y.shape)


def _check_matches(run, windows) -> None:
    """Refuse to pair a run with windows it was not trained on (the numbers would be silently wrong)."""
    spec = getattr(run, "window_spec", None)
    if spec is None:
        return
    ours, theirs = spec.to_dict(), windows.spec.to_dict()
    if ours != theirs:
        changed = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
        raise StudioError(
            f"The trained model was made for other feature settings ({', '.join(changed)} changed since training).",
            "Train again on the Train page, or open the project that goes with this model.")


def _label_times(windows, part: str) -> np.ndarray:
    """Timestamps (or step numbers) of each window's labels, shape (n, horizon)."""
    times = np.asarray(windows.label_times(part))
    if times.ndim == 1:  # one label per window
        times = times[:, None]
    return times


def _tidy(origins: np.ndarray, label_times: np.ndarray, targets: list[str], pred: np.ndarray,
          actual: np.ndarray | None, baselines: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Long table, one row per (target, origin, step), ordered by target then origin then step.

    Built with numpy repeats instead of a melt: it stays fast for the million-row datasets the
    page must handle.
    """
    n, h, k = pred.shape
    per_target = n * h
    cols: dict[str, Any] = {
        "timestamp": np.tile(np.asarray(label_times).reshape(-1), k),
        "target": np.repeat(np.asarray(targets, dtype=object), per_target),
        "step": np.tile(np.tile(np.arange(1, h + 1), n), k),
        "prediction": pred.transpose(2, 0, 1).reshape(-1),
        "actual": (actual.transpose(2, 0, 1).reshape(-1) if actual is not None else np.full(n * h * k, np.nan)),
    }
    cols["residual"] = cols["actual"] - cols["prediction"]
    cols["origin"] = np.tile(np.repeat(np.asarray(origins), h), k)
    for name, values in (baselines or {}).items():
        cols[BASELINE_PREFIX + name] = np.asarray(values, dtype=np.float64).transpose(2, 0, 1).reshape(-1)
    frame = pd.DataFrame(cols)
    frame["target"] = frame["target"].astype("category")
    return frame


# ---------------------------------------------------------------------------------------------
# Test-set forecasts


@dataclass
class TestReport:
    """What the Forecast page shows about the test part, computed once per run."""

    frame: pd.DataFrame          # tidy forecasts (FORECAST_COLUMNS + baseline_* columns)
    metrics: dict                # core.metrics.evaluate's dict: model, baselines, per_step, verdict...
    per_step: pd.DataFrame       # target, step, mae/rmse of the model and of each baseline
    part: str = "test"


def predict_part(run, windows, part: str = "test") -> np.ndarray:
    """The run's scaled predictions for every window of ``part``, shape (n, horizon, n_targets)."""
    _check_matches(run, windows)
    if windows.count(part) == 0:
        raise StudioError(f"The {part} part has no complete window to forecast.",
                          "Give it more rows on the Features page (a larger split, or a shorter window or horizon).")
    y = np.asarray(run.predict(windows.X(part)))
    return y.reshape(windows.count(part), windows.spec.horizon, len(windows.spec.targets))


def test_forecasts(run, windows, part: str = "test", y_pred_scaled: np.ndarray | None = None) -> pd.DataFrame:
    """Forecasts of every ``part`` window against the actuals and each baseline, in the targets' units."""
    y_scaled = predict_part(run, windows, part) if y_pred_scaled is None else y_pred_scaled
    pred = to_units(windows, y_scaled)
    actual = to_units(windows, windows.y(part))
    base = {name: np.asarray(v, dtype=np.float64).reshape(pred.shape)
            for name, v in metrics_mod.baselines(windows, part).items()}
    return _tidy(np.asarray(windows.origin_times(part)), _label_times(windows, part), _targets(windows),
                 pred, actual, base)


def baseline_names(frame: pd.DataFrame) -> list[str]:
    return [c[len(BASELINE_PREFIX):] for c in frame.columns if c.startswith(BASELINE_PREFIX)]


def per_step_errors(frame: pd.DataFrame) -> pd.DataFrame:
    """MAE and RMSE per (target, horizon step) for the model and each baseline in ``frame``.

    Summed with np.bincount over a (target, step) code: a pandas groupby of the same table costs
    several times more, and this runs on every first render of the page.
    """
    codes, names = pd.factorize(frame["target"], sort=False)
    step = frame["step"].to_numpy().astype(np.int64)
    h = int(step.max()) if len(step) else 1
    key = codes.astype(np.int64) * h + (step - 1)
    size = len(names) * h
    counts = np.bincount(key, minlength=size).astype(np.float64)
    actual = frame["actual"].to_numpy(dtype=np.float64)
    cols = {"target": np.repeat(np.asarray(names, dtype=object), h), "step": np.tile(np.arange(1, h + 1), len(names))}
    forecasters = [("model", "prediction")] + [(n, BASELINE_PREFIX + n) for n in baseline_names(frame)]
    with np.errstate(invalid="ignore", divide="ignore"):
        for name, col in forecasters:
            err = frame[col].to_numpy(dtype=np.float64) - actual
            ok = np.isfinite(err)
            n = np.bincount(key[ok], minlength=size).astype(np.float64)
            cols[f"{name}_mae"] = np.bincount(key[ok], weights=np.abs(err[ok]), minlength=size) / n
            cols[f"{name}_rmse"] = np.sqrt(np.bincount(key[ok], weights=err[ok] ** 2, minlength=size) / n)
    return pd.DataFrame(cols)[counts > 0].reset_index(drop=True)


def test_report(run, windows, part: str = "test") -> TestReport:
    """Test forecasts, the metrics and verdict (core.metrics.evaluate) and the per-step errors, from one prediction."""
    y_scaled = predict_part(run, windows, part)
    frame = test_forecasts(run, windows, part, y_pred_scaled=y_scaled)
    result = metrics_mod.evaluate(windows, y_scaled, part)
    return TestReport(frame=frame, metrics=result, per_step=per_step_errors(frame), part=part)


def metrics_table(result: dict) -> pd.DataFrame:
    """The one metrics presentation (the Train and Forecast pages show it, ``studio train`` prints it):
    one row per forecaster (the model, then each baseline) with its scores, and how much better
    the model is than that row in % (positive means the model wins), by the measure the verdict
    uses: MAE for one target, MASE for several (their MAEs would add different units)."""
    key = str(result.get("compared_by") or "mae")
    rows = [{"forecaster": "model", **result["model"]}]
    for name, scores in result.get("baselines", {}).items():
        if name != "naive":  # run.json's alias of last_value, under the name SPEC uses
            rows.append({"forecaster": name, **scores})
    table = pd.DataFrame(rows)
    values = pd.to_numeric(table[key], errors="coerce").astype(float)
    model_value = float(values.iloc[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        better = (values - model_value) / values * 100.0
    table["model_better_by_pct"] = better.where(table["forecaster"] != "model")
    table["best_baseline"] = table["forecaster"] == result.get("best_baseline")
    return table


# ---------------------------------------------------------------------------------------------
# Recursive forecasting: which inputs can be known in the future


def recursive_unavailable_reason(spec) -> str | None:
    """Why each prediction cannot be fed back as the next input, or None when it can.

    Feeding back needs every future input to be computable: the targets (from the predictions) and
    calendar features (from the future timestamps). Any other input's future is unknown.
    """
    targets = [str(t) for t in spec.targets]
    features = [str(f) for f in spec.features]
    if int(getattr(spec, "offset", 0) or 0) != 0:
        return (f"the model skips {spec.offset} step(s) before its first forecast (offset), so those steps are "
                "never predicted and cannot be fed back")
    missing = [t for t in targets if t not in features]
    if missing:
        return (f"the target {', '.join(repr(m) for m in missing)} is not among the model's inputs, so a "
                "prediction cannot be fed back as the next input")
    others = [f for f in features if f not in targets]
    if others:
        return (f"the inputs include {', '.join(repr(o) for o in others)}, whose future values are unknown; "
                "recursive forecasting needs inputs that are only the targets and calendar features")
    return None


def _calendar_block(windows, times) -> np.ndarray | None:
    """Scaled calendar input columns for ``times``: (len(times), 2 * n_calendar), or None without calendar."""
    spec = windows.spec
    if not spec.calendar:
        return None
    from core.windows import calendar_columns, calendar_values

    values = calendar_values(pd.DatetimeIndex(times), spec.calendar)
    return np.asarray(windows.scaler.transform(values, list(calendar_columns(spec.calendar))), dtype=np.float32)


def _feedback_rows(windows, pred_scaled: np.ndarray, times, known_inputs: np.ndarray | None) -> np.ndarray:
    """New input rows (b, m, n_inputs) from predicted targets and calendar values for ``times``.

    ``known_inputs`` are the real input rows at ``times`` when they exist (a backtest inside the data):
    their calendar columns are exact, so only the targets are replaced by predictions.
    """
    spec = windows.spec
    b, m, _ = pred_scaled.shape
    if known_inputs is not None:
        rows = np.array(known_inputs, dtype=np.float32, copy=True)
    else:
        rows = np.zeros((b, m, spec.n_inputs), dtype=np.float32)
        cal = _calendar_block(windows, times)
        if cal is not None:
            # calendar columns come after the features in spec.input_columns
            rows[:, :, len(spec.features):] = cal[None]
    # a target enters the model under its input column's scaling; go through the data's units
    units = to_units(windows, pred_scaled)
    for k, target in enumerate(spec.targets):
        pos = spec.target_input_index[k]
        rows[:, :, pos] = np.asarray(
            windows.scaler.transform(units[:, :, k].reshape(-1, 1), [target]), dtype=np.float32).reshape(b, m)
    return rows


def rollout(run, windows, x0: np.ndarray, steps: int, future_times: np.ndarray | None = None,
            known_inputs: np.ndarray | None = None) -> np.ndarray:
    """Feed predictions back to forecast ``steps`` ahead from input windows ``x0`` (b, window, n_inputs).

    Each model call forecasts its whole horizon; those values become the next inputs (with the
    calendar columns of their timestamps) and the window slides on. Returns scaled (b, steps, n_targets).
    ``known_inputs`` (b, steps, n_inputs): the real input rows after each origin, for a backtest.
    """
    reason = recursive_unavailable_reason(windows.spec)
    if reason:
        raise StudioError(f"A recursive forecast is not possible: {reason}.",
                          "Use the direct forecast (the model's own horizon), or train on the targets and calendar features only.")
    h = int(windows.spec.horizon)
    x = np.asarray(x0, dtype=np.float32)
    out = []
    done = 0
    while done < steps:
        y = np.asarray(run.predict(x), dtype=np.float32).reshape(x.shape[0], h, -1)
        take = min(h, steps - done)
        y = y[:, :take]
        out.append(y)
        times = None if future_times is None else future_times[done:done + take]
        known = None if known_inputs is None else known_inputs[:, done:done + take]
        new_rows = _feedback_rows(windows, y, times, known)
        x = np.concatenate([x[:, take:], new_rows], axis=1)
        done += take
    return np.concatenate(out, axis=1)


# ---------------------------------------------------------------------------------------------
# Rolling-origin backtest over the test part


@dataclass
class Backtest:
    frame: pd.DataFrame       # tidy forecasts issued at the chosen origins
    scores: pd.DataFrame      # forecaster, mae, rmse, ... over all those origins
    per_origin: pd.DataFrame  # origin, target, model_mae, <baseline>_mae for each origin
    origins: list             # the origin timestamps (or step numbers)
    steps: int
    method: str               # "direct" or "recursive"


def _score_rows(frame: pd.DataFrame, windows) -> pd.DataFrame:
    """Scores of the model and each baseline on the rows of ``frame`` via core.metrics.score, with
    MASE scaled per target as core.metrics.evaluate does."""
    actual = frame["actual"].to_numpy()
    lo, hi = windows.parts["train"]
    train = to_units(windows, np.asarray(windows.target_values[lo:hi])[None])[0]
    per_target = np.asarray(metrics_mod.naive_scale(train), dtype=np.float64)
    codes = pd.Categorical(frame["target"], categories=_targets(windows)).codes
    scale = per_target[codes]
    rows = [{"forecaster": "model", **metrics_mod.score(actual, frame["prediction"].to_numpy(), scale)}]
    for name in baseline_names(frame):
        rows.append({"forecaster": name, **metrics_mod.score(actual, frame[BASELINE_PREFIX + name].to_numpy(), scale)})
    return pd.DataFrame(rows)


def backtest_beaten_by(bt: "Backtest", measure: str = "mae") -> list[tuple[str, float, float]]:
    """The baselines that beat the model over the backtest's origins, best first, as
    (name, model's score, baseline's score) by ``measure`` (the verdict's: MAE for one target, MASE for several)."""
    scores = bt.scores.set_index("forecaster")
    if measure not in scores.columns or "model" not in scores.index:
        return []
    model = float(pd.to_numeric(scores.loc["model", measure], errors="coerce"))
    out = []
    for name, value in pd.to_numeric(scores[measure], errors="coerce").items():
        if name != "model" and np.isfinite(value) and np.isfinite(model) and value < model:
            out.append((str(name), model, float(value)))
    return sorted(out, key=lambda row: row[2])


def backtest(run, windows, origin_stride: int, part: str = "test", steps: int | None = None,
             max_origins: int | None = None) -> Backtest:
    """Rolling-origin evaluation: forecasts issued every ``origin_stride`` windows across ``part``.

    With ``steps`` at most the model's horizon each origin gets a direct forecast, scored against the
    baselines at the same origins. Longer ``steps`` roll the model forward recursively (when its inputs
    allow it) and compare with repeating the last observed value.
    """
    cfg = DEFAULTS["forecast"]
    origin_stride = int(origin_stride)
    if origin_stride < 1:
        raise StudioError("The origin stride must be at least 1 step.", "Choose 1 or more.")
    h = int(windows.spec.horizon)
    steps = h if steps is None else int(steps)
    if steps < 1:
        raise StudioError("The backtest needs at least one step ahead.", "Choose 1 or more steps.")
    n = windows.count(part)
    if n == 0:
        raise StudioError(f"The {part} part has no complete window to backtest.",
                          "Give it more rows on the Features page.")
    max_origins = int(max_origins or cfg["backtest_max_origins"])
    idx = np.arange(0, n, origin_stride)
    if steps > h:
        # a recursive roll-out needs the actuals after each origin, inside the part
        lo, hi = windows.parts[part]
        starts = np.asarray(windows.starts(part))
        first_label = starts + windows.spec.window + int(windows.spec.offset)
        idx = idx[first_label[idx] + steps <= hi]
        if len(idx) == 0:
            raise StudioError(f"The {part} part is too short for {steps} steps ahead from any origin.",
                              f"Choose at most {max(hi - int(first_label[0]), 1)} steps, or a larger {part} part.")
    if len(idx) > max_origins:
        raise StudioError(f"An origin stride of {origin_stride} gives {len(idx):,} origins, more than the {max_origins:,} the page draws.",
                          f"Choose a stride of at least {int(np.ceil(n / max_origins))}.")
    origins = np.asarray(windows.origin_times(part))[idx]
    if steps <= h:
        y_scaled = np.asarray(run.predict(windows.X(part)[idx])).reshape(len(idx), h, -1)[:, :steps]
        pred = to_units(windows, y_scaled)
        actual = to_units(windows, np.asarray(windows.y(part))[idx][:, :steps])
        base = {name: np.asarray(v, dtype=np.float64).reshape(n, h, -1)[idx][:, :steps]
                for name, v in metrics_mod.baselines(windows, part).items()}
        times = _label_times(windows, part)[idx][:, :steps]
        method = "direct"
    else:
        _check_matches(run, windows)
        starts = np.asarray(windows.starts(part))[idx]
        first = starts + windows.spec.window
        rows = first[:, None] + np.arange(steps)[None, :]
        known = np.asarray(windows.inputs)[rows]
        y_scaled = rollout(run, windows, np.asarray(windows.X(part)[idx]), steps, known_inputs=known)
        pred = to_units(windows, y_scaled)
        actual = to_units(windows, np.asarray(windows.target_values)[rows])
        last = to_units(windows, np.asarray(windows.target_values)[first - 1][:, None, :])
        base = {"last_value": np.repeat(last, steps, axis=1)}
        times = np.asarray(windows.index)[rows]
        method = "recursive"
    frame = _tidy(origins, times, _targets(windows), pred, actual, base)
    scores = _score_rows(frame, windows)
    err = frame[["origin", "target"]].copy()
    err["model_mae"] = np.abs(frame["residual"].to_numpy())
    for name in baseline_names(frame):
        err[f"{name}_mae"] = np.abs(frame[BASELINE_PREFIX + name].to_numpy() - frame["actual"].to_numpy())
    per_origin = err.groupby(["origin", "target"], observed=True, sort=True).mean().reset_index()
    return Backtest(frame=frame, scores=scores, per_origin=per_origin, origins=list(origins), steps=steps, method=method)


# ---------------------------------------------------------------------------------------------
# Forecasts past the last timestamp


def future_index(index: pd.Index, freq: str | None, first: int, count: int) -> np.ndarray:
    """``count`` time points starting ``first`` steps after the last one of ``index``.

    Real timestamps at the data's frequency for time-indexed data; step numbers for row-numbered data.
    """
    if isinstance(index, pd.DatetimeIndex):
        if not freq:
            raise StudioError("The data has no regular frequency, so the future timestamps are unknown.",
                              "Resample it to a regular interval on the Data page (for example hourly), then train again.")
        try:
            stamps = pd.date_range(start=index[-1], periods=first + count, freq=freq)
        except (pd.errors.OutOfBoundsDatetime, OverflowError):
            raise StudioError(f"{count} steps past {index[-1]} would run beyond {pd.Timestamp.max:%Y-%m-%d}, the last date "
                              "the studio's time axis can hold.", "Forecast fewer steps.") from None
        return np.asarray(stamps[first:first + count])
    last = int(index[-1]) if len(index) else -1
    return np.arange(last + first, last + first + count, dtype=np.int64)


def future_forecast(run, windows, steps: int | None = None, method: str = "direct", freq: str | None = None) -> pd.DataFrame:
    """Forecast past the end of the data: columns timestamp, target, step, prediction.

    ``method="direct"``: the model's own horizon from the newest full window (any inputs).
    ``method="recursive"``: ``steps`` ahead by feeding predictions back; only when the inputs are the
    targets and calendar features (see :func:`recursive_unavailable_reason`).
    ``freq`` defaults to the frequency the windows' dataset was cleaned to.
    """
    cfg = DEFAULTS["forecast"]
    spec = windows.spec
    h = int(spec.horizon)
    offset = int(getattr(spec, "offset", 0) or 0)
    freq = freq or windows.freq
    if method not in ("direct", "recursive"):
        raise StudioError(f"Unknown forecast method {method!r}.", "Choose 'direct' or 'recursive'.")
    steps = h if steps is None else int(steps)
    if steps < 1:
        raise StudioError("A forecast needs at least one step ahead.", "Choose 1 or more steps.")
    _check_matches(run, windows)
    x_last = np.asarray(windows.last_window(), dtype=np.float32)
    x_last = x_last.reshape(1, spec.window, -1)
    if method == "direct":
        if steps > h:
            reason = recursive_unavailable_reason(spec)
            fix = (f"Choose at most {h} steps, or the recursive method for longer forecasts." if reason is None
                   else f"Choose at most {h} steps, or train with a longer horizon (recursive is unavailable: {reason}).")
            raise StudioError(f"The model forecasts {h} step(s) ahead directly; {steps} were asked.", fix)
        times = future_index(windows.index, freq, offset + 1, h)[:steps]
        y = np.asarray(run.predict(x_last)).reshape(1, h, -1)[:, :steps]
    else:
        limit = int(cfg["max_future_steps"])
        if steps > limit:
            raise StudioError(f"{steps:,} steps ahead is more than the recursive forecast allows ({limit:,}); "
                              "errors compound with every fed-back step.", f"Choose at most {limit:,} steps.")
        reason = recursive_unavailable_reason(spec)
        if reason:
            raise StudioError(f"A recursive forecast is not possible: {reason}.",
                              f"Use the direct forecast ({h} step(s)), or train on the targets and calendar features only.")
        if tuple(spec.calendar) and not isinstance(windows.index, pd.DatetimeIndex):
            raise StudioError("Calendar features need timestamps, and this data has row numbers only.",
                              "Use the direct forecast.")
        times = future_index(windows.index, freq, 1, steps)
        y = rollout(run, windows, x_last, steps, future_times=times)
    pred = to_units(windows, y)
    frame = _tidy(np.repeat(np.asarray(windows.index[-1:]), 1), np.asarray(times)[None, :], _targets(windows), pred, None)
    return frame[["timestamp", "target", "step", "prediction", "origin"]]


# ---------------------------------------------------------------------------------------------
# Downloads


FLOAT_FORMAT = "%.7g"  # float32's precision: no "365.4999977350235" in a download


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """A CSV that opens correctly everywhere, non-ASCII column and target names included.

    UTF-8 with a byte-order mark: Excel (the tool most workshop participants double-click a CSV into)
    reads BOM-less UTF-8 as the local ANSI code page and garbles names such as "Temperatur (°C)";
    with the BOM it reads UTF-8. pandas, LibreOffice and Python's csv module (utf-8-sig) skip the BOM.
    Timestamps are ISO 8601 and numbers use a dot, independent of locale, with 7 significant digits: the
    model and the scaler compute in float32, whose ~7 digits are all the values hold (printed in full, a
    float32 365.5 read "365.4999977350235").
    """
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = out[col].dt.strftime("%Y-%m-%dT%H:%M:%S")
    return out.to_csv(index=False, lineterminator="\r\n", float_format=FLOAT_FORMAT).encode("utf-8-sig")


def forecasts_csv(frame: pd.DataFrame) -> bytes:
    """The forecasts download: timestamp, target, step, prediction, actual, then origin and baselines."""
    first = [c for c in ("timestamp", "target", "step", "prediction", "actual") if c in frame.columns]
    rest = [c for c in frame.columns if c not in first and c != "residual"]
    return csv_bytes(frame[first + rest])


def metrics_csv(result: dict, per_step: pd.DataFrame | None = None) -> bytes:
    """The metrics download: the table of forecasters, then (when given) the errors per horizon step."""
    table = metrics_table(result)
    text = table.to_csv(index=False, lineterminator="\r\n", float_format=FLOAT_FORMAT)
    if per_step is not None and len(per_step):
        text += "\r\n" + per_step.to_csv(index=False, lineterminator="\r\n", float_format=FLOAT_FORMAT)
    return text.encode("utf-8-sig")
