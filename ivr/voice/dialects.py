"""Dialect packs: `dialects/<code>.yaml`, validated at load with `path:line:col: message` errors.

A pack names its dialect (in itself and in Mandarin), its TTS voice and rate (or none: recordings
only), its fallback chain, prompt texts that override or add to the flows' texts, extra intent
phrases and an optional ASR model path. Turned into frozen dataclasses here, once; nothing past
this module touches raw YAML.

```yaml
code: nan
name: {native: 閩南話, cmn: 闽南话}
tts: null                      # or {voice: yue, rate_wpm: 140, reads_hanzi: true}
fallback: [cmn]
numerals: {style: chinese, digit_one: 一, words: {一: yit}}
prompts: {greeting: "..."}
intent_phrases: {agent: [...]}
asr_model: null
```
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import yaml

from ivr.fallback import fallback_chain
from ivr.voice.errors import DialectLoadError
from ivr.voice.speak import Numerals, NumeralStyle

_CODE_RE = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{2,8})*$")
_NULL = "tag:yaml.org,2002:null"
_INT = "tag:yaml.org,2002:int"
_BOOL = "tag:yaml.org,2002:bool"
_STR = "tag:yaml.org,2002:str"
_HANZI_RE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def has_hanzi(text: str) -> bool:
    """True when the text holds Chinese characters (which romanisation-only voices cannot read)."""
    return _HANZI_RE.search(text) is not None


@dataclass(slots=True, frozen=True)
class TtsSettings:
    voice: str
    """espeak-ng voice name, as `espeak-ng --voices` lists it (`cmn-latn-pinyin`, `yue`, `en-us`)."""
    rate_wpm: int = 150
    reads_hanzi: bool = True
    """False for voices that only read romanisation (espeak-ng's Hakka reads Pha̍k-fa-sṳ, not 漢字)."""
    where: str = ""
    """`path:line:col` of the voice in its pack, for messages about it."""


@dataclass(slots=True, frozen=True)
class DialectPack:
    code: str
    name_native: str
    name_cmn: str
    tts: TtsSettings | None
    fallback: tuple[str, ...] = ()
    numerals: Numerals = field(default_factory=Numerals)
    prompts: Mapping[str, str] = field(default_factory=dict)
    """Texts by prompt id; they override the flows' text for this dialect."""
    intent_phrases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    asr_model: Path | None = None
    source: Path | None = None


class DialectSet(Mapping[str, DialectPack]):
    """The loaded packs by code, with fallback chains resolved."""

    __slots__ = ("_packs", "default")

    def __init__(self, packs: Mapping[str, DialectPack], default: str = "cmn") -> None:
        self._packs = dict(packs)
        self.default = default

    def __getitem__(self, code: str) -> DialectPack:
        return self._packs[code]

    def __iter__(self) -> Iterator[str]:
        return iter(self._packs)

    def __len__(self) -> int:
        return len(self._packs)

    def fallbacks(self) -> dict[str, tuple[str, ...]]:
        """Dialect → the dialects whose text stands in for it, in order: what flows are checked with."""
        return {code: self.chain(code)[1:] for code in self._packs}

    def chain(self, code: str) -> tuple[str, ...]:
        """`code` then its fallbacks, depth first, each once: nan → cmn. Unknown codes fall to the default."""
        return fallback_chain(code, {c: pack.fallback for c, pack in self._packs.items()}, self.default)

    def without_voices(self, missing: set[str]) -> DialectSet:
        """The same packs, those whose TTS voice is in `missing` turned into recordings-only packs."""
        packs = {
            code: replace(pack, tts=None) if pack.tts and pack.tts.voice in missing else pack
            for code, pack in self._packs.items()
        }
        return DialectSet(packs, self.default)


# ---------------------------------------------------------------------------------------------- loader

T = TypeVar("T")


class _Problems:
    """Collects `path:line:col: message` problems while walking one file's nodes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: list[str] = []

    def where(self, node: yaml.Node) -> str:
        mark = node.start_mark
        return f"{self.path}:{mark.line + 1}:{mark.column + 1}"

    def add(self, node: yaml.Node, message: str) -> None:
        self.items.append(f"{self.where(node)}: {message}")


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL


def _mapping(node: yaml.Node, what: str, p: _Problems) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """A mapping node's entries by key (key node kept for its position); problems for anything else."""
    if not isinstance(node, yaml.MappingNode):
        p.add(node, f"{what} must be a mapping")
        return {}
    out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag not in (_STR, _INT):
            p.add(key, f"{what}: keys must be plain strings")
            continue
        if key.value in out:
            p.add(key, f"{what}: duplicate key '{key.value}'")
            continue
        out[key.value] = (key, value)
    return out


def _check_keys(
    entries: Mapping[str, tuple[yaml.Node, yaml.Node]], allowed: tuple[str, ...], what: str, p: _Problems
) -> None:
    for name, (key, _value) in entries.items():
        if name not in allowed:
            close = difflib.get_close_matches(name, allowed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (expected one of: {', '.join(allowed)})"
            p.add(key, f"{what}: unknown key '{name}'{hint}")


def _str(node: yaml.Node, what: str, p: _Problems, *, empty_ok: bool = False) -> str | None:
    if not isinstance(node, yaml.ScalarNode) or node.tag != _STR:
        p.add(node, f"{what} must be a string")
        return None
    if not empty_ok and not node.value.strip():
        p.add(node, f"{what} must not be empty")
        return None
    return str(node.value)


def _int(node: yaml.Node, what: str, lo: int, hi: int, p: _Problems) -> int | None:
    if not isinstance(node, yaml.ScalarNode) or node.tag != _INT:
        p.add(node, f"{what} must be a whole number")
        return None
    value = int(node.value.replace("_", ""), 0)
    if not lo <= value <= hi:
        p.add(node, f"{what} must be between {lo} and {hi}, got {value}")
        return None
    return value


def _bool(node: yaml.Node, what: str, p: _Problems) -> bool | None:
    if not isinstance(node, yaml.ScalarNode) or node.tag != _BOOL:
        p.add(node, f"{what} must be true or false")
        return None
    return node.value.lower() in ("true", "yes", "on", "y")


def _str_list(node: yaml.Node, what: str, p: _Problems) -> list[tuple[yaml.Node, str]]:
    if not isinstance(node, yaml.SequenceNode):
        p.add(node, f"{what} must be a list")
        return []
    return [(item, s) for item in node.value if (s := _str(item, f"{what} item", p)) is not None]


def _str_map(
    node: yaml.Node, what: str, p: _Problems, value: Callable[[yaml.Node, str], T | None]
) -> dict[str, T]:
    out: dict[str, T] = {}
    for name, (_key, child) in _mapping(node, what, p).items():
        got = value(child, f"{what} '{name}'")
        if got is not None:
            out[name] = got
    return out


_TOP_KEYS = ("code", "name", "tts", "fallback", "numerals", "prompts", "intent_phrases", "asr_model")
_REQUIRED = ("code", "name", "tts", "fallback")


def _tts(node: yaml.Node, p: _Problems) -> TtsSettings | None:
    if _is_null(node):
        return None
    entries = _mapping(node, "tts", p)
    _check_keys(entries, ("voice", "rate_wpm", "reads_hanzi"), "tts", p)
    if "voice" not in entries:
        p.add(node, "tts: missing 'voice' (or write `tts: null` for a dialect served from recordings)")
        return None
    voice = _str(entries["voice"][1], "tts voice", p)
    rate = _int(entries["rate_wpm"][1], "tts rate_wpm", 80, 450, p) if "rate_wpm" in entries else 150
    reads = _bool(entries["reads_hanzi"][1], "tts reads_hanzi", p) if "reads_hanzi" in entries else True
    if voice is None or rate is None or reads is None:
        return None
    return TtsSettings(voice, rate, reads, p.where(entries["voice"][1]))


def _numerals(node: yaml.Node, p: _Problems) -> Numerals | None:
    entries = _mapping(node, "numerals", p)
    _check_keys(entries, ("style", "digit_one", "words"), "numerals", p)
    style = NumeralStyle.CHINESE
    if "style" in entries:
        raw = _str(entries["style"][1], "numerals style", p)
        choices = [s.value for s in NumeralStyle]
        if raw is not None and raw not in choices:
            p.add(
                entries["style"][1], f"numerals style '{raw}' unknown (expected one of: {', '.join(choices)})"
            )
            return None
        style = NumeralStyle(raw) if raw else style
    one = _str(entries["digit_one"][1], "numerals digit_one", p) if "digit_one" in entries else "一"
    words = (
        _str_map(entries["words"][1], "numerals words", p, lambda n, w: _str(n, w, p))
        if "words" in entries
        else {}
    )
    return Numerals(style, one, words) if one is not None else None


def _parse_pack(path: Path, root: yaml.Node, p: _Problems) -> DialectPack | None:
    entries = _mapping(root, "dialect pack", p)
    if not entries:
        return None
    _check_keys(entries, _TOP_KEYS, "dialect pack", p)
    for name in _REQUIRED:
        if name not in entries:
            p.add(root, f"missing required key '{name}'")
    if any(name not in entries for name in _REQUIRED):
        return None

    def value(name: str) -> yaml.Node:
        return entries[name][1]

    code = _str(value("code"), "code", p)
    if code is not None and not _CODE_RE.match(code):
        p.add(value("code"), f"code '{code}' is not a dialect code like 'cmn', 'yue' or 'en'")
    elif code is not None and code != path.stem:
        p.add(value("code"), f"code '{code}' does not match the file name (expected '{path.stem}')")
    names = _mapping(value("name"), "name", p)
    _check_keys(names, ("native", "cmn"), "name", p)
    for needed in ("native", "cmn"):
        if needed not in names:
            p.add(value("name"), f"name: missing '{needed}' (the dialect's name in itself and in Mandarin)")
    native = _str(names["native"][1], "name native", p) if "native" in names else None
    cmn_name = _str(names["cmn"][1], "name cmn", p) if "cmn" in names else None
    tts = _tts(value("tts"), p)
    fallback = _str_list(value("fallback"), "fallback", p)
    for node, fb in fallback:
        if fb == code:
            p.add(node, f"fallback: '{fb}' falls back to itself")
    numerals = _numerals(value("numerals"), p) if "numerals" in entries else Numerals()
    prompts = (
        _str_map(value("prompts"), "prompts", p, lambda n, w: _str(n, w, p)) if "prompts" in entries else {}
    )
    phrases = (
        _str_map(
            value("intent_phrases"),
            "intent_phrases",
            p,
            lambda n, w: tuple(s for _n, s in _str_list(n, w, p)),
        )
        if "intent_phrases" in entries
        else {}
    )
    asr_model: Path | None = None
    if "asr_model" in entries and not _is_null(value("asr_model")):
        raw_model = _str(value("asr_model"), "asr_model", p)
        asr_model = Path(raw_model) if raw_model else None
    if code is None or native is None or cmn_name is None or numerals is None or p.items:
        return None
    return DialectPack(
        code=code,
        name_native=native,
        name_cmn=cmn_name,
        tts=tts,
        fallback=tuple(fb for _n, fb in fallback),
        numerals=numerals,
        prompts=prompts,
        intent_phrases=phrases,
        asr_model=asr_model,
        source=path,
    )


def _compose(path: Path, p: _Problems) -> yaml.Node | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        p.items.append(f"{path}:1:1: cannot read dialect pack: {exc}")
        return None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else f"{path}:1:1"
        p.items.append(f"{where}: YAML syntax error: {exc.problem}")
        return None
    if node is None:
        p.items.append(f"{path}:1:1: dialect pack is empty")
    return node


def load_dialect_pack(path: Path) -> DialectPack:
    """One pack; raises `DialectLoadError` listing every problem as `path:line:col: message`."""
    p = _Problems(path)
    node = _compose(path, p)
    pack = _parse_pack(path, node, p) if node is not None else None
    if pack is None or p.items:
        raise DialectLoadError(p.items or [f"{path}:1:1: invalid dialect pack"])
    return pack


def load_dialects(directory: Path, default: str = "cmn") -> DialectSet:
    """Every `*.yaml` pack in `directory`, cross-checked: fallbacks name loaded packs, no cycles."""
    problems: list[str] = []
    packs: dict[str, DialectPack] = {}
    fallback_nodes: dict[str, list[tuple[yaml.Node, str]]] = {}
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise DialectLoadError([f"{directory}: no dialect packs (*.yaml) found"])
    for path in files:
        p = _Problems(path)
        node = _compose(path, p)
        pack = _parse_pack(path, node, p) if node is not None else None
        problems.extend(p.items)
        if pack is not None and node is not None:
            packs[pack.code] = pack
            fallback_nodes[pack.code] = _fallback_nodes(node)
    for code, pack in packs.items():
        p = _Problems(pack.source or directory)
        for node, fb in fallback_nodes[code]:
            if fb not in packs:
                close = difflib.get_close_matches(fb, list(packs), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                p.add(node, f"fallback '{fb}' is not a loaded dialect{hint}")
            elif code in DialectSet(packs, default).chain(fb):
                p.add(node, f"fallback cycle: {code} → {fb} → ... → {code}")
        problems.extend(p.items)
    if default not in packs and packs:
        problems.append(f"{directory}: the default dialect '{default}' has no pack ({default}.yaml)")
    if problems:
        raise DialectLoadError(problems)
    return DialectSet(packs, default)


def _fallback_nodes(root: yaml.Node) -> list[tuple[yaml.Node, str]]:
    if not isinstance(root, yaml.MappingNode):
        return []
    for key, value in root.value:
        if key.value == "fallback" and isinstance(value, yaml.SequenceNode):
            return [(item, str(item.value)) for item in value.value]
    return []
