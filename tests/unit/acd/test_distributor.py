from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from ivr.acd.agent import AgentState, AgentStatus
from ivr.acd.commands import (
    Abandon,
    AgentCallEnded,
    AgentLogout,
    AgentPause,
    AgentResume,
    EndDispatch,
    Enqueue,
    Heartbeat,
    RequestCallback,
    RingAnswered,
    RingFailed,
    StartDispatch,
)
from ivr.acd.events import (
    CallbackSuggested,
    CallerLeft,
    CallerMoved,
    CommandRejected,
    DispatchChange,
    NodeLost,
    OfferFailed,
    OfferKind,
    OfferWithdrawn,
    RejectReason,
    SitesWidened,
    WithdrawReason,
)
from ivr.call import QueueOutcomeKind, QueueRequest
from ivr.dispatching import DispatchRequest

from .conftest import DAY, Harness, agent, agents_yaml, config, offers


def left(events: list, call_id: str) -> CallerLeft:  # type: ignore[type-arg]
    return next(e for e in events if isinstance(e, CallerLeft) and e.call_id == call_id)


def busy(h: Harness, agent_id: str, call_id: str, queue: str = "general") -> None:
    """Put the agent on a call (the only free agent takes the caller)."""
    (offer,) = offers(h.enqueue(call_id, queue))
    assert offer.agent_id == agent_id
    h.do(RingAnswered(offer.offer_id))


def test_served_by_priority_then_arrival(simple) -> None:  # type: ignore[no-untyped-def]
    h = Harness(simple)
    h.login("a1")
    busy(h, "a1", "c0")
    for call_id, priority in [("c1", 0), ("c2", 0), ("c3", 9), ("c4", 9), ("c5", 0)]:
        h.enqueue(call_id, priority=priority)
    assert [h.core.position(c) for c in ("c3", "c4", "c1", "c2", "c5")] == [1, 2, 3, 4, 5]
    served = []
    call = "c0"
    for _ in range(5):
        (offer,) = offers(h.do(AgentCallEnded("a1", call)))
        h.do(RingAnswered(offer.offer_id))
        served.append(call := offer.call_id)
    assert served == ["c3", "c4", "c1", "c2", "c5"]


def test_ring_timeout_offers_next_agent_and_pauses_after_misses(simple) -> None:  # type: ignore[no-untyped-def]
    h = Harness(simple)
    h.login("a1")
    (o1,) = offers(h.enqueue("c1"))
    assert o1.deadline == 20.0
    events = h.at(20.0)
    assert any(isinstance(e, OfferFailed) and e.misses == 1 for e in events)
    assert h.core.agents["a1"].state is AgentState.IDLE  # not stuck ringing
    assert offers(events) == []  # a1 is skipped for c1 during retry_after_s
    (o2,) = offers(h.at(25.0))
    assert (o2.agent_id, o2.call_id) == ("a1", "c1")
    h.at(45.0)
    h.at(50.0)
    (o3,) = h.core.offers.values()
    events = h.do(RingFailed(o3.offer_id))
    agent = h.core.agents["a1"]
    assert (agent.status, agent.pause_reason) == (AgentStatus.PAUSED, "no_answer")
    assert agent.consecutive_misses == 3
    h.do(AgentResume("a1"))
    assert h.core.agents["a1"].consecutive_misses == 0


def test_stale_answer_after_abandon_is_rejected_and_agent_is_free(simple) -> None:  # type: ignore[no-untyped-def]
    h = Harness(simple)
    h.login("a1")
    (offer,) = offers(h.enqueue("c1"))
    events = h.do(Abandon("c1"))
    assert any(isinstance(e, OfferWithdrawn) and e.reason is WithdrawReason.CALLER_LEFT for e in events)
    assert left(events, "c1").result.kind is QueueOutcomeKind.ABANDONED
    (rejected,) = h.do(RingAnswered(offer.offer_id))
    assert isinstance(rejected, CommandRejected) and rejected.reason is RejectReason.STALE_OFFER
    assert h.core.agents["a1"].state is AgentState.IDLE and not h.core.agents["a1"].legs


