"""Stand-ins for the engine's seams (a `MediaLeg`, a `Dialer`) driven by a FakeClock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass

from ivr.acd import Acd, MemoryBackend
from ivr.acd.config import AcdConfig, parse_config
from ivr.call import PlaybackOutcome, PlaybackResult, Prompt
from ivr.clock import FakeClock
from ivr.engine.dialer import DialFailed
from ivr.engine.events import CallEvent, CallEvents
from ivr.engine.handoff import QueueHandoff
from ivr.engine.legs import KeyReader, KeyRouting, MediaLeg


def one_agent_acd_config() -> AcdConfig:
    """One site, one agent `a1` (SIP user a1/pw) serving queue `general` in every dialect the tests use."""
    return parse_config(
        """
sites:
  - {id: north, region: north, central: true}
agents:
  - {id: a1, sip: {username: a1, password: pw}, site: north, skills: {general: 1}, dialects: [cmn, en], max_calls: 1}
""",
        """
queues:
  - {id: general, strategy: longest-idle, ring_timeout_s: 20, retry_after_s: 5, announce_every_s: 30}
""",
    )


class FakeLeg:
    """A `MediaLeg` that records what was done to it; `press` and `hang_up_by_party` act as the party."""

    def __init__(self, call_id: str, clock: FakeClock) -> None:
        self.call_id = call_id
        self._clock = clock
        self._ended = asyncio.Event()
        self.ended_at: float | None = None
        self.played: list[str] = []
        self.held = False
        self.bridged_to: MediaLeg | None = None
        self.closed = False
        self._keys = KeyRouting()

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    async def wait_ended(self) -> None:
        await self._ended.wait()

    async def play(self, prompts: Sequence[Prompt], *, barge_in: bool = False) -> PlaybackResult:
        assert not self.held, "played over music on hold"
        self.played += [p.prompt_id for p in prompts]
        await self._clock.sleep(2.0)
        return PlaybackResult(PlaybackOutcome.COMPLETED, 2.0)

    def hold(self) -> None:
        self.held = True

    def unhold(self) -> None:
        self.held = False

    def bridge(self, other: MediaLeg) -> None:
        self.bridged_to = other

    def unbridge(self) -> None:
        self.bridged_to = None

    @property
    def typeahead(self) -> list[str]:
        return self._keys.typeahead

    def take_keys(self, reader: KeyReader, *, typeahead: bool = False) -> AbstractContextManager[None]:
        return self._keys.take(reader, typeahead=typeahead)

    def press(self, digit: str) -> None:
        self._keys.deliver(digit)

    def hang_up_by_party(self) -> None:
        if not self.ended:
            self.ended_at = self._clock.now()
        self._ended.set()

    async def hangup(self) -> None:
        self.hang_up_by_party()

    async def aclose(self) -> None:
        await self.hangup()
        self.closed = True


@dataclass
class Dialled:
    uri: str
    headers: dict[str, str]
    at: float
    cancelled_at: float | None = None
    leg: FakeLeg | None = None


class FakeDialer:
    """A `Dialer` whose far ends answer after `answer_after_s[uri]` seconds (absent: never)."""

    def __init__(self, clock: FakeClock, answer_after_s: dict[str, float] | None = None) -> None:
        self._clock = clock
        self.answer_after_s = dict(answer_after_s or {})
        self.dialled: list[Dialled] = []

    async def dial(
        self, uri: str, *, timeout_s: float, label: str, headers: Iterable[tuple[str, str]] = ()
    ) -> FakeLeg:
        attempt = Dialled(uri, dict(headers), self._clock.now())
        self.dialled.append(attempt)
        try:
            async with self._clock.timeout(timeout_s):
                delay = self.answer_after_s.get(uri)
                if delay is None:
                    await asyncio.Event().wait()
                else:
                    await self._clock.sleep(delay)
        except TimeoutError:
            raise DialFailed(408, timed_out=True) from None
        except asyncio.CancelledError:
            attempt.cancelled_at = self._clock.now()
            raise
        attempt.leg = FakeLeg(label, self._clock)
        return attempt.leg


@dataclass
class Rig:
    """A queue handoff over a real ACD (memory backend), a fake dialer and the events it published."""

    clock: FakeClock
    acd: Acd
    dialer: FakeDialer
    events: list[CallEvent]
    handoff: QueueHandoff


@asynccontextmanager
async def handoff_rig(
    config: AcdConfig, answer_after_s: dict[str, float] | None = None, *, trunk: str = "x"
) -> AsyncIterator[Rig]:
    """A `Rig` on an autojumping FakeClock; a number is dialled as `sip:<number>@<trunk>`."""
    clock = FakeClock()
    events: list[CallEvent] = []
    dialer = FakeDialer(clock, answer_after_s)
    async with Acd(config, MemoryBackend(), clock) as acd, clock.autojump():
        handoff = QueueHandoff(acd, dialer, CallEvents([events.append]), clock, lambda number: f"sip:{number}@{trunk}")
        yield Rig(clock, acd, dialer, events, handoff)
