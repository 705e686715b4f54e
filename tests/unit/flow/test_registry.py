from __future__ import annotations

import asyncio
import datetime as dt
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from ivr.call import CallerInput, ListenSpec, Prompt
from ivr.clock import FakeClock, LoopClock
from ivr.flow import FlowRegistry, Interpreter, ReloadResult
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


def broken(path: Path) -> None:
    path.write_text(path.read_text().replace('"1": bye', '"1": byee'), encoding="utf-8")


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
    assert old is not None
    broken(path)
    with capture_logs() as logs:
        result = reg.reload_path(path)
    assert not result.loaded and result.still_serving == old.version
    assert result.errors == (f"{path}:12:17: node 'start' goes to unknown node 'byee' (did you mean 'bye'?)",)
    assert reg.flow_for_number("95519") is old
    (status,) = reg.status()
    assert status.refused and status.version == old.version and status.errors == result.errors
    (refused,) = [e for e in logs if e["event"] == "flow_refused"]
    assert refused["still_serving"] is True and refused["serving_version"] == old.version

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


async def one_watched_edit(reg: FlowRegistry, path: Path) -> ReloadResult | None:
    """What the watcher reports of a new version of `path`: it starts in the background, so the file is written
    until it reports one (None after 5 tries); the watcher is stopped after."""
    stop = asyncio.Event()
    changes: asyncio.Queue[ReloadResult] = asyncio.Queue()
    task = asyncio.create_task(reg.watch(stop=stop, on_reload=changes))
    try:
        for attempt in range(5):
            write(path, f"2.{attempt}", "按1")
            try:
                return await asyncio.wait_for(changes.get(), timeout=1)
            except TimeoutError:
                continue
        return None
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)


async def test_watcher_reloads_a_changed_file(tmp_path: Path) -> None:
    path = tmp_path / "mini.yaml"
    write(path, "1", "按1")
    reg = registry(tmp_path)
    reg.load_all()
    result = await one_watched_edit(reg, path)
    assert result is not None and result.loaded
    assert reg.flow_for_number("95519").spec.version.startswith("2.")  # type: ignore[union-attr]


def record_checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The thread of each file check (`check_file`) the registry makes from now on."""
    import ivr.flow.registry as registry_module

    threads: list[int] = []
    real_check = registry_module.check_file

    def recording_check(*args: object, **kwargs: object) -> object:
        threads.append(threading.get_ident())
        return real_check(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(registry_module, "check_file", recording_check)
    return threads


async def test_the_watcher_checks_and_trains_a_changed_file_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hot reload trains the flow's classifier (~0.6 s for the demo hotline): on the loop, every call's media
    stalled for that long. The check runs in a thread; the loop only swaps the result in."""
    path = tmp_path / "mini.yaml"
    write(path, "1", "按1")
    reg = registry(tmp_path)
    reg.load_all()
    checks = record_checks(monkeypatch)
    result = await one_watched_edit(reg, path)
    assert result is not None and result.loaded
    assert checks and threading.get_ident() not in checks, "the file was checked on the event loop"


# -- one identity per file (issue 23) -----------------------------------------------------------


def test_relative_absolute_and_symlinked_spellings_are_one_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    (site / "real-flows").mkdir(parents=True)
    (site / "flows").symlink_to("real-flows")
    write(site / "real-flows" / "mini.yaml", "1", "按1")
    monkeypatch.chdir(site)
    reg = registry(Path("flows"))  # as `make run` gives it: relative, here through a symlink
    assert [r.loaded for r in reg.load_all()] == [True]
    real = str((site / "real-flows" / "mini.yaml").resolve())
    assert reg.status()[0].path == real
    for spelling in ("flows/mini.yaml", str(site / "flows" / "mini.yaml"), real, "./flows/../flows/mini.yaml"):
        write(site / "real-flows" / "mini.yaml", spelling, "按1")
        result = reg.reload_path(spelling)
        assert result.loaded and result.errors == () and result.path == real, spelling
    assert [s.path for s in reg.status()] == [real]


def test_a_new_broken_file_is_refused_and_not_serving(tmp_path: Path) -> None:
    path = tmp_path / "mini.yaml"
    write(path, "1", "按1")
    broken(path)
    reg = registry(tmp_path)
    with capture_logs() as logs:
        (result,) = reg.load_all()
    assert result.still_serving == "" and [e["still_serving"] for e in logs] == [False]
    (status,) = reg.status()
    assert not status.serving and not status.refused


