"""The Forecast page's figures and cached computations, kept out of the page so it stays thin and
the benchmark can time exactly what the page draws.

Figures never carry more than about ``max_points`` points per line: a long test part is downsampled
(the same rows for every line, so the forecast and the actuals stay aligned) before Plotly sees it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core import display, forecast
from core.config import DEFAULTS

COLORS = {"actual": "#444444", "prediction": "#1f77b4", "last_value": "#ff7f0e", "seasonal_naive": "#2ca02c",
          "mean": "#9467bd", "residual": "#d62728"}
BASELINE_LABELS = {"model": "Model", "last_value": "Last value", "seasonal_naive": "Seasonal naive",
                   "mean": "Train mean", "ets": "ETS (statsmodels)", "theta": "Theta (statsmodels)"}


_COLUMN_NAMES = display.METRIC_HEADERS


def metrics_display(table: pd.DataFrame) -> pd.DataFrame:
    """``core.forecast.metrics_table`` as a person reads it: the forecasters by name, a measure that does not
    apply (MAPE near zero) left out, and the model's margin over each baseline as a signed percentage."""
    out = table.drop(columns=["best_baseline"], errors="ignore").dropna(axis=1, how="all").copy()
    out["forecaster"] = [BASELINE_LABELS.get(n, n) for n in out["forecaster"]]
    if "model_better_by_pct" in out:
        out["model_better_by_pct"] = ["—" if not np.isfinite(v) else f"{v:+.1f} %"
                                      for v in pd.to_numeric(out["model_better_by_pct"], errors="coerce").astype(float)]
    return display.table(out, _COLUMN_NAMES, keep=("forecaster", "model_better_by_pct"))


def backtest_note(bt: forecast.Backtest, n_targets: int) -> str | None:
    """A warning when the rolling backtest has the model losing to a baseline (None when it wins them all),
    by the verdict's own measure, so the two cannot quietly disagree."""
    measure = "mae" if n_targets == 1 else "mase"
    beaten = forecast.backtest_beaten_by(bt, measure)
    if not beaten:
        return None
    name, model, base = beaten[0]
    others = [BASELINE_LABELS.get(n, n).lower() for n, _, _ in beaten[1:]]
    return (f"In the rolling backtest ({len(bt.origins):,} origins, {bt.steps} step(s) ahead) the model loses to "
            f"{BASELINE_LABELS.get(name, name).lower()} ({measure.upper()} {model:.4g} against {base:.4g})"
            + (f", and to {', '.join(others)}" if others else "")
            + ". The test-set verdict above rests on one pass over the test part; before relying on this model, "
              "try a longer window, calendar features or more epochs, and compare again.")


def _max_points(max_points: int | None) -> int | None:
    return DEFAULTS["forecast"]["max_points"] if max_points == 0 else max_points


