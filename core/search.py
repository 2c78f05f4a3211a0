"""The default configuration chosen on validation (issue 21): a few short real trainings, keep the best.

A rule ("predict the change from the last value") wins on most series and loses badly on a strongly
seasonal one, where "the same hour yesterday, plus a small correction" is the easy target. So the
default tries the few candidates that matter and keeps the one with the lowest validation error:

- target form: level, change from the last value, change from the value one season earlier, change from the
  last value plus what followed it one season earlier;
- window: one seasonal period, two periods.

Stage 1 trains each target form at the one-period window; stage 2 trains the winning form (and the
runner-up, when it is a change form too) at two periods. Every training is the quick check's
(``core.quickcheck.quick_check``: the newest training windows, scored on the validation part, the
test part unseen). A trial is bounded by work, not by the clock (issue 34): at most ``TRIAL_EPOCHS`` epochs and
``TRIAL_WORK`` window rows of weight updates, so the same data, options and seed choose the same model on a busy
machine as on a quiet one. The clock is only a safety stop (``budget_s``, default ``BUDGET_FACTOR`` quick-check
budgets): when it ends a trial or the search, the result says so (``SearchResult.clock_stopped``). Candidates that cannot apply are skipped with the reason (no season, a season longer than
a third of the training part, a window that would not fit, a target that is not an input).
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from core.config import DEFAULTS
from core.dataset import Dataset
from core.defaults import LOG_REASON, DefaultConfig, choose_log, train_rows, default_config
from core.errors import StudioError
from core.backtest import backtest, needs_backtest
from core.naive_default import linear_rescue, naive_fallback, naive_reason
from core.logscale import keep_log
from core.metrics import NAIVE_Z
from core.models import PERIOD_FORMS, SEASONAL_FORMS, ModelSpec, choice_label, form_choice
from core.frequency import describe_steps
from core.search_rules import (LEVEL_MARGIN, WINDOW_MARGIN, common_period, linear_stretch, pick,  # noqa: F401 (tests)
                               SMOOTH_WINDOW_SHARE, smoothing_window)
from core.search_words import form_reason, why_won, window_words
from core.windows import largest_window, make_windows

_Q = DEFAULTS["quality"]
# Change forms first: when a loaded machine lets only one or two trials run, they are the likelier winners
# (bench_quality on a busy machine: 10-minute h=24 ran level alone and kept it, 0.216 against the rule's 0.154).
FORMS = ("change_last", "change_linear", "change_both", "change_season", "level", "change_smooth")
# The clock's safety stop, in quick-check budgets (120 s): never reached by a default search on a quiet or a
# loaded 2-core machine (bench_quality), it only keeps a pathological one from running on. What a trial trains is
# bounded by work (below), so the clock never decides the model unless it stops the search, and then it says so.
BUDGET_FACTOR = 8.0
# Each trial trains at most this many epochs (on the quick check's newest training windows, with its patience)...
TRIAL_EPOCHS = 12
# ...and at most this much work: weight updates x window length (a step's cost grows with the window). 40,000 is
# about 7 s of LSTM(32) updates on 2 quiet cores at any window (96 steps: 416 updates, 288 steps: 138), what the
# time-bounded trials got before issue 34, so the search costs no more than it did.
TRIAL_WORK = 40_000
# Seconds a trial keeps for scoring its validation windows inside the safety stop.
TRIAL_RESERVE_S = 1.0
# A season longer than this share of the training part leaves too few seasons to learn a change from.
MAX_SEASON_SHARE = 1 / 3

Progress = Callable[[float, str], None]
CLOCK_SKIP = "the clock's safety stop ended the search first"
@dataclass(frozen=True)
class Trial:
    """One candidate: its settings, and its validation score (or why it was skipped)."""

    target_form: str
    window: int
    score: float | None = None           # validation MAE (MASE with several targets), as the quick check compares
    compared_by: str = "mae"
    seconds: float = 0.0
    epochs_run: int = 0
    best_baseline: str | None = None
    baseline_score: float | None = None
    skipped: str | None = None
    clock_stopped: bool = False          # the safety stop ended its training before its work bound
    margin_se: float | None = None       # standard error of its lead over the best baseline (issue 34)
    val_points: int = 0
    log: bool = False                    # the multiplicative (log) form of the targets (core.logscale)
    smooth: bool = False                 # change_linear from exponential smoothing itself (ModelSpec.linear_base)

    @property
    def label(self) -> str:
        form = choice_label(form_choice(self.target_form, "smooth" if self.smooth else ""))
        return f"{form}{', multiplicative (log)' if self.log else ''}, window {self.window}"

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "label": self.label}


@dataclass(frozen=True)
class SearchResult:
    config: DefaultConfig                # the winner, with its reasons (``reasons["search"]`` says what was tried)
    trials: list[Trial] = field(default_factory=list)
    seconds: float = 0.0
    budget_s: float = 0.0
    period: int | None = None
    stopped: bool = False
    clock_stopped: bool = False          # the clock's safety stop ended a trial or the search: the choice may
                                         # differ on a quieter machine
    naive: Trial | None = None           # set when the default is the naive-equivalent model (issue 34)
    backtest: Any = None                 # core.backtest.Backtest on a short series where validation chose a network
    winner: Trial | None = None          # the chosen network when the rule picked it over a lower score (linear_rescue)

    @property
    def best(self) -> Trial | None:
        scored = [t for t in self.trials if t.score is not None]
        return self.naive or self.winner or keep_log(pick(scored), scored, NAIVE_Z)

    def rows(self) -> list[dict]:
        """A table for the page and the command line: every candidate, tried or skipped."""
        best = self.best
        out = []
        for t in self.trials:
            out.append({"candidate": t.label, f"validation {t.compared_by.upper()}": t.score,
                        "seconds": round(t.seconds, 1) if t.score is not None else None,
                        "result": "chosen" if t is best else (f"skipped: {t.skipped}" if t.skipped else "")})
        return out

    def to_dict(self) -> dict:
        return {"trials": [t.to_dict() for t in self.trials], "seconds": self.seconds, "budget_s": self.budget_s,
                "period": self.period, "stopped": self.stopped, "clock_stopped": self.clock_stopped,
                "naive_equivalent": self.naive is not None, "reasons": dict(self.config.reasons),
                "backtest": self.backtest.to_dict() if self.backtest is not None else None,
                "chosen": self.best.to_dict() if self.best else None}


def _window_cap(dataset: Dataset, base: DefaultConfig, share: float | None = None) -> int:
    """The longest window the defaults allow here (as core.defaults.choose_window caps it); ``share``: of the
    training rows, in place of the defaults' ``max_window_share``."""
    split, horizon = base.split, base.window_spec.horizon
    fits = largest_window(dataset.frame.index, split, horizon) if len(dataset.frame) >= 3 else 1
    share = float(_Q["max_window_share"] if share is None else share)
    return max(1, min(fits, int(_Q["max_window"]), int(train_rows(dataset, split) * share)))


