"""Device step: find the board, read its forecasts back, and compare them with the host's.

Thin by design: core.board owns the port, the reader thread, the protocol and the comparison. Board
commands run as core.board.Task threads, so a slow or silent board never freezes the page; a fragment
polls the live log and picks up finished tasks.
"""
from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from core.board import weblink
from core.config import DEFAULTS, HELP
from core.board import (COMPARISON_HEADERS, Board, Comparison, Reference, Task, compare_ei, ei_readings, list_ports, load_reference,
                        parse_transcript, run_check)
from core.errors import StudioError
from core.export import ExportFolder, arena_words, shipped_dtype
from core.firmware import arena_placement
from studio import live_view, state, ui
from studio.board_link import board_link

CFG = DEFAULTS["device"]
OTHER = "Other: type a port or URL"
EMULATED = "Emulated XIAO (no hardware)"
SERIAL = "Serial port"
BROWSER = "This computer's USB (in the browser)"

try:  # the emulator is its own stage (issue F); without it the page still reads real boards
    from core.board.emulator import Emulator
except ImportError:
    Emulator = None

st.title("Device")
st.caption("Find the board, read its forecasts back, and compare them with what the host computed.")
# The browser link (Web Serial) is drawn here, always at this one place: were it to move or vanish between
# reruns, the browser would drop the port it holds.
link_slot = st.container()

export_dir = state.get("export_dir")
ref: Reference | None = None
if export_dir is None:
    st.info("No export yet, so there is nothing to compare with: finish the **Export** step for that. "
            "You can still connect to a board here and read its log.")
else:
    cache = st.session_state.get("device.ref")
    if cache is not None and cache[0] == str(export_dir):
        ref = cache[1]
    else:
        try:
            ref = load_reference(export_dir)
            st.session_state["device.ref"] = (str(export_dir), ref)
        except StudioError as err:
            ui.show_error(err)

board: Board | None = state.get("board")


def _client_is_local() -> bool:
    """Is the browser on the machine that runs the studio? Only then are this machine's ports the user's."""
    try:
        ip = st.context.ip_address
    except Exception:  # no browser connection (a script run): the studio's own machine
        return True
    # None on loopback; anything but an address (a test harness's stand-in) is no remote browser either.
    return not isinstance(ip, str) or ip in _own_addresses()


@st.cache_resource(ttl=600)
def _own_addresses() -> frozenset[str]:
    import socket

    try:
        return frozenset(socket.gethostbyname_ex(socket.gethostname())[2])
    except OSError:
        return frozenset()


local = _client_is_local()
# What the participant's browser can do, as its link component last said (drawn further down).
# Kept under a key of its own too: a component's value is forgotten when the page is left.
caps = st.session_state.get("device.link")
caps = caps if isinstance(caps, dict) else st.session_state.get("device.caps", {})
browser_ok = bool(caps.get("webSerial")) and bool(caps.get("secure", True)) and weblink.RELAY["mounted"]


def _link_token() -> str:
    """This session's browser link; a new one once the last closed with its board (or the studio restarted)."""
    token = st.session_state.get("device.link_token")
    if weblink.get(token) is None:
        token = weblink.register()
        st.session_state["device.link_token"] = token
    return token


def _export_entries() -> dict[str, dict]:
    """The export's per-type entries, read once per page run (the live log's fragment polls; it reuses these)."""
    try:
        return ExportFolder.open(export_dir).dtypes if export_dir is not None else {}
    except StudioError:
        return {}


def _arena_note(dtype: str, arena: int) -> str:
    """The export's sentence on the arena (the Export page and the bundle's README say the same), when the
    board's figure is the bundle's; otherwise say they differ."""
    entry = export_entries.get(dtype) or {}
    if not entry.get("arena_bytes"):
        return ""
    try:
        declared = arena_placement(int(entry["arena_bytes"]))[0]
    except StudioError:
        return ""
    if declared != arena:
        return (f"The export declares {declared:,} B for its {dtype} model: this board runs a bundle "
                "from another export (or an older studio); flash the bundle again.")
    return f"Arena: {arena_words(entry)}"


def _shipped_dtype() -> str | None:
    try:
        return shipped_dtype(export_dir)
    except StudioError:
        return None


def _export_dtypes() -> list[str]:
    if export_dir is None:
        return []
    return [d for d in ("float32", "int8") if (Path(export_dir) / f"model_{d}.tflite").is_file()]


