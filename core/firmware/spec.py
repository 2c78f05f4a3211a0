"""What goes into the bundle, read from an export folder and checked: the model, its arena on the board,
the ops to register, the scaler, the windows, the bands, the form (one invoke or a step loop)."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.config import DEFAULTS
from core.numbers import check_number
from core.errors import StudioError
from core.export.folder import ExportFolder
from core.export.runtime import arena_words
from core.firmware import tflm_api
from core.logscale import to_units, unit_span
from core.linear_reference import from_report as linear_from_report


ROOT = Path(__file__).resolve().parent.parent.parent
TEMPLATES = ROOT / "firmware"
SKETCH = "forecast_studio"  # the Arduino IDE insists the folder is named after the .ino
DTYPES = ("int8", "float32")

# Internal SRAM: the S3 has 512 KB of which about 320 KB is usable (SPEC); the Arduino
# core, USB stack and the protocol buffers need the rest, so arenas above this go to PSRAM.
INTERNAL_ARENA_MAX = 240 * 1024
# 8 MB of PSRAM, less what the core maps for itself.
PSRAM_ARENA_MAX = 7 * 1024 * 1024 + 512 * 1024
DEFAULT_WINDOWS = 4

# TFLite builtin op name -> MicroMutableOpResolver method. An op missing here is one the
# bundle cannot register, so rendering stops with a message instead of shipping a sketch
# that fails on the board.
OP_RESOLVER_CALLS: dict[str, str] = {
    "ABS": "AddAbs", "ADD": "AddAdd", "ADD_N": "AddAddN", "ARG_MAX": "AddArgMax",
    "ARG_MIN": "AddArgMin", "ASSIGN_VARIABLE": "AddAssignVariable",
    "AVERAGE_POOL_2D": "AddAveragePool2D", "BATCH_MATMUL": "AddBatchMatMul",
    "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd", "CALL_ONCE": "AddCallOnce", "CAST": "AddCast",
    "CEIL": "AddCeil", "CONCATENATION": "AddConcatenation", "CONV_2D": "AddConv2D",
    "COS": "AddCos", "CUMSUM": "AddCumSum", "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
    "DEPTH_TO_SPACE": "AddDepthToSpace", "DEQUANTIZE": "AddDequantize", "DIV": "AddDiv",
    "ELU": "AddElu", "EQUAL": "AddEqual", "EXP": "AddExp", "EXPAND_DIMS": "AddExpandDims",
    "FILL": "AddFill", "FLOOR": "AddFloor", "FLOOR_DIV": "AddFloorDiv",
    "FLOOR_MOD": "AddFloorMod", "FULLY_CONNECTED": "AddFullyConnected", "GATHER": "AddGather",
    "GATHER_ND": "AddGatherNd", "GREATER": "AddGreater", "GREATER_EQUAL": "AddGreaterEqual",
    "HARD_SWISH": "AddHardSwish", "IF": "AddIf", "L2_NORMALIZATION": "AddL2Normalization",
    "LEAKY_RELU": "AddLeakyRelu", "LESS": "AddLess", "LESS_EQUAL": "AddLessEqual",
    "LOG": "AddLog", "LOGICAL_AND": "AddLogicalAnd", "LOGICAL_NOT": "AddLogicalNot",
    "LOGICAL_OR": "AddLogicalOr", "LOGISTIC": "AddLogistic", "LOG_SOFTMAX": "AddLogSoftmax",
    "MAXIMUM": "AddMaximum", "MAX_POOL_2D": "AddMaxPool2D", "MEAN": "AddMean",
    "MINIMUM": "AddMinimum", "MIRROR_PAD": "AddMirrorPad", "MUL": "AddMul", "NEG": "AddNeg",
    "NOT_EQUAL": "AddNotEqual", "PACK": "AddPack", "PAD": "AddPad", "PADV2": "AddPadV2",
    "PRELU": "AddPrelu", "QUANTIZE": "AddQuantize", "READ_VARIABLE": "AddReadVariable",
    "REDUCE_MAX": "AddReduceMax", "RELU": "AddRelu", "RELU6": "AddRelu6",
    "RESHAPE": "AddReshape", "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor",
    "ROUND": "AddRound", "RSQRT": "AddRsqrt", "SELECT_V2": "AddSelectV2", "SHAPE": "AddShape",
    "SIN": "AddSin", "SLICE": "AddSlice", "SOFTMAX": "AddSoftmax",
    "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd", "SPLIT": "AddSplit", "SPLIT_V": "AddSplitV",
    "SQRT": "AddSqrt", "SQUARE": "AddSquare", "SQUARED_DIFFERENCE": "AddSquaredDifference",
    "SQUEEZE": "AddSqueeze", "STRIDED_SLICE": "AddStridedSlice", "SUB": "AddSub",
    "SUM": "AddSum", "SVDF": "AddSvdf", "TANH": "AddTanh", "TRANSPOSE": "AddTranspose",
    "TRANSPOSE_CONV": "AddTransposeConv",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM", "UNPACK": "AddUnpack",
    "VAR_HANDLE": "AddVarHandle", "WHILE": "AddWhile", "ZEROS_LIKE": "AddZerosLike",
}


@dataclass(frozen=True)
class Quant:
    scale: float
    zero_point: int


@dataclass(frozen=True)
class BundleSpec:
    """Everything one bundle holds; the firmware templates and the emulator read only this."""

    model_name: str
    dtype: str
    model_bytes: bytes
    model_file: str
    window: int
    features: int
    horizon: int
    targets: int
    input_columns: tuple[str, ...]
    target_columns: tuple[str, ...]
    scaler_kind: str
    input_center: np.ndarray  # float32, (features,)
    input_scale: np.ndarray
    target_center: np.ndarray  # float32, (targets,)
    target_scale: np.ndarray
    input_quant: Quant | None
    output_quant: Quant | None
    ops: tuple[str, ...]
    host_arena_bytes: int  # the export report's arena (measured on TFLM plus margin)
    arena_bytes: int  # what the board reserves: the same, aligned to 16 bytes
    arena_in_psram: bool
    residual: bool
    windows: np.ndarray  # float32 (n, window, features), data units
    host_predictions: np.ndarray  # float32 (n, horizon, targets), data units
    test_indices: tuple[int, ...]
    max_abs_err: float | None  # TFLM vs host, target units, from the export report
    # Calibrated band half-widths (core/intervals.py) in target units: level names ("80") and
    # (levels, horizon, targets) float32; none for a run trained before bands existed.
    band_levels: tuple[str, ...] = ()
    band_half_width: np.ndarray | None = None
    # The int8 graph outputs the change from the last value, which the firmware adds back in float
    # (core.export: an int8 level output saturates on a trending series); the targets' input columns.
    residual_outside: bool = False
    target_input: tuple[int, ...] = ()
    # With residual_outside: the window row whose value each forecast step adds back (horizon entries);
    # empty means the last row at every step (the change from the last value, issue L's bundles).
    reference_rows: tuple[int, ...] = ()
    # With residual_outside, for "change_both": (a, b), rows whose difference every step's reference adds.
    drift_rows: tuple[int, ...] = ()
    # With residual_outside, for "change_linear": the fitted linear reference in scaled units, float32, flat
    # (targets, horizon, window) weights and (targets, horizon) biases (core.linear_reference); step k of target j
    # adds bias[j, k] + sum over rows r of weight[j, k, r] * x[r, target_input[j]], summed in double, in row order.
    # Empty for every other form (the reference rows above are used instead).
    linear_weights: tuple[float, ...] = ()
    linear_bias: tuple[float, ...] = ()
    # The watch over streamed readings (issue 33, core.alarms): adaptive bands, alarms. None = nothing watched.
    watch: "WatchSpec | None" = None
    # The multiplicative (log) form (core.logscale): per input column read as log(value), per target given back as
    # exp(); empty for an additive model (and every bundle before the form existed).
    input_log: tuple[bool, ...] = ()
    target_log: tuple[bool, ...] = ()

    @property
    def reference_row_list(self) -> tuple[int, ...]:
        return self.reference_rows or (self.window - 1,) * self.horizon

    # The arena in one sentence (core.export.arena_words), as the Export page and the Device step say it.
    arena_words: str = ""
    # "step": the model is one time step (core.steploop) that fs_steploop.cpp loops over the window;
    # "window": one invoke per window. step_layout: the step model's tensor indices and quantisation.
    form: str = "window"
    step_layout: dict | None = None

    @property
    def state_size(self) -> int:
        return int(self.step_layout["state_size"]) if self.step_layout else 0

    @property
    def line_max(self) -> int:
        """Longest host line the firmware buffers: a P line, or the longest result line (the forecast
        and, per band level, its lower and upper bounds, each with a "lo<level>=" key)."""
        result = self.horizon * self.targets * (1 + 2 * len(self.band_levels))
        return max(self.window * self.features, result) * 20 + 64 + 24 * len(self.band_levels)

    @property
    def n_values(self) -> int:
        return self.window * self.features


# ---------------------------------------------------------------- reading the export

def _quant(entry: dict, key: str) -> Quant | None:
    q = entry.get(key)
    if not isinstance(q, dict) or q.get("scale") in (None, 0, 0.0):
        return None
    fix = "Export the run again."
    return Quant(float(check_number(q["scale"], f"The export report's {key} scale", above=0.0, maximum=1e30, fix=fix)),
                 int(check_number(q.get("zero_point", 0), f"The export report's {key} zero point", integer=True,
                                  minimum=-128, maximum=127, fix=fix)))


def normalize_op(name: str) -> str:
    """'FullyConnected' or 'fully_connected' -> 'FULLY_CONNECTED'."""
    name = name.strip()
    if not name.isupper() and "_" not in name:
        name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return name.upper()


def op_registrations(ops) -> list[str]:
    """The resolver call for each op; an op with no mapping stops the bundle."""
    calls = []
    for op in ops:
        key = normalize_op(op)
        if key not in OP_RESOLVER_CALLS:
            raise StudioError(f"The model uses the op {op}, which the firmware bundle cannot register on the TFLM the "
                              f"esp32 core {tflm_api.CORE_VERSION} carries ({tflm_api.LIBRARY} {tflm_api.LIBRARY_VERSION}).",
                              "Choose another model kind (LSTM, GRU or SimpleRNN export to supported ops) and export again.")
        calls.append(OP_RESOLVER_CALLS[key])
    return calls


def arena_placement(arena_bytes: int) -> tuple[int, bool]:
    """(board arena bytes, in PSRAM) for the export's arena (measured on TFLM plus the export's margin,
    ``core.export.arena_words``): the same figure, rounded up to TFLM's 16-byte alignment. No second margin:
    compiled against the board's esp-tflite-micro with its ESP-NN kernels, every bundle form needed no more
    than the export measured (docs/FIRMWARE.md), and the Export page, README and Device step show this figure."""
    board = (int(arena_bytes) + 15) // 16 * 16
    if board <= INTERNAL_ARENA_MAX:
        return board, False
    if board <= PSRAM_ARENA_MAX:
        return board, True
    raise StudioError(
        f"The model needs a {board // 1024} KB tensor arena, more than the XIAO ESP32S3 has "
        f"({INTERNAL_ARENA_MAX // 1024} KB internal RAM, {PSRAM_ARENA_MAX // 1024} KB PSRAM); no bundle was made.",
        "Use fewer units or layers, a shorter window, or the int8 export.")


def _model_shapes(model_bytes: bytes, arena: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Input and output shapes, read by loading the model on the TFLM runtime: a model
    that does not load there must not become a bundle."""
    from tflite_micro.python.tflite_micro import runtime

    try:
        interp = runtime.Interpreter.from_bytes(model_bytes, arena_size=max(arena, 4096))
        return (tuple(int(v) for v in interp.get_input_details(0)["shape"]),
                tuple(int(v) for v in interp.get_output_details(0)["shape"]))
    except Exception as err:  # the runtime raises RuntimeError/ValueError with TFLM's text
        raise StudioError(f"The exported model does not load on the TFLM runtime ({err}).",
                          "Export the run again.") from err


