"""The default configuration for a dataset: the one place the CLI and the pages take their starting point.

A default has to win on real data, or the studio teaches that neural forecasting loses to "tomorrow =
today" (issue J). What makes a small recurrent model win, measured in bench/bench_quality.py:

- predicting the change from the last value (residual mode) instead of the level;
- a window that covers at least one seasonal period, so the model sees "the same time yesterday";
- calendar features (sin/cos of the position in the cycle) when the data has a strong cycle, or a
  yearly cycle that the window cannot cover;
- enough weight updates: on short series an epoch is a handful of batches, so the epoch count grows
  as the series shrinks (and early stopping keeps the best epoch either way).

``default_config(dataset, targets)`` looks at the training part of the data only (the test part stays
unseen) and returns every choice with a one-line reason, so a page can say why it preselected it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core import frequency
from core.config import DEFAULTS
from core.dataset import Dataset, ordinal
from core.errors import StudioError
from core.metrics import Seasonality
from core.models import PERIOD_FORMS, ModelSpec
from core.seasons import training_season
from core.training import TrainConfig
from core.windows import (CALENDAR_NAMES, SplitSpec, WindowSpec, calendar_options, default_spec,
                          largest_window, presets, split_parts, window_counts)

_D = DEFAULTS["quality"]

# Cycle lengths, in days, that each calendar feature describes; a period within 6% of one is that cycle.
_CYCLE_DAYS = {"hour": 1.0, "dow": 7.0, "doy": 365.25}
_CYCLE_TOLERANCE = 0.06


@dataclass(frozen=True)
class DefaultConfig:
    """Every default choice for one dataset and target set, with the reason for each."""

    window_spec: WindowSpec
    split: SplitSpec
    scaler_kind: str
    model_options: dict
    train_config: TrainConfig
    seasonality: Seasonality
    reasons: dict[str, str] = field(default_factory=dict)

    def model_spec(self, **overrides: Any) -> ModelSpec:
        """The default model for this window spec; ``overrides`` (e.g. from command-line options) win."""
        options = dict(self.model_options)
        given = {k: v for k, v in overrides.items() if v is not None}
        if "residual" in given and "target_form" not in given:
            # the older on/off flag asked for by name replaces a target form chosen by the search
            options.pop("target_form", None)
            options.pop("season_period", None)
        options.update(given)
        if options.get("target_form") in PERIOD_FORMS and not options.get("season_period"):
            options["season_period"] = int(self.seasonality.period or 0)
        relative = bool(options.pop("relative", False))
        spec = ModelSpec.for_windows(self.window_spec, **options)
        # the defaults' relative inputs follow a change form; asked for by name on a level model, validate refuses
        if relative and not spec.residual and "relative" in given:
            return ModelSpec.for_windows(self.window_spec, **options, relative=True)  # refused, with its message
        return spec.with_options(relative=True) if relative and spec.residual else spec

    @property
    def calendar_suggested(self) -> tuple[str, ...]:
        return self.window_spec.calendar

    def to_dict(self) -> dict:
        return {"window_spec": self.window_spec.to_dict(), "split": self.split.to_dict(), "scaler": self.scaler_kind,
                "model": self.model_spec().to_dict(), "train": self.train_config.to_dict(),
                "seasonality": self.seasonality.to_dict(), "reasons": dict(self.reasons)}


def cycle_of(period: int | None, freq: str | None, calendar: dict | None = None) -> str | None:
    """The calendar feature that describes a period of ``period`` steps ("hour" for a day...), if any.
    With a working ``calendar`` the cycles are counted in observed steps (a day from 07:00 to 21:00 at five
    minutes is 168 steps, its Mon-Fri week 840)."""
    if calendar and period:
        for name, steps in frequency.cycle_steps(calendar).items():
            if abs(period - steps) <= _CYCLE_TOLERANCE * steps:
                return name
        return None
    days = frequency.step_days(freq)
    if not period or days is None:
        return None
    length = period * days
    for name, cycle in _CYCLE_DAYS.items():
        if abs(length - cycle) <= _CYCLE_TOLERANCE * cycle:
            return name
    return None


def train_rows(dataset: Dataset, split: SplitSpec) -> int:
    # The split's own arithmetic (split_parts), so fractions round and dates resolve exactly as the windows do.
    return int(split_parts(dataset.frame.index, split)["train"][1])


def _effective_freq(dataset: Dataset) -> str | None:
    """The data's frequency, or for irregular timestamps their median step as an alias ("60s")."""
    if dataset.freq or not isinstance(dataset.frame.index, pd.DatetimeIndex) or len(dataset.frame) < 3:
        return dataset.freq
    t = dataset.frame.index.to_numpy().astype("datetime64[s]").astype(np.int64)
    step = int(round(float(np.median(np.diff(t)))))
    return f"{step}s" if step > 0 else None


