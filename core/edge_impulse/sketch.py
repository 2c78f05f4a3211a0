"""The Edge Impulse path's last mile: a ready static-buffer sketch beside the Arduino library.

Edge Impulse's own static-buffer example wants one window pasted into ``features[]`` by hand, already
scaled, and prints a scaled value nobody converts back. ``write_package(export_dir, library_zip)``
does both ends: it renders a sketch folder (templates in ``firmware/edge_impulse/``) that includes the
library's ``<project>_inferencing.h``, holds real test windows of the export exactly as the model takes
them (scaled with the run's scaler, time-major, window x features), refuses to compile against a
library of another input length, and prints the example's ``Timing`` / ``Predictions`` / ``value``
block for each window next to the host's forecast in the data's units. The sketch, the library zip
and a README go into one download zip, and ``report.json`` gains an ``edge_impulse`` entry (the
windows' indices, their host forecasts, the target's scaler, whether the residual add-back is inside
the model) that ``core.board.load_reference`` reads to put a printed value back into the data's
units and match it to its window.

The windows are the ones the offline bundle embeds (same source, same evenly spread picks), so the
device emulator's Edge Impulse replay prints values for exactly the windows this sketch holds.
"""
from __future__ import annotations

import ast
import datetime as _dt
import io
import re
import string
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import escape
from core.errors import StudioError
from core.export.folder import ExportFolder
from core.files import atomic_write_bytes

ROOT = Path(__file__).resolve().parent.parent.parent
TEMPLATES = ROOT / "firmware" / "edge_impulse"
SKETCH = "fs_ei_static_buffer"  # the Arduino IDE insists the folder is named after the .ino
PACKAGE_ZIP = "forecast_studio_edge_impulse.zip"
LABEL = "value"  # the label Edge Impulse gives a Regression model's single output
# A library zip is read into memory to find its header; Edge Impulse libraries are a few MB.
MAX_LIBRARY_BYTES = 256 * 1024 * 1024

_HEADER = re.compile(r"^(?:(?P<folder>[^/]+)/)?src/(?P<name>[^/]+)_inferencing\.h$")
_DEFINE = re.compile(r"^\s*#\s*define\s+([A-Za-z_]\w*)\s+(.+?)\s*(?://.*)?$")


# ----------------------------------------------------------------------------- the library zip


@dataclass(frozen=True)
class EiLibrary:
    """What the sketch needs to know about an Edge Impulse Arduino library zip."""

    header: str              # "<project>_inferencing.h", what the sketch includes
    folder: str              # the library's folder in the zip (its name in the Arduino libraries folder)
    frame_size: int | None   # EI_CLASSIFIER_DSP_INPUT_FRAME_SIZE, when model_metadata.h states it
    zip_name: str            # the name the library zip gets inside the download


def _not_a_library(problem: str) -> StudioError:
    return StudioError(problem, "Deploy to Edge Impulse again with the Arduino library target, and use the zip it "
                                "returns as it is (do not re-pack it).")


def _eval_define(name: str, defines: dict[str, str], depth: int = 0) -> int | None:
    """An integer #define, following other defines and * + - ( ) (Edge Impulse writes the frame size as
    ``(EI_CLASSIFIER_RAW_SAMPLE_COUNT * EI_CLASSIFIER_RAW_SAMPLES_PER_FRAME)``). None when it is anything else."""
    if depth > 16 or name not in defines:
        return None
    expr = re.sub(r"\b(\d+)[uUlL]+\b", r"\1", defines[name])
    expr = re.sub(r"\(\s*(?:u?int\d*_t|int|unsigned|size_t)\s*\)", "", expr)  # C casts
    parts = []
    for token in re.findall(r"[A-Za-z_]\w*|\d+|[-+*()]|\S", expr):
        if re.fullmatch(r"[A-Za-z_]\w*", token):
            value = _eval_define(token, defines, depth + 1)
            if value is None:
                return None
            token = str(value)
        elif not re.fullmatch(r"\d+|[-+*()]", token):
            return None
        parts.append(token)
    try:
        tree = ast.parse(" ".join(parts), mode="eval")
    except SyntaxError:
        return None
    allowed = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Mult, ast.Add, ast.Sub, ast.USub, ast.UAdd)
    if not all(isinstance(node, allowed) for node in ast.walk(tree)):
        return None
    value = eval(compile(tree, "<define>", "eval"), {"__builtins__": {}}, {})  # only ints and + - * remain
    return int(value) if isinstance(value, int) else None


