"""The voice-message seam: where a flow's `message` node leaves what the caller said.

The flow knows nothing of files or databases: it hands a `VoiceMessage` (the recording and who left it)
to a `MessageBox` and gets back the stored message's id and the follow-up task it created. The engine's
box (`ivr.store.messages.StoredMessageBox`) writes the WAV, the row and the task; `MemoryMessageBox`
keeps them in a list for the simulator and tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from ivr.call import CallerAudio


@dataclass(slots=True, frozen=True)
class VoiceMessage:
    """A message a caller left, as the flow hands it over."""

    call_id: str
    caller: str
    queue: str
    """Whose follow-up list it joins (the queue the caller could not reach)."""
    dialect: str
    at: datetime
    recording: CallerAudio
    campaign: str | None = None
    """Follow up by calling back as a target of this outbound campaign; None: the queue's message list."""
    context: Mapping[str, str] = field(default_factory=dict)
    """What self-service learned (intent, transcript so far): shown with the message."""
    kind: str = "message"
    """`message`, or `survey`: a detractor's spoken comment after the survey score."""
    survey_score: int | None = None


@dataclass(slots=True, frozen=True)
class LeftMessage:
    message_id: int
    follow_up: str
    """The task it created, e.g. `campaign:message-callbacks/msg-12` or `queue:general`."""


class MessageBox(Protocol):
    async def leave(self, message: VoiceMessage) -> LeftMessage:
        """Store the message and create its follow-up task; raises `ivr.errors.IvrError` when it cannot."""
        ...


class MemoryMessageBox:
    """Keeps every message in `messages`: for the simulator and tests."""

    def __init__(self) -> None:
        self.messages: list[VoiceMessage] = []

    async def leave(self, message: VoiceMessage) -> LeftMessage:
        self.messages.append(message)
        follow_up = f"campaign:{message.campaign}" if message.campaign else f"queue:{message.queue}"
        return LeftMessage(len(self.messages), follow_up)


__all__ = ["LeftMessage", "MemoryMessageBox", "MessageBox", "VoiceMessage"]
