"""Which calls with agents are recorded: the flow's queue node decides, else the queue, else the default."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ivr.call import RecordingMode

CONSENT_PROMPT = "recording_consent"
"""Played to the caller before the agent is connected when the policy is `consent`."""


@dataclass(slots=True, frozen=True)
class RecordingPolicy:
    default: RecordingMode = RecordingMode.NEVER
    queues: Mapping[str, RecordingMode] = field(default_factory=dict)
    """Per queue (queues.yaml `recording`)."""

    def mode_for(self, queue: str, node: RecordingMode | None = None) -> RecordingMode:
        if node is not None:
            return node
        return self.queues.get(queue, self.default)


__all__ = ["CONSENT_PROMPT", "RecordingPolicy"]
