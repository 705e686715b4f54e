from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt

from ivr.call import Hypothesis
from ivr.speech.recognizer import EngineRecognizer


class ScriptedRecognizer(EngineRecognizer):
    """An engine that 'hears' the number of samples it was fed, and records every call."""

    def __init__(self, language: str = "en", *, gate: threading.Event | None = None) -> None:
        super().__init__(language)
        self.calls: list[str] = []
        self.fed: list[int] = []
        self.gate = gate
        self.closed = False

    def _engine_set_phrases(self, phrases: tuple[str, ...]) -> None:
        self.calls.append(f"phrases:{len(phrases)}")

    def _engine_start(self) -> None:
        self.calls.append("start")

    def _engine_feed(self, frame: npt.NDArray[np.int16]) -> None:
        if self.gate is not None:
            assert self.gate.wait(timeout=10), "test gate never opened"
        self.fed.append(int(frame.shape[0]))
        self.calls.append("feed")

    def _engine_hypotheses(self, *, final: bool) -> list[Hypothesis]:
        self.calls.append("final" if final else "partial")
        n = sum(self.fed)
        return [Hypothesis(f"heard {n}", 0.9), Hypothesis(f"heard  {n}", 0.5), Hypothesis("other", 0.2)]

    def _engine_abandon(self) -> None:
        self.calls.append("abandon")
        self.fed.clear()

    def close(self) -> None:
        super().close()
        self.closed = True
