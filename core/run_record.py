"""What a run records from the windows it was trained on: metrics.json (the test part against the baselines
and the statistical references) and samples.npz (calibration windows, and the whole test part with its
actuals, host and baseline forecasts, so export and firmware need no dataset)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.config import DEFAULTS

# 2: run.json carries its own checksum. A format-1 run (written before) opens without one, as it always did.


def spread(n: int, k: int) -> np.ndarray:
    """Up to k indices evenly spread over range(n), first and last included."""
    if n <= k:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))


def times_to_array(times: Any) -> tuple[np.ndarray, dict]:
    """Origin times as int64 (ns since the epoch, UTC, or row steps) and how to read them back."""
    idx = pd.Index(times)
    if isinstance(idx, pd.DatetimeIndex):
        tz = str(idx.tz) if idx.tz is not None else None
        if tz is not None:
            idx = idx.tz_convert("UTC").tz_localize(None)
        return idx.as_unit("ns").asi8.astype(np.int64), {"axis": "datetime64[ns]", "tz": tz}
    return np.asarray(idx, dtype=np.int64), {"axis": "step", "tz": None}


def dataset_info(windows: Any, dataset: Any) -> dict:
    """Where the windows came from; the Dataset itself when given, else what Windows remembers of it."""
    index = windows.index
    freq = getattr(dataset, "freq", None) or getattr(windows, "freq", None)
    if freq is None and isinstance(index, pd.DatetimeIndex) and len(index) > 2:
        freq = pd.infer_freq(index[: min(len(index), 1000)])
    time_col = getattr(dataset, "time_col", None)
    if time_col is None and isinstance(index, pd.DatetimeIndex) and index.name:
        time_col = str(index.name)
    return {"name": getattr(dataset, "name", None) or getattr(windows, "dataset_name", "") or "dataset",
            "fingerprint": getattr(dataset, "fingerprint", None) or getattr(windows, "dataset_fingerprint", "") or "",
            "freq": freq, "time_col": time_col, "rows": int(len(index)),
            # which steps exist when the series is observed in working hours / on trading days only
            "calendar": getattr(dataset, "calendar", None) or getattr(windows, "calendar", None)}


def build_metrics(windows: Any, y_test_scaled: np.ndarray, y_val_scaled: np.ndarray | None = None,
                  references: bool = True) -> dict:
    """SPEC's metrics.json: the test split in the targets' units, model vs baselines.

    ``evaluate``'s own fields are kept (``best_baseline``, ``improvement_pct``, ``verdict``);
    ``baselines["naive"]`` is the last-value forecast under the name SPEC uses.
    """
    from core.metrics import evaluate
    from core.windows import SPLIT_RULE

    out = dict(evaluate(windows, y_test_scaled, "test"))
    out["baselines"] = dict(out["baselines"])
    if "last_value" in out["baselines"]:
        out["baselines"]["naive"] = out["baselines"]["last_value"]
    out["split"] = "test"
    out["split_rule"] = SPLIT_RULE
    out["n_windows"] = int(windows.count("test"))
    if y_val_scaled is not None and len(y_val_scaled):
        val = evaluate(windows, y_val_scaled, "val")
        out["validation"] = {k: val[k] for k in ("model", "baselines", "best_baseline", "improvement_pct", "verdict",
                                                 "points", "weak") if k in val}
        out["validation"]["n_windows"] = int(windows.count("val"))
    if references:
        out.update(reference_metrics(windows, "test", out))
    return out


def reference_metrics(windows: Any, part: str, result: dict) -> dict:
    """``references`` (name -> scores, as ``baselines``), ``references_info`` (what was fitted, on how many
    rows, how long it took, or why it is missing) and ``references_note`` (one sentence): the statistical
    references (core.references: ETS and Theta from statsmodels) on the same ``part`` points as the model.
    They are beside the naive baselines, not among them: the verdict stays against the naive forecasts."""
    from core import references as refs
    from core.metrics import series_units, naive_scale, score

    if not DEFAULTS["references"].get("enabled", True) or windows.count(part) == 0:
        return {}
    got = refs.references(windows, part)
    spec = windows.spec
    actual = np.asarray(windows.scaler.inverse(np.asarray(windows.y(part), dtype=np.float64), spec.targets))
    lo, hi = windows.parts["train"]
    scale = naive_scale(series_units(windows)[lo:hi])
    scores = {name: score(actual, f, scale) for name, f in got["forecasts"].items()}
    key = str(result.get("compared_by") or "mae")
    model = (result.get("model") or {}).get(key)
    parts = []
    for name, info in got["info"].items():
        label = info["label"]
        if name not in scores:
            parts.append(f"{label}: not available ({info['unavailable']})")
            continue
        ref = scores[name].get(key)
        if model is None or ref is None or not np.isfinite(ref):
            continue
        rel = (model - ref) / ref * 100.0 if ref > 0 else 0.0
        notes = sorted({t["note"] for t in info.get("targets", []) if t.get("note")})
        parts.append(f"{label} {key.upper()} {ref:.4g} ({info['seconds']:.1f} s): the model is "
                     f"{abs(rel):.0f}% {'worse' if rel > 0 else 'better'}" + (f"; {notes[0]}" if notes else ""))
    note = ("Statistical references fitted on the training part, forecasting the same test points: "
            + "; ".join(parts) + ".") if parts else None
    return {"references": scores, "references_info": {**got["info"], "periods": got.get("periods")},
            "references_note": note}


def samples_of(windows: Any, y_test_scaled: np.ndarray) -> tuple[dict[str, np.ndarray], dict]:
    """Calibration and replay windows, evenly spread over their parts, with their origin times; and the
    whole test part, so an exported model is scored on every test window the host model was.

    The whole test part is kept as its input rows (``test_rows``) and each window's first row in them
    (``test_starts``): windows overlap, so the rows are ``window`` times smaller than the windows. Beside
    them the actuals, the host's forecasts and the baselines' forecasts of every test window, so export
    scores with the very numbers ``metrics.json`` was made from (``score_*`` keys).
    """
    rep = spread(windows.count("train"), int(DEFAULTS["train"]["rep_windows"]))
    val = spread(windows.count("val"), int(DEFAULTS["train"]["val_windows"]))
    test = spread(windows.count("test"), int(DEFAULTS["train"]["test_windows"]))
    t_rep, axis = times_to_array(pd.Index(windows.origin_times("train"))[rep])
    t_test, _ = times_to_array(pd.Index(windows.origin_times("test"))[test])
    samples = {
        "X_rep": np.ascontiguousarray(windows.X("train")[rep], dtype=np.float32),
        "X_val": np.ascontiguousarray(windows.X("val")[val], dtype=np.float32),
        "X_test": np.ascontiguousarray(windows.X("test")[test], dtype=np.float32),
        "y_test": np.ascontiguousarray(windows.y("test")[test], dtype=np.float32),
        "y_host": np.ascontiguousarray(np.asarray(y_test_scaled)[test], dtype=np.float32),
        "t_rep": t_rep,
        "t_test": t_test,
    }
    if windows.count("test"):
        from core.metrics import baselines

        base = baselines(windows, "test")
        # The sample windows' baseline forecasts (data units): what the Device step judges a board against.
        samples.update({f"base_{k}": np.ascontiguousarray(v[test], dtype=np.float32) for k, v in base.items()})
        samples.update(test_part(windows, y_test_scaled, base))
    return samples, axis


def test_part(windows: Any, y_test_scaled: np.ndarray, base: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every test window (up to ``score_windows``, evenly spread beyond that) in compact form."""
    from core.metrics import naive_scale

    n = int(windows.count("test"))
    pick = spread(n, int(DEFAULTS["train"]["score_windows"]))
    starts = np.asarray(windows.starts("test"), dtype=np.int64)[pick]
    first, last = int(starts[0]), int(starts[-1]) + int(windows.spec.window)
    targets = list(windows.spec.targets)
    lo, hi = windows.parts["train"]
    train_units = windows.scaler.inverse(np.asarray(windows.target_values[lo:hi], dtype=np.float64), targets)
    return {
        "test_rows": np.ascontiguousarray(windows.inputs[first:last], dtype=np.float32),
        "test_starts": starts - first,
        "score_y_true": np.ascontiguousarray(windows.y_data_units("test")[pick], dtype=np.float64),
        "score_y_host": np.ascontiguousarray(
            windows.scaler.inverse(np.asarray(y_test_scaled, dtype=np.float64)[pick], targets), dtype=np.float64),
        **{f"score_base_{k}": np.ascontiguousarray(v[pick], dtype=np.float64) for k, v in base.items()},
        "score_mase_scale": np.asarray(naive_scale(train_units), dtype=np.float64),
        "score_total": np.asarray(n, dtype=np.int64),
    }


def test_windows_of(samples: dict[str, np.ndarray]) -> np.ndarray | None:
    """(n, window, n_inputs) view of every kept test window (``test_part``), or None for an older run."""
    rows, starts = samples.get("test_rows"), samples.get("test_starts")
    if rows is None or starts is None or len(starts) == 0:
        return None
    window = int(samples["X_test"].shape[1]) if "X_test" in samples and samples["X_test"].ndim == 3 else None
    if window is None or len(rows) < int(starts[-1]) + window:
        return None
    view = np.lib.stride_tricks.sliding_window_view(rows, window, axis=0).transpose(0, 2, 1)
    return view[np.asarray(starts, dtype=np.int64)]


