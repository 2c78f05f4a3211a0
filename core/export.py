"""Export: a trained run -> TFLite float32 and int8 files, proven on the TensorFlow Lite Micro runtime.

``export_run(run, out_dir)`` builds the batch-1 export model (``core.models.build_tf_keras``: LSTM as
the fused UNIDIRECTIONAL_SEQUENCE_LSTM op, GRU and SimpleRNN unrolled, the residual add in the
graph), converts it in a child process (``core.export_worker``: a converter crash must not take the
studio down), and then runs the run's test windows through the TFLM kernels the board uses,
comparing them with the host's predictions in the targets' own units. The arena each model needs is
found by bisection on the same runtime. An op TFLM lacks, or a float32 error above
``DEFAULTS["export"]["float_tolerance"]`` of the target's range, fails the export and nothing is written.

The export directory (written atomically) holds ``model_float32.tflite``, ``model_int8.tflite``,
``windows.npz`` (the verified windows: scaled inputs, host and TFLM outputs, for the firmware bundle
and the emulator) and ``report.json``. The firmware bundle is added afterwards by
``core.firmware.render_bundle(export_dir)``; the page and the CLI call it.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.util
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from core.config import DEFAULTS
from core.errors import StudioError
from core.files import atomic_dir, load_json

ROOT = Path(__file__).resolve().parent.parent
FORMAT_VERSION = 1
DTYPES = ("float32", "int8")
MODEL_FILES = {"float32": "model_float32.tflite", "int8": "model_int8.tflite"}
REPORT = "report.json"
WINDOWS = "windows.npz"

Progress = Callable[[float, str], None]


def _cfg(key: str) -> Any:
    return DEFAULTS["export"][key]


# ----------------------------------------------------------------------------- report


@dataclass
class ExportReport:
    """What ``report.json`` holds (SPEC / ARCHITECTURE shape) plus where it was written."""

    out_dir: str
    model: dict
    model_label: str
    window: int
    features: int
    input_columns: list[str]
    horizon: int
    targets: list[str]
    scaler: dict
    residual: bool
    dtypes: dict[str, dict]
    budget: dict
    warnings: list[str] = field(default_factory=list)
    verified_on: str = "tflite-micro"
    windows_checked: int = 0
    run_dir: str = ""
    seconds: float = 0.0
    created: str = ""
    format_version: int = FORMAT_VERSION
    # Every exported model (and the host model and the baselines) scored against the actual values of
    # the run's test windows, on TFLM (``score_against_truth``); empty in a report written before that.
    accuracy: dict = field(default_factory=dict)
    # How int8 was calibrated and how many test inputs fall outside its input range.
    quantisation: dict = field(default_factory=dict)
    # The model the firmware bundle ships by default, and why (``recommend_bundle``).
    bundle_dtype: str = ""
    bundle_reason: str = ""
    # Which form was exported (core.steploop: "fused", "step", "unrolled"), why, and the forms compared.
    form: str = ""
    form_reason: str = ""
    forms: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        # The per-dtype entries also sit at the top level, as SPEC's report.json shows them.
        for name, entry in self.dtypes.items():
            d[name] = entry
        return _clean(d)

    @classmethod
    def from_dict(cls, d: dict) -> "ExportReport":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})

    def path(self, dtype: str) -> Path:
        return Path(self.out_dir) / self.dtypes[dtype]["path"]

    def summary_lines(self) -> list[str]:
        """A short human summary (the CLI's stdout, the page's caption)."""
        lines = [f"{self.model_label}: window {self.window} x {self.features} features -> "
                 f"{self.horizon} step(s) x {len(self.targets)} target(s) ({', '.join(self.targets)})"]
        for name, e in self.dtypes.items():
            arena = f"arena {e['arena_bytes']:,} B" if e.get("arena_bytes") else "arena not measured"
            lines.append(f"{name:>8}: {e['bytes']:,} B, {arena}, max error {_fmt(e['max_abs_err'])} / mean "
                         f"{_fmt(e['mean_abs_err'])} (target units), ops {', '.join(e['ops'])}")
        for name, b in (self.budget.get("per_dtype") or {}).items():
            lat = b.get("latency_ms")
            if lat is not None:
                where = f", arena in {b['arena_in']}" if b.get("arena_in") else ""
                lines.append(f"{name:>8}: about {lat:,.0f} ms per forecast on the XIAO ESP32S3 (estimate from "
                             f"multiply-adds{where})")
        lines += accuracy_lines(self.accuracy, self.targets)
        if self.quantisation.get("summary"):
            lines.append(f"    int8: {self.quantisation['summary']}")
        dtype, reason = self.recommended()
        if self.form:
            lines.append(f"    form: {self.form} ({self.form_reason})")
        lines.append(f"  bundle: {dtype} ({reason})")
        lines += [f"warning: {w}" for w in self.warnings]
        lines.append(f"verified on {self.verified_on} with {self.windows_checked} test windows; written to {self.out_dir}")
        return lines

    def recommended(self) -> tuple[str, str]:
        """(dtype, reason) the bundle should ship; worked out again for a report written before the choice."""
        if self.bundle_dtype in self.dtypes and self.bundle_reason:
            return self.bundle_dtype, self.bundle_reason
        return recommend_bundle(self.accuracy, list(self.dtypes))


def _fmt(v: Any) -> str:
    return "n/a" if v is None else f"{v:.4g}"


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(float(obj)) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def load_report(export_dir: str | Path) -> ExportReport:
    """Read an export directory's report.json; StudioError when it is not an export."""
    path = Path(export_dir) / REPORT
    if not path.is_file():
        raise StudioError(f"No export at {export_dir} (report.json is missing).",
                          "Export the run first (Export page or `python -m studio export`).")
    d = load_json(path, f"report.json of the export at {export_dir}", "Export the run again.")
    try:
        report = ExportReport.from_dict(d)
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise StudioError(f"The export at {export_dir} is damaged: report.json is unreadable ({e}).",
                          "Export the run again.") from e
    report.out_dir = str(Path(export_dir))
    return report


