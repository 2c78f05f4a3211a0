"""Step 5, Forecast: is the model any good, and take the results away.

Thin by design: the numbers come from core.forecast, the figures from studio.forecast_view, and the
project file from core.project. Predictions are cached per run (its folder and modification time),
so coming back to this page after training redraws without running the model again.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from core import forecast, project
from core.config import DEFAULTS, HELP
from core.errors import StudioError
from core.intervals import coverage_table, summary_lines, under_cover_lines
from studio import forecast_view as fv
from studio import state, ui

CFG = DEFAULTS["forecast"]


# ------------------------------------------------------------------------------------ cached work
# The leading underscore tells st.cache_data not to hash the (large) run and windows objects: the
# run's folder and its modification time identify them, because a new training writes a new run.json.

def _run_key(run) -> str:
    path = Path(run.run_dir)
    manifest = path / "run.json"
    mtime = manifest.stat().st_mtime_ns if manifest.exists() else 0
    return f"{path.resolve()}@{mtime}"


@st.cache_data(show_spinner="Forecasting the test part...", max_entries=8)
def _test_report(run_key: str, _run, _windows) -> forecast.TestReport:
    return forecast.test_report(_run, _windows)


@st.cache_data(show_spinner="Running the backtest...", max_entries=16)
def _backtest(run_key: str, stride: int, steps: int, _run, _windows) -> forecast.Backtest:
    return forecast.backtest(_run, _windows, stride, steps=steps)


@st.cache_data(show_spinner="Forecasting past the end of the data...", max_entries=16)
def _future(run_key: str, method: str, steps: int, freq: str | None, calendar: dict | None, _run, _windows) -> pd.DataFrame:
    return forecast.future_forecast(_run, _windows, steps=steps, method=method, freq=freq, calendar=calendar)


# ------------------------------------------------------------------------------------ project I/O

def _open_project_ui(key: str) -> None:
    """Open a saved project: restores every step's state, then reruns into the restored studio."""
    upload = st.file_uploader("Open a project file (.zip)", type=["zip"], key=f"open_{key}", help=HELP["forecast.open"])
    if upload is None:
        return
    if st.button("Open this project", key=f"open_btn_{key}", type="primary"):
        try:
            opened = project.open_project(upload.getvalue(), current_dataset=state.get("dataset"),
                                          workdir=state.workdir() / "projects")
        except StudioError as e:
            ui.show_error(e)
            return
        except Exception as e:  # a file from someone else: whatever it breaks is a message, never a traceback
            detail = str(e).splitlines()[0][:200] if str(e) else "no detail"
            ui.show_error(StudioError(f"This project file could not be opened ({type(e).__name__}: {detail}).",
                                      "Ask for the project file again, or save it again from the studio that made it."))
            return
        state.invalidate("data")  # everything downstream of the old data goes, then the project's steps come in
        for key_name in ("dataset", "window_spec", "split", "scaler_kind", "windows", "model_spec", "train_config", "run"):
            state.put(key_name, getattr(opened, key_name))
        state.put("project_opened", project.describe(opened.manifest))
        st.rerun()


st.title("Forecast")
opened_note = state.get("project_opened")
if opened_note:
    st.success(f"Opened. {opened_note}")
    state.pop("project_opened")

run, windows, dataset = state.get("run"), state.get("windows"), state.get("dataset")
if run is None or windows is None:
    st.info("There is no trained model yet. Train one first; this page then shows its forecasts against the actuals.")
    ui.link_to("train")
    with st.expander("Or open a saved project", expanded=True):
        _open_project_ui("empty")
    st.stop()

key = _run_key(run)
try:
    report = _test_report(key, run, windows)
except StudioError as e:
    ui.show_error(e)
    ui.link_to("train")
    st.stop()

spec = windows.spec
targets = list(spec.targets)
result = report.metrics

# ------------------------------------------------------------------------------------ verdict + metrics
verdict = str(result.get("verdict") or "")
improvement = result.get("improvement_pct")
if improvement is not None and np.isfinite(improvement) and improvement > 0:
    st.success(verdict, icon=":material/thumb_up:")
else:
    st.warning(verdict, icon=":material/warning:")
backtest_note = st.empty()  # filled once the backtest below is computed: it can contradict the verdict

# The statistical references were scored when the run was trained (metrics.json); they apply here when the
# test part is the one they forecast (an older run's split may differ).
saved = run.metrics if isinstance(getattr(run, "metrics", None), dict) else {}
same_test = saved.get("n_windows") == windows.count("test") and getattr(run, "split_rule", 2) >= 2
references = saved.get("references") if same_test else None
table = fv.metrics_display(forecast.metrics_table(result, references))
ui.table(table, keep=tuple(table.columns), width="stretch")  # formatted by fv.metrics_display
if same_test and saved.get("references_note"):
    st.caption(saved["references_note"])
