"""Will it fit, and how fast will it run, on a Seeed XIAO ESP32S3? Estimates with their basis stated.

Two uses: before training from a ``ModelSpec`` alone (bytes and arena estimated from the spec), and
after export with the measured ``.tflite`` bytes and TFLM arena (``estimate(spec, model_bytes=...,
arena_bytes=..., dtype=...)``). Latency is always an estimate from the multiply-add count.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from core.models import ModelSpec, count_macs, model_size_bytes

KB = 1024


@dataclass(frozen=True)
class Board:
    name: str
    cpu: str
    clock_mhz: int
    sram_bytes: int
    sram_usable_bytes: int
    psram_bytes: int
    flash_bytes: int
    app_partition_bytes: int
    firmware_bytes: int

    def to_dict(self) -> dict:
        return asdict(self)


# SPEC's board facts. The app partition is the Arduino core's default 8 MB table (app0 0x330000);
# the firmware size (Arduino core, USB serial, TFLM kernels) is an estimate, so the model gets the rest.
XIAO_ESP32S3 = Board(name="Seeed XIAO ESP32S3", cpu="ESP32-S3R8, dual-core Xtensa LX7", clock_mhz=240,
                     sram_bytes=512 * KB, sram_usable_bytes=320 * KB, psram_bytes=8 * KB * KB,
                     flash_bytes=8 * KB * KB, app_partition_bytes=0x330000, firmware_bytes=400 * KB)

# SPEC's one measurement on the board: LSTM(128) on 168 x 7 float32 took 2024 ms for 11,612,160 MACs.
REFERENCE_MACS = 11_612_160
REFERENCE_MS = 2024.0
FLOAT_MACS_PER_S = REFERENCE_MACS / (REFERENCE_MS / 1000.0)  # about 5.7 M MAC/s
# int8 speed-up over float, per part of the network. ESP-NN accelerates int8 fully-connected
# kernels, not the LSTM kernel, and the S3's FPU makes float MACs about as cheap as the reference
# int8 path with its requantisation; so recurrent layers are assumed no faster, dense layers 3x.
INT8_SPEEDUP_RECURRENT = 1.0
INT8_SPEEDUP_DENSE = 3.0
# PSRAM sits behind the cache on an 80 MHz octal bus: assume a quarter slower when the arena is there.
PSRAM_SLOWDOWN = 1.25
# Room the sketch itself needs in SRAM besides the arena (stacks, serial and line buffers).
SKETCH_RAM_BYTES = 24 * KB

# Flatbuffer and arena sizes measured on this stack (tf_keras 2.21 converter, tflite-micro wheel,
# batch 1) for LSTM/GRU/SimpleRNN/Dense models of 16-128 units and windows 24-168. Fused LSTM adds a
# fixed overhead; unrolled GRU/SimpleRNN add a cost per time step and layer that dominates their size.
_FLASH_FIXED = {("lstm", "float32"): 3000, ("lstm", "int8"): 4400, ("dense", "float32"): 1700,
                ("dense", "int8"): 2600, ("gru", "float32"): 1500, ("gru", "int8"): 2500,
                ("rnn", "float32"): 1500, ("rnn", "int8"): 2500}
_FLASH_PER_STEP = {("gru", "float32"): 2650, ("gru", "int8"): 5200, ("rnn", "float32"): 700, ("rnn", "int8"): 2300}
_ARENA_PER_STEP = {("gru", "float32"): 3700, ("gru", "int8"): 4450, ("rnn", "float32"): 1100, ("rnn", "int8"): 1350}


def _bytes_per_value(dtype: str) -> int:
    return 1 if dtype == "int8" else 4


def export_form(spec: ModelSpec, form: str | None = "auto") -> str:
    """The form the export gives this spec (core.steploop.resolve_form): "fused", "step" or "unrolled"."""
    from core.steploop import resolve_form

    return resolve_form(spec, form or "auto")[0]


def estimate_model_bytes(spec: ModelSpec, dtype: str = "float32", form: str | None = "auto") -> int:
    """The .tflite file size: weights plus the graph, fused LSTM, unrolled GRU/SimpleRNN (see above), or
    the step loop's one cell (``form``: auto picks what the export picks)."""
    if spec.kind != "dense" and export_form(spec, form) == "step":
        from core.steploop import estimate_step_flash

        return estimate_step_flash(spec, dtype)
    size = model_size_bytes(spec, dtype) + _FLASH_FIXED[(spec.kind, dtype)]
    size += spec.window * spec.layers * _FLASH_PER_STEP.get((spec.kind, dtype), 0)
    if spec.kind == "lstm":
        size += (spec.layers - 1) * 1500
    return int(size)


