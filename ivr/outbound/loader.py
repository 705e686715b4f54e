"""Load a campaign file: YAML → typed `CampaignSpec` with every problem at its `file:line:col`.

The flow language's machinery does the work (`ivr.flow.loader` composes the YAML and places syntax
errors, `ivr.flow.schema.Converter` converts by annotation, `ivr.flow.jsonschema` publishes the schema);
this module adds only the campaign's own checks (windows inside the day, positive pacing, files present).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ivr.flow.errors import Problem, Severity
from ivr.flow.jsonschema import document_schema
from ivr.flow.loader import compose_yaml
from ivr.flow.schema import INVALID, Converter, Mark
from ivr.flow.schema import Path as KeyPath
from ivr.outbound.errors import CampaignLoadError
from ivr.outbound.model import NIGHT_ENDS, NIGHT_STARTS, CampaignSpec, Result

SCHEMA_ID = "https://ivr.example/schemas/campaign.json"
MAX_FILE_BYTES = 1_000_000


@dataclass(slots=True, frozen=True)
class Campaign:
    spec: CampaignSpec
    path: Path
    """The campaign file; `targets` and `do_not_call` are relative to its folder."""

    @property
    def id(self) -> str:
        return self.spec.id

    def relative(self, name: str) -> Path:
        return (self.path.parent / name).resolve()

    @property
    def targets_file(self) -> Path | None:
        return self.relative(self.spec.targets) if self.spec.targets else None

    @property
    def do_not_call_file(self) -> Path | None:
        return self.relative(self.spec.do_not_call) if self.spec.do_not_call else None


@dataclass(slots=True, frozen=True)
class CampaignResult:
    campaign: Campaign | None
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.ERROR)


class _Checks:
    def __init__(self, conv: Converter, spec: CampaignSpec, folder: Path,
                 flow_exists: Callable[[str], bool] | None) -> None:
        self.conv, self.spec, self.folder, self.flow_exists = conv, spec, folder, flow_exists

    def error(self, path: KeyPath, message: str) -> None:
        mark = self.conv.marks.get(path) or self.conv.key_marks.get(path) or Mark(1, 1)
        self.conv.problem(mark, message)

    def run(self) -> None:
        spec = self.spec
        for i, window in enumerate(spec.windows):
            where = ("windows", str(i))
            if window.start >= window.end:
                self.error((*where, "to"), f"calling window {i + 1} ends at or before it starts")
            if window.start < NIGHT_ENDS or window.end > NIGHT_STARTS:
                self.error(where, f"calling window {i + 1} reaches into the night: calls may start only "
                                  f"between {NIGHT_ENDS:%H:%M} and {NIGHT_STARTS:%H:%M}")
            if not window.days:
                self.error((*where, "days"), f"calling window {i + 1} has no days")
        if spec.pacing.calls_per_s <= 0:
            self.error(("pacing", "calls_per_s"), "pacing calls_per_s must be more than 0")
        if spec.pacing.max_concurrent < 1:
            self.error(("pacing", "max_concurrent"), "pacing max_concurrent must be at least 1")
        if not 1 <= spec.no_answer_s <= 300:
            self.error(("no_answer_s",), "no_answer_s must be between 1 and 300 seconds")
        for result in Result:
            rule = spec.retry.rule(result)
            if rule is None:
                continue
            if rule.max_attempts < 1:
                self.error(("retry", result.value, "max_attempts"), "max_attempts must be at least 1")
            if rule.delay_s < 0:
                self.error(("retry", result.value, "delay_s"), "delay_s must not be negative")
        if "{number}" not in spec.trunk:
            self.error(("trunk",), "trunk must contain {number}, the callee's number")
        if spec.on_machine.value == "leave_message" and not spec.machine_flow:
            self.error(("on_machine",), "on_machine: leave_message needs a machine_flow (the message to leave)")
        for key in ("targets", "do_not_call"):
            name = getattr(spec, key)
            if name is not None and not (self.folder / str(name)).is_file():
                self.error((key,), f"{key} file '{name}' not found next to the campaign file")
        for key in ("flow", "machine_flow"):
            name = getattr(spec, key)
            if name and self.flow_exists is not None and not self.flow_exists(name):
                self.error((key,), f"no flow has id '{name}'")


def _campaign_words(problem: Problem) -> Problem:
    """The converter speaks of a flow file's top level as "flow": this file is a campaign."""
    message = problem.message
    if message.startswith("flow "):
        message = "campaign " + message.removeprefix("flow ")
    return Problem(problem.path, problem.line, problem.col, message, problem.severity)


def load_text(text: str, path: str | Path = "<campaign>", *,
              flow_exists: Callable[[str], bool] | None = None) -> CampaignResult:
    name = str(path)
    conv = Converter(name)
    root = compose_yaml(conv, text)
    spec: Any = INVALID
    if root is None:
        if not conv.problems:
            conv.problem(Mark(1, 1), "campaign file is empty")
    elif not isinstance(root, yaml.MappingNode):
        conv.problem(Mark.of(root), "campaign file must be a mapping with id, flow, trunk...")
    else:
        spec = conv.convert(root, CampaignSpec, ())
        if spec is not INVALID:
            _Checks(conv, spec, Path(path).parent, flow_exists).run()
    problems = tuple(sorted((_campaign_words(p) for p in conv.problems),
                            key=lambda p: (p.line, p.col, p.message)))
    if spec is INVALID or any(p.severity is Severity.ERROR for p in problems):
        return CampaignResult(None, problems)
    return CampaignResult(Campaign(spec, Path(path).resolve()), problems)


def check_campaign(path: str | Path, *, flow_exists: Callable[[str], bool] | None = None) -> CampaignResult:
    """Read and check one file; an unreadable file is a problem, not an exception."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return CampaignResult(None, (Problem(name, 1, 1, f"cannot read campaign file: {exc.strerror or exc}"),))
    if len(data) > MAX_FILE_BYTES:
        return CampaignResult(None, (Problem(name, 1, 1, f"campaign file is larger than {MAX_FILE_BYTES} bytes"),))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return CampaignResult(None, (Problem(name, data[: exc.start].count(b"\n") + 1, 1,
                                             "campaign file is not UTF-8 text"),))
    return load_text(text, path, flow_exists=flow_exists)


def load_campaign(path: str | Path, *, flow_exists: Callable[[str], bool] | None = None) -> Campaign:
    result = check_campaign(path, flow_exists=flow_exists)
    if result.campaign is None:
        raise CampaignLoadError(str(path), result.problems)
    return result.campaign


def campaign_json_schema() -> dict[str, Any]:
    """The campaign file format as JSON Schema (draft 2020-12), from the same model as the loader."""
    return document_schema(CampaignSpec, schema_id=SCHEMA_ID, title="IVR outbound campaign")