def plan(dataset: Dataset, base: DefaultConfig, forms: tuple[str, ...] = FORMS,
         windows: tuple[int, ...] | None = None) -> tuple[list[Trial], list[int], int | None, str]:
    """(stage-1 trials and skipped candidates, stage-2 windows, period, note) for ``base``'s data."""
    period, note = common_period(dataset, base)
    ws = base.window_spec
    w1 = int(ws.window)
    n_train = train_rows(dataset, base.split)
    skipped: list[Trial] = []
    is_input = all(i is not None for i in ws.target_input_index)
    season_ok = None
    if not period or period < 2:
        season_ok = "no seasonal period in the data (period 1), so there is no last season to start from"
    elif period > n_train * MAX_SEASON_SHARE:
        season_ok = (f"the period ({period} steps) is longer than a third of the training part ({n_train:,} rows): "
                     "too few seasons to learn from")
    elif w1 < period and windows is not None:  # the user's window; otherwise the candidate gets a longer one
        season_ok = f"the window ({w1} steps) does not reach back one season ({period} steps)"
    stage1: list[Trial] = []
    for form in (f for f in forms if f != "change_smooth"):  # search_default adds smoothing at its own window
        if form != "level" and not is_input:
            skipped.append(Trial(form, w1, skipped="a target is not among the inputs"))
        elif form in SEASONAL_FORMS and (season_ok or (form == "change_both" and windows is not None
                                                        and w1 <= int(period))):
            skipped.append(Trial(form, w1, skipped=season_ok or (
                f"the window ({w1} steps) does not reach one season ({period} steps) behind its last step")))
        elif form in SEASONAL_FORMS and windows is None:
            stage1.append(Trial(form, season_window(dataset, base, int(period), w1)))
        else:
            stage1.append(Trial(form, w1))
    if windows is not None:
        extra = [int(w) for w in windows if int(w) != w1]
    elif period and period >= 2 and not period > n_train * MAX_SEASON_SHARE:
        # One period and two periods; the rule's own window (one period, or the shortest preset covering it)
        # is trained in stage 1, so stage 2 tries whichever of the two it is not.
        cap = _window_cap(dataset, base)
        one, two = max(int(period), int(_Q["min_window"])), 2 * int(period)
        extra = []
        for w in (one, two):
            if w == w1:
                continue
            if w > cap:
                skipped.append(Trial("change_last", w, skipped=f"a window of {w} steps is longer than this data "
                                                                f"allows ({cap} steps)"))
            else:
                extra.append(w)
        extra = extra[:1] if w1 in (one, two) else extra[-1:]  # at most one more window: the budget is for the forms
    else:
        extra = []
    return stage1 + skipped, extra, period, note


