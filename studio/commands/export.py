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
    p.add_argument("--bundle-dtype", choices=("auto", "int8", "float32"), default="auto",
                   help="the model the firmware bundle ships; auto (default): int8 only when its test error on the "
                        "board's runtime is within 5%% of float32's and it beats the best baseline")
    p.add_argument("--out", required=True, metavar="EXPORT_DIR", help="directory to write (replaced if it is an earlier export)")


def _progress(fraction: float, message: str) -> None:
    print(f"[{fraction * 100:3.0f}%] {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from core import edgeimpulse
    from core.errors import StudioError
    from core.export import export_run, loses_to_last_value
    from core.runs import load_run

    run_ = load_run(args.run_dir)
    if args.bundle_dtype == "int8" and not args.int8:
        raise StudioError("--bundle-dtype int8 needs an int8 model, but --no-int8 was given.",
                          "Drop --no-int8, or leave --bundle-dtype at auto.")
    key = args.ei_api_key or (os.environ.get("EI_API_KEY") if args.ei else None)
    if args.ei_api_key is not None or args.ei:
        # Fail before the export's minute of work when Edge Impulse cannot take this model at all.
        edgeimpulse.check_single_output(run_.model_spec)
    report = export_run(run_, args.out, int8=args.int8, progress=_progress)
    out = Path(args.out)
    files = [report.path(d) for d in report.dtypes]
    bundle_dtype, reason = report.recommended()
    if args.bundle_dtype != "auto":
        if args.bundle_dtype != bundle_dtype:
            reason = f"chosen with --bundle-dtype; the studio would ship {bundle_dtype}: {reason}"
        bundle_dtype = args.bundle_dtype
    if not args.no_bundle:
        from core.firmware import render_bundle

        print(f"Rendering the firmware bundle: {bundle_dtype} ({reason})", file=sys.stderr, flush=True)
        if loses_to_last_value(report.accuracy, bundle_dtype):
            print(f"warning: the bundle's {bundle_dtype} model forecasts the test windows worse than repeating the "
                  "last value; it is shipped because it was asked for.", file=sys.stderr, flush=True)
        files.append(render_bundle(out, dtype=bundle_dtype))
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
