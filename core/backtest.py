"""A rolling-origin backtest of the search's winner on short series (issue 34).

On a short series the validation part is a season or less, too little to choose between a network and the naive
forecast: on the 84-row souvenir-like series of bench_quality_shapes 12 validation points said the network was 40%
better than seasonal naive (2.7 standard errors) and the 13 test points said it was 48% worse. So where the
winner's training part holds fewer than ``MAX_TRAIN_WINDOWS`` windows and the validation part says the network
beats the naive forecast, the same configuration (form, window, architecture, seed and work bound) is trained again
at up to ``FOLDS`` earlier origins, each on the data before it, and scored on the next validation-sized block
against the same naive forecast. The network is kept only when it beats the naive on all the blocks pooled (the
validation part included) by the margin the pooled size supports (``core.naive_default.beats_naive``). Long
series never run it: their validation part is large enough to judge by, and their trainings are not cheap.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any, Callable

from core.dataset import Dataset
from core.errors import StudioError
from core.metrics import BASELINE_LABELS, NAIVE_Z
from core.naive_default import beats_naive
from core.windows import SplitSpec, make_windows

# A training part of fewer windows than this is "short": a few hundred windows is where the validation part
# (15% of the rows) shrinks to a season or two of points. The 84..240-row monthly series run it, the 730-row daily
# one (about 500 windows) does not.
MAX_TRAIN_WINDOWS = 300
# Earlier origins, one validation block apart: two more blocks triple the points the choice rests on, and on a
# short series each costs one short training (about a second on 2 cores).
FOLDS = 2
# An origin whose training part would hold fewer windows than this is skipped: a network trained on so little
# says more about the lack of data than about the configuration.
MIN_FOLD_TRAIN_WINDOWS = 10
# ...or fewer than this share of the windows the validation origin trains on: a network trained on much less
# data than the one being judged loses for want of data, not for its configuration (solar, 289 half-hourly rows:
# two blocks back left 65 of 153 windows, that fold was 66% worse than last value where validation and the fold
# one block back said 30% and 13% better, and the pooled blocks overruled a network ETS-close on test).
MIN_FOLD_TRAIN_SHARE = 0.5
RESERVE_S = 1.0  # what each fold keeps for scoring inside the clock's safety stop (as a search trial does)


@dataclass(frozen=True)
class Fold:
    """One block: the network's and the naive forecast's validation scores on it (fold 0: the validation part)."""

    origin: str                # time (or step) of the block's first label row
    points: int
    score: float
    base: float
    se: float | None           # None with a single window (horizon a season): it borrows the others' (``pooled``)
    seconds: float = 0.0
    epochs_run: int = 0
    clock_stopped: bool = False


@dataclass(frozen=True)
class Backtest:
    baseline: str              # the naive forecast the validation part compared against
    label: str                 # the winner's label
    folds: tuple[Fold, ...]    # the validation part first, then the earlier origins, newest first
    seconds: float
    skipped: str = ""          # why fewer than FOLDS earlier origins ran
    form: str = ""             # the winner's target form: a linear forecast must win by more (beats_naive)...
    smooth: bool = False       # ...unless it is exponential smoothing itself (ModelSpec.linear_base "smooth")

    @property
    def pooled(self) -> tuple[float, float, float | None, int]:
        """(model score, naive score, standard error of their difference, points) over every block: means
        weighted by points, and the blocks' standard errors combined as independent estimates. A block of one
        window (no spread of its own) borrows the mean standard error of the others, which are the same size on
        the same series; with none to borrow from the error is None, and nothing is overruled."""
        w = [f.points for f in self.folds]
        n = float(sum(w))
        score = sum(wi * f.score for wi, f in zip(w, self.folds)) / n
        base = sum(wi * f.base for wi, f in zip(w, self.folds)) / n
        known = [f.se for f in self.folds if f.se is not None]
        if not known:
            return score, base, None, int(n)
        fill = sum(known) / len(known)
        se = math.sqrt(sum((wi * (fill if f.se is None else f.se)) ** 2 for wi, f in zip(w, self.folds))) / n
        return score, base, se, int(n)

    @property
    def keeps_network(self) -> bool:
        score, base, se, _ = self.pooled
        return len(self.folds) < 2 or se is None or beats_naive(score, base, se, self.form, self.smooth)

    @property
    def overruled(self) -> bool:
        """Validation alone said the network wins (the backtest runs only then) and the pooled blocks do not."""
        return not self.keeps_network

    @property
    def clock_stopped(self) -> bool:
        return any(f.clock_stopped for f in self.folds)

    def clause(self) -> str:
        """In plain words, what the blocks said (a clause: the verdict and the search's reason frame it)."""
        name = BASELINE_LABELS.get(self.baseline, self.baseline)
        val, early = self.folds[0], self.folds[1:]
        if not early:
            return f"no earlier origin could be backtested ({self.skipped})"

        def rel(f_score: float, f_base: float) -> str:
            if not f_base > 0:
                return f"{f_score:.4g} against {f_base:.4g}"
            pct = 100 * (f_score - f_base) / f_base
            return f"{abs(pct):.0f}% {'worse' if pct > 0 else 'better'} than {name}"

        score, base, se, points = self.pooled
        blocks = "; ".join(f"from {f.origin}: {rel(f.score, f.base)}" for f in early)
        sd = "one standard error" if NAIVE_Z == 1 else f"{NAIVE_Z:g} standard errors"
        if se is None:
            pooled = f"{rel(score, base)}, with no block of two windows to tell its noise by"
        elif self.keeps_network:
            pooled = f"{rel(score, base)}, more than the {sd} ({se:.3g}) that many points can tell apart"
        elif score >= base:
            pooled = rel(score, base)
        else:
            pooled = f"{rel(score, base)}, within the {sd} ({se:.3g}) that many points can tell apart"
        return (f"on validation ({val.points} points) the network ({self.label}) was {rel(val.score, val.base)}, "
                f"{'and' if self.keeps_network else 'but'} trained the same way on the data before {len(early)} "
                f"earlier origin{'s' if len(early) > 1 else ''} it was, on the next {early[0].points} points each, "
                f"{blocks}; over all {points} points it was {pooled}")

    def summary(self) -> str:
        """The sentence the search's reason ends with when the network is kept."""
        if len(self.folds) < 2:
            return f" No backtest: {self.clause()}."
        if self.keeps_network:
            return f" A backtest ({self.seconds:.0f} s) agreed: {self.clause()}."
        return (f" A backtest ({self.seconds:.0f} s) disagreed: {self.clause()}; but "
                f"{BASELINE_LABELS.get(self.baseline, self.baseline)} has no zero-change form here, so the network stays.")

    def to_dict(self) -> dict:
        score, base, se, points = self.pooled
        return {"baseline": self.baseline, "folds": [dataclasses.asdict(f) for f in self.folds],
                "seconds": self.seconds, "skipped": self.skipped, "pooled": {"score": score, "baseline": base,
                                                                             "se": se, "points": points},
                "keeps_network": self.keeps_network, "overruled": self.overruled, "clause": self.clause()}


def _when(x: Any) -> str:
    """A block's first time in words: the date alone where the time of day says nothing."""
    if hasattr(x, "strftime"):
        return x.strftime("%Y-%m-%d" if (x.hour, x.minute, x.second) == (0, 0, 0) else "%Y-%m-%d %H:%M")
    return f"step {x}"


def needs_backtest(windows: Any) -> bool:
    """True on a short series: the winner's training part holds fewer than ``MAX_TRAIN_WINDOWS`` windows."""
    return int(windows.count("train")) < MAX_TRAIN_WINDOWS


def backtest(dataset: Dataset, cfg: Any, spec: Any, best: Any, train_config_for: Callable[[Any], Any],
             budget_s: float) -> Backtest:
    """Score ``best`` (a search Trial, scored on the validation part) at up to ``FOLDS`` earlier origins.

    ``cfg``: its DefaultConfig (window spec, split, scaler); ``spec``: its ModelSpec; ``train_config_for(windows)``:
    the search's work-bounded TrainConfig for a fold's windows; ``budget_s``: what is left of the search's safety
    stop (a fold never starts past it, and one it cuts says so)."""
    from core.quickcheck import quick_check  # quickcheck imports core.training: only when a backtest runs

    t0 = time.perf_counter()
    index = dataset.frame.index
    t, v = cfg.split.bounds(index)
    block = v - t
    folds = [Fold(_when(index[t]), int(best.val_points), float(best.score), float(best.baseline_score),
                  None if best.margin_se is None else float(best.margin_se))]
    skipped = ""
    origin = make_windows(dataset, cfg.window_spec, cfg.split, scaler_kind=cfg.scaler_kind)
    n_val_origin = origin.count("train")
    least = max(MIN_FOLD_TRAIN_WINDOWS, math.ceil(MIN_FOLD_TRAIN_SHARE * n_val_origin))
    for k in range(1, FOLDS + 1):
        tk, vk = t - k * block, v - k * block
        if time.perf_counter() - t0 > budget_s:
            skipped = "the clock's safety stop ended the search first"
            break
        try:
            # The validation origin's seasons: every fold judges the model against the same seasonal naive.
            win = make_windows(dataset, cfg.window_spec, SplitSpec(train_end=index[tk], val_end=index[vk]),
                               scaler_kind=cfg.scaler_kind, seasons=origin.seasons) if tk > 0 else None
        except StudioError as e:
            win, skipped = None, e.problem
        if win is None or win.count("train") < least or win.count("val") == 0:
            skipped = skipped or (f"the data before the origin {k + 1} blocks back holds fewer than {least} training "
                                  f"windows (half the validation origin's {n_val_origin}, at least "
                                  f"{MIN_FOLD_TRAIN_WINDOWS})")
            break
        left = budget_s - (time.perf_counter() - t0)
        tc = train_config_for(win)
        # An earlier origin can leave fewer windows than one batch (the 84-row series at h=12: 21 against 32):
        # one batch then holds them all, as it nearly does at the validation origin (45 windows, 2 batches).
        tc = dataclasses.replace(tc, batch_size=min(int(tc.batch_size), int(win.count("train"))))
        try:
            qc = quick_check(win, spec, tc, budget_s=max(left, 0.0), reserve_s=RESERVE_S, against=best.best_baseline)
        except StudioError as e:
            skipped = e.problem
            break
        base = qc.baselines.get(best.best_baseline)
        if qc.model_mae is None or base is None:
            skipped = f"the block from {_when(index[tk])} could not be scored against {best.best_baseline}"
            break
        folds.append(Fold(_when(index[tk]), int(qc.val_points), float(qc.model_mae), float(base),
                          None if qc.paired_se is None else float(qc.paired_se),
                          qc.seconds, int(qc.epochs_run), bool(qc.cut_by_budget)))
    return Backtest(str(best.best_baseline), best.label, tuple(folds), time.perf_counter() - t0, skipped,
                    str(getattr(best, "target_form", "")), bool(getattr(best, "smooth", False)))
