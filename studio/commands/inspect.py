"""Inspect a CSV: print as JSON what the Data step detects and does (time column, frequency, columns, gaps, problems).

Every detection can be overridden with the same choices the Data page offers; the cleaning options
(duplicates, resampling, filling) change the row counts and notes reported.
"""
from __future__ import annotations

import argparse
import json
import sys

from core.config import DEFAULTS, HELP
from core.data import DUPLICATES, FILL_METHODS, RESAMPLE_HOW, CleanOptions, inspect_csv
from studio.csv_args import add_csv_arguments, csv_options

CFG = DEFAULTS["data"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE.csv", help="the CSV file to inspect")
    add_csv_arguments(p)
    p.add_argument("--duplicates", choices=DUPLICATES, default=CFG["duplicates"], help=HELP.get("data.duplicates"))
    p.add_argument("--resample", default=None, metavar="FREQ", help=HELP.get("data.resample"))
    p.add_argument("--resample-how", choices=RESAMPLE_HOW, default=CFG["resample_how"], help=HELP.get("data.resample_how"))
    p.add_argument("--fill", choices=FILL_METHODS, default=CFG["fill"], help=HELP.get("data.fill"))


def run(args: argparse.Namespace) -> int:
    csv = csv_options(args)
    clean = CleanOptions(duplicates=args.duplicates, resample=args.resample, resample_how=args.resample_how,
                         fill=args.fill)
    result = inspect_csv(args.file, csv=csv, clean=clean)
    json.dump(result, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0
