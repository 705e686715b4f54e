from __future__ import annotations

import pytest

from ivr.acd.config import OverflowKind, load_config, parse_config
from ivr.acd.errors import AcdConfigError
from ivr.acd.strategy import Strategy

from .conftest import agent, agents_yaml

GOOD_QUEUES = "queues:\n  - {id: general}\n"


def test_demo_config_loads(project_root) -> None:  # type: ignore[no-untyped-def]
    cfg = load_config(project_root / "config/agents.yaml", project_root / "config/queues.yaml")
    assert len(cfg.agents) == 8 and len(cfg.sites) == 3
    assert {d for a in cfg.agents.values() for d in a.dialects} == {"cmn", "yue", "hak", "nan", "wuu", "en"}
    assert {s for a in cfg.agents.values() for s in a.skills} >= {
        "claims",
        "service",
        "complaints",
        "general",
        "elderly",
    }
    assert cfg.queues["south-service"].overflow is not None
    assert cfg.queues["south-service"].overflow.kind is OverflowKind.SITE
    flow_queues = {"claims", "service", "complaints", "general", "elderly"}
    assert flow_queues <= set(cfg.queues), "every queue the demo hotline uses is configured"
    assert all(cfg.queues[q].join_empty for q in flow_queues)
    assert cfg.queues["elderly"].strategy is Strategy.SKILLS_BASED
    assert cfg.night is not None and (cfg.night.start_min, cfg.night.end_min) == (22 * 60, 8 * 60)
    assert cfg.agent_by_sip_username("a3002") is cfg.agents["a3002"]


@pytest.mark.parametrize(
    ("agents_text", "queues_text", "message"),
    [
        (
            agents_yaml(agent("a1", site="nort")),
            GOOD_QUEUES,
            "agents.yaml:6:55: agent 'a1' is at unknown site 'nort' (did you mean 'north'?)",
        ),
        (
            agents_yaml(agent("a1", skills="{claims: high}")),
            GOOD_QUEUES,
            "agents.yaml:6:79: agent 'a1' skill 'claims' level must be an integer 1..5, got 'high'",
        ),
        (
            agents_yaml(agent("a1"), agent("a1")),
            GOOD_QUEUES,
            "agents.yaml:7:5: duplicate agent id 'a1'",
        ),
        (
            agents_yaml(agent("a1")),
            "queues:\n  - {id: general, stratgy: ring-all}\n",
            "queues.yaml:2:19: queue: unknown key 'stratgy' (did you mean 'strategy'?)",
        ),
        (
            agents_yaml(agent("a1")),
            "queues:\n  - {id: general, strategy: ringall}\n",
            "queues.yaml:2:29: queue 'general' has unknown strategy 'ringall' (did you mean 'ring-all'?); "
            "expected one of ring-all, longest-idle, round-robin, fewest-calls, random, skills-based",
        ),
        (
            agents_yaml(agent("a1")),
            "queues:\n  - id: a\n    max_wait_s: 60\n    overflow: queue:genral\n  - id: general\n",
            "queues.yaml:2:5: queue 'a' overflows to unknown queue 'genral' (did you mean 'general'?)",
        ),
        (
            agents_yaml(agent("a1")),
            "queues:\n  - {id: a, max_wait_s: 1, overflow: 'queue:b'}\n"
            "  - {id: b, max_wait_s: 1, overflow: 'queue:a'}\n",
            "queues.yaml:2:5: queue overflow loops: a -> b -> a",
        ),
        (
            agents_yaml(agent("a1")),
            "queues:\n  - {id: a, max_wait_s: 60}\n",
            "queues.yaml:2:5: queue 'a' has max_wait_s or max_length but no overflow target",
        ),
        (
            agents_yaml(agent("a1")),
            "queues:\n  - {id: a}\nnight: {start: '25:00', end: '08:00', helper_sites: [north]}\n",
            "queues.yaml:3:16: night start must be a time of day HH:MM, got '25:00'",
        ),
        (
            agents_yaml(agent("a1")),
            "queues:\n  - {id: a\n",
            "queues.yaml:3:1: YAML syntax: expected ',' or '}', but got '<stream end>'",
        ),
    ],
    ids=[
        "unknown-site",
        "bad-level",
        "dup-agent",
        "unknown-key",
        "bad-strategy",
        "overflow-target",
        "overflow-loop",
        "no-overflow",
        "bad-night",
        "yaml-syntax",
    ],
)
def test_errors_name_file_line_and_fault(agents_text: str, queues_text: str, message: str) -> None:
    with pytest.raises(AcdConfigError) as err:
        parse_config(agents_text, queues_text)
    assert str(err.value) == message


def test_defaults_apply_and_night_all_queues() -> None:
    cfg = parse_config(
        agents_yaml(agent("a1")),
        "defaults: {ring_timeout_s: 12}\nqueues:\n  - {id: a}\n  - {id: b, ring_timeout_s: 30}\n"
        "night: {start: '22:00', end: '08:00', helper_sites: [north], queues: all}\n",
    )
    assert (cfg.queues["a"].ring_timeout_s, cfg.queues["b"].ring_timeout_s) == (12.0, 30.0)
    assert cfg.night is not None and cfg.night.queues == ("a", "b")


def test_missing_file_is_named(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AcdConfigError, match="agents.yaml: no such file"):
        load_config(tmp_path / "agents.yaml", tmp_path / "queues.yaml")
