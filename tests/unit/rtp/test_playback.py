"""Prompt encoding shared across calls (`EncodedClips`): only audio that cannot change is kept."""

from __future__ import annotations

import gc

import numpy as np
from numpy.typing import NDArray

from ivr.media.g711 import PCMA, PCMU
from ivr.media.tones import tone
from ivr.rtp.playback import EncodedClips, encode_for


def frozen(audio: NDArray[np.int16]) -> NDArray[np.int16]:
    audio.flags.writeable = False
    return audio


def test_a_read_only_prompt_is_encoded_once_per_codec_and_shared() -> None:
    clips = EncodedClips()
    prompt = frozen(tone((440.0,), 0.2))
    first = clips.encode(PCMU, prompt)
    assert clips.encode(PCMU, prompt) is first
    assert first.frames == encode_for(PCMU, prompt).frames
    alaw = clips.encode(PCMA, prompt)
    assert alaw is not first and alaw.codec is PCMA and alaw.frames == encode_for(PCMA, prompt).frames


def test_writeable_audio_is_encoded_on_every_play_so_a_change_is_heard() -> None:
    clips = EncodedClips()
    audio = tone((440.0,), 0.2)
    before = clips.encode(PCMU, audio)
    audio[:] = 0
    after = clips.encode(PCMU, audio)
    assert after.frames != before.frames and after.frames == encode_for(PCMU, audio).frames
    assert len(clips) == 0


def test_a_read_only_view_of_writeable_audio_is_not_kept() -> None:
    clips = EncodedClips()
    base = tone((440.0,), 0.2)
    view = frozen(base[:800])
    clips.encode(PCMU, view)
    base[:800] = 0
    assert clips.encode(PCMU, view).frames == encode_for(PCMU, view).frames
    assert len(clips) == 0


def test_an_entry_goes_with_its_audio_and_the_cache_is_bounded() -> None:
    clips = EncodedClips(max_clips=2)
    prompt = frozen(tone((440.0,), 0.1))
    clips.encode(PCMU, prompt)
    del prompt
    gc.collect()
    assert len(clips) == 0
    kept = [frozen(tone((f,), 0.1)) for f in (300.0, 400.0, 500.0)]
    for audio in kept:
        clips.encode(PCMU, audio)
    assert len(clips) == 2