def inspect_library(data: bytes) -> EiLibrary:
    """Find ``src/<project>_inferencing.h`` (and the input length, when stated) in an Edge Impulse Arduino
    library zip; StudioError when ``data`` is not a zip or not such a library."""
    if not isinstance(data, (bytes, bytearray)) or not data:
        raise _not_a_library("The Edge Impulse library is empty: no zip was received.")
    if len(data) > MAX_LIBRARY_BYTES:
        raise _not_a_library(f"The Edge Impulse download is {len(data) / 2**20:.0f} MB, far more than an Arduino "
                             "library; it is not one.")
    try:
        with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
            names = z.namelist()
            found = [(m.group("folder") or "", m.group("name")) for m in map(_HEADER.match, names) if m]
            if not found:
                others = sorted(n for n in names if n.endswith("_inferencing.h"))
                where = f" (it has {others[0]}, but not in a src/ folder)" if others else ""
                raise _not_a_library("The Edge Impulse download holds no src/<project>_inferencing.h, so it is not "
                                     f"an Arduino library{where}.")
            # A library zip holds one library; if a repacked one holds more, the shallowest is the library itself.
            folder, name = sorted(found, key=lambda f: (len(f[0]), f[1]))[0]
            prefix = f"{folder}/" if folder else ""
            frame = None
            meta = f"{prefix}src/model-parameters/model_metadata.h"
            if meta in names and z.getinfo(meta).file_size < 4 * 2**20:
                text = z.read(meta).decode("utf-8", errors="replace")
                defines = {m.group(1): m.group(2) for m in map(_DEFINE.match, text.splitlines()) if m}
                frame = _eval_define("EI_CLASSIFIER_DSP_INPUT_FRAME_SIZE", defines)
    except zipfile.BadZipFile:
        raise _not_a_library("The Edge Impulse library is not a zip file.") from None
    header = f"{name}_inferencing.h"
    if not re.fullmatch(r"[A-Za-z0-9_.+-]+", header):
        raise _not_a_library(f"The library's header name {header!r} has characters an #include cannot hold.")
    lib_folder = folder or f"{name}_inferencing"
    return EiLibrary(header=header, folder=lib_folder, frame_size=frame, zip_name=f"{lib_folder}.zip")


# ----------------------------------------------------------------------------- what the sketch holds


@dataclass
class SketchSpec:
    """Everything the sketch and its report entry hold; ``render_files`` reads only this."""

    library: EiLibrary
    model_label: str
    model_name: str
    dtype: str
    window: int
    features: int
    input_columns: tuple[str, ...]
    input_center: np.ndarray  # the scaler constants that turned the data's units into these windows
    input_scale: np.ndarray
    target: str
    scaler_kind: str
    target_center: float
    target_scale: float
    residual: bool
    windows: np.ndarray       # float32 (n, window, features), scaled: the model's own input
    host_scaled: np.ndarray   # float64 (n,), the host's forecast as the model prints it
    host_units: np.ndarray    # float64 (n,), the same in the target's units
    test_indices: tuple[int, ...]
    # Calibrated bands (core/intervals.py): level names ("80") and half-widths in the target's units; the
    # sketch prints the printed value's band in the target's units. Empty for a run from before bands.
    band_levels: tuple[str, ...] = ()
    band_half_width: tuple[float, ...] = ()

    @property
    def n_values(self) -> int:
        return self.window * self.features

    @property
    def count(self) -> int:
        return len(self.test_indices)


