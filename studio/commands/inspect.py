"""Inspect a CSV: print as JSON what the Data step detects and does (time column, frequency, columns, gaps, problems).

Every detection can be overridden with the same choices the Data page offers; the cleaning options
(duplicates, resampling, filling) change the row counts and notes reported.
"""
from __future__ import annotations

import argparse
import json
import sys

from core.config import DEFAULTS, HELP
from core.data import DUPLICATES, FILL_METHODS, RESAMPLE_HOW, CleanOptions, CsvOptions, inspect_csv

CFG = DEFAULTS["data"]


def _yes_no(text: str) -> bool:
    low = text.strip().lower()
    if low in ("yes", "y", "true", "1"):
        return True
    if low in ("no", "n", "false", "0"):
        return False
    raise argparse.ArgumentTypeError("use yes or no")


def _delimiter(text: str) -> str:
    return {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}.get(text.lower(), text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE.csv", help="the CSV file to inspect")
    p.add_argument("--delimiter", type=_delimiter, default=None, help=HELP.get("data.delimiter") + " (tab: 'tab')")
    p.add_argument("--decimal", choices=(".", ","), default=None, help=HELP.get("data.decimal"))
    p.add_argument("--encoding", default=None, help=HELP.get("data.encoding"))
    p.add_argument("--header", type=_yes_no, default=None, metavar="yes|no", help=HELP.get("data.header"))
    p.add_argument("--time-col", default=None, metavar="COL", help=HELP.get("data.time_col"))
    p.add_argument("--dayfirst", type=_yes_no, default=None, metavar="yes|no", help=HELP.get("data.dayfirst"))
    p.add_argument("--time-format", default=None, metavar="FMT", help=HELP.get("data.time_format"))
    p.add_argument("--duplicates", choices=DUPLICATES, default=CFG["duplicates"], help=HELP.get("data.duplicates"))
    p.add_argument("--resample", default=None, metavar="FREQ", help=HELP.get("data.resample"))
    p.add_argument("--resample-how", choices=RESAMPLE_HOW, default=CFG["resample_how"], help=HELP.get("data.resample_how"))
    p.add_argument("--fill", choices=FILL_METHODS, default=CFG["fill"], help=HELP.get("data.fill"))


def run(args: argparse.Namespace) -> int:
    csv = CsvOptions(delimiter=args.delimiter, decimal=args.decimal, encoding=args.encoding, header=args.header,
                     time_col=args.time_col, dayfirst=args.dayfirst, time_format=args.time_format)
    clean = CleanOptions(duplicates=args.duplicates, resample=args.resample, resample_how=args.resample_how,
                         fill=args.fill)
    result = inspect_csv(args.file, csv=csv, clean=clean)
    json.dump(result, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0
