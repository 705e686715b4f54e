"""Where flows meet the prompt layer: a loaded `Flow` reduced to the `FlowPrompts` that `ivr.voice`
renders and resolves, so `ivr.voice` never imports `ivr.flow` (the engine joins the two).

`ivr prompts build` / `ivr prompts check` run `ivr.voice`'s commands with `load_flow_prompts`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from ivr.flow import Flow, FlowLoadError, load_flow
from ivr.flow.model import DEFAULT_FALLBACKS
from ivr.voice import FlowPrompts as VoiceFlowPrompts
from ivr.voice import FlowPromptsError, check

__all__ = ["FlowPrompts", "load_flow_prompts", "run_build", "run_check"]


@dataclass(slots=True, frozen=True)
class FlowPrompts(VoiceFlowPrompts):
    """`ivr.voice.FlowPrompts`, made from a flow loaded by `ivr.flow`."""

    @classmethod
    def of(cls, flow: Flow) -> FlowPrompts:
        """The prompts of a flow loaded by `ivr.flow` (what the engine serves)."""
        spec = flow.spec
        return cls(spec.id, Path(flow.path), tuple(spec.dialects), spec.prompts)


def load_flow_prompts(
    flows_dir: Path, fallbacks: Mapping[str, tuple[str, ...]] = DEFAULT_FALLBACKS
) -> tuple[VoiceFlowPrompts, ...]:
    """Every `*.yaml`/`*.yml` flow directly in `flows_dir` (subfolders such as `tests/` hold no flows),
    checked with `fallbacks` (the dialect packs': a flow may serve a pack that only falls back).

    A flow `ivr.flow` refuses is a `FlowPromptsError` listing its problems as `path:line:col: message`.
    """
    if not flows_dir.is_dir():
        raise FlowPromptsError(f"{flows_dir}: no such flows folder")
    out: list[VoiceFlowPrompts] = []
    for path in sorted([*flows_dir.glob("*.yaml"), *flows_dir.glob("*.yml")]):
        try:
            flow = load_flow(path, fallbacks=fallbacks, classifier_factory=None)
        except FlowLoadError as exc:
            raise FlowPromptsError("\n".join(str(p) for p in exc.problems) or str(exc)) from None
        out.append(FlowPrompts.of(flow))
    return tuple(out)


run_build = partial(check.run_build, load_flows=load_flow_prompts)
"""`ivr prompts build`: render every prompt the flows in a folder need (see `ivr.voice.check`)."""
run_check = partial(check.run_check, load_flows=load_flow_prompts)
"""`ivr prompts check`: how each prompt of the flows in a folder is served (see `ivr.voice.check`)."""
