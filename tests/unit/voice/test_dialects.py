from __future__ import annotations

import pathlib

import pytest

from ivr.voice import DialectLoadError, DialectSet, load_dialect_pack, load_dialects
from ivr.voice.dialects import has_hanzi
from ivr.voice.speak import NumeralStyle, SayAs, say

GOOD = """\
code: {code}
name: {{native: 甲, cmn: 甲}}
tts: {{voice: yue, rate_wpm: 140}}
fallback: {fallback}
"""


BASE = GOOD.format(code="xx", fallback="[]")


def write(tmp: pathlib.Path, name: str, text: str) -> pathlib.Path:
    path = tmp / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_packs_load_with_the_required_dialects(dialects: DialectSet) -> None:
    assert {"cmn", "yue", "hak", "nan", "wuu", "en"} <= set(dialects)
    assert dialects["nan"].tts is None and dialects["wuu"].tts is None
    assert dialects.chain("nan") == ("nan", "cmn")
    assert dialects.chain("wuu") == ("wuu", "cmn")
    voices = {code: pack.tts.voice for code, pack in dialects.items() if pack.tts}
    assert voices == {"cmn": "cmn-latn-pinyin", "yue": "yue", "hak": "hak", "en": "en-us"}
    assert dialects["en"].numerals.style is NumeralStyle.ENGLISH
    assert dialects["cmn"].numerals.digit_one == "幺"
    for pack in dialects.values():
        assert pack.name_native and pack.name_cmn


def test_hakka_pack_romanises_every_numeral_it_can_produce(dialects: DialectSet) -> None:
    hak = dialects["hak"].numerals
    for value, kind in [
        ("1234567890", SayAs.CARDINAL),
        ("20005", SayAs.CARDINAL),
        ("123456789", SayAs.DIGITS),
        ("98765.43", SayAs.MONEY),
        ("-2", SayAs.MONEY),
        ("2026-11-23", SayAs.DATE),
        ("-1234.05", SayAs.NUMBER),
    ]:
        words = say(value, kind, hak)
        assert not has_hanzi(words), (value, words)
    for text in dialects["hak"].prompts.values():
        assert not has_hanzi(text), text


def test_unknown_dialect_falls_back_to_the_default(dialects: DialectSet) -> None:
    assert dialects.chain("fr") == ("fr", "cmn")


def test_chain_is_depth_first_without_repeats(tmp_path: pathlib.Path) -> None:
    write(tmp_path, "cmn", GOOD.format(code="cmn", fallback="[]"))
    write(tmp_path, "yue", GOOD.format(code="yue", fallback="[cmn]"))
    write(tmp_path, "hak", GOOD.format(code="hak", fallback="[yue, cmn]"))
    assert load_dialects(tmp_path).chain("hak") == ("hak", "yue", "cmn")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (BASE + "promts: {}\n", "xx.yaml:5:1: dialect pack: unknown key 'promts' (did you mean 'prompts'?)"),
        (
            BASE.replace("rate_wpm: 140", "rate_wpm: fast"),
            "xx.yaml:3:29: tts rate_wpm must be a whole number",
        ),
        (
            BASE.replace("rate_wpm: 140", "rate_wpm: 1000"),
            "xx.yaml:3:29: tts rate_wpm must be between 80 and 450, got 1000",
        ),
        (BASE.replace("{voice: yue, rate_wpm: 140}", "{rate_wpm: 140}"), "xx.yaml:3:6: tts: missing 'voice'"),
        (
            GOOD.format(code="yy", fallback="[]"),
            "xx.yaml:1:7: code 'yy' does not match the file name (expected 'xx')",
        ),
        (GOOD.format(code="xx", fallback="[xx]"), "xx.yaml:4:12: fallback: 'xx' falls back to itself"),
        (GOOD.format(code="xx", fallback="cmn"), "xx.yaml:4:11: fallback must be a list"),
        (BASE.replace("cmn: 甲", "mandarin: 甲"), "xx.yaml:2:7: name: missing 'cmn'"),
        ("code: xx\nname: {native: a, cmn: b}\ntts: null\n", "xx.yaml:1:1: missing required key 'fallback'"),
        ("code: xx\ncode: xx\n", "xx.yaml:2:1: dialect pack: duplicate key 'code'"),
        ("code: [xx\n", "xx.yaml:2:1: YAML syntax error"),
        ("- a\n- b\n", "xx.yaml:1:1: dialect pack must be a mapping"),
        (
            BASE + "numerals: {style: roman}\n",
            "xx.yaml:5:19: numerals style 'roman' unknown (expected one of: chinese, english)",
        ),
        (BASE + "prompts: {greeting: 42}\n", "xx.yaml:5:21: prompts 'greeting' must be a string"),
        (BASE + "intent_phrases: {agent: 人工}\n", "xx.yaml:5:25: intent_phrases 'agent' must be a list"),
        (
            BASE.replace("rate_wpm: 140", "reads_hanzi: maybe"),
            "xx.yaml:3:32: tts reads_hanzi must be true or false",
        ),
    ],
    ids=lambda v: v.split(": ", 1)[-1][:40] if v.startswith("xx.yaml") else "pack",
)
def test_pack_errors_name_file_line_and_column(tmp_path: pathlib.Path, text: str, problem: str) -> None:
    path = write(tmp_path, "xx", text)
    with pytest.raises(DialectLoadError) as err:
        load_dialect_pack(path)
    assert any(p.startswith(f"{tmp_path}/{problem}") for p in err.value.problems), err.value.problems


def test_all_problems_are_reported_at_once(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "xx", "code: xx\nname: {native: a}\ntts: {voice: 3}\nfallback: []\nextra: 1\n")
    with pytest.raises(DialectLoadError) as err:
        load_dialect_pack(path)
    assert len(err.value.problems) == 3
    assert str(err.value).count(str(path)) == 3


def test_fallback_to_a_missing_pack_and_cycles_are_refused(tmp_path: pathlib.Path) -> None:
    write(tmp_path, "cmn", GOOD.format(code="cmn", fallback="[]"))
    write(tmp_path, "yue", GOOD.format(code="yue", fallback="[cnm]"))
    write(tmp_path, "nan", GOOD.format(code="nan", fallback="[wuu]"))
    write(tmp_path, "wuu", GOOD.format(code="wuu", fallback="[nan]"))
    with pytest.raises(DialectLoadError) as err:
        load_dialects(tmp_path)
    text = str(err.value)
    assert f"{tmp_path}/yue.yaml:4:12: fallback 'cnm' is not a loaded dialect (did you mean 'cmn'?)" in text
    assert f"{tmp_path}/nan.yaml:4:12: fallback cycle: nan → wuu → ... → nan" in text


def test_default_dialect_must_have_a_pack(tmp_path: pathlib.Path) -> None:
    write(tmp_path, "yue", GOOD.format(code="yue", fallback="[]"))
    with pytest.raises(DialectLoadError, match="default dialect 'cmn' has no pack"):
        load_dialects(tmp_path)


def test_an_empty_folder_is_an_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(DialectLoadError, match="no dialect packs"):
        load_dialects(tmp_path)


def test_without_voices_turns_packs_into_recordings_only(dialects: DialectSet) -> None:
    reduced = dialects.without_voices({"hak"})
    assert reduced["hak"].tts is None
    assert reduced["yue"].tts == dialects["yue"].tts
