"""The board check, one sequence for the Device page and ``studio device``: the self-test (``T``: the
windows built into the firmware), then chosen test windows sent with ``P``, each answer compared with the
host's run of the same model file and judged against the actual values."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from core.board.compare import Comparison, compare
from core.board.link import Board
from core.board.ports import CFG
from core.board.protocol import Result
from core.board.reference import Reference


@dataclass
class BoardCheck:
    results: list[Result] = field(default_factory=list)           # the self-test's answers
    pairs: list[tuple[int, Result]] = field(default_factory=list)  # (test window, answer) for each window sent
    comparison: Comparison | None = None                           # None without a reference to compare with


def run_check(board: Board, ref: Reference | None, *, self_test: bool = True, windows: Iterable[int] = (),
              timeout: float = CFG["answer_timeout_s"]) -> BoardCheck:
    """Self-test (when asked), then each of ``windows`` (indices into the reference's test windows) sent
    in the data's units, and everything answered compared at the board's own dtype."""
    check = BoardCheck()
    if self_test:
        check.results = board.self_test(timeout=timeout)
    if ref is not None:
        check.pairs = [(i, board.predict(ref.window_units(i), timeout=timeout)) for i in windows]
        dtype = board.ready_info.dtype if board.ready_info else None
        check.comparison = compare([*check.results, *check.pairs], ref, dtype=dtype)
    return check
