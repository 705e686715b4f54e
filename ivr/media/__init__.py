"""Audio processing for calls: G.711, resampling, tones, in-band DTMF detection, WAV files, bridging."""

from __future__ import annotations

from ivr.media.bridge import Bridge, BridgeLeg, RelayedPacket
from ivr.media.errors import AudioFormatError, MediaError, UnknownCodec
from ivr.media.g711 import PCMA, PCMU, G711Codec, codec_for_name, codec_for_payload_type, transcode_table
from ivr.media.goertzel import DtmfDetector, DtmfDetectorConfig
from ivr.media.resample import TELEPHONY_RATE_HZ, from_telephony, resample, to_telephony
from ivr.media.tones import (
    RingbackStyle,
    beep,
    dtmf_sequence,
    dtmf_tone,
    music_on_hold,
    ringback,
    silence,
    tone,
)
from ivr.media.wav import WavAudio, load_telephony, read_wav, write_wav

__all__ = [
    "PCMA",
    "PCMU",
    "TELEPHONY_RATE_HZ",
    "AudioFormatError",
    "Bridge",
    "BridgeLeg",
    "DtmfDetector",
    "DtmfDetectorConfig",
    "G711Codec",
    "MediaError",
    "RelayedPacket",
    "RingbackStyle",
    "UnknownCodec",
    "WavAudio",
    "beep",
    "codec_for_name",
    "codec_for_payload_type",
    "dtmf_sequence",
    "dtmf_tone",
    "from_telephony",
    "load_telephony",
    "music_on_hold",
    "read_wav",
    "resample",
    "ringback",
    "silence",
    "tone",
    "to_telephony",
    "transcode_table",
    "write_wav",
]
