"""Read the board's forecasts over serial and compare them with the host's.

Connects to PORT (a device path, or a pyserial URL such as socket://HOST:PORT), reads the board's ready
line, runs its self-test (T) and, with --windows N, sends N test windows with P. With --export the answers
are compared with the host's forecasts in the data's units, and the ready line is checked against the
export. --listen reads an Edge Impulse static-buffer sketch's output instead; --transcript reads that
output from a file. Exit status: 0 when board and host agree (or there is nothing to compare), 1 when
they disagree, 2 on bad input or a connection problem.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from core import display
from core.config import DEFAULTS, HELP
from core.board import (COMPARISON_HEADERS, Board, Comparison, compare_ei, ei_readings, list_ports, load_reference,
                        parse_transcript, run_check)
from core.errors import StudioError
from core.files import json_safe
from core.numbers import positive_float, positive_int

CFG = DEFAULTS["device"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", default=None, help=HELP.get("device.port"))
    # The ESP32-S3's UART tops out at 5 Mbaud; USB CDC ignores the rate, but a rate must still be one a port takes.
    p.add_argument("--baud", type=positive_int("--baud", 5_000_000, minimum=50), default=CFG["baud"], help=HELP.get("device.baud"))
    p.add_argument("--export", default=None, metavar="EXPORT_DIR",
                   help="the export the board was flashed from: its host forecasts are the reference")
    p.add_argument("--windows", type=positive_int("--windows", 10_000, minimum=0), default=0, metavar="N",
                   help="also send the first N test windows of the export with P (needs --export)")
    p.add_argument("--no-self-test", action="store_true", help="skip the board's built-in test windows (T)")
    p.add_argument("--listen", type=positive_float("--listen", 3600.0), default=None, metavar="SECONDS",
                   help="send nothing; read an Edge Impulse static-buffer sketch's output for this long")
    p.add_argument("--transcript", default=None, metavar="FILE",
                   help="compare a saved Edge Impulse serial-monitor transcript instead of a live board (needs --export)")
    p.add_argument("--timeout", type=positive_float("--timeout", 3600.0), default=CFG["answer_timeout_s"],
                   help=f"seconds to wait for each answer line (default {CFG['answer_timeout_s']:g})")
    p.add_argument("--stream", default=None, metavar="CSV",
                   help="after the check, send each row of this CSV (its numeric columns, the model's inputs in order) "
                        "with R and report the board's forecasts and alerts (FS ALERT)")
    p.add_argument("--list", action="store_true", help="list the serial ports (a XIAO ESP32S3 first) and exit")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _table(cmp: Comparison) -> str:
    """The Device page's table as text: its headers and cells (core.display), board and host to seven digits."""
    rows = [{"window": r.window, "k": r.k, "step": r.step, "target": r.target, "board": r.board, "host": r.host,
             "abs_err": r.abs_err, "ok": "yes" if r.ok else "NO"} for r in cmp.rows]
    return display.text_table(rows, COMPARISON_HEADERS, digits={"board": 7, "host": 7})


def _stream(board: Board, path: str, features: int, timeout: float) -> dict:
    """Each row of the CSV at ``path`` to the board with R, waiting for each answer: forecasts and alerts."""
    import pandas as pd

    from core.livestream import readings_from_csv

    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise StudioError(f"Cannot read the stream {path} ({exc}).", "Give a CSV with one reading per row.") from None
    values = readings_from_csv(frame, features)  # the Device step's live stream reads an upload the same way
    forecasts = []
    for row in values:
        answer, _ = board.stream(row, timeout)
        forecasts.append(list(answer.y) if hasattr(answer, "y") else None)
    return {"readings": len(values), "forecasts": forecasts,
            "alerts": [{**a.__dict__, "extra": dict(a.extra)} for a in board.alerts()]}


def _emit(args: argparse.Namespace, payload: dict, cmp: Comparison | None, extra: list[str]) -> int:
    if args.json:
        if cmp is not None:
            payload["comparison"] = cmp.to_dict()
        print(json.dumps(json_safe(payload), indent=2, allow_nan=False))
    else:
        for line in extra:
            print(line)
        if cmp is not None:
            if cmp.rows:
                print(_table(cmp))
            for problem in cmp.problems:
                print(f"problem: {problem}")
            print(cmp.summary())
    # Exit 1 when the board disagrees with the host's copy of its model, or its forecasts are judged wrong.
    return 1 if cmp is not None and (cmp.verdict == "disagree" or cmp.forecasts_good is False) else 0