def test_ring_all_first_answer_wins() -> None:
    cfg = config(agents_yaml(agent("a1"), agent("a2"), agent("a3")), "queues:\n  - {id: general, strategy: ring-all}\n")
    h = Harness(cfg)
    h.login("a1", "a2", "a3")
    ring = offers(h.enqueue("c1"))
    assert sorted(o.agent_id for o in ring) == ["a1", "a2", "a3"]
    events = h.do(RingAnswered(ring[1].offer_id))
    withdrawn = {e.offer.agent_id for e in events if isinstance(e, OfferWithdrawn)}
    assert withdrawn == {"a1", "a3"}
    late = h.do(RingAnswered(ring[0].offer_id))
    assert isinstance(late[0], CommandRejected)
    states = {a: h.core.agents[a].state for a in ("a1", "a2", "a3")}
    assert states == {"a1": AgentState.IDLE, "a2": AgentState.IN_CALL, "a3": AgentState.IDLE}
    assert h.core.agents["a1"].calls_missed == 0  # losing a ring-all race is not a miss


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("longest-idle", ["a2", "a3", "a1", "a2"]),
        ("round-robin", ["a1", "a2", "a3", "a1"]),
        ("fewest-calls", ["a1", "a2", "a3", "a1"]),
    ],
)
def test_strategy_order(strategy: str, expected: list[str]) -> None:
    cfg = config(
        agents_yaml(agent("a1"), agent("a2"), agent("a3")), f"queues:\n  - {{id: general, strategy: {strategy}}}\n"
    )
    h = Harness(cfg)
    h.login("a1")
    h.at(1.0)
    h.login("a2")
    h.at(2.0)
    h.login("a3")
    if strategy == "longest-idle":  # a1 took a call recently: a2 has waited longest
        busy(h, "a1", "warm")
        h.at(3.0)
        h.do(AgentCallEnded("a1"))
    got = []
    for i in range(4):
        h.at(10.0 + i)
        (offer,) = offers(h.enqueue(f"c{i}"))
        h.do(RingAnswered(offer.offer_id))
        h.at(20.0 + i)
        h.do(AgentCallEnded(offer.agent_id))
        got.append(offer.agent_id)
    assert got == expected


def test_random_strategy_draws_from_injected_seeded_rng() -> None:
    cfg = config(agents_yaml(*(agent(f"a{i}") for i in range(6))), "queues:\n  - {id: general, strategy: random}\n")
    picks = []
    for _ in range(2):
        h = Harness(cfg)
        h.core.state.rng = random.Random(7)
        h.login(*(f"a{i}" for i in range(6)))
        picks.append([offers(h.enqueue(f"c{i}"))[0].agent_id for i in range(6)])
    assert picks[0] == picks[1]
    assert sorted(picks[0]) == [f"a{i}" for i in range(6)]


def test_skills_based_best_level_and_dialect_widening() -> None:
    cfg = config(
        agents_yaml(
            agent("low", skills="{claims: 1}", dialects="[yue, cmn]"),
            agent("high", skills="{claims: 5}", dialects="[cmn]"),
            agent("mid", skills="{claims: 3}", dialects="[yue]"),
        ),
        "queues:\n  - {id: claims, skill: claims, strategy: skills-based, widen_after_s: 30}\n",
    )
    h = Harness(cfg)
    h.login("low", "high", "mid")
    (offer,) = offers(h.enqueue("c1", "claims", dialect="yue", skills={"claims": 2}))
    assert offer.agent_id == "mid"  # best level among those who speak Cantonese and have level >= 2
    h.do(RingAnswered(offer.offer_id))
    assert offers(h.enqueue("c2", "claims", dialect="hak", skills={"claims": 4})) == []  # nobody speaks Hakka
    (widened,) = offers(h.at(30.0))  # after widen_after_s any dialect: the level-5 agent
    assert widened.agent_id == "high"
    h.do(RingAnswered(widened.offer_id))
    assert offers(h.enqueue("c3", "claims", dialect="yue", skills={"claims": 4})) == []
    assert offers(h.at(89.0)) == []  # c3 came at 30: dialect widened at 60, still nobody at level 4
    (relaxed,) = offers(h.at(90.0))  # after twice widen_after_s any level of the skill
    assert relaxed.agent_id == "low"