def load_sketch_spec(export_dir: str | Path, library: EiLibrary, dtype: str = "float32",
                     n_windows: int | None = None) -> SketchSpec:
    """The sketch's windows and constants from an export folder, for the library ``library``."""
    # The offline bundle's own reader and pick count, so this sketch and the bundle (and the emulator's replay
    # of it) hold the same windows and the Device step matches either against the same list.
    from core.firmware import DEFAULT_WINDOWS

    folder = ExportFolder.open(export_dir)
    report = folder.data
    targets = folder.names("targets")
    horizon = folder.size("horizon") or 1
    if targets is None or len(targets) != 1 or horizon != 1:
        raise StudioError("The Edge Impulse sketch prints one value per window, and this export forecasts "
                          f"{horizon} step(s) of {len(targets) if targets is not None else '?'} "
                          "target(s).", "Use the offline firmware bundle for multi-step or multi-target models.")
    X, y_host, source = folder.windows(None, np.float32)
    if X.ndim != 3 or len(X) == 0:
        raise StudioError(f"{source.name} holds no test windows for the sketch.", "Export the run again.")
    if y_host.reshape(len(y_host), -1).shape != (len(X), 1):
        raise StudioError(f"{source.name} has host forecasts of shape {y_host.shape} for {len(X)} windows; the sketch "
                          "needs one value per window.", "Export the run again.")
    window, features = int(X.shape[1]), int(X.shape[2])
    if int(report.get("window") or window) != window:
        raise StudioError(f"The report's window ({report.get('window')}) differs from its test windows' ({window}).",
                          "Export the run again.")
    columns = folder.input_columns if len(folder.input_columns) == features \
        else tuple(f"input_{i}" for i in range(features))
    if library.frame_size is not None and library.frame_size != window * features:
        raise StudioError(
            f"The Edge Impulse library takes {library.frame_size} input values, but this export's windows hold "
            f"{window} x {features} = {window * features}.",
            "The library was built from another model: deploy this run to Edge Impulse again.")
    from core.edge_impulse.client import check_not_linear

    check_not_linear(str(folder.model.get("target_form") or ""))
    scaler = folder.scaler
    if folder.column_log(columns).any() or folder.column_log((str(targets[0]),)).any():
        raise StudioError("This export's model reads its target as log(value) (the multiplicative form), and the "
                          "Edge Impulse sketch only scales values linearly.",
                          "Use the offline firmware bundle, which takes the log and exp on the board, or train without "
                          "the multiplicative (log) target for Edge Impulse.")
    t_c, t_s = folder.column_scaler((str(targets[0]),), np.float32)
    in_c, in_s = folder.column_scaler(columns, np.float32)
    count = max(1, min(int(n_windows or DEFAULT_WINDOWS), len(X)))
    picks = tuple(int(i) for i in np.linspace(0, len(X) - 1, count).round().astype(int))
    host_scaled = y_host.reshape(len(X))[list(picks)].astype(np.float64)
    name = folder.model_name or "model"
    return SketchSpec(
        library=library, model_label=folder.model_label or name, model_name=name, dtype=dtype, window=window,
        features=features, input_columns=columns, input_center=np.asarray(in_c, np.float64),
        input_scale=np.asarray(in_s, np.float64), target=str(targets[0]),
        scaler_kind=str(scaler.get("kind") or "none"), target_center=float(t_c[0]), target_scale=float(t_s[0]),
        residual=folder.residual,
        windows=np.ascontiguousarray(X[list(picks)], dtype=np.float32), host_scaled=host_scaled,
        host_units=host_scaled * float(t_s[0]) + float(t_c[0]), test_indices=picks, **_bands(folder))


def _bands(folder: ExportFolder) -> dict:
    from core.intervals import for_export, half_widths

    bands = half_widths(for_export(folder), 1, 1)
    levels = tuple(sorted((k for k, hw in bands.items() if np.isfinite(hw[0, 0])), key=float))
    return {"band_levels": levels, "band_half_width": tuple(float(bands[k][0, 0]) for k in levels)}


def band_text(spec: SketchSpec, value_scaled: float, level: int) -> str:
    """What the sketch prints for band ``level`` around a printed (scaled) value, as the emulator replays it."""
    y = np.float32(np.float32(value_scaled) * np.float32(spec.target_scale) + np.float32(spec.target_center))
    half = np.float32(spec.band_half_width[level])
    return (f"Band {spec.band_levels[level]}%: {float(np.float32(y - half)):.6g} .. {float(np.float32(y + half)):.6g} "
            f"({spec.target})")


