"""The board's watch (adaptive bands and alarms, issue 33) per reading, timed in the g++ host build.

    python -m bench.bench_watch [--readings N] [--repeats R]

Renders the float32 bundle of the alarm transcripts' slice export (2 features, 2 targets, horizon 1, 80% and 95%
bands), compiles its fs_protocol.cpp with bench/watch_driver.cpp (g++ -O2) and feeds the same N readings with R
twice in each repeat: the watch on (SetWatch: adaptive update, stuck, band and drift checks, FS ALERT lines) and
off (no SetWatch: the same parse, window, fake model and FS RESULT line). It prints the best time per reading of
each, their difference (the watch's own cost) and the ratio to the off baseline of the same run, on and off
interleaved so a busy machine slows both alike. The time never decides a test.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPORT = ROOT / "tests" / "transcripts" / "slice_alarm_export"
DRIVER = Path(__file__).resolve().parent / "watch_driver.cpp"


def build(work: Path) -> Path:
    from core.firmware import render_bundle

    with zipfile.ZipFile(render_bundle(EXPORT, "float32", out=work / "bundle.zip")) as zf:
        zf.extractall(work)
    sketch = next(work.glob("*/forecast_studio"))
    exe = work / "watch_driver"
    subprocess.run([shutil.which("g++") or "g++", "-std=c++17", "-O2", f"-I{sketch}", str(sketch / "fs_protocol.cpp"),
                    str(DRIVER), "-o", str(exe)], check=True, capture_output=True, text=True, timeout=300)
    return exe


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if shutil.which("g++") is None:
        print("g++ is not installed: nothing to time")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        exe = build(Path(tmp))
        out = subprocess.run([str(exe), str(args.readings), str(args.repeats)], check=True, capture_output=True,
                             text=True, timeout=600).stdout
    got = dict(line.split() for line in out.splitlines())
    on, off = float(got["on"]), float(got["off"])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"readings {args.readings}, best of {args.repeats}, load average {load:.1f}")
    print("| watch | ns per reading | ratio to off |")
    print("|---|---|---|")
    print(f"| off (SetWatch not called) | {off:.0f} | 1.00 |")
    print(f"| on (adaptive update, stuck, band and drift checks, {got['alerts']} alerts) | {on:.0f} | {on / off:.2f} |")
    print(f"The watch's own cost: {on - off:.0f} ns per reading (2 targets, horizon 1, 2 levels).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
