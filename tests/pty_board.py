"""A scripted stand-in for the board on a real pseudo-terminal, for the device tests.

The test side opens the slave path with real pyserial (through core.board); this thread owns the master
side and behaves like firmware: it answers commands, or misbehaves on purpose (garbage, half lines, silence,
wrong-baud noise, being unplugged).
"""
from __future__ import annotations

import os
import select
import threading
import time
from typing import Callable

import numpy as np

from core.board import Reference
from core.board.protocol import Expected, parse_p_command

Handler = Callable[["PtyBoard", str], None]


class PtyBoard:
    def __init__(self, handler: Handler | None = None) -> None:
        self.master, self._slave = os.openpty()
        self.path = os.ttyname(self._slave)
        self.handler = handler
        self.received: list[str] = []
        self._stop = threading.Event()
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def write(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode()
        with self._lock:
            if not self._closed:
                try:
                    os.write(self.master, data)
                except OSError:  # the host side closed mid-write; a real board just loses the bytes too
                    pass

    def _loop(self) -> None:
        buf = b""
        while not self._stop.is_set():
            try:
                r, _, _ = select.select([self.master], [], [], 0.05)
                if not r:
                    continue
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.decode("ascii", "replace").strip()
                self.received.append(text)
                if self.handler is not None and text:
                    self.handler(self, text)

    def unplug(self) -> None:
        """Close the master side: the reader on the slave sees EIO, as with a USB cable pulled."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        # Stop our reader before closing: a closed fd number is soon reused (by the next test's pty), and a
        # reader still selecting on it would steal that board's input.
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=2)
        with self._lock:
            os.close(self.master)
            os.close(self._slave)

    def close(self) -> None:
        self.unplug()


def make_reference(n: int = 6, window: int = 4, features: int = 2, horizon: int = 2, targets: int = 1,
                   embedded: tuple[int, ...] = (1, 3, 4), seed: int = 0) -> Reference:
    """A small run: min-max scaled windows and a host forecast that ``fake_model`` reproduces exactly."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, size=(n, window, features))
    y = np.stack([fake_model(x, horizon, targets) for x in X])
    return Reference(expected=Expected(model="lstm", window=window, features=features, horizon=horizon, targets=targets),
                     targets=tuple(f"t{j}" for j in range(targets)), center=np.full(targets, 10.0),
                     scale=np.full(targets, 20.0), X=X, y_host=y, in_center=np.linspace(-5, 5, features),
                     in_scale=np.linspace(2, 30, features), embedded=embedded)


def fake_model(x_scaled: np.ndarray, horizon: int, targets: int) -> np.ndarray:
    """Stands in for the network: any deterministic function of the scaled window will do."""
    base = float(np.mean(x_scaled[:, 0]))
    return np.array([[base + 0.1 * h + 0.01 * t for t in range(targets)] for h in range(horizon)])


def ready_line(e: Expected, dtype: str = "float32", arena: int = 12000) -> str:
    return (f"FS READY model={e.model} window={e.window} features={e.features} horizon={e.horizon} "
            f"targets={e.targets} dtype={dtype} arena={arena}\n")


def firmware(ref: Reference, *, offset: float = 0.0, us: int = 1500, ready: str | None = None) -> Handler:
    """A handler that speaks the protocol like the studio's firmware, computing ``fake_model`` on the board side.

    ``offset`` is added to every forecast (a board that disagrees); ``ready`` overrides the ready line.
    """
    e = ref.expected

    def out(y_scaled: np.ndarray) -> str:
        y = (y_scaled * ref.scale + ref.center + offset).reshape(-1)
        return ",".join(f"{np.float32(v):.9g}" for v in y)

    def handle(board: PtyBoard, line: str) -> None:
        if line == "I":
            board.write(ready or ready_line(e))
        elif line == "T":
            for k, idx in enumerate(ref.embedded):
                board.write(f"FS RESULT k={k} us={us + k} y={out(fake_model(ref.X[idx], e.horizon, e.targets))}\n")
            board.write(f"FS DONE n={len(ref.embedded)}\n")
        elif line.startswith("P "):
            vals = parse_p_command(line).astype(np.float64)
            if vals.size != e.window * e.features:
                board.write(f"FS ERR BADLEN expected {e.window * e.features} values, got {vals.size}\n")
                return
            x = (vals.reshape(e.window, e.features) - ref.in_center) / ref.in_scale
            board.write(f"FS RESULT k=-1 us={us} y={out(fake_model(x, e.horizon, e.targets))}\n")
        else:
            board.write(f"FS ERR UNKNOWN {line[:20]}\n")

    return handle


def uart_garble(data: bytes, tx_baud: int, rx_baud: int) -> bytes:
    """What a UART receiving at ``rx_baud`` makes of ``data`` sent at ``tx_baud`` (8N1, mid-bit sampling).

    The wrong-baud test uses this rather than random bytes, so the detector is tested on what a mismatched
    baud rate really produces.
    """
    bits: list[int] = [1] * 10
    for b in data:
        bits += [0] + [(b >> i) & 1 for i in range(8)] + [1]
    bits += [1] * 20
    total = len(bits) / tx_baud

    def level(t: float) -> int:
        i = int(t * tx_baud)
        return bits[i] if i < len(bits) else 1

    out = bytearray()
    t, step, bit = 0.0, 1 / (16 * rx_baud), 1 / rx_baud
    while t < total:
        if level(t) == 0:
            value = sum(level(t + (1.5 + i) * bit) << i for i in range(8))
            out.append(value)
            t += 10 * bit
        else:
            t += step
    return bytes(out)


# Every caller waits for something that does happen; the deadline only bounds a failure, so it is never
# shorter than this, however short the caller's (a loaded laptop can be 50x slower than an idle one).
MIN_WAIT_S = 60.0


def wait_until(cond: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + max(timeout, MIN_WAIT_S)
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()
