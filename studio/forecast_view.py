"""The Forecast page's figures and cached computations, kept out of the page so it stays thin and
the benchmark can time exactly what the page draws.

Figures never carry more than ``max_points`` points per line: a long test part is downsampled
(the same rows for every line, so the forecast and the actuals stay aligned) before Plotly sees it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core import forecast
from core.config import DEFAULTS

COLORS = {"actual": "#444444", "prediction": "#1f77b4", "last_value": "#ff7f0e", "seasonal_naive": "#2ca02c",
          "mean": "#9467bd", "residual": "#d62728"}
BASELINE_LABELS = {"last_value": "Last value", "seasonal_naive": "Seasonal naive", "mean": "Train mean"}


def _max_points(max_points: int | None) -> int | None:
    return DEFAULTS["forecast"]["max_points"] if max_points == 0 else max_points


def sample_rows(y: np.ndarray, max_points: int | None) -> np.ndarray:
    """Row positions to draw: all of them when few, else a min/max-preserving downsample of ``y``."""
    n = len(y)
    if max_points is None or n <= max_points:
        return np.arange(n)
    from studio import charts

    return np.asarray(charts.downsample_indices(np.arange(n), np.asarray(y, dtype=np.float64), max_points))


def _layout(fig: go.Figure, title: str, y_title: str, x_title: str = "Time") -> go.Figure:
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, hovermode="x unified",
                      margin=dict(l=10, r=10, t=50, b=10), legend=dict(orientation="h", y=-0.2), height=420,
                      template="plotly_white")
    return fig


def select(frame: pd.DataFrame, target: str, step: int) -> pd.DataFrame:
    """The rows of one target at one horizon step, in time order."""
    mask = (frame["target"] == target).to_numpy() & (frame["step"].to_numpy() == int(step))
    return frame.loc[mask]


def forecast_figure(frame: pd.DataFrame, target: str, step: int, max_points: int | None = 0) -> go.Figure:
    """Test forecasts at horizon ``step`` against the actuals and every baseline, one target."""
    rows = select(frame, target, step)
    idx = sample_rows(rows["actual"].to_numpy(), _max_points(max_points))
    rows = rows.iloc[idx]
    x = rows["timestamp"].to_numpy()
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=rows["actual"].to_numpy(), name="Actual", mode="lines",
                             line=dict(color=COLORS["actual"], width=1.5)))
    for name in forecast.baseline_names(frame):
        fig.add_trace(go.Scatter(x=x, y=rows[forecast.BASELINE_PREFIX + name].to_numpy(),
                                 name=BASELINE_LABELS.get(name, name), mode="lines",
                                 line=dict(color=COLORS.get(name), width=1, dash="dot"), visible="legendonly"
                                 if name == "mean" else True))
    fig.add_trace(go.Scatter(x=x, y=rows["prediction"].to_numpy(), name="Model", mode="lines",
                             line=dict(color=COLORS["prediction"], width=2)))
    shown = f" (showing {len(rows):,} of {int(((frame['target'] == target) & (frame['step'] == int(step))).sum()):,} points)" \
        if len(idx) < len(select(frame, target, step)) else ""
    return _layout(fig, f"{target}: forecasts {step} step(s) ahead vs actuals{shown}", str(target))


def residual_figures(frame: pd.DataFrame, target: str, step: int, max_points: int | None = 0,
                     bins: int | None = None) -> tuple[go.Figure, go.Figure]:
    """Residuals (actual - prediction) over time, and their histogram (binned here, so the figure is small)."""
    rows = select(frame, target, step)
    res = rows["residual"].to_numpy()
    idx = sample_rows(res, _max_points(max_points))
    over_time = go.Figure(go.Scatter(x=rows["timestamp"].to_numpy()[idx], y=res[idx], mode="lines", name="Residual",
                                     line=dict(color=COLORS["residual"], width=1)))
    over_time.add_hline(y=0, line=dict(color="#888", width=1))
    _layout(over_time, f"Residuals over time (actual - forecast), step {step}", str(target))
    finite = res[np.isfinite(res)]
    counts, edges = np.histogram(finite, bins=int(bins or DEFAULTS["forecast"]["histogram_bins"])) if len(finite) \
        else (np.zeros(1), np.array([0.0, 1.0]))
    hist = go.Figure(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges), name="Residuals",
                            marker_color=COLORS["residual"]))
    mean = float(np.mean(finite)) if len(finite) else 0.0
    _layout(hist, f"Residual distribution (mean {mean:.4g}; near 0 means no bias)", "Count", x_title=f"Residual ({target})")
    hist.update_layout(hovermode="closest", bargap=0)
    return over_time, hist


def per_step_figure(per_step: pd.DataFrame, target: str) -> go.Figure:
    """MAE per horizon step: the model against each baseline."""
    rows = per_step[per_step["target"] == target]
    fig = go.Figure()
    names = ["model"] + [c[:-4] for c in rows.columns if c.endswith("_mae") and c != "model_mae"]
    for name in names:
        fig.add_trace(go.Scatter(x=rows["step"].to_numpy(), y=rows[f"{name}_mae"].to_numpy(), mode="lines+markers",
                                 name="Model" if name == "model" else BASELINE_LABELS.get(name, name),
                                 line=dict(color=COLORS.get("prediction" if name == "model" else name),
                                           width=2 if name == "model" else 1, dash=None if name == "model" else "dot")))
    _layout(fig, "Error per horizon step (MAE, lower is better)", f"MAE ({target})", x_title="Steps ahead")
    fig.update_xaxes(dtick=1 if len(rows) <= 24 else None)
    return fig


def backtest_figure(bt: forecast.Backtest, windows, target: str, drawn: int | None = None) -> go.Figure:
    """The actual series over the backtest span, and the forecast paths issued at several origins."""
    drawn = int(drawn or DEFAULTS["forecast"]["backtest_origins_drawn"])
    rows = bt.frame[bt.frame["target"] == target]
    origins = list(pd.unique(rows["origin"]))
    pick = [origins[int(i)] for i in np.unique(np.linspace(0, len(origins) - 1, min(drawn, len(origins))).round())]
    fig = go.Figure()
    # the actuals: the real series from the first origin to the last label, downsampled
    k = list(windows.spec.targets).index(target)
    index = windows.index
    t0, t1 = rows["origin"].min(), rows["timestamp"].max()
    pos0, pos1 = int(index.searchsorted(t0)), int(index.searchsorted(t1, side="right"))
    span = forecast.to_units(windows, np.asarray(windows.target_values)[pos0:pos1][None])[0][:, k]
    idx = sample_rows(span, DEFAULTS["forecast"]["max_points"])
    fig.add_trace(go.Scatter(x=np.asarray(index[pos0:pos1])[idx], y=span[idx], name="Actual", mode="lines",
                             line=dict(color=COLORS["actual"], width=1.2)))
    for j, origin in enumerate(pick):
        path = rows[rows["origin"] == origin]
        fig.add_trace(go.Scatter(x=path["timestamp"].to_numpy(), y=path["prediction"].to_numpy(),
                                 mode="lines+markers", marker=dict(size=4), line=dict(color=COLORS["prediction"], width=2),
                                 name="Forecasts from origins" if j == 0 else None, showlegend=j == 0,
                                 legendgroup="fc", hovertemplate=f"from {origin}<br>%{{x}}: %{{y:.4g}}<extra></extra>"))
    how = "direct" if bt.method == "direct" else "recursive (predictions fed back)"
    return _layout(fig, f"Backtest: {len(pick)} of {len(origins)} origins drawn, {bt.steps} step(s) ahead, {how}", str(target))


def future_figure(windows, future: pd.DataFrame, target: str, history: int | None = None) -> go.Figure:
    """The end of the data and the forecast past it."""
    k = list(windows.spec.targets).index(target)
    n_hist = int(history or max(4 * windows.spec.window, 3 * len(future[future["target"] == target]), 48))
    tail = forecast.to_units(windows, np.asarray(windows.target_values)[-n_hist:][None])[0][:, k]
    x_tail = np.asarray(windows.index[-n_hist:])
    rows = future[future["target"] == target]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x_tail, y=tail, name="Data", mode="lines", line=dict(color=COLORS["actual"], width=1.5)))
    fig.add_trace(go.Scatter(x=np.concatenate([x_tail[-1:], rows["timestamp"].to_numpy()]),
                             y=np.concatenate([tail[-1:], rows["prediction"].to_numpy()]), name="Forecast",
                             mode="lines+markers", marker=dict(size=4), line=dict(color=COLORS["prediction"], width=2)))
    return _layout(fig, f"{target}: forecast past the end of the data", str(target))


def figure_html(fig: go.Figure) -> bytes:
    """A standalone chart file. Plotly's JavaScript is embedded (about 4 MB) rather than loaded from a
    CDN: a workshop room may be offline, and the file must still open."""
    return fig.to_html(include_plotlyjs=True, full_html=True).encode("utf-8")
