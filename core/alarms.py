"""The board's watch over a stream of readings (issue 33), in float32 exactly as fs_protocol.cpp runs it.

Every reading pushed with ``R`` (or the sketch's ``ReadSensor``) is, in this order:

1. checked for a stuck sensor: target t's value equal to the one before it in more consecutive readings than
   the training part ever held (``stuck_limit[t]``, its longest run) prints, once per run,
   ``FS ALERT k=<k> kind=stuck y=<value> run=<n> limit=<limit> target=<t>``. A value strictly inside the training
   part's range (between ``stuck_edges[t]``, its lowest and highest value moved in by EDGE_SHARE of the range) is
   held to the longest run the training part held inside it (``stuck_inside[t]``): a sensor that saturates or
   rests at a bound (humidity at 100%, solar power at 0 at night, rain at 0) holds it for long runs, and with one
   limit a stuck value anywhere else was never flagged (bench_alarms_trained, weather humidity: limit 105 hourly
   readings, 34 of 174 stuck stretches of 20 caught within 10 readings, by other alarms);
2. checked against the alarm band forecast for its time step (the forecast made at the previous reading, step 1,
   -/+ ``margin`` times the larger of its adaptive half-width at the alarm level and the exported, split-conformal,
   one at that level): outside it prints
   ``FS ALERT k=<k> y=<reading> lo=<lo> hi=<hi> level=<L> target=<t> kind=band``. The exported half-width is a
   floor because the adaptive band follows the errors' recent size: after a quiet stretch it narrows, and an
   ordinary reading then fell outside 1.5 x it (bench_alarms, clean streams: 9-18 band alarms per 1,000 readings;
   with the floor 0-9.1, spikes 29 / 29, shifts 24 / 29, stuck and gaps as before; BENCHMARKS.md). The displayed
   and covered band stays the adaptive one;
3. checked for a slow drift: the one-step error standardized by the target's validation error scale, less its
   slow mean b, z = (reading - forecast) / ``drift_scale[t]`` - b, held within -/+ DRIFT_CLIP (one wild reading is
   the band alarm's, not a drift), feeds a two-sided CUSUM, up = max(0, up + z - k) and
   down = max(0, down - z - k); past ``drift_h`` it prints
   ``FS ALERT k=<k> kind=drift y=<reading> cusum=<sum> h=<threshold> dir=<up|down> target=<t>`` and both sums restart;
   then b += z / count, count = min(count + 1, DRIFT_MEMORY) from DRIFT_START (b: the mean of z so far, then an
   average over about 200 readings). A bias the forecaster keeps (a trend it lags that validation did not show)
   is learned and alarms ever more rarely; a change in it is caught (bench_alarms, clean streams: drift alarms
   0-9.1 per 1,000 readings, 0-13.6 with the plain CUSUM; forecasts all 1.5 sd off: 0-50 from reading 100 on,
   175-224 with the plain CUSUM; drifts caught within 10 readings 106 of 174 over six seeds, 121 with the plain
   CUSUM, which needs 29 clean alarms to the new rule's 24.6 to catch 102; BENCHMARKS.md);
4. the truth for the forecasts made 1..horizon readings earlier: each one's absolute error updates that step's
   adaptive half-widths (core.adaptive.Tracker: every level's multiplier, then the step's error scale);

then the window moves on and the new forecast is printed with the updated bands (the firmware's ``FS RESULT``).
k is the reading's number since boot (0 = the first). Readings that stop coming: when the board's clock passes
``timeout_ms`` after the last reading, ``FS ALERT k=<k> kind=gap ms=<elapsed> limit=<timeout_ms>`` prints once
(k = the number the missing reading would have had), re-armed by the next reading. The clock is the sketch's
millis(); the emulator's clock is given to ``tick`` (tests set it; nothing sleeps).

The limit: the bundle's ``timeout_ms`` (``gap_limit_ms``: GAP_READINGS time steps of the run's data), or, after
the host's ``W <ms>`` (``pace``: a live stream's milliseconds between readings), GAP_READINGS times that pace,
counted from the command; ``W 0`` puts the bundle's back. Answered ``FS PACE ms=<ms> limit=<limit>``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.adaptive import Tracker, abs_error

U32 = 0xFFFFFFFF
GAP_READINGS = 3  # the gap alarm after this many readings' time without one (fs_protocol.h's kGapReadings)
PACE_MAX_MS = 999_999_999  # W takes at most 9 digits (times GAP_READINGS still fits the board's uint32 clock)
DRIFT_CLIP = 2.0  # |z| counted at most this much per reading (fs_protocol.cpp's FS_DRIFT_CLIP, the same literal)
# The drift rule's slow mean of z: it starts as the mean of the readings so far (count starts at DRIFT_START: as if
# that many minus one zeros came first, so one reading cannot make it), then averages over about DRIFT_MEMORY readings
# (an exponential average at rate 1 / DRIFT_MEMORY). fs_protocol.cpp's literals; DRIFT_MEMORY 0: the plain CUSUM.
DRIFT_MEMORY = 200.0
DRIFT_START = 20.0


def cusum_step(up, down, x, forecast, scale, k, bias=0.0, count=0.0, memory=0.0):
    """One reading of the drift CUSUM, float32 in fs_protocol.cpp's order: z = (x - forecast) / scale - bias held
    within -/+ DRIFT_CLIP (a spike is the band alarm's, not a drift), then up = max(0, up + z - k),
    down = max(0, down - z - k); then, with a memory, the error's slow mean (in scales) learns from the same z:
    bias = bias + z / count and count = min(count + 1, memory), so a bias the forecaster keeps is learned and a
    change in it is caught. Returns (up, down, bias, count); memory 0 leaves bias and count as they are."""
    z = np.float32(np.float32(np.float32(x) - np.float32(forecast)) / np.float32(scale))
    z = np.float32(z - np.float32(bias))
    z = min(max(z, np.float32(-DRIFT_CLIP)), np.float32(DRIFT_CLIP))
    kk = np.float32(k)
    up = max(np.float32(0), np.float32(np.float32(np.float32(up) + z) - kk))
    down = max(np.float32(0), np.float32(np.float32(np.float32(down) - z) - kk))
    bias, count = np.float32(bias), np.float32(count)
    if memory > 0:
        bias = np.float32(bias + np.float32(z / count))
        count = min(np.float32(count + np.float32(1)), np.float32(memory))
    return up, down, bias, count


@dataclass(frozen=True)
class WatchSpec:
    """The watch's constants (model_config.h's kWatch*): see ``core.firmware.spec.watch_of``."""
    horizon: int
    targets: int
    columns: tuple[int, ...]  # each target's column in a reading; () = the targets are not inputs (no truth)
    levels: tuple[str, ...] = ()
    half_width: np.ndarray | None = None  # (levels, horizon, targets) float32, the exported bands
    up: np.ndarray | None = None
    down: np.ndarray | None = None
    floor: np.ndarray | None = None  # (targets,)
    scale0: np.ndarray | None = None  # (horizon, targets) float32: each step's starting error scale (core.adaptive.start)
    mult0: np.ndarray | None = None  # (levels, horizon, targets) float32: each cell's starting multiplier
    beta: float = 0.05  # the scale's averaging rate (core.adaptive.BETA)
    clip: float = 4.0  # an error counts at most this many scales (core.adaptive.CLIP)
    alarm_level: int = -1  # index into levels; -1: no band alarm
    margin: float = 1.0
    alarm_floor: bool = True  # the alarm's half-width never under the exported one (False: the rule before, bench only)
    catch_up: bool = True  # core.adaptive.Tracker's catch-up (False: the rule before, bench only)
    stuck_limit: tuple[int, ...] = ()  # per target; 0 = not watched
    timeout_ms: int = 0  # 0 = not watched (gap_limit_ms: GAP_READINGS time steps of the data)
    step_ms: int = 0  # the data's time step in ms (the sketch's FS_SENSOR_PERIOD_MS); 0 = unknown
    drift_scale: tuple[float, ...] = ()  # per target, float32: the one-step validation error's scale; () = no drift rule
    drift_k: float = 0.25  # the CUSUM's allowance, in scales per reading
    drift_h: float = 4.5   # its threshold (DEFAULTS['alarms'])
    drift_factor: tuple[float, ...] = ()  # per target: drift_scale over the uncalibrated one (drift_calibrate); () = not calibrated
    drift_rate: float = 0.0  # the calibration's alarms per 1,000 validation readings
    drift_memory: float = DRIFT_MEMORY  # the error's slow mean (0: the plain CUSUM, bench only)
    drift_start: float = DRIFT_START
    stuck_inside: tuple[int, ...] = ()  # per target: the longest run strictly inside the training range; () = one limit
    stuck_edges: tuple[tuple[float, float], ...] = ()  # per target, float32 (lo, hi): inside is lo < value < hi

    @property
    def adaptive(self) -> bool:
        return bool(self.levels) and self.half_width is not None and len(self.columns) == self.targets


def fmt(value) -> str:
    return "%.7g" % float(np.float32(value))


class Watch:
    """One board's watch state: adaptive half-widths, the last horizon forecasts, runs, the clock."""

    def __init__(self, spec: WatchSpec) -> None:
        self.spec = spec
        H, T = spec.horizon, spec.targets
        self.tracker = (Tracker(spec.half_width, spec.up, spec.down, spec.floor, spec.scale0, spec.mult0, spec.beta,
                                spec.clip, spec.catch_up) if spec.adaptive else None)
        self.past = np.zeros((H, H * T), np.float32)  # row 0 = the newest forecast (data units)
        self.n_past = 0
        self.alarm_lo = np.zeros(T, np.float32)
        self.alarm_hi = np.zeros(T, np.float32)
        self.last = np.zeros(T, np.float32)
        self.run = np.zeros(T, np.int64)
        self.readings = 0
        self.now_ms = 0
        self.last_ms = 0
        self.gap_alerted = False
        self.pace_limit_ms: int | None = None  # W <ms> > 0: GAP_READINGS x ms; None: the bundle's timeout_ms
        self.cusum = np.zeros((4, T), np.float32)  # up, down, the error's slow mean (in scales), its count
        self.cusum[3] = np.float32(spec.drift_start)

    def half_widths(self) -> np.ndarray | None:
        return None if self.tracker is None else self.tracker.q

    def reading(self, values: np.ndarray) -> list[str]:
        """fs::Protocol::WatchReading: the alerts this reading raises, and the bands it updates."""
        s = self.spec
        v = np.asarray(values, np.float32)
        k = self.readings
        self.readings += 1
        self.last_ms = self.now_ms
        self.gap_alerted = False
        out: list[str] = []
        for t, col in enumerate(s.columns):
            x = v[col]
            self.run[t] = self.run[t] + 1 if k > 0 and x == self.last[t] else 1
            self.last[t] = x
            limit = s.stuck_limit[t] if t < len(s.stuck_limit) else 0
            if len(s.stuck_inside) == len(s.stuck_edges) == s.targets and \
                    np.float32(s.stuck_edges[t][0]) < x < np.float32(s.stuck_edges[t][1]):
                limit = s.stuck_inside[t]
            if limit > 0 and self.run[t] == limit + 1:
                out.append(f"FS ALERT k={k} kind=stuck y={fmt(x)} run={self.run[t]} limit={limit} target={t}")
        if self.tracker is None or self.n_past == 0:
            return out
        level = s.alarm_level
        for t, col in enumerate(s.columns):
            x = v[col]
            if level >= 0 and (x < self.alarm_lo[t] or x > self.alarm_hi[t]):
                out.append(f"FS ALERT k={k} y={fmt(x)} lo={fmt(self.alarm_lo[t])} hi={fmt(self.alarm_hi[t])} "
                           f"level={s.levels[level]} target={t} kind=band")
        if len(s.drift_scale) == s.targets:
            out += self._drift(k, v)
        for h in range(min(self.n_past, s.horizon)):
            for t, col in enumerate(s.columns):
                self.tracker.update(h, t, abs_error(v[col], self.past[h, h * s.targets + t]))
        return out

    def _drift(self, k: int, v: np.ndarray) -> list[str]:
        """The CUSUM of standardized one-step errors, float32 in fs_protocol.cpp's order of operations."""
        s, out = self.spec, []
        kk, hh = np.float32(s.drift_k), np.float32(s.drift_h)
        for t, col in enumerate(s.columns):
            x = v[col]
            self.cusum[:, t] = cusum_step(*self.cusum[:2, t], x, self.past[0, t], s.drift_scale[t], kk,
                                          *self.cusum[2:, t], s.drift_memory)
            up, down = self.cusum[0, t], self.cusum[1, t]
            if up > hh or down > hh:
                out.append(f"FS ALERT k={k} kind=drift y={fmt(x)} cusum={fmt(max(up, down))} h={fmt(hh)} "
                           f"dir={'up' if up > hh else 'down'} target={t}")
                self.cusum[:2, t] = 0
        return out

    def no_forecast(self) -> None:
        """A reading that made no forecast (window not full, a model failure): the forecasts in hand stay aligned
        only while every reading makes one, so the ring starts again."""
        self.n_past = 0

    def forecast(self, y: np.ndarray) -> None:
        """fs::Protocol::WatchForecast: keep the forecast (data units), and the alarm band for the next reading."""
        s = self.spec
        if self.tracker is None:
            return
        self.past[1:] = self.past[:-1].copy()
        self.past[0] = np.asarray(y, np.float32).reshape(-1)
        self.n_past = min(s.horizon, self.n_past + 1)
        if s.alarm_level >= 0:
            q = self.tracker.q[s.alarm_level, 0]
            if s.alarm_floor:  # never narrower than the exported (split-conformal) half-width at the alarm level
                q = np.maximum(q, np.asarray(s.half_width, np.float32)[s.alarm_level, 0])
            w = (q * np.float32(s.margin)).astype(np.float32)
            y0 = self.past[0, :s.targets]
            self.alarm_lo = (y0 - w).astype(np.float32)
            self.alarm_hi = (y0 + w).astype(np.float32)

    @property
    def gap_limit(self) -> int:
        return self.spec.timeout_ms if self.pace_limit_ms is None else self.pace_limit_ms

    def pace(self, ms: int) -> str:
        """fs::Protocol::Pace (``W <ms>``, ms already checked: 0 .. PACE_MAX_MS): the gap limit from the host's
        pace, counted from now; 0 puts the bundle's back."""
        self.pace_limit_ms = (ms * GAP_READINGS) & U32 if ms > 0 else None
        self.last_ms = self.now_ms
        self.gap_alerted = False
        return f"FS PACE ms={ms} limit={self.gap_limit}"

    def tick(self, now_ms: int) -> list[str]:
        """fs::Protocol::Tick: the board's clock; the gap alert once the readings stop for the gap limit."""
        self.now_ms = int(now_ms) & U32
        limit = self.gap_limit
        if limit <= 0 or self.readings == 0 or self.gap_alerted:
            return []
        elapsed = (self.now_ms - self.last_ms) & U32
        if elapsed <= limit:
            return []
        self.gap_alerted = True
        return [f"FS ALERT k={self.readings} kind=gap ms={elapsed} limit={limit}"]


