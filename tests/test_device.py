"""core.board against a scripted board on a real pseudo-terminal, opened with real pyserial.

Every fault the Device step promises to name is produced for real here: a second opener (busy), a port
the user may not open, the master side closed mid-read (unplugged), garbage and half lines, silence,
bytes as a wrongly-clocked UART delivers them, and a board flashed with another model.
"""
from __future__ import annotations

import json
import os
import pwd
import select
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from core.board import (Board, EiReading, Reference, compare, compare_ei, ei_readings, list_ports, load_reference,
                         order_ports, parse_transcript, port_info)
from core.errors import StudioError
from core.board.protocol import EiTiming, Expected, Result
from tests.pty_board import PtyBoard, firmware, make_reference, ready_line, uart_garble, wait_until

ROOT = Path(__file__).resolve().parent.parent
# Short deadlines keep the fault tests fast; the defaults in core/config.py are for real boards.
T = 30.0  # an answer's deadline: every use expects an answer (or an error line), so it only bounds a failure


@pytest.fixture
def ref() -> Reference:
    return make_reference()


@pytest.fixture
def pty_boards():
    made: list[PtyBoard] = []

    def make(*args, **kwargs) -> PtyBoard:
        b = PtyBoard(*args, **kwargs)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


@pytest.fixture
def boards():
    opened: list[Board] = []

    def connect(port: str, **kwargs) -> Board:
        b = Board(port, **kwargs)
        opened.append(b)
        return b

    yield connect
    for b in opened:
        b.close()


# --- ports ---------------------------------------------------------------------------------------

def test_xiao_ids_named_and_listed_first():
    ports = order_ports([port_info("/dev/ttyS0", "n/a"), port_info("/dev/ttyUSB0", "CP2102", 0x10C4, 0xEA60),
                         port_info("/dev/ttyACM1", "USB JTAG/serial debug unit", 0x303A, 0x1001),
                         port_info("/dev/ttyACM0", "XIAO", 0x2886, 0x0056)])
    assert [p.device for p in ports] == ["/dev/ttyACM0", "/dev/ttyACM1", "/dev/ttyS0", "/dev/ttyUSB0"]
    assert ports[0].is_xiao and ports[1].is_xiao and not ports[3].is_xiao
    assert "XIAO ESP32S3" in ports[0].label and "10C4:EA60" in ports[3].label
    assert port_info("/dev/ttyACM2", "", 0x2886, 0x8056).is_xiao


def test_list_ports_runs_on_this_machine():
    ports = list_ports()
    assert all(hasattr(p, "label") for p in ports)
    assert [p.is_xiao for p in ports] == sorted((p.is_xiao for p in ports), reverse=True)


# --- the protocol over a pty -----------------------------------------------------------------------

def test_ready_self_test_and_predict_agree(ref, pty_boards, boards):
    pty = pty_boards(firmware(ref))
    board = boards(pty.path, expected=ref.expected)
    ready = board.ready(timeout=T)
    assert (ready.window, ready.features, ready.horizon, ready.targets) == (4, 2, 2, 1)
    results = board.self_test(timeout=T)
    assert [r.k for r in results] == [0, 1, 2]
    cmp = compare(results, ref)
    assert cmp.agree, cmp.problems
    assert cmp.max_abs_err < 1e-4 and len(cmp.rows) == 3 * 2
    assert cmp.timing_us == {"min": 1500.0, "median": 1501.0, "max": 1502.0}
    assert [r.window for r in cmp.rows[::2]] == [1, 3, 4]

    pairs = [(i, board.predict(ref.window_units(i), timeout=T)) for i in (0, 5)]
    cmp = compare(pairs, ref)
    assert cmp.agree and {r.window for r in cmp.rows} == {0, 5}
    # the board received the window in the data's units, float32-exact, time-major
    sent = [line for line in pty.received if line.startswith("P ")]
    np.testing.assert_array_equal(np.array(sent[0][2:].split(","), dtype=np.float32),
                                  ref.window_units(0).astype(np.float32).reshape(-1))
    log = board.log_text()
    assert "> I" in log and "< FS READY" in log and "< FS DONE n=3" in log


