"""Times written as periods: quarters ("1960 Q1", "Q1 1960", "1960-Q1"), months by name ("Jan-1980", "1987 Jan",
"January 1987", "janv. 1987", "Mrz 1987"), statistics-office codes ("1987M01"), and a time split over columns
(Year + Quarter, Year + Month, Year + Month + Day). Each becomes the period's first day."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

_FULL = {
    1: "january januar jänner janvier enero gennaio januari",
    2: "february februar février fevrier febrero febbraio februari",
    3: "march märz maerz mars marzo maart",
    4: "april avril abril aprile",
    5: "may mai mayo maggio mei",
    6: "june juni juin junio giugno",
    7: "july juli juillet julio luglio",
    8: "august août aout agosto augustus",
    9: "september septembre septiembre setiembre settembre",
    10: "october oktober octobre octubre ottobre",
    11: "november novembre noviembre",
    12: "december dezember décembre decembre diciembre dicembre",
}
_SHORT = {1: "jan janv ene gen", 2: "feb févr fevr fév fev", 3: "mar mrz mär mrt", 4: "apr avr abr", 5: "mag",
          6: "jun giu", 7: "jul juil lug", 8: "aug ago", 9: "sep sept set", 10: "oct okt ott", 11: "nov",
          12: "dec dez déc dic"}


def _month_words() -> dict[str, int]:
    words: dict[str, int] = {}
    prefixes: dict[str, set[int]] = {}
    for month, names in _FULL.items():
        for name in names.split():
            words[name] = month
            prefixes.setdefault(name[:3], set()).add(month)
    for prefix, months in prefixes.items():
        if len(months) == 1:  # "jui" is June or July in French: no prefix for it
            words.setdefault(prefix, months.pop())
    for month, names in _SHORT.items():
        words.update({name: month for name in names.split()})
    return words


MONTHS = _month_words()
_SEP = r"[\s\-/.,:_']*"
_QUARTER = re.compile(rf"^\s*(?:(?P<y1>\d{{4}}){_SEP}[Qq](?P<q1>[1-4])|[Qq](?P<q2>[1-4]){_SEP}(?P<y2>\d{{4}}))\s*$")
_MONTH_NAME = re.compile(rf"^\s*(?:(?P<y1>\d{{4}}){_SEP}(?P<m1>[^\W\d_]{{3,}})\.?|(?P<m2>[^\W\d_]{{3,}})\.?{_SEP}"
                         rf"(?P<y2>\d{{4}}|\d{{2}}))\s*$")
_MONTH_CODE = re.compile(r"^\s*(?P<y>\d{4})-?M(?P<m>\d{1,2})\s*$")
KINDS = {"quarter": "year and quarter (1960 Q1)", "month name": "month name and year (Jan-1980)",
         "month code": "year and month code (1987M01)"}


def _num(text) -> pd.Series:
    """Numbers from text as plain float64 (NaN where none): nullable arrays would make comparisons ambiguous."""
    text = pd.Series(text, dtype=object) if not isinstance(text, pd.Series) else text.astype(object)
    out = pd.to_numeric(text.where(text.notna(), None), errors="coerce")
    return pd.Series(np.asarray(out, dtype=float), index=text.index)


def _year(text: pd.Series) -> pd.Series:
    y = _num(text)
    # two-digit years as strptime reads them: 69-99 are 1969-1999, 00-68 are 2000-2068
    return y.where(y >= 100, y + np.where(y >= 69, 1900, 2000))


def _first_day(year: pd.Series, month: pd.Series, day=1) -> pd.Series:
    frame = pd.DataFrame({"year": year, "month": month, "day": day})
    ok = frame.notna().all(axis=1) & frame["month"].between(1, 12) & frame["day"].between(1, 31)
    out = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    if ok.any():
        out[ok] = pd.to_datetime(frame[ok].astype(int), errors="coerce")
    return out


def parse_period(values: pd.Series, kind: str) -> pd.Series:
    """Each value's first day (NaT where it is not of ``kind``)."""
    text = values.astype("string")
    if kind == "quarter":
        m = text.str.extract(_QUARTER)
        year, q = m["y1"].fillna(m["y2"]), m["q1"].fillna(m["q2"])
        return _first_day(_num(year), (_num(q) - 1) * 3 + 1)
    if kind == "month code":
        m = text.str.extract(_MONTH_CODE)
        return _first_day(_num(m["y"]), _num(m["m"]))
    m = text.str.extract(_MONTH_NAME)
    name = m["m1"].fillna(m["m2"]).str.lower().str.rstrip(".")
    return _first_day(_year(m["y1"].fillna(m["y2"])), name.map(MONTHS).astype("float"))


