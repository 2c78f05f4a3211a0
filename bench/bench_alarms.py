"""Adaptive bands and the board's alarms, measured on real series (issue 33).

    python -m bench.bench_alarms [--quick]

A cheap real forecaster stands in for a trained network so every series runs in seconds: a ridge
autoregression on the target's last W values (W = two natural periods, at most 48), horizon 3, fitted on the
training part (70%), its split-conformal bands (core.intervals.calibrate) from the validation part (15%),
streamed over the test part (15%). Parts:

1. Bands: test coverage of the static bands, of online quantile tracking (core.adaptive, the rule the board
   runs, at several steps) and of a rolling quantile of the last N errors, each walking forward.
2. Alarms: spikes, level shifts, slow drifts, stuck values and dropped readings injected at known places in
   the test stream; the board's rule (core.alarms.Watch, float32, the emulator's and fs_protocol.cpp's
   arithmetic) against the same rule in float64 and a z-score of the reading's change.
3. Cost per reading: the host-compiled fs_protocol.cpp watch code timed with g++, and an estimate for the
   XIAO ESP32S3.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from core.adaptive import coverage, floors, steps, walk_forward
from core.intervals import calibrate

ROOT = Path(__file__).resolve().parent.parent
QUALITY = ROOT / "sample_data" / "quality"
# file, column, natural period
SERIES = [("co2_weekly.csv", "co2", 52), ("nino12_monthly.csv", "nino12", 12),
          ("electricity_half_hourly.csv", "demand_mw", 48), ("seattle_weather_daily.csv", "temp_max", 7),
          ("us_macro_quarterly.csv", "realgdp", 4), ("synthetic_seasonal_hourly.csv", "temp", 24)]
HORIZON = 3
LEVELS = ("80", "95")
GAMMAS = (0.05, 0.1, 0.2)


def load(name: str, column: str) -> np.ndarray:
    frame = pd.read_csv(QUALITY / name)
    return frame[column].astype(float).interpolate().bfill().to_numpy()


def forecaster(series: np.ndarray, period: int, form: str = "change"):
    """Ridge AR fitted on the first 70%: (window, forecasts (n, H, 1), actuals (n, H, 1), val, test, label starts).
    form "change" forecasts the change from the last value; "level" the level itself, which on a trending series
    keeps up; "clipped" is the level forecaster held inside the training part's range, as a level network's
    bounded output is (a trending series leaves that range: the static bands' failure case, issue 33)."""
    w = int(min(48, max(4, 2 * period)))
    n = len(series)
    train_end, val_end = int(n * 0.7), int(n * 0.85)
    starts = np.arange(0, n - w - HORIZON + 1)
    X = np.stack([series[s:s + w] for s in starts])
    Y = np.stack([series[s + w:s + w + HORIZON] for s in starts])
    last = X[:, -1:] if form == "change" else np.zeros((len(X), 1))
    Xc, Yc = X - last, Y - last  # change from the last value: works on trending series too
    fit = starts + w + HORIZON <= train_end
    A = np.c_[Xc[fit], np.ones(fit.sum())]
    coef = np.linalg.solve(A.T @ A + 1e-3 * np.eye(A.shape[1]), A.T @ Yc[fit])
    pred = (np.c_[Xc, np.ones(len(Xc))] @ coef) + last
    if form == "clipped":
        pred = np.clip(pred, series[:train_end].min(), series[:train_end].max())
    label_start = starts + w
    val = (label_start >= train_end) & (label_start + HORIZON <= val_end)
    test = label_start >= val_end
    return w, pred[..., None], Y[..., None], val, test, label_start


def rolling_widths(actual, pred, hw0, n_keep: int = 100) -> np.ndarray:
    """The alternative rule: the conformal quantile of the last n_keep known errors (the exported half-width until
    enough are known), walking forward like core.adaptive.walk_forward."""
    a, p = actual.astype(np.float64), pred.astype(np.float64)
    n, horizon, targets = a.shape
    out = np.empty((n, len(LEVELS), horizon, targets))
    errors: list[list[float]] = [[] for _ in range(horizon)]
    from core.intervals import rank, windows_needed
    for i in range(n):
        for h in range(horizon):
            j = i - 1 - h
            if j >= 0:
                errors[h].append(abs(a[j, h, 0] - p[j, h, 0]))
                del errors[h][:-n_keep]
        for li, level in enumerate(LEVELS):
            for h in range(horizon):
                e = errors[h]
                if len(e) >= windows_needed(float(level)):
                    out[i, li, h, 0] = np.sort(e)[rank(len(e), float(level)) - 1]
                else:
                    out[i, li, h, 0] = hw0[li, h, 0]
    return out


def bands_part(rows: list) -> list[str]:
    lines = ["| series | forecaster | test windows | level | static | tracking 0.05 | tracking 0.1 | tracking 0.2 | rolling 100 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (name, column, period), form in [(s, f) for s in SERIES for f in ("change", "clipped")]:
        series = load(name, column)
        w, pred, actual, val, test, _ = forecaster(series, period, form)
        bands, _, _ = calibrate(actual[val] - pred[val], [float(v) for v in LEVELS])
        hw = np.stack([bands[k] for k in LEVELS]).astype(np.float32)
        scale = np.array([np.std(series[: int(len(series) * 0.7)])], np.float32)
        a, p = actual[test], pred[test]
        static = np.broadcast_to(hw[None], (len(a),) + hw.shape)
        cov = {"static": coverage(a, p, static)[0]}
        for gamma in GAMMAS:
            up, down = steps(LEVELS, gamma=gamma, shape=hw.shape[1:])
            cov[gamma] = coverage(a, p, walk_forward(a, p, hw, up, down, floors(scale)))[0]
        cov["rolling"] = coverage(a, p, rolling_widths(a, p, hw).astype(np.float32))[0]
        for li, level in enumerate(LEVELS):
            lines.append(f"| {name} | {form} | {len(a)} | {level} | " + " | ".join(
                f"{cov[k][li]:.1f}" for k in ("static", *GAMMAS, "rolling")) + " |")
            rows.append({"series": name, "form": form, "level": level, **{str(k): cov[k][li] for k in cov}})
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("bands", "alarms", "cost", "all"), default="all")
    args = parser.parse_args(argv)
    rows: list = []
    if args.part in ("bands", "all"):
        print("\n".join(bands_part(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
