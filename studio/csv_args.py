"""The CSV format options `studio inspect` and `studio train` share: the same choices as the Data page's Format."""
from __future__ import annotations

import argparse

from core.config import HELP
from core.data import THOUSANDS, CsvOptions

_THOUSANDS = {"none": "", "comma": ",", "dot": ".", "space": " ", "narrow-space": "\u202f", "nbsp": "\u00a0",
              "apostrophe": "'"}


def _help(key: str) -> str:
    return HELP.get(key, "").replace("%", "%%")  # argparse formats help with %: "%d.%m.%Y" broke --help


def yes_no(text: str) -> bool:
    low = text.strip().lower()
    if low in ("yes", "y", "true", "1"):
        return True
    if low in ("no", "n", "false", "0"):
        return False
    raise argparse.ArgumentTypeError("use yes or no")


def delimiter(text: str) -> str:
    return {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}.get(text.lower(), text)


def thousands(text: str) -> str:
    value = _THOUSANDS.get(text.strip().lower(), text)
    if value not in THOUSANDS:
        raise argparse.ArgumentTypeError(f"use one of {', '.join(_THOUSANDS)}")
    return value


def columns(text: str) -> tuple[str, ...]:
    cols = tuple(c.strip() for c in text.split(",") if c.strip())
    if len(cols) < 2:
        raise argparse.ArgumentTypeError("name two or three columns, e.g. Year,Quarter")
    return cols


def skip_rows(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("give a number of lines") from None
    if not 0 <= n <= 200:
        raise argparse.ArgumentTypeError("give 0 to 200 lines")
    return n


def add_csv_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--delimiter", type=delimiter, default=None, help=_help("data.delimiter") + " (tab: 'tab')")
    p.add_argument("--decimal", choices=(".", ","), default=None, help=_help("data.decimal"))
    p.add_argument("--thousands", type=thousands, default=None, metavar="|".join(_THOUSANDS),
                   help=_help("data.thousands"))
    p.add_argument("--encoding", default=None, help=_help("data.encoding"))
    p.add_argument("--skip-rows", type=skip_rows, default=None, metavar="N", help=_help("data.skip_rows"))
    p.add_argument("--header", type=yes_no, default=None, metavar="yes|no", help=_help("data.header"))
    p.add_argument("--time-col", default=None, metavar="COL", help=_help("data.time_col"))
    p.add_argument("--time-cols", type=columns, default=None, metavar="YEAR,QUARTER", help=_help("data.time_cols"))
    p.add_argument("--dayfirst", type=yes_no, default=None, metavar="yes|no", help=_help("data.dayfirst"))
    p.add_argument("--time-format", default=None, metavar="FMT", help=_help("data.time_format"))


def csv_options(args: argparse.Namespace) -> CsvOptions:
    return CsvOptions(delimiter=args.delimiter, decimal=args.decimal, encoding=args.encoding, header=args.header,
                      time_col=args.time_col, dayfirst=args.dayfirst, time_format=args.time_format,
                      thousands=args.thousands, skip_rows=args.skip_rows, time_cols=args.time_cols)
