"""A self-signed certificate for serving the studio over HTTPS on a workshop LAN (`python -m studio --https`).

Browsers give a page serial ports (Web Serial) only in a secure context: HTTPS, or localhost. A studio on
http://192.168.x.y:8501 is neither for the participants, so LAN mode can make its own certificate. It is
self-signed, so each browser warns once ("Your connection is not private"); the fingerprint printed at
start-up lets a participant check they are proceeding to the host's studio and not to another machine.

The certificate is made with the openssl command-line tool (present on Linux and macOS, and with Git for
Windows), kept in a private folder, and reused while it covers the same names and is not about to expire,
so restarting the studio does not bring the warning back.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from core.errors import StudioError

DAYS = 30
# A certificate this close to its end is made again.
RENEW_S = 24 * 3600


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path
    names: tuple[str, ...]      # DNS names and IP addresses it is valid for
    fingerprint: str            # SHA-256 of the certificate, AA:BB:... as browsers show it
    reused: bool = False


def default_dir() -> Path:
    return Path(os.environ.get("FS_TLS_DIR") or Path(tempfile.gettempdir()) / "forecast-studio-tls")


def lan_names(address: str) -> tuple[str, ...]:
    """What participants may type: this machine's name and addresses (and localhost for the host itself)."""
    names: list[str] = ["localhost", "127.0.0.1"]
    host = socket.gethostname()
    if host:
        names.append(host)
    if address not in ("0.0.0.0", "::", ""):
        names.append(address)
    try:  # the address the default route leaves by (no packet is sent for a UDP connect)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))
            names.append(s.getsockname()[0])
    except OSError:
        pass
    try:
        names += socket.gethostbyname_ex(host)[2]
    except OSError:
        pass
    seen: list[str] = []
    for n in names:
        if n and n not in seen:
            seen.append(n)
    return tuple(seen)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def fingerprint(cert_path: Path) -> str:
    der = ssl.PEM_cert_to_DER_cert(cert_path.read_text(encoding="ascii"))
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def self_signed(names: tuple[str, ...], folder: Path | None = None, days: int = DAYS) -> Certificate:
    """A certificate and key for ``names`` in ``folder``: the one made before when it still fits, else a new one."""
    folder = Path(folder or default_dir())
    cert, key, meta = folder / "studio-cert.pem", folder / "studio-key.pem", folder / "studio-cert.json"
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
        if (cert.is_file() and key.is_file() and set(names) <= set(info.get("names", []))
                and float(info.get("not_after", 0)) - time.time() > RENEW_S):
            return Certificate(cert, key, tuple(info["names"]), fingerprint(cert), reused=True)
    except (OSError, ValueError, TypeError):
        pass
    openssl = shutil.which("openssl")
    if openssl is None:
        raise StudioError("HTTPS with a self-signed certificate needs the openssl command, which is not installed.",
                          "Install openssl (apt install openssl; on Windows it comes with Git for Windows), or pass "
                          "your own certificate with --cert FILE --key FILE.")
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    san = ",".join(f"IP:{n}" if _is_ip(n) else f"DNS:{n}" for n in names)
    work = Path(tempfile.mkdtemp(prefix=".new-", dir=folder))
    try:
        cmd = [openssl, "req", "-x509", "-newkey", "rsa:2048", "-sha256", "-nodes", "-days", str(days),
               "-keyout", str(work / "key.pem"), "-out", str(work / "cert.pem"),
               "-subj", "/CN=Forecast Studio (workshop)", "-addext", f"subjectAltName={san}",
               "-addext", "basicConstraints=critical,CA:FALSE", "-addext", "extendedKeyUsage=serverAuth"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode != 0 or not (work / "cert.pem").is_file():
            raise StudioError(f"openssl could not make a certificate ({(done.stderr or '').strip()[:300]}).",
                              "Pass your own certificate with --cert FILE --key FILE.")
        os.chmod(work / "key.pem", 0o600)
        (work / "meta.json").write_text(json.dumps({"names": list(names), "not_after": time.time() + days * 86400}))
        os.replace(work / "key.pem", key)
        os.replace(work / "cert.pem", cert)
        os.replace(work / "meta.json", meta)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Certificate(cert, key, names, fingerprint(cert))


def check_pair(cert: str | Path, key: str | Path) -> tuple[Path, Path]:
    """The host's own certificate and key (--cert/--key): both readable, and a pair."""
    cert, key = Path(cert), Path(key)
    for path, what in ((cert, "certificate"), (key, "key")):
        if not path.is_file():
            raise StudioError(f"The {what} file {path} does not exist.",
                              "Give the path of a PEM file, or use --https alone for a self-signed certificate.")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(str(cert), str(key))
    except (ssl.SSLError, ValueError, OSError) as exc:
        raise StudioError(f"{cert} and {key} are not a PEM certificate and its private key ({exc}).",
                          "Pass the certificate and the key that belongs to it (PEM, key not password-protected).") from None
    return cert, key
