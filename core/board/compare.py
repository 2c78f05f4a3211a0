"""Board answers against the host's run of the same model file (fidelity) and against the actual values
(quality); the Edge Impulse sketch's printed readings judged the same way."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Iterable, Sequence

import numpy as np

from core.config import DEFAULTS
from core.board.protocol import (EiPrediction, EiPredictionsHeader, EiTiming, Other, Ready, Record, Result,
                                 parse_line)
from core.board.ports import mismatch_error
from core.board.reference import Reference

CFG = DEFAULTS["device"]


# --- comparison -----------------------------------------------------------------------------------------

# The comparison's columns in words, for the Device page's table and the CLI's (``Comparison.to_frame``).
COMPARISON_HEADERS = {"window": "test window", "k": "board index (k)", "step": "step ahead", "board": "board",
                      "host": "host", "abs_err": "|board − host|", "ok": "within tolerance"}


@dataclass
class Row:
    window: int | None     # index into the run's test windows; None when a value matched none
    k: int                 # the board's own index (self-test k, -1 for P, reading number for Edge Impulse)
    step: int
    target: str
    board: float
    host: float | None
    abs_err: float | None
    ok: bool
    # Per band level the board printed and the host knows: {"80": {"board": [lo, hi], "host": [lo, hi]}}.
    bands: dict = field(default_factory=dict)


@dataclass
class Comparison:
    rows: list[Row]
    tolerance: dict[str, float]
    max_abs_err: float | None
    mean_abs_err: float | None
    timing_us: dict[str, float] | None       # min / median / max inference time
    verdict: str                             # "agree", "disagree" or "no results": kernel fidelity
    problems: list[str] = field(default_factory=list)
    # Forecast quality against the actual values (``judge_quality``): a separate question from fidelity.
    quality: dict = field(default_factory=dict)

    @property
    def agree(self) -> bool:
        return self.verdict == "agree"

    @property
    def forecasts_good(self) -> bool | None:
        """True / False when the board's forecasts could be judged against the actual values, else None."""
        v = self.quality.get("verdict")
        return None if v in (None, "unknown") else v == "good"

    def summary(self, quality: bool = True) -> str:
        """Fidelity (board vs the host's run of the same file), then, with ``quality``, forecast quality."""
        if self.verdict == "no results":
            return "No board results to compare yet."
        windows = len({(r.k, r.window) for r in self.rows})
        text = f"{'Board and host agree' if self.agree else 'Board and host DISAGREE'} on {windows} window(s): "
        if self.max_abs_err is not None:
            mean = "n/a" if self.mean_abs_err is None else f"{self.mean_abs_err:.6g}"
            text += f"max |error| {self.max_abs_err:.6g}, mean {mean} "
        else:
            text += "no value could be matched to a host forecast "
        text += f"(tolerance {', '.join(f'{k} {v:.3g}' for k, v in self.tolerance.items())})"
        if self.timing_us:
            t = self.timing_us
            text += f"; inference {t['min'] / 1000:.3g} / {t['median'] / 1000:.3g} / {t['max'] / 1000:.3g} ms (min / median / max)"
        text += "."
        if quality and self.quality.get("summary"):
            text += " " + self.quality["summary"]
        return text

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "agree": self.agree, "quality": self.quality,
                "forecasts_good": self.forecasts_good, "max_abs_err": self.max_abs_err,
                "mean_abs_err": self.mean_abs_err, "tolerance": self.tolerance, "timing_us": self.timing_us,
                "problems": self.problems, "rows": [asdict(r) for r in self.rows]}

    def to_frame(self):
        """One row per value; with bands, the board's and the host's bounds per level beside the forecast."""
        import pandas as pd

        levels = sorted({lv for r in self.rows for lv in r.bands}, key=float)
        records = []
        for r in self.rows:
            rec = {k: v for k, v in asdict(r).items() if k != "bands"}
            for lv in levels:
                b = r.bands.get(lv) or {}
                board, host = b.get("board") or [None, None], b.get("host") or [None, None]
                rec.update({f"board {lv}% low": board[0], f"board {lv}% high": board[1],
                            f"host {lv}% low": host[0], f"host {lv}% high": host[1]})
            records.append(rec)
        columns = ["window", "k", "step", "target", "board", "host", "abs_err", "ok"]
        columns += [f"{who} {lv}% {side}" for lv in levels for who in ("board", "host") for side in ("low", "high")]
        return pd.DataFrame(records, columns=columns)