def test_two_files_claiming_one_flow_id_are_refused_naming_both(tmp_path: Path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    write(first, "1", "按1")
    second.write_text(FLOW.format(version="2", text="x").replace('"95519"', '"95500"'), encoding="utf-8")
    reg = registry(tmp_path)
    assert [r.loaded for r in reg.load_all()] == [True, False]
    (error,) = reg.status()[1].errors
    assert error == f"{second}:1:1: flow id 'mini' is already served by another file, {first}"


def test_hidden_editor_files_are_not_flows(tmp_path: Path) -> None:
    write(tmp_path / "mini.yaml", "1", "按1")
    write(tmp_path / ".mini.yaml.swp.yaml", "2", "按1")
    reg = registry(tmp_path)
    assert [r.path for r in reg.load_all()] == [str(tmp_path / "mini.yaml")]


async def watch_until(reg: FlowRegistry, edit: Callable[[int], None], wanted: Callable[[ReloadResult], bool]) -> None:
    """Run the watcher, edit (again, in case it was not watching yet) until a wanted reload comes."""
    stop = asyncio.Event()
    changes: asyncio.Queue[ReloadResult] = asyncio.Queue()
    task = asyncio.create_task(reg.watch(stop=stop, on_reload=changes))
    try:
        for attempt in range(5):
            edit(attempt)
            try:
                while True:
                    result = await asyncio.wait_for(changes.get(), timeout=1)
                    if wanted(result):
                        return
            except TimeoutError:
                continue
        raise AssertionError("the watcher never reported the edit")
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)


async def test_watcher_takes_a_rename_over_save_in_a_relative_symlinked_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "flows").symlink_to("real")
    write(tmp_path / "real" / "mini.yaml", "1", "按1")
    monkeypatch.chdir(tmp_path)
    reg = FlowRegistry("flows", clock=LoopClock(), classifier_factory=None)
    reg.load_all()

    def save_by_rename(attempt: int) -> None:  # as VS Code and vim do: a new file renamed over the old
        temp = tmp_path / "flows" / f".mini.yaml.{attempt}.tmp"
        write(temp, f"2.{attempt}", "新版本")
        os.replace(temp, tmp_path / "flows" / "mini.yaml")

    await watch_until(reg, save_by_rename, lambda r: r.loaded)
    flow = reg.flow_for_number("95519")
    assert flow is not None and flow.spec.version.startswith("2.") and flow.spec.prompts["menu"]["cmn"] == "新版本"
    assert [s.path for s in reg.status()] == [str((tmp_path / "real" / "mini.yaml").resolve())]
    assert reg.status()[0].errors == ()


async def test_watcher_keeps_a_file_that_is_briefly_missing_while_saved(tmp_path: Path) -> None:
    path = tmp_path / "mini.yaml"
    write(path, "1", "按1")
    reg = FlowRegistry(tmp_path, clock=LoopClock(), classifier_factory=None)
    reg.load_all()
    old = reg.flow_for_number("95519")

    def vim_save(attempt: int) -> None:  # rename the old file to a backup, then write the new one
        os.replace(path, tmp_path / "mini.yaml~")
        write(path, f"3.{attempt}", "按1")

    await watch_until(reg, vim_save, lambda r: r.loaded)
    new = reg.flow_for_number("95519")
    assert new is not None and new is not old and new.spec.version.startswith("3.")


async def test_a_deleted_file_is_unloaded_after_the_grace(tmp_path: Path) -> None:
    path = tmp_path / "mini.yaml"
    write(path, "1", "按1")
    reg = FlowRegistry(tmp_path, clock=LoopClock(), classifier_factory=None)
    reg.load_all()

    def delete(attempt: int) -> None:
        write(path, "1", "按1")
        path.unlink()

    await watch_until(reg, delete, lambda r: r.removed)
    assert reg.flow_for_number("95519") is None


def test_changes_reload_each_file_once_and_leave_a_missing_served_file_to_the_grace(tmp_path: Path) -> None:
    path = tmp_path / "mini.yaml"
    write(path, "1", "按1")
    (tmp_path / "tests").mkdir()
    write(tmp_path / "tests" / "cases.yaml", "1", "not a flow folder")
    reg = registry(tmp_path)
    reg.load_all()
    write(path, "2", "按1")
    results, missing = reg.apply_changes([str(path), f"{tmp_path}/./mini.yaml", str(tmp_path / "tests" / "cases.yaml")])
    assert [(r.path, r.loaded) for r in results] == [(str(path), True)] and missing == []
    path.unlink()
    results, missing = reg.apply_changes([str(path)])
    assert results == [] and missing == [str(path)]
    assert reg.flow_for_number("95519") is not None, "still served until the grace has passed"


async def test_watcher_follows_a_flow_file_that_is_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "flows").mkdir()
    target = tmp_path / "elsewhere" / "mini.yaml"
    write(target, "1", "按1")
    (tmp_path / "flows" / "mini.yaml").symlink_to(target)
    reg = FlowRegistry(tmp_path / "flows", clock=LoopClock(), classifier_factory=None)
    reg.load_all()
    assert reg.watched_folders() == [tmp_path / "flows", tmp_path / "elsewhere"]
    await watch_until(reg, lambda attempt: write(target, f"4.{attempt}", "按1"), lambda r: r.loaded)
    assert [s.path for s in reg.status()] == [str(target)]