def _connect(port: str, baud: int, emulated: bool, dtype: str = "float32", mode: str = "protocol") -> None:
    """Open the port (starting the emulator first when asked) and ask for the ready line in the background."""
    emulator = None
    if emulated:
        if Emulator is None or export_dir is None:
            raise StudioError("The emulated XIAO needs an export and the emulator module.", "Finish the Export step first.")
        emulator = Emulator(export_dir, dtype=dtype, mode=mode)
        port = emulator.start()
    try:
        # The emulator's pseudo-terminal is the studio's own; a typed or listed port is checked for who asks.
        new = Board(port, baud, expected=ref.expected if ref else None, remote=not (local or emulated))
    except Exception:
        if emulator is not None:
            emulator.stop()
        raise
    if emulator is not None:
        new.on_close(emulator.stop)
    st.session_state["device.last"] = {"port": port, "baud": baud, "emulated": emulated, "dtype": dtype, "mode": mode}
    state.put("board", new)
    if mode == "protocol":  # the Edge Impulse sketch never reads serial: just listen to it
        st.session_state["device.task"] = Task("Reading the ready line", lambda: new.ready(CFG["ready_timeout_s"]))


def _connect_browser(token: str, baud: int) -> None:
    """The browser opened the port and relays it under ``token``: the same Board, over the relay."""
    new = Board(weblink.url(token), baud, expected=ref.expected if ref else None)
    st.session_state["device.last"] = {"port": weblink.url(token), "baud": baud, "emulated": False, "browser": True}
    state.put("board", new)
    st.session_state["device.task"] = Task("Reading the ready line", lambda: new.ready(CFG["ready_timeout_s"]))


def _disconnect() -> None:
    live_view.stop()
    old = state.get("board")
    if old is not None:
        old.close()
    state.pop("board")
    st.session_state.pop("device.task", None)


# --- connection ------------------------------------------------------------------------------------------
if caps and not caps.get("secure", True):
    st.warning("This page is not a secure context (it was opened over plain HTTP from another computer), so the "
               "browser hides the serial ports of the computer it runs on. Ask the host to start the studio with "
               "HTTPS (`python -m studio --address 0.0.0.0 --https`) and open its https:// address, or use the "
               "emulated board.")
elif caps and not caps.get("webSerial"):
    st.info("This browser cannot reach serial ports (Web Serial): to connect a board plugged into this computer, "
            "open the studio in Chrome or Edge on a desktop (Firefox and Safari do not have it); meanwhile use the "
            "emulated board" + (" or this machine's ports." if local else "."))
elif caps.get("webSerial") and caps.get("policy") is False:
    st.warning("The page may not use serial ports here (the browser's permissions policy forbids it, e.g. the studio "
               "is embedded in another site). Open the studio's own address in a tab of its own.")
elif caps.get("webSerial") and not weblink.RELAY["mounted"]:
    st.info("This studio was started without its board relay (`streamlit run studio/app.py`): start it with "
            "`python -m studio` to connect a board plugged into this computer through the browser.")

