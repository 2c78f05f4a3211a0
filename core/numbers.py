"""The one validator for numbers a user hands over: on the command line, in a form, or in a file.

``--horizon 0`` silently became 1, ``--timeout nan`` spun forever, a scaler scale of 0 or 1e308 exported as
"max error 0". Every count and duration goes through ``check_number`` (or its argparse forms
``positive_int`` / ``positive_float``), every array of constants read back from a file through
``check_finite``: zero where zero means nothing, negative, NaN, infinite and absurdly large values are
refused with a message naming the option or field and its allowed range.
"""
from __future__ import annotations

import argparse
import math
from typing import Any

import numpy as np

from core.errors import StudioError


def _range_text(minimum: float | None, maximum: float | None, integer: bool, above: float | None = None) -> str:
    kind = "a whole number" if integer else "a number"
    if above == 0:
        return "positive" + (f" and at most {maximum:g}" if maximum is not None else "")
    if above is not None:
        return f"{kind} above {above:g}" + (f" and at most {maximum:g}" if maximum is not None else "")
    lo = None if minimum is None else (f"{minimum:g}" if not integer else str(int(minimum)))
    hi = None if maximum is None else (f"{maximum:g}" if not integer else str(int(maximum)))
    if lo is not None and hi is not None:
        return f"{kind} from {lo} to {hi}"
    if lo is not None:
        return f"{kind} of at least {lo}"
    if hi is not None:
        return f"{kind} of at most {hi}"
    return f"a finite {kind[2:]}"


def check_number(value: Any, name: str, *, integer: bool = False, minimum: float | None = None,
                 maximum: float | None = None, above: float | None = None, fix: str | None = None) -> float | int:
    """``value`` as an int (``integer``) or a finite float within [minimum, maximum]; StudioError otherwise.

    Booleans are not numbers here, strings are parsed, and a float given for a whole number must be whole.
    """
    wanted = _range_text(minimum, maximum, integer, above)
    hint = fix or ""

    def bad(what: str) -> StudioError:
        return StudioError(f"{name} {what}; it must be {wanted}.", hint)

    if isinstance(value, bool) or value is None:
        raise bad(f"is {value!r}")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text) if integer and text.lstrip("+-").isdigit() else float(text)
        except ValueError:
            raise bad(f"is {text[:40]!r}, not a number") from None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise bad(f"is {type(value).__name__}, not a number") from None
    if not math.isfinite(number):
        raise bad(f"is {number}")
    if integer:
        if isinstance(value, (int, np.integer)):
            number = int(value)
        elif number != int(number):
            raise bad(f"is {number:g}, not a whole number")
        else:
            number = int(number)
    if minimum is not None and number < minimum:
        raise bad(f"is {number:g}" if not integer else f"is {number}")
    if above is not None and number <= above:
        raise bad(f"is {number:g}")
    if maximum is not None and number > maximum:
        raise bad(f"is {number:g}" if not integer else f"is {number}")
    return number


def _argtype(name: str, integer: bool, minimum: float | None, maximum: float | None, above: float | None = None):
    def parse(text: str):
        try:
            return check_number(text, name, integer=integer, minimum=minimum, maximum=maximum, above=above)
        except StudioError as err:
            # argparse prints "error: argument --x: <this>" and exits 2: one line, as the CLI promises.
            text = str(err)
            raise argparse.ArgumentTypeError(text[len(name) + 1:] if text.startswith(name + " ") else text) from None

    parse.__name__ = "whole number" if integer else "number"
    return parse


def positive_int(name: str, maximum: int, minimum: int = 1):
    """argparse type: a whole number from minimum (1 unless given) to maximum."""
    return _argtype(name, True, minimum, maximum)


def positive_float(name: str, maximum: float, minimum: float = 0.0, inclusive: bool = False):
    """argparse type: a finite number above 0 (or from ``minimum``, inclusive when asked) up to maximum."""
    if inclusive:
        return _argtype(name, False, minimum, maximum)
    return _argtype(name, False, None, maximum, above=minimum)


def check_finite(values: Any, name: str, *, positive: bool = False, max_abs: float = 1e30,
                 fix: str = "Train the model again to write it afresh.") -> np.ndarray:
    """An array of constants read back from a file (a scaler's centers and scales, quantisation
    parameters): every value finite, within ±max_abs, and above 0 when ``positive``."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise StudioError(f"{name} holds something that is not a list of numbers.", fix) from None
    if arr.size and not np.all(np.isfinite(arr)):
        raise StudioError(f"{name} holds NaN or infinite values.", fix)
    if arr.size and np.max(np.abs(arr)) > max_abs:
        raise StudioError(f"{name} holds {np.max(np.abs(arr)):.3g}, beyond the ±{max_abs:.0e} the studio accepts.", fix)
    if positive and arr.size and np.min(arr) <= 0:
        raise StudioError(f"{name} holds {np.min(arr):.3g}; every value must be above 0 (a scale of 0 divides by zero).",
                          fix)
    return arr
