"""Regenerate the media fixtures in this folder: `.venv/bin/python tests/data/media/make_fixtures.py`.

- dtmf_keys_8k.wav: all 16 keys "123A456B789C*0#D", 80 ms tone / 80 ms pause, -10 dBFS per tone,
  8 kHz 16-bit mono (what a phone sends in-band).
- dtmf_159_44k_stereo.wav: "159#" as 44.1 kHz 16-bit stereo, the right channel 6 dB down, to test
  that loading (downmix + resample) keeps the keys detectable.
- dtmf_42_8bit.wav: "42" as 8 kHz unsigned 8-bit mono.
"""

from __future__ import annotations

import pathlib
import wave

import numpy as np

from ivr.media.resample import resample
from ivr.media.tones import dtmf_sequence
from ivr.media.wav import write_wav

HERE = pathlib.Path(__file__).resolve().parent
ALL_KEYS = "123A456B789C*0#D"


def main() -> None:
    write_wav(HERE / "dtmf_keys_8k.wav", dtmf_sequence(ALL_KEYS, tone_s=0.08, gap_s=0.08))
    mono = resample(dtmf_sequence("159#", tone_s=0.1, gap_s=0.1), 8000, 44100)
    stereo = np.stack([mono, (mono.astype(np.int32) // 2).astype(np.int16)], axis=1)
    write_wav(HERE / "dtmf_159_44k_stereo.wav", stereo, 44100)
    eight_bit = (dtmf_sequence("42", tone_s=0.1, gap_s=0.1).astype(np.int32) // 256 + 128).astype(np.uint8)
    with wave.open(str(HERE / "dtmf_42_8bit.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(8000)
        out.writeframes(eight_bit.tobytes())


if __name__ == "__main__":
    main()