if board is None:
    # A participant on another computer gets their own browser's board or the emulator: never this machine's
    # ports or its network (core.board.ports.check_port refuses them too, whatever the page offers).
    kinds = ([BROWSER] if browser_ok and not local else []) + ([SERIAL] if local else []) \
        + ([BROWSER] if browser_ok and local else []) + ([EMULATED] if Emulator is not None else [])
    if not kinds:
        st.info("Nothing to connect here: open the studio in Chrome or Edge to connect a board plugged into this "
                "computer.")
        st.stop()
    if st.session_state.get("device.kind") not in kinds:
        st.session_state.pop("device.kind", None)
    kind = st.radio("Board", kinds, horizontal=True, key="device.kind", persist_state="session",
                    help=HELP.get("device.emulated"),
                    disabled=len(kinds) == 1)
    if Emulator is None:
        st.caption("The emulated XIAO is not available in this installation.")
    emulated = kind == EMULATED
    c1, c2 = st.columns([3, 1])
    port, emu_dtype, emu_mode = "", None, "protocol"
    if kind == BROWSER:
        c1.caption(HELP.get("device.browser", "") + " Press **Connect board**, then pick the board in the "
                   "browser's list; keep this step open while it is connected.")
    elif not emulated:
        ports = list_ports()
        labels = [p.label for p in ports] + [OTHER]
        choice = c1.selectbox("Port", labels, key="device.port_choice", persist_state="session",
                              help=HELP.get("device.port"))
        if choice == OTHER:
            port = c1.text_input("Port or URL", key="device.port_text", persist_state="session",
                                 placeholder="/dev/ttyACM0, COM3, socket://HOST:PORT")
        else:
            port = ports[labels.index(choice)].device
        if not any(p.is_xiao for p in ports):
            c1.caption("No XIAO ESP32S3 found by its USB ids. Plug it in with a data cable, or type its port.")
    elif export_dir is None:
        c1.warning("The emulated XIAO runs the exported model: finish the Export step first.")
    else:
        dtypes = _export_dtypes()
        # The emulated board starts on the type the bundle ships (the Export step's choice), once per export.
        shipped = _shipped_dtype()
        if st.session_state.get("device.emu_dtype_for") != str(export_dir) and shipped in dtypes:
            st.session_state["device.emu_dtype"] = shipped
            st.session_state["device.emu_dtype_for"] = str(export_dir)
        emu_dtype = c1.selectbox("Model on the emulated board", dtypes, key="device.emu_dtype", persist_state="session")
        modes = {"protocol": "The studio's firmware (protocol)", "edge-impulse": "Edge Impulse static-buffer sketch"}
        emu_mode = c1.radio("It runs", list(modes), format_func=modes.get, key="device.emu_mode", persist_state="session",
                            horizontal=True)
    baud = c2.selectbox("Baud rate", CFG["bauds"], key="device.baud", persist_state="session", help=HELP.get("device.baud"))
    if kind != BROWSER and st.button("Connect", type="primary", key="device.connect",
                                     disabled=emulated and export_dir is None):
        try:
            if emulated:
                _connect("", int(baud), True, emu_dtype or "float32", emu_mode)
            else:
                _connect(port, int(baud), False)
            st.rerun()
        except StudioError as err:
            ui.show_error(err)
else:
    c1, c2, c3 = st.columns([4, 1, 1])
    c1.markdown(f"**Connected to** `{board.name}` at {board.baud} baud")
    if c2.button("Disconnect", key="device.disconnect"):
        _disconnect()
        st.rerun()
    if c3.button("Reconnect", key="device.reconnect", help="Close and open the port again (after unplugging, say)."):
        last = st.session_state.get("device.last") or {"port": board.port, "baud": board.baud, "emulated": False}
        _disconnect()
        if last.get("browser"):
            # The browser reopens the port it was given (no chooser needed) under a fresh link.
            st.session_state["device.link_reopen"] = st.session_state.get("device.link_reopen", 0) + 1
            st.rerun()
        try:
            _connect(last["port"], last["baud"], last["emulated"], last.get("dtype", "float32"),
                     last.get("mode", "protocol"))
        except StudioError as err:
            st.session_state["device.connect_error"] = str(err)
        st.rerun()

if st.session_state.get("device.connect_error"):
    st.error(st.session_state.pop("device.connect_error"))

# --- the browser link ------------------------------------------------------------------------------------
held = board is not None and board.port.startswith(weblink.SCHEME)
link_token = board.port[len(weblink.SCHEME):] if held else _link_token()
with link_slot:
    event = board_link(token=link_token, baud=board.baud if held else int(st.session_state.get("device.baud") or CFG["baud"]),
                       active=held or (board is None and st.session_state.get("device.kind") == BROWSER and browser_ok),
                       reopen=st.session_state.get("device.link_reopen", 0))
if event is not None:
    st.session_state["device.caps"] = {k: event.get(k) for k in ("webSerial", "secure", "policy", "origin")}
if event is not None and event.get("seq") != st.session_state.get("device.link_seen"):
    st.session_state["device.link_seen"] = event.get("seq")
    error = event.get("error") if isinstance(event.get("error"), dict) else None
    if event.get("event") == "connected" and event.get("token") == link_token and board is None:
        try:
            _connect_browser(link_token, int(st.session_state.get("device.baud") or CFG["baud"]))
            st.rerun()
        except StudioError as err:
            ui.show_error(err)
    elif error is not None and not (held and event.get("event") == "lost"):  # a held board says it itself
        ui.show_error(weblink.browser_error(error.get("name"), error.get("message"), str(error.get("stage") or "open")))


# --- commands -------------------------------------------------------------------------------------------
def _self_test(b: Board, r: Reference | None):
    check = run_check(b, r, self_test=True)
    return check.results, check.comparison


