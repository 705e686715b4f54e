from __future__ import annotations

import pathlib
import struct

import numpy as np
import pytest

from ivr.speech import ModelSpec, SpeechModelError
from ivr.speech.adaptation import (
    ADAPT_VOICES,
    AdaptationCorpus,
    mix,
    read_sendump,
    telephone_channel,
    write_s3_mixw,
)
from ivr.speech.pocketsphinx_engine import DEFAULT_MLLR, TELEPHONE_MLLR, PocketSphinxModel, PocketSphinxRecognizer


def _sendump(path: pathlib.Path, logw: np.ndarray, shift: int = 10) -> None:
    """A sendump as PocketSphinx writes it: length-prefixed strings, then bytes [stream][density][senone]."""
    streams, densities, senones = logw.shape

    def text(s: str) -> bytes:
        raw = s.encode() + b"\0"
        return struct.pack("<I", len(raw)) + raw

    head = text("title") + text(f"mixture_count {densities}") + text(f"model_count {senones}")
    head += text(f"mixw_shift {shift}") + text(f"feature_count {streams}") + text("cluster_count 0")
    path.write_bytes(head + struct.pack("<I", 0) + logw.astype(np.uint8).tobytes())


def test_sendump_is_read_as_senone_stream_density_probabilities(tmp_path: pathlib.Path) -> None:
    rng = np.random.default_rng(1)
    logw = rng.integers(0, 40, size=(3, 4, 5))  # 3 streams, 4 densities, 5 senones
    _sendump(tmp_path / "sendump", logw)
    weights = read_sendump(tmp_path / "sendump")
    assert weights.shape == (5, 3, 4)
    assert np.allclose(weights.sum(axis=2), 1.0, atol=1e-5)
    expected = np.power(1.0001, -(logw.astype(np.float64) * 1024)).transpose(2, 0, 1)
    expected /= expected.sum(axis=2, keepdims=True)
    assert np.allclose(weights, expected, atol=1e-6)


def test_clustered_sendump_is_refused(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "sendump"
    raw = b"title\0"
    path.write_bytes(struct.pack("<I", len(raw)) + raw + struct.pack("<I", 17) + b"cluster_count 16\0"
                     + struct.pack("<I", 0))
    with pytest.raises(ValueError, match="clustered sendump"):
        read_sendump(path)


def test_mixture_weights_file_layout(tmp_path: pathlib.Path) -> None:
    weights = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    write_s3_mixw(tmp_path / "mixture_weights", weights)
    data = (tmp_path / "mixture_weights").read_bytes()
    header, _, body = data.partition(b"endhdr\n")
    assert header.startswith(b"s3\nversion 1.0\n") and len(header + b"endhdr\n") % 4 == 0
    assert struct.unpack_from("<IIIII", body) == (0x11223344, 2, 3, 4, 24)
    assert np.array_equal(np.frombuffer(body[20:], dtype="<f4"), weights.ravel())


def test_corpus_keeps_pronounceable_sentences_once_and_shares_voices() -> None:
    corpus = AdaptationCorpus.from_text(
        ["I want to PAY my bill.", "i want to pay my bill", "pay my xyzzy", "my claim"],
        {"i", "want", "to", "pay", "my", "bill", "claim"},
        ["en-US+m1", "en+f3"],
    )
    assert corpus.sentences == ("i want to pay my bill", "my claim")
    assert corpus.utterances() == [("u00000", "en-US+m1", "i want to pay my bill"), ("u00001", "en+f3", "my claim")]
    assert corpus.transcription() == "<s> i want to pay my bill </s> (u00000)\n<s> my claim </s> (u00001)\n"


def test_adaptation_voices_are_not_the_evaluation_voices() -> None:
    evaluated = {"en", "en-US", "en-GB-scotland", "en-GB-x-gbclan", "en-GB-x-rp", "en-GB-x-gbcwmd", "en-029",
                 "en-US-nyc", "en-US+f2", "en-US+m3", "en-GB+f4", "en-US+klatt"}
    assert not evaluated & set(ADAPT_VOICES)


def test_telephone_channel_is_mu_law_then_16_khz() -> None:
    t = np.arange(8000) / 8000
    tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    up = telephone_channel(tone)
    assert up.dtype == np.int16
    assert abs(len(up) - 2 * (8000 + 2 * 2000)) <= 64  # 0.25 s of silence either side
    middle = up[len(up) // 2 - 800 : len(up) // 2 + 800].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(middle))
    assert np.fft.rfftfreq(len(middle), 1 / 16000)[spectrum.argmax()] == pytest.approx(440, abs=10)
    assert spectrum[np.fft.rfftfreq(len(middle), 1 / 16000) > 4200].max() < spectrum.max() * 0.01


def test_telephone_transform_is_committed_and_the_built_in_models_default(tmp_path: pathlib.Path) -> None:
    assert TELEPHONE_MLLR.read_text(encoding="ascii").split()[:3] == ["1", "3", "13"]  # 1 class, 3 streams, 13 dims
    assert PocketSphinxModel.load("en").mllr == TELEPHONE_MLLR
    assert PocketSphinxModel.load("en", mllr=None).mllr is None
    builtin = PocketSphinxModel.load("en").hmm.parent
    assert PocketSphinxModel.load("en", builtin).mllr is None  # a model folder of one's own: no transform
    with pytest.raises(SpeechModelError, match="MLLR transform file does not exist"):
        PocketSphinxModel.load("en", mllr=tmp_path / "missing.mllr")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"engine": "pocketsphinx"}, DEFAULT_MLLR),
        ({"engine": "pocketsphinx", "mllr": "none"}, None),
        ({"engine": "pocketsphinx", "mllr": "telephone"}, TELEPHONE_MLLR),
        ({"engine": "pocketsphinx", "mllr": "/models/my.mllr"}, pathlib.Path("/models/my.mllr")),
    ],
    ids=["default", "none", "telephone", "path"],
)
def test_config_names_the_transform(raw: dict[str, str], expected: pathlib.Path | str | None) -> None:
    assert ModelSpec.from_mapping("en", raw).mllr == expected


