"""The board's watch (issue 33): adaptive bands and FS ALERT lines, the same in the g++-compiled fs_protocol.cpp
and in the emulator (core.alarms), on golden transcripts and on long streams with injected anomalies; the host
parses the alerts. Gaps are made by moving a clock, never by waiting."""
from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
import serial

from core.board import Board
from core.board.emulator import Emulator, ProtocolEngine, TflmRunner
from core.board.protocol import Alert, Result, parse_line
from core.firmware import load_bundle_spec
from tests.test_firmware_protocol import _compile  # the one g++ build of a rendered bundle
from tests.alarm_transcripts import engine, engine_lines, regenerate
from tests.firmware_support import ALARM_TRANSCRIPTS, SLICE_ALARM_EXPORT, SLICE_BAND_EXPORT, assert_transcript, read_transcript

HOST_MAIN = Path(__file__).resolve().parent / "firmware_host" / "main.cpp"
GXX = shutil.which("g++")
CASES = sorted(ALARM_TRANSCRIPTS.glob("*.txt"))


@pytest.fixture(scope="module")
def host_binary(tmp_path_factory) -> Path:
    if GXX is None:
        pytest.skip("g++ is not installed: the firmware protocol code cannot be compiled on this host")
    return _compile(tmp_path_factory.mktemp("fw_alarms"), SLICE_ALARM_EXPORT)


def _engine(export=SLICE_ALARM_EXPORT) -> ProtocolEngine:
    return engine(export)


def _engine_lines(eng: ProtocolEngine, sent: list[bytes]) -> list[str]:
    return engine_lines(eng, sent)


def test_there_are_alarm_transcripts():
    assert {c.name for c in CASES} >= {"stream.txt"}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.stem)
def test_alarm_transcripts_are_what_their_generator_writes(case):
    """`python -m tests.alarm_transcripts --regen` made them: inputs and comments kept, every answer the emulator's."""
    text = case.read_text(encoding="ascii")
    assert regenerate(text) == text


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.stem)
def test_host_compiled_protocol_passes_alarm_transcript(host_binary, case):
    sent, expected = read_transcript(case)
    proc = subprocess.run([str(host_binary)], input=b"".join(sent), capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert_transcript(expected, proc.stdout.decode("ascii").splitlines(), f"g++ {case.name}")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.stem)
def test_emulator_engine_passes_alarm_transcript(case):
    sent, expected = read_transcript(case)
    assert_transcript(expected, _engine_lines(_engine(), sent), f"emulator {case.name}")


def _stream(n=1500, seed=3) -> list[bytes]:
    """A random walk with spikes, a level shift, a stuck stretch, a gap and bad lines: everything the watch does."""
    rng = np.random.default_rng(seed)
    temp = 15 + np.cumsum(rng.normal(0, 0.3, n))
    hum = -5 + np.cumsum(rng.normal(0, 0.8, n))
    temp[200] += 9
    temp[700:] += 6
    hum[400:420] = hum[400]
    temp = np.round(temp, 3)
    hum = np.round(hum, 2)
    out, clock = [], 0
    for i in range(n):
        if i == 900:
            out.append(f"@ {clock + 20_000_000}\n".encode())
            clock += 20_000_000
        if i % 97 == 5:
            out.append(b"R 1,nan\n")
        clock += 1000
        out.append(f"@ {clock}\n".encode())
        out.append(f"R {temp[i]:g},{hum[i]:g}\n".encode())
        if i % 250 == 0:
            out.append(b"P 1,2,3,4,5,6\n")
    return out


def test_board_numbers_equal_the_hosts_over_a_long_stream(host_binary):
    """Byte for byte: every adaptive bound and every alert of 1,500 readings, g++ against the emulator."""
    sent = _stream()
    proc = subprocess.run([str(host_binary)], input=b"".join(sent), capture_output=True, timeout=60)
    board = [line.split(" us=")[0] + line.split(" us=")[1].split(" ", 1)[1] if " us=" in line else line
             for line in proc.stdout.decode("ascii").splitlines()]
    host = [line.split(" us=")[0] + line.split(" us=")[1].split(" ", 1)[1] if " us=" in line else line
            for line in _engine_lines(_engine(), sent)]
    assert board == host
    alerts = [parse_line(line) for line in board if line.startswith("FS ALERT")]
    kinds = {a.kind for a in alerts}
    assert kinds == {"band", "stuck", "gap", "drift"}, kinds  # the level shift at 700 also drifts the CUSUM
    assert any(a.kind == "band" and a.k == 200 for a in alerts)  # the spike, at once
    assert any(a.kind == "band" and a.k == 700 for a in alerts)  # the level shift, at once
    assert [a.k for a in alerts if a.kind == "stuck"] == [402]  # 400, 401, 402: one more than the training's longest run, 2
    assert [a.k for a in alerts if a.kind == "gap"] == [900]


