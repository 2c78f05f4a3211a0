"""The one exception type a user ever sees: what is wrong, and what to do about it."""
from __future__ import annotations


class StudioError(Exception):
    """A problem the user can fix. ``str()`` is one line: the problem, then the fix."""

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem = problem.strip()
        self.fix = fix.strip()
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = self.problem
        if self.fix:
            text = f"{text.rstrip('.')}. {self.fix}"
        return " ".join(text.split())

    def __str__(self) -> str:
        return self.message
