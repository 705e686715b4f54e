"""Call recording: stereo WAV files of caller and agent, written off the event loop (issue 20).

`Recorder` starts a `Recording` per call (`start`, `attach` a bridge or `add_pcm`, `pause`/`resume`,
`stop`); `RecordingWriter` is the one thread that writes them; `StereoWavWriter` the file format;
`RecordingPolicy` says which calls are recorded (always, after a consent announcement, never).
"""

from __future__ import annotations

from ivr.call import RecordingMode
from ivr.recording.policy import CONSENT_PROMPT, RecordingPolicy
from ivr.recording.recorder import Recorder, Recording, RecordingSummary, file_name
from ivr.recording.stereo import StereoWavWriter, wav_header
from ivr.recording.writer import RecordingWriter

__all__ = [
    "CONSENT_PROMPT",
    "Recorder",
    "Recording",
    "RecordingMode",
    "RecordingPolicy",
    "RecordingSummary",
    "RecordingWriter",
    "StereoWavWriter",
    "file_name",
    "wav_header",
]
