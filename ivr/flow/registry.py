"""Flows in service: a folder of flow files, the numbers they answer, hot reload.

A changed file that loads is swapped in atomically for new calls; a broken one is refused (logged
with its line numbers, kept in `status()`), and the previous version keeps serving. Calls in
progress hold their own `Flow` object, so a reload never changes a running call.

A file is known by one name everywhere: its resolved path (`flow_key`). The command line gives the
folder relative (`--flows flows`, what `make run` uses), the file watcher reports absolute paths,
the folder may be a symlink and editors save by writing a temporary file and renaming it over the
old one: all of these are the same file, so an edit replaces the version it edits instead of
posing as a second file that claims the same flow id.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from ivr.clock import Clock
from ivr.flow.errors import Severity
from ivr.flow.intents import ClassifierFactory, default_factory
from ivr.flow.loader import DEFAULT_HEARD_ENGINE, LoadResult, check_file, heard_flow_stem, heard_source
from ivr.flow.model import DEFAULT_FALLBACKS, Flow

log = structlog.get_logger(__name__)

FLOW_SUFFIXES = (".yaml", ".yml")

REMOVE_GRACE_S = 1.0
"""How long a served file may be missing before it is unloaded: an editor that saves by renaming
the old file away and writing a new one (vim's default) leaves a moment with no file at all."""


def flow_key(path: str | Path) -> str:
    """The one identity of a flow file: its absolute path with every symlink resolved."""
    return str(Path(path).resolve())


def is_flow_file(path: str | Path) -> bool:
    """A `.yaml`/`.yml` file that is not hidden (editors write their temporary files hidden)."""
    p = Path(path)
    return p.suffix in FLOW_SUFFIXES and not p.name.startswith(".")


def flow_of(path: str | Path) -> Path:
    """The flow file a changed path stands for: a flow's heard file, whichever engine it names (`hotline.heard.tsv`,
    `hotline.heard.moonshine.tsv`), stands for its flow (`hotline.yaml`, or `.yml` if only that exists), whose
    classifier may train on it; any other path for itself. A file of another engine than the one configured reloads
    the flow to the same digest: nothing is swapped."""
    p = Path(path)
    stem = heard_flow_stem(p)
    if stem is None:
        return p
    candidates = [p.with_name(stem + suffix) for suffix in FLOW_SUFFIXES]
    return next((c for c in candidates if c.exists()), candidates[0])


@dataclass(slots=True, frozen=True)
class FlowStatus:
    """One file as `GET /api/flows` shows it."""

    path: str
    flow_id: str
    """The id of the flow in service from this file ("" if none ever loaded)."""
    version: str
    """Declared version + content hash of the flow in service."""
    loaded_at: dt.datetime | None
    errors: tuple[str, ...] = ()
    """Problems of the latest edit, when it was refused (`path:line:col: message`)."""
    warnings: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()

    @property
    def serving(self) -> bool:
        return bool(self.flow_id)

    @property
    def refused(self) -> bool:
        """The latest edit was refused while an earlier version of the file keeps serving."""
        return self.serving and bool(self.errors)


@dataclass(slots=True, frozen=True)
class ReloadResult:
    path: str
    loaded: bool
    """A new version is in service."""
    errors: tuple[str, ...] = ()
    removed: bool = False
    still_serving: str = ""
    """For a refused edit: the version of this file that keeps serving ("" if none)."""


@dataclass(slots=True, frozen=True)
class _State:
    """Everything new calls read, replaced as a whole on each reload."""

    by_path: Mapping[str, Flow] = field(default_factory=dict)
    by_number: Mapping[str, Flow] = field(default_factory=dict)
    by_id: Mapping[str, Flow] = field(default_factory=dict)


class FlowRegistry:
    def __init__(
        self,
        folder: str | Path,
        *,
        clock: Clock,
        fallbacks: Mapping[str, tuple[str, ...]] = DEFAULT_FALLBACKS,
        classifier_factory: ClassifierFactory | None = default_factory,
        heard_engine: str | None = DEFAULT_HEARD_ENGINE,
    ) -> None:
        self.folder = Path(folder)
        """The folder as given (relative to the working directory, maybe a symlink)."""
        self._clock = clock
        self._fallbacks = fallbacks
        self._factory = classifier_factory
        self._heard_engine = heard_engine
        """The engine that hears English: a flow's classifier trains on that engine's heard file (`heard_source`)."""
        self._state = _State()
        self._loaded_at: dict[str, dt.datetime] = {}
        self._errors: dict[str, tuple[str, ...]] = {}
        self._warned: dict[str, tuple[dt.date, str, tuple[str, ...]]] = {}
        """Per served file: the day and flow digest its warnings were checked for, and those warnings (`_warnings`)."""

    # -- lookups (what the engine calls per new call) -------------------------------------------

    def flow_for_number(self, dialed: str) -> Flow | None:
        return self._state.by_number.get(dialed)

    def flow(self, flow_id: str) -> Flow | None:
        return self._state.by_id.get(flow_id)

    def flows(self) -> list[Flow]:
        return list(self._state.by_path.values())

    # -- loading ------------------------------------------------------------------------------

    def _files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if is_flow_file(p) and p.is_file())

    def load_all(self) -> list[ReloadResult]:
        return [self.reload_path(p) for p in self._files()]

    def reload_path(self, path: str | Path) -> ReloadResult:
        """Load (or unload, if gone) one file and swap it in if it is valid."""
        key = flow_key(path)
        return self._adopt(key, self._check(key))

    async def _reload_off_loop(self, key: str) -> ReloadResult:
        """`reload_path` with the file's check (parse, validate, train its classifier: ~0.6 s of CPU for the demo
        hotline) in a thread: a hot reload on the event loop stalled every call's media for that long. What is
        served changes on the loop, as before."""
        return self._adopt(key, await asyncio.to_thread(self._check, key))

    async def _warn_off_loop(self) -> None:
        """The served flows' warnings brought to today in a thread (`_warnings`: on the first look of a new day, a
        validation of each file, tens of ms a flow), so that `status()`, which the engine reads on the loop after a
        reload (`watch`'s `on_reload`), serves them from `_warned`. The thread only replaces `_warned` entries, one
        assignment each."""
        served = list(self._state.by_path.items())
        await asyncio.to_thread(lambda: [self._warnings(key, flow) for key, flow in served])

    def _check(self, key: str) -> tuple[dt.date, LoadResult] | None:
        """(today, the file checked and its classifier trained), None if the file is gone: reads the disk and the
        settings, changes nothing."""
        if not Path(key).exists():
            return None
        today = self._clock.wall().date()
        return today, check_file(key, fallbacks=self._fallbacks, classifier_factory=self._factory, today=today,
                                 heard_engine=self._heard_engine)

    def _adopt(self, key: str, checked: tuple[dt.date, LoadResult] | None) -> ReloadResult:
        """Serve the checked file if it is valid and clashes with no other; else keep what was served (a file gone:
        unload it)."""
        if checked is None:
            return self._remove(key)
        today, result = checked
        errors = tuple(str(x) for x in result.problems if x.severity is Severity.ERROR)
        flow = result.flow
        clash = self._clash(key, flow) if flow is not None else None
        if flow is None or clash is not None:
            return self._refuse(key, errors if clash is None else (clash,))
        old = self._state.by_path.get(key)
        if old is not None and old.digest == flow.digest:
            self._errors.pop(key, None)
            return ReloadResult(key, False)
        self._swap({**self._state.by_path, key: flow})
        self._loaded_at[key] = self._clock.wall()
        self._warned[key] = (today, flow.digest, flow.warnings)
        self._errors.pop(key, None)
        heard = heard_source(key, self._heard_engine) if self._factory is not None else None
        log.info("flow_loaded", path=key, flow=flow.id, version=flow.version, numbers=list(flow.spec.numbers),
                 heard=heard.name if heard is not None else None)
        return ReloadResult(key, True)

    def _refuse(self, key: str, errors: tuple[str, ...]) -> ReloadResult:
        self._errors[key] = errors
        serving = self._state.by_path.get(key)
        still = serving.version if serving is not None else ""
        log.warning("flow_refused", path=key, errors=list(errors), still_serving=bool(still),
                    serving_version=still or None)  # fmt: skip
        return ReloadResult(key, False, errors, still_serving=still)

    def _remove(self, key: str) -> ReloadResult:
        self._errors.pop(key, None)
        if key not in self._state.by_path:
            return ReloadResult(key, False, removed=True)
        self._swap({k: v for k, v in self._state.by_path.items() if k != key})
        self._loaded_at.pop(key, None)
        self._warned.pop(key, None)
        log.info("flow_removed", path=key)
        return ReloadResult(key, False, removed=True)

    def _clash(self, key: str, flow: Flow) -> str | None:
        """Another file already serves this flow id or one of its numbers: both files are named."""
        for other_key, other in self._state.by_path.items():
            if other_key == key:
                continue
            if other.id == flow.id:
                return f"{key}:1:1: flow id '{flow.id}' is already served by another file, {other_key}"
            shared = set(other.spec.numbers) & set(flow.spec.numbers)
            if shared:
                return f"{key}:1:1: number {sorted(shared)[0]} is already answered by another file, {other_key}"
        return None

    def _swap(self, by_path: Mapping[str, Flow]) -> None:
        by_number = {n: f for f in by_path.values() for n in f.spec.numbers}
        by_id = {f.id: f for f in by_path.values()}
        self._state = _State(by_path, by_number, by_id)  # one assignment: new calls see all or nothing

    # -- status and watching ------------------------------------------------------------------

    def status(self) -> list[FlowStatus]:
        keys = sorted(set(self._state.by_path) | set(self._errors))
        out = []
        for key in keys:
            flow = self._state.by_path.get(key)
            out.append(
                FlowStatus(
                    path=key,
                    flow_id=flow.id if flow else "",
                    version=flow.version if flow else "",
                    loaded_at=self._loaded_at.get(key),
                    errors=self._errors.get(key, ()),
                    warnings=self._warnings(key, flow) if flow else (),
                    numbers=tuple(flow.spec.numbers) if flow else (),
                )
            )
        return out

    def _warnings(self, key: str, flow: Flow) -> tuple[str, ...]:
        """The served flow's warnings as of today. Some depend on the date (a holiday list running out, next year's
        dates missing through December) and a flow may serve for weeks: on the first look of a new day the file is
        checked again (validation only, no training) if it still holds the flow in service."""
        today = self._clock.wall().date()
        warned = self._warned.get(key)
        if warned is not None and warned[:2] == (today, flow.digest):
            return warned[2]
        warnings = flow.warnings
        result = check_file(key, fallbacks=self._fallbacks, classifier_factory=None, today=today)
        if result.flow is not None and result.flow.digest == flow.digest:
            warnings = result.flow.warnings
        self._warned[key] = (today, flow.digest, warnings)
        return warnings

    def apply_changes(self, paths: Iterable[str]) -> tuple[list[ReloadResult], list[str]]:
        """Reload each flow file among `paths` once; served files found missing are returned, not
        unloaded (the caller unloads them if still missing after `REMOVE_GRACE_S`)."""
        changed, missing = self._changes(paths)
        return [self.reload_path(key) for key in changed], missing

    def _changes(self, paths: Iterable[str]) -> tuple[list[str], list[str]]:
        """(the flow files among `paths` to reload, once each; the served ones found missing)."""
        root = flow_key(self.folder)  # files in subfolders (flows/tests/) are not flows
        known = self._known()
        keys = sorted(k for k in {flow_key(f) for f in map(flow_of, paths) if is_flow_file(f)}
                      if Path(k).parent == Path(root) or k in known)
        missing = [k for k in keys if k in self._state.by_path and not Path(k).exists()]
        return [k for k in keys if k not in missing], missing

    def _known(self) -> set[str]:
        return set(self._state.by_path) | set(self._errors)

    def watched_folders(self) -> list[Path]:
        """The resolved flows folder, and the folder of each file a symlink in it points to."""
        root = Path(flow_key(self.folder))
        return [root, *sorted({Path(k).parent for k in self._known()} - {root})]

    def _remove_if_gone(self, key: str) -> ReloadResult | None:
        return None if Path(key).exists() else self.reload_path(key)

    async def watch(
        self, *, stop: asyncio.Event | None = None, on_reload: asyncio.Queue[ReloadResult] | None = None
    ) -> None:
        """Reload files as they change until `stop` is set (watchfiles.awatch; no polling here).

        The resolved folder is watched, so a symlinked folder reports the files it really holds, and
        so is the folder of each file a symlink in it points to (known when the watch starts).
        Each batch of changes is reduced to the files it touches (by `flow_key`) and each is reloaded
        once, from what is on disk now, whatever the events said: a rename over the file reads as
        "deleted" then "added" and both mean "read it again". A served file found missing is
        unloaded only if still missing `REMOVE_GRACE_S` later.
        """
        import watchfiles

        self.folder.mkdir(parents=True, exist_ok=True)
        folders = self.watched_folders()
        pending: set[asyncio.Task[None]] = set()

        async def report(result: ReloadResult) -> None:
            if on_reload is not None:  # whose reader asks `status()` next: today's warnings checked first
                await self._warn_off_loop()
                on_reload.put_nowait(result)

        async def remove_later(key: str) -> None:
            await self._clock.sleep_until(self._clock.now() + REMOVE_GRACE_S)
            result = self._remove_if_gone(key)
            if result is not None:
                await report(result)

        try:
            async for changes in watchfiles.awatch(
                *folders, stop_event=stop, debounce=200, step=50, recursive=False
            ):
                changed, missing = self._changes(p for _, p in changes)
                for key in changed:
                    await report(await self._reload_off_loop(key))
                for key in missing:
                    task = asyncio.create_task(remove_later(key), name=f"flow-remove-{Path(key).name}")
                    pending.add(task)
                    task.add_done_callback(pending.discard)
        finally:
            for task in pending:
                task.cancel()
