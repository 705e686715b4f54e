"""One agent's state machine: status (logged out / available / paused) and state (idle / ringing /
in call / wrap-up), FreeSWITCH mod_callcenter style.

All legal moves are in two tables keyed (status or state, event); a move not in a table raises
`IllegalTransition` naming the agent, the state and the event. Every mutation of an `Agent` goes
through `_fire`, and only the distributor calls the public methods, so an agent has one writer.
Time is always passed in.

An agent may carry several legs (calls) at once up to `max_calls`; the state summarises them:
IN_CALL while any leg is connected, RINGING while only ringing legs exist, then WRAP_UP after the
last call and IDLE. A new call is offered only to an IDLE agent, or an IN_CALL one with room and no
leg ringing, so no agent ever rings for two callers at once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ivr.acd.errors import IllegalTransition

if TYPE_CHECKING:
    from ivr.acd.config import AgentConfig


class AgentStatus(enum.Enum):
    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    PAUSED = "paused"


class AgentState(enum.Enum):
    IDLE = "idle"
    RINGING = "ringing"
    IN_CALL = "in_call"
    WRAP_UP = "wrap_up"


class AgentEvent(enum.Enum):
    LOGIN = "login"
    LOGOUT = "logout"
    PAUSE = "pause"
    RESUME = "resume"
    OFFER = "offer"
    ANSWER = "answer"
    RING_END = "ring_end"
    """A ringing leg ended unanswered; other legs remain."""
    RING_END_LAST = "ring_end_last"
    """A ringing leg ended unanswered and it was the agent's only leg."""
    HANGUP = "hangup"
    """A connected call ended; another connected call remains."""
    HANGUP_RINGING = "hangup_ringing"
    """The last connected call ended while another leg rings (multi-line agents): no wrap-up."""
    HANGUP_LAST = "hangup_last"
    WRAP_UP_END = "wrap_up_end"


S = AgentStatus
T = AgentState
E = AgentEvent

STATUS_TRANSITIONS: dict[tuple[AgentStatus, AgentEvent], AgentStatus] = {
    (S.LOGGED_OUT, E.LOGIN): S.AVAILABLE,
    (S.AVAILABLE, E.LOGIN): S.AVAILABLE,  # REGISTER refresh: contact may change
    (S.PAUSED, E.LOGIN): S.PAUSED,  # a refresh never ends a pause
    (S.AVAILABLE, E.PAUSE): S.PAUSED,
    (S.PAUSED, E.PAUSE): S.PAUSED,  # new reason
    (S.PAUSED, E.RESUME): S.AVAILABLE,
    (S.AVAILABLE, E.RESUME): S.AVAILABLE,
    (S.AVAILABLE, E.LOGOUT): S.LOGGED_OUT,
    (S.PAUSED, E.LOGOUT): S.LOGGED_OUT,
    (S.LOGGED_OUT, E.LOGOUT): S.LOGGED_OUT,  # REGISTER expires=0 twice
}

STATE_TRANSITIONS: dict[tuple[AgentState, AgentEvent], AgentState] = {
    (T.IDLE, E.OFFER): T.RINGING,
    (T.RINGING, E.ANSWER): T.IN_CALL,
    (T.RINGING, E.RING_END): T.RINGING,
    (T.RINGING, E.RING_END_LAST): T.IDLE,
    (T.IN_CALL, E.OFFER): T.IN_CALL,
    (T.IN_CALL, E.ANSWER): T.IN_CALL,
    (T.IN_CALL, E.RING_END): T.IN_CALL,
    (T.IN_CALL, E.HANGUP): T.IN_CALL,
    (T.IN_CALL, E.HANGUP_RINGING): T.RINGING,
    (T.IN_CALL, E.HANGUP_LAST): T.WRAP_UP,
    (T.WRAP_UP, E.WRAP_UP_END): T.IDLE,
}

_STATUS_EVENTS = frozenset({E.LOGIN, E.LOGOUT, E.PAUSE, E.RESUME})


class LegState(enum.Enum):
    RINGING = "ringing"
    CONNECTED = "connected"


