"""Load a flow file: YAML → composed nodes (with marks) → typed model → checks → trained classifier.

`load_flow(path)` returns a `Flow` or raises `FlowLoadError` with every problem found;
`check_flow(path)` returns the problems without raising (what `ivr validate` prints).
Nothing that a broken file contains makes these raise anything else.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog
import yaml

from ivr.flow import validate
from ivr.flow.errors import FlowLoadError, Problem, Severity
from ivr.flow.intents import Classifier, ClassifierFactory, default_factory, training_examples
from ivr.flow.model import DEFAULT_FALLBACKS, AskNode, Flow, FlowSpec
from ivr.flow.schema import INVALID, Converter, Mark

log = structlog.get_logger(__name__)

MAX_FILE_BYTES = 2_000_000


@dataclass(slots=True, frozen=True)
class LoadResult:
    flow: Flow | None
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.WARNING)


_FAST_LOADER = getattr(yaml, "CSafeLoader", None)


def compose_yaml(conv: Converter, text: str) -> yaml.Node | None:
    """The YAML node tree of `text`, or None with the syntax error reported to `conv` at its place."""
    if _FAST_LOADER is not None:
        try:  # libyaml: 20x faster; on an error, the pure-Python parser words and places it
            return yaml.compose(text, Loader=_FAST_LOADER)
        except (yaml.YAMLError, RecursionError):
            pass
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        where, what = _syntax_error(exc)
        conv.problem(where, f"YAML syntax error: {what}")
    except yaml.YAMLError as exc:
        conv.problem(Mark(1, 1), f"YAML syntax error: {exc}")
    except RecursionError:
        conv.problem(Mark(1, 1), "YAML nested too deeply")
    return None


def _syntax_error(exc: yaml.MarkedYAMLError) -> tuple[Mark, str]:
    """Where to place a YAML syntax error, and its words, naming both places the parser knows.

    The parser detects an unclosed `[`, `{` or quote only where it gives up, often many lines on;
    its `context_mark` is where the construct opened, which is where the fix goes: the error is
    placed there and names the line of detection. Other errors are placed where they are detected
    (a block mapping's context is its first line, far from the stray indent that broke it).
    """
    problem, context = exc.problem_mark, exc.context_mark
    detected = Mark(problem.line + 1, problem.column + 1) if problem is not None else None
    opened = Mark(context.line + 1, context.column + 1) if context is not None else None
    what = exc.problem or exc.context or "not valid YAML"
    if opened is None or detected is None or opened == detected:
        return detected or opened or Mark(1, 1), what
    construct = (exc.context or "").removeprefix("while ").removeprefix("parsing ").removeprefix("scanning ")
    if opened.line < detected.line and ("flow" in construct or "quoted" in construct):
        return opened, f"{construct} opened here is not closed: {what} at line {detected.line}, column {detected.col}"
    return detected, f"{what} ({construct} from line {opened.line}, column {opened.col})"


def parse_spec(
    text: str, path: str, fallbacks: Mapping[str, tuple[str, ...]], today: dt.date | None = None
) -> tuple[FlowSpec | None, Converter]:
    """Build and check the spec; problems (errors and warnings) are in the returned converter. `today`: the
    date the flow is loaded on, for the checks that depend on it (a holiday list running out); None: skip them."""
    conv = Converter(path)
    root = compose_yaml(conv, text)
    if root is None:
        if not conv.problems:
            conv.problem(Mark(1, 1), "flow file is empty")
        return None, conv
    if not isinstance(root, yaml.MappingNode):
        conv.problem(Mark.of(root), "flow file must be a mapping with id, prompts, nodes...")
        return None, conv
    try:
        spec = conv.convert(root, FlowSpec, ())
    except RecursionError:
        conv.problem(Mark.of(root), "flow nested too deeply")
        return None, conv
    if spec is INVALID:
        return None, conv
    validate.check(conv, spec, fallbacks, today)
    return spec, conv


HEARD_SUFFIX = ".heard.tsv"
"""A flow's companion files of recognizer outputs end so. Each holds what one English engine made of the flow's
phrases and names it: `hotline.yaml` → `hotline.heard.whisper.tsv`, `hotline.heard.moonshine.tsv`. One that names no
engine, `hotline.heard.tsv` (the only name before engines had their own), serves an engine without a file of its own."""

DEFAULT_HEARD_ENGINE = "moonshine"
"""The English engine whose heard file a flow trains on when the caller names none: the engine `asr_engine` defaults
to (`ivr.config`; a test keeps the two equal). The engine passes its configured one
(`FlowRegistry(heard_engine=...)`)."""

_HEARD_NAME = re.compile(r"(?P<stem>.+)\.heard(?:\.(?P<engine>[A-Za-z0-9_-]+))?\.tsv")


def heard_path(path: str | Path, engine: str | None = None) -> Path:
    """The heard file of the flow at `path` for the English `engine` (`whisper`, `moonshine`...); None: the one that
    names no engine."""
    p = Path(path)
    return p.with_name(f"{p.stem}.heard.{engine}.tsv" if engine else p.stem + HEARD_SUFFIX)


def heard_source(path: str | Path, engine: str | None = DEFAULT_HEARD_ENGINE) -> Path | None:
    """Which heard file the flow at `path` trains on when `engine` hears English: the engine's own, else the one that
    names no engine, else none (the phrases alone). Another engine's file is never used: it holds that engine's
    slips (with Whisper's confusions Moonshine understood fewer dev callers within two turns: 96.3% against 96.6% on
    the phrases alone; bench/RESULTS.md "A heard file per engine")."""
    for candidate in (heard_path(path, engine), heard_path(path)) if engine else (heard_path(path),):
        if candidate.is_file():
            return candidate
    return None


def heard_flow_stem(path: str | Path) -> str | None:
    """The stem of the flow a heard file belongs to (`hotline.heard.moonshine.tsv` → `hotline`); None for any other
    file (and hidden ones: editors' temporary files)."""
    name = Path(path).name
    match = _HEARD_NAME.fullmatch(name)
    return match["stem"] if match is not None and not name.startswith(".") else None


def read_heard(path: str | Path, engine: str | None = DEFAULT_HEARD_ENGINE) -> dict[str, list[str]]:
    """`{intent: [text a recognizer heard for one of its phrases]}` from the flow's heard file for `engine`
    (`heard_source`).

    Built offline (`python -m bench.speech_eval --build-heard --engine E`): the flow's own phrases spoken by test
    voices, clean and degraded, decoded by that engine's recognizer, keeping what the flow's classifier
    would not act on rightly (its confusions). Training on them, weighed below the phrases, teaches the
    classifier the recognizer's slips. Missing or unreadable: no extra examples (the flow still loads
    from its phrases alone)."""
    source = heard_source(path, engine)
    return read_heard_file(source) if source is not None else {}


def read_heard_file(path: str | Path) -> dict[str, list[str]]:
    """`read_heard` of the file at `path` itself: `heard text<TAB>intent[<TAB>language]` lines, `#` comments."""
    out: dict[str, list[str]] = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return out
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[0].strip() and not line.startswith("#"):
            out.setdefault(parts[1].strip(), []).append(parts[0].strip())
    return out


def _train(
    spec: FlowSpec, factory: ClassifierFactory, heard: Mapping[str, list[str]] | None = None
) -> Classifier | None:
    if not spec.intents or not any(isinstance(n, AskNode) for n in spec.nodes.values()):
        return None
    examples = training_examples({k: v.phrases for k, v in spec.intents.items()})
    # Kept apart from the phrases: the factory weighs them less. Lines of an intent the flow no longer has are dropped.
    slips = {intent: list(texts) for intent, texts in (heard or {}).items() if intent in examples and texts}
    return factory(examples, slips)


def load_text(
    text: str,
    path: str = "<flow>",
    *,
    fallbacks: Mapping[str, tuple[str, ...]] = DEFAULT_FALLBACKS,
    classifier_factory: ClassifierFactory | None = default_factory,
    data: bytes | None = None,
    heard: Mapping[str, list[str]] | None = None,
    today: dt.date | None = None,
) -> LoadResult:
    """Everything but reading the file. `classifier_factory=None` skips training (validation only);
    `heard` adds recognizer outputs to the training phrases (see `read_heard`); `today`: see `parse_spec`."""
    spec, conv = parse_spec(text, path, fallbacks, today)
    problems = tuple(sorted(conv.problems, key=lambda p: (p.line, p.col, p.message)))
    if spec is None or any(p.severity is Severity.ERROR for p in problems):
        return LoadResult(None, problems)
    hashed = hashlib.sha256(data if data is not None else text.encode())
    if heard:  # the classifier learns from them too: a changed heard file is a new version of the flow
        hashed.update(json.dumps(heard, sort_keys=True, ensure_ascii=False).encode())
    digest = hashed.hexdigest()[:12]
    try:
        classifier = _train(spec, classifier_factory, heard) if classifier_factory is not None else None
    except ValueError as exc:  # the factory's IntentTrainingError: the phrases cannot train it
        at = conv.key_marks.get(("intents",), Mark(1, 1))
        refused = Problem(path, at.line, at.col, f"intents cannot train the classifier: {exc}")
        return LoadResult(None, (*problems, refused))
    flow = Flow(
        spec=spec,
        path=path,
        digest=digest,
        fallbacks=fallbacks,
        classifier=classifier,
        warnings=tuple(str(p) for p in problems),
    )
    return LoadResult(flow, problems)


def check_file(
    path: str | Path,
    *,
    fallbacks: Mapping[str, tuple[str, ...]] = DEFAULT_FALLBACKS,
    classifier_factory: ClassifierFactory | None = default_factory,
    today: dt.date | None = None,
    heard_engine: str | None = DEFAULT_HEARD_ENGINE,
) -> LoadResult:
    """Read and load one file; a file that cannot be read is a problem, not an exception. The classifier trains on
    the flow's heard file for `heard_engine`, the engine that hears English (`read_heard`)."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return LoadResult(None, (Problem(name, 1, 1, f"cannot read flow file: {exc.strerror or exc}"),))
    if len(data) > MAX_FILE_BYTES:
        return LoadResult(None, (Problem(name, 1, 1, f"flow file is larger than {MAX_FILE_BYTES} bytes"),))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return LoadResult(None, (Problem(name, line, 1, "flow file is not UTF-8 text"),))
    heard = read_heard(path, heard_engine) if classifier_factory is not None else None
    return load_text(text, name, fallbacks=fallbacks, classifier_factory=classifier_factory, data=data, heard=heard,
                     today=today)


def load_flow(
    path: str | Path,
    *,
    fallbacks: Mapping[str, tuple[str, ...]] = DEFAULT_FALLBACKS,
    classifier_factory: ClassifierFactory | None = default_factory,
    heard_engine: str | None = DEFAULT_HEARD_ENGINE,
) -> Flow:
    """Load one flow file or raise `FlowLoadError` listing every problem."""
    result = check_file(path, fallbacks=fallbacks, classifier_factory=classifier_factory, heard_engine=heard_engine)
    if result.flow is None:
        raise FlowLoadError(str(path), result.problems)
    return result.flow
