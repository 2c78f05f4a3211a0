"""The TensorFlow Lite Micro the firmware bundle is built for, and every TFLM name the sketch may use.

The bundle targets the TFLM that the board package carries: the esp32 core 3.x (arduino-esp32) ships
Espressif's esp-tflite-micro with its ESP-NN kernels, so a participant installs no TFLM library. Each name
below was compiled against that library's sources at ``LIBRARY_VERSION`` and run (docs/FIRMWARE.md: every
bundle form, its answers equal to the export's TFLM check). ``tests/test_firmware_tflm_api.py`` fails when
the sketch or its templates use a TFLM header, function, method or op registration that is not listed
here, so a change that brings back an older TFLM call (the 2022 library's ``ResetVariableTensors`` or
``TensorFlowLite_ESP32.h``) is caught in CI, where the library itself is not available.
"""
from __future__ import annotations

import re
from pathlib import Path

# The board package and the TFLM it carries (docs/FIRMWARE.md says how each was pinned).
CORE_NAME = "esp32 by Espressif Systems"
CORE_VERSION = "3.3.11"
PLATFORMIO_PLATFORM_VERSION = "55.03.311"  # pioarduino's platform-espressif32 release carrying core 3.3.11
PLATFORMIO_PLATFORM = ("https://github.com/pioarduino/platform-espressif32/releases/download/"
                       f"{PLATFORMIO_PLATFORM_VERSION}/platform-espressif32.zip")
LIBRARY = "esp-tflite-micro"
LIBRARY_VERSION = "1.3.7"
LIBRARY_COMMIT = "6dcc4ae70959f409bea6795f1cece5a273b4a7a4"
ESP_NN_VERSION = "1.2.0"
VERIFIED_ON = "2026-12-06"

# Headers the sketch includes from TFLM.
HEADERS = frozenset({
    "tensorflow/lite/micro/micro_interpreter.h",
    "tensorflow/lite/micro/micro_mutable_op_resolver.h",
    "tensorflow/lite/schema/schema_generated.h",
})

# Names the sketch uses from TFLM: namespace members, C API names and macros.
NAMES = frozenset({
    "tflite::GetModel", "tflite::Model", "tflite::MicroInterpreter", "tflite::MicroMutableOpResolver",
    "TfLiteTensor", "TfLiteStatus", "kTfLiteOk", "kTfLiteInt8", "TFLITE_SCHEMA_VERSION", "TF_LITE_STATIC_MEMORY",
})

# Members the sketch calls or reads on TFLM objects: MicroInterpreter's methods, Model::version, and the
# TfLiteTensor fields (type, bytes, data.f / data.int8, params.scale / params.zero_point).
MEMBERS = frozenset({
    "AllocateTensors", "Invoke", "Reset", "input", "output", "arena_used_bytes", "version",
    "type", "bytes", "data", "f", "int8", "params", "scale", "zero_point",
})

# MicroMutableOpResolver methods present in that version (the op table in core/firmware/spec.py may map
# only to these).
RESOLVER_METHODS = frozenset({
    "AddAbs", "AddAdd", "AddAddN", "AddArgMax", "AddArgMin", "AddAssignVariable", "AddAveragePool2D",
    "AddBatchMatMul", "AddBatchToSpaceNd", "AddCallOnce", "AddCast", "AddCeil", "AddConcatenation", "AddConv2D",
    "AddCos", "AddCumSum", "AddDepthToSpace", "AddDepthwiseConv2D", "AddDequantize", "AddDiv", "AddElu",
    "AddEqual", "AddExp", "AddExpandDims", "AddFill", "AddFloor", "AddFloorDiv", "AddFloorMod",
    "AddFullyConnected", "AddGather", "AddGatherNd", "AddGreater", "AddGreaterEqual", "AddHardSwish", "AddIf",
    "AddL2Normalization", "AddLeakyRelu", "AddLess", "AddLessEqual", "AddLog", "AddLogSoftmax", "AddLogicalAnd",
    "AddLogicalNot", "AddLogicalOr", "AddLogistic", "AddMaxPool2D", "AddMaximum", "AddMean", "AddMinimum",
    "AddMirrorPad", "AddMul", "AddNeg", "AddNotEqual", "AddPack", "AddPad", "AddPadV2", "AddPrelu", "AddQuantize",
    "AddReadVariable", "AddReduceMax", "AddRelu", "AddRelu6", "AddReshape", "AddResizeNearestNeighbor", "AddRound",
    "AddRsqrt", "AddSelectV2", "AddShape", "AddSin", "AddSlice", "AddSoftmax", "AddSpaceToBatchNd", "AddSplit",
    "AddSplitV", "AddSqrt", "AddSquare", "AddSquaredDifference", "AddSqueeze", "AddStridedSlice", "AddSub",
    "AddSum", "AddSvdf", "AddTanh", "AddTranspose", "AddTransposeConv", "AddUnidirectionalSequenceLSTM",
    "AddUnpack", "AddVarHandle", "AddWhile", "AddZerosLike",
})