def gap_limit_ms(freq: str | None, calendar: dict | None = None) -> tuple[int, int]:
    """(the data's time step in ms, the bundle's gap limit FS_READING_TIMEOUT_MS) from the run's frequency:
    GAP_READINGS steps. (0, DEFAULTS' timeout) when the step is unknown; a series observed only in working hours
    or on trading days waits out its closed hours too (at least 3 days: a weekend). A limit the board's 32-bit
    millis() cannot time (over 24 days: monthly data and longer) is 0, off."""
    from core.config import DEFAULTS
    from core.frequency import observed, step_days

    days = step_days(freq)
    if days is None or not days > 0:
        return 0, int(DEFAULTS["alarms"]["timeout_ms"])
    step_ms = int(round(days * 86_400_000))
    limit = GAP_READINGS * step_ms
    if observed(calendar) is not None:
        limit = max(limit, 3 * 86_400_000)
    return min(step_ms, 0x7FFFFFFF), (limit if limit <= 0x7FFFFFFF else 0)


def longest_run(values: np.ndarray) -> list[int]:
    """Per column of (rows, columns): the most consecutive rows holding one value (NaN never repeats)."""
    a = np.asarray(values)
    if a.ndim == 1:
        a = a[:, None]
    out = []
    for col in a.T:
        if not len(col):
            out.append(0)
            continue
        breaks = np.flatnonzero(~(col[1:] == col[:-1]))
        out.append(int(np.diff(np.r_[-1, breaks, len(col) - 1]).max()))
    return out


