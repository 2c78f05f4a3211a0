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
