"""Flow test files (`flows/tests/*.yaml`): scripted calls and what must happen, run by `ivr test-flows`.

    flow: ../hotline.yaml
    cases:
      - name: claim by speech
        inputs: [{say: 我要报案}]
        expect: {outcome: to-agent, queue: claims, intent: claim, path: [need, queue_claims]}

Test files are read with the flow loader's converter, so a typo in a test file is reported with
its line like a typo in a flow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ivr.call import QueueOutcomeKind
from ivr.flow.errors import FlowLoadError, Problem
from ivr.flow.loader import load_flow
from ivr.flow.model import Flow, no_map
from ivr.flow.schema import INVALID, Converter, Mark
from ivr.testing.flowsim import DEFAULT_TIME, UNREACHABLE_BACKEND, Simulation, parse_time, simulate
from ivr.testing.simcall import ActionKind, Turn, TurnKind


@dataclass(slots=True, frozen=True, kw_only=True)
class Input:
    say: str | None = None
    keys: str | None = None
    silence: bool = False
    hangup: bool = False
    confidence: float = 1.0

    def turn(self) -> Turn:
        if self.say is not None:
            return Turn.say(self.say, self.confidence)
        if self.keys is not None:
            return Turn.keys(self.keys)
        return Turn(TurnKind.HANGUP) if self.hangup else Turn.silence()


@dataclass(slots=True, frozen=True, kw_only=True)
class Expect:
    outcome: str | None = None
    queue: str | None = None
    intent: str | None = None
    dialect: str | None = None
    path: tuple[str, ...] = ()
    """Nodes visited in this order (others may come between)."""
    not_path: tuple[str, ...] = ()
    prompts: tuple[str, ...] = ()
    """Prompt ids spoken in this order (others may come between)."""
    says: tuple[str, ...] = ()
    """Text fragments some spoken prompt contains."""
    breakpoint: str | None = None
    """The breakpoint node; "" for none."""
    priority: int | None = None
    survey_score: int | None = None
    variables: Mapping[str, str] = no_map()


@dataclass(slots=True, frozen=True, kw_only=True)
class Case:
    name: str
    inputs: tuple[Input, ...] = ()
    caller: str = "13800138000"
    time: str = DEFAULT_TIME
    backend: str = "demo"
    """`demo` (in-process demo back end) or `down` (nothing listening)."""
    queues: Mapping[str, QueueOutcomeKind] = no_map()
    expect: Expect = field(default_factory=Expect)


@dataclass(slots=True, frozen=True, kw_only=True)
class FlowTestFile:
    flow: str
    cases: tuple[Case, ...]


@dataclass(slots=True)
class Report:
    passed: list[str] = field(default_factory=list)
    failed: list[tuple[str, list[str]]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.problems and bool(self.passed)

    def lines(self) -> list[str]:
        out = [str(p) for p in self.problems]
        out += [f"PASS {name}" for name in self.passed]
        for name, why in self.failed:
            out.append(f"FAIL {name}")
            out += [f"    {w}" for w in why]
        out.append(
            f"{len(self.passed)} passed, {len(self.failed)} failed, {len(self.problems)} file problem(s)"
        )
        return out


def read_test_file(path: str | Path) -> tuple[FlowTestFile | None, list[Problem]]:
    import yaml

    name = str(path)
    conv = Converter(name)
    try:
        root = yaml.compose(Path(path).read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return None, [Problem(name, 1, 1, f"cannot read flow test file: {exc}")]
    if root is None:
        return None, [Problem(name, 1, 1, "flow test file is empty")]
    value = conv.convert(root, FlowTestFile, ())
    if value is INVALID or conv.problems:
        if not conv.problems:
            conv.problem(Mark(1, 1), "flow test file is not valid")
        return None, conv.problems
    assert isinstance(value, FlowTestFile)
    return value, []


def _subsequence(wanted: Sequence[str], got: Sequence[str]) -> bool:
    it = iter(got)
    return all(any(w == g for g in it) for w in wanted)


def check_case(case: Case, sim: Simulation) -> list[str]:
    """Every way the simulated call differs from the case's expectations."""
    e, r = case.expect, sim.record
    why: list[str] = []

    def differ(what: str, want: object, got: object) -> None:
        if want is not None and want != got:
            why.append(f"{what}: expected {want!r}, got {got!r}")

    differ("outcome", e.outcome, r.outcome.value if r.outcome else None)
    differ("queue", e.queue, r.queue)
    differ("intent", e.intent, r.intent)
    differ("dialect", e.dialect, r.dialect)
    differ("breakpoint", e.breakpoint, r.breakpoint_node)
    differ("survey score", e.survey_score, r.survey_score)
    if e.priority is not None:
        differ("priority", e.priority, sim.requests[-1].priority if sim.requests else None)
    if not _subsequence(e.path, r.path):
        why.append(f"path: expected {list(e.path)} in order, got {r.path}")
    for node in e.not_path:
        if node in r.path:
            why.append(f"path: expected no '{node}', got {r.path}")
    if not _subsequence(e.prompts, sim.call.prompt_ids):
        why.append(f"prompts: expected {list(e.prompts)} in order, got {sim.call.prompt_ids}")
    spoken = [a.text for a in sim.call.actions if a.kind is ActionKind.SPOKE]
    for fragment in e.says:
        if not any(fragment in text for text in spoken):
            why.append(f"says: no prompt contained {fragment!r}")
    for name, value in e.variables.items():
        differ(f"variable {name}", value, r.variables.get(name))
    return why


async def run_case(flow: Flow, case: Case) -> Simulation:
    return await simulate(
        flow,
        [i.turn() for i in case.inputs],
        caller=case.caller,
        when=parse_time(case.time, flow),
        backend=UNREACHABLE_BACKEND if case.backend == "down" else None,
        queue_results=case.queues,
    )


async def run_files(paths: Sequence[str]) -> Report:
    report = Report()
    flows: dict[Path, Flow] = {}
    for path in paths:
        test_file, problems = read_test_file(path)
        report.problems += problems
        if test_file is None:
            continue
        flow_path = (Path(path).parent / test_file.flow).resolve()
        if flow_path not in flows:
            try:
                flows[flow_path] = load_flow(flow_path)
            except FlowLoadError as exc:
                report.problems += exc.problems
                continue
        for case in test_file.cases:
            label = f"{Path(path).name}: {case.name}"
            sim = await run_case(flows[flow_path], case)
            why = check_case(case, sim)
            if why:
                report.failed.append((label, why))
            else:
                report.passed.append(label)
    return report
