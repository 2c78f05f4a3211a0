"""The export folder: one typed reader and writer of ``report.json`` and the files beside it.

An export folder holds ``model_<dtype>.tflite``, ``windows.npz`` (the verified windows: scaled inputs, host
and TFLM outputs, actuals and baselines) and ``report.json``; later the firmware bundles (zips with a
``bundle.json``) and the Edge Impulse package join it. Every reader (firmware, the Edge Impulse sketch, the
board check, the pages, the command line) opens it through ``ExportFolder``, so the report's older key
names are handled once, in ``ExportFolder.migrate``.
"""
from __future__ import annotations

import json
import re
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.config import DEFAULTS
from core.errors import StudioError
from core.export.accuracy import accuracy_lines, fmt as _fmt, recommend_bundle
from core.files import atomic_write_text, json_safe, load_json
from core.numbers import check_finite

FORMAT_VERSION = 1
DTYPES = ("float32", "int8")
MODEL_FILES = {"float32": "model_float32.tflite", "int8": "model_int8.tflite"}
REPORT = "report.json"
WINDOWS = "windows.npz"
AGAIN = "Export the run again."


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
    # The model the firmware bundle ships, and why: the studio's recommendation (``recommend_bundle``) until a
    # bundle of the other type is made on request (``ExportFolder.record_bundle``); the recommendation stays in
    # ``recommended_dtype`` / ``recommended_reason`` (empty in a report written before the two were apart).
    bundle_dtype: str = ""
    bundle_reason: str = ""
    recommended_dtype: str = ""
    recommended_reason: str = ""
    # Which form was exported (core.steploop: "fused", "step", "unrolled"), why, and the forms compared.
    form: str = ""
    form_reason: str = ""
    forms: dict = field(default_factory=dict)
    # What the Edge Impulse sketch embedded (``core.edge_impulse.sketch.report_entry``); absent until one was made.
    edge_impulse: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        # The per-dtype entries also sit at the top level, as SPEC's report.json shows them.
        for name, entry in self.dtypes.items():
            d[name] = entry
        if not d["edge_impulse"]:
            del d["edge_impulse"]
        return json_safe(d)

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
        dtype, reason = self.shipped()
        if self.form:
            lines.append(f"    form: {self.form} ({self.form_reason})")
        lines.append(f"  bundle: {dtype} ({reason})")
        lines += [f"warning: {w}" for w in self.warnings]
        lines.append(f"verified on {self.verified_on} with {self.windows_checked:,} test windows; written to {self.out_dir}")
        return lines

    def recommended(self) -> tuple[str, str]:
        """(dtype, reason) the studio would ship; worked out again for a report written before the choice."""
        if self.recommended_dtype in self.dtypes and self.recommended_reason:
            return self.recommended_dtype, self.recommended_reason
        if self.bundle_dtype in self.dtypes and self.bundle_reason and not self.recommended_dtype:
            return self.bundle_dtype, self.bundle_reason
        return recommend_bundle(self.accuracy, list(self.dtypes))

    def shipped(self) -> tuple[str, str]:
        """(dtype, reason) of the bundle made last: the recommendation, or the type a person chose instead."""
        if self.bundle_dtype in self.dtypes and self.bundle_reason:
            return self.bundle_dtype, self.bundle_reason
        return self.recommended()


