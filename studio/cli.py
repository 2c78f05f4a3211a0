"""`python -m studio [command]`: the same pipeline as the pages, without a browser.

Each command lives in `studio/commands/<name>.py` with `add_arguments(parser)` and `run(args) -> int`.
A `StudioError` becomes one line on stderr and exit status 2; argparse errors also exit 2.
"""
from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
from pathlib import Path

from core.errors import StudioError

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = ["inspect", "train", "export", "emulate", "device"]


def _available() -> list[str]:
    return [c for c in COMMANDS if (ROOT / "studio" / "commands" / f"{c}.py").exists()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m studio", description="Forecast Studio: CSV to a forecaster on a microcontroller.")
    parser.add_argument("--port", type=int, default=8501, help="port for the browser UI (no command given)")
    parser.add_argument("--address", default="127.0.0.1", help="address for the browser UI; 0.0.0.0 for LAN mode")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _available():
        module = importlib.import_module(f"studio.commands.{name}")
        p = sub.add_parser(name, help=module.__doc__.strip().splitlines()[0] if module.__doc__ else None,
                           description=module.__doc__)
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def serve(address: str = "127.0.0.1", port: int = 8501, extra: list[str] | None = None) -> int:
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "studio" / "app.py"),
           "--server.address", address, "--server.port", str(port), "--server.headless", "true",
           "--browser.gatherUsageStats", "false", *(extra or [])]
    return subprocess.call(cmd, cwd=ROOT)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        return serve(args.address, args.port)
    try:
        return int(args._module.run(args) or 0)
    except StudioError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted. Nothing was left half-written; run the command again.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    os.chdir(ROOT)
    sys.exit(main())