def estimate_arena_bytes(spec: ModelSpec, dtype: str = "float32", form: str | None = "auto") -> int:
    """TFLM tensor arena: activations the planner keeps alive plus per-op bookkeeping.

    The step loop (``form`` auto for GRU/SimpleRNN): one step's tensors, whatever the window.

    Fused LSTM: the input window and each layer's output sequence, plus about 6 state vectors per
    layer; unrolled cells: a measured cost per step and layer; dense: the flattened window.
    """
    if spec.kind != "dense" and export_form(spec, form) == "step":
        from core.steploop import estimate_step_arena

        return estimate_step_arena(spec, dtype)
    b = _bytes_per_value(dtype)
    w, n, u, layers = spec.window, spec.n_inputs, spec.units, spec.layers
    if spec.kind == "lstm":
        if dtype == "int8":
            arena = w * (n + u * layers) + 16 * u * layers + 3000
        else:
            arena = 4 * (w * (n + u * layers) + 6 * u * layers) + 2600
    elif spec.kind == "dense":
        arena = b * (w * n + 2 * u) + 1500 + (4 * w * n if dtype == "int8" else 0)
    else:
        gates = 3 if spec.kind == "gru" else 1
        arena = w * layers * _ARENA_PER_STEP[(spec.kind, dtype)] + b * (w * n + 2 * gates * u) + 2000
    return int(arena)


def latency_ms(spec_or_macs: ModelSpec | int, dtype: str = "float32", in_psram: bool = False) -> float:
    """Milliseconds per forecast from the multiply-adds, on SPEC's measured float speed."""
    if isinstance(spec_or_macs, ModelSpec):
        spec = spec_or_macs
        total = count_macs(spec)
        dense = total - _recurrent_macs(spec)
    else:
        total, dense = int(spec_or_macs), 0
    recurrent = total - dense
    if dtype == "int8":
        seconds = recurrent / (FLOAT_MACS_PER_S * INT8_SPEEDUP_RECURRENT) + dense / (FLOAT_MACS_PER_S * INT8_SPEEDUP_DENSE)
    else:
        seconds = total / FLOAT_MACS_PER_S
    return seconds * 1000.0 * (PSRAM_SLOWDOWN if in_psram else 1.0)


def _recurrent_macs(spec: ModelSpec) -> int:
    if spec.kind == "dense":
        return 0
    from core.models import GATES  # the one gate table the counts use
    width = [spec.n_inputs] + [spec.units] * (spec.layers - 1)
    return sum(spec.window * GATES[spec.kind] * spec.units * (n + spec.units) for n in width)


LATENCY_BASIS = (f"estimate: multiply-adds / {FLOAT_MACS_PER_S / 1e6:.1f} M per second, calibrated on SPEC's "
                 f"LSTM(128) 168x7 float32 run (2024 ms); int8 assumed {INT8_SPEEDUP_RECURRENT:g}x for recurrent "
                 f"layers (ESP-NN does not speed up LSTM/GRU) and {INT8_SPEEDUP_DENSE:g}x for dense layers "
                 f"(ESP-NN fully-connected); {PSRAM_SLOWDOWN:g}x slower with the arena in PSRAM")


