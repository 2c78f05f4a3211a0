"""A stand-in XIAO ESP32S3 on a pseudo-terminal, so the Device step works without hardware.

The emulator loads the same `BundleSpec` the firmware bundle is rendered from (the export's
own .tflite bytes, scaler constants, embedded test windows), runs the model on the TFLM
runtime (the kernels the board runs), and speaks the firmware's protocol byte for byte:
`ProtocolEngine` mirrors `firmware/forecast_studio/fs_protocol.cpp` (same parsing rules,
same float32 scaling, same `%.7g` formatting), and both pass the same golden transcripts.

mode="edge-impulse" replays the Edge Impulse static-buffer example instead: it ignores
input and prints `Timing: ...`, `Predictions:`, `  value: ...` for the embedded windows.
"""
from __future__ import annotations

import dataclasses
import errno
import os
import re
import select
import threading
import time
import tty
from typing import Callable

import numpy as np

from core.alarms import GAP_READINGS, Watch
from core.errors import StudioError
from core.firmware import BundleSpec, load_bundle_spec
from core.logscale import exp_f32, log_f32

MODES = ("protocol", "edge-impulse")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def parse_number(text: str) -> np.float32 | None:
    """Accepts exactly what fs::ParseNumber accepts; the value is rounded once from double."""
    if len(text) >= 64 or not _NUMBER.fullmatch(text):
        return None
    with np.errstate(over="ignore"):
        value = np.float32(float(text))
    return value if np.isfinite(value) else None


class TflmRunner:
    """The bundle's model on the TFLM runtime, with the firmware's int8 (de)quantisation."""

    def __init__(self, spec: BundleSpec) -> None:
        from tflite_micro.python.tflite_micro import runtime

        try:
            self._interp = runtime.Interpreter.from_bytes(spec.model_bytes, arena_size=spec.arena_bytes)
        except Exception as err:  # TFLM raises RuntimeError with its own text
            raise StudioError(f"The bundle's model does not start on TFLM with a {spec.arena_bytes}-byte arena ({err}).",
                              "Export the run again.") from err
        self._in = self._interp.get_input_details(0)
        self._out = self._interp.get_output_details(0)
        self._shape = tuple(self._in["shape"])

    @staticmethod
    def _qparams(details) -> tuple[np.float32, int]:
        q = details["quantization_parameters"]
        return np.float32(q["scales"][0]), int(q["zero_points"][0])

    def __call__(self, x_scaled: np.ndarray) -> tuple[np.ndarray, int]:
        """x_scaled: float32 (window*features,) -> (float32 outputs, inference microseconds)."""
        x = np.asarray(x_scaled, dtype=np.float32).reshape(self._shape)
        if self._in["dtype"] == np.int8:
            scale, zero = self._qparams(self._in)
            r = x / scale
            # Round half away from zero in float32, as fs::QuantizeInt8 does.
            q = np.trunc(np.where(r >= 0, r + np.float32(0.5), r - np.float32(0.5))).astype(np.int64) + zero
            x = np.clip(q, -128, 127).astype(np.int8)
        # Each window is independent: the fused LSTM op keeps state between invokes.
        self._interp.reset()
        self._interp.set_input(x, 0)
        start = time.perf_counter_ns()
        self._interp.invoke()
        micros = (time.perf_counter_ns() - start) // 1000
        y = np.asarray(self._interp.get_output(0)).reshape(-1)
        if self._out["dtype"] == np.int8:
            scale, zero = self._qparams(self._out)
            y = (y.astype(np.int32) - zero).astype(np.float32) * scale
        return y.astype(np.float32), int(micros)


def make_runner(spec: BundleSpec):
    """The bundle's model as the firmware runs it: one invoke per window, or the step loop (core.steploop)."""
    if spec.form == "step":
        from core.steploop import StepRunner

        return StepRunner(spec)
    return TflmRunner(spec)