def target_seasonality(dataset: Dataset, target: str, split: SplitSpec | None = None) -> Seasonality:
    """The period of ``target`` as its training part shows it (the validation and test parts stay unseen)."""
    split = split or SplitSpec()
    return training_season(dataset, dataset.frame[target].to_numpy(dtype=np.float64), train_rows(dataset, split))


def choose_window(dataset: Dataset, season: Seasonality, horizon: int = 1,
                  split: SplitSpec | None = None) -> tuple[int, str]:
    """(window, reason): the shortest preset that covers one period (and ``min_window``), else the period itself."""
    split = split or SplitSpec()
    n_train = train_rows(dataset, split)
    fits = largest_window(dataset.frame.index, split, horizon) if len(dataset.frame) >= 3 else 1
    cap = max(1, min(fits, int(_D["max_window"]), int(n_train * _D["max_window_share"])))
    period = season.period
    covered = period is not None and period <= cap
    need = max(period if covered else int(DEFAULTS["features"]["window"]), int(_D["min_window"]))
    need = min(need, cap)
    steps = [p.window for p in presets(dataset.freq, n_train, limit=50, calendar=dataset.calendar)
             if p.horizon == horizon and need <= p.window <= cap]
    window = min(steps) if steps else need
    words = frequency.describe_steps(window, dataset.freq, dataset.calendar)
    if covered:
        kind = "detected in the data" if season.source == "autocorrelation" else "the natural cycle of this step"
        return window, f"Window {words}: covers one seasonal period ({period} steps, {kind})."
    if period:
        return window, (f"Window {words}: the seasonal period ({period} steps) is too long for a window here; "
                        "calendar features carry the cycle instead.")
    return window, f"Window {words}: no seasonal period found, so the studio's standard look-back."


def choose_calendar(dataset: Dataset, season: Seasonality, window: int,
                    split: SplitSpec | None = None) -> tuple[tuple[str, ...], str]:
    """(calendar features, reason): the cycle of a strong period, and the year once two fit in training."""
    split = split or SplitSpec()
    options = calendar_options(dataset)
    chosen: list[str] = []
    why: list[str] = []
    freq = _effective_freq(dataset)  # irregular timestamps: their median step names the cycle
    cycle = cycle_of(season.period, freq, dataset.calendar) if season.strong else None
    if cycle in options:
        chosen.append(cycle)
        why.append(f"{CALENDAR_NAMES[cycle]} (the data has a strong {season.period}-step cycle, "
                   f"autocorrelation {season.strength:.2f})")
    days = frequency.step_days(freq, dataset.calendar)
    n_train = train_rows(dataset, split)
    if "doy" in options and "doy" not in chosen and days is not None and days < 28:
        years = n_train * days / 365.25
        if years >= _D["doy_min_years"] and window * days < 365.25 / 2:
            chosen.append("doy")
            why.append(f"day of year (the training part spans {years:.1f} years, longer than any window sees)")
    if not chosen:
        return (), "No calendar features: the data shows no strong cycle a calendar feature describes."
    return tuple(c for c in options if c in chosen), "Calendar features: " + "; ".join(why) + "."