EDGE_SHARE = 1e-5  # of the training range: a value this close to its lowest or highest is at that bound


def inside_runs(values: np.ndarray) -> tuple[list[int], list[tuple[float, float]]]:
    """Per column of (rows, columns): the most consecutive rows holding one value strictly between the column's
    lowest and highest (its longest run when every run is at one of them), and (lowest, highest)."""
    a = np.asarray(values, dtype=np.float64)
    a = a[:, None] if a.ndim == 1 else a
    runs, ranges = [], []
    for col, whole in zip(a.T, longest_run(a)):
        fin = col[np.isfinite(col)]
        if not len(fin):
            runs.append(whole)
            ranges.append((0.0, 0.0))
            continue
        lo, hi = float(fin.min()), float(fin.max())
        inside = np.where((col > lo) & (col < hi), col, np.nan)  # NaN never repeats: runs at a bound do not count
        ok = (col > lo) & (col < hi)
        runs.append(longest_run(inside)[0] if ok.any() else whole)
        ranges.append((lo, hi))
    return runs, ranges


def stuck_edges(ranges) -> tuple[tuple[float, float], ...]:
    """The board's float32 (lo, hi) per target from the training range in data units: moved in by EDGE_SHARE of it,
    so a reading at a bound counts as at it though the range came back through the scaler."""
    out = []
    for lo, hi in ranges:
        pad = (float(hi) - float(lo)) * EDGE_SHARE
        out.append((float(np.float32(float(lo) + pad)), float(np.float32(float(hi) - pad))))
    return tuple(out)


