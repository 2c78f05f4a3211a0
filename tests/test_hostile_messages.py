"""Hostile class 9: messages that blame the wrong thing. A huge line, an unbalanced quote, a line break inside a
quoted header and a 100,000-column header each get a message about what is actually wrong, and the header is
bounded before it is parsed."""
from __future__ import annotations

import pytest

from core.data import MAX_COLUMNS, inspect_csv, load_dataset
from core.errors import StudioError


def _rows(n: int = 100) -> list[str]:
    return [f"2024-01-{1 + h // 24:02d} {h % 24:02d}:00,{h},{h * 2}" for h in range(n)]


def test_a_20_mb_line_is_named_as_such_not_arrows_internals(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("time,a,b\n" + "\n".join(_rows()) + "\n2024-01-05 05:00," + "9" * (20 * 2 ** 20) + ",1\n")
    with pytest.raises(StudioError) as err:
        load_dataset(path)
    text = str(err.value)
    assert "longer than" in text and "straddl" not in text and "delimiter" not in text


def test_an_unbalanced_quote_is_named_not_too_few_rows(tmp_path):
    lines = _rows()
    lines[10] = '2024-01-01 10:00,"10,20'
    path = tmp_path / "quote.csv"
    path.write_text("time,a,b\n" + "\n".join(lines) + "\n")
    with pytest.raises(StudioError, match="never closed") as err:
        load_dataset(path)
    assert "only" not in str(err.value)


def test_a_line_break_inside_a_quoted_header_skips_no_line(tmp_path):
    path = tmp_path / "hdr.csv"
    path.write_text('time,"a\nb",c\n' + "\n".join(_rows()) + "\n")
    info = inspect_csv(path)
    assert info["rows"] == 100 and not info["problems"], info["problems"]
    assert load_dataset(path).numeric_columns == ["a\nb", "c"]


def test_a_huge_header_is_refused_before_it_is_parsed(tmp_path):
    for n in (MAX_COLUMNS + 5, 100_000):
        path = tmp_path / f"wide{n}.csv"
        path.write_text("time," + ",".join(f"c{i}" for i in range(n)) + "\n2024-01-01 00:00," + ",".join("1" * n) + "\n")
        with pytest.raises(StudioError, match="first line"):
            load_dataset(path)
