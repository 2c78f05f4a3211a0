"""Finding the board's port, and the errors opening or losing one gives, each with what to do."""

from __future__ import annotations

import errno
import logging
import math
import os
import re
import stat
import sys
import urllib.parse
from dataclasses import dataclass
from typing import Iterable

import serial
import serial.tools.list_ports

from core.config import DEFAULTS
from core.errors import StudioError
from core.board.protocol import Err, Expected, Ready

CFG = DEFAULTS["device"]
LOG = logging.getLogger("forecast_studio")


# USB vendor:product ids the XIAO ESP32S3 enumerates with (SPEC, "The board").
XIAO_IDS: dict[tuple[int, int], str] = {
    (0x303A, 0x1001): "Espressif USB JTAG/serial (Arduino default)",
    (0x2886, 0x0056): "Seeed TinyUSB",
    (0x2886, 0x8056): "Seeed TinyUSB",
}




# --- ports -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PortInfo:
    device: str
    description: str
    vid: int | None
    pid: int | None
    is_xiao: bool
    label: str


def port_info(device: str, description: str = "", vid: int | None = None, pid: int | None = None) -> PortInfo:
    xiao = (vid, pid) in XIAO_IDS
    if xiao:
        label = f"Seeed XIAO ESP32S3 — {device} ({XIAO_IDS[(vid, pid)]})"
    else:
        ids = f" [{vid:04X}:{pid:04X}]" if vid is not None and pid is not None else ""
        desc = description if description and description != "n/a" else "serial port"
        label = f"{device} — {desc}{ids}"
    return PortInfo(device, description, vid, pid, xiao, label)


def list_ports() -> list[PortInfo]:
    """Serial ports on this machine, a XIAO ESP32S3 first (it is what the studio's firmware runs on)."""
    try:
        found = serial.tools.list_ports.comports()
    except Exception:  # a broken sysfs entry must not take the page down; a manual port still works
        found = []
    return order_ports([port_info(p.device, p.description or "", p.vid, p.pid) for p in found])


def order_ports(ports: Iterable[PortInfo]) -> list[PortInfo]:
    return sorted(ports, key=lambda p: (not p.is_xiao, p.device))


# --- what a port may be -------------------------------------------------------------------------------

# pyserial URL schemes the studio opens, and no other: a network bridge to a board and the in-memory
# echo. Every other handler reaches something of the host: ``spy://`` writes a log FILE (truncating
# it), ``alt://`` picks any serial class, ``hwgrep://`` opens whichever host port matches, ``cp2110://``
# a HID device.
BRIDGE_SCHEMES = ("socket", "rfc2217")
URL_SCHEMES = BRIDGE_SCHEMES + ("loop",)
_WINDOWS_PORT = re.compile(r"^(\\\\\.\\)?COM[0-9]{1,3}$", re.IGNORECASE)
# The options of the allowed handlers (pyserial 3.5) the studio takes: a number of seconds, or nothing.
# pyserial's own parsing of anything else fails in its internals' words ("'<=' not supported between
# 'int' and 'NoneType'", a bare KeyError 'x'), so an address is checked here first. Their ``logging``
# option is not taken: it writes a line to the studio's output for every read poll, 20 a second.
URL_OPTIONS: dict[str, dict[str, type | None]] = {
    "socket": {},
    "rfc2217": {"ign_set_control": None, "poll_modem": None, "timeout": float},
    "loop": {},
}
URL_FIX = ("Write a network bridge as " + " or ".join(f"{s}://HOST:PORT" for s in BRIDGE_SCHEMES)
           + " (a port number from 1 to 65535, e.g. socket://192.168.1.20:4000), or loop:// for the echo.")


def scheme_of(port: str) -> str | None:
    """The URL scheme of a port (lower case, as pyserial reads it), or None for a device path."""
    return port.split("://", 1)[0].lower() if "://" in port else None