class ProtocolEngine:
    """fs_protocol.cpp in Python: bytes in, answer lines out (without newlines)."""

    def __init__(self, spec: BundleSpec, model: Callable[[np.ndarray], tuple[np.ndarray, int]]) -> None:
        self.spec = spec
        self.model = model
        self._line = bytearray()
        self._overlong = False
        self._non_ascii = False
        # The last window of pushed readings (R), data units; fs_protocol.cpp's ring buffer.
        self._ring = np.zeros((spec.window, spec.features), np.float32)
        self._ring_count = 0
        self._ring_next = 0
        # fs::Protocol::SetWatch: adaptive bands and alarms over the R stream (core.alarms, issue 33).
        self.watch = Watch(spec.watch) if spec.watch is not None else None

    def tick(self, now_ms: int) -> list[str]:
        """fs::Protocol::Tick: the board's millis(); the gap alert once readings stop coming."""
        return self.watch.tick(now_ms) if self.watch is not None else []

    def ready_line(self) -> str:
        s = self.spec
        return (f"FS READY model={s.model_name} window={s.window} features={s.features} horizon={s.horizon} "
                f"targets={s.targets} dtype={s.dtype} arena={s.arena_bytes}")

    def feed(self, data: bytes) -> list[str]:
        out: list[str] = []
        for byte in data:
            if byte == 0x0A:
                out.extend(self._handle_line())
                self._line.clear()
                self._overlong = self._non_ascii = False
            elif byte == 0x0D:
                continue
            elif byte >= 0x80 or (byte < 0x20 and byte != 0x09):
                self._non_ascii = True
            elif len(self._line) + 1 >= self.spec.line_max:
                self._overlong = True
            else:
                self._line.append(byte)
        return out

    def _handle_line(self) -> list[str]:
        if self._overlong:
            return [f"FS ERR PARSE line longer than {self.spec.line_max - 1} bytes"]
        if self._non_ascii:
            return ["FS ERR PARSE line has a byte that is not printable ASCII"]
        line = self._line.decode("ascii").strip(" \t")
        if not line:
            return []
        if line == "I":
            return [self.ready_line()]
        if line == "T":
            return self._self_test()
        if line[0] == "P" and (len(line) == 1 or line[1] in " \t"):
            return self._predict(line[1:])
        if line[0] == "R" and (len(line) == 1 or line[1] in " \t"):
            return self._push_line(line[1:])
        if line[0] == "W" and (len(line) == 1 or line[1] in " \t"):
            return [self._pace(line[1:])]
        return ["FS ERR UNKNOWN unknown command, use I, T, P v1,v2,..., R v1,v2,... or W ms"]

    def _pace(self, args: str) -> str:
        """fs::Protocol::Pace: ``W <ms>``, a whole number of milliseconds with at most 9 digits."""
        text = args.lstrip(" \t")
        if not (0 < len(text) <= 9 and all("0" <= c <= "9" for c in text)):
            return "FS ERR PARSE pace must be a whole number of milliseconds, 0 to 999999999"
        ms = int(text)
        if self.watch is None:  # no watch: the answer only (the board's Tick does nothing without one)
            return f"FS PACE ms={ms} limit={ms * GAP_READINGS if ms > 0 else 0}"
        return self.watch.pace(ms)

    def _self_test(self) -> list[str]:
        out = []
        for k, window in enumerate(self.spec.windows):
            line = self._run(window.reshape(-1), k)
            out.append(line)
            if not line.startswith("FS RESULT"):
                return out
        out.append(f"FS DONE n={len(self.spec.windows)}")
        return out

    @staticmethod
    def _values(args: str) -> list | str:
        """fs::Protocol::ParseValues: the numbers of "v1,v2,...", or the FS ERR PARSE line."""
        args = args.lstrip(" \t")
        values = []
        if args:
            for i, token in enumerate(args.split(",")):
                value = parse_number(token.strip(" \t"))
                if value is None:
                    return f"FS ERR PARSE value {i + 1} is not a number"
                values.append(value)
        return values

    def _push_line(self, args: str) -> list[str]:
        values = self._values(args)
        if isinstance(values, str):
            return [values]
        if len(values) != self.spec.features:
            return [f"FS ERR BADLEN expected {self.spec.features} values per reading (one per feature), got {len(values)}"]
        return self.push(np.array(values, dtype=np.float32))

    def push(self, reading: np.ndarray) -> list[str]:
        """fs::Protocol::Push: one reading into the ring; the forecast from the newest full window."""
        s = self.spec
        reading = np.asarray(reading, np.float32).reshape(s.features)
        bad = np.flatnonzero(~np.isfinite(reading))
        if bad.size:
            return [f"FS ERR PARSE reading value {bad[0] + 1} is not a finite number"]
        refused = self._log_refusal(reading, "reading value")
        if refused:  # not stored, not watched, like a NaN
            return [refused]
        out = self.watch.reading(reading) if self.watch is not None else []
        self._ring[self._ring_next] = reading
        self._ring_next = (self._ring_next + 1) % s.window
        self._ring_count = min(s.window, self._ring_count + 1)
        if self._ring_count < s.window:
            need = s.window - self._ring_count
            if self.watch is not None:
                self.watch.no_forecast()
            return out + [f"FS ERR NEED {need} more reading{'' if need == 1 else 's'} needed before the first "
                          f"forecast (window {s.window})"]
        window = np.roll(self._ring, -self._ring_next, axis=0)  # oldest first
        line = self._run(window.reshape(-1), -1)
        if self.watch is not None:
            if line.startswith("FS RESULT"):
                self.watch.forecast(self._last_y)
            else:
                self.watch.no_forecast()
        return out + [line]

    def _predict(self, args: str) -> list[str]:
        values = self._values(args)
        if isinstance(values, str):
            return [values]
        if len(values) != self.spec.n_values:
            return [f"FS ERR BADLEN expected {self.spec.n_values} values, got {len(values)}"]
        raw = np.array(values, dtype=np.float32)
        return [self._log_refusal(raw, "value") or self._run(raw, -1)]

    def _log_refusal(self, values: np.ndarray, what: str) -> str | None:
        """fs::Protocol::LogValuesPositive: the FS ERR PARSE line for the first value at or below 0 in a log column."""
        if not any(self.spec.input_log):
            return None
        log = np.asarray(self.spec.input_log, bool)[np.arange(values.size) % self.spec.features]
        bad = np.flatnonzero(log & ~(values.reshape(-1) > 0))
        return f"FS ERR PARSE {what} {bad[0] + 1} must be above 0 (the model reads its log)" if bad.size else None

    def _run(self, raw: np.ndarray, k: int) -> str:
        s = self.spec
        cols = np.arange(raw.size) % s.features
        scaled = ((log_inputs(s, raw) - s.input_center[cols]) / s.input_scale[cols]).astype(np.float32)
        try:
            y, micros = self.model(scaled)
        except Exception:  # TFLM's invoke raises on a kernel failure; the board prints INVOKE
            return "FS ERR INVOKE model invoke failed"
        y = add_last_outside(s, y, scaled)
        tcols = np.arange(y.size) % s.targets
        y = (y.astype(np.float32) * s.target_scale[tcols] + s.target_center[tcols]).astype(np.float32)
        if any(s.target_log):  # fs_protocol.cpp: exp after the unscale, before the bands
            y = np.where(np.asarray(s.target_log, bool)[tcols], exp_f32(y), y).astype(np.float32)
        self._last_y = y
        line = f"FS RESULT k={k} us={micros} y=" + ",".join("%.7g" % float(v) for v in y)
        # The bands, computed in float32 exactly as fs_protocol.cpp does: forecast -/+ half-width.
        adaptive = self.watch.half_widths() if self.watch is not None else None
        widths = adaptive if adaptive is not None else s.band_half_width
        for name, half in zip(s.band_levels, widths if widths is not None else ()):
            half = np.asarray(half, dtype=np.float32).reshape(-1)
            line += f" lo{name}=" + ",".join("%.7g" % float(v) for v in (y - half).astype(np.float32))
            line += f" hi{name}=" + ",".join("%.7g" % float(v) for v in (y + half).astype(np.float32))
        return line

    # ------------------------------------------------------------ Edge Impulse replay

    def edge_impulse_block(self, k: int) -> list[str]:
        """The static-buffer example's output for embedded window k: features[] holds the
        window already scaled, and the printed value is the model's scaled output."""
        s = self.spec
        raw = s.windows[k].reshape(-1)
        cols = np.arange(raw.size) % s.features
        scaled = ((raw - s.input_center[cols]) / s.input_scale[cols]).astype(np.float32)
        y, micros = self.model(scaled)
        y = add_last_outside(s, y, scaled)  # the Edge Impulse library's model adds it back itself
        lines = ["Edge Impulse standalone inferencing (Arduino)", "run_classifier returned: 0",
                 f"Timing: DSP 0 ms, inference {micros // 1000} ms, anomaly 0 ms", "Predictions:",
                 "  value: %.5f" % float(y[0])]
        # The sketch's band lines (fs_ei_static_buffer.ino): the value in the target's units -/+ each half-width.
        units = np.float32(np.float32(y[0]) * s.target_scale[0] + s.target_center[0])
        for name, half in zip(s.band_levels, s.band_half_width if s.band_half_width is not None else ()):
            h = np.float32(np.asarray(half, dtype=np.float32).reshape(-1)[0])
            lines.append(f"Band {name}%: {float(np.float32(units - h)):.6g} .. {float(np.float32(units + h)):.6g} "
                         f"({s.target_columns[0]})")
        return lines


