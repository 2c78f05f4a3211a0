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
# The metrics' columns in words, on the Train and Forecast pages and in ``python -m studio train``.
METRIC_HEADERS = {"mae": "MAE", "rmse": "RMSE", "smape": "sMAPE (%)", "mape": "MAPE (%)", "mase": "MASE",
                  "n": "forecast values", "model_better_by_pct": "model better by"}


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
        text = f"{v:,.{decimals}f}"
        # Seven digits (float32's, where board and host are compared) say 13.5, not 13.50000.
        return text.rstrip("0").rstrip(".") if digits > 4 and "." in text else text
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


def duration(seconds: float | None) -> str:
    """A time as the pages and the command line say it: "40 ms" (not "0.0 s"), "3.2 s", "2 min 5 s"."""
    if seconds is None:
        return EMPTY
    if seconds < 0.1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s" if seconds < 90 else f"{int(seconds // 60)} min {int(seconds % 60)} s"


def text_table(rows: list[dict], headers: dict[str, str] | None = None, digits: dict[str, int] | None = None) -> str:
    """``table`` as aligned text for the command line: the same cells and headers a page shows, text columns
    to the left and the others to the right."""
    import pandas as pd

    frame = table(pd.DataFrame(rows), headers, digits=digits)
    if frame.empty:
        return ""
    cells = [[str(v) for v in frame[c]] for c in frame.columns]
    text = [any(v not in (EMPTY, "") and not _numeric(v) for v in col) for col in cells]
    widths = [max(len(str(c)), *(len(v) for v in col)) for c, col in zip(frame.columns, cells)]

    def line(values) -> str:
        return "  ".join(v.ljust(w) if left else v.rjust(w) for v, w, left in zip(values, widths, text)).rstrip()

    return "\n".join([line([str(c) for c in frame.columns])] + [line(r) for r in zip(*cells)])


def _numeric(cell: str) -> bool:
    return cell not in (EMPTY, "") and cell.replace(",", "").replace(".", "").replace("-", "").replace("−", "").replace(
        "e", "").replace("+", "").isdigit()