def url_fault(port: str) -> str | None:
    """What is wrong with an address of an allowed scheme, in words; None when pyserial can open it as meant."""
    scheme = scheme_of(port)
    try:
        parts = urllib.parse.urlsplit(port)
        host = parts.hostname
    except ValueError:
        return "its host cannot be read"
    if scheme in BRIDGE_SCHEMES:
        if not host:
            return "it names no host"
        try:
            number = parts.port
        except ValueError:
            number = -1
        if number is None:
            return "it names no port number (HOST:PORT)"
        if not 1 <= number <= 65535:
            return f"its port {parts.netloc.rpartition(':')[2]!r} is not a number from 1 to 65535"
        if parts.path not in ("", "/"):
            return f"{parts.path!r} after the port means nothing to it"
    elif parts.netloc or parts.path:
        return f"{scheme}:// takes nothing but options after it"
    if parts.fragment:
        return f"'#{parts.fragment}' means nothing to it"
    allowed = URL_OPTIONS[scheme]
    for name, values in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items():
        if name not in allowed:
            known = f"it takes {', '.join(allowed)}" if allowed else "it takes none"
            return f"the studio takes no option {name!r} on {scheme}:// ({known})"
        for value in values:
            if allowed[name] is float:
                try:
                    seconds = float(value)
                except ValueError:
                    seconds = math.nan
                if not (math.isfinite(seconds) and seconds > 0):
                    return f"{name}={value!r} is not a number of seconds"
    return None


def check_port(port: str, *, remote: bool = False, browser_scheme: str = "browser://") -> str:
    """The one rule for what a port may be; the port (stripped) or a StudioError saying what is allowed.

    A participant on another computer (``remote``) may use only the board their own browser relays
    (``browser://<token>``): this machine's ports and its network are the host's, not theirs. The local
    user may also use a serial device (a character device on POSIX, COMn on Windows: the emulator's
    pseudo-terminal is one) or a URL whose scheme is in ``URL_SCHEMES``; nothing that names a file.
    """
    port = (port or "").strip()
    if port.startswith(browser_scheme):
        return port
    if remote:
        raise StudioError(f"{port} would be a port or a connection of the computer that runs the studio, not of yours.",
                          "Plug the board into your computer and connect it in the browser "
                          "(This computer's USB), or use the emulated board.")
    scheme = scheme_of(port)
    if scheme is not None:
        if scheme not in URL_SCHEMES:
            raise StudioError(f"The port address {port} uses {scheme}://, which the studio does not open.",
                              "Use a device path such as /dev/ttyACM0 or COM3, or a network bridge: "
                              + " or ".join(f"{s}://HOST:PORT" for s in BRIDGE_SCHEMES) + ".")
        fault = url_fault(port)
        if fault is not None:
            raise StudioError(f"The port address {port} is not valid: {fault}.", URL_FIX)
        return port
    if sys.platform == "win32":
        if not _WINDOWS_PORT.match(port):
            raise StudioError(f"{port} is not a serial port name.", "Use a name such as COM3.")
        return port
    try:
        mode = os.stat(port).st_mode
    except (OSError, ValueError):
        raise StudioError(f"There is no serial port {port}.",
                          "Plug the board in (use a data USB cable, not a charge-only one) and pick it from the list, "
                          "or check the port name.") from None
    if not stat.S_ISCHR(mode):
        raise StudioError(f"{port} is not a serial device (it is a "
                          f"{'folder' if stat.S_ISDIR(mode) else 'file' if stat.S_ISREG(mode) else 'special file'}).",
                          "Use a serial device such as /dev/ttyACM0 or /dev/ttyUSB0.")
    return port


# --- errors ------------------------------------------------------------------------------------------

