"""docs/CONFIG.md documents every config key, the deploy samples mean what they say."""

from __future__ import annotations

import pathlib
import re

from ivr.config import config_keys, resolve_config
from ivr.starter import production_unit, stop_timeout_s

ROOT = pathlib.Path(__file__).resolve().parents[2]
_ROW = re.compile(r"^\| `([a-z0-9_]+)` \|", re.M)


def documented_keys() -> list[str]:
    return _ROW.findall((ROOT / "docs" / "CONFIG.md").read_text(encoding="utf-8"))


def test_every_config_key_is_documented() -> None:
    missing = [key for key in config_keys() if key not in documented_keys()]
    assert not missing, f"add a row for each to the Keys table of docs/CONFIG.md: {missing}"


def test_every_documented_key_exists() -> None:
    unknown = [key for key in documented_keys() if key not in config_keys()]
    assert not unknown, f"docs/CONFIG.md documents keys EngineConfig does not have: {unknown}"


def test_the_production_sample_is_a_valid_config_that_drains_within_the_units_stop_timeout() -> None:
    config = resolve_config(ROOT / "deploy" / "ivr.yaml", env={}).config
    assert config.db.startswith("postgresql://") and config.acd_backend.value == "redis"
    assert not config.demo_backend and not config.log_pii
    from ivr.web.access import parse_token_specs

    assert parse_token_specs(config.api_tokens)
    unit = (ROOT / "deploy" / "ivr.service").read_text(encoding="utf-8")
    stop_s = int(re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M).group(1))  # type: ignore[union-attr]
    assert stop_s > config.drain_timeout_s
    assert stop_s == stop_timeout_s(config.drain_timeout_s)


def test_the_deploy_unit_is_the_rendered_template() -> None:
    """deploy/ivr.service is `production_unit()`; regenerate it after changing the template:
    `python -c 'from ivr.starter import production_unit; print(production_unit(), end="")' > deploy/ivr.service`"""
    unit = (ROOT / "deploy" / "ivr.service").read_text(encoding="utf-8")
    assert unit == production_unit()
    assert re.search(r"^User=ivr$", unit, re.M), "never root"
    assert "AmbientCapabilities" not in unit, "port 5060 needs no capability"
