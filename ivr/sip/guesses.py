"""Password-guess throttling for the registrar: at most `limit` wrong answers per `window_s` per key.

A key is a source address or a username. Once a key has `limit` failures inside the window, answers
under that key are not checked at all until the oldest failure leaves the window: a guesser learns
nothing more, however fast it sends. Memory is bounded (`max_keys`, least recently failed forgotten
first), so a spray of addresses or names cannot grow it.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class GuessLimits:
    limit: int = 10
    """Wrong answers allowed per key per window."""
    window_s: float = 60.0
    max_keys: int = 10_000


class GuessThrottle:
    """Sliding windows of failure times, one per key."""

    __slots__ = ("limits", "_failures")

    def __init__(self, limits: GuessLimits = GuessLimits()) -> None:
        self.limits = limits
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failures)

    def blocked(self, key: str, now: float) -> bool:
        """True while `key` has used up its wrong answers for the window."""
        times = self._failures.get(key)
        if times is None:
            return False
        self._trim(times, now)
        if not times:
            del self._failures[key]
            return False
        return len(times) >= self.limits.limit

    def failed(self, key: str, now: float) -> None:
        times = self._failures.pop(key, None)
        if times is None:
            times = deque(maxlen=self.limits.limit)
        self._trim(times, now)
        times.append(now)
        self._failures[key] = times
        while len(self._failures) > self.limits.max_keys:
            self._failures.popitem(last=False)

    def _trim(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self.limits.window_s:
            times.popleft()