elif not same_test or "references" not in saved:
    st.caption("No statistical references (ETS, Theta) for this run: they are fitted when a run is trained "
               "on this test part; train again to see them.")
if result.get("weak"):
    st.warning(f"{result['weak']} Change the split or the window on the **Features** step, then train again.",
               icon=":material/error:")
st.caption(f"Test part: {windows.count('test'):,} windows forecasting {result.get('points', windows.count('test')):,} "
           "time points, in the targets' own units. 'model better by' compares "
           "the model's MAE with each baseline's; positive means the model wins.")
if getattr(run, "split_rule", 2) < 2:
    saved = run.metrics.get("n_windows")
    st.caption(f"This run was trained by an earlier studio that left a gap before the validation and test parts; its "
               f"saved metrics (metrics.json{f', {saved:,} test windows' if isinstance(saved, int) else ''}) are kept "
               "as written. The figures here score every test window of the current split.")

# Prediction bands: calibrated at training on the validation part, their coverage measured there on the test part.
bands = getattr(run, "intervals", None) or {}
band_lines = summary_lines(bands, warnings=False)
if band_lines:
    st.markdown("**How sure:** " + "; ".join(band_lines) + ".", help=HELP.get("forecast.bands"))
    for note in under_cover_lines(bands):  # beside the figures it qualifies, not only in the expander
        st.warning(note, icon=":material/warning:")
    with st.expander("Band coverage per step ahead"):
        ui.table(coverage_table(bands), width="stretch")
        st.caption("Calibrated on the validation part; the share inside is measured on the test part, which the "
                   "calibration never saw. Widths are in the target's own units.")
for note in bands.get("warnings") or []:
    st.warning(note, icon=":material/info:")
if not bands:
    st.caption("This model was trained before prediction bands existed; train it again to get calibrated bands.")
else:
    with st.expander("Other band levels"):
        shown = ", ".join(f"{v:g}" for v in bands.get("levels_asked") or bands.get("levels") or [])
        asked = st.text_input("Band levels (%)", value=shown, help=HELP.get("forecast.band_levels"))
        if st.button("Calibrate these levels", key="fs.recalibrate"):
            try:
                run.recalibrate(windows, asked)
            except StudioError as e:
                ui.show_error(e)
            except OSError as e:
                ui.show_error(StudioError(f"The run folder could not be written ({e.strerror or e}).",
                                          "Check the disk has room, or train the model again."))
            else:
                st.rerun()

# ------------------------------------------------------------------------------------ test forecasts
st.subheader("Test forecasts against the actuals")
c1, c2 = st.columns(2)
target = c1.selectbox("Target", targets, help=HELP["forecast.target"]) if len(targets) > 1 else targets[0]
step = (c2.select_slider("Steps ahead", options=list(range(1, spec.horizon + 1)), value=1, help=HELP["forecast.step"])
        if spec.horizon > 1 else 1)
fig_forecast = fv.mark_narrow(fv.forecast_figure(report.frame, target, step), bands, target)
st.plotly_chart(fig_forecast, width="stretch")

r1, r2 = st.columns(2)
fig_res, fig_hist = fv.residual_figures(report.frame, target, step)
r1.plotly_chart(fig_res, width="stretch")
r2.plotly_chart(fig_hist, width="stretch")

fig_steps = fv.per_step_figure(report.per_step, target)
if spec.horizon > 1:
    st.plotly_chart(fig_steps, width="stretch")
else:
    st.caption("The model forecasts one step ahead, so there is one error per target (see the table above).")

# ------------------------------------------------------------------------------------ backtest
st.subheader("Backtest (rolling origin)")
reason = forecast.recursive_unavailable_reason(spec)
b1, b2 = st.columns(2)
n_test = windows.count("test")
default_stride = int(min(max(CFG["origin_stride"], int(np.ceil(n_test / CFG["backtest_max_origins"]))), max(n_test, 1)))
stride = int(b1.number_input("Origin stride (time points)", min_value=1, max_value=max(n_test, 1), value=default_stride,
                             step=1, help=HELP["forecast.origin_stride"]))
max_bt_steps = spec.horizon if reason else max(spec.horizon, int(CFG["future_steps"]))
bt_steps = int(b2.number_input("Steps ahead", min_value=1, max_value=max_bt_steps, value=spec.horizon, step=1,
                               help=HELP["forecast.backtest_steps"]))
if reason and spec.horizon == max_bt_steps:
    b2.caption(f"Longer than {spec.horizon} step(s) would need a recursive forecast: {reason}.")
try:
    bt = _backtest(key, stride, bt_steps, run, windows)
except StudioError as e:
    ui.show_error(e)
    bt = None
