"""Plotly helpers every page uses. Whatever the length of the series, each line draws at most
``max_points`` points (min-max downsampled, so peaks survive), so a million-row chart stays responsive."""
from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.config import DEFAULTS
from core.downsample import minmax

MAX_POINTS = int(DEFAULTS["data"].get("chart_points", 4000))


def downsampled(index: pd.Index, values: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of the points to draw for one line."""
    values = np.asarray(values, dtype=np.float64)
    keep = minmax(values, max_points)
    x = index.to_numpy()[keep] if len(keep) < len(index) else index.to_numpy()
    return x, values[keep]


def line_chart(frame: pd.DataFrame, columns: Iterable[str] | None = None, max_points: int = MAX_POINTS,
               separate: bool = False, title: str | None = None, height: int | None = None) -> go.Figure:
    """Lines of ``columns`` against the frame's index; one shared panel, or one panel per column."""
    columns = [c for c in (columns if columns is not None else frame.columns) if c in frame.columns]
    rows = len(columns) if separate and columns else 1
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.02 if rows > 1 else 0.0,
                        subplot_titles=None) if rows > 1 else go.Figure()
    total = len(frame)
    for i, name in enumerate(columns):
        x, y = downsampled(frame.index, frame[name].to_numpy(), max_points)
        trace = go.Scatter(x=x, y=y, name=str(name), mode="lines", line={"width": 1.2},
                           hovertemplate=f"{name}: %{{y:.4g}}<br>%{{x}}<extra></extra>")
        if rows > 1:
            fig.add_trace(trace, row=i + 1, col=1)
            fig.update_yaxes(title_text=str(name), row=i + 1, col=1, title_font={"size": 11})
        else:
            fig.add_trace(trace)
    shown = min(total, max_points)
    note = f" · {shown:,} of {total:,} points per line (min-max downsampled)" if total > max_points else ""
    fig.update_layout(
        title={"text": (title or "") + note, "font": {"size": 13}} if (title or note) else None,
        height=height or (220 * rows + 60 if rows > 1 else 420), margin={"l": 10, "r": 10, "t": 40, "b": 10},
        # The legend below the plot: above it, it sat on the title (the downsampling note) at every width.
        hovermode="x unified", legend={"orientation": "h", "y": -0.08, "yanchor": "top", "x": 0},
        showlegend=rows == 1,
    )
    return fig