def run(args: argparse.Namespace) -> int:
    if args.list:
        ports = list_ports()
        if args.json:
            print(json.dumps([p.__dict__ for p in ports], indent=2))
        else:
            print("\n".join(p.label for p in ports) or "no serial ports found")
        return 0
    if args.windows < 0:
        raise StudioError("--windows must be 0 or more.", "Give the number of test windows to send, e.g. --windows 5.")
    if args.timeout <= 0 or (args.listen is not None and args.listen <= 0):
        raise StudioError("--timeout and --listen must be positive numbers of seconds.", "For example --timeout 10.")
    ref = load_reference(args.export) if args.export else None
    if args.windows and ref is None:
        raise StudioError("--windows needs --export: the test windows come from the export.",
                          "Add --export EXPORT_DIR (the folder the Export step wrote).")

    if args.transcript:
        if ref is None:
            raise StudioError("--transcript needs --export to convert the values back to the data's units.",
                              "Add --export EXPORT_DIR.")
        try:
            text = Path(args.transcript).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise StudioError(f"Cannot read the transcript {args.transcript} ({exc.strerror or exc}).",
                              "Check the file name.") from None
        readings = ei_readings(parse_transcript(text))
        if not readings:
            raise StudioError(f"{args.transcript} holds no Edge Impulse predictions (no 'Predictions:' / '  value: ...' lines).",
                              "Save the serial monitor's output of the static-buffer sketch and try again.")
        cmp = compare_ei(readings, ref)
        return _emit(args, json_safe({"source": args.transcript, "readings": len(readings)}), cmp,
                     [f"{len(readings)} Edge Impulse reading(s) from {args.transcript}"])

    if not args.port:
        raise StudioError("No --port was given.", "Run `python -m studio device --list` to see the ports, "
                                                   "or use the path `python -m studio emulate` printed.")
    with Board(args.port, args.baud, expected=ref.expected if ref else None) as board:
        if args.listen is not None:
            time.sleep(args.listen)
            if board.error is not None:
                raise board.error
            readings = ei_readings(board.records())
            if board.unreadable and not readings:
                raise board.unreadable_error()
            if not readings:
                raise StudioError(f"No Edge Impulse predictions were printed on {args.port} within {args.listen:g} s.",
                                  "Check that the static-buffer sketch is uploaded and the baud rate is 115200, "
                                  "or listen for longer (it prints one reading every few seconds).")
            cmp = compare_ei(readings, ref) if ref else None
            payload = {"port": args.port, "readings": [{"values": r.values,
                                                        "inference_ms": r.timing.inference_ms if r.timing else None}
                                                       for r in readings]}
            extra = [f"{len(readings)} Edge Impulse reading(s) on {args.port}"]
            if cmp is None:
                extra += [f"  {r.values}" for r in readings]
            return _emit(args, json_safe(payload), cmp, extra)

        ready = board.ready(timeout=min(args.timeout, CFG["ready_timeout_s"]))
        extra = [f"board: model={ready.model} window={ready.window} features={ready.features} horizon={ready.horizon} "
                 f"targets={ready.targets} dtype={ready.dtype} arena={ready.arena} on {args.port}"]
        check = run_check(board, ref, self_test=not args.no_self_test,
                          windows=range(min(args.windows, ref.n_windows if ref else 0)), timeout=args.timeout)
        results, pairs = check.results, check.pairs
        payload = {"port": args.port, "ready": ready.__dict__,
                   "self_test": [r.__dict__ for r in results], "windows": [{"window": i, **r.__dict__} for i, r in pairs]}
        if args.stream:
            payload["stream"] = _stream(board, args.stream, ready.features, args.timeout)
            extra.append(f"streamed {payload['stream']['readings']} reading(s) from {args.stream}: "
                         f"{len(payload['stream']['alerts'])} alert(s)")
            extra += [f"  alert: {a.words()}" for a in board.alerts()]
        # Every FS ALERT the board printed while connected (issue 33): band, stuck and gap alarms.
        payload["alerts"] = [{**a.__dict__, "extra": dict(a.extra)} for a in board.alerts()]
        if ref is None:
            for r in results:
                extra.append(f"k={r.k} us={r.us} y={','.join(f'{v:.7g}' for v in r.y)}")
            extra.append("No --export given, so there is nothing to compare with; the board's answers are shown as read.")
            return _emit(args, json_safe(payload), None, extra)
        return _emit(args, json_safe(payload), check.comparison, extra)
