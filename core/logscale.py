"""The multiplicative (log) form of a target (issue 34, item 2): the target column, and its input column, enter the
scaler as log(value) and leave it through exp(). Everything between is additive as before, so on log values the
existing target forms become multiplicative (change_season is the log of the seasonal ratio, change_last the log
ratio to the last value) and relative inputs divide each window by its own last value.

One arithmetic for every side: the host's Scaler, the export folder's readers, the emulator and the firmware
(fs_protocol.cpp computes log/exp in double and rounds once to float, as ``log_f32``/``exp_f32`` do, so both give
the same float32 on any libm; a float logf/expf may differ in the last bit between libraries).
"""
from __future__ import annotations

import numpy as np

from core.errors import StudioError

WORDS = "multiplicative (log) target"


def mask(columns, log_columns) -> np.ndarray:
    """Bool per column: whether it is held as its log."""
    logs = set(log_columns or ())
    return np.array([c in logs for c in columns], dtype=bool)


def log_f32(x) -> np.ndarray:
    """float32 log as the firmware computes it: in double, rounded once."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(np.asarray(x, np.float32).astype(np.float64)).astype(np.float32)


def exp_f32(x) -> np.ndarray:
    """float32 exp as the firmware computes it: in double, rounded once (inf past float32's range, as on the board)."""
    with np.errstate(over="ignore"):
        return np.exp(np.asarray(x, np.float32).astype(np.float64)).astype(np.float32)


def to_units(scaled, center, scale, log) -> np.ndarray:
    """Scaled values (last axis over columns) -> the data's units, float64: the affine inverse, then exp for log columns."""
    x = np.asarray(scaled, np.float64) * np.asarray(scale, np.float64) + np.asarray(center, np.float64)
    log = np.asarray(log, bool)
    if log.any():
        with np.errstate(over="ignore"):
            x = np.where(log, np.exp(np.where(log, x, 0.0)), x)
    return x


def unit_span(center, scale, log) -> np.ndarray:
    """Per column, what one scaled unit spans in the data's units from the scaled 0 (the scale itself for a plain
    column): the size a tolerance or a band floor is a share of."""
    c, s = np.asarray(center, np.float64), np.asarray(scale, np.float64)
    return np.abs(to_units(np.ones_like(c), c, s, log) - to_units(np.zeros_like(c), c, s, log))


def check_positive(values, column: str, index=None) -> None:
    """A log column's values must all be finite and above 0; otherwise which row, and what to do."""
    v = np.asarray(values, np.float64)
    bad = np.flatnonzero(~(v > 0) | ~np.isfinite(v))
    if bad.size:
        i = int(bad[0])
        where = f"row {i + 1:,}" + (f" ({index[i]})" if index is not None and i < len(index) else "")
        more = f", and {bad.size - 1:,} more row{'s' if bad.size > 2 else ''}" if bad.size > 1 else ""
        raise StudioError(f"The {WORDS} needs every value of {column!r} above 0, and {where} holds {v[i]:g}{more}.",
                          "Untick the multiplicative (log) target (studio train --no-log-target), or fix those rows "
                          "on the Data step; a series that can reach 0 or go negative is not multiplicative.")


def keep_log(best, scored: list, z: float = 1.0):
    """The search's winner, except that an additive control beats the multiplicative (log) form of its own form and
    window only by more than ``z`` standard errors of its validation lead (``margin_se``): the log form was tried
    because the season grows with the level (``core.defaults.choose_log``), and a control that wins inside the
    noise has not shown otherwise (Airline h=12: additive change from last season 14.05 against its log form's 14.60
    on 22 validation points, standard error 4.4; test MAE 29.1 additive, 25.2 log). ``best`` and ``scored``: the
    search's Trials."""
    if best is None or best.log or best.margin_se is None:
        return best
    rival = [t for t in scored if t.log and (t.target_form, t.window, getattr(t, "smooth", False))
             == (best.target_form, best.window, getattr(best, "smooth", False))]
    return rival[0] if rival and not rival[0].score > best.score + z * best.margin_se else best
