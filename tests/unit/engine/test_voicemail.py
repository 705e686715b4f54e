"""The engine's message box: the WAV and row in the store, and the follow-up task (campaign target or queue)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.call import CallerAudio, CaptureEnd, SpeechInput
from ivr.engine.voicemail import StoredMessageBox
from ivr.flow.messages import VoiceMessage
from ivr.media.tones import tone
from ivr.outbound.loader import load_text
from ivr.outbound.scheduler import Scheduler
from ivr.outbound.state import CampaignStore
from ivr.store import SqliteStore
from ivr.store.messages import MessageStore

AT = dt.datetime(2026, 12, 6, 15, 0, tzinfo=dt.UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MessageStore]:
    sql = SqliteStore(tmp_path / "ivr.db")
    yield MessageStore(sql, tmp_path / "messages")
    sql.close()


@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[Scheduler]:
    scheduler = Scheduler(CampaignStore(tmp_path / "outbound.db"))
    campaign = load_text('id: callbacks\nflow: revisit\ntrunk: "sip:{number}@127.0.0.1:5070"\n',
                         str(tmp_path / "callbacks.yaml")).campaign
    assert campaign is not None
    scheduler.add_campaign(campaign)
    yield scheduler
    scheduler.store.close()


def message(campaign: str | None) -> VoiceMessage:
    heard = SpeechInput("请回电，我要理赔", 0.7, "cmn")
    return VoiceMessage("call-1", "13800138000", "claims", "cmn", AT,
                        CallerAudio(tone((300.0,), 2.0), CaptureEnd.TERMINATOR, heard), campaign)


async def test_a_campaign_follow_up_is_a_callback_target_with_the_message(
    store: MessageStore, scheduler: Scheduler
) -> None:
    left = await StoredMessageBox(store, lambda: scheduler).leave(message("callbacks"))
    assert left.follow_up == f"campaign:callbacks/msg-{left.message_id}"
    target = scheduler.target("callbacks", f"msg-{left.message_id}")
    assert target is not None and target.target.number == "13800138000"
    assert target.target.variables["message_transcript"] == "请回电，我要理赔"
    stored = store.get(left.message_id)
    assert stored is not None and stored.follow_up == left.follow_up and stored.duration_s == 2.0
    assert stored.transcript == "请回电，我要理赔" and stored.confidence == 0.7


async def test_without_the_campaign_the_message_waits_in_its_queue_list(
    store: MessageStore, scheduler: Scheduler
) -> None:
    for source in (lambda: None, lambda: scheduler):
        left = await StoredMessageBox(store, source).leave(message("no-such-campaign"))
        assert left.follow_up == "queue:claims"
    left = await StoredMessageBox(store).leave(message(None))
    assert left.follow_up == "queue:claims"