def drift_scale(levels, half_width) -> tuple[float, ...]:
    """Per target, the one-step error's scale the drift rule standardizes by, from the validation errors: the
    narrowest band's step-1 half-width (its conformal quantile of |error|) over the normal quantile of that level
    (1.2816 for 80%), float32; () without bands."""
    from statistics import NormalDist

    if not levels or half_width is None:
        return ()
    i = min(range(len(levels)), key=lambda j: float(levels[j]))
    z = NormalDist().inv_cdf(0.5 + float(levels[i]) / 200.0)
    q = np.asarray(half_width, np.float32)[i, 0]
    return tuple(float(np.float32(max(float(v), 1e-12) / z)) for v in q)


# The drift rule's scale is calibrated on the validation part: clean readings the model never trained on, whose
# one-step errors can be autocorrelated (a forecaster that lags a swing errs the same way for several readings), and
# then the fixed allowance and threshold alarm on a clean stream again and again (bench_alarms: up to 14 drift alarms
# per 1,000 clean readings at factor 1). Each target's scale is the narrowest band's normal scale (drift_scale) times
# the smallest factor of DRIFT_FACTORS at which the board's own float32 CUSUM, run over the validation errors in order,
# raises at most DRIFT_RATE alarms per 1,000 readings.
DRIFT_RATE = 2.0
DRIFT_FACTORS = tuple(float(np.float32(2.0 ** (j / 8.0))) for j in range(25))  # 1 .. 8, steps of 9%


