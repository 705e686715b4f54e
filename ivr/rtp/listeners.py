"""Who hears a session: audio consumers, key listeners, key streams and recordings.

Subscribers are plain callables; a broken audio consumer is logged and dropped so it cannot break the
call's media. Waiters (key streams, recordings) register a wake-up that runs when the session closes.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

import numpy as np
import structlog
from numpy.typing import NDArray

from ivr.clock import Clock
from ivr.rtp.events import DtmfReceived
from ivr.rtp.inbound import InboundStream

AudioConsumer = Callable[[NDArray[np.int16]], None]
DtmfListener = Callable[[DtmfReceived], None]
FRAME_S = 0.02


def _no_inbound() -> InboundStream | None:
    return None


class Listeners:
    def __init__(
        self,
        clock: Clock,
        logger: structlog.typing.FilteringBoundLogger,
        inbound: Callable[[], InboundStream | None],
    ) -> None:
        self._clock = clock
        self._log = logger
        self._inbound = inbound
        """The stream to tell whether anyone consumes audio (it decodes only then)."""
        self.consumers: list[AudioConsumer] = []
        self._dtmf: list[DtmfListener] = []
        self._closers: list[Callable[[], object]] = []
        self.closed = False

    def add_audio_consumer(self, consumer: AudioConsumer) -> Callable[[], None]:
        self.consumers.append(consumer)
        self._want_audio()
        return lambda: self.remove_audio_consumer(consumer)

    def remove_audio_consumer(self, consumer: AudioConsumer) -> None:
        if consumer in self.consumers:
            self.consumers.remove(consumer)
        self._want_audio()

    def _want_audio(self) -> None:
        inbound = self._inbound()
        if inbound is not None:
            inbound.set_want_audio(bool(self.consumers))

    def deliver(self, frames: list[NDArray[np.int16]]) -> None:
        for consumer in tuple(self.consumers):
            for frame in frames:
                try:
                    consumer(frame)
                except Exception:  # a broken subscriber must not break the call's media
                    self._log.exception("audio_consumer_failed")
                    self.remove_audio_consumer(consumer)
                    break

    def on_dtmf(self, listener: DtmfListener) -> Callable[[], None]:
        self._dtmf.append(listener)
        return lambda: self._dtmf.remove(listener) if listener in self._dtmf else None

    def emit_dtmf(self, event: DtmfReceived) -> None:
        self._log.info("dtmf_received", digit=event.digit, source=event.source.value)
        for listener in tuple(self._dtmf):
            listener(event)

    def on_close(self, wake: Callable[[], object]) -> Callable[[], None]:
        """Run `wake` when the session closes; returns the undo."""
        self._closers.append(wake)
        return lambda: self._closers.remove(wake) if wake in self._closers else None

    def close(self) -> None:
        """The session closes: wake who waits for it, then hear nobody any more (the listeners are closures
        over their owners and over the session: dropped, they are freed by reference counting, issue 22)."""
        self.closed = True
        for wake in tuple(self._closers):
            wake()
        self._closers.clear()
        self._dtmf.clear()
        self.consumers.clear()
        self._inbound = _no_inbound

    async def record(self, max_s: float, silence_s: float, silence_dbfs: float) -> NDArray[np.int16]:
        """Received audio until `silence_s` of continuous silence or `max_s` in all (8 kHz int16)."""
        frames: list[NDArray[np.int16]] = []
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        threshold = (32768.0 * 10.0 ** (silence_dbfs / 20.0)) ** 2
        quiet_needed = max(1, math.ceil(silence_s / FRAME_S))
        max_frames = max(1, math.ceil(max_s / FRAME_S))
        quiet = 0

        def collect(frame: NDArray[np.int16]) -> None:
            nonlocal quiet
            frames.append(frame)
            quiet = quiet + 1 if float(np.mean(frame.astype(np.float64) ** 2)) < threshold else 0
            if (quiet >= quiet_needed or len(frames) >= max_frames) and not done.done():
                done.set_result(None)

        def wake() -> None:
            if not done.done():
                done.set_result(None)

        unsubscribe = self.add_audio_consumer(collect)
        forget = self.on_close(wake)
        try:
            async with self._clock.timeout(max_s):
                await done
        except TimeoutError:
            pass
        finally:
            unsubscribe()
            forget()
        return np.concatenate(frames)[: max_frames * 160] if frames else np.zeros(0, dtype=np.int16)


class DtmfStream:
    """An async iterator over a session's keys (see `MediaSession.dtmf_events`); `aclose()` to stop.

    Subscribes at once (not at the first `anext`), so no key between the two is missed; it ends when
    the session closes.
    """

    def __init__(self, listeners: Listeners) -> None:
        self._listeners = listeners
        self._queue: asyncio.Queue[DtmfReceived | None] = asyncio.Queue()
        self._unsubscribe = listeners.on_dtmf(self._queue.put_nowait)
        self._forget = listeners.on_close(lambda: self._queue.put_nowait(None))

    def __aiter__(self) -> DtmfStream:
        return self

    async def __anext__(self) -> DtmfReceived:
        event = await self._queue.get() if not self._listeners.closed or not self._queue.empty() else None
        if event is None:
            await self.aclose()
            raise StopAsyncIteration
        return event

    async def aclose(self) -> None:
        self._unsubscribe()
        self._forget()
