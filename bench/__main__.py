"""`make bench`: run every bench/bench_*.py in its own process and collect their sections into BENCHMARKS.md.

Each benchmark measures the studio's path against a side-by-side baseline in the same run and
writes its markdown section to bench/results/<name>.md; peak memory is per process, so each runs alone.
The run's sections replace only the file's marked block (``merge_sections``); the dated sections written by hand
after a measurement stay.
"""
from __future__ import annotations

import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


HEADER = (
    "# Benchmarks\n\n"
    "Made by `make bench` (bench/__main__.py). Each benchmark runs the studio's own path and a plain\n"
    "baseline side by side in the same process and run, and reports the ratio; absolute times vary with\n"
    "the machine's load, the ratios much less.\n\n"
)
BEGIN = "<!-- make bench: begin (this block is rewritten by every run) -->"
END = "<!-- make bench: end -->"


def merge_sections(old: str, block: str) -> str:
    """BENCHMARKS.md with the marked block replaced by this run's sections and everything else kept: the dated
    sections written by hand after a measurement (analyses, trade-offs, figures of earlier runs) are the record,
    and a run of `make bench` must not wipe them. No block yet: it goes right after the file's header."""
    fresh = f"{BEGIN}\n\n{block.rstrip()}\n\n{END}\n"
    if not old.strip():
        return HEADER + fresh
    if BEGIN in old and END in old.split(BEGIN, 1)[1]:
        head, rest = old.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        return head + fresh + ("\n" + tail if tail else "")
    first = old.find("\n## ")
    if first < 0:
        return old.rstrip() + "\n\n" + fresh
    return old[:first + 1] + fresh + "\n" + old[first + 1:]


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
    stamp = (f"Last `make bench` run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.machine()}, "
             f"Python {platform.python_version()}.\n\n")
    target = ROOT / "BENCHMARKS.md"
    old = target.read_text() if target.exists() else ""
    part = target.with_suffix(".md.part")  # written whole, then renamed: never a half-written BENCHMARKS.md
    part.write_text(merge_sections(old, stamp + "\n".join(sections)))
    part.replace(target)
    if failed:
        print(f"benchmarks that failed or missed their target: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
