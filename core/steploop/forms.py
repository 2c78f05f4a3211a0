"""The export side: the loop verified over the test windows, the forms compared (flash, arena, latency,
export time) and reported, and what the bundle and the emulator need."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.steploop.graph import FORMS, state_size
from core.steploop.loop import LoopStats, drift, run_loop

def resolve_form(spec: Any, form: str = "auto") -> tuple[str, str]:
    """(form, reason) for a model spec. ``auto``: the form that fits the board best (``choose_form``: in practice
    the fused op for LSTM, the step loop for GRU and SimpleRNN, whose flash and arena do not grow with the
    window); "step", "unrolled" or "fused" on request."""
    from core.errors import StudioError

    if form not in FORMS:
        raise StudioError(f"Unknown export form {form!r}.", f"Use one of {', '.join(FORMS)}.")
    kind = spec.kind
    if kind == "dense":
        if form in ("step", "fused"):
            raise StudioError(f"A Dense model has no recurrent cell to export as the {form} form.",
                              "Use --form auto (or unrolled) for a Dense model.")
        return "unrolled", "a Dense model has no recurrence: one graph over the whole window"
    if form == "fused":
        if kind != "lstm":
            raise StudioError(f"TFLite Micro has a fused kernel for LSTM only, not for {spec.label}.",
                              "Use --form step (or auto) for GRU and SimpleRNN.")
        return "fused", "requested: the fused UNIDIRECTIONAL_SEQUENCE_LSTM op"
    # Every target form runs as a step loop: a seasonal form's step graph outputs the change and the firmware
    # adds the seasonal reference (rows earlier in the window) in float, as it does for int8 change forms.
    if form == "step" and getattr(spec, "relative", False):
        raise StudioError("The step loop cannot export a model whose inputs are relative to the window's last value: "
                          "the one-step model sees each time step before the last one arrives.",
                          "Use --form auto (fused or unrolled), or train the model without relative inputs.")
    if form == "step":
        return "step", "requested: one time step exported, the firmware loops it over the window"
    if form == "unrolled":
        return "unrolled", "requested: one copy of the cell per time step"
    return choose_form(spec)


def choose_form(spec: Any) -> tuple[str, str]:
    """The form that fits the board best, by the budget's figures (``compare_forms``): one whose float32 and
    int8 models fit flash and whose arenas fit SRAM first, then the smallest flash, then the shortest
    estimated latency; the reason quotes the figures, and the export time."""
    from core import budget
    from core.models import KIND_LABELS

    compare = compare_forms(spec)
    flash_free = budget.XIAO_ESP32S3.app_partition_bytes - budget.XIAO_ESP32S3.firmware_bytes
    forms = [f for f in compare if f != "basis"]

    def key(f):
        e = compare[f]
        fits = all(e[d]["flash_bytes"] <= flash_free and e[d]["arena_bytes"] <= budget.XIAO_ESP32S3.psram_bytes
                   for d in ("float32", "int8"))
        sram = all(e[d]["arena_in"] == "SRAM" for d in ("float32", "int8"))
        return (not fits, not sram, e["float32"]["flash_bytes"], e["float32"]["latency_ms"])

    best = min(forms, key=key)
    e = compare[best]
    others = "; ".join(f"{f}: {compare[f]['float32']['flash_bytes'] / 1024:,.0f} KB flash, "
                       f"{compare[f]['float32']['arena_bytes'] / 1024:,.0f} KB arena in {compare[f]['float32']['arena_in']}, "
                       f"~{compare[f]['export_s']:,.0f} s to export" for f in forms if f != best)
    what = {"fused": "TFLite Micro's fused LSTM op", "step": "the step loop (one time step, looped by the firmware)",
            "unrolled": "the unrolled graph"}[best]
    lead = (f"TFLite Micro has no {KIND_LABELS[spec.kind]} kernel; " if spec.kind in ("gru", "rnn") else "")
    return best, (f"{lead}{what} fits the board best for a {spec.window}-step window: "
                  f"{e['float32']['flash_bytes'] / 1024:,.0f} KB flash, {e['float32']['arena_bytes'] / 1024:,.0f} KB arena "
                  f"in {e['float32']['arena_in']} (float32), ~{e['float32']['latency_ms']:,.0f} ms, ~{e['export_s']:,.0f} s "
                  f"to export (estimates; {others})")


# ----------------------------------------------------------------------------- export side (the studio's process)

TRACE_WINDOWS = 8  # windows whose state is recorded after every step, for the int8 drift figure


class _TfliteAdapter:
    """TensorFlow Lite's interpreter behind the TFLM runtime's calls (machines without tflite-micro)."""

    def __init__(self, buf: bytes) -> None:
        import tensorflow as tf

        self._i = tf.lite.Interpreter(model_content=buf)
        self._i.allocate_tensors()
        self._ins = [d["index"] for d in self._i.get_input_details()]
        self._outs = [d["index"] for d in self._i.get_output_details()]

    def set_input(self, arr, i):
        self._i.set_tensor(self._ins[i], arr)

    def invoke(self):
        self._i.invoke()

    def get_output(self, i):
        return self._i.get_tensor(self._outs[i])


def verify(model_path: Path, X: np.ndarray, layout: dict, timeout: float, use_tflm: bool) -> tuple[np.ndarray, dict | None, dict]:
    """Run the loop over X on TFLM (arena found by the export's own bisection on the step model), or on
    TFLite where the wheel is missing. Returns (y scaled float (n, horizon*targets), arena, extra) with
    extra = {"trace": states of the first TRACE_WINDOWS windows, "state_clipped", "state_values"}."""
    import tempfile

    from core import export as ex
    from core.config import DEFAULTS

    if not use_tflm:
        y, trace = run_loop(_TfliteAdapter(Path(model_path).read_bytes()), layout, X, trace=TRACE_WINDOWS,
                            stats=(st := LoopStats()))
        return y, None, {"trace": trace, "state_clipped": st.state_clipped, "state_values": st.state_values}
    with ex.TflmRuntime(model_path) as rt, tempfile.TemporaryDirectory(prefix="fs-step-") as tmp:
        arena = ex.find_arena(rt)
        reported, margin = ex.arena_with_margin(arena["measured"])
        src, dst, lay = Path(tmp) / "in.npy", Path(tmp) / "out.npz", Path(tmp) / "layout.json"
        np.save(src, np.ascontiguousarray(X, np.float32), allow_pickle=False)
        lay.write_text(json.dumps(layout))
        ok, msg = rt.ask(f"steprun {reported} {src} {dst} {lay} {TRACE_WINDOWS}", timeout=timeout)
        if not ok:
            from core.errors import StudioError

            raise StudioError(f"The step model failed on the TFLM runtime with a {reported:,}-byte arena ({msg}).",
                              "Export the unrolled form instead (--form unrolled), or report this with the run.")
        with np.load(dst, allow_pickle=False) as z:
            y, trace, clipped = z["y"], z["trace"], z["clipped"]
        below = arena["measured"] - int(DEFAULTS["export"]["arena_check_below_bytes"])
        below_fails = not rt.allocates(below)[0]
        arena.update({"reported": reported, "margin": margin, "below_checked": below, "below_fails": below_fails,
                      "reported_runs": True, "probe_crashes": rt.crashes})
    return y, arena, {"trace": trace, "state_clipped": int(clipped[0]), "state_values": int(clipped[1])}


# Board figures for the comparison before export (after export the measured ones replace the chosen form's).
# Measured on this stack (bench/bench_steploop.py, 32 units, 7 inputs): the step graph's bytes over its
# weights, and the arena of one step.
_STEP_FLASH_FIXED = {("gru", "float32"): 4700, ("gru", "int8"): 9700, ("rnn", "float32"): 2600,
                     ("rnn", "int8"): 3100, ("lstm", "float32"): 6300, ("lstm", "int8"): 10200}
# Arena of one step (fitted to the same exports): a base, the step's activations, and TFLM's per-op
# bookkeeping (nodes, tensor metadata, int8 requantisation scratch) for about this many ops per layer.
_STEP_OPS = {"gru": 26, "rnn": 5, "lstm": 46}
_STEP_ARENA_BASE = 3200
_STEP_ARENA_PER_OP = {"float32": 114, "int8": 191}
# The step loop's own cost per time step besides the cell's ops (which the unrolled graph runs as well):
# one Invoke call and the state's int8 (de)quantisation at the graph edge. An estimate: about 15 us on the S3.
STEP_INVOKE_OVERHEAD_MS = 0.015
# Export time (float32 + int8, verified on TFLM, 2 cores), measured in bench/bench_steploop.py on 168 steps.
_EXPORT_S = {"step": (6.0, 0.0), "fused": (10.0, 0.0), "unrolled": (8.0, 0.30)}  # (fixed, per step and layer)


def estimate_step_flash(spec: Any, dtype: str) -> int:
    """The step model's flatbuffer: the weights once plus the one-step graph."""
    from core.models import model_size_bytes

    return int(model_size_bytes(spec, dtype) + _STEP_FLASH_FIXED[(spec.kind, dtype)] * spec.layers)


def estimate_step_arena(spec: Any, dtype: str) -> int:
    """One step's tensors: x, state in/out, every gate's activations, the head; plus TFLM bookkeeping.
    Measured (32 units, 7 inputs): GRU 7.5 / 8.3 KB, SimpleRNN 4.5 / 4.3 KB, LSTM 10.6 / 12.2 KB (float32 / int8)."""
    b = 1 if dtype == "int8" else 4
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[spec.kind]
    S = state_size(spec)
    acts = b * (spec.n_inputs + 2 * S + 3 * gates * spec.units + spec.horizon * spec.n_targets)
    return int(_STEP_ARENA_BASE + acts + _STEP_ARENA_PER_OP[dtype] * _STEP_OPS[spec.kind] * spec.layers)


def compare_forms(spec: Any, measured: dict | None = None, chosen: str | None = None) -> dict:
    """Flash, arena, latency and export time of each form this spec can take, per dtype, from the budget
    module's estimates (``measured``: {dtype: {"bytes", "arena_bytes"}} of the exported form replaces
    its estimate). Returns {form: {dtype: {...}, "export_s": ...}, "basis": ...}."""
    from core import budget

    if spec.kind == "dense":
        return {}
    # A relative-input model (issue 34) subtracts the window's last row before the first layer: no step loop.
    forms = ([] if getattr(spec, "relative", False) else ["step"]) + ["unrolled"] + (["fused"] if spec.kind == "lstm" else [])
    out: dict = {}
    sram = budget.XIAO_ESP32S3.sram_usable_bytes - budget.SKETCH_RAM_BYTES
    for form in forms:
        entry: dict = {}
        for dtype in ("float32", "int8"):
            if form == "step":
                flash = estimate_step_flash(spec, dtype)
                arena = estimate_step_arena(spec, dtype)
            elif form == "unrolled" and spec.kind == "lstm":
                # No measured table for an unrolled LSTM: a GRU's per-step cost scaled by the gate count.
                gru = dict(spec.to_dict(), kind="gru")
                g = type(spec).from_dict(gru)
                flash = int(budget.estimate_model_bytes(g, dtype, "unrolled") * 4 / 3)
                arena = int(budget.estimate_arena_bytes(g, dtype, "unrolled") * 4 / 3)
            else:
                flash = budget.estimate_model_bytes(spec, dtype, form)
                arena = budget.estimate_arena_bytes(spec, dtype, form)
            source = "estimate"
            if chosen == form and measured and dtype in measured and measured[dtype].get("bytes"):
                flash, source = int(measured[dtype]["bytes"]), "measured"
                arena = int(measured[dtype].get("arena_bytes") or arena)
            in_psram = arena > sram
            lat = budget.latency_ms(spec, dtype, in_psram=in_psram)
            if form == "step":
                lat += spec.window * STEP_INVOKE_OVERHEAD_MS
            entry[dtype] = {"flash_bytes": int(flash), "arena_bytes": int(arena), "arena_in": "PSRAM" if in_psram else "SRAM",
                            "latency_ms": float(lat), "source": source}
        fixed, per = _EXPORT_S[form]
        entry["export_s"] = float(fixed + per * spec.window * spec.layers)
        out[form] = entry
    out["basis"] = ("flash and arena: sizes measured on this stack for each form (core.budget, core.steploop), replaced by "
                    "the export's own measurement for the form exported; latency: multiply-adds at the board's measured "
                    f"speed, plus {STEP_INVOKE_OVERHEAD_MS * 1000:.0f} us per step for the step loop's invokes (estimate); "
                    "export time: float32 + int8 measured here")
    return out


def form_report(spec: Any, form: str, reason: str, entries: dict, extras: dict) -> dict:
    """The report's ``form`` section: which form, why, the comparison, and for the step loop its state
    layout and the int8 state drift against the float32 loop on TFLM."""
    d: dict = {"form": form, "reason": reason,
               "compare": compare_forms(spec, {k: v for k, v in entries.items()}, chosen=form)}
    if form == "step":
        d["state_size"] = state_size(spec)
        d["state_precision"] = ("float32 between steps in the firmware's own buffers; the int8 model's state tensors "
                                "are quantized at the graph edge each step (fs_steploop.cpp)")
        if "int8" in extras and "float32" in extras:
            tr8, tr32 = extras["int8"]["trace"], extras["float32"]["trace"]
            if tr8 is not None and tr32 is not None and np.size(tr8) and np.shape(tr8) == np.shape(tr32):
                d["int8_state_drift"] = drift(tr8, tr32)
        if "int8" in extras:
            e = extras["int8"]
            d["int8_state_clipped"] = {"values": e["state_clipped"], "of": e["state_values"]}
    return d


# ----------------------------------------------------------------------------- bundle and emulator


def bundle_shapes(model_bytes: bytes, arena: int, layout: dict, report: dict) -> tuple[tuple, tuple]:
    """(1, window, features) and (1, horizon, targets) of a step model, read by loading it on TFLM (a
    model that does not load there must not become a bundle); the window comes from the report."""
    from core.errors import StudioError
    from tflite_micro.python.tflite_micro import runtime

    try:
        interp = runtime.Interpreter.from_bytes(model_bytes, arena_size=max(arena, 4096))
        x = tuple(int(v) for v in interp.get_input_details(layout["x_input"])["shape"])
        s = tuple(int(v) for v in interp.get_input_details(layout["state_input"])["shape"])
        y = tuple(int(v) for v in interp.get_output_details(layout["y_output"])["shape"])
    except Exception as err:  # the runtime raises RuntimeError/ValueError with TFLM's text
        raise StudioError(f"The exported step model does not load on the TFLM runtime ({err}).", "Export the run again.") from err
    if len(x) != 2 or s != (1, int(layout["state_size"])):
        raise StudioError(f"The step model's inputs {x}, {s} are not (1, features) and (1, state).", "Export the run again.")
    window = int(report.get("window") or 0)
    if window < 1:
        raise StudioError("The export report gives no window for the step model.", "Export the run again.")
    return (1, window, x[1]), y


class StepRunner:
    """The emulator's model for a step-loop bundle: the firmware's loop on the TFLM runtime, with its
    int8 (de)quantisation of x, the state and y (``run_loop``)."""

    def __init__(self, spec: Any) -> None:
        from core.errors import StudioError
        from tflite_micro.python.tflite_micro import runtime

        try:
            self._interp = runtime.Interpreter.from_bytes(spec.model_bytes, arena_size=spec.arena_bytes)
        except Exception as err:
            raise StudioError(f"The bundle's step model does not start on TFLM with a {spec.arena_bytes}-byte arena "
                              f"({err}).", "Export the run again.") from err
        self._layout = spec.step_layout
        self._shape = (1, spec.window, spec.features)

    def __call__(self, x_scaled: np.ndarray) -> tuple[np.ndarray, int]:
        X = np.asarray(x_scaled, np.float32).reshape(self._shape)
        start = time.perf_counter_ns()
        y, _ = run_loop(self._interp, self._layout, X)
        return y[0].astype(np.float32), int((time.perf_counter_ns() - start) // 1000)


def form_rows(forms: dict) -> list[dict]:
    """The forms side by side, one row per form and dtype, for the Export page and the CLI."""
    compare = (forms or {}).get("compare") or {}
    chosen = (forms or {}).get("form")
    rows = []
    for form, entry in compare.items():
        if form == "basis":
            continue
        for dtype in ("float32", "int8"):
            e = entry.get(dtype) or {}
            rows.append({"form": form + (" (exported)" if form == chosen else ""), "model": dtype,
                         "flash": f"{e.get('flash_bytes', 0) / 1024:,.1f} KB",
                         "arena": f"{e.get('arena_bytes', 0) / 1024:,.1f} KB in {e.get('arena_in', '?')}",
                         "latency (estimate)": f"~{e.get('latency_ms', 0):,.0f} ms",
                         "export time": f"~{entry.get('export_s', 0):,.0f} s", "figures": e.get("source", "")})
    return rows
