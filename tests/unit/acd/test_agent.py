from __future__ import annotations

import pytest

from ivr.acd.agent import STATE_TRANSITIONS, STATUS_TRANSITIONS, Agent, AgentEvent, AgentState, AgentStatus
from ivr.acd.config import AgentConfig, SipCredentials
from ivr.acd.errors import IllegalTransition


def make(max_calls: int = 1, wrap_up_s: float = 10) -> Agent:
    cfg = AgentConfig("a1", SipCredentials("a1", "pw"), "north", {"general": 1}, ("cmn",), "", max_calls, wrap_up_s)
    return Agent(cfg)


def test_full_call_cycle_with_timestamps() -> None:
    a = make()
    a.login("sip:a1@x", now=1.0)
    assert (a.status, a.state, a.status_since) == (AgentStatus.AVAILABLE, AgentState.IDLE, 1.0)
    a.offer("c1", now=2.0)
    assert a.state is AgentState.RINGING and not a.can_take_call()
    a.answer("c1", now=5.0)
    assert (a.state, a.state_since, a.calls_answered) == (AgentState.IN_CALL, 5.0, 1)
    event, talk = a.hangup("c1", now=65.0)
    assert (event, talk, a.state, a.wrap_up_until) == (AgentEvent.HANGUP_LAST, 60.0, AgentState.WRAP_UP, 75.0)
    assert not a.can_take_call()
    a.end_wrap_up(now=75.0)
    assert (a.state, a.idle_since) == (AgentState.IDLE, 75.0)
    assert a.can_take_call()


@pytest.mark.parametrize(
    ("setup", "move", "state", "event"),
    [
        (lambda a: None, lambda a: a.answer("c1", 1.0), "idle", "answer of c1"),
        (lambda a: None, lambda a: a.end_wrap_up(1.0), "idle", "wrap_up_end"),
        (lambda a: None, lambda a: a.pause("lunch", 1.0), "logged_out", "pause"),
        (lambda a: None, lambda a: a.resume(1.0), "logged_out", "resume"),
        (lambda a: a.offer("c1", 0.0), lambda a: a.offer("c2", 1.0), "ringing", "offer of c2"),
        (lambda a: a.offer("c1", 0.0), lambda a: a.hangup("c1", 1.0), "ringing", "hangup of c1"),
        (lambda a: a.offer("c1", 0.0), lambda a: a.end_wrap_up(1.0), "ringing", "wrap_up_end"),
    ],
    ids=[
        "answer-idle",
        "wrapup-idle",
        "pause-logged-out",
        "resume-logged-out",
        "second-ring",
        "hangup-ringing",
        "wrapup-ringing",
    ],
)
def test_illegal_moves_raise_naming_state_and_event(setup, move, state, event) -> None:  # type: ignore[no-untyped-def]
    a = make()
    setup(a)
    before = (a.status, a.state, dict(a.legs))
    with pytest.raises(IllegalTransition) as err:
        move(a)
    assert err.value.state == state and err.value.event == event
    assert str(err.value) == f"agent 'a1': event {event!r} is illegal in state {state!r}"
    assert (a.status, a.state, dict(a.legs)) == before  # nothing changed


def test_every_table_entry_is_reachable_by_name() -> None:
    assert all(isinstance(k[0], AgentState) for k in STATE_TRANSITIONS)
    assert all(isinstance(k[0], AgentStatus) for k in STATUS_TRANSITIONS)
    assert (AgentState.WRAP_UP, AgentEvent.OFFER) not in STATE_TRANSITIONS  # no offer during wrap-up


def test_register_refresh_keeps_a_pause() -> None:
    a = make()
    a.login("sip:a1@x", 0.0)
    a.pause("lunch", 1.0)
    a.login("sip:a1@y", 2.0)
    assert (a.status, a.pause_reason, a.contact) == (AgentStatus.PAUSED, "lunch", "sip:a1@y")


def test_multi_line_agent_rings_only_one_new_call_at_a_time() -> None:
    a = make(max_calls=2)
    a.login("c", 0.0)
    a.offer("c1", 0.0)
    assert not a.can_take_call()  # ringing: never a second ring at once
    a.answer("c1", 1.0)
    assert a.can_take_call()
    a.offer("c2", 2.0)
    assert a.state is AgentState.IN_CALL and not a.can_take_call()
    event, _ = a.hangup("c1", 3.0)  # the call ends while the second still rings
    assert (event, a.state) == (AgentEvent.HANGUP_RINGING, AgentState.RINGING)
    a.answer("c2", 4.0)
    with pytest.raises(IllegalTransition, match="offer of c2"):
        a.offer("c2", 5.0)  # the same call twice
    event, _ = a.hangup("c2", 6.0)
    assert (event, a.state) == (AgentEvent.HANGUP_LAST, AgentState.WRAP_UP)
