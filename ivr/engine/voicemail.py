"""The engine's `MessageBox`: a voice message becomes a WAV + a row in the store, and a follow-up task.

The task is a callback target in the node's outbound `campaign` when the engine runs that campaign (the
dialler then calls the caller back with the message id and transcript as flow variables), else the
message stays open in its queue's message list, which supervisors work through in the dashboard.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable

import structlog

from ivr.flow.messages import LeftMessage, VoiceMessage
from ivr.outbound.scheduler import Scheduler
from ivr.outbound.targets import Target
from ivr.store.messages import MessageStore, NewMessage

log = structlog.get_logger(__name__)

TRANSCRIPT_VARIABLE_CHARS = 200
"""How much of the transcript a callback target carries as a flow variable."""


class StoredMessageBox:
    def __init__(self, store: MessageStore, scheduler: Callable[[], Scheduler | None] = lambda: None) -> None:
        """`scheduler`: the engine's campaign scheduler once outbound has started (None without one)."""
        self._store = store
        self._scheduler = scheduler

    async def leave(self, message: VoiceMessage) -> LeftMessage:
        heard = message.recording.transcript
        stored = await asyncio.to_thread(self._store.add, NewMessage(
            call_id=message.call_id, caller=message.caller, queue=message.queue, dialect=message.dialect,
            created_at=message.at, audio=message.recording.audio, ended_by=message.recording.ended_by.value,
            transcript=heard.text if heard else "", confidence=heard.confidence if heard else None,
            kind=message.kind, survey_score=message.survey_score,
        ))
        follow_up = f"queue:{message.queue}"
        if message.campaign:
            target_id = f"msg-{stored.message_id}"
            target = Target(target_id, message.caller, variables={
                "message_id": str(stored.message_id), "queue": message.queue,
                "message_transcript": stored.transcript[:TRANSCRIPT_VARIABLE_CHARS],
            })
            if await asyncio.to_thread(self._add_target, message, message.campaign, target):  # off the loop (#22)
                follow_up = f"campaign:{message.campaign}/{target_id}"
        await asyncio.to_thread(self._store.set_follow_up, stored.message_id, follow_up)
        return LeftMessage(stored.message_id, follow_up)

    def _add_target(self, message: VoiceMessage, campaign: str, target: Target) -> bool:
        scheduler = self._scheduler()
        if scheduler is None or campaign not in {c.id for c in scheduler.campaigns()}:
            log.warning("message_campaign_missing", campaign=campaign, queue=message.queue)
            return False
        at = message.at if message.at.tzinfo else message.at.replace(tzinfo=dt.UTC)
        return scheduler.add_targets(campaign, [target], at) == 1


__all__ = ["StoredMessageBox"]
