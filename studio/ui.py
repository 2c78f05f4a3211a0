"""UI pieces shared by the pages: error display and the sidebar summary."""
from __future__ import annotations

import streamlit as st

from core.errors import StudioError
from studio import state


def show_error(err: Exception) -> None:
    """A user-facing message, never a traceback."""
    if isinstance(err, StudioError):
        st.error(str(err))
    else:
        st.error(f"Something went wrong: {type(err).__name__}: {err}. Check your choices on this page and try again.")


def sidebar_summary(where=None) -> None:
    """What has been chosen so far, step by step, in ``where`` (the sidebar by default)."""
    ds = state.get("dataset")
    with where if where is not None else st.sidebar:
        st.markdown("### Your project")
        if ds is None:
            st.caption("No dataset yet: start at **Data**.")
            return
        st.markdown(f"**Dataset:** {ds.name}  \n**Rows:** {len(ds.frame):,}  \n**Frequency:** {ds.freq or 'irregular / steps'}")
        spec = state.get("window_spec")
        if spec is not None:
            st.markdown(f"**Targets:** {', '.join(spec.targets)}  \n**Window → horizon:** {spec.window} → {spec.horizon}")
        ms = state.get("model_spec")
        if ms is not None:
            st.markdown(f"**Model:** {ms.kind.upper()} {ms.units} × {ms.layers} ({ms.backend})")
        run = state.get("run")
        if run is not None:
            st.markdown("**Trained:** yes")
        if state.get("export_dir") is not None:
            st.markdown("**Exported:** yes")
