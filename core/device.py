"""Talking to the board: find its port, read what it prints, ask it for forecasts, compare them with the host.

Everything here goes through ``serial.serial_for_url``, so a real XIAO on /dev/ttyACM0, the emulator's
pseudo-terminal and a board behind a network bridge (``socket://``, ``rfc2217://``) take the same path.
A background thread owns reading; callers only ever wait on it with a deadline, so nothing here can hang
on a silent or vanished board.
"""
from __future__ import annotations

import errno
import json
import math
import re
import statistics
import sys
import threading
import time
import zipfile
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import serial
import serial.tools.list_ports

from core import weblink
from core.config import DEFAULTS
from core.errors import StudioError
from core.protocol import (Done, EiPrediction, EiPredictionsHeader, EiTiming, Err, Expected, Other, Ready, Record,
                           Result, TextHealth, decode_bytes, format_p_command, parse_line)

CFG = DEFAULTS["device"]

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


# --- errors ------------------------------------------------------------------------------------------

def _open_error(port: str, exc: BaseException) -> StudioError:
    """Turn whatever pyserial / the OS said into a problem and a fix the user can act on."""
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
    if "connection refused" in lower or "timed out" in lower or "name or service not known" in lower:
        return StudioError(f"Nothing answers at {port} ({text}).",
                           "Check that the serial bridge (ser2net, an RFC 2217 server) runs and the host and port are right.")
    if "invalid url" in lower or ("://" in port and "not known" in lower):
        return StudioError(f"The port address {port} is not a valid pyserial URL ({text}).",
                           "Use a device path such as /dev/ttyACM0 or COM3, or socket://HOST:PORT / rfc2217://HOST:PORT.")
    return StudioError(f"Could not open {port}: {text}.", "Check the port name and that the board is plugged in.")


def _disconnected(port: str, exc: BaseException | None = None) -> StudioError:
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


# --- the board -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LogEntry:
    seq: int
    t: float                # wall-clock time, for the log's timestamps
    kind: str               # "rx" from the board, "tx" sent to it, "info" and "error" from the studio
    text: str
    record: Record | None = None

    def line(self) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(self.t)) + f".{int(self.t * 1000) % 1000:03d}"
        arrow = {"rx": "<", "tx": ">", "info": "·", "error": "!"}.get(self.kind, " ")
        return f"{stamp} {arrow} {self.text}"


class _WaitTimeout(Exception):
    pass


def open_serial(port: str, baud: int, *, exclusive: bool = True, write_timeout: float | None = None) -> Any:
    """Open a device path or a pyserial URL; a StudioError with a fix on any failure."""
    port = (port or "").strip()
    if not port:
        raise StudioError("No port was given.", "Pick a port from the list or type one (e.g. /dev/ttyACM0, COM3, socket://HOST:PORT).")
    try:
        baud = int(baud)
        if baud <= 0:
            raise ValueError
    except (TypeError, ValueError):
        raise StudioError(f"The baud rate {baud!r} is not a positive whole number.",
                          "Use 115200, the rate the studio's firmware and the Edge Impulse sketch use.") from None
    if port.startswith(weblink.SCHEME):
        # A board on the participant's computer, held by their browser and relayed to the studio (core/weblink.py).
        return weblink.open_link(port, baud)
    kwargs: dict[str, Any] = {"baudrate": baud, "timeout": CFG["read_poll_s"],
                              "write_timeout": CFG["write_timeout_s"] if write_timeout is None else write_timeout}
    if "://" not in port:
        # Exclusive locking is what tells "busy" apart from "free" on POSIX; URL handlers have no such notion.
        kwargs["exclusive"] = exclusive
    try:
        return serial.serial_for_url(port, **kwargs)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise _open_error(port, exc) from None


