"""Statistical references beside the network (issue 21): exponential smoothing (ETS, Holt-Winters) and
the Theta method, from statsmodels, with the season detected on the training part.

Each is fitted once on the training part (on a bounded tail of it when the series is long, and it says
so) and then forecasts the very test points the network and the naive baselines forecast: from every
window's origin, with all data up to that origin and the parameters fitted on the training part (the
test part is never fitted on, as for the network). statsmodels does the fitting and the filtering; the
h-step forecast from each origin's filtered state is the library's own forecast equation, and
``_check_against_library`` holds it to the library's ``forecast()`` at the end of the fitting span
before any number is used.

Why not statsforecast (AutoETS, AutoTheta, which issue 21 named): every release on the index needs
pandas < 3, and the project pins pandas 3.1.1. statsmodels 0.15 works with the pinned pandas and NumPy.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from core.config import DEFAULTS

REFERENCES = ("ets", "theta")
REFERENCE_LABELS = {"ets": "ETS (exponential smoothing)", "theta": "Theta"}



def _cfg(key: str):
    return DEFAULTS["references"][key]


class ReferenceUnavailable(Exception):
    """A reference that cannot be computed on this data; the message says why, in words."""


# ---------------------------------------------------------------- ETS (Holt-Winters)

def _fit_ets(y: np.ndarray, period: int):
    """The additive Holt-Winters model (no trend, or a damped additive trend; seasonal when period >= 2)
    with the lower AICc on ``y``, fitted by statsmodels."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    seasonal = "add" if period >= 2 else None
    init = "heuristic" if seasonal and len(y) >= 10 * period else "estimated"
    best = None
    for trend in (None, "add"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ExponentialSmoothing(y, trend=trend, damped_trend=trend is not None, seasonal=seasonal,
                                         seasonal_periods=period if seasonal else None, initialization_method=init)
            res = model.fit()
        if not np.isfinite(res.aicc):
            continue
        if best is None or res.aicc < best.aicc:
            best = res
    if best is None:
        raise ReferenceUnavailable("exponential smoothing did not converge on the training part")
    return best


@dataclass(frozen=True)
class Smoothing:
    """A fitted Holt-Winters model's parameters (core.smoothing_filter turns them into window weights)."""

    alpha: float            # level
    beta: float = 0.0       # trend (0 without one)
    gamma: float = 0.0      # season (0 without one)
    phi: float = 1.0        # trend damping
    trend: bool = False
    period: int = 0         # 0: no season


def fit_smoothing(y: np.ndarray, period: int) -> Smoothing:
    """The additive Holt-Winters model ETS uses here (``_fit_ets``: no or damped trend, seasonal when the period
    is 2 or more and the series holds two seasons), fitted on ``y``; ReferenceUnavailable when it does not fit."""
    y = np.asarray(y, dtype=np.float64)
    period = int(period) if period and period >= 2 and len(y) >= 2 * int(period) + 2 else 0
    if len(y) < int(_cfg("min_rows")) or not np.all(np.isfinite(y)) or np.ptp(y) == 0:
        raise ReferenceUnavailable("too few, constant or missing values to fit exponential smoothing on")
    try:
        res = _fit_ets(y, period)
    except (ValueError, np.linalg.LinAlgError, FloatingPointError) as e:
        raise ReferenceUnavailable(f"exponential smoothing could not be fitted ({e})") from e
    p, m = res.params, res.model
    return Smoothing(float(p["smoothing_level"]), float(p["smoothing_trend"]) if m.trend else 0.0,
                     float(p["smoothing_seasonal"]) if m.seasonal else 0.0,
                     float(p["damping_trend"]) if m.trend else 1.0, bool(m.trend),
                     int(m.seasonal_periods) if m.seasonal else 0)


def _ets_filter(res, y_all: np.ndarray):
    """The fitted model's parameters run over ``y_all`` (which starts where the fit started): statsmodels
    refits with every parameter and initial state fixed, and returns the filtered level, trend, season."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    m = res.model
    p = res.params
    seasonal = m.seasonal
    kw: dict[str, Any] = {"initial_level": p["initial_level"]}
    if m.trend:
        kw["initial_trend"] = p["initial_trend"]
    if seasonal:
        kw["initial_seasonal"] = np.asarray(p["initial_seasons"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = ExponentialSmoothing(y_all, trend=m.trend, damped_trend=m.damped_trend, seasonal=seasonal,
                                     seasonal_periods=m.seasonal_periods if seasonal else None,
                                     initialization_method="known", **kw)
        fixed = {"smoothing_level": p["smoothing_level"], "optimized": False}
        if m.trend:
            fixed["smoothing_trend"] = p["smoothing_trend"]
            fixed["damping_trend"] = p["damping_trend"]
        if seasonal:
            fixed["smoothing_seasonal"] = p["smoothing_seasonal"]
        out = again.fit(**fixed)
    level = np.asarray(out.level, dtype=np.float64)
    trend = np.asarray(out.trend, dtype=np.float64) if m.trend else np.zeros_like(level)
    season = np.asarray(out.season, dtype=np.float64) if seasonal else np.zeros_like(level)
    phi = float(p["damping_trend"]) if m.trend else 1.0
    return level, trend, season, phi, (int(m.seasonal_periods) if seasonal else 0)


def _ets_forecast(states, origins: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Holt-Winters' additive forecast from each origin's state: level + (phi + ... + phi^h) trend +
    the season of the same phase in the last cycle the filter holds. ``origins`` (n,), ``steps`` (n, H) >= 1."""
    level, trend, season, phi, period = states
    o = origins[:, None]
    if phi == 1.0:
        damp = steps.astype(np.float64)
    else:
        damp = phi * (1.0 - phi ** steps) / (1.0 - phi)
    out = level[o] + damp * trend[o]
    if period:
        # statsmodels' season array at row t is the component its filter holds for phase t + 1 - period's
        # cycle: step h reads row t + h - period * (h // period + 1) (held to the library's forecast()).
        back = period * (steps // period + 1)
        out = out + season[o + steps - back]
    return out


# ---------------------------------------------------------------- Theta

def _fit_theta(y: np.ndarray, period: int):
    from statsmodels.tsa.forecasting.theta import ThetaModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ThetaModel(y, period=period if period >= 2 else 1, deseasonalize=period >= 2).fit()


def _theta_state(res, y_all: np.ndarray):
    """The fitted Theta model run over ``y_all``: the training decomposition's seasonal index at every
    row (its phase counted from the fit's first row), the deseasonalised series' SES level with the fitted
    alpha, and the fitted drift b0."""
    nobs = int(res.model.endog_orig.shape[0]) if hasattr(res.model, "endog_orig") else None
    alpha, b0 = float(res.params["alpha"]), float(res.params["b0"])
    period = max(1, int(res.model.period))
    mult = res.model.method.startswith("mul")
    comp = res.forecast_components(period)
    seas = np.asarray(comp["seasonal"], dtype=np.float64)  # phase (nobs + i) % period
    if nobs is None:
        nobs = int(res._nobs)
    index = np.empty(period)
    index[(nobs + np.arange(period)) % period] = seas
    phase = index[np.arange(len(y_all)) % period]
    d = y_all / phase if mult else y_all - phase
    from scipy.signal import lfilter

    level = lfilter([alpha], [1.0, -(1.0 - alpha)], d, zi=[(1.0 - alpha) * d[0]])[0]
    return level, alpha, b0, index, period, mult


def _theta_forecast(state, origins: np.ndarray, steps: np.ndarray, theta: float = 2.0) -> np.ndarray:
    """statsmodels' Theta forecast from each origin: SES level + (theta-1)/theta * b0 * (h - 1 + 1/alpha
    - (1-alpha)^n / alpha), re-seasonalised; n is the rows seen up to the origin."""
    level, alpha, b0, index, period, mult = state
    n = (origins + 1).astype(np.float64)[:, None]
    h = steps.astype(np.float64) - 1.0
    if alpha > 0:
        h = h + 1.0 / alpha - (1.0 - alpha) ** n / alpha
    f = level[origins][:, None] + (theta - 1.0) / theta * b0 * h
    s = index[(origins[:, None] + steps) % period]
    return f * s if mult else f + s


# ---------------------------------------------------------------- both, on Windows

_KINDS: dict[str, tuple[Callable, Callable, Callable]] = {
    "ets": (_fit_ets, _ets_filter, _ets_forecast),
    "theta": (_fit_theta, _theta_state, _theta_forecast),
}


def _check_against_library(name: str, res, state, n_fit: int, horizon: int, span: float) -> None:
    """Our forecast from the last fitted row equals the library's forecast(horizon) there."""
    _, _, forecast = _KINDS[name]
    ours = forecast(state, np.array([n_fit - 1]), np.arange(1, horizon + 1)[None, :])[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lib = np.asarray(res.forecast(horizon), dtype=np.float64)
    if not np.allclose(ours, lib, rtol=0, atol=float(_cfg("check_tolerance")) * max(span, 1e-12)):
        raise ReferenceUnavailable(f"the {REFERENCE_LABELS[name]} forecasts from the filtered state disagree with "
                                   f"the library's own by {np.max(np.abs(ours - lib)):.3g}")


def forecast_references(series: np.ndarray, train_end: int, origins: np.ndarray, label_rows: np.ndarray,
                        periods: list[int | None], names: tuple[str, ...] = REFERENCES) -> dict:
    """ETS and Theta forecasts of ``label_rows`` from ``origins``, fitted on ``series[:train_end]``.

    ``series`` (rows, n_targets) in the data's units; ``origins`` (n,) and ``label_rows`` (n, H) index it.
    Returns ``{"forecasts": {name: (n, H, n_targets)}, "info": {name: {...}}}``; a reference that cannot be
    computed has no forecast and its info says why (``unavailable``).
    """
    s = np.asarray(series, dtype=np.float64)
    origins = np.asarray(origins, dtype=np.int64)
    labels = np.asarray(label_rows, dtype=np.int64)
    n_t = s.shape[1]
    forecasts: dict[str, np.ndarray] = {}
    info: dict[str, dict] = {}
    for name in names:
        fit, run, forecast = _KINDS[name]
        out = np.full(labels.shape + (n_t,), np.nan)
        per_target: list[dict] = []
        t0 = time.perf_counter()
        why = None
        for j in range(n_t):
            period = int(periods[j] or 0) if j < len(periods) else 0
            period = period if period >= 2 else 0
            cap = max(int(_cfg("max_fit_rows")), int(_cfg("min_fit_seasons")) * period)
            start = max(0, train_end - cap)
            n_fit = train_end - start
            entry: dict[str, Any] = {"period": period or None, "fit_rows": int(n_fit), "train_rows": int(train_end)}
            if n_fit < max(int(_cfg("min_rows")), 2 * period + 2):
                why = (f"the training part has {n_fit} rows, too few to fit "
                       f"{'a season of ' + str(period) if period else 'a level'} on")
                break
            y_fit = s[start:train_end, j]
            y_all = s[start:int(labels.max()) + 1, j]
            if not np.all(np.isfinite(y_all)):
                why = "the series has gaps (fill them on the Data page) and the library cannot fit across them"
                break
            if np.ptp(y_fit) == 0:
                out[..., j] = y_fit[-1]
                entry["model"] = "constant"
                per_target.append(entry)
                continue
            try:
                res = fit(y_fit, period)
                state = run(res, y_all)
                _check_against_library(name, res, state, n_fit, labels.shape[1], float(np.ptp(y_fit)))
            except ReferenceUnavailable as e:
                why = str(e)
                break
            except (ValueError, np.linalg.LinAlgError, FloatingPointError) as e:
                why = f"{REFERENCE_LABELS[name]} could not be fitted ({e})"
                break
            out[..., j] = forecast(state, origins - start, labels - origins[:, None])
            if n_fit < train_end:
                entry["note"] = (f"fitted on the newest {n_fit:,} of {train_end:,} training rows "
                                 f"(at most {cap:,}, to keep it to seconds)")
            entry["model"] = _describe(name, res)
            per_target.append(entry)
        seconds = time.perf_counter() - t0
        if why is not None or not np.all(np.isfinite(out)):
            info[name] = {"label": REFERENCE_LABELS[name], "unavailable": why or "the forecasts are not finite",
                          "seconds": round(seconds, 3)}
            continue
        forecasts[name] = out
        info[name] = {"label": REFERENCE_LABELS[name], "seconds": round(seconds, 3), "targets": per_target}
    return {"forecasts": forecasts, "info": info}


def _describe(name: str, res) -> str:
    if name == "ets":
        m = res.model
        parts = ["additive Holt-Winters"]
        parts.append("damped additive trend" if m.trend else "no trend")
        parts.append(f"additive season of {m.seasonal_periods}" if m.seasonal else "no season")
        return ", ".join(parts)
    seasonal = res.model.deseasonalize and res.model.period > 1
    return (f"theta 2, {res.model.method} season of {res.model.period}" if seasonal else "theta 2, no season")


def references(windows: Any, part: str = "test") -> dict:
    """ETS and Theta for every ``part`` window of ``windows`` (the studio's Windows), with the season
    detected on the training part; see ``forecast_references``."""
    from core.metrics import part_rows, seasonality, series_units

    series = series_units(windows)
    origins, labels = part_rows(windows, part)
    lo, hi = windows.parts["train"]
    periods = [s.period for s in seasonality(windows)]
    # The training part starts at lo; rows before it are not the model's either.
    out = forecast_references(series[lo:], hi - lo, origins - lo, labels - lo, periods)
    out["periods"] = periods
    return out
