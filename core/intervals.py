"""Calibrated prediction intervals: split-conformal bands from the validation part's absolute errors.

For each target and horizon step the band half-width at level L is the k-th smallest validation error
|actual - forecast|, k = ceil((n + 1) * L / 100) over the n validation windows (the finite-sample
correction): under exchangeability a new forecast then lands inside [forecast - w, forecast + w] with
probability at least L%. It needs no likelihood, so it holds for every model kind, both backends and
residual models alike. Coverage is then *measured* on the test part, which calibration never saw.

Everything here works in the targets' own units on arrays the run already has (the validation and test
predictions made while scoring), so intervals cost a sort of n_val numbers per step and target.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from core.config import DEFAULTS
from core.errors import StudioError

FILE = "intervals.json"
METHOD = "split-conformal (absolute validation errors, finite-sample corrected quantile)"


# The levels a band may have: enough calibration windows for them is a few hundred at most (99.9% needs
# 999), and two decimals is finer than any validation part can tell apart.
LEVEL_MIN, LEVEL_MAX, LEVEL_DECIMALS = 1.0, 99.9, 2
LEVEL_RANGE = f"between {LEVEL_MIN:g} and {LEVEL_MAX:g} percent, with at most {LEVEL_DECIMALS} decimals"


def _level_error(problem: str) -> StudioError:
    return StudioError(problem, f"Give levels {LEVEL_RANGE}, separated by commas: for example 80,95.")


def parse_levels(text: str) -> list[str]:
    """"80, 95", "80;95", "80 95" -> ["80", "95"]; an empty entry between separators is a mistake, not nothing."""
    pieces = str(text).replace(";", ",").split(",")
    if len(pieces) > 1 and any(not p.strip() for p in pieces):
        raise _level_error(f"The levels {text!r} have an empty entry between commas.")
    return [t for p in pieces for t in p.split()]


def check_levels(levels: Any) -> tuple[float, ...]:
    """Levels as percentages in [LEVEL_MIN, LEVEL_MAX] with at most LEVEL_DECIMALS decimals, sorted and
    without repeats; StudioError otherwise. ``levels`` is a sequence, or the text a user typed."""
    if isinstance(levels, str):
        levels = parse_levels(levels)
    out = []
    for raw in levels:
        try:
            level = float(raw)
        except (TypeError, ValueError, OverflowError):
            raise _level_error(f"The interval level {str(raw)[:40]!r} is not a number.") from None
        if not math.isfinite(level) or level < LEVEL_MIN or level > LEVEL_MAX:
            raise _level_error(f"An interval level of {str(raw)[:40]}% is not accepted: a band holds more than 0% "
                               f"and less than 100% of the values, and the studio calibrates {LEVEL_RANGE}.")
        scaled = level * 10 ** LEVEL_DECIMALS
        if abs(scaled - round(scaled)) > 1e-6:
            raise _level_error(f"The interval level {str(raw)[:40]}% has more than {LEVEL_DECIMALS} decimals.")
        out.append(round(level, LEVEL_DECIMALS))
    if not out:
        raise _level_error("No interval level was given.")
    return tuple(sorted(set(out)))


def level_key(level: float) -> str:
    """80.0 -> "80", 97.5 -> "97.5": the level's name in JSON, columns and the protocol."""
    return f"{float(level):g}"


def rank(n: int, level: float) -> int:
    """The finite-sample corrected rank ceil((n + 1) * level / 100); above n the level is out of reach."""
    # A hair under the exact product, so 0.8 * 5 = 4.000000000000001 does not round up to 5.
    return int(math.ceil((n + 1) * float(level) / 100.0 - 1e-9))


def windows_needed(level: float) -> int:
    """Fewest calibration windows for which the corrected rank stays within them, in closed form.

    rank(n) <= n  <=>  (n + 1) p - 1e-9 <= n  <=>  n >= (p - 1e-9) / (1 - p), p = level / 100; the two
    steps after it only absorb floating-point rounding. A level outside (0, 100) needs more windows than
    any data has (refused by ``check_levels`` before it gets here).
    """
    p = float(level) / 100.0
    if not (0.0 < p < 1.0) or not math.isfinite(p):
        return 2 ** 62
    n = max(1, math.ceil((p - 1e-9) / (1.0 - p)) - 1)
    for _ in range(3):
        if rank(n, level) <= n:
            return n
        n += 1
    return n