@dataclass(slots=True)
class Agent:
    config: AgentConfig
    status: AgentStatus = AgentStatus.LOGGED_OUT
    state: AgentState = AgentState.IDLE
    pause_reason: str | None = None
    contact: str = ""
    status_since: float = 0.0
    state_since: float = 0.0
    idle_since: float = 0.0
    """When the agent last finished a call (or logged in): longest-idle orders by it."""
    wrap_up_until: float | None = None
    legs: dict[str, LegState] = field(default_factory=dict)
    connected_at: dict[str, float] = field(default_factory=dict)
    consecutive_misses: int = 0
    calls_answered: int = 0
    calls_missed: int = 0
    talk_s: float = 0.0

    @property
    def agent_id(self) -> str:
        return self.config.agent_id

    def can_take_call(self) -> bool:
        """Available, and idle or on a call with room and nothing ringing."""
        if self.status is not AgentStatus.AVAILABLE:
            return False
        if self.state is AgentState.IDLE:
            return True
        return (
            self.state is AgentState.IN_CALL
            and len(self.legs) < self.config.max_calls
            and LegState.RINGING not in self.legs.values()
        )

    def ringing_calls(self) -> list[str]:
        return [c for c, leg in self.legs.items() if leg is LegState.RINGING]

    def connected_calls(self) -> list[str]:
        return [c for c, leg in self.legs.items() if leg is LegState.CONNECTED]

    def allows(self, event: AgentEvent) -> bool:
        if event in _STATUS_EVENTS:
            return (self.status, event) in STATUS_TRANSITIONS
        return (self.state, event) in STATE_TRANSITIONS

    def _fire(self, event: AgentEvent, now: float) -> AgentEvent:
        """The only place an agent's status or state changes."""
        if event in _STATUS_EVENTS:
            new_status = STATUS_TRANSITIONS.get((self.status, event))
            if new_status is None:
                raise IllegalTransition(self.agent_id, self.status.value, event.value)
            if new_status is not self.status:
                self.status_since = now
            self.status = new_status
            return event
        new_state = STATE_TRANSITIONS.get((self.state, event))
        if new_state is None:
            raise IllegalTransition(self.agent_id, self.state.value, event.value)
        if new_state is not self.state:
            self.state_since = now
        self.state = new_state
        return event

    def _check(self, event: AgentEvent) -> None:
        if not self.allows(event):
            current = self.status if event in _STATUS_EVENTS else self.state
            raise IllegalTransition(self.agent_id, current.value, event.value)

    # status ----------------------------------------------------------------------------------

    def login(self, contact: str, now: float) -> AgentEvent:
        self._check(E.LOGIN)
        if self.status is AgentStatus.LOGGED_OUT:
            self.idle_since = now
            self.consecutive_misses = 0
        self.contact = contact
        return self._fire(E.LOGIN, now)

    def logout(self, now: float) -> AgentEvent:
        self.pause_reason = None
        return self._fire(E.LOGOUT, now)

    def pause(self, reason: str, now: float) -> AgentEvent:
        self._check(E.PAUSE)
        self.pause_reason = reason
        return self._fire(E.PAUSE, now)

    def resume(self, now: float) -> AgentEvent:
        self._check(E.RESUME)
        self.pause_reason = None
        self.consecutive_misses = 0
        return self._fire(E.RESUME, now)

    # state -----------------------------------------------------------------------------------

    def offer(self, call_id: str, now: float) -> AgentEvent:
        if call_id in self.legs or len(self.legs) >= self.config.max_calls:
            raise IllegalTransition(self.agent_id, self.state.value, f"offer of {call_id}")
        self._check(E.OFFER)
        self.legs[call_id] = LegState.RINGING
        return self._fire(E.OFFER, now)

    def answer(self, call_id: str, now: float) -> AgentEvent:
        if self.legs.get(call_id) is not LegState.RINGING:
            raise IllegalTransition(self.agent_id, self.state.value, f"answer of {call_id}")
        self._check(E.ANSWER)
        self.legs[call_id] = LegState.CONNECTED
        self.connected_at[call_id] = now
        self.consecutive_misses = 0
        self.calls_answered += 1
        return self._fire(E.ANSWER, now)

    def ring_end(self, call_id: str, now: float, *, missed: bool) -> AgentEvent:
        """A ringing leg ended unanswered; `missed` counts it against the agent."""
        if self.legs.get(call_id) is not LegState.RINGING:
            raise IllegalTransition(self.agent_id, self.state.value, f"ring end of {call_id}")
        event = E.RING_END if len(self.legs) > 1 else E.RING_END_LAST
        self._check(event)
        del self.legs[call_id]
        if missed:
            self.consecutive_misses += 1
            self.calls_missed += 1
        return self._fire(event, now)

    def hangup(self, call_id: str, now: float) -> tuple[AgentEvent, float]:
        """A connected call ended; returns the event and the call's talk time in seconds."""
        if self.legs.get(call_id) is not LegState.CONNECTED:
            raise IllegalTransition(self.agent_id, self.state.value, f"hangup of {call_id}")
        others = [leg for c, leg in self.legs.items() if c != call_id]
        if LegState.CONNECTED in others:
            event = E.HANGUP
        elif others:
            event = E.HANGUP_RINGING
        else:
            event = E.HANGUP_LAST
        self._check(event)
        del self.legs[call_id]
        talk = now - self.connected_at.pop(call_id)
        self.talk_s += talk
        if event is E.HANGUP_LAST:
            self.wrap_up_until = now + self.config.wrap_up_s
        elif event is E.HANGUP_RINGING:
            self.idle_since = now
        return self._fire(event, now), talk

    def end_wrap_up(self, now: float) -> AgentEvent:
        self._check(E.WRAP_UP_END)
        self.wrap_up_until = None
        self.idle_since = now
        return self._fire(E.WRAP_UP_END, now)
