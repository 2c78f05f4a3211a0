"""core.board.protocol: every line the board can print, the P command's number format, and bytes that are not text."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import StudioError
from core.board.protocol import (Done, EiPrediction, EiPredictionsHeader, EiTiming, Err, Expected, Other, Ready, Result,
                           TextHealth, decode_bytes, format_p_command, format_value, parse_line, parse_p_command,
                           unreadable_ratio)


def test_ready_line():
    rec = parse_line("FS READY model=lstm32 window=24 features=3 horizon=2 targets=1 dtype=int8 arena=23456\r\n")
    assert rec == Ready("lstm32", 24, 3, 2, 1, "int8", 23456)


def test_ready_mismatches_name_each_field():
    rec = Ready("lstm32", 24, 3, 2, 1, "float32", 1000)
    assert rec.mismatches(Expected("lstm32", 24, 3, 2, 1)) == []
    diffs = rec.mismatches(Expected("gru16", 48, 3, 2, 1, "float32"))
    assert diffs == ["model: board lstm32, export gru16", "window: board 24, export 48"]


@pytest.mark.parametrize("line", [
    "FS READY model=x window=24",                                                  # fields missing
    "FS READY model=x window=2x features=1 horizon=1 targets=1 dtype=float32 arena=1",  # not a number
    "FS RESULT k=0 us=12 y=1.0,abc",
    "FS RESULT k=zero us=12 y=1.0",
    "FS DONE n=",
    "FS BOGUS",
])
def test_malformed_fs_lines_are_other_not_errors(line):
    assert parse_line(line) == Other(line)


def test_result_done_err():
    assert parse_line("FS RESULT k=3 us=2024000 y=21.5,-0.25,1e-05") == Result(3, 2024000, (21.5, -0.25, 1e-05))
    assert parse_line("FS RESULT k=-1 us=7 y=0.5") == Result(-1, 7, (0.5,))
    res = parse_line("FS RESULT k=0 us=1 y=nan,inf")
    assert isinstance(res, Result) and np.isnan(res.y[0]) and np.isinf(res.y[1])
    assert parse_line("FS DONE n=5") == Done(5)
    assert parse_line("FS ERR BADLEN expected 72 values, got 71") == Err("BADLEN", "expected 72 values, got 71")
    assert parse_line("FS ERR ALLOC") == Err("ALLOC", "")


def test_edge_impulse_static_buffer_output():
    transcript = [
        "Edge Impulse standalone inferencing (Arduino)",
        "run_classifier returned: 0",
        "Timing: DSP 0 ms, inference 2024 ms, anomaly 0 ms",
        "Predictions:",
        "  value: 0.36065",
    ]
    recs = [parse_line(line + "\r\n") for line in transcript]
    assert recs == [Other(transcript[0]), Other(transcript[1]), EiTiming(0.0, 2024.0, 0.0), EiPredictionsHeader(),
                    EiPrediction("value", 0.36065)]
    # the older SDK's header carries the timing; a pasted one-line transcript keeps the value
    assert parse_line("Predictions (DSP: 1 ms., Classification: 12 ms., Anomaly: 0 ms.): ") == EiTiming(1.0, 12.0, 0.0)
    assert parse_line("Predictions: value: 0.36065") == EiPrediction("value", 0.36065)
    assert parse_line("Timing: DSP 0.25 ms, inference 3.5 ms, anomaly 0 ms") == EiTiming(0.25, 3.5, 0.0)
    assert parse_line("ERR: Failed to run classifier (-5)") == Err("EI", "ERR: Failed to run classifier (-5)")
    assert isinstance(parse_line("The size of your 'features' array is not correct. Expected 72 items, but had 71"), Err)


@given(st.text(max_size=200))
def test_parse_line_never_raises(text):
    rec = parse_line(text)
    assert rec is not None


def test_format_p_command_time_major():
    window = np.array([[1.0, 2.0], [3.0, 4.5], [-0.125, 1e-30]])
    line = format_p_command(window)
    assert line == "P 1,2,3,4.5,-0.125,1e-30\n"
    np.testing.assert_array_equal(parse_p_command(line), window.astype(np.float32).reshape(-1))


@settings(max_examples=300)
@given(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=1, max_size=40),
       st.integers(1, 5))
def test_p_command_round_trips_float32(values, features):
    n = (len(values) // features) * features or features
    arr = np.resize(np.array(values, dtype=np.float32), n).reshape(-1, features)
    line = format_p_command(arr)
    assert line.startswith("P ") and line.endswith("\n") and " " not in line[2:].strip()
    back = parse_p_command(line)
    np.testing.assert_array_equal(back, arr.reshape(-1))


@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_format_value_is_shortest_roundtrip(v):
    text = format_value(v)
    assert np.float32(float(text)) == np.float32(v)
    assert len(text) <= len(repr(float(np.float32(v))))


@pytest.mark.parametrize("bad", [[[float("nan")]], [[1.0, float("inf")]], [1.0, 2.0], [[]]])
def test_format_rejects_what_the_board_cannot_take(bad):
    with pytest.raises(StudioError):
        format_p_command(bad)


def test_result_line_round_trip_from_board_format():
    # what the firmware prints (%.9g of float32) reads back to the same float32
    ys = np.array([21.123456, -0.000123, 12345.678], dtype=np.float32)
    rec = parse_line(f"FS RESULT k=0 us=5 y={','.join(f'{v:.9g}' for v in ys)}")
    np.testing.assert_array_equal(np.array(rec.y, dtype=np.float32), ys)


def test_decode_bytes_keeps_utf8_and_shows_garbage():
    assert decode_bytes(b"21.5 \xc2\xb0C") == "21.5 °C"
    shown = decode_bytes(b"ok\x00\xff\x1b[2J")
    assert shown == "ok\\x00\\xff\\x1b[2J"
    assert "\x00" not in shown and "\x1b" not in shown


@given(st.binary(max_size=300))
def test_decode_bytes_never_raises_and_is_printable(raw):
    text = decode_bytes(raw)
    assert all(c.isprintable() or c in "\t\r\n" for c in text)


def test_text_health_flags_noise_not_text():
    health = TextHealth(span=64, threshold=0.3, min_bytes=16)
    health.feed(b"FS RESULT k=0 us=1 y=1.5\n" * 3)
    assert not health.unreadable
    health.feed(bytes([0x80, 0xF8, 0x00, 0xFE]) * 16)
    assert health.unreadable and health.ratio > 0.9
    health.reset()
    health.feed(b"\xff" * 5)  # too few bytes to judge
    assert not health.unreadable
    assert unreadable_ratio(b"") == 0.0
    assert unreadable_ratio(b"ab\x00\x01") == 0.5


@pytest.mark.parametrize("line", [" " * 20000 + "x", "Timing: DSP " + "1" * 20000, "Predictions:" + " " * 20000 + "x",
                                  "  " + "a " * 10000 + ":", "FS RESULT k=1 " + " " * 20000 + "x"])
def test_pathological_lines_parse_fast(line):
    # the reader thread parses every line a board prints; a noisy board must not stall it
    import time

    start = time.perf_counter()
    parse_line(line)
    assert time.perf_counter() - start < 0.05


# ---------------------------------------------------------------- bands after y= (issue N)

def test_result_with_bands_parses_them():
    rec = parse_line("FS RESULT k=0 us=7 y=14,3 lo80=13.5,1.75 hi80=14.5,4.25 lo95=12.5,0.25 hi95=15.5,5.75\n")
    assert isinstance(rec, Result) and rec.y == (14.0, 3.0)
    assert [b[0] for b in rec.bands] == ["80", "95"]
    assert rec.band("80") == ((13.5, 1.75), (14.5, 4.25)) and rec.band("95") == ((12.5, 0.25), (15.5, 5.75))
    assert rec.band("90") is None


def test_an_old_result_line_still_parses_with_no_bands():
    rec = parse_line("FS RESULT k=-1 us=1200 y=21.5,0.25")
    assert rec == Result(-1, 1200, (21.5, 0.25)) and rec.bands == ()


def test_unknown_fields_after_y_are_skipped_and_bad_bands_dropped():
    rec = parse_line("FS RESULT k=2 us=5 y=1,2 conf=high lo80=0.5,1.5 hi80=1.5,2.5 lo97.5=0,1 hi97.5=2,x")
    assert rec.y == (1.0, 2.0) and [b[0] for b in rec.bands] == ["80"]
    # a band with the wrong count of values, or only one side, is left out; the forecast still counts
    rec = parse_line("FS RESULT k=2 us=5 y=1,2 lo80=0.5 hi80=1.5,2.5 lo95=0,1")
    assert rec.y == (1.0, 2.0) and rec.bands == ()
    # words that are not key=value still make the line something else, as before
    assert isinstance(parse_line("FS RESULT k=2 us=5 y=1,2 garbage"), Other)
