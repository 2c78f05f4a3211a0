"""Issue 35, item 6: the certificate --https keeps is reused only after expiry, pairing, owner and mode
checks; a folder the studio did not make is refused (never chmodded); every fault is one clear message."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from core.errors import StudioError
from studio import certs, cli

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="the self-signed certificate needs openssl")
NAMES = ("localhost", "127.0.0.1")


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """One certificate made in a studio folder, copied per test (openssl's RSA key takes a moment)."""
    return certs.self_signed(NAMES, tmp_path_factory.mktemp("made") / "tls")


@pytest.fixture
def tls(made, tmp_path):
    folder = tmp_path / "tls"
    shutil.copytree(made.cert.parent, folder)
    assert certs.self_signed(NAMES, folder).reused
    return folder


def _ec_key(path: Path) -> None:
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(path)],
                   check=True, capture_output=True)


def _fault(folder: Path, how: str) -> None:
    cert, key = folder / "studio-cert.pem", folder / "studio-key.pem"
    if how == "key 0666":
        key.chmod(0o666)
    elif how == "key 0640":
        key.chmod(0o640)
    elif how == "cert 0666":
        cert.chmod(0o666)
    elif how == "key symlinked":
        real = folder.parent / "elsewhere.pem"
        shutil.copy(key, real)
        key.unlink()
        key.symlink_to(real)
    elif how == "corrupt key":
        key.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    elif how == "corrupt cert":
        cert.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    elif how == "wrong key type":
        _ec_key(key)
        key.chmod(0o600)
    elif how == "key of another certificate":
        other = certs.self_signed(NAMES, folder.parent / "other")
        shutil.copy(other.key, key)
    elif how == "no key":
        key.unlink()
    elif how == "nested sidecar":
        (folder / "studio-cert.json").write_text("[" * 100000 + "]" * 100000)
        return  # not read any more: the certificate itself is checked
    elif how == "key of another user":
        os.chown(key, 12345, 12345)


FAULTS = ["key 0666", "key 0640", "cert 0666", "key symlinked", "corrupt key", "corrupt cert", "wrong key type",
          "key of another certificate", "no key", "key of another user"]


@pytest.mark.parametrize("how", FAULTS)
def test_a_faulty_kept_certificate_is_made_again(tls, how):
    if how == "key of another user" and os.geteuid() != 0:
        pytest.skip("chown needs root")
    before = certs.fingerprint(tls / "studio-cert.pem") if how != "corrupt cert" else None
    _fault(tls, how)
    again = certs.self_signed(NAMES, tls)
    assert not again.reused and again.renewed, how
    assert again.fingerprint != before
    assert certs.reuse_fault(again.cert, again.key, NAMES) is None
    assert oct(again.key.stat().st_mode & 0o777) == "0o600" and not again.key.is_symlink()


def test_a_sidecar_is_not_trusted(tls):
    _fault(tls, "nested sidecar")
    assert certs.self_signed(NAMES, tls).reused


def test_dates_are_read_from_the_certificate(tls):
    cert, key = tls / "studio-cert.pem", tls / "studio-key.pem"
    not_before, not_after, names = certs._cert_dates(cert)
    assert set(NAMES) <= set(names)
    assert certs.reuse_fault(cert, key, NAMES, now=not_before - 60) == "the certificate is not valid yet"
    assert "expired" in certs.reuse_fault(cert, key, NAMES, now=not_after + 60)
    assert "expired" in certs.reuse_fault(cert, key, NAMES, now=not_after - 60)  # about to: renewed early
    assert "names" in certs.reuse_fault(cert, key, ("studio.lan",))
    with pytest.raises(StudioError, match="expired"):
        certs.check_pair(cert, key, now=not_after + 60)
    with pytest.raises(StudioError, match="not valid yet"):
        certs.check_pair(cert, key, now=not_before - 60)


@pytest.mark.parametrize("where", ["user folder", "0777 folder", "file", "proc", "proc file", "other user"])
def test_a_folder_the_studio_did_not_make_is_refused_and_left_alone(tmp_path, where, made):
    if where == "user folder":
        folder = tmp_path / "my_docs"
        folder.mkdir(mode=0o755)
        (folder / "notes.txt").write_text("mine")
    elif where == "0777 folder":
        folder = tmp_path / "shared"
        shutil.copytree(made.cert.parent, folder)
        folder.chmod(0o777)
        (folder / "studio-key.pem").chmod(0o666)
    elif where == "file":
        folder = tmp_path / "a-file"
        folder.write_text("x")
    elif where == "proc":
        folder = Path("/proc/forecast-studio-tls")
    elif where == "proc file":
        folder = Path("/proc/self/status")
    else:
        if os.geteuid() != 0:
            pytest.skip("chown needs root")
        folder = tmp_path / "theirs"
        shutil.copytree(made.cert.parent, folder)
        os.chown(folder, 12345, 12345)
    mode = folder.stat().st_mode if folder.exists() else None
    listing = sorted(p.name for p in folder.iterdir()) if folder.is_dir() and where != "proc" else None
    with pytest.raises(StudioError, match="FS_TLS_DIR") as err:
        certs.self_signed(NAMES, folder)
    assert "Traceback" not in str(err.value)
    if mode is not None and where not in ("proc file",):
        assert folder.stat().st_mode == mode, "never chmodded"
    if listing is not None:
        assert sorted(p.name for p in folder.iterdir()) == listing


def test_the_cli_says_it_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FS_TLS_DIR", "/proc/self/status")
    assert cli.main(["--https", "--address", "127.0.0.1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "FS_TLS_DIR" in err, err


def test_a_user_key_others_can_change_is_refused(tls, tmp_path):
    key = tmp_path / "key.pem"
    shutil.copy(tls / "studio-key.pem", key)
    key.chmod(0o666)
    with pytest.raises(StudioError, match="can be changed by other users"):
        certs.check_pair(tls / "studio-cert.pem", key)
    key.chmod(0o600)
    assert certs.check_pair(tls / "studio-cert.pem", key, now=time.time())
