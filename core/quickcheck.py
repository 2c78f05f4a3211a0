"""The quick check: a short training of the chosen configuration, scored against the baselines on the
validation part, with what to change when the model is unlikely to win.

It answers "is this worth a full training?" in about 15 seconds, counted from the click: framework
start-up, training and scoring together (the button's label promises the whole wait). Only the newest
training windows are used (the ones nearest the validation part, so the check sees today's behaviour
of the series), the training stops when the budget less a reserve for scoring is spent, and the score
is taken on the validation part: the test part stays unseen (the short training is scored on a
single test window, only because every run has one), so the check cannot flatter the final verdict.
"""
from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.config import DEFAULTS
from core.dataset import Dataset
from core.defaults import cycle_of
from core.errors import StudioError
from core.metrics import BASELINE_LABELS, Seasonality, evaluate, paired_se
from core.models import ModelSpec
from core.training import TrainConfig, train
from core.frequency import describe_steps
from core.windows import CALENDAR_NAMES, calendar_options

_Q = DEFAULTS["quickcheck"]


@dataclass(frozen=True)
class Recommendation:
    """One change that would likely help; ``change`` names the setting and its suggested value."""

    key: str      # "residual", "window", "calendar", "epochs", "inputs"
    text: str
    change: dict = field(default_factory=dict)


@dataclass(frozen=True)
class QuickCheckResult:
    model_mae: float | None
    baselines: dict[str, float | None]   # name -> validation MAE (targets' units; MASE with several targets)
    compared_by: str                    # "mae" or "mase"
    best_baseline: str | None
    improvement_pct: float | None        # vs the best baseline; > 0 = better
    beats_last_value: bool
    beats_best: bool
    verdict: str
    epochs_run: int
    best_epoch: int
    train_windows: int
    val_windows: int
    seconds: float
    cut_by_budget: bool
    seasonality: list[dict]
    recommendations: list[Recommendation]
    val_points: int = 0                  # validation time points the verdict rests on
    weak: str | None = None              # core.metrics.weak_note when they are too few to judge by
    paired_se: float | None = None       # standard error of the model's lead over the best baseline (issue 34)

    @property
    def likely_wins(self) -> bool:
        return self.beats_best

    @property
    def summary(self) -> str:
        """One sentence for the page: the verdict on the short training, then the advice, if any."""
        head = (f"Quick check ({self.epochs_run} epoch{'s' if self.epochs_run != 1 else ''} on the newest "
                f"{self.train_windows:,} training windows, {self.seconds:.0f} s): {self.verdict}")
        if self.weak:
            head += " " + self.weak
        if self.beats_best:
            return head + " A full training should do at least as well."
        if self.beats_last_value:
            return head + " It beats last value but not yet the best baseline; see the suggestions."
        return head + " It does not beat last value yet; see the suggestions."

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["likely_wins"] = self.likely_wins
        d["summary"] = self.summary
        return d


def _subsample(windows: Any, max_windows: int) -> Any:
    """The same windows with the training part cut to its newest ``max_windows`` windows (no copy of data)."""
    lo, hi = windows.parts["train"]
    stride = windows.stride("train")
    keep_rows = (max_windows - 1) * stride + windows.spec.span
    if hi - lo <= keep_rows:
        return windows
    parts = dict(windows.parts)
    parts["train"] = (hi - keep_rows, hi)
    return dataclasses.replace(windows, parts=parts, _tf=None)


def _for_check(windows: Any, max_windows: int) -> Any:
    """The newest ``max_windows`` training windows, and the test part cut to its first window: the check
    never looks at the test part, so the short training's own scoring should not spend time on it."""
    sub = _subsample(windows, max_windows)
    lo, hi = sub.parts["test"]
    # Parts are label rows (issue U): one horizon of rows holds exactly one window's labels.
    if hi - lo <= sub.spec.horizon:
        return sub
    parts = dict(sub.parts)
    parts["test"] = (lo, lo + sub.spec.horizon)
    return dataclasses.replace(sub, parts=parts, _tf=None)


