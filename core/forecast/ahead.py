"""Forecasts past the end of the data: direct (one pass) or recursive (each prediction fed back as the
next input, where every future input can be computed), with their timestamps."""
from __future__ import annotations


import numpy as np
import pandas as pd

from core import frequency
from core.config import DEFAULTS
from core.errors import StudioError

from core.forecast.tables import LOWER, UPPER, check_matches, run_bands, target_names, tidy_frame, to_units

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
# Forecasts past the last timestamp


def future_index(index: pd.Index, freq: str | None, first: int, count: int, calendar: dict | None = None) -> np.ndarray:
    """``count`` time points starting ``first`` steps after the last one of ``index``.

    Real timestamps at the data's frequency for time-indexed data (with a working ``calendar``, its next
    observed steps: no nights, no weekends); step numbers for row-numbered data.
    """
    if isinstance(index, pd.DatetimeIndex):
        if not freq:
            raise StudioError("The data has no regular frequency, so the future timestamps are unknown.",
                              "Resample it to a regular interval on the Data page (for example hourly), then train again.")
        try:
            stamps = frequency.next_steps(index[-1], 0, first + count, freq, calendar)
        except (pd.errors.OutOfBoundsDatetime, OverflowError):
            raise StudioError(f"{count} steps past {index[-1]} would run beyond {pd.Timestamp.max:%Y-%m-%d}, the last date "
                              "the studio's time axis can hold.", "Forecast fewer steps.") from None
        return np.asarray(stamps[first:first + count])
    last = int(index[-1]) if len(index) else -1
    return np.arange(last + first, last + first + count, dtype=np.int64)


def future_forecast(run, windows, steps: int | None = None, method: str = "direct", freq: str | None = None,
                    calendar: dict | None = None) -> pd.DataFrame:
    """Forecast past the end of the data: columns timestamp, target, step, prediction.

    ``method="direct"``: the model's own horizon from the newest full window (any inputs).
    ``method="recursive"``: ``steps`` ahead by feeding predictions back; only when the inputs are the
    targets and calendar features (see :func:`recursive_unavailable_reason`).
    ``freq`` and ``calendar`` default to the frequency and working calendar the windows' dataset was cleaned to.
    """
    cfg = DEFAULTS["forecast"]
    spec = windows.spec
    h = int(spec.horizon)
    offset = int(getattr(spec, "offset", 0) or 0)
    freq = freq or windows.freq
    calendar = calendar or getattr(windows, "calendar", None)
    if method not in ("direct", "recursive"):
        raise StudioError(f"Unknown forecast method {method!r}.", "Choose 'direct' or 'recursive'.")
    steps = h if steps is None else int(steps)
    if steps < 1:
        raise StudioError("A forecast needs at least one step ahead.", "Choose 1 or more steps.")
    check_matches(run, windows)
    x_last = np.asarray(windows.last_window(), dtype=np.float32)
    x_last = x_last.reshape(1, spec.window, -1)
    if method == "direct":
        if steps > h:
            reason = recursive_unavailable_reason(spec)
            fix = (f"Choose at most {h} steps, or the recursive method for longer forecasts." if reason is None
                   else f"Choose at most {h} steps, or train with a longer horizon (recursive is unavailable: {reason}).")
            raise StudioError(f"The model forecasts {h} step(s) ahead directly; {steps} were asked.", fix)
        times = future_index(windows.index, freq, offset + 1, h, calendar)[:steps]
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
        times = future_index(windows.index, freq, 1, steps, calendar)
        y = rollout(run, windows, x_last, steps, future_times=times)
    pred = to_units(windows, y)
    bands = run_bands(run, windows, steps)
    frame = tidy_frame(np.repeat(np.asarray(windows.index[-1:]), 1), np.asarray(times)[None, :], target_names(windows), pred,
                  None, bands=bands)
    band_cols = [p + key for key in sorted(bands, key=float) for p in (LOWER, UPPER)]
    return frame[["timestamp", "target", "step", "prediction", *band_cols, "origin"]]