def calibrate(errors: np.ndarray, levels: Sequence[float]) -> tuple[dict[str, np.ndarray], list[dict], list[str]]:
    """Half-widths per level from absolute errors (n, horizon, targets), NaN pairs left out.

    Returns (level key -> (horizon, targets) half-widths, levels left out with why, warnings).
    """
    err = np.abs(np.asarray(errors, dtype=np.float64))
    if err.ndim != 3:
        raise ValueError(f"errors must be (n, horizon, targets), got {err.shape}")
    finite = np.isfinite(err)
    counts = finite.sum(axis=0)  # (horizon, targets)
    n_min = int(counts.min()) if counts.size else 0
    warnings: list[str] = []
    dropped = int(err.shape[0] * err.shape[1] * err.shape[2] - finite.sum())
    if dropped and n_min:
        warnings.append(f"{dropped:,} validation forecasts or actuals were not numbers (NaN) and were left out "
                        "of the calibration.")
    # NaN sorts last, so the k-th smallest of each column is among its finite errors while k <= its count.
    ordered = np.sort(err, axis=0)
    bands: dict[str, np.ndarray] = {}
    skipped: list[dict] = []
    for level in levels:
        need = windows_needed(level)
        if n_min < need:
            skipped.append({"level": float(level), "needs": need, "have": n_min,
                            "reason": f"a {level_key(level)}% band needs at least {need} validation windows "
                                      f"with a finite forecast; there are {n_min}"})
            continue
        k = np.vectorize(lambda c: rank(int(c), level))(counts).astype(np.int64)  # (horizon, targets)
        hw = np.take_along_axis(ordered, (k - 1)[None], axis=0)[0]
        bands[level_key(level)] = hw
    if n_min and bands:
        spread = np.nanmax(err, axis=0) - np.nanmin(err, axis=0)
        if np.all(spread == 0):
            warnings.append("Every validation error is the same, so the bands have a fixed width that says "
                            "little about how sure the forecast is (a constant or perfectly predicted series?).")
    return bands, skipped, warnings


