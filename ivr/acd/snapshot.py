"""The distributor's whole state as JSON, and back: what lets the shared log be trimmed.

A snapshot taken after the entry with id E, plus the log after E, gives the same state as the
whole log. It holds everything `AcdState` holds (queues in order, offers, agents' legs, leases,
dispatches, counters, the random generator) except the configuration, which every node loads from
its own files: the snapshot names the configuration it was made with (a digest), and a node whose
configuration differs refuses it, since it would diverge from the others anyway.

Each record is a JSON array in a fixed field order (a snapshot of 1,000 waiting callers is about
0.5 MB): encoding must stay cheap because it runs on the node's single writer between two entries.
Decoding builds only the types named here, so a snapshot read from Redis can build nothing else.
"""

from __future__ import annotations

import dataclasses
import json
import random
from datetime import datetime
from typing import Any

from ivr.acd.agent import Agent, AgentState, AgentStatus, LegState
from ivr.acd.config import AcdConfig
from ivr.acd.errors import BackendError
from ivr.acd.events import Offer, OfferKind
from ivr.acd.queue import Caller
from ivr.acd.state import AcdState, Connected, DeadlineKind
from ivr.call import QueueRequest
from ivr.dispatching import Dispatch, DispatchChange, DispatchChanged

VERSION = 2

_REQUEST_FIELDS = tuple(f.name for f in dataclasses.fields(QueueRequest))




def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


# --- records as arrays -------------------------------------------------------------------------


def _request(r: QueueRequest) -> list[Any]:
    return [getattr(r, name) for name in _REQUEST_FIELDS]


def _agent(a: Agent) -> list[Any]:
    legs = {call: leg.value for call, leg in a.legs.items()}
    return [
        a.status.value, a.state.value, a.pause_reason, a.contact, a.status_since, a.state_since, a.idle_since,
        a.wrap_up_until, legs, a.connected_at, a.consecutive_misses, a.calls_answered, a.calls_missed, a.talk_s,
    ]


def _load_agent(config: AcdConfig, agent_id: str, v: list[Any]) -> Agent:
    return Agent(
        config.agents[agent_id], AgentStatus(v[0]), AgentState(v[1]), v[2], v[3], v[4], v[5], v[6], v[7],
        {call: LegState(leg) for call, leg in v[8].items()}, v[9], v[10], v[11], v[12], v[13],
    )


def _offer(o: Offer) -> list[Any]:
    return [
        o.offer_id, o.kind.value, o.call_id, o.agent_id, o.contact, o.queue, o.node, o.ring_timeout_s, o.deadline,
        _request(o.request), o.callback_number, o.wait_s,
    ]


def _load_request(v: list[Any], names: list[str]) -> QueueRequest:
    """By name: a snapshot written before QueueRequest gained a (defaulted) field still loads."""
    return QueueRequest(**dict(zip(names, v, strict=True)))


def _load_offer(v: list[Any], names: list[str]) -> Offer:
    return Offer(
        v[0], OfferKind(v[1]), v[2], v[3], v[4], v[5], v[6], v[7], v[8], _load_request(v[9], names), v[10], v[11]
    )


def _caller(c: Caller) -> list[Any]:
    return [
        c.call_id, c.queue, c.node, _request(c.request), c.seq, c.enqueued_at, c.queue_entered_at, c.callback_number,
        c.extra_sites, list(c.offers), c.missed_until, c.max_wait_handled,
    ]


def _load_caller(v: list[Any], offers: dict[str, Offer], names: list[str]) -> Caller:
    return Caller(
        v[0], v[1], v[2], _load_request(v[3], names), v[4], v[5], v[6], v[7], tuple(v[8]),
        {offer_id: offers[offer_id] for offer_id in v[9]}, v[10], v[11],
    )


def _dispatch(d: Dispatch) -> list[Any]:
    return [d.dispatch_id, d.region, d.queues, d.helper_sites, _time(d.since), _time(d.until), d.reason, d.requested_by]


