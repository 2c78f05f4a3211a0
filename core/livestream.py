"""A live stream to the board (issue 33, item 3): readings sent one by one with ``R`` at a chosen pace, with an
anomaly injected at a known place, and what the board answered (forecasts, adaptive bands, FS ALERT lines)
kept for a chart and a detection summary.

The stream is built here, not on the page: ``readings_from_windows`` joins the export's consecutive test windows
back into the readings they were cut from, ``readings_from_csv`` reads an uploaded CSV with the model's input
columns, and ``inject`` writes one anomaly into a copy (bench/bench_alarms.py injects with the same function).
``LiveStream.run`` is the loop a background thread runs; its pauses go through ``wait`` (a stop event's wait by
default), so a test drives the pace with its own function and nothing sleeps.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from core.board.link import Task
from core.errors import StudioError

KINDS = ("spike", "shift", "drift", "stuck", "dropped")
WORDS = {"spike": "a spike (one reading off by size)", "shift": "a level shift (length readings moved by size)",
         "drift": "a slow drift (ramping from 0 to size over length readings)",
         "stuck": "a stuck value (the reading before held for length readings)",
         "dropped": "dropped readings (length readings never sent)"}


@dataclass(frozen=True)
class Anomaly:
    """One injected anomaly: ``kind`` from KINDS at reading ``start`` on input column ``column``, ``size`` in data
    units (signed), lasting ``length`` readings (a spike lasts one)."""
    kind: str
    start: int
    size: float = 0.0
    length: int = 20
    column: int = 0

    @property
    def span(self) -> int:
        return 1 if self.kind == "spike" else max(1, int(self.length))


def inject(x: np.ndarray, kind: str, start: int, size: float, length: int = 20) -> np.ndarray:
    """Write one anomaly into the 1-D series ``x`` in place; returns the mask of readings still sent (False where
    ``dropped``). ``size`` is in x's units and signed. The shapes are bench_alarms' (issue 33)."""
    keep = np.ones(len(x), bool)
    end = min(len(x), start + max(1, int(length)))
    if kind == "spike":
        x[start] += size
    elif kind == "shift":
        x[start:end] += size
    elif kind == "drift":
        x[start:end] += np.linspace(size / 20.0, size, max(1, int(length)))[: end - start]
    elif kind == "stuck":
        x[start:end] = x[start - 1] if start > 0 else x[start]
    elif kind == "dropped":
        keep[start:end] = False
    else:
        raise StudioError(f"Unknown anomaly {kind!r}.", f"Pick one of: {', '.join(KINDS)}.")
    return keep


def injected(readings: np.ndarray, anomaly: Anomaly | None) -> tuple[np.ndarray, np.ndarray]:
    """(readings with the anomaly, mask of readings sent): a copy; no anomaly leaves them as they are."""
    values = np.array(readings, dtype=np.float64, copy=True)
    if anomaly is None:
        return values, np.ones(len(values), bool)
    if not 0 <= anomaly.start < len(values):
        raise StudioError(f"The anomaly starts at reading {anomaly.start}, outside the stream's {len(values)} readings.",
                          "Pick a start inside the stream.")
    column = values[:, anomaly.column]
    keep = inject(column, anomaly.kind, anomaly.start, anomaly.size, anomaly.length)
    values[:, anomaly.column] = column
    return values, keep


def readings_from_windows(X: np.ndarray) -> np.ndarray:
    """The readings consecutive windows (n, window, features) were cut from: the first window, then each next
    window's last row while it overlaps the one before by all but one row (a break ends the stretch there)."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 3 or not len(X):
        return np.zeros((0, X.shape[-1] if X.ndim else 0))
    rows = list(X[0])
    for i in range(1, len(X)):
        if not np.allclose(X[i, :-1], X[i - 1, 1:], rtol=1e-6, atol=1e-9, equal_nan=True):
            break
        rows.append(X[i, -1])
    return np.array(rows)


