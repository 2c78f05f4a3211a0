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
    p.add_argument("--ei-api-key", default=None, metavar="-|FILE",
                   help="also build the Edge Impulse Arduino library; the project API key is read from standard "
                        "input ('-') or from FILE, never from the command line, where every user's `ps` would show it")
    p.add_argument("--ei", action="store_true", help="build the Edge Impulse library with the key in EI_API_KEY")
    p.add_argument("--no-bundle", action="store_true", help="skip the offline firmware bundle zip")
    p.add_argument("--bundle-dtype", choices=("auto", "int8", "float32"), default="auto",
                   help="the model the firmware bundle ships; auto (default): int8 only when its test error on the "
                        "board's runtime is within 5%% of float32's and it beats the best baseline")
    p.add_argument("--form", choices=("auto", "step", "unrolled", "fused"), default="auto",
                   help="how the recurrent network reaches the board: auto (default) picks the fused op for LSTM and "
                        "the step loop for GRU/SimpleRNN; step: one time step, looped by the firmware; unrolled: one "
                        "cell copy per time step; fused: TFLite Micro's LSTM op (LSTM only)")
    p.add_argument("--out", required=True, metavar="EXPORT_DIR",
                   help="directory to write (replaced if it is an earlier export; refused if it holds anything else)")
    p.add_argument("--force", action="store_true",
                   help="replace --out even when it is a file or a folder holding files that are not an export")


def _progress(fraction: float, message: str) -> None:
    print(f"[{fraction * 100:3.0f}%] {message}", file=sys.stderr, flush=True)


def _read_key(source: str) -> str:
    """The API key from stdin ('-') or a file. A key typed on the command line is refused: it would sit in
    the process list (and shell history) for the whole export."""
    from core.errors import StudioError

    if source == "-":
        text = sys.stdin.readline(4096)
    else:
        path = Path(source)
        if not path.is_file():
            if source.startswith("ei_") or len(source) >= 24:
                raise StudioError("--ei-api-key takes '-' (read the key from standard input) or a file holding the key, "
                                  "not the key itself: every user's process list would show it.",
                                  "Run `... --ei-api-key - < keyfile`, or set EI_API_KEY and pass --ei.")
            raise StudioError(f"There is no key file at {source}.",
                              "Give --ei-api-key - (the key on standard input) or a file holding the key.")
        if path.stat().st_size > 4096:
            raise StudioError(f"{source} is too large to hold an API key.", "Give a file holding only the key.")
        text = path.read_text(encoding="utf-8", errors="replace")
    key = text.strip()
    if not key:
        raise StudioError("No Edge Impulse API key was given on --ei-api-key's input.",
                          "Paste your project's API key (Edge Impulse Dashboard -> Keys) into that file or stdin.")
    return key


def run(args: argparse.Namespace) -> int:
    from core.deliver import deliver
    from core.files import prepare_out_dir
    from core.runs import load_run

    # The folder rule before anything else: nothing is converted for a place that cannot take it.
    out = prepare_out_dir(args.out, ("export",), force=args.force)
    # The key leaves this process's environment at once: no converter child inherits it, and only
    # core.edge_impulse.worker receives it, on its stdin.
    env_key = os.environ.pop("EI_API_KEY", None)
    key = _read_key(args.ei_api_key) if args.ei_api_key is not None else (env_key if args.ei else None)
    done = deliver(load_run(args.run_dir), out, int8=args.int8, bundle_as=None if args.no_bundle else args.bundle_dtype,
                   api_key=key, to_edge_impulse=key is not None or args.ei, force=args.force, progress=_progress,
                   say=lambda m: print(m, file=sys.stderr, flush=True), form=args.form)
    for line in done.report.summary_lines():
        print(line)
    for path in done.files:
        print(f"wrote {path}")
    return 0