def _timing(us: Iterable[float]) -> dict[str, float] | None:
    vals = [float(v) for v in us]
    if not vals:
        return None
    return {"min": min(vals), "median": float(statistics.median(vals)), "max": max(vals)}


def _finish(rows: list[Row], tol: dict[str, float], us: list[float], problems: list[str],
            quality: dict | None = None) -> Comparison:
    errs = [r.abs_err for r in rows if r.abs_err is not None]
    finite = [e for e in errs if np.isfinite(e)]
    if not rows:
        verdict = "no results"
    else:
        verdict = "agree" if all(r.ok for r in rows) and not problems else "disagree"
    return Comparison(rows=rows, tolerance=tol,
                      max_abs_err=(max(errs) if errs and len(finite) == len(errs) else (float("inf") if errs else None)),
                      mean_abs_err=(float(np.mean(finite)) if finite else None), timing_us=_timing(us),
                      verdict=verdict, problems=problems, quality=quality or {})


def compare(board: Sequence[Result] | Sequence[tuple[int, Result]], ref: Reference, dtype: str | None = None) -> Comparison:
    """Board forecasts against the host's, in data units.

    ``board`` is either self-test results (k maps to ``ref.embedded[k]``, or to test window k when the export
    does not list them) or ``(test window index, result)`` pairs for windows sent with ``P``.
    """
    tol_arr = ref.tolerance(dtype)
    tol = {t: float(v) for t, v in zip(ref.targets, tol_arr)}
    horizon, n_t = ref.y_host.shape[1], ref.y_host.shape[2]
    rows: list[Row] = []
    problems: list[str] = []
    us: list[float] = []
    emb = ref.embedded_for(dtype) if any(isinstance(i, Result) for i in board) else None
    kept = (dtype or ref.dtype) in ref.y_tflm
    # (window index, host forecast in data units or None, result)
    items: list[tuple[int | None, np.ndarray | None, Result]] = []
    for item in board:
        if isinstance(item, Result):
            if emb is not None:
                ok = 0 <= item.k < len(emb.indices)
                idx = emb.indices[item.k] if ok else None
                # The host's run of the same file where the export kept it, else the bundle's host forecast.
                host = (ref.reference_units(idx, dtype) if kept and idx is not None and 0 <= idx < ref.n_windows
                        else (emb.host[item.k] if ok else None))
                items.append((idx, host, item))
                continue
            if ref.embedded:
                idx: int | None = ref.embedded[item.k] if 0 <= item.k < len(ref.embedded) else None
            else:
                idx = item.k
        else:
            idx, item = int(item[0]), item[1]
        host = ref.reference_units(idx, dtype) if idx is not None and 0 <= idx < ref.n_windows else None
        items.append((idx, host, item))
    for idx, host, res in items:
        us.append(res.us)
        if len(res.y) != horizon * n_t:
            problems.append(f"result k={res.k} has {len(res.y)} values, expected {horizon * n_t} "
                            f"(horizon {horizon} x targets {n_t})")
            continue
        if host is None:
            problems.append(f"result k={res.k} names no test window of this run")
            continue
        y = np.asarray(res.y, dtype=np.float64).reshape(horizon, n_t)
        board_bands = _board_bands(res, ref, horizon, n_t)
        for s in range(horizon):
            for j, name in enumerate(ref.targets):
                err = abs(float(y[s, j]) - float(host[s, j]))
                ok = bool(np.isfinite(err) and err <= tol_arr[j])
                bands = {}
                for level, (lo, hi) in board_bands.items():
                    half = float(ref.bands[level][s, j])
                    h_lo, h_hi = float(host[s, j]) - half, float(host[s, j]) + half
                    # the board's bounds are its forecast -/+ the same constants: held to the forecast's tolerance
                    ok = ok and bool(abs(lo[s, j] - h_lo) <= tol_arr[j] and abs(hi[s, j] - h_hi) <= tol_arr[j])
                    bands[level] = {"board": [float(lo[s, j]), float(hi[s, j])], "host": [h_lo, h_hi]}
                rows.append(Row(idx, res.k, s, name, float(y[s, j]), float(host[s, j]), err, ok, bands))
    ks = {res.k for _, _, res in items if res.k >= 0}
    n_embedded = len(emb.indices) if emb is not None else len(ref.embedded)
    if n_embedded and ks:
        missing = [k for k in range(n_embedded) if k not in ks]
        if missing:
            problems.append(f"no result for embedded window(s) k={', '.join(map(str, missing))}")
    answered = [(idx, np.asarray(res.y, dtype=np.float64).reshape(horizon, n_t)) for idx, host, res in items
                if idx is not None and host is not None and len(res.y) == horizon * n_t]
    return _finish(rows, tol, us, problems, quality=judge_quality(answered, ref))


