from __future__ import annotations

import io
from pathlib import Path

import pytest

from ivr.flow.commands import draw_graph
from ivr.flow.graph import edges
from ivr.flow.loader import check_file
from ivr.testing import peers

from .conftest import HOTLINE


def test_edges_carry_keys_intents_and_outcomes() -> None:
    spec = check_file(HOTLINE, classifier_factory=None).flow.spec  # type: ignore[union-attr]
    labelled = {(e.source, e.target, e.label) for e in edges(spec)}
    assert ("need", "want_claims", "claim") in labelled
    assert ("main_menu", "want_claims", "1") in labelled
    assert ("need", "agent", "0: human") in labelled
    assert ("queue_claims", "survey", "answered") in labelled
    assert ("hours", "night_service", "closed") in labelled


@pytest.mark.skipif(peers.DOT.missing, reason=peers.DOT.reason)
def test_graph_svg_names_every_node(tmp_path: Path) -> None:
    out = tmp_path / "hotline.svg"
    assert draw_graph(str(HOTLINE), str(out), out=io.StringIO()) == 0
    svg = out.read_text(encoding="utf-8")
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    spec = check_file(HOTLINE, classifier_factory=None).flow.spec  # type: ignore[union-attr]
    for node_id in spec.nodes:
        assert f">{node_id}</text>" in svg, node_id
    assert ">claim</text>" in svg  # an intent on an edge