def test_disagreeing_board_is_called_out(ref, pty_boards, boards):
    pty = pty_boards(firmware(ref, offset=0.5))
    board = boards(pty.path)
    cmp = compare(board.self_test(timeout=T), ref)
    assert cmp.verdict == "disagree" and not any(r.ok for r in cmp.rows)
    assert cmp.max_abs_err == pytest.approx(0.5, abs=1e-4)
    assert "DISAGREE" in cmp.summary()


def test_board_error_line_becomes_clear_message(ref, pty_boards, boards):
    board = boards(pty_boards(firmware(ref)).path)
    with pytest.raises(StudioError, match="different number of values.*FS ERR BADLEN expected 8 values, got 6"):
        board.predict(np.zeros((3, 2)), timeout=T)
    assert board.connected  # an error answer is not a broken connection


def test_ready_resent_while_board_boots(ref, pty_boards, boards):
    # the first I is lost while the board reboots after the port opens
    answered = []

    def handler(b, line):
        if line == "I":
            answered.append(line)
            if len(answered) >= 2:
                b.write(ready_line(ref.expected))

    board = boards(pty_boards(handler).path)
    # The resend is what is tested (the first I is ignored); the deadline only bounds a failure.
    assert board.ready(timeout=60, resend_s=0.2).window == 4
    assert len(answered) >= 2


# --- faults ---------------------------------------------------------------------------------------------

def test_garbage_and_partial_lines_do_not_break_parsing(ref, pty_boards, boards):
    def handler(b, line):
        if line == "I":
            b.write(b"\x00\xff\xfe boot \x1b[0m\r\nets Jul 29 2019 12:21:46\r\n")
            ready = ready_line(ref.expected).encode()
            b.write(ready[:9])          # "FS READY " arrives alone...
            time.sleep(0.15)
            b.write(ready[9:30])
            time.sleep(0.1)
            b.write(ready[30:])         # ...and the rest later

    board = boards(pty_boards(handler).path)
    assert board.ready(timeout=T).model == "lstm"
    assert not board.unreadable
    text = board.log_text()
    assert "\\x00\\xff\\xfe boot" in text and "ets Jul 29" in text
    assert all("\x00" not in e.text for e in board.log())


def test_partial_line_is_shown_while_pending(pty_boards, boards):
    pty = pty_boards()
    board = boards(pty.path)
    pty.write(b"FS RESULT k=0 us=1")
    assert wait_until(lambda: "FS RESULT k=0 us=1" in board.pending_text)
    assert "(no line end yet)" in board.log_text()
    pty.write(b" y=1.5\n")
    assert wait_until(lambda: Result(0, 1, (1.5,)) in board.records())


def test_silent_board_times_out_without_hanging(pty_boards, boards):
    board = boards(pty_boards().path)
    # Each call ends with its own deadline's message; how long a loaded machine takes is not asserted.
    with pytest.raises(StudioError, match=r"did not answer the ready request \(I\) within 0.5 s \(nothing at all"):
        board.ready(timeout=0.5, resend_s=0.2)
    with pytest.raises(StudioError, match="did not answer the self-test"):
        board.self_test(timeout=0.3)
    with pytest.raises(StudioError, match="did not answer a window"):
        board.predict(np.ones((4, 2)), timeout=0.3)
    assert board.connected


def test_late_ready_lines_are_not_a_restart(ref, pty_boards, boards):
    # a board that prints its boot line and answers every I (ready() may send several) before T's results
    inner = firmware(ref)

    def handler(b, line):
        if line in ("T", "I") or line.startswith("P "):
            b.write(ready_line(ref.expected))
        inner(b, line)

    board = boards(pty_boards(handler).path)
    board.ready(timeout=T)
    assert compare(board.self_test(timeout=T), ref).agree
    assert board.predict(ref.window_units(0), timeout=T).k == -1

    def rebooting(b, line):
        if line == "T":
            b.write("FS RESULT k=0 us=5 y=1,2\n" + ready_line(ref.expected))

    board = boards(pty_boards(rebooting).path)
    with pytest.raises(StudioError, match="restarted during the self-test"):
        board.self_test(timeout=T)


