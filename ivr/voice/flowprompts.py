"""What the flows ask of the prompt layer: their prompt texts by id and dialect, and their dialects.

This package never sees a flow model and never imports `ivr.flow`: the engine reduces each loaded
flow to a `FlowPrompts` (`ivr.engine.flowprompts`), and tests build them directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(slots=True, frozen=True)
class FlowPrompts:
    """One flow's prompts as the voice layer needs them."""

    name: str
    path: Path | None
    dialects: tuple[str, ...]
    """Dialects the flow serves; empty means every loaded dialect pack."""
    texts: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Prompt id → dialect code → text (with `{placeholders}`)."""
