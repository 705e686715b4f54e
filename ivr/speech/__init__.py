"""Speech: recognizers (Vosk, PocketSphinx), VAD endpointing, barge-in and the intent classifier."""

from __future__ import annotations

from ivr.speech.intent import IntentClassifier, IntentScore

__all__ = ["IntentClassifier", "IntentScore"]
