"""One number formatter for every table (issue 32): no exponent for everyday numbers, no raw None."""
from __future__ import annotations

import math

import pandas as pd

from core import display


def test_numbers_read_as_a_person_writes_them():
    assert display.readable(13650.4) == "13,650"
    assert display.readable(123888) == "123,888"
    assert display.readable(3.846123) == "3.846"
    assert display.readable(0.051114) == "0.05111"
    assert display.readable(None) == display.readable(math.nan) == display.readable("None") == "—"
    assert display.readable(True) == "yes" and display.readable("LSTM(8)") == "LSTM(8)"
    assert display.readable(2.5e-5) == "2.500e-05"
    assert display.readable(pd.NA) == "—"


def test_a_table_renames_its_headers_and_keeps_what_it_is_told_to():
    frame = pd.DataFrame({"latency_ms": [1.23456, None], "job": [1, 2]})
    out = display.table(frame, {"latency_ms": "latency ms (est.)"}, keep=("job",))
    assert list(out.columns) == ["latency ms (est.)", "job"]
    assert list(out["latency ms (est.)"]) == ["1.235", "—"] and list(out["job"]) == [1, 2]


def test_a_header_left_in_snake_case_reads_in_words():
    out = display.table(pd.DataFrame({"abs_err": [0.5], "max error": [1]}))
    assert list(out.columns) == ["abs err", "max error"]


def test_board_values_keep_float32s_seven_digits_where_asked():
    out = display.table(pd.DataFrame({"board": [123.45678], "abs_err": [1.5e-5]}), digits={"board": 7})
    assert out.loc[0, "board"] == "123.4568" and display.readable(13.5, 7) == "13.5" and out.loc[0, "abs err"] == "1.500e-05"


def test_every_table_on_a_page_goes_through_the_one_formatter():
    """Issue 32: the Export, Device, Data and Features tables showed raw None, 1.365e+04 and snake_case headers
    because they called st.dataframe directly. Only studio.ui.table may; it formats every cell and header."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    direct = re.compile(r"\bst\.(dataframe|table|data_editor)\(")
    offenders = [f"{p.relative_to(root)}:{i}" for folder in ("pages", "studio") for p in sorted((root / folder).rglob("*.py"))
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if direct.search(line) and p != root / "studio" / "ui.py"]
    assert not offenders, offenders


def test_the_command_line_prints_the_pages_cells_and_headers():
    """Issue 32: `studio train` printed 1.365e+04 and `studio device` headed its columns k and |error|."""
    text = display.text_table([{"forecaster": "model", "mae": 13650.4, "smape": None, "n": 123888}], display.METRIC_HEADERS)
    head, row = text.splitlines()
    assert head.split() == ["forecaster", "MAE", "sMAPE", "(%)", "forecast", "values"]
    assert row.split() == ["model", "13,650", "—", "123,888"] and "e+" not in text


def test_a_short_epoch_reads_in_milliseconds():
    assert display.duration(0.04) == "40 ms" and display.duration(3.21) == "3.2 s" and display.duration(125) == "2 min 5 s"
    assert display.duration(None) == display.EMPTY
