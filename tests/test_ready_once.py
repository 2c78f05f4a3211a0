"""FS READY is logged once on connecting (issue 18 item 9): the board's boot banner answers the first
ready request, so the host does not ask again and log a second, identical line."""
from __future__ import annotations

import time

from core.board import Board
from core.board.protocol import Ready
from tests.pty_board import PtyBoard

BANNER = "FS READY model=lstm window=4 features=1 horizon=1 targets=1 dtype=float32 arena=2048\n"


def _until(predicate, what: str, timeout: float = 30.0):
    # a generous deadline on an event the test itself caused, not a timing assumption
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_a_boot_banner_answers_the_first_ready_request():
    replies = []
    pty = PtyBoard(lambda b, line: (replies.append(line), b.write(BANNER)) if line == "I" else None)
    board = Board(pty.path, 115200)
    try:
        pty.write(BANNER)  # the board boots as the port opens
        _until(lambda: any(isinstance(r, Ready) for r in board.records()), "the banner in the log")
        ready = board.ready(5)
        assert isinstance(ready, Ready) and ready.model == "lstm"
        assert "I" not in pty.received
        assert board.log_text(last=20).count("FS READY") == 1
        board.ready(5)  # asked again later (the page's button): it does ask
        _until(lambda: "I" in pty.received, "the I request")
    finally:
        board.close()
        pty.close()


def test_a_board_that_booted_long_ago_is_asked():
    pty = PtyBoard(lambda b, line: b.write(BANNER) if line == "I" else None)
    board = Board(pty.path, 115200)
    try:
        assert board.ready(5).dtype == "float32"
        assert "I" in pty.received and board.log_text(last=20).count("FS READY") == 1
    finally:
        board.close()
        pty.close()
