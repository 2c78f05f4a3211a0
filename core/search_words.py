"""The candidate search's sentences (core.search): why the chosen target form won, in words. Kept apart so that
core.search stays the procedure."""
from __future__ import annotations

from typing import Any

from core.search_rules import same_kind


def form_reason(form: str, period: int | None, smooth: bool = False) -> str:
    """The reason for the chosen target form, when it won on validation (``smooth``: exponential smoothing itself)."""
    if smooth:
        return ("Target: the change from exponential smoothing (Holt-Winters run over the window, its parameters "
                "fitted on the training part); the model adds it back and starts at it, so a network with nothing to "
                "add stays that forecast. It won on validation.")
    return {
        "level": "Target: the level itself; on validation it beat predicting a change.",
        "change_last": "Target: the change from the last value (the model adds the last value back); it won on validation.",
        "change_season": (f"Target: the change from the value one season ({period} steps) earlier at each forecast step; "
                          "the model adds that value back, so every output is a level. It won on validation."),
        "change_both": (f"Target: the change from the last value plus what followed it one season ({period} steps) "
                        "earlier (last season's shape, started from today's level); the model adds that reference "
                        "back, so every output is a level. It won on validation."),
        "change_linear": ("Target: the change from a linear forecast (a ridge autoregression over the window, fitted on "
                          "the training part); the model adds it back and starts at it, so a network with nothing to "
                          "add stays that forecast. It won on validation."),
    }[form]


def why_won(best: Any, lowest: Any, key: str, level_margin: float, rescued: str = "", window_margin: float = 0.0) -> str:
    """The clause after the winner's label: it had the lowest score, or why a lower one lost to it. ``rescued``:
    "noise" (the lower ones did not beat the naive forecast by the rule; the linear forecast did) or "backtest" (the
    chosen network's lead did not hold at earlier origins; the linear forecast's did)."""
    if rescued == "backtest":
        return (f"won ({best.score:.4g}; a network that scored lower on validation lost to the naive forecast in a "
                f"backtest at earlier origins, where the linear forecast kept its lead: the linear forecast, not the "
                f"naive one, is then the default")
    if lowest is best:
        return f"had the lowest validation {key} ({best.score:.4g}"
    if rescued:
        what, rule = (("exponential smoothing", "one of its own") if getattr(best, "smooth", False) else
                      ("the linear forecast", "one and a half of its own and by more than 2%"))
        return (f"won ({best.score:.4g}; {lowest.label} scored {lowest.score:.4g} but did not beat the best naive "
                f"forecast by one standard error of the difference ({lowest.margin_se:.3g}), while {what} "
                f"beat it by {rule}: {what}, not the naive one, is then the default")
    return (f"won ({best.score:.4g}; {lowest.label} scored {lowest.score:.4g}, " + (
        f"within one standard error ({lowest.margin_se:.3g}) of it: an additive control must beat the "
        "multiplicative form clearly" if best.log and not lowest.log else
        f"less than the {window_margin:.0%} a longer window must win by, since it costs training time and the "
        "board's memory and time" if same_kind(lowest, best) and lowest.window > best.window else
        f"less than the {level_margin:.0%} a level target must win by, since it cannot forecast past the "
        "training range"))


def window_words(window: int, period: int | None) -> str:
    """A chosen window in seasons where it is whole ones ("two seasonal periods (24 steps each)"), else in steps."""
    if period and period >= 2 and window % period == 0:
        k = window // period
        count = {1: "one seasonal period", 2: "two seasonal periods", 4: "four seasonal periods",
                 8: "eight seasonal periods"}.get(k, f"{k} seasonal periods")
        return f"{count} ({period} steps {'each' if k > 1 else 'long'})"
    return f"{window} steps"
