"""HTTPS for LAN mode (`python -m studio --https` / `--cert --key`): browsers give a page serial ports only in
a secure context, so a workshop's participants need it to connect the boards on their own laptops."""
from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from core.errors import StudioError
from studio import certs, cli

ROOT = Path(__file__).resolve().parent.parent
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="the self-signed certificate needs openssl")


def test_serve_runs_the_server_with_the_board_relay():
    cmd = cli.serve_command()
    assert cmd[4].endswith(str(Path("studio") / "server.py"))
    args = cli.build_parser().parse_args(["--address", "0.0.0.0", "--https"])
    assert args.https and args.cert is None


@needs_openssl
def test_self_signed_certificate_covers_the_names_and_is_reused(tmp_path):
    names = ("localhost", "127.0.0.1", "studio.lan", "192.0.2.7")
    made = certs.self_signed(names, tmp_path / "tls")
    assert not made.reused and re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", made.fingerprint)
    assert oct(made.key.stat().st_mode & 0o777) == "0o600" and oct((tmp_path / "tls").stat().st_mode & 0o777) == "0o700"
    san = subprocess.run(["openssl", "x509", "-in", str(made.cert), "-noout", "-ext", "subjectAltName"],
                         capture_output=True, text=True).stdout
    for want in ("DNS:localhost", "IP Address:127.0.0.1", "DNS:studio.lan", "IP Address:192.0.2.7"):
        assert want in san, san
    again = certs.self_signed(names[:2], tmp_path / "tls")
    assert again.reused and again.fingerprint == made.fingerprint  # no new browser warning after a restart
    other = certs.self_signed(("localhost", "10.9.9.9"), tmp_path / "tls")
    assert not other.reused and other.fingerprint != made.fingerprint
    assert not list((tmp_path / "tls").glob(".new-*")), "no half-made certificate left behind"


@needs_openssl
def test_https_flags_and_bad_certificate_files(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FS_TLS_DIR", str(tmp_path / "tls"))
    flags = cli.https_flags("0.0.0.0", 8501, True, None, None)
    assert flags[0] == "--server.sslCertFile" and flags[2] == "--server.sslKeyFile"
    err = capsys.readouterr().err
    assert "SHA-256 fingerprint" in err and "warns once" in err and "Proceed" in err
    assert cli.https_flags("0.0.0.0", 8501, False, None, None) == []
    assert "Web Serial needs HTTPS" in capsys.readouterr().err
    with pytest.raises(StudioError, match="go together"):
        cli.https_flags("0.0.0.0", 8501, False, str(tmp_path / "tls" / "studio-cert.pem"), None)
    with pytest.raises(StudioError, match="does not exist"):
        cli.https_flags("0.0.0.0", 8501, False, str(tmp_path / "nope.pem"), str(tmp_path / "nope.key"))
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(StudioError, match="not a PEM certificate"):
        cli.https_flags("0.0.0.0", 8501, False, str(junk), str(junk))
    assert cli.main(["--cert", str(junk)]) == 2
    assert "error: --cert and --key go together" in capsys.readouterr().err


def test_no_openssl_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(certs.shutil, "which", lambda name: None)
    with pytest.raises(StudioError, match="needs the openssl command"):
        certs.self_signed(("localhost",), tmp_path / "tls")


@needs_openssl
@pytest.mark.slow
def test_studio_serves_https_and_the_board_relay_on_the_same_certificate(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "server.log"
    env = dict(os.environ, FS_TLS_DIR=str(tmp_path / "tls"), FS_WORKDIR_ROOT=str(tmp_path / "sessions"),
               PYTHONUNBUFFERED="1")
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "studio", "--port", str(port), "--https"], cwd=ROOT, env=env,
                                stdout=fh, stderr=subprocess.STDOUT)
    try:
        cert = tmp_path / "tls" / "studio-cert.pem"
        context = ssl.create_default_context(cafile=None)
        deadline = time.time() + 90
        ok = False
        while time.time() < deadline and proc.poll() is None:
            if cert.is_file():
                context = ssl.create_default_context(cafile=str(cert))
                try:
                    ok = urllib.request.urlopen(f"https://localhost:{port}/_stcore/health", timeout=2,
                                                context=context).read().strip() == b"ok"
                except OSError:
                    pass
            if ok:
                break
            time.sleep(0.5)
        assert ok, log.read_text()
        # the certificate the browser checks is the one whose fingerprint was printed for the room
        printed = re.search(r"SHA-256 fingerprint: ([0-9A-F:]+)", log.read_text()).group(1)
        assert printed == certs.fingerprint(cert)
        # plain http on the same port is not served
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=3)

        # the board relay is on the same origin and certificate (wss://): an unknown token is refused
        import websockets

        async def probe() -> str:
            try:
                async with websockets.connect(f"wss://localhost:{port}/api/board-link?token=made-up", ssl=context):
                    return "accepted"
            except websockets.InvalidStatus as exc:
                return str(exc.response.status_code)
        assert asyncio.run(probe()) == "403"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