def test_skills_based_queue_ranks_by_its_own_skill_when_the_caller_names_none() -> None:
    cfg = config(
        agents_yaml(
            agent("a-novice", skills="{elderly: 1}", dialects="[cmn]"),
            agent("b-expert", skills="{elderly: 5}", dialects="[cmn]"),
        ),
        "queues:\n  - {id: elderly, skill: elderly, strategy: skills-based}\n",
    )
    h = Harness(cfg)
    h.login("a-novice")
    h.at(10.0)
    h.login("b-expert")  # the novice has been idle longer and sorts first: only skill can pick the expert
    (offer,) = offers(h.enqueue("c1", "elderly", dialect="cmn"))
    assert offer.agent_id == "b-expert"


def test_wrap_up_holds_the_agent_then_frees_it() -> None:
    cfg = config(agents_yaml(agent("a1", wrap_up_s=15)), "queues:\n  - {id: general}\n")
    h = Harness(cfg)
    h.login("a1")
    busy(h, "a1", "c1")
    h.enqueue("c2")
    h.at(60.0)
    assert offers(h.do(AgentCallEnded("a1"))) == []
    assert h.core.agents["a1"].state is AgentState.WRAP_UP
    assert h.core.next_deadline() == 75.0
    (offer,) = offers(h.at(75.0))
    assert offer.call_id == "c2" and offer.wait_s == 75.0


def test_multi_line_agent_takes_second_call_only_after_answering_first() -> None:
    cfg = config(agents_yaml(agent("a1", max_calls=2)), "queues:\n  - {id: general}\n")
    h = Harness(cfg)
    h.login("a1")
    (o1,) = offers(h.enqueue("c1"))
    assert offers(h.enqueue("c2")) == []
    (o2,) = offers(h.do(RingAnswered(o1.offer_id)))
    assert o2.call_id == "c2"
    h.do(RingAnswered(o2.offer_id))
    assert offers(h.enqueue("c3")) == []
    assert h.core.agents["a1"].connected_calls() == ["c1", "c2"]
    rejected = h.do(AgentCallEnded("a1"))  # which call? the agent has two
    assert isinstance(rejected[0], CommandRejected)
    (o3,) = offers(h.do(AgentCallEnded("a1", "c1")))
    assert o3.call_id == "c3"


OVERFLOW_AGENTS = agents_yaml(agent("n1", site="north"), agent("s1", site="south"))


@pytest.mark.parametrize(
    ("overflow", "check"),
    [
        ("queue:general", lambda ev: any(isinstance(e, CallerMoved) and e.to_queue == "general" for e in ev)),
        ("site:north", lambda ev: any(isinstance(e, SitesWidened) and e.site == "north" for e in ev)),
        ("callback", lambda ev: any(isinstance(e, CallbackSuggested) for e in ev)),
        ("goodbye", lambda ev: any(isinstance(e, CallerLeft) and e.result.target == "goodbye" for e in ev)),
    ],
)
def test_max_wait_overflow_targets(overflow: str, check) -> None:  # type: ignore[no-untyped-def]
    cfg = config(
        OVERFLOW_AGENTS,
        f"queues:\n  - {{id: south, sites: [south], max_wait_s: 60, overflow: '{overflow}',"
        " widen_after_s: 999}\n"
        "  - {id: general, sites: [north]}\n",
    )
    h = Harness(cfg)
    h.login("s1")
    busy(h, "s1", "c0", "south")
    h.login("n1")
    h.enqueue("c1", "south")
    assert h.core.next_deadline() == 60.0
    events = h.at(60.0)
    assert check(events)
    if overflow in ("queue:general", "site:north"):  # the north agent may serve the caller now
        (offer,) = offers(events)
        assert (offer.call_id, offer.agent_id) == ("c1", "n1")


def test_overflow_to_queue_keeps_arrival_order() -> None:
    cfg = config(
        agents_yaml(agent("a1")),
        "queues:\n  - {id: a, max_wait_s: 60, overflow: 'queue:b', join_empty: true}\n  - {id: b, join_empty: true}\n",
    )
    h = Harness(cfg)
    h.enqueue("early", "a")
    h.at(30.0)
    h.enqueue("late", "b")
    h.at(60.0)
    assert (h.core.callers["early"].queue, h.core.position("early"), h.core.position("late")) == ("b", 1, 2)


