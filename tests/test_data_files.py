"""Issue 31: the files people actually have. Each class is made here in several variants (locales, quoting,
layouts): thousands separators, a time split over columns, notes above the header, working-hours and
trading-day calendars, periods and month names, a delimiter inside quoted text. Each reads right by default,
or says what it assumed in one sentence naming the control, and never drops or invents rows silently."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.data import CsvOptions, inspect_csv, load_dataset
from core.errors import StudioError

RNG = np.random.default_rng(31)
DAYS = pd.date_range("2021-01-01", periods=80, freq="D")


def warnings_of(ds) -> str:
    return " ".join(ds.report["problems"] + ds.report["blocking"])


def _group(x: float, sep: str, dec: str, decimals: int = 1) -> str:
    text = f"{x:,.{decimals}f}" if decimals else f"{x:,.0f}"
    return text.replace(",", "\0").replace(".", dec).replace("\0", sep)


# ------------------------------------------------------------------------------- 1 thousands separators

@pytest.mark.parametrize("sep,dec,delim,quote", [
    (",", ".", ",", True),          # "15,611.3" quoted, values under 1,000 unquoted (spreadsheet export)
    (".", ",", ";", False),          # 3.234,5 European
    (" ", ",", ";", False),          # 1 234,5 French
    ("\u202f", ",", ";", False),     # narrow no-break space
    ("\u00a0", ",", "\t", False),    # no-break space, tab-separated
    ("'", ".", ";", False),          # Swiss 1'234.5
    (",", ".", "\t", False),         # 1,234.5 unquoted in a tab file
])
def test_thousands_separators_are_read_not_refused(sep, dec, delim, quote):
    values = RNG.uniform(50, 40_000, len(DAYS)).round(1)
    values[:5] = [12.5, 999.0, 1000.0, 15611.3, 1234567.8]

    def cell(x: float) -> str:
        text = _group(x, sep, dec)
        return f'"{text}"' if quote and sep in text else text

    body = "".join(f"{d:%Y-%m-%d}{delim}{cell(x)}{delim}{i}\n" for i, (d, x) in enumerate(zip(DAYS, values)))
    ds = load_dataset(f"date{delim}value{delim}n\n{body}".encode(), "t.csv")
    assert ds.report["thousands"] == sep and ds.report["decimal"] == dec
    np.testing.assert_allclose(ds.frame["value"].to_numpy(), values)
    assert not ds.report["problems"]


@pytest.mark.parametrize("delim", [",", ";"])
def test_every_value_like_8_096_is_read_one_way_and_says_so(delim):
    births = RNG.integers(7000, 9999, len(DAYS))
    quote = '"' if delim == "," else ""
    body = "".join(f"{d:%Y-%m-%d}{delim}{quote}{b // 1000},{b % 1000:03d}{quote}\n" for d, b in zip(DAYS, births))
    ds = load_dataset(f"date{delim}births\n{body}".encode(), "b.csv")
    said = " ".join(ds.report["problems"] + ds.report["notes"])
    if delim == ",":  # quoted in a comma file: a thousands separator, stated as an assumption (a warning)
        np.testing.assert_allclose(ds.frame["births"].to_numpy(), births)
        assert "Thousands separator to none" in warnings_of(ds)
    else:  # a semicolon file: the decimal comma of its locale, and the control for the other reading
        np.testing.assert_allclose(ds.frame["births"].to_numpy(), births / 1000)
        assert "Thousands separator to ','" in said
    other = CsvOptions(thousands="" if delim == "," else ",")
    flipped = load_dataset(f"date{delim}births\n{body}".encode(), "b.csv", csv=other)
    expect = births / 1000 if delim == "," else births
    np.testing.assert_allclose(flipped.frame["births"].to_numpy(), expect)


def test_three_decimals_with_a_decimal_comma_elsewhere_stay_decimals():
    a, b = RNG.uniform(1, 999, len(DAYS)), RNG.uniform(0, 5000, len(DAYS))
    body = "".join(f"{d:%d.%m.%Y};{x:.3f};{y:.1f}\n".replace(".", ",").replace(",", ".", 2)
                   for d, x, y in zip(DAYS, a, b))
    ds = load_dataset(("Datum;a;b\n" + body).encode(), "de.csv")
    assert ds.report["decimal"] == "," and ds.report["thousands"] == ""
    np.testing.assert_allclose(ds.frame["b"].to_numpy(), b.round(1))


# ------------------------------------------------------------------------- 2 time split over columns

@pytest.mark.parametrize("header,rows,freq", [
    ("Year,Quarter,Gas", [f"{y},{q},{RNG.uniform(1, 9):.2f}" for y in range(1960, 1981) for q in range(1, 5)], "QS"),
    ("YEAR;QTR;Gas", [f"{y};Q{q};{RNG.uniform(1, 9):.2f}" for y in range(1990, 2011) for q in range(1, 5)], "QS"),
    ("year,month,sales", [f"{y},{m},{RNG.uniform(1, 9):.2f}" for y in range(2000, 2008) for m in range(1, 13)], "MS"),
    ("Jahr;Monat;Wert", [f"{y};{n};{RNG.uniform(1, 9):.2f}" for y in range(2000, 2008)
                          for n in ("Jan Feb Mär Apr Mai Jun Jul Aug Sep Okt Nov Dez".split())], "MS"),
    ("Year,Month,Day,Flow", [f"{d.year},{d.month},{d.day},{RNG.uniform(1, 9):.2f}"
                             for d in pd.date_range("2020-01-01", periods=90)], "D"),
])
def test_a_time_split_over_columns_is_combined_and_no_row_is_lost(header, rows, freq):
    delim = ";" if ";" in header else ","
    ds = load_dataset((header + "\n" + "\n".join(rows) + "\n").encode(), "split.csv")
    assert len(ds.frame) == len(rows) and ds.freq == freq
    assert ds.numeric_columns == [header.split(delim)[-1]]
    assert "combined" in " ".join(ds.report["notes"]) and not ds.report["problems"]


def test_time_columns_can_be_chosen_and_a_time_column_that_repeats_is_a_warning():
    text = "Y,P,Gas\n" + "".join(f"{y},{q},{q * y % 7}\n" for y in range(1970, 1990) for q in range(1, 5))
    ds = load_dataset(text.encode(), "yq.csv", csv=CsvOptions(time_cols=("Y", "P")))
    assert len(ds.frame) == 80 and ds.freq == "QS"
    only_year = load_dataset(text.encode(), "yq.csv", csv=CsvOptions(time_col="Y"))
    assert "60 row(s) (75% of the file) repeated" in warnings_of(only_year)
    assert "Time columns" in warnings_of(only_year)
    with pytest.raises(StudioError, match="no column 'Nope'"):
        load_dataset(text.encode(), "yq.csv", csv=CsvOptions(time_cols=("Y", "Nope")))


# ----------------------------------------------------------------------------- 3 notes above the header

@pytest.mark.parametrize("notes", [
    ["Logger export v2", "Station 4,north-central Wisconsin", "10 min,north-central Wisconsin,operator"],
    ["# site: lake", "", "interval,10 min,UTC"],
    ["Title only"],
    ["a,b,c", "d,e,f", "g,h,i", "j,k,l", "m,n,o"],
])
def test_notes_above_the_header_are_skipped_even_with_the_tables_width(notes):
    times = pd.date_range("2024-05-01", periods=60, freq="10min")
    body = "".join(f"{t:%Y-%m-%d %H:%M},{RNG.normal(15):.2f},{RNG.uniform(30, 90):.1f}\n" for t in times)
    text = "\n".join(notes) + "\ntime,temp,rh\n" + body
    ds = load_dataset(text.encode(), "logger.csv")
    assert ds.time_col == "time" and ds.numeric_columns == ["temp", "rh"] and len(ds.frame) == 60
    assert ds.report["skipped_lines"] == len(notes)
    forced = load_dataset(text.encode(), "logger.csv", csv=CsvOptions(skip_rows=len(notes)))
    assert forced.numeric_columns == ["temp", "rh"]


def test_a_units_row_under_the_names_keeps_the_names():
    times = pd.date_range("2024-05-01", periods=40, freq="h")
    text = "time,temp,rh\n[UTC],[degC],[%]\n" + "".join(f"{t:%Y-%m-%d %H:%M},{i * 0.5},{i}\n"
                                                        for i, t in enumerate(times))
    ds = load_dataset(text.encode(), "units.csv")
    assert ds.numeric_columns == ["temp", "rh"]


# ------------------------------------------------------------------------- 4 business calendars

def _hours(start: str, end: str, step: str, first: str, last: str, weekdays=5) -> pd.DatetimeIndex:
    t = pd.date_range(start, end, freq=step)
    clock = t.strftime("%H:%M")
    return t[(t.day_of_week < weekdays) & (clock >= first) & (clock < last)]


@pytest.mark.parametrize("times,per_day", [
    (_hours("2024-01-01", "2024-02-29 23:55", "5min", "07:00", "21:00"), 168),   # call centre
    (_hours("2024-03-04", "2024-03-29 23:59", "1min", "09:30", "16:00"), 390),   # exchange minutes
    (_hours("2023-01-02", "2023-03-31 23:00", "h", "08:00", "18:00", weekdays=6), 10),  # Mon-Sat shop hours
    (pd.bdate_range("2021-01-01", "2022-12-31").drop(pd.to_datetime(["2021-12-24", "2022-04-15"])), 1),  # trading
])
def test_working_hours_and_trading_days_keep_their_observed_steps(times, per_day):
    body = "".join(f"{t:%Y-%m-%d %H:%M},{RNG.poisson(20)}\n" for t in times)
    ds = load_dataset(("time,calls\n" + body).encode(), "cal.csv")
    assert len(ds.frame) == len(times)  # nothing invented
    assert ds.calendar is not None and ds.calendar["steps_per_day"] == per_day
    assert (ds.frame.index == times).all()
    said = " ".join(ds.report["notes"])
    assert "kept the observed steps" in said and "did not fill" in said and not ds.report["problems"]
    out = inspect_csv(("time,calls\n" + body).encode())
    assert out["calendar"]["describe"] and out["rows"] == len(times)


def test_a_missing_slot_inside_working_hours_is_filled_and_a_daily_series_with_gaps_warns():
    times = _hours("2024-01-01", "2024-01-31 23:55", "5min", "07:00", "21:00")
    kept = times.delete([100, 101, 500])
    body = "".join(f"{t:%Y-%m-%d %H:%M},{i}\n" for i, t in enumerate(kept))
    ds = load_dataset(("time,calls\n" + body).encode(), "cal.csv")
    assert len(ds.frame) == len(times) and ds.calendar is not None
    days = pd.date_range("2020-01-01", periods=200, freq="D")
    holes = days[np.r_[0:80, 120:200]]  # 40 days of 200 missing: 20% invented is a warning
    ds = load_dataset(("date,v\n" + "".join(f"{d:%Y-%m-%d},{i}\n" for i, d in enumerate(holes))).encode(), "d.csv")
    assert ds.calendar is None and "40 missing time steps" in warnings_of(ds) and "20%" in warnings_of(ds)


# ------------------------------------------------------------------------- 5 periods and month names

@pytest.mark.parametrize("fmt", ["{y} Q{q}", "{y}Q{q}", "{y}-Q{q}", "Q{q} {y}", "Q{q}-{y}", "{y} q{q}"])
def test_quarters_in_one_column(fmt):
    rows = [(y, q) for y in range(1960, 1985) for q in range(1, 5)]
    body = "".join(f"{fmt.format(y=y, q=q)},{y + q / 4:.2f}\n" for y, q in rows)
    ds = load_dataset(("quarter,gdp\n" + body).encode(), "q.csv")
    assert len(ds.frame) == len(rows) and ds.freq == "QS" and ds.frame.index[0] == pd.Timestamp("1960-01-01")


@pytest.mark.parametrize("fmt", ["%b-%Y", "%Y %b", "%B %Y", "%Y-%b", "%b %Y", "%b-%y", "%YM%m", "%b. %Y"])
def test_month_names_and_codes(fmt):
    months = pd.date_range("1980-01-01", periods=96, freq="MS")
    body = "".join(f"{m.strftime(fmt)},{i}\n" for i, m in enumerate(months))
    ds = load_dataset(("Month,value\n" + body).encode(), "m.csv")
    assert len(ds.frame) == 96 and ds.freq == "MS" and (ds.frame.index == months).all()
    assert "UTC" not in " ".join(ds.report["notes"]) and ds.report["timezone"] is None


@pytest.mark.parametrize("names", [
    "janv. févr. mars avr. mai juin juil. août sept. oct. nov. déc.",
    "Jan Feb Mrz Apr Mai Jun Jul Aug Sep Okt Nov Dez",
    "ene feb mar abr may jun jul ago sep oct nov dic",
])
def test_month_names_in_other_languages(names):
    words = names.split()
    body = "".join(f"{words[m]} {y};{y * 12 + m}\n" for y in range(1990, 1996) for m in range(12))
    ds = load_dataset(("Periode;Wert\n" + body).encode(), "l.csv")
    assert len(ds.frame) == 72 and ds.freq == "MS"


def test_a_typed_month_format_is_not_read_as_a_utc_offset():
    months = pd.date_range("1980-01-01", periods=40, freq="MS")
    body = "".join(f"{m:%b-%Y},{i}\n" for i, m in enumerate(months))
    ds = load_dataset(("Month,value\n" + body).encode(), "m.csv", csv=CsvOptions(time_format="%b-%Y"))
    assert ds.report["timezone"] is None and not any("UTC" in n for n in ds.report["notes"])


# ------------------------------------------------------------------------- 6 delimiter inside quotes

@pytest.mark.parametrize("delim,text", [(",", "shift A|B"), (",", "a;b|c"), (";", "x, y|z"), ("\t", "p|q,r")])
def test_a_delimiter_inside_quoted_text_does_not_win(delim, text):
    body = "".join(f'{d:%Y-%m-%d}{delim}"{text} {i}"{delim}{i * 2}\n' for i, d in enumerate(DAYS))
    ds = load_dataset(f"date{delim}note{delim}value\n{body}".encode(), "q.csv")
    assert ds.report["delimiter"] == delim and ds.numeric_columns == ["value"]


# ------------------------------------------------------------------------- the bundled samples stay as they were

def test_bundled_weather_sample_reads_as_before():
    from core.data import SAMPLES

    ds = load_dataset(SAMPLES["weather"])
    assert ds.report["thousands"] == "" and ds.calendar is None and ds.freq == "h" and ds.report["skipped_lines"] == 0
