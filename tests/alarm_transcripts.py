"""The golden alarm transcripts (tests/transcripts/alarms/*.txt), regenerated from the emulator.

    python -m tests.alarm_transcripts            # check: exit 1 and name the files the emulator no longer matches
    python -m tests.alarm_transcripts --regen    # rewrite them from the emulator

A transcript's recorded inputs are its `> line` (sent to the board) and `@ <ms>` (the board's clock) lines, and its
`#` comments; the `< line` answers are the emulator's (core.board.emulator.ProtocolEngine on the slice alarm export,
core.alarms.Watch's float32), with the run-dependent numbers (`arena=`, `us=`) written as `#`. The comments stay
where they are: where a change of the watch's arithmetic moves a number a comment quotes, edit the comment by hand.
tests/test_alarms_board.py then checks the g++-compiled fs_protocol.cpp against the regenerated files: the
firmware must print them byte for byte (only `#` stands for any integer), so a regeneration cannot hide a
difference between the board and the emulator.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from core.board.emulator import ProtocolEngine, TflmRunner
from core.firmware import load_bundle_spec
from tests.firmware_support import ALARM_TRANSCRIPTS, SLICE_ALARM_EXPORT, unescape

_ANY = re.compile(r"\b(arena|us)=\d+")


def engine(export: Path = SLICE_ALARM_EXPORT) -> ProtocolEngine:
    """The emulator's protocol engine on an export's float32 bundle (the alarm transcripts' board)."""
    spec = load_bundle_spec(export, "float32")
    return ProtocolEngine(spec, TflmRunner(spec))


def engine_lines(eng: ProtocolEngine, sent: list[bytes]) -> list[str]:
    """Everything the engine prints for ``sent`` (b"@ <ms>\\n" moves its clock), after its FS READY line."""
    lines = [eng.ready_line()]
    for data in sent:
        lines += eng.tick(int(data[1:].strip())) if data.startswith(b"@") else eng.feed(data)
    return lines


def regenerate(text: str, export: Path = SLICE_ALARM_EXPORT) -> str:
    """A transcript's text with every `< ` answer replaced by the emulator's, each after the input that made it;
    the FS READY line where the transcript had it, before its first input."""
    eng = engine(export)
    out: list[str] = []
    ready = False
    for raw in text.splitlines():
        if raw.startswith("< "):
            if not ready:
                out.append("< " + _ANY.sub(r"\1=#", eng.ready_line()))
                ready = True
            continue
        out.append(raw)
        if raw.startswith("@ ") or raw.startswith("> "):
            if not ready:
                out.insert(len(out) - 1, "< " + _ANY.sub(r"\1=#", eng.ready_line()))
                ready = True
            lines = eng.tick(int(raw[2:].strip())) if raw.startswith("@ ") else eng.feed(unescape(raw[2:]) + b"\n")
            out += ["< " + _ANY.sub(r"\1=#", line) for line in lines]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regen", action="store_true", help="rewrite the transcripts (default: only check them)")
    args = parser.parse_args(argv)
    stale = []
    for path in sorted(ALARM_TRANSCRIPTS.glob("*.txt")):
        old = path.read_text(encoding="ascii")
        new = regenerate(old)
        if new != old:
            stale.append(path.name)
            if args.regen:
                path.write_text(new, encoding="ascii")
    verb = "rewrote" if args.regen else "the emulator no longer prints"
    print(f"{verb}: {', '.join(stale)}" if stale else "every alarm transcript is the emulator's")
    return 1 if stale and not args.regen else 0


if __name__ == "__main__":
    sys.exit(main())
