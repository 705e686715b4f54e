"""`ivr dialects new`: a recordings-only pack with its fallback chain and the prompts still to record."""

from __future__ import annotations

import pathlib
import shutil

import pytest

from ivr.voice import FlowPrompts, load_dialects
from ivr.voice.errors import VoiceError
from ivr.voice.newpack import DialectExistsError, new_dialect_pack, run_new

ROOT = pathlib.Path(__file__).resolve().parents[3]
FLOW = FlowPrompts(
    "hotline", None, ("cmn",),
    {"greeting": {"cmn": "您好", "en": "Hello"}, "goodbye": {"cmn": "再见"}, "busy": {"en": "All lines are busy"}},
)


@pytest.fixture
def site(tmp_path: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    dialects = tmp_path / "dialects"
    shutil.copytree(ROOT / "dialects", dialects)
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    return dialects, prompts


def test_new_pack_loads_falls_back_to_its_parent_and_lists_every_prompt(
    site: tuple[pathlib.Path, pathlib.Path],
) -> None:
    dialects, prompts = site
    pack = new_dialect_pack("cdo", "wuu", dialects, prompts, (FLOW,), name_native="閩東話", name_cmn="闽东话")
    assert pack.chain == ("cdo", "wuu", "cmn")
    loaded = load_dialects(dialects)
    assert loaded["cdo"].tts is None and loaded["cdo"].name_native == "閩東話"
    # the nearest text along the chain: wuu's pack text for greeting, the flow's cmn text for goodbye...
    said = dict(pack.to_record)
    assert said["greeting"] == loaded["wuu"].prompts["greeting"]
    assert said["busy"] == "All lines are busy"  # ...and a prompt only the default's chain lacks still listed
    assert set(said) == {"greeting", "goodbye", "busy"}
    assert (prompts / "cdo").is_dir()
    assert "#   goodbye:" in pack.path.read_text(encoding="utf-8")


def test_recorded_prompts_are_not_listed_again(site: tuple[pathlib.Path, pathlib.Path]) -> None:
    dialects, prompts = site
    (prompts / "cdo").mkdir()
    (prompts / "cdo" / "greeting.wav").write_bytes(b"RIFF")
    pack = new_dialect_pack("cdo", "cmn", dialects, prompts, (FLOW,))
    assert [p for p, _ in pack.to_record] == ["goodbye", "busy"]


def test_an_existing_pack_is_never_overwritten(site: tuple[pathlib.Path, pathlib.Path]) -> None:
    dialects, prompts = site
    before = (dialects / "wuu.yaml").read_text(encoding="utf-8")
    with pytest.raises(DialectExistsError):
        new_dialect_pack("wuu", "cmn", dialects, prompts, (FLOW,))
    assert (dialects / "wuu.yaml").read_text(encoding="utf-8") == before


@pytest.mark.parametrize(("code", "parent", "message"), [("Bad!", "cmn", "dialect code"), ("cdo", "zzz", "--from")])
def test_bad_code_or_parent_is_refused_and_nothing_written(
    site: tuple[pathlib.Path, pathlib.Path], code: str, parent: str, message: str
) -> None:
    dialects, prompts = site
    with pytest.raises(VoiceError, match=message):
        new_dialect_pack(code, parent, dialects, prompts, (FLOW,))
    assert not (dialects / f"{code}.yaml").exists()


def test_run_new_prints_chain_and_to_record(site: tuple[pathlib.Path, pathlib.Path]) -> None:
    dialects, prompts = site
    out: list[str] = []
    assert run_new("cdo", "cmn", ROOT, dialects, prompts, load_flows=lambda _: (FLOW,), out=out.append) == 0
    assert "fallback chain: cdo → cmn" in out
    assert any(line.startswith("  goodbye: 再见") for line in out)
    errors: list[str] = []
    assert run_new("cdo", "cmn", ROOT, dialects, prompts, load_flows=lambda _: (FLOW,), err=errors.append) == 1
    assert "exists already" in errors[0]
