"""Hostile class 7: a server that outlives its parent. `python -m studio` forwards SIGTERM/SIGINT to its
Streamlit child and waits for it, so stopping the studio stops the server."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_healthy(port: int, proc: subprocess.Popen, limit_s: float = 240) -> None:
    """Wait for the server's health endpoint (the element this test uses), however slow the machine is."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode(errors="replace")[-2000:]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail("the studio never answered /_stcore/health")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc to find the child process")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopping_the_studio_stops_its_streamlit_child(tmp_path, sig):
    port = _free_port()
    env = dict(os.environ, FS_WORKDIR_ROOT=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-m", "studio", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_healthy(port, proc)
        children = _children(proc.pid)
        assert children, "the studio runs Streamlit as a child process"
        proc.send_signal(sig)
        proc.wait(timeout=120)  # returns only once the child is gone (it waits for it)
        assert not [c for c in children if _alive(c)], "the Streamlit child outlived its parent"
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, "something still listens on the studio's port"
    finally:
        for c in _children(proc.pid):
            os.kill(c, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
