"""Forecast Studio's shell: the Streamlit app, its session state, shared UI pieces and the CLI."""
