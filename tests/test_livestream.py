"""The live stream's core (issue 33, item 3): readings from the export's windows or a CSV, one injected anomaly,
the loop that sends them with R to an emulated board at a pace a test drives (no sleeps), and the detection
summary."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.board import Board
from core.errors import StudioError
from core.livestream import Anomaly, LiveStream, change_sd, inject, injected, readings_from_csv, readings_from_windows, score
from tests.firmware_support import SLICE_ALARM_EXPORT


def test_windows_join_back_into_their_readings_and_stop_at_a_break():
    series = np.arange(20, dtype=float).reshape(10, 2)
    X = np.stack([series[i:i + 3] for i in range(8)])
    assert np.array_equal(readings_from_windows(X), series)
    broken = X.copy()
    broken[5] += 100
    assert np.array_equal(readings_from_windows(broken), series[:7])


@pytest.mark.parametrize("kind", ["spike", "shift", "drift", "stuck", "dropped"])
def test_each_anomaly_changes_only_its_column_from_its_start(kind):
    clean = np.c_[np.arange(50.0), -np.arange(50.0)]
    values, keep = injected(clean, Anomaly(kind, 20, size=7.0, length=5, column=0))
    assert np.array_equal(values[:, 1], clean[:, 1])
    assert np.array_equal(values[:20], clean[:20]) and keep[:20].all()
    changed = np.flatnonzero((values[:, 0] != clean[:, 0]) | ~keep)
    assert changed.min() == 20 and changed.max() == (20 if kind == "spike" else 24)
    if kind == "drift":
        assert values[24, 0] - clean[24, 0] == pytest.approx(7.0)
    if kind == "stuck":
        assert (values[20:25, 0] == clean[19, 0]).all()


def test_an_anomaly_outside_the_stream_or_of_no_known_kind_is_refused():
    with pytest.raises(StudioError, match="outside the stream"):
        injected(np.zeros((5, 1)), Anomaly("spike", 9))
    with pytest.raises(StudioError, match="Unknown anomaly"):
        inject(np.zeros(5), "wobble", 1, 1.0)


def test_csv_readings_by_the_models_names_else_by_count():
    frame = pd.DataFrame({"when": ["a", "b"], "hum": [1.0, 2.0], "temp": [3.0, 4.0]})
    assert readings_from_csv(frame, 2, ("temp", "hum")).tolist() == [[3.0, 1.0], [4.0, 2.0]]
    assert readings_from_csv(frame, 2).tolist() == [[1.0, 3.0], [2.0, 4.0]]
    with pytest.raises(StudioError, match="reads 3 per reading"):
        readings_from_csv(frame, 3)


def test_score_says_detected_delay_and_false_alarms():
    s = score([3, 50, 52, 90], start=50, span=1, n=100, settle=4)
    assert s["detected"] and s["delay"] == 0 and s["false"] == 2
    assert score([70], start=50, span=1, n=100, settle=4)["detected"] is False
    assert change_sd(np.array([0.0, 1.0, 0.0, 1.0])) == pytest.approx(0.0 + np.std([1, -1, 1]))


def _walk(n=60, seed=1):
    rng = np.random.default_rng(seed)
    return np.round(np.c_[10 + np.cumsum(rng.normal(0, 0.3, n)), -5 + np.cumsum(rng.normal(0, 0.6, n))], 3)


def test_stream_to_the_emulated_board_flags_a_spike_where_it_was_put():
    from core.board.emulator import Emulator

    values, keep = injected(_walk(), Anomaly("spike", 30, size=8.0, column=0))
    now = [0]  # the board's clock moves with the pace the test drives: no gap on a slow machine
    with Emulator(SLICE_ALARM_EXPORT, dtype="float32", clock=lambda: now[0]) as emu, Board(emu.path) as board:
        board.ready(5)
        pauses: list[float] = []

        def wait(seconds):
            pauses.append(seconds)
            now[0] += int(seconds * 1000)
            return False
        live = LiveStream(board, values, keep, pace=4.0, wait=wait, anomaly=Anomaly("spike", 30, size=8.0))
        live.run()  # in this thread: the test drives the pace (every pause asked for, none slept)
    assert pauses == [0.25] * 59
    got = live.snapshot()
    assert len(got) == 60 and all(r.sent for r in got)
    assert got[1].forecast == () and len(got[2].forecast) == 2  # the window (3) fills first
    # the spike, then the reading after it (the model forecasts the last reading: the spike itself)
    assert [(r.i, a.kind, a.target) for r in got for a in r.alerts] == [(30, "band", 0), (31, "band", 0)]
    s = live.summary(window=3, horizon=1)
    assert s["detected"] and s["delay"] == 0 and s["by"] == "band" and s["false"] == 0


def test_stop_ends_a_pause_and_the_stream_and_dropped_readings_are_not_sent():
    from core.board.emulator import Emulator

    values, keep = injected(_walk(20), Anomaly("dropped", 5, length=3))
    with Emulator(SLICE_ALARM_EXPORT, dtype="float32", clock=lambda: 0) as emu, Board(emu.path) as board:
        board.ready(5)
        live = LiveStream(board, values, keep, pace=1.0)

        def wait(seconds):  # the stop arrives during the 10th pause
            if len(live.received) == 10:
                live.stop()
            return live.stopped
        live._wait = wait
        live.start()
        assert live.wait(30)
        sent = [line for line in board.log_text().splitlines() if "> R " in line]
    assert live.error is None and len(live.snapshot()) == 10
    assert [r.sent for r in live.snapshot()][4:9] == [True, False, False, False, True]
    assert len(sent) == 7


def _paced_stream(board, now: list, anomaly: Anomaly, n: int = 40, pace: float = 5.0) -> LiveStream:
    """A stream at ``pace`` whose every pause moves the emulated board's clock by one reading's time and then
    waits for the board to have looked at it (an I round trip: the emulator ticks its clock before each line),
    so the board sees exactly the pauses the stream makes, however slow this machine is."""
    values, keep = injected(_walk(n), anomaly)

    def wait(seconds):
        now[0] += int(round(seconds * 1000))
        board.ready(5)
        return False
    return LiveStream(board, values, keep, pace=pace, wait=wait, anomaly=anomaly)


def test_dropped_readings_in_a_paced_stream_raise_the_boards_gap_alarm_three_readings_later():
    """The stream tells the board its pace (W 200 at 5 readings a second), so the gap limit is 600 ms: the board
    flags readings 20.. dropped at the fourth missing one (elapsed 800 ms > 600), 3 readings after the first,
    once; then W 0 gives the board its own limit back."""
    from core.board.emulator import Emulator

    now = [0]
    anomaly = Anomaly("dropped", 20, length=6)
    with Emulator(SLICE_ALARM_EXPORT, dtype="float32", clock=lambda: now[0]) as emu, Board(emu.path) as board:
        board.ready(5)
        live = _paced_stream(board, now, anomaly)
        live.run()
        sent = [line for line in board.log_text().splitlines() if "> W" in line or "FS PACE" in line]
        limit = emu.engine.watch.gap_limit
    assert live.error is None and (live.gap.ms, live.gap.limit) == (200, 600)  # the board's answer to W 200
    # the log keeps its newest lines only (W 200 may have left it): the stream's last words were W 0
    assert [line.split(" ", 1)[1] for line in sent][-2:] == ["> W 0", "< FS PACE ms=0 limit=10800000"]
    assert limit == 10_800_000  # the bundle's own again
    gaps = [(r.i, a.k, a.ms, a.limit) for r in live.snapshot() for a in r.alerts if a.kind == "gap"]
    assert gaps == [(23, 20, 800, 600)]
    s = live.summary(window=3, horizon=1)
    assert s["detected"] and s["delay"] == 3 and s["by"] == "gap" and s["false"] == 0 and s["gap"] == "on"
    from studio.live_view import summary_words

    assert summary_words(s).startswith("The board flagged the injected dropped 3 reading(s) later (a gap alarm)")


def test_a_board_from_before_W_streams_on_and_the_summary_says_dropped_readings_cannot_be_flagged():
    from core.board.emulator import Emulator

    now = [0]
    anomaly = Anomaly("dropped", 20, length=6)
    with Emulator(SLICE_ALARM_EXPORT, dtype="float32", clock=lambda: now[0]) as emu, Board(emu.path) as board:
        feed = emu.engine.feed
        # the firmware before W: every W line is an unknown command
        emu.engine.feed = lambda data: (["FS ERR UNKNOWN unknown command, use I, T, P v1,v2,... or R v1,v2,..."]
                                        if data.lstrip().startswith(b"W") else feed(data))
        board.ready(5)
        live = _paced_stream(board, now, anomaly)
        live.run()
    assert live.error is None and live.gap == "old board" and len(live.snapshot()) == 40
    s = live.summary(window=3, horizon=1)
    assert not s["detected"] and s["gap"] == "old board"
    from studio.live_view import summary_words

    assert "cannot be told the stream's pace" in summary_words(s)


def test_pace_ms_is_the_time_between_readings():
    from core.livestream import pace_ms

    assert [pace_ms(p) for p in (1.0, 2.0, 5.0, 20.0, 3.0, 5000.0)] == [1000, 500, 200, 50, 333, 1]


def test_the_device_steps_test_part_is_every_reading_not_the_spread_windows_joined(tmp_path):
    """An export keeps at most 64 test windows, evenly spread: joined back they gave one window's readings (elnino's
    121-reading test part streamed 12, no forecast). With the test part's rows in windows.npz the stream has them all;
    an export without them still joins its windows."""
    from core.board.reference import load_reference
    from studio.live_view import _test_part
    from tests.pty_board import make_reference
    from tests.test_cli_device import write_export

    ref = make_reference(n=6, window=4)
    rows = np.random.default_rng(2).uniform(0, 1, size=(40, 2))
    spread = np.stack([rows[i:i + 4] for i in (0, 9, 18, 27, 36)])  # windows far apart: they do not join
    ref.X = spread
    ref.y_host = ref.y_host[:5]
    out = write_export(ref, tmp_path / "exp")
    assert len(_test_part(load_reference(out))) == 4  # only the first window's readings
    with np.load(out / "windows.npz") as z:
        arrays = dict(z)
    np.savez(out / "windows.npz", **arrays, test_rows=rows.astype(np.float32))
    loaded = load_reference(out)
    got = _test_part(loaded)
    assert got.shape == (40, 2)
    assert np.allclose(got, rows.astype(np.float32) * loaded.in_scale + loaded.in_center)