def _board_bands(res: Result, ref: Reference, horizon: int, n_t: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The bands a result carries at levels the host also has, as (horizon, targets) lower and upper bounds."""
    out = {}
    for level, lo, hi in getattr(res, "bands", ()) or ():
        hw = ref.bands.get(level)
        if hw is None or hw.shape != (horizon, n_t) or len(lo) != horizon * n_t or len(hi) != horizon * n_t:
            continue
        out[level] = (np.asarray(lo, dtype=np.float64).reshape(horizon, n_t),
                      np.asarray(hi, dtype=np.float64).reshape(horizon, n_t))
    return out


def judge_quality(answered: Sequence[tuple[int, np.ndarray]], ref: Reference) -> dict:
    """Is what the board forecasts good? Its error against the actual values of the windows it answered,
    beside the host model's and the last value's on the same windows, and whether it answers one constant.

    ``answered``: (test window index, board forecast (horizon, targets) in data units). The verdict is
    "good", "constant" (one value for every window while the actuals move), "worse than last value", or
    "unknown" (no actual values in this export, or no answered window).
    """
    have = [(i, y) for i, y in answered if ref.y_true is not None and 0 <= i < len(ref.y_true)]
    if not have:
        why = ("this export keeps no actual values for its test windows (export again to judge the forecasts)"
               if ref.y_true is None else "no answered window has an actual value")
        return {"verdict": "unknown", "windows": 0, "summary": f"The board's forecasts could not be judged: {why}."}
    idx = np.array([i for i, _ in have])
    board = np.stack([y for _, y in have])
    truth = ref.y_true[idx]
    host = np.stack([ref.host_units(int(i)) for i in idx])

    def mae(y: np.ndarray | None) -> float | None:
        if y is None:
            return None
        ok = np.isfinite(truth) & np.isfinite(y)
        return float(np.abs(y - truth)[ok].mean()) if ok.any() else None

    last = ref.y_last[idx] if ref.y_last is not None and len(ref.y_last) > int(idx.max()) else None
    out = {"windows": int(len(idx)), "board_mae": mae(board), "host_mae": mae(host), "last_value_mae": mae(last)}
    moving = len(idx) >= 2 and bool(np.any(np.ptp(truth, axis=0) > 0))
    constant = moving and bool(np.all(np.ptp(board, axis=0) <= 1e-9 * np.maximum(1.0, np.abs(board).max(axis=0))))
    b, h, lv = out["board_mae"], out["host_mae"], out["last_value_mae"]
    n = f"{len(idx)} window{'s' if len(idx) != 1 else ''}"
    fmt = lambda v: "n/a" if v is None else f"{v:.4g}"
    beside = f" (host model {fmt(h)}, last value {fmt(lv)})"
    if b is None or not np.all(np.isfinite(board)):
        out["verdict"] = "worse than last value"
        out["summary"] = f"The board's forecasts are WRONG: it answered NaN or infinite values on {n}."
    elif constant:
        out["verdict"] = "constant"
        out["summary"] = (f"The board's forecasts are WRONG: it answers {board.reshape(len(idx), -1)[0, 0]:.6g} for every "
                          f"one of {n} while the actual values change; MAE {fmt(b)}{beside}.")
    elif lv is not None and b > lv:
        out["verdict"] = "worse than last value"
        out["summary"] = (f"The board's forecasts are worse than repeating the last value on {n}: MAE {fmt(b)} "
                          f"against the actual values{beside}.")
        if h is not None and h > lv:
            out["summary"] += " The trained model itself loses to the last value on these windows."
    else:
        out["verdict"] = "good"
        out["summary"] = f"The board's forecasts are good on {n}: MAE {fmt(b)} against the actual values{beside}."
    return out


# --- Edge Impulse static-buffer output -----------------------------------------------------------------

@dataclass(frozen=True)
class EiReading:
    """One run of the static-buffer example: its timing (if printed) and its predictions by label."""
    timing: EiTiming | None
    values: dict[str, float]


def ei_readings(records: Iterable[Record]) -> list[EiReading]:
    """Group parsed lines into readings: a Timing line, a Predictions header and the label lines under it."""
    out: list[EiReading] = []
    timing: EiTiming | None = None
    values: dict[str, float] = {}
    in_block = False

    def flush() -> None:
        nonlocal values, in_block
        if values:
            out.append(EiReading(timing, dict(values)))
        values = {}
        in_block = False

    for rec in records:
        if isinstance(rec, EiTiming):
            flush()
            timing = rec
            in_block = True  # the old header form carries the timing and opens the block itself
        elif isinstance(rec, EiPredictionsHeader):
            if values:
                flush()
            in_block = True
        elif isinstance(rec, EiPrediction):
            if values and (not in_block or rec.label in values):
                flush()  # a label seen again is the next run of the loop, even without a header between
            values[rec.label] = rec.value
            in_block = True
        elif isinstance(rec, Other) and not rec.text.strip():
            continue
        else:
            if values:
                flush()
                timing = None
    flush()
    return out


def compare_ei(readings: Sequence[EiReading], ref: Reference, label: str | None = None) -> Comparison:
    """Edge Impulse values (scaled, as the model outputs them) back in data units, matched to the nearest window
    the sketch can hold. A value near none of them is kept in the table, flagged, and makes the verdict disagree."""
    target = ref.targets[0]
    tol_arr = ref.tolerance(ref.ei_dtype or ref.dtype)
    if (ref.ei_dtype or ref.dtype) == "int8" and ref.ei_out_step is not None:
        # Edge Impulse's int8 library adds the last value inside its graph: its output step is a level's.
        tol_arr = ref.ei_out_step * float(CFG["int8_steps"]) + np.abs(ref.scale) * CFG["tolerance_floor"]["float32"]
    # The sketch prints 5 decimals of the scaled value; allow for that rounding on top of the board's own error.
    tol_t = float(max(tol_arr[0], 1e-5 * abs(ref.scale[0])))
    # The sketch (or the emulator's replay) holds the bundle's windows; without that list, any test window.
    emb = None if ref.ei_windows else ref.embedded_for(ref.dtype)
    candidates = list(ref.ei_windows) or (list(emb.indices) if emb is not None else list(range(ref.n_windows)))
    rows: list[Row] = []
    problems: list[str] = []
    us: list[float] = []
    answered: list[tuple[int, np.ndarray]] = []
    for n, reading in enumerate(readings):
        if not reading.values:
            continue
        key = label if label in reading.values else ("value" if "value" in reading.values else next(iter(reading.values)))
        raw = reading.values[key]
        if reading.timing is not None:
            us.append(reading.timing.inference_ms * 1000.0)
        best: tuple[float, int, float, float] | None = None
        for idx in candidates:
            if not 0 <= idx < ref.n_windows:
                continue
            scaled = raw
            if ref.ei_output_is_delta:
                ti = ref.target_input_index[0] if ref.target_input_index else None
                if ti is not None:
                    scaled = raw + float(ref.X[idx, -1, ti])
            board_units = scaled * float(ref.scale[0]) + float(ref.center[0])
            host = float(ref.host_units(idx)[0, 0])
            err = abs(board_units - host)
            if best is None or err < best[0]:
                best = (err, idx, board_units, host)
        if best is None:
            problems.append("the run has no test windows to match Edge Impulse values against")
            break
        err, idx, board_units, host = best
        # For the quality question the sketch's own order says which window a reading is (it runs its
        # windows in turn); nearest-match would flatter a board that answers nonsense.
        order = list(ref.ei_windows) or (list(emb.indices) if emb is not None else [])
        truth_idx = order[n % len(order)] if order else idx
        own = raw
        if ref.ei_output_is_delta and ref.target_input_index and ref.target_input_index[0] is not None \
                and 0 <= truth_idx < ref.n_windows:
            own = raw + float(ref.X[truth_idx, -1, ref.target_input_index[0]])
        answered.append((truth_idx, np.array([[own * float(ref.scale[0]) + float(ref.center[0])]])))
        ok = err <= tol_t
        if ok:
            rows.append(Row(idx, n, 0, target, board_units, host, err, True))
        else:
            rows.append(Row(None, n, 0, target, board_units, None, None, False))
            problems.append(f"Edge Impulse value {raw:g} ({board_units:.6g} in data units) matches no test window: "
                            f"the nearest host forecast is {host:.6g} (window {idx}), off by {err:.3g}")
    return _finish(rows, {target: tol_t}, us, problems, quality=judge_quality(answered, ref))


def parse_transcript(text: str) -> list[Record]:
    """Records from a pasted serial-monitor transcript (any line endings)."""
    return [parse_line(line) for line in text.splitlines() if line.strip()]


def check_ready_against(ready: Ready, ref: Reference | None) -> str | None:
    """A one-line note when the board's ready line differs from the export, for places that show rather than raise."""
    if ref is None:
        return None
    err = mismatch_error(ready, ref.expected)
    return None if err is None else str(err)