def test_transform_for_a_vosk_model_is_refused() -> None:
    with pytest.raises(SpeechModelError, match="pocketsphinx model only"):
        ModelSpec.from_mapping("en", {"engine": "vosk", "model": "/m", "mllr": "telephone"})


def test_decoder_loads_with_the_transform() -> None:
    from ivr.speech.pocketsphinx_engine import Bias

    decoder = PocketSphinxModel.load("en", mllr=TELEPHONE_MLLR).phrase_decoder(("i want to pay",), Bias.LM)
    assert decoder is not None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"engine": "pocketsphinx"}, ()),
        ({"engine": "pocketsphinx", "warps": [1.12]}, (1.12,)),
        ({"engine": "pocketsphinx", "warps": 1.1}, (1.1,)),
    ],
    ids=["default-off", "list", "one"],
)
def test_config_names_the_warps(raw: dict[str, object], expected: tuple[float, ...]) -> None:
    assert ModelSpec.from_mapping("en", raw).warps == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"engine": "pocketsphinx", "warps": [2.0]}, "within 0.7-1.4"),
        ({"engine": "pocketsphinx", "warps": ["fast"]}, "must be numbers"),
        ({"engine": "vosk", "model": "/m", "warps": [1.1]}, "pocketsphinx model only"),
    ],
    ids=["out-of-range", "not-a-number", "vosk"],
)
def test_bad_warps_are_refused(raw: dict[str, object], message: str) -> None:
    with pytest.raises(SpeechModelError, match=message):
        ModelSpec.from_mapping("en", raw)


def test_loaded_model_searches_the_configured_warps_only() -> None:
    from ivr.speech import EngineKind, SpeechModels

    assert PocketSphinxModel.load("en").warps == ()
    models = SpeechModels.load([ModelSpec("en", EngineKind.POCKETSPHINX, warps=(1.12,))])
    rec = models.open("en")
    assert isinstance(rec, PocketSphinxRecognizer) and rec._model.warps == (1.12,)
    models.release(rec)


def test_noisy_corpus_says_every_other_utterance_again_in_every_voice() -> None:
    import dataclasses

    words = {"a", "b", "c", "d", "e", "f"}
    corpus = dataclasses.replace(AdaptationCorpus.from_text(list("abcdef"), words, ["v1", "v2"]), noisy=True)
    noisy = corpus.noisy_utterances()
    assert [uid for uid, _, _ in noisy] == ["u00001n", "u00002n", "u00005n"]
    assert {voice for _, voice, _ in noisy} == {"v1", "v2"}
    assert corpus.transcription().count("\n") == 9
    assert not AdaptationCorpus.from_text(list("abc"), words, ["v1"]).noisy_utterances()


def test_mix_sets_the_noise_under_the_speech_at_the_asked_snr() -> None:
    rng = np.random.default_rng(3)
    speech = (3000 * np.sin(2 * np.pi * 300 * np.arange(8000) / 8000)).astype(np.int16)
    noise = rng.standard_normal(4000).astype(np.float32)
    mixed = mix(speech, noise, 10.0, offset=123)
    residual = mixed.astype(np.float64) - speech
    snr = 10 * np.log10(np.mean(speech.astype(np.float64) ** 2) / np.mean(residual**2))
    assert snr == pytest.approx(10.0, abs=0.3)
