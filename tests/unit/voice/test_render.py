from __future__ import annotations

import asyncio
import datetime as dt
import os
import pathlib
import threading

import numpy as np
import pytest
from structlog.testing import capture_logs
from voice_fakes import FakeEngine, fake_audio

from ivr.call import Prompt
from ivr.voice import (
    DialectSet,
    PromptLibrary,
    PromptSource,
    PromptUnavailable,
    RenderCache,
    purge_personal_renders,
    render_key,
    split_template,
)
from ivr.voice.audio import load_prompt_audio
from ivr.voice.flowprompts import FlowPrompts
from ivr.voice.render import Segment

VARS = {"policy_no": "P2026000123", "amount": "1234.50", "date": "2026-11-23"}


@pytest.fixture
def library(
    dialects: DialectSet, engine: FakeEngine, tmp_path: pathlib.Path, prompts_dir: pathlib.Path
) -> PromptLibrary:
    lib = PromptLibrary(dialects, engine, RenderCache(tmp_path / "cache"), prompts_dir)
    yield lib  # type: ignore[misc]
    lib.close()


@pytest.mark.parametrize(
    ("template", "segments"),
    [
        ("您好。", (Segment("您好。"),)),
        (
            "保单{policy_no}余额{amount}。",
            (Segment("保单"), Segment("", "policy_no"), Segment("余额"), Segment("", "amount")),
        ),
        ("{amount}", (Segment("", "amount"),)),
        ("保额{policy_amount}元。", (Segment("保额"), Segment("", "policy_amount", True), Segment("元。"))),
        (
            "Policy {policy_no}, amount {amount}",
            (Segment("Policy "), Segment("", "policy_no"), Segment(", amount "), Segment("", "amount")),
        ),
    ],
    ids=["fixed", "chinese", "only-variable", "unit-follows", "english"],
)
def test_split_template_around_placeholders(template: str, segments: tuple[Segment, ...]) -> None:
    assert split_template(template) == segments


async def test_build_prerenders_every_fixed_prompt_so_calls_never_wait(
    library: PromptLibrary, engine: FakeEngine, demo_flows: tuple[FlowPrompts, ...]
) -> None:
    report = library.build(demo_flows)
    assert report.ok and report.rendered > 0 and report.recordings == 6
    rendered = len(engine.calls)
    for flow in demo_flows:
        for code in flow.dialects:
            for prompt_id in flow.texts:
                if "{" not in next(iter(flow.texts[prompt_id].values())):
                    result = await library.audio_for(Prompt(prompt_id, "", code))
                    assert result.audio.dtype == np.int16 and result.audio.size > 0
    assert len(engine.calls) == rendered


async def test_fixed_prompt_audio_is_the_engines_render(
    library: PromptLibrary, demo_flows: tuple[FlowPrompts, ...]
) -> None:
    library.build(demo_flows)
    result = await library.audio_for(Prompt("goodbye", "感谢您的来电，再见。", "cmn"))
    assert np.array_equal(result.audio, fake_audio("感谢您的来电，再见。", "cmn-latn-pinyin", 140))
    assert result.cache_keys == (
        render_key("感谢您的来电，再见。", "cmn-latn-pinyin", 140, FakeEngine.engine_id),
    )


async def test_only_variable_parts_are_rendered_and_then_cached(
    library: PromptLibrary,
    engine: FakeEngine,
    demo_flows: tuple[FlowPrompts, ...],
    dialects: DialectSet,
    tmp_path: pathlib.Path,
    prompts_dir: pathlib.Path,
) -> None:
    library.build(demo_flows)
    before = len(engine.calls)
    first = await library.audio_for(Prompt("policy_balance", "", "cmn", VARS))
    spoken = [text for text, _v, _r in engine.calls[before:]]
    assert sorted(spoken) == sorted(
        ["P，二零二六，零零零幺，二三", "一千二百三十四元五角", "二零二六年十一月二十三日"]
    )
    assert (
        first.spoken_text
        == "您的保单P，二零二六，零零零幺，二三的现金价值是一千二百三十四元五角，截至二零二六年十一月二十三日"
    )
    again = await library.audio_for(Prompt("policy_balance", "", "cmn", VARS))
    assert len(engine.calls) == before + 3
    assert np.array_equal(first.audio, again.audio)
    # A fresh library (a restarted engine) finds them in the disk cache.
    other_engine = FakeEngine()
    with PromptLibrary(dialects, other_engine, RenderCache(tmp_path / "cache"), prompts_dir) as fresh:
        fresh.build(demo_flows)
        third = await fresh.audio_for(Prompt("policy_balance", "", "cmn", VARS))
    assert other_engine.calls == [] and np.array_equal(third.audio, first.audio)


