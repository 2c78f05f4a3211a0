"""Every forecaster of an export (host model, exported models, baselines) scored against the actual
values of the test windows, and the bundle's model chosen on that score."""
from __future__ import annotations

from typing import Any

import numpy as np

from core import display
from core.config import DEFAULTS


def fmt(v: Any) -> str:
    """A score as every table says it (core.display): "13,650", not "1.365e+04"; "—" where there is none."""
    return display.readable(v)


FORECASTER_LABELS = {"host": "trained model (host)", "float32": "float32 on TFLM", "int8": "int8 on TFLM",
                     "last_value": "last value", "seasonal_naive": "seasonal naive", "mean": "training mean"}
BASELINE_NAMES = ("last_value", "seasonal_naive", "mean")


def _is_constant(y: np.ndarray) -> bool:
    """Every window got the same forecast (per step and target): a saturated or dead model."""
    y = np.asarray(y, dtype=np.float64)
    if len(y) < 2 or not np.all(np.isfinite(y)):
        return False
    span = np.ptp(y, axis=0)
    return bool(np.all(span <= 1e-9 * np.maximum(1.0, np.abs(y).max(axis=0))))


def score_against_truth(y_true: np.ndarray, forecasts: dict[str, np.ndarray], targets: list[str],
                        mase_scale: np.ndarray | None, windows_total: int, source: str) -> dict:
    """Each forecaster (host model, exported models, baselines) scored on the same windows with
    ``core.metrics.score``: overall, per target and per horizon step, and its margin over the best
    baseline. Forecasts and actuals are (n, horizon, n_targets) in the data's units."""
    from core.metrics import score

    key = "mae" if len(targets) == 1 else "mase"
    out: dict[str, dict] = {}
    for name, y in forecasts.items():
        y = np.asarray(y, dtype=np.float64)
        overall = score(y_true, y, mase_scale)
        out[name] = {
            **{k: overall[k] for k in ("mae", "rmse", "mase", "n")},
            "per_target": {t: score(y_true[..., j], y[..., j])["mae"] for j, t in enumerate(targets)},
            "per_step": [score(y_true[:, k], y[:, k])["mae"] for k in range(y.shape[1])],
            "finite": bool(np.all(np.isfinite(y))),
            "constant": _is_constant(y),
        }
    base = {k: out[k][key] for k in BASELINE_NAMES if k in out and out[k][key] is not None}
    best = min(base, key=base.get) if base else None
    for name, entry in out.items():
        m = entry[key]
        if best is None or m is None or name in BASELINE_NAMES:
            entry["margin_pct"] = None
        else:
            b = float(base[best])
            entry["margin_pct"] = (b - m) / b * 100.0 if b > 0 else (0.0 if m == 0 else -100.0)
        lv = out.get("last_value", {}).get(key)
        entry["beats_best_baseline"] = bool(entry["margin_pct"] is not None and entry["margin_pct"] > 0)
        entry["beats_last_value"] = bool(m is not None and lv is not None and m < lv)
    return {"compared_by": key, "best_baseline": best, "windows": int(len(y_true)),
            "windows_total": int(windows_total), "source": source, "forecasters": out}


def loses_to_best_baseline(accuracy: dict, dtype: str) -> str | None:
    """None when the exported ``dtype`` model beats the best baseline on the test windows (or nothing was scored);
    else the words: "float32's test MAE (3.844) does not beat seasonal naive's (3.2)"."""
    f = (accuracy or {}).get("forecasters") or {}
    best, e = (accuracy or {}).get("best_baseline"), f.get(dtype)
    if not best or not e or e.get("beats_best_baseline"):
        return None
    key = accuracy.get("compared_by", "mae")
    what = "MAE" if key == "mae" else "MASE"
    return (f"{dtype}'s test {what} ({fmt(e.get(key))}) does not beat {FORECASTER_LABELS.get(best, best)}'s "
            f"({fmt(f.get(best, {}).get(key))})")


