"""The host's side of a board check: an export folder read into the windows, the host forecasts, the
actual values and the tolerances the board's answers are held to."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from core.config import DEFAULTS
from core.errors import StudioError
from core.board.protocol import Expected
from core.logscale import to_units, unit_span

CFG = DEFAULTS["device"]


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
    # The run's calibrated band half-widths per level ("80"), (horizon, targets) in data units: the host's
    # band is its forecast -/+ these, what the board's lo<level>=/hi<level>= must match (issue N).
    bands: dict[str, np.ndarray] = field(default_factory=dict)
    # The same for an int8 model whose output is a level (an Edge Impulse library), from the calibration range.
    ei_out_step: np.ndarray | None = None
    # The multiplicative (log) form (core.logscale): per target and per input column, held as its log; None: none.
    log: np.ndarray | None = None
    in_log: np.ndarray | None = None
    # The test part's consecutive input rows, scaled (windows.npz test_rows): X holds at most 64 windows, evenly
    # spread over a longer test part, so they join back into one window's readings; None: an export before them.
    test_rows: np.ndarray | None = None

    @property
    def unit_scale(self) -> np.ndarray:
        """Per target, one scaled unit in the data's units: what a tolerance is a share of."""
        return unit_span(self.center, self.scale, self.log if self.log is not None else False)

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
        return to_units(self.y_host[i], self.center, self.scale, self.log if self.log is not None else False)

    def window_units(self, i: int) -> np.ndarray:
        """Test window i in the data's own units (what ``P`` sends), shape (window, features)."""
        return to_units(self.X[i], self.in_center, self.in_scale, self.in_log if self.in_log is not None else False)

    def tolerance(self, dtype: str | None = None) -> np.ndarray:
        """Allowed |board - host's run of the same file| per target in data units, from the dtype's own
        resolution: for float32 a small share of the target's scale, for int8 ``int8_steps`` output
        quantisation steps. Never from the export's measured error, which is what this check must catch."""
        dtype = dtype or self.dtype
        floor = CFG["tolerance_floor"].get(dtype, max(CFG["tolerance_floor"].values()))
        tol = self.unit_scale * floor
        step = self.out_step.get(dtype)
        if dtype == "int8" and step is not None and step.shape == tol.shape and np.all(np.isfinite(step)):
            tol = step * float(CFG["int8_steps"]) + self.unit_scale * CFG["tolerance_floor"]["float32"]
        return tol

    def reference_units(self, i: int, dtype: str | None) -> np.ndarray:
        """What the host's copy of the board's model file computed for test window i (data units); the host
        model's own forecast where the export did not keep it."""
        y = self.y_tflm.get(dtype or self.dtype)
        if y is not None and 0 <= i < len(y):
            return np.asarray(y[i], dtype=np.float64)
        return self.host_units(i)


