"""A session's media failure: reported once, to listeners and to awaiting tasks.

The session keeps running after it (its sender keeps its place on the media clock): ending the call
(BYE with a Reason, the record saying why) is the call layer's decision, taken on this signal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ivr.rtp.errors import MediaStateError
from ivr.rtp.events import MediaFailed

FailureListener = Callable[[MediaFailed], None]


class FailureSignal:
    def __init__(self) -> None:
        self.event: MediaFailed | None = None
        self._listeners: list[FailureListener] = []
        self._waiters: set[asyncio.Future[MediaFailed]] = set()

    def on_failed(self, listener: FailureListener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def fail(self, event: MediaFailed) -> bool:
        """Report `event`, unless a failure was reported already; True when this one was."""
        if self.event is not None:
            return False
        self.event = event
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(event)
        for listener in tuple(self._listeners):
            listener(event)
        return True

    def close(self, error: MediaStateError) -> None:
        """The session closed without failing: waiters get `error`."""
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(error)

    async def wait(self) -> MediaFailed:
        if self.event is not None:
            return self.event
        waiter: asyncio.Future[MediaFailed] = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            return await waiter
        finally:
            self._waiters.discard(waiter)
