"""Adaptive bands and the board's alarms, measured on real series (issue 33).

    python -m bench.bench_alarms [--part bands|recovery|jump|short|alarms] [--variant before --variant board]
    python -m bench.bench_alarms --part alarms --rate 10 --variant cusum --variant board [--seeds 6]

A cheap real forecaster stands in for a trained network so every series runs in seconds: a ridge
autoregression on the target's last W values (W = two natural periods, at most 48), horizon 3, fitted on the
training part (70%), its split-conformal bands (core.intervals.calibrate) from the validation part (15%),
streamed over the test part (15%). Parts:

1. Bands: test coverage of the static bands, of the board's rule (core.adaptive: an error scale times a level
   multiplier) and of the candidates it was picked from (quantile tracking alone, the rule before; ACI on the
   level of a window of recent errors; a rolling quantile of the last 100 errors), each walking forward.
   Recovery: the same rules on streams with injected spikes, shifts and drifts: coverage over the stream and
   readings until the band is back to its clean-stream width.
2. Alarms: spikes, level shifts, slow drifts, stuck values and dropped readings injected at known places in
   the test stream; the board's rule (core.alarms.Watch, float32, the emulator's and fs_protocol.cpp's
   arithmetic) against the same rule in float64 and a z-score of the reading's change. ``--variant`` runs the rule
   before (alarm on the adaptive half-width alone, no catch-up), either change alone, or the board's (both) side by
   side on the same streams, and ends with a trade-off table. The drift rule's variants: "cusum" (the plain
   CUSUM, the rule before), "ewma100"/"ewma200" (less an exponential average of z at rate 1/100, 1/200 from 0),
   "self10"/"self20"/"self50" (less the mean of z so far, count from 10/20/50, then the 1/200 average; "board" is
   self20). Every series also streams with every forecast 1.5 validation sd off ("biased": a bias the forecaster
   keeps); the drift table gives its drift alarms per 1,000 readings, all and from reading 100 on. ``--seeds N``
   runs seeds 0..N-1 of the anomalies' signs and prints one summary line per variant.
3. Jump: bands that start 5-10x too narrow, the rule without and with the scale's catch-up.
(The watch's cost per reading: bench/bench_watch.py.)
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from core.adaptive import coverage, floors, start, steps, walk_forward, walk_levels
from core.intervals import calibrate
from core.livestream import inject

ROOT = Path(__file__).resolve().parent.parent
QUALITY = ROOT / "sample_data" / "quality"
# file, column, natural period
SERIES = [("co2_weekly.csv", "co2", 52), ("nino12_monthly.csv", "nino12", 12),
          ("electricity_half_hourly.csv", "demand_mw", 48), ("seattle_weather_daily.csv", "temp_max", 7),
          ("us_macro_quarterly.csv", "realgdp", 4), ("synthetic_seasonal_hourly.csv", "temp", 24)]
# The alarms part's streams: the first four, and two more real daily series the rules were not tuned on.
ALARM_SERIES = SERIES[:4] + [("seattle_weather_daily.csv", "temp_min", 7), ("seattle_weather_daily.csv", "wind", 7)]
HORIZON = 3
LEVELS = ("80", "95")


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


class _Tracking:
    """The rule before (quantile tracking alone, log-space step gamma on the half-width), float64."""

    def __init__(self, hw, gamma):
        self.q = hw[..., 0].astype(np.float64).copy()  # (levels, H)
        cover = np.array([float(v) / 100 for v in LEVELS])
        self.up, self.down = np.exp(gamma * cover), np.exp(-gamma * (1 - cover))

    def update(self, h, e):
        self.q[:, h] = np.where(e > self.q[:, h], self.q[:, h] * self.up, self.q[:, h] * self.down)


class _AciWindow:
    """ACI on the quantile level over a window of the last n recent absolute errors (Gibbs and Candes):
    alpha <- alpha + gamma (1 - L/100 - miss), the band the (1 - alpha) conformal quantile of the window (its
    largest error once alpha <= 0), the exported half-width until 10 errors are known."""

    def __init__(self, hw, n_keep=50, gamma=0.05):
        self.hw = hw[..., 0].astype(np.float64)
        self.alpha = np.tile(np.array([1 - float(v) / 100 for v in LEVELS])[:, None], (1, self.hw.shape[1]))
        self.errors = [[] for _ in range(self.hw.shape[1])]
        self.n_keep, self.gamma, self.q = n_keep, gamma, self.hw.copy()

    def update(self, h, e):
        target = np.array([1 - float(v) / 100 for v in LEVELS])
        self.alpha[:, h] += self.gamma * (target - (e > self.q[:, h]))
        window = self.errors[h]
        window.append(e)
        del window[:-self.n_keep]
        if len(window) >= 10:
            ordered = np.sort(window)
            for li in range(len(LEVELS)):
                k = int(np.ceil((1 - self.alpha[li, h]) * (len(window) + 1)))
                self.q[li, h] = ordered[min(max(k, 1), len(window)) - 1]


class _Board:
    """core.adaptive.Tracker (float32, the board's rule) with its constants, at (gamma, beta)."""

    def __init__(self, hw, scale, gamma=None, beta=None, catch_up=True):
        from core.adaptive import BETA, GAMMA, Tracker
        up, down = steps(LEVELS, gamma=GAMMA if gamma is None else gamma, shape=hw.shape[1:])
        floor = floors(scale)
        s0, m0 = start(LEVELS, hw, floor)
        self.tracker = Tracker(hw, up, down, floor, s0, m0, BETA if beta is None else beta, catch_up=catch_up)

    @property
    def q(self):
        return self.tracker.q[..., 0]

    def update(self, h, e):
        self.tracker.update(h, 0, np.float32(e))


def _rules(hw, scale):
    """The candidates, by column name: each has q (levels, H) and update(step, |error|)."""
    return {"tracking 0.1 (before)": _Tracking(hw, 0.1), "tracking 0.4": _Tracking(hw, 0.4),
            "ACI window 50": _AciWindow(hw), "scale x level 0.1/0.1": _Board(hw, scale, 0.1, 0.1),
            "scale x level, no catch-up (board before)": _Board(hw, scale, catch_up=False),
            "scale x level (board)": _Board(hw, scale)}


def _walk(rule, a, p) -> np.ndarray:
    """The widths each window is issued with, walking forward as core.adaptive.walk_forward does."""
    n, horizon, _ = a.shape
    out = np.empty((n, len(LEVELS), horizon, 1), np.float32)
    for i in range(n):
        for h in range(horizon):
            j = i - 1 - h
            if j >= 0:
                rule.update(h, abs(np.float32(np.float32(a[j, h, 0]) - np.float32(p[j, h, 0]))))
        out[i, ..., 0] = rule.q
    return out


def bands_part(rows: list) -> list[str]:
    names = list(_rules(np.ones((len(LEVELS), HORIZON, 1), np.float32), np.ones(1, np.float32)))
    lines = ["| series | forecaster | test windows | level | static | " + " | ".join(names) + " | rolling 100 |",
             "|---|---|---|---|---|" + "---|" * len(names) + "---|"]
    for (name, column, period), form in [(s, f) for s in SERIES for f in ("change", "clipped")]:
        series = load(name, column)
        w, pred, actual, val, test, _ = forecaster(series, period, form)
        bands, _, _ = calibrate(actual[val] - pred[val], [float(v) for v in LEVELS])
        hw = np.stack([bands[k] for k in LEVELS]).astype(np.float32)
        scale = np.array([np.std(series[: int(len(series) * 0.7)])], np.float32)
        a, p = actual[test], pred[test]
        static = np.broadcast_to(hw[None], (len(a),) + hw.shape)
        cov = {"static": coverage(a, p, static)[0]}
        for key, rule in _rules(hw, scale).items():
            cov[key] = coverage(a, p, _walk(rule, a, p))[0]
        assert np.array_equal(_walk(_rules(hw, scale)["scale x level (board)"], a, p),
                              walk_levels(a, p, LEVELS, hw, scale))  # the bench's walk is core.adaptive's
        cov["rolling"] = coverage(a, p, rolling_widths(a, p, hw).astype(np.float32))[0]
        for li, level in enumerate(LEVELS):
            lines.append(f"| {name} | {form} | {len(a)} | {level} | " + " | ".join(
                f"{cov[k][li]:.1f}" for k in ("static", *names, "rolling")) + " |")
            rows.append({"series": name, "form": form, "level": level, **{str(k): cov[k][li] for k in cov}})
    worst = {k: max(abs(r[k] - float(r["level"])) for r in rows if "form" in r) for k in ("static", *names, "rolling")}
    lines += ["", "Worst distance from the level (points): " + ", ".join(f"{k} {v:.1f}" for k, v in worst.items())]
    return lines


def _stream_setup(name, column, period):
    """A series' test stream set up as the board sees it: (series, W, exported half-widths, train end, validation
    end, the online forecaster, the one-step validation error's sd, the target's scale)."""
    series = load(name, column)
    w, pred, actual, val, _, _ = forecaster(series, period, "change")
    bands, _, _ = calibrate(actual[val] - pred[val], [float(v) for v in LEVELS])
    hw = np.stack([bands[k] for k in LEVELS]).astype(np.float32)
    train_end, val_end = int(len(series) * 0.7), int(len(series) * 0.85)
    model = _online_forecasts(series, w, period, "change", train_end)
    sd = float(np.std(actual[val][:, 0, 0] - pred[val][:, 0, 0]))
    one_step = (actual[val][:, 0, :], pred[val][:, 0, :])  # the validation stream's one-step (actual, forecast), in order
    return series, w, hw, train_end, val_end, model, sd, np.array([np.std(series[:train_end])], np.float32), one_step


def recovery_part(rows: list) -> list[str]:
    """Each rule on the test streams of four series with anomalies injected every EVERY readings: the 95% band's
    coverage over the stream (anomalous readings counted too), and how many readings after each anomaly's end its
    step-1 95% half-width takes to come back within 10% of the one the same rule has on the clean stream."""
    rng = np.random.default_rng(0)
    names = list(_rules(np.ones((len(LEVELS), HORIZON, 1), np.float32), np.ones(1, np.float32)))
    recover = {k: [] for k in names}
    covered = {k: [] for k in names}
    for name, column, period in SERIES[:4]:
        series, w, hw, train_end, val_end, model, sd, scale, _ = _stream_setup(name, column, period)
        clean_q = {}
        for kind in ("clean", "spike", "shift", "drift"):
            x, starts = (series[val_end - w:].copy(), []) if kind == "clean" else _inject(series[val_end - w:], kind, sd, rng)[:2]
            forecasts = [model(x[i - w + 1:i + 1]) for i in range(w - 1, len(x))]  # made at reading i
            for key, rule in _rules(hw, scale).items():
                q95, inside = [], []
                for i in range(w, len(x)):
                    q95.append(float(rule.q[1, 0]))
                    inside.append(abs(x[i] - forecasts[i - w][0]) <= rule.q[1, 0])
                    for h in range(HORIZON):
                        k = i - w - h
                        if k >= 0:
                            rule.update(h, abs(np.float32(np.float32(x[i]) - np.float32(forecasts[k][h]))))
                covered[key].append(100.0 * np.mean(inside))
                if kind == "clean":
                    clean_q[key] = np.array(q95)
                    continue
                for s in starts:
                    end = s + 20 - w
                    if end >= len(q95):
                        continue
                    back = next((j for j in range(end, len(q95)) if abs(q95[j] / clean_q[key][j] - 1) < 0.1), len(q95))
                    recover[key].append(back - end)
    lines = ["| rule | 95% coverage over the streams: min | mean | readings to recover: median | 90th percentile | max |",
             "|---|---|---|---|---|---|"]
    for key in names:
        r = np.array(recover[key])
        lines.append(f"| {key} | {min(covered[key]):.1f} | {np.mean(covered[key]):.1f} | {np.median(r):.0f} | "
                     f"{np.percentile(r, 90):.0f} | {r.max()} |")
        rows.append({"rule": key, "recover": r.tolist(), "covered": covered[key]})
    return lines


def jump_part(rows: list) -> list[str]:
    """Exported bands far too narrow: the test errors 5 or 10 times those the bands were calibrated on (the half-widths
    divided by 5 or 10; the rule starts from them). The board's rule walking forward, without and with the scale's
    catch-up: coverage at each level over the whole test part and over its first 100 windows, windows until the
    step-1 95% half-width first reaches 90% of the one the same rule has from the right start, and how wide it gets
    over the first 100 (the multipliers pinned at their bound while the scale catches up overshoot)."""
    lines = ["Each cell: the rule without the catch-up (before) -> with it (core.adaptive.CATCH_UP, the board's).", "",
             "| series | test windows | errors x | coverage 80 / 95 (all) | first 100 windows | windows to 90% of the right width "
             "| widest over the first 100 (x the right width) |",
             "|---|---|---|---|---|---|---|"]
    for name, column, period in ALARM_SERIES + [SERIES[4]]:
        series = load(name, column)
        w, pred, actual, val, test, _ = forecaster(series, period, "change")
        bands, _, _ = calibrate(actual[val] - pred[val], [float(v) for v in LEVELS])
        hw = np.stack([bands[k] for k in LEVELS]).astype(np.float32)
        scale = np.array([np.std(series[: int(len(series) * 0.7)])], np.float32)
        a, p = actual[test], pred[test]
        right = {c: walk_levels(a, p, LEVELS, hw, scale, catch_up=c) for c in (False, True)}
        for factor in (1, 5, 10):
            cells = []
            for catch_up in (False, True):
                widths = walk_levels(a, p, LEVELS, (hw / np.float32(factor)).astype(np.float32), scale, catch_up=catch_up)
                cov = coverage(a, p, widths)[0]
                first = coverage(a[:100], p[:100], widths[:100])[0]
                ratio = widths[:, 1, 0, 0] / right[catch_up][:, 1, 0, 0]
                back = next((i for i in range(len(ratio)) if ratio[i] >= 0.9), len(ratio))
                cells.append((cov, first, back, float(ratio[:100].max())))
                rows.append({"series": f"{name} {column}", "jump": factor, "catch_up": catch_up, "coverage": cov,
                             "first100": first, "back": back, "overshoot": cells[-1][3]})
            (c0, f0, b0, o0), (c1, f1, b1, o1) = cells
            lines.append(f"| {name} {column} | {len(a)} | {factor} | {c0[0]:.1f} / {c0[1]:.1f} -> {c1[0]:.1f} / {c1[1]:.1f} | "
                         f"{f0[0]:.1f} / {f0[1]:.1f} -> {f1[0]:.1f} / {f1[1]:.1f} | {b0} -> {b1} | {o0:.2f} -> {o1:.2f} |")
    return lines


def short_part(rows: list, reps: int = 600) -> list[str]:
    """Is the adaptive band biased on a short stream (us_macro: 28 validation, 29 test windows)? Simulated errors
    (normal, Student t3, AR(1) 0.7), bands calibrated on 28 windows, the rule walking 29: mean coverage and its
    spread over the repeats, and the coverage of the first 5 windows (a bias of the start would show there)."""
    rng = np.random.default_rng(1)
    lines = ["| errors | static 80 / 95 | adaptive 80 / 95 | sd of adaptive 80 / 95 | adaptive 80, first 5 windows |",
             "|---|---|---|---|---|"]
    for dist in ("normal", "t3", "AR(1) 0.7"):
        static, adaptive, first = [], [], []
        for _ in range(reps):
            if dist == "normal":
                e = rng.normal(0, 1, (57, HORIZON, 1))
            elif dist == "t3":
                e = rng.standard_t(3, (57, HORIZON, 1))
            else:
                z = np.zeros(57 + HORIZON)
                for i in range(1, len(z)):
                    z[i] = 0.7 * z[i - 1] + rng.normal()
                e = np.stack([z[h:h + 57] for h in range(HORIZON)], 1)[..., None]
            bands, _, _ = calibrate(e[:28], [float(v) for v in LEVELS])
            hw = np.stack([bands[k] for k in LEVELS]).astype(np.float32)
            a, p = e[28:], np.zeros_like(e[28:])
            widths = walk_levels(a, p, LEVELS, hw, np.ones(1, np.float32))
            static.append(coverage(a, p, np.broadcast_to(hw[None], (len(a),) + hw.shape))[0])
            adaptive.append(coverage(a, p, widths)[0])
            first.append(coverage(a[:5], p[:5], widths[:5])[0][0])
        st, ad, sd = np.mean(static, 0), np.mean(adaptive, 0), np.std(adaptive, 0)
        lines.append(f"| {dist} | {st[0]:.1f} / {st[1]:.1f} | {ad[0]:.1f} / {ad[1]:.1f} | {sd[0]:.1f} / {sd[1]:.1f} | "
                     f"{np.mean(first):.1f} |")
        rows.append({"short": dist, "static": st.tolist(), "adaptive": ad.tolist(), "sd": sd.tolist()})
    return lines


KINDS = ("spike", "shift", "drift", "stuck", "dropped")
EVERY = 60  # readings between injected anomalies
CATCH = 10  # an alert within this many readings of an anomaly's start detects it
DRIFT = (0.25, 5.0)  # the drift CUSUM's allowance k and threshold h (core.config DEFAULTS["alarms"]), --drift to try others


def _online_forecasts(series: np.ndarray, w: int, period: int, form: str, train_end: int):
    """The ridge AR refitted once on the clean training part, then run on any (corrupted) stream."""
    starts = np.arange(0, len(series) - w - HORIZON + 1)
    X = np.stack([series[s:s + w] for s in starts])
    Y = np.stack([series[s + w:s + w + HORIZON] for s in starts])
    fit = starts + w + HORIZON <= train_end
    Xc, Yc = X - X[:, -1:], Y - X[:, -1:]
    A = np.c_[Xc[fit], np.ones(fit.sum())]
    coef = np.linalg.solve(A.T @ A + 1e-3 * np.eye(A.shape[1]), A.T @ Yc[fit])
    return lambda window: (np.r_[window - window[-1], 1.0] @ coef) + window[-1]


def _inject(clean: np.ndarray, kind: str, sd: float, rng) -> tuple[np.ndarray, list[int], np.ndarray]:
    """The stream with one anomaly of ``kind`` every EVERY readings: (values, starts, kept mask). Each one is
    core.livestream.inject's (the Device step's live stream injects the same shapes): spike 6 sd, shift 5 sd and
    drift to 10 sd over 20 readings, stuck and dropped for 20 and 5 readings."""
    x = clean.copy()
    keep = np.ones(len(x), bool)
    starts = list(range(EVERY // 2, len(x) - 20, EVERY))
    sizes = {"spike": 6, "shift": 5, "drift": 10, "stuck": 0, "dropped": 0}
    for s in starts:
        sign = rng.choice([-1.0, 1.0])
        keep &= inject(x, kind, s, sign * sizes[kind] * sd, 5 if kind == "dropped" else 20)
    return x, starts, keep


def _float64_band(stream, forecasts, hw, margin, scale, variant=(True, True)):
    """The board's rule in float64: adaptive 95% half-widths (core.adaptive's scale x level), alert outside margin x q
    (q never under the exported half-width, and the scale's catch-up, as ``variant`` = (alarm floor, catch-up) says)."""
    from core.adaptive import BETA, CATCH_UP, CLIP, GAMMA, MULT_RANGE
    alarm_floor, catch_up = variant
    s0, m0 = start(LEVELS, hw, floors(scale))
    s, m0 = s0[:, 0].astype(np.float64), m0[..., 0].astype(np.float64)  # (H,), (levels, H)
    m = m0.copy()
    q = hw[..., 0].astype(np.float64).copy()
    floor = float(floors(scale)[0])
    alerts = []
    past: list[np.ndarray] = []
    cover = np.array([float(v) / 100 for v in LEVELS])
    up, down = np.exp(GAMMA * cover), np.exp(-GAMMA * (1 - cover))
    lohi = None
    for i, x in enumerate(stream):
        if lohi is not None and not (lohi[0] <= x <= lohi[1]):
            alerts.append(i)
        for h, f in enumerate(past[:HORIZON]):
            e = abs(x - f[h])
            miss = e > q[:, h]
            m[:, h] = np.clip(np.where(miss, m[:, h] * up, m[:, h] * down), m0[:, h] / MULT_RANGE, m0[:, h] * MULT_RANGE)
            if catch_up and np.all(m[:, h] >= m0[:, h] * MULT_RANGE):
                s[h] = max(floor, s[h] + (e - s[h]) * BETA * CATCH_UP)
            else:
                s[h] = max(floor, s[h] + (min(e, CLIP * s[h]) - s[h]) * BETA)
            q[:, h] = m[:, h] * s[h]
        if not np.all(np.isfinite(forecasts[i])):
            past, lohi = [], None
            continue
        past.insert(0, forecasts[i])
        del past[HORIZON:]
        qa = max(q[1, 0], float(hw[1, 0, 0])) if alarm_floor else q[1, 0]
        lohi = (forecasts[i][0] - margin * qa, forecasts[i][0] + margin * qa)
    return alerts


# (alarm floor, catch-up, the drift rule's slow mean (memory, start count): None = core.alarms', the board's;
# memory 0 = the plain CUSUM; start = memory: an exponential average at rate 1 / memory from 0)
VARIANTS = {"before": (False, False, (0.0, 0.0)), "floor": (True, False, (0.0, 0.0)), "catch-up": (False, True, (0.0, 0.0)),
            "cusum": (True, True, (0.0, 0.0)), "ewma100": (True, True, (100.0, 100.0)),
            "ewma200": (True, True, (200.0, 200.0)), "self10": (True, True, (200.0, 10.0)),
            "self20": (True, True, (200.0, 20.0)), "self50": (True, True, (200.0, 50.0)), "board": (True, True, None)}
BIAS_SD = 1.5  # the "biased" stream: the clean stream with every forecast off by this many validation error sd
SEED = 0  # the injected anomalies' signs (--seed)
LATE = 100  # its drift alarms are counted from this many readings on (the bias learned by then)


def alarms_part(rows: list, margin: float, rate: float | None = None, variant: str = "board") -> list[str]:
    """rate: the drift scale calibrated on the validation stream to at most ``rate`` drift alarms per 1,000
    readings (core.alarms.drift_calibrate, what an export does); None: the uncalibrated scale (factor 1).
    variant: VARIANTS' (alarm floor, catch-up): "board" is the shipped rule, "before" the rule without either."""
    from core.alarms import DRIFT_MEMORY, DRIFT_START, Watch, WatchSpec, drift_calibrate, drift_scale, longest_run

    alarm_floor, catch_up, slow = VARIANTS[variant]
    memory, begin = (DRIFT_MEMORY, DRIFT_START) if slow is None else slow

    rng = np.random.default_rng(SEED)
    lines = [f"Variant {variant}: alarm half-width " + ("max(adaptive, exported)" if alarm_floor else "the adaptive one")
             + ", scale catch-up " + ("on" if catch_up else "off") + (f", drift rule's slow mean over {memory:g} readings, count from {begin:g}." if memory else ", plain drift CUSUM."), "",
             f"Margin {margin:g} x the adaptive 95% half-width. Detected = an alert within {CATCH} readings of the "
             "anomaly's start; false alarms = alerts away from every anomaly (its start to 20 + W readings after), per "
             "1,000 readings; delay = readings from the start to the first alert (median).", "",
             f"Drift rule: CUSUM of one-step errors over the validation scale, allowance k {DRIFT[0]:g}, threshold h {DRIFT[1]:g}. "
             "\"board\" counts every alert; \"without drift\" the band, stuck and gap alerts alone; \"drift\" the drift "
             "rule's alone. The float64 rule is the band rule only (with the board's stuck and gap alerts).", "",
             "| series | anomaly | injected | board: detected | board: false /1000 | board: delay | without drift: detected | "
             "without drift: false /1000 | drift: detected | drift: false /1000 | drift: delay | float64 band rule: detected | "
             "float64: false /1000 | z-score: detected | z-score: false /1000 | z-score: delay |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    covered: dict = {}
    for name, column, period in ALARM_SERIES:
        series, w, hw, train_end, val_end, model, sd, scale, one_step = _stream_setup(name, column, period)
        d_scale = drift_scale(LEVELS, hw)
        if rate is not None:
            d_scale = tuple(drift_calibrate(*one_step, d_scale, DRIFT[0], DRIFT[1], rate, memory, begin)["scale"])
        diffs = np.diff(series[:train_end])
        stuck_limit = longest_run(series[:train_end])[0]
        up, down = steps(LEVELS, shape=hw.shape[1:])
        s0, m0 = start(LEVELS, hw, floors(scale))
        for kind in ("clean", "biased") + KINDS:
            clean = series[val_end - w:]
            if kind in ("clean", "biased"):
                stream, starts, keep = clean.copy(), [], np.ones(len(clean), bool)
            else:
                stream, starts, keep = _inject(clean, kind, sd, rng)
                starts = [s for s in starts if s >= w + 1]
            spec = WatchSpec(horizon=HORIZON, targets=1, columns=(0,), levels=LEVELS, half_width=hw, up=up, down=down,
                             floor=floors(scale), scale0=s0, mult0=m0, alarm_level=1, margin=margin, stuck_limit=(stuck_limit,),
                             alarm_floor=alarm_floor, catch_up=catch_up, timeout_ms=2500, drift_scale=d_scale, drift_k=DRIFT[0], drift_h=DRIFT[1],
                             drift_memory=memory, drift_start=begin)
            offset = BIAS_SD * sd if kind == "biased" else 0.0
            watch = Watch(spec)
            board_alerts, fc64, seen, idx, inside = [], [], [], [], []
            clock = 0
            for i in range(len(stream)):
                clock += 1000
                board_alerts += [(i, a) for a in watch.tick(clock)]
                if not keep[i]:
                    continue
                x = np.float32(stream[i])
                if watch.n_past and i >= w:  # the band the board printed with its last forecast, at every level
                    inside.append(np.abs(np.float32(x - watch.past[0, 0])) <= watch.tracker.q[:, 0, 0])
                board_alerts += [(i, a) for a in watch.reading(np.array([x]))]
                seen.append(float(x))
                idx.append(i)
                if len(seen) >= w:
                    f = model(np.array(seen[-w:])) + offset
                    watch.forecast(f.astype(np.float32))
                    fc64.append(f)
                else:
                    watch.no_forecast()
                    fc64.append(np.full(HORIZON, np.nan))
            b_idx = sorted({i for i, _ in board_alerts if i >= w})
            d_idx = sorted({i for i, a in board_alerts if i >= w and "kind=drift" in a})
            o_idx = sorted({i for i, a in board_alerts if i >= w and "kind=drift" not in a})
            f64 = [idx[j] for j in _float64_band(np.array(seen), fc64, hw, margin, scale, (alarm_floor, catch_up)) if idx[j] >= w]
            f64 = sorted(set(f64) | {i for i, a in board_alerts if "kind=band" not in a and i >= w})
            z = np.abs(np.diff(np.array(seen)) - diffs.mean()) / diffs.std()
            z_idx = [idx[j + 1] for j in np.flatnonzero(z > 4) if idx[j + 1] >= w]
            if kind == "dropped":  # the z-score has no clock: a gap shows as nothing
                z_idx = z_idx
            def score(alerts):
                detected, delays = 0, []
                near = np.zeros(len(stream), bool)
                for s in starts:
                    near[s:s + 20 + w + HORIZON] = True
                    hit = [a - s for a in alerts if s <= a < s + CATCH]
                    if hit:
                        detected += 1
                        delays.append(min(hit))
                false = sum(1 for a in alerts if not near[a])
                clean_n = max(1, int((~near[w:]).sum()))
                return detected, 1000.0 * false / clean_n, (float(np.median(delays)) if delays else float("nan"))
            b, f, zz, d, o = score(b_idx), score(f64), score(z_idx), score(d_idx), score(o_idx)
            lines.append(f"| {name} {column} | {kind} | {len(starts)} | {b[0]} | {b[1]:.1f} | {b[2]:g} | {o[0]} | {o[1]:.1f} | "
                         f"{d[0]} | {d[1]:.1f} | {d[2]:g} | {f[0]} | {f[1]:.1f} | {zz[0]} | {zz[1]:.1f} | {zz[2]:g} |")
            late = [i for i in d_idx if i >= w + LATE]
            late_rate = 1000.0 * len(late) / max(1, len(stream) - w - LATE)
            rows.append({"series": f"{name} {column}", "kind": kind, "margin": margin, "rate": rate, "variant": variant, "board": b,
                         "injected": len(starts), "without_drift": o, "drift": d, "float64": f, "zscore": zz,
                         "late": late_rate, "n": len(stream) - w})
            covered[(f"{name} {column}", kind)] = 100.0 * np.mean(inside, axis=0)
    kinds = ("clean", "biased") + KINDS
    lines += ["", f"\"biased\": the clean stream with every forecast {BIAS_SD:g} validation sd off; its drift alarms per 1,000 "
              f"readings from reading {LATE} on: " + ", ".join(f"{r['series'].split()[-1]} {r['late']:.1f} (of {r['n']})"
                                                        for r in rows[-len(ALARM_SERIES) * (len(kinds)):] if r.get("kind") == "biased"
                                                        and r.get("variant") == variant and r.get("margin") == margin),
              "", "The board's adaptive bands over the same streams (anomalous readings counted, and after dropped readings "
              "the band is checked against the next reading, as the board's alarm does): coverage % at 80 / 95.", "",
              "| series | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
    for series in dict.fromkeys(k for k, _ in covered):
        lines.append(f"| {series} | " + " | ".join(f"{covered[(series, k)][0]:.1f} / {covered[(series, k)][1]:.1f}"
                                                 for k in kinds) + " |")
        rows.append({"covered": series, "variant": variant, "margin": margin, "rate": rate,
                     **{k: covered[(series, k)].tolist() for k in kinds}})
    return lines


def trade_off(rows: list) -> list[str]:
    """One line per (variant, margin) run of the alarms part: clean-stream alerts per 1,000 readings per series (all /
    the band, stuck and gap alerts alone), anomalies caught of those injected per kind (every alert), and the worst
    distance of the bands' coverage from its level over every stream."""
    runs = list(dict.fromkeys((r["variant"], r["margin"], r["rate"]) for r in rows if "variant" in r and "kind" in r))
    series = list(dict.fromkeys(r["series"] for r in rows if "variant" in r and "kind" in r))
    lines = ["| variant | margin | drift rate | " + " | ".join(f"{s.split()[-1]} clean (all / band)" for s in series) + " | "
             + " | ".join(KINDS) + " | worst coverage gap |", "|---|---|---|" + "---|" * (len(series) + len(KINDS) + 1)]
    for variant, margin, rate in runs:
        mine = [r for r in rows if r.get("variant") == variant and r.get("margin") == margin and r.get("rate") == rate]
        clean = {r["series"]: r for r in mine if r.get("kind") == "clean"}
        caught = {k: (sum(r["board"][0] for r in mine if r.get("kind") == k),
                      sum(r["injected"] for r in mine if r.get("kind") == k)) for k in KINDS}
        gap = max(abs(v[i] - float(LEVELS[i])) for r in mine if "covered" in r for k in ("clean",) + KINDS
                  for v in [r[k]] for i in range(len(LEVELS)))
        lines.append(f"| {variant} | {margin:g} | {'-' if rate is None else f'{rate:g}'} | " + " | ".join(
            f"{clean[s]['board'][1]:.1f} / {clean[s]['without_drift'][1]:.1f}" for s in series) + " | "
            + " | ".join(f"{c} / {n}" for c, n in caught.values()) + f" | {gap:.1f} |")
    return lines


def drift_table(rows: list) -> list[str]:
    """One line per run: the drift rule alone, clean-stream alarms per 1,000 readings per series, drifts caught
    within CATCH readings (every alert / the drift rule alone; its median delay over the series' medians), and on the
    biased stream its alarms per 1,000 readings over the whole stream and from reading LATE on."""
    runs = list(dict.fromkeys((r["variant"], r["margin"], r["rate"]) for r in rows if "variant" in r and "kind" in r))
    series = list(dict.fromkeys(r["series"] for r in rows if "variant" in r and "kind" in r))
    names = [s.split()[-1] for s in series]
    lines = ["| variant | drift rate | " + " | ".join(f"{n} clean drift" for n in names) + " | clean drift, worst | "
             "drifts caught (all / drift rule) | drift delay (median) | shifts caught (all / drift rule) | "
             + " | ".join(f"{n} biased (all / from {LATE})" for n in names) + " |",
             "|---|---|" + "---|" * (2 * len(names) + 4)]
    for variant, margin, rate in runs:
        mine = [r for r in rows if r.get("variant") == variant and r.get("margin") == margin and r.get("rate") == rate
                and "kind" in r]
        by = {(r["series"], r["kind"]): r for r in mine}
        clean = [by[(s, "clean")]["drift"][1] for s in series]
        dr = [by[(s, "drift")] for s in series]
        sh = [by[(s, "shift")] for s in series]
        inj = sum(r["injected"] for r in dr)
        delays = [r["drift"][2] for r in dr if not math.isnan(r["drift"][2])]
        lines.append(f"| {variant} | {'-' if rate is None else f'{rate:g}'} | " + " | ".join(f"{v:.1f}" for v in clean)
                     + f" | {max(clean):.1f} | {sum(r['board'][0] for r in dr)} / {sum(r['drift'][0] for r in dr)} of {inj} | "
                     f"{float(np.median(delays)) if delays else float('nan'):g} | "
                     f"{sum(r['board'][0] for r in sh)} / {sum(r['drift'][0] for r in sh)} of {sum(r['injected'] for r in sh)} | "
                     + " | ".join(f"{by[(s, 'biased')]['drift'][1]:.1f} / {by[(s, 'biased')]['late']:.1f}" for s in series) + " |")
    return lines


def seeds_table(rows: list, seeds: int) -> list[str]:
    """One line per run over every seed's streams (the anomalies' signs differ; clean and biased streams are the same
    in each): clean drift alarms per 1,000 readings summed over the series, the worst series' clean alerts of every
    kind, drifts and shifts caught within CATCH readings (every alert / the drift rule alone), and on the biased
    stream the drift alarms per 1,000 readings summed over the series, all and from reading LATE on."""
    runs = list(dict.fromkeys((r["variant"], r["margin"], r["rate"]) for r in rows if "variant" in r and "kind" in r))
    lines = [f"| variant | drift k / h | clean drift, sum over series | clean all alerts, worst series | drifts caught "
             f"(all / drift rule) | shifts caught (all / drift rule) | spikes caught | biased: all, sum | biased: from "
             f"{LATE}, sum |", "|---|---|---|---|---|---|---|---|---|"]
    for variant, margin, rate in runs:
        mine = [r for r in rows if r.get("variant") == variant and r.get("margin") == margin and r.get("rate") == rate
                and "kind" in r]
        first = {(r["series"], r["kind"]): r for r in reversed(mine)}  # seed 0's
        kind = lambda k: [r for r in mine if r["kind"] == k]  # noqa: E731
        caught = lambda k, col: sum(r[col][0] for r in kind(k))  # noqa: E731
        injected = lambda k: sum(r["injected"] for r in kind(k))  # noqa: E731
        clean = [r for (_, k), r in first.items() if k == "clean"]
        biased = [r for (_, k), r in first.items() if k == "biased"]
        lines.append(f"| {variant} | {DRIFT[0]:g} / {DRIFT[1]:g} | {sum(r['drift'][1] for r in clean):.1f} | "
                     f"{max(r['board'][1] for r in clean):.1f} | {caught('drift', 'board')} / {caught('drift', 'drift')} "
                     f"of {injected('drift')} | {caught('shift', 'board')} / {caught('shift', 'drift')} of {injected('shift')} | "
                     f"{caught('spike', 'board')} of {injected('spike')} | {sum(r['drift'][1] for r in biased):.1f} | "
                     f"{sum(r['late'] for r in biased):.1f} |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("bands", "recovery", "jump", "short", "alarms", "all"), default="all")
    parser.add_argument("--margin", type=float, action="append", default=None)
    parser.add_argument("--drift", type=float, nargs=2, metavar=("K", "H"), default=None)
    parser.add_argument("--variant", choices=tuple(VARIANTS), action="append", default=None,
                        help="the alarms part's rule: before (adaptive alarm band, no catch-up), floor, catch-up, board "
                             "(both, shipped); repeat to run side by side (default: before and board)")
    parser.add_argument("--rate", type=float, action="append", default=None,
                        help="calibrate the drift scale to at most this many alarms per 1,000 validation readings "
                             "(-1: uncalibrated)")
    parser.add_argument("--seed", type=int, default=0, help="the alarms part's random signs of the injected anomalies")
    parser.add_argument("--seeds", type=int, default=0,
                        help="the alarms part over seeds 0 .. N-1, printing only the summary over all of them")
    args = parser.parse_args(argv)
    global SEED
    SEED = args.seed
    if args.drift:
        global DRIFT
        DRIFT = tuple(args.drift)
    rows: list = []
    if args.part in ("bands", "all"):
        print("\n".join(bands_part(rows)))
    if args.part in ("recovery", "all"):
        print("\n".join(recovery_part(rows)))
    if args.part in ("short", "all"):
        print("\n".join(short_part(rows)))
    if args.part in ("jump", "all"):
        print("\n".join(jump_part(rows)))
    if args.part == "alarms" and args.seeds > 0:
        for variant in args.variant or ["cusum", "board"]:
            for seed in range(args.seeds):
                SEED = seed
                alarms_part(rows, (args.margin or [1.5])[0], None if (args.rate or [-1.0])[0] < 0 else args.rate[0], variant)
        print("\n".join([f"The drift rule over {args.seeds} seeds of the injected anomalies' signs, margin "
                                f"{(args.margin or [1.5])[0]:g}, drift rate {(args.rate or ['-'])[0]}", ""] + seeds_table(rows, args.seeds)))
        return 0
    if args.part in ("alarms", "all"):
        for variant in args.variant or ["before", "board"]:
            for margin in args.margin or [1.5]:
                for rate in args.rate or [-1.0]:
                    print("\n".join(alarms_part(rows, margin, None if rate < 0 else rate, variant)))
        print("\n".join(["", "Trade-off: clean-stream alerts per 1,000 readings, anomalies caught within "
                                f"{CATCH} readings (of those injected)", ""] + trade_off(rows)))
        print("\n".join(["", f"The drift rule: alarms per 1,000 clean readings, caught within {CATCH} readings, and on "
                                f"the stream whose forecasts are all {BIAS_SD:g} validation sd off", ""] + drift_table(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
