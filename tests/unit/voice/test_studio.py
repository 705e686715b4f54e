"""The prompt-recording line's back end: PIN hashes, what a dialect still needs, and a kept take served at once."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
from voice_fakes import FakeEngine

from ivr.call import Prompt
from ivr.media.tones import tone
from ivr.voice import DialectSet, PromptLibrary, PromptSource, RenderCache, VoiceError
from ivr.voice.audio import load_prompt_audio
from ivr.voice.flowprompts import FlowPrompts
from ivr.voice.studio import PromptStudio, check_pin, hash_pin

FLOW = FlowPrompts("mini", None, ("cmn", "yue"), {"greeting": {"cmn": "您好", "yue": "你好"}, "bye": {"cmn": "再见"}})


def test_a_pin_hash_is_salted_and_checks_only_its_pin() -> None:
    first, second = hash_pin("2468"), hash_pin("2468")
    assert first != second and first.startswith("scrypt$")
    assert check_pin("2468", [first]) and check_pin("2468", ["scrypt$zz$zz", second])
    assert not check_pin("2469", [first, second])
    assert not check_pin("2468", ["sha256$00$00", "garbage", ""])


@pytest.mark.parametrize("pin", ["123", "1234567890123", "12a4", "", "１２３４"])
def test_a_pin_is_four_to_twelve_ascii_digits(pin: str) -> None:
    with pytest.raises(VoiceError, match="4 to 12 digits"):
        hash_pin(pin)


def test_no_configured_pin_refuses_every_pin(dialects: DialectSet, prompts_dir: pathlib.Path) -> None:
    studio = PromptStudio(dialects, prompts_dir, lambda: [FLOW], ())
    assert not studio.check_pin("2468")


def test_a_kept_take_is_the_packs_recording_and_the_next_caller_hears_it(
    dialects: DialectSet, engine: FakeEngine, tmp_path: pathlib.Path, prompts_dir: pathlib.Path
) -> None:
    with PromptLibrary(dialects, engine, RenderCache(tmp_path / "cache"), prompts_dir) as library:
        library.build([FLOW])
        studio = PromptStudio(dialects, prompts_dir, lambda: [FLOW], [hash_pin("2468")], library)
        assert studio.check_pin("2468")
        assert [p for p, _ in studio.to_record("yue")] == ["greeting", "bye"]
        assert library.resolve(Prompt("greeting", "你好", "yue")).source is PromptSource.SYNTHESIZED
        take = tone((1000.0,), 1.0)
        path = studio.save("yue", "greeting", take)
        assert path == prompts_dir / "yue" / "greeting.wav" and not list(path.parent.glob(".*part"))
        assert np.array_equal(load_prompt_audio(path), take)
        resolution = library.resolve(Prompt("greeting", "你好", "yue"))
        assert resolution.source is PromptSource.RECORDED and resolution.recording == path
        assert [p for p, _ in studio.to_record("yue")] == ["bye"]


@pytest.mark.parametrize(
    ("dialect", "prompt_id"), [("xx", "greeting"), ("yue", "../x"), ("yue", ".hidden"), ("yue", "")]
)
def test_save_refuses_unknown_dialects_and_odd_ids(
    dialects: DialectSet, prompts_dir: pathlib.Path, dialect: str, prompt_id: str
) -> None:
    studio = PromptStudio(dialects, prompts_dir, lambda: [FLOW], ())
    with pytest.raises(VoiceError):
        studio.save(dialect, prompt_id, np.zeros(800, dtype=np.int16))