def drift_alarms(actual, forecast, scale: float, k: float, h: float, stop: float = math.inf,
                 memory: float = DRIFT_MEMORY, start: float = DRIFT_START) -> int:
    """The drift alarms the board's CUSUM (cusum_step) raises over one target's one-step forecasts, in stream order;
    a pair with a NaN is skipped (the board takes no such reading). Counting ends once past ``stop`` (a long
    validation stream need not be run to its end for a factor already refused)."""
    up = down = bias = np.float32(0)
    count = np.float32(start)
    hh, alarms = np.float32(h), 0
    for x, f in zip(np.asarray(actual, np.float32), np.asarray(forecast, np.float32)):
        if not (np.isfinite(x) and np.isfinite(f)):
            continue
        up, down, bias, count = cusum_step(up, down, x, f, scale, k, bias, count, memory)
        if up > hh or down > hh:
            alarms += 1
            up = down = np.float32(0)
            if alarms > stop:
                break
    return alarms


def drift_calibrate(actual, forecast, base: tuple[float, ...], k: float, h: float,
                    rate: float = DRIFT_RATE, memory: float = DRIFT_MEMORY, start: float = DRIFT_START) -> dict:
    """Per target (actual, forecast: (n, targets) one-step validation pairs in order; base: drift_scale's), the
    calibrated scale (float32), its factor over base, and the validation alarms it leaves (counted to one past the
    allowance): {"scale", "factor",
    "alarms", "n", "rate"}. The largest factor when none meets the rate."""
    a, f = np.asarray(actual, np.float64), np.asarray(forecast, np.float64)
    n = int(np.isfinite(a - f).all(axis=1).sum()) if a.ndim == 2 else 0
    allowed = rate * n / 1000.0
    scales, factors, alarms = [], [], []
    for t, b in enumerate(base):
        for c in DRIFT_FACTORS:
            scale = float(np.float32(np.float32(b) * np.float32(c)))
            count = drift_alarms(a[:, t], f[:, t], scale, k, h, allowed, memory, start) if n else 0
            if count <= allowed:
                break
        scales.append(scale)
        factors.append(c)
        alarms.append(count)
    return {"scale": scales, "factor": factors, "alarms": alarms, "n": n, "rate": rate,
            "k": float(np.float32(k)), "h": float(np.float32(h))}