class Board:
    """One open connection: a reader thread parses lines into records and keeps a bounded, timestamped log.

    ``ready``, ``self_test`` and ``predict`` send a command and wait for its answer, each with a deadline.
    Faults (unplugged, silent, wrong baud rate, a different model) come back as StudioError.
    """

    def __init__(self, port: str, baud: int = CFG["baud"], *, expected: Expected | None = None,
                 log_lines: int = CFG["log_lines"], exclusive: bool = True) -> None:
        self.port = port
        self.baud = baud
        self.expected = expected
        self.ready_info: Ready | None = None
        self._ser = open_serial(port, baud, exclusive=exclusive)
        self._cond = threading.Condition()
        self._log: deque[LogEntry] = deque(maxlen=log_lines)
        self._records: deque[tuple[int, Record]] = deque(maxlen=log_lines)
        self._seq = 0
        self._rx_bytes = 0
        self._pending = bytearray()
        self._health = TextHealth(span=CFG["health_span_bytes"], threshold=CFG["unreadable_ratio"])
        self._error: StudioError | None = None
        self._stop = threading.Event()
        self._write_lock = threading.Lock()
        self._closers: list[Callable[[], None]] = []
        self._add("info", f"connected to {self.name} at {baud} baud")
        self._thread = threading.Thread(target=self._read_loop, name=f"board-reader:{port}", daemon=True)
        self._thread.start()

    # -- state ---------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The port as the user knows it, for messages (a browser link's token means nothing to them)."""
        return weblink.LABEL if self.port.startswith(weblink.SCHEME) else self.port

    @property
    def connected(self) -> bool:
        return self._error is None and not self._stop.is_set() and self._thread.is_alive()

    @property
    def error(self) -> StudioError | None:
        return self._error

    @property
    def unreadable(self) -> bool:
        return self._health.unreadable

    @property
    def rx_bytes(self) -> int:
        return self._rx_bytes

    def log(self, since: int = 0) -> list[LogEntry]:
        """Log entries with ``seq > since`` (the page polls with the last seq it drew)."""
        with self._cond:
            return [e for e in self._log if e.seq > since]

    def log_text(self, last: int | None = None) -> str:
        entries = self.log()
        if last is not None:
            entries = entries[-last:]
        lines = [e.line() for e in entries]
        pending = self.pending_text
        if pending:
            lines.append(f"{'':12} < {pending}  (no line end yet)")
        return "\n".join(lines)

    @property
    def pending_text(self) -> str:
        with self._cond:
            return decode_bytes(bytes(self._pending)).rstrip("\r")

    def records(self) -> list[Record]:
        with self._cond:
            return [r for _, r in self._records]

    def cursor(self) -> int:
        with self._cond:
            return self._seq

    # -- reading ---------------------------------------------------------------------------------------
    def _add(self, kind: str, text: str, record: Record | None = None) -> None:
        with self._cond:
            self._seq += 1
            self._log.append(LogEntry(self._seq, time.time(), kind, text, record))
            if record is not None:
                self._records.append((self._seq, record))
                if isinstance(record, Ready):
                    self.ready_info = record
            self._cond.notify_all()

    def _read_loop(self) -> None:
        ser = self._ser
        while not self._stop.is_set():
            try:
                waiting = ser.in_waiting
                chunk = ser.read(max(1, min(int(waiting or 0), 4096)))
            except Exception as exc:  # SerialException, OSError, termios.error: the port went away
                if not self._stop.is_set():
                    self._fail(_disconnected(self.name, exc))
                return
            if not chunk:
                continue
            with self._cond:
                self._rx_bytes += len(chunk)
                self._health.feed(chunk)
                self._pending += chunk
                lines = []
                while True:
                    i = self._pending.find(b"\n")
                    if i < 0:
                        break
                    lines.append(bytes(self._pending[:i]))
                    del self._pending[: i + 1]
                if len(self._pending) > CFG["max_line_bytes"]:
                    # No line end for this long: noise or a wrong baud rate. Show it and start over.
                    lines.append(bytes(self._pending))
                    self._pending.clear()
                self._cond.notify_all()
            for raw in lines:
                text = decode_bytes(raw).rstrip("\r")
                if text.strip():
                    self._add("rx", text, parse_line(text))

    def _fail(self, err: StudioError) -> None:
        with self._cond:
            if self._error is None:
                self._error = err
            self._cond.notify_all()
        self._add("error", str(err))

    # -- writing ---------------------------------------------------------------------------------------
    def send(self, command: str) -> None:
        if self._error is not None:
            raise self._error
        if self._stop.is_set():
            raise StudioError(f"The connection to {self.name} is closed.", "Connect again.")
        line = command if command.endswith("\n") else command + "\n"
        try:
            with self._write_lock:
                self._ser.write(line.encode("ascii"))
                self._ser.flush()
        except serial.SerialTimeoutException:
            raise StudioError(f"The board on {self.name} is not taking input (a write timed out).",
                              "Press the board's RESET button or re-plug it, then connect again.") from None
        except Exception as exc:
            err = _disconnected(self.name, exc)
            self._fail(err)
            raise err from None
        shown = line.strip()
        if len(shown) > 160:
            shown = f"{shown[:150]}… ({len(shown)} chars)"
        self._add("tx", shown)

    def _next(self, cursor: int, deadline: float, since_bytes: int) -> tuple[int, Record]:
        """The first record after ``cursor``; raises on disconnect, unreadable text, or the deadline."""
        with self._cond:
            while True:
                if self._records:
                    first = self._records[0][0]
                    if self._records[-1][0] > cursor:
                        for seq, rec in self._records:
                            if seq > cursor and seq >= first:
                                return seq, rec
                if self._error is not None:
                    raise self._error
                if self._stop.is_set():
                    raise StudioError(f"The connection to {self.name} was closed while waiting for the board.",
                                      "Connect again.")
                # A full window of mostly-unreadable bytes since this wait began: say so now, not at the deadline.
                if self._health.unreadable and self._rx_bytes - since_bytes >= self._health.span:
                    raise self.unreadable_error()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _WaitTimeout()
                self._cond.wait(min(remaining, 0.1))

    def unreadable_error(self) -> StudioError:
        pct = round(100 * self._health.ratio)
        return StudioError(f"The board's output is unreadable ({pct}% of the recent bytes are not text): "
                           f"the baud rate ({self.baud}) probably does not match the firmware's.",
                           "Pick the board's baud rate (115200 for the studio's firmware and the Edge Impulse sketch) "
                           "and connect again.")

    def _timeout_error(self, what: str, timeout: float, since_bytes: int) -> StudioError:
        if self._health.unreadable:
            return self.unreadable_error()
        heard = self._rx_bytes - since_bytes
        detail = "nothing at all was received" if heard == 0 else f"{heard} bytes arrived but no answer among them"
        return StudioError(f"The board on {self.name} did not answer {what} within {timeout:g} s ({detail}).",
                           "Check that it runs the studio's firmware (flash the bundle from the Export step), that this "
                           "is the right port, and press the board's RESET button.")

    # -- commands ------------------------------------------------------------------------------------
    def ready(self, timeout: float = CFG["ready_timeout_s"], expected: Expected | None = None,
              resend_s: float = CFG["ready_resend_s"]) -> Ready:
        """Send ``I`` until the board prints its ``FS READY`` line; check it against the current export."""
        expected = expected or self.expected
        start = time.monotonic()
        deadline = start + timeout
        cursor, since = self.cursor(), self._rx_bytes
        # The first time, give the board one resend interval to print its boot banner (opening the port
        # usually boots it) before asking: asking at once logged FS READY twice, the banner and the answer.
        listen_first = not getattr(self, "_asked_ready", False)
        self._asked_ready = True
        if listen_first:
            cursor = 0  # a banner already received since the port opened counts
        while True:
            # The board may be rebooting when the port opens (USB serial resets it) and drop the first I.
            wait_s = min(resend_s, timeout / 3) if listen_first else resend_s  # leave time to ask after it
            if not listen_first:
                self.send("I")
            listen_first = False
            resend = min(deadline, time.monotonic() + wait_s)
            try:
                while True:
                    cursor, rec = self._next(cursor, resend, since)
                    if isinstance(rec, Ready):
                        if expected is not None:
                            err = mismatch_error(rec, expected)
                            if err is not None:
                                self._add("error", str(err))
                                raise err
                        return rec
            except _WaitTimeout:
                if time.monotonic() >= deadline:
                    raise self._timeout_error("the ready request (I)", timeout, since) from None

    def self_test(self, timeout: float = CFG["answer_timeout_s"]) -> list[Result]:
        """``T``: the board runs its embedded test windows. ``timeout`` bounds the silence between two lines."""
        cursor, since = self.cursor(), self._rx_bytes
        self.send("T")
        results: list[Result] = []
        while True:
            try:
                cursor, rec = self._next(cursor, time.monotonic() + timeout, since)
            except _WaitTimeout:
                what = "the self-test (T)" if not results else f"the self-test after {len(results)} results"
                raise self._timeout_error(what, timeout, since) from None
            if isinstance(rec, Result) and rec.k >= 0:
                results.append(rec)
            elif isinstance(rec, Done):
                if rec.n != len(results):
                    self._add("info", f"the board ran {rec.n} windows but {len(results)} results were read "
                                      "(lines lost or garbled on the way)")
                return results
            elif isinstance(rec, Err):
                raise board_error(rec)
            elif isinstance(rec, Ready) and results:
                # A ready line before any result is the late answer to an earlier I (or the boot line);
                # one after results means the board rebooted midway.
                raise StudioError("The board restarted during the self-test.",
                                  "Check its power and cable (a brown-out resets it), then run the self-test again.")

    def predict(self, window: np.ndarray | Sequence[Sequence[float]], timeout: float = CFG["answer_timeout_s"]) -> Result:
        """``P``: one window in the data's own units (window x features); the board's forecast in data units."""
        line = format_p_command(window)
        cursor, since = self.cursor(), self._rx_bytes
        self.send(line)
        deadline = time.monotonic() + timeout
        while True:
            try:
                cursor, rec = self._next(cursor, deadline, since)
            except _WaitTimeout:
                raise self._timeout_error("a window (P)", timeout, since) from None
            if isinstance(rec, Result) and rec.k == -1:
                return rec
            if isinstance(rec, Err):
                raise board_error(rec)
            # A ready line here is a late answer to an earlier I or the boot line; a board that really
            # rebooted never answers this P, which the deadline reports.

    def push(self, reading: np.ndarray | Sequence[float], timeout: float = CFG["answer_timeout_s"]) -> Result | Err:
        """``R``: one reading (features values, data units) into the board's ring buffer. Returns the forecast
        from the newest full window, or the board's ``NEED`` error record (how many readings are still missing)."""
        from core.protocol import format_r_command

        line = format_r_command(reading)
        cursor, since = self.cursor(), self._rx_bytes
        self.send(line)
        deadline = time.monotonic() + timeout
        while True:
            try:
                cursor, rec = self._next(cursor, deadline, since)
            except _WaitTimeout:
                raise self._timeout_error("a reading (R)", timeout, since) from None
            if isinstance(rec, Result) and rec.k == -1:
                return rec
            if isinstance(rec, Err):
                if rec.code == "NEED":
                    return rec
                raise board_error(rec)

    def on_close(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` when this connection closes (the page stops the emulator it started this way)."""
        self._closers.append(fn)

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        try:
            self._ser.close()
        except Exception:  # closing a vanished port can fail; it is closed either way
            pass
        self._thread.join(timeout=2)
        for fn in self._closers:
            try:
                fn()
            except Exception as exc:  # one failing closer must not keep the others (or the port) open
                self._add("error", f"while closing: {exc}")
        self._add("info", "disconnected")
        with self._cond:
            self._cond.notify_all()

    def __enter__(self) -> "Board":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Task:
    """One board command run off the UI thread, so the page keeps drawing the live log while a slow board answers.

    Every Board wait has a deadline, so the thread always ends; ``result``/``error`` are read when ``done``.
    """

    def __init__(self, name: str, fn: Callable[[], Any]) -> None:
        self.name = name
        self.result: Any = None
        self.error: StudioError | None = None
        self.started = time.monotonic()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(fn,), name=f"board-task:{name}", daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            self.result = fn()
        except StudioError as err:
            self.error = err
        except Exception as exc:  # never lose a failure in a thread: the page shows it as a message
            self.error = StudioError(f"{self.name} failed: {type(exc).__name__}: {exc}.", "Try again, or reconnect.")
        finally:
            self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float) -> bool:
        return self._done.wait(timeout)


# --- host reference -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Embedded:
    """The test windows a firmware bundle holds, in self-test order, with the host's forecasts (data units)."""
    indices: tuple[int, ...]      # which of the run's test windows
    host: np.ndarray              # (n, horizon, targets)


@dataclass
class Reference:
    """What the host computed, in a form the comparison can use without the dataset or the model.

    ``X`` and ``y_host`` are in scaled units (as the run stores them); ``center``/``scale`` undo the scaling
    per target, ``in_center``/``in_scale`` per input column. ``embedded`` lists which test windows the
    firmware holds, in self-test order (k -> X[embedded[k]]); ``ei_windows`` those the EI sketch holds.
    """
    expected: Expected
    targets: tuple[str, ...]
    center: np.ndarray
    scale: np.ndarray
    X: np.ndarray
    y_host: np.ndarray
    in_center: np.ndarray
    in_scale: np.ndarray
    embedded: tuple[int, ...] = ()
    ei_windows: tuple[int, ...] = ()
    dtype: str = "float32"
    # The export's TFLM-vs-host max abs error per dtype, per target, in data units (report.json).
    report_err: dict[str, np.ndarray] = field(default_factory=dict)
    residual: bool = False
    ei_output_is_delta: bool = False       # True when the EI model predicts the change and the host must add it back
    # The model type Edge Impulse built the library as (report["edge_impulse"]["dtype"]): an int8 library is
    # quantised by Edge Impulse itself, so it is held to int8's tolerance even when the export has float32.
    ei_dtype: str | None = None
    target_input_index: tuple[int | None, ...] = ()
    bundles: dict[str, Embedded] = field(default_factory=dict)   # per dtype, from the bundle's bundle.json
    export_dir: Path | None = None
    # The export's latency estimate for the XIAO ESP32S3 per dtype (report.json budget), in ms: what an
    # emulated board's timing (this computer's) is put next to.
    board_latency_ms: dict[str, float] = field(default_factory=dict)
    # Per test window, in data units: the actual values, the last-value forecast, and what the host's TFLM
    # run of each exported file gave (windows.npz); None / empty for an export written before they were kept.
    y_true: np.ndarray | None = None
    y_last: np.ndarray | None = None
    y_tflm: dict[str, np.ndarray] = field(default_factory=dict)
    # One int8 output quantisation step per target, in data units.
    out_step: dict[str, np.ndarray] = field(default_factory=dict)
    # The same for an int8 model whose output is a level (an Edge Impulse library), from the calibration range.
    ei_out_step: np.ndarray | None = None

    def embedded_for(self, dtype: str | None) -> Embedded | None:
        """What the board's self-test runs: the bundle for its dtype; any bundle of this export holds the same
        host forecasts, so one of another dtype serves too. Without a bundle zip, the firmware module picks them."""
        dtype = dtype or self.dtype
        if dtype in self.bundles:
            return self.bundles[dtype]
        if self.bundles:
            return next(iter(self.bundles.values()))
        if self.export_dir is not None:
            try:
                from core import firmware

                spec = firmware.load_bundle_spec(self.export_dir, dtype)
                self.bundles[dtype] = Embedded(tuple(int(i) for i in spec.test_indices),
                                               np.asarray(spec.host_predictions, dtype=np.float64))
                return self.bundles[dtype]
            except Exception:  # no firmware module or no bundle possible: fall back to ref.embedded / identity
                return None
        return None

    @property
    def n_windows(self) -> int:
        return int(self.X.shape[0])

    def host_units(self, i: int) -> np.ndarray:
        """Host forecast for test window i in data units, shape (horizon, n_targets)."""
        return self.y_host[i] * self.scale + self.center

    def window_units(self, i: int) -> np.ndarray:
        """Test window i in the data's own units (what ``P`` sends), shape (window, features)."""
        return self.X[i] * self.in_scale + self.in_center

    def tolerance(self, dtype: str | None = None) -> np.ndarray:
        """Allowed |board - host's run of the same file| per target in data units, from the dtype's own
        resolution: for float32 a small share of the target's scale, for int8 ``int8_steps`` output
        quantisation steps. Never from the export's measured error, which is what this check must catch."""
        dtype = dtype or self.dtype
        floor = CFG["tolerance_floor"].get(dtype, max(CFG["tolerance_floor"].values()))
        tol = np.abs(self.scale) * floor
        step = self.out_step.get(dtype)
        if dtype == "int8" and step is not None and step.shape == tol.shape and np.all(np.isfinite(step)):
            tol = step * float(CFG["int8_steps"]) + np.abs(self.scale) * CFG["tolerance_floor"]["float32"]
        return tol

    def reference_units(self, i: int, dtype: str | None) -> np.ndarray:
        """What the host's copy of the board's model file computed for test window i (data units); the host
        model's own forecast where the export did not keep it."""
        y = self.y_tflm.get(dtype or self.dtype)
        if y is not None and 0 <= i < len(y):
            return np.asarray(y[i], dtype=np.float64)
        return self.host_units(i)


def _scaler_parts(scaler: Mapping[str, Any] | Any, columns: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Center and scale for ``columns`` from a Scaler (or its to_dict()); a column it does not cover is unscaled."""
    get = scaler.get if isinstance(scaler, Mapping) else (lambda k, d=None: getattr(scaler, k, d))
    cols = list(get("columns", []) or [])
    center = np.asarray(get("center", []), dtype=np.float64).reshape(-1)
    scale = np.asarray(get("scale", []), dtype=np.float64).reshape(-1)
    c = np.zeros(len(columns))
    s = np.ones(len(columns))
    for j, name in enumerate(columns):
        if name in cols:
            i = cols.index(name)
            c[j], s[j] = center[i], scale[i]
    return c, s


def _as_int(value: Any) -> int | None:
    if isinstance(value, (list, tuple)):
        return len(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _names(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else []


def _read_windows(export_dir: Path, report: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, Path]:
    """Scaled test windows and the host's scaled forecasts: the export's verified windows.npz (the ones the
    firmware and the emulator embed), else the run's samples.npz."""
    candidates: list[tuple[Path, str, str]] = [(export_dir / "windows.npz", "X", "y_host_scaled")]
    run_dir = report.get("run_dir")
    if isinstance(run_dir, str) and run_dir:
        p = Path(run_dir)
        candidates.append(((p if p.is_absolute() else export_dir / p) / "samples.npz", "X_test", "y_host"))
    candidates.append((export_dir / "samples.npz", "X_test", "y_host"))
    for path, xkey, ykey in candidates:
        if not path.is_file():
            continue
        try:
            from core.arrays import load_npz

            npz = load_npz(path, fix="Export the run again.")
            return np.asarray(npz[xkey], dtype=np.float64), np.asarray(npz[ykey], dtype=np.float64), path
        except StudioError:
            raise
        except (KeyError, ValueError, OSError) as exc:
            raise StudioError(f"{path} is unreadable or lacks {xkey} / {ykey} ({exc}).",
                              "Export the run again.") from None
    raise StudioError(f"No test windows (windows.npz in the export, or the run's samples.npz) were found for {export_dir}.",
                      "Export the run again with the current studio; the export folder then holds them.")


def load_reference(export_dir: str | Path) -> Reference:
    """Read an export folder (report.json and its test windows) into a Reference."""
    export_dir = Path(export_dir)
    rp = export_dir / "report.json"
    if not rp.is_file():
        raise StudioError(f"{export_dir} has no report.json, so it is not an export folder.",
                          "Run the Export step (or `python -m studio export RUN_DIR --out EXPORT_DIR`) and point at its output.")
    from core.files import load_json

    report = load_json(rp, str(rp), "Export the run again.")

    targets = _names(report.get("targets"))
    inputs = _names(report.get("input_columns")) or _names(report.get("features"))
    scaler = report.get("scaler")
    if not isinstance(scaler, Mapping):
        raise StudioError(f"{rp} has no scaler, so the board's numbers cannot be put back into the data's units.",
                          "Export the run again with the current studio.")
    X, y_host, wpath = _read_windows(export_dir, report)
    extra = _read_truth(wpath, len(X))
    if X.ndim != 3 or y_host.ndim not in (2, 3) or len(X) != len(y_host):
        raise StudioError(f"The test windows in {export_dir} have unexpected shapes {X.shape} / {y_host.shape}.",
                          "Export the run again.")
    if y_host.ndim == 2:
        y_host = y_host[:, :, None] if len(targets) <= 1 else y_host[:, None, :]
    if not targets:
        targets = [f"target{i}" for i in range(y_host.shape[-1])]
    if len(inputs) != X.shape[2]:
        inputs = [f"input{i}" for i in range(X.shape[2])]
    center, scale = _scaler_parts(scaler, targets)
    in_center, in_scale = _scaler_parts(scaler, inputs)

    errs: dict[str, np.ndarray] = {}
    dtypes = report.get("dtypes") if isinstance(report.get("dtypes"), Mapping) else report
    for name in ("float32", "int8"):
        entry = dtypes.get(name) if isinstance(dtypes, Mapping) else None
        if isinstance(entry, Mapping):
            per = entry.get("max_abs_err_per_target")
            val = per if isinstance(per, list) and len(per) == len(targets) else [entry.get("max_abs_err")] * len(targets)
            errs[name] = np.array([np.nan if v is None else float(v) for v in val])
    dtype = "float32" if "float32" in errs or not errs else next(iter(errs))
    out_step: dict[str, np.ndarray] = {}
    q = dtypes.get("int8", {}).get("output_quant") if isinstance(dtypes, Mapping) and isinstance(dtypes.get("int8"), Mapping) else None
    if isinstance(q, Mapping) and isinstance(q.get("scale"), (int, float)) and math.isfinite(float(q["scale"])):
        out_step["int8"] = abs(float(q["scale"])) * np.abs(scale)
    level = (report.get("quantisation") or {}).get("level_output_step_scaled") if isinstance(report.get("quantisation"), Mapping) else None
    ei_out_step = None
    if isinstance(level, list) and len(level) == len(targets) and all(isinstance(v, (int, float)) for v in level):
        ei_out_step = np.abs(np.asarray(level, dtype=np.float64)) * np.abs(scale)
    residual = bool(report.get("residual", False))
    ei = report.get("edge_impulse") or report.get("ei") or {}
    ei = ei if isinstance(ei, Mapping) else {}
    model = report.get("model") if isinstance(report.get("model"), Mapping) else {}
    tii = report.get("target_input_index") or model.get("target_input_index") or ()
    embedded = tuple(int(i) for i in (report.get("test_windows") or report.get("embedded_windows") or ()))
    ei_windows = tuple(int(i) for i in (ei.get("windows") or ei.get("test_windows") or ()))
    per_dtype = (report.get("budget") or {}).get("per_dtype") if isinstance(report.get("budget"), Mapping) else None
    latency = {d: float(e["latency_ms"]) for d, e in (per_dtype or {}).items()
               if isinstance(e, Mapping) and isinstance(e.get("latency_ms"), (int, float))}
    bundles = _read_bundles(export_dir)
    name = report.get("model_name") or next((b["model"] for b in bundles.values() if isinstance(b.get("model"), str)), None)
    if not name:
        name = _firmware_model_name(report.get("model"))
    expected = Expected(model=str(name) if isinstance(name, str) and name else None,
                        window=_as_int(report.get("window")) or X.shape[1],
                        features=_as_int(report.get("features")) or X.shape[2],
                        horizon=_as_int(report.get("horizon")) or y_host.shape[1], targets=len(targets))
    ref = Reference(expected=expected, targets=tuple(targets), center=center, scale=scale, X=X, y_host=y_host,
                     in_center=in_center, in_scale=in_scale, embedded=embedded, ei_windows=ei_windows, dtype=dtype,
                     report_err=errs, residual=residual,
                     # The export puts the residual add-back inside the network, so EI prints a level unless told otherwise.
                     ei_output_is_delta=bool(residual and ei.get("residual_in_model") is False),
                     ei_dtype=ei.get("dtype") if ei.get("dtype") in ("float32", "int8") else None,
                     target_input_index=tuple(None if v is None else int(v) for v in tii),
                     bundles={d: _embedded(b, len(targets)) for d, b in bundles.items() if _embedded(b, len(targets))},
                     export_dir=export_dir, board_latency_ms=latency, out_step=out_step, ei_out_step=ei_out_step,
                     **extra)
    if ref.y_last is None and ref.target_input_index and all(i is not None for i in ref.target_input_index):
        # An export without the baseline: the last value is in the windows themselves.
        ti = list(ref.target_input_index)
        last = X[:, -1, ti] * in_scale[ti] + in_center[ti]
        ref.y_last = np.repeat(last[:, None, :], ref.y_host.shape[1], axis=1)
    return ref


def _read_truth(path: Path, n: int) -> dict:
    """Actuals, the last-value forecast and the host's TFLM outputs per dtype beside the test windows
    (the export's windows.npz), each only when present with one entry per window."""
    out: dict = {"y_tflm": {}}
    if path.name != "windows.npz":
        return out
    from core.arrays import load_npz

    try:
        arrays = {k: np.asarray(v, dtype=np.float64) for k, v in load_npz(path, fix="Export the run again.").items()
                  if k in ("y_true", "y_base_last_value", "y_float32", "y_int8")}
    except (StudioError, ValueError, OSError):
        return out
    arrays = {k: v for k, v in arrays.items() if len(v) == n}
    if "y_true" in arrays:
        out["y_true"] = arrays["y_true"]
    if "y_base_last_value" in arrays:
        out["y_last"] = arrays["y_base_last_value"]
    out["y_tflm"] = {d: arrays[f"y_{d}"] for d in ("float32", "int8") if f"y_{d}" in arrays}
    return out


def _firmware_model_name(model: Any) -> str | None:
    """The name the firmware prints in its ready line, by core/firmware.py's rule: the report's model (or its
    name or kind), with anything but letters, digits, ``_ . -`` turned into ``_`` so the line stays key=value."""
    if isinstance(model, Mapping):
        model = model.get("name") or model.get("kind")
    if not model:
        return None
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(model)).strip("_") or None


def _read_bundles(export_dir: Path) -> dict[str, dict]:
    """bundle.json from each firmware bundle zip in the export (what was flashed: its windows and host forecasts)."""
    out: dict[str, dict] = {}
    for path in sorted(export_dir.glob("*.zip")):
        try:
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if n.endswith("/bundle.json") or n == "bundle.json"]
                if not names or zf.getinfo(names[0]).file_size > CFG["max_bundle_json_bytes"]:
                    continue
                data = json.loads(zf.read(names[0]).decode("utf-8"))
        except (zipfile.BadZipFile, OSError, ValueError, KeyError, RecursionError):
            continue  # an unrelated or damaged zip (the Edge Impulse library, say) is not a bundle
        if isinstance(data, dict) and isinstance(data.get("dtype"), str):
            out[data["dtype"]] = data
    return out


def _embedded(bundle: Mapping[str, Any], n_targets: int) -> Embedded | None:
    try:
        idx = tuple(int(i) for i in bundle["test_indices"])
        host = np.asarray(bundle["host_predictions"], dtype=np.float64)
        host = host.reshape(len(idx), -1, n_targets)
    except (KeyError, TypeError, ValueError):
        return None
    return Embedded(idx, host)


# --- comparison -----------------------------------------------------------------------------------------

@dataclass
class Row:
    window: int | None     # index into the run's test windows; None when a value matched none
    k: int                 # the board's own index (self-test k, -1 for P, reading number for Edge Impulse)
    step: int
    target: str
    board: float
    host: float | None
    abs_err: float | None
    ok: bool


@dataclass
class Comparison:
    rows: list[Row]
    tolerance: dict[str, float]
    max_abs_err: float | None
    mean_abs_err: float | None
    timing_us: dict[str, float] | None       # min / median / max inference time
    verdict: str                             # "agree", "disagree" or "no results": kernel fidelity
    problems: list[str] = field(default_factory=list)
    # Forecast quality against the actual values (``judge_quality``): a separate question from fidelity.
    quality: dict = field(default_factory=dict)

    @property
    def agree(self) -> bool:
        return self.verdict == "agree"

    @property
    def forecasts_good(self) -> bool | None:
        """True / False when the board's forecasts could be judged against the actual values, else None."""
        v = self.quality.get("verdict")
        return None if v in (None, "unknown") else v == "good"

    def summary(self, quality: bool = True) -> str:
        """Fidelity (board vs the host's run of the same file), then, with ``quality``, forecast quality."""
        if self.verdict == "no results":
            return "No board results to compare yet."
        windows = len({(r.k, r.window) for r in self.rows})
        text = f"{'Board and host agree' if self.agree else 'Board and host DISAGREE'} on {windows} window(s): "
        if self.max_abs_err is not None:
            mean = "n/a" if self.mean_abs_err is None else f"{self.mean_abs_err:.6g}"
            text += f"max |error| {self.max_abs_err:.6g}, mean {mean} "
        else:
            text += "no value could be matched to a host forecast "
        text += f"(tolerance {', '.join(f'{k} {v:.3g}' for k, v in self.tolerance.items())})"
        if self.timing_us:
            t = self.timing_us
            text += f"; inference {t['min'] / 1000:.3g} / {t['median'] / 1000:.3g} / {t['max'] / 1000:.3g} ms (min / median / max)"
        text += "."
        if quality and self.quality.get("summary"):
            text += " " + self.quality["summary"]
        return text

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "agree": self.agree, "quality": self.quality,
                "forecasts_good": self.forecasts_good, "max_abs_err": self.max_abs_err,
                "mean_abs_err": self.mean_abs_err, "tolerance": self.tolerance, "timing_us": self.timing_us,
                "problems": self.problems, "rows": [asdict(r) for r in self.rows]}

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame([asdict(r) for r in self.rows],
                            columns=["window", "k", "step", "target", "board", "host", "abs_err", "ok"])


def _timing(us: Iterable[float]) -> dict[str, float] | None:
    vals = [float(v) for v in us]
    if not vals:
        return None
    return {"min": min(vals), "median": float(statistics.median(vals)), "max": max(vals)}


def _finish(rows: list[Row], tol: dict[str, float], us: list[float], problems: list[str],
            quality: dict | None = None) -> Comparison:
    errs = [r.abs_err for r in rows if r.abs_err is not None]
    finite = [e for e in errs if np.isfinite(e)]
    if not rows:
        verdict = "no results"
    else:
        verdict = "agree" if all(r.ok for r in rows) and not problems else "disagree"
    return Comparison(rows=rows, tolerance=tol,
                      max_abs_err=(max(errs) if errs and len(finite) == len(errs) else (float("inf") if errs else None)),
                      mean_abs_err=(float(np.mean(finite)) if finite else None), timing_us=_timing(us),
                      verdict=verdict, problems=problems, quality=quality or {})


def compare(board: Sequence[Result] | Sequence[tuple[int, Result]], ref: Reference, dtype: str | None = None) -> Comparison:
    """Board forecasts against the host's, in data units.

    ``board`` is either self-test results (k maps to ``ref.embedded[k]``, or to test window k when the export
    does not list them) or ``(test window index, result)`` pairs for windows sent with ``P``.
    """
    tol_arr = ref.tolerance(dtype)
    tol = {t: float(v) for t, v in zip(ref.targets, tol_arr)}
    horizon, n_t = ref.y_host.shape[1], ref.y_host.shape[2]
    rows: list[Row] = []
    problems: list[str] = []
    us: list[float] = []
    emb = ref.embedded_for(dtype) if any(isinstance(i, Result) for i in board) else None
    kept = (dtype or ref.dtype) in ref.y_tflm
    # (window index, host forecast in data units or None, result)
    items: list[tuple[int | None, np.ndarray | None, Result]] = []
    for item in board:
        if isinstance(item, Result):
            if emb is not None:
                ok = 0 <= item.k < len(emb.indices)
                idx = emb.indices[item.k] if ok else None
                # The host's run of the same file where the export kept it, else the bundle's host forecast.
                host = (ref.reference_units(idx, dtype) if kept and idx is not None and 0 <= idx < ref.n_windows
                        else (emb.host[item.k] if ok else None))
                items.append((idx, host, item))
                continue
            if ref.embedded:
                idx: int | None = ref.embedded[item.k] if 0 <= item.k < len(ref.embedded) else None
            else:
                idx = item.k
        else:
            idx, item = int(item[0]), item[1]
        host = ref.reference_units(idx, dtype) if idx is not None and 0 <= idx < ref.n_windows else None
        items.append((idx, host, item))
    for idx, host, res in items:
        us.append(res.us)
        if len(res.y) != horizon * n_t:
            problems.append(f"result k={res.k} has {len(res.y)} values, expected {horizon * n_t} "
                            f"(horizon {horizon} x targets {n_t})")
            continue
        if host is None:
            problems.append(f"result k={res.k} names no test window of this run")
            continue
        y = np.asarray(res.y, dtype=np.float64).reshape(horizon, n_t)
        for s in range(horizon):
            for j, name in enumerate(ref.targets):
                err = abs(float(y[s, j]) - float(host[s, j]))
                ok = bool(np.isfinite(err) and err <= tol_arr[j])
                rows.append(Row(idx, res.k, s, name, float(y[s, j]), float(host[s, j]), err, ok))
    ks = {res.k for _, _, res in items if res.k >= 0}
    n_embedded = len(emb.indices) if emb is not None else len(ref.embedded)
    if n_embedded and ks:
        missing = [k for k in range(n_embedded) if k not in ks]
        if missing:
            problems.append(f"no result for embedded window(s) k={', '.join(map(str, missing))}")
    answered = [(idx, np.asarray(res.y, dtype=np.float64).reshape(horizon, n_t)) for idx, host, res in items
                if idx is not None and host is not None and len(res.y) == horizon * n_t]
    return _finish(rows, tol, us, problems, quality=judge_quality(answered, ref))


def judge_quality(answered: Sequence[tuple[int, np.ndarray]], ref: Reference) -> dict:
    """Is what the board forecasts good? Its error against the actual values of the windows it answered,
    beside the host model's and the last value's on the same windows, and whether it answers one constant.

    ``answered``: (test window index, board forecast (horizon, targets) in data units). The verdict is
    "good", "constant" (one value for every window while the actuals move), "worse than last value", or
    "unknown" (no actual values in this export, or no answered window).
    """
    have = [(i, y) for i, y in answered if ref.y_true is not None and 0 <= i < len(ref.y_true)]
    if not have:
        why = ("this export keeps no actual values for its test windows (export again to judge the forecasts)"
               if ref.y_true is None else "no answered window has an actual value")
        return {"verdict": "unknown", "windows": 0, "summary": f"The board's forecasts could not be judged: {why}."}
    idx = np.array([i for i, _ in have])
    board = np.stack([y for _, y in have])
    truth = ref.y_true[idx]
    host = np.stack([ref.host_units(int(i)) for i in idx])

    def mae(y: np.ndarray | None) -> float | None:
        if y is None:
            return None
        ok = np.isfinite(truth) & np.isfinite(y)
        return float(np.abs(y - truth)[ok].mean()) if ok.any() else None

    last = ref.y_last[idx] if ref.y_last is not None and len(ref.y_last) > int(idx.max()) else None
    out = {"windows": int(len(idx)), "board_mae": mae(board), "host_mae": mae(host), "last_value_mae": mae(last)}
    moving = len(idx) >= 2 and bool(np.any(np.ptp(truth, axis=0) > 0))
    constant = moving and bool(np.all(np.ptp(board, axis=0) <= 1e-9 * np.maximum(1.0, np.abs(board).max(axis=0))))
    b, h, lv = out["board_mae"], out["host_mae"], out["last_value_mae"]
    n = f"{len(idx)} window{'s' if len(idx) != 1 else ''}"
    fmt = lambda v: "n/a" if v is None else f"{v:.4g}"
    beside = f" (host model {fmt(h)}, last value {fmt(lv)})"
    if b is None or not np.all(np.isfinite(board)):
        out["verdict"] = "worse than last value"
        out["summary"] = f"The board's forecasts are WRONG: it answered NaN or infinite values on {n}."
    elif constant:
        out["verdict"] = "constant"
        out["summary"] = (f"The board's forecasts are WRONG: it answers {board.reshape(len(idx), -1)[0, 0]:.6g} for every "
                          f"one of {n} while the actual values change; MAE {fmt(b)}{beside}.")
    elif lv is not None and b > lv:
        out["verdict"] = "worse than last value"
        out["summary"] = (f"The board's forecasts are worse than repeating the last value on {n}: MAE {fmt(b)} "
                          f"against the actual values{beside}.")
        if h is not None and h > lv:
            out["summary"] += " The trained model itself loses to the last value on these windows."
    else:
        out["verdict"] = "good"
        out["summary"] = f"The board's forecasts are good on {n}: MAE {fmt(b)} against the actual values{beside}."
    return out


# --- Edge Impulse static-buffer output -----------------------------------------------------------------

@dataclass(frozen=True)
class EiReading:
    """One run of the static-buffer example: its timing (if printed) and its predictions by label."""
    timing: EiTiming | None
    values: dict[str, float]


def ei_readings(records: Iterable[Record]) -> list[EiReading]:
    """Group parsed lines into readings: a Timing line, a Predictions header and the label lines under it."""
    out: list[EiReading] = []
    timing: EiTiming | None = None
    values: dict[str, float] = {}
    in_block = False

    def flush() -> None:
        nonlocal values, in_block
        if values:
            out.append(EiReading(timing, dict(values)))
        values = {}
        in_block = False

    for rec in records:
        if isinstance(rec, EiTiming):
            flush()
            timing = rec
            in_block = True  # the old header form carries the timing and opens the block itself
        elif isinstance(rec, EiPredictionsHeader):
            if values:
                flush()
            in_block = True
        elif isinstance(rec, EiPrediction):
            if values and (not in_block or rec.label in values):
                flush()  # a label seen again is the next run of the loop, even without a header between
            values[rec.label] = rec.value
            in_block = True
        elif isinstance(rec, Other) and not rec.text.strip():
            continue
        else:
            if values:
                flush()
                timing = None
    flush()
    return out


def compare_ei(readings: Sequence[EiReading], ref: Reference, label: str | None = None) -> Comparison:
    """Edge Impulse values (scaled, as the model outputs them) back in data units, matched to the nearest window
    the sketch can hold. A value near none of them is kept in the table, flagged, and makes the verdict disagree."""
    target = ref.targets[0]
    tol_arr = ref.tolerance(ref.ei_dtype or ref.dtype)
    if (ref.ei_dtype or ref.dtype) == "int8" and ref.ei_out_step is not None:
        # Edge Impulse's int8 library adds the last value inside its graph: its output step is a level's.
        tol_arr = ref.ei_out_step * float(CFG["int8_steps"]) + np.abs(ref.scale) * CFG["tolerance_floor"]["float32"]
    # The sketch prints 5 decimals of the scaled value; allow for that rounding on top of the board's own error.
    tol_t = float(max(tol_arr[0], 1e-5 * abs(ref.scale[0])))
    # The sketch (or the emulator's replay) holds the bundle's windows; without that list, any test window.
    emb = None if ref.ei_windows else ref.embedded_for(ref.dtype)
    candidates = list(ref.ei_windows) or (list(emb.indices) if emb is not None else list(range(ref.n_windows)))
    rows: list[Row] = []
    problems: list[str] = []
    us: list[float] = []
    answered: list[tuple[int, np.ndarray]] = []
    for n, reading in enumerate(readings):
        if not reading.values:
            continue
        key = label if label in reading.values else ("value" if "value" in reading.values else next(iter(reading.values)))
        raw = reading.values[key]
        if reading.timing is not None:
            us.append(reading.timing.inference_ms * 1000.0)
        best: tuple[float, int, float, float] | None = None
        for idx in candidates:
            if not 0 <= idx < ref.n_windows:
                continue
            scaled = raw
            if ref.ei_output_is_delta:
                ti = ref.target_input_index[0] if ref.target_input_index else None
                if ti is not None:
                    scaled = raw + float(ref.X[idx, -1, ti])
            board_units = scaled * float(ref.scale[0]) + float(ref.center[0])
            host = float(ref.host_units(idx)[0, 0])
            err = abs(board_units - host)
            if best is None or err < best[0]:
                best = (err, idx, board_units, host)
        if best is None:
            problems.append("the run has no test windows to match Edge Impulse values against")
            break
        err, idx, board_units, host = best
        # For the quality question the sketch's own order says which window a reading is (it runs its
        # windows in turn); nearest-match would flatter a board that answers nonsense.
        order = list(ref.ei_windows) or (list(emb.indices) if emb is not None else [])
        truth_idx = order[n % len(order)] if order else idx
        own = raw
        if ref.ei_output_is_delta and ref.target_input_index and ref.target_input_index[0] is not None \
                and 0 <= truth_idx < ref.n_windows:
            own = raw + float(ref.X[truth_idx, -1, ref.target_input_index[0]])
        answered.append((truth_idx, np.array([[own * float(ref.scale[0]) + float(ref.center[0])]])))
        ok = err <= tol_t
        if ok:
            rows.append(Row(idx, n, 0, target, board_units, host, err, True))
        else:
            rows.append(Row(None, n, 0, target, board_units, None, None, False))
            problems.append(f"Edge Impulse value {raw:g} ({board_units:.6g} in data units) matches no test window: "
                            f"the nearest host forecast is {host:.6g} (window {idx}), off by {err:.3g}")
    return _finish(rows, {target: tol_t}, us, problems, quality=judge_quality(answered, ref))


def parse_transcript(text: str) -> list[Record]:
    """Records from a pasted serial-monitor transcript (any line endings)."""
    return [parse_line(line) for line in text.splitlines() if line.strip()]


def check_ready_against(ready: Ready, ref: Reference | None) -> str | None:
    """A one-line note when the board's ready line differs from the export, for places that show rather than raise."""
    if ref is None:
        return None
    err = mismatch_error(ready, ref.expected)
    return None if err is None else str(err)