# ----------------------------------------------------------------------------- scoring against the truth

FORECASTER_LABELS = {"host": "trained model (host)", "float32": "float32 on TFLM", "int8": "int8 on TFLM",
                     "last_value": "last value", "seasonal_naive": "seasonal naive", "mean": "training mean"}
BASELINE_NAMES = ("last_value", "seasonal_naive", "mean")


def _is_constant(y: np.ndarray) -> bool:
    """Every window got the same forecast (per step and target): a saturated or dead model."""
    y = np.asarray(y, dtype=np.float64)
    if len(y) < 2 or not np.all(np.isfinite(y)):
        return False
    span = np.ptp(y, axis=0)
    return bool(np.all(span <= 1e-9 * np.maximum(1.0, np.abs(y).max(axis=0))))


def score_against_truth(y_true: np.ndarray, forecasts: dict[str, np.ndarray], targets: list[str],
                        mase_scale: np.ndarray | None, windows_total: int, source: str) -> dict:
    """Each forecaster (host model, exported models, baselines) scored on the same windows with
    ``core.metrics.score``: overall, per target and per horizon step, and its margin over the best
    baseline. Forecasts and actuals are (n, horizon, n_targets) in the data's units."""
    from core.metrics import score

    key = "mae" if len(targets) == 1 else "mase"
    out: dict[str, dict] = {}
    for name, y in forecasts.items():
        y = np.asarray(y, dtype=np.float64)
        overall = score(y_true, y, mase_scale)
        out[name] = {
            **{k: overall[k] for k in ("mae", "rmse", "mase", "n")},
            "per_target": {t: score(y_true[..., j], y[..., j])["mae"] for j, t in enumerate(targets)},
            "per_step": [score(y_true[:, k], y[:, k])["mae"] for k in range(y.shape[1])],
            "finite": bool(np.all(np.isfinite(y))),
            "constant": _is_constant(y),
        }
    base = {k: out[k][key] for k in BASELINE_NAMES if k in out and out[k][key] is not None}
    best = min(base, key=base.get) if base else None
    for name, entry in out.items():
        m = entry[key]
        if best is None or m is None or name in BASELINE_NAMES:
            entry["margin_pct"] = None
        else:
            b = float(base[best])
            entry["margin_pct"] = (b - m) / b * 100.0 if b > 0 else (0.0 if m == 0 else -100.0)
        lv = out.get("last_value", {}).get(key)
        entry["beats_best_baseline"] = bool(entry["margin_pct"] is not None and entry["margin_pct"] > 0)
        entry["beats_last_value"] = bool(m is not None and lv is not None and m < lv)
    return {"compared_by": key, "best_baseline": best, "windows": int(len(y_true)),
            "windows_total": int(windows_total), "source": source, "forecasters": out}


def recommend_bundle(accuracy: dict, dtypes: list[str]) -> tuple[str, str]:
    """The dtype the firmware bundle ships by default, and a one-line reason.

    int8 only when its test error on TFLM is within ``int8_max_loss`` of float32's and it still beats the
    best baseline; otherwise float32, which the board can always hold when it was exported.
    """
    if "int8" not in dtypes:
        return "float32", "only float32 was exported"
    if "float32" not in dtypes:
        return "int8", "only int8 was exported"
    f = (accuracy or {}).get("forecasters") or {}
    if "int8" not in f or "float32" not in f:
        return "int8", ("this export was written before exported models were scored against the actual values; "
                        "export again to have the bundle's model chosen on its test error")
    key = accuracy.get("compared_by", "mae")
    what = "MAE" if key == "mae" else "MASE"
    i8, f32 = f["int8"].get(key), f["float32"].get(key)
    if i8 is None or not f["int8"].get("finite", True):
        return "float32", "int8 gave no usable forecasts on the test windows"
    if f["int8"].get("constant") and not f["float32"].get("constant"):
        return "float32", f"int8 answers the same forecast for every test window (saturated); float32 test {what} {_fmt(f32)}"
    limit = float(_cfg("int8_max_loss"))
    if f32 is not None and f32 > 0 and i8 > f32 * (1.0 + limit):
        return "float32", (f"int8's test {what} ({_fmt(i8)}) is {(i8 / f32 - 1) * 100:.0f}% worse than float32's "
                           f"({_fmt(f32)}); the limit is {limit:.0%}")
    best = accuracy.get("best_baseline")
    if best and not f["int8"].get("beats_best_baseline"):
        b = f.get(best, {}).get(key)
        return "float32", (f"int8's test {what} ({_fmt(i8)}) does not beat the best baseline "
                           f"({FORECASTER_LABELS.get(best, best)}, {_fmt(b)})")
    rel = "" if not f32 else f", {abs(i8 / f32 - 1) * 100:.1f}% {'better' if i8 <= f32 else 'worse'} than float32's {_fmt(f32)}"
    return "int8", f"int8's test {what} is {_fmt(i8)}{rel}, and it beats the best baseline"


