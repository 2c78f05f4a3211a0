"""The sketch calls only the TFLM API that was compiled and run against the board's library (issue V).

The library (esp-tflite-micro, which the esp32 core 3.x carries) is not part of the project and is not
built in CI; core/firmware/tflm_api.py lists every TFLM header, name, member and op registration the build
proof verified. These tests read the sketch as the bundle ships it and fail on anything off that list, and
show that the check catches the calls that broke the old bundles."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.firmware import tflm_api
from core.firmware.spec import OP_RESOLVER_CALLS

SKETCH = Path(__file__).resolve().parent.parent / "firmware" / "forecast_studio"


def _sources() -> dict[str, str]:
    files = {p.name: p.read_text(encoding="utf-8") for p in sorted(SKETCH.iterdir()) if p.is_file()}
    # op_resolver.h as rendered with every op the studio can map: each registration the bundle can contain.
    files["op_resolver.h"] = files.pop("op_resolver.h.in").replace("$op_count", str(len(OP_RESOLVER_CALLS))).replace(
        "$registrations", "\n".join(f"  if (resolver.{c}() != kTfLiteOk) return false;" for c in OP_RESOLVER_CALLS.values()))
    return files


def test_sketch_uses_only_verified_tflm_api():
    assert tflm_api.unverified(_sources()) == []


def test_every_op_the_studio_can_register_exists_in_the_verified_library():
    assert set(OP_RESOLVER_CALLS.values()) <= tflm_api.RESOLVER_METHODS


@pytest.mark.parametrize("old, new, needle", [
    # The 2022 library's calls, the ones that broke every bundle before this check.
    ("g_interpreter->Reset()", "g_interpreter->ResetVariableTensors()", "ResetVariableTensors"),
    ('#include "fs_model.h"', '#include "fs_model.h"\n#include <TensorFlowLite_ESP32.h>', "TensorFlowLite_ESP32.h"),
    ("tflite::MicroInterpreter(model, g_resolver, arena, FS_ARENA_BYTES)",
     "tflite::MicroInterpreter(model, g_resolver, arena, FS_ARENA_BYTES, &tflite::GetMicroErrorReporter())",
     "tflite::GetMicroErrorReporter"),
    ('#include "tensorflow/lite/micro/micro_interpreter.h"',
     '#include "tensorflow/lite/micro/all_ops_resolver.h"\n#include "tensorflow/lite/micro/micro_interpreter.h"',
     "all_ops_resolver.h"),
    ("g_interpreter->AllocateTensors()", "g_interpreter->AllocateTensors(true)", None),  # same name: allowed
    ("->bytes", "->bytes_used", "bytes_used"),
])
def test_the_check_catches_an_unverified_call(old, new, needle):
    files = _sources()
    assert old in files["fs_model.cpp"], old
    files["fs_model.cpp"] = files["fs_model.cpp"].replace(old, new)
    problems = tflm_api.unverified(files)
    if needle is None:
        assert problems == []
    else:
        assert any(needle in p for p in problems), problems


def test_a_new_op_mapping_must_be_verified():
    files = _sources()
    files["op_resolver.h"] += "\ninline void More(tflite::MicroMutableOpResolver<1>& r) { r.AddStablehloComposite(); }\n"
    assert any("AddStablehloComposite" in p for p in tflm_api.unverified(files))


def test_plain_cpp_files_stay_free_of_tflm():
    """fs_protocol and fs_steploop are compiled by the host tests without TFLM: they may name none of it."""
    files = _sources()
    files["fs_protocol.cpp"] = files["fs_protocol.cpp"].replace(
        '#include "fs_protocol.h"', '#include "fs_protocol.h"\n#include "tensorflow/lite/micro/micro_log.h"', 1)
    assert any("micro_log.h" in p for p in tflm_api.unverified(files))


def test_bundle_names_the_core_and_platform_it_was_verified_for(tmp_path):
    from core.firmware import render as firmware_render

    text = (Path(firmware_render.TEMPLATES) / "platformio.ini.in").read_text()
    assert "$platform_url" in text and "lib_deps =" not in text.replace("; No lib_deps", "")
    assert tflm_api.PLATFORMIO_PLATFORM.endswith(f"/{tflm_api.PLATFORMIO_PLATFORM_VERSION}/platform-espressif32.zip")
    assert "#" not in tflm_api.PLATFORMIO_PLATFORM  # a release, never a branch