def sample_rows(y: np.ndarray, max_points: int | None) -> np.ndarray:
    """Row positions to draw: all of them when few, else the min and max of each of ``max_points // 2``
    equal buckets (peaks and dips survive, unlike taking every k-th point), plus the last row."""
    n = len(y)
    if max_points is None or n <= max_points:
        return np.arange(n)
    buckets = max(int(max_points) // 2, 1)
    size = int(np.ceil(n / buckets))
    padded = np.full(buckets * size, np.nan)
    padded[:n] = np.asarray(y, dtype=np.float64)
    grid = padded.reshape(buckets, size)
    filled = ~np.isnan(grid).all(axis=1)  # NaN rows (gaps, the padding) must not pick a position
    safe = np.where(np.isnan(grid), 0.0, grid)
    lo = np.where(np.isnan(grid), np.inf, safe).argmin(axis=1)
    hi = np.where(np.isnan(grid), -np.inf, safe).argmax(axis=1)
    base = np.arange(buckets) * size
    idx = np.concatenate([(base + lo)[filled], (base + hi)[filled], [0, n - 1]])
    return np.unique(idx[idx < n])


def _figure(traces: list[dict], title: str, y_title: str, x_title: str = "Time", **layout) -> go.Figure:
    """A figure from plain trace dicts, without Plotly's per-property validation.

    Validation costs about 30 ms per trace and 100 ms per figure here, most of the page's budget;
    these traces are built from a fixed set of known keys, and tests render every figure to JSON.
    """
    # The title starts at the left and the toolbar stands upright at the right edge: drawn across the top, the
    # toolbar covered the titles of the half-width residual charts.
    base = dict(title=dict(text=title, x=0, xanchor="left", xref="paper"), xaxis=dict(title=dict(text=x_title)),
                yaxis=dict(title=dict(text=y_title)), hovermode="x unified", margin=dict(l=10, r=40, t=50, b=10),
                legend=dict(orientation="h", y=-0.2), height=420, modebar=dict(orientation="v"))
    base.update(layout)
    return go.Figure(dict(data=traces, layout=base), _validate=False)


def _line(x, y, name: str, color: str | None, width: float = 1.5, dash: str | None = None, **extra) -> dict:
    line = {"color": color, "width": width}
    if dash:
        line["dash"] = dash
    return dict(type="scatter", x=x, y=y, name=name, mode=extra.pop("mode", "lines"), line=line, **extra)


# Band shading per level (narrowest darkest); wider levels are drawn first so the narrow one sits on top.
BAND_ALPHA = {0: 0.28, 1: 0.14, 2: 0.08}


def _band_traces(x, rows: pd.DataFrame, levels: list[str], legendgroup: str = "band", showlegend: bool = True,
                 rgb: str = "31,119,180") -> list[dict]:
    """Shaded bands between each level's lower and upper columns of ``rows`` (already downsampled)."""
    traces = []
    for i in reversed(range(len(levels))):
        key = levels[i]
        fill = f"rgba({rgb},{BAND_ALPHA.get(i, 0.06)})"
        group = f"{legendgroup}{key}"
        traces.append(dict(type="scatter", x=x, y=rows[forecast.UPPER + key].to_numpy(), mode="lines",
                           line=dict(width=0), hoverinfo="skip", showlegend=False, legendgroup=group,
                           name=f"{key}% band (upper)"))
        traces.append(dict(type="scatter", x=x, y=rows[forecast.LOWER + key].to_numpy(), mode="lines",
                           line=dict(width=0), fill="tonexty", fillcolor=fill, legendgroup=group,
                           name=f"{key}% band", showlegend=showlegend, hoverinfo="skip"))
    return traces


def mark_narrow(fig: go.Figure, intervals: dict | None, target: str) -> go.Figure:
    """Name a band that holds far fewer test values than its level as such in the chart's legend, so it is not
    read like the others ("80% band: too narrow, 33% inside")."""
    from core.intervals import too_narrow

    for key, t, _, cov in too_narrow(intervals):
        if t == str(target):
            fig.for_each_trace(lambda tr, k=key, c=cov: tr.update(name=f"{k}% band: too narrow, {c:.0f}% inside"),
                               selector=dict(name=f"{key}% band"))
    return fig


def select(frame: pd.DataFrame, target: str, step: int) -> pd.DataFrame:
    """The rows of one target at one horizon step, in time order."""
    mask = (frame["target"] == target).to_numpy() & (frame["step"].to_numpy() == int(step))
    return frame.loc[mask]


def forecast_figure(frame: pd.DataFrame, target: str, step: int, max_points: int | None = 0) -> go.Figure:
    """Test forecasts at horizon ``step`` against the actuals and every baseline, one target."""
    rows = select(frame, target, step)
    total = len(rows)
    rows = rows.iloc[sample_rows(rows["actual"].to_numpy(), _max_points(max_points))]
    x = rows["timestamp"].to_numpy()
    traces = _band_traces(x, rows, forecast.band_levels(frame))
    traces.append(_line(x, rows["actual"].to_numpy(), "Actual", COLORS["actual"]))
    for name in forecast.baseline_names(frame):
        trace = _line(x, rows[forecast.BASELINE_PREFIX + name].to_numpy(), BASELINE_LABELS.get(name, name),
                      COLORS.get(name), width=1, dash="dot")
        if name == "mean":  # flat and far off on trending data: listed, hidden until clicked
            trace["visible"] = "legendonly"
        traces.append(trace)
    traces.append(_line(x, rows["prediction"].to_numpy(), "Model", COLORS["prediction"], width=2))
    shown = f" (showing {len(rows):,} of {total:,} points)" if len(rows) < total else ""
    return _figure(traces, f"{target}: forecasts {step} step(s) ahead vs actuals{shown}", str(target))


def residual_figures(frame: pd.DataFrame, target: str, step: int, max_points: int | None = 0,
                     bins: int | None = None) -> tuple[go.Figure, go.Figure]:
    """Residuals (actual - prediction) over time, and their histogram (binned here, so the figure is small)."""
    rows = select(frame, target, step)
    res = rows["residual"].to_numpy()
    idx = sample_rows(res, _max_points(max_points))
    zero = dict(type="line", xref="paper", x0=0, x1=1, y0=0, y1=0, line=dict(color="#888", width=1))
    over_time = _figure([_line(rows["timestamp"].to_numpy()[idx], res[idx], "Residual", COLORS["residual"], width=1)],
                        f"Residuals over time (actual - forecast), step {step}", str(target), shapes=[zero])
    finite = res[np.isfinite(res)]
    if len(finite):
        counts, edges = np.histogram(finite, bins=int(bins or DEFAULTS["forecast"]["histogram_bins"]))
    else:
        counts, edges = np.zeros(1, dtype=np.int64), np.array([0.0, 1.0])
    bars = dict(type="bar", x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges), name="Residuals",
                marker=dict(color=COLORS["residual"]))
    mean = float(np.mean(finite)) if len(finite) else 0.0
    hist = _figure([bars], f"Residual distribution (mean {mean:.4g}; near 0 means no bias)", "Count",
                   x_title=f"Residual ({target})", hovermode="closest", bargap=0)
    return over_time, hist