def open_error(port: str, exc: BaseException) -> StudioError:
    """Turn whatever pyserial / the OS said into a problem and a fix the user can act on. Anything but the
    OS's or pyserial's own errors is a fault inside a handler: its text means nothing to the user, so it is
    logged and not shown."""
    if not isinstance(exc, (serial.SerialException, OSError, ValueError)):
        LOG.warning("opening %s failed inside pyserial: %s: %s", port, type(exc).__name__, exc)
        return StudioError(f"Could not open {port}: the serial library failed on this port.",
                           "Check the port name: pick the board from the list, or use " + URL_FIX[len("Write "):])
    code = getattr(exc, "errno", None)
    text = str(exc)
    lower = text.lower()
    if code in (errno.EBUSY, errno.EAGAIN) or "exclusively lock" in lower or "resource busy" in lower \
            or (sys.platform == "win32" and "access is denied" in lower):
        return StudioError(f"The port {port} is busy: another program has it open.",
                           "Close the Arduino serial monitor (or any other program using the board), "
                           "or disconnect it in another studio tab, then connect again.")
    if code in (errno.EACCES, errno.EPERM) or "permission denied" in lower:
        if sys.platform.startswith("linux"):
            fix = ("On Linux, add your user to the dialout group (sudo usermod -aG dialout $USER), "
                   "then log out and back in.")
        else:
            fix = "Allow this program to use serial ports, or run it as a user who may."
        return StudioError(f"Permission denied opening {port}.", fix)
    if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO) or "no such file" in lower or "could not find" in lower:
        return StudioError(f"There is no serial port {port}.",
                           "Plug the board in (use a data USB cable, not a charge-only one) and pick it from the list, "
                           "or check the port name.")
    if code == errno.ENOTTY or "inappropriate ioctl" in lower:  # /dev/null, a fifo: opened, but no serial settings
        return StudioError(f"{port} is not a serial port: it takes no serial settings (baud rate, lines).",
                           "Use the board's serial device, such as /dev/ttyACM0 or /dev/ttyUSB0: pick it from the list.")
    if "connection refused" in lower or "timed out" in lower or "name or service not known" in lower:
        return StudioError(f"Nothing answers at {port} ({text}).",
                           "Check that the serial bridge (ser2net, an RFC 2217 server) runs and the host and port are right.")
    if "invalid url" in lower or ("://" in port and "not known" in lower):
        return StudioError(f"The port address {port} is not a valid pyserial URL ({text}).",
                           "Use a device path such as /dev/ttyACM0 or COM3, or socket://HOST:PORT / rfc2217://HOST:PORT.")
    return StudioError(f"Could not open {port}: {text}.", "Check the port name and that the board is plugged in.")


def disconnected_error(port: str, exc: BaseException | None = None) -> StudioError:
    """The port went away. What the OS or pyserial said is shown; a fault inside a handler (an
    UnboundLocalError in a read) is logged instead, its text meaning nothing to the user."""
    if exc is not None and not isinstance(exc, (serial.SerialException, OSError)):
        LOG.warning("the link to %s failed inside pyserial: %s: %s", port, type(exc).__name__, exc)
        exc = None
    detail = f" ({exc})" if exc is not None and str(exc) else ""
    return StudioError(f"The board on {port} disconnected{detail}.",
                       "Plug it back in (or restart the emulator), then connect again.")


ERR_TEXT: dict[str, tuple[str, str]] = {
    "BADLEN": ("The board expected a different number of values than it was sent",
               "The firmware was built for another window size: flash the bundle from the current export."),
    "PARSE": ("The board could not read the numbers it was sent",
              "Check the baud rate and the cable, then send again."),
    "ALLOC": ("The model does not fit the board's tensor arena",
              "Re-export (the Export step sizes the arena) and flash again; large models need the PSRAM arena."),
    "INVOKE": ("The model failed to run on the board",
               "Re-export and flash again; if it persists, pick a smaller model."),
    "NEED": ("The board has not yet received a full window of readings (R command or its sensor)",
             "Push more readings: the board answers with a forecast once it holds a whole window."),
    "UNKNOWN": ("The board did not understand the command",
                "Flash the firmware bundle from the current export, which speaks the studio's protocol."),
    "EI": ("The Edge Impulse sketch reported an error",
           "Check that the sketch holds a window of the right length for the library, then upload it again."),
}


def board_error(rec: Err) -> StudioError:
    problem, fix = ERR_TEXT.get(rec.code, (f"The board reported an error {rec.code}", ERR_TEXT["UNKNOWN"][1]))
    return StudioError(f"{problem}: FS ERR {rec.code} {rec.message}".strip(), fix)


def mismatch_error(ready: Ready, expected: Expected) -> StudioError | None:
    diffs = ready.mismatches(expected)
    if not diffs:
        return None
    return StudioError("The board runs a different model than the current export (" + "; ".join(diffs) + ").",
                       "Flash the firmware bundle from the Export step, or open the export the board was flashed with.")


