"""Data step: a CSV (uploaded, or a bundled sample) in, a clean regular series out, with a report of
everything detected and done, a per-column summary and a downsampled chart."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core import data as D
from core.config import DEFAULTS, HELP, MAX_UPLOAD_MB
from core.dataset import ROW_INDEX, describe_span
from core.frequency import describe_freq
from core.errors import StudioError
from studio import charts, state, ui

CFG = DEFAULTS["data"]
K = "data."  # prefix of this page's widget keys
DETECT = "Detect"
DELIMITER_NAMES = {",": "comma (,)", ";": "semicolon (;)", "\t": "tab", "|": "pipe (|)"}
ss = st.session_state


@st.cache_data(max_entries=8, show_spinner="Reading the CSV ...")
def _load(key: str, _source: bytes | str, name: str, csv: dict, clean: dict) -> D.Dataset:
    """Parsed and cleaned once per (content, options); ``key`` is the content hash, so reruns never re-read.
    An upload's key carries its `content_digest`, which the load then need not compute again."""
    digest = key.removeprefix("upload:") if key.startswith("upload:") else None
    return D.load_dataset(_source, name=name, csv=D.CsvOptions(**csv), clean=D.CleanOptions(**clean), digest=digest)


def _sample_key(path) -> str:
    stat = path.stat()
    return f"sample:{path}:{stat.st_mtime_ns}:{stat.st_size}"


def _upload_key(upload) -> str:
    """Content hash of an upload, computed once per uploaded file rather than on every rerun."""
    cached = ss.get(K + "upload_hash")
    if cached and cached[0] == upload.file_id:
        return cached[1]
    digest = "upload:" + D.content_digest(upload.getbuffer())
    ss[K + "upload_hash"] = (upload.file_id, digest)
    return digest


def _reset_format() -> None:
    for name in ("delimiter", "decimal", "encoding", "header", "time_col", "dayfirst", "time_format", "thousands",
                 "skip_rows", "time_cols"):
        ss.pop(K + name, None)


def _choice(label: str, options: list, key: str, help_key: str, fmt=str):
    return st.selectbox(label, options, key=key, help=HELP.get(help_key), format_func=fmt, persist_state="session")


st.title("Data")
st.caption("Upload a CSV of time-stamped readings, or start from a bundled sample. The format is detected; "
           "every guess can be changed below.")

# ---------------------------------------------------------------- source
left, right = st.columns([1, 2])
with left:
    source_kind = st.radio("Source", ["Sample", "Upload"], key=K + "source", persist_state="session", horizontal=True,
                           help=HELP.get("data.source"))
source, source_key, name = None, None, None
with right:
    if source_kind == "Sample":
        sample = st.selectbox("Bundled sample", list(D.SAMPLES), key=K + "sample", persist_state="session",
                              index=list(D.SAMPLES).index(CFG.get("sample", "weather")), help=HELP.get("data.sample"))
        path = D.SAMPLES[sample]
        source, source_key, name = str(path), _sample_key(path), path.name
    else:
        upload = st.file_uploader(f"CSV file (up to {MAX_UPLOAD_MB} MB)", key=K + "upload",
                                  max_upload_size=MAX_UPLOAD_MB, help=HELP.get("data.source"))
        if upload is not None:
            try:
                D.check_upload_size(upload.size)
                source, source_key, name = upload.getvalue(), _upload_key(upload), upload.name
            except StudioError as err:
                ui.show_error(err)

current = state.get("dataset")
if source is None:
    if current is None:
        st.info("Choose a CSV file to upload, or switch to a bundled sample.")
        st.stop()
    st.caption(f"No file uploaded yet: still using **{current.name}**.")
elif ss.get(K + "source_key") != source_key:
    _reset_format()  # format overrides belong to one file
    ss[K + "source_key"] = source_key

