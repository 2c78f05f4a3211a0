"""Export step: TFLite float32/int8 checked on the TFLM runtime, the device budget, downloads, Edge Impulse."""
from __future__ import annotations

import os
import time
from pathlib import Path

import streamlit as st

from core.edge_impulse import client as edgeimpulse, sketch as ei_sketch
from core.config import DEFAULTS, HELP
from core.errors import StudioError
from core import deliver as delivery
from core.deliver import deliver
from core.export import BASELINE_NAMES, FORECASTER_LABELS, ExportReport, arena_words, load_report
from core.steploop import FORMS, form_rows
from studio import state, ui
from studio.bundle_ui import bundle_section



def _kb(n: int | None) -> str:
    return "—" if n is None else f"{n / 1024:,.1f} KB"


def _report(export_dir: Path) -> ExportReport | None:
    try:
        return load_report(export_dir)
    except StudioError as e:
        ui.show_error(e)
        return None


def export_section(run) -> None:
    int8 = st.checkbox("Also make an int8 model", value=bool(DEFAULTS["export"]["int8"]),
                       key="export.int8", persist_state="session",
                       help=HELP["export.int8"])
    form = st.selectbox("Form on the board", FORMS, index=FORMS.index(DEFAULTS["export"]["form"]), key="export.form",
                        persist_state="session", help=HELP["export.form"])
    if st.button("Export and check on TFLM", type="primary", key="export.go", help=HELP["export.run"]):
        out = state.workdir() / "exports" / f"{Path(run.run_dir).name}-{time.strftime('%H%M%S')}"
        bar = st.progress(0.0, text="Starting")
        try:
            # The bundle is made when the person picks its model below (studio/bundle_ui.py), so none here.
            deliver(run, out, int8=int8, bundle_as=None, form=form,
                    progress=lambda f, m: bar.progress(min(max(f, 0.0), 1.0), text=m))
        except StudioError as e:
            bar.empty()
            ui.show_error(e)
            return
        state.invalidate("export")
        state.put("export_dir", out)
        bar.empty()


def report_section(report: ExportReport) -> None:
    st.subheader("Checked on the board's runtime")
    st.caption(f"{report.windows_checked:,} test windows run on {report.verified_on} and compared with the studio's "
               f"own forecasts. {HELP['export.error']}")
    rows = []
    for name, e in report.dtypes.items():
        rows.append({"model": name, "file": _kb(e["bytes"]), "arena": _kb(e.get("arena_bytes")),
                     "max error": e.get("max_abs_err"), "mean error": e.get("mean_abs_err"),
                     "ops": ", ".join(e["ops"])})
    ui.table(rows, width="stretch")
    # The same sentence the bundle's README and the Device step say about the arena the bundle declares.
    arena = next((e for e in report.dtypes.values() if e.get("arena_bytes")), None)
    if arena:
        st.caption(f"{HELP['export.arena']} Arena: {arena_words(arena)}")
    accuracy_section(report)
    for w in report.warnings:
        st.warning(w)

    st.subheader("On the XIAO ESP32S3")
    per = report.budget.get("per_dtype") or {}
    rows = []
    for name, b in per.items():
        rows.append({"model": name, "flash": f"{_kb(b['model_bytes'])} of {_kb(b['flash_available_bytes'])}",
                     "RAM (arena)": f"{_kb(b['arena_bytes'])} in {b['arena_in']}",
                     "latency (estimate)": f"~{b['latency_ms']:,.0f} ms", "fits": "yes" if b.get("fits") else "no"})
    if rows:
        ui.table(rows, width="stretch")
        basis = next(iter(per.values())).get("basis", "")
        st.caption(f"Estimates, not measurements. {HELP['export.latency']} {basis}")
        for name, b in per.items():
            for tip in b.get("advice") or []:
                st.info(f"{name}: {tip}")
    if report.form:
        st.markdown(f"**Form: {report.form}.** {report.form_reason}.")
        rows = form_rows(report.forms)
        if rows:
            ui.table(rows, width="stretch")
            st.caption((report.forms.get("compare") or {}).get("basis", ""))


def accuracy_section(report: ExportReport) -> None:
    """The exported models scored against the actual values, beside the host model and the baselines."""
    st.subheader("Forecasts against the actual values")
    acc = report.accuracy or {}
    f = acc.get("forecasters") or {}
    if not f:
        st.info("This export was made before exported models were scored against the actual values. "
                "Export again to see how the board's models forecast the test windows.")
        return
    key = acc.get("compared_by", "mae")
    rows = []
    for name in ("host", "float32", "int8") + BASELINE_NAMES:
        if name in f:
            e = f[name]
            rows.append({"forecaster": FORECASTER_LABELS.get(name, name), f"test {key.upper()}": e.get(key),
                         "vs best baseline": None if e.get("margin_pct") is None else f"{e['margin_pct']:+.1f}%",
                         "note": "same value for every window" if e.get("constant") else ""})
    ui.table(rows, width="stretch")  # a forecaster not scored reads "—", never "None"
    n, total = acc.get("windows", 0), acc.get("windows_total", 0)
    st.caption(f"{n:,} test windows ({acc.get('source', '')}{f', of {total:,}' if total and total != n else ''}), "
               f"each model file run on {report.verified_on}, in {', '.join(report.targets)}'s units.")
    if report.quantisation.get("summary"):
        st.caption(f"int8: {report.quantisation['summary']}.")