if bt is not None:
    bt_table = fv.metrics_display(bt.scores)
    ui.table(bt_table, keep=tuple(bt_table.columns), width="stretch")
    note = fv.backtest_note(bt, len(targets))
    if note:
        backtest_note.warning(note, icon=":material/warning:")
    fig_bt = fv.mark_narrow(fv.backtest_figure(bt, windows, target), bands, target)
    st.plotly_chart(fig_bt, width="stretch")
    st.caption(f"{len(bt.origins):,} forecast origins, one every {stride} time point(s) across the test part; "
               f"{'each forecast is the model called once' if bt.method == 'direct' else 'predictions are fed back as inputs beyond the horizon'}.")

# ------------------------------------------------------------------------------------ the future
st.subheader("Forecast past the end of the data")
methods = ["direct", "recursive"]
f1, f2 = st.columns(2)
method = f1.radio("Method", methods, horizontal=True, help=HELP["forecast.method"],
                  format_func=lambda m: f"Direct ({spec.horizon} step{'s' if spec.horizon > 1 else ''})" if m == "direct" else "Recursive")
if method == "recursive" and reason:
    st.info(f"Recursive forecasting is unavailable for this model: {reason}. Showing the direct forecast.")
    method = "direct"
steps = spec.horizon
if method == "recursive":
    steps = int(f2.number_input("Steps ahead", min_value=1, max_value=int(CFG["max_future_steps"]),
                                value=max(spec.horizon, int(CFG["future_steps"])), step=1, help=HELP["forecast.future_steps"]))
future = None
try:
    calendar = getattr(dataset, "calendar", None) or getattr(windows, "calendar", None)
    future = _future(key, method, steps, getattr(dataset, "freq", None) or windows.freq, calendar, run, windows)
except StudioError as e:
    ui.show_error(e)
if future is not None and calendar:
    st.caption(f"Observed on {calendar['describe']} only: the forecast runs over the next observed steps, "
               "skipping the hours and days the data has none.")
if future is not None:
    fig_future = fv.mark_narrow(fv.future_figure(windows, future, target), bands, target)
    st.plotly_chart(fig_future, width="stretch")
    with st.expander("Forecast values"):
        ui.table(future.drop(columns=["origin"]), width="stretch")

# ------------------------------------------------------------------------------------ downloads
st.subheader("Downloads")
stem = project.default_filename(getattr(dataset, "name", None) or windows.dataset_name).removesuffix("-project.zip")
d1, d2, d3, d4 = st.columns(4)
# Callables: the bytes are made only when a button is pressed, not on every redraw of the page.
d1.download_button("Forecasts (CSV)", lambda: forecast.forecasts_csv(report.frame), f"{stem}-test-forecasts.csv",
                   "text/csv", on_click="ignore", icon=":material/download:")
d2.download_button("Metrics (CSV)", lambda: forecast.metrics_csv(result, report.per_step), f"{stem}-metrics.csv",
                   "text/csv", on_click="ignore", icon=":material/download:")
d3.download_button("Forecast chart (HTML)", lambda: fv.figure_html(fig_forecast), f"{stem}-forecast-chart.html",
                   "text/html", on_click="ignore", icon=":material/download:")
if future is not None:
    d4.download_button("Future forecast (CSV)", lambda: forecast.forecasts_csv(future), f"{stem}-future-forecast.csv",
                       "text/csv", on_click="ignore", icon=":material/download:")
st.caption("CSV files are UTF-8 with a byte-order mark, so Excel shows accented and non-Latin column names correctly. "
           "Charts are self-contained HTML (they open offline).")

# ------------------------------------------------------------------------------------ project
st.subheader("Project")
p1, p2 = st.columns(2)
with p1:
    include = st.checkbox("Include the data in the project file", value=bool(CFG["include_data"]),
                          help=HELP["forecast.include_data"])
    saved = {k: state.get(k) for k in ("dataset", "window_spec", "split", "scaler_kind", "model_spec", "train_config")}
    missing = [k for k, v in saved.items() if v is None]
    if missing:
        st.caption(f"Saving needs every step's settings; missing: {', '.join(missing)}.")
    else:
        try:
            project.check_saveable(run)
        except StudioError as e:
            ui.show_error(e)
        else:
            # Built only when pressed (it can hold the whole dataset), on Streamlit's download thread:
            # everything it needs is captured here, since session state is not reachable from there.
            def _project_zip(s: dict = saved, include_data: bool = include) -> bytes:
                return project.project_bytes(s["dataset"], s["window_spec"], s["split"], s["scaler_kind"],
                                             s["model_spec"], s["train_config"], run, include_data=include_data)

            st.download_button("Save project (.zip)", _project_zip, project.default_filename(saved["dataset"].name),
                               "application/zip", on_click="ignore", type="primary", icon=":material/save:")
with p2:
    _open_project_ui("loaded")