# ---------------------------------------------------------------- options
known = ss.get(K + "columns", {}).get(source_key, [])
with st.expander("Format: change what was detected", expanded=False):
    c1, c2, c3 = st.columns(3)
    with c1:
        delimiter = _choice("Delimiter", [DETECT, *D.DELIMITERS], K + "delimiter", "data.delimiter",
                            lambda v: D.DELIMITERS.get(v, v))
        encoding = _choice("Encoding", [DETECT, *D.ENCODINGS], K + "encoding", "data.encoding")
    with c2:
        decimal = _choice("Decimal mark", [DETECT, ".", ","], K + "decimal", "data.decimal")
        header = _choice("Header row", [DETECT, "Yes", "No"], K + "header", "data.header")
    with c3:
        time_col = _choice("Time column", [DETECT, ROW_INDEX, *known], K + "time_col", "data.time_col")
        dayfirst = _choice("Dates", [DETECT, "Day first (31/12)", "Month first (12/31)"], K + "dayfirst",
                           "data.dayfirst")
    c1, c2, c3 = st.columns(3)
    with c1:
        thousands = _choice("Thousands separator", [DETECT, *D.THOUSANDS], K + "thousands", "data.thousands",
                            lambda v: D.THOUSANDS.get(v, v))
    with c2:
        skip_rows = _choice("Lines above the header", [DETECT, *range(0, 31)], K + "skip_rows", "data.skip_rows")
    with c3:
        time_cols = st.multiselect("Time columns to combine", known, key=K + "time_cols", persist_state="session",
                                   placeholder="detect (e.g. Year + Quarter)", help=HELP.get("data.time_cols"))
    time_format = st.text_input("Time format", key=K + "time_format", persist_state="session", placeholder="detect",
                                help=HELP.get("data.time_format")).strip()

with st.expander("Cleaning: duplicates, resampling, missing values", expanded=False):
    c1, c2, c3, c4 = st.columns(4)
    with c1:
        duplicates = st.radio("Repeated timestamps", list(D.DUPLICATES), key=K + "duplicates", persist_state="session",
                              index=list(D.DUPLICATES).index(CFG["duplicates"]), help=HELP.get("data.duplicates"),
                              format_func={"first": "Keep the first", "mean": "Average them"}.get)
    with c2:
        resample = st.selectbox("Resample to", CFG["resample_choices"], key=K + "resample", persist_state="session",
                                format_func=lambda v: "Keep the file's step" if v is None else describe_freq(v),
                                help=HELP.get("data.resample"))
    with c3:
        resample_how = st.selectbox("Combine rows by", list(D.RESAMPLE_HOW),
                                    key=K + "resample_how", persist_state="session",
                                    index=list(D.RESAMPLE_HOW).index(CFG["resample_how"]),
                                    help=HELP.get("data.resample_how"), disabled=resample is None)
    with c4:
        fill = st.radio("Missing values", list(D.FILL_METHODS), key=K + "fill", persist_state="session",
                        index=list(D.FILL_METHODS).index(CFG["fill"]), help=HELP.get("data.fill"),
                        format_func={"interpolate": "Interpolate in time", "ffill": "Forward-fill",
                                     "none": "Leave them (blocks later steps)"}.get)

# ---------------------------------------------------------------- load
ds = current
if source is not None:
    csv_opts = {
        "delimiter": None if delimiter == DETECT else delimiter,
        "decimal": None if decimal == DETECT else decimal,
        "encoding": None if encoding == DETECT else encoding,
        "header": None if header == DETECT else header == "Yes",
        "time_col": None if time_col == DETECT else time_col,
        "dayfirst": None if dayfirst == DETECT else dayfirst.startswith("Day"),
        "time_format": time_format or None,
        "thousands": None if thousands == DETECT else thousands,
        "skip_rows": None if skip_rows == DETECT else int(skip_rows),
        "time_cols": tuple(time_cols) if len(time_cols) >= 2 else None,
    }
    clean_opts = {"duplicates": duplicates, "resample": resample, "resample_how": resample_how, "fill": fill}
    try:
        ds = _load(source_key, source, name, csv_opts, clean_opts)
    except StudioError as err:
        ui.show_error(err)
        if current is not None:
            st.caption(f"The studio is still using **{current.name}**.")
        st.stop()
    except Exception as err:  # a reader bug must not put a traceback on screen
        ui.show_error(err)
        st.stop()
    names = [c["name"] for c in ds.report["columns"]]
    learned = names != known
    ss.setdefault(K + "columns", {})[source_key] = names
    if current is None or current.fingerprint != ds.fingerprint:
        state.put("dataset", ds)
        state.invalidate("data")
        st.rerun()  # so the sidebar, drawn before this page, shows the new dataset
    if learned:
        st.rerun()  # the "Time column" choice, drawn above, can now list this file's columns (load is cached)

