"""What the flows ask of the prompt layer: their prompt texts by id and dialect, and their dialects.

The one place where `ivr.voice` meets `ivr.flow`: flows are loaded (and validated) by `ivr.flow`'s
loader and reduced to `FlowPrompts`, so the rest of this package never sees a flow model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ivr.flow import Flow, FlowLoadError, load_flow
from ivr.voice.errors import FlowPromptsError


@dataclass(slots=True, frozen=True)
class FlowPrompts:
    """One flow's prompts as the voice layer needs them."""

    name: str
    path: Path | None
    dialects: tuple[str, ...]
    """Dialects the flow serves; empty means every loaded dialect pack."""
    texts: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """Prompt id → dialect code → text (with `{placeholders}`)."""

    @classmethod
    def of(cls, flow: Flow) -> FlowPrompts:
        """The prompts of a flow loaded by `ivr.flow` (what the engine serves)."""
        spec = flow.spec
        return cls(spec.id, Path(flow.path), tuple(spec.dialects), spec.prompts)


def load_flow_prompts(flows_dir: Path) -> tuple[FlowPrompts, ...]:
    """Every `*.yaml`/`*.yml` flow directly in `flows_dir` (subfolders such as `tests/` hold no flows).

    A flow `ivr.flow` refuses is a `FlowPromptsError` listing its problems as `path:line:col: message`.
    """
    if not flows_dir.is_dir():
        raise FlowPromptsError(f"{flows_dir}: no such flows folder")
    out: list[FlowPrompts] = []
    for path in sorted([*flows_dir.glob("*.yaml"), *flows_dir.glob("*.yml")]):
        try:
            flow = load_flow(path, classifier_factory=None)
        except FlowLoadError as exc:
            raise FlowPromptsError("\n".join(str(p) for p in exc.problems) or str(exc)) from None
        out.append(FlowPrompts.of(flow))
    return tuple(out)
