from __future__ import annotations

import asyncio
from pathlib import Path

from ivr.call import CallerInput, ListenSpec, Prompt
from ivr.clock import FakeClock
from ivr.flow import FlowRegistry, Interpreter
from ivr.journey import MemoryJourneySink
from ivr.testing import SimCall, Turn

FLOW = """id: mini
version: "{version}"
numbers: ["95519"]
queues: [general]
prompts:
  menu: {{cmn: "{text}"}}
  bye: {{cmn: 再见}}
nodes:
  start:
    type: menu
    prompt: menu
    keys: {{"1": bye}}
  bye:
    type: hangup
    prompt: bye
"""


def write(path: Path, version: str, text: str) -> None:
    path.write_text(FLOW.format(version=version, text=text), encoding="utf-8")


def registry(folder: Path) -> FlowRegistry:
    return FlowRegistry(folder, clock=FakeClock(), classifier_factory=None)


class HeldCall(SimCall):
    """A simulated call whose first listen waits until the test lets it go."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.listening = asyncio.Event()
        self.release = asyncio.Event()

    async def listen(self, spec: ListenSpec, prompts: list[Prompt] = ()) -> CallerInput:  # type: ignore[assignment]
        self.listening.set()
        await self.release.wait()
        return await super().listen(spec, prompts)


def test_loads_a_folder_and_maps_numbers(tmp_path: Path) -> None:
    write(tmp_path / "mini.yaml", "1", "按1")
    (tmp_path / "notes.txt").write_text("not a flow")
    reg = registry(tmp_path)
    results = reg.load_all()
    assert [r.loaded for r in results] == [True]
    flow = reg.flow_for_number("95519")
    assert flow is not None and flow.id == "mini" and reg.flow("mini") is flow
    assert reg.flow_for_number("12345") is None
    (status,) = reg.status()
    assert status.flow_id == "mini" and status.version.startswith("1+") and status.errors == ()
    assert status.loaded_at is not None


async def test_valid_edit_serves_new_calls_and_a_call_in_progress_keeps_its_version(tmp_path: Path) -> None:
    path = tmp_path / "mini.yaml"
    write(path, "1", "旧版本按1")
    reg = registry(tmp_path)
    reg.load_all()
    old = reg.flow_for_number("95519")
    assert old is not None
    interpreter = Interpreter(sink=MemoryJourneySink(), clock=FakeClock())
    held = HeldCall(script=[Turn.keys("1")])
    task = asyncio.create_task(interpreter.run(old, held))
    await held.listening.wait()

    write(path, "2", "新版本按1")
    assert reg.reload_path(path).loaded
    new = reg.flow_for_number("95519")
    assert new is not None and new is not old and new.version.startswith("2+")
    fresh = SimCall(script=[Turn.keys("1")])
    await interpreter.run(new, fresh)
    assert fresh.spoken[0] == "新版本按1"

    held.release.set()
    record = await task
    assert held.spoken[0] == "旧版本按1"
    assert record.flow_version == old.version != new.version


def test_broken_edit_is_refused_and_the_old_version_keeps_serving(tmp_path: Path) -> None:
    path = tmp_path / "mini.yaml"
    write(path, "1", "按1")
    reg = registry(tmp_path)
    reg.load_all()
    old = reg.flow_for_number("95519")
    path.write_text(path.read_text().replace('"1": bye', '"1": byee'), encoding="utf-8")
    result = reg.reload_path(path)
    assert not result.loaded
    assert result.errors == (f"{path}:12:17: node 'start' goes to unknown node 'byee' (did you mean 'bye'?)",)
    assert reg.flow_for_number("95519") is old
    (status,) = reg.status()
    assert status.serving and status.version == old.version and status.errors == result.errors

    write(path, "3", "按1")
    assert reg.reload_path(path).loaded
    assert reg.status()[0].errors == ()


def test_new_broken_file_is_listed_with_errors_but_not_served(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("id: bad\nnodes: [\n", encoding="utf-8")
    reg = registry(tmp_path)
    reg.load_all()
    (status,) = reg.status()
    assert not status.serving and status.errors[0].startswith(f"{path}:3:1: YAML syntax error")


def test_unchanged_file_is_not_reloaded_and_removed_file_is_unloaded(tmp_path: Path) -> None:
    path = tmp_path / "mini.yaml"
    write(path, "1", "按1")
    reg = registry(tmp_path)
    reg.load_all()
    assert not reg.reload_path(path).loaded
    path.unlink()
    assert reg.reload_path(path).removed
    assert reg.flow_for_number("95519") is None and reg.status() == []


def test_a_second_file_for_the_same_number_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "1", "按1")
    other = tmp_path / "b.yaml"
    other.write_text(FLOW.format(version="1", text="x").replace("id: mini", "id: other"), encoding="utf-8")
    reg = registry(tmp_path)
    results = reg.load_all()
    assert [r.loaded for r in results] == [True, False]
    assert "number 95519 is already answered by" in results[1].errors[0]
    assert reg.flow_for_number("95519").id == "mini"  # type: ignore[union-attr]


async def test_watcher_reloads_a_changed_file(tmp_path: Path) -> None:
    path = tmp_path / "mini.yaml"
    write(path, "1", "按1")
    reg = registry(tmp_path)
    reg.load_all()
    stop = asyncio.Event()
    changes: asyncio.Queue = asyncio.Queue()
    task = asyncio.create_task(reg.watch(stop=stop, on_reload=changes))
    try:
        result = None
        for attempt in range(5):  # the watcher starts in the background: write until it sees one
            write(path, f"2.{attempt}", "按1")
            try:
                result = await asyncio.wait_for(changes.get(), timeout=1)
                break
            except TimeoutError:
                continue
        assert result is not None and result.loaded
        assert reg.flow_for_number("95519").spec.version.startswith("2.")  # type: ignore[union-attr]
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)