def load_reference(export_dir: str | Path) -> Reference:
    """Read an export folder (report.json and its test windows) into a Reference."""
    from core.export.folder import ExportFolder

    folder = ExportFolder.open(export_dir)
    export_dir = folder.path
    report = folder.data
    targets = list(folder.targets)
    inputs = list(folder.input_columns)
    if not folder.scaler:
        raise StudioError(f"{export_dir / 'report.json'} has no scaler, so the board's numbers cannot be put back "
                          "into the data's units.", "Export the run again with the current studio.")
    X, y_host, wpath = folder.windows()
    if X.ndim != 3 or y_host.ndim not in (2, 3) or len(X) != len(y_host):
        raise StudioError(f"The test windows in {export_dir} have unexpected shapes {X.shape} / {y_host.shape}.",
                          "Export the run again.")
    extra = _read_truth(folder, len(X)) if wpath.name == "windows.npz" else {"y_tflm": {}}
    if y_host.ndim == 2:
        y_host = y_host[:, :, None] if len(targets) <= 1 else y_host[:, None, :]
    if not targets:
        targets = [f"target{i}" for i in range(y_host.shape[-1])]
    if len(inputs) != X.shape[2]:
        inputs = [f"input{i}" for i in range(X.shape[2])]
    center, scale = folder.column_scaler(targets)
    in_center, in_scale = folder.column_scaler(inputs)

    errs: dict[str, np.ndarray] = {}
    for name, entry in folder.dtypes.items():
        per = entry.get("max_abs_err_per_target")
        val = per if isinstance(per, list) and len(per) == len(targets) else [entry.get("max_abs_err")] * len(targets)
        errs[name] = np.array([np.nan if v is None else float(v) for v in val])
    dtype = "float32" if "float32" in errs or not errs else next(iter(errs))
    out_step: dict[str, np.ndarray] = {}
    q = folder.dtypes.get("int8", {}).get("output_quant")
    if isinstance(q, Mapping) and isinstance(q.get("scale"), (int, float)) and math.isfinite(float(q["scale"])):
        # A log target's output step is a ratio: in units it is that share of the largest level forecast.
        out_step["int8"] = abs(float(q["scale"])) * np.abs(scale) * _level_factor(folder, targets, y_host, center, scale)
    level = folder.section("quantisation").get("level_output_step_scaled")
    ei_out_step = None
    if isinstance(level, list) and len(level) == len(targets) and all(isinstance(v, (int, float)) for v in level):
        ei_out_step = np.abs(np.asarray(level, dtype=np.float64)) * np.abs(scale)
    ei = folder.edge_impulse
    per_dtype = folder.section("budget").get("per_dtype")
    latency = {d: float(e["latency_ms"]) for d, e in (per_dtype if isinstance(per_dtype, Mapping) else {}).items()
               if isinstance(e, Mapping) and isinstance(e.get("latency_ms"), (int, float))}
    bundles = folder.bundles()
    name = report.get("model_name") or next((b["model"] for b in bundles.values() if isinstance(b.get("model"), str)), None)
    if not name:
        name = folder.model_name
    expected = Expected(model=str(name) if isinstance(name, str) and name else None,
                        window=folder.size("window") or X.shape[1], features=folder.size("features") or X.shape[2],
                        horizon=folder.size("horizon") or y_host.shape[1], targets=len(targets))
    try:
        ei_windows = tuple(int(i) for i in (ei.get("windows") or ()))
    except (TypeError, ValueError):
        ei_windows = ()
    ref = Reference(expected=expected, targets=tuple(targets), center=center, scale=scale, X=X, y_host=y_host,
                     in_center=in_center, in_scale=in_scale, embedded=folder.test_windows, ei_windows=ei_windows,
                     dtype=dtype, report_err=errs, residual=folder.residual,
                     # The export puts the residual add-back inside the network, so EI prints a level unless told otherwise.
                     ei_output_is_delta=bool(folder.residual and ei.get("residual_in_model") is False),
                     ei_dtype=ei.get("dtype") if ei.get("dtype") in ("float32", "int8") else None,
                     target_input_index=folder.target_input_index,
                     bundles={d: _embedded(b, len(targets)) for d, b in bundles.items() if _embedded(b, len(targets))},
                     export_dir=export_dir, board_latency_ms=latency, out_step=out_step, ei_out_step=ei_out_step,
                     bands=_reference_bands(folder, bundles, y_host.shape[1], len(targets)),
                     log=folder.column_log(targets), in_log=folder.column_log(inputs), **extra)
    if ref.y_last is None and ref.target_input_index and all(i is not None for i in ref.target_input_index):
        # An export without the baseline: the last value is in the windows themselves.
        ti = list(ref.target_input_index)
        last = to_units(X[:, -1, ti], in_center[ti], in_scale[ti], ref.in_log[ti])
        ref.y_last = np.repeat(last[:, None, :], ref.y_host.shape[1], axis=1)
    return ref


def _level_factor(folder, targets, y_host, center, scale) -> np.ndarray:
    """Per target: 1, or for a log target the largest host forecast (a step in log units is that share of it)."""
    log = folder.column_log(targets)
    if not log.any():
        return np.ones(len(targets))
    top = np.max(np.abs(to_units(y_host.reshape(-1, len(targets)), center, scale, log)), axis=0)
    return np.where(log, top, 1.0)


def _reference_bands(folder, bundles: dict[str, dict], horizon: int, n_t: int) -> dict[str, np.ndarray]:
    """Band half-widths per level: what a bundle zip in the export was built with, else the run's intervals."""
    for bundle in bundles.values():
        levels, hw = bundle.get("band_levels"), bundle.get("band_half_width")
        if isinstance(levels, list) and levels and hw is not None:
            try:
                arr = np.asarray(hw, dtype=np.float64).reshape(len(levels), horizon, n_t)
            except (TypeError, ValueError):
                continue
            return {str(lv): arr[i] for i, lv in enumerate(levels)}
    from core.intervals import for_export, half_widths

    try:
        return half_widths(for_export(folder), horizon, n_t)
    except StudioError:
        return {}


def _read_truth(folder, n: int) -> dict:
    """Actuals, the last-value forecast and the host's TFLM outputs per dtype beside the test windows
    (the export's windows.npz), each only when present with one entry per window."""
    arrays = folder.window_arrays(("y_true", "y_base_last_value", "y_float32", "y_int8"), n)
    out: dict = {"y_tflm": {d: arrays[f"y_{d}"] for d in ("float32", "int8") if f"y_{d}" in arrays}}
    rows = folder.window_arrays(("test_rows",), -1, whole=True).get("test_rows")
    if rows is not None and rows.ndim == 2:
        out["test_rows"] = rows
    if "y_true" in arrays:
        out["y_true"] = arrays["y_true"]
    if "y_base_last_value" in arrays:
        out["y_last"] = arrays["y_base_last_value"]
    return out


def _embedded(bundle: Mapping[str, Any], n_targets: int) -> Embedded | None:
    try:
        idx = tuple(int(i) for i in bundle["test_indices"])
        host = np.asarray(bundle["host_predictions"], dtype=np.float64)
        host = host.reshape(len(idx), -1, n_targets)
    except (KeyError, TypeError, ValueError):
        return None
    return Embedded(idx, host)


