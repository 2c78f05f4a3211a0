"""Shape-preserving downsampling for charts: which points to draw, as indices into the original series.

A browser draws a few thousand points per line comfortably; a million makes it crawl. Both methods keep
the look of the line: ``minmax`` keeps every bucket's lowest and highest point (so no spike disappears),
``lttb`` (Largest-Triangle-Three-Buckets, Steinarsson 2013) keeps the point of each bucket that spans the
largest triangle with its neighbours. ``minmax`` is fully vectorised and is what the charts use for long
series; ``lttb`` loops once per output point (not per input point) and suits a few thousand points.
"""
from __future__ import annotations

import numpy as np


def _edges(n: int, buckets: int, first: int = 0, last: int | None = None) -> np.ndarray:
    last = n if last is None else last
    return np.linspace(first, last, buckets + 1).astype(np.int64)


def minmax(y: np.ndarray, n: int) -> np.ndarray:
    """Sorted indices of at most ``n`` points: the first and last point, and each bucket's min and max.

    NaNs are never chosen over a number in the same bucket; an all-NaN bucket contributes its first index
    (drawn as a break in the line).
    """
    y = np.asarray(y, dtype=np.float64)
    size = len(y)
    if n >= size or size <= 4:
        return np.arange(size)
    buckets = max((n - 2) // 2, 1)
    inner = size - 2
    width = -(-inner // buckets)  # ceil: equal-width buckets, the last one padded
    padded = np.full(width * buckets, np.nan)
    padded[:inner] = y[1:-1]
    grid = padded.reshape(buckets, width)
    nan = np.isnan(grid)
    lo = np.where(nan, np.inf, grid).argmin(axis=1)
    hi = np.where(nan, -np.inf, grid).argmax(axis=1)
    base = np.arange(buckets) * width + 1
    picks = np.concatenate(([0], base + lo, base + hi, [size - 1]))
    picks = picks[picks < size - 1] if picks.max() >= size else picks
    return np.unique(np.concatenate((picks, [size - 1])))


def lttb(x: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    """Sorted indices of ``n`` points chosen by Largest-Triangle-Three-Buckets (first and last always kept)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    size = len(y)
    if n >= size or n < 3:
        return np.arange(size) if n >= size else np.array([0, size - 1])[: max(n, 0)]
    edges = _edges(size - 2, n - 2) + 1  # buckets over the inner points
    # Each bucket's mean point: the fixed third corner of the triangles in the bucket before it.
    counts = np.diff(edges)
    sx = np.add.reduceat(x[1:-1], edges[:-1] - 1) / counts
    sy = np.add.reduceat(np.nan_to_num(y[1:-1]), edges[:-1] - 1) / counts
    mean_x = np.append(sx[1:], x[-1])
    mean_y = np.append(sy[1:], y[-1])
    out = np.empty(n, dtype=np.int64)
    out[0], out[-1] = 0, size - 1
    a = 0
    for i in range(n - 2):
        lo, hi = edges[i], edges[i + 1]
        bx, by = x[lo:hi], y[lo:hi]
        area = np.abs((x[a] - mean_x[i]) * (by - y[a]) - (x[a] - bx) * (mean_y[i] - y[a]))
        a = lo + int(np.nanargmax(area)) if not np.isnan(area).all() else lo
        out[i + 1] = a
    return out


def pick(y: np.ndarray, n: int, x: np.ndarray | None = None, method: str = "minmax") -> np.ndarray:
    """Indices to draw for one line: ``minmax`` for speed on long series, ``lttb`` for the smoothest shape."""
    if method == "lttb":
        return lttb(np.arange(len(y)) if x is None else x, y, n)
    return minmax(y, n)
