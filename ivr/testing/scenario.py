"""Caller scenarios: YAML files that say who calls, what they say or press and when, and what must happen.

A scenario file is turned into typed `Scenario` objects once, here (line-numbered `ScenarioError`
for a bad file); `run_scenarios` then places the calls concurrently through one `TestCaller` (one
SIP user agent, one media engine), judges each from the engine's own record of the call
(`ivr.testing.callcheck`), and returns a `ScenarioRun` with a row per call. `ivr scenario run`
is the command over it.

    name: claim said in English            # one scenario per file, or `scenarios: [...]`
    caller: "13700000101"                  # From number (demo customers: ivr/demo_backend.py)
    dialect: en                            # the caller's language for `say` (default: from the script)
    steps:
      - say: I want to file a claim        # waits for the IVR to finish talking first...
      - keys: "0"
        barge_in: true                     # ...unless barge_in: press/speak over the prompt
        dtmf: rfc4733                      # rfc4733 (default) | info | inband
      - pause: 2.5                         # seconds of silence
      - listen: 2                          # wait until the IVR has spoken and fallen silent, twice
        quiet_s: 2.5                       # silence that ends the IVR's turn (default: quiet_s, 1.5)
      - play: recordings/hello.wav         # a WAV file, relative to the scenario file
    linger_s: 3                            # keep listening this long after the last step
    quiet_s: 1.5                           # silence that ends the IVR's turn before each step
    max_duration_s: 120
    expect: {queue: claims, intent: claim, dialect: en, outcome: abandoned,
             breakpoint: fetch_policy, survey_score: 10, path: [need, queue_claims]}
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog
import yaml

from ivr.errors import IvrError
from ivr.testing.callcheck import Expectations, fetch_record, judge
from ivr.testing.caller import AwaitPrompt, CallReport, DtmfMethod, Keys, Pause, PlayFile, Say, Step, TestCaller

log = structlog.get_logger(__name__)

N = TypeVar("N", int, float)

DEFAULT_URI = "sip:95519@127.0.0.1:5060"
DEFAULT_CALLER = "13800000000"
KEY_CHARS = frozenset("0123456789*#ABCD")
DEFAULT_QUIET_S = 1.5
"""Silence after which a scenario caller takes the IVR's turn as over: longer than the pause between
two prompts of one turn (which grows when the engine is busy), shorter than a no-input timeout."""


class ScenarioError(IvrError):
    """A scenario file is wrong; the message has `file:line:col:` for each problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclass(slots=True, frozen=True)
class Expect:
    """What must hold in the engine's record of the call (None / empty: not checked)."""

    queue: str | None = None
    intent: str | None = None
    dialect: str | None = None
    outcome: str | None = None
    breakpoint: str | None = None
    """The node where self-service failed; "" requires that it did not fail."""
    survey_score: int | None = None
    path: tuple[str, ...] = ()
    """Nodes the call must pass through, in this order (others may come between)."""

    @property
    def basic(self) -> Expectations:
        return Expectations(self.queue, self.intent, self.dialect, self.outcome)

    @property
    def needs_record(self) -> bool:
        return bool(self.basic.items()) or self.breakpoint is not None or self.survey_score is not None \
            or bool(self.path)


@dataclass(slots=True, frozen=True)
class Scenario:
    name: str
    caller: str
    steps: tuple[Step, ...]
    expect: Expect
    dialect: str | None = None
    linger_s: float = 3.0
    max_duration_s: float = 120.0
    source: str = ""
    """`file:line` where the scenario is written."""


# ---------------------------------------------------------------- loading


