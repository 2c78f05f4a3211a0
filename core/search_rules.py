"""How the default search picks its winner among scored trials (core.search): the rules, apart from the running."""
from __future__ import annotations

from typing import Any

# A level target wins only by this much over the best change form on validation: the validation part sits
# just after the training range, and a level model cannot forecast past that range (weekly CO2: level won
# validation by a hair under a loaded machine's short trainings, then scored test MAE 0.715 against last
# value's 0.398, where change from last value scores 0.314).
LEVEL_MARGIN = 0.10


# A longer window wins only by this much over a shorter one of the same form: it costs training time, the board's
# arena and its time per forecast. On the bundled weather sample (h=1) the linear forecast at 48 steps scored 0.3545
# against 0.3551 at 24 on validation and took 20 s to train against 11 s.
WINDOW_MARGIN = 0.02


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
    shorter = [t for t in scored if (t.target_form, t.log) == (best.target_form, best.log) and t.window < best.window
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
    if best is None or best.target_form != "change_linear":
        return None
    longest = max(t.window for t in scored if (t.target_form, t.log) == (best.target_form, best.log))
    here = error_at(best.window)
    if here is None or not here > 0:
        return None
    errors = [(e, w) for w in (2 * longest, 4 * longest) if w <= cap and (e := error_at(w)) is not None]
    if not errors:
        return None
    error, window = min(errors)
    return window if error < (1 - STRETCH_MARGIN) * here else None