def test_self_test_stalls_midway(ref, pty_boards, boards):
    def handler(b, line):
        if line == "T":
            b.write("FS RESULT k=0 us=5 y=1,2\n")  # then nothing

    board = boards(pty_boards(handler).path)
    with pytest.raises(StudioError, match="after 1 results"):
        board.self_test(timeout=0.3)


def test_unplugged_mid_read_then_reconnect(ref, pty_boards, boards):
    def handler(b, line):
        if line == "T":
            b.write("FS RESULT k=0 us=5 y=1,2\nFS RESU")
            threading.Timer(0.1, b.unplug).start()

    pty = pty_boards(handler)
    board = boards(pty.path)
    # A deadline far beyond the unplug: the error must be the disconnect (noticed at once), not the deadline's.
    with pytest.raises(StudioError, match=r"disconnected.*Plug it back in"):
        board.self_test(timeout=120)
    assert not board.connected and "disconnected" in str(board.error)
    with pytest.raises(StudioError, match="disconnected"):
        board.send("I")
    assert "! The board on" in board.log_text()
    board.close()  # closing a vanished port is quiet

    again = boards(pty_boards(firmware(ref)).path)
    assert again.ready(timeout=T).window == 4


def test_unplugged_while_idle_is_noticed(pty_boards, boards):
    pty = pty_boards()
    board = boards(pty.path)
    pty.unplug()
    assert wait_until(lambda: not board.connected, 1.0)
    with pytest.raises(StudioError, match="disconnected"):
        board.ready(timeout=T)


@pytest.mark.parametrize("rx_baud", [9600, 57600, 921600])
def test_wrong_baud_rate_is_named(ref, pty_boards, boards, rx_baud):
    # The board talks at 115200; the host listens at rx_baud, so each answer arrives as a UART garbles it.
    def handler(b, line):
        b.write(uart_garble(ready_line(ref.expected).encode(), 115200, rx_baud))

    board = boards(pty_boards(handler).path, baud=rx_baud)
    with pytest.raises(StudioError, match=rf"unreadable .*baud rate \({rx_baud}\) probably does not match.*115200"):
        board.ready(timeout=0.8, resend_s=0.1)
    assert board.unreadable


def test_continuous_noise_is_named_before_the_deadline(pty_boards, boards):
    stop = threading.Event()
    noise = uart_garble(b"FS RESULT k=0 us=1500 y=21.5\n" * 4, 115200, 230400)

    def stream(b):
        while not stop.is_set():
            b.write(noise)
            time.sleep(0.01)

    pty = pty_boards()
    board = boards(pty.path, baud=230400)
    threading.Thread(target=stream, args=(pty,), daemon=True).start()
    try:
        # Named before the deadline: with a 240 s deadline, only a reader that waits for it would take
        # anywhere near 120 s (the noise is named after one health window of bytes, well under a second).
        start = time.monotonic()
        with pytest.raises(StudioError, match="unreadable"):
            board.ready(timeout=240)
        assert time.monotonic() - start < 120
    finally:
        stop.set()


def test_board_with_another_model_says_which_fields(ref, pty_boards, boards):
    other = Expected("gru16", 48, 2, 1, 1)
    board = boards(pty_boards(firmware(ref, ready=ready_line(other))).path, expected=ref.expected)
    with pytest.raises(StudioError) as info:
        board.ready(timeout=T)
    msg = str(info.value)
    assert "different model than the current export" in msg
    assert "model: board gru16, export lstm" in msg and "window: board 48, export 4" in msg
    assert "horizon: board 1, export 2" in msg and "features" not in msg
    assert board.ready_info.model == "gru16"  # still shown on the page


