"""The firmware-bundle piece of the Export page: pick int8/float32, download the zip, preview the sketch.

The Export page calls `bundle_section(export_dir)` once the export exists; everything it shows
comes from `core.firmware`, so the page stays thin.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.errors import StudioError
from core.firmware import render_bundle, sketch_preview
from studio.ui import show_error

_LANG = {".ino": "cpp", ".h": "cpp", ".cpp": "cpp"}


def bundle_section(export_dir, key: str = "bundle") -> Path | None:
    """Render the bundle section; returns the zip's path once it is made."""
    st.subheader("Firmware bundle for the XIAO ESP32S3")
    st.caption("One zip with an Arduino sketch folder and a PlatformIO project: flash it, open the serial "
               "monitor at 115200, send T, and the board prints its forecasts for built-in test windows. "
               "No Edge Impulse account needed.")
    if export_dir is None:
        st.info("Export the run first; the bundle is made from the exported model.")
        return None
    # Only the types this export holds (an export without int8 still makes a float32 bundle).
    dtypes = [d for d in ("int8", "float32") if (Path(export_dir) / f"model_{d}.tflite").is_file()] or ["int8", "float32"]
    dtype = st.radio("Model on the board", dtypes, horizontal=True, key=f"{key}_dtype",
                     help="int8 is smaller and usually faster; float32 matches the host most closely.")
    try:
        path = render_bundle(export_dir, dtype)
        preview = sketch_preview(export_dir, dtype)
    except StudioError as err:
        show_error(err)
        return None
    st.download_button(f"Download {path.name}", data=path.read_bytes(), file_name=path.name,
                       mime="application/zip", key=f"{key}_download", type="primary")
    with st.expander("Sketch preview"):
        for name, text in preview.items():
            st.markdown(f"**{name}**")
            st.code(text, language=_LANG.get(Path(name).suffix, "text"))
    return path