HOURS = """id: hours
version: "1"
numbers: ["95500"]
queues: [general]
prompts:
  bye: {cmn: 再见}
nodes:
  hours:
    type: schedule
    timezone: Asia/Shanghai
    hours:
      - {days: [mon, tue, wed, thu, fri], from: "08:00", to: "22:00"}
    holidays: [2026-10-01]
    open: bye
    closed: bye
  bye:
    type: hangup
    prompt: bye
"""


async def test_a_flow_serving_into_december_warns_that_next_years_holidays_are_missing(tmp_path: Path) -> None:
    """Loaded in November (nothing to say), still serving on 1 December: the warning appears without a reload, and
    goes once the dates are added (and the edit reloaded)."""
    (tmp_path / "hours.yaml").write_text(HOURS, encoding="utf-8")
    clock = FakeClock(wall_start=dt.datetime(2026, 11, 30, 20, 0, tzinfo=dt.UTC))
    reg = FlowRegistry(tmp_path, clock=clock, classifier_factory=None)
    assert all(r.loaded for r in reg.load_all())
    [status] = reg.status()
    assert not any("holiday" in w for w in status.warnings)
    await clock.advance(6 * 3600)  # 1 December, 02:00 UTC
    [status] = reg.status()
    assert any("lists no holiday in 2027 yet" in w for w in status.warnings), status.warnings
    (tmp_path / "hours.yaml").write_text(HOURS.replace("[2026-10-01]", "[2026-10-01, 2027-01-01]"), encoding="utf-8")
    assert reg.reload_path(tmp_path / "hours.yaml").loaded
    [status] = reg.status()
    assert not any("holiday" in w for w in status.warnings), status.warnings


async def test_the_first_status_of_a_new_day_finds_the_warnings_checked_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a new day the served flows' warnings are checked again (a validation each, tens of ms): the engine reads
    `status()` on the loop after each reload, so the watcher checks them in a thread before it reports one."""
    (tmp_path / "hours.yaml").write_text(HOURS, encoding="utf-8")
    write(tmp_path / "mini.yaml", "1", "按1")
    clock = FakeClock(wall_start=dt.datetime(2026, 11, 30, 20, 0, tzinfo=dt.UTC))
    reg = FlowRegistry(tmp_path, clock=clock, classifier_factory=None)
    assert all(r.loaded for r in reg.load_all())
    await clock.advance(6 * 3600)  # 1 December, 02:00 UTC: hours.yaml's warnings are yesterday's
    checks = record_checks(monkeypatch)
    result = await one_watched_edit(reg, tmp_path / "mini.yaml")
    assert result is not None and result.loaded
    hours = next(status for status in reg.status() if status.flow_id == "hours")  # on the loop, as the engine reads it
    assert any("lists no holiday in 2027 yet" in w for w in hours.warnings), hours.warnings
    assert len(checks) >= 2, "mini.yaml reloaded, hours.yaml's warnings checked again"
    assert threading.get_ident() not in checks, "a file was checked on the event loop"


ASKING = """id: asking
numbers: ["95520"]
dialects: [en]
default_dialect: en
queues: [general]
intents:
  claim: {phrases: {en: [file a claim]}}
  policy: {phrases: {en: [check my policy]}}
prompts:
  ask: {en: "What do you need?"}
nodes:
  need:
    type: ask
    prompt: ask
    intents: {claim: done, policy: done}
  done:
    type: hangup
"""


def test_a_saved_heard_file_reloads_its_flow_with_the_new_examples(tmp_path: Path) -> None:
    """The heard file trains the flow's classifier: saving it is a change of the flow, picked up like one."""
    trained: list[dict[str, list[str]]] = []

    def factory(examples: object, heard: dict[str, list[str]]) -> object:
        trained.append({intent: list(texts) for intent, texts in heard.items()})
        return object()

    (tmp_path / "asking.yaml").write_text(ASKING, encoding="utf-8")
    reg = FlowRegistry(tmp_path, clock=FakeClock(), classifier_factory=factory)  # type: ignore[arg-type]
    assert [r.loaded for r in reg.load_all()] == [True]
    first = reg.flow("asking")
    heard = tmp_path / "asking.heard.tsv"
    heard.write_text("# built for the test\nfile a clam\tclaim\n", encoding="utf-8")
    results, missing = reg.apply_changes([str(heard)])
    assert [r.loaded for r in results] == [True] and not missing
    assert trained[-1] == {"claim": ["file a clam"]}
    second = reg.flow("asking")
    assert first is not None and second is not None and second.digest != first.digest
    results, _ = reg.apply_changes([str(heard)])  # the same content again: nothing to swap
    assert [r.loaded for r in results] == [False]
