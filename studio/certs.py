"""A self-signed certificate for serving the studio over HTTPS on a workshop LAN (`python -m studio --https`).

Browsers give a page serial ports (Web Serial) only in a secure context: HTTPS, or localhost. A studio on
http://192.168.x.y:8501 is neither for the participants, so LAN mode can make its own certificate. It is
self-signed, so each browser warns once ("Your connection is not private"); the fingerprint printed at
start-up lets a participant check they are proceeding to the host's studio and not to another machine.

The certificate is made with the openssl command-line tool (present on Linux and macOS, and with Git for
Windows), kept in a private folder the studio made (``_private_folder``), and reused only while
``reuse_fault`` finds nothing wrong (owner and mode, dates, names, key pairing), so restarting the studio
does not bring the warning back, and a certificate or key someone else put there is never served.
"""
from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import shutil
import socket
import ssl
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from core.errors import StudioError

DAYS = 30
_uid = getattr(os, "getuid", lambda: 0)  # Windows has no uids (its st_uid is 0)
# A certificate this close to its end is made again.
RENEW_S = 24 * 3600


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path
    names: tuple[str, ...]      # DNS names and IP addresses it is valid for
    fingerprint: str            # SHA-256 of the certificate, AA:BB:... as browsers show it
    reused: bool = False
    renewed: str | None = None  # why the one kept before was not served again


def default_dir() -> Path:
    # Per user: in a shared temp folder another local user could make the folder first (and is then refused).
    return Path(os.environ.get("FS_TLS_DIR") or Path(tempfile.gettempdir()) / f"forecast-studio-tls-{_uid()}")


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


# --- what may be reused: a certificate is a secret's partner, so nothing in the folder is taken on trust ---

def _private_folder(folder: Path) -> Path:
    """The studio's certificate folder: made private here, or one made so before (its marker, this user's,
    mode 0700). Anything else (a user's folder, a file, another user's folder, /proc) is refused, never chmodded."""
    from core.files import mark_owned, owned

    where = f"The certificate folder {folder} (FS_TLS_DIR)"
    fix = "Point FS_TLS_DIR at a new folder name (the studio makes it, private to you), or leave it unset."
    try:
        if not os.path.lexists(folder):
            folder.parent.mkdir(parents=True, exist_ok=True)
            folder.mkdir(mode=0o700)
            os.chmod(folder, 0o700)
            mark_owned(folder, "tls")
            return folder
        info = os.lstat(folder)
    except OSError as err:
        raise StudioError(f"{where} cannot be made ({err.strerror or err}).", fix) from None
    if not stat.S_ISDIR(info.st_mode):
        raise StudioError(f"{where} is not a folder.", fix)
    if info.st_uid != _uid() or info.st_mode & 0o077:
        raise StudioError(f"{where} is not private to you (owner uid {info.st_uid}, mode {info.st_mode & 0o777:o}): "
                          "another user could read or swap the key.", fix)
    if not owned(folder, "tls"):
        raise StudioError(f"{where} is not one the studio made, so it is left as it is.", fix)
    return folder


def _cert_dates(cert: Path) -> tuple[float, float, tuple[str, ...]]:
    """(not before, not after, its names) read from the certificate itself."""
    decoded = ssl._ssl._test_decode_cert(str(cert))  # noqa: SLF001  the stdlib's own PEM reader
    names = tuple(value for _kind, value in decoded.get("subjectAltName", ()))
    return (ssl.cert_time_to_seconds(decoded["notBefore"]), ssl.cert_time_to_seconds(decoded["notAfter"]),
            tuple(n.strip() for n in names))


