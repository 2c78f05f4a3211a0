"""Hostile class 8: the Edge Impulse key on a process listing. The key is read from stdin or a file (never
argv), leaves the export's environment at once, reaches only core.edge_impulse.worker on its pipe, and is checked with
the network before the long offline export."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from core.edge_impulse import client as edgeimpulse
from core.errors import StudioError
from studio.cli import main
from tests.ei_standin import StandIn

ROOT = Path(__file__).resolve().parent.parent
KEY = "ei_hostile_key_test_0123456789abcdef"


def test_a_key_typed_on_the_command_line_is_refused(tmp_path, capsys):
    assert main(["export", str(tmp_path / "run"), "--ei-api-key", KEY, "--out", str(tmp_path / "exp")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "process list" in err and KEY not in err
    assert not (tmp_path / "exp").exists()


def test_converter_children_never_inherit_the_key(monkeypatch):
    from core.export import worker_env

    monkeypatch.setenv("EI_API_KEY", KEY)
    for legacy in (False, True):
        env = worker_env(legacy)
        assert "EI_API_KEY" not in env and KEY not in "".join(env.values())


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_network_and_key_are_checked_without_the_sdk():
    with StandIn(key=KEY) as s:
        edgeimpulse.check_access(KEY, endpoint_url=s.url)
        with pytest.raises(StudioError, match="refused the API key") as err:
            edgeimpulse.check_access("ei_wrong_key_000000000000", endpoint_url=s.url)
        assert "ei_wrong" not in str(err.value)
    with pytest.raises(StudioError):
        edgeimpulse.check_access(KEY, endpoint_url=f"http://127.0.0.1:{_closed_port()}/v1")


@pytest.mark.slow  # builds a model for the run
def test_a_wrong_key_is_refused_before_the_offline_export(tmp_path):
    from tests.export_helpers import make_run

    make_run(tmp_path / "run")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", EI_API_KEY="ei_wrong_key_000000000000")
    with StandIn(key=KEY) as s:
        env["EI_API_ENDPOINT"] = s.url
        proc = subprocess.run([sys.executable, "-m", "studio", "export", str(tmp_path / "run"), "--ei",
                               "--out", str(tmp_path / "exp")], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=300)
    assert proc.returncode == 2 and "refused the API key" in proc.stderr
    assert "Converting" not in proc.stderr and not (tmp_path / "exp").exists()
    assert "ei_wrong_key" not in proc.stderr + proc.stdout