def _input_comment(columns, center, scale) -> str:
    def shifted(m: float) -> str:
        return f"x + {_num(-m)}" if m < 0 else f"x - {_num(m)}"

    return "\n// ".join(f"  {_comment_safe(c)}: ({shifted(m)}) / {_num(s)}" for c, m, s in zip(columns, center, scale))


# ----------------------------------------------------------------------------- rendering


def _num(v: float) -> str:
    return "%.7g" % float(v)


def _c_float(v: float) -> str:
    """A float32 as C text that reads back bit-identical (9 significant digits)."""
    text = "%.9g" % float(np.float32(v))
    if not re.search(r"[.eEn]", text):
        text += ".0"
    return text + "f"


# A user's text in generated code goes through core.escape, one function per language.
_c_string = escape.c_string
_comment_safe = escape.c_comment


def to_units(spec: SketchSpec, value: str = "value") -> str:
    """The formula that turns the printed (scaled) value into the target's units, as text."""
    sign = "-" if spec.target_center < 0 else "+"
    return f"{spec.target} = {value} * {_num(spec.target_scale)} {sign} {_num(abs(spec.target_center))}"


def host_text(spec: SketchSpec, k: int) -> str:
    """What the sketch prints after ``Host: `` for window k (and the emulator's replay too)."""
    return f"{escape.serial_text(spec.target)}={_num(spec.host_units[k])}"


def _template(name: str, **values) -> str:
    return string.Template((TEMPLATES / name).read_text(encoding="utf-8")).substitute(**values)


def render_files(spec: SketchSpec) -> dict[str, str]:
    """The sketch folder's files (name -> text)."""
    blocks = []
    for k, idx in enumerate(spec.test_indices):
        values = [_c_float(v) for v in spec.windows[k].reshape(-1)]
        per_line = max(1, min(spec.features, 8))
        rows = [", ".join(values[i:i + per_line]) for i in range(0, len(values), per_line)]
        blocks.append(f"    // Window {k + 1} of {spec.count}: studio test window {idx}. "
                      f"Host: {_comment_safe(host_text(spec, k))} "
                      f"(the model should print value: {spec.host_scaled[k]:.5f})\n"
                      + ",\n".join("    " + r for r in rows))
    common = dict(count=spec.count, window=spec.window, features=spec.features, n_values=spec.n_values,
                  target=_comment_safe(spec.target), dtype=spec.dtype)
    if spec.band_levels:
        band_block = "\n".join([
            "// Calibrated prediction bands (split conformal on the validation part), half-widths in the target's",
            "// units: the sketch prints \"Band <level>%: <low> .. <high> (<target>)\" after each prediction.",
            f"#define FS_EI_BAND_LEVELS {len(spec.band_levels)}",
            f"#define FS_EI_TARGET_SCALE {_c_float(spec.target_scale)}",
            f"#define FS_EI_TARGET_CENTER {_c_float(spec.target_center)}",
            f"static const char* const fs_ei_target_name = {_c_string(spec.target)};",
            "static const char* const fs_ei_band_names[FS_EI_BAND_LEVELS] = {"
            + ", ".join(_c_string(n) for n in spec.band_levels) + "};",
            "static const float fs_ei_band_half_width[FS_EI_BAND_LEVELS] = {"
            + ", ".join(_c_float(v) for v in spec.band_half_width) + "};"])
    else:
        band_block = "// No calibrated bands (the run was trained before Forecast Studio made them).\n#define FS_EI_BAND_LEVELS 0"
    files = {
        f"{SKETCH}.ino": _template(
            "fs_ei_static_buffer.ino.in", model_label=_comment_safe(spec.model_label), header=spec.library.header,
            to_units=_comment_safe(to_units(spec)),
            banner=escape.c_string("Forecast Studio: Edge Impulse static-buffer check "
                                   f"({escape.serial_text(spec.model_label)}, {spec.count} window(s))"), **common),
        "fs_ei_windows.h": _template(
            "fs_ei_windows.h.in",
            input_comment=_input_comment(spec.input_columns, spec.input_center, spec.input_scale),
            test_indices=", ".join(map(str, spec.test_indices)),
            host_text=",\n".join(f"    {_c_string(host_text(spec, k))}" for k in range(spec.count)),
            features_values=",\n".join(blocks), band_block=band_block, **common),
    }
    return files