# A validation value past the training range by more than this share of that range means the level moves.
_LEVEL_ESCAPE = 0.05
# ...and so does a level whose unit root an augmented Dickey-Fuller test cannot reject at this level, on the
# newest ``_ADF_POINTS`` training and validation rows (the cost stays a fraction of a second on any series).
_ADF_P = 0.05
_ADF_POINTS = 2000


def level_moves(dataset: Dataset, targets: tuple, split: SplitSpec) -> str | None:
    """A sentence when some target's level moves where a network reading min-max scaled levels cannot follow
    it, else None (the default asks only where the data shows no cycle: ``choose_relative``): its validation part leaves its training range, or its level wanders (a unit root). Such a
    network meets inputs it never saw and its change forecast extrapolates: the geometric random walk of
    bench_quality_shapes stayed inside the training range on validation, beat last value there, then left it
    on test and lost by 38%. Only training and validation rows are read; the test part stays unseen."""
    parts = split_parts(dataset.frame.index, split)
    (_, t), (_, v) = parts["train"], parts["val"]
    for name in targets:
        x = dataset.frame[name].to_numpy(dtype=np.float64)
        train, val = x[:t][np.isfinite(x[:t])], x[t:v][np.isfinite(x[t:v])]
        if len(train) < 2:
            continue
        lo, hi = float(train.min()), float(train.max())
        pad = _LEVEL_ESCAPE * (hi - lo)
        if len(val) and (val.max() > hi + pad or val.min() < lo - pad):
            return (f"{name}'s validation part reaches {val.min():.4g}..{val.max():.4g}, outside its training range "
                    f"{lo:.4g}..{hi:.4g}")
        seen = x[:v][np.isfinite(x[:v])][-_ADF_POINTS:]
        p = _unit_root_p(seen)
        if p is not None and p > _ADF_P:
            return (f"{name}'s level wanders like a random walk (augmented Dickey-Fuller p = {p:.2f} on the newest "
                    f"{len(seen):,} training and validation rows), so later levels leave the training range")
    return None


def choose_relative(dataset: Dataset, targets: tuple, split: SplitSpec, season: Seasonality | None = None) -> str | None:
    """Why the default reads inputs relative to the last value (``level_moves``), or None: only where the data
    shows no cycle. On the seasonal series of bench_quality_shapes relative inputs did not pay (subsidies h=12 test
    MAE 2.99 against 1.87, souvenir h=12 1546 against 1390; at h=1 the same either way); on the random walk they
    are what keeps the default at last value (22.2 against 30.69)."""
    season = season or target_seasonality(dataset, targets[0], split)
    return None if season.source == "autocorrelation" else level_moves(dataset, targets, split)


# A season's swing must follow its level this closely (correlation over the training part's whole seasons), and the
# level must move by at least this ratio, for the multiplicative (log) form to be a search candidate.
_LOG_CORR = 0.6
LOG_REASON = ("Multiplicative (log) target: the network sees log values, so a seasonal change is a ratio and relative "
              "inputs divide each window by its last value; forecasts come back as levels.")
_LOG_LEVEL_RATIO = 1.5
_LOG_MIN_SEASONS = 4


