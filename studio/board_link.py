"""The Device step's browser link component (studio/components/board_link): Web Serial in the participant's
browser, relayed to the studio over studio/board_relay.py's WebSocket.

Its value is an event dict, never data: ``{"webSerial", "secure", "policy", "origin", "event", "seq", ...}``
with ``event`` one of "probe" (first render: what this browser can do), "connected" (the port is open and
relayed under ``token``), "closed", "lost" / "error" / "relay-closed" (with ``error``: name, message, stage).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit.components.v1 as components

from core.board import weblink
from core.config import DEFAULTS
from core.board import XIAO_IDS

FOLDER = Path(__file__).resolve().parent / "components" / "board_link"
_component = components.declare_component("board_link", path=str(FOLDER))
# The chooser lists only these (the XIAO ESP32S3's USB ids, SPEC); the component can lift the filter.
FILTERS = [{"usbVendorId": vid, "usbProductId": pid} for vid, pid in XIAO_IDS]


def board_link(*, token: str, baud: int, active: bool, reopen: int, key: str = "device.link") -> dict[str, Any] | None:
    """Draw the link (a Connect button and a status line when ``active``, nothing otherwise) and return its
    latest event. Keep it at one place on the page with one key: the browser holds the port only while
    this component stays on the page."""
    value = _component(token=token, baud=int(baud), active=bool(active), reopen=int(reopen), filters=FILTERS,
                       max_line=int(DEFAULTS["device"]["max_line_bytes"]), relay_path=weblink.RELAY["path"],
                       key=key, default=None)
    return value if isinstance(value, dict) else None