def bundle_choice(export_dir: str | Path) -> tuple[str, str, dict]:
    """(recommended dtype, reason, accuracy) for an export folder, also one whose report.json predates the
    scores or holds only SPEC's minimal fields (it is read as a plain mapping, not as a full ExportReport)."""
    try:
        d = json.loads((Path(export_dir) / REPORT).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise StudioError(f"The export at {export_dir} has no readable report.json ({e}).", "Export the run again.") from e
    d = d if isinstance(d, dict) else {}
    entries = d.get("dtypes") if isinstance(d.get("dtypes"), dict) else {k: d[k] for k in DTYPES if isinstance(d.get(k), dict)}
    dtypes = [k for k in DTYPES if k in entries] or [k for k in DTYPES if (Path(export_dir) / MODEL_FILES[k]).is_file()]
    accuracy = d.get("accuracy") if isinstance(d.get("accuracy"), dict) else {}
    if d.get("bundle_dtype") in dtypes and isinstance(d.get("bundle_reason"), str):
        return d["bundle_dtype"], d["bundle_reason"], accuracy
    dtype, reason = recommend_bundle(accuracy, dtypes)
    return dtype, reason, accuracy


def loses_to_last_value(accuracy: dict, dtype: str) -> bool:
    """True when the exported ``dtype`` model forecasts the test windows worse than repeating the last value."""
    e = ((accuracy or {}).get("forecasters") or {}).get(dtype)
    return bool(e) and "last_value" in accuracy.get("forecasters", {}) and not e.get("beats_last_value")


def accuracy_lines(accuracy: dict, targets: list[str]) -> list[str]:
    """The scores as the CLI prints them: one line per forecaster."""
    f = (accuracy or {}).get("forecasters") or {}
    if not f:
        return ["  test error: not scored (this export predates scoring against the actual values; export again)"]
    key = accuracy.get("compared_by", "mae")
    n, total = accuracy.get("windows"), accuracy.get("windows_total")
    of = f" of {total:,}" if total and total != n else ""
    lines = [f"  test {key.upper()} against the actual values ({n:,}{of} test windows, {', '.join(targets)}):"]
    for name in ("host", "float32", "int8") + BASELINE_NAMES:
        if name in f:
            e = f[name]
            margin = "" if e.get("margin_pct") is None else f"  ({e['margin_pct']:+.1f}% vs best baseline)"
            flag = "  SAME VALUE FOR EVERY WINDOW" if e.get("constant") and name in ("float32", "int8", "host") else ""
            lines.append(f"    {FORECASTER_LABELS.get(name, name):>22}: {_fmt(e.get(key))}{margin}{flag}")
    return lines


# ----------------------------------------------------------------------------- quantisation


def quantize(x: np.ndarray, quant: dict) -> np.ndarray:
    """Float values -> int8 with the tensor's scale and zero point (round half away, then clip)."""
    q = np.round(np.asarray(x, dtype=np.float64) / quant["scale"]) + quant["zero_point"]
    return np.clip(q, -128, 127).astype(np.int8)


def dequantize(q: np.ndarray, quant: dict) -> np.ndarray:
    return ((np.asarray(q, dtype=np.float64) - quant["zero_point"]) * quant["scale"]).astype(np.float32)


# ----------------------------------------------------------------------------- the TFLM runtime


def tflm_available() -> bool:
    """The tflite-micro wheel exists for Linux x86-64 only; elsewhere verification uses TFLite."""
    return importlib.util.find_spec("tflite_micro") is not None


def _worker_env(legacy_keras: bool = False) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if legacy_keras:
        env["TF_USE_LEGACY_KERAS"] = "1"
    # The worker's TensorFlow must not grab a GPU the studio may be training on.
    env.setdefault("CUDA_VISIBLE_DEVICES", "")
    # A converter has no business with the Edge Impulse key (only core.ei_worker gets it, on its pipe).
    env.pop("EI_API_KEY", None)
    return env


class TflmRuntime:
    """The TFLM interpreter in a child process (``core.export_worker tflm``), restarted when it crashes.

    TFLM's allocator segfaults for some too-small arenas instead of raising, and probing arenas is the
    whole point of bisection, so the studio's own process never loads a model into TFLM.
    """

    def __init__(self, model_path: Path) -> None:
        self.model_path = Path(model_path)
        self.crashes = 0
        self._proc: subprocess.Popen | None = None

    def _start(self) -> None:
        self._proc = subprocess.Popen([sys.executable, "-m", "core.export_worker", "tflm"], cwd=ROOT,
                                      env=_worker_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
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


def arena_with_margin(measured: int) -> tuple[int, int]:
    """(reported arena, margin): measured + max(fixed, fraction) margin, rounded up to 16 bytes.

    The measurement is on the x86-64 runtime (8-byte pointers); the ESP32's 4-byte pointers need a
    little less, and the margin covers the arena buffer's alignment and ESP-NN kernel scratch.
    """
    margin = max(int(_cfg("arena_margin_bytes")), int(math.ceil(measured * float(_cfg("arena_margin_fraction")))))
    total = -(-(measured + margin) // 16) * 16
    return total, total - measured


# ----------------------------------------------------------------------------- the run


def _load(run: Any):
    from core.runs import Run, load_run

    if isinstance(run, (str, Path)):
        return load_run(run)
    if not isinstance(run, Run):
        raise StudioError("There is no trained run to export.", "Train a model first (Train page or `python -m studio train`).")
    return run


def _check_run(run: Any, int8: bool) -> None:
    if not run.weights:
        raise StudioError("This run has no trained weights.", "Train the model first (Train page or `python -m studio train`).")
    s = run.samples
    missing = [k for k in ("X_test", "y_host") + (("X_rep",) if int8 else ()) if k not in s or len(s[k]) == 0]
    if missing:
        raise StudioError(f"The run has no {', '.join(missing)} windows to check the export with.",
                          "Train the model again so the run saves its sample windows.")
    spec = run.model_spec
    if s["X_test"].shape[1:] != (spec.window, spec.n_inputs):
        raise StudioError(f"The run's test windows {s['X_test'].shape[1:]} do not fit the model "
                          f"({spec.window}, {spec.n_inputs}).", "Train the model again.")
    for key in ("X_test", "y_host") + (("X_rep",) if int8 else ()):
        if not np.all(np.isfinite(s[key])):
            raise StudioError(f"The run's {key} windows contain NaN or infinite values.",
                              "Fill the gaps on the Data page and train again.")
    # A diverged training leaves NaN weights: the converter would carry them and every check would compare NaNs.
    if not all(np.all(np.isfinite(np.asarray(w, dtype=np.float64))) for w in run.weights):
        raise StudioError("The run's weights contain NaN or infinite values (the training diverged), so there is no "
                          "model to export.", "Train again with a lower learning rate (e.g. 1e-4) or scaled data.")
    from core.numbers import check_finite

    check_finite(run.scaler.center, "The run's scaler center", fix="Train the model again.")
    check_finite(run.scaler.scale, "The run's scaler scale", positive=True, fix="Train the model again.")
    if int8:
        rep = np.asarray(s["X_rep"], dtype=np.float64)
        if float(np.ptp(rep)) <= 1e-12 * max(1.0, float(np.max(np.abs(rep)))):
            raise StudioError("int8 needs varied calibration windows, but every training window holds the same constant "
                              "value, so there is no range to quantise.",
                              "Export float32 only (turn int8 off), or train on data that changes over time.")


def _target_range(run: Any, y_host: np.ndarray) -> np.ndarray:
    """Per target, the span of values the model is judged on (actuals and host forecasts, data units)."""
    targets = list(run.window_spec.targets)
    parts = [y_host.reshape(-1, len(targets))]
    if "y_test" in run.samples and len(run.samples["y_test"]):
        parts.append(run.scaler.inverse(np.asarray(run.samples["y_test"], np.float64), targets).reshape(-1, len(targets)))
    span = np.ptp(np.concatenate(parts), axis=0).astype(np.float64)
    fallback = np.abs(np.asarray(run.scaler.scale)[[list(run.scaler.columns).index(t) for t in targets]])
    return np.where(span > 0, span, np.where(fallback > 0, fallback, 1.0))


# ----------------------------------------------------------------------------- what int8 is calibrated and scored on


@dataclass
class ScoringSet:
    """The windows every exported model is judged on: scaled inputs, and in data units the actuals, the
    host model's forecasts and each baseline's."""

    X: np.ndarray
    y_true: np.ndarray | None
    y_host: np.ndarray
    baselines: dict[str, np.ndarray]
    mase_scale: np.ndarray | None
    total: int
    source: str
    whole: bool = True  # False: an older run's sample windows stand in for the test part


def scoring_set(run: Any) -> ScoringSet:
    """Every test window the run kept (``core.runs._test_part``); for a run saved before that, its sample
    windows, with the last-value baseline read from the windows themselves."""
    from core.runs import test_windows_of

    s = run.samples
    targets = list(run.window_spec.targets)
    X = test_windows_of(s)
    if X is not None and "score_y_true" in s and "score_y_host" in s:
        base = {k[len("score_base_"):]: np.asarray(v, np.float64) for k, v in s.items() if k.startswith("score_base_")}
        scale = np.asarray(s["score_mase_scale"], np.float64) if "score_mase_scale" in s else None
        total = int(s["score_total"]) if "score_total" in s else len(X)
        return ScoringSet(X, np.asarray(s["score_y_true"], np.float64), np.asarray(s["score_y_host"], np.float64),
                          base, scale, total, "every test window" if total == len(X) else "test windows evenly spread")
    X = np.asarray(s["X_test"], np.float32)
    y_host = run.scaler.inverse(np.asarray(s["y_host"], np.float64)[: len(X)], targets)
    y_true = None
    if "y_test" in s and len(s["y_test"]) == len(X):
        y_true = run.scaler.inverse(np.asarray(s["y_test"], np.float64), targets)
    base: dict[str, np.ndarray] = {}
    idx = run.window_spec.target_input_index
    if all(i is not None for i in idx):
        last = run.scaler.inverse(np.asarray(X[:, -1, list(idx)], np.float64), targets)
        base["last_value"] = np.repeat(last[:, None, :], run.model_spec.horizon, axis=1)
    return ScoringSet(X, y_true, y_host, base, None, len(X), "the run's sample test windows (a run saved before "
                      "every test window was kept)", whole=False)


def calibration_windows(run: Any) -> tuple[np.ndarray, dict]:
    """int8 calibration data that covers what the deployed model will see, and a record of it.

    Training windows alone put the input and output ranges at the training minimum and maximum, so a
    series that trends past them (CO2, prices, sensor drift) clips and saturates: measured on weekly CO2,
    every test window gave the same forecast (MAE 13.7-35 ppm against 0.36 in float32). Here the
    calibration also holds the validation windows, and copies of them shifted past the range by the drift
    the validation part showed beyond the training part, plus ``int8_headroom`` of the training range on each
    side (calendar columns, whose range is fixed, are not shifted). Measured: CO2 int8 0.376 vs float32 0.364.
    """
    from core.windows import calendar_columns

    s = run.samples
    n_rep = int(_cfg("rep_windows"))
    train = np.asarray(s["X_rep"], np.float32)
    val = np.asarray(s["X_val"], np.float32) if "X_val" in s and len(s["X_val"]) else np.zeros((0,) + train.shape[1:], np.float32)
    pick = lambda a, k: a[np.unique(np.linspace(0, len(a) - 1, min(len(a), k)).round().astype(int))] if len(a) else a
    base = np.concatenate([pick(train, n_rep * 3 // 4 if len(val) else n_rep), pick(val, n_rep // 4)])
    lo_t, hi_t = train.min(axis=(0, 1)), train.max(axis=(0, 1))
    lo_b, hi_b = base.min(axis=(0, 1)), base.max(axis=(0, 1))
    span = np.where(hi_t - lo_t > 0, hi_t - lo_t, 1.0)
    frac = float(_cfg("int8_headroom"))
    fixed = set(calendar_columns(run.window_spec.calendar))
    moving = np.array([c not in fixed for c in run.window_spec.input_columns], dtype=bool)
    up = np.where(moving, np.maximum(np.maximum(0.0, hi_b - hi_t), frac * span), 0.0).astype(np.float32)
    down = np.where(moving, np.maximum(np.maximum(0.0, lo_t - lo_b), frac * span), 0.0).astype(np.float32)
    copies = pick(base, max(1, n_rep // 4))
    # The windows holding each column's extremes are always shifted too, so the range really reaches them.
    top = base[np.unique(base.max(axis=1).argmax(axis=0))]
    bottom = base[np.unique(base.min(axis=1).argmin(axis=0))]
    rep = np.concatenate([base, np.concatenate([copies, top]) + up,
                          np.concatenate([copies, bottom]) - down]).astype(np.float32)
    record = {
        "scheme": "full-integer int8 (weights and activations), range extended past the training data",
        "calibration_windows": {"training": int(len(base) - min(len(val), n_rep // 4)),
                                "validation": int(min(len(val), n_rep // 4)), "shifted": int(len(rep) - len(base))},
        "headroom_fraction": frac,
        "input_range_scaled": [float(rep.min()), float(rep.max())],
        # One int8 step of a model whose output is a level over the calibrated range of each target (scaled
        # units): the resolution of an int8 library that adds the last value inside its graph (Edge Impulse's).
        "level_output_step_scaled": [float(np.ptp(rep[..., i]) / 255.0) if i is not None else None
                                     for i in run.window_spec.target_input_index],
        "why": ("training windows alone saturate int8 once the data leaves the training range; validation "
                "windows and shifted copies cover the drift the deployed model will see"),
    }
    return rep, record


def residual_outside(spec: Any) -> bool:
    """Whether the int8 model leaves the change-from-last-value add-back to the firmware's float code.

    Inside the int8 graph the sum is an int8 tensor spanning the whole level range, one step of which is
    as large as the error a good model makes (and saturates past the calibrated range): measured on weekly
    CO2, int8 test MAE 0.390 with the add inside against 0.378 outside (float32 0.364); on a steep synthetic
    trend 0.209 against 0.172 (float32 0.142). The graph then outputs only the change, whose range is small.
    """
    return bool(_cfg("int8_residual_outside")) and bool(spec.residual)


def add_last_value(spec: Any, y_scaled: np.ndarray, X_scaled: np.ndarray) -> np.ndarray:
    """The add-back the firmware does for ``residual_outside``: each target's last scaled input (float32)."""
    last = np.asarray(X_scaled, np.float32)[:, -1, list(spec.target_input_index)]
    return (np.asarray(y_scaled, np.float32) + last[:, None, :]).astype(np.float32)


def count_clipped(X: np.ndarray, quant: dict) -> int:
    """How many input values fall outside the int8 input range (they would clip on the board)."""
    q = np.round(np.asarray(X, dtype=np.float64) / quant["scale"]) + quant["zero_point"]
    return int(np.count_nonzero((q < -128) | (q > 127)))


# ----------------------------------------------------------------------------- conversion


def _convert(run: Any, jobdir: Path, int8: bool, progress: Progress, form: str = "") -> dict:
    spec = run.model_spec
    check = min(len(run.samples["X_test"]), int(_cfg("keras2_check_windows")))
    (jobdir / "job.json").write_text(json.dumps({"spec": spec.to_dict(), "int8": bool(int8), "form": form,
                                                 "int8_residual_outside": residual_outside(spec)}))
    np.savez(jobdir / "weights.npz", **{f"w{i}": np.asarray(w, np.float32) for i, w in enumerate(run.weights)})
    np.savez(jobdir / "check.npz", X=np.asarray(run.samples["X_test"][:check], np.float32),
             y=np.asarray(run.samples["y_host"][:check], np.float32))
    if int8:
        np.save(jobdir / "rep.npy", calibration_windows(run)[0], allow_pickle=False)
    progress(0.05, "Converting to TensorFlow Lite" + (" (float32 and int8 side by side)" if int8 else " (float32)"))
    timeout = float(_cfg("convert_timeout_s"))
    dtypes = ["float32", "int8"] if int8 else ["float32"]
    procs: dict[str, subprocess.Popen] = {}
    logs = {d: open(jobdir / f"worker_{d}.log", "wb") for d in dtypes}
    try:
        # Two processes at once: each conversion is mostly single-threaded, and an int8 calibration
        # crash stays in its own process.
        for d in dtypes:
            command = "stepconvert" if form == "step" else "convert"
            procs[d] = subprocess.Popen([sys.executable, "-m", "core.export_worker", command, str(jobdir), d],
                                        cwd=ROOT, env=_worker_env(legacy_keras=True), stdout=logs[d],
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        rcs = {}
        for d, proc in procs.items():
            try:
                rcs[d] = proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise StudioError(f"Converting the model took longer than {timeout:.0f} s and was stopped.",
                                  "Use fewer units, layers or a shorter window; nothing was exported.") from None
    finally:
        # Ctrl-C, a page rerun or a timeout: never leave a converter running behind us.
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for fh in logs.values():
            fh.close()
    status: dict = {}
    for d in dtypes:
        if rcs[d] != 0:
            raise _conversion_error(d, rcs[d], jobdir / f"worker_{d}.log")
        status.update(json.loads((jobdir / f"status_{d}.json").read_text()))
    return status


def _conversion_error(dtype: str, rc: int, log: Path) -> StudioError:
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        what = f"crashed ({name})"
    else:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.startswith("WORKER-ERROR")]
        what = f"failed: {lines[-1][len('WORKER-ERROR '):][:500]}" if lines else f"failed (exit status {rc})"
    fix = ("Export float32 only (turn int8 off); the float32 model converts." if dtype == "int8"
           else "Try another model kind (LSTM, GRU, SimpleRNN or Dense) or fewer units; nothing was exported.")
    return StudioError(f"The TensorFlow Lite converter {what} while making the {dtype} model.", fix)


# ----------------------------------------------------------------------------- verification


def _verify_tflm(model_path: Path, X: np.ndarray, timeout: float) -> tuple[np.ndarray, dict]:
    with TflmRuntime(model_path) as rt:
        arena = find_arena(rt)
        reported, margin = arena_with_margin(arena["measured"])
        out = rt.run(reported, X, timeout=timeout)
        below = arena["measured"] - int(_cfg("arena_check_below_bytes"))
        below_fails = not rt.allocates(below)[0]
        arena.update({"reported": reported, "margin": margin, "below_checked": below,
                      "below_fails": below_fails, "reported_runs": True, "probe_crashes": rt.crashes})
    if not below_fails:
        raise StudioError(f"The arena measurement is unstable: {below:,} bytes allocated although bisection found "
                          f"{arena['measured']:,} bytes to be the least.", "Export again; if it repeats, report it with the run.")
    return out, arena


def _verify_tflite(model_path: Path, X: np.ndarray, timeout: float) -> np.ndarray:
    with tempfile.TemporaryDirectory(prefix="fs-tflite-") as tmp:
        src, dst = Path(tmp) / "in.npy", Path(tmp) / "out.npy"
        np.save(src, np.ascontiguousarray(X), allow_pickle=False)
        try:
            res = subprocess.run([sys.executable, "-m", "core.export_worker", "tflite", str(src), str(dst), str(model_path)],
                                 cwd=ROOT, env=_worker_env(), capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise StudioError("Checking the model on TensorFlow Lite took too long.", "Use a smaller model.") from None
        if res.returncode != 0:
            tail = (res.stderr or "").strip().splitlines()[-1:] or [f"exit {res.returncode}"]
            raise StudioError(f"The exported model failed on TensorFlow Lite's interpreter ({tail[0][:300]}).",
                              "Try another model kind or fewer units; nothing was exported.")
        return np.load(dst, allow_pickle=False)


def _errors(y: np.ndarray, y_host: np.ndarray) -> dict:
    diff = np.abs(y.astype(np.float64) - y_host.astype(np.float64))
    return {"max_abs_err": float(diff.max()) if diff.size else 0.0,
            "mean_abs_err": float(diff.mean()) if diff.size else 0.0,
            "max_abs_err_per_target": diff.reshape(-1, diff.shape[-1]).max(axis=0).tolist() if diff.size else []}


# ----------------------------------------------------------------------------- budget


def _budget(spec: Any, entries: dict[str, dict], form: str = "auto") -> tuple[dict, list[str]]:
    from core import budget as budget_mod

    per, warnings = {}, []
    for name, e in entries.items():
        b = budget_mod.estimate(spec, model_bytes=e["bytes"], arena_bytes=e.get("arena_bytes") or 0, dtype=name, form=form)
        d = b.to_dict() if hasattr(b, "to_dict") else asdict(b)
        per[name] = d
        if d.get("warnings"):
            # Over budget still exports (a bigger board may take it); say what to change first.
            advice = f" First try: {d['advice'][0]}" if d.get("advice") else ""
            warnings.extend(f"{name}: {w}" for w in d["warnings"])
            warnings[-1] += advice
    board = getattr(budget_mod, "XIAO_ESP32S3", None)
    board_d = board.to_dict() if hasattr(board, "to_dict") else (asdict(board) if board is not None else {})
    return {"board": board_d, "per_dtype": per}, warnings


# ----------------------------------------------------------------------------- export


def _guard_out_dir(out_dir: Path, run_dir: Path | None, force: bool = False) -> Path:
    """Refuse to replace a folder that is not an export (core.files.prepare_out_dir, the rule every command
    writing a folder follows): the export swaps the whole directory. Returns the resolved folder."""
    from core.files import prepare_out_dir

    out = out_dir.resolve()
    if run_dir is not None and out == Path(run_dir).resolve():
        raise StudioError("The export folder is the run folder itself.", "Choose another --out folder, e.g. RUN_DIR/export.")
    return prepare_out_dir(out_dir, ("export",), force=force)


def export_run(run: Any, out_dir: str | Path, int8: bool = True, progress: Progress | None = None,
               force: bool = False, form: str = "auto") -> ExportReport:
    """Convert, verify on TFLM, and write the export directory atomically; returns the report.

    ``run``: a ``core.runs.Run`` or its directory. ``progress(fraction, message)`` is called as the
    steps go. ``form``: auto|step|unrolled|fused (``core.steploop.resolve_form``). Raises StudioError (and writes nothing) on any failure a user can act on.
    """
    t0 = time.perf_counter()
    say: Progress = progress or (lambda f, m: None)
    run = _load(run)
    out_dir = _guard_out_dir(Path(out_dir), getattr(run, "run_dir", None), force=force)
    _check_run(run, int8)
    spec = run.model_spec
    from core import steploop

    form, form_reason = steploop.resolve_form(spec, form)
    step_form = form == "step"
    targets = list(run.window_spec.targets)
    # The sample windows (what the bundle, the emulator and the Device step replay) first, then every
    # test window the exported models are scored on against the actual values.
    X_sample = np.asarray(run.samples["X_test"], np.float32)[: int(_cfg("verify_windows"))]
    y_host_scaled = np.asarray(run.samples["y_host"], np.float32)[: len(X_sample)]
    # Unscaled in float64: a target near 1e6 has float32 steps of 0.06, larger than a good model's error.
    y_host = run.scaler.inverse(y_host_scaled.astype(np.float64), targets)
    sset = scoring_set(run)
    separate = sset.whole
    X = np.ascontiguousarray(np.concatenate([X_sample, sset.X]) if separate else X_sample, dtype=np.float32)
    scored = slice(len(X_sample), len(X)) if separate else slice(0, len(X_sample))
    y_host_all = np.concatenate([y_host, sset.y_host]) if separate else y_host
    span = _target_range(run, y_host)
    use_tflm = tflm_available()
    timeout = float(_cfg("verify_timeout_s"))
    warnings: list[str] = []
    if not use_tflm:
        warnings.append("tflite-micro is not installed on this machine (it is published for Linux x86-64 only): the "
                        "models were checked with TensorFlow Lite's interpreter instead, and the arena was not measured.")

    jobdir = Path(tempfile.mkdtemp(prefix="fs-export-"))
    try:
        status = _convert(run, jobdir, int8, say, form)
        if "keras2_max_abs_err_scaled" in status:
            k2 = float(status["keras2_max_abs_err_scaled"])
            if k2 > float(_cfg("float_tolerance")):
                raise StudioError(f"The export model disagrees with the trained model before conversion "
                                  f"(max {k2:.3g} in scaled units).", "Train the run again; its weights do not fit the export graph.")
        entries: dict[str, dict] = {}
        outputs: dict[str, np.ndarray] = {}
        dtypes = ["float32", "int8"] if int8 else ["float32"]

        step_extra: dict[str, dict] = {}

        def check(name: str) -> tuple[np.ndarray, dict | None]:
            info = status[name]
            path = jobdir / MODEL_FILES[name]
            if step_form:
                # The firmware's loop over each window; its output is already dequantized (scaled float).
                y, arena, extra = steploop.verify(path, X, info["step_layout"], timeout, use_tflm)
                step_extra[name] = extra
                return y, arena
            Xin = quantize(X, info["inputs"][0]["quant"]) if name == "int8" else X
            if use_tflm:
                return _verify_tflm(path, Xin, timeout)
            return _verify_tflite(path, Xin, timeout), None

        say(0.35, f"Checking {' and '.join(dtypes)} on the " + ("TFLM runtime (finding the arena)" if use_tflm else
            "TFLite interpreter") + f" and scoring {len(X) - scored.start:,} test windows against the actual values")
        # One runtime process per dtype, side by side (2 cores; each runs its windows single-threaded).
        with ThreadPoolExecutor(max_workers=len(dtypes)) as pool:
            futures = {name: pool.submit(check, name) for name in dtypes}
            results = {name: futures[name].result() for name in dtypes}
        for i, name in enumerate(dtypes):
            info = status[name]
            path = jobdir / MODEL_FILES[name]
            in_q, out_q = info["inputs"][0]["quant"], info["outputs"][0]["quant"]
            raw, arena = results[name]
            raw = raw.reshape(len(X), spec.horizon, spec.n_targets)
            y_scaled = dequantize(raw, out_q) if name == "int8" and not step_form else raw.astype(np.float32)
            outside = name == "int8" and residual_outside(spec)
            if outside:
                y_scaled = add_last_value(spec, y_scaled, X)
            y = run.scaler.inverse(y_scaled.astype(np.float64), targets)
            if name == "float32" and not np.all(np.isfinite(y)):
                raise StudioError("The float32 model gives NaN or infinite forecasts on the board's runtime.",
                                  "Nothing was exported. Train the model again (its weights may have diverged: "
                                  "try a lower learning rate).")
            outputs[name] = y
            err = _errors(y, y_host_all)  # every window run: the samples and the whole scored test part
            entries[name] = {
                "path": MODEL_FILES[name], "bytes": path.stat().st_size, "ops": info["ops"],
                "arena_bytes": arena["reported"] if arena else None,
                "arena_measured_bytes": arena["measured"] if arena else None,
                "arena_margin_bytes": arena["margin"] if arena else None,
                "arena_check": ({"reported_runs": arena["reported_runs"], "below_bytes": arena["below_checked"],
                                 "below_fails": arena["below_fails"], "recorder_bytes": arena["recorded"]} if arena else None),
                **err,
                "error_fraction_of_range": float(np.max(np.asarray(err["max_abs_err_per_target"]) / span)) if len(X) else 0.0,
                "input_quant": in_q if name == "int8" else None,
                "output_quant": out_q if name == "int8" else None,
                "input_shape": info["inputs"][0]["shape"], "output_shape": info["outputs"][0]["shape"],
                "convert_seconds": info.get("convert_s"),
                # The graph outputs the change; the firmware adds the last value (residual_outside).
                "residual_outside": outside,
            }
            if step_form:
                entries[name]["step_layout"] = info["step_layout"]
            say(0.35 + 0.55 * (i + 1) / len(dtypes), f"{name}: max error {_fmt(err['max_abs_err'])} against the host model")
        f_frac = entries["float32"]["error_fraction_of_range"]
        if f_frac > float(_cfg("float_tolerance")):
            raise StudioError(f"The float32 model on the board's runtime differs from the trained model by "
                              f"{entries['float32']['max_abs_err']:.4g} (that is {f_frac:.2e} of the target's range; "
                              f"the limit is {float(_cfg('float_tolerance')):.0e}).",
                              "Nothing was exported. Report this with the run; another model kind usually converts exactly.")
        if int8 and entries["int8"]["error_fraction_of_range"] > float(_cfg("int8_warn_fraction")):
            warnings.append(f"int8 differs from the trained model by up to {entries['int8']['max_abs_err']:.4g} "
                            f"({entries['int8']['error_fraction_of_range']:.1%} of the target's range).")
        accuracy: dict = {}
        if sset.y_true is not None:
            forecasts = {"host": sset.y_host, **{d: outputs[d][scored] for d in dtypes}, **sset.baselines}
            accuracy = score_against_truth(sset.y_true, forecasts, targets, sset.mase_scale, sset.total, sset.source)
        quantisation: dict = {}
        if int8:
            quantisation = dict(calibration_windows(run)[1])
            clipped = count_clipped(X[scored], entries["int8"]["input_quant"])
            quantisation.update({"clipped_inputs": clipped, "test_inputs": int(X[scored].size),
                                 "residual_add": ("in the firmware's float code, outside the int8 graph"
                                                  if residual_outside(spec) else
                                                  "inside the graph" if spec.residual else "none")})
            share = clipped / max(1, X[scored].size)
            quantisation["summary"] = (f"{quantisation['scheme']}; {clipped:,} of {X[scored].size:,} test input values "
                                       f"({share:.2%}) fall outside its input range and clip")
            if clipped:
                warnings.append(f"int8: {clipped:,} test input values ({share:.2%}) fall outside the int8 input range "
                                "and clip on the board.")
        bundle_dtype, bundle_reason = recommend_bundle(accuracy, dtypes)
        if int8 and bundle_dtype != "int8":
            warnings.append(f"the firmware bundle ships float32: {bundle_reason}.")
        if sset.y_true is not None and loses_to_last_value(accuracy, bundle_dtype):
            warnings.append(f"the {bundle_dtype} model forecasts the test windows worse than repeating the last value.")
        say(0.92, "Estimating the device budget")
        budget, budget_warnings = _budget(spec, entries, form)
        warnings += budget_warnings
        forms = steploop.form_report(spec, form, form_reason, entries, step_extra)
        clipped_state = (forms.get("int8_state_clipped") or {}).get("values")
        if clipped_state:
            warnings.append(f"int8 step loop: {clipped_state:,} state values fell outside the int8 state range and clipped "
                            "(a long window grew the LSTM cell state); the float32 bundle avoids it.")

        report = ExportReport(
            out_dir=str(out_dir), model=spec.to_dict(), model_label=spec.label, window=spec.window,
            features=spec.n_inputs, input_columns=list(run.window_spec.input_columns), horizon=spec.horizon,
            targets=targets, scaler=run.scaler.to_dict(), residual=bool(spec.residual), dtypes=entries,
            budget=budget, warnings=warnings, verified_on="tflite-micro" if use_tflm else "tflite-interpreter",
            windows_checked=int(len(X) - scored.start), run_dir=str(getattr(run, "run_dir", "")),
            created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            accuracy=accuracy, quantisation=quantisation, bundle_dtype=bundle_dtype, bundle_reason=bundle_reason,
            form=form, form_reason=form_reason, forms=forms)
        say(0.96, "Writing the export folder")
        with atomic_dir(out_dir) as tmp:
            for name in dtypes:
                shutil.copyfile(jobdir / MODEL_FILES[name], tmp / MODEL_FILES[name])
            n = len(X_sample)
            arrays = {"X": X_sample, "y_host_scaled": y_host_scaled, "y_host": y_host.astype(np.float32)}
            if "y_test" in run.samples:
                arrays["y_true"] = run.scaler.inverse(np.asarray(run.samples["y_test"][:n]), targets).astype(np.float32)
            if "t_test" in run.samples:
                arrays["t"] = np.asarray(run.samples["t_test"][:n])
            for name in BASELINE_NAMES:
                if f"base_{name}" in run.samples:
                    arrays[f"y_base_{name}"] = np.asarray(run.samples[f"base_{name}"][:n], np.float32)
            for name, y in outputs.items():
                arrays[f"y_{name}"] = y[:n].astype(np.float32)
            np.savez(tmp / WINDOWS, **arrays)
            report.seconds = time.perf_counter() - t0
            (tmp / REPORT).write_text(json.dumps(report.to_dict(), indent=2))
        say(1.0, f"Exported in {report.seconds:.1f} s")
        return report
    finally:
        shutil.rmtree(jobdir, ignore_errors=True)