# ---------------------------------------------------------------- report
r = ds.report
frame = ds.frame
m1, m2, m3, m4 = st.columns([2, 2, 3, 3])  # the words (frequency, span) get the room
m1.metric("Rows", f"{len(frame):,}")
m2.metric("Numeric columns", len(ds.numeric_columns))
# The frequency's word as the value and its detail in the label: "monthly (month start)" and "every 5 minutes"
# were cut to "monthly (mo..." in a quarter of the page.
freq_word, _, freq_detail = (describe_freq(ds.freq) if ds.freq else ("steps" if not ds.has_time else "irregular")).partition(" (")
m3.metric(f"Frequency · {freq_detail.rstrip(')')}" if freq_detail else "Frequency", freq_word,
          help=f"pandas alias {ds.freq}" if ds.freq else None)
if ds.has_time:
    # Through Python's datetime: 1700-2008 does not fit a pandas Timedelta.
    m4.metric("Span", describe_span(frame.index[0], frame.index[-1]) if len(frame) > 1 else "one row")
else:
    m4.metric("Time", ROW_INDEX)

delim = DELIMITER_NAMES.get(r["delimiter"], repr(r["delimiter"]))
time_desc = (f"time column **{r['time_column']}** ({r['time_format']}"
             f"{', day-first' if r.get('dayfirst') else ''}{', converted to UTC' if r.get('timezone') else ''})"
             if ds.has_time else f"no time column: **{ROW_INDEX}** is the time step")
grouping = f", thousands separator {D.THOUSANDS[r['thousands']].split(' (')[0]}" if r.get("thousands") else ""
st.caption(f"**{ds.name}**: {r['encoding']}, delimiter {delim}, decimal mark '{r['decimal']}'{grouping}, "
           f"{'a header row' if r['header'] else 'no header row'}, {time_desc}; {r['rows_read']:,} rows read.")

if ds.calendar:
    st.info(f"**Observed on {ds.calendar['describe']} only.** The series keeps its observed steps: nights, weekends "
            "and holidays are not gaps to fill. Windows run over observed steps, and calendar features (hour of day, "
            "day of week) describe them.")
for msg in r["blocking"]:
    st.error(msg)
for msg in r["problems"]:
    st.warning(msg)
if r["notes"]:
    st.info("**What was done**\n\n" + "\n".join(f"- {n}" for n in r["notes"]))

st.subheader("Columns")
table = pd.DataFrame([{
    "column": c["name"], "type": c.get("type", ""),
    "used": "yes" if c.get("used") else "no",
    "missing %": c.get("missing_pct"), "min": c.get("min"), "mean": c.get("mean"), "max": c.get("max"),
    "note": ds.excluded.get(c["name"], "the time axis" if c.get("type") == "time" else ""),
} for c in r["columns"]])
table["type"] = table["type"].fillna("")
ui.table(table, width="stretch")  # a figure that does not apply reads "—", never "None"
if ds.excluded:
    st.caption("Excluded from the later steps: " + "; ".join(f"**{k}**: {v}" for k, v in ds.excluded.items()))

st.subheader("Chart")
columns = ds.numeric_columns
default = columns[: int(CFG.get("chart_columns", 3))]
# Keyed by the dataset: a widget's identity is its key, so one key kept the previous file's columns in the
# browser after a new upload (the frontend sent them back) however the session state was reset.
chart_key = f"{K}chart_cols.{ds.fingerprint[:16]}"
if chart_key in ss and not set(ss[chart_key]) <= set(columns):
    del ss[chart_key]
chosen = st.multiselect("Columns to draw", columns, default=default, key=chart_key, persist_state="session",
                        help=HELP.get("data.columns"))
separate = st.toggle("One panel per column", key=K + "separate", persist_state="session", help=HELP.get("data.separate"),
                     value=len(chosen) > 1)
if chosen:
    st.plotly_chart(charts.line_chart(frame, chosen, separate=separate), width="stretch", key=K + "chart")
else:
    st.caption("Pick at least one column to draw.")
