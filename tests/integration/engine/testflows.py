"""An `ivr serve` running small test flows from a temporary folder, for tests that need their own."""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import Iterator, Mapping

from tests.integration.engine.conftest import RunningEngine, start_engine, stop_engine


@contextlib.contextmanager
def engine_serving(tmp: pathlib.Path, flows: Mapping[str, str], config: str = "") -> Iterator[RunningEngine]:
    """Serve `flows` (file stem → YAML text) with engine `config` (YAML text); every flow must load."""
    folder = tmp / "flows"
    folder.mkdir()
    for stem, text in flows.items():
        (folder / f"{stem}.yaml").write_text(text, encoding="utf-8")
    config_file = tmp / "engine.yaml"
    config_file.write_text(config or "{}\n", encoding="utf-8")
    running = start_engine(tmp, "--flows", str(folder), "--config", str(config_file))
    try:
        status = {f["path"]: (f["status"], f["errors"]) for f in running.get("/api/flows")["flows"]}
        assert len(status) == len(flows) and all(s == "loaded" for s, _ in status.values()), status
        yield running
    finally:
        stop_engine(running)