def readings_from_csv(frame, features: int, names: Sequence[str] = ()) -> np.ndarray:
    """An uploaded CSV (a DataFrame) as readings: the model's input columns by name when all are there, else its
    numeric columns when they are exactly as many as the model reads."""
    if names and all(n in frame.columns for n in names):
        values = frame[list(names)].apply(lambda c: c.astype(float)).to_numpy(dtype=float)
    else:
        values = frame.select_dtypes("number").to_numpy(dtype=float)
    if values.ndim != 2 or values.shape[1] != features:
        have = values.shape[1] if values.ndim == 2 else 0
        raise StudioError(f"The CSV has {have} numeric column(s); the board's model reads {features} per reading"
                          + (f" ({', '.join(names)})." if names else "."),
                          "Keep only the model's input columns, in its input order (or name them as the model does).")
    if not len(values):
        raise StudioError("The CSV has no readings.", "Give a CSV with one reading per row.")
    return values


def change_sd(values: np.ndarray) -> float:
    """The standard deviation of the reading-to-reading change: the unit an anomaly's size is given in."""
    d = np.diff(np.asarray(values, dtype=np.float64))
    d = d[np.isfinite(d)]
    sd = float(np.std(d)) if len(d) > 1 else 0.0
    return sd if sd > 0 else max(1e-6, float(np.nanstd(values)) or 1.0)


@dataclass
class Received:
    """What came back for one reading of the stream (index i of the stream, sent or dropped)."""
    i: int
    sent: bool
    value: tuple[float, ...] = ()
    forecast: tuple[float, ...] = ()  # the board's forecast made at this reading (horizon x targets), () = none
    bands: tuple = ()                 # Result.bands: (level, lo, hi) for that forecast
    alerts: list = field(default_factory=list)  # core.board.protocol.Alert records, attributed to this reading


def score(alerts: Sequence[int], start: int, span: int, n: int, settle: int, catch: int = 10) -> dict:
    """Detection of one anomaly from the stream indices that raised alerts: detected (an alert from its start to
    ``catch`` readings later), the delay to the first alert, and the false alarms (alerts away from it: before
    its start, or later than span + settle readings after it) per 1,000 such readings."""
    hits = sorted(a - start for a in alerts if start <= a < start + catch)
    near = np.zeros(n, bool)
    near[start:start + span + settle] = True
    away = [a for a in alerts if 0 <= a < n and not near[a]]
    clean = max(1, int((~near).sum()))
    return {"detected": bool(hits), "delay": hits[0] if hits else None, "false": len(away),
            "false_per_1000": 1000.0 * len(away) / clean, "clean_readings": clean}


