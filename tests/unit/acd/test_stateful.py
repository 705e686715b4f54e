"""Random sequences of everything that can happen to an ACD, checked after every step.

The bugs users report most in Asterisk queues, mod_callcenter and OpenSIPS call_center are agent
state races (agents stuck ringing or in call, wrap-up ending in the wrong order) and callers served
out of order. These machines drive the pure distributor with random enqueue / login / logout /
pause / resume / answer / no-answer / late answers / hang-up / abandon / callback / dispatch /
time steps, and check:

- no agent is ever offered a call it cannot take (two rings at once, beyond max calls, not available);
- agent state always matches its calls, every offer is matched by exactly one ringing leg, and
  nothing is stuck: no offer outlives its ring deadline, no wrap-up outlives its end;
- callers are served by priority then arrival: whenever an agent is offered a caller, no caller
  ahead of it was waiting, un-rung, and eligible for that agent;
- the "free agents" bookkeeping and the no-missed-match invariant hold after every command.
"""

from __future__ import annotations

import math
import os
from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ivr.acd.agent import Agent, AgentState, AgentStatus, LegState
from ivr.acd.commands import (
    Abandon,
    AgentCallEnded,
    AgentLogin,
    AgentLogout,
    AgentPause,
    AgentResume,
    Command,
    EndDispatch,
    Enqueue,
    RequestCallback,
    RingAnswered,
    RingFailed,
    StartDispatch,
    Tick,
)
from ivr.acd.config import AcdConfig
from ivr.acd.distributor import Distributor
from ivr.acd.events import AcdEvent, OfferMade, RingFailure
from ivr.acd.matching import Matcher
from ivr.acd.queue import Caller
from ivr.acd.snapshot import decode_state
from ivr.acd.state import AcdState
from ivr.call import QueueRequest
from ivr.dispatching import DispatchRequest

from .conftest import DAY, agent, agents_yaml, config


class CheckedMatcher(Matcher):
    """Checks, at the moment of every offer, that the agent may take it and nobody is skipped."""

    def offer(self, caller: Caller, agent: Agent, out: list[AcdEvent]) -> None:
        assert agent.can_take_call(), f"offer to {agent.agent_id} in {agent.status}/{agent.state}"
        assert len(agent.legs) < agent.config.max_calls
        assert not agent.ringing_calls(), f"{agent.agent_id} would ring for two callers"
        for other in self.waiting_in_order():
            if other.key >= caller.key:
                break
            assert other.offers or not self.eligible(agent, other), (
                f"{agent.agent_id} offered {caller.call_id} {caller.key} "
                f"while {other.call_id} {other.key} waited ahead of it"
            )
        super().offer(caller, agent, out)


class CheckedDistributor(Distributor):
    def __init__(self, config: AcdConfig, *, state: AcdState | None = None) -> None:
        super().__init__(config, state=state)
        self.matcher = CheckedMatcher(self.state)


RICH = config(
    agents_yaml(
        agent("n1", "north", "{general: 2, claims: 3}", "[cmn, en]", 1, 0),
        agent("n2", "north", "{general: 1, elderly: 4}", "[cmn]", 2, 5),
        agent("n3", "north", "{claims: 5}", "[cmn, yue]", 1, 12),
        agent("s1", "south", "{general: 3, claims: 1}", "[yue, cmn]", 1, 3),
        agent("s2", "south", "{general: 1, elderly: 2}", "[yue, hak]", 2, 0),
    ),
    """
queues:
  - {id: general, skill: general, strategy: longest-idle, ring_timeout_s: 15, max_no_answer: 2,
     retry_after_s: 4, widen_after_s: 20}
  - {id: all, strategy: ring-all, ring_timeout_s: 10, retry_after_s: 3, widen_after_s: 25}
  - {id: claims, region: south, sites: [south], skill: claims, strategy: skills-based,
     ring_timeout_s: 12, max_wait_s: 40, overflow: 'site:north', widen_after_s: 15}
  - {id: elderly, skill: elderly, strategy: round-robin, ring_timeout_s: 8, max_wait_s: 30,
     overflow: 'queue:general', widen_after_s: 10}
  - {id: rr, strategy: fewest-calls, ring_timeout_s: 9, max_wait_s: 25, overflow: goodbye,
     max_length: 4}
  - {id: cb, strategy: random, ring_timeout_s: 7, max_wait_s: 20, overflow: callback, join_empty: true}
night: {start: '22:00', end: '08:00', utc_offset_h: 8, helper_sites: [north], queues: [claims]}
""",
)

