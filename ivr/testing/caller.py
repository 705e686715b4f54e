"""A simulated caller over real SIP and RTP: it dials, listens, speaks, presses keys and hangs up.

Testers use it through `ivr call`, scenarios and load runs; the integration tests use it to drive
the engine over the wire. It can call any SIP endpoint, not just ours. What it hears is recorded
and cut into prompt segments (audio above the silence floor), so a timeline can say when the IVR
spoke, and a script can wait for the IVR to finish talking before answering, as a person does.
"""

from __future__ import annotations

import asyncio
import enum
import pathlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import structlog
from numpy.typing import NDArray

from ivr.call import CallEnded
from ivr.clock import Clock, LoopClock
from ivr.media import dtmf_sequence, load_telephony
from ivr.rtp import DtmfReceived, MediaEngine, MediaParams, MediaScheduler, MediaSession
from ivr.sip.events import ByeReceived, ReferReceived, ReinviteReceived
from ivr.sip.sdp import SessionDescription, make_offer, negotiated_codec
from ivr.sip.transport import SipTransport
from ivr.sipua.calls import CallFailed
from ivr.sipua.leg import CallLeg
from ivr.sipua.useragent import UserAgent
from ivr.testing.voices import speak

log = structlog.get_logger(__name__)

SPEECH_FLOOR_DBFS = -45.0
"""Frames louder than this are the far end talking (comfort silence and quiet MOH gaps are below)."""
PROMPT_GAP_S = 0.8
"""Silence that separates two prompts, and that tells the caller the IVR has finished talking."""
CALLER_MAX_BURST = 50
"""Overdue media ticks a test caller still sends after its own loop stalled (1 s; the engine's clock skips past 5).
A skipped tick moves the RTP timestamp on while the clip resumes where it stopped, so the engine inserts silence
inside the caller's words: a stalled load generator punched the same hole in every talking caller at once and
the engine was blamed for not understanding them (issue 22). Sent late, the words arrive whole."""


class DtmfMethod(enum.Enum):
    RFC4733 = "rfc4733"
    INFO = "info"
    INBAND = "inband"


@dataclass(slots=True, frozen=True)
class Say:
    text: str
    language: str | None = None


@dataclass(slots=True, frozen=True)
class PlayFile:
    path: pathlib.Path


@dataclass(slots=True, frozen=True)
class Keys:
    digits: str
    method: DtmfMethod = DtmfMethod.RFC4733


@dataclass(slots=True, frozen=True)
class Pause:
    seconds: float


@dataclass(slots=True, frozen=True)
class AwaitPrompt:
    """Wait until the IVR has spoken and then fallen silent for `quiet_s` (bounded by `timeout_s`)."""

    timeout_s: float = 30.0
    quiet_s: float = PROMPT_GAP_S
    """Silence that counts as the end of the IVR's turn (longer rides over pauses between prompts)."""


Step = Say | PlayFile | Keys | Pause | AwaitPrompt


@dataclass(slots=True, frozen=True)
class TimelineEntry:
    at_s: float
    """Seconds since the INVITE was sent."""
    what: str
    detail: str = ""


@dataclass(slots=True)
class CallReport:
    uri: str
    call_id: str = ""
    answered: bool = False
    status: int = 0
    """Final SIP status of the INVITE (200 when answered)."""
    setup_s: float | None = None
    """INVITE sent → 200 OK received."""
    hangup_by: str = ""
    """`caller` (us), `far_end`, or `` when the call never connected."""
    timeline: list[TimelineEntry] = field(default_factory=list)
    heard: NDArray[np.int16] = field(default_factory=lambda: np.zeros(0, dtype=np.int16))
    digits_heard: str = ""
    packets_received: int = 0
    packets_lost: int = 0
    jitter_ms: float = 0.0

    def prompts_heard(self) -> list[tuple[float, float]]:
        """(start_s, end_s) of each stretch of far-end audio, from the recording."""
        return audio_segments(self.heard)


def audio_segments(audio: NDArray[np.int16], rate_hz: int = 8000) -> list[tuple[float, float]]:
    frame = rate_hz // 50
    count = len(audio) // frame
    if count == 0:
        return []
    frames = audio[: count * frame].astype(np.float64).reshape(count, frame)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    loud = rms > 32768.0 * 10 ** (SPEECH_FLOOR_DBFS / 20)
    segments: list[tuple[float, float]] = []
    start: int | None = None
    quiet = 0
    gap = int(PROMPT_GAP_S * 50)
    for i, is_loud in enumerate(loud):
        if is_loud:
            start = i if start is None else start
            quiet = 0
        elif start is not None:
            quiet += 1
            if quiet >= gap:
                segments.append((start / 50, (i - quiet + 1) / 50))
                start, quiet = None, 0
    if start is not None:
        segments.append((start / 50, (count - quiet) / 50))
    return segments


