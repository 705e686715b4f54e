"""What a call cut off by a killed engine had reached, rebuilt from its journey.

A call's record is written twice: when it starts (caller, number, flow) and when it finishes (all
it learned). Its journey events are written as they happen. After a kill -9 the record of a call
in progress holds only its start, while its journey says which nodes it passed, what the caller
said, the intent decided, the dialect chosen and the queue joined; `fill_from_journey` copies
those into the record, so reports and the agent screen-pop of a callback see them too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ivr.journey import CallRecord, JourneyEvent

__all__ = ["fill_from_journey"]


def fill_from_journey(record: CallRecord, journey: Sequence[JourneyEvent]) -> CallRecord:
    """`record` with its empty fields filled from `journey` (stored kinds: see ivr.flow.events)."""
    path: list[str] = []
    said: list[str] = []
    intent, confidence, dialect, queue = "", None, "", ""
    for event in journey:
        data = event.data
        if event.kind == "node_entered":
            path.append(event.node)
        elif event.kind == "input" and data.get("speech"):
            said.append(str(data["speech"]))
        elif event.kind == "intent" and data.get("intent"):
            intent = str(data["intent"])
            raw = data.get("confidence")
            confidence = float(raw) if isinstance(raw, int | float) else None
        elif event.kind == "variable_set" and data.get("name") == "dialect":
            dialect = str(data.get("value", ""))
        elif event.kind == "enqueued" and data.get("queue"):
            queue = str(data["queue"])
    return dataclasses.replace(
        record,
        path=list(record.path) or path,
        transcript=record.transcript or " | ".join(said),
        intent=record.intent or intent,
        confidence=record.confidence if record.intent else confidence,
        dialect=record.dialect or dialect,
        queue=record.queue or queue,
    )