def test_max_length_overflows_new_callers() -> None:
    cfg = config(
        agents_yaml(agent("a1")), "queues:\n  - {id: general, max_length: 2, overflow: goodbye, join_empty: true}\n"
    )
    h = Harness(cfg)
    h.enqueue("c1")
    h.enqueue("c2")
    result = left(h.enqueue("c3"), "c3").result
    assert (result.kind, result.target) == (QueueOutcomeKind.OVERFLOWED, "goodbye")


def test_nobody_logged_in_is_unavailable(simple) -> None:  # type: ignore[no-untyped-def]
    h = Harness(simple)
    assert left(h.enqueue("c1"), "c1").result.kind is QueueOutcomeKind.UNAVAILABLE
    h.login("a1")
    h.do(AgentPause("a1", "lunch"))  # paused agents are staff: the caller may wait for them
    assert h.core.position(h.enqueue("c2") and "c2") == 1
    h.do(AgentLogout("a1"))


def test_callback_keeps_place_and_rings_agent_first(simple) -> None:  # type: ignore[no-untyped-def]
    h = Harness(simple)
    h.login("a1")
    busy(h, "a1", "c0")
    h.enqueue("c1")
    h.enqueue("c2")
    events = h.do(RequestCallback("c1", "13800138000"))
    result = left(events, "c1").result
    assert (result.kind, result.callback_number) == (QueueOutcomeKind.CALLBACK, "13800138000")
    assert (h.core.position("c1"), h.core.position("c2")) == (1, 2)
    (offer,) = offers(h.do(AgentCallEnded("a1")))
    assert (offer.kind, offer.call_id, offer.callback_number) == (OfferKind.CALLBACK, "c1", "13800138000")
    h.do(RingAnswered(offer.offer_id))
    assert h.core.agents["a1"].state is AgentState.IN_CALL and h.core.position("c1") is None
    (nxt,) = offers(h.do(AgentCallEnded("a1", "c1")))
    assert nxt.call_id == "c2"


def test_queue_estimated_wait_uses_recent_handle_times(simple) -> None:  # type: ignore[no-untyped-def]
    h = Harness(simple)
    h.login("a1")
    busy(h, "a1", "c0")
    h.enqueue("c1")
    h.enqueue("c2")
    assert h.core.estimated_wait_s("c2") == 2 * 180.0  # the configured guess: no call measured yet
    h.at(100.0)
    h.do(AgentCallEnded("a1"))  # handle 100 s (wrap-up 0); c1 is now ringing
    assert h.core.estimated_wait_s("c1") == 0.0
    assert h.core.estimated_wait_s("c2") == 2 * 100.0


def test_dispatch_lends_helper_sites_until_expiry() -> None:
    cfg = config(
        OVERFLOW_AGENTS,
        "queues:\n  - {id: south-q, region: south, sites: [south], join_empty: true, widen_after_s: 99999}\n",
    )
    h = Harness(cfg)
    h.login("n1")
    assert offers(h.enqueue("c1", "south-q")) == []
    until = DAY + timedelta(hours=2)
    events = h.do(StartDispatch(DispatchRequest("south", ("north",), (), until, "typhoon", "ops")))
    (offer,) = offers(events)
    assert offer.agent_id == "n1"
    h.do(RingAnswered(offer.offer_id))
    h.enqueue("c2", "south-q")
    assert h.core.next_deadline() == 7200.0
    h.at(7200.0)
    h.do(AgentCallEnded("n1"))
    assert h.core.agents["n1"].state is AgentState.IDLE and h.core.position("c2") == 1  # lending is over
    log = [(c.kind, c.dispatch.reason) for c in h.core.dispatch_log()]
    assert log == [(DispatchChange.STARTED, "typhoon"), (DispatchChange.EXPIRED, "typhoon")]
    bad = h.do(StartDispatch(DispatchRequest("atlantis", ("north",))))
    assert isinstance(bad[0], CommandRejected) and "unknown region 'atlantis'" in bad[0].message
    rec = h.do(StartDispatch(DispatchRequest("south", ("north",), ("south-q",))))
    h.do(EndDispatch(h.core.dispatch_log()[-1].dispatch.dispatch_id))
    assert rec and h.core.dispatch_log()[-1].kind is DispatchChange.ENDED


