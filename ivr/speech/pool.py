"""Decoding off the event loop: a bounded worker pool shared by every call.

Recognizers are blocking calls. `DecodePool` owns a fixed-size `ThreadPoolExecutor`: Vosk's Kaldi
releases the GIL, so threads decode calls in parallel; PocketSphinx holds it, so it decodes in
decoder processes (`ivr.speech.hosts`) and a thread only waits on the pipe. Each call gets a
`DecodeSession`:

* `feed(frame)` never blocks the caller: frames are buffered and drained by at most one job at a
  time per call, so a call's audio is decoded in order and a burst becomes one batched job; a
  session opened with `batch_samples` (the engine's streaming callers: `STREAM_BATCH_SAMPLES`) waits
  for that much audio before starting a job, so a talking caller costs a few jobs a second, not fifty
  (each job is a worker-thread hop and a round trip to a decoder process);
* different calls' jobs interleave in the pool's FIFO queue, so no call waits for another call's
  whole utterance, only for a free worker;
* `finish()` waits for the call's buffered audio, then reads the final result; after `settle()` (the caller
  paused, and an engine that decodes whole utterances decoded what it had) with no audio since, it returns the
  result `settle` brought back, without a job on the pool: ten callers who end together each wait for their own
  decode, not in the FIFO behind the others' (bench/RESULTS.md, whisperfast).

The pool also keeps a `DecodeBacklog` (`ivr.speech.backlog`): how long the utterance waiting longest for the
decoders (for a recognizer, or for a due decode job) has waited. `admit(now)` refuses a new utterance once that
lag passes `max_lag_s`: under overload the callers being decoded keep their place and a caller who starts
speaking then is answered another way (the flow's keys or a human), instead of every caller waiting longer.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import structlog

from ivr.clock import Clock, LoopClock
from ivr.speech.backlog import MAX_LAG_S, DecodeBacklog
from ivr.speech.errors import RecognizerError
from ivr.speech.models import SpeechModels
from ivr.speech.recognizer import EngineKind, RecognitionResult, Recognizer

__all__ = ["STREAM_BATCH_SAMPLES", "DecodePool", "DecodeSession"]

log = structlog.get_logger(__name__)

T = TypeVar("T")

STREAM_BATCH_SAMPLES = 1600
"""Audio (0.2 s at 8 kHz) a streaming session gathers before a decode job: ten 20 ms frames per round
trip to the decoder process instead of one. What is left at the end of an utterance is decoded by
`finish` (at most 0.2 s of audio, a few milliseconds), so the verdict comes as early as before."""


class DecodePool:
    """A bounded pool of decode workers shared by all calls of the process."""

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        max_recognizers: int | None = None,
        max_lag_s: float = MAX_LAG_S,
        clock: Clock | None = None,
    ) -> None:
        self._size = max_workers or max(2, os.cpu_count() or 2)
        self.backlog = DecodeBacklog(max_lag_s)
        """How far behind the decoders run; `admit` refuses new utterances past `max_lag_s`."""
        self._clock = clock or LoopClock()
        self._executor = ThreadPoolExecutor(max_workers=self._size, thread_name_prefix="decode")
        self._max_recognizers = max_recognizers
        """Recognizers open at once per dialect (None: unbounded). Past it, an utterance waits for
        one to come back: under overload latency grows, memory does not."""
        self._open: dict[str, asyncio.Semaphore] = {}
        self._lent: dict[str, int] = {}
        """Recognizers of each dialect out on loan now."""

    @property
    def size(self) -> int:
        return self._size

    def now(self) -> float:
        return self._clock.now()

    def lag_s(self, now: float) -> float:
        """The longest any utterance has now waited for the decoders (0: they are caught up)."""
        return self.backlog.lag_s(now)

    def admit(self, now: float) -> bool:
        """Whether an utterance that starts at `now` is decoded (False: the decoders are too far behind)."""
        return self.backlog.admit(now)

    def can_stream(self, dialects: Sequence[str]) -> bool:
        """Whether a caller who starts talking now may hold recognizers of `dialects` while they talk.

        Streaming hides decode time behind the caller's speech, but holds a recognizer for seconds
        instead of the ~0.1 s a finished utterance takes; so the last `batch_reserve` places of each
        dialect are kept for finished utterances, and under overload callers fall back to those.
        """
        if self._max_recognizers is None:
            return True
        free_needed = self.batch_reserve + 1
        return all(self._max_recognizers - self._lent.get(d, 0) >= free_needed for d in dialects)

    @property
    def batch_reserve(self) -> int:
        """Places per dialect that streaming leaves free for decoding finished utterances."""
        return 0 if self._max_recognizers is None else max(1, self._max_recognizers // 8)

    async def run(self, fn: Callable[[], T]) -> T:
        """Run one blocking function on a worker."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def session(self, recognizer: Recognizer) -> DecodeSession:
        """A per-call session over an existing recognizer."""
        return DecodeSession(self, recognizer)

    async def open_session(
        self, models: SpeechModels, dialect: str, *, closed: bool = False, batch_samples: int = 0,
        counted: bool = False,
    ) -> DecodeSession:
        """Open a recognizer for `dialect` on a worker (decoder creation is slow) and wrap it;
        waits while `max_recognizers` of the dialect are open. `closed`: for a turn whose phrases are its whole
        answer set (`SpeechModels.open`: the dialect's answers engine, if it has one). `batch_samples`: see
        `DecodeSession`.

        `counted`: a caller is waiting on this decode in a turn (the ears' utterances), so how long it waits counts
        in the backlog `admit` reads. A voice message's transcript is not counted: decoded in one job, a minute of
        audio keeps a decoder busy for seconds however idle the cores are, which is work, not lag."""
        if models.spec(dialect, closed=closed).engine is EngineKind.VOSK:
            # Vosk decodes in this process (no round trip to a decoder process to save), and its online
            # features depend on how the audio is chunked: a Korean test need fell under the act threshold
            # when fed in 0.2 s batches. Batching stays for the engines in decoder processes (PocketSphinx, where it
            # was measured; Whisper, which only gathers the audio until the utterance is decoded whole).
            batch_samples = 0
        limit = None
        ticket = self.backlog.open(self.now()) if counted else None  # waiting for a recognizer counts too
        try:
            if self._max_recognizers is not None:
                limit = self._open.setdefault(dialect, asyncio.Semaphore(self._max_recognizers))
                await limit.acquire()
            self._lent[dialect] = self._lent.get(dialect, 0) + 1
            try:
                recognizer = await self.run(lambda: models.open(dialect, closed=closed))
            except BaseException:
                self._returned(dialect)
                raise
        except BaseException:
            if ticket is not None:
                self.backlog.close(ticket)
            raise
        if ticket is not None:
            self.backlog.caught_up(ticket)  # it has its recognizer; it waits again once audio is due
        return DecodeSession(
            self, recognizer, release=self._releasing(models.release, dialect), batch_samples=batch_samples,
            ticket=ticket,
        )

    def _releasing(
        self, release: Callable[[Recognizer], None], dialect: str
    ) -> Callable[[Recognizer], None]:
        """`release`, then a free place for the next utterance (called on a worker thread)."""
        loop = asyncio.get_running_loop()

        def give_back(recognizer: Recognizer) -> None:
            try:
                release(recognizer)
            finally:
                loop.call_soon_threadsafe(self._returned, dialect)

        return give_back

    def _returned(self, dialect: str) -> None:
        self._lent[dialect] -= 1
        limit = self._open.get(dialect)
        if limit is not None:
            limit.release()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def __aenter__(self) -> DecodePool:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.close)


