"""A rolling-origin backtest over the test part: forecasts from many origins, scored against the baselines."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core import metrics as metrics_mod
from core.config import DEFAULTS
from core.errors import StudioError

from core.forecast.tables import (BASELINE_PREFIX, baseline_names, check_matches, part_label_times, run_bands, target_names,
                                  tidy_frame, to_units)
from core.forecast.ahead import rollout

# ---------------------------------------------------------------------------------------------
# Rolling-origin backtest over the test part


@dataclass
class Backtest:
    frame: pd.DataFrame       # tidy forecasts issued at the chosen origins
    scores: pd.DataFrame      # forecaster, mae, rmse, ... over all those origins
    per_origin: pd.DataFrame  # origin, target, model_mae, <baseline>_mae for each origin
    origins: list             # the origin timestamps (or step numbers)
    steps: int
    method: str               # "direct" or "recursive"


def _score_rows(frame: pd.DataFrame, windows) -> pd.DataFrame:
    """Scores of the model and each baseline on the rows of ``frame`` via core.metrics.score, with
    MASE scaled per target as core.metrics.evaluate does."""
    actual = frame["actual"].to_numpy()
    lo, hi = windows.parts["train"]
    train = to_units(windows, np.asarray(windows.target_values[lo:hi])[None])[0]
    per_target = np.asarray(metrics_mod.naive_scale(train), dtype=np.float64)
    codes = pd.Categorical(frame["target"], categories=target_names(windows)).codes
    scale = per_target[codes]
    rows = [{"forecaster": "model", **metrics_mod.score(actual, frame["prediction"].to_numpy(), scale)}]
    for name in baseline_names(frame):
        rows.append({"forecaster": name, **metrics_mod.score(actual, frame[BASELINE_PREFIX + name].to_numpy(), scale)})
    return pd.DataFrame(rows)


def backtest_beaten_by(bt: "Backtest", measure: str = "mae") -> list[tuple[str, float, float]]:
    """The baselines that beat the model over the backtest's origins, best first, as
    (name, model's score, baseline's score) by ``measure`` (the verdict's: MAE for one target, MASE for several)."""
    scores = bt.scores.set_index("forecaster")
    if measure not in scores.columns or "model" not in scores.index:
        return []
    model = float(pd.to_numeric(scores.loc["model", measure], errors="coerce"))
    out = []
    for name, value in pd.to_numeric(scores[measure], errors="coerce").items():
        if name != "model" and np.isfinite(value) and np.isfinite(model) and value < model:
            out.append((str(name), model, float(value)))
    return sorted(out, key=lambda row: row[2])


def backtest(run, windows, origin_stride: int, part: str = "test", steps: int | None = None,
             max_origins: int | None = None) -> Backtest:
    """Rolling-origin evaluation: forecasts issued every ``origin_stride`` windows across ``part``.

    With ``steps`` at most the model's horizon each origin gets a direct forecast, scored against the
    baselines at the same origins. Longer ``steps`` roll the model forward recursively (when its inputs
    allow it) and compare with repeating the last observed value.
    """
    cfg = DEFAULTS["forecast"]
    origin_stride = int(origin_stride)
    if origin_stride < 1:
        raise StudioError("The origin stride must be at least 1 step.", "Choose 1 or more.")
    h = int(windows.spec.horizon)
    steps = h if steps is None else int(steps)
    if steps < 1:
        raise StudioError("The backtest needs at least one step ahead.", "Choose 1 or more steps.")
    n = windows.count(part)
    if n == 0:
        raise StudioError(f"The {part} part has no complete window to backtest.",
                          "Give it more rows on the Features page.")
    max_origins = int(max_origins or cfg["backtest_max_origins"])
    idx = np.arange(0, n, origin_stride)
    if steps > h:
        # a recursive roll-out needs the actuals after each origin, inside the part
        lo, hi = windows.parts[part]
        starts = np.asarray(windows.starts(part))
        first_label = starts + windows.spec.window + int(windows.spec.offset)
        idx = idx[first_label[idx] + steps <= hi]
        if len(idx) == 0:
            raise StudioError(f"The {part} part is too short for {steps} steps ahead from any origin.",
                              f"Choose at most {max(hi - int(first_label[0]), 1)} steps, or a larger {part} part.")
    if len(idx) > max_origins:
        raise StudioError(f"An origin stride of {origin_stride} gives {len(idx):,} origins, more than the {max_origins:,} the page draws.",
                          f"Choose a stride of at least {int(np.ceil(n / max_origins))}.")
    origins = np.asarray(windows.origin_times(part))[idx]
    if steps <= h:
        y_scaled = np.asarray(run.predict(windows.X(part)[idx])).reshape(len(idx), h, -1)[:, :steps]
        pred = to_units(windows, y_scaled)
        actual = to_units(windows, np.asarray(windows.y(part))[idx][:, :steps])
        base = {name: np.asarray(v, dtype=np.float64).reshape(n, h, -1)[idx][:, :steps]
                for name, v in metrics_mod.baselines(windows, part).items()}
        times = part_label_times(windows, part)[idx][:, :steps]
        method = "direct"
    else:
        check_matches(run, windows)
        starts = np.asarray(windows.starts(part))[idx]
        first = starts + windows.spec.window
        rows = first[:, None] + np.arange(steps)[None, :]
        known = np.asarray(windows.inputs)[rows]
        y_scaled = rollout(run, windows, np.asarray(windows.X(part)[idx]), steps, known_inputs=known)
        pred = to_units(windows, y_scaled)
        actual = to_units(windows, np.asarray(windows.target_values)[rows])
        last = to_units(windows, np.asarray(windows.target_values)[first - 1][:, None, :])
        base = {"last_value": np.repeat(last, steps, axis=1)}
        times = np.asarray(windows.index)[rows]
        method = "recursive"
    frame = tidy_frame(origins, times, target_names(windows), pred, actual, base, run_bands(run, windows, steps))
    scores = _score_rows(frame, windows)
    err = frame[["origin", "target"]].copy()
    err["model_mae"] = np.abs(frame["residual"].to_numpy())
    for name in baseline_names(frame):
        err[f"{name}_mae"] = np.abs(frame[BASELINE_PREFIX + name].to_numpy() - frame["actual"].to_numpy())
    per_origin = err.groupby(["origin", "target"], observed=True, sort=True).mean().reset_index()
    return Backtest(frame=frame, scores=scores, per_origin=per_origin, origins=list(origins), steps=steps, method=method)