def test_port_busy(pty_boards, boards):
    pty = pty_boards()
    boards(pty.path)
    with pytest.raises(StudioError, match=r"busy: another program has it open.*Arduino serial monitor"):
        Board(pty.path)


def test_missing_port_and_bad_inputs():
    with pytest.raises(StudioError, match="There is no serial port /dev/ttyACM-nope.*data USB cable"):
        Board("/dev/ttyACM-nope")
    with pytest.raises(StudioError, match="uses nope://, which the studio does not open"):
        Board("nope://x")
    with pytest.raises(StudioError, match="No port was given"):
        Board("  ")
    with pytest.raises(StudioError, match="baud rate 'fast' is not a positive whole number"):
        Board("loop://", baud="fast")


def test_nothing_listening_at_socket_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: refused
        with pytest.raises(StudioError, match="Nothing answers at socket://"):
            Board(f"socket://127.0.0.1:{port}")


def _open_as(uid: int | None, path: str) -> str:
    """Try Board(path) (as ``uid`` when given, in a forked child) and return the error text."""
    if uid is None:
        try:
            Board(path).close()
            return "opened"
        except StudioError as err:
            return str(err)
    # Root ignores file modes, so the open must come from an ordinary user. The venv's interpreter lives
    # under /root where that user cannot run it, hence a fork of this process rather than a new one.
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.close(r)
            os.setgid(uid)
            os.setuid(uid)
            text = _open_as(None, path)
        except BaseException as exc:
            text = f"child failed: {exc!r}"
        os.write(w, text.encode())
        os._exit(0)
    os.close(w)
    deadline = time.monotonic() + 10
    chunks = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([r], [], [], 0.1)
        if ready:
            chunk = os.read(r, 4096)
            if not chunk:
                break
            chunks.append(chunk)
    os.close(r)
    done, _ = os.waitpid(pid, os.WNOHANG)
    if not done:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    return b"".join(chunks).decode()


@pytest.mark.skipif(sys.platform != "linux", reason="the dialout hint is Linux's")
def test_permission_denied_names_dialout(pty_boards):
    pty = pty_boards()
    os.chmod(pty.path, 0o000)
    uid = None
    if os.geteuid() == 0:
        try:
            uid = pwd.getpwnam("nobody").pw_uid
        except KeyError:
            pytest.skip("running as root and there is no unprivileged user to open the port as")
    text = _open_as(uid, pty.path)
    assert f"Permission denied opening {pty.path}" in text
    assert "dialout group" in text and "log out and back in" in text


# --- URLs ---------------------------------------------------------------------------------------------

def test_loop_url_connects_and_logs_its_echo(boards):
    board = boards("loop://")
    board.send("I")
    assert wait_until(lambda: any(e.kind == "rx" and e.text == "I" for e in board.log()))


def test_socket_url_board(ref, boards):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    handle = firmware(ref)

    class SockBoard:
        def write(self, data):
            conn.sendall(data.encode() if isinstance(data, str) else data)

    def serve():
        nonlocal conn
        conn, _ = server.accept()
        buf = b""
        while True:
            try:
                chunk = conn.recv(4096)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                handle(SockBoard(), line.decode().strip())

    conn = None
    threading.Thread(target=serve, daemon=True).start()
    try:
        board = boards(f"socket://127.0.0.1:{server.getsockname()[1]}")
        assert board.ready(timeout=T).model == "lstm"
        assert compare(board.self_test(timeout=T), ref).agree
    finally:
        server.close()
        if conn is not None:
            conn.close()


# --- comparison -----------------------------------------------------------------------------------------