class _Ear:
    """Tracks whether the far end is talking; when recording, also keeps everything the caller hears."""

    def __init__(self, clock: Clock, *, record: bool = True) -> None:
        self.frames: list[NDArray[np.int16]] = []
        self.loud_at: float | None = None
        self._record = record
        self._clock = clock
        self._sound = asyncio.Event()
        """Set by a loud frame while `until_quiet` waits for the far end to start talking (only then: a
        wake-up per loud frame per call was a third of the load generator's listening cost, issue 22)."""
        self._awaiting_sound = False
        self._floor = (32768.0 * 10 ** (SPEECH_FLOOR_DBFS / 20)) ** 2

    def __call__(self, frame: NDArray[np.int16]) -> None:
        if self._record:
            self.frames.append(frame)
        wide = frame.astype(np.int64)
        if float(wide @ wide) > self._floor * len(frame):  # mean power above the floor, without a temporary
            self.loud_at = self._clock.now()
            if self._awaiting_sound:
                self._sound.set()

    async def until_quiet(self, after: float, timeout_s: float, quiet_s: float = PROMPT_GAP_S) -> bool:
        """After `after`, wait for far-end audio, then for `quiet_s` of quiet; False on timeout."""
        clock = self._clock
        deadline = clock.now() + timeout_s
        while True:
            now = clock.now()
            loud_at = self.loud_at
            if loud_at is not None and loud_at >= after:  # the far end has talked since `after`
                if now - loud_at >= quiet_s:
                    return True
                if now >= deadline:
                    return False
                # Talking, or quiet for less than quiet_s: look again when quiet_s after the last loud frame has
                # passed (a timer, not a wake-up per frame); a loud frame meanwhile moves that moment on.
                await clock.sleep_until(max(now + 0.001, min(loud_at + quiet_s, deadline)))
                continue
            if now >= deadline:
                return False
            self._sound.clear()
            self._awaiting_sound = True
            try:
                async with clock.timeout_at(deadline):
                    await self._sound.wait()
            except TimeoutError:
                pass
            finally:
                self._awaiting_sound = False

    def audio(self) -> NDArray[np.int16]:
        return np.concatenate(self.frames) if self.frames else np.zeros(0, dtype=np.int16)