def recommend_bundle(accuracy: dict, dtypes: list[str]) -> tuple[str, str]:
    """The dtype the firmware bundle ships by default, and a one-line reason.

    int8 only when its test error on TFLM is within ``int8_max_loss`` of float32's and it still beats the
    best baseline; otherwise float32, which the board can always hold when it was exported. When the one
    recommended does not beat the best baseline either, the reason says so: nothing is crowned silently.
    """
    dtype, reason = _recommend(accuracy, dtypes)
    loses = loses_to_best_baseline(accuracy, dtype)
    if loses and "neither" not in reason:
        reason += f"; but {loses}: retrain (another target form, more epochs) before shipping"
    return dtype, reason


def _recommend(accuracy: dict, dtypes: list[str]) -> tuple[str, str]:
    if "int8" not in dtypes:
        return "float32", "only float32 was exported"
    if "float32" not in dtypes:
        return "int8", "only int8 was exported"
    f = (accuracy or {}).get("forecasters") or {}
    if "int8" not in f or "float32" not in f:
        return "int8", ("this export was written before exported models were scored against the actual values; "
                        "export again to have the bundle's model chosen on its test error")
    key = accuracy.get("compared_by", "mae")
    what = "MAE" if key == "mae" else "MASE"
    i8, f32 = f["int8"].get(key), f["float32"].get(key)
    if i8 is None or not f["int8"].get("finite", True):
        return "float32", "int8 gave no usable forecasts on the test windows"
    if f["int8"].get("constant") and not f["float32"].get("constant"):
        return "float32", f"int8 answers the same forecast for every test window (saturated); float32 test {what} {fmt(f32)}"
    limit = float(DEFAULTS["export"]["int8_max_loss"])
    if f32 is not None and f32 > 0 and i8 > f32 * (1.0 + limit):
        return "float32", (f"int8's test {what} ({fmt(i8)}) is {(i8 / f32 - 1) * 100:.0f}% worse than float32's "
                           f"({fmt(f32)}); the limit is {limit:.0%}")
    best = accuracy.get("best_baseline")
    if best and not f["int8"].get("beats_best_baseline"):
        b = f.get(best, {}).get(key)
        if not f["float32"].get("beats_best_baseline"):
            return "float32", (f"neither model beats the best baseline ({FORECASTER_LABELS.get(best, best)}, test "
                               f"{what} {fmt(b)}): float32 {fmt(f32)}, int8 {fmt(i8)}; float32 stays closest to the "
                               "host, but retrain (another target form, more epochs) before shipping")
        return "float32", (f"int8's test {what} ({fmt(i8)}) does not beat the best baseline "
                           f"({FORECASTER_LABELS.get(best, best)}, {fmt(b)})")
    rel = "" if not f32 else f", {abs(i8 / f32 - 1) * 100:.1f}% {'better' if i8 <= f32 else 'worse'} than float32's {fmt(f32)}"
    return "int8", f"int8's test {what} is {fmt(i8)}{rel}, and it beats the best baseline"


def loses_to_last_value(accuracy: dict, dtype: str) -> bool:
    """True when the exported ``dtype`` model forecasts the test windows worse than repeating the last value."""
    e = ((accuracy or {}).get("forecasters") or {}).get(dtype)
    return bool(e) and "last_value" in accuracy.get("forecasters", {}) and not e.get("beats_last_value")


def accuracy_lines(accuracy: dict, targets: list[str]) -> list[str]:
    """The scores as the CLI prints them: one line per forecaster."""
    f = (accuracy or {}).get("forecasters") or {}
    if not f:
        return ["  test error: not scored (this export predates scoring against the actual values; export again)"]
    key = accuracy.get("compared_by", "mae")
    n, total = accuracy.get("windows"), accuracy.get("windows_total")
    of = f" of {total:,}" if total and total != n else ""
    lines = [f"  test {key.upper()} against the actual values ({n:,}{of} test windows, {', '.join(targets)}):"]
    for name in ("host", "float32", "int8") + BASELINE_NAMES:
        if name in f:
            e = f[name]
            margin = "" if e.get("margin_pct") is None else f"  ({e['margin_pct']:+.1f}% vs best baseline)"
            flag = "  SAME VALUE FOR EVERY WINDOW" if e.get("constant") and name in ("float32", "int8", "host") else ""
            lines.append(f"    {FORECASTER_LABELS.get(name, name):>22}: {fmt(e.get(key))}{margin}{flag}")
    return lines


