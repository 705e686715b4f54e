"""`ivr dialects new CODE --from PARENT`: start a dialect pack that callers can be served in at once.

A new dialect has no TTS voice (espeak-ng speaks few of the 42), so the pack is recordings-only:
every prompt falls back along the chain (CODE → PARENT → ...) until someone records it as
`prompts/CODE/<prompt-id>.wav`. The pack lists, as YAML comments, every prompt the flows still need
recorded with the parent's text to say, and `ivr prompts check` shows its coverage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ivr.voice.dialects import _CODE_RE, DialectSet, load_dialects
from ivr.voice.errors import VoiceError
from ivr.voice.flowprompts import FlowPrompts

__all__ = ["DialectExistsError", "NewPack", "new_dialect_pack", "prompts_to_record", "run_new"]


class DialectExistsError(VoiceError):
    """The pack to create is already there (never overwritten)."""


@dataclass(slots=True, frozen=True)
class NewPack:
    path: Path
    chain: tuple[str, ...]
    """The new dialect, then the dialects that stand in for it."""
    to_record: tuple[tuple[str, str], ...]
    """(prompt id, the text to say, in the nearest dialect of the chain that has it)."""


def prompts_to_record(
    code: str, dialects: DialectSet, prompts_dir: Path, flows: tuple[FlowPrompts, ...]
) -> tuple[tuple[str, str], ...]:
    """Every prompt of the flows that `prompts/<code>/` has no recording of, with the text to say."""
    chain = dialects.chain(code)
    found: dict[str, str] = {}
    for flow in flows:
        for prompt_id, by_dialect in flow.texts.items():
            if prompt_id in found or (prompts_dir / code / f"{prompt_id}.wav").is_file():
                continue
            pack_texts = [dialects[c].prompts.get(prompt_id) for c in chain if c in dialects]
            flow_texts = [by_dialect.get(c) for c in chain]
            text = next((t for t in (*pack_texts, *flow_texts, *by_dialect.values()) if t), "")
            found[prompt_id] = text
    return tuple(found.items())


def new_dialect_pack(
    code: str,
    parent: str,
    dialects_dir: Path,
    prompts_dir: Path,
    flows: tuple[FlowPrompts, ...],
    *,
    name_native: str | None = None,
    name_cmn: str | None = None,
) -> NewPack:
    """Write `dialects_dir/<code>.yaml` (recordings-only, falling back to `parent`) and `prompts/<code>/`."""
    if not _CODE_RE.match(code):
        raise VoiceError(f"dialect code {code!r}: use 2-3 lower-case letters, optionally -subtags (e.g. cdo, hsn)")
    existing = load_dialects(dialects_dir)
    if parent not in existing:
        raise VoiceError(f"--from {parent!r}: no such dialect pack in {dialects_dir} (have {', '.join(existing)})")
    path = dialects_dir / f"{code}.yaml"
    if path.exists() or code in existing:
        raise DialectExistsError(f"{path}: the dialect pack exists already (nothing written)")
    body = "\n".join(
        [
            f"# {name_cmn or code}: made by `ivr dialects new {code} --from {parent}`. No TTS voice: callers hear the",
            f"# recordings in prompts/{code}/ where they exist and {parent} (then its fallbacks) elsewhere.",
            f"code: {code}",
            "name:",
            f"  native: {_quoted(name_native or code)}",
            f"  cmn: {_quoted(name_cmn or code)}",
            "tts: null",
            f"fallback: [{parent}]",
            "numerals:",
            f"  style: {existing[parent].numerals.style.value}",
            "prompts: {}             # what each recording in prompts/" + code + "/ says, once recorded",
            "intent_phrases: {}",
            "asr_model: null",
            "",
        ]
    )
    path.write_text(body, encoding="utf-8")
    try:
        dialects = load_dialects(dialects_dir)  # the new pack must load with the others
    except VoiceError:
        path.unlink()
        raise
    to_record = prompts_to_record(code, dialects, prompts_dir, flows)
    listing = [f"# Still to record ({len(to_record)}), as prompts/{code}/<id>.wav, 8 kHz mono — the text to say:"]
    listing += [f"#   {prompt_id}: {text}" for prompt_id, text in to_record]
    path.write_text(body + "\n".join(listing) + "\n", encoding="utf-8")
    (prompts_dir / code).mkdir(parents=True, exist_ok=True)
    return NewPack(path, dialects.chain(code), to_record)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def run_new(
    code: str,
    parent: str,
    flows_dir: Path,
    dialects_dir: Path,
    prompts_dir: Path,
    *,
    load_flows: Callable[[Path], tuple[FlowPrompts, ...]],
    name_native: str | None = None,
    name_cmn: str | None = None,
    out: Callable[[str], None] = print,
    err: Callable[[str], None] = print,
) -> int:
    """`ivr dialects new`: 0 written, 1 refused (the message says why)."""
    try:
        pack = new_dialect_pack(code, parent, dialects_dir, prompts_dir, load_flows(flows_dir),
                                name_native=name_native, name_cmn=name_cmn)
    except VoiceError as exc:
        err(f"ivr dialects new: {exc}")
        return 1
    out(f"wrote {pack.path}")
    out(f"fallback chain: {' → '.join(pack.chain)}")
    out(f"recordings go in {prompts_dir / code}/<prompt-id>.wav; {len(pack.to_record)} still to record:")
    for prompt_id, text in pack.to_record:
        out(f"  {prompt_id}: {text}")
    out(f"Callers hear {code} once a flow lists it under `dialects:`; `ivr prompts check` shows its coverage.")
    return 0