class TestCaller:
    """Places calls from its own UDP port and RTP ports on `host`.

    With `record` (the default) each call's report keeps what the caller heard (`CallReport.heard`, and
    `audio_heard` stretches on the timeline). Without it (load runs, which read neither) the caller analyses
    the far end's audio only while a step waits for the IVR to finish talking: from the last such step on it
    decodes nothing, while still reading every packet and keeping the RFC 3550 reception statistics.
    """

    __test__ = False  # not a pytest class

    def __init__(self, ua: UserAgent, media: MediaEngine, clock: Clock, *, host: str = "127.0.0.1",
                 record: bool = True) -> None:
        self.ua = ua
        self.media = media
        self.clock = clock
        self.host = host
        self.record = record

    @classmethod
    async def open(cls, host: str = "127.0.0.1", *, rtp_ports: tuple[int, int] = (40000, 49998),
                   record: bool = True) -> TestCaller:
        # Bound to this loop: an unbound LoopClock asks which loop runs on every read, a getpid system call, and a
        # load caller reads its clock on every packet it hears (~0.5 % of the load generator's CPU by strace, issue 22).
        clock = LoopClock(asyncio.get_running_loop())
        transport = await SipTransport.open(host, 0)
        ua = UserAgent(transport, clock, user="caller", user_agent="ivr-test-caller")
        media = MediaEngine(host=host, port_first=rtp_ports[0], port_last=rtp_ports[1],
                            scheduler=MediaScheduler(clock, max_burst=CALLER_MAX_BURST))
        return cls(ua, media, clock, host=host, record=record)

    async def close(self) -> None:
        await self.ua.close()
        await self.ua.transport.close()
        self.media.close()

    async def call(
        self,
        uri: str,
        steps: Sequence[Step],
        *,
        from_number: str = "13800000000",
        linger_s: float = 3.0,
        max_duration_s: float = 120.0,
    ) -> CallReport:
        """Dial `uri`, run `steps`, listen `linger_s` more, hang up; never longer than `max_duration_s`."""
        report = CallReport(uri=uri)
        started = self.clock.now()

        def note(what: str, detail: str = "") -> None:
            report.timeline.append(TimelineEntry(round(self.clock.now() - started, 3), what, detail))

        session = await self.media.open_session(call_id=f"caller-{secrets.token_hex(4)}")
        ear = _Ear(self.clock, record=self.record)
        last_wait = max((i for i, step in enumerate(steps) if isinstance(step, AwaitPrompt)), default=-1)
        stop_hearing = session.add_audio_consumer(ear) if self.record or last_wait >= 0 else _nothing
        digits: list[str] = []
        session.on_dtmf(lambda event: digits.append(event.digit))
        try:
            # A caller that signals keys in-band behaves like a trunk without telephone-event.
            inband = any(isinstance(step, Keys) and step.method is DtmfMethod.INBAND for step in steps)
            offer = make_offer(local_address=self.host, local_port=session.local_port,
                               session_id=secrets.randbelow(2**31), dtmf_payload_type=None if inband else 101)
            outgoing = self.ua.invite(uri, offer.serialize(), from_user=from_number)
            report.call_id = outgoing.call_id
            note("invite_sent", uri)
            try:
                async with asyncio.timeout(32):
                    leg = await outgoing.answered()
            except CallFailed as exc:
                report.status = exc.status
                note("call_failed", f"{exc.status} {exc.reason}")
                return report
            except TimeoutError:
                await outgoing.cancel()
                report.status = 408
                note("call_failed", "no answer within 32 s")
                return report
            report.answered, report.status = True, 200
            report.setup_s = round(self.clock.now() - started, 4)
            note("answered")
            remote = negotiated_codec(SessionDescription.parse(leg.remote_sdp))
            session.start(MediaParams(remote=(remote.remote_address, remote.remote_port),
                                      payload_type=remote.payload_type,
                                      telephone_event_pt=remote.dtmf_payload_type))
            watcher = asyncio.create_task(self._watch(leg, note, report))
            try:
                async with asyncio.timeout(max_duration_s):
                    await self._run(steps, leg, session, ear, note, started,
                                    after_last_wait=(last_wait, _nothing if self.record else stop_hearing))
                    await self._linger(leg, linger_s)
            except (CallEnded, TimeoutError):
                pass
            finally:
                watcher.cancel()
            if not leg.ended:
                report.hangup_by = "caller"
                note("hangup", "by caller")
                await leg.bye()
            return report
        finally:
            inbound = session.inbound
            if inbound is not None:
                stats = getattr(inbound, "stats", None)
                report.packets_received = int(getattr(stats, "received", 0) or 0)
                report.packets_lost = int(getattr(stats, "lost", 0) or 0)
                # RFC 3550 interarrival jitter is kept in timestamp units: 8 per ms at 8 kHz.
                report.jitter_ms = round(float(getattr(stats, "jitter", 0.0) or 0.0) / 8.0, 3)
            report.heard = ear.audio()
            report.digits_heard = "".join(digits)
            for begin, end in report.prompts_heard():
                report.timeline.append(TimelineEntry(begin, "audio_heard", f"{begin:.2f}-{end:.2f} s"))
            report.timeline.sort(key=lambda entry: entry.at_s)
            self.media.release(session)

    async def _watch(self, leg: CallLeg, note: _Note, report: CallReport) -> None:
        try:
            while True:
                event = await leg.next_event()
                if isinstance(event, ByeReceived):
                    report.hangup_by = "far_end"
                    note("hangup", "by far end")
                elif isinstance(event, ReinviteReceived):
                    note("reinvite", "hold" if event.held else "resume")
                elif isinstance(event, ReferReceived):
                    note("refer", event.refer_to)
        except CallEnded:
            if not report.hangup_by:
                report.hangup_by = "far_end"

    async def _run(
        self, steps: Sequence[Step], leg: CallLeg, session: MediaSession, ear: _Ear, note: _Note, started: float,
        *, after_last_wait: tuple[int, Callable[[], None]] = (-1, lambda: None),
    ) -> None:
        """Run the steps; after step `after_last_wait[0]` (the last that waits for the IVR), call its callback."""
        listened_from = started
        last_wait, done_listening = after_last_wait
        for index, step in enumerate(steps):
            if leg.ended:
                raise CallEnded("far end hung up")
            if isinstance(step, AwaitPrompt):
                heard = await ear.until_quiet(listened_from, step.timeout_s, step.quiet_s)
                note("prompt_ended" if heard else "prompt_wait_timeout")
                if index == last_wait:
                    done_listening()
            elif isinstance(step, Say):
                note("say", step.text)
                await session.play(speak(step.text, step.language))
            elif isinstance(step, PlayFile):
                note("play", str(step.path))
                await session.play(load_telephony(step.path))
            elif isinstance(step, Keys):
                note("keys", f"{step.digits} ({step.method.value})")
                await self._press(step, leg, session)
            elif isinstance(step, Pause):
                await asyncio.sleep(step.seconds)
            listened_from = self.clock.now()

    async def _press(self, step: Keys, leg: CallLeg, session: MediaSession) -> None:
        if step.method is DtmfMethod.INBAND:
            await session.play(dtmf_sequence(step.digits))
            return
        for digit in step.digits:
            if step.method is DtmfMethod.INFO:
                await leg.send_dtmf(digit)
            else:
                await session.send_dtmf(digit)
            await asyncio.sleep(0.1)  # inter-digit gap on the wire, as a keypad makes

    async def _linger(self, leg: CallLeg, linger_s: float) -> None:
        try:
            async with asyncio.timeout(linger_s):
                await leg.wait_ended()
        except TimeoutError:
            pass


def _nothing() -> None:
    pass


class _Note(Protocol):
    def __call__(self, what: str, detail: str = "") -> None: ...


__all__ = [
    "AwaitPrompt", "CallReport", "DtmfMethod", "DtmfReceived", "Keys", "Pause", "PlayFile", "Say", "Step",
    "TestCaller", "TimelineEntry", "audio_segments",
]