@dataclass
class Budget:
    """One dtype's needs against the board, with the basis of every number and what to change."""

    dtype: str
    macs: int
    model_bytes: int
    arena_bytes: int
    arena_in: str                  # "SRAM", "PSRAM" or "none" (does not fit)
    ram_needed_bytes: int
    sram_available_bytes: int
    psram_available_bytes: int
    flash_needed_bytes: int
    flash_available_bytes: int
    fits_ram: bool
    fits_flash: bool
    latency_ms: float
    measured: bool                 # True when bytes and arena came from a real export
    basis: str
    latency_basis: str = LATENCY_BASIS
    advice: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return self.fits_ram and self.fits_flash

    def to_dict(self) -> dict:
        return {**asdict(self), "fits": self.fits}

    def row(self) -> dict:
        return {"dtype": self.dtype,
                "model (flash)": f"{self.model_bytes / KB:,.1f} KB of {self.flash_available_bytes / KB:,.0f} KB",
                "arena (RAM)": f"{self.arena_bytes / KB:,.1f} KB in {self.arena_in}",
                "latency": f"~{self.latency_ms:,.0f} ms",
                "fits": "yes" if self.fits else "no"}

    def rows(self) -> list[dict]:
        return [self.row()]


@dataclass
class Budgets:
    """Float32 and int8 side by side (the Model page's pre-training table)."""

    float32: Budget
    int8: Budget

    @property
    def basis(self) -> str:
        return self.float32.basis

    @property
    def warnings(self) -> list[str]:
        out = [f"float32: {w}" for w in self.float32.warnings]
        if self.float32.warnings:
            out += [f"int8: {w}" for w in self.int8.warnings]
        return out

    @property
    def advice(self) -> list[str]:
        return list(dict.fromkeys(self.float32.advice + self.int8.advice))

    @property
    def fits(self) -> bool:
        return self.float32.fits or self.int8.fits

    def rows(self) -> list[dict]:
        return [self.float32.row(), self.int8.row()]

    def to_dict(self) -> dict:
        return {"float32": self.float32.to_dict(), "int8": self.int8.to_dict(), "basis": self.basis}


def _advice(spec: ModelSpec | None, dtype: str, over_sram: bool, fits_ram: bool, fits_flash: bool,
            latency: float, form: str | None = "auto") -> list[str]:
    """Which knob to turn first, cheapest loss of accuracy first."""
    out: list[str] = []
    unrolled = spec is not None and spec.kind in ("gru", "rnn") and export_form(spec, form) == "unrolled"
    if not fits_flash or not fits_ram or over_sram:
        if unrolled:
            out.append("Export the step loop instead (--form step, the default): the unrolled form repeats the cell "
                       "per time step (size and arena grow with the window). Or use LSTM: one fused op.")
        if dtype == "float32":
            out.append("Export int8: weights take a quarter of the flash.")
        out.append("Shorten the window: the arena grows with window x (inputs + units).")
        out.append("Use fewer units: size grows with units squared.")
        if spec is not None and spec.layers > 1:
            out.append("Use one recurrent layer instead of several.")
    if latency > 1000:
        out.append("Too slow for once-a-second forecasts: fewer units (cost ~ units^2) or a shorter window (cost ~ window).")
    return out