def load_bundle_spec(export_dir, dtype: str = "int8", run_dir=None, n_windows: int = DEFAULT_WINDOWS) -> BundleSpec:
    export_dir = Path(export_dir)
    if dtype not in DTYPES:
        raise StudioError(f"Unknown model type {dtype!r} for the bundle.", "Choose int8 or float32.")
    folder = ExportFolder.open(export_dir)
    report = folder.data
    entry = folder.entry(dtype)
    model_path = folder.model_path(dtype)
    if not model_path.is_file():
        raise StudioError(f"{model_path.name} is missing from {export_dir}.", "Export the run again.")
    model_bytes = model_path.read_bytes()

    if not entry.get("arena_bytes"):
        raise StudioError("The export report gives no arena size for the model.", "Export the run again.")
    host_arena = int(check_number(entry.get("arena_bytes"), "The export report's arena_bytes", integer=True, minimum=1,
                                  maximum=2**40, fix="Export the run again (the arena is measured on TFLM)."))
    arena, in_psram = arena_placement(host_arena)
    ops = tuple(entry.get("ops") or ())
    if not ops:
        raise StudioError("The export report lists no ops for the model.", "Export the run again.")
    op_registrations(ops)

    step_layout = entry.get("step_layout") if report.get("form") == "step" else None
    if step_layout is not None:
        from core.steploop import bundle_shapes

        in_shape, out_shape = bundle_shapes(model_bytes, arena, step_layout, report)
    else:
        in_shape, out_shape = _model_shapes(model_bytes, arena)
    if len(in_shape) != 3 or in_shape[0] != 1:
        raise StudioError(f"The model's input shape {in_shape} is not (1, window, features).", "Export the run again.")
    window, features = in_shape[1], in_shape[2]
    horizon = int(check_number(report.get("horizon") or 1, "The export report's horizon", integer=True, minimum=1,
                               maximum=DEFAULTS["features"]["max_horizon"], fix="Export the run again."))
    n_out = int(np.prod(out_shape))
    if n_out % horizon:
        raise StudioError(f"The model's output shape {out_shape} does not match the horizon {horizon}.", "Export the run again.")
    targets = n_out // horizon
    if check_number(report.get("window") or window, "The export report's window", integer=True, minimum=1,
                    maximum=DEFAULTS["features"]["max_window"], fix="Export the run again.") != window:
        raise StudioError(f"The report's window ({report.get('window')}) differs from the model's ({window}).", "Export the run again.")

    input_columns = folder.input_columns or tuple(f"input_{i}" for i in range(features))
    target_columns = folder.targets or tuple(f"target_{i}" for i in range(targets))
    if len(input_columns) != features or len(target_columns) != targets:
        raise StudioError(
            f"The report names {len(input_columns)} inputs and {len(target_columns)} targets; the model has {features} and {targets}.",
            "Export the run again.")
    scaler = folder.scaler
    in_c, in_s = folder.column_scaler(input_columns, np.float32)
    t_c, t_s = folder.column_scaler(target_columns, np.float32)

    x_test, y_host, samples_path = folder.windows(run_dir, np.float32)
    if len(x_test) == 0:
        raise StudioError("The test part has no windows to build into the bundle.", "Use a longer dataset or a smaller test split.")
    if x_test.shape[1:] != (window, features) or y_host.reshape(len(y_host), -1).shape[1] != n_out:
        raise StudioError(f"{samples_path.name} windows {x_test.shape[1:]} do not match the model ({window}, {features}).",
                          "Export the run again from the same run.")
    count = max(1, min(int(n_windows), len(x_test)))
    picks = tuple(int(i) for i in np.linspace(0, len(x_test) - 1, count).round().astype(int))
    in_log, t_log = folder.column_log(input_columns), folder.column_log(target_columns)
    windows = to_units(x_test[list(picks)], in_c, in_s, in_log).astype(np.float32)
    host = to_units(y_host[list(picks)].reshape(count, horizon, targets), t_c, t_s, t_log).astype(np.float32)

    max_err = entry.get("max_abs_err")
    band_levels, band_hw = _bands(folder, run_dir, horizon, targets)
    outside = bool(entry.get("residual_outside"))
    target_input: tuple[int, ...] = ()
    reference_rows: tuple[int, ...] = ()
    drift_rows: tuple[int, ...] = ()
    linear_weights: tuple[float, ...] = ()
    linear_bias: tuple[float, ...] = ()
    if outside:
        raw = folder.target_input_index
        target_input = tuple(raw) if all(i is not None for i in raw) else ()
        if len(target_input) != targets or not all(0 <= i < features for i in target_input):
            raise StudioError("The export's model adds the last value outside the network, but the report does "
                              "not say which input column each target is.", "Export the run again.")
        rows = entry.get("reference_rows")
        if rows is not None:
            try:
                reference_rows = tuple(int(r) for r in rows)
            except (TypeError, ValueError):
                reference_rows = ()
            if len(reference_rows) != horizon or not all(0 <= r < window for r in reference_rows):
                raise StudioError("The export's model adds a reference value outside the network, but the "
                                  f"report's reference rows do not fit its window ({window}) and horizon ({horizon}).",
                                  "Export the run again.")
        drift = entry.get("drift_rows")
        if drift is not None:
            try:
                drift_rows = tuple(int(r) for r in drift)
            except (TypeError, ValueError):
                drift_rows = ()
            if len(drift_rows) != 2 or not all(0 <= r < window for r in drift_rows):
                raise StudioError("The export's model adds last season's change outside the network, but the report's "
                                  f"drift rows do not fit its window ({window}).", "Export the run again.")
        if entry.get("reference") == "linear":
            linear_weights, linear_bias = linear_from_report(folder.model, targets, horizon, window)
    # The band floor is a share of the target's spread in its units (for a log target, not its log's scale).
    watch = watch_of(folder, run_dir, horizon, targets, features, band_levels, band_hw,
                     unit_span(t_c, t_s, t_log).astype(np.float32))
    return BundleSpec(
        watch=watch,
        model_name=folder.model_name or "model", dtype=dtype, model_bytes=model_bytes, model_file=model_path.name,
        window=window, features=features, horizon=horizon, targets=targets,
        input_columns=input_columns, target_columns=target_columns,
        scaler_kind=str(scaler.get("kind") or "none"),
        input_center=in_c, input_scale=in_s, target_center=t_c, target_scale=t_s,
        input_quant=_quant(entry, "input_quant"), output_quant=_quant(entry, "output_quant"),
        ops=ops, host_arena_bytes=host_arena, arena_bytes=arena, arena_in_psram=in_psram,
        arena_words=arena_words({**entry, "arena_bytes": arena}),
        residual=folder.residual,
        windows=windows, host_predictions=host, test_indices=picks,
        max_abs_err=None if max_err is None else float(max_err),
        band_levels=band_levels, band_half_width=band_hw,
        residual_outside=outside, target_input=target_input, reference_rows=reference_rows, drift_rows=drift_rows,
        linear_weights=linear_weights, linear_bias=linear_bias,
        input_log=tuple(bool(v) for v in in_log) if in_log.any() or t_log.any() else (),
        target_log=tuple(bool(v) for v in t_log) if in_log.any() or t_log.any() else (),
        form="step" if step_layout is not None else "window", step_layout=step_layout)


