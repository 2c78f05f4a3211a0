"""The board: a XIAO ESP32S3 (or its emulator) on a serial line, and whether its answers can be trusted.

Read top-down: ``protocol`` (the serial protocol's lines, parsed and formatted), ``ports`` (finding the
board, and the errors a port gives), ``link`` (``Board``: the port, its reader thread, the commands;
``Task`` runs them off the page's thread), ``weblink`` (a board held by the participant's browser over
Web Serial, opened like a port), ``reference`` (the export folder read into what the board should
answer), ``compare`` (fidelity against the host's run of the same file, quality against the actual
values; Edge Impulse readings), ``check`` (the self-test and sent windows, compared: the one sequence
the page and the command line run), ``emulator`` (the exported model on TFLite Micro behind the same protocol).
"""
from core.board.check import BoardCheck, run_check
from core.board.compare import (COMPARISON_HEADERS, Comparison, EiReading, Row, check_ready_against, compare, compare_ei, ei_readings,
                                judge_quality, parse_transcript)
from core.board.link import Board, LogEntry, Task, open_serial
from core.board.ports import (XIAO_IDS, PortInfo, board_error, disconnected_error, list_ports, mismatch_error,
                              open_error, order_ports, port_info)
from core.board.reference import Embedded, Reference, load_reference

__all__ = [
    "COMPARISON_HEADERS", "Board", "BoardCheck", "Comparison", "EiReading", "Embedded", "LogEntry", "PortInfo", "Reference", "Row", "Task", "XIAO_IDS",
    "board_error", "check_ready_against", "compare", "compare_ei", "disconnected_error", "ei_readings",
    "judge_quality", "list_ports", "load_reference", "mismatch_error", "open_error", "open_serial", "order_ports",
    "parse_transcript", "port_info", "run_check",
]
