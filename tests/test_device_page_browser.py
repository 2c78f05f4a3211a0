"""The Device step's choices around the browser link, under AppTest (what the component reported is set in
session state, as its value would be). The link itself is exercised in tests/test_browser_webserial.py."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.board import weblink

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "7_device.py")
BROWSER = "This computer's USB (in the browser)"


def _texts(at) -> str:
    parts = [e.value for e in at.markdown] + [e.value for e in at.caption] + [e.value for e in at.info]
    parts += [e.value for e in at.warning] + [e.value for e in at.error]
    return "\n".join(str(p) for p in parts)


def _page(caps: dict | None, monkeypatch, mounted: bool = True) -> AppTest:
    monkeypatch.setitem(weblink.RELAY, "mounted", mounted)
    at = AppTest.from_file(PAGE, default_timeout=30)
    if caps is not None:
        at.session_state["device.caps"] = caps
    return at.run()


def test_browser_usb_is_offered_when_the_browser_has_web_serial(monkeypatch):
    at = _page({"webSerial": True, "secure": True, "policy": True}, monkeypatch)
    assert not at.exception, at.exception
    assert BROWSER in at.radio(key="device.kind").options
    at.radio(key="device.kind").set_value(BROWSER).run()
    assert not at.exception, at.exception
    assert "Press **Connect board**" in _texts(at)
    assert not [b for b in at.button if b.key == "device.connect"], "the component has the Connect button"


def test_no_web_serial_gets_one_sentence(monkeypatch):
    at = _page({"webSerial": False, "secure": True, "policy": None}, monkeypatch)
    text = _texts(at)
    assert "cannot reach serial ports (Web Serial)" in text and "Chrome or Edge" in text
    assert BROWSER not in at.radio(key="device.kind").options


def test_insecure_page_says_what_to_do(monkeypatch):
    at = _page({"webSerial": False, "secure": False, "policy": None}, monkeypatch)
    text = _texts(at)
    assert "not a secure context" in text and "--https" in text
    assert BROWSER not in at.radio(key="device.kind").options


def test_without_the_relay_the_browser_usb_is_not_offered(monkeypatch):
    at = _page({"webSerial": True, "secure": True, "policy": True}, monkeypatch, mounted=False)
    assert BROWSER not in at.radio(key="device.kind").options
    assert "python -m studio" in _texts(at)


def test_permissions_policy_forbidding_serial_is_named(monkeypatch):
    at = _page({"webSerial": True, "secure": True, "policy": False}, monkeypatch)
    assert "permissions policy" in _texts(at)


def test_remote_browser_is_not_shown_the_studio_machines_ports(monkeypatch):

    monkeypatch.setattr("streamlit.runtime.context.ContextProxy.ip_address", property(lambda self: "192.0.2.50"))
    at = _page({"webSerial": True, "secure": True, "policy": True}, monkeypatch)
    assert not at.exception, at.exception
    options = at.radio(key="device.kind").options
    assert options[0] == BROWSER
    # Neither this machine's ports nor a typed port or URL (a bridge URL reached files and hosts, issue 35).
    assert "Serial port" not in options
    assert not [s for s in at.selectbox if s.key == "device.port_choice"], "no list of the studio machine's ports"
    assert not [t for t in at.text_input if t.key == "device.port_text"], "no field for a port or URL"