def _bands(folder: ExportFolder, run_dir, horizon: int, targets: int) -> tuple[tuple[str, ...], np.ndarray | None]:
    """The run's band half-widths for the board, narrowest level first; none when the run has none."""
    from core.intervals import for_export, half_widths

    bands = half_widths(for_export(folder, run_dir), horizon, targets)
    levels = tuple(sorted((k for k, hw in bands.items() if np.all(np.isfinite(hw))), key=float))
    if not levels:
        return (), None
    return levels, np.stack([bands[k] for k in levels]).astype(np.float32)




def watch_of(folder: ExportFolder, run_dir, horizon: int, targets: int, features: int, levels: tuple[str, ...],
             half_width: np.ndarray | None, target_scale: np.ndarray, alarm_level: str | None = None):
    """The board's watch constants (core.alarms.WatchSpec): each target's column in a reading, the adaptive
    bands' factors, the alarm level (the widest band unless ``alarm_level`` names another the bundle has), the
    training part's longest run per target, the reading timeout. StudioError for a level with no band."""
    from core.adaptive import BETA, CLIP, floors, start, steps
    from core.alarms import WatchSpec, gap_limit_ms
    from core.intervals import for_export, level_key

    cfg = DEFAULTS["alarms"]
    step_ms, timeout_ms = gap_limit_ms(*_data_freq(folder, run_dir))
    raw = folder.target_input_index
    if not raw:  # an older report: each target's column by name
        names = list(folder.input_columns or ())
        raw = tuple(names.index(t) if t in names else None for t in folder.targets or ())
    columns = tuple(int(i) for i in raw) if raw and all(i is not None and 0 <= i < features for i in raw) else ()
    if len(columns) != targets:
        columns = ()
    record = for_export(folder, run_dir)
    runs = record.get("longest_run") or []
    stuck = tuple(int(r) if isinstance(r, int) and r > 0 else 0 for r in runs) if len(runs) == targets else ()
    inside, edges = _stuck_inside(record, stuck, targets)
    level_index = -1
    if levels and half_width is not None:
        wanted = alarm_level if alarm_level is not None else cfg.get("level")
        if wanted is None:
            level_index = len(levels) - 1
        else:
            key = level_key(float(wanted))
            if key not in levels:
                raise StudioError(f"The alarm level {key}% has no band in this bundle (it has "
                                  f"{', '.join(l + '%' for l in levels)}).",
                                  "Pick one of those levels, or add it on the Forecast step's band levels and export again.")
            level_index = levels.index(key)
        up, down = steps(levels, shape=(horizon, targets))
        floor = floors(target_scale)
        scale0, mult0 = start(levels, half_width, floor)
        drift = _drift_of(record, levels, half_width, targets, cfg) if columns else {}
        return WatchSpec(horizon=horizon, targets=targets, columns=columns, levels=levels, half_width=half_width,
                         up=up, down=down, floor=floor, scale0=scale0, mult0=mult0,
                         beta=float(np.float32(BETA)), clip=float(np.float32(CLIP)), alarm_level=level_index,
                         margin=float(np.float32(cfg["margin"])), stuck_limit=stuck, stuck_inside=inside,
                         stuck_edges=edges, timeout_ms=timeout_ms, step_ms=step_ms,
                         drift_scale=tuple(drift.get("scale", ())), drift_k=drift.get("k", float(np.float32(cfg["drift_k"]))),
                         drift_h=drift.get("h", float(np.float32(cfg["drift_h"]))),
                         drift_factor=tuple(drift.get("factor", ())), drift_rate=float(drift.get("rate", 0.0)))
    return WatchSpec(horizon=horizon, targets=targets, columns=columns, stuck_limit=stuck, stuck_inside=inside, stuck_edges=edges,
                     timeout_ms=timeout_ms, step_ms=step_ms)


