"""How far behind real time the process's decoders run, pure: audio handed over and audio decoded, with the time.

A contact centre whose recognizers fall behind should not make every caller wait for them: past a bound, a
caller who starts speaking is served another way (the flow's keys, or a human), and the callers whose speech is
already being decoded keep their place. `DecodeBacklog` keeps, per utterance in the pool (a ticket), when its
oldest audio not yet decoded was handed over (or when it asked for a recognizer it has not got yet); its lag is
the oldest of those ages. `admit(now)` says whether a new utterance may still be decoded.

Why a lag and not a count of callers: one 3 s utterance costs ~0.12 s of one core (bench/RESULTS.md "speech_load",
where a speaking caller's CPU goes), so how many callers a host can take depends on what else the cores do (media
first: the decoder processes run niced, `ivr.speech.hosts.DECODER_NICE`). How long audio waits is what a caller
feels, measured where it happens, whatever the cause.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

__all__ = ["MAX_LAG_S", "DecodeBacklog"]

MAX_LAG_S = 2.0
"""Lag past which a new utterance is not decoded. A streaming caller's decision comes a few tens of milliseconds
after they stop (bench/RESULTS.md); 2 s behind means a caller who starts now would wait seconds after speaking,
and `ivr.engine.turn.DECODE_TIMEOUT_S` (8 s) would turn the wait into a silence that asks them again."""


@dataclass(slots=True)
class DecodeBacklog:
    """The pool's utterances and how long each one's oldest undecoded audio has waited."""

    max_lag_s: float = MAX_LAG_S
    shed: int = 0
    """Utterances refused so far (for /metrics)."""
    _since: dict[int, float | None] = field(default_factory=dict)
    """Per ticket: since when it has waited for the decoders (None: nothing due)."""
    _tickets: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        if self.max_lag_s <= 0:
            raise ValueError(f"max_lag_s must be > 0, got {self.max_lag_s}")

    def __len__(self) -> int:
        return len(self._since)

    def open(self, now: float) -> int:
        """An utterance asks for a recognizer at `now`: it waits from now until its audio is decoded."""
        ticket = next(self._tickets)
        self._since[ticket] = now
        return ticket

    def handed(self, ticket: int, now: float) -> None:
        """A decode job became due at `now` (a ticket already waiting keeps its earlier time)."""
        if ticket in self._since and self._since[ticket] is None:
            self._since[ticket] = now

    def caught_up(self, ticket: int) -> None:
        """Nothing of the ticket is due any more (decoded, dropped or failed): it waits again from its next `handed`."""
        if ticket in self._since:
            self._since[ticket] = None

    def close(self, ticket: int) -> None:
        self._since.pop(ticket, None)

    def lag_s(self, now: float) -> float:
        """The longest wait for the decoders of any utterance now (0 when they are caught up)."""
        waiting = [since for since in self._since.values() if since is not None]
        return max(0.0, now - min(waiting)) if waiting else 0.0

    def admit(self, now: float) -> bool:
        """Whether an utterance starting at `now` may be decoded; a refusal is counted in `shed`."""
        if self.lag_s(now) <= self.max_lag_s:
            return True
        self.shed += 1
        return False
