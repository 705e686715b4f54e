"""Errors of the flow language: loading (with every problem found) and running a flow."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from ivr.errors import IvrError


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(slots=True, frozen=True)
class Problem:
    """One thing wrong with a flow file, at a 1-based line and column."""

    path: str
    line: int
    col: int
    message: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        prefix = "warning: " if self.severity is Severity.WARNING else ""
        return f"{self.path}:{self.line}:{self.col}: {prefix}{self.message}"


class FlowError(IvrError):
    """Base of every flow-language error."""


class FlowLoadError(FlowError):
    """A flow file was refused; `problems` holds every error found, each with its line and column."""

    def __init__(self, path: str, problems: Sequence[Problem]) -> None:
        self.path = path
        self.problems = tuple(problems)
        errors = [p for p in self.problems if p.severity is Severity.ERROR]
        first = str(errors[0]) if errors else path
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"flow {path} refused: {first}{more}")


class ExpressionError(FlowError):
    """An expression does not parse; `offset` is the 0-based character where the problem is."""

    def __init__(self, message: str, offset: int = 0) -> None:
        self.offset = offset
        super().__init__(message)


class EvaluationError(FlowError):
    """An expression parsed but could not be evaluated with the call's variables."""


class FlowRuntimeError(FlowError):
    """A node could not run (bad data at run time, runaway loop, subflow stack overflow)."""