def test_compare_flags_missing_wrong_length_and_nan(ref):
    results = [Result(0, 10, tuple(ref.host_units(1).reshape(-1))), Result(2, 30, (1.0,)),
               Result(5, 40, (1.0, 2.0))]
    cmp = compare(results, ref)
    assert cmp.verdict == "disagree"
    assert any("k=2 has 1 values, expected 2" in p for p in cmp.problems)
    assert any("k=5 names no test window" in p for p in cmp.problems)
    assert "no result for embedded window(s) k=1" in cmp.problems
    assert cmp.rows[0].ok and cmp.rows[0].window == 1
    nan = compare([(0, Result(-1, 5, (float("nan"), 1.0)))], ref)
    assert nan.verdict == "disagree" and nan.max_abs_err == float("inf")
    assert compare([], ref).verdict == "no results"


def test_tolerance_comes_from_the_dtype_never_from_the_export_error(ref):
    assert ref.tolerance("float32")[0] == pytest.approx(20 * 1e-3)
    assert ref.tolerance("int8")[0] == pytest.approx(20 * 0.05)  # no output quantisation recorded
    # A huge error measured at export (a saturated int8 model) must not widen what the board may differ by.
    ref.report_err = {"float32": np.array([50.0]), "int8": np.array([124.0])}
    assert ref.tolerance("float32")[0] == pytest.approx(20 * 1e-3)
    assert ref.tolerance("int8")[0] == pytest.approx(20 * 0.05)
    # int8: two output quantisation steps (in data units), plus float32's share for the dequantise.
    ref.out_step = {"int8": np.array([0.08])}
    assert ref.tolerance("int8")[0] == pytest.approx(2 * 0.08 + 20 * 1e-3)


# --- Edge Impulse static-buffer output ------------------------------------------------------------------

def _ei_ref(residual_in_model: bool = True) -> Reference:
    ref = make_reference(horizon=1, targets=1, embedded=())
    ref.ei_windows = (2, 4)
    ref.dtype = "int8"
    if not residual_in_model:
        ref.residual, ref.ei_output_is_delta, ref.target_input_index = True, True, (0,)
    return ref


def _transcript(values: list[float]) -> str:
    out = ["Edge Impulse standalone inferencing (Arduino)"]
    for v in values:
        out += ["run_classifier returned: 0", "Timing: DSP 0 ms, inference 2024 ms, anomaly 0 ms", "Predictions:",
                f"  value: {v:.5f}"]
    return "\r\n".join(out) + "\r\n"


def test_ei_transcript_matched_in_data_units():
    ref = _ei_ref()
    scaled = float(ref.y_host[4, 0, 0])  # what the model prints: a scaled value, 5 decimals
    readings = ei_readings(parse_transcript(_transcript([scaled, scaled])))
    assert readings == [EiReading(EiTiming(0, 2024, 0), {"value": round(scaled, 5)})] * 2
    cmp = compare_ei(readings, ref)
    assert cmp.agree, cmp.problems
    row = cmp.rows[0]
    assert row.window == 4 and row.host == pytest.approx(scaled * 20 + 10)
    assert row.board == pytest.approx(round(scaled, 5) * 20 + 10) and row.abs_err < 1e-3
    assert cmp.timing_us["median"] == 2024000


def test_ei_unmatched_value_is_shown_and_flagged():
    ref = _ei_ref()
    cmp = compare_ei(ei_readings(parse_transcript(_transcript([9.99]))), ref)
    assert cmp.verdict == "disagree" and len(cmp.rows) == 1
    assert cmp.rows[0].window is None and cmp.rows[0].board == pytest.approx(9.99 * 20 + 10)
    assert "matches no test window" in cmp.problems[0]


def test_ei_residual_model_without_add_back():
    ref = _ei_ref(residual_in_model=False)
    delta = float(ref.y_host[2, 0, 0] - ref.X[2, -1, 0])  # the EI model printed the change, not the level
    cmp = compare_ei(ei_readings(parse_transcript(_transcript([delta]))), ref)
    assert cmp.agree and cmp.rows[0].window == 2