async def test_joins_are_trimmed_of_the_engines_trailing_silence(
    library: PromptLibrary, demo_flows: tuple[FlowPrompts, ...]
) -> None:
    library.build(demo_flows)
    result = await library.audio_for(
        Prompt("queue_position", "", "en", {"position": "3", "wait_minutes": "5"})
    )
    parts = [
        fake_audio(t, "en-us", 150)
        for t in ("There are ", "three", " callers ahead of you, about ", "five", " minutes.")
    ]
    assert result.spoken_text == "There are three callers ahead of you, about five minutes."
    assert sum(p.size for p in parts) - result.audio.size > 3 * 3200
    assert np.array_equal(result.audio[-parts[-1].size :], parts[-1])


async def test_variables_are_spoken_in_the_dialect_that_serves_the_prompt(
    library: PromptLibrary, demo_flows: tuple[FlowPrompts, ...]
) -> None:
    library.build(demo_flows)
    english = await library.audio_for(Prompt("policy_balance", "", "en", VARS))
    assert english.spoken_text is not None
    assert "one thousand two hundred thirty-four yuan and fifty fen" in english.spoken_text
    assert "November twenty-third, twenty twenty-six" in english.spoken_text
    cantonese = await library.audio_for(Prompt("policy_balance", "", "yue", VARS))
    assert cantonese.spoken_text is not None and "P，二零二六，零零零一，二三" in cantonese.spoken_text
    hakka = await library.audio_for(Prompt("policy_balance", "", "hak", VARS))
    assert hakka.dialect_used == "cmn" and hakka.spoken_text is not None and "幺" in hakka.spoken_text


async def test_minnan_caller_hears_minnan_recording_where_it_exists_and_mandarin_elsewhere(
    library: PromptLibrary, demo_flows: tuple[FlowPrompts, ...], prompts_dir: pathlib.Path
) -> None:
    library.build(demo_flows)
    with capture_logs() as logs:
        greeting = await library.audio_for(Prompt("greeting", "", "nan"))
        transfer = await library.audio_for(Prompt("transfer_agent", "", "nan"))
    assert (greeting.source, greeting.dialect_used, greeting.path) == (
        PromptSource.RECORDED,
        "nan",
        prompts_dir / "nan" / "greeting.wav",
    )
    assert np.array_equal(greeting.audio, load_prompt_audio(prompts_dir / "nan" / "greeting.wav"))
    assert (transfer.source, transfer.dialect_used, transfer.fallback_from) == (
        PromptSource.SYNTHESIZED,
        "cmn",
        "nan",
    )
    assert np.array_equal(
        transfer.audio, fake_audio("正在为您转接人工服务，请稍候。", "cmn-latn-pinyin", 140)
    )
    resolved = [e for e in logs if e["event"] == "prompt_resolved"]
    assert [(e["prompt_id"], e["source"], e["dialect_used"], e["fallback_from"]) for e in resolved] == [
        ("greeting", "recorded", "nan", None),
        ("transfer_agent", "synthesized", "cmn", "nan"),
    ]


async def test_removing_a_recording_falls_back_to_mandarin(
    dialects: DialectSet,
    engine: FakeEngine,
    tmp_path: pathlib.Path,
    prompts_dir: pathlib.Path,
    demo_flows: tuple[FlowPrompts, ...],
) -> None:
    (prompts_dir / "wuu" / "greeting.wav").unlink()
    with PromptLibrary(dialects, engine, RenderCache(tmp_path / "c"), prompts_dir) as lib:
        lib.build(demo_flows)
        result = await lib.audio_for(Prompt("greeting", "", "wuu"))
        confirm = await lib.audio_for(Prompt("ask_need", "", "wuu"))
    assert (result.source, result.dialect_used) == (PromptSource.SYNTHESIZED, "cmn")
    assert (confirm.source, confirm.dialect_used) == (PromptSource.RECORDED, "wuu")


