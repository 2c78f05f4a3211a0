"""The TFLite Micro runtime in a child process, and the arena search on it."""
from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from core.config import DEFAULTS
from core.errors import StudioError

ROOT = Path(__file__).resolve().parent.parent.parent


def _cfg(key: str) -> Any:
    return DEFAULTS["export"][key]


def tflm_available() -> bool:
    """The tflite-micro wheel exists for Linux x86-64 only; elsewhere verification uses TFLite."""
    return importlib.util.find_spec("tflite_micro") is not None


def worker_env(legacy_keras: bool = False) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if legacy_keras:
        env["TF_USE_LEGACY_KERAS"] = "1"
    # The worker's TensorFlow must not grab a GPU the studio may be training on.
    env.setdefault("CUDA_VISIBLE_DEVICES", "")
    # A converter has no business with the Edge Impulse key (only core.edge_impulse.worker gets it, on its pipe).
    env.pop("EI_API_KEY", None)
    return env


class TflmRuntime:
    """The TFLM interpreter in a child process (``core.export.worker tflm``), restarted when it crashes.

    TFLM's allocator segfaults for some too-small arenas instead of raising, and probing arenas is the
    whole point of bisection, so the studio's own process never loads a model into TFLM.
    """

    def __init__(self, model_path: Path) -> None:
        self.model_path = Path(model_path)
        self.crashes = 0
        self._proc: subprocess.Popen | None = None

    def _start(self) -> None:
        self._proc = subprocess.Popen([sys.executable, "-m", "core.export.worker", "tflm"], cwd=ROOT,
                                      env=worker_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, text=True, bufsize=1)
        ok, msg = self._ask(f"load {self.model_path}")
        if not ok:
            raise StudioError(f"The TFLM runtime could not read the model ({msg}).", "Export the run again.")

    def _ask(self, line: str, timeout: float | None = None) -> tuple[bool, str]:
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        timer = None
        if timeout:
            # A hung kernel must not hang the export: kill the server, which reads as a crash.
            timer = threading.Timer(timeout, proc.kill)
            timer.start()
        try:
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
            answer = proc.stdout.readline()
        except (BrokenPipeError, OSError):
            answer = ""
        finally:
            if timer is not None:
                timer.cancel()
        if not answer:  # the server died on this command
            self.crashes += 1
            self.close()
            return False, "crashed"
        answer = answer.strip()
        return answer.startswith("ok"), answer.partition(" ")[2]

    def ask(self, line: str, timeout: float | None = None) -> tuple[bool, str]:
        if self._proc is None or self._proc.poll() is not None:
            self._start()
        return self._ask(line, timeout)

    def allocates(self, arena: int) -> tuple[bool, str]:
        return self.ask(f"alloc {int(arena)}")

    def recorded_bytes(self) -> int | None:
        ok, msg = self.ask("recorded")
        return int(msg) if ok and msg.isdigit() else None

    def run(self, arena: int, X: np.ndarray, timeout: float) -> np.ndarray:
        with tempfile.TemporaryDirectory(prefix="fs-tflm-") as tmp:
            src, dst = Path(tmp) / "in.npy", Path(tmp) / "out.npy"
            np.save(src, np.ascontiguousarray(X), allow_pickle=False)
            ok, msg = self.ask(f"run {int(arena)} {src} {dst}", timeout=timeout)
            if not ok:
                raise StudioError(f"The model failed on the TFLM runtime with a {arena:,}-byte arena ({msg}).",
                                  "This model cannot be trusted on the board; try another model kind or fewer units.")
            return np.load(dst, allow_pickle=False)

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(Exception):
            if proc.poll() is None:
                proc.stdin.write("quit\n")
                proc.stdin.flush()
                proc.wait(2)
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    def __enter__(self) -> "TflmRuntime":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


_MISSING_OP_HINTS = ("Didn't find op", "Failed to get registration", "unsupported", "not supported", "Unsupported")


def find_arena(rt: TflmRuntime) -> dict:
    """Smallest arena (16-byte steps) with which TFLM allocates the model, by bisection.

    Returns ``{"measured": N, "recorded": R}``: N is the smallest size that allocated, R what the
    recording allocator reported at a generous size (the starting hint). Raises StudioError when no
    arena up to ``max_arena_bytes`` works, naming a missing op when that is the reason.
    """
    step = 16
    limit = int(_cfg("max_arena_bytes"))
    size = max(64 * 1024, 10 * rt.model_path.stat().st_size)
    ok, msg = rt.allocates(min(size, limit))
    while not ok and size < limit:
        if any(h in msg for h in _MISSING_OP_HINTS):
            break
        size = min(size * 4, limit)
        ok, msg = rt.allocates(size)
    if not ok:
        if any(h in msg for h in _MISSING_OP_HINTS):
            raise StudioError(f"The board's runtime (TensorFlow Lite Micro) cannot run this model: {msg}.",
                              "Choose LSTM, GRU, SimpleRNN or Dense on the Model page; nothing was exported.")
        raise StudioError(f"The model does not fit even a {limit // (1024 * 1024)} MB arena on the TFLM runtime ({msg}).",
                          "Use fewer units or layers, or a shorter window.")
    recorded = rt.recorded_bytes()
    hi = size
    lo = 0  # invariant: lo fails (0 trivially), hi allocates
    if recorded:
        guess = -(-recorded // step) * step
        ok, _ = rt.allocates(guess)
        if ok:
            hi = guess
            # Start the search just below the recorder's figure: the real need is close to it.
            low = (guess * 3 // 4) // step * step
            ok_low, _ = rt.allocates(low)
            if ok_low:
                hi = low
            else:
                lo = low
        else:
            lo = guess
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        if mid <= lo:
            mid = lo + step
        ok, _ = rt.allocates(mid)
        if ok:
            hi = mid
        else:
            lo = mid
    return {"measured": int(hi), "recorded": int(recorded) if recorded else None}


def arena_words(entry: dict) -> str:
    """One sentence on the arena a bundle declares, from a report entry: the measured need plus the margin, and
    where the margin comes from. The Export page, the bundle's README and model_config.h, and the Device step say
    this same sentence about the same figure (the bundle declares the report's ``arena_bytes`` unchanged)."""
    total, measured, margin = (entry.get(k) for k in ("arena_bytes", "arena_measured_bytes", "arena_margin_bytes"))
    if not total:
        return "The arena was not measured (no TFLM runtime on the machine that exported it)."
    if measured is None or margin is None:
        return f"{int(total):,} B: the export's measurement on TFLM plus its margin."
    return (f"{int(total):,} B: {int(measured):,} B that TFLM needs for this model (the smallest arena that runs it, "
            f"found at export) + {int(margin):,} B margin (the larger of {int(_cfg('arena_margin_bytes')):,} B and "
            f"{float(_cfg('arena_margin_fraction')):.0%}: room for another esp-tflite-micro release's kernels and the "
            "arena's 16-byte alignment; the board's 32-bit pointers need less than the 64-bit measurement).")


def arena_with_margin(measured: int) -> tuple[int, int]:
    """(reported arena, margin): measured + max(fixed, fraction) margin, rounded up to 16 bytes.

    The measurement is on the x86-64 runtime (8-byte pointers); the ESP32's 4-byte pointers need a
    little less, and the margin covers the arena buffer's alignment and ESP-NN kernel scratch.
    """
    margin = max(int(_cfg("arena_margin_bytes")), int(math.ceil(measured * float(_cfg("arena_margin_fraction")))))
    total = -(-(measured + margin) // 16) * 16
    return total, total - measured


