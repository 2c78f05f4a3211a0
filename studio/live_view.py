"""The Device step's live stream (issue 33, item 3): pick the readings, the pace and an anomaly, stream them to the
board with R in the background (core.livestream.LiveStream, a thread owned by the session), and watch a chart of
the readings, the board's forecasts, its adaptive band and its alarms fill as the answers come.

The page calls ``section``; the chart is a fragment that polls the stream's answers, so nothing here waits."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.board import Board, Reference
from core.config import DEFAULTS
from core.downsample import minmax
from core.logscale import to_units
from core.errors import StudioError
from core.export import ExportFolder
from core.livestream import KINDS, WORDS, Anomaly, LiveStream, change_sd, chart_series, injected, readings_from_csv, \
    readings_from_windows
from studio import ui

CFG = DEFAULTS["device"]
KEY = "device.live"
TEST_PART = "The export's test part"
UPLOAD = "A CSV I upload"
PACES = [0.0, 1.0, 2.0, 5.0, 10.0, 20.0]
MAX_POINTS = 2000  # per line drawn: a long stream is min-max downsampled (core/downsample.py)


def _pace_words(pace: float) -> str:
    return "as fast as the board answers" if pace <= 0 else f"{pace:g} reading(s) a second"


def _test_part(ref: Reference | None) -> np.ndarray | None:
    if ref is None or ref.X is None or not len(ref.X):
        return None
    if ref.test_rows is not None and len(ref.test_rows) and ref.test_rows.shape[1] == ref.X.shape[2]:
        # The whole test part's rows (an export since issue 33's trained-network bench): the verified windows are at
        # most 64, evenly spread, and join back into one window's readings on a longer test part.
        return to_units(ref.test_rows, ref.in_center, ref.in_scale, ref.in_log if ref.in_log is not None else False)
    # Every test window in the data's units, a log column's exp taken (Reference.window_units, all windows at once).
    X = to_units(ref.X, ref.in_center, ref.in_scale, ref.in_log if ref.in_log is not None else False)
    return readings_from_windows(X)


def _input_names(export_dir) -> tuple[str, ...]:
    try:
        return tuple(ExportFolder.open(export_dir).input_columns or ()) if export_dir is not None else ()
    except StudioError:
        return ()


def _watched(ref: Reference | None, features: int, targets: int) -> list[tuple[str, int, int]]:
    """(label, column in a reading, target index) for each target the board watches (a target that is an input)."""
    if ref is None:
        return [(f"target {t}", t, t) for t in range(min(features, targets))]
    index = ref.target_input_index or tuple(range(min(features, len(ref.targets))))
    return [(name, int(col), t) for t, (name, col) in enumerate(zip(ref.targets, index)) if col is not None]


def section(board: Board, ref: Reference | None, export_dir) -> None:
    """Everything the live stream draws, below the board's connection; the board must have said it is ready."""
    st.subheader("Live stream")
    info = board.ready_info
    if info is None:
        st.caption("Ask for the ready line first: the live stream needs the board's window and inputs.")
        return
    live: LiveStream | None = st.session_state.get(KEY)
    watched = _watched(ref, info.features, info.targets)
    if not watched:
        st.info("This model's targets are not among its inputs, so the board cannot see the truth for its forecasts: "
                "it raises no band alarms on a stream.")
        return
    test_part = _test_part(ref)
    sources = ([TEST_PART] if test_part is not None else []) + [UPLOAD]
    c1, c2 = st.columns([3, 2])
    source = c1.radio("Readings", sources, horizontal=True, key=f"{KEY}.source")
    readings = None
    if source == TEST_PART:
        readings = test_part
        c1.caption(f"{len(readings)} readings: " + ("the export's test part, every reading in order." if ref.test_rows is not None
                   else "the test windows the export verified, joined back into the stretch they were cut from."))
    else:
        names = _input_names(export_dir)
        up = c1.file_uploader("CSV, one reading per row" + (f" (columns {', '.join(names)})" if names else ""),
                              type=["csv"], key=f"{KEY}.csv")
        if up is not None:
            # Parsed once per upload, not on every rerun of the page (the chart's fragment polls several times a second).
            parsed = st.session_state.get(f"{KEY}.parsed")
            if parsed is not None and parsed[0] == (up.file_id, info.features, names):
                readings = parsed[1]
            else:
                try:
                    readings = readings_from_csv(pd.read_csv(up), info.features, names)
                    st.session_state[f"{KEY}.parsed"] = ((up.file_id, info.features, names), readings)
                except (ValueError, OSError) as exc:
                    ui.show_error(StudioError(f"Cannot read {up.name} ({exc}).", "Give a CSV with one reading per row."))
                except StudioError as err:
                    ui.show_error(err)
    pace = c2.selectbox("Pace", PACES, format_func=_pace_words, key=f"{KEY}.pace")
    labels = [w[0] for w in watched]
    label = c2.selectbox("Target", labels, key=f"{KEY}.target") if len(labels) > 1 else labels[0]
    _, column, target = watched[labels.index(label)]
    c3, c4, c5, c6 = st.columns(4)
    kind = c3.selectbox("Inject", ["none", *KINDS], key=f"{KEY}.kind",
                        format_func=lambda k: "no anomaly" if k == "none" else k, help="; ".join(WORDS.values()))
    n = 0 if readings is None else len(readings)
    start = c4.number_input("At reading", 0, max(0, n - 1), min(max(0, n // 2), max(0, n - 1)), key=f"{KEY}.start")
    size = c5.number_input("Size (sd of the change)", value=8.0, step=1.0, key=f"{KEY}.size",
                           help="In standard deviations of the reading-to-reading change of this target in the stream.")
    length = c6.number_input("Length (readings)", 1, 500, 20, key=f"{KEY}.length")
    running = live is not None and live.running
    b1, b2 = st.columns(2)
    if b1.button("Start the stream", type="primary", key=f"{KEY}.start_button", disabled=running or readings is None):
        try:
            anomaly = None
            if kind != "none":
                anomaly = Anomaly(kind, int(start), float(size) * change_sd(readings[:, column]), int(length), column)
            values, keep = injected(readings, anomaly)
            st.session_state[KEY] = LiveStream(board, values, keep, pace=float(pace), timeout=CFG["answer_timeout_s"],
                                               anomaly=anomaly).start()
            st.session_state[f"{KEY}.shown"] = (column, target, label)
            st.rerun()
        except StudioError as err:
            ui.show_error(err)
    if b2.button("Stop", key=f"{KEY}.stop", disabled=not running):
        live.stop()
    if live is not None:
        chart()


def stop() -> None:
    """The page's Disconnect: end a stream that is still sending (its thread ends at its next reading)."""
    live = st.session_state.get(KEY)
    if live is not None:
        live.stop()


def busy() -> bool:
    live = st.session_state.get(KEY)
    return live is not None and live.running


def figure(data: dict, label: str, anomaly: Anomaly | None) -> go.Figure:
    """Readings, the board's one-step forecasts, its adaptive band and alert markers; long streams downsampled."""
    i, y = data["i"], data["reading"]
    keep = minmax(np.nan_to_num(y, nan=np.nanmean(y) if np.isfinite(y).any() else 0.0), MAX_POINTS) \
        if len(i) > MAX_POINTS else np.arange(len(i))
    fig = go.Figure()
    if data["level"] is not None:
        fig.add_scatter(x=i[keep], y=data["hi"][keep], mode="lines", line={"width": 0}, showlegend=False,
                        hoverinfo="skip")
        fig.add_scatter(x=i[keep], y=data["lo"][keep], mode="lines", line={"width": 0}, fill="tonexty",
                        fillcolor="rgba(99,110,250,0.18)", name=f"board's adaptive {data['level']}% band")
    # The forecast in the band's hue (the band is its interval), the reading dark: the theme's colorway drew
    # both in reds, one hard to tell from the other in the browser.
    fig.add_scatter(x=i[keep], y=data["forecast"][keep], mode="lines",
                    line={"width": 1.4, "dash": "dot", "color": "rgb(79,90,230)"}, name="board's forecast (one step ahead)")
    fig.add_scatter(x=i[keep], y=y[keep], mode="lines+markers" if len(keep) <= 200 else "lines",
                    marker={"size": 4, "color": "#262730"}, line={"width": 1.4, "color": "#262730"},
                    name=f"reading · {label}")
    alerts = data["alerts"][-500:]
    if alerts:
        ax = [j for j, _ in alerts]
        ay = [y[j] if np.isfinite(y[j]) else data["forecast"][j] for j, _ in alerts]
        fig.add_scatter(x=ax, y=ay, mode="markers", name="board's alarm", text=[a.words() for _, a in alerts],
                        marker={"symbol": "x", "size": 11, "color": "crimson"}, hovertemplate="%{text}<extra></extra>")
    if anomaly is not None:
        fig.add_vrect(x0=anomaly.start - 0.5, x1=anomaly.start + anomaly.span - 0.5, fillcolor="orange", opacity=0.15,
                      line_width=0, annotation_text=f"injected {anomaly.kind}", annotation_position="top left")
    # The legend below the axis title (plotly's horizontal default sits on it), the band's annotation above.
    fig.update_layout(height=400, margin={"l": 10, "r": 10, "t": 30, "b": 80}, xaxis_title="reading",
                      yaxis_title=label, legend={"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0})
    return fig


def summary_words(s: dict) -> str:
    what = s["kind"]
    if not s["reached"]:
        return f"The stream has not reached the injected {what} (reading {s['start']}) yet."
    if s["detected"]:
        when = "at once" if s["delay"] == 0 else f"{s['delay']} reading(s) later"
        head = f"The board flagged the injected {what} {when} (a {s['by']} alarm)."
    else:
        head = f"The board did not flag the injected {what} within 10 readings of its start."
    why = ""
    if what == "dropped" and not s["detected"]:
        why = {"no pace": " Dropped readings cannot be flagged as fast as the board answers (no pause for its clock "
                          "to notice): pick a pace in readings a second.",
               "old board": " Dropped readings cannot be flagged on this board: its firmware cannot be told the "
                            "stream's pace (it answered W with FS ERR UNKNOWN), so its gap alarm waits for the "
                            "bundle's own limit. Flash a bundle exported now."}.get(s.get("gap"), "")
    return head + why + f" Alarms away from it (false alarms): {s['false']} in {s['clean_readings']} reading(s)."


@st.fragment(run_every=CFG["poll_s"])
@ui.guarded("Device step (live stream)")
def chart() -> None:
    live: LiveStream | None = st.session_state.get(KEY)
    if live is None:
        return
    column, target, label = st.session_state.get(f"{KEY}.shown", (0, 0, "reading"))
    info = live.board.ready_info
    got = live.snapshot()
    state = ("streaming" if live.running else "stopped" if live.stopped else "finished")
    gap = live.gap
    dropped = live.anomaly is not None and live.anomaly.kind == "dropped"
    gap_words = ("" if gap is None or (isinstance(gap, str) and not dropped) else "; dropped readings are not flagged as fast as the board answers" if gap == "no pace"
                 else "; this board cannot be told the pace (firmware from before W): dropped readings are not flagged"
                 if gap == "old board" else f"; the board's gap alarm after {gap.limit:,} ms without a reading")
    st.caption(f"{state}: {len(got)} of {len(live.readings)} reading(s) sent at {_pace_words(live.pace)}; "
               f"{sum(len(r.alerts) for r in got)} alarm(s) so far{gap_words}.")
    if live.error is not None:
        st.error(str(live.error))
    data = chart_series(got, column, target, info.targets if info else 1)
    st.plotly_chart(figure(data, label, live.anomaly), width="stretch", key=f"{KEY}.chart")
    if data["level"] is not None:
        st.caption(f"Shaded: the board's adaptive {data['level']}% band for each reading, as it printed it with the "
                   "forecast before; its alarm fires outside the bundle's margin times the alarm level's half-width, "
                   "never narrower than the exported one (so the alarm band can be wider than the shaded band).")
    s = live.summary(info.window if info else 1, info.horizon if info else 1)
    if s is not None:
        (st.success if s["detected"] else st.info if not s["reached"] or live.running else st.warning)(summary_words(s))
        ui.table([{"anomaly": s["kind"], "at reading": s["start"], "flagged": "yes" if s["detected"] else "no",
                   "readings later": s["delay"], "first alarm": s["by"], "false alarms": s["false"],
                   "all alarms": s["alerts"]}])
    rows = [{"reading": j, "alarm": a.words()} for j, a in data["alerts"][-50:]]
    if rows:
        ui.table(rows, key=f"{KEY}.alarms")
