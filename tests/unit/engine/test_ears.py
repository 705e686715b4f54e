"""The call's ears hear speech however long the prompt before it lasted."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import Sequence

import numpy as np
import pytest

from ivr.call import ListenSpec, SpeechInput
from ivr.clock import FakeClock
from ivr.engine.ears import Ears, EarsEvent, Heard
from ivr.media import load_telephony
from ivr.speech import EngineKind, ModelSpec
from ivr.speech.events import SpeechStarted
from ivr.speech.recognizer import RecognitionResult

SPEECH = pathlib.Path(__file__).resolve().parents[2] / "data" / "speech"


class _Session:
    language = "en"

    def __init__(self, state: str) -> None:
        self.fed = 0
        self.samples = 0
        self.state = state
        self.restored: str | None = None
        self.closed = False
        self.closed_turn = False
        """Opened for a closed turn (`ListenSpec.closed`)."""
        self.audio: list[np.ndarray] = []
        self.settles = 0
        self.finished_after_settles: int | None = None
        self.giving_back: asyncio.Event | None = None
        """When set: reading the acoustic state (the first step of giving the recognizer back) waits for it."""

    def feed(self, frame: np.ndarray) -> None:
        self.fed += 1
        self.samples += len(frame)
        self.audio.append(frame)

    async def set_phrases(self, phrases: Sequence[str]) -> None:
        pass

    async def restore_acoustic_state(self, state: str | None) -> None:
        self.restored = state

    async def acoustic_state(self) -> str:
        if self.giving_back is not None:
            await self.giving_back.wait()
        return self.state

    async def finish(self) -> RecognitionResult:
        self.finished_after_settles = self.settles
        return RecognitionResult("i want to file a claim", 0.8, True, "en")

    async def settle(self) -> None:
        self.settles += 1

    async def reset(self) -> None:
        pass

    async def aclose(self) -> None:
        self.closed = True


class _Pool:
    """Lends a new recognizer per utterance, as the process-wide pool does."""

    def __init__(self, *, spare: bool = False, behind: bool = False) -> None:
        self.lent: list[_Session] = []
        self.spare = spare
        self.behind = behind
        """The decoders are past their lag bound: new utterances are refused."""

    def can_stream(self, dialects: Sequence[str]) -> bool:
        return self.spare

    def admit(self, now: float) -> bool:
        return not self.behind

    def lag_s(self, now: float) -> float:
        return 3.0 if self.behind else 0.0

    async def open_session(self, models: object, dialect: str, *, closed: bool = False, batch_samples: int = 0,
                           counted: bool = False) -> _Session:
        assert counted, "a caller waits on every utterance the ears decode"
        self.lent.append(_Session(state=f"cmn-after-{len(self.lent) + 1}"))
        self.lent[-1].closed_turn = closed
        return self.lent[-1]

    @property
    def session(self) -> _Session:
        return self.lent[-1]


class _Models:
    dialects = ("en",)
    engine = EngineKind.POCKETSPHINX
    answers: EngineKind | None = None

    def spec(self, dialect: str, *, closed: bool = False) -> ModelSpec:
        answers = None if self.answers is None else ModelSpec(dialect, self.answers)
        return ModelSpec(dialect, self.engine, answers=answers).for_turn(closed=closed)


async def test_speech_after_a_prompt_longer_than_the_no_input_timeout_is_heard() -> None:
    clock = FakeClock()
    pool = _Pool()
    ears = Ears(pool, _Models(), clock)  # type: ignore[arg-type]
    events: list[EarsEvent] = []
    assert await ears.start(ListenSpec(languages=("cmn", "en"), no_input_timeout_s=5.0), events.append)
    silence = np.zeros(160, dtype=np.int16)
    for _ in range(14 * 50):  # a 14-second prompt plays; the caller listens quietly
        ears.frame(silence)
        await clock.advance(0.02)
    speech = load_telephony(sorted(SPEECH.glob("*.wav"))[0])
    for start in range(0, len(speech) - 160, 160):
        ears.frame(speech[start : start + 160])
        await clock.advance(0.02)
    assert any(isinstance(e, SpeechStarted) for e in events)
    assert pool.lent == [], "a busy pool lends no recognizer while the caller is still talking"
    for _ in range(60):  # the caller falls silent: the utterance ends and is decoded
        ears.frame(silence)
        await clock.advance(0.02)
    for _ in range(10):
        await asyncio.sleep(0)
    assert pool.session.fed > 0
    assert any(isinstance(e, Heard) for e in events)


async def _say(ears: Ears, clock: FakeClock, *, start_s: float = 0.0, end_s: float | None = None,
               then_silence: bool = True) -> None:
    """The test sentence from `start_s` to `end_s` (its end), then the end-of-speech silence."""
    speech = load_telephony(sorted(SPEECH.glob("*.wav"))[0])
    first = round(start_s * 50) * 160
    last = len(speech) - 160 if end_s is None else round(end_s * 50) * 160
    for start in range(first, last, 160):
        ears.frame(speech[start : start + 160])
        await clock.advance(0.02)
    if not then_silence:
        return
    silence = np.zeros(160, dtype=np.int16)
    for _ in range(60):  # the end-of-speech silence
        ears.frame(silence)
        await clock.advance(0.02)
    for _ in range(10):
        await asyncio.sleep(0)


async def test_recognizers_are_lent_per_utterance_and_the_callers_channel_carries_over() -> None:
    clock = FakeClock()
    pool = _Pool()
    ears = Ears(pool, _Models(), clock)  # type: ignore[arg-type]
    heard: list[EarsEvent] = []
    for _turn in range(2):
        assert await ears.start(ListenSpec(languages=("en",)), heard.append)
        await _say(ears, clock)
        await ears.stop()
    assert [type(e) for e in heard].count(Heard) == 2
    first, second = pool.lent
    assert first.closed and second.closed, "each recognizer went back to the pool after its utterance"
    assert first.restored is None
    assert second.restored == "cmn-after-1", "the second turn starts from what the first learned"


async def test_with_recognizers_to_spare_the_utterance_is_decoded_while_the_caller_talks() -> None:
    clock = FakeClock()
    pool = _Pool(spare=True)
    ears = Ears(pool, _Models(), clock)  # type: ignore[arg-type]
    events: list[EarsEvent] = []
    assert await ears.start(ListenSpec(languages=("en",)), events.append)
    speech = load_telephony(sorted(SPEECH.glob("*.wav"))[0])
    for start in range(0, len(speech) - 160, 160):
        ears.frame(speech[start : start + 160])
        await clock.advance(0.02)
    assert any(isinstance(e, SpeechStarted) for e in events)
    assert len(pool.lent) == 1
    fed_while_talking = pool.session.samples
    assert fed_while_talking > len(speech) - 8000, "audio went to the recognizer as it arrived (0.2 s blocks)"
    silence = np.zeros(160, dtype=np.int16)
    for _ in range(60):
        ears.frame(silence)
        await clock.advance(0.02)
    for _ in range(10):
        await asyncio.sleep(0)
    assert [type(e) for e in events].count(Heard) == 1
    assert pool.session.closed, "the recognizer went back to the pool once the utterance was decided"
    assert len(pool.lent) == 1, "the streaming recognizer decided the utterance; none was borrowed after"


async def test_hanging_up_mid_sentence_gives_the_streaming_recognizer_back() -> None:
    clock = FakeClock()
    pool = _Pool(spare=True)
    ears = Ears(pool, _Models(), clock)  # type: ignore[arg-type]
    assert await ears.start(ListenSpec(languages=("en",)), lambda _e: None)
    speech = load_telephony(sorted(SPEECH.glob("*.wav"))[0])
    for start in range(0, len(speech) // 2, 160):
        ears.frame(speech[start : start + 160])
        await clock.advance(0.02)
    assert len(pool.lent) == 1 and not pool.session.closed
    await ears.aclose()
    assert pool.session.closed


async def test_when_no_recognizer_can_be_had_the_turn_hears_a_no_match_at_once() -> None:
    from ivr.speech.errors import RecognizerError

    class _BrokenPool(_Pool):
        async def open_session(self, models: object, dialect: str, *, closed: bool = False, batch_samples: int = 0,
                               counted: bool = False) -> _Session:
            raise RecognizerError("decoder process ivr-decoder-1 died (exit code -9)")

    clock = FakeClock()
    ears = Ears(_BrokenPool(spare=True), _Models(), clock)  # type: ignore[arg-type]
    events: list[EarsEvent] = []
    assert await ears.start(ListenSpec(languages=("en",)), events.append)
    await _say(ears, clock)
    assert [e for e in events if isinstance(e, Heard)] == [Heard(None)]


async def test_the_recognizer_hears_only_the_first_part_of_the_end_of_speech_pause() -> None:
    clock = FakeClock()
    pool = _Pool()
    ears = Ears(pool, _Models(), clock)  # type: ignore[arg-type]
    heard: list[EarsEvent] = []
    assert await ears.start(ListenSpec(languages=("en",), end_of_speech_s=0.7), heard.append)
    await _say(ears, clock)  # the speech file, then 1.2 s of silence: the utterance ends 0.7 s into it
    speech = load_telephony(sorted(SPEECH.glob("*.wav"))[0])
    assert any(isinstance(e, Heard) for e in heard)
    assert pool.session.samples <= len(speech) + 0.3 * 8000, "0.3 s of the pause, not 0.7 s"


def _active_dbfs(audio: np.ndarray) -> float:
    from ivr.speech.frontend import active_rms

    return 20 * float(np.log10(active_rms(audio.astype(np.float64)) / 32768))


async def _loud_caller_heard(ears: Ears, clock: FakeClock, gain_db: float) -> tuple[list[EarsEvent], np.ndarray]:
    heard: list[EarsEvent] = []
    assert await ears.start(ListenSpec(languages=("en",)), heard.append)
    speech = load_telephony(sorted(SPEECH.glob("*.wav"))[0]).astype(np.float64) * 10 ** (gain_db / 20)
    caller = np.clip(np.round(speech), -32768, 32767).astype(np.int16)
    silence = np.zeros(160, dtype=np.int16)
    for start in range(0, len(caller) - 160, 160):
        ears.frame(caller[start : start + 160])
        await clock.advance(0.02)
    for _ in range(60):
        ears.frame(silence)
        await clock.advance(0.02)
    for _ in range(10):
        await asyncio.sleep(0)
    return heard, caller


@pytest.mark.parametrize("spare", [False, True], ids=["decoded-after", "streaming"])
@pytest.mark.parametrize("gain_db", [-20.0, 12.0], ids=["quiet-caller", "loud-caller"])
async def test_the_recognizer_hears_every_caller_at_the_front_ends_level(gain_db: float, spare: bool) -> None:
    clock = FakeClock()
    pool = _Pool(spare=spare)
    ears = Ears(pool, _Models(), clock)  # type: ignore[arg-type]
    heard, caller = await _loud_caller_heard(ears, clock, gain_db)
    assert any(isinstance(e, Heard) for e in heard)
    fed = np.concatenate(pool.session.audio)
    assert abs(len(fed) - len(caller)) < 0.7 * 8000, "the whole utterance, as endpointed"
    assert ears.front_end.target_dbfs is not None
    assert _active_dbfs(fed) == pytest.approx(ears.front_end.target_dbfs, abs=4.0)


async def test_a_vosk_recognizer_hears_the_caller_as_received() -> None:
    class _VoskModels(_Models):
        def spec(self, dialect: str, *, closed: bool = False) -> ModelSpec:
            return ModelSpec(dialect, EngineKind.VOSK, pathlib.Path("/models/vosk-en"))

    clock = FakeClock()
    pool = _Pool()
    ears = Ears(pool, _VoskModels(), clock)  # type: ignore[arg-type]
    heard, caller = await _loud_caller_heard(ears, clock, -20.0)
    assert any(isinstance(e, Heard) for e in heard)
    fed = np.concatenate(pool.session.audio)
    assert _active_dbfs(fed) == pytest.approx(_active_dbfs(caller), abs=1.0), "no gain for Kaldi's features"


@pytest.mark.parametrize("spare", [False, True], ids=["decoded-after", "streaming"])
async def test_a_caller_who_starts_speaking_while_the_decoders_are_behind_is_shed_not_queued(spare: bool) -> None:
    clock = FakeClock()
    pool = _Pool(spare=spare, behind=True)
    ears = Ears(pool, _Models(), clock)  # type: ignore[arg-type]
    events: list[EarsEvent] = []
    assert await ears.start(ListenSpec(languages=("en", "cmn")), events.append)
    await _say(ears, clock)
    assert pool.lent == [], "no recognizer borrowed, no audio queued behind the others"
    assert [e for e in events if isinstance(e, Heard)] == [Heard(SpeechInput("", 0.0, "en", shed=True))]
    assert any(isinstance(e, SpeechStarted) for e in events), "the turn still knows the caller spoke (barge-in)"


async def test_an_utterance_admitted_before_the_decoders_fell_behind_keeps_its_place() -> None:
    clock = FakeClock()
    pool = _Pool(spare=True)
    ears = Ears(pool, _Models(), clock)  # type: ignore[arg-type]
    events: list[EarsEvent] = []
    assert await ears.start(ListenSpec(languages=("en",)), events.append)
    await _say(ears, clock, end_s=1.0, then_silence=False)
    pool.behind = True  # the cores saturate while this caller talks
    await _say(ears, clock, start_s=1.0)
    heard = [e for e in events if isinstance(e, Heard)]
    assert len(heard) == 1 and heard[0].speech is not None and not heard[0].speech.shed
    assert heard[0].speech.text == "i want to file a claim"
    # The next turn starts while the decoders are still behind: that one is shed.
    await ears.stop()
    assert await ears.start(ListenSpec(languages=("en",)), events.append)
    await _say(ears, clock)
    assert [e for e in events if isinstance(e, Heard)][-1].speech == SpeechInput("", 0.0, "en", shed=True)
    assert len(pool.lent) == 1


class _WhisperModels(_Models):
    engine = EngineKind.WHISPER


class _HybridModels(_Models):
    engine = EngineKind.WHISPER
    answers = EngineKind.POCKETSPHINX


async def test_a_closed_turn_is_heard_by_the_answers_engine_which_keeps_its_own_view_of_the_channel() -> None:
    clock = FakeClock()
    pool = _Pool(spare=True)
    ears = Ears(pool, _HybridModels(), clock)  # type: ignore[arg-type]
    turns = (False, True, False, True)  # the need, the re-ask's answer, a need again, another re-ask's answer
    for closed in turns:
        spec = ListenSpec(languages=("en",), phrases=("claim", "payment") if closed else (), closed=closed)
        assert await ears.start(spec, lambda _e: None)
        assert ears.engine("en") is (EngineKind.POCKETSPHINX if closed else EngineKind.WHISPER)
        assert ears.conditions("en") is closed, "the front end for PocketSphinx only"
        await _say(ears, clock)
        await ears.stop()
    assert [session.closed_turn for session in pool.lent] == list(turns)
    assert [session.settles for session in pool.lent] == [1, 0, 1, 0], "only Whisper is told of the pause"
    assert [session.restored for session in pool.lent] == [None, None, "cmn-after-1", "cmn-after-2"], (
        "each engine resumes from what its own last recognizer learned of the caller")


@pytest.mark.parametrize("models", [_Models(), _WhisperModels()], ids=["streaming-engine", "whole-utterance-engine"])
async def test_a_recognizer_that_decodes_whole_utterances_starts_when_the_caller_pauses(models: _Models) -> None:
    clock = FakeClock()
    pool = _Pool(spare=True)
    ears = Ears(pool, models, clock)  # type: ignore[arg-type]
    events: list[EarsEvent] = []
    assert await ears.start(ListenSpec(languages=("en",)), events.append)
    await _say(ears, clock)
    whole = not models.spec("en").engine.streams
    assert pool.session.settles == (1 if whole else 0), "told once of the pause that ended the need, not per frame"
    assert pool.session.finished_after_settles == pool.session.settles, "the verdict is asked after the early decode"
    heard = [e for e in events if isinstance(e, Heard)]
    assert len(heard) == 1 and heard[0].speech is not None and heard[0].speech.text == "i want to file a claim"


async def test_speech_that_resumes_after_a_pause_is_told_of_the_next_pause_again() -> None:
    clock = FakeClock()
    pool = _Pool(spare=True)
    ears = Ears(pool, _WhisperModels(), clock)  # type: ignore[arg-type]
    events: list[EarsEvent] = []
    assert await ears.start(ListenSpec(languages=("en",), end_of_speech_s=1.5), events.append)
    await _say(ears, clock, end_s=1.4, then_silence=False)
    silence = np.zeros(160, dtype=np.int16)
    for _ in range(30):  # 0.6 s: longer than the recognizers hear of a pause, shorter than the end of speech
        ears.frame(silence)
        await clock.advance(0.02)
    await asyncio.sleep(0)
    assert pool.session.settles == 1
    await _say(ears, clock, start_s=1.4)  # the caller goes on, then stops for good (the end-of-speech wait)
    for _ in range(30):
        ears.frame(silence)
        await clock.advance(0.02)
    for _ in range(10):
        await asyncio.sleep(0)
    assert pool.session.settles == 2, "the second pause is decoded again with the words after the first"
    assert len([e for e in events if isinstance(e, Heard)]) == 1


async def test_the_verdict_does_not_wait_for_the_recognizers_to_go_back() -> None:
    """Giving a recognizer back takes decode pool jobs, queued behind other callers' decodes: the caller's verdict is
    reported first, and the next utterance, or the end of the listen, waits for the recognizers to be back."""
    clock = FakeClock()
    pool = _Pool(spare=True)
    ears = Ears(pool, _WhisperModels(), clock)  # type: ignore[arg-type]
    events: list[EarsEvent] = []
    assert await ears.start(ListenSpec(languages=("en",)), events.append)
    slow = asyncio.Event()
    await _say(ears, clock, end_s=1.0, then_silence=False)
    pool.session.giving_back = slow
    await _say(ears, clock, start_s=1.0)
    assert len([e for e in events if isinstance(e, Heard)]) == 1
    first = pool.session
    assert not first.closed, "reported while its recognizer was still going back"
    stopping = asyncio.create_task(ears.stop())
    for _ in range(10):
        await asyncio.sleep(0)
    assert not stopping.done(), "the end of the listen waits for the recognizer to be back"
    slow.set()
    await stopping
    assert first.closed
    assert await ears.start(ListenSpec(languages=("en",)), events.append)
    await _say(ears, clock)
    assert pool.session is not first and pool.session.restored == first.state, "the caller's channel carried over"
