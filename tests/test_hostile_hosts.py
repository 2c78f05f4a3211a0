"""Issue 35, item 7: a request under a host name the studio was not given (DNS rebinding: the attacker's name
now points at the studio, Host and Origin agree) reaches neither the pages, the app's stream nor the relay."""
from __future__ import annotations

import asyncio

import pytest

from studio import hosts


def _call(host: str, kind: str = "http", env: str = "studio.lan, 10.1.2.3", address: str = "0.0.0.0",
          path: str = "/") -> tuple[bool, list[dict]]:
    """Run one request through HostGuard: (did it reach the routes, what the guard sent back)."""
    reached, sent = [], []

    async def inner(scope, receive, send):
        reached.append(scope["path"])

    async def receive():
        return {"type": "websocket.connect"} if kind == "websocket" else {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    guard = hosts.HostGuard(inner, address=address)
    guard.names = hosts.given_names(address, env=env)
    headers = [(b"host", host.encode("latin-1")), (b"origin", f"http://{host}".encode("latin-1"))]
    asyncio.run(guard({"type": kind, "path": path, "headers": headers}, receive, send))
    return bool(reached), sent


FOREIGN = ["rebind.evil.example", "rebind.evil.example:8501", "REBIND.evil.example.", "localhost.evil.example",
           "127.0.0.1.nip.io", "evil.example:80@localhost", "", "[::1].evil.example", "xn--80ak6aa92e.com",
           "studio.lan.evil.example", "192.0.2.99:8501"]


@pytest.mark.parametrize("host", FOREIGN)
@pytest.mark.parametrize("kind,path", [("http", "/"), ("websocket", "/_stcore/stream"),
                                       ("websocket", "/api/board-link")])
def test_foreign_host_names_are_refused_everywhere(host, kind, path):
    reached, sent = _call(host, kind, path=path)
    assert not reached
    if kind == "http":
        assert sent[0]["status"] == 403 and b"--allow-host" in sent[1]["body"]
    else:
        assert sent == [{"type": "websocket.close", "code": 4403}]  # before accept: the handshake gets 403


@pytest.mark.parametrize("host", ["localhost:8501", "127.0.0.1:8501", "[::1]:8501", "studio.lan:8501", "STUDIO.LAN",
                                  "app.localhost", "10.1.2.3:8501"])
@pytest.mark.parametrize("kind", ["http", "websocket"])
def test_the_names_the_host_offered_are_answered(host, kind):
    reached, sent = _call(host, kind)
    assert reached and not sent


def test_the_server_mounts_the_guard_in_front_of_every_route():
    text = (hosts.__file__.replace("hosts.py", "server.py"))
    assert "middleware=[Middleware(HostGuard)]" in open(text, encoding="utf-8").read()


def test_the_bound_address_and_this_machines_name_are_offered(monkeypatch):
    import socket

    names = hosts.given_names("192.0.2.7", env="")
    assert "192.0.2.7" in names and socket.gethostname().lower() in names
    assert "0.0.0.0" not in hosts.given_names("0.0.0.0", env="")
    assert hosts.host_name("[fe80::1]:8501") == "fe80::1" and hosts.host_name("Studio.LAN.:80") == "studio.lan"
    assert not hosts.allowed("192.0.2.99", frozenset())  # an address this machine does not hold


def test_the_cli_passes_the_instructors_names_to_the_server():
    from studio import cli

    args = cli.build_parser().parse_args(["--address", "0.0.0.0", "--allow-host", "studio.lan", "--allow-host", "x.y"])
    assert args.allow_host == ["studio.lan", "x.y"]
