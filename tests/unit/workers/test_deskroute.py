"""Calls from agents' phones go to the worker holding the caller they are about (consultations,
a supervisor's feature code on an agent), whichever worker the kernel gave the phone to."""

from __future__ import annotations

import pytest

from ivr.acd.commands import Enqueue, RingAnswered
from ivr.call import QueueRequest
from ivr.workers.deskroute import DeskRoute, holder_index
from tests.unit.acd.conftest import Harness, agent, agents_yaml, config, offers

CFG = config(agents_yaml(agent("a1"), agent("a2"), agent("sup")),
             "queues:\n  - {id: general, strategy: longest-idle, ring_timeout_s: 20}\n")


def invite(from_user: str, dialed: str, *, method: str = "INVITE", to_tag: str = "") -> bytes:
    tag = f";tag={to_tag}" if to_tag else ""
    return (
        f"{method} sip:{dialed}@10.0.0.5:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 10.0.0.9:5070;branch=z9hG4bKphone1;rport\r\n"
        f"From: <sip:{from_user}@10.0.0.9:5070>;tag=phone1\r\n"
        f"To: <sip:{dialed}@10.0.0.5:5060>{tag}\r\n"
        f"Call-ID: consult@10.0.0.9\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    ).encode()


@pytest.fixture
def route() -> DeskRoute:
    """a1 talks to a caller held by worker 1 of node-1; a2 and the supervisor are idle."""
    h = Harness(CFG)
    h.login("a1", "a2", "sup")
    (offer,) = offers(h.do(Enqueue("caller-1", QueueRequest("general")), node="node-1-w1"))
    assert offer.agent_id == "a1", "longest-idle offers the first of equals"
    h.do(RingAnswered(offer.offer_id), node="node-1-w1")
    return DeskRoute(CFG, lambda: h.core, "node-1")


@pytest.mark.parametrize(("message", "worker"), [
    (invite("a1", "a2"), 1),
    (invite("a1", "a2", method="CANCEL"), 1),
    (invite("sup", "*33a1"), 1),
    (invite("sup", "*31a1"), 1),
    (invite("sup", "*33a2"), None),
    (invite("a1", "*22"), None),
    (invite("a2", "a1"), None),
    (invite("stranger", "a2"), None),
    (invite("a1", "a2", to_tag="abc-w0"), None),
    (invite("a1", "a2", method="OPTIONS"), None),
], ids=["consultation", "its-cancel", "barge-on-a1", "listen-to-a1", "barge-on-idle-a2", "pause-code",
        "idle-agent-calls", "stranger", "in-dialog", "options"])
def test_an_agents_phone_call_goes_to_the_worker_holding_the_caller(route: DeskRoute, message: bytes,
                                                                  worker: int | None) -> None:
    assert route(message, ("10.0.0.9", 5070)) == worker


@pytest.mark.parametrize(("holder", "index"), [
    ("node-1", 0), ("node-1-w1", 1), ("node-1-w3.2", 3), ("node-2", None), ("node-2-w1", None),
    ("node-1-wx", None), ("node-10-w1", None),
], ids=str)
def test_a_holder_names_a_worker_of_this_node_or_none(holder: str, index: int | None) -> None:
    assert holder_index("node-1", holder) == index
