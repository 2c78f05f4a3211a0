"""A board plugged into the participant's own computer, held by their browser (Web Serial), as a serial port.

The browser opens the port (``navigator.serial``) in the Device step's component and relays the raw bytes
over a WebSocket to the studio server (``studio/board_relay.py``), which feeds them into a ``Link``
registered here under a random token. ``open_link("browser://<token>")`` hands ``core.board.Board`` an
object with the few pyserial methods it uses (``in_waiting``, ``read``, ``write``, ``flush``, ``close``),
so the protocol, reference and comparison code drive a browser-held port exactly as a pyserial one:
same framing, same wrong-baud detection, same deadlines.

Why a WebSocket and not the component's value: a Streamlit component can hand Python a value only by
triggering a rerun of the page, the latest value replaces the previous one (lines would be lost between
reruns) and Python can reach the browser only through the next rerun's arguments. A board command waits
on a thread with a deadline; that needs a stream, which a WebSocket on the studio's own origin (same host,
port and certificate as the page) gives both ways without another port to open.

No Streamlit or web-server import here: the route calls ``Link.attach/feed/control/detach``.
"""
from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

import serial

from core.config import DEFAULTS
from core.errors import StudioError

SCHEME = "browser://"
# What the Device step calls this kind of port in messages ("The board on ... disconnected").
LABEL = "this computer's USB (browser)"
CFG = DEFAULTS["device"]

# Registered links, oldest first; a session mints one per connection attempt. Bounded, so a page
# rerun in a loop (or an abandoned tab) cannot grow it without end.
_MAX_LINKS = 512
_links: "OrderedDict[str, Link]" = OrderedDict()
_lock = threading.Lock()
# Set by the studio's server launcher when the relay route is mounted; AppTest and a plain
# `streamlit run studio/app.py` have no route, so the Device step does not offer the browser's USB there.
RELAY = {"mounted": False, "path": "/api/board-link"}


@dataclass(frozen=True)
class BrowserPort:
    """What the browser says about the port it opened (``SerialPort.getInfo()``) and at which baud."""
    vid: int | None = None
    pid: int | None = None
    baud: int | None = None

    def describe(self) -> str:
        from core.board import XIAO_IDS

        if self.vid is None or self.pid is None:
            return "a serial port on this computer (no USB ids: a built-in or Bluetooth port)"
        ids = f"{self.vid:04X}:{self.pid:04X}"
        name = XIAO_IDS.get((self.vid, self.pid))
        return f"Seeed XIAO ESP32S3 ({ids}, {name})" if name else f"a USB serial device {ids} (not a XIAO ESP32S3's ids)"


