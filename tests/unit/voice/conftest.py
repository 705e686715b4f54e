from __future__ import annotations

import pathlib
import shutil

import pytest
from voice_fakes import FakeEngine

from ivr.engine.flowprompts import load_flow_prompts
from ivr.voice import DialectSet, load_dialects
from ivr.voice.flowprompts import FlowPrompts

DATA = pathlib.Path(__file__).parent / "data"
ROOT = pathlib.Path(__file__).resolve().parents[3]


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture(scope="session")
def dialects() -> DialectSet:
    """The shipped packs (dialects/*.yaml)."""
    return load_dialects(ROOT / "dialects")


@pytest.fixture(scope="session")
def demo_flows() -> tuple[FlowPrompts, ...]:
    return load_flow_prompts(DATA / "flows")


@pytest.fixture
def prompts_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    """A copy of the shipped recordings (prompts/nan, prompts/wuu) to add to or remove from."""
    target = tmp_path / "prompts"
    shutil.copytree(ROOT / "prompts", target)
    return target
