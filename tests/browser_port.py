"""Stand-ins for the participant's browser and USB port, for the browser-link tests.

``PortPump`` plays the browser's part in-process: it holds a real serial port (pyserial on a pty where the
scripted board or the device emulator answers) and moves its bytes into a ``core.board.weblink.Link`` and back,
acknowledging writes as the component does. ``UsbBridge`` is the other end of the page-side Web Serial shim
(tests/js/webserial_shim.js) in the Chromium tests: a WebSocket server that, per connection, opens the
pty and relays raw bytes, so the shim's "USB port" is a real stream to a real (emulated) board. Both garble
the bytes as a mismatched UART would when the port is opened at another baud than the board's.
"""
from __future__ import annotations

import asyncio
import threading
from typing import Callable
from urllib.parse import parse_qs, urlsplit

import serial

from core.board import weblink
from tests.pty_board import uart_garble

BOARD_BAUD = 115200


class PortPump:
    """The browser's relay for one Link, without a browser: pty bytes <-> Link, writes acknowledged."""

    def __init__(self, link: weblink.Link, path: str, baud: int = BOARD_BAUD, vid: int = 0x303A, pid: int = 0x1001,
                 ack: bool = True) -> None:
        self.link, self.baud, self.ack = link, baud, ack
        self.ser = serial.Serial(path, BOARD_BAUD, timeout=0.02)
        self.written = 0
        self._stop = threading.Event()
        assert link.attach(self._to_port)
        link.hello(vid, pid, baud)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _to_port(self, message) -> None:
        if isinstance(message, bytes):
            self.ser.write(message)
            self.written += len(message)
            if self.ack:
                self.link.acked(self.written)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.ser.read(4096)
            except (serial.SerialException, OSError, TypeError):
                return
            if data:
                self.link.feed(uart_garble(data, BOARD_BAUD, self.baud) if self.baud != BOARD_BAUD else data)

    def unplug(self, reason: str = "the browser lost the port, as when the board is unplugged") -> None:
        self._stop.set()
        self.link.lost(reason)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.ser.close()


class UsbBridge:
    """A WebSocket server on 127.0.0.1 standing in for USB + the OS serial driver behind the Web Serial shim.

    ``ws://127.0.0.1:<port>/?baud=N`` opens ``path()`` (the current board's pty) and relays raw bytes.
    ``pull()`` closes every connection at once (the cable pulled); with ``pull_on`` set, the bridge pulls it
    itself right after the board's line that starts so, so a test pulls mid-answer without waiting on a
    clock. One connection at a time:
    a second gets refused, as a port another tab holds.
    """

    def __init__(self, path: Callable[[], str]) -> None:
        self.path = path
        self.pull_on: bytes | None = None     # pull the cable right after the board sends a line starting so
        self.pulled = threading.Event()
        self.busy = False                     # another program holds the port: opens fail
        self.opened: list[int] = []
        self._conns: set = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10)

    def _run(self) -> None:
        import websockets

        asyncio.set_event_loop(self._loop)

        async def main() -> None:
            self._server = await websockets.serve(self._handle, "127.0.0.1", 0, max_size=None,
                                                  process_request=self._refuse_if_busy)
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._server.wait_closed()

        self._loop.run_until_complete(main())

    def _refuse_if_busy(self, connection, request):
        # The OS refuses a second open of a port another program holds: the handshake fails, as an open does.
        if self.busy or self._conns:
            from http import HTTPStatus

            return connection.respond(HTTPStatus.FORBIDDEN, "port busy\n")
        return None

    async def _handle(self, ws) -> None:
        query = parse_qs(urlsplit(ws.request.path).query)
        baud = int(query.get("baud", [BOARD_BAUD])[0])
        self.opened.append(baud)
        ser = serial.Serial(self.path(), BOARD_BAUD, timeout=0)
        self._conns.add(ws)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()

        async def from_board() -> None:
            hold = b""
            while not stop.is_set():
                try:
                    data = await loop.run_in_executor(None, _read, ser)
                except Exception:
                    break
                if not data:
                    continue
                try:
                    if self.pull_on is None:
                        await ws.send(uart_garble(data, BOARD_BAUD, baud) if baud != BOARD_BAUD else data)
                        continue
                    # Pull mode: pass whole lines until the one named, then pull the cable right after it.
                    hold += data
                    while b"\n" in hold:
                        line, hold = hold.split(b"\n", 1)
                        await ws.send(line + b"\n")
                        if line.startswith(self.pull_on):
                            self.pull_on = None
                            self.pulled.set()
                            await ws.close(4000, "unplugged")
                            return
                except Exception:
                    break

        reader = asyncio.create_task(from_board())
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    ser.write(message)
        except Exception:
            pass
        finally:
            stop.set()
            reader.cancel()
            self._conns.discard(ws)
            ser.close()

    def pull(self) -> None:
        """Pull the cable: every open connection ends now (from any thread)."""
        async def close_all() -> None:
            for ws in list(self._conns):
                await ws.close(4000, "unplugged")

        asyncio.run_coroutine_threadsafe(close_all(), self._loop).result(5)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._thread.join(timeout=5)


def _read(ser: serial.Serial) -> bytes:
    import select

    r, _, _ = select.select([ser.fileno()], [], [], 0.05)
    return ser.read(4096) if r else b""
