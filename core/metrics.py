"""Scores in the targets' own units, the naive baselines on the same windows, and the verdict.

Every forecaster (the model and each baseline) goes through the same ``score`` on the same label
rows (Darts' habit), so "23% better than seasonal naive" compares like with like.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from core.frequency import natural_period

BASELINES = ("last_value", "seasonal_naive", "mean")
BASELINE_LABELS = {"last_value": "last value", "seasonal_naive": "seasonal naive", "mean": "training mean"}
# MAPE divides by the actual: it is reported only when no actual is within this fraction of the
# largest |actual| (temperatures crossing 0 °C would otherwise explode it).
MAPE_NEAR_ZERO = 0.01
# An autocorrelation peak at least this strong counts as a real season (calendar features suggested).
STRONG_SEASON = 0.3


# ---------------------------------------------------------------- scores

def score(y_true: Any, y_pred: Any, mase_scale: Any = None) -> dict:
    """MAE, RMSE, sMAPE (%), MAPE (%, None when an actual is near zero) and MASE.

    ``mase_scale``: the in-sample one-step naive MAE (a number, or one per target on the last axis);
    MASE is None without it. NaN pairs are left out (a gap in the data is not an error of the model).
    """
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.shape != p.shape:
        raise ValueError(f"actuals {t.shape} and forecasts {p.shape} differ in shape")
    ok = np.isfinite(t) & np.isfinite(p)
    err = np.where(ok, p - t, 0.0)
    n = int(ok.sum())
    if n == 0:
        return {"mae": None, "rmse": None, "smape": None, "mape": None, "mase": None, "n": 0}
    abs_err = np.abs(err)
    mae = float(abs_err.sum() / n)
    rmse = float(np.sqrt((err ** 2).sum() / n))
    denom = np.abs(t) + np.abs(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(ok & (denom > 0), 2.0 * abs_err / denom, 0.0)  # both zero: a perfect forecast
    smape = float(100.0 * terms.sum() / n)
    at = np.abs(np.where(ok, t, np.nan))
    biggest = float(np.nanmax(at))
    mape = None
    if biggest > 0 and float(np.nanmin(at)) > MAPE_NEAR_ZERO * biggest:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            mape = float(100.0 * np.nansum(np.where(ok, abs_err / at, np.nan)) / n)
        mape = mape if np.isfinite(mape) else None  # actuals near the float limit: no honest percentage
    mase = None
    if mase_scale is not None:
        s = np.broadcast_to(np.asarray(mase_scale, dtype=np.float64), t.shape) if np.ndim(mase_scale) else None
        if s is None:
            s0 = float(mase_scale)
            mase = mae / s0 if s0 > 0 and np.isfinite(s0) else None
        elif np.all(s[ok] > 0):
            mase = float((abs_err / np.where(ok, s, 1.0)).sum() / n)
    return {"mae": mae, "rmse": rmse, "smape": smape, "mape": mape, "mase": mase, "n": n}


def naive_scale(series: Any) -> np.ndarray:
    """MASE's denominator per column: mean |y[t] - y[t-1]| over a (n, n_targets) training series."""
    s = np.asarray(series, dtype=np.float64)
    if s.ndim == 1:
        s = s[:, None]
    if len(s) < 2:
        return np.full(s.shape[1], np.nan)
    return np.nanmean(np.abs(np.diff(s, axis=0)), axis=0)


# ---------------------------------------------------------------- seasonality

@dataclass(frozen=True)
class Seasonality:
    """The period the data shows; ``source`` says whether it was detected or only assumed from the frequency."""

    period: int | None
    strength: float          # autocorrelation of the differenced series at ``period`` (0 = none, 1 = exact)
    natural: int | None      # the frequency's natural period (a day of hours, a week of days...)
    source: str              # "autocorrelation", "frequency" or "none"

    @property
    def strong(self) -> bool:
        return self.period is not None and self.strength >= STRONG_SEASON

    def to_dict(self) -> dict:
        return {"period": self.period, "strength": self.strength, "natural": self.natural,
                "source": self.source, "strong": self.strong}


