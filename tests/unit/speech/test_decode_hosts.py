"""Whole-utterance decodes go to the first decoder process free, whichever recognizer asks."""

from __future__ import annotations

import threading

import numpy as np

from ivr.speech.hosts import DecodeHosts, HostedDecoder
from ivr.speech.whole import Scored, WholeRecognizer


class _Host:
    """Stands in for a `DecoderHost`: decodes when its gate is open, and remembers what it decoded."""

    def __init__(self, name: str, *, gate: threading.Event | None = None) -> None:
        self.name = name
        self.gate = gate
        self.busy = threading.Event()
        self.decoded: list[int] = []
        self.starts = 0

    def ensure_started(self) -> None:
        self.starts += 1

    def decode(self, dialect: str, audio: np.ndarray, beam_size: int) -> list[Scored]:
        self.busy.set()
        if self.gate is not None:
            assert self.gate.wait(timeout=10), "test gate never opened"
        self.decoded.append(len(audio))
        return [Scored(f"{self.name} heard {len(audio)}", -0.1, 4)]


def test_a_decode_goes_to_a_free_process_not_to_the_one_busy_with_another_caller() -> None:
    gate = threading.Event()
    slow, free = _Host("slow", gate=gate), _Host("free")
    hosts = DecodeHosts([slow, free])  # type: ignore[list-item]
    first = threading.Thread(target=hosts.decode, args=("en", np.zeros(800, np.int16), 5))
    first.start()
    assert slow.busy.wait(10), "the first caller's decode holds the first process"
    second = WholeRecognizer(HostedDecoder("en", hosts))
    second.accept(np.zeros(1600, np.int16))
    assert second.finish().text == "free heard 1600", "decoded at once by the other process"
    gate.set()
    first.join(10)
    assert slow.decoded == [800] and free.decoded == [1600]


def test_a_process_is_started_again_if_need_be_before_each_decode() -> None:
    only = _Host("only")
    hosts = DecodeHosts([only])  # type: ignore[list-item]
    for n in (160, 320):
        hosts.decode("en", np.zeros(n, np.int16), 5)
    assert only.decoded == [160, 320] and only.starts == 2
