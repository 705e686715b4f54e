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


class WholeUtteranceRecognizer(ScriptedRecognizer):
    """Decodes at the caller's pause as Whisper does: `settle` decodes what was fed, and `finish` reuses that decode
    when nothing was fed since; `decodes` counts the decodes, each of which waits for `gate` when one is given."""

    def __init__(self, language: str = "en", *, gate: threading.Event | None = None) -> None:
        super().__init__(language)
        self.decode_gate = gate
        self.decoding = threading.Event()
        """Set once a decode has begun (and waits for `gate`)."""
        self.decodes = 0
        self._settled: tuple[int, list[Hypothesis]] | None = None

    def _decode(self) -> list[Hypothesis]:
        self.decoding.set()
        if self.decode_gate is not None:
            assert self.decode_gate.wait(timeout=10), "test gate never opened"
        self.decodes += 1
        return [Hypothesis(f"heard {sum(self.fed)}", 0.9)]

    def _engine_settle(self) -> list[Hypothesis]:
        self.calls.append("settle")
        if self._settled is None or self._settled[0] != sum(self.fed):
            self._settled = (sum(self.fed), self._decode())
        return self._settled[1]

    def _engine_hypotheses(self, *, final: bool) -> list[Hypothesis]:
        self.calls.append("final" if final else "partial")
        settled, self._settled = self._settled, None
        hyps = settled[1] if settled is not None and settled[0] == sum(self.fed) else self._decode()
        self.fed.clear()
        return hyps

    def _engine_abandon(self) -> None:
        super()._engine_abandon()
        self._settled = None
