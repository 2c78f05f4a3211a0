"""Export a trained run to TFLite float32 and int8, checked on the TensorFlow Lite Micro runtime.

Writes EXPORT_DIR/model_float32.tflite, model_int8.tflite, windows.npz, report.json and the firmware
bundle zip; with an Edge Impulse key also the Edge Impulse Arduino library (ei_library.zip) and the
download that holds it beside a ready static-buffer sketch (forecast_studio_edge_impulse.zip). Progress
goes to stderr; the report's summary (sizes, arena, errors against the host, device budget) to stdout.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from core.config import DEFAULTS, HELP


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="the run directory `python -m studio train` wrote")
    p.add_argument("--int8", action=argparse.BooleanOptionalAction, default=bool(DEFAULTS["export"]["int8"]),
                   help=HELP.get("export.int8"))
    p.add_argument("--ei-api-key", default=None, metavar="KEY",
                   help="also build the Edge Impulse Arduino library with this project API key "
                        "(or pass --ei and set EI_API_KEY, which keeps the key out of the process list)")
    p.add_argument("--ei", action="store_true", help="build the Edge Impulse library with the key in EI_API_KEY")
    p.add_argument("--no-bundle", action="store_true", help="skip the offline firmware bundle zip")
    p.add_argument("--out", required=True, metavar="EXPORT_DIR",
                   help="directory to write (replaced if it is an earlier export; refused if it holds anything else)")
    p.add_argument("--force", action="store_true",
                   help="replace --out even when it is a file or a folder holding files that are not an export")


def _progress(fraction: float, message: str) -> None:
    print(f"[{fraction * 100:3.0f}%] {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from core import edgeimpulse
    from core.export import export_run
    from core.runs import load_run

    from core.files import prepare_out_dir

    # The folder rule before anything else: nothing is converted for a place that cannot take it.
    out = prepare_out_dir(args.out, ("export",), force=args.force)
    run_ = load_run(args.run_dir)
    key = args.ei_api_key or (os.environ.get("EI_API_KEY") if args.ei else None)
    if args.ei_api_key is not None or args.ei:
        # Fail before the export's minute of work when Edge Impulse cannot take this model at all.
        edgeimpulse.check_single_output(run_.model_spec)
    report = export_run(run_, out, int8=args.int8, progress=_progress, force=args.force)
    files = [report.path(d) for d in report.dtypes]
    if not args.no_bundle:
        from core.firmware import render_bundle

        print("Rendering the firmware bundle", file=sys.stderr, flush=True)
        files.append(render_bundle(out, dtype="int8" if args.int8 else "float32"))
    if key is not None or args.ei:
        data = edgeimpulse.deploy(run_, api_key=key, int8=args.int8,
                                  progress=lambda m: print(m, file=sys.stderr, flush=True))
        from core import ei_sketch

        # The library, plus a static-buffer sketch holding real test windows, in one zip beside it.
        package = ei_sketch.write_package(out, data, dtype="int8" if args.int8 else "float32")
        files += [out / edgeimpulse.LIBRARY_ZIP, package]
    for line in report.summary_lines():
        print(line)
    for path in files:
        print(f"wrote {path}")
    return 0
