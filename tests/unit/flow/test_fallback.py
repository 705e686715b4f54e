"""The one dialect fallback walk, shared by the interpreter, the validator and the prompt layer."""

from __future__ import annotations

import pytest

from ivr.fallback import fallback_chain
from ivr.flow.model import DEFAULT_FALLBACKS

PACKS = {"cmn": (), "en": (), "nan": ("hak", "cmn"), "hak": ("yue",), "yue": ("cmn",), "loop": ("loop2",),
         "loop2": ("loop",)}


@pytest.mark.parametrize(
    ("code", "fallbacks", "expected"),
    [
        ("nan", DEFAULT_FALLBACKS, ("nan", "cmn")),
        ("en", DEFAULT_FALLBACKS, ("en",)),
        ("nan", PACKS, ("nan", "hak", "yue", "cmn")),
        ("loop", PACKS, ("loop", "loop2")),
        ("xx", PACKS, ("xx", "cmn")),
        ("xx", {}, ("xx", "cmn")),
    ],
    ids=["one-step", "none", "depth-first-each-once", "cycle", "unknown-to-default", "no-packs"],
)
def test_fallback_chain(code: str, fallbacks: dict[str, tuple[str, ...]], expected: tuple[str, ...]) -> None:
    assert fallback_chain(code, fallbacks, "cmn") == expected


def test_the_voice_layer_and_the_flows_walk_alike() -> None:
    from ivr.voice.dialects import DialectPack, DialectSet

    packs = DialectSet({c: DialectPack(c, c, c, None, fallback=f) for c, f in PACKS.items()}, "cmn")
    assert {c: packs.chain(c) for c in PACKS} == {c: fallback_chain(c, PACKS, "cmn") for c in PACKS}
    assert packs.chain("xx") == ("xx", "cmn")
