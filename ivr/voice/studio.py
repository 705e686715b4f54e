"""The prompt-recording line's back end: who may record, what each dialect still needs, and saving a take.

Ops staff phone the line (a flow with a `record_prompts` node), key their PIN, pick a dialect pack and one
of its prompts still to record, and record it. An accepted take is written as the pack's recording,
`prompts/<code>/<prompt-id>.wav` (to a temporary name, then renamed: a caller never hears half a file),
and handed to the running `PromptLibrary`, so the very next caller of that dialect hears it (a recording
beats TTS and fallbacks). PINs are never stored: the config holds salted scrypt hashes (`hash_pin`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ivr.media.wav import write_wav
from ivr.voice.dialects import DialectSet
from ivr.voice.errors import VoiceError
from ivr.voice.flowprompts import FlowPrompts
from ivr.voice.newpack import prompts_to_record
from ivr.voice.render import PromptLibrary

__all__ = ["PIN_SCHEME", "PromptStudio", "check_pin", "hash_pin"]

PIN_SCHEME = "scrypt"
_N, _R, _P = 2**14, 8, 1
"""scrypt cost (RFC 7914's interactive-login figures): ~20 ms a guess, so a 6-digit PIN's hash read from
a leaked config is not brute-forced in seconds the way a bare SHA-256 of it would be."""
MIN_PIN_DIGITS = 4
MAX_PIN_DIGITS = 12


def _digest(pin: str, salt: bytes) -> bytes:
    return hashlib.scrypt(pin.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)


def hash_pin(pin: str) -> str:
    """`scrypt$<salt hex>$<hash hex>` for a PIN of 4 to 12 digits (for `prompt_line_pins`)."""
    if not (pin.isascii() and pin.isdigit() and MIN_PIN_DIGITS <= len(pin) <= MAX_PIN_DIGITS):
        raise VoiceError(f"a PIN is {MIN_PIN_DIGITS} to {MAX_PIN_DIGITS} digits (keys 0-9)")
    salt = secrets.token_bytes(16)
    return f"{PIN_SCHEME}${salt.hex()}${_digest(pin, salt).hex()}"


def check_pin(pin: str, hashes: Sequence[str]) -> bool:
    """Whether `pin` matches one of `hashes` (each checked in constant time; malformed ones never match)."""
    ok = False
    for entry in hashes:
        scheme, _, rest = entry.partition("$")
        salt_hex, _, hash_hex = rest.partition("$")
        try:
            salt, expected = bytes.fromhex(salt_hex), bytes.fromhex(hash_hex)
        except ValueError:
            continue
        if scheme == PIN_SCHEME and salt and expected:
            ok |= hmac.compare_digest(_digest(pin, salt), expected)
    return ok


class PromptStudio:
    """What the recording line reads and writes; blocking methods (the flow runs them in a thread)."""

    def __init__(
        self,
        dialects: DialectSet,
        prompts_dir: Path,
        flows: Callable[[], Sequence[FlowPrompts]],
        pin_hashes: Sequence[str],
        library: PromptLibrary | None = None,
    ) -> None:
        """`flows`: the flows in service now (what they need recorded); `library`: told of each new take."""
        self._dialects = dialects
        self._prompts_dir = prompts_dir
        self._flows = flows
        self._pins = tuple(pin_hashes)
        self._library = library

    def check_pin(self, pin: str) -> bool:
        return bool(self._pins) and check_pin(pin, self._pins)

    def dialect_codes(self) -> list[str]:
        """The packs, in a stable order (the line reads them out as 1, 2, 3...)."""
        return sorted(self._dialects)

    def to_record(self, dialect: str) -> list[tuple[str, str]]:
        """(prompt id, text to say) the flows need and `prompts/<dialect>/` has no recording of."""
        if dialect not in self._dialects:
            raise VoiceError(f"no dialect pack {dialect!r}")
        return list(prompts_to_record(dialect, self._dialects, self._prompts_dir, tuple(self._flows())))

    def save(self, dialect: str, prompt_id: str, audio: NDArray[np.int16]) -> Path:
        """Write the take as the pack's recording of `prompt_id` and serve it from now on."""
        if dialect not in self._dialects:
            raise VoiceError(f"no dialect pack {dialect!r}")
        if not prompt_id or "/" in prompt_id or prompt_id.startswith("."):
            raise VoiceError(f"bad prompt id {prompt_id!r}")
        folder = self._prompts_dir / dialect
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{prompt_id}.wav"
        partial = folder / f".{prompt_id}.wav.part"
        write_wav(partial, audio)
        os.replace(partial, path)
        if self._library is not None:
            self._library.add_recording(dialect, prompt_id, path, audio)
        return path