def test_ei_one_line_and_old_header_forms():
    text = ("Predictions (DSP: 0 ms., Classification: 15 ms., Anomaly: 0 ms.): \n[0.50000]\n    value: 0.50000\n"
            "Predictions: value: 0.25\n")
    readings = ei_readings(parse_transcript(text))
    assert [r.values for r in readings] == [{"value": 0.5}, {"value": 0.25}]
    assert readings[0].timing.inference_ms == 15


def test_ei_lines_read_from_a_board(pty_boards, boards):
    ref = _ei_ref()
    pty = pty_boards()
    board = boards(pty.path)
    pty.write(_transcript([float(ref.y_host[2, 0, 0])]).encode())
    assert wait_until(lambda: len(ei_readings(board.records())) == 1)
    assert compare_ei(ei_readings(board.records()), ref).agree


# --- export folder ------------------------------------------------------------------------------------

def test_load_reference_from_export_folder(tmp_path):
    ref = make_reference(horizon=2, targets=1)
    # the export's shape (core/export.py): windows.npz beside report.json, errors in the target's units
    np.savez(tmp_path / "windows.npz", X=ref.X.astype(np.float32), y_host_scaled=ref.y_host.astype(np.float32))
    report = {"model": {"kind": "lstm"}, "model_name": "lstm", "window": 4, "features": 2,
              "input_columns": ["a", "b"], "horizon": 2, "targets": ["t0"], "residual": False,
              "scaler": {"kind": "minmax", "columns": ["a", "t0", "b"], "center": [-5.0, 10.0, 5.0],
                         "scale": [2.0, 20.0, 30.0]},
              "dtypes": {"float32": {"max_abs_err": 2e-7, "max_abs_err_per_target": [2e-7]},
                         "int8": {"max_abs_err": 0.4, "max_abs_err_per_target": [0.4],
                                  "output_quant": {"scale": 0.01, "zero_point": -3}}},
              "test_windows": [1, 3, 4]}
    (tmp_path / "report.json").write_text(json.dumps(report))
    loaded = load_reference(tmp_path)
    assert loaded.expected == Expected("lstm", 4, 2, 2, 1, None)
    assert loaded.embedded == (1, 3, 4) and loaded.targets == ("t0",)
    # int8: 2 output steps of 0.01 (scaled) x the target's scale 20, never the export's 0.4 error.
    assert loaded.tolerance("int8")[0] == pytest.approx(2 * 0.01 * 20 + 0.02)
    assert loaded.tolerance("float32")[0] == pytest.approx(0.02)
    np.testing.assert_allclose(loaded.host_units(0), ref.host_units(0), rtol=1e-6)
    np.testing.assert_allclose(loaded.window_units(0), ref.window_units(0), rtol=1e-6)


def test_load_reference_bad_folders(tmp_path):
    with pytest.raises(StudioError, match="no report.json"):
        load_reference(tmp_path)
    (tmp_path / "report.json").write_text("{not json")
    with pytest.raises(StudioError, match="not readable JSON"):
        load_reference(tmp_path)
    (tmp_path / "report.json").write_text(json.dumps({"window": 4, "scaler": {"columns": [], "center": [], "scale": []}}))
    with pytest.raises(StudioError, match="No test windows"):
        load_reference(tmp_path)