def _acf(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Autocorrelation at lags 0..max_lag by FFT (O(n log n): a year of hours is instant)."""
    x = x - x.mean()
    n = len(x)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(x, size)
    ac = np.fft.irfft(f * np.conj(f), size)[: max_lag + 1]
    return ac / ac[0] if ac[0] > 0 else np.zeros(max_lag + 1)


def detect_period(series: Any, freq: str | None = None, max_period: int | None = None,
                  calendar: dict | None = None) -> Seasonality:
    """The seasonal period from the autocorrelation of the first differences.

    Differencing removes slow drift and persistence (which make every lag look alike), so a peak left
    standing is a repeating shape. The highest local peak wins, except that the frequency's natural
    period is kept when it is almost as strong (a day for hourly data is the one people expect), and a
    multiple of a shorter, almost-as-strong peak gives way to that shorter one. A working ``calendar`` makes the
    natural period a day (or week) of observed steps.
    """
    natural = natural_period(freq, calendar)
    x = np.asarray(series, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    d = np.diff(x)
    limit = max_period or max(2 * (natural or 0), 400)
    max_lag = min(limit, len(d) // 2)
    if max_lag < 3 or np.std(d) == 0:
        return Seasonality(natural, 0.0, natural, "frequency" if natural else "none")
    ac = _acf(d, max_lag)
    lags = np.arange(2, max_lag)
    peaks = [int(k) for k in lags if ac[k] > ac[k - 1] and ac[k] >= ac[k + 1] and ac[k] > 0.1]
    if not peaks:
        strength = float(max(ac[natural], 0.0)) if natural and natural <= max_lag else 0.0
        return Seasonality(natural, strength, natural, "frequency" if natural else "none")
    best = max(peaks, key=lambda k: ac[k])
    for k in sorted(peaks):  # harmonics: 48 h loses to 24 h when 24 h is nearly as strong
        if k < best and best % k == 0 and ac[k] >= 0.9 * ac[best]:
            best = k
            break
    if natural and natural <= max_lag:
        near = [k for k in peaks if abs(k - natural) <= max(1, natural // 20)]
        if near:
            k = max(near, key=lambda j: ac[j])
            if ac[k] >= 0.85 * ac[best]:
                best = k
        if ac[best] < STRONG_SEASON and abs(best - natural) > max(1, natural // 20):
            # A weak peak somewhere else is more likely noise than a season (quarterly GDP "peaked"
            # at 42 quarters, and a 42-quarter seasonal naive was 40x worse than last value): the
            # natural period is the safer guess.
            return Seasonality(natural, float(max(ac[natural], 0.0)), natural, "frequency")
    return Seasonality(int(best), float(ac[best]), natural, "autocorrelation")


# ---------------------------------------------------------------- baselines (pure functions)

def last_value_forecast(series: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """(n, horizon, n_targets): each window's last observed value, repeated over the horizon."""
    s = np.asarray(series, dtype=np.float64)
    return np.repeat(s[np.asarray(origins)][:, None, :], horizon, axis=1)


def seasonal_naive_forecast(series: np.ndarray, origins: np.ndarray, label_rows: np.ndarray,
                            periods: Any) -> np.ndarray:
    """(n, horizon, n_targets): the value whole periods before each label, at or before the origin.

    ``label_rows`` (n, horizon); ``periods`` one per target (None or a period longer than the history
    before a window falls back to that window's last value).
    """
    s = np.asarray(series, dtype=np.float64)
    origins = np.asarray(origins, dtype=np.int64)
    labels = np.asarray(label_rows, dtype=np.int64)
    n_t = s.shape[1]
    periods = list(periods) if np.ndim(periods) else [periods] * n_t
    out = np.empty(labels.shape + (n_t,))
    for j, period in enumerate(periods):
        if not period or period < 1:
            out[..., j] = s[origins, j][:, None]
            continue
        back = -(-(labels - origins[:, None]) // period)  # whole periods needed to reach the origin
        src = labels - back * period
        src = np.where(src >= 0, src, origins[:, None])
        out[..., j] = s[src, j]
    return out


def mean_forecast(train_series: np.ndarray, n: int, horizon: int) -> np.ndarray:
    """(n, horizon, n_targets): the training part's mean of each target."""
    m = np.nanmean(np.asarray(train_series, dtype=np.float64), axis=0)
    return np.broadcast_to(m, (n, horizon, len(m))).copy()


# ---------------------------------------------------------------- on Windows

def series_units(windows: Any) -> np.ndarray:
    return np.asarray(windows.scaler.inverse(np.asarray(windows.target_values, dtype=np.float64),
                                             windows.spec.targets), dtype=np.float64)


def part_rows(windows: Any, part: str) -> tuple[np.ndarray, np.ndarray]:
    spec = windows.spec
    starts = np.asarray(windows.starts(part), dtype=np.int64)
    origins = starts + spec.window - 1
    labels = origins[:, None] + 1 + int(getattr(spec, "offset", 0)) + np.arange(spec.horizon)
    return origins, labels


def seasonality(windows: Any) -> list[Seasonality]:
    """One Seasonality per target, detected on the training part only (the test part stays unseen): the one
    ``make_windows`` stored (core.seasons), else found here on the training part's values in the data's units."""
    if getattr(windows, "seasons", None):
        return list(windows.seasons)
    lo, hi = windows.parts["train"]
    series = series_units(windows)[lo:hi]
    freq, calendar = getattr(windows, "freq", None), getattr(windows, "calendar", None)
    return [detect_period(series[:, j], freq, calendar=calendar) for j in range(series.shape[1])]


def baselines(windows: Any, part: str, periods: Any = None) -> dict[str, np.ndarray]:
    """The baseline forecasts for every ``part`` window, (n, horizon, n_targets) in the data's units."""
    series = series_units(windows)
    origins, labels = part_rows(windows, part)
    if periods is None:
        periods = [s.period for s in seasonality(windows)]
    lo, hi = windows.parts["train"]
    return {
        "last_value": last_value_forecast(series, origins, windows.spec.horizon),
        "seasonal_naive": seasonal_naive_forecast(series, origins, labels, periods),
        "mean": mean_forecast(series[lo:hi], len(origins), windows.spec.horizon),
    }


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"


def weak_note(points: int, part_label: str = "test", threshold: int | None = None) -> str | None:
    """A plain warning when a comparison rests on fewer than ``threshold`` time points, else None."""
    from core.config import DEFAULTS

    limit = int(DEFAULTS["forecast"]["weak_points"] if threshold is None else threshold)
    if points >= limit:
        return None
    return (f"This comparison is weak: it rests on only {points:,} {part_label} point{'' if points == 1 else 's'} "
            f"(fewer than {limit}), so a few unusual values can swing it either way. For a firmer verdict give the "
            f"{part_label} part a larger share; a smaller window leaves training enough rows to spare them.")


def verdict(part_label: str, targets: list[str], model: dict, base: dict[str, dict], key: str,
            points: int | None = None) -> tuple[str | None, float | None, str]:
    """(best baseline, improvement %, one plain sentence with the numbers); ``key`` is "mae" or "mase".

    ``points``: how many time points the scores rest on; the sentence says so when given.
    """
    candidates = {k: v[key] for k, v in base.items() if v.get(key) is not None}
    what = "MAE" if key == "mae" else "MASE (scale-free, as the targets differ in units)"
    on = f" for {targets[0]}" if len(targets) == 1 else ""
    if model.get(key) is None or not candidates:
        return None, None, f"The model's {part_label} {what} could not be computed (no complete forecasts)."
    best = min(candidates, key=candidates.get)
    b, m = float(candidates[best]), float(model[key])
    improvement = (b - m) / b * 100.0 if b > 0 else (0.0 if m == 0 else -100.0)
    head = f"The model's {part_label} {what}{on} is {_fmt(m)}"
    name = BASELINE_LABELS.get(best, best)
    over = "" if points is None else f", over {points:,} {part_label} point{'' if points == 1 else 's'}"
    if improvement > 0:
        return best, improvement, f"{head}, {improvement:.0f}% better than the best baseline ({name}, {_fmt(b)}){over}."
    text = f"{head}, {-improvement:.0f}% worse than the best baseline ({name}, {_fmt(b)})"
    lv = candidates.get("last_value")
    if best != "last_value" and lv is not None and m < lv:
        text += f"; it does beat last value ({_fmt(lv)})"
    return best, improvement, text + over + "."


def evaluate(windows: Any, y_pred_scaled: Any, part: str = "test") -> dict:
    """The model against the baselines on ``part``'s windows, in the targets' own units.

    Returns ``model``, ``baselines`` (name -> score), ``per_step`` (1-based step: model MAE/RMSE and
    each baseline's MAE), ``per_target``, ``best_baseline``, ``improvement_pct``, ``beats_best``,
    ``beats_last_value``, ``seasonality``, ``verdict``, ``n_windows``, ``points`` (the time points of
    ``part`` that were forecast) and ``weak`` (a warning when they are too few to judge by, else None). With several targets the best baseline is
    picked by MASE, since MAE would add up different units.
    """
    spec = windows.spec
    targets = [str(t) for t in spec.targets]
    n = int(windows.count(part))
    y_pred_scaled = np.asarray(y_pred_scaled, dtype=np.float64).reshape(n, spec.horizon, len(targets))
    pred = np.asarray(windows.scaler.inverse(y_pred_scaled, spec.targets), dtype=np.float64)
    actual = np.asarray(windows.scaler.inverse(np.asarray(windows.y(part), dtype=np.float64), spec.targets))
    seasons = seasonality(windows)
    base = baselines(windows, part, periods=[s.period for s in seasons])
    lo, hi = windows.parts["train"]
    scale = naive_scale(series_units(windows)[lo:hi])
    model_score = score(actual, pred, scale)
    base_scores = {k: score(actual, v, scale) for k, v in base.items()}
    key = "mae" if len(targets) == 1 else "mase"
    part_label = {"val": "validation"}.get(part, part)
    points = int(windows.points(part))
    best, improvement, sentence = verdict(part_label, targets, model_score, base_scores, key, points)
    per_step = []
    for k in range(spec.horizon):
        row = {"step": k + 1, **{m: score(actual[:, k], pred[:, k], scale)[m] for m in ("mae", "rmse")}}
        for name, v in base.items():
            row[f"{name}_mae"] = score(actual[:, k], v[:, k])["mae"]
        row["baseline_mae"] = row.get(f"{best}_mae") if best else None
        per_step.append(row)
    per_target = {}
    for j, t in enumerate(targets):
        per_target[t] = {"model": score(actual[..., j], pred[..., j], scale[j]),
                         "baselines": {k: score(actual[..., j], v[..., j], scale[j]) for k, v in base.items()}}
    lv = base_scores["last_value"].get(key)
    return {
        "part": part,
        "model": model_score,
        "baselines": base_scores,
        "per_step": per_step,
        "per_target": per_target,
        "best_baseline": best,
        "improvement_pct": improvement,
        "beats_best": bool(improvement is not None and improvement > 0),
        "beats_last_value": bool(lv is not None and model_score.get(key) is not None and model_score[key] < lv),
        "compared_by": key,
        "seasonality": [s.to_dict() for s in seasons],
        "verdict": sentence,
        "n_windows": n,
        "points": points,
        "weak": weak_note(points, part_label),
    }


# Issue 34: how many standard errors of the paired difference a model must beat the naive forecast by on the
# validation part before it replaces it (one: on a random walk a trained network rarely clears it by luck, and
# Seattle's daily maximum, 6% better than last value over 219 points, still does).
NAIVE_Z = 1.0


def paired_se(windows: Any, y_pred_scaled: Any, part: str, baseline: str) -> float | None:
    """The standard error of the mean difference |model error| - |``baseline`` error| on ``part``, in the units
    ``evaluate`` compares by (MAE; MASE-scaled with several targets). Overlapping windows share label points, so
    the windows count as n / horizon independent ones."""
    spec = windows.spec
    n = int(windows.count(part))
    if n < 2:
        return None
    pred = np.asarray(windows.scaler.inverse(np.asarray(y_pred_scaled, dtype=np.float64).reshape(
        n, spec.horizon, len(spec.targets)), spec.targets), dtype=np.float64)
    actual = np.asarray(windows.scaler.inverse(np.asarray(windows.y(part), dtype=np.float64), spec.targets))
    base = baselines(windows, part)[baseline]
    d = np.abs(actual - pred) - np.abs(actual - base)
    if len(spec.targets) > 1:
        lo, hi = windows.parts["train"]
        d = d / naive_scale(series_units(windows)[lo:hi])
    d = d.reshape(n, -1).mean(axis=1)
    d = d[np.isfinite(d)]
    if len(d) < 2:
        return None
    n_eff = max(len(d) / max(spec.horizon, 1), 2.0)
    return float(np.std(d, ddof=1) / np.sqrt(n_eff))


def naive_verdict(target_form: str, metrics: dict, backtest: str | None = None) -> str:
    """The verdict of a run that stayed at the naive forecast: in words, then the numbers. ``backtest``: the
    clause of a backtest that overruled the validation part (``TrainConfig.naive_backtest``). A change_linear run
    kept at its start is its linear forecast (``target_form`` "change_smooth": exponential smoothing), not a naive one."""
    if target_form in ("change_linear", "change_smooth"):
        return linear_verdict(metrics, smooth=target_form == "change_smooth")
    seasonal = target_form == "change_season"
    what = "its value one season earlier" if seasonal else "its last value"
    name = "seasonal_naive" if seasonal else "last_value"
    key = metrics.get("compared_by", "mae")
    model = (metrics.get("model") or {}).get(key)
    base = ((metrics.get("baselines") or {}).get(name) or {}).get(key)
    nums = (f" Test {key.upper()} {_fmt(float(model))}, the same as {BASELINE_LABELS.get(name, name)}'s "
            f"({_fmt(float(base))})." if model is not None and base is not None else "")
    why = (f"no network beat {BASELINE_LABELS.get(name, name)} on the validation part by more than its size can tell "
           "apart" if not backtest else f"a backtest overruled the validation part: {backtest}")
    return (f"This series is as predictable as {what}: {why}, so the model is that forecast itself (a "
            f"change-from-{'last-season' if seasonal else 'last-value'} model whose output stays at zero).{nums}")


def linear_verdict(metrics: dict, smooth: bool = False) -> str:
    """The verdict of a "change_linear" run whose network stayed at zero: the model is the linear forecast itself
    (core.linear_reference; ``smooth``: exponential smoothing over the window), then the test comparison as
    ``evaluate`` worded it, so a loss to a naive forecast is still said."""
    what = ("exponential smoothing itself (Holt-Winters run over the window, its parameters fitted on the training "
            "part)" if smooth else "its linear forecast itself (a ridge autoregression over the window, fitted on the "
            "training part)")
    return (f"The model is {what}: no trained epoch beat it on the validation part, so the network's output stays at "
            "zero. " + str(metrics.get("verdict") or "")).strip()