class LiveStream:
    """Sends ``readings`` to ``board`` with R, ``pace`` readings a second (0: as fast as the board answers), in a
    thread the caller starts with ``start``; ``received`` grows as answers come. A dropped reading is a pause of
    one reading's time with nothing sent (the board's clock sees the gap). ``wait(seconds)`` pauses and says
    whether to stop; by default the stop event's wait, so Stop ends a pause at once."""

    def __init__(self, board, readings: np.ndarray, keep: np.ndarray | None = None, pace: float = 0.0,
                 timeout: float = 10.0, wait: Callable[[float], bool] | None = None,
                 anomaly: Anomaly | None = None) -> None:
        self.board = board
        self.readings = np.asarray(readings, dtype=np.float64)
        self.keep = np.ones(len(self.readings), bool) if keep is None else np.asarray(keep, bool)
        self.pace = float(pace)
        self.timeout = timeout
        self.anomaly = anomaly
        self._stop = threading.Event()
        self._wait = wait or self._stop.wait
        self._lock = threading.Lock()
        self.received: list[Received] = []
        # The gap rule on this stream: the board's answer to W (core.board.protocol.Pace), or why there is none:
        # "no pace" (as fast as the board answers: no pause to notice), "old board" (FS ERR UNKNOWN to W).
        self.gap: Any = None
        self._task: Task | None = None

    def start(self) -> "LiveStream":
        # The board's own background runner (core.board.Task): off the page's thread, its failure kept as a message.
        self._task = Task("The live stream", self.run)
        return self

    @property
    def error(self) -> StudioError | None:
        return None if self._task is None else self._task.error

    def wait(self, timeout: float) -> bool:
        """Block until the stream has ended (for tests); True when it has."""
        return self._task is not None and self._task.wait(timeout)

    def stop(self) -> None:
        self._stop.set()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def _new_alerts(self, cursor: int) -> tuple[list, int]:
        from core.board.protocol import Alert

        entries = self.board.log(cursor)
        alerts = [e.record for e in entries if isinstance(e.record, Alert)]
        return alerts, (entries[-1].seq if entries else cursor)

    def run(self) -> None:
        """The loop: tell the board the pace (``W``, so a pause of three readings raises its gap alarm), then for
        each reading pause to the pace, send it (or not, when dropped), keep the answer and the alerts that came
        since the reading before; at the end the board's own gap limit again (``W 0``)."""
        period = 1.0 / self.pace if self.pace > 0 else 0.0
        if period <= 0:
            self.gap = "no pace"
        else:
            self.gap = self.board.pace(pace_ms(self.pace), self.timeout) or "old board"
        try:
            self._send(period)
        finally:
            if not isinstance(self.gap, str) and not self.board.error:
                try:  # the board's own gap limit again: the stream's pace ends with it
                    self.board.pace(0, self.timeout)
                except Exception:  # a board gone meanwhile: the stream's own error (if any) says so
                    pass

    def _send(self, period: float) -> None:
        from core.board.protocol import Result

        cursor = self.board.cursor()
        for i, row in enumerate(self.readings):
            if self._stop.is_set():
                return
            if period > 0 and i > 0 and self._wait(period):
                return
            got = Received(i=i, sent=bool(self.keep[i]), value=tuple(float(v) for v in row))
            if got.sent:
                answer = self.board.push(row, self.timeout)
                if isinstance(answer, Result):
                    got.forecast, got.bands = answer.y, answer.bands
            got.alerts, cursor = self._new_alerts(cursor)
            with self._lock:
                self.received.append(got)

    def summary(self, window: int, horizon: int, catch: int = 10) -> dict | None:
        """For the injected anomaly: whether and how many readings after its start the board flagged it, by which
        kind of alert, and the alerts elsewhere (false alarms). None without an anomaly."""
        a = self.anomaly
        got = self.snapshot()
        if a is None or not got:
            return None
        raised = [(r.i, al) for r in got for al in r.alerts]
        result = score([i for i, _ in raised], a.start, a.span, len(got), settle=window + horizon, catch=catch)
        first = next((al for i, al in raised if a.start <= i < a.start + catch), None)
        reached = len(got) > a.start
        return {**result, "kind": a.kind, "start": a.start, "reached": reached, "alerts": len(raised),
                "by": first.kind if first is not None else None, "readings": len(got),
                "gap": self.gap if isinstance(self.gap, str) or self.gap is None else "on",
                "gap_limit_ms": None if isinstance(self.gap, str) or self.gap is None else self.gap.limit}


def pace_ms(pace: float) -> int:
    """Milliseconds between readings at ``pace`` readings a second (W's argument), at least 1."""
    return max(1, int(round(1000.0 / pace)))


def chart_series(received: Sequence[Received], column: int, target: int, targets: int) -> dict:
    """What the live chart draws for one target (its column ``column`` in a reading), per stream index: the
    reading (NaN when dropped), the board's one-step forecast for it (made at the reading before), that forecast's
    widest band as the board printed it (its adaptive half-widths), and the alerts raised by each reading."""
    n = len(received)
    out = {"i": np.arange(n), "reading": np.full(n, np.nan), "forecast": np.full(n, np.nan),
           "lo": np.full(n, np.nan), "hi": np.full(n, np.nan), "level": None, "alerts": []}
    last: Received | None = None
    for j, r in enumerate(received):
        if r.sent and column < len(r.value):
            out["reading"][j] = r.value[column]
        if last is not None and target < len(last.forecast):
            out["forecast"][j] = last.forecast[target]
            if last.bands:
                level, lo, hi = max(last.bands, key=lambda b: float(b[0]))
                out["lo"][j], out["hi"][j], out["level"] = lo[target], hi[target], level
        for a in r.alerts:
            if a.target in (None, target) or a.kind == "gap":
                out["alerts"].append((j, a))
        if r.sent:
            last = r if r.forecast else None
    return out