def _load_dispatch(v: list[Any]) -> Dispatch:
    return Dispatch(v[0], v[1], tuple(v[2]), tuple(v[3]), datetime.fromisoformat(v[4]), _parse_time(v[5]), v[6], v[7])


# --- the whole state ---------------------------------------------------------------------------


def encode_state(state: AcdState) -> str:
    """JSON text of the whole state (taken between commands, when nothing is left to match)."""
    book = state.dispatch
    body = {
        "version": VERSION,
        "config": state.config_digest,
        "request_fields": _REQUEST_FIELDS,
        "rng": state.rng.getstate(),
        "now": state.now,
        "wall": _time(state.wall),
        "counters": [state.seq, state.offer_seq, state.tie],
        "nodes": state.nodes,
        "applied": state.applied,
        "agents": {a: _agent(agent) for a, agent in state.agents.items()},
        "free": list(state.free),
        "offers": [_offer(o) for o in state.offers.values()],
        "callers": [_caller(c) for c in state.callers.values()],
        "connected": [[c.call_id, c.agent_id, c.queue, c.node, c.kind.value] for c in state.connected.values()],
        "queues": {
            q: [list(qs.recent_handle_s), qs.last_agent, qs.answered, qs.abandoned, qs.overflowed]
            for q, qs in state.queues.items()
        },
        "deadlines": [[at, tie, kind.value, ref] for at, tie, kind, ref in state.deadlines],
        "dispatch": {
            "active": [_dispatch(d) for d in book.active.values()],
            "log": [[c.kind.value, _dispatch(c.dispatch), _time(c.at)] for c in book.log],
            "night_on": book.night_on,
            "count": book.count,
        },
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def decode_state(text: str | bytes, config: AcdConfig, *, lease_s: float | None) -> AcdState:
    """Rebuild what `encode_state` wrote; raises BackendError when it cannot (other config, damage)."""
    try:
        body = json.loads(text)
        if body.get("version") != VERSION:
            raise BackendError(f"ACD snapshot version {body.get('version')!r}, expected {VERSION}")
        version, internal, gauss = body["rng"]
        rng = random.Random()
        rng.setstate((version, tuple(internal), gauss))
        state = AcdState(config, lease_s=lease_s, rng=rng)
        if body["config"] != state.config_digest:
            raise BackendError(
                "ACD snapshot was made with other agents.yaml/queues.yaml than this node's "
                f"({body['config']} vs {state.config_digest}): every node must load the same"
            )
        state.now, state.wall = body["now"], _parse_time(body["wall"])
        state.seq, state.offer_seq, state.tie = body["counters"]
        state.nodes, state.applied = body["nodes"], body["applied"]
        state.agents = {a: _load_agent(config, a, v) for a, v in body["agents"].items()}
        state.free = dict.fromkeys(body["free"])
        names = body["request_fields"]
        state.offers = {v[0]: _load_offer(v, names) for v in body["offers"]}
        state.callers = {v[0]: _load_caller(v, state.offers, names) for v in body["callers"]}
        state.connected = {v[0]: Connected(v[0], v[1], v[2], v[3], OfferKind(v[4])) for v in body["connected"]}
        for q, (recent, last_agent, answered, abandoned, overflowed) in body["queues"].items():
            qs = state.queues[q]
            qs.recent_handle_s.extend(recent)
            qs.last_agent, qs.answered, qs.abandoned, qs.overflowed = last_agent, answered, abandoned, overflowed
        for caller in state.callers.values():
            state.queues[caller.queue].add(caller)
        state.deadlines = [(at, tie, DeadlineKind(kind), ref) for at, tie, kind, ref in body["deadlines"]]
        saved = body["dispatch"]
        state.dispatch.load(
            {d.dispatch_id: d for d in map(_load_dispatch, saved["active"])},
            [
                DispatchChanged(DispatchChange(kind), _load_dispatch(d), datetime.fromisoformat(at))
                for kind, d, at in saved["log"]
            ],
            night_on=saved["night_on"],
            count=saved["count"],
        )
        return state
    except BackendError:
        raise
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise BackendError(f"ACD snapshot cannot be read: {exc!r}") from exc


__all__ = ["decode_state", "encode_state"]
