"""Workshop server defaults: loopback unless the host says otherwise, XSRF on, an upload limit, a LAN
warning, and no secret (the Edge Impulse API key) in any log, output or file the studio writes."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from core.config import MAX_UPLOAD_MB
from studio import cli

ROOT = Path(__file__).resolve().parent.parent
KEY = "ei_workshop_secret_5f3a9c0d1e2b4a6f8e7d"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lan_ip() -> str | None:
    """This machine's address on its network (no packet is sent: a UDP connect only picks a route)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))
            ip = s.getsockname()[0]
    except OSError:
        return None
    return None if ip.startswith("127.") else ip


def _files_containing(root: Path, needle: bytes) -> list[Path]:
    hits = []
    for p in root.rglob("*"):
        if p.is_file():
            try:
                if needle in p.read_bytes():
                    hits.append(p)
            except OSError:
                pass
    return hits


# ------------------------------------------------------------------------------------------ fast

def test_config_file_is_safe_by_default():
    conf = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert conf["server"]["address"] == "127.0.0.1"
    assert conf["server"]["enableXsrfProtection"] is True
    assert conf["server"]["maxUploadSize"] == MAX_UPLOAD_MB
    assert conf["browser"]["gatherUsageStats"] is False
    assert conf["client"]["showErrorDetails"] == "none"  # no tracebacks (with their locals' paths) in browsers


def test_serve_command_repeats_the_safe_settings():
    cmd = cli.serve_command()
    flags = dict(zip(cmd[5::2], cmd[6::2]))
    assert flags["--server.address"] == "127.0.0.1"
    assert flags["--server.enableXsrfProtection"] == "true"
    assert flags["--server.maxUploadSize"] == str(MAX_UPLOAD_MB)
    assert flags["--browser.gatherUsageStats"] == "false"
    args = cli.build_parser().parse_args([])
    assert args.address == "127.0.0.1" and not args.ray and args.workers is None
    lan = cli.build_parser().parse_args(["--address", "0.0.0.0", "--workers", "2", "--ray"])
    assert lan.address == "0.0.0.0" and lan.workers == 2 and lan.ray


def test_lan_mode_warns_and_loopback_does_not():
    assert cli.lan_warning("127.0.0.1") is None and cli.lan_warning("localhost") is None
    warning = cli.lan_warning("0.0.0.0", 8501)
    assert "LAN mode" in warning and "0.0.0.0:8501" in warning and "WORKSHOP.md" in warning


def test_workshop_doc_names_every_setting():
    doc = (ROOT / "docs" / "WORKSHOP.md").read_text()
    for word in ("--address 0.0.0.0", "FS_WORKERS", "FS_WORKDIR_ROOT", "FS_SESSION_TTL_S", "RAY_ADDRESS",
                 "FS_MAX_UPLOAD_MB", "FS_RAY_SHARED_FS", "XSRF", "API key"):
        assert word in doc, word


# ------------------------------------------------------------------------------------------ slow

@pytest.mark.slow
def test_served_studio_is_loopback_only_refuses_tokenless_uploads_and_logs_no_key(tmp_path):
    """`python -m studio` itself, started with the key in its environment as a host might."""
    port = _free_port()
    log = tmp_path / "server.log"
    env = dict(os.environ, EI_API_KEY=KEY, FS_WORKDIR_ROOT=str(tmp_path / "sessions"), PYTHONUNBUFFERED="1")
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "studio", "--port", str(port)], cwd=ROOT, env=env,
                                stdout=fh, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read().strip() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
            assert proc.poll() is None, log.read_text()
        else:
            pytest.fail(f"the studio did not start: {log.read_text()}")
        # XSRF: an upload without the session's token is refused before it is read
        req = urllib.request.Request(f"{url}/_stcore/upload_file/some-session/some-file", method="PUT",
                                     data=b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\nt,v\r\n--x--\r\n",
                                     headers={"Content-Type": "multipart/form-data; boundary=x"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=10)
        assert refused.value.code == 403 and b"XSRF" in refused.value.read()
        # loopback only: the machine's own network address does not answer
        ip = _lan_ip()
        if ip is not None:
            with pytest.raises(OSError):
                urllib.request.urlopen(f"http://{ip}:{port}/_stcore/health", timeout=3)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    text = log.read_text()
    assert "127.0.0.1" in text and "LAN mode" not in text
    assert KEY not in text
    assert _files_containing(tmp_path, KEY.encode()) == []


@pytest.mark.slow
def test_edge_impulse_deploy_with_a_key_writes_it_nowhere(tmp_path, monkeypatch, caplog, capfd):
    """The Edge Impulse path the Export page and `python -m studio export --ei-api-key` take, against the
    local stand-in server, with every logger at DEBUG: the key reaches the server (that is its job) and
    nothing else: no log record, stdout, stderr, progress message, the export folder, or a temp file."""
    import logging

    from core.edge_impulse import client as edgeimpulse
    from tests.ei_standin import StandIn
    from tests.export_helpers import make_run

    run = make_run(tmp_path / "run", kind="lstm", window=12, n_features=2, units=8)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))  # the helper's job directory lands where we can read it
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.delenv("EI_API_KEY", raising=False)
    caplog.set_level(logging.DEBUG)
    said: list[str] = []
    with StandIn(key=KEY) as server:
        data = edgeimpulse.deploy(run, api_key=KEY, timeout=240, endpoint_url=server.url, progress=said.append)
        keys_sent = {r.get("api_key") for r in server.requests}
    lib = edgeimpulse.save_library(tmp_path / "export", data)
    assert lib.exists() and KEY in keys_sent  # it did go where it was meant to
    out, err = capfd.readouterr()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for text in (out, err, logged, "\n".join(said)):
        assert KEY not in text
    assert _files_containing(tmp_path, KEY.encode()) == []  # run, export, the helper's temp files