def choose_log(dataset: Dataset, targets: tuple, split: SplitSpec, season: Seasonality | None = None) -> str | None:
    """Why the multiplicative (log) form is worth trying (a sentence), or None: every target value above 0 and
    each target's seasonal swing growing with its level. Per whole season of the training part: its mean, and
    the spread of its values around a straight line through them (so a steady trend adds the same to every
    season); their correlation over the seasons must reach ``_LOG_CORR`` and the means must move by
    ``_LOG_LEVEL_RATIO``. An additive season (the same swing at every level) gives a correlation near 0."""
    season = season or target_seasonality(dataset, targets[0], split)
    period = int(season.period or 0)
    t = train_rows(dataset, split)
    if period < 2 or t < _LOG_MIN_SEASONS * period:
        return None
    words = []
    for name in targets:
        x = dataset.frame[name].to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(x)) or not np.all(x > 0):
            return None
        n = t // period
        blocks = x[t - n * period:t].reshape(n, period)
        steps = np.arange(period) - (period - 1) / 2
        slope = (blocks @ steps) / float(steps @ steps)
        swing = (blocks - blocks.mean(axis=1, keepdims=True) - slope[:, None] * steps).std(axis=1)
        level = blocks.mean(axis=1)
        if not (np.ptp(swing) > 0 and level.max() >= _LOG_LEVEL_RATIO * level.min()):
            return None
        corr = float(np.corrcoef(level, swing)[0, 1])
        if not corr >= _LOG_CORR:
            return None
        words.append(f"{name}'s seasonal swing grows with its level (correlation {corr:.2f} over {n} seasons of "
                     f"{period} steps, levels {level.min():.4g}..{level.max():.4g})")
    return "; ".join(words)


def _unit_root_p(x: np.ndarray) -> float | None:
    """The augmented Dickey-Fuller test's p-value (constant, lags by AIC), None where it cannot run."""
    if len(x) < 20 or not np.ptp(x) > 0:
        return None
    import warnings

    from statsmodels.tsa.stattools import adfuller

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(adfuller(x, autolag="AIC")[1])
    except (ValueError, np.linalg.LinAlgError):
        return None


def choose_training(n_train_windows: int, batch_size: int | None = None) -> tuple[TrainConfig, str]:
    """(TrainConfig, reason): the configured epochs, raised on short series to reach ``target_steps`` updates and
    lowered on long ones to about ``max_steps`` (never below ``min_epochs``)."""
    t = DEFAULTS["train"]
    batch = int(batch_size or t["batch_size"])
    if batch_size is None and n_train_windows > 0:
        # A series shorter than one batch trains on all its windows at once: the 36-row monthly shampoo series at
        # window 24 has 19 training windows, and a batch of 32 refused to train after the search had chosen it.
        batch = min(batch, int(n_train_windows))
    per_epoch = max(1, math.ceil(max(n_train_windows, 1) / batch))
    epochs = int(min(max(int(t["epochs"]), math.ceil(_D["target_steps"] / per_epoch)), _D["max_epochs"]))
    long_series = epochs * per_epoch > _D["max_steps"] and epochs > _D["min_epochs"]
    if long_series:
        epochs = int(max(_D["min_epochs"], math.ceil(_D["max_steps"] / per_epoch)))
    patience = int(max(int(t["patience"]), round(epochs * _D["patience_share"])))
    config = TrainConfig(epochs=epochs, batch_size=batch, learning_rate=float(t["learning_rate"]),
                         patience=patience, seed=int(t["seed"])).validate()
    if epochs > int(t["epochs"]):
        reason = (f"{epochs} epochs (patience {patience}): only {per_epoch} batches per epoch, so more passes "
                  "reach enough weight updates; early stopping keeps the best one.")
    elif long_series:
        reason = (f"{epochs} epochs (patience {patience}): {per_epoch} batches per epoch reach about "
                  f"{epochs * per_epoch:,} weight updates, past which a long series' test error stopped improving "
                  "while training took ever longer.")
    else:
        reason = f"{epochs} epochs, early stopping after {patience} without improvement."
    return config, reason


