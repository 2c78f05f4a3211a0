"""Serve a stand-in XIAO ESP32S3 on a pseudo-terminal for an export.

Prints the pty path (give it to `python -m studio device --port PATH`, the Device page's
manual port, or any serial monitor at 115200) and serves until Ctrl-C. The emulator runs the
export's own model bytes on the TensorFlow Lite Micro runtime and answers the firmware's
protocol (I, T, P); --mode edge-impulse replays the Edge Impulse static-buffer output instead.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

from core.board.emulator import MODES, Emulator
from core.numbers import positive_float


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("export_dir", metavar="EXPORT_DIR", help="an export folder (report.json and the .tflite files)")
    p.add_argument("--dtype", choices=("int8", "float32"), default="int8", help="which exported model the board runs")
    p.add_argument("--mode", choices=MODES, default="protocol",
                   help="protocol: the studio's firmware; edge-impulse: the static-buffer example's output")
    p.add_argument("--run", default=None, metavar="RUN_DIR",
                   help="the run directory, when the export holds no test windows of its own")
    p.add_argument("--interval", type=positive_float("--interval", 3600.0), default=2.0,
                   help="seconds between Edge Impulse outputs (edge-impulse mode)")


def run(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    emulator = Emulator(args.export_dir, dtype=args.dtype, mode=args.mode, run_dir=args.run,
                        ei_interval_s=args.interval)
    stop = stop or threading.Event()
    # Ctrl-C only raises a flag, set before the path is printed (a host may stop us as soon as it has it): a
    # KeyboardInterrupt raised inside Event.wait's lock handling could leave the process unable to exit (a
    # loaded CI-like run saw the child outlive SIGINT by minutes).
    interrupted: list[int] = []  # a plain list, no lock: a second Ctrl-C inside the handler cannot deadlock it
    restore = None
    if threading.current_thread() is threading.main_thread():
        restore = signal.signal(signal.SIGINT, lambda *_: interrupted.append(1))
    try:
        path = emulator.start()
        print(path, flush=True)
        print(f"Emulated XIAO ESP32S3 ({emulator.spec.model_name}, {emulator.spec.dtype}, {args.mode}) on {path}; "
              "Ctrl-C stops it.", file=sys.stderr, flush=True)
        while not stop.is_set() and not interrupted:
            time.sleep(0.2)
    finally:
        if restore is not None:
            signal.signal(signal.SIGINT, restore)
        emulator.stop()
    return 0