def downloads_section(report: ExportReport) -> None:
    st.subheader("Downloads")
    cols = st.columns(len(report.dtypes) + 1)
    for col, (name, e) in zip(cols, report.dtypes.items()):
        path = report.path(name)
        col.download_button(f"{e['path']} ({_kb(e['bytes'])})", data=path.read_bytes(), file_name=e["path"],
                            mime="application/octet-stream", key=f"export.dl.{name}")
    report_path = Path(report.out_dir) / "report.json"
    cols[-1].download_button("report.json", data=report_path.read_bytes(), file_name="report.json",
                             mime="application/json", key="export.dl.report")


def edge_impulse_section(run, report: ExportReport) -> None:
    st.subheader("Edge Impulse")
    spec = run.model_spec
    try:
        edgeimpulse.check_single_output(spec, run.scaler)
    except StudioError as e:
        st.info(str(e))
        return
    # The key lives in this widget only (this browser session's memory): never in studio state, files or bundles.
    key = st.text_input("API key", value=os.environ.get("EI_API_KEY", ""), type="password", key="export.ei_key",
                        help=HELP["export.ei_key"])
    int8 = "int8" in report.dtypes
    c1, c2 = st.columns(2)
    deploy = c1.button("Deploy as Arduino library" + (" (int8)" if int8 else ""), key="export.ei_deploy",
                       help=HELP["export.ei_deploy"], disabled=not key)
    profile = c2.button("Profile on an ESP32", key="export.ei_profile", help=HELP["export.ei_profile"], disabled=not key)
    if deploy:
        with st.status("Deploying to Edge Impulse", expanded=True) as status:
            try:
                # The library plus a static-buffer sketch holding real test windows, in one download.
                delivery.edge_impulse(run, report.out_dir, key, int8, say=st.write)
                status.update(label="Arduino library and sketch ready", state="complete")
            except StudioError as e:
                status.update(label="Deploy failed", state="error")
                ui.show_error(e)
    if profile:
        with st.spinner("Asking Edge Impulse for its estimate"):
            try:
                st.session_state["export.ei_profile_result"] = edgeimpulse.profile(run, api_key=key)
            except StudioError as e:
                ui.show_error(e)
    package = ei_sketch.package_path(report.out_dir)
    if package is not None:
        st.download_button(f"Library + static-buffer sketch ({_kb(package.stat().st_size)})", data=package.read_bytes(),
                           file_name=package.name, mime="application/zip", key="export.dl.ei_package", type="primary")
        st.caption(f"Unzip it; in the Arduino IDE add the inner library zip (Sketch > Include Library > Add .ZIP Library), "
                   f"open {ei_sketch.SKETCH}/{ei_sketch.SKETCH}.ino, pick board XIAO_ESP32S3, upload, and open the serial "
                   f"monitor at 115200. It prints the scaled value for each built-in test window next to the studio's "
                   f"forecast; the Device step converts it back to {', '.join(report.targets)} and compares. "
                   f"The README inside has the details.")
    lib = Path(report.out_dir) / edgeimpulse.LIBRARY_ZIP
    if lib.exists():
        st.download_button(f"Edge Impulse Arduino library ({_kb(lib.stat().st_size)})", data=lib.read_bytes(),
                           file_name=lib.name, mime="application/zip", key="export.dl.ei")
    result = st.session_state.get("export.ei_profile_result")
    if result:
        per = report.budget.get("per_dtype") or {}
        rows = []
        for name in ("float32", "int8"):
            theirs = result.get(name)
            ours = per.get(name)
            if theirs or ours:
                rows.append({"model": name,
                             "Edge Impulse RAM": _kb(theirs and theirs.get("ram")),
                             "Edge Impulse flash": _kb(theirs and theirs.get("rom")),
                             "Edge Impulse latency": f"{theirs['latency_ms']} ms" if theirs and theirs.get("latency_ms") else "—",
                             "studio estimate": f"~{ours['latency_ms']:,.0f} ms" if ours else "—"})
        st.caption(f"Edge Impulse's profile for {result['device']} beside the studio's own estimate.")
        ui.table(rows, width="stretch")


st.title("Export")
st.caption("Turn the trained model into files the board runs, and prove they compute what the studio computed.")

run = state.get("run")
if run is None:
    st.info("Train a model on the **Train** step first; its run is what gets exported.")
    ui.link_to("train")
    st.stop()

st.markdown(f"**{run.model_spec.label}** · window {run.model_spec.window} × {run.model_spec.n_inputs} → "
            f"{run.model_spec.horizon} step(s) of {', '.join(run.window_spec.targets)}")
export_section(run)

export_dir = state.get("export_dir")
if export_dir is not None and Path(export_dir).exists():
    rep = _report(Path(export_dir))
    if rep is not None:
        report_section(rep)
        downloads_section(rep)
        bundle_section(export_dir, key="export.bundle")
        edge_impulse_section(run, rep)