def reuse_fault(cert: Path, key: Path, names: tuple[str, ...], now: float | None = None) -> str | None:
    """Why the kept certificate must not be served again (None: it may). Checked: both plain files of this user,
    the key readable by nobody else and neither writable by others, the dates (already valid, not about to
    expire), the names, and that the key pairs with the certificate."""
    now = time.time() if now is None else now
    for path, what, mask in ((cert, "certificate", 0o022), (key, "key", 0o077)):
        try:
            info = os.lstat(path)
        except OSError:
            return f"no {what}"
        if not stat.S_ISREG(info.st_mode):
            return f"the {what} is not a plain file"
        if info.st_uid != _uid():
            return f"the {what} belongs to another user"
        if info.st_mode & mask:
            return f"the {what} is open to other users (mode {info.st_mode & 0o777:o})"
    try:
        not_before, not_after, have = _cert_dates(cert)
    except (ssl.SSLError, OSError, ValueError, KeyError, TypeError):
        return "the certificate cannot be read"
    if not_before > now:
        return "the certificate is not valid yet"
    if not_after - now <= RENEW_S:
        return "the certificate has expired or is about to"
    if not set(names) <= set(have):
        return "the certificate does not cover this machine's names"
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(str(cert), str(key))
    except (ssl.SSLError, ValueError, OSError):
        return "the key does not belong to the certificate (or cannot be read)"
    return None


def self_signed(names: tuple[str, ...], folder: Path | None = None, days: int = DAYS) -> Certificate:
    """A certificate and key for ``names`` in ``folder``: the one made before when it passes ``reuse_fault``,
    else a new one (``Certificate.renewed`` says why)."""
    folder = _private_folder(Path(folder or default_dir()).expanduser().absolute())
    cert, key = folder / "studio-cert.pem", folder / "studio-key.pem"
    fault = reuse_fault(cert, key, names)
    if fault is None:
        return Certificate(cert, key, _cert_dates(cert)[2], fingerprint(cert), reused=True)
    openssl = shutil.which("openssl")
    if openssl is None:
        raise StudioError("HTTPS with a self-signed certificate needs the openssl command, which is not installed.",
                          "Install openssl (apt install openssl; on Windows it comes with Git for Windows), or pass "
                          "your own certificate with --cert FILE --key FILE.")
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
        os.replace(work / "key.pem", key)
        os.replace(work / "cert.pem", cert)
    except OSError as err:
        raise StudioError(f"The certificate could not be written in {folder} ({err.strerror or err}).",
                          "Point FS_TLS_DIR at a new folder name, or leave it unset.") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with contextlib.suppress(OSError):
        (folder / "studio-cert.json").unlink()  # the old sidecar: the certificate itself is what is checked now
    return Certificate(cert, key, names, fingerprint(cert), renewed=None if fault == "no certificate" else fault)


def check_pair(cert: str | Path, key: str | Path, now: float | None = None) -> tuple[Path, Path]:
    """The host's own certificate and key (--cert/--key): both readable, a pair, valid now, and the key not
    writable by other users."""
    cert, key = Path(cert), Path(key)
    for path, what in ((cert, "certificate"), (key, "key")):
        if not path.is_file():
            raise StudioError(f"The {what} file {path} does not exist.",
                              "Give the path of a PEM file, or use --https alone for a self-signed certificate.")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(str(cert), str(key))
        not_before, not_after, _names = _cert_dates(cert)
        info = os.stat(key)
    except (ssl.SSLError, ValueError, OSError, KeyError, TypeError) as exc:
        raise StudioError(f"{cert} and {key} are not a PEM certificate and its private key ({exc}).",
                          "Pass the certificate and the key that belongs to it (PEM, key not password-protected).") from None
    now = time.time() if now is None else now
    if not_before > now or not_after <= now:
        raise StudioError(f"The certificate {cert} is {'not valid yet' if not_before > now else 'expired'} "
                          f"(valid {time.strftime('%Y-%m-%d', time.gmtime(not_before))} to "
                          f"{time.strftime('%Y-%m-%d', time.gmtime(not_after))}).",
                          "Pass a current certificate, or use --https alone for a self-signed one.")
    if info.st_mode & 0o022 or info.st_uid not in (_uid(), 0):
        raise StudioError(f"The key {key} can be changed by other users (owner uid {info.st_uid}, mode "
                          f"{info.st_mode & 0o777:o}).", f"Make it yours and private: chmod 600 {key}.")
    return cert, key