def smoothing_trial(dataset: Dataset, base: DefaultConfig, period: int | None) -> Trial:
    """The exponential smoothing candidate (core.search_rules.smoothing_window), or it skipped with the reason."""
    window, why = smoothing_window(period, _window_cap(dataset, base, SMOOTH_WINDOW_SHARE), train_rows(dataset, base.split),
                                   all(i is not None for i in base.window_spec.target_input_index))
    return Trial("change_linear", int(window or base.window_spec.window), skipped=why, smooth=True)


def season_window(dataset: Dataset, base: DefaultConfig, period: int, window: int) -> int:
    """The window a seasonal change candidate trains with: longer than one season, so the network sees the
    origin's own change from a season earlier (y[t] - y[t-P]), the correction that persists into the forecast.
    A window of exactly P reaches the reference of every label but not that: on the synthetic hourly series
    (h=1) change-from-last-season at window 24 stayed at seasonal naive (test MAE 0.247 against 0.247), at
    window 48 it learned (0.172). Two periods where the data allows, else one more step than the period."""
    if window > period:
        return window
    cap = _window_cap(dataset, base)
    return 2 * period if 2 * period <= cap else max(window, min(period + 1, cap))


def trial_epochs(windows: Any, config: Any) -> int:
    """The epochs one trial trains: at most ``TRIAL_EPOCHS`` (and the configuration's own), and at most
    ``TRIAL_WORK`` window rows of weight updates over the quick check's newest training windows."""
    n = min(int(windows.count("train")), int(DEFAULTS["quickcheck"]["max_train_windows"]))
    steps = max(1, math.ceil(n / int(config.batch_size)))
    by_work = TRIAL_WORK // (steps * int(windows.spec.window))
    return int(max(1, min(int(config.epochs), TRIAL_EPOCHS, by_work)))


