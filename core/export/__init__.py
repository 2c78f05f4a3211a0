"""Export: a trained run -> TFLite float32 and int8 files, proven on the TensorFlow Lite Micro runtime.

Read top-down: ``run`` (``export_run``: build, convert in a child process, verify on TFLM, write the
folder), ``calibration`` (what int8 is calibrated and scored on), ``runtime`` (the TFLM child process and
the arena search), ``accuracy`` (every forecaster scored against the actual values, and the bundle's
model chosen on it), ``folder`` (``ExportFolder``: the one reader and writer of an export folder and its
``report.json``), ``worker`` (the child process itself).
"""
from core.export.accuracy import (BASELINE_NAMES, FORECASTER_LABELS, accuracy_lines, loses_to_best_baseline,
                                  loses_to_last_value, recommend_bundle, score_against_truth)
from core.export.calibration import (ScoringSet, add_last_value, calibration_windows, count_clipped, dequantize,
                                     drift_rows, outside, quantize, reference_rows, reference_values, residual_outside,
                                     scoring_set)
from core.export.folder import (DTYPES, FORMAT_VERSION, MODEL_FILES, REPORT, WINDOWS, ExportFolder, ExportReport,
                                bundle_choice, firmware_model_name, load_report,
                                shipped_dtype)
from core.export.run import export_run, guard_out_dir, verify_tflite
from core.export.runtime import TflmRuntime, arena_with_margin, arena_words, find_arena, tflm_available, worker_env

__all__ = [
    "BASELINE_NAMES", "DTYPES", "FORECASTER_LABELS", "FORMAT_VERSION", "MODEL_FILES", "REPORT", "WINDOWS",
    "ExportFolder", "ExportReport", "ScoringSet", "TflmRuntime", "accuracy_lines", "add_last_value",
    "arena_with_margin", "arena_words", "bundle_choice", "shipped_dtype", "calibration_windows", "count_clipped",
    "dequantize", "export_run", "find_arena", "firmware_model_name", "guard_out_dir", "load_report",
    "loses_to_best_baseline", "loses_to_last_value", "quantize", "recommend_bundle",
    "residual_outside", "drift_rows", "outside", "reference_values", "score_against_truth", "scoring_set", "tflm_available", "verify_tflite", "worker_env",
]
