"""Tidy forecast tables from a trained run: the test set against actuals, baselines and bands, errors per
step, the one metrics presentation (``metrics_table``), and the CSV downloads."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core import metrics as metrics_mod
from core.escape import csv_frame
from core.errors import StudioError


BASELINE_PREFIX = "baseline_"
# The tidy forecast table: one row per (origin, target, step). These come first, in this order,
# because they are what the CSV download promises; the baselines follow.
FORECAST_COLUMNS = ["timestamp", "target", "step", "prediction", "actual", "residual", "origin"]
# Band columns (issue N): lower_<level> / upper_<level>, the run's calibrated half-width around each forecast.
LOWER, UPPER = "lower_", "upper_"


# ---------------------------------------------------------------------------------------------
# Small adapters between the window arithmetic and tidy tables


def target_names(windows) -> list[str]:
    return [str(t) for t in windows.spec.targets]


def to_units(windows, y_scaled: np.ndarray) -> np.ndarray:
    """Scaled (n, horizon, n_targets) values back into the targets' own units (float64)."""
    y = np.asarray(y_scaled, dtype=np.float64)
    flat = y.reshape(-1, y.shape[-1])
    out = np.asarray(windows.scaler.inverse(flat, list(windows.spec.targets)), dtype=np.float64)
    return out.reshape(y.shape)


def check_matches(run, windows) -> None:
    """Refuse to pair a run with windows it was not trained on (the numbers would be silently wrong)."""
    spec = getattr(run, "window_spec", None)
    if spec is None:
        return
    ours, theirs = spec.to_dict(), windows.spec.to_dict()
    if ours != theirs:
        changed = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
        raise StudioError(
            f"The trained model was made for other feature settings ({', '.join(changed)} changed since training).",
            "Train again on the Train page, or open the project that goes with this model.")


def part_label_times(windows, part: str) -> np.ndarray:
    """Timestamps (or step numbers) of each window's labels, shape (n, horizon)."""
    times = np.asarray(windows.label_times(part))
    if times.ndim == 1:  # one label per window
        times = times[:, None]
    return times


def run_bands(run, windows, steps: int | None = None) -> dict[str, np.ndarray]:
    """The run's band half-widths per level, (steps, n_targets) in the targets' units; NaN past the model's
    horizon (a fed-back step has no calibrated band). {} for a run saved before intervals existed."""
    from core.intervals import half_widths

    h, k = int(windows.spec.horizon), len(windows.spec.targets)
    bands = half_widths(getattr(run, "intervals", None), h, k)
    steps = h if steps is None else int(steps)
    if steps <= h:
        return {key: hw[:steps] for key, hw in bands.items()}
    pad = np.full((steps - h, k), np.nan)
    return {key: np.concatenate([hw, pad]) for key, hw in bands.items()}


def band_levels(frame: pd.DataFrame) -> list[str]:
    """Level keys ("80", "95") whose lower/upper columns ``frame`` carries, narrowest first."""
    keys = [c[len(LOWER):] for c in frame.columns if c.startswith(LOWER) and UPPER + c[len(LOWER):] in frame.columns]
    return sorted(keys, key=float)