def _config_for(dataset: Dataset, base: DefaultConfig, window: int, log: bool = False) -> DefaultConfig:
    """The defaults at another window (stride and epochs follow the window) and log form, the rest kept."""
    ws = base.window_spec
    if window == ws.window and log == ws.log:
        return base
    if window == ws.window:
        reasons = {k: v for k, v in base.reasons.items() if k != "log"}
        if log:
            reasons["log"] = LOG_REASON
        return dataclasses.replace(base, window_spec=dataclasses.replace(ws, log=log), reasons=reasons)
    cfg = default_config(dataset, ws.targets, features=tuple(c for c in ws.features if c not in ws.targets),
                         window=window, horizon=ws.horizon, calendar=ws.calendar, split=base.split,
                         scaler_kind=base.scaler_kind, log=log)
    return dataclasses.replace(cfg, reasons={**{k: v for k, v in base.reasons.items() if k != "log"},
                                             **{k: v for k, v in cfg.reasons.items() if k in ("stride", "training", "log")}})


def _naive_result(fallback: tuple, best: Trial, cfg: DefaultConfig, options: dict, period: int | None,
                  done: list, seconds: float, budget: float, stopped: bool, clock: bool, clock_text: str,
                  bt: Any = None) -> SearchResult:
    """The naive-equivalent default: ``fallback``'s form and window, started at zero output (issue 34); ``bt``: the
    backtest that overruled the validation part, if one did (its words go with the run, for the verdict)."""
    chosen, margin = fallback
    why = bt.clause() if bt is not None and bt.overruled else None
    model_options = {**cfg.model_options, **options, "target_form": chosen.target_form,
                     "season_period": int(period or 0) if chosen.target_form in SEASONAL_FORMS else 0}
    model_options.pop("residual", None)
    reasons = dict(cfg.reasons)
    reasons["search"] = naive_reason(best, chosen, margin, best.val_points, why) + clock_text
    reasons["target_form"] = reasons["residual"] = (
        "Target: the change from the " + ("value one season earlier" if chosen.target_form in SEASONAL_FORMS
                                          else "last value") + ", starting at zero change: the naive forecast itself.")
    config = dataclasses.replace(cfg, model_options=model_options, reasons=reasons,
                                 train_config=dataclasses.replace(cfg.train_config, naive_margin=margin,
                                                                  naive_backtest=why))
    return SearchResult(config, done, seconds, budget, period, stopped, clock, naive=chosen, backtest=bt)