UNIFORM = config(
    agents_yaml(*(agent(f"a{i}", "north", "{general: 1}", "[cmn]", 1, 2 * i) for i in range(3))),
    "queues:\n  - {id: q, strategy: longest-idle, ring_timeout_s: 10, retry_after_s: 5, max_no_answer: 3,"
    " join_empty: true}\n",
)


class AcdMachine(RuleBasedStateMachine):
    cfg: AcdConfig = RICH

    def __init__(self) -> None:
        super().__init__()
        self.core = CheckedDistributor(self.cfg)
        self.now = 0.0
        self.calls = 0
        self.queue_ids = sorted(self.cfg.queues)
        self.agent_ids = sorted(self.cfg.agents)

    def apply(self, command: Command) -> list[AcdEvent]:
        return self.core.apply(command, node="n1", now=self.now, wall=DAY + timedelta(seconds=self.now))

    # --- callers ------------------------------------------------------------------------------

    @rule(
        data=st.data(),
        priority=st.sampled_from([0, 0, 0, 5, 9]),
        dialect=st.sampled_from(["cmn", "cmn", "yue", "hak", "en"]),
        skill=st.sampled_from([None, "claims", "elderly", "general"]),
        level=st.integers(1, 5),
    )
    def enqueue(self, data: st.DataObject, priority: int, dialect: str, skill: str | None, level: int) -> None:  # noqa: E501
        queue = data.draw(st.sampled_from(self.queue_ids))
        self.calls += 1
        skills = {} if skill is None else {skill: level}
        self.apply(Enqueue(f"c{self.calls}", QueueRequest(queue, priority, skills, dialect)))

    @precondition(lambda self: self.core.callers or self.core.connected)
    @rule(data=st.data())
    def abandon(self, data: st.DataObject) -> None:
        call_id = data.draw(st.sampled_from(sorted([*self.core.callers, *self.core.connected])))
        self.apply(Abandon(call_id))

    @precondition(lambda self: self.core.callers)
    @rule(data=st.data())
    def request_callback(self, data: st.DataObject) -> None:
        call_id = data.draw(st.sampled_from(sorted(self.core.callers)))
        self.apply(RequestCallback(call_id, "13800000000"))

    # --- agents -------------------------------------------------------------------------------

    @rule(data=st.data(), action=st.sampled_from(["login", "login", "logout", "pause", "resume"]))
    def agent_status(self, data: st.DataObject, action: str) -> None:
        agent_id = data.draw(st.sampled_from(self.agent_ids))
        command: Command = {
            "login": AgentLogin(agent_id, f"sip:{agent_id}@10.0.0.9"),
            "logout": AgentLogout(agent_id),
            "pause": AgentPause(agent_id, "break"),
            "resume": AgentResume(agent_id),
        }[action]
        self.apply(command)  # illegal moves come back as CommandRejected, never as a crash

    @precondition(lambda self: self.core.offers)
    @rule(data=st.data())
    def answer(self, data: st.DataObject) -> None:
        self.apply(RingAnswered(data.draw(st.sampled_from(sorted(self.core.offers)))))

    @precondition(lambda self: self.core.offers)
    @rule(data=st.data(), reason=st.sampled_from(list(RingFailure)))
    def ring_failed(self, data: st.DataObject, reason: RingFailure) -> None:
        self.apply(RingFailed(data.draw(st.sampled_from(sorted(self.core.offers))), reason))

    @rule(n=st.integers(1, 60), answered=st.booleans())
    def late_reply(self, n: int, answered: bool) -> None:
        """An answer or failure for an offer that may be long gone (a lost race)."""
        self.apply(RingAnswered(f"o{n}") if answered else RingFailed(f"o{n}"))

    @precondition(lambda self: self.core.connected)
    @rule(data=st.data())
    def hangup(self, data: st.DataObject) -> None:
        call_id = data.draw(st.sampled_from(sorted(self.core.connected)))
        self.apply(AgentCallEnded(self.core.connected[call_id].agent_id, call_id))

    @rule(start=st.booleans())
    def dispatch(self, start: bool) -> None:
        if start:
            self.apply(StartDispatch(DispatchRequest("south", ("north",), (), DAY + timedelta(seconds=self.now + 50))))
        elif self.core.dispatch.active:
            self.apply(EndDispatch(next(iter(self.core.dispatch.active))))

    @rule()
    def snapshot_and_restore(self) -> None:
        """A node starting from a snapshot holds exactly the state of one that applied the whole
        log: carry on with the restored copy (every later step and invariant runs on it)."""
        text = self.core.snapshot()
        restored = CheckedDistributor(self.cfg, state=decode_state(text, self.cfg, lease_s=None))
        assert restored.snapshot() == text
        self.core = restored

    # --- time ---------------------------------------------------------------------------------

    @rule(seconds=st.floats(0.5, 40.0))
    def advance(self, seconds: float) -> None:
        """Let time pass, stopping at every deadline on the way, as the facade's timer does."""
        target = self.now + seconds
        while (deadline := self.core.next_deadline()) is not None and deadline <= target:
            self.now = max(self.now, deadline)
            self.apply(Tick())
        self.now = target
        self.apply(Tick())

    # --- invariants ---------------------------------------------------------------------------

    @invariant()
    def agents_match_their_calls(self) -> None:
        core = self.core
        ringing_offer = {(o.agent_id, o.call_id) for o in core.offers.values()}
        assert len(ringing_offer) == len(core.offers), "an agent holds two offers for one caller"
        for a in core.agents.values():
            legs = a.legs
            assert len(legs) <= a.config.max_calls
            ringing = a.ringing_calls()
            assert len(ringing) <= 1, f"{a.agent_id} rings for {ringing}"
            if a.connected_calls():
                assert a.state is AgentState.IN_CALL
            elif ringing:
                assert a.state is AgentState.RINGING
            else:
                assert a.state in (AgentState.IDLE, AgentState.WRAP_UP)
            for call_id, leg in legs.items():
                if leg is LegState.RINGING:
                    assert (a.agent_id, call_id) in ringing_offer
                else:
                    assert core.connected[call_id].agent_id == a.agent_id
            assert (a.agent_id in core.state.free) == a.can_take_call()
        for offer in core.offers.values():
            assert core.agents[offer.agent_id].legs.get(offer.call_id) is LegState.RINGING
            assert offer.offer_id in core.callers[offer.call_id].offers

    @invariant()
    def nothing_is_stuck(self) -> None:
        core = self.core
        for offer in core.offers.values():
            assert offer.deadline > core.now, f"offer {offer.offer_id} rings past its deadline"
        for a in core.agents.values():
            if a.state is AgentState.WRAP_UP:
                assert a.wrap_up_until is not None and a.wrap_up_until > core.now
        deadline = core.next_deadline()
        assert deadline is None or deadline > core.now or math.isinf(core.now)

    @invariant()
    def no_waiting_caller_has_a_free_eligible_agent(self) -> None:
        core = self.core
        for caller in core.waiting_in_order():
            if caller.offers:
                continue
            for a in core.agents.values():
                assert not core.eligible(a, caller), f"{caller.call_id} waits; {a.agent_id} is free for it"

    @invariant()
    def positions_follow_priority_then_arrival(self) -> None:
        for queue in self.core.queues.values():
            keys = [c.key for c in queue.in_order()]
            assert keys == sorted(keys)
            assert [queue.position(c) for c in queue.in_order()] == list(range(1, len(keys) + 1))