# Calls that older or newer TFLM generations have and this one does not: named in the test's message.
REMOVED = {
    "ResetVariableTensors": "TFLM removed MicroInterpreter::ResetVariableTensors in 2023; use Reset()",
    "TensorFlowLite_ESP32.h": "the 2022 TensorFlowLite_ESP32 library's umbrella header; the core 3.x needs none",
    "ErrorReporter": "TFLM dropped the ErrorReporter argument in 2023",
    "AllOpsResolver": "TFLM removed AllOpsResolver; register the model's ops on a MicroMutableOpResolver",
}

# Names of the sketch's own (plain C++) members that appear in fs_model.cpp beside the TFLM ones.
SKETCH_MEMBERS = frozenset({"Run", "Step", "Begin"})


def _code(text: str) -> str:
    """C++ text without comments, string and character literals, and ``__has_include(...)`` tests (the sketch
    asks whether the old library is present; that names no call it makes)."""
    text = re.sub(r"//[^\n]*|/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', '""', text)
    text = re.sub(r"^\s*#\s*include[^\n]*", " ", text, flags=re.M)
    return re.sub(r"__has_include\s*\([^)]*\)", "0", text)


def unverified(sources: dict[str, str]) -> list[str]:
    """Every TFLM header, name, member or op registration in ``sources`` (file name -> C++ text, as the bundle
    ships them) that the build proof did not verify, one sentence each; [] when all were."""
    problems: list[str] = []
    for name, text in sources.items():
        headers = re.findall(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', text, flags=re.M)
        # Members are read only where TFLM is: a file that includes no TFLM header calls none of its methods.
        touches_tflm = any(h.startswith("tensorflow/") for h in headers)
        for header in re.findall(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', text, flags=re.M):
            if (header.startswith("tensorflow/") or "tensorflowlite" in header.lower()) and header not in HEADERS:
                problems.append(f"{name} includes {header}, which is not a verified {LIBRARY} {LIBRARY_VERSION} header"
                                + (f" ({REMOVED[Path(header).name]})" if Path(header).name in REMOVED else ""))
        code = _code(text)
        for word, why in REMOVED.items():
            if re.search(rf"\b{re.escape(word.removesuffix('.h'))}\b", code):
                problems.append(f"{name} uses {word}: {why}")
        for qualified in sorted(set(re.findall(r"\btflite::(\w+)", code))):
            if f"tflite::{qualified}" not in NAMES:
                problems.append(f"{name} uses tflite::{qualified}, not verified against {LIBRARY} {LIBRARY_VERSION}")
        for c_name in sorted(set(re.findall(r"\b(kTfLite\w+|TfLite\w+|TFLITE_\w+|TF_LITE_\w+)\b", code))):
            if c_name not in NAMES:
                problems.append(f"{name} uses {c_name}, not verified against {LIBRARY} {LIBRARY_VERSION}")
        for member in sorted(set(re.findall(r"(?:->|\.)\s*([A-Za-z_]\w*)", code)) if touches_tflm else ()):
            if member.startswith("Add") and member != "Add":
                if member not in RESOLVER_METHODS:
                    problems.append(f"{name} registers an op with MicroMutableOpResolver::{member}, which "
                                    f"{LIBRARY} {LIBRARY_VERSION} was not verified to have")
            elif member not in MEMBERS and member not in SKETCH_MEMBERS:
                problems.append(f"{name} uses the member {member}, not verified against {LIBRARY} {LIBRARY_VERSION}")
    return problems