def _stuck_inside(record: dict, stuck: tuple[int, ...], targets: int) -> tuple[tuple[int, ...], tuple]:
    """The stuck rule's limit inside the training range and that range's float32 edges (core.alarms.stuck_edges), or
    ((), ()) for a run from before them (one limit) or without the longest runs."""
    from core.alarms import stuck_edges

    inside, ranges = record.get("stuck_inside") or [], record.get("stuck_range") or []
    try:
        if stuck and len(inside) == len(ranges) == targets and all(isinstance(r, int) and r > 0 for r in inside):
            edges = stuck_edges([(float(lo), float(hi)) for lo, hi in ranges])
            if all(math.isfinite(lo) and math.isfinite(hi) for lo, hi in edges):
                return tuple(min(int(r), s) for r, s in zip(inside, stuck)), edges
    except (TypeError, ValueError):
        pass
    return (), ()


def _drift_of(record: dict, levels: tuple[str, ...], half_width: np.ndarray, targets: int, cfg: dict) -> dict:
    """The drift rule's constants: the run's validation-calibrated ones (intervals.json "drift", made with the bands
    it has), else (a run from before the calibration) the uncalibrated scale with DEFAULTS' allowance and threshold."""
    from core.alarms import drift_scale

    drift = record.get("drift") or {}
    try:
        ok = (len(drift["scale"]) == len(drift["factor"]) == targets
              and all(math.isfinite(float(v)) and float(v) > 0 for v in drift["scale"]))
        if ok:
            return {"scale": [float(np.float32(v)) for v in drift["scale"]], "factor": [float(v) for v in drift["factor"]],
                    "k": float(np.float32(drift["k"])), "h": float(np.float32(drift["h"])), "rate": float(drift["rate"])}
    except (KeyError, TypeError, ValueError):
        pass
    return {"scale": drift_scale(levels, half_width)}


def _data_freq(folder: ExportFolder, run_dir) -> tuple[str | None, dict | None]:
    """The run's data frequency and calendar (run.json's ``dataset``), for the gap limit; (None, None) when the
    export's run is not at hand (the bundle then keeps DEFAULTS' timeout)."""
    import json
    from pathlib import Path

    for where in ([Path(run_dir)] if run_dir is not None else []) + ([folder.run_dir] if folder.run_dir else []):
        path = Path(where) / "run.json"
        try:
            if path.is_file() and path.stat().st_size < 16 * 1024 * 1024:
                dataset = json.loads(path.read_text(encoding="utf-8")).get("dataset") or {}
                freq = dataset.get("freq")
                return (freq if isinstance(freq, str) else None), dataset.get("calendar") or None
        except (OSError, ValueError, AttributeError):
            continue
    return None, None