class _Reader:
    """Walks a composed YAML document, converting values and collecting `file:line:col:` problems."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self.problems: list[str] = []

    def problem(self, node: yaml.Node, message: str) -> None:
        mark = node.start_mark
        self.problems.append(f"{self.path}:{mark.line + 1}:{mark.column + 1}: {message}")

    def mapping(self, node: yaml.Node, what: str, known: Sequence[str]) -> dict[str, yaml.Node] | None:
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, f"{what}: expected a mapping, got {_kind(node)}")
            return None
        out: dict[str, yaml.Node] = {}
        for key, value in node.value:
            name = str(key.value)
            if name not in known:
                self.problem(key, f"{what}: unknown key {name!r} (known: {', '.join(known)})")
            elif name in out:
                self.problem(key, f"{what}: key {name!r} given twice")
            else:
                out[name] = value
        return out

    def text(self, node: yaml.Node, what: str) -> str | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null" or node.value == "":
            self.problem(node, f"{what}: expected text, got {_kind(node)}")
            return None
        return str(node.value)

    def number(self, node: yaml.Node, what: str, *, low: float = 0.0, high: float = 3600.0) -> float | None:
        return self._bounded(node, what, float, low, high, f"a number of seconds from {low:g} to {high:g}")

    def integer(self, node: yaml.Node, what: str, *, low: int, high: int) -> int | None:
        return self._bounded(node, what, int, low, high, f"a whole number from {low} to {high}")

    def _bounded(self, node: yaml.Node, what: str, convert: Callable[[str], N], low: N, high: N,
                 expected: str) -> N | None:
        """`node` read with `convert` if it is a scalar within [low, high]; else a problem and None."""
        try:
            value = convert(node.value) if isinstance(node, yaml.ScalarNode) else None
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            self.problem(node, f"{what}: expected {expected}, got {_kind(node)}")
            return None
        return value

    def flag(self, node: yaml.Node, what: str) -> bool:
        value = str(node.value).lower() if isinstance(node, yaml.ScalarNode) else ""
        if value not in ("true", "false", "yes", "no"):
            self.problem(node, f"{what}: expected true or false, got {_kind(node)}")
            return False
        return value in ("true", "yes")


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"{node.value!r}" if node.value != "" else "nothing"


_SCENARIO_KEYS = ("name", "description", "caller", "dialect", "steps", "expect", "linger_s", "max_duration_s",
                  "quiet_s")
_STEP_KEYS = ("say", "keys", "play", "pause", "listen", "language", "dtmf", "barge_in", "timeout_s", "quiet_s")
_EXPECT_KEYS = ("queue", "intent", "dialect", "outcome", "breakpoint", "survey_score", "path")


def load_scenarios(path: str | pathlib.Path) -> list[Scenario]:
    """The scenarios of one file; `ScenarioError` listing every problem with its line."""
    path = pathlib.Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError([f"{path}: cannot read scenario file: {exc.strerror or exc}"]) from exc
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        raise ScenarioError([f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}"]) from exc
    reader = _Reader(path)
    if root is None:
        raise ScenarioError([f"{path}:1:1: empty scenario file"])
    nodes: list[yaml.Node] = []
    if isinstance(root, yaml.MappingNode) and any(k.value == "scenarios" for k, _ in root.value):
        top = reader.mapping(root, "scenario file", ("scenarios",))
        listed = top.get("scenarios") if top else None
        if listed is not None and (not isinstance(listed, yaml.SequenceNode) or not listed.value):
            reader.problem(listed, "scenarios: expected a non-empty list of scenarios")
        elif listed is not None:
            nodes = list(listed.value)
    else:
        nodes = [root]
    loaded = [(node, _scenario(reader, node, i)) for i, node in enumerate(nodes)]
    scenarios = [s for _, s in loaded if s is not None]
    seen: set[str] = set()
    for node, scenario in loaded:
        if scenario is not None and scenario.name in seen:
            reader.problem(node, f"scenario {scenario.name!r}: name used twice in this file")
        seen.add(scenario.name if scenario is not None else "")
    if reader.problems:
        raise ScenarioError(reader.problems)
    return scenarios


def load_many(paths: Sequence[str | pathlib.Path]) -> list[Scenario]:
    """The scenarios of every file, all problems of all files reported together."""
    out: list[Scenario] = []
    problems: list[str] = []
    for path in paths:
        try:
            out += load_scenarios(path)
        except ScenarioError as exc:
            problems += exc.problems
    if problems:
        raise ScenarioError(problems)
    return out


def _scenario(reader: _Reader, node: yaml.Node, index: int) -> Scenario | None:
    fields = reader.mapping(node, f"scenario #{index + 1}", _SCENARIO_KEYS)
    if fields is None:
        return None
    before = len(reader.problems)
    name = reader.text(fields["name"], "name") if "name" in fields else None
    if "name" not in fields:
        name = reader.path.stem if index == 0 else None
        if name is None:
            reader.problem(node, f"scenario #{index + 1}: missing 'name'")
    what = f"scenario {name!r}"
    caller = DEFAULT_CALLER
    if "caller" in fields:
        caller = reader.text(fields["caller"], f"{what} caller") or DEFAULT_CALLER
        if not caller.lstrip("+").isdigit():
            reader.problem(fields["caller"], f"{what} caller: expected a phone number (digits), got {caller!r}")
    dialect = reader.text(fields["dialect"], f"{what} dialect") if "dialect" in fields else None
    quiet = reader.number(fields["quiet_s"], f"{what} quiet_s", low=0.2, high=10.0) if "quiet_s" in fields else None
    quiet = quiet or DEFAULT_QUIET_S
    steps: list[Step] = []
    if "steps" not in fields:
        reader.problem(node, f"{what}: missing 'steps' (what the caller says or presses)")
    elif not isinstance(fields["steps"], yaml.SequenceNode):
        reader.problem(fields["steps"], f"{what} steps: expected a list, got {_kind(fields['steps'])}")
    else:
        for number, step_node in enumerate(fields["steps"].value, 1):
            steps += _step(reader, step_node, f"{what} step {number}", dialect, quiet)
    expect = _expect(reader, fields["expect"], what) if "expect" in fields else Expect()
    linger = reader.number(fields["linger_s"], f"{what} linger_s") if "linger_s" in fields else 3.0
    longest = reader.number(fields["max_duration_s"], f"{what} max_duration_s", low=1.0) \
        if "max_duration_s" in fields else 120.0
    if len(reader.problems) > before or name is None:
        return None
    return Scenario(
        name=name, caller=caller, steps=tuple(steps), expect=expect, dialect=dialect,
        linger_s=linger if linger is not None else 3.0, max_duration_s=longest or 120.0,
        source=f"{reader.path}:{node.start_mark.line + 1}",
    )


def _step(reader: _Reader, node: yaml.Node, what: str, dialect: str | None, quiet_s: float) -> list[Step]:
    if isinstance(node, yaml.ScalarNode) and node.value == "listen":
        return [AwaitPrompt(quiet_s=quiet_s)]
    fields = reader.mapping(node, what, _STEP_KEYS)
    if fields is None:
        return []
    actions = [k for k in ("say", "keys", "play", "pause", "listen") if k in fields]
    if len(actions) != 1:
        reader.problem(node, f"{what}: expected exactly one of say, keys, play, pause, listen "
                             f"(got {', '.join(actions) or 'none'})")
        return []
    action = actions[0]
    allowed = {"say": {"language", "barge_in", "quiet_s"}, "keys": {"dtmf", "barge_in", "quiet_s"},
               "play": {"barge_in", "quiet_s"}, "pause": set(), "listen": {"timeout_s", "quiet_s"}}[action]
    for key in fields:
        if key != action and key not in allowed:
            reader.problem(fields[key], f"{what}: {key!r} does not apply to a {action!r} step")
    barge_in = reader.flag(fields["barge_in"], f"{what} barge_in") if "barge_in" in fields else False
    if "quiet_s" in fields:
        quiet_s = reader.number(fields["quiet_s"], f"{what} quiet_s", low=0.2, high=10.0) or quiet_s
    listen_first: list[Step] = [] if barge_in else [AwaitPrompt(quiet_s=quiet_s)]
    value = fields[action]
    if action == "say":
        text = reader.text(value, f"{what} say")
        language = reader.text(fields["language"], f"{what} language") if "language" in fields else dialect
        return [*listen_first, Say(text, language)] if text else []
    if action == "keys":
        digits = reader.text(value, f"{what} keys")
        if digits is None:
            return []
        bad = sorted(set(digits) - KEY_CHARS)
        if bad:
            reader.problem(value, f"{what} keys: {''.join(bad)!r} is not a phone key (0-9 * # A-D)")
            return []
        method = DtmfMethod.RFC4733
        if "dtmf" in fields:
            try:
                method = DtmfMethod(str(fields["dtmf"].value))
            except ValueError:
                reader.problem(fields["dtmf"], f"{what} dtmf: expected rfc4733, info or inband, "
                                               f"got {fields['dtmf'].value!r}")
        return [*listen_first, Keys(digits, method)]
    if action == "play":
        name = reader.text(value, f"{what} play")
        if name is None:
            return []
        wav = (reader.path.parent / name).resolve()
        if not wav.is_file():
            reader.problem(value, f"{what} play: no such file {str(wav)!r}")
            return []
        return [*listen_first, PlayFile(wav)]
    if action == "pause":
        seconds = reader.number(value, f"{what} pause")
        return [Pause(seconds)] if seconds is not None else []
    count = 1 if value.tag == "tag:yaml.org,2002:null" else reader.integer(value, f"{what} listen", low=1, high=20)
    timeout = reader.number(fields["timeout_s"], f"{what} timeout_s", low=0.1) if "timeout_s" in fields else 30.0
    return [AwaitPrompt(timeout or 30.0, quiet_s) for _ in range(count or 0)]


def _expect(reader: _Reader, node: yaml.Node, what: str) -> Expect:
    fields = reader.mapping(node, f"{what} expect", _EXPECT_KEYS)
    if fields is None:
        return Expect()
    values: dict[str, Any] = {}
    for key in ("queue", "intent", "dialect", "outcome"):
        if key in fields:
            values[key] = reader.text(fields[key], f"{what} expect {key}")
    if "breakpoint" in fields:
        bp = fields["breakpoint"]
        values["breakpoint"] = "" if bp.tag == "tag:yaml.org,2002:null" or bp.value == "" else str(bp.value)
    if "survey_score" in fields:
        values["survey_score"] = reader.integer(fields["survey_score"], f"{what} expect survey_score",
                                                low=0, high=10)
    if "path" in fields:
        path = fields["path"]
        if not isinstance(path, yaml.SequenceNode) or not path.value:
            reader.problem(path, f"{what} expect path: expected a list of node names")
        else:
            values["path"] = tuple(n for n in (reader.text(v, f"{what} expect path") for v in path.value) if n)
    return Expect(**values)


# ---------------------------------------------------------------- judging


def check(expect: Expect, record: Mapping[str, Any] | None, why_missing: str) -> list[str]:
    """Every way the record differs from what was expected, said in words."""
    failures = judge(expect.basic, record, why_missing if expect.basic.items() else "")
    if record is None:
        extra = expect.breakpoint is not None or expect.survey_score is not None or expect.path
        if extra and not failures:
            failures.append(f"no call record to check expectations against: {why_missing}")
        return failures
    if expect.breakpoint is not None:
        seen = str(record.get("breakpoint_node") or "")
        if seen != expect.breakpoint:
            wanted = f"at {expect.breakpoint!r}" if expect.breakpoint else "no breakpoint"
            failures.append(f"expected {wanted}, but the call had breakpoint {seen or 'none'!r}")
    if expect.survey_score is not None and record.get("survey_score") != expect.survey_score:
        failures.append(f"expected survey_score {expect.survey_score}, but the call had {record.get('survey_score')!r}")
    if expect.path:
        taken = list(record.get("path") or [])
        remaining = iter(taken)
        missing = [node for node in expect.path if not any(step == node for step in remaining)]
        if missing:
            failures.append(f"expected the call to pass through {' → '.join(expect.path)} in order, "
                            f"but its path was {' → '.join(taken) or 'empty'}")
    return failures


# ---------------------------------------------------------------- running


@dataclass(slots=True)
class CallResult:
    scenario: Scenario
    index: int
    """Which call of the run (0-based)."""
    report: CallReport | None = None
    record: Mapping[str, Any] | None = None
    failures: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures and self.report is not None

    def to_json(self) -> dict[str, Any]:
        report, record = self.report, self.record or {}
        return {
            "scenario": self.scenario.name, "source": self.scenario.source, "index": self.index,
            "call_id": report.call_id if report else "", "status": report.status if report else 0,
            "setup_s": report.setup_s if report else None, "duration_s": round(self.duration_s, 2),
            "queue": record.get("queue"), "intent": record.get("intent"), "dialect": record.get("dialect"),
            "outcome": record.get("outcome"), "breakpoint": record.get("breakpoint_node"),
            "path": list(record.get("path") or []), "transcript": record.get("transcript"),
            "passed": self.passed, "failures": self.failures,
        }


@dataclass(slots=True)
class ScenarioRun:
    uri: str
    results: list[CallResult]
    wall_s: float

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def failed(self) -> list[CallResult]:
        return [r for r in self.results if not r.passed]

    def to_json(self) -> str:
        return json.dumps({
            "uri": self.uri, "calls": len(self.results), "failed": len(self.failed), "passed": self.passed,
            "wall_s": round(self.wall_s, 2), "results": [r.to_json() for r in self.results],
        }, ensure_ascii=False, indent=2)


Progress = Callable[[CallResult], None]


def plan(scenarios: Sequence[Scenario], calls: int | None) -> list[Scenario]:
    """Which scenario each call runs: each once by default, or `calls` calls cycling through them."""
    if not scenarios:
        return []
    count = len(scenarios) if calls is None else calls
    return [scenarios[i % len(scenarios)] for i in range(count)]


async def run_scenarios(
    scenarios: Sequence[Scenario],
    uri: str = DEFAULT_URI,
    *,
    calls: int | None = None,
    cps: float = 5.0,
    api: str | None = None,
    on_started: Callable[[Scenario], None] | None = None,
    on_done: Progress | None = None,
    caller: TestCaller | None = None,
) -> ScenarioRun:
    """Place the planned calls, starting `cps` a second, all running at once; judge each one."""
    from ivr.testing.callcheck import default_api

    api = api or default_api(uri)
    await asyncio.to_thread(prepare_voices, scenarios)
    own = caller is None
    test_caller = caller or await TestCaller.open()
    started = time.monotonic()
    planned = plan(scenarios, calls)
    results: list[CallResult] = []
    try:
        async with asyncio.TaskGroup() as group:
            for index, scenario in enumerate(planned):
                delay = started + index / cps - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if on_started is not None:
                    on_started(scenario)
                result = CallResult(scenario, index)
                results.append(result)
                group.create_task(_one(test_caller, uri, api, result, on_done), name=f"scenario-{index}")
    finally:
        if own:
            await test_caller.close()
    return ScenarioRun(uri, results, time.monotonic() - started)


async def _one(caller: TestCaller, uri: str, api: str, result: CallResult, on_done: Progress | None) -> None:
    scenario = result.scenario
    began = time.monotonic()
    try:
        report = await caller.call(uri, scenario.steps, from_number=scenario.caller, linger_s=scenario.linger_s,
                                   max_duration_s=scenario.max_duration_s)
        result.report = report
        if not report.answered:
            result.failures.append(f"the call was not answered: SIP {report.status}")
        elif scenario.expect.needs_record:
            record, _, why = await fetch_record(api, report.call_id)
            result.record = record
            result.failures += check(scenario.expect, record, why)
    except IvrError as exc:  # a voice that cannot be rendered, ports exhausted...
        log.error("scenario_call_failed", scenario=scenario.name, error=str(exc))
        result.failures.append(f"the call could not be placed: {exc}")
    finally:
        result.duration_s = time.monotonic() - began
        if on_done is not None:
            on_done(result)


def prepare_voices(scenarios: Sequence[Scenario]) -> None:
    """Render every sentence the callers will say before the first call (TTS is slow, calls are not)."""
    from ivr.testing.voices import speak

    for scenario in scenarios:
        for step in scenario.steps:
            if isinstance(step, Say):
                speak(step.text, step.language)


# ---------------------------------------------------------------- the command


def render_table(run: ScenarioRun) -> Any:
    from rich.table import Table

    table = Table(title=f"{len(run.results)} calls to {run.uri} in {run.wall_s:.1f} s", title_justify="left")
    for column in ("#", "scenario", "result", "queue", "intent", "dialect", "outcome", "secs"):
        table.add_column(column, overflow="fold")
    for r in run.results:
        record = r.record or {}
        table.add_row(
            str(r.index + 1), r.scenario.name, "[green]PASS[/]" if r.passed else "[red]FAIL[/]",
            str(record.get("queue") or "-"), str(record.get("intent") or "-"), str(record.get("dialect") or "-"),
            str(record.get("outcome") or "-"), f"{r.duration_s:.1f}",
        )
    return table


def render_failures(run: ScenarioRun) -> list[str]:
    """One paragraph per failed call: which scenario, where it is written, what went wrong, its path."""
    lines: list[str] = []
    for r in run.failed:
        call_id = r.report.call_id if r.report else "-"
        lines.append(f"FAIL #{r.index + 1} {r.scenario.name} ({r.scenario.source}) call {call_id}")
        lines += [f"  - {failure}" for failure in r.failures]
        if r.record is not None:
            lines.append(f"  path: {' → '.join(r.record.get('path') or []) or '-'}")
            if r.record.get("transcript"):
                lines.append(f"  heard: {r.record['transcript']}")
    return lines


def run_command(files: Sequence[str], *, uri: str, calls: int | None, cps: float, api: str | None,
                as_json: bool) -> int:
    """`ivr scenario run`: exit 0 when every call passed, 1 when one failed, 2 for a bad file or option."""
    import sys

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    err = Console(stderr=True)
    if cps <= 0 or (calls is not None and calls < 1):
        err.print("ivr scenario run: --cps must be above 0 and --calls at least 1")
        return 2
    try:
        scenarios = load_many(files)
        prepare_voices(scenarios)
    except IvrError as exc:
        err.print(str(exc), markup=False, highlight=False)
        return 2
    total = len(plan(scenarios, calls))
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[failed]} failed · {task.fields[active]} in call"),
                  TimeElapsedColumn(), console=err, transient=True, disable=not err.is_terminal) as progress:
        task = progress.add_task("scenarios", total=total, failed=0, active=0)
        counts = {"failed": 0, "active": 0}

        def started(_: Scenario) -> None:
            counts["active"] += 1
            progress.update(task, active=counts["active"])

        def done(result: CallResult) -> None:
            counts["active"] -= 1
            counts["failed"] += 0 if result.passed else 1
            progress.update(task, advance=1, failed=counts["failed"], active=counts["active"])

        run = asyncio.run(run_scenarios(scenarios, uri, calls=calls, cps=cps, api=api,
                                        on_started=started, on_done=done))
    if as_json:
        sys.stdout.write(run.to_json() + "\n")
    else:
        out = Console()
        out.print(render_table(run))
        for line in render_failures(run):
            out.print(line, markup=False, highlight=False)
        out.print(f"[green]all {len(run.results)} calls passed[/]" if run.passed
                  else f"[red]{len(run.failed)} of {len(run.results)} calls failed[/]")
    return 0 if run.passed else 1


__all__ = [
    "CallResult", "DEFAULT_URI", "Expect", "Scenario", "ScenarioError", "ScenarioRun", "check", "load_many",
    "load_scenarios", "plan", "prepare_voices", "render_failures", "render_table", "run_command",
    "run_scenarios",
]