def estimate(source: ModelSpec | int, model_bytes: int | None = None, arena_bytes: int | None = None,
             dtype: str | None = "float32", board: Board = XIAO_ESP32S3, form: str | None = "auto") -> Budget | Budgets:
    """Needs against the board. ``source`` is a ModelSpec (missing numbers are estimated from it) or
    a multiply-add count (then ``model_bytes`` and ``arena_bytes`` are required). ``form``: the export
    form (core.steploop; auto = what the export picks: the step loop for GRU/SimpleRNN).

    ``dtype=None`` with a spec gives float32 and int8 side by side (``Budgets``).
    """
    if dtype is None:
        if not isinstance(source, ModelSpec):
            raise ValueError("dtype=None needs a ModelSpec")
        return Budgets(estimate(source, model_bytes, arena_bytes, "float32", board, form),
                       estimate(source, None, None, "int8", board, form))
    if dtype not in ("float32", "int8"):
        raise ValueError(f"dtype must be 'float32' or 'int8', not {dtype!r}")
    spec = source if isinstance(source, ModelSpec) else None
    measured = bool(model_bytes) and bool(arena_bytes)
    if spec is not None:
        macs = count_macs(spec)
        model_bytes = int(model_bytes) if model_bytes else estimate_model_bytes(spec, dtype, form)
        arena_bytes = int(arena_bytes) if arena_bytes else estimate_arena_bytes(spec, dtype, form)
    else:
        if model_bytes is None or arena_bytes is None:
            raise ValueError("estimate(macs, ...) needs model_bytes and arena_bytes")
        macs, model_bytes, arena_bytes = int(source), int(model_bytes), int(arena_bytes)
    sram_free = board.sram_usable_bytes - SKETCH_RAM_BYTES
    if arena_bytes <= sram_free:
        arena_in = "SRAM"
    elif arena_bytes <= board.psram_bytes:
        arena_in = "PSRAM"
    else:
        arena_in = "none"
    fits_ram = arena_in != "none"
    flash_free = board.app_partition_bytes - board.firmware_bytes
    fits_flash = model_bytes <= flash_free
    lat = latency_ms(spec if spec is not None else macs, dtype, in_psram=arena_in == "PSRAM")
    if spec is not None and spec.kind != "dense" and export_form(spec, form) == "step":
        from core.steploop import STEP_INVOKE_OVERHEAD_MS

        lat += spec.window * STEP_INVOKE_OVERHEAD_MS  # one TFLM invoke per time step
    warnings: list[str] = []
    if arena_in == "PSRAM":
        warnings.append(f"The {arena_bytes / KB:,.0f} KB arena is more than the ~{sram_free / KB:,.0f} KB of SRAM left for it, "
                        "so it goes to PSRAM (build with PSRAM=opi): slower, but it runs.")
    if not fits_ram:
        warnings.append(f"The {arena_bytes / KB:,.0f} KB arena does not fit even in the {board.psram_bytes / KB / KB:.0f} MB PSRAM.")
    if not fits_flash:
        warnings.append(f"The {model_bytes / KB:,.0f} KB model is more than the ~{flash_free / KB:,.0f} KB of flash left "
                        "for it in the app partition.")
    if lat > 1000:
        warnings.append(f"About {lat / 1000:,.1f} s per forecast on the board (estimate).")
    src = "measured on the exported model" if measured else "estimated from the model spec (sizes measured on similar exports)"
    basis = (f"Estimate for the {board.name}: model and arena bytes {src}; RAM = arena in SRAM "
             f"(~{sram_free / KB:,.0f} KB free of {board.sram_usable_bytes / KB:,.0f} KB usable) else PSRAM; "
             f"flash = the {board.app_partition_bytes / KB:,.0f} KB app partition minus ~{board.firmware_bytes / KB:,.0f} KB of "
             f"firmware; latency {LATENCY_BASIS}.")
    return Budget(dtype=dtype, macs=macs, model_bytes=model_bytes, arena_bytes=arena_bytes, arena_in=arena_in,
                  ram_needed_bytes=arena_bytes + SKETCH_RAM_BYTES, sram_available_bytes=sram_free,
                  psram_available_bytes=board.psram_bytes, flash_needed_bytes=model_bytes,
                  flash_available_bytes=flash_free, fits_ram=fits_ram, fits_flash=fits_flash,
                  latency_ms=float(lat), measured=measured, basis=basis,
                  advice=_advice(spec, dtype, arena_in != "SRAM", fits_ram, fits_flash, lat, form), warnings=warnings)


def largest_fitting_units(spec: ModelSpec, dtype: str = "float32", in_sram: bool = True) -> int:
    """The most units (of this kind, window and layers) whose estimate fits; 0 if none."""
    best = 0
    lo, hi = 1, 1024
    while lo <= hi:
        mid = (lo + hi) // 2
        b = estimate(ModelSpec(**{**spec.to_dict(), "units": mid}), dtype=dtype)
        ok = b.fits and (b.arena_in == "SRAM" or not in_sram)
        if ok:
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    return best
