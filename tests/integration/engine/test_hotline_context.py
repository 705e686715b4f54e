"""A transfer to another hotline with the caller's context: two `ivr serve` engines, the first (the group's
hotline) learns the caller's need by speech and transfers them to the second (a subsidiary) with intent,
customer id, summary, dialect and journey id in User-to-User and X-IVR headers; the second trusts the
first (`context_peers`), so its flow greets the caller by their need without asking, and its record shows
the intent and the customer. 集团—子公司 无感知转接.
"""

from __future__ import annotations

import asyncio
import pathlib
from typing import Any

import pytest

from ivr.testing.caller import AwaitPrompt, Pause, Say, TestCaller
from tests.integration.engine.agents import log_events, wait_for_log
from tests.integration.engine.conftest import needs_tts
from tests.integration.engine.testflows import engine_serving

pytestmark = [pytest.mark.integration, needs_tts]

SENDER = """\
id: group
version: "1"
numbers: ["95519"]
dialects: [en]
default_dialect: en
queues: [general]
start: need
variables: {{customer_id: "C-1001"}}
intents:
  claim:
    phrases:
      en: [I want to file a claim, file a claim, make a claim]
  policy_query:
    phrases:
      en: [check my policy, I have a question about my policy]
prompts:
  ask: {{en: "What do you need?"}}
  moving: {{en: "One moment, our claims company will help you."}}
nodes:
  need:
    type: ask
    prompt: ask
    intents: {{claim: to_claims_company, policy_query: to_claims_company}}
    timeout_s: 10
  to_claims_company:
    type: transfer
    prompt: moving
    target: "sip:95588@127.0.0.1:{port}"
    bridge: true
    customer: customer_id
    context: [customer_id]
"""

RECEIVER = """\
id: subsidiary
version: "1"
numbers: ["95588"]
dialects: [en]
default_dialect: en
queues: [general]
start: known
variables: {inbound_intent: "", inbound_customer_id: ""}
prompts:
  claim_greeting: {en: "Hello customer {inbound_customer_id}. We are here for your claim."}
  ask: {en: "How can we help?"}
nodes:
  known:
    type: branch
    cases:
      - when: "inbound_intent == 'claim'"
        goto: greet_claim
    else: ask_need
  greet_claim:
    type: play
    prompt: claim_greeting
    next: bye
  ask_need:
    type: collect
    prompt: ask
    store: need
    speech: false
    max_length: 1
    timeout_s: 5
    next: bye
  bye:
    type: hangup
"""


def journey_kinds(detail: dict[str, Any]) -> list[str]:
    return [step["kind"] for step in detail["journey"]]


async def test_the_second_hotline_greets_by_need_with_the_context_the_first_sent(tmp_path: pathlib.Path) -> None:
    (tmp_path / "receiver").mkdir()
    (tmp_path / "sender").mkdir()
    with engine_serving(tmp_path / "receiver", {"subsidiary": RECEIVER}, "context_peers: [127.0.0.1]\n") as receiver, \
            engine_serving(tmp_path / "sender", {"group": SENDER.format(port=receiver.sip_port)}) as sender:
        caller = await TestCaller.open(rtp_ports=(43500, 43598))
        try:
            steps = [AwaitPrompt(), Say("I want to file a claim"), *[Pause(1.0)] * 40]
            report = await asyncio.wait_for(
                caller.call(sender.uri, steps, from_number="13700000801", linger_s=0.0, max_duration_s=60.0), 90)
        finally:
            await caller.close()
        (received,) = await wait_for_log(receiver, "inbound_context", 30.0)
        answered = log_events(receiver, "invite_received")
        sent = await asyncio.to_thread(sender.call_detail, report.call_id)
        theirs = await asyncio.to_thread(receiver.call_detail, answered[0]["call_id"])
    assert sent["record"]["intent"] == "claim"
    assert sent["record"]["outcome"] == "transferred"
    (moved,) = [s for s in sent["journey"] if s["kind"] == "transferred"]
    assert moved["data"]["context"] is True and moved["data"]["accepted"] is True
    assert received["journey_id"] == report.call_id and received["intent"] == "claim"

    record = theirs["record"]
    assert record["intent"] == "claim", "the subsidiary's record has the need the group's hotline heard"
    assert record["variables"]["inbound_customer_id"] == "C-1001"
    assert record["variables"]["inbound_journey_id"] == report.call_id
    assert "claim" in record["variables"]["inbound_summary"]
    assert "greet_claim" in record["path"] and "ask_need" not in record["path"], "greeted by need, never asked"
    assert "input" not in journey_kinds(theirs)
