"""`make bench`: run every bench/bench_*.py in its own process and collect BENCHMARKS.md.

Each benchmark measures the studio's path against a side-by-side baseline in the same run and
writes its markdown section to bench/results/<name>.md; peak memory is per process, so each runs alone.
"""
from __future__ import annotations

import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def main(argv: list[str]) -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    names = argv or sorted(p.stem for p in (ROOT / "bench").glob("bench_*.py"))
    failed = []
    for name in names:
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, "-m", f"bench.{name}"], cwd=ROOT)
        print(f"== {name}: exit {rc} in {time.perf_counter() - t0:.1f} s", flush=True)
        if rc:
            failed.append(name)
    sections = [p.read_text() for p in sorted(RESULTS.glob("bench_*.md"))]
    header = (
        "# Benchmarks\n\n"
        "Made by `make bench` (bench/__main__.py). Each benchmark runs the studio's own path and a plain\n"
        "baseline side by side in the same process and run, and reports the ratio; absolute times vary with\n"
        "the machine's load, the ratios much less.\n\n"
        f"Last run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.machine()}, "
        f"Python {platform.python_version()}.\n\n"
    )
    (ROOT / "BENCHMARKS.md").write_text(header + "\n".join(sections))
    if failed:
        print(f"benchmarks that failed or missed their target: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