async def test_concurrent_requests_share_one_render_off_the_event_loop(
    library: PromptLibrary, engine: FakeEngine, demo_flows: tuple[FlowPrompts, ...]
) -> None:
    library.build(demo_flows)
    threads: set[str] = set()
    synthesize = engine.synthesize

    def spy(text: str, voice: str, rate: int) -> np.ndarray:  # type: ignore[type-arg]
        threads.add(threading.current_thread().name)
        return synthesize(text, voice, rate)

    engine.synthesize = spy  # type: ignore[method-assign]
    before = len(engine.calls)
    prompt = Prompt("queue_position", "", "cmn", {"position": "7", "wait_minutes": "7"})
    results = await asyncio.gather(*(library.audio_for(prompt) for _ in range(5)))
    assert len(engine.calls) == before + 1
    assert all(np.array_equal(r.audio, results[0].audio) for r in results)
    assert threads and all(name.startswith("ivr-tts") for name in threads)


async def test_missing_or_bad_variables_are_logged_not_fatal(
    library: PromptLibrary, demo_flows: tuple[FlowPrompts, ...]
) -> None:
    library.build(demo_flows)
    with capture_logs() as logs:
        result = await library.audio_for(
            Prompt("policy_balance", "", "en", {"policy_no": "123", "amount": "lots"})
        )
    events = {e["event"]: e for e in logs}
    assert events["prompt_variable_missing"]["variable"] == "date"
    assert events["prompt_variable_unspeakable"]["variable"] == "amount"
    assert result.spoken_text == "The cash value of policy one two three is lots, as of "


async def test_unavailable_prompt_raises_and_logs(
    library: PromptLibrary, demo_flows: tuple[FlowPrompts, ...]
) -> None:
    library.build(demo_flows)
    with capture_logs() as logs, pytest.raises(PromptUnavailable):
        await library.audio_for(Prompt("not_a_prompt", "", "nan"))
    assert logs[0]["event"] == "prompt_unavailable" and logs[0]["prompt_id"] == "not_a_prompt"


async def test_a_prompt_changed_since_the_build_is_rendered_on_demand(
    library: PromptLibrary, engine: FakeEngine, demo_flows: tuple[FlowPrompts, ...]
) -> None:
    library.build(demo_flows)
    with capture_logs() as logs:
        result = await library.audio_for(Prompt("goodbye", "再见。", "cmn"))
    assert engine.calls[-1] == ("再见。", "cmn-latn-pinyin", 140)
    assert np.array_equal(result.audio, fake_audio("再见。", "cmn-latn-pinyin", 140))
    assert any(e["event"] == "prompt_not_prebuilt" for e in logs)


def test_a_voice_the_engine_lacks_makes_its_dialect_fall_back(
    dialects: DialectSet,
    tmp_path: pathlib.Path,
    prompts_dir: pathlib.Path,
    demo_flows: tuple[FlowPrompts, ...],
) -> None:
    engine = FakeEngine(voices=frozenset({"cmn-latn-pinyin", "yue", "en-us"}))
    with PromptLibrary(dialects, engine, RenderCache(tmp_path / "c"), prompts_dir) as lib:
        report = lib.build(demo_flows)
    assert any("dialects/hak.yaml" in w and "'hak' is not installed" in w for w in report.warnings)
    hak = {r.prompt_id: r for flow, r in report.resolutions if r.requested == "hak"}
    assert hak["greeting"].dialect_used == "cmn"
    assert not any(voice == "hak" for _t, voice, _r in engine.calls)


def test_build_reports_prompts_no_dialect_can_supply(
    dialects: DialectSet, engine: FakeEngine, tmp_path: pathlib.Path, prompts_dir: pathlib.Path
) -> None:
    flow = FlowPrompts("f", None, ("nan", "en"), {"hello": {"en": "Hello."}, "odd": {"xx": "?"}})
    with PromptLibrary(dialects, engine, RenderCache(tmp_path / "c"), prompts_dir) as lib:
        report = lib.build([flow])
    assert not report.ok
    # nan falls back to cmn, not en: an English-only prompt cannot reach a Minnan caller.
    missing = sorted((f, e.prompt_id, e.dialect) for f, e in report.unavailable)
    assert missing == [("f", "hello", "nan"), ("f", "odd", "en"), ("f", "odd", "nan")]
    assert [(r.prompt_id, r.requested) for _f, r in report.resolutions] == [("hello", "en")]