def period_kind(values: list[str]) -> str | None:
    """The kind of period every value (but a few) is written as, or None."""
    if not values:
        return None
    head = values[:20]  # a cheap look first: most time columns are no periods, and this runs on every text column
    if not any(sum(bool(p.match(v)) for v in head) >= 0.8 * len(head) for p in (_QUARTER, _MONTH_NAME, _MONTH_CODE)):
        return None
    sample = pd.Series(values[:500], dtype=object)
    for kind in KINDS:
        if parse_period(sample, kind).notna().mean() >= 0.9:
            return kind
    return None


# --------------------------------------------------------------------------------- split over columns

_HINTS = {"year": ("year", "yr", "jahr", "année", "annee", "año", "ano", "anno", "jaar"),
          "quarter": ("quarter", "qtr", "q", "quartal", "trimestre", "kwartaal"),
          "month": ("month", "mon", "mth", "monat", "mois", "mes", "mese", "maand"),
          "day": ("day", "dd", "tag", "jour", "dia", "día", "giorno", "dag")}


def _named(name: str, role: str) -> bool:
    low = re.sub(r"[^\w]", " ", name.lower()).split()
    return any(w in _HINTS[role] or (len(h) > 3 and w.startswith(h)) for w in low for h in _HINTS[role])


def _ints(values: list[str], lo: int, hi: int) -> bool:
    nums = _num(values[:500])
    return len(nums) > 0 and nums.notna().all() and bool(((nums >= lo) & (nums <= hi) & (nums % 1 == 0)).all())


def role(name: str, values: list[str], forced: bool = False) -> str | None:
    """What a column says about the time: year, quarter, month or day (None when nothing)."""
    vals = [v.strip() for v in values if v.strip()]
    if not vals:
        return None
    if all(re.fullmatch(r"[Qq][1-4]", v) for v in vals[:500]):
        return "quarter"
    if all(re.fullmatch(r"M\d{1,2}", v) for v in vals[:500]) or \
            all(v.lower().rstrip(".") in MONTHS for v in vals[:500]):
        return "month"
    for r, lo, hi in (("year", 1000, 2999), ("quarter", 1, 4), ("month", 1, 12), ("day", 1, 31)):
        if (forced or _named(name, r)) and _ints(vals, lo, hi):
            return r
    return None


def find_parts(present: dict[str, list[str]]) -> tuple[str, ...] | None:
    """Year plus quarter, or year plus month (plus day), when the file splits its time so."""
    roles = {name: role(name, vals) for name, vals in present.items()}
    year = next((n for n, r in roles.items() if r == "year"), None)
    if year is None:
        return None
    for sub in ("quarter", "month"):
        col = next((n for n, r in roles.items() if r == sub), None)
        if col is not None:
            day = next((n for n, r in roles.items() if r == "day"), None) if sub == "month" else None
            return (year, col) + ((day,) if day else ())
    return None


def assign_roles(parts: tuple[str, ...], present: dict[str, list[str]]) -> dict[str, str]:
    """Role per chosen column: by name and values first, then by position (year, quarter or month, day)."""
    out: dict[str, str] = {}
    for name in parts:
        r = role(name, present.get(name, []))
        if r and r not in out.values():
            out[name] = r
    order = ["year", "month" if any(r == "month" for r in out.values()) or len(parts) > 2 else "quarter", "day"]
    for name in parts:
        if name not in out:
            out[name] = next((r for r in order if r not in out.values()), "day")
    return out


def _sub(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip().str.lower().str.rstrip(".").str.lstrip("qm")
    nums = _num(text)
    return nums.fillna(values.astype("string").str.strip().str.lower().str.rstrip(".").map(MONTHS).astype("float"))


def combine(columns: dict[str, pd.Series], roles: dict[str, str]) -> pd.Series:
    """The first day of each row's period from its year / quarter / month / day columns (NaT where unreadable)."""
    by = {roles[n]: s for n, s in columns.items()}
    year = _num(by["year"].astype("string").str.strip())
    if "quarter" in by:
        return _first_day(year, (_sub(by["quarter"]) - 1) * 3 + 1)
    day = _num(by["day"].astype("string").str.strip()) if "day" in by else 1
    return _first_day(year, _sub(by["month"]) if "month" in by else 1, day)


def describe(roles: dict[str, str]) -> str:
    return " + ".join(f"{r} ({n})" for n, r in roles.items())
