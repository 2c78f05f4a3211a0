"""Board budget: the calibration point, fitting rules, and estimates close to sizes measured on this stack."""
from __future__ import annotations

import pytest

from core import budget
from core.budget import XIAO_ESP32S3, estimate, estimate_arena_bytes, estimate_model_bytes, latency_ms
from core.models import ModelSpec, count_macs

SEED = ModelSpec(kind="lstm", units=128, window=168, n_inputs=7)


def test_board_facts_from_spec():
    b = XIAO_ESP32S3
    assert (b.clock_mhz, b.sram_bytes, b.sram_usable_bytes) == (240, 512 * 1024, 320 * 1024)
    assert b.psram_bytes == b.flash_bytes == 8 * 1024 * 1024
    assert b.to_dict()["name"] == "Seeed XIAO ESP32S3"


def test_latency_is_calibrated_on_the_reference_run():
    assert latency_ms(SEED) == pytest.approx(2024, rel=0.01)
    assert latency_ms(count_macs(SEED)) == pytest.approx(2024, rel=0.01)
    half = ModelSpec(kind="lstm", units=128, window=84, n_inputs=7)
    assert latency_ms(half) == pytest.approx(1012, rel=0.01)  # linear in the window
    assert latency_ms(SEED, in_psram=True) > latency_ms(SEED)


def test_int8_speedup_only_where_esp_nn_helps():
    dense = ModelSpec(kind="dense", units=64, window=168, n_inputs=7)
    assert latency_ms(dense, "int8") == pytest.approx(latency_ms(dense) / budget.INT8_SPEEDUP_DENSE)
    assert latency_ms(SEED, "int8") <= latency_ms(SEED)
    assert "ESP-NN" in budget.LATENCY_BASIS and "2024" in budget.LATENCY_BASIS


# (kind, units, window, inputs, dtype) -> (.tflite bytes, TFLM arena bytes) measured on this stack
MEASURED = {
    ("lstm", 16, 24, 1, "float32"): (7464, 4649), ("lstm", 16, 96, 1, "float32"): (7464, 9531),
    ("lstm", 64, 24, 3, "float32"): (72488, 10508), ("lstm", 128, 168, 7, "float32"): (281384, 96434),
    ("lstm", 128, 168, 7, "int8"): (75096, 27107), ("gru", 16, 48, 1, "float32"): (130928, 176502),
    ("gru", 16, 48, 1, "int8"): (248120, 213607), ("rnn", 16, 48, 1, "float32"): (36128, 52006),
    ("rnn", 16, 48, 1, "int8"): (109288, 64212), ("dense", 32, 24, 3, "float32"): (11064, 2208),
}


@pytest.mark.parametrize("key", list(MEASURED))
def test_pre_training_estimates_near_measured_exports(key):
    kind, units, window, n, dtype = key
    spec = ModelSpec(kind=kind, units=units, window=window, n_inputs=n)
    size, arena = MEASURED[key]
    form = "unrolled" if kind in ("gru", "rnn") else "auto"  # these GRU/SimpleRNN figures are unrolled exports
    assert estimate_model_bytes(spec, dtype, form) == pytest.approx(size, rel=0.2)
    assert estimate_arena_bytes(spec, dtype, form) == pytest.approx(arena, rel=0.25)


def test_small_lstm_fits_in_sram_both_dtypes():
    both = estimate(ModelSpec(kind="lstm", units=32, window=24, n_inputs=3), dtype=None)
    for b in (both.float32, both.int8):
        assert b.fits and b.arena_in == "SRAM" and not b.warnings and not b.advice
        assert "estimate" in b.basis.lower()
    assert both.int8.model_bytes < both.float32.model_bytes
    assert [r["dtype"] for r in both.rows()] == ["float32", "int8"]


def test_long_gru_as_the_default_step_loop_fits_sram():
    """GRU/SimpleRNN export as the step loop by default (core.steploop): one step in the arena."""
    for kind in ("gru", "rnn"):
        both = estimate(ModelSpec(kind=kind, units=32, window=168, n_inputs=7), dtype=None)
        for b in (both.float32, both.int8):
            assert b.fits and b.arena_in == "SRAM" and b.arena_bytes < 16 * 1024 and not b.advice
        short = estimate(ModelSpec(kind=kind, units=32, window=24, n_inputs=7))
        assert short.model_bytes == both.float32.model_bytes and short.arena_bytes == both.float32.arena_bytes
        assert short.latency_ms < both.float32.latency_ms


def test_long_unrolled_gru_goes_to_psram_with_advice():
    b = estimate(ModelSpec(kind="gru", units=32, window=168, n_inputs=7), form="unrolled")
    assert b.arena_in == "PSRAM" and b.fits_ram
    assert any("PSRAM" in w for w in b.warnings)
    assert any("LSTM" in a for a in b.advice) and any("window" in a for a in b.advice)


def test_too_big_does_not_fit_and_says_which_knob():
    b = estimate(ModelSpec(kind="lstm", units=1024, layers=3, window=168, n_inputs=7))
    assert not b.fits_flash and not b.fits
    assert any("int8" in a for a in b.advice) and any("units" in a for a in b.advice)
    assert any("layer" in a for a in b.advice)
    assert b.latency_ms > 1000 and any("s per forecast" in w for w in b.warnings)


def test_measured_numbers_override_the_estimates():
    b = estimate(SEED, model_bytes=281384, arena_bytes=400 * 1024, dtype="float32")
    assert b.measured and b.model_bytes == 281384 and b.arena_in == "PSRAM"
    assert "measured" in b.basis
    raw = estimate(count_macs(SEED), model_bytes=10_000, arena_bytes=9 * 1024 * 1024, dtype="int8")
    assert raw.arena_in == "none" and not raw.fits_ram and not raw.fits
    d = raw.to_dict()
    assert d["fits"] is False and "latency_basis" in d
    with pytest.raises(ValueError):
        estimate(1000)


def test_largest_fitting_units():
    spec = ModelSpec(kind="lstm", units=8, window=48, n_inputs=4)
    n = budget.largest_fitting_units(spec)
    assert n > 32
    assert estimate(ModelSpec(**{**spec.to_dict(), "units": n})).arena_in == "SRAM"
    assert estimate(ModelSpec(**{**spec.to_dict(), "units": n + 1})).arena_in != "SRAM" or \
        not estimate(ModelSpec(**{**spec.to_dict(), "units": n + 1})).fits