def default_config(dataset: Dataset, targets: Any = None, features: Any = None, window: int | None = None,
                   horizon: int | None = None, calendar: Any = None, split: SplitSpec | None = None,
                   scaler_kind: str | None = None, log: bool = False) -> DefaultConfig:
    """The studio's starting configuration for ``dataset``; any argument given is kept as it is.
    ``log``: the multiplicative (log) form of the targets (core.logscale); the search tries it where
    ``choose_log`` says the data looks multiplicative.

    ``targets``: a column name or names (default: the first column that varies). ``features``: input
    columns (the targets are always added, first, so residual mode can apply). ``calendar``: a tuple,
    or None to let the data decide.
    """
    if isinstance(targets, str):
        targets = (targets,)
    base = default_spec(dataset, tuple(targets) if targets else None)
    targets = base.targets
    missing = [c for c in targets + tuple(features or ()) if c not in dataset.numeric_columns]
    if missing:
        raise StudioError(f"Column(s) {', '.join(map(repr, missing))} are not numeric columns of {dataset.name}.",
                          f"Use one of: {', '.join(dataset.numeric_columns)}.")
    split = split or SplitSpec()
    horizon = int(horizon or DEFAULTS["features"]["horizon"])
    season = target_seasonality(dataset, targets[0], split)
    reasons: dict[str, str] = {}
    n_train = train_rows(dataset, split)
    if features is None:
        others = tuple(c for c in base.features if c not in targets)
        if others and n_train < _D["min_windows_for_extra_inputs"]:
            features = ()
            reasons["features"] = (f"Inputs: the target(s) alone; {n_train:,} training rows are too few to learn "
                                   f"from {len(others)} more column(s) without overfitting.")
        else:
            features = others
            reasons["features"] = ("Inputs: the target(s) and every other column that varies." if others
                                   else "Inputs: the target(s).")
    inputs = tuple(dict.fromkeys(tuple(targets) + tuple(features)))
    if window is None:
        window, reasons["window"] = choose_window(dataset, season, horizon, split)
    else:
        reasons["window"] = f"Window {frequency.describe_steps(int(window), dataset.freq, dataset.calendar)}: as chosen."
    if calendar is None:
        calendar, reasons["calendar"] = choose_calendar(dataset, season, int(window), split)
    else:
        reasons["calendar"] = "Calendar features: as chosen."
    every = WindowSpec(targets=tuple(targets), features=inputs, window=int(window), horizon=horizon)
    n_all = max(window_counts(dataset.frame.index, split, every)["train"], 1)
    stride = max(1, math.ceil(n_all * int(window) / _D["max_epoch_steps"]))
    if stride > 1:
        reasons["stride"] = (f"Training stride {stride}: {n_all:,} overlapping windows of {int(window)} steps would make "
                             f"each epoch slow; every {ordinal(stride)} window still covers the whole training part "
                             "(the test part always uses every window).")
    spec = WindowSpec(targets=tuple(targets), features=inputs, calendar=tuple(calendar), window=int(window),
                      horizon=horizon, stride=stride, log=bool(log))
    if log:
        reasons["log"] = LOG_REASON
    model_options = {k: DEFAULTS["model"][k] for k in ("kind", "units", "layers", "dropout", "head_units", "backend")}
    model_options["residual"] = DEFAULTS["model"]["residual"]
    residual = ModelSpec.for_windows(spec, **model_options).residual
    reasons["residual"] = ("Change from last value: on, since every target is also an input; the model forecasts "
                           "the step from the latest reading, which is what beats 'tomorrow = today'."
                           if residual else "Change from last value: off, since a target is not among the inputs.")
    moves = choose_relative(dataset, tuple(targets), split, season) if residual else None
    model_options["relative"] = moves is not None
    if moves:
        reasons["relative"] = (f"Inputs relative to the last value: {moves}. The network reads each window minus "
                               "its last value (the same at every level) and the model adds the level back.")
    n_windows = max(window_counts(dataset.frame.index, split, spec)["train"], 1)
    config, reasons["training"] = choose_training(n_windows)
    return DefaultConfig(window_spec=spec, split=split, scaler_kind=scaler_kind or DEFAULTS["features"]["scaler"],
                         model_options=model_options, train_config=config, seasonality=season, reasons=reasons)