def test_self_test_matched_through_the_bundle_manifest(tmp_path, pty_boards, boards):
    """The bundle zip's bundle.json says which test windows the firmware holds; those host forecasts are the
    reference for T, whatever order the windows were picked in."""
    import zipfile

    ref = make_reference(n=8, embedded=(6, 0, 3))
    np.savez(tmp_path / "windows.npz", X=ref.X.astype(np.float32), y_host_scaled=ref.y_host.astype(np.float32))
    report = {"window": 4, "features": 2, "input_columns": ["a", "b"], "horizon": 2, "targets": ["t0"],
              "scaler": {"columns": ["a", "b", "t0"], "center": [*ref.in_center, 10.0], "scale": [*ref.in_scale, 20.0]}}
    (tmp_path / "report.json").write_text(json.dumps(report))
    manifest = {"model": "lstm", "dtype": "int8", "test_indices": [6, 0, 3],
                "host_predictions": [ref.host_units(i).tolist() for i in (6, 0, 3)]}
    with zipfile.ZipFile(tmp_path / "forecast_studio_lstm_int8.zip", "w") as zf:
        zf.writestr("forecast_studio_lstm_int8/bundle.json", json.dumps(manifest))
    (tmp_path / "ei_library.zip").write_bytes(b"not a zip at all")  # ignored, not a bundle
    loaded = load_reference(tmp_path)
    assert loaded.expected.model == "lstm" and loaded.embedded_for("int8").indices == (6, 0, 3)
    board = boards(pty_boards(firmware(ref)).path, expected=loaded.expected)
    ready = board.ready(timeout=T)
    cmp = compare(board.self_test(timeout=T), loaded, dtype=ready.dtype)
    assert cmp.agree and [r.window for r in cmp.rows[::2]] == [6, 0, 3]
    # the float32 board holds the same windows: the int8 bundle's host forecasts serve it too
    assert compare(board.self_test(timeout=T), loaded, dtype="float32").agree


def test_task_runs_board_commands_off_the_caller(ref, pty_boards, boards):
    from core.board import Task

    board = boards(pty_boards(firmware(ref)).path)
    task = Task("Self-test", lambda: board.self_test(timeout=T))
    assert task.wait(2) and task.error is None and len(task.result) == 3
    silent = boards(pty_boards().path)
    task = Task("Ready", lambda: silent.ready(timeout=0.3, resend_s=0.1))
    assert task.wait(2) and task.result is None and "did not answer" in str(task.error)
    crash = Task("Broken", lambda: 1 / 0)
    assert crash.wait(1) and "Broken failed: ZeroDivisionError" in str(crash.error)


def test_close_runs_closers_once_even_if_one_fails(pty_boards):
    calls = []
    board = Board(pty_boards().path)
    board.on_close(lambda: calls.append("emulator stopped"))
    board.on_close(lambda: 1 / 0)
    board.on_close(lambda: calls.append("second"))
    board.close()
    board.close()
    assert calls == ["emulator stopped", "second"]
    assert "while closing" in board.log_text() and not board.connected


# --- against the device emulator (core/board/emulator.py: the bundle's model on TFLM behind a real pty) ----------

SLICE = ROOT / "tests" / "transcripts" / "slice_export"     # window 3 x 2 -> the last step of both columns
SLICE1 = ROOT / "tests" / "transcripts" / "slice1_export"   # the same, one target (Edge Impulse replay)


@pytest.fixture
def emulators():
    emulator = pytest.importorskip("core.board.emulator")
    started = []

    def start(export, **kwargs):
        emu = emulator.Emulator(export, dtype="float32", **kwargs)
        started.append(emu)
        return emu, emu.start()

    yield start
    for emu in started:
        emu.stop()


def test_emulator_self_test_and_windows_agree(emulators, boards):
    ref = load_reference(SLICE)
    assert ref.expected == Expected("slice", 3, 2, 1, 2, None)
    _, path = emulators(SLICE)
    board = boards(path, expected=ref.expected)
    ready = board.ready(timeout=3)
    assert ready.model == "slice" and ready.dtype == "float32"
    results = board.self_test(timeout=3)
    cmp = compare(results, ref, dtype=ready.dtype)
    assert cmp.agree, cmp.problems
    assert [r.board for r in cmp.rows] == [14.0, 3.0, 15.5, 7.0, 7.25, -17.0]
    pairs = [(i, board.predict(ref.window_units(i), timeout=3)) for i in range(ref.n_windows)]
    cmp = compare(pairs, ref, dtype=ready.dtype)
    assert cmp.agree and cmp.max_abs_err == 0.0 and cmp.timing_us is not None
    with pytest.raises(StudioError, match="BADLEN"):
        board.predict(np.zeros((2, 2)), timeout=3)


