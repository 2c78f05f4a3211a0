"""Helpers every benchmark shares: timing with repeats, peak memory, writing the results section."""
from __future__ import annotations

import gc
import resource
import statistics
import time
import tracemalloc
from pathlib import Path
from typing import Callable

RESULTS = Path(__file__).resolve().parent / "results"


def best_of(fn: Callable[[], object], repeat: int = 3) -> tuple[float, object]:
    """Best wall time over ``repeat`` runs (the least disturbed by other load) and the last result."""
    times, result = [], None
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def median_of(fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def traced_peak(fn: Callable[[], object]) -> tuple[int, object]:
    """Peak bytes Python and NumPy allocated while ``fn`` ran (tracemalloc sees NumPy buffers)."""
    gc.collect()
    tracemalloc.start()
    try:
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, result


def max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def write_section(name: str, markdown: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.md"
    path.write_text(markdown.rstrip() + "\n")
    print(markdown)
    return path