def coverage(actual: np.ndarray, pred: np.ndarray, half_width: np.ndarray) -> tuple[np.ndarray, float, int]:
    """Share (%) of finite actuals inside pred ± half_width, per (step, target) and overall; and the count."""
    a = np.asarray(actual, dtype=np.float64)
    p = np.asarray(pred, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(p)
    inside = ok & (np.abs(a - p) <= np.asarray(half_width, dtype=np.float64)[None])
    n_cell = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        per = 100.0 * inside.sum(axis=0) / n_cell
    total = int(ok.sum())
    overall = 100.0 * float(inside.sum()) / total if total else float("nan")
    return per, overall, total


def build(val_actual: np.ndarray, val_pred: np.ndarray, test_actual: np.ndarray | None,
          test_pred: np.ndarray | None, targets: Sequence[str], levels: Sequence[Any] | None = None) -> dict:
    """The intervals record (intervals.json): half-widths per level, step and target, with test coverage.

    All arrays (n, horizon, targets) in the targets' units. A level the validation part is too short for
    is left out and named in ``skipped`` with the windows it needs; ``levels`` are the ones kept.
    """
    asked = check_levels(levels if levels is not None else DEFAULTS["intervals"]["levels"])
    va, vp = np.asarray(val_actual, dtype=np.float64), np.asarray(val_pred, dtype=np.float64)
    if va.shape != vp.shape or va.ndim != 3:
        raise ValueError(f"validation actuals {va.shape} and forecasts {vp.shape} must be equal (n, horizon, targets)")
    horizon, n_t = va.shape[1], va.shape[2]
    bands, skipped, warnings = calibrate(va - vp, asked)
    if len(va) and np.isfinite(vp).sum() == 0:
        warnings.append("Every validation forecast is NaN: the model gives no usable forecasts, so no band "
                        "can be calibrated. Train again (a lower learning rate, or check the data for gaps).")
    record: dict = {
        "method": METHOD, "calibration_part": "val", "n_calibration": int(len(va)),
        "levels_asked": [float(v) for v in asked], "levels": [float(v) for v in asked if level_key(v) in bands],
        "targets": [str(t) for t in targets], "horizon": int(horizon), "bands": {}, "skipped": skipped,
        "warnings": warnings,
    }
    have_test = test_actual is not None and test_pred is not None and len(test_actual)
    for level in record["levels"]:
        key = level_key(level)
        hw = bands[key]
        entry: dict = {"level": float(level), "half_width": hw.tolist(),
                       "mean_width": (2.0 * hw.mean(axis=0)).tolist(),  # per target, over the steps
                       "width_per_step": (2.0 * hw).tolist()}
        if have_test:
            per, overall, total = coverage(test_actual, test_pred, hw)
            by_target = [coverage(test_actual[..., j:j + 1], test_pred[..., j:j + 1], hw[:, j:j + 1])[1]
                         for j in range(n_t)]
            entry.update({"coverage_per_step": per.tolist(), "coverage": overall, "coverage_per_target": by_target,
                          "n_test": total})
        record["bands"][key] = entry
    if len(record["levels"]) < len(asked) and skipped:
        n = record["n_calibration"]
        kept = ", ".join(f"{level_key(v)}%" for v in record["levels"]) or "none"
        warnings.append(f"The validation part has {n} window(s): " + "; ".join(s["reason"] for s in skipped)
                        + f". Bands kept: {kept}. Give the validation part more rows on the Features page.")
    return record


def from_windows(windows: Any, y_val_scaled: np.ndarray | None, y_test_scaled: np.ndarray | None,
                 levels: Sequence[Any] | None = None) -> dict:
    """``build`` on a run's windows and its scaled validation and test predictions."""
    spec = windows.spec
    targets = list(spec.targets)
    shape = (-1, int(spec.horizon), len(targets))

    def units(y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64).reshape(shape)
        flat = np.asarray(windows.scaler.inverse(y.reshape(-1, len(targets)), targets), dtype=np.float64)
        return flat.reshape(y.shape)

    if y_val_scaled is None or not windows.count("val"):
        va = vp = np.zeros((0, spec.horizon, len(targets)))
    else:
        va, vp = units(windows.y("val")), units(y_val_scaled)
    ta = tp = None
    if y_test_scaled is not None and windows.count("test"):
        ta, tp = units(windows.y("test")), units(y_test_scaled)
    record = build(va, vp, ta, tp, targets, levels)
    from core.adaptive import adaptive_record
    from core.alarms import inside_runs, longest_run

    # The targets' scale in data units (the scaler is affine): the adaptive band's floor is a share of it.
    one = units(np.ones((1,) + shape[1:])) - units(np.zeros((1,) + shape[1:]))
    record["adaptive"] = adaptive_record(record, ta, tp, one[0, 0])
    lo, hi = windows.parts["train"]
    record["longest_run"] = longest_run(np.asarray(windows.target_values[lo:hi]))
    # The longest run strictly inside the training range, and that range in data units (the stuck rule's two limits).
    inside, ranges = inside_runs(np.asarray(windows.target_values[lo:hi]))
    bounds = units(np.array([[r[0] for r in ranges], [r[1] for r in ranges]]).repeat(shape[1], axis=0))[:, 0]
    record["stuck_inside"] = inside
    record["stuck_range"] = [[float(bounds[0, t]), float(bounds[1, t])] for t in range(len(targets))]
    record["drift"] = drift_record(record, va, vp)
    return record


def drift_record(record: dict, val_actual: np.ndarray, val_pred: np.ndarray) -> dict:
    """intervals.json's "drift": the board's drift scale per target calibrated on the validation stream's one-step
    errors (core.alarms.drift_calibrate, with DEFAULTS' allowance, threshold and rate); {} without bands."""
    from core.alarms import drift_calibrate, drift_scale

    horizon, n_t = int(record.get("horizon") or 0), len(record.get("targets") or [])
    bands = half_widths(record, horizon, n_t)
    levels = sorted(bands, key=float)
    if not levels or not len(val_actual):
        return {}
    cfg = DEFAULTS["alarms"]
    base = drift_scale(tuple(levels), np.stack([bands[k] for k in levels]).astype(np.float32))
    return drift_calibrate(np.asarray(val_actual)[:, 0, :], np.asarray(val_pred)[:, 0, :], base, cfg["drift_k"],
                           cfg["drift_h"], float(cfg.get("drift_rate", 10.0)))


def half_widths(intervals: dict | None, horizon: int, n_targets: int) -> dict[str, np.ndarray]:
    """Level key -> (horizon, targets) float64 half-widths from an intervals record; {} for an old run."""
    out: dict[str, np.ndarray] = {}
    for key, entry in ((intervals or {}).get("bands") or {}).items():
        hw = np.asarray(entry.get("half_width"), dtype=np.float64)
        if hw.shape == (horizon, n_targets):
            out[str(key)] = hw
    return out


def too_narrow(intervals: dict | None) -> list[tuple[str, str, float, float]]:
    """(level key, target, level, test coverage) of every band whose test coverage falls more than
    ``DEFAULTS["intervals"]["under_cover_points"]`` points under its level."""
    gap = float(DEFAULTS["intervals"].get("under_cover_points", 10.0))
    out = []
    targets = (intervals or {}).get("targets") or []
    for key, entry in ((intervals or {}).get("bands") or {}).items():
        level = float(entry.get("level", key))
        per_target = entry.get("coverage_per_target") or []
        for j, t in enumerate(targets):
            cov = per_target[j] if j < len(per_target) else entry.get("coverage")
            if isinstance(cov, (int, float)) and math.isfinite(cov) and cov < level - gap:
                out.append((str(key), str(t), level, float(cov)))
    return out


def under_cover_lines(intervals: dict | None) -> list[str]:
    """One warning per band that holds far fewer test values than its level says: why, and what to do."""
    out = []
    multi = len((intervals or {}).get("targets") or []) > 1
    for key, t, level, cov in too_narrow(intervals):
        who = f" for {t}" if multi else ""
        out.append(f"The {key}% band{who} is too narrow: only {cov:.1f}% of the test values fall inside it, "
                   f"{level - cov:.0f} points under its level. The forecast errors on the test part grew past what the "
                   "validation part saw (a trend, or a seasonal swing that grows with the level, does this), so the "
                   "band understates the uncertainty. Do not rely on it: move the split so validation is more like "
                   "the newest data (a larger validation share on the Features step), or forecast a change (the "
                   "Model step's target form), and train again.")
    return out


def summary_lines(intervals: dict | None, warnings: bool = True) -> list[str]:
    """Plain sentences, one per level and target: "80% band: 79.4% of test values inside, mean width 1.3 (temp)";
    a band too narrow for its level says so there, and (``warnings``) in a warning of its own after them."""
    if not intervals:
        return []
    lines = []
    targets = intervals.get("targets") or []
    narrow = {(k, t) for k, t, _, _ in too_narrow(intervals)}
    for key, entry in (intervals.get("bands") or {}).items():
        widths = entry.get("mean_width") or []
        per_target = entry.get("coverage_per_target") or []
        for j, t in enumerate(targets):
            cov = per_target[j] if j < len(per_target) else entry.get("coverage")
            inside = (f"{cov:.1f}% of test values inside" if isinstance(cov, (int, float)) and math.isfinite(cov)
                      else "no test values to check it on")
            if (str(key), str(t)) in narrow:
                inside += " (too narrow)"
            width = f", mean width {widths[j]:.3g} ({t})" if j < len(widths) and widths[j] is not None else ""
            who = "" if len(targets) == 1 else f"{t}: "
            adaptive = ((intervals.get("adaptive") or {}).get("levels") or {}).get(str(key)) or {}
            a_cov = (adaptive.get("coverage_per_target") or [None] * (j + 1))[j] if adaptive else None
            if isinstance(a_cov, (int, float)) and math.isfinite(a_cov):
                inside += f"; adaptive on the board, walking forward: {a_cov:.1f}%"
            lines.append(f"{who}{key}% band: {inside}{width}")
    if warnings:
        lines.extend(str(w) for w in intervals.get("warnings") or [])
        lines.extend(under_cover_lines(intervals))
    return lines


def for_export(folder: Any, run_dir: Any = None) -> dict:
    """The intervals record that goes with an export (a ``core.export.folder.ExportFolder``):
    ``intervals.json`` in the run it was made from (the ``run_dir`` given, else the report's), else one beside
    the export. {} when there is none (an older run)."""
    import json
    from pathlib import Path

    candidates = [Path(run_dir)] if run_dir is not None else []
    if folder.run_dir is not None:
        candidates.append(Path(folder.run_dir))
    candidates.append(Path(folder.path))
    for where in candidates:
        path = where / FILE
        if not path.is_file() or path.stat().st_size > 16 * 1024 * 1024:  # a band record is a few KB
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise StudioError(f"{path} is not readable JSON.", "Train the model again to write fresh intervals.") from None
        if isinstance(data, dict):
            return data
    return {}


def coverage_table(intervals: dict | None):
    """One row per (target, step, level): nominal level, measured test coverage (%) and band width, in the
    targets' units; an empty frame for a run without bands."""
    import pandas as pd

    rows = []
    targets = (intervals or {}).get("targets") or []
    for key, entry in ((intervals or {}).get("bands") or {}).items():
        widths = entry.get("width_per_step") or []
        cover = entry.get("coverage_per_step") or []
        for s, row in enumerate(widths):
            for j, t in enumerate(targets):
                cov = cover[s][j] if s < len(cover) and j < len(cover[s]) else None
                rows.append({"target": t, "step": s + 1, "level %": float(entry.get("level", key)),
                             "test values inside %": cov, "band width": row[j] if j < len(row) else None})
    return pd.DataFrame(rows, columns=["target", "step", "level %", "test values inside %", "band width"])
