"""Flows in service: a folder of flow files, the numbers they answer, hot reload.

A changed file that loads is swapped in atomically for new calls; a broken one is refused (logged
with its line numbers, kept in `status()`), and the previous version keeps serving. Calls in
progress hold their own `Flow` object, so a reload never changes a running call.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from ivr.clock import Clock
from ivr.flow.errors import Severity
from ivr.flow.intents import ClassifierFactory, default_factory
from ivr.flow.loader import check_file
from ivr.flow.model import DEFAULT_FALLBACKS, Flow

log = structlog.get_logger(__name__)

FLOW_SUFFIXES = (".yaml", ".yml")


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


@dataclass(slots=True, frozen=True)
class ReloadResult:
    path: str
    loaded: bool
    """A new version is in service."""
    errors: tuple[str, ...] = ()
    removed: bool = False


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
    ) -> None:
        self.folder = Path(folder)
        self._clock = clock
        self._fallbacks = fallbacks
        self._factory = classifier_factory
        self._state = _State()
        self._loaded_at: dict[str, dt.datetime] = {}
        self._errors: dict[str, tuple[str, ...]] = {}

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
        return sorted(p for p in self.folder.iterdir() if p.suffix in FLOW_SUFFIXES and p.is_file())

    def load_all(self) -> list[ReloadResult]:
        return [self.reload_path(p) for p in self._files()]

    def reload_path(self, path: str | Path) -> ReloadResult:
        """Load (or unload, if gone) one file and swap it in if it is valid."""
        p = Path(path)
        key = str(p)
        if not p.exists():
            return self._remove(key)
        result = check_file(p, fallbacks=self._fallbacks, classifier_factory=self._factory)
        errors = tuple(str(x) for x in result.problems if x.severity is Severity.ERROR)
        flow = result.flow
        if flow is None:
            self._errors[key] = errors
            log.warning(
                "flow_refused", path=key, errors=list(errors), still_serving=key in self._state.by_path
            )
            return ReloadResult(key, False, errors)
        clash = self._number_clash(key, flow)
        if clash:
            self._errors[key] = (clash,)
            log.warning("flow_refused", path=key, errors=[clash], still_serving=key in self._state.by_path)
            return ReloadResult(key, False, (clash,))
        old = self._state.by_path.get(key)
        if old is not None and old.digest == flow.digest:
            self._errors.pop(key, None)
            return ReloadResult(key, False)
        self._swap({**self._state.by_path, key: flow})
        self._loaded_at[key] = self._clock.wall()
        self._errors.pop(key, None)
        log.info("flow_loaded", path=key, flow=flow.id, version=flow.version, numbers=list(flow.spec.numbers))
        return ReloadResult(key, True)

    def _remove(self, key: str) -> ReloadResult:
        self._errors.pop(key, None)
        if key not in self._state.by_path:
            return ReloadResult(key, False, removed=True)
        self._swap({k: v for k, v in self._state.by_path.items() if k != key})
        self._loaded_at.pop(key, None)
        log.info("flow_removed", path=key)
        return ReloadResult(key, False, removed=True)

    def _number_clash(self, key: str, flow: Flow) -> str | None:
        for other_key, other in self._state.by_path.items():
            if other_key == key:
                continue
            if other.id == flow.id:
                return f"{key}:1:1: flow id '{flow.id}' is already served by {other_key}"
            shared = set(other.spec.numbers) & set(flow.spec.numbers)
            if shared:
                return f"{key}:1:1: number {sorted(shared)[0]} is already answered by {other_key}"
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
                    warnings=flow.warnings if flow else (),
                    numbers=tuple(flow.spec.numbers) if flow else (),
                )
            )
        return out

    async def watch(
        self, *, stop: asyncio.Event | None = None, on_reload: asyncio.Queue[ReloadResult] | None = None
    ) -> None:
        """Reload files as they change until `stop` is set (watchfiles.awatch; no polling here)."""
        import watchfiles

        self.folder.mkdir(parents=True, exist_ok=True)
        async for changes in watchfiles.awatch(self.folder, stop_event=stop, debounce=200, step=50):
            for path in sorted({p for _, p in changes if Path(p).suffix in FLOW_SUFFIXES}):
                result = self.reload_path(path)
                if on_reload is not None:
                    on_reload.put_nowait(result)