def tidy_frame(origins: np.ndarray, label_times: np.ndarray, targets: list[str], pred: np.ndarray,
          actual: np.ndarray | None, baselines: dict[str, np.ndarray] | None = None,
          bands: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Long table, one row per (target, origin, step), ordered by target then origin then step.

    Built with numpy repeats instead of a melt: it stays fast for the million-row datasets the
    page must handle.
    """
    n, h, k = pred.shape
    per_target = n * h
    cols: dict[str, Any] = {
        "timestamp": np.tile(np.asarray(label_times).reshape(-1), k),
        "target": np.repeat(np.asarray(targets, dtype=object), per_target),
        "step": np.tile(np.tile(np.arange(1, h + 1), n), k),
        "prediction": pred.transpose(2, 0, 1).reshape(-1),
        "actual": (actual.transpose(2, 0, 1).reshape(-1) if actual is not None else np.full(n * h * k, np.nan)),
    }
    cols["residual"] = cols["actual"] - cols["prediction"]
    cols["origin"] = np.tile(np.repeat(np.asarray(origins), h), k)
    for key in sorted(bands or {}, key=float):
        # (h, k) half-widths laid out like the prediction column: target-major, then origin, then step
        width = np.broadcast_to(np.asarray(bands[key], dtype=np.float64).T[:, None, :], (k, n, h)).reshape(-1)
        cols[LOWER + key] = cols["prediction"] - width
        cols[UPPER + key] = cols["prediction"] + width
    for name, values in (baselines or {}).items():
        cols[BASELINE_PREFIX + name] = np.asarray(values, dtype=np.float64).transpose(2, 0, 1).reshape(-1)
    frame = pd.DataFrame(cols)
    frame["target"] = frame["target"].astype("category")
    return frame


# ---------------------------------------------------------------------------------------------
# Test-set forecasts


@dataclass
class TestReport:
    """What the Forecast page shows about the test part, computed once per run."""

    frame: pd.DataFrame          # tidy forecasts (FORECAST_COLUMNS + baseline_* columns)
    metrics: dict                # core.metrics.evaluate's dict: model, baselines, per_step, verdict...
    per_step: pd.DataFrame       # target, step, mae/rmse of the model and of each baseline
    part: str = "test"


def predict_part(run, windows, part: str = "test") -> np.ndarray:
    """The run's scaled predictions for every window of ``part``, shape (n, horizon, n_targets)."""
    check_matches(run, windows)
    if windows.count(part) == 0:
        raise StudioError(f"The {part} part has no complete window to forecast.",
                          "Give it more rows on the Features page (a larger split, or a shorter window or horizon).")
    y = np.asarray(run.predict(windows.X(part)))
    return y.reshape(windows.count(part), windows.spec.horizon, len(windows.spec.targets))


def test_forecasts(run, windows, part: str = "test", y_pred_scaled: np.ndarray | None = None) -> pd.DataFrame:
    """Forecasts of every ``part`` window against the actuals and each baseline, in the targets' units."""
    y_scaled = predict_part(run, windows, part) if y_pred_scaled is None else y_pred_scaled
    pred = to_units(windows, y_scaled)
    actual = to_units(windows, windows.y(part))
    base = {name: np.asarray(v, dtype=np.float64).reshape(pred.shape)
            for name, v in metrics_mod.baselines(windows, part).items()}
    return tidy_frame(np.asarray(windows.origin_times(part)), part_label_times(windows, part), target_names(windows),
                 pred, actual, base, run_bands(run, windows))


def baseline_names(frame: pd.DataFrame) -> list[str]:
    return [c[len(BASELINE_PREFIX):] for c in frame.columns if c.startswith(BASELINE_PREFIX)]


def per_step_errors(frame: pd.DataFrame) -> pd.DataFrame:
    """MAE and RMSE per (target, horizon step) for the model and each baseline in ``frame``.

    Summed with np.bincount over a (target, step) code: a pandas groupby of the same table costs
    several times more, and this runs on every first render of the page.
    """
    codes, names = pd.factorize(frame["target"], sort=False)
    step = frame["step"].to_numpy().astype(np.int64)
    h = int(step.max()) if len(step) else 1
    key = codes.astype(np.int64) * h + (step - 1)
    size = len(names) * h
    counts = np.bincount(key, minlength=size).astype(np.float64)
    actual = frame["actual"].to_numpy(dtype=np.float64)
    cols = {"target": np.repeat(np.asarray(names, dtype=object), h), "step": np.tile(np.arange(1, h + 1), len(names))}
    forecasters = [("model", "prediction")] + [(n, BASELINE_PREFIX + n) for n in baseline_names(frame)]
    with np.errstate(invalid="ignore", divide="ignore"):
        for name, col in forecasters:
            err = frame[col].to_numpy(dtype=np.float64) - actual
            ok = np.isfinite(err)
            n = np.bincount(key[ok], minlength=size).astype(np.float64)
            cols[f"{name}_mae"] = np.bincount(key[ok], weights=np.abs(err[ok]), minlength=size) / n
            cols[f"{name}_rmse"] = np.sqrt(np.bincount(key[ok], weights=err[ok] ** 2, minlength=size) / n)
    return pd.DataFrame(cols)[counts > 0].reset_index(drop=True)


def test_report(run, windows, part: str = "test") -> TestReport:
    """Test forecasts, the metrics and verdict (core.metrics.evaluate) and the per-step errors, from one prediction."""
    y_scaled = predict_part(run, windows, part)
    frame = test_forecasts(run, windows, part, y_pred_scaled=y_scaled)
    result = metrics_mod.evaluate(windows, y_scaled, part)
    return TestReport(frame=frame, metrics=result, per_step=per_step_errors(frame), part=part)


def metrics_table(result: dict, references: dict | None = None) -> pd.DataFrame:
    """The one metrics presentation (the Train and Forecast pages show it, ``studio train`` prints it):
    one row per forecaster (the model, then each baseline, then the statistical references) with its
    scores, and how much better
    the model is than that row in % (positive means the model wins), by the measure the verdict
    uses: MAE for one target, MASE for several (their MAEs would add different units)."""
    key = str(result.get("compared_by") or "mae")
    rows = [{"forecaster": "model", **result["model"]}]
    for name, scores in result.get("baselines", {}).items():
        if name != "naive":  # run.json's alias of last_value, under the name SPEC uses
            rows.append({"forecaster": name, **scores})
    # The statistical references (metrics.json's ``references``, scored when the run was trained on the same
    # test points), beside the naive baselines; the verdict and best baseline stay the naive ones.
    for name, scores in ((result.get("references") if references is None else references) or {}).items():
        rows.append({"forecaster": name, **scores})
    table = pd.DataFrame(rows)
    values = pd.to_numeric(table[key], errors="coerce").astype(float)
    model_value = float(values.iloc[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        better = (values - model_value) / values * 100.0
    table["model_better_by_pct"] = better.where(table["forecaster"] != "model")
    table["best_baseline"] = table["forecaster"] == result.get("best_baseline")
    return table


# ---------------------------------------------------------------------------------------------
# Downloads


FLOAT_FORMAT = "%.7g"  # float32's precision: no "365.4999977350235" in a download


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """A CSV that opens correctly everywhere, non-ASCII column and target names included.

    UTF-8 with a byte-order mark: Excel (the tool most workshop participants double-click a CSV into)
    reads BOM-less UTF-8 as the local ANSI code page and garbles names such as "Temperatur (°C)";
    with the BOM it reads UTF-8. pandas, LibreOffice and Python's csv module (utf-8-sig) skip the BOM.
    Timestamps are ISO 8601 and numbers use a dot, independent of locale, with 7 significant digits: the
    model and the scaler compute in float32, whose ~7 digits are all the values hold (printed in full, a
    float32 365.5 read "365.4999977350235").
    """
    out = frame.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = out[col].dt.strftime("%Y-%m-%dT%H:%M:%S")
    return _csv_text(out).encode("utf-8-sig")


def _csv_text(frame: pd.DataFrame) -> str:
    """Every CSV download's text: names and text cells through ``escape.csv_cell`` (no live formulas)."""
    return csv_frame(frame).to_csv(index=False, lineterminator="\r\n", float_format=FLOAT_FORMAT)


def forecasts_csv(frame: pd.DataFrame) -> bytes:
    """The forecasts download: timestamp, target, step, prediction, actual, the band bounds (lower_80,
    upper_80, ...), then origin and baselines."""
    bands = [p + key for key in band_levels(frame) for p in (LOWER, UPPER)]
    first = [c for c in ("timestamp", "target", "step", "prediction", "actual", *bands) if c in frame.columns]
    rest = [c for c in frame.columns if c not in first and c != "residual"]
    return csv_bytes(frame[first + rest])


def metrics_csv(result: dict, per_step: pd.DataFrame | None = None) -> bytes:
    """The metrics download: the table of forecasters, then (when given) the errors per horizon step."""
    table = metrics_table(result)
    text = _csv_text(table)
    if per_step is not None and len(per_step):
        text += "\r\n" + _csv_text(per_step)
    return text.encode("utf-8-sig")