class DecodeSession:
    """One call's ordered access to its recognizer through the shared pool."""

    def __init__(
        self,
        pool: DecodePool,
        recognizer: Recognizer,
        *,
        release: Callable[[Recognizer], None] | None = None,
        batch_samples: int = 0,
        ticket: int | None = None,
    ) -> None:
        self._pool = pool
        self._ticket = ticket
        """This session's place in the pool's backlog (None: not counted, a session over a recognizer of its own).
        It waits from when a decode job is due (a whole batch buffered, or the end of the utterance) until the
        session has nothing due: a session that never catches up waits ever longer; audio held back to fill a
        batch is waiting for the caller, not for the decoders, and does not count."""
        self._recognizer = recognizer
        self._release = release
        self._batch_samples = batch_samples
        """Buffered audio that starts a decode job (0: every frame does); `_flush` takes any remainder."""
        self._pending: list[npt.NDArray[np.int16]] = []
        self._pending_samples = 0
        self._lock = asyncio.Lock()
        self._drain: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        self._closed = False
        self._heard = 0
        """Frames fed so far (a decode at the pause stands for the utterance only if none came during it)."""
        self._settled: RecognitionResult | None = None
        """The final result the recognizer gave at the caller's pause (`settle`) while no audio has been fed since:
        what its `finish` would return, so `finish` returns it without asking."""
        self._owes_finish = False
        """`finish` answered from `_settled`: the recognizer's own `finish` (which then only ends its utterance: the
        same decode) runs at the head of the session's next job, off the caller's path."""

    @property
    def recognizer(self) -> Recognizer:
        return self._recognizer

    @property
    def language(self) -> str:
        return self._recognizer.language

    def feed(self, frame: npt.NDArray[np.int16]) -> None:
        """Queue call audio for decoding; returns at once."""
        if self._closed:
            raise RecognizerError(f"decode session for {self.language!r} is closed")
        self._heard += 1
        self._settled = None
        self._pending.append(frame)
        self._pending_samples += int(frame.shape[0])
        if self._pending_samples < self._batch_samples:
            return
        self._due()
        if self._drain is None or self._drain.done():
            self._drain = asyncio.get_running_loop().create_task(self._drain_pending(), name="decode-drain")

    async def wait_decoded(self) -> None:
        """Return once every frame fed so far has been decoded (raises what decoding raised)."""
        await self._flush()

    async def set_phrases(self, phrases: Sequence[str]) -> None:
        """Bias the next utterance (building a grammar or LM can take milliseconds: done on a worker)."""
        await self._ordered(lambda: self._recognizer.set_phrases(phrases))

    async def partial(self) -> RecognitionResult:
        await self._flush()
        return await self._ordered(self._recognizer.partial)

    async def settle(self) -> None:
        """The caller paused: decode what was fed so far now (`Recognizer.settle`), ahead of `finish`; the result
        is kept for `finish` unless audio is fed meanwhile."""
        await self._flush()
        heard = self._heard
        async with self._lock:
            result = await self._pool.run(self._after_owed_finish(self._recognizer.settle))
            if self._heard == heard:
                self._settled = result

    async def finish(self) -> RecognitionResult:
        """Decode everything fed so far and end the utterance. After a `settle` with no audio since, that decode is
        the answer (waiting only for the session's own jobs, e.g. a `settle` still decoding)."""
        await self._flush()
        async with self._lock:
            settled, self._settled = self._settled, None
            if settled is not None:
                self._owes_finish = True
                return settled
            return await self._pool.run(self._after_owed_finish(self._recognizer.finish))

    async def acoustic_state(self) -> str | None:
        return await self._ordered(self._recognizer.acoustic_state)

    async def restore_acoustic_state(self, state: str | None) -> None:
        await self._ordered(lambda: self._recognizer.restore_acoustic_state(state))

    async def reset(self) -> None:
        """Drop buffered audio and the current utterance."""
        self._pending.clear()
        self._pending_samples = 0
        self._settled = None
        self._caught_up()
        await self._ordered(self._recognizer.reset)

    async def aclose(self) -> None:
        """Release the recognizer (back to the models' free list when it came from one)."""
        if self._closed:
            return
        self._closed = True
        self._pending.clear()
        self._pending_samples = 0
        if self._ticket is not None:
            self._pool.backlog.close(self._ticket)
            self._ticket = None
        if self._drain is not None and not self._drain.done():
            await asyncio.shield(self._drain)
        release = self._release
        rec = self._recognizer
        if release is not None:
            await self._ordered(lambda: release(rec))
        else:
            await self._ordered(rec.close)

    async def _drain_pending(self, *, last: bool = False) -> None:
        """Decode what is buffered; a batching session in whole `batch_samples` chunks counted from the
        utterance's first sample, keeping the rest for the next job unless it is the `last` one. PocketSphinx's
        live cepstral mean makes a decode depend on how its audio is chunked: so a decode does not depend on
        when jobs ran (a burst after a slow job, the held start of an utterance), and a bench feeding audio
        faster than real time decodes as a live call does."""
        step = self._batch_samples
        while self._pending_samples >= max(1, step) or (last and self._pending):
            audio = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
            take = len(audio) if last or not step else len(audio) - len(audio) % step
            self._pending = [audio[take:]] if take < len(audio) else []
            self._pending_samples = len(audio) - take
            chunks = [audio[k : k + step] for k in range(0, take, step)] if step else [audio]
            try:
                await self._ordered(functools.partial(self._accept_all, chunks))
            except RecognizerError as exc:
                self._failure = exc
                log.warning("decode_failed", language=self.language, error=str(exc))
                self._caught_up()  # nothing more of it will be decoded: no longer waiting
                return
        self._caught_up()

    def _due(self) -> None:
        """A decode job is due: from now (unless already waiting) the session waits for the decoders."""
        if self._ticket is not None:
            self._pool.backlog.handed(self._ticket, self._pool.now())

    def _caught_up(self) -> None:
        """Nothing is due any more (decoded, dropped or failed): the session no longer waits."""
        if self._ticket is not None:
            self._pool.backlog.caught_up(self._ticket)

    def _accept_all(self, chunks: list[npt.NDArray[np.int16]]) -> None:
        for chunk in chunks:
            self._recognizer.accept(chunk)

    async def _flush(self) -> None:
        if self._drain is not None:
            await asyncio.shield(self._drain)
        if self._pending:
            self._due()
            await self._drain_pending(last=True)
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise RecognizerError(f"recognizer for {self.language!r} failed: {failure}") from failure

    async def _ordered(self, fn: Callable[[], T]) -> T:
        async with self._lock:
            return await self._pool.run(self._after_owed_finish(fn))

    def _after_owed_finish(self, fn: Callable[[], T]) -> Callable[[], T]:
        """`fn`, preceded by the recognizer's `finish` when the session answered one from `settle` (call it with the
        session's lock held: the job is the session's next)."""
        if not self._owes_finish:
            return fn
        self._owes_finish = False
        recognizer, language = self._recognizer, self.language

        def finished_then() -> T:
            try:
                recognizer.finish()  # the result was delivered already; this only ends the utterance
            except RecognizerError as exc:
                log.warning("decode_end_failed", language=language, error=str(exc))
            return fn()

        return finished_then
