"""`ivr prompts build` and `ivr prompts check`: render what the flows need, and report how each is served.

`check_prompts` is pure over its inputs (packs, flows, recordings found, cache): for every flow,
dialect it serves and prompt id, it records the resolution (recorded / synthesized / fallback to
which dialect) or why nothing in the chain can supply it. `run_build` / `run_check` are the CLI's
entry points: they load, call the library and print with rich.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ivr.voice.cache import DEFAULT_CACHE_DIR, RenderCache
from ivr.voice.dialects import DialectSet, load_dialects
from ivr.voice.errors import PromptUnavailable, TtsError, VoiceError
from ivr.voice.flowprompts import FlowPrompts
from ivr.voice.render import PromptLibrary, resolve_flows
from ivr.voice.resolve import PromptSource, Resolution, Resolver
from ivr.voice.tts import EspeakNgEngine, TtsEngine


@dataclass(slots=True, frozen=True)
class CheckRow:
    flow: str
    prompt_id: str
    dialect: str
    resolution: Resolution | None
    problem: str | None = None
    """Why no dialect in the chain can supply the prompt (then `resolution` is None)."""
    built: bool = False
    """The audio is ready: recording present, or every fixed part in the render cache."""
    preview: bool = False
    """A dialect no flow serves yet (a new pack being recorded): shown, never a failure."""

    @property
    def status(self) -> str:
        return self.resolution.describe() if self.resolution else "MISSING"


@dataclass(slots=True, frozen=True)
class CheckReport:
    rows: tuple[CheckRow, ...]
    warnings: tuple[str, ...] = ()

    @property
    def failures(self) -> tuple[CheckRow, ...]:
        return tuple(r for r in self.rows if r.resolution is None and not r.preview)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def not_built(self) -> int:
        return sum(1 for r in self.rows if r.resolution is not None and not r.built and not r.preview)


def check_prompts(
    flows: tuple[FlowPrompts, ...],
    dialects: DialectSet,
    prompts_dir: Path,
    cache: RenderCache,
    engine: TtsEngine,
) -> CheckReport:
    """How every prompt of every flow is served in every dialect the flow serves."""
    rows: list[CheckRow] = []
    with PromptLibrary(dialects, engine, cache, prompts_dir, max_workers=1) as library:

        def per_flow(flow: FlowPrompts) -> Resolver:
            return Resolver(library.dialects, flow.texts, library.recordings)

        # A pack no flow serves yet (just made by `ivr dialects new`) is shown with every flow's
        # prompts, so its coverage can be followed while it is recorded, before a flow offers it.
        served = {code for flow in flows for code in (flow.dialects or tuple(library.dialects))}
        unserved = tuple(code for code in library.dialects if code not in served)
        previews = tuple(replace(flow, dialects=unserved) for flow in flows if unserved)
        for flow, res in resolve_flows((*flows, *previews), library.dialects, per_flow):
            if isinstance(res, PromptUnavailable):
                preview = res.dialect in unserved
                rows.append(CheckRow(flow.name, res.prompt_id, res.dialect, None, str(res), preview=preview))
            else:
                built = _built(res, library, cache)
                rows.append(CheckRow(flow.name, res.prompt_id, res.requested, res, built=built,
                                     preview=res.requested in unserved))
    return CheckReport(tuple(rows), tuple(library.voice_warnings))


def _built(res: Resolution, library: PromptLibrary, cache: RenderCache) -> bool:
    if res.source is PromptSource.RECORDED:
        return True
    try:
        return all(job.key in cache for job in library.fixed_jobs(res))
    except TtsError:
        return False


# ---------------------------------------------------------------------------------------------- printing

_STYLE = {"recorded": "green", "synthesized": "cyan"}


def _detail(row: CheckRow) -> str:
    res = row.resolution
    if res is None:
        return row.problem or ""
    bits = [str(res.recording) if res.recording else f"voice {res.tts.voice}" if res.tts else ""]
    bits += [f"{code}: {why.value}" for code, why in res.skipped]
    if not row.built:
        bits.append("not built yet (ivr prompts build)")
    return "; ".join(b for b in bits if b)


def print_check(report: CheckReport, dialects: DialectSet, console: Console) -> None:
    """One table per dialect (prompt, how it is served, details), then a summary table."""
    many_flows = len({r.flow for r in report.rows}) > 1
    by_dialect: dict[str, list[CheckRow]] = {}
    for row in report.rows:
        by_dialect.setdefault(row.dialect, []).append(row)
    summary = Table(title="Prompts by dialect")
    for col in ("dialect", "recorded", "synthesized", "fallback", "missing", "not built"):
        summary.add_column(col, justify="left" if col == "dialect" else "right")
    for code, rows in by_dialect.items():
        pack = dialects.get(code)
        voice = f"voice {pack.tts.voice}, {pack.tts.rate_wpm} wpm" if pack and pack.tts else "recordings only"
        title = f"{code} — {pack.name_native} / {pack.name_cmn} ({voice})" if pack else f"{code} (no pack)"
        table = Table(title=title, title_justify="left")
        if many_flows:
            table.add_column("flow")
        for col in ("prompt", "served as", "detail"):
            table.add_column(col, overflow="fold")
        counts: Counter[str] = Counter()
        for row in rows:
            res = row.resolution
            kind = "missing" if res is None else "fallback" if res.fallback_from else res.source.value
            counts[kind] += 1
            counts["not built"] += res is not None and not row.built
            style = "bold red" if res is None else "yellow" if res.fallback_from else _STYLE[res.source.value]
            cells = [row.prompt_id, f"[{style}]{row.status}[/]", _detail(row)]
            table.add_row(*([row.flow, *cells] if many_flows else cells))
        console.print(table)
        summary.add_row(
            code, *(str(counts[k]) for k in ("recorded", "synthesized", "fallback", "missing", "not built"))
        )
    console.print(summary)


# ---------------------------------------------------------------------------------------------- CLI


LoadFlows = Callable[[Path, Mapping[str, tuple[str, ...]]], tuple[FlowPrompts, ...]]
"""Reads a flows folder into `FlowPrompts` given the packs' fallbacks (a flow may serve a pack made by
`ivr dialects new`, covered by its fallback), raising `VoiceError` (`ivr.engine.flowprompts` loads
them with the flow loader; this package does not read flow files)."""


def _load(
    flows_dir: Path, dialects_dir: Path, err: Console, load_flows: LoadFlows
) -> tuple[DialectSet, tuple[FlowPrompts, ...]] | None:
    try:
        dialects = load_dialects(dialects_dir)
        return dialects, load_flows(flows_dir, dialects.fallbacks())
    except VoiceError as exc:
        err.print(str(exc), markup=False, highlight=False)
        return None


def run_build(
    flows: str | Path, dialects: str | Path, prompts: str | Path, cache: str | Path = DEFAULT_CACHE_DIR,
    *, load_flows: LoadFlows, quiet: bool = False,
) -> int:  # fmt: skip
    """Render every prompt the flows need for every dialect they serve. Exit 0, or 1 on failure."""
    out, err = Console(quiet=quiet, soft_wrap=True), Console(stderr=True, soft_wrap=True)
    loaded = _load(Path(flows), Path(dialects), err, load_flows)
    if loaded is None:
        return 1
    packs, flow_prompts = loaded
    with PromptLibrary(packs, EspeakNgEngine(), RenderCache(Path(cache)), Path(prompts)) as library:
        for warning in library.voice_warnings:
            err.print(f"warning: {warning}", markup=False, highlight=False)
        try:
            with Progress(
                TextColumn("rendering prompts"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=out, disable=quiet,
            ) as bar:  # fmt: skip
                task = bar.add_task("render", total=None)
                report = library.build(
                    flow_prompts, lambda done, total: bar.update(task, completed=done, total=total)
                )
        except VoiceError as exc:
            err.print(f"prompt build failed: {exc}", markup=False, highlight=False)
            return 1
    for flow_name, problem in report.unavailable:
        err.print(f"error: flow '{flow_name}': {problem}", markup=False, highlight=False)
    out.print(
        f"{len(report.resolutions)} prompt×dialect pairs for {len(flow_prompts)} flow(s): "
        f"{report.rendered} rendered, {report.from_cache} from cache {cache}, "
        f"{report.recordings} recordings; {len(report.unavailable)} unavailable"
    )
    return 0 if report.ok else 1


def run_check(
    flows: str | Path, dialects: str | Path, prompts: str | Path, cache: str | Path = DEFAULT_CACHE_DIR,
    *, load_flows: LoadFlows,
) -> int:  # fmt: skip
    """Print how each prompt is served per dialect; exit 1 when a flow needs a prompt nobody can supply."""
    out, err = Console(), Console(stderr=True, soft_wrap=True)
    loaded = _load(Path(flows), Path(dialects), err, load_flows)
    if loaded is None:
        return 1
    packs, flow_prompts = loaded
    report = check_prompts(flow_prompts, packs, Path(prompts), RenderCache(Path(cache)), EspeakNgEngine())
    for warning in report.warnings:
        err.print(f"warning: {warning}", markup=False, highlight=False)
    print_check(report, packs, out)
    for row in report.failures:
        err.print(f"error: flow '{row.flow}': {row.problem}", markup=False, highlight=False)
    if report.not_built:
        out.print(f"{report.not_built} synthesized prompt(s) not rendered yet: run `ivr prompts build`")
    return 0 if report.ok else 1