def firmware_model_name(model: Any) -> str | None:
    """The name the firmware prints in its ready line: the report's model (or its name or kind), with
    anything but letters, digits and ``_ . -`` turned into ``_`` so the line stays key=value."""
    if isinstance(model, dict):
        model = model.get("name") or model.get("kind")
    if not model:
        return None
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(model)).strip("_") or None


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, (list, tuple)):
        return len(value)
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class ExportFolder:
    """An export folder on disk, its ``report.json`` read once and migrated to today's keys."""

    def __init__(self, path: str | Path, data: dict) -> None:
        self.path = Path(path)
        self.data = self.migrate(data)

    # ------------------------------------------------------------------ opening and migrating

    @classmethod
    def open(cls, path: str | Path) -> "ExportFolder":
        """StudioError when ``path`` is no export folder or its report is unreadable."""
        path = Path(path)
        rp = path / REPORT
        if not rp.is_file():
            raise StudioError(f"{path} has no report.json, so it is not an export folder.",
                              "Export the run first (Export step, or `python -m studio export RUN --out DIR`).")
        return cls(path, load_json(rp, str(rp), AGAIN))

    @staticmethod
    def migrate(d: dict) -> dict:
        """Today's keys for a report written by any earlier studio (the one place old names are known):
        ``ei`` -> ``edge_impulse``, ``embedded_windows`` -> ``test_windows``, dtype entries both under
        ``dtypes`` and at the top level (SPEC's shape), ``features`` as a list of names -> ``input_columns``,
        ``residual`` and ``target_input_index`` from the model entry."""
        d = dict(d) if isinstance(d, dict) else {}
        if not isinstance(d.get("edge_impulse"), dict) and isinstance(d.get("ei"), dict):
            d["edge_impulse"] = d["ei"]
        d.pop("ei", None)
        if not d.get("test_windows") and d.get("embedded_windows"):
            d["test_windows"] = d["embedded_windows"]
        d.pop("embedded_windows", None)
        entries = d.get("dtypes") if isinstance(d.get("dtypes"), dict) else {}
        entries = {k: v for k, v in entries.items() if isinstance(v, dict)}
        for name in DTYPES:
            if name not in entries and isinstance(d.get(name), dict):
                entries[name] = d[name]
        d["dtypes"] = entries
        if not d.get("input_columns") and isinstance(d.get("features"), list):
            d["input_columns"] = d["features"]
        model = d.get("model") if isinstance(d.get("model"), dict) else {}
        if "residual" not in d and "residual" in model:
            d["residual"] = model["residual"]
        if not d.get("target_input_index") and model.get("target_input_index"):
            d["target_input_index"] = model["target_input_index"]
        ei = d.get("edge_impulse")
        if isinstance(ei, dict) and not ei.get("windows") and ei.get("test_windows"):
            d["edge_impulse"] = {**ei, "windows": ei["test_windows"]}
        return d

    # ------------------------------------------------------------------ what the report says

    def names(self, key: str) -> tuple[str, ...] | None:
        """A list of column names (``targets``, ``input_columns``); None when absent or given as a count."""
        value = self.data.get(key)
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return tuple(value)
        if value is None or isinstance(value, int):
            return None
        raise StudioError(f"The export report's {key} field is neither a list of column names nor a count.", AGAIN)

    @property
    def targets(self) -> tuple[str, ...]:
        return self.names("targets") or ()

    @property
    def input_columns(self) -> tuple[str, ...]:
        return self.names("input_columns") or ()

    def size(self, key: str) -> int | None:
        """``window``, ``features`` or ``horizon`` as a whole number (a list counts its items), or None."""
        return _int_or_none(self.data.get(key))

    @property
    def model(self) -> dict:
        return self.data["model"] if isinstance(self.data.get("model"), dict) else {}

    @property
    def model_label(self) -> str | None:
        label = self.data.get("model_label") or self.model.get("label")
        return str(label) if label else None

    @property
    def model_name(self) -> str | None:
        """The firmware's model name: the report's own, else the firmware rule on its model entry."""
        name = self.data.get("model_name")
        return str(name) if isinstance(name, str) and name else firmware_model_name(self.data.get("model"))

    @property
    def residual(self) -> bool:
        return bool(self.data.get("residual"))

    @property
    def target_input_index(self) -> tuple[int | None, ...]:
        raw = self.data.get("target_input_index") or ()
        try:
            return tuple(None if v is None else int(v) for v in raw)
        except (TypeError, ValueError):
            return ()

    @property
    def scaler(self) -> dict:
        return self.data["scaler"] if isinstance(self.data.get("scaler"), dict) else {}

    def section(self, key: str) -> dict:
        """``budget``, ``accuracy``, ``quantisation`` or ``edge_impulse`` as a dict (empty when absent)."""
        value = self.data.get(key)
        return value if isinstance(value, dict) else {}

    @property
    def edge_impulse(self) -> dict:
        return self.section("edge_impulse")

    @property
    def test_windows(self) -> tuple[int, ...]:
        """Indices of the test windows the firmware bundle embeds, when the report lists them."""
        try:
            return tuple(int(i) for i in (self.data.get("test_windows") or ()))
        except (TypeError, ValueError):
            return ()

    @property
    def run_dir(self) -> Path | None:
        raw = self.data.get("run_dir")
        if not isinstance(raw, str) or not raw:
            return None
        p = Path(raw)
        return p if p.is_absolute() else self.path / p

    @property
    def dtypes(self) -> dict[str, dict]:
        return self.data["dtypes"]

    def entry(self, dtype: str) -> dict:
        """The report's entry for one exported model type; StudioError when it was not exported."""
        entry = self.dtypes.get(dtype)
        if not isinstance(entry, dict):
            raise StudioError(f"The export report has no {dtype} model.",
                              "Export again with that type, or choose the other type for the bundle.")
        return entry

    def model_path(self, dtype: str) -> Path:
        return self.path / Path(self.entry(dtype).get("path") or MODEL_FILES[dtype]).name

    def column_scaler(self, columns, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
        """Per-column center and scale; a column the scaler never saw (calendar sin/cos) passes as is."""
        scaler = self.data.get("scaler")
        if not isinstance(scaler, dict):
            raise StudioError("The export report's scaler is not a scaler.", AGAIN)
        names = list(scaler.get("columns") or [])
        center = check_finite(scaler.get("center", []), "The export report's scaler center", fix=AGAIN).reshape(-1)
        # 0 is tolerated (read as 1, below) for reports written before the scaler refused it; negative is not.
        scale = check_finite(scaler.get("scale", []), "The export report's scaler scale", fix=AGAIN).reshape(-1)
        if scale.size and np.min(scale) < 0:
            raise StudioError("The export report's scaler scale holds a negative value.", AGAIN)
        if len(center) != len(names) or len(scale) != len(names):
            raise StudioError("The export report's scaler has columns, center and scale of different lengths.", AGAIN)
        c = np.zeros(len(columns), dtype=dtype)
        s = np.ones(len(columns), dtype=dtype)
        for i, col in enumerate(columns):
            if col in names:
                c[i] = center[names.index(col)]
                s[i] = scale[names.index(col)] or 1.0
        return c, s

    def column_log(self, columns) -> np.ndarray:
        """Bool per column: held as its log (core.logscale); a report written before the log form has none."""
        log = self.scaler.get("log") if isinstance(self.scaler.get("log"), list) else []
        return np.array([c in log for c in columns], dtype=bool)

    # ------------------------------------------------------------------ the files beside the report

    def windows(self, run_dir: str | Path | None = None, dtype=np.float64) -> tuple[np.ndarray, np.ndarray, Path]:
        """Scaled test windows and the host's scaled forecasts: the export's verified windows.npz (what the
        export checked on TFLM, and what the firmware and the emulator embed), else the run's samples.npz."""
        from core.arrays import load_npz

        candidates = [(self.path / WINDOWS, "X", "y_host_scaled")]
        runs = [Path(run_dir)] if run_dir is not None else []
        if self.run_dir is not None:
            runs.append(self.run_dir)
        candidates += [(r / "samples.npz", "X_test", "y_host") for r in runs]
        candidates.append((self.path / "samples.npz", "X_test", "y_host"))
        for path, xkey, ykey in candidates:
            if not path.is_file():
                continue
            try:
                npz = load_npz(path, fix=AGAIN)
                return np.asarray(npz[xkey], dtype=dtype), np.asarray(npz[ykey], dtype=dtype), path
            except StudioError:
                raise
            except (KeyError, OSError, ValueError) as err:
                raise StudioError(f"{path} lacks readable {xkey}/{ykey} ({err}).", AGAIN) from None
        raise StudioError(f"No test windows for {self.path}: the export has no windows.npz and its run no samples.npz.",
                          "Export the run again, or pass the run directory (it holds samples.npz).")

    def window_arrays(self, keys, n: int, whole: bool = False) -> dict[str, np.ndarray]:
        """Named arrays of windows.npz with one entry per test window (float64), or of any length when ``whole``
        (test_rows); a key absent, or an export without windows.npz, is left out."""
        from core.arrays import load_npz

        path = self.path / WINDOWS
        if not path.is_file():
            return {}
        try:
            arrays = load_npz(path, fix=AGAIN)
        except (StudioError, ValueError, OSError):
            return {}
        out = {k: np.asarray(arrays[k], dtype=np.float64) for k in keys if k in arrays}
        return {k: v for k, v in out.items() if whole or len(v) == n}

    def bundles(self) -> dict[str, dict]:
        """bundle.json from each firmware bundle zip in the folder (what was flashed), by dtype."""
        limit = int(DEFAULTS["device"]["max_bundle_json_bytes"])
        out: dict[str, dict] = {}
        for path in sorted(self.path.glob("*.zip")):
            try:
                with zipfile.ZipFile(path) as zf:
                    names = [n for n in zf.namelist() if n.endswith("/bundle.json") or n == "bundle.json"]
                    if not names or zf.getinfo(names[0]).file_size > limit:
                        continue
                    data = json.loads(zf.read(names[0]).decode("utf-8"))
            except (zipfile.BadZipFile, OSError, ValueError, KeyError, RecursionError):
                continue  # an unrelated or damaged zip (the Edge Impulse library, say) is not a bundle
            if isinstance(data, dict) and isinstance(data.get("dtype"), str):
                out[data["dtype"]] = data
        return out

    # ------------------------------------------------------------------ typed report, and writing

    def report(self) -> ExportReport:
        """The report as an ``ExportReport``; StudioError when it lacks what one needs."""
        known = set(ExportReport.__dataclass_fields__)
        try:
            report = ExportReport(**{**{k: v for k, v in self.data.items() if k in known}, "out_dir": str(self.path)})
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise StudioError(f"The export at {self.path} is damaged: report.json is unreadable ({e}).", AGAIN) from e
        return report

    def record_bundle(self, dtype: str, reason: str) -> bool:
        """Record the type the firmware bundle ships (report.json's ``bundle_dtype`` / ``bundle_reason``),
        keeping the studio's own recommendation beside it; rewrites report.json only when it changes."""
        raw = load_json(self.path / REPORT, str(self.path / REPORT), AGAIN)
        if raw.get("bundle_dtype") == dtype and raw.get("bundle_reason") == reason:
            return False
        if not raw.get("recommended_dtype") and raw.get("bundle_dtype"):
            raw["recommended_dtype"], raw["recommended_reason"] = raw["bundle_dtype"], raw.get("bundle_reason", "")
        raw["bundle_dtype"], raw["bundle_reason"] = dtype, reason
        atomic_write_text(self.path / REPORT, json.dumps(raw, indent=2))
        self.data = self.migrate(raw)
        return True

    def write_edge_impulse(self, entry: dict) -> None:
        """Record the Edge Impulse sketch's entry, rewriting report.json atomically."""
        raw = load_json(self.path / REPORT, str(self.path / REPORT), AGAIN)
        raw.pop("ei", None)
        raw["edge_impulse"] = entry
        atomic_write_text(self.path / REPORT, json.dumps(raw, indent=2))
        self.data = self.migrate(raw)


def load_report(export_dir: str | Path) -> ExportReport:
    """Read an export directory's report.json; StudioError when it is not an export."""
    if not (Path(export_dir) / REPORT).is_file():
        raise StudioError(f"No export at {export_dir} (report.json is missing).",
                          "Export the run first (Export page or `python -m studio export`).")
    return ExportFolder.open(export_dir).report()


def shipped_dtype(export_dir: str | Path) -> str:
    """The model type the folder's bundle ships (report.json's ``bundle_dtype``: the recommendation, or the type
    a person chose), for a report of any age; the recommendation when it names none."""
    folder = ExportFolder.open(export_dir)
    dtypes = [k for k in DTYPES if k in folder.dtypes]
    return folder.data["bundle_dtype"] if folder.data.get("bundle_dtype") in dtypes else bundle_choice(export_dir)[0]


def bundle_choice(export_dir: str | Path) -> tuple[str, str, dict]:
    """(recommended dtype, reason, accuracy) for an export folder, also one whose report.json predates the
    scores or holds only SPEC's minimal fields."""
    folder = ExportFolder.open(export_dir)
    d = folder.data
    dtypes = [k for k in DTYPES if k in folder.dtypes] or [k for k in DTYPES if (folder.path / MODEL_FILES[k]).is_file()]
    accuracy = folder.section("accuracy")
    for key in ("recommended", "bundle"):  # a person's own choice of type is no recommendation
        if d.get(f"{key}_dtype") in dtypes and isinstance(d.get(f"{key}_reason"), str):
            return d[f"{key}_dtype"], d[f"{key}_reason"], accuracy
    dtype, reason = recommend_bundle(accuracy, dtypes)
    return dtype, reason, accuracy
