"""How a number reads in every table the studio shows (the pages' tables and the command line's).

One formatter, so a page never shows ``1.365e+04``, ``0.0 s`` for a tenth of a second, or a raw ``None``:
whole numbers with thousands separators, other numbers to four significant digits without an exponent
between 0.001 and ten million, and an empty cell as a dash. ``COUNT_WORDS`` is the one vocabulary for counts:
a *window* is one forecast made from one look-back, a *step* is one step ahead within it, and the scored
*values* are windows x steps x targets.
"""
from __future__ import annotations

import math
from typing import Any

EMPTY = "—"
COUNT_WORDS = {"windows": "windows", "steps": "steps ahead", "values": "forecast values (windows × steps × targets)"}


def readable(value: Any, digits: int = 4) -> str:
    """One cell as a person reads it: ``13650`` -> "13,650", ``0.0421`` -> "0.0421", None/NaN -> "—"."""
    if value is None or isinstance(value, str):
        return EMPTY if value in (None, "", "None", "nan") else value
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing values in integer and time columns
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return EMPTY if math.isnan(v) else ("∞" if v > 0 else "−∞")
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    if 1e-3 <= abs(v) < 1e7:
        decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(v)))))
        return f"{v:,.{decimals}f}"
    return f"{v:.{digits - 1}e}"


def table(frame, headers: dict[str, str] | None = None, keep: tuple[str, ...] = (), digits: dict[str, int] | None = None):
    """A copy of ``frame`` with every cell through ``readable`` (columns in ``keep`` left as they are, columns in
    ``digits`` to that many significant digits, e.g. 7 where float32 values are compared) and the
    columns renamed by ``headers`` (machine names to words); a name still in snake_case reads with spaces."""
    out = frame.copy()
    for col in out.columns:
        if col not in keep:
            out[col] = [readable(v, (digits or {}).get(col, 4)) for v in out[col].tolist()]
    out = out.rename(columns=headers or {})
    return out.rename(columns=lambda c: header(c))


def header(name: Any) -> str:
    """A column's name in words: ``latency_ms`` -> "latency ms"; a name already in words is kept."""
    return str(name).replace("_", " ").strip()
