"""The firmware-bundle piece of the Export page: pick int8/float32, download the zip, preview the sketch.

The Export page calls `bundle_section(export_dir)` once the export exists; everything it shows
comes from `core.firmware`, so the page stays thin. The zip is rendered once per export and model
type (cached on the export's report stamp), so the download is one click and a rerun costs nothing.
"""
from __future__ import annotations

import re
from pathlib import Path

import streamlit as st

from core.config import BUNDLE_SECTION
from core.errors import StudioError
from core.export import bundle_choice, loses_to_best_baseline, loses_to_last_value
from core import deliver as delivery
from core.firmware import sketch_preview, stale_bundle
from studio import state
from studio.ui import show_error

_LANG = {".ino": "cpp", ".h": "cpp", ".cpp": "cpp"}


@st.cache_data(max_entries=32, show_spinner="Making the firmware bundle ...")
def _bundle(export_dir: str, dtype: str, stamp: int) -> tuple[str, dict[str, str]]:
    """The zip's path and the sketch preview; ``stamp`` (the report's mtime) makes a re-export render anew."""
    return str(delivery.bundle(export_dir, dtype)), sketch_preview(export_dir, dtype)


def download_name(bundle: str, dataset: str | None, export: str = "") -> str:
    """The bundle's file name for the browser: with the dataset's name and the export's time, so a second
    download (another dataset, a re-export) does not save as "... (1).zip"."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(dataset).stem).strip("_")[:40] if dataset else ""
    stamp = export.rsplit("-", 1)[-1] if re.fullmatch(r".*-\d{6}", export or "") else ""
    base = bundle.removesuffix(".zip")
    if stem:
        base = base.replace("forecast_studio_", f"forecast_studio_{stem}_", 1) if base.startswith("forecast_studio_") \
            else f"{stem}_{base}"
    if stamp:  # before the model type, so the name still ends in it (_int8.zip, _float32.zip)
        head, _, dtype = base.rpartition("_")
        base = f"{head}_{stamp}_{dtype}" if head else f"{stamp}_{base}"
    return f"{base}.zip"


def bundle_section(export_dir, key: str = "bundle") -> Path | None:
    """Render the bundle section; returns the zip's path once it is made."""
    st.subheader(BUNDLE_SECTION)
    st.caption("One zip with an Arduino sketch folder and a PlatformIO project: flash it, open the serial "
               "monitor at 115200, send T, and the board prints its forecasts for built-in test windows. "
               "No Edge Impulse account needed.")
    if export_dir is None:
        st.info("Export the run first; the bundle is made from the exported model.")
        return None
    export_dir = Path(export_dir)
    # Only the types this export holds (an export without int8 still makes a float32 bundle).
    dtypes = [d for d in ("int8", "float32") if (export_dir / f"model_{d}.tflite").is_file()] or ["int8", "float32"]
    try:
        recommended, reason, accuracy = bundle_choice(export_dir)
    except StudioError as err:
        show_error(err)
        return None
    # A new export starts from the model fit to ship; the person's own pick then sticks for this export.
    if st.session_state.get(f"{key}_dtype_for") != str(export_dir) and recommended in dtypes:
        st.session_state[f"{key}_dtype"] = recommended
        st.session_state[f"{key}_dtype_for"] = str(export_dir)
    dtype = st.radio("Model on the board", dtypes, horizontal=True, key=f"{key}_dtype", persist_state="session",
                     help="int8 is smaller and usually faster; float32 matches the host most closely.")
    st.caption(f"Recommended: **{recommended}** ({reason}).")
    loses = loses_to_best_baseline(accuracy, dtype)
    if loses:
        st.warning(f"This bundle's model forecasts worse than a naive baseline: {loses}. Retrain (another target "
                   "form on the Model step, more epochs) before relying on it.")
    if loses_to_last_value(accuracy, dtype):
        st.warning(f"The {dtype} model forecasts the test windows worse than repeating the last value.")
        if not st.checkbox(f"Ship the {dtype} model anyway", key=f"{key}_accept_{dtype}"):
            return None
    # The model file's stamp, not report.json's: recording the shipped type rewrites the report.
    model = export_dir / f"model_{dtype}.tflite"
    stale = stale_bundle(export_dir, dtype)  # an export from before the esp32 core 3.x sketch
    try:
        path, preview = _bundle(str(export_dir), dtype, model.stat().st_mtime_ns if model.exists() else 0)
        if not Path(path).is_file():  # removed since it was cached (a swept session folder): make it again
            path = str(delivery.bundle(export_dir, dtype))
        # The type shipped is the one report.json, the CLI and the Device step name from now on.
        delivery.record_bundle(export_dir, *delivery.chosen(recommended, reason, dtype, "on the Export page"))
    except StudioError as err:
        show_error(err)
        return None
    path = Path(path)
    if stale:
        st.info(stale)
    name = download_name(path.name, getattr(state.get("dataset"), "name", None), export_dir.name)
    st.download_button(f"Download {name} ({path.stat().st_size / 1024:,.1f} KB)", data=path.read_bytes(),
                       file_name=name, mime="application/zip", key=f"{key}_download", type="primary")
    with st.expander("Sketch preview"):
        for name, text in preview.items():
            st.markdown(f"**{name}**")
            st.code(text, language=_LANG.get(Path(name).suffix, "text"))
    return path