def test_emulator_pulled_away_mid_read_then_reconnect(emulators, boards):
    ref = load_reference(SLICE)
    emu, path = emulators(SLICE)
    board = boards(path, expected=ref.expected)
    board.ready(timeout=60)
    # The race is forced, not timed: the board is pulled away once it has answered, while the loop keeps a
    # request in flight; however busy the machine, a request is then waiting when the port vanishes. (A 0.05 s
    # timer raced the loop and lost on a loaded laptop.) The generous timeout only bounds a hang, which
    # would surface as "did not answer", not "disconnected".
    board.predict(ref.window_units(0), timeout=60)
    puller = threading.Thread(target=emu.stop)
    with pytest.raises(StudioError, match="disconnected"):
        puller.start()
        while True:  # keep the board busy until it vanishes
            board.predict(ref.window_units(0), timeout=60)
    puller.join(60)
    assert not board.connected
    board.close()
    _, path = emulators(SLICE)
    again = boards(path, expected=ref.expected)
    assert compare(again.self_test(timeout=60), ref, dtype="float32").agree


def test_emulator_edge_impulse_replay_matched(emulators, boards):
    ref = load_reference(SLICE1)
    _, path = emulators(SLICE1, mode="edge-impulse", ei_interval_s=0.05)
    board = boards(path)
    assert wait_until(lambda: len(ei_readings(board.records())) >= 4, 5)
    cmp = compare_ei(ei_readings(board.records()), ref)
    assert cmp.agree, cmp.problems
    assert {r.window for r in cmp.rows} == {0, 1, 2}
    assert {r.board for r in cmp.rows} == {14.0, 15.5, 7.25}  # printed scaled, compared in the data's units


SLICE_BANDS = ROOT / "tests" / "transcripts" / "slice_band_export"   # the slice export with calibrated bands


def test_emulator_bands_equal_the_hosts_and_a_wrong_band_is_caught(emulators, boards):
    ref = load_reference(SLICE_BANDS)
    assert set(ref.bands) == {"80", "95"}
    np.testing.assert_array_equal(ref.bands["80"], [[0.5, 1.25]])
    _, path = emulators(SLICE_BANDS)
    board = boards(path, expected=ref.expected)
    results = board.self_test(timeout=3)
    assert all([b[0] for b in r.bands] == ["80", "95"] for r in results)
    cmp = compare(results, ref, dtype="float32")
    assert cmp.agree, cmp.problems
    first = cmp.rows[0]
    assert first.bands["80"] == {"board": [13.5, 14.5], "host": [13.5, 14.5]}
    assert first.bands["95"]["board"] == first.bands["95"]["host"] == [12.5, 15.5]
    frame = cmp.to_frame()
    assert {"board 80% low", "host 80% high", "board 95% high"} <= set(frame.columns)
    pairs = [(i, board.predict(ref.window_units(i), timeout=3)) for i in range(ref.n_windows)]
    assert compare(pairs, ref, dtype="float32").agree
    # a board whose band constants differ from the host's (a stale bundle, say) disagrees
    k, us, y = results[0].k, results[0].us, results[0].y
    wrong = Result(k, us, y, (("80", (13.0, 1.75), (15.0, 4.25)),))
    bad = compare([wrong, *results[1:]], ref, dtype="float32")
    assert not bad.agree and not bad.rows[0].ok


def test_a_board_without_bands_still_agrees_with_a_banded_export(emulators, boards):
    ref = load_reference(SLICE_BANDS)
    _, path = emulators(SLICE)  # firmware built before bands: plain FS RESULT lines
    board = boards(path, expected=ref.expected)
    cmp = compare(board.self_test(timeout=3), ref, dtype="float32")
    assert cmp.agree and all(r.bands == {} for r in cmp.rows)
    assert not [c for c in cmp.to_frame().columns if "%" in c]
