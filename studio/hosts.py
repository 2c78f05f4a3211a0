"""Which host names the studio answers to: a guard in front of every route (pages, the app's own stream,
the board relay), against DNS rebinding.

A page on another site cannot read the studio's answers, unless its own name starts to point at the studio's
address (DNS rebinding): the browser then sends that name as ``Host`` and as ``Origin``, so an Origin check
alone passes. A request is answered only when its ``Host`` is one the host offered: a localhost name, an
address of this machine (an IP literal it can bind: a rebinding name is never one), the address the server
binds, this machine's name, and the names the instructor gives (``--allow-host NAME`` or
``FS_ALLOWED_HOSTS=a,b``). Anything else gets HTTP 403 before any route runs.
"""
from __future__ import annotations

import functools
import ipaddress
import os
import socket

ENV = "FS_ALLOWED_HOSTS"
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "127.0.0.1", "::1"})


def host_name(header: str) -> str:
    """``Host`` without its port, lower case: "Studio.lan:8501" -> "studio.lan", "[::1]:8501" -> "::1"."""
    h = (header or "").strip().lower()
    if h.startswith("[") and "]" in h:
        inside, rest = h[1:].split("]", 1)
        return inside if not rest or (rest.startswith(":") and rest[1:].isdigit()) else h
    if h.count(":") == 1:
        h = h.split(":", 1)[0]
    return h.rstrip(".")


@functools.lru_cache(maxsize=256)
def _is_own_address(name: str) -> bool:
    """An IP literal this machine holds (binding a socket to it works only then)."""
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return False
    if ip.is_loopback:
        return True
    try:
        with socket.socket(socket.AF_INET6 if ip.version == 6 else socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((name, 0))
        return True
    except OSError:
        return False


def given_names(address: str = "", env: str | None = None) -> frozenset[str]:
    """The names offered by the host: the bound address, this machine's name, and the instructor's list."""
    names = {host_name(address)} if address not in ("", "0.0.0.0", "::") else set()
    host = socket.gethostname()
    if host:
        names |= {host.lower(), host.lower().split(".")[0]}
    raw = os.environ.get(ENV, "") if env is None else env
    names |= {host_name(n) for n in raw.replace(";", ",").split(",") if n.strip()}
    return frozenset(n for n in names if n)


def allowed(header: str, names: frozenset[str]) -> bool:
    name = host_name(header)
    return bool(name) and (name in LOCAL_NAMES or name.endswith(".localhost") or name in names
                           or _is_own_address(name))


class HostGuard:
    """ASGI middleware: a request (HTTP or WebSocket) whose ``Host`` is not allowed is refused with 403."""

    def __init__(self, app, address: str | None = None) -> None:
        self.app = app
        self.address = address

    @functools.cached_property
    def names(self) -> frozenset[str]:
        address = self.address
        if address is None:
            try:
                from streamlit import config

                address = str(config.get_option("server.address") or "")
            except Exception:  # no Streamlit config (a bare ASGI app in a test): localhost and the list only
                address = ""
        return given_names(address)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] in ("http", "websocket"):
            header = dict(scope.get("headers") or ()).get(b"host", b"").decode("latin-1")
            if not allowed(header, self.names):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 4403})  # before accept: HTTP 403
                    return
                body = (f"The studio does not answer to the host name {host_name(header)[:100]!r}. The host can "
                        f"allow it: python -m studio --allow-host NAME (or {ENV}).\n").encode()
                await send({"type": "http.response.start", "status": 403,
                            "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
