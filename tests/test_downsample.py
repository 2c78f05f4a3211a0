"""Chart downsampling: few points, the extremes kept, indices sorted and in range, fast on a million points."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.downsample import lttb, minmax, pick
from studio.charts import line_chart


@settings(max_examples=60, deadline=None)
@given(y=st.lists(st.one_of(st.floats(-1e9, 1e9), st.just(float("nan"))), min_size=0, max_size=400), n=st.integers(0, 120))
def test_minmax_indices_valid_and_keep_extremes(y, n):
    y = np.array(y, dtype=float)
    idx = minmax(y, n)
    assert np.all(np.diff(idx) > 0) and (len(idx) == 0 or (idx[0] >= 0 and idx[-1] < len(y)))
    if len(y) > max(n, 4):
        assert len(idx) <= max(n, 4)
        finite = y[np.isfinite(y)]
        if len(finite):
            assert np.nanmax(y[idx]) == finite.max() and np.nanmin(y[idx]) == finite.min()


@settings(max_examples=60, deadline=None)
@given(y=st.lists(st.floats(-1e6, 1e6), min_size=3, max_size=300), n=st.integers(3, 80))
def test_lttb_exact_count_endpoints_sorted(y, n):
    y = np.array(y)
    idx = lttb(np.arange(len(y)), y, n)
    assert len(idx) == min(n, len(y))
    assert idx[0] == 0 and idx[-1] == len(y) - 1 and np.all(np.diff(idx) > 0)


def test_lttb_matches_a_plain_reference():
    rng = np.random.default_rng(3)
    x, y, n = np.arange(500.0), rng.normal(size=500).cumsum(), 40
    ref = [0]
    edges = np.linspace(0, 498, n - 1).astype(int) + 1
    for i in range(n - 2):
        lo, hi = edges[i], edges[i + 1]
        nlo, nhi = (edges[i + 1], edges[i + 2]) if i + 2 < len(edges) else (499, 500)
        cx, cy = x[nlo:nhi].mean(), y[nlo:nhi].mean()
        a = ref[-1]
        areas = [abs((x[a] - cx) * (y[j] - y[a]) - (x[a] - x[j]) * (cy - y[a])) for j in range(lo, hi)]
        ref.append(lo + int(np.argmax(areas)))
    ref.append(499)
    assert list(lttb(x, y, n)) == ref


def test_spike_survives_a_million_points_quickly():
    y = np.sin(np.arange(1_000_000) / 1000.0)
    y[123_457] = 50.0
    t0 = time.perf_counter()
    idx = pick(y, 4000)
    assert time.perf_counter() - t0 < 2.0
    assert 123_457 in idx and len(idx) <= 4000


@pytest.mark.parametrize("separate", [False, True])
def test_line_chart_draws_at_most_max_points_per_trace(separate):
    frame = pd.DataFrame({"a": np.arange(50_000.0), "b": np.cos(np.arange(50_000.0))},
                         index=pd.date_range("2020-01-01", periods=50_000, freq="min"))
    fig = line_chart(frame, ["a", "b", "missing"], max_points=1000, separate=separate)
    assert [t.name for t in fig.data] == ["a", "b"]
    assert all(len(t.x) <= 1000 and len(t.x) == len(t.y) for t in fig.data)
    assert "of 50,000 points" in fig.layout.title.text


def test_a_downsampled_charts_title_and_legend_do_not_share_the_top():
    """Issue 32: the legend sat above the plot (y 1.02, anchored at its bottom), where the title (the
    downsampling note) is drawn: the title ran over the legend. It is below the plot now."""
    import pandas as pd

    from studio.charts import MAX_POINTS, line_chart

    n = MAX_POINTS * 2
    frame = pd.DataFrame({"a": np.arange(n, dtype=float), "b": np.ones(n)}, index=pd.date_range("2024", periods=n, freq="h"))
    fig = line_chart(frame, ["a", "b"])
    assert "downsampled" in fig.layout.title.text and fig.layout.showlegend
    assert fig.layout.legend.y < 0 and fig.layout.legend.yanchor == "top"