class Link:
    """One browser-held port as a byte stream: the route feeds what the browser read, Board reads it.

    Writes go out through ``send`` (set by the route on attach); the browser acknowledges each write once
    the port took it, which is what ``flush`` waits for, so a board that stops reading makes a write time
    out as it would on a real port instead of piling up in memory.
    """

    def __init__(self, token: str) -> None:
        self.token = token
        self.port: BrowserPort | None = None
        self._cond = threading.Condition()
        self._rx = bytearray()
        self._send: Callable[[bytes | dict], None] | None = None
        self._attached = False
        self._error: str | None = None
        self._closed = False
        self._opened = False            # a Board holds it (a second open is refused)
        self._written = 0
        self._acked = 0
        self.dropped = 0                # bytes dropped because the reader fell this far behind
        self.created = time.monotonic()

    # -- the route's side ------------------------------------------------------------------------------
    def attach(self, send: Callable[[bytes | dict], None]) -> bool:
        """A browser connected for this token; False when another one already holds it (a second tab)."""
        with self._cond:
            if self._attached or self._closed:
                return False
            self._attached = True
            self._send = send
            self._cond.notify_all()
            return True

    def hello(self, vid: int | None, pid: int | None, baud: int | None) -> None:
        with self._cond:
            self.port = BrowserPort(vid, pid, baud)
            self._cond.notify_all()

    def feed(self, data: bytes) -> None:
        with self._cond:
            if self._closed:
                return
            self._rx += data
            cap = CFG.get("browser_rx_cap_bytes", 4 * 1024 * 1024)
            if len(self._rx) > cap:
                over = len(self._rx) - cap
                del self._rx[:over]
                self.dropped += over
            self._cond.notify_all()

    def acked(self, n: int) -> None:
        with self._cond:
            self._acked = max(self._acked, min(int(n), self._written))
            self._cond.notify_all()

    def lost(self, reason: str) -> None:
        """The browser let go of the port (unplugged, tab closed, page left): every wait ends now."""
        with self._cond:
            if self._error is None and not self._closed:
                self._error = reason
            self._send = None
            self._cond.notify_all()

    # -- pyserial's side (what core.board.Board calls) -------------------------------------------------------
    @property
    def in_waiting(self) -> int:
        with self._cond:
            self._raise_if_gone()
            return len(self._rx)

    def read(self, size: int = 1) -> bytes:
        """Up to ``size`` bytes, waiting at most the poll interval, as pyserial does with ``timeout`` set."""
        deadline = time.monotonic() + CFG["read_poll_s"]
        with self._cond:
            while not self._rx:
                self._raise_if_gone()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return b""
                self._cond.wait(remaining)
            out = bytes(self._rx[:size])
            del self._rx[:size]
            return out

    def write(self, data: bytes) -> int:
        with self._cond:
            self._raise_if_gone()
            send = self._send
            if send is None:
                raise serial.SerialException("the browser has not connected the port yet")
            self._written += len(data)
        send(bytes(data))
        return len(data)

    def flush(self) -> None:
        deadline = time.monotonic() + CFG["write_timeout_s"]
        with self._cond:
            while self._acked < self._written:
                self._raise_if_gone()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise serial.SerialTimeoutException("the browser did not confirm the write")
                self._cond.wait(remaining)

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            send, self._send = self._send, None
            self._cond.notify_all()
        if send is not None:
            try:
                send({"type": "close"})  # the browser closes the port and says so on the page
            except Exception:  # the socket may already be gone; the port is released with it
                pass
        discard(self.token)

    def _raise_if_gone(self) -> None:
        if self._closed:
            raise serial.SerialException("the connection is closed")
        if self._error is not None:
            raise serial.SerialException(self._error)

    # -- state ---------------------------------------------------------------------------------------------
    @property
    def attached(self) -> bool:
        return self._attached and self._error is None and not self._closed

    def wait_attached(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not (self._attached and self.port is not None):
                if self._error is not None or self._closed:
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True


# --- the registry -------------------------------------------------------------------------------------------

def register() -> str:
    """A new link under a fresh unguessable token (the token is what lets a browser attach to it)."""
    token = secrets.token_urlsafe(18)
    with _lock:
        while len(_links) >= _MAX_LINKS:
            # Drop the oldest link nobody holds; if every one is held, the oldest of all.
            victim = next((t for t, l in _links.items() if not l._opened), next(iter(_links)))
            old = _links.pop(victim)
            old.lost("the studio has too many browser links open; this one was the oldest")
        _links[token] = Link(token)
    return token


def get(token: str | None) -> Link | None:
    if not token:
        return None
    with _lock:
        return _links.get(token)


def discard(token: str | None) -> None:
    with _lock:
        link = _links.pop(token, None) if token else None
    if link is not None:
        link.lost("the studio let go of this browser link")


def url(token: str) -> str:
    return SCHEME + token


def open_link(port: str, baud: int, timeout: float | None = None) -> Link:
    """The Link behind ``browser://<token>``, once the browser has connected it; a StudioError otherwise."""
    token = port[len(SCHEME):] if port.startswith(SCHEME) else port
    link = get(token)
    if link is None:
        raise StudioError("There is no board connection from this browser under that name (it was closed, "
                          "or the studio restarted).", "Press **Connect board** on the Device step again.")
    timeout = CFG.get("browser_attach_s", 5.0) if timeout is None else timeout
    if not link.wait_attached(timeout):
        if link._error:
            raise StudioError(f"The browser's connection to the board ended before it was used ({link._error}).",
                              "Press **Connect board** again.")
        raise StudioError(f"The browser did not connect the port to the studio within {timeout:g} s.",
                          "Reload the page and press **Connect board** again; if it persists, check that nothing "
                          "between this computer and the studio (a proxy) blocks WebSockets.")
    with link._cond:
        if link._opened:
            raise StudioError("This browser connection is already in use by another board connection.",
                              "Disconnect first, then connect again.")
        link._opened = True
    if link.port and link.port.baud and int(link.port.baud) != int(baud):
        # The page passed the same baud to the browser; a difference means a stale tab.
        link.close()
        raise StudioError(f"The browser opened the port at {link.port.baud} baud, not {baud}.",
                          "Press **Connect board** again.")
    return link


# --- what the browser reported, as messages -------------------------------------------------------------

def browser_error(name: str | None, message: str | None, stage: str = "open") -> StudioError:
    """A DOMException from Web Serial (``name``, ``message``) as a problem and a fix.

    ``stage`` is where it happened: "request" (the port chooser), "open", "read" or "write".
    """
    name = (name or "Error").strip()
    detail = f" (the browser said: {name}: {message})" if message else f" (the browser said: {name})"
    if stage == "request" and name == "NotFoundError":
        return StudioError("No board was picked: the browser's port chooser was closed without a choice.",
                           "Press **Connect board** and pick the XIAO ESP32S3. If it is not listed, plug it in with a "
                           "data USB cable (not a charge-only one), or tick **List every serial port**.")
    if name == "SecurityError" or name == "NotAllowedError":
        return StudioError("The browser refused this page access to serial ports" + detail + ".",
                           "Allow serial ports for this site (click the icon left of the address → Site settings → "
                           "Serial ports → Ask / Allow), open the studio over HTTPS or on localhost, and press "
                           "**Connect board** again. Company-managed browsers can block serial ports by policy.")
    if stage == "open" and name == "InvalidStateError":
        return StudioError("That port is already open in this page" + detail + ".",
                           "Use **Disconnect** first, or reload the page, then connect again.")
    if stage == "open" and name == "NetworkError":
        return StudioError("The browser could not open the port" + detail + ": another program or tab has it "
                           "(the Arduino serial monitor, another studio tab), or your user may not use serial ports.",
                           "Close the other program or tab and press **Connect board** again. On Linux, add your user "
                           "to the dialout group (sudo usermod -aG dialout $USER) and log in again.")
    if stage == "request" and name == "NotSupportedError":
        return StudioError("This browser has no Web Serial" + detail + ".",
                           "Use Chrome or Edge (version 89 or newer) on a desktop computer, or the emulated board.")
    if stage in ("read", "write") and name == "NetworkError":
        return StudioError(f"The board was unplugged or reset from {LABEL}" + detail + ".",
                           "Plug it back in (a data USB cable), then press **Reconnect**.")
    return StudioError(f"The browser's serial port failed while {_STAGES.get(stage, stage)}" + detail + ".",
                       "Unplug and re-plug the board, then press **Connect board** again.")


_STAGES = {"request": "choosing the port", "open": "opening it", "read": "reading from it", "write": "writing to it"}


def lost_reason(name: str | None, message: str | None, stage: str = "read") -> str:
    """The reason text a lost link carries (it ends up in Board's "disconnected (...)" message)."""
    if stage == "page":
        return "the browser let go of the port: the Device step was left, or the tab reloaded or closed"
    if stage == "closed":
        return "the port was closed in the browser"
    if name == "NetworkError" or stage == "read":
        return f"the browser lost the port, as when the board is unplugged ({name or 'Error'}: {message or 'no details'})"
    return f"the browser's port failed ({name or 'Error'}: {message or 'no details'})"


def parse_info(info: Any) -> tuple[int | None, int | None]:
    """``{"usbVendorId": .., "usbProductId": ..}`` from the browser, checked (it is a client's word)."""
    if not isinstance(info, dict):
        return None, None

    def num(v: Any) -> int | None:
        return int(v) if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 0xFFFF else None

    return num(info.get("usbVendorId")), num(info.get("usbProductId"))
