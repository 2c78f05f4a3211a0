"""Talking to the board: find its port, read what it prints, ask it for forecasts, compare them with the host.

Everything here goes through ``serial.serial_for_url``, so a real XIAO on /dev/ttyACM0, the emulator's
pseudo-terminal and a board behind a network bridge (``socket://``, ``rfc2217://``) take the same path,
once ``ports.check_port`` has allowed the port (no other pyserial URL handler is ever reached).
A background thread owns reading; callers only ever wait on it with a deadline, so nothing here can hang
on a silent or vanished board.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import serial
import serial.tools.list_ports

from core.board import weblink
from core.errors import StudioError
from core.board.protocol import (Alert, Done, Err, Expected, Pace, Ready, Record, Result, TextHealth, decode_bytes,
                                 format_p_command, format_r_command, parse_line)
from core.board.ports import CFG, board_error, check_port, disconnected_error, mismatch_error, open_error


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


def open_serial(port: str, baud: int, *, exclusive: bool = True, write_timeout: float | None = None,
                remote: bool = False) -> Any:
    """Open a device path or a pyserial URL that ``check_port`` allows (``remote``: the user is a participant
    on another computer); a StudioError with a fix on any failure."""
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
    port = check_port(port, remote=remote, browser_scheme=weblink.SCHEME)
    if port.startswith(weblink.SCHEME):
        # A board on the participant's computer, held by their browser and relayed to the studio (core/board/weblink.py).
        return weblink.open_link(port, baud)
    kwargs: dict[str, Any] = {"baudrate": baud, "timeout": CFG["read_poll_s"],
                              "write_timeout": CFG["write_timeout_s"] if write_timeout is None else write_timeout}
    if "://" not in port:
        # Exclusive locking is what tells "busy" apart from "free" on POSIX; URL handlers have no such notion.
        kwargs["exclusive"] = exclusive
    try:
        return serial.serial_for_url(port, **kwargs)
    except Exception as exc:  # the OS's, pyserial's, or a handler's own fault (KeyError, TypeError): open_error words each
        raise open_error(port, exc) from None


class Board:
    """One open connection: a reader thread parses lines into records and keeps a bounded, timestamped log.

    ``ready``, ``self_test`` and ``predict`` send a command and wait for its answer, each with a deadline.
    Faults (unplugged, silent, wrong baud rate, a different model) come back as StudioError.
    """

    def __init__(self, port: str, baud: int = CFG["baud"], *, expected: Expected | None = None,
                 log_lines: int = CFG["log_lines"], exclusive: bool = True, remote: bool = False) -> None:
        self.port = port
        self.baud = baud
        self.expected = expected
        self.ready_info: Ready | None = None
        self._ser = open_serial(port, baud, exclusive=exclusive, remote=remote)
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
                    self._fail(disconnected_error(self.name, exc))
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
        shown = line.strip()
        shown = shown if len(shown) <= 160 else f"{shown[:150]}… ({len(shown)} chars)"
        try:
            with self._write_lock:
                # Logged before the bytes leave, so the reader can never log the answer above its command.
                self._add("tx", shown)
                self._ser.write(line.encode("ascii"))
                self._ser.flush()
        except serial.SerialTimeoutException:
            raise StudioError(f"The board on {self.name} is not taking input (a write timed out).",
                              "Press the board's RESET button or re-plug it, then connect again.") from None
        except Exception as exc:
            err = disconnected_error(self.name, exc)
            self._fail(err)
            raise err from None

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
                results.append(self._checked(rec, "the self-test"))
            elif isinstance(rec, Done):
                if rec.n != len(results):
                    # Counted, not guessed: a count unlike the results read (FS DONE n=1000000000000 after
                    # one) is a board or line fault, and the results cannot be trusted to be the self-test's.
                    raise self._fault(f"it reported {rec.n} self-test windows done but sent {len(results)} "
                                      "result(s)")
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
        return self._checked(self._answer(format_p_command(window), "a window (P)", timeout, Result), "a window (P)")

    def push(self, reading: np.ndarray | Sequence[float], timeout: float = CFG["answer_timeout_s"]) -> Result | Err:
        """``R``: one reading (features values, data units) into the board's ring buffer. Returns the forecast
        from the newest full window, or the board's ``NEED`` error record (how many readings are still missing)."""
        rec = self._answer(format_r_command(reading), "a reading (R)", timeout, Result, ok="NEED")
        return rec if isinstance(rec, Err) else self._checked(rec, "a reading (R)")

    def stream(self, reading: np.ndarray | Sequence[float],
               timeout: float = CFG["answer_timeout_s"]) -> tuple[Result | Err, list[Alert]]:
        """``push`` and the ``FS ALERT`` lines the reading raised (printed before its forecast; issue 33)."""
        cursor = self.cursor()
        answer = self.push(reading, timeout)
        return answer, self.alerts(cursor)

    def pace(self, ms: int, timeout: float = CFG["answer_timeout_s"]) -> Pace | None:
        """``W <ms>``: a stream's ms between readings, so the board's gap alarm fires after three (0: the bundle's
        own limit). None from a board older than W (``FS ERR UNKNOWN``): its gap limit stays the bundle's."""
        rec = self._answer(f"W {max(0, int(ms))}", "the pace (W)", timeout, Pace, ok="UNKNOWN")
        return rec if isinstance(rec, Pace) else None

    def alerts(self, since: int = 0) -> list[Alert]:
        """The board's ``FS ALERT`` records after log position ``since`` (band, stuck and gap alarms)."""
        with self._cond:
            return [r for seq, r in self._records if seq > since and isinstance(r, Alert)]

    def _answer(self, line: str, what: str, timeout: float, kind: type, ok: str | None = None) -> Record:
        """Send ``line``, wait for the first ``kind`` record (a forecast: k=-1; a rebooted board never answers: the
        deadline says so); a board error raises, except one with code ``ok``, returned."""
        cursor, since = self.cursor(), self._rx_bytes
        self.send(line)
        deadline = time.monotonic() + timeout
        while True:
            try:
                cursor, rec = self._next(cursor, deadline, since)
            except _WaitTimeout:
                raise self._timeout_error(what, timeout, since) from None
            if isinstance(rec, kind) and (kind is not Result or rec.k == -1):
                return rec
            if isinstance(rec, Err):
                if rec.code == ok:
                    return rec
                raise board_error(rec)

    def _fault(self, detail: str) -> StudioError:
        err = StudioError(f"The board on {self.name} answered against its own ready line: {detail}.",
                          "Its answers were not used. Press the board's RESET button and try again; if it "
                          "happens again, flash the bundle from the Export step again (the firmware or the "
                          "cable is faulty).")
        self._add("error", str(err))
        return err

    def _checked(self, res: Result, what: str) -> Result:
        """A forecast holds horizon x targets finite numbers, as the board's FS READY line said; anything
        else is a fault to report, with or without an export to compare with (issue 35, item 8)."""
        info = self.ready_info
        if info is not None and len(res.y) != info.horizon * info.targets:
            raise self._fault(f"{len(res.y)} value(s) for {what}, where horizon {info.horizon} x targets "
                              f"{info.targets} is {info.horizon * info.targets}")
        bad = [v for v in res.y if not math.isfinite(v)]
        if bad:
            raise self._fault(f"{len(bad)} value(s) for {what} are not numbers ({', '.join(map(str, bad[:3]))})")
        return res

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
    Every Board wait has a deadline, so the thread always ends; ``result``/``error`` are read when ``done``."""

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


