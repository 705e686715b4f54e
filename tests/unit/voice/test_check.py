from __future__ import annotations

import pathlib

from rich.console import Console
from voice_fakes import FakeEngine

from ivr.voice import DialectSet, PromptLibrary, RenderCache, check_prompts
from ivr.voice.check import print_check
from ivr.voice.flowprompts import FlowPrompts


def test_check_reports_every_prompt_in_every_dialect_and_what_is_built(
    dialects: DialectSet,
    engine: FakeEngine,
    tmp_path: pathlib.Path,
    prompts_dir: pathlib.Path,
    demo_flows: tuple[FlowPrompts, ...],
) -> None:
    cache = RenderCache(tmp_path / "cache")
    before = check_prompts(demo_flows, dialects, prompts_dir, cache, engine)
    assert before.ok and len(before.rows) == 6 * 6
    status = {(r.dialect, r.prompt_id): r.status for r in before.rows}
    assert status["nan", "greeting"] == "recorded"
    assert status["nan", "transfer_agent"] == "fallback from nan to cmn (synthesized)"
    assert status["hak", "greeting"] == "synthesized"
    assert status["hak", "policy_balance"] == "fallback from hak to cmn (synthesized)"
    assert status["en", "goodbye"] == "synthesized"
    assert before.not_built == 36 - 6
    with PromptLibrary(dialects, engine, cache, prompts_dir) as library:
        library.build(demo_flows)
    assert check_prompts(demo_flows, dialects, prompts_dir, cache, engine).not_built == 0


def test_check_fails_when_no_dialect_in_a_chain_can_supply_a_prompt(
    dialects: DialectSet, engine: FakeEngine, tmp_path: pathlib.Path, prompts_dir: pathlib.Path
) -> None:
    flow = FlowPrompts("hotline", None, ("wuu", "en"), {"menu": {"en": "Press one."}})
    report = check_prompts((flow,), dialects, prompts_dir, RenderCache(tmp_path), engine)
    assert not report.ok
    [failure] = report.failures
    assert (failure.flow, failure.dialect, failure.prompt_id, failure.status) == (
        "hotline",
        "wuu",
        "menu",
        "MISSING",
    )
    assert failure.problem == (
        "prompt 'menu' unavailable for dialect 'wuu' "
        "(wuu: no recording and no TTS voice; cmn: no recording and no text)"
    )


def test_printed_tables_name_each_dialect_and_how_its_prompts_are_served(
    dialects: DialectSet,
    engine: FakeEngine,
    tmp_path: pathlib.Path,
    prompts_dir: pathlib.Path,
    demo_flows: tuple[FlowPrompts, ...],
) -> None:
    report = check_prompts(demo_flows, dialects, prompts_dir, RenderCache(tmp_path), engine)
    console = Console(record=True, width=200)
    print_check(report, dialects, console)
    text = console.export_text()
    assert "nan — 閩南語 / 闽南话 (recordings only)" in text
    assert "yue — 廣東話 / 粤语 (voice yue, 140 wpm)" in text
    assert "fallback from wuu to cmn (synthesized)" in text
    assert "prompts/nan/greeting.wav" in text
    summary = next(line for line in text.splitlines() if line.startswith("│ nan "))
    assert [cell.strip() for cell in summary.strip("│").split("│")] == ["nan", "3", "0", "3", "0", "3"]


def test_a_pack_no_flow_serves_is_shown_but_never_fails_the_check(
    dialects: DialectSet, engine: FakeEngine, tmp_path: pathlib.Path, prompts_dir: pathlib.Path
) -> None:
    flow = FlowPrompts("hotline", None, ("en",), {"menu": {"en": "Press one."}})
    report = check_prompts((flow,), dialects, prompts_dir, RenderCache(tmp_path), engine)
    assert report.ok
    previews = {r.dialect for r in report.rows if r.preview}
    assert previews == set(dialects) - {"en"}