def search_default(dataset: Dataset, base: DefaultConfig | None = None, *, targets: Any = None,
                   model_options: dict | None = None, forms: tuple[str, ...] = FORMS,
                   windows: tuple[int, ...] | None = None, budget_s: float | None = None,
                   progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
                   log: bool | None = None) -> SearchResult:
    """Try the candidates on the validation part and return the best as a DefaultConfig.

    ``base``: the rule-based defaults (``default_config``) the search starts from. ``model_options``:
    the architecture (kind, units, backend...) every candidate trains with. ``forms``/``windows``
    narrow the search (a user who fixed the window searches only the target form). ``budget_s``: the clock's
    safety stop for the whole search (default: BUDGET_FACTOR quick checks); each trial is bounded by work
    (``trial_epochs``), so the clock decides nothing unless it stops the search, and the result then says so.
    ``log``: the multiplicative (log) form for every candidate (True), for none (False), or (None) for every
    candidate where ``core.defaults.choose_log`` finds the season growing with the level, with one additive
    control (the stage-1 winner's form and window) in place of stage 2's runner-up, so the search costs no more.
    """
    from core.quickcheck import quick_check, warm_up  # quickcheck imports core.defaults: import here, not at the top

    base = base or default_config(dataset, targets)
    budget = float(budget_s if budget_s is not None else BUDGET_FACTOR * float(DEFAULTS["quickcheck"]["budget_s"]))
    options = {k: v for k, v in (model_options or {}).items()
               if v is not None and k not in ("residual", "target_form", "linear_base")}
    stage1, extra, period, note = plan(dataset, base, forms, windows)
    if "change_smooth" in forms and windows is None:  # exponential smoothing itself, at its own window
        stage1.append(smoothing_trial(dataset, base, period))
    why_log = choose_log(dataset, base.window_spec.targets, base.split, base.seasonality) if log is None else None
    log_mode = bool(log) if log is not None else why_log is not None
    control = log is None and log_mode  # the additive form must still win or lose on validation
    stage1 = [dataclasses.replace(t, log=log_mode) for t in stage1]
    to_run = [t for t in stage1 if t.skipped is None]
    n_planned = max(len(to_run) + (min(2, len(to_run)) if extra else 0) + (1 if control and not extra else 0), 1)
    # The frameworks' start-up is paid before the clock: inside it, the first trial alone lost seconds of its
    # share to imports (weather h=24 on a busy machine: change from last value trained 2 epochs in 10.5 s, the
    # others 5-8 epochs in 5-6 s), and the choice leaned against whichever form went first.
    if progress:
        progress(0.0, "Starting the training frameworks")
    warm_up(str(options.get("backend") or DEFAULTS["model"].get("backend", "keras")),
            str(options.get("kind") or DEFAULTS["model"].get("kind", "lstm")))
    t0 = time.perf_counter()
    done: list[Trial] = [t for t in stage1 if t.skipped is not None]
    made: dict[tuple[int, bool], tuple[DefaultConfig, Any]] = {}
    stopped = False

    def report(msg: str) -> None:
        if progress:
            progress(min(len([t for t in done if t.skipped is None]) / n_planned, 1.0), msg)

    def windows_for(window: int, log_form: bool):
        if (window, log_form) not in made:
            cfg = _config_for(dataset, base, window, log_form)
            made[window, log_form] = (cfg, make_windows(dataset, cfg.window_spec, cfg.split, scaler_kind=cfg.scaler_kind))
        return made[window, log_form]

    def spec_for(trial: Trial, cfg: DefaultConfig) -> ModelSpec:
        # Relative inputs (the level leaves the training range: core.defaults) apply to change forms only.
        relative = bool(options.get("relative", cfg.model_options.get("relative"))) and trial.target_form != "level"
        return ModelSpec.for_windows(cfg.window_spec, **{**options, "relative": relative}, target_form=trial.target_form,
                                     season_period=int(period or 0) if trial.target_form in PERIOD_FORMS else 0,
                                     linear_base="smooth" if trial.smooth else "")

    def run_trial(trial: Trial) -> Trial:
        cfg, win = windows_for(trial.window, trial.log)
        if win.count("val") == 0:
            return dataclasses.replace(trial, skipped="the validation part has no windows at this window length")
        # Work, not time, bounds the trial: the clock only stops it when the whole search's safety limit is spent.
        tc = dataclasses.replace(cfg.train_config, epochs=trial_epochs(win, cfg.train_config))
        left = budget - (time.perf_counter() - t0)
        qc = quick_check(win, spec_for(trial, cfg), tc, budget_s=max(left, 0.0), reserve_s=TRIAL_RESERVE_S)
        return dataclasses.replace(trial, score=qc.model_mae, compared_by=qc.compared_by, seconds=qc.seconds,
                                   epochs_run=qc.epochs_run, best_baseline=qc.best_baseline,
                                   clock_stopped=bool(qc.cut_by_budget), margin_se=qc.paired_se,
                                   val_points=int(qc.val_points),
                                   baseline_score=qc.baselines.get(qc.best_baseline) if qc.best_baseline else None)

    queue = list(to_run)
    stage2_added = stretched = False

    def screen(window: int, log_form: bool) -> float | None:
        from core.linear_reference import screen_error

        try:
            return screen_error(windows_for(window, log_form)[1], int(period or 0))
        except StudioError:  # a window the data cannot make: not a candidate
            return None
    while queue:
        if should_stop and should_stop():
            stopped = True
            break
        scored_so_far = [t for t in done if t.score is not None]
        # The safety stop: once the clock passes it, no further trial starts (the first always runs, so there is
        # a model to choose), and the result says the clock, not the data, ended the search.
        if scored_so_far and time.perf_counter() - t0 > budget:
            done += [dataclasses.replace(t, skipped=CLOCK_SKIP) for t in queue]
            queue = []
            break
        trial = queue.pop(0)
        report(f"Trying {trial.label} ({len([t for t in done if t.skipped is None]) + 1} of {n_planned})")
        try:
            done.append(run_trial(trial))
        except StudioError as e:
            done.append(dataclasses.replace(trial, skipped=e.problem))
        if not queue and not stage2_added and extra:
            stage2_added = True
            ranked = sorted((t for t in done if t.score is not None), key=lambda t: t.score)
            follow = [t.target_form for t in ranked[:2] if not t.smooth and (t.target_form != "level" or t is ranked[0])]
            tried = {(t.target_form, t.window) for t in done if not t.smooth}
            for w in extra:
                for form in follow[:1 if control else 2]:
                    if form in SEASONAL_FORMS and period and w <= period:
                        continue
                    if (form, w) not in tried:
                        queue.append(Trial(form, w, log=log_mode))
            if control and ranked:
                queue.append(Trial(ranked[0].target_form, ranked[0].window, log=False, smooth=ranked[0].smooth))
        elif not queue and control and not stage2_added:
            stage2_added = True
            ranked = sorted((t for t in done if t.score is not None), key=lambda t: t.score)
            if ranked:
                queue.append(Trial(ranked[0].target_form, ranked[0].window, log=False, smooth=ranked[0].smooth))
        if not queue and not stretched and windows is None and (stage2_added or not (extra or control)):
            stretched = True  # last: a linear winner's longer window, where the linear forecast alone says it pays
            now = [t for t in done if t.score is not None]
            lead = pick(now)
            longer = linear_stretch(lead, now, _window_cap(dataset, base), lambda w: screen(w, lead.log))
            if longer is not None:
                queue.append(Trial("change_linear", longer, log=lead.log))
                n_planned += 1  # the progress line counts it ("9 of 9", not "9 of 8")
    scored = [t for t in done if t.score is not None]
    best = keep_log(pick(scored), scored, NAIVE_Z)  # a log rival of the same form exists only as control's
    fallback = naive_fallback(best, scored) if best else None
    rescued = "noise" if fallback is not None and linear_rescue(scored) is not None else ""
    if rescued:  # the linear forecast beats the naive one where no better-scoring network did: it is the default
        best, fallback = linear_rescue(scored), None
    bt = None

    def run_backtest(trial: Trial) -> Any:
        report(f"Backtesting {trial.label} at earlier origins (a short series)")
        bcfg = windows_for(trial.window, trial.log)[0]
        return backtest(dataset, bcfg, spec_for(trial, bcfg), trial, lambda w: dataclasses.replace(
            bcfg.train_config, epochs=trial_epochs(w, bcfg.train_config)), budget - (time.perf_counter() - t0))

    if (best is not None and fallback is None and not stopped and best.baseline_score is not None
            and needs_backtest(windows_for(best.window, best.log)[1])):
        # A short series: validation chose the network; earlier origins must agree (core.backtest).
        bt = run_backtest(best)
        fallback = naive_fallback(best, scored, held=True) if bt.overruled else None
        lin = linear_rescue(scored) if fallback is not None and best.target_form != "change_linear" else None
        if lin is not None:  # the network's lead did not hold at earlier origins; the linear forecast's may
            bt_lin = run_backtest(lin)
            if not bt_lin.overruled:
                best, fallback, bt, rescued = lin, None, bt_lin, "backtest"
    seconds = time.perf_counter() - t0
    clock = any(t.clock_stopped or t.skipped == CLOCK_SKIP for t in done) or bool(bt and bt.clock_stopped)
    clock_text = (f" The clock's safety stop ({budget:.0f} s) ended the search before every trial finished its "
                  "work, so this choice depends on the machine's speed; on a quieter machine it may differ."
                  if clock else "")
    if not scored:
        reasons = {**base.reasons, "search": "Candidate search: no candidate could be scored on the validation part "
                                             "(" + "; ".join(f"{t.label}: {t.skipped}" for t in done if t.skipped) +
                                             "); the rule-based default is kept." + clock_text}
        return SearchResult(dataclasses.replace(base, reasons=reasons), done, seconds, budget, period, stopped, clock)
    if fallback is not None:
        return _naive_result(fallback, best, windows_for(fallback[0].window, fallback[0].log)[0], options, period, done,
                             seconds, budget, stopped, clock, clock_text, bt)
    cfg, _ = windows_for(best.window, best.log)
    chosen_options = {**cfg.model_options, **options, "target_form": best.target_form,
                      "season_period": int(period or 0) if best.target_form in PERIOD_FORMS else 0,
                      "linear_base": "smooth" if best.smooth else ""}
    chosen_options.pop("residual", None)
    chosen_options["relative"] = bool(chosen_options.get("relative")) and best.target_form != "level"
    key = best.compared_by.upper()
    tried = "; ".join(f"{t.label} {t.score:.4g}" for t in sorted(scored, key=lambda t: t.score))
    runner = next((t for t in sorted(scored, key=lambda t: t.score) if t is not best), None)
    margin = (f", {100 * (runner.score - best.score) / runner.score:.0f}% below the next ({runner.label})"
              if runner and runner.score > best.score > 0 else "")
    skipped = [t for t in done if t.skipped]
    skip_text = (" Skipped: " + "; ".join(f"{t.label}: {t.skipped}" for t in skipped) + ".") if skipped else ""
    base_text = ""
    if best.best_baseline and best.baseline_score is not None:
        from core.metrics import BASELINE_LABELS

        base_text = (f" The best naive forecast on the same windows, {BASELINE_LABELS.get(best.best_baseline, best.best_baseline)}, "
                     f"scores {best.baseline_score:.4g}.")
    reasons = dict(cfg.reasons)
    lowest = min(scored, key=lambda t: t.score)
    why = why_won(best, lowest, key, LEVEL_MARGIN, rescued, WINDOW_MARGIN)
    reasons["search"] = (f"Chosen on validation: {best.label} {why}"
                         f"{margin}). Tried, in {seconds:.0f} s of short trainings (each at most {TRIAL_EPOCHS} epochs and "
                         f"{TRIAL_WORK:,} window rows of updates): {tried}.{base_text}{skip_text}{note}{clock_text}"
                         + (bt.summary() if bt is not None else ""))
    reasons["target_form"] = form_reason(best.target_form, period, best.smooth)
    reasons["residual"] = reasons["target_form"]
    if why_log is not None:
        reasons["log"] = ((LOG_REASON + f" Tried because {why_log}." if best.log else
                           f"Additive target: the multiplicative (log) form was tried ({why_log}) and lost on validation.")
                          if best.log or any(t.log for t in scored) else reasons.get("log", ""))
        if not reasons["log"]:
            reasons.pop("log")
    if best.window != base.window_spec.window:
        reasons["window"] = (f"Window {describe_steps(best.window, dataset.freq, dataset.calendar)}: "
                             f"{window_words(best.window, period)}, which won on validation over "
                             f"{describe_steps(base.window_spec.window, dataset.freq, dataset.calendar)}.")
    chosen = dataclasses.replace(cfg, model_options=chosen_options, reasons=reasons)
    return SearchResult(chosen, done, seconds, budget, period, stopped, clock, backtest=bt, winner=best)
