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


def from_interrupt(err: BaseException) -> bool:
    """Whether ``err`` is Ctrl+C in disguise: a KeyboardInterrupt, or an error raised because one cut a module's
    start-up short (a pybind11 module, as in TensorFlow and PyTorch, turns it into ImportError "initialization
    failed"). Code that tolerates a missing optional module must not take an interrupted import for one."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, KeyboardInterrupt):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
    return False
