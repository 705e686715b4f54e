"""Which numbers a callback may dial, and how often (issue 15: no toll fraud through callbacks). Pure.

A callback makes the hotline place a call and bridge an agent to it: if the number came from a spoofed
`From` (`sip:+88216...@`), the hotline pays for a premium-rate call. So, before the ACD is asked:

* the number must match one of the allowed patterns (by default mainland China mobiles and landlines in
  national format; `+86`/`0086` prefixes are folded to it) — international and premium numbers are not;
* the caller confirms it by keys after hearing it read back (`readback`, `confirmation`): 1 yes, 2 no,
  always (a number `verified` by a trusted trunk, ivr.sip.identity, may still not be the one to call);
* at most `per_number_per_day` callbacks to one number and `per_day` in all, per calendar day (the
  caller's day is passed in, as every time here: `day` is a `datetime.date` from the engine's wall clock).

    policy = CallbackPolicy(CallbackRules())
    verdict = policy.check(number, day)          # CallbackVerdict.ALLOWED or why not
    policy.readback("13800138000")               # "138 0013 8000" for the prompt
    policy.confirmation("1")                     # Confirmation.YES
    policy.record(number, day)                   # once the ACD took the callback
"""

from __future__ import annotations

import datetime
import enum
import re
from collections import Counter
from dataclasses import dataclass

MAINLAND_NUMBERS = (r"1[3-9]\d{9}", r"0[1-9]\d{9,10}")
"""Mainland mobiles (11 digits from 13x to 19x) and landlines with their area code (0 + 10-11 digits)."""


@dataclass(slots=True, frozen=True)
class CallbackRules:
    allowed: tuple[str, ...] = MAINLAND_NUMBERS
    """Regular expressions a whole national number must match."""
    per_number_per_day: int = 3
    per_day: int = 1000
    country_prefixes: tuple[str, ...] = ("+86", "0086")
    """Prefixes folded away before matching (a caller may give the number in international form)."""

    def __post_init__(self) -> None:
        for pattern in self.allowed:
            re.compile(pattern)
        if self.per_number_per_day < 1 or self.per_day < 1:
            raise ValueError("callback limits must be at least 1")


class CallbackVerdict(enum.Enum):
    ALLOWED = "allowed"
    NOT_ALLOWED = "not_allowed"
    """The number matches no allowed pattern (international, premium, short codes, garbage)."""
    NUMBER_LIMIT = "number_limit"
    DAILY_LIMIT = "daily_limit"


class Confirmation(enum.Enum):
    YES = "yes"
    NO = "no"
    UNCLEAR = "unclear"


class CallbackPolicy:
    """The rules plus today's counts (forgotten when the day changes: bounded memory)."""

    __slots__ = ("rules", "_patterns", "_day", "_per_number", "_total")

    def __init__(self, rules: CallbackRules | None = None) -> None:
        self.rules = rules = rules or CallbackRules()
        self._patterns = tuple(re.compile(p) for p in rules.allowed)
        self._day: datetime.date | None = None
        self._per_number: Counter[str] = Counter()
        self._total = 0

    def normalize(self, number: str) -> str:
        """The national form of `number` (separators and a country prefix removed)."""
        text = re.sub(r"[-.() ]", "", number)
        for prefix in self.rules.country_prefixes:
            if text.startswith(prefix):
                rest = text[len(prefix):]
                # mobiles have no trunk prefix 0; Beijing's area code 10 starts with 1 too
                return rest if re.fullmatch(r"1[3-9]\d{9}", rest) else "0" + rest
        return text

    def check(self, number: str, day: datetime.date) -> CallbackVerdict:
        """May a callback to `number` be taken today? (Counts nothing: `record` does.)"""
        national = self.normalize(number)
        if not any(p.fullmatch(national) for p in self._patterns):
            return CallbackVerdict.NOT_ALLOWED
        self._roll(day)
        if self._total >= self.rules.per_day:
            return CallbackVerdict.DAILY_LIMIT
        if self._per_number[national] >= self.rules.per_number_per_day:
            return CallbackVerdict.NUMBER_LIMIT
        return CallbackVerdict.ALLOWED

    def record(self, number: str, day: datetime.date) -> None:
        self._roll(day)
        self._per_number[self.normalize(number)] += 1
        self._total += 1

    @staticmethod
    def readback(number: str) -> str:
        """Digits grouped as people say them: mobiles 3-4-4, others in fours from the right."""
        digits = re.sub(r"\D", "", number)
        if len(digits) == 11 and digits.startswith("1"):
            return f"{digits[:3]} {digits[3:7]} {digits[7:]}"
        groups: list[str] = []
        while digits:
            groups.insert(0, digits[-4:])
            digits = digits[:-4]
        return " ".join(groups)

    @staticmethod
    def confirmation(keys: str) -> Confirmation:
        """The caller's answer to "press 1 if this is right, 2 to enter another number"."""
        keys = keys.strip().rstrip("#")
        return {"1": Confirmation.YES, "2": Confirmation.NO}.get(keys, Confirmation.UNCLEAR)

    def _roll(self, day: datetime.date) -> None:
        if day != self._day:
            self._day = day
            self._per_number.clear()
            self._total = 0