def test_night_rule_switches_central_sites_on_and_off() -> None:
    cfg = config(
        OVERFLOW_AGENTS,
        "queues:\n  - {id: south-q, region: south, sites: [south], join_empty: true, widen_after_s: 99999}\n"
        "night: {start: '22:00', end: '08:00', utc_offset_h: 8, helper_sites: [north]}\n",
    )
    evening = datetime(2026, 1, 5, 13, 0, tzinfo=UTC)  # 21:00 in Beijing
    h = Harness(cfg, wall=evening)
    h.login("n1")
    h.enqueue("c1", "south-q")
    assert h.core.next_deadline() == 3600.0
    (offer,) = offers(h.at(3600.0))
    assert offer.agent_id == "n1"
    assert h.core.dispatch_log()[-1].kind is DispatchChange.NIGHT_STARTED
    h.do(Abandon("c1"))
    assert h.core.next_deadline() == 3600.0 + 10 * 3600
    h.at(3600.0 + 10 * 3600)
    assert h.core.dispatch_log()[-1].kind is DispatchChange.NIGHT_ENDED
    h.enqueue("c2", "south-q")
    assert h.core.position("c2") == 1 and not h.core.offers


def test_dead_node_loses_its_callers_and_hands_over_callbacks(simple) -> None:  # type: ignore[no-untyped-def]
    h = Harness(simple, lease_s=15.0)
    h.login("a1")
    busy(h, "a1", "c0")
    h.do(Enqueue("b1", QueueRequest("general")), node="n2")
    h.do(Enqueue("b2", QueueRequest("general")), node="n2")
    h.do(RequestCallback("b2", "13900000000"), node="n2")
    h.enqueue("a2")
    assert h.core.position("a2") == 3
    h.at(10.0)
    assert h.core.next_deadline() == 15.0  # n2 was last heard of at 0
    events = h.at(15.0)
    (lost,) = [e for e in events if isinstance(e, NodeLost)]
    assert (lost.node, lost.call_ids, lost.heir) == ("n2", ("b1",), "n1")
    assert (h.core.position("b2"), h.core.position("a2")) == (1, 2)  # the callback keeps its place
    assert h.core.callers["b2"].node == "n1"
    h.do(Heartbeat(), node="n2")  # a node that comes back is simply a node again
    assert "n2" in h.core.nodes


def test_the_heir_is_the_node_heard_last_not_a_sibling_of_the_dead_node_still_listed(simple) -> None:  # type: ignore[no-untyped-def]
    # m1 and its worker m1-w1 die together; m1-w1 was heard a moment later, so its lease runs a moment longer.
    # Found first by name, the heir of m1 would be m1-w1 (before n1, the harness's live node): dead, and
    # nobody would close m1's calls.
    h = Harness(simple, lease_s=15.0)
    h.do(Heartbeat(), node="m1")
    h.at(1.0)
    h.do(Heartbeat(), node="m1-w1")
    events = h.at(15.0)
    (lost,) = [e for e in events if isinstance(e, NodeLost)]
    assert (lost.node, lost.heir) == ("m1", "n1")
    (lost,) = [e for e in h.at(16.0) if isinstance(e, NodeLost)]
    assert (lost.node, lost.heir) == ("m1-w1", "n1")


def test_replicas_fed_the_same_log_agree() -> None:
    cfg = config(agents_yaml(*(agent(f"a{i}") for i in range(4))), "queues:\n  - {id: general, strategy: random}\n")
    runs = []
    for _ in range(2):
        h = Harness(cfg)
        h.login("a0", "a1", "a2", "a3")
        for i in range(6):
            h.enqueue(f"c{i}")
        h.at(30.0)
        runs.append([repr(e) for e in h.events])
    assert runs[0] == runs[1]
