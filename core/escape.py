"""One escaping function per language the studio generates, for every user string that lands in it.

A column name, a file name or a form field is a user's text: a quoted CSV header can hold newlines,
quotes, backslashes, ``*/`` or ``#define``. Anything of that kind that reaches generated C/C++ (the
firmware bundle, the Edge Impulse sketch), INI (platformio.ini), Markdown (the bundles' READMEs) or a
line the board prints on serial goes through exactly one of these functions, so no user text ever
ends up outside a string literal or a comment, and no README renders it as markup.
"""
from __future__ import annotations

import re

# Longest user string kept in generated text: a column name is a label, not a document.
MAX_CHARS = 200


def _shorten(text: str) -> str:
    text = str(text)
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 3] + "..."


def _visible(ch: str) -> str:
    """A character that cannot be written as is, spelled out as <U+XXXX> (no backslash, no quote)."""
    return f"<U+{ord(ch):04X}>"


def c_string(text: str) -> str:
    """A C/C++ string literal (quotes included) holding ``text`` exactly.

    Octal escapes (fixed width, unlike \\x, which swallows following hex digits) for every byte that is
    not printable ASCII; ``"`` and ``\\`` escaped; ``?`` escaped so no trigraph (``??/``) can form.
    """
    out = []
    for b in _shorten(text).encode("utf-8"):
        ch = chr(b)
        if ch in '"\\?':
            out.append("\\" + ch)
        elif 32 <= b < 127:
            out.append(ch)
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'


def c_comment(text: str) -> str:
    """``text`` made safe inside a C/C++ comment, ``//`` or ``/* */``: one line of printable ASCII.

    Newlines (which would end a ``//`` comment and start code), a trailing or any backslash (which
    splices the next line into the comment), ``*/`` and ``/*``, ``??`` (trigraphs) and anything that is
    not printable ASCII are spelled out as <U+XXXX>.
    """
    out = []
    for ch in _shorten(text):
        if ch == "\\" or not (" " <= ch <= "~"):
            out.append(_visible(ch))
        else:
            out.append(ch)
    s = "".join(out)
    s = s.replace("*/", "*<U+002F>").replace("/*", "/<U+002A>").replace("??", "?<U+003F>")
    return s


def ini_comment(text: str) -> str:
    """``text`` made safe after ``;`` in an INI file (platformio.ini): one line of printable ASCII."""
    return "".join(ch if " " <= ch <= "~" else _visible(ch) for ch in _shorten(text))


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~&])")


def markdown(text: str) -> str:
    """``text`` as plain Markdown prose: one line, every character Markdown (or HTML) would read as
    markup backslash-escaped, control characters spelled out."""
    s = "".join(ch if ch.isprintable() else _visible(ch) for ch in _shorten(text))
    return _MD_SPECIAL.sub(r"\\\1", s)


def markdown_code(text: str) -> str:
    """``text`` inside a Markdown code span or indented code block: one line, no backticks, printable."""
    s = "".join(ch if ch.isprintable() else _visible(ch) for ch in _shorten(text))
    return s.replace("`", "'")


def serial_text(text: str) -> str:
    """``text`` as the board may print it on one serial line: printable characters only (UTF-8 is fine on
    the wire), so no line break or control character can start a line of its own."""
    return "".join(ch if ch.isprintable() else "?" for ch in _shorten(text))


# A spreadsheet reads a cell that starts with one of these as a formula (=HYPERLINK(...), +cmd|..., -2+3,
# @SUM(...)), or a tab / carriage return before one; the apostrophe is in the list so that the escape can
# be undone exactly (a name that starts with ' gets a second one).
CSV_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "'")


def csv_cell(text) -> str:
    """A text cell of a CSV the studio writes (a column name, a target, a forecaster's label): one that a
    spreadsheet would run as a formula gets a leading apostrophe, which shows it as text."""
    s = str(text)
    return "'" + s if s.startswith(CSV_TRIGGERS) else s


def csv_uncell(text) -> str:
    """``csv_cell`` undone: the name as it was before it went into a CSV the studio wrote."""
    s = str(text)
    return s[1:] if s.startswith("'") and s[1:].startswith(CSV_TRIGGERS) else s


def csv_frame(frame):
    """A copy of a pandas frame whose column names, index name and text cells all went through ``csv_cell``
    (numbers, dates and booleans are written as they are: -5.0 is a number, not a formula)."""
    import pandas as pd

    out = frame.copy()
    out.columns = [csv_cell(c) for c in out.columns]
    if out.index.name is not None:
        out.index.name = csv_cell(out.index.name)
    for i, col in enumerate(out.columns):
        series = out.iloc[:, i]
        if pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series.dtype):
            out.iloc[:, i] = series.map(lambda v: v if v is None or (isinstance(v, float) and v != v) else csv_cell(v))
    return out
