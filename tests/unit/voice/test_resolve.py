from __future__ import annotations

import pathlib

import pytest

from ivr.voice import DialectSet, PromptSource, PromptUnavailable, Resolver, SkipReason, scan_recordings

TEXTS = {
    "greeting": {"cmn": "您好，欢迎致电。", "en": "Hello."},
    "balance": {"cmn": "保单{policy_no}余额{amount}。", "en": "Policy {policy_no}: {amount}."},
    "hakka_hanzi": {"cmn": "您好。", "hak": "你好。"},
    "only_cmn": {"cmn": "请稍候。"},
}
REC = pathlib.Path("prompts")


def resolver(dialects: DialectSet, *recorded: tuple[str, str]) -> Resolver:
    return Resolver(dialects, TEXTS, {(d, p): REC / d / f"{p}.wav" for d, p in recorded})


def test_recording_beats_tts_in_the_same_dialect(dialects: DialectSet) -> None:
    res = resolver(dialects, ("cmn", "greeting")).resolve("greeting", "cmn")
    assert res.source is PromptSource.RECORDED
    assert res.recording == REC / "cmn" / "greeting.wav"
    assert res.fallback_from is None and res.describe() == "recorded"


def test_tts_when_there_is_no_recording(dialects: DialectSet) -> None:
    res = resolver(dialects).resolve("greeting", "en")
    assert (res.source, res.dialect_used, res.text) == (PromptSource.SYNTHESIZED, "en", "Hello.")
    assert res.tts is not None and res.tts.voice == "en-us"
    assert res.describe() == "synthesized"


def test_minnan_caller_gets_the_minnan_recording_where_it_exists(dialects: DialectSet) -> None:
    r = resolver(dialects, ("nan", "greeting"))
    recorded = r.resolve("greeting", "nan")
    assert (recorded.source, recorded.dialect_used) == (PromptSource.RECORDED, "nan")
    fallback = r.resolve("only_cmn", "nan")
    assert (fallback.source, fallback.dialect_used, fallback.fallback_from) == (
        PromptSource.SYNTHESIZED,
        "cmn",
        "nan",
    )
    assert fallback.skipped == (("nan", SkipReason.NO_VOICE),)
    assert fallback.describe() == "fallback from nan to cmn (synthesized)"


def test_fallback_prefers_the_next_dialects_recording_over_its_tts(dialects: DialectSet) -> None:
    res = resolver(dialects, ("cmn", "only_cmn")).resolve("only_cmn", "wuu")
    assert (res.source, res.dialect_used) == (PromptSource.RECORDED, "cmn")


def test_a_recording_cannot_serve_a_prompt_with_variables(dialects: DialectSet) -> None:
    res = resolver(dialects, ("nan", "balance")).resolve("balance", "nan")
    assert (res.source, res.dialect_used) == (PromptSource.SYNTHESIZED, "cmn")
    assert res.skipped == (("nan", SkipReason.RECORDING_NEEDS_VARIABLES),)


def test_dialect_without_text_falls_back(dialects: DialectSet) -> None:
    res = resolver(dialects).resolve("only_cmn", "yue")
    assert res.dialect_used == "cmn" and res.skipped == (("yue", SkipReason.NO_TEXT),)


def test_a_romanisation_voice_skips_text_in_characters(dialects: DialectSet) -> None:
    res = resolver(dialects).resolve("hakka_hanzi", "hak")
    assert res.dialect_used == "cmn" and res.skipped == (("hak", SkipReason.TEXT_NOT_READABLE),)


def test_pack_text_beats_the_flow_text(dialects: DialectSet) -> None:
    res = Resolver(dialects, {"greeting": {"hak": "flow text"}}, {}).resolve("greeting", "hak", "flow text")
    assert res.text == dialects["hak"].prompts["greeting"]


def test_the_calls_text_replaces_the_flows_for_its_own_dialect_only(dialects: DialectSet) -> None:
    r = resolver(dialects)
    assert r.resolve("greeting", "cmn", "新的问候。").text == "新的问候。"
    # A Mandarin text handed over for a dialect the flows have no text in is a stand-in: the chain decides.
    res = r.resolve("only_cmn", "en", "请稍候。")
    assert (res.dialect_used, res.text) == ("cmn", "请稍候。")


def test_a_prompt_no_flow_declares_is_spoken_from_the_calls_text(dialects: DialectSet) -> None:
    res = resolver(dialects).resolve("ad_hoc", "en", "One moment please.")
    assert (res.dialect_used, res.text) == ("en", "One moment please.")


def test_unknown_dialect_uses_the_default(dialects: DialectSet) -> None:
    res = resolver(dialects).resolve("greeting", "fr")
    assert res.dialect_used == "cmn" and res.skipped == (("fr", SkipReason.UNKNOWN_DIALECT),)


def test_nothing_in_the_chain_raises_naming_prompt_dialect_and_reasons(dialects: DialectSet) -> None:
    with pytest.raises(PromptUnavailable) as err:
        resolver(dialects).resolve("nowhere", "nan")
    assert str(err.value) == (
        "prompt 'nowhere' unavailable for dialect 'nan' "
        "(nan: no recording and no TTS voice; cmn: no recording and no text)"
    )
    assert err.value.prompt_id == "nowhere" and err.value.dialect == "nan"


def test_scan_recordings_prefers_wav(tmp_path: pathlib.Path) -> None:
    (tmp_path / "nan").mkdir()
    for name in ("greeting.flac", "greeting.wav", "bye.ogg", "notes.txt"):
        (tmp_path / "nan" / name).write_bytes(b"")
    assert scan_recordings(tmp_path) == {
        ("nan", "greeting"): tmp_path / "nan" / "greeting.wav",
        ("nan", "bye"): tmp_path / "nan" / "bye.ogg",
    }
    assert scan_recordings(tmp_path / "absent") == {}


def test_shipped_stand_in_recordings_are_found(project_root: pathlib.Path) -> None:
    found = scan_recordings(project_root / "prompts")
    assert {
        ("nan", "greeting"),
        ("wuu", "greeting"),
        ("nan", "ask_need"),
        ("wuu", "goodbye"),
    } <= set(found)
