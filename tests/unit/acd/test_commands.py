from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.acd.commands import (
    AgentCallEnded,
    AgentLogin,
    AgentPause,
    Command,
    Enqueue,
    LogEntry,
    RequestCallback,
    RingFailed,
    StartDispatch,
    Tick,
    decode_entry,
    encode_entry,
)
from ivr.acd.errors import BackendError
from ivr.acd.events import RingFailure
from ivr.call import QueueRequest
from ivr.dispatching import DispatchRequest

text = st.text(min_size=1, max_size=12)
commands: st.SearchStrategy[Command] = st.one_of(
    st.builds(
        Enqueue,
        text,
        st.builds(
            QueueRequest,
            text,
            st.integers(-5, 99),
            st.dictionaries(text, st.integers(1, 5), max_size=3),
            text,
            st.dictionaries(text, text, max_size=3),
        ),
    ),
    st.builds(RingFailed, text, st.sampled_from(list(RingFailure))),
    st.builds(AgentPause, text, st.sampled_from(["no_answer", "lunch", "培训"])),
    st.builds(AgentCallEnded, text, st.none() | text),
    st.builds(AgentLogin, text, text),
    st.builds(RequestCallback, text, text),
    st.builds(
        StartDispatch,
        st.builds(
            DispatchRequest,
            text,
            st.lists(text, max_size=3).map(tuple),
            st.lists(text, max_size=3).map(tuple),
            st.none() | st.datetimes(timezones=st.just(UTC)),
            text,
            text,
        ),
    ),
    st.just(Tick()),
)


@given(commands, st.floats(0, 1e9, allow_nan=False))
def test_log_entries_survive_the_redis_wire_format(command: Command, now: float) -> None:
    entry = LogEntry("node-1", "node-1#7", now, datetime(2026, 1, 5, tzinfo=UTC), command, "")
    decoded = decode_entry(encode_entry(entry), "1700000000000-0")
    assert decoded.command == command
    assert (decoded.node, decoded.cid, decoded.now, decoded.wall, decoded.entry_id) == (
        "node-1",
        "node-1#7",
        now,
        entry.wall,
        "1700000000000-0",
    )


def test_pause_reason_no_answer_stays_a_reason_not_a_ring_failure() -> None:
    entry = LogEntry("n", "n#1", 0.0, datetime(2026, 1, 5, tzinfo=UTC), AgentPause("a1", "no_answer"))
    assert decode_entry(encode_entry(entry), "1-0").command == AgentPause("a1", "no_answer")


@pytest.mark.parametrize("raw", [b"not json", b'{"type": "Nope", "command": {}}', b'{"type": "Tick"}'])
def test_undecodable_entries_raise_backend_error_naming_the_entry(raw: bytes) -> None:
    with pytest.raises(BackendError, match="log entry 5-0: cannot decode command"):
        decode_entry(raw, "5-0")
