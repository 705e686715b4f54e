"""The engine and the helpers of the linphone tests: one `ivr serve` per module, as in tests/integration/engine."""

from __future__ import annotations

import json
import pathlib
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from ivr.media import tone, write_wav
from tests.integration.engine.conftest import RunningEngine, free_port, start_engine, stop_engine


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    running = start_engine(tmp_path_factory.mktemp("engine"))
    try:
        yield running
    finally:
        stop_engine(running)


@pytest.fixture(scope="module")
def microphone(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """What linphone "hears": a quiet hum, so it sends audio the whole call (as a microphone does)."""
    path = tmp_path_factory.mktemp("sound") / "mic.wav"
    write_wav(path, tone([300.0], 40.0, level_dbfs=-40.0))
    return path


def free_even_udp_port() -> int:
    while True:
        port = free_port()
        if port % 2 == 0 and port < 65534:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                try:
                    probe.bind(("0.0.0.0", port + 1))
                except OSError:
                    continue
            return port


def engine_log(engine: RunningEngine, call_id: str) -> list[dict[str, Any]]:
    entries = []
    for line in engine.log.read_text(encoding="utf-8", errors="replace").splitlines():
        if call_id in line:
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
    return entries
