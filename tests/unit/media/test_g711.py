from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ivr.media.errors import UnknownCodec
from ivr.media.g711 import PCMA, PCMU, G711Codec, codec_for_name, codec_for_payload_type, transcode_table

# Decoder output values of ITU-T G.711, in the standard's own units: μ-law on a 14-bit scale
# (Table 2a: segment 0 outputs 0, 2, ... 30, segments 1-7 start at 33, 99, 231, 495, 1023, 2079, 4191,
# the top value is 8031), A-law on a 13-bit scale (Table 1a: segment 0 outputs 1, 3, ... 31, segment 1
# starts at 33, segment 2 at 66, ..., the top value is 4032). Our 16-bit samples are those times 4 (μ)
# and 8 (A). Transmitted μ-law bytes are inverted (0xFF is +0, 0x7F is -0); A-law bytes have the even
# bits inverted (0xD5 is the smallest positive value).
ULAW_REFERENCE = [
    (0xFF, 0),
    (0x7F, 0),
    (0xFE, 2),
    (0x7E, -2),
    (0xF0, 30),
    (0xEF, 33),
    (0xDF, 99),
    (0xCF, 231),
    (0xBF, 495),
    (0xAF, 1023),
    (0x9F, 2079),
    (0x8F, 4191),
    (0x80, 8031),
    (0x00, -8031),
]
ALAW_REFERENCE = [
    (0xD5, 1),
    (0x55, -1),
    (0xD4, 3),
    (0xDA, 31),
    (0xC5, 33),
    (0xF5, 66),
    (0x85, 528),
    (0xAA, 4032),
    (0x2A, -4032),
]


@pytest.mark.parametrize(("code", "value"), ULAW_REFERENCE, ids=[f"u{c:02x}" for c, _ in ULAW_REFERENCE])
def test_ulaw_decodes_reference_code_words(code: int, value: int) -> None:
    assert int(PCMU.decode(bytes([code]))[0]) == 4 * value


@pytest.mark.parametrize(("code", "value"), ALAW_REFERENCE, ids=[f"a{c:02x}" for c, _ in ALAW_REFERENCE])
def test_alaw_decodes_reference_code_words(code: int, value: int) -> None:
    assert int(PCMA.decode(bytes([code]))[0]) == 8 * value


@pytest.mark.parametrize(
    ("codec", "sample", "code"),
    [
        (PCMU, 0, 0xFF),
        (PCMU, 32767, 0x80),
        (PCMU, -32768, 0x00),
        (PCMU, -1, 0x7F),
        (PCMA, 0, 0xD5),
        (PCMA, -1, 0x55),
        (PCMA, 32767, 0xAA),
        (PCMA, -32768, 0x2A),
    ],
    ids=["u0", "umax", "umin", "uminus1", "a0", "aminus1", "amax", "amin"],
)
def test_encodes_reference_samples(codec: G711Codec, sample: int, code: int) -> None:
    assert codec.encode(np.array([sample], dtype=np.int16)) == bytes([code])


@pytest.mark.parametrize("codec", [PCMU, PCMA], ids=lambda c: c.name)
def test_every_code_word_survives_decode_encode(codec: G711Codec) -> None:
    codes = bytes(range(256))
    again = codec.encode(codec.decode(codes))
    # μ-law has two zeros (0x7F is "negative zero"); both decode to 0 and 0 encodes as 0xFF.
    differing = [c for c in range(256) if again[c] != c]
    assert differing == ([0x7F] if codec is PCMU else [])


def _step(codec: G711Codec, decoded: np.ndarray) -> np.ndarray:
    """Quantisation step of the segment each decoded value lies in (16-bit scale)."""
    table = np.sort(codec.decode_table.astype(np.int64))
    index = np.clip(np.searchsorted(table, decoded), 1, 255)
    return np.maximum(table[index] - table[index - 1], table[np.minimum(index + 1, 255)] - table[index])


@pytest.mark.parametrize("codec", [PCMU, PCMA], ids=lambda c: c.name)
def test_round_trip_of_every_sample_is_within_one_quantisation_step(codec: G711Codec) -> None:
    samples = np.arange(-32768, 32768, dtype=np.int64)
    decoded = codec.decode(codec.encode(samples.astype(np.int16))).astype(np.int64)
    error = np.abs(decoded - samples)
    inside = np.abs(samples) <= int(codec.decode_table.max())  # beyond the top decision value: clipping
    assert np.all(error[inside] <= _step(codec, decoded[inside]))
    assert np.all(np.diff(decoded) >= 0)  # the quantiser is monotonic


@pytest.mark.parametrize("codec", [PCMU, PCMA], ids=lambda c: c.name)
@given(pcm=arrays(np.int16, st.integers(0, 400)))
def test_round_trip_property(codec: G711Codec, pcm: np.ndarray) -> None:
    decoded = codec.decode(codec.encode(pcm)).astype(np.int64)
    assert decoded.shape == pcm.shape
    assert np.all(np.abs(decoded - pcm) <= 1024)  # the largest step of either law


@pytest.mark.parametrize("codec", [PCMU, PCMA], ids=lambda c: c.name)
def test_encode_frames_pads_the_last_frame_with_silence(codec: G711Codec) -> None:
    frames = codec.encode_frames(np.full(330, 1000, dtype=np.int16))
    assert [len(f) for f in frames] == [160, 160, 160]
    assert frames[2][10:] == codec.silence(150)
    assert frames[0] == codec.encode(np.full(160, 1000, dtype=np.int16))


def test_transcode_table_maps_code_words_through_linear() -> None:
    table = transcode_table(PCMU, PCMA)
    pcm = np.array([-20000, -300, 0, 5, 700, 31000], dtype=np.int16)
    assert PCMU.encode(pcm).translate(table) == PCMA.encode(PCMU.decode(PCMU.encode(pcm)))
    assert transcode_table(PCMA, PCMA) == bytes(range(256))


def test_codec_lookup() -> None:
    assert codec_for_payload_type(0) is PCMU
    assert codec_for_payload_type(8) is PCMA
    assert codec_for_name("pcma") is PCMA
    with pytest.raises(UnknownCodec, match="RTP payload type 18 is not G.711"):
        codec_for_payload_type(18)
    with pytest.raises(UnknownCodec, match="codec 'G729' is not supported"):
        codec_for_name("G729")
