"""The feature-code router: registration, matching with arguments, supervisors' codes, the spoken
confirmation or refusal, and the hang-up after; agents' own codes drive the ACD."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from engine_fakes import FakeLeg

from ivr.acd import Acd, MemoryBackend
from ivr.acd.config import parse_config
from ivr.clock import FakeClock
from ivr.engine.agents import AgentDesk
from ivr.engine.featurecodes import FeatureCall, FeatureCodes, FeatureRefused
from ivr.web import LiveState


class SpokenLeg(FakeLeg):
    def __init__(self, clock: FakeClock) -> None:
        super().__init__("phone-1", clock)
        self.texts: list[str] = []

    async def play(self, prompts, *, barge_in=False):  # type: ignore[no-untyped-def]
        self.texts += [p.text for p in prompts]
        return await super().play(prompts, barge_in=barge_in)


async def test_codes_match_longest_with_arguments_only_where_registered() -> None:
    codes = FeatureCodes()

    async def nothing(call: FeatureCall) -> str | None:
        return None

    codes.register("*21", nothing, argument=True)
    codes.register("*22", nothing)
    with pytest.raises(ValueError, match=r"feature code \*22 is already registered"):
        codes.register("*22", nothing)
    with pytest.raises(ValueError, match="must be '\\*' and two digits"):
        codes.register("21", nothing)
    assert codes.match("*2112") is not None and codes.match("*2112")[1] == "12"  # type: ignore[index]
    assert codes.match("*22") is not None and codes.match("*229") is None
    assert codes.match("*99") is None and not codes.accepts("95519")


async def test_a_supervisors_code_is_refused_to_an_agent_and_a_refusal_is_spoken() -> None:
    clock = FakeClock()
    codes = FeatureCodes()
    seen: list[FeatureCall] = []

    async def listen(call: FeatureCall) -> str:
        seen.append(call)
        if call.argument == "zz":
            raise FeatureRefused("no agent zz", "No such agent.")
        return "Listening ended."

    codes.register("*31", listen, argument=True, supervisor=True)
    async with clock.autojump():
        leg = SpokenLeg(clock)
        await codes.run("*31a1", "a2", "a2", False, leg)  # type: ignore[arg-type]
        assert seen == [] and leg.texts == ["Sorry, that is not possible now."] and leg.closed
        leg = SpokenLeg(clock)
        await codes.run("*31zz", "sup", "sup", True, leg)  # type: ignore[arg-type]
        assert leg.texts == ["No such agent."]
        leg = SpokenLeg(clock)
        await codes.run("*31a1", "sup", "sup", True, leg)  # type: ignore[arg-type]
        assert (seen[-1].code, seen[-1].argument, seen[-1].supervisor) == ("*31", "a1", True)
        assert leg.texts == ["Listening ended."] and leg.closed


@pytest.fixture
async def desk() -> AsyncIterator[tuple[Acd, AgentDesk, FeatureCodes, FakeClock]]:
    clock = FakeClock()
    config = parse_config(
        "sites:\n  - {id: n, region: n, central: true}\n"
        "agents:\n  - {id: a1, sip: {username: a1, password: pw}, site: n, skills: {general: 1}, wrap_up_s: 60}\n",
        "queues:\n  - {id: general, strategy: longest-idle}\n",
    )
    async with Acd(config, MemoryBackend(), clock) as acd, clock.autojump():
        agents = AgentDesk(acd, LiveState(), clock)
        codes = FeatureCodes()
        agents.register_codes(codes)
        await acd.controls.login("a1", "sip:a1@10.0.0.1")
        yield acd, agents, codes, clock


async def test_agents_codes_pause_with_a_reason_code_resume_and_log_out(
    desk: tuple[Acd, AgentDesk, FeatureCodes, FakeClock]
) -> None:
    acd, _, codes, clock = desk
    leg = SpokenLeg(clock)
    await codes.run("*215", "a1", "a1", False, leg)  # type: ignore[arg-type]
    assert acd.agent("a1").pause_reason == "code-5" and leg.texts == ["Paused."]
    await codes.run("*22", "a1", "a1", False, SpokenLeg(clock))  # type: ignore[arg-type]
    assert acd.agent("a1").status.value == "available"
    leg = SpokenLeg(clock)
    await codes.run("*23", "a1", "a1", False, leg)  # type: ignore[arg-type]
    assert leg.texts == ["Sorry, that is not possible now."]  # not in wrap-up
    await codes.run("*24", "a1", "a1", False, SpokenLeg(clock))  # type: ignore[arg-type]
    assert acd.agent("a1").status.value == "logged_out"


async def test_figures_count_up_on_the_live_view_between_events() -> None:
    clock = FakeClock()
    config = parse_config(
        "sites:\n  - {id: n, region: n, central: true}\n"
        "agents:\n  - {id: a1, sip: {username: a1, password: pw}, site: n, skills: {general: 1}}\n",
        "queues:\n  - {id: general, strategy: longest-idle}\n",
    )
    live = LiveState()
    async with Acd(config, MemoryBackend(), clock) as acd, clock.autojump():
        agents = AgentDesk(acd, live, clock)
        acd.add_listener(agents.publish)
        await acd.controls.login("a1", "sip:a1@10.0.0.1")
        await acd.controls.pause("a1", "training")
        fresh = asyncio.create_task(agents.keep_figures_fresh(every_s=10.0))
        await clock.sleep(25.0)
        view = live.agent("a1")
        assert view is not None and view.today["pauses"] == 1 and view.today["paused_s"] == 20.0
        fresh.cancel()