def per_step_figure(per_step: pd.DataFrame, target: str) -> go.Figure:
    """MAE per horizon step: the model against each baseline."""
    rows = per_step[per_step["target"] == target]
    names = ["model"] + [c[:-4] for c in rows.columns if c.endswith("_mae") and c != "model_mae"]
    traces = []
    for name in names:
        model = name == "model"
        traces.append(_line(rows["step"].to_numpy(), rows[f"{name}_mae"].to_numpy(),
                            "Model" if model else BASELINE_LABELS.get(name, name),
                            COLORS["prediction" if model else name] if (model or name in COLORS) else None,
                            width=2 if model else 1, dash=None if model else "dot", mode="lines+markers"))
    xaxis = dict(title=dict(text="Steps ahead"))
    if len(rows) <= 24:
        xaxis["dtick"] = 1
    return _figure(traces, "Error per horizon step (MAE, lower is better)", f"MAE ({target})", xaxis=xaxis)


def backtest_figure(bt: forecast.Backtest, windows, target: str, drawn: int | None = None) -> go.Figure:
    """The actual series over the backtest span, and the forecast paths issued at several origins."""
    drawn = int(drawn or DEFAULTS["forecast"]["backtest_origins_drawn"])
    rows = bt.frame[bt.frame["target"] == target]
    origins = pd.unique(rows["origin"])
    pick = origins[np.unique(np.linspace(0, len(origins) - 1, min(drawn, len(origins))).round().astype(int))]
    # the actuals: the real series from the first origin to the last label, downsampled
    k = list(windows.spec.targets).index(target)
    index = windows.index
    pos0 = int(index.searchsorted(rows["origin"].min()))
    pos1 = int(index.searchsorted(rows["timestamp"].max(), side="right"))
    span = forecast.to_units(windows, np.asarray(windows.target_values)[pos0:pos1][None])[0][:, k]
    idx = sample_rows(span, DEFAULTS["forecast"]["max_points"])
    traces = [_line(np.asarray(index[pos0:pos1])[idx], span[idx], "Actual", COLORS["actual"], width=1.2)]
    origin_col = rows["origin"].to_numpy()
    levels = forecast.band_levels(rows)
    for j, origin in enumerate(pick):
        path = rows[origin_col == origin]
        traces.extend(_band_traces(path["timestamp"].to_numpy(), path, levels, legendgroup="btband", showlegend=j == 0))
        traces.append(_line(path["timestamp"].to_numpy(), path["prediction"].to_numpy(), "Forecasts from origins",
                            COLORS["prediction"], width=2, mode="lines+markers", marker=dict(size=4),
                            showlegend=j == 0, legendgroup="fc",
                            hovertemplate=f"from {pd.Timestamp(origin) if isinstance(origin, np.datetime64) else origin}"
                                          "<br>%{x}: %{y:.4g}<extra></extra>"))
    how = "direct" if bt.method == "direct" else "recursive (predictions fed back)"
    return _figure(traces, f"Backtest: {len(pick)} of {len(origins)} origins drawn, {bt.steps} step(s) ahead, {how}",
                   str(target))


def future_figure(windows, future: pd.DataFrame, target: str, history: int | None = None) -> go.Figure:
    """The end of the data and the forecast past it."""
    k = list(windows.spec.targets).index(target)
    rows = future[future["target"] == target]
    n_hist = int(history or max(4 * windows.spec.window, 3 * len(rows), 48))
    tail = forecast.to_units(windows, np.asarray(windows.target_values)[-n_hist:][None])[0][:, k]
    x_tail = np.asarray(windows.index[-n_hist:])
    traces = _band_traces(rows["timestamp"].to_numpy(), rows, forecast.band_levels(rows))
    traces += [_line(x_tail, tail, "Data", COLORS["actual"]),
              _line(np.concatenate([x_tail[-1:], rows["timestamp"].to_numpy()]),
                    np.concatenate([tail[-1:], rows["prediction"].to_numpy()]), "Forecast", COLORS["prediction"],
                    width=2, mode="lines+markers", marker=dict(size=4))]
    return _figure(traces, f"{target}: forecast past the end of the data", str(target))


def figure_html(fig: go.Figure) -> bytes:
    """A standalone chart file. Plotly's JavaScript is embedded (about 4 MB) rather than loaded from a
    CDN: a workshop room may be offline, and the file must still open."""
    return fig.to_html(include_plotlyjs=True, full_html=True).encode("utf-8")