def test_a_bundle_without_the_watch_data_prints_no_alert():
    """The slice export with bands but no training runs: adaptive bands and band alarms, never a stuck alarm;
    P and T print exactly as before while nothing has been streamed."""
    engine = _engine(SLICE_BAND_EXPORT)
    lines = _engine_lines(engine, [b"R 1,2\n"] * 10)
    assert not any("kind=stuck" in line for line in lines)


def test_alert_lines_parse_and_unknown_fields_are_kept():
    rec = parse_line("FS ALERT k=4 y=20 lo=9.261222 hi=13.73878 level=95 target=0 kind=band")
    assert rec == Alert(k=4, kind="band", target=0, y=20.0, lo=9.261222, hi=13.73878, level="95")
    assert parse_line("FS ALERT k=7 kind=gap ms=10800001 limit=10800000").ms == 10800001
    stuck = parse_line("FS ALERT k=5 kind=stuck y=-3 run=3 limit=2 target=1 future=yes")
    assert stuck.run == 3 and stuck.extra == (("future", "yes"),) and "stuck at -3" in stuck.words()
    assert type(parse_line("FS ALERT y=1")).__name__ == "Other"  # no k: not an alert


def test_emulator_gap_alarm_on_a_moved_clock_reaches_the_board_object():
    """Over a real pty: readings, then the emulator's clock moves past the timeout; Board reports the gap."""
    now = [0]
    moved = threading.Event()

    def clock() -> int:
        return now[0]

    emu = Emulator(SLICE_ALARM_EXPORT, dtype="float32", clock=clock, reading_timeout_ms=5000)
    with emu, Board(emu.path) as board:
        board.ready()
        for reading in ([10, -5], [11, -4], [12, -3], [30, -2]):
            answer, alerts = board.stream(reading)
        assert isinstance(answer, Result)
        assert [a.kind for a in alerts] == ["band"] and alerts[0].k == 3
        cursor = board.cursor()
        now[0] = 5001
        moved.set()
        # the emulator ticks its clock every pass of its loop; an I round trip proves a pass has run since
        board.ready()
        board.ready()
        gaps = [a for a in board.alerts(cursor) if a.kind == "gap"]
    assert len(gaps) == 1 and gaps[0].k == 4 and gaps[0].ms == 5001