def render_readme(spec: SketchSpec) -> str:
    residual = (", and the model adds its reference value back itself (the last observed value, the value one "
                "season earlier, or the last value plus what followed it a season earlier), so `value` is a level, "
                "not a change"
                if spec.residual else "")
    return _template(
        "README.md.in", model_label=escape.markdown(spec.model_label),
        library_zip=escape.markdown_code(spec.library.zip_name), dtype=spec.dtype,
        header=escape.markdown_code(spec.library.header), sketch=SKETCH, count=spec.count,
        target=escape.markdown(spec.target), window=spec.window, features=spec.features,
        input_names=", ".join(map(escape.markdown, spec.input_columns)), first_index=spec.test_indices[0],
        first_host=escape.markdown_code(host_text(spec, 0)), first_value=f"{spec.host_scaled[0]:.5f}",
        first_host_value=_num(spec.host_units[0]), to_units=escape.markdown_code(to_units(spec)),
        scaler_kind=escape.markdown(spec.scaler_kind),
        residual_note=residual)


def report_entry(spec: SketchSpec) -> dict:
    """``report.json``'s ``edge_impulse`` entry, in the names ``core.board.load_reference`` reads."""
    return {
        "windows": list(spec.test_indices),
        "host_predictions": [float(v) for v in spec.host_units],
        "host_predictions_scaled": [float(v) for v in spec.host_scaled],
        "target": spec.target,
        "label": LABEL,
        "printed": "scaled",
        "scaler": {"kind": spec.scaler_kind, "column": spec.target, "center": spec.target_center,
                   "scale": spec.target_scale, "to_units": to_units(spec)},
        "residual": spec.residual,
        # core.edge_impulse.worker uploads core.models.build_tf_keras's graph, which adds the last value back itself.
        "residual_in_model": True,
        "dtype": spec.dtype,
        "window": spec.window,
        "features": spec.features,
        "frame_size": spec.n_values,
        "header": spec.library.header,
        "library_folder": spec.library.folder,
        "library_zip": _library_file(),
        "package_zip": PACKAGE_ZIP,
        "sketch": SKETCH,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def _library_file() -> str:
    from core.edge_impulse.client import LIBRARY_ZIP

    return LIBRARY_ZIP


def package_bytes(spec: SketchSpec, library: bytes) -> bytes:
    """The download: README, the library zip as Edge Impulse built it, and the sketch folder."""
    root = PACKAGE_ZIP.removesuffix(".zip")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{root}/README.md", render_readme(spec))
        # Stored, not deflated again: it is a zip already, and the IDE's Add .ZIP wants it as it came.
        zf.writestr(zipfile.ZipInfo(f"{root}/{spec.library.zip_name}", date_time=(2024, 1, 1, 0, 0, 0)),
                    bytes(library), compress_type=zipfile.ZIP_STORED)
        for name, text in sorted(render_files(spec).items()):
            zf.writestr(f"{root}/{SKETCH}/{name}", text)
    return buf.getvalue()


def write_package(export_dir: str | Path, library: bytes, dtype: str = "float32",
                  n_windows: int | None = None) -> Path:
    """Keep the library beside the export, write the combined zip, and record the sketch's windows in
    report.json (each file atomically). Returns the combined zip's path."""
    export_dir = Path(export_dir)
    lib = inspect_library(library)
    spec = load_sketch_spec(export_dir, lib, dtype=dtype, n_windows=n_windows)
    data = package_bytes(spec, library)
    folder = ExportFolder.open(export_dir)
    atomic_write_bytes(export_dir / _library_file(), bytes(library))
    path = atomic_write_bytes(export_dir / PACKAGE_ZIP, data)
    # The report last: the Device step trusts its windows list only once the sketch holding them exists.
    folder.write_edge_impulse(report_entry(spec))
    return path


def package_path(export_dir: str | Path) -> Path | None:
    """The combined zip of an export folder, if one was written."""
    path = Path(export_dir) / PACKAGE_ZIP
    return path if path.is_file() else None