class UniformAcdMachine(AcdMachine):
    """Every agent can take every caller: service order must be exactly priority then arrival."""

    cfg = UNIFORM

    @rule(priority=st.sampled_from([0, 0, 0, 5, 9]))
    def enqueue(self, priority: int) -> None:  # type: ignore[override]
        self.calls += 1
        self.apply(Enqueue(f"c{self.calls}", QueueRequest("q", priority)))

    @precondition(lambda self: self.core.offers)
    @rule()
    def answer_oldest(self) -> None:
        offer = next(iter(self.core.offers.values()))
        events = self.apply(RingAnswered(offer.offer_id))
        assert not any(isinstance(e, OfferMade) for e in events)  # one line each: nothing more to ring

    @invariant()
    def logged_in_agents_are_never_idle_with_callers_unrung(self) -> None:
        core = self.core
        fresh = [c for c in core.waiting_in_order() if not c.offers and not c.missed_until]
        if fresh:
            for a in core.agents.values():
                assert not (a.status is AgentStatus.AVAILABLE and a.state is AgentState.IDLE), (
                    f"{a.agent_id} idle while {fresh[0].call_id} waits"
                )


_SETTINGS = settings(
    max_examples=int(os.environ.get("ACD_STATEFUL_EXAMPLES", "120")),  # raise it for a long hunt
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestAcdStateful = AcdMachine.TestCase
TestAcdStateful.settings = _SETTINGS
TestUniformAcdStateful = UniformAcdMachine.TestCase
TestUniformAcdStateful.settings = _SETTINGS
