"""How the default search picks its winner among scored trials (core.search): the rules, apart from the running."""
from __future__ import annotations

from typing import Any

from core.defaults import target_seasonality


def common_period(dataset: Any, base: Any) -> tuple[int | None, str]:
    """(period, note): one period for every target, the first target's; the note names any that differ."""
    targets = base.window_spec.targets
    period = base.seasonality.period
    if len(targets) < 2:
        return period, ""
    others = {t: target_seasonality(dataset, t, base.split).period for t in targets[1:]}
    differ = {t: p for t, p in others.items() if p != period}
    if not differ:
        return period, ""
    listed = ", ".join(f"{t} {p or 'none'}" for t, p in differ.items())
    return period, (f" The targets' periods differ ({targets[0]} {period or 'none'}, {listed}); the seasonal change "
                    f"uses the first target's period, {period} steps, for every target.")


# A level target wins only by this much over the best change form on validation: the validation part sits
# just after the training range, and a level model cannot forecast past that range (weekly CO2: level won
# validation by a hair under a loaded machine's short trainings, then scored test MAE 0.715 against last
# value's 0.398, where change from last value scores 0.314).
LEVEL_MARGIN = 0.10


# A longer window wins only by this much over a shorter one of the same form: it costs training time, the board's
# arena and its time per forecast. On the bundled weather sample (h=1) the linear forecast at 48 steps scored 0.3545
# against 0.3551 at 24 on validation and took 20 s to train against 11 s.
WINDOW_MARGIN = 0.02


def same_kind(a: Any, b: Any) -> bool:
    """The same candidate at another window: form, log choice and linear reference (a ridge, or smoothing itself)."""
    return (a.target_form, a.log, getattr(a, "smooth", False)) == (b.target_form, b.log, getattr(b, "smooth", False))


def pick(scored: list) -> Any:
    """The winner: the lowest validation score, except that a level target must beat the best change form
    by ``LEVEL_MARGIN``, and a window must beat a shorter one of the same form (and log choice) by ``WINDOW_MARGIN``."""
    if not scored:
        return None
    best = min(scored, key=lambda t: t.score)
    changes = [t for t in scored if t.target_form != "level"]
    if best.target_form == "level" and changes:
        change = min(changes, key=lambda t: t.score)
        if not best.score < (1 - LEVEL_MARGIN) * change.score:
            best = change
    shorter = [t for t in scored if same_kind(t, best) and t.window < best.window
               and not best.score < (1 - WINDOW_MARGIN) * t.score]
    return min(shorter, key=lambda t: (t.window, t.score)) if shorter else best


# A change_linear winner gets one more trial at a longer window (2 or 4 times the longest it was tried at) when the
# linear forecast alone (core.linear_reference.screen_error: a ridge, no training) does this much better there on
# validation. Daily births (bench_quality_shapes, h=1): the linear forecast alone at 14, 28, 56 and 112 days scored
# 249, 231, 209 and 215 on validation and 254, 244, 233 and 223 on test: averaging more same-weekday values is what
# exponential smoothing wins with (211). On the 17,520-row weather sample a longer window gains 1-2%: no trial.
STRETCH_MARGIN = 0.05


def linear_stretch(best: Any, scored: list, cap: int, error_at: Any) -> int | None:
    """The longer window to try for ``best`` (a change_linear trial), or None; ``error_at(window)`` is the linear
    forecast's screen error at that window (None where it cannot be measured)."""
    if best is None or best.target_form != "change_linear" or getattr(best, "smooth", False):
        return None
    longest = max(t.window for t in scored if same_kind(t, best))
    here = error_at(best.window)
    if here is None or not here > 0:
        return None
    errors = [(e, w) for w in (2 * longest, 4 * longest) if w <= cap and (e := error_at(w)) is not None]
    if not errors:
        return None
    error, window = min(errors)
    return window if error < (1 - STRETCH_MARGIN) * here else None


# Exponential smoothing itself as a candidate (issue 34): Holt-Winters run over the window comes within 10% of the
# full-history ETS forecast on four fifths of 55 real rows from four seasons of window, and is a tenth worse in the
# median at two (bench_smoothing_window). Four seasons where the data allows them, else three; a series with no
# season gets 32 rows (four of the eight-step phases the no-season case of that bench used).
SMOOTH_SEASONS = (4, 3)
SMOOTH_NO_SEASON = 32
# Its window may take up to half the training rows, not the networks' quarter (core.defaults): the smoothing is a
# fixed sum over the window, and the other half still gives the network on top its training windows.
SMOOTH_WINDOW_SHARE = 0.5


def smoothing_window(period: int | None, cap: int, n_train: int, targets_in: bool = True) -> tuple[int | None, str | None]:
    """(window, None) for the exponential smoothing candidate, or (None, why it cannot run on this data)."""
    from core.linear_reference import SMOOTH_MAX_ROWS

    if not targets_in:
        return None, "a target is not among the inputs"
    if n_train > SMOOTH_MAX_ROWS:
        return None, f"exponential smoothing is fitted on training parts of at most {SMOOTH_MAX_ROWS:,} rows ({n_train:,} here)"
    m = int(period or 0)
    tries = [k * m for k in SMOOTH_SEASONS] if m >= 2 else [SMOOTH_NO_SEASON]
    fits = [w for w in tries if w <= cap]
    if fits:
        return fits[0], None
    seasons = f" ({SMOOTH_SEASONS[-1]} seasons)" if m >= 2 else ""
    return None, f"exponential smoothing needs a window of {tries[-1]} steps{seasons}; this data allows {cap}"
