"""The AMD on the generated labelled set (real espeak-ng / Festival voices, noise, G.711): the
evaluation half, never used to choose thresholds, must reach the issue's 95%."""

from __future__ import annotations

import pytest

from bench.amd import build_set, evaluate
from ivr.testing import peers

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(peers.ESPEAK_NG.missing, reason=peers.ESPEAK_NG.reason),
    pytest.mark.skipif(peers.FESTIVAL.missing, reason=peers.FESTIVAL.reason),
]


def test_evaluation_half_accuracy_and_decision_time() -> None:
    clips = [c for c in build_set() if c.half == "eval"]
    scores = evaluate(clips)
    accuracy = sum(s.right for s in scores) / len(scores)
    people = sorted(s.at_ms for s in scores if s.clip.label == "human")
    assert len(scores) >= 70 and accuracy >= 0.95, [s.clip.name for s in scores if not s.right]
    assert all(s.right for s in scores if s.clip.label == "human"), "a person taken for a machine is hung up on"
    assert people[len(people) // 2] <= 3000
