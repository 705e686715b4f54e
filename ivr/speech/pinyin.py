"""How Mandarin characters sound, folded so that what recognisers and regional speakers confuse meets.

An ASR that mishears Mandarin writes a character that *sounds* like the right one (里赔 for 理赔, 投述 for
投诉). Comparing sounds instead of characters makes such slips harmless: toneless pinyin (pypinyin's
commonest reading per character), with the initials and finals southern and elderly speakers merge
folded together: zh/z, ch/c, sh/s, n/l, -ing/-in, -eng/-en, -ang/-an.
"""

from __future__ import annotations

import functools

__all__ = ["char_sound", "sounds"]

_FUZZY_INITIALS = (("zh", "z"), ("ch", "c"), ("sh", "s"))
_FUZZY_FINALS = (("ing", "in"), ("eng", "en"), ("ang", "an"))


def _fuzzy(syllable: str) -> str:
    for a, b in _FUZZY_INITIALS:
        if syllable.startswith(a):
            syllable = b + syllable[len(a) :]
            break
    if syllable.startswith("n"):
        syllable = "l" + syllable[1:]
    for a, b in _FUZZY_FINALS:
        if syllable.endswith(a):
            return syllable[: -len(a)] + b
    return syllable


@functools.lru_cache(maxsize=8192)
def char_sound(char: str) -> str:
    """One character's commonest reading, folded. Per character, not per word: an ASR's wrong
    character has no word context either, and a cached lookup keeps classify well under a ms."""
    from pypinyin import lazy_pinyin

    return _fuzzy(lazy_pinyin(char)[0])


def sounds(word: str) -> list[str]:
    """The folded sound of each character of a CJK run (homophones share it)."""
    return [char_sound(c) for c in word]