async def test_rebuild_from_the_loop_serves_the_new_texts(
    library: PromptLibrary, engine: FakeEngine, demo_flows: tuple[FlowPrompts, ...]
) -> None:
    library.build(demo_flows)
    changed = FlowPrompts("demo", None, ("cmn",), {"goodbye": {"cmn": "再会。"}})
    report = await library.rebuild([changed])
    assert report.rendered == 1
    rendered = len(engine.calls)
    result = await library.audio_for(Prompt("goodbye", "", "cmn"))
    assert len(engine.calls) == rendered and np.array_equal(
        result.audio, fake_audio("再会。", "cmn-latn-pinyin", 140)
    )


async def test_a_recording_added_later_is_used_after_the_next_build(
    library: PromptLibrary, demo_flows: tuple[FlowPrompts, ...], prompts_dir: pathlib.Path
) -> None:
    library.build(demo_flows)
    before = await library.audio_for(Prompt("transfer_agent", "", "nan"))
    (prompts_dir / "nan" / "transfer_agent.wav").write_bytes(
        (prompts_dir / "nan" / "goodbye.wav").read_bytes()
    )
    library.build(demo_flows)
    after = await library.audio_for(Prompt("transfer_agent", "", "nan"))
    assert (before.source, before.dialect_used) == (PromptSource.SYNTHESIZED, "cmn")
    assert (after.source, after.dialect_used) == (PromptSource.RECORDED, "nan")


async def test_a_callers_own_data_is_rendered_apart_and_purged_with_the_retention(
    library: PromptLibrary, demo_flows: tuple[FlowPrompts, ...], tmp_path: pathlib.Path
) -> None:
    """Issue 15: renders of a caller's policy number, amount and date are personal data."""
    library.build(demo_flows)
    cache = tmp_path / "cache"
    fixed = set(cache.glob("??/*.wav"))
    first = await library.audio_for(Prompt("policy_balance", "", "cmn", VARS))
    personal = sorted((cache / "personal").glob("??/*.wav"))
    assert len(personal) == 3 and {p.stem for p in personal} == set(first.cache_keys) - {p.stem for p in fixed}
    assert set(cache.glob("??/*.wav")) == fixed, "no caller data among the flows' fixed prompts"
    old = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    os.utime(personal[0], (old.timestamp(), old.timestamp()))
    assert purge_personal_renders(cache, old + dt.timedelta(days=1)) == 1
    assert sorted((cache / "personal").glob("??/*.wav")) == personal[1:]
    assert set(cache.glob("??/*.wav")) == fixed


async def test_a_fixed_prompt_is_served_from_memory_until_the_next_build(
    library: PromptLibrary, engine: FakeEngine, demo_flows: tuple[FlowPrompts, ...]
) -> None:
    library.build(demo_flows)
    first = await library.audio_for(Prompt("goodbye", "", "cmn"))
    with capture_logs() as logs:
        again = await library.audio_for(Prompt("goodbye", "", "cmn"))
    assert again is first  # resolved once: the next call of the flow gets the same audio
    assert [e["event"] for e in logs] == ["prompt_resolved"]  # still logged for every call
    with_vars = await library.audio_for(Prompt("policy_balance", "", "cmn", VARS))
    other_vars = await library.audio_for(Prompt("policy_balance", "", "cmn", {**VARS, "amount": "7"}))
    assert with_vars.spoken_text != other_vars.spoken_text  # variables are never served from the memo
    await library.rebuild([FlowPrompts("demo", None, ("cmn",), {"goodbye": {"cmn": "再会。"}})])
    after = await library.audio_for(Prompt("goodbye", "", "cmn"))
    assert np.array_equal(after.audio, fake_audio("再会。", "cmn-latn-pinyin", 140))
    library.add_recording("cmn", "goodbye", pathlib.Path("goodbye.wav"), first.audio)
    recorded = await library.audio_for(Prompt("goodbye", "", "cmn"))
    assert recorded.source is PromptSource.RECORDED