def _send(b: Board, r: Reference, picks: list[int]):
    check = run_check(b, r, self_test=False, windows=picks)
    return check.pairs, check.comparison


task: Task | None = st.session_state.get("device.task")
busy = (task is not None and not task.done) or live_view.busy()  # one conversation with the board at a time
if board is not None:
    c1, c2, c3 = st.columns(3)
    if c1.button("Ask for the ready line (I)", key="device.ready", disabled=busy):
        st.session_state["device.task"] = Task("Reading the ready line", lambda: board.ready(CFG["ready_timeout_s"]))
        st.rerun()
    if c2.button("Run the self-test (T)", key="device.self_test", disabled=busy, help=HELP.get("device.self_test")):
        st.session_state["device.task"] = Task("Self-test", lambda: _self_test(board, ref))
        st.rerun()
    if ref is not None:
        n = ref.n_windows
        picks = st.multiselect("Test windows to send", list(range(n)), default=list(range(min(CFG["windows"], n))),
                               key="device.picks", persist_state="session", help=HELP.get("device.windows"))
        if c3.button("Send windows (P)", key="device.send", disabled=busy or not picks):
            st.session_state["device.task"] = Task(f"Sending {len(picks)} window(s)", lambda: _send(board, ref, list(picks)))
            st.rerun()


@st.fragment(run_every=CFG["poll_s"])
@ui.guarded("Device step (live log)")  # a fragment reruns alone, outside the page's guard
def live() -> None:
    b: Board | None = state.get("board")
    t: Task | None = st.session_state.get("device.task")
    if t is not None and t.done:
        st.session_state.pop("device.task")
        if t.error is not None:
            st.session_state["device.task_error"] = str(t.error)
        else:
            st.session_state["device.task_result"] = (t.name, t.result)
        st.rerun()  # the whole page redraws with the result and the buttons enabled again
    if b is None:
        return
    if b.error is not None:
        st.error(f"{b.error} Use **Reconnect** when it is back.")
    elif b.unreadable:
        st.warning(str(b.unreadable_error()))
    if t is not None:
        st.info(f"{t.name}: waiting for the board…")
    if b.ready_info is not None:
        r = b.ready_info
        st.caption(f"Board: model {r.model}, window {r.window} × {r.features} features → {r.horizon} step(s) × "
                   f"{r.targets} target(s), {r.dtype}, arena {r.arena:,} B. {_arena_note(r.dtype, r.arena)}")
    st.code(b.log_text(last=200) or "(nothing received yet)", language=None)


if board is not None:
    export_entries = _export_entries()
    live()

if st.session_state.get("device.task_error"):
    st.error(st.session_state.pop("device.task_error"))