def _dataset_like(windows: Any) -> Dataset:
    """A column-less Dataset with the windows' index and step, enough for calendar_options()."""
    return Dataset(name=getattr(windows, "dataset_name", "") or "data", frame=pd.DataFrame(index=windows.index),
                   freq=getattr(windows, "freq", None), calendar=getattr(windows, "calendar", None))


def recommend(windows: Any, spec: ModelSpec, seasons: list[Seasonality], *, epochs_run: int, best_epoch: int,
              cut_by_budget: bool, train_windows: int, beats_best: bool, beats_last_value: bool) -> list[Recommendation]:
    """What to change, most likely to help first. Empty when the model already beats every baseline."""
    if beats_best:
        return []
    ws = windows.spec
    out: list[Recommendation] = []
    target_is_input = all(i is not None for i in ws.target_input_index)
    if not spec.residual:
        if target_is_input:
            out.append(Recommendation("residual", "Turn on 'change from last value': the model then learns how much "
                                      "the series moves from its latest reading, which is what beats 'tomorrow = today'.",
                                      {"residual": True}))
        else:
            missing = [t for t, i in zip(ws.targets, ws.target_input_index) if i is None]
            out.append(Recommendation("residual", f"Add {', '.join(missing)} to the input features (the model cannot see "
                                      "the target's own past), then turn on 'change from last value'.",
                                      {"features": list(dict.fromkeys(ws.features + tuple(missing))), "residual": True}))
    season = seasons[0] if seasons else None
    if season is not None and season.period and ws.window < season.period:
        out.append(Recommendation("window", f"Lengthen the window to at least {describe_steps(season.period, windows.freq, getattr(windows, 'calendar', None))}: "
                                  f"the data repeats every {season.period} steps, and a {ws.window}-step window never "
                                  "sees the same time one cycle earlier.", {"window": int(season.period)}))
    if season is not None and season.strong:
        cycle = cycle_of(season.period, getattr(windows, "freq", None), getattr(windows, "calendar", None))
        options = calendar_options(_dataset_like(windows)) if isinstance(windows.index, pd.DatetimeIndex) else ()
        if cycle and cycle in options and cycle not in ws.calendar:
            out.append(Recommendation("calendar", f"Add the calendar feature '{CALENDAR_NAMES[cycle]}': the data has a "
                                      f"strong {season.period}-step cycle, and the feature tells the model where in it "
                                      "each step is.", {"calendar": list(ws.calendar) + [cycle]}))
    if cut_by_budget or (epochs_run > 1 and best_epoch >= epochs_run):
        out.append(Recommendation("epochs", f"Train longer: the validation loss was still falling at epoch {epochs_run}, "
                                  "so the full training (with early stopping) should improve on this check.",
                                  {"epochs": max(int(DEFAULTS["train"]["epochs"]), 2 * epochs_run)}))
    if ws.n_inputs > 1 and train_windows < _Q["windows_per_input"] * ws.n_inputs and len(ws.features) > len(ws.targets):
        out.append(Recommendation("inputs", f"Use fewer input columns: {train_windows:,} training windows are few for "
                                  f"{ws.n_inputs} inputs, and extra columns then add noise more than signal.",
                                  {"features": list(ws.targets)}))
    if not out and not beats_last_value:
        out.append(Recommendation("epochs", "Train longer or with a larger learning rate (0.003): this short check may "
                                  "simply not have learned enough yet.", {"learning_rate": 3e-3}))
    return out


