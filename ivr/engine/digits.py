"""Digit collection timing, pure: keys in, a `DigitsInput` out, time passed in.

The transports only report digits (RFC 4733, SIP INFO, in-band); how many to take, which key ends
the entry and how long to wait between keys is decided here, once, for every source.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ivr.call import DigitsInput


@dataclass(slots=True)
class DigitCollector:
    """Collects up to `max_digits` keys; ends on the terminator, the length, or the inter-digit timeout."""

    max_digits: int
    min_digits: int = 1
    terminator: str = "#"
    inter_digit_timeout_s: float = 3.0
    digits: str = ""
    result: DigitsInput | None = None
    _last_key_at: float | None = field(default=None)

    def key(self, digit: str, now: float) -> DigitsInput | None:
        """Take one key; return the finished input when this key ends collection."""
        if self.result is not None:
            return self.result
        if digit == self.terminator and self.terminator and self.max_digits > 1:
            self.result = DigitsInput(self.digits, terminated=True)
            return self.result
        self.digits += digit
        self._last_key_at = now
        if len(self.digits) >= self.max_digits:
            self.result = DigitsInput(self.digits)
        return self.result

    @property
    def started(self) -> bool:
        return bool(self.digits)

    def next_deadline(self) -> float | None:
        if self.result is not None or self._last_key_at is None:
            return None
        return self._last_key_at + self.inter_digit_timeout_s

    def handle_timer(self, now: float) -> DigitsInput | None:
        """At the inter-digit deadline the keys so far are the answer (the node validates length)."""
        deadline = self.next_deadline()
        if deadline is not None and now >= deadline:
            self.result = DigitsInput(self.digits)
        return self.result