# --- results --------------------------------------------------------------------------------------------
def show_comparison(cmp: Comparison, title: str) -> None:
    st.subheader(title)
    # Two questions, answered apart: does the board compute what the host's copy of the file computes,
    # and are its forecasts good against the actual values?
    if cmp.verdict == "agree":
        st.success(cmp.summary(quality=False))
    elif cmp.verdict == "disagree":
        st.error(cmp.summary(quality=False))
    else:
        st.info(cmp.summary(quality=False))
    if cmp.quality.get("summary"):
        good = cmp.forecasts_good
        (st.info if good is None else st.success if good else st.error)(cmp.quality["summary"])
    for problem in cmp.problems:
        st.warning(problem)
    cols = st.columns(5)
    cols[0].metric("Max |error|", "–" if cmp.max_abs_err is None else f"{cmp.max_abs_err:.4g}")
    cols[1].metric("Mean |error|", "–" if cmp.mean_abs_err is None else f"{cmp.mean_abs_err:.4g}")
    t = cmp.timing_us or {}
    for col, key in zip(cols[2:], ("min", "median", "max")):
        col.metric(f"Inference {key}", f"{t[key] / 1000:.4g} ms" if key in t else "–")
    last = st.session_state.get("device.last") or {}
    if t and last.get("emulated"):
        dtype = last.get("dtype", "float32")
        estimate = ref.board_latency_ms.get(dtype) if ref is not None else None
        st.caption("Emulated XIAO: these inference times are this computer running the model on TensorFlow Lite "
                   "Micro, not the board's." + (f" The Export step estimates ~{estimate:,.0f} ms on the XIAO ESP32S3 "
                                                f"({dtype}); a real board prints its own time here."
                                                if estimate is not None else ""))
    frame = cmp.to_frame()
    if frame.empty:
        return
    x = [f"w{'?' if w != w or w is None else int(w)}·s{s}" for w, s in zip(frame["window"], frame["step"])]
    # The narrowest band the board printed, as error bars: the board's bounds next to the host's.
    level = next((c.split()[1] for c in frame.columns if c.startswith("board ") and c.endswith("% low")), None)

    def _bar(who: str, m) -> dict | None:
        if level is None:
            return None
        mid = frame.loc[m, who]
        return {"type": "data", "symmetric": False, "array": frame.loc[m, f"{who} {level} high"] - mid,
                "arrayminus": mid - frame.loc[m, f"{who} {level} low"], "thickness": 1.5 if who == "board" else 1}

    fig = go.Figure()
    for target in frame["target"].unique():
        m = frame["target"] == target
        xs = [x[i] for i in range(len(x)) if m.iloc[i]]
        band = f" ({level} band)" if level else ""
        fig.add_scatter(x=xs, y=frame.loc[m, "host"], mode="markers", name=f"host · {target}{band}",
                        marker={"symbol": "circle-open", "size": 12}, error_y=_bar("host", m))
        fig.add_scatter(x=xs, y=frame.loc[m, "board"], mode="markers", name=f"board · {target}{band}",
                        marker={"size": 7}, error_y=_bar("board", m))
    fig.update_layout(height=340, margin={"l": 10, "r": 10, "t": 30, "b": 10}, xaxis_title="test window · step",
                      yaxis_title="forecast (data units)")
    st.plotly_chart(fig, width="stretch", key=f"device.chart.{title}")
    if level:
        st.caption(f"Bars: the {level} prediction band the board printed (lo/hi after y=) and the host's, the host's "
                   "forecast -/+ the run's calibrated half-width; the table lists every level.")
    # Board and host to float32's seven digits: four would hide the difference the table is there to show.
    ui.table(frame, COMPARISON_HEADERS, digits={c: 7 for c in frame.columns if c.startswith(("board", "host"))},
             width="stretch")


done = st.session_state.get("device.task_result")
if done is not None:
    name, result = done
    if name == "Reading the ready line" and result is not None:
        st.success(f"The board is ready: model {result.model}, {result.dtype}.")
    elif isinstance(result, tuple) and len(result) == 2:
        answers, cmp = result
        if cmp is not None:
            show_comparison(cmp, "Board vs host")
        else:
            st.subheader("Board answers")
            ui.table([{"board window (k)": r.k, "inference (µs)": r.us, "forecast (as printed)": ", ".join(f"{v:.7g}" for v in r.y)}
                      for r in answers])
            st.caption("No export to compare with: these are the board's numbers as read.")


# --- live stream (issue 33): readings through R, an injected anomaly, the board's forecasts and alarms ---------
if board is not None and board.connected and (st.session_state.get("device.last") or {}).get("mode", "protocol") == "protocol":
    live_view.section(board, ref, export_dir)

# --- Edge Impulse static-buffer sketch -------------------------------------------------------------------
with st.expander("Edge Impulse static-buffer sketch", expanded=False):
    st.caption(HELP.get("device.transcript", ""))
    if ref is None:
        st.info("Comparing Edge Impulse values needs the export (its scaler and the host's forecasts).")
    else:
        if board is not None and st.button("Compare what the board printed", key="device.ei_live"):
            readings = ei_readings(board.records())
            if readings:
                st.session_state["device.ei"] = compare_ei(readings, ref)
            else:
                st.warning("No Edge Impulse predictions in the log yet (Timing / Predictions / value lines).")
        text = st.text_area("Or paste a serial-monitor transcript", key="device.ei_text", persist_state="session",
                            height=140,
                            placeholder="Timing: DSP 0 ms, inference 2024 ms, anomaly 0 ms\nPredictions:\n  value: 0.36065")
        if st.button("Compare the transcript", key="device.ei_compare", disabled=not text.strip()):
            readings = ei_readings(parse_transcript(text))
            if readings:
                st.session_state["device.ei"] = compare_ei(readings, ref)
            else:
                st.warning("The transcript holds no Edge Impulse predictions (a '  value: …' line under 'Predictions:').")
        ei_cmp = st.session_state.get("device.ei")
        if ei_cmp is not None:
            show_comparison(ei_cmp, "Edge Impulse vs host")