def test_studio_device_json_reports_the_boards_alerts(tmp_path, capsys):
    """`studio device --stream CSV --json` on the emulated board: every reading's forecast and the alerts."""
    import json

    from studio.cli import main

    csv = tmp_path / "stream.csv"
    csv.write_text("temp,hum\n10,-5\n11,-4\n12,-3\n30,-2\n12,-1\n")
    with Emulator(SLICE_ALARM_EXPORT, dtype="float32") as emu:
        assert main(["device", "--port", emu.path, "--export", str(SLICE_ALARM_EXPORT), "--no-self-test",
                     "--stream", str(csv), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["stream"]["readings"] == 5 and payload["stream"]["forecasts"][0] is None
    assert payload["stream"]["forecasts"][3] == [30.0, -2.0]
    assert [(a["k"], a["kind"], a["y"]) for a in payload["alerts"]] == [(3, "band", 30.0), (4, "band", 12.0)]


def test_drift_alert_parses_with_its_sum_and_threshold_kept():
    a = parse_line("FS ALERT k=12 kind=drift y=13 cusum=5.189309 h=5 dir=up target=0")
    assert isinstance(a, Alert) and a.kind == "drift" and a.y == 13.0 and a.target == 0
    assert dict(a.extra) == {"cusum": "5.189309", "h": "5", "dir": "up"}
    assert "slow drift up" in a.words() and "passed 5" in a.words()


def _quality_stream(name: str, columns: tuple[str, str]) -> tuple[np.ndarray, list[bytes]]:
    """Two columns of a real series (sample_data/quality) as R lines, every value as the text the board parses."""
    import pandas as pd

    frame = pd.read_csv(Path(__file__).resolve().parent.parent / "sample_data" / "quality" / name)
    values = frame[list(columns)].astype(float).interpolate().bfill().to_numpy()
    text = [[f"{v:.6g}" for v in row] for row in values]
    return np.array([[float(v) for v in row] for row in text], np.float32), [f"R {a},{b}\n".encode() for a, b in text]


@pytest.mark.parametrize("name,columns", [("seattle_weather_daily.csv", ("temp_max", "temp_min"))])
def test_a_real_series_keeps_the_boards_adaptive_band_at_its_level(host_binary, name, columns):
    """A real series streamed to the emulated board whose exported bands do not fit it (the slice export's: temp
    80% 0.5, 95% 1.5, where seattle's day-to-day change is 2.2 degrees): over the stream each adaptive band covers its level within 5 points for every target, the
    g++-compiled fs_protocol.cpp prints the same bounds and alerts as the host's core.alarms.Watch (the emulator)."""
    readings, sent = _quality_stream(name, columns)
    engine = _engine()
    lines = _engine_lines(engine, sent)
    proc = subprocess.run([str(host_binary)], input=b"".join(sent), capture_output=True, timeout=60)
    strip = lambda line: line.split(" us=")[0] + " " + line.split(" us=")[1].split(" ", 1)[1] if " us=" in line else line
    assert [strip(l) for l in proc.stdout.decode("ascii").splitlines()] == [strip(l) for l in lines]
    results = [dict(f.split("=", 1) for f in l.split()[2:]) for l in lines if l.startswith("FS RESULT")]
    assert len(results) == len(readings) - 2  # window 3: the first forecast at the third reading

    w = engine.watch.spec
    inside = np.zeros((len(w.levels), 2), int)
    for i in range(1, len(results)):  # reading i + 2 against the band forecast at the reading before (step 1)
        x = readings[i + 2]
        for li, level in enumerate(w.levels):
            lo = np.array(results[i - 1][f"lo{level}"].split(","), float)
            hi = np.array(results[i - 1][f"hi{level}"].split(","), float)
            inside[li] += (lo <= x) & (x <= hi)
    coverage = 100.0 * inside / (len(results) - 1)
    static_ok = [[abs(float(np.mean(np.abs(np.diff(readings[:, t])) <= w.half_width[li, 0, t])) * 100 - float(level)) <= 5
                  for t in range(2)] for li, level in enumerate(w.levels)]
    assert not all(map(all, static_ok))  # the exported bands do not fit this series
    for li, level in enumerate(w.levels):
        assert np.all(np.abs(coverage[li] - float(level)) <= 5), (level, coverage[li])


def test_the_bundles_gap_limit_is_three_time_steps_of_the_runs_data():
    """FS_READING_TIMEOUT_MS from the run's frequency (run.json's dataset.freq), not a fixed 3 hours: a stream of
    one-minute data that stops is flagged after 3 minutes; FS_DATA_STEP_MS (the sketch's sensor period) is one step."""
    from core.alarms import WatchSpec, gap_limit_ms
    from core.firmware.render import _step_lines

    assert gap_limit_ms("min") == (60_000, 180_000)
    assert gap_limit_ms("15min") == (900_000, 2_700_000)
    assert gap_limit_ms("h") == (3_600_000, 10_800_000)
    assert gap_limit_ms("D") == (86_400_000, 259_200_000)
    assert gap_limit_ms("MS")[1] == 0  # three months: past what the board's millis() can time
    assert gap_limit_ms(None) == (0, 10_800_000)  # unknown: the default
    lines = "\n".join(_step_lines(WatchSpec(horizon=1, targets=1, columns=(0,), timeout_ms=180_000, step_ms=60_000)))
    assert "#define FS_DATA_STEP_MS 60000UL" in lines and "#define FS_READING_TIMEOUT_MS 180000UL" in lines


def test_a_bundle_from_a_run_takes_its_gap_limit_from_the_runs_frequency(tmp_path):
    import json

    (tmp_path / "run.json").write_text(json.dumps({"dataset": {"freq": "10min"}}))
    w = load_bundle_spec(SLICE_ALARM_EXPORT, "float32", run_dir=tmp_path).watch
    assert (w.step_ms, w.timeout_ms) == (600_000, 1_800_000)
    assert load_bundle_spec(SLICE_ALARM_EXPORT, "float32").watch.timeout_ms == 10_800_000


def _autocorrelated(n=400, rho=0.9, seed=5):
    """One-step validation errors that lag a swing (AR(1), rho 0.9): the CUSUM at the plain scale alarms again and again."""
    rng = np.random.default_rng(seed)
    e = np.zeros((n, 2))
    for i in range(1, n):
        e[i] = rho * e[i - 1] + rng.normal(0, [0.4, 1.0])
    return 10.0 + e, np.full((n, 2), 10.0)


def test_the_drift_scale_is_calibrated_on_the_validation_stream():
    """drift_calibrate widens each target's scale by the smallest factor at which the board's own float32 CUSUM over
    the validation stream raises at most the rate's alarms; white errors keep factor 1."""
    from core.alarms import DRIFT_FACTORS, drift_alarms, drift_calibrate

    actual, pred = _autocorrelated()
    base = (0.4, 1.0)
    assert drift_alarms(actual[:, 0], pred[:, 0], base[0], 0.25, 5.0) > 4  # the plain scale over-alarms
    cal = drift_calibrate(actual, pred, base, 0.25, 5.0, rate=5.0)
    assert all(f > 1 for f in cal["factor"]) and all(a <= 2 for a in cal["alarms"])  # 5 / 1,000 of 400 readings
    for t in range(2):
        assert cal["scale"][t] == float(np.float32(np.float32(base[t]) * np.float32(cal["factor"][t])))
        assert drift_alarms(actual[:, t], pred[:, t], cal["scale"][t], 0.25, 5.0) == cal["alarms"][t]
        smaller = DRIFT_FACTORS[DRIFT_FACTORS.index(cal["factor"][t]) - 1]
        assert drift_alarms(actual[:, t], pred[:, t], np.float32(base[t]) * np.float32(smaller), 0.25, 5.0) > 2
    white = np.random.default_rng(1).normal(0, 1, (400, 2))
    assert drift_calibrate(white, np.zeros((400, 2)), (1.0, 1.0), 0.25, 5.0, rate=10.0)["factor"] == [1.0, 1.0]


def test_the_drift_rule_learns_a_bias_the_forecaster_keeps_and_still_catches_a_change():
    """The CUSUM runs on the error less its slow mean: forecasts 1.5 scales off from the first reading alarm a few
    times and then no more, where the plain CUSUM (memory 0) alarms every 5 readings for as long as it lasts; after
    a quiet stretch, a climb of 0.75 scales a reading is caught as soon as the plain CUSUM catches it."""
    from core.alarms import DRIFT_MEMORY, DRIFT_START, drift_alarms

    assert (DRIFT_MEMORY, DRIFT_START) == (200.0, 20.0)
    biased = np.full(400, 1.5)
    early = drift_alarms(biased[:100], np.zeros(100), 1.0, 0.25, 5.0)
    assert 1 <= early <= 5 and drift_alarms(biased, np.zeros(400), 1.0, 0.25, 5.0) == early
    assert drift_alarms(biased, np.zeros(400), 1.0, 0.25, 5.0, memory=0.0) == 400 // 5
    climb = np.r_[np.random.default_rng(2).normal(0, 0.3, 100), np.full(11, 0.75)]
    for memory in (0.0, DRIFT_MEMORY):
        assert drift_alarms(climb[:100], np.zeros(100), 1.0, 0.25, 5.0, memory=memory) == 0
        assert drift_alarms(climb, np.zeros(111), 1.0, 0.25, 5.0, memory=memory) == 1


def _calibrated_export(tmp_path) -> Path:
    """The alarm transcripts' export with a validation-calibrated drift record, as a trained run now writes it."""
    import json
    import shutil

    from core.intervals import drift_record

    export = tmp_path / "export"
    shutil.copytree(SLICE_ALARM_EXPORT, export)
    record = json.loads((export / "intervals.json").read_text())
    actual, pred = _autocorrelated()
    record["drift"] = drift_record(record, actual[:, None, :], pred[:, None, :])
    (export / "intervals.json").write_text(json.dumps(record))
    return export


def test_a_calibrated_drift_scale_reaches_the_board_exactly(tmp_path):
    """model_config.h carries the calibrated scale as exact literals with its factor and rate; the g++-compiled
    fs_protocol.cpp and the emulator print the same lines over a long stream with it."""
    import json

    if GXX is None:
        pytest.skip("g++ is not installed")
    export = _calibrated_export(tmp_path)
    drift = json.loads((export / "intervals.json").read_text())["drift"]
    w = load_bundle_spec(export, "float32").watch
    assert w.drift_scale == tuple(drift["scale"]) and w.drift_factor == tuple(drift["factor"])
    assert all(f > 1 for f in w.drift_factor)
    exe = _compile(tmp_path / "fw", export)
    header = next((tmp_path / "fw").glob("*/forecast_studio/model_config.h")).read_text()
    literals = ", ".join("%.9gf" % np.float32(v) for v in w.drift_scale)  # 9 digits: reads back bit-identical
    assert "static const float kDriftScale[FS_TARGETS] = {" + literals + "};" in header
    assert "validation stream raised at most" in header
    sent = _stream()
    proc = subprocess.run([str(exe)], input=b"".join(sent), capture_output=True, timeout=60)
    strip = lambda line: line.split(" us=")[0] + line.split(" us=")[1].split(" ", 1)[1] if " us=" in line else line
    spec = load_bundle_spec(export, "float32")
    engine = ProtocolEngine(spec, TflmRunner(spec))
    assert [strip(l) for l in proc.stdout.decode("ascii").splitlines()] == [strip(l) for l in _engine_lines(engine, sent)]


def test_a_value_inside_the_training_range_is_held_to_the_runs_inside_it(tmp_path):
    """Humidity rests at 100% for days, solar power at 0 all night: the training's longest run is at a bound, and with
    one limit a value stuck anywhere else went unflagged. A value strictly inside the range is held to the longest run
    inside it; at a bound, the longest run as before. g++ and the emulator print the same lines."""
    import json

    if GXX is None:
        pytest.skip("g++ is not installed: the firmware protocol code cannot be compiled on this host")
    export = tmp_path / "export"
    shutil.copytree(SLICE_ALARM_EXPORT, export)
    record = json.loads((export / "intervals.json").read_text())
    record.update(longest_run=[4, 4], stuck_inside=[1, 1], stuck_range=[[0.0, 30.0], [-50.0, 50.0]])
    (export / "intervals.json").write_text(json.dumps(record))
    spec = load_bundle_spec(export, "float32")
    assert spec.watch.stuck_inside == (1, 1) and spec.watch.stuck_edges[0][1] < 30.0 < spec.watch.stuck_edges[0][1] + 1e-3
    sent = [b"R 30,1\n", b"R 30,1\n", b"R 30,2\n", b"R 30,3\n", b"R 30,4\n", b"R 12,5\n", b"R 12,6\n", b"R 12,7\n"]
    exe = _compile(tmp_path / "fw", export)
    proc = subprocess.run([str(exe)], input=b"".join(sent), capture_output=True, timeout=30)
    board = [line.split(" us=")[0] + line.split(" us=")[1].split(" ", 1)[1] if " us=" in line else line
             for line in proc.stdout.decode("ascii").splitlines()]
    host = [line.split(" us=")[0] + line.split(" us=")[1].split(" ", 1)[1] if " us=" in line else line
            for line in _engine_lines(_engine(export), sent)]
    assert board == host
    stuck = [(a.k, a.target, a.limit) for a in map(parse_line, board) if isinstance(a, Alert) and a.kind == "stuck"]
    # target 1 at 1 (inside): its 2nd reading; target 0 at 30 (the top): its 5th; target 0 at 12 (inside): its 2nd
    assert stuck == [(1, 1, 1), (4, 0, 4), (6, 0, 1)]
