"""The studio server's end of a board held by the participant's browser: one WebSocket route.

The Device step's component (studio/components/board_link) opens the port with Web Serial and connects
here, on the page's own origin, so it shares the page's host, port and HTTPS certificate. Bytes the
board printed arrive as binary messages and go into the ``core.board.weblink.Link`` the token names; what
``core.board.Board`` writes goes back the same way. Text messages are small JSON controls
(hello, write acknowledgements, the port lost). Nothing here touches a session: the unguessable token,
minted by the page for this browser only, is what joins the two.
"""
from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from core.board import weblink

# Control messages are a few dozen bytes; anything bigger is not the component's.
MAX_CONTROL_CHARS = 4096
# The component sends what one Web Serial read gave (a board at 115200 baud prints ~11 KB/s): a bigger frame
# is not a board's, and the link is dropped at once instead of buffering frames of up to the server's limit.
MAX_FRAME_BYTES = 64 * 1024


def _same_origin(ws: WebSocket) -> bool:
    """A page on another site must not drive a board (cross-site WebSocket hijacking): the Origin a browser
    sends has to be the studio's own host. Clients that send none are not browsers and still need the token."""
    origin = ws.headers.get("origin")
    if not origin:
        return True
    host = ws.headers.get("host", "")
    return urlsplit(origin).netloc.lower() == host.lower()


async def board_link(ws: WebSocket) -> None:
    link = weblink.get(ws.query_params.get("token"))
    if link is None or not _same_origin(ws):
        await ws.close(code=4403)  # before accept: the handshake is refused (HTTP 403)
        return
    await ws.accept()
    loop = asyncio.get_running_loop()
    outbox: asyncio.Queue = asyncio.Queue()

    def send(message: bytes | dict) -> None:  # called from Board's threads
        loop.call_soon_threadsafe(outbox.put_nowait, message)

    if not link.attach(send):
        # Another tab (or an old socket of this one) holds this link: refuse, do not take it over.
        await ws.send_text(json.dumps({"type": "refused", "reason": "busy"}))
        await ws.close(code=4409)
        return

    async def pump() -> None:
        while True:
            message = await outbox.get()
            if isinstance(message, bytes):
                await ws.send_bytes(message)
                continue
            await ws.send_text(json.dumps(message))
            if message.get("type") == "close":
                await ws.close(code=1000)
                return

    sender = asyncio.create_task(pump())
    reason = weblink.lost_reason(None, None, "page")
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            data, text = message.get("bytes"), message.get("text")
            if data is not None and len(data) > MAX_FRAME_BYTES:
                reason = (f"the browser sent {len(data):,} bytes at once, more than a board's "
                          f"{MAX_FRAME_BYTES // 1024} KB; the link was closed")
                del data, message
                await ws.close(code=1009)  # message too big
                break
            if data is not None:
                link.feed(data)
            elif text is not None and len(text) <= MAX_CONTROL_CHARS:
                try:
                    control = json.loads(text)
                except ValueError:
                    continue
                if not isinstance(control, dict):
                    continue
                kind = control.get("type")
                if kind == "hello":
                    vid, pid = weblink.parse_info(control.get("info"))
                    baud = control.get("baud")
                    link.hello(vid, pid, baud if isinstance(baud, int) and not isinstance(baud, bool) else None)
                elif kind == "ack" and isinstance(control.get("n"), int):
                    link.acked(control["n"])
                elif kind == "lost":
                    reason = weblink.lost_reason(str(control.get("name") or "")[:80] or None,
                                                 str(control.get("message") or "")[:300] or None,
                                                 str(control.get("stage") or "read"))
                    link.lost(reason)
    except Exception:  # a socket torn down mid-receive is the same as a disconnect
        pass
    finally:
        sender.cancel()
        link.lost(reason)


def routes() -> list[WebSocketRoute]:
    """The routes the studio's server launcher (studio/server.py) mounts next to Streamlit's own."""
    weblink.RELAY["mounted"] = True
    return [WebSocketRoute(weblink.RELAY["path"], board_link)]