def quick_check(windows: Any, model_spec: ModelSpec, train_config: TrainConfig | None = None,
                budget_s: float | None = None, max_train_windows: int | None = None,
                reserve_s: float | None = None, against: str | None = None) -> QuickCheckResult:
    """Train ``model_spec`` briefly on the newest training windows and score it on the validation part.

    ``budget_s`` bounds the whole check, framework start-up included: training stops once the budget
    less ``reserve_s`` (the scoring that follows; the configured reserve unless given) is spent, but at
    least one epoch always runs, so a model exists to score. ``against``: the baseline ``paired_se`` measures the
    model's lead over (default: the best baseline here; a backtest fold names the validation part's).
    """
    if windows.count("val") == 0:
        raise StudioError("The quick check needs validation windows, and this split has none.",
                          "Give the validation part a larger share (or a later date) on the Features step.")
    budget = float(budget_s if budget_s is not None else _Q["budget_s"])
    config = train_config or TrainConfig()
    config = dataclasses.replace(config, patience=min(config.patience or _Q["patience"], _Q["patience"])).validate()
    sub = _for_check(windows, int(max_train_windows or _Q["max_train_windows"]))
    # The clock starts at the click: the framework's start-up (seconds, once per session) is part of the wait.
    t0 = time.perf_counter()
    warm_up(model_spec.backend, model_spec.kind)

    epochs_done = [0]
    cut = [False]
    train_budget = max(0.0, budget - float(_Q["reserve_s"] if reserve_s is None else reserve_s))

    def on_epoch(_record: dict) -> None:
        epochs_done[0] += 1

    def should_stop() -> bool:
        # Never before one epoch has finished: a stopped run with no epoch has no model to score.
        if epochs_done[0] >= 1 and time.perf_counter() - t0 > train_budget:
            cut[0] = True
            return True
        return False

    with tempfile.TemporaryDirectory(prefix="fs-quickcheck-") as tmp:
        run = train(sub, model_spec, config, Path(tmp) / "run", on_epoch=on_epoch, should_stop=should_stop,
                    references=False, score=False)  # the check never reads the test part
        pred = run.predict(windows.X("val"))
    seconds = time.perf_counter() - t0
    ev = evaluate(windows, pred, "val")
    key = ev["compared_by"]
    seasons = [Seasonality(**{k: s[k] for k in ("period", "strength", "natural", "source")}) for s in ev["seasonality"]]
    epochs_run, best_epoch = int(run.info.get("epochs_run", 0)), int(run.info.get("best_epoch", 0))
    recs = recommend(windows, model_spec, seasons, epochs_run=epochs_run, best_epoch=best_epoch, cut_by_budget=cut[0],
                     train_windows=sub.count("train"), beats_best=ev["beats_best"],
                     beats_last_value=ev["beats_last_value"])
    return QuickCheckResult(
        model_mae=ev["model"].get(key), baselines={k: v.get(key) for k, v in ev["baselines"].items()},
        compared_by=key, best_baseline=ev["best_baseline"], improvement_pct=ev["improvement_pct"],
        beats_last_value=ev["beats_last_value"], beats_best=ev["beats_best"], verdict=ev["verdict"],
        epochs_run=epochs_run, best_epoch=best_epoch, train_windows=sub.count("train"), val_windows=windows.count("val"),
        seconds=seconds, cut_by_budget=cut[0], seasonality=ev["seasonality"], recommendations=recs,
        val_points=int(ev["points"]), weak=ev["weak"],
        paired_se=paired_se(windows, pred, "val", against or ev["best_baseline"])
        if against or ev["best_baseline"] else None)


def warm_up(backend: str, kind: str) -> None:
    """Import the frameworks a training of this backend and kind runs on and pay their first-use costs, once per
    process (on 2 busy cores: Keras 11 s, torch 6 s, torch's first Adam 7 s). A Keras LSTM or SimpleRNN trains on
    its PyTorch twin (core.training_engines), so it needs both."""
    from core.training_engines import keras_engine

    if backend != "torch":
        import keras  # noqa: F401
    if backend == "torch" or keras_engine(ModelSpec(kind=kind)) == "torch":
        import torch

        torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # its first use imports the compiler stack


def baseline_label(name: str | None) -> str:
    return BASELINE_LABELS.get(name or "", name or "-")


def as_rows(result: QuickCheckResult) -> list[dict]:
    """Model and baselines as table rows for a page (validation part, targets' units)."""
    rows = [{"forecaster": "model (short training)", result.compared_by.upper(): result.model_mae}]
    rows += [{"forecaster": baseline_label(k), result.compared_by.upper(): v} for k, v in result.baselines.items()]
    return [r for r in rows if r[result.compared_by.upper()] is None or np.isfinite(r[result.compared_by.upper()])]
