"""Defaults and help texts in one place (the streamlit_prophet habit), read by pages and the CLI.

Each stage adds its own section; keep literals out of pages.
"""
from __future__ import annotations

import os

# Upload limit in MB; Streamlit's own server.maxUploadSize is set from the same number.
MAX_UPLOAD_MB = int(os.environ.get("FS_MAX_UPLOAD_MB", "200"))

DEFAULTS: dict[str, dict] = {
    "data": {},
    "features": {},
    "model": {},
    "train": {},
    "export": {},
    "device": {"baud": 115200},
}

HELP: dict[str, str] = {}
