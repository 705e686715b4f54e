"""Media sockets of the right family: an engine listening on `::` takes IPv6 and IPv4 callers alike.

Real UDP over loopback (`::1` and 127.0.0.1), our own sessions at both ends (issue 24: a phone's IPv6
offer must find a socket that can answer it).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from ivr.media.tones import tone
from ivr.rtp import MediaEngine, MediaParams, PlayOutcome
from ivr.testing.rtpprobe import MediaProbe, dominant_frequency_hz

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


@pytest.fixture
async def engines() -> AsyncIterator[dict[str, MediaEngine]]:
    first = random.randrange(20000, 60000, 200)
    made = {
        host: MediaEngine(host=host, port_first=first + 200 * n, port_last=first + 200 * n + 199)
        for n, host in enumerate(("::", "::1", "127.0.0.1"))
    }
    yield made
    for engine in made.values():
        engine.close()


@pytest.mark.parametrize("caller_host", ["::1", "127.0.0.1"], ids=["ipv6-caller", "ipv4-caller"])
async def test_an_engine_on_any_ipv6_address_talks_to_both_families(
    engines: dict[str, MediaEngine], caller_host: str
) -> None:
    ours = await engines["::"].open_session(call_id="ours")
    caller = await engines[caller_host].open_session(call_id="caller")
    ours.start(MediaParams(remote=caller.local, peer_host=caller_host, confirmed=False))
    caller.start(MediaParams(remote=(caller_host, ours.local_port)))
    heard_by_caller, heard_by_us = MediaProbe(caller), MediaProbe(ours)
    result = await ours.play(tone((1000.0,), 0.4))
    assert result.outcome is PlayOutcome.COMPLETED
    audio = await heard_by_caller.wait_for_audio(0.6)
    assert dominant_frequency_hz(audio) == pytest.approx(1000.0, abs=10.0)
    await caller.send_dtmf("7")
    assert await heard_by_us.wait_for_digits(1) == "7"
    assert ours.remote == caller.local  # the caller's source, unmapped (never ::ffff:127.0.0.1)
    assert engines["::"].counters.send_errors == 0 and ours.failure is None
