"""Speech: recognizers (Vosk, PocketSphinx, Whisper), VAD endpointing, barge-in and the intent classifier.

Typical use by the call layer::

    models = SpeechModels.load([ModelSpec("en", EngineKind.POCKETSPHINX)])   # at start-up
    pool = DecodePool(max_workers=4)
    session = await pool.open_session(models, "en")                           # per call
    endpointer = Endpointer(EndpointerConfig.from_listen_spec(spec), now=clock.now())
    for each 20 ms frame: events = endpointer.process(frame, now)
        SpeechStarted  -> stop the prompt (barge-in), session.feed(event.audio)
        in_speech      -> session.feed(frame)
        UtteranceEnded -> result = await session.finish(); classifier.classify(result.text)
"""

from __future__ import annotations

from ivr.speech.errors import (
    IntentSourceError,
    IntentTrainingError,
    RecognizerError,
    SpeechError,
    SpeechModelError,
)
from ivr.speech.events import EndpointEvent, EndReason, NoInputTimedOut, SpeechStarted, UtteranceEnded
from ivr.speech.intent import IntentClassifier, IntentScore
from ivr.speech.models import ModelSpec, SpeechModels
from ivr.speech.pocketsphinx_engine import Bias, PocketSphinxModel, PocketSphinxRecognizer
from ivr.speech.pool import DecodePool, DecodeSession
from ivr.speech.recognizer import EngineKind, RecognitionResult, Recognizer
from ivr.speech.vad import Endpointer, EndpointerConfig, EndpointState
from ivr.speech.vosk_engine import VoskModel, VoskRecognizer
from ivr.speech.whisper_engine import WhisperModel
from ivr.speech.whole import WholeRecognizer

__all__ = [
    "Bias",
    "DecodePool",
    "DecodeSession",
    "EndReason",
    "EndpointEvent",
    "EndpointState",
    "Endpointer",
    "EndpointerConfig",
    "EngineKind",
    "IntentClassifier",
    "IntentScore",
    "IntentSourceError",
    "IntentTrainingError",
    "ModelSpec",
    "NoInputTimedOut",
    "PocketSphinxModel",
    "PocketSphinxRecognizer",
    "RecognitionResult",
    "Recognizer",
    "RecognizerError",
    "SpeechError",
    "SpeechModelError",
    "SpeechStarted",
    "SpeechModels",
    "UtteranceEnded",
    "VoskModel",
    "VoskRecognizer",
    "WhisperModel",
    "WholeRecognizer",
]
