"""The offline firmware bundle: an Arduino sketch and a PlatformIO project for the XIAO ESP32S3.

`load_bundle_spec` gathers everything a bundle holds (the exported model's bytes, the
window and scaler constants, real test windows in the data's units with the host's
forecasts) from an export directory; `render_files` fills the templates in `firmware/`;
`render_bundle` zips them; the device emulator (`core/board/emulator.py`) runs the same spec, so
the stand-in board answers exactly what the flashed one would.

Read top-down: ``spec`` (``load_bundle_spec``: what goes in, checked), ``render`` (``render_bundle``), ``tflm_api``
(the board's TFLM the sketch targets, and every TFLM name it may use, verified by compiling against it).
"""
from core.firmware.spec import (BundleSpec, DEFAULT_WINDOWS, DTYPES, INTERNAL_ARENA_MAX, OP_RESOLVER_CALLS,
                                PSRAM_ARENA_MAX, Quant, ROOT, SKETCH, TEMPLATES, arena_placement, load_bundle_spec,
                                normalize_op, op_registrations)
from core.firmware.render import (PREVIEW_FILES, bundle_manifest, bundle_name, firmware_target, render_bundle,
                                  render_files, sketch_preview, stale_bundle)

__all__ = [
    "BundleSpec", "DEFAULT_WINDOWS", "DTYPES", "INTERNAL_ARENA_MAX", "OP_RESOLVER_CALLS", "PREVIEW_FILES",
    "PSRAM_ARENA_MAX", "Quant", "ROOT", "SKETCH", "TEMPLATES", "arena_placement", "bundle_manifest",
    "bundle_name", "load_bundle_spec", "normalize_op", "op_registrations", "render_bundle", "render_files",
    "sketch_preview", "firmware_target", "stale_bundle",
]