def log_inputs(spec, raw: np.ndarray) -> np.ndarray:
    """float32 raw window values with the log columns (fs_protocol.cpp's input_log) taken as their log, as the
    firmware does before Scale."""
    raw = np.asarray(raw, np.float32)
    if not any(spec.input_log):
        return raw
    log = np.asarray(spec.input_log, bool)[np.arange(raw.size) % spec.features].reshape(raw.shape)
    return np.where(log, log_f32(np.where(log, raw, np.float32(1))), raw).astype(np.float32)


def add_last_outside(spec, y: np.ndarray, scaled: np.ndarray) -> np.ndarray:
    """What fs_protocol.cpp does after the model for FS_RESIDUAL_OUTSIDE: add each step's reference to the
    (scaled) change the graph forecast, in float32 and in the firmware's order: the target's scaled input at
    the step's reference row (the last row, or one season before the step), plus (row a - row b) when the
    bundle has drift rows (the change from last value and last season); for a linear reference
    ("change_linear") the fitted linear forecast (core.linear_reference.reference_values)."""
    if not spec.residual_outside:
        return y
    if spec.linear_weights:
        # "change_linear": the fitted linear reference, in the one arithmetic (bias, then row products in double,
        # in row order, rounded once), as fs_protocol.cpp sums it; then added in float32.
        from core.linear_reference import LinearReference, reference_values

        ref = LinearReference.from_lists(spec.linear_weights, spec.linear_bias, spec.targets, spec.horizon, spec.window)
        values = reference_values(ref, scaled.reshape(1, spec.window, spec.features), spec.target_input)
        return (y.reshape(-1).astype(np.float32) + values.reshape(-1)).reshape(y.shape).astype(np.float32)
    window = scaled.reshape(spec.window, spec.features)
    i = np.arange(y.size)
    rows = np.asarray(spec.reference_row_list)[i // spec.targets]
    cols = np.asarray(spec.target_input)[i % spec.targets]
    ref = window[rows, cols].astype(np.float32)
    if spec.drift_rows:
        a, b = spec.drift_rows
        ref = (ref + (window[a, cols] - window[b, cols])).astype(np.float32)
    return (y.reshape(-1).astype(np.float32) + ref).reshape(y.shape).astype(np.float32)


class Emulator:
    """Emulator(export_dir, dtype).start() -> pty path that pyserial opens like a board."""

    def __init__(self, export_dir, dtype: str = "int8", mode: str = "protocol", run_dir=None,
                 ei_interval_s: float = 2.0, clock: Callable[[], int] | None = None,
                 reading_timeout_ms: int | None = None) -> None:
        if mode not in MODES:
            raise StudioError(f"Unknown emulator mode {mode!r}.", "Use protocol or edge-impulse.")
        self.spec = load_bundle_spec(export_dir, dtype, run_dir=run_dir)
        if mode == "edge-impulse" and (any(self.spec.input_log) or any(self.spec.target_log)):
            raise StudioError("The Edge Impulse static-buffer sketch cannot run a multiplicative (log) model: it only "
                              "scales values linearly.", "Use the protocol mode (the offline firmware bundle).")
        if mode == "edge-impulse" and self.spec.linear_weights:
            from core.edge_impulse.client import LINEAR_PROBLEM

            raise StudioError(LINEAR_PROBLEM, "Use the protocol mode (the offline firmware bundle).")
        if mode == "edge-impulse" and self.spec.horizon * self.spec.targets != 1:
            raise StudioError("The Edge Impulse static-buffer output holds one value; this model forecasts "
                              f"{self.spec.horizon * self.spec.targets}.",
                              "Use the protocol mode (the offline firmware bundle) for multi-step or multi-target models.")
        if reading_timeout_ms is not None and self.spec.watch is not None:
            # The bundle's timeout fits the sketch's sensor period; a stream at another pace sets its own.
            self.spec = dataclasses.replace(self.spec, watch=dataclasses.replace(
                self.spec.watch, timeout_ms=max(0, int(reading_timeout_ms))))
        # The board's millis(): a test gives its own clock, so a gap is made by moving it, never by waiting.
        self.clock = clock or (lambda: int(time.monotonic() * 1000))
        self.mode = mode
        self.ei_interval_s = ei_interval_s
        self.engine = ProtocolEngine(self.spec, make_runner(self.spec))
        self.path: str | None = None
        self._master: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        if self._thread is not None:
            return self.path  # already serving
        master, slave = os.openpty()
        # Raw at once: a line discipline in cooked mode would echo our own output back as input.
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        # The slave end stays closed until a host opens it: reads on the master then fail
        # with EIO, which is how the emulator knows when a host connects (see _serve).
        os.close(slave)
        os.set_blocking(master, False)
        self._master = master
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="fs-emulator", daemon=True)
        self._thread.start()
        return self.path

    def stop(self) -> None:
        """Closes the pty: to the host, the board was unplugged."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None
        if self._master is not None:
            try:
                os.close(self._master)
            except OSError:
                pass
        self._master = None

    def __enter__(self) -> "Emulator":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _write(self, lines: list[str], newline: bytes = b"\n") -> None:
        data = b"".join(line.encode("ascii") + newline for line in lines)
        deadline = time.monotonic() + 1.0
        while data and not self._stop.is_set():
            try:
                n = os.write(self._master, data)
                data = data[n:]
            except BlockingIOError:
                # Nobody is reading and the pty buffer is full: a board's USB drops output
                # the same way, so give up on this output after a second.
                if time.monotonic() > deadline:
                    return
                select.select([], [self._master], [], 0.05)
            except OSError as err:
                if err.errno in (errno.EIO, errno.EBADF):
                    return
                raise

    def _serve(self) -> None:
        """Reads the host's bytes and answers. A real board prints its ready line at boot,
        long before a host opens the port, and pyserial flushes the input on open; so the
        emulator "boots" when a host connects: the first moment reads stop failing."""
        connected = False
        k = 0  # edge-impulse: the embedded window printed next
        next_ei = 0.0
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.1)
            data = b""
            if ready:
                try:
                    data = os.read(self._master, 65536)
                except BlockingIOError:
                    continue
                except OSError as err:
                    if err.errno != errno.EIO:
                        return  # the pty itself is gone
                    connected = False  # no host has the port open
                    self._stop.wait(0.05)
                    continue
            if not connected:
                connected = True
                next_ei = 0.0
                if self.mode == "protocol":
                    self._write([self.engine.ready_line()])
            if self.mode == "edge-impulse":
                # The static-buffer sketch never reads serial; input is drained and ignored.
                if time.monotonic() >= next_ei:
                    # The example prints with "\r\n" (ei_printf), so the replay does too.
                    self._write(self.engine.edge_impulse_block(k), newline=b"\r\n")
                    k = (k + 1) % len(self.spec.windows)
                    next_ei = time.monotonic() + self.ei_interval_s
                continue
            lines = self.engine.tick(self.clock())
            if data:
                lines += self.engine.feed(data)
            if lines:
                self._write(lines)
