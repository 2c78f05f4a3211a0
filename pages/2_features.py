"""Features step: targets, inputs, window and horizon, split and scaling, shown on one real window."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core import windows as W
from core.config import DEFAULTS, HELP
from core.dataset import ordinal
from core.defaults import default_config
from core.errors import StudioError
from core.frequency import describe_steps
from studio import state, ui

CFG = DEFAULTS["features"]
K = "feat."  # prefix of this page's widget keys
SCALER_NAMES = {"minmax": "Min-max to [0, 1]", "standard": "Standard (mean 0, std 1)"}
CUSTOM = "Custom"

st.title("Features")
st.caption("What the model reads, what it forecasts, and how far it looks back and ahead.")

ds = state.get("dataset")
if ds is None:
    st.info("No dataset yet. Load a CSV or pick a sample on the **Data** step first.")
    st.stop()

frame = ds.frame
n_rows = len(frame)
columns = ds.numeric_columns
is_time = isinstance(frame.index, pd.DatetimeIndex)
ss = st.session_state


def _init_widgets() -> None:
    """Seed the widgets from the stored choices (or sensible defaults) once per dataset."""
    ds_key = ds.fingerprint or str(id(ds))
    if ss.get(K + "dataset") == ds_key:
        return
    for key in [k for k in ss if isinstance(k, str) and k.startswith(K)]:
        del ss[key]
    ss[K + "dataset"] = ds_key
    spec = state.get("window_spec")
    ss[K + "why"] = []
    if spec is None or not set(spec.targets + spec.features) <= set(columns):
        # The studio's default for this data (core/defaults.py): the same the command line uses.
        chosen = default_config(ds)
        spec = chosen.window_spec
        ss[K + "why"] = [chosen.reasons[k] for k in ("features", "window", "calendar") if k in chosen.reasons]
    split = state.get("split") or W.SplitSpec()
    ss[K + "targets"] = list(spec.targets)
    ss[K + "features"] = list(spec.features)
    ss[K + "calendar"] = [c for c in spec.calendar if c in W.calendar_options(ds)]
    for name in ("window", "horizon", "offset", "stride"):
        ss[K + name] = getattr(spec, name)
    ss[K + "split_by"] = "date" if split.by_date else "fraction"
    ss[K + "train"] = split.train
    ss[K + "val"] = split.val
    ss[K + "scaler"] = state.get("scaler_kind") or CFG["scaler"]


_init_widgets()

# ------------------------------------------------------------------------------------------ columns
st.subheader("Columns")
c1, c2, c3 = st.columns([1, 2, 1])
targets = c1.multiselect("Targets (to forecast)", columns, key=K + "targets", persist_state="session",
                         help=HELP["features.targets"])
features = c2.multiselect("Input features", columns, key=K + "features", persist_state="session",
                          help=HELP["features.features"])
calendar: list[str] = []
options = W.calendar_options(ds)
if options:
    calendar = c3.multiselect("Calendar features", options, key=K + "calendar", persist_state="session",
                              format_func=lambda c: W.CALENDAR_NAMES[c], help=HELP["features.calendar"])
else:
    c3.caption("Calendar features need a time column with a step shorter than their cycle." if not is_time else
               "No calendar cycle varies at this data's step.")
if ds.excluded:
    st.caption("Left out on the Data step (not numeric): " +
               ", ".join(f"{c} ({why})" for c, why in ds.excluded.items()))

# ------------------------------------------------------------------------------ window and horizon
st.subheader("Window and horizon")
train_share = ss.get(K + "train", CFG["train"]) if ss.get(K + "split_by") != "date" else CFG["train"]
try:  # the split's own arithmetic, so the presets count the training rows the windows will have
    train_rows = W.SplitSpec(train=train_share, val=min(CFG["val"], 0.99 - train_share)).bounds(frame.index)[0]
except StudioError:
    train_rows = int(n_rows * CFG["train"])
cal = getattr(ds, "calendar", None)
ps = W.presets(ds.freq, train_rows, calendar=cal)
labels = {f"{p.label}  ({p.window} → {p.horizon})": p for p in ps}
current = (ss.get(K + "window"), ss.get(K + "horizon"))
ss[K + "preset"] = next((lab for lab, p in labels.items() if (p.window, p.horizon) == current), CUSTOM)


def _apply_preset() -> None:
    p = labels.get(ss[K + "preset"])
    if p is not None:
        ss[K + "window"], ss[K + "horizon"], ss[K + "offset"] = p.window, p.horizon, 0


st.selectbox("Preset", [CUSTOM, *labels], key=K + "preset", persist_state="session",
             on_change=_apply_preset, help=HELP["features.preset"])
if cal:
    per_day, week = cal["steps_per_day"], cal["steps_per_day"] * len(cal["weekdays"])
    st.caption(f"Observed on {cal['describe']} only: windows run over the observed steps, so a working day is "
               f"{per_day:,} step{'s' if per_day > 1 else ''} and a week {week:,}; nights, weekends and holidays are "
               "skipped, not filled.")
if ss.get(K + "why"):
    st.caption("Preselected for this data: " + " ".join(ss[K + "why"]))
w1, w2, w3, w4 = st.columns(4)
window = w1.number_input("Window (look-back steps)", min_value=1, step=1, key=K + "window", persist_state="session",
                         help=HELP["features.window"])
w1.caption(describe_steps(int(window), ds.freq, cal))
horizon = w2.number_input("Horizon (steps ahead)", min_value=1, step=1, key=K + "horizon", persist_state="session",
                          help=HELP["features.horizon"])
w2.caption(describe_steps(int(horizon), ds.freq, cal))
offset = w3.number_input("Offset (skip steps)", min_value=0, step=1, key=K + "offset", persist_state="session",
                         help=HELP["features.offset"])
w3.caption(describe_steps(int(offset), ds.freq, cal) if offset else "forecast starts right after the window")
stride = w4.number_input("Training stride", min_value=1, step=1, key=K + "stride", persist_state="session",
                         help=HELP["features.stride"])
w4.caption("every window" if stride == 1 else f"every {ordinal(stride)} window in train and validation")

# ----------------------------------------------------------------------------------- split, scaler
st.subheader("Split and scaling")
s1, s2, s3 = st.columns([1, 2, 1])
by = s1.radio("Split by", ["fraction", "date"], key=K + "split_by", persist_state="session", help=HELP["features.split"],
              format_func=lambda b: "Fraction" if b == "fraction" else ("Date" if is_time else "Step number"))
if by == "fraction":
    a, b = s2.columns(2)
    train = a.slider("Training share", 0.05, 0.95, step=0.05, key=K + "train", persist_state="session")
    val = b.slider("Validation share", 0.05, 0.5, step=0.05, key=K + "val", persist_state="session")
    s2.caption(f"Test share: {max(1 - train - val, 0):.0%} (the newest rows).")
    split = W.SplitSpec(train=train, val=val)
else:
    t_row, v_row = W.SplitSpec().bounds(frame.index)  # the default fractions, as the windows would split them
    a, b = s2.columns(2)
    if is_time:
        lo_d, hi_d = frame.index[0].date(), frame.index[-1].date()
        t_end = a.date_input("Validation starts on", value=frame.index[t_row].date(), min_value=lo_d,
                             max_value=hi_d, key=K + "train_end", persist_state="session")
        v_end = b.date_input("Test starts on", value=frame.index[v_row].date(), min_value=lo_d,
                             max_value=hi_d, key=K + "val_end", persist_state="session")
        split = W.SplitSpec(train_end=dt.datetime.combine(t_end, dt.time()).isoformat(),
                            val_end=dt.datetime.combine(v_end, dt.time()).isoformat())
    else:
        first, last = int(frame.index[0]), int(frame.index[-1])
        t_end = a.number_input("Validation starts at step", first, last, value=int(frame.index[t_row]),
                               key=K + "train_end_step", persist_state="session")
        v_end = b.number_input("Test starts at step", first, last, value=int(frame.index[v_row]),
                               key=K + "val_end_step", persist_state="session")
        split = W.SplitSpec(train_end=str(int(t_end)), val_end=str(int(v_end)))
scaler_kind = s3.radio("Scaler", list(SCALER_NAMES), key=K + "scaler", persist_state="session",
                       format_func=SCALER_NAMES.get,
                       help=HELP["features.scaler"])

# --------------------------------------------------------------------------- check and build windows
# The multiplicative (log) form is set on the Model step (or by its search); it stays while the targets do.
held = state.get("window_spec")
log = bool(held is not None and held.log and held.targets == tuple(targets))
try:
    spec = W.WindowSpec(targets=tuple(targets), features=tuple(features), calendar=tuple(calendar),
                        window=int(window), horizon=int(horizon), offset=int(offset), stride=int(stride), log=log)
except StudioError as e:
    ui.show_error(e)
    state.put("windows", None)
    st.stop()

choice = (spec, split, scaler_kind)
if (state.get("window_spec"), state.get("split"), state.get("scaler_kind")) != choice:
    state.put("window_spec", spec)
    state.put("split", split)
    state.put("scaler_kind", scaler_kind)
    state.put("windows", None)
    ss.pop(K + "built", None)
    state.invalidate("features")

# Reruns (a slider move) reuse what was built for these exact choices; only a change re-windows.
key = (ss[K + "dataset"], *choice)
built = ss.get(K + "built")
if built is None or built[0] != key:
    problems = W.validate(ds, spec, split, scaler_kind)
    windows = None
    if not problems:
        try:
            with st.spinner("Scaling the series and laying out the windows..."):
                windows = W.make_windows(ds, spec, split, scaler_kind)
        except StudioError as e:
            problems = [e]
    built = (key, [str(p) for p in problems])
    ss[K + "built"] = built
    state.put("windows", windows)
windows = state.get("windows")
problems = built[1]

st.subheader("Shapes")
st.markdown(f"`{W.shapes_sentence(spec)}`")
if problems:
    for p in problems:
        st.error(p)
    st.warning("The **Model** step stays locked until these are fixed.")
    st.stop()

counts = windows.counts()
m = st.columns(4)
for col, part in zip(m, W.PARTS):
    lo, hi = windows.parts[part]
    col.metric(f"{W.PART_NAMES[part].capitalize()} windows", f"{counts[part]:,}", help=f"rows {lo:,}–{hi - 1:,}")
m[3].metric("Values per forecast", f"{spec.window * spec.n_inputs:,}")
st.caption(W.parts_sentence(windows) +
           f" Window: {describe_steps(spec.window, ds.freq, cal)}; horizon: {describe_steps(spec.horizon, ds.freq, cal)}.")
if windows.scaler.constant:
    st.warning(f"Constant in the training part (scale 1 kept): {', '.join(windows.scaler.constant)}.")
with st.expander("Parts and scaler"):
    ui.table(windows.describe_parts(), {"points": "time points"})
    sc = windows.scaler
    ui.table({"column": sc.columns, "center": sc.center, "scale": sc.scale})
    st.caption("scaled = (value − center) / scale; fitted on the training part only and saved with the run.")

# ------------------------------------------------------------------------------ one real window
st.subheader("One window on your data")
show_col = st.selectbox("Column to show", list(dict.fromkeys(spec.targets + spec.features)),
                        key=K + "show", persist_state="session")
last_start = n_rows - spec.span
test_lo = windows.first_start("test")  # the first test window: its inputs reach back before the part
if not 0 <= ss.get(K + "pos", -1) <= last_start:  # first visit, or the window grew past the old position
    ss[K + "pos"] = min(test_lo, last_start)
pos = st.slider("Window position (first input row)", 0, max(last_start, 1), key=K + "pos", persist_state="session",
                help=HELP["features.picture"])
pos = min(pos, last_start)
part_of = windows.part_of(pos)
origin = frame.index[pos + spec.window - 1]
if part_of is None:
    straddles = any(pos + spec.label_start < windows.parts[p][0] < pos + spec.span for p in ("val", "test"))
    what = "its labels straddle two parts, so it is not used." if straddles else "the training stride skips it."
elif part_of != "train" and pos < windows.parts[part_of][0]:
    what = f"a {W.PART_NAMES[part_of]} window; its labels are {W.PART_NAMES[part_of]} rows, its inputs reach back before the part."
else:
    what = f"a {W.PART_NAMES[part_of]} window."
st.caption(f"Forecast made at {origin}: {what}")


def window_picture() -> go.Figure:
    lo, hi = max(0, pos - spec.span), min(n_rows, pos + 2 * spec.span)
    rows = np.arange(lo, hi)
    if len(rows) > CFG["picture_points"]:  # long windows: draw evenly spaced rows, keep the window's edges
        rows = np.unique(np.r_[np.linspace(lo, hi - 1, CFG["picture_points"]).astype(int),
                               pos, pos + spec.window - 1])
    values = frame[show_col].to_numpy()
    x = frame.index
    half = (x[1] - x[0]) / 2  # shade whole steps, so a one-step horizon is still visible
    fig = go.Figure()
    fig.add_scatter(x=x[rows], y=values[rows], mode="lines", name=show_col, line=dict(color="#9aa0a6"))
    inp = rows[(rows >= pos) & (rows < pos + spec.window)]
    fig.add_scatter(x=x[inp], y=values[inp], mode="lines+markers" if len(inp) <= 200 else "lines",
                    name="inputs (window)", line=dict(color="#1f77b4"), marker=dict(size=4))
    fig.add_vrect(x0=x[pos] - half, x1=x[pos + spec.window - 1] + half, fillcolor="#1f77b4", opacity=0.12, line_width=0,
                  annotation_text=f"window: {spec.window} steps", annotation_position="top left")
    lab = np.arange(pos + spec.label_start, pos + spec.label_start + spec.horizon)
    fig.add_vrect(x0=x[lab[0]] - half, x1=x[lab[-1]] + half, fillcolor="#d62728", opacity=0.10, line_width=0,
                  annotation_text=f"horizon: {spec.horizon}", annotation_position="top right")
    if show_col in spec.targets:
        fig.add_scatter(x=x[lab], y=values[lab], mode="markers", name="targets to forecast",
                        marker=dict(color="#d62728", size=9, symbol="diamond"))
    for part in ("val", "test"):  # where a part starts near the window, so the split is visible too
        b = windows.parts[part][0]
        if lo <= b < hi:
            fig.add_vline(x=x[b] - half, line_dash="dot", line_color="#7f7f7f",
                          annotation_text=f"{W.PART_NAMES[part]} starts", annotation_position="bottom right")
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=-0.25),
                      xaxis_title=frame.index.name or "step", yaxis_title=f"{show_col} (data units)")
    return fig


st.plotly_chart(window_picture(), width="stretch")
st.success(f"Ready: {counts['train']:,} training windows of {spec.window} × {spec.n_inputs}. "
           "Go on to the **Model** step.")
