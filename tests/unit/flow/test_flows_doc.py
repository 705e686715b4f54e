"""docs/FLOWS.md stays honest: its YAML examples load with the engine's loader, and it documents every
node type, every field and every expression function the code has.

How docs/FLOWS.md marks its ```yaml blocks (other fences — ```sh, ```text — are not checked):

* **complete flow**: a block whose top level is a mapping with `id:` and `nodes:`. It must load with
  `ivr.flow.loader.load_text` exactly as in service (classifier trained) with no error and no warning.
* **fragment**: a block whose last non-blank line before the fence is `<!-- fragment -->`. It must parse
  as YAML. If every top-level value is a mapping with a `type:`, it is read as nodes; otherwise each
  top-level key must be a flow field (`prompts`, `intents`, `on_error`...) and is read as that field.
  Either way a misspelt field or a bad value fails; names of nodes/prompts outside the block are not
  checked (a fragment cannot be complete).
* **flow test**: a block marked `<!-- flow-test -->` is a flow test file as in `flows/tests/`: it must
  read with the flow-test reader, its `flow:` is resolved from `flows/tests/`, and every case must pass
  against that flow (simulated; data dips are answered from the demo back end's data, without sockets).
* Any other ```yaml block fails: mark it.

Line numbers in failures are lines of docs/FLOWS.md (each block is padded to its place).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from ivr.demo_backend import CUSTOMERS, FAILING_POLICY, POLICIES
from ivr.flow import model
from ivr.flow.expr import FUNCTIONS
from ivr.flow.loader import load_flow, load_text
from ivr.flow.model import NODE_TYPES, FlowSpec, NodeType
from ivr.flow.runtime import HttpReply
from ivr.flow.schema import Converter, field_type, yaml_fields
from ivr.testing.flowsim import parse_time, simulate
from ivr.testing.flowtest import Case, check_case, read_test_file

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "FLOWS.md"
FLOW_TESTS_DIR = ROOT / "flows" / "tests"
MARKERS = {"<!-- fragment -->": "fragment", "<!-- flow-test -->": "flow-test"}


@dataclass(frozen=True)
class Block:
    line: int
    """1-based line of the block's first YAML line in the doc."""
    kind: str
    """`flow`, `fragment`, `flow-test` or `unmarked`."""
    text: str

    @property
    def padded(self) -> str:
        """The YAML preceded by blank lines, so parser line numbers are the doc's."""
        return "\n" * (self.line - 1) + self.text

    @property
    def label(self) -> str:
        return f"{DOC.relative_to(ROOT)}:{self.line}"


def _is_flow(text: str) -> bool:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return False
    return isinstance(data, dict) and "id" in data and "nodes" in data


def parse_doc(lines: list[str]) -> tuple[list[Block], list[str]]:
    """The ```yaml blocks (classified) and the headings outside fences."""
    blocks: list[Block] = []
    headings: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith("```"):
            if line.startswith("#"):
                headings.append(line)
            i += 1
            continue
        info = line[3:].strip()
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), len(lines))
        if info == "yaml":
            before = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            text = "\n".join(lines[i + 1 : end]) + "\n"
            kind = MARKERS.get(before) or ("flow" if _is_flow(text) else "unmarked")
            blocks.append(Block(i + 2, kind, text))
        i = end + 1
    return blocks, headings


LINES = DOC.read_text(encoding="utf-8").splitlines()
BLOCKS, HEADINGS = parse_doc(LINES)


def _ids(blocks: list[Block]) -> list[str]:
    return [f"{b.kind}-line{b.line}" for b in blocks]


def test_the_doc_has_examples_of_every_kind() -> None:
    kinds = [b.kind for b in BLOCKS]
    assert kinds.count("flow") >= 2, kinds
    assert kinds.count("fragment") >= 10, kinds
    assert kinds.count("flow-test") >= 1, kinds


def test_the_block_parser_classifies_and_places_blocks() -> None:
    sample = [
        "# Title",
        "```yaml",
        "id: x",
        "nodes: {}",
        "```",
        "<!-- fragment -->",
        "",
        "```yaml",
        "a: 1",
        "```",
        "```sh",
        "# not a heading",
        "```",
        "```yaml",
        "b: 2",
        "```",
        "## `play` node",
    ]
    blocks, headings = parse_doc(sample)
    assert [(b.kind, b.line, b.text) for b in blocks] == [
        ("flow", 3, "id: x\nnodes: {}\n"),
        ("fragment", 9, "a: 1\n"),
        ("unmarked", 15, "b: 2\n"),
    ]
    assert headings == ["# Title", "## `play` node"]


@pytest.mark.parametrize("block", BLOCKS, ids=_ids(BLOCKS))
def test_yaml_block_is_valid(block: Block) -> None:
    assert block.kind != "unmarked", (
        f"{block.label}: a yaml block that is not a complete flow (id + nodes); "
        "mark it <!-- fragment --> or <!-- flow-test -->"
    )
    if block.kind == "flow":
        result = load_text(block.padded, str(DOC.relative_to(ROOT)))
        problems = [str(p) for p in result.problems]
        assert result.flow is not None and not problems, "\n".join(problems)
    elif block.kind == "fragment":
        problems = check_fragment(block)
        assert not problems, "\n".join(problems)
    # flow-test blocks: test_flow_test_example_passes


def check_fragment(block: Block) -> list[str]:
    root = yaml.compose(block.padded, Loader=yaml.SafeLoader)
    if not isinstance(root, yaml.MappingNode):
        return [f"{block.label}: a fragment must be a mapping (of nodes, or of flow fields)"]
    conv = Converter(str(DOC.relative_to(ROOT)))
    values = [v for _, v in root.value]
    if all(isinstance(v, yaml.MappingNode) and any(k.value == "type" for k, _ in v.value) for v in values):
        conv.convert(root, field_type(FlowSpec, "nodes"), ("nodes",))
    else:
        fields = yaml_fields(FlowSpec)
        for key, value in root.value:
            f = fields.get(key.value)
            if f is None:
                return [f"{block.label}: '{key.value}' is neither a flow field nor a node with a type"]
            conv.convert(value, field_type(FlowSpec, f.name), (key.value,))
    return [str(p) for p in conv.problems]


def test_a_broken_fragment_is_caught() -> None:
    """The fragment check reads field names and values, not just YAML syntax."""
    bad_node = Block(1, "fragment", "menu:\n  type: menu\n  promt: x\n  keys: {'1': y}\n")
    assert any("unknown field 'promt'" in p for p in check_fragment(bad_node))
    bad_field = Block(1, "fragment", "on_error: {queue: general, priority: high}\n")
    assert any("must be a whole number" in p for p in check_fragment(bad_field))
    assert check_fragment(Block(1, "fragment", "bye: {type: hangup}\n")) == []


# --- the flow test example ------------------------------------------------------------------------


class DemoData:
    """The demo back end's answers (`ivr.demo_backend`) without a socket."""

    async def request(
        self, method: str, url: str, *, json_body: Mapping[str, Any] | None, timeout_s: float
    ) -> HttpReply:
        parts = urlsplit(url)
        segments = parts.path.strip("/").split("/")
        if segments[:2] == ["api", "customers"] and segments[2] in CUSTOMERS:
            c = CUSTOMERS[segments[2]]
            return HttpReply(200, {"name": c.name, "age": c.age, "elderly": c.elderly, "dialect": c.dialect})
        if segments[:2] == ["api", "policies"]:
            if segments[2] == FAILING_POLICY:
                return HttpReply(500, {"error": "policy system unavailable"})
            if segments[2] in POLICIES:
                p = POLICIES[segments[2]]
                lang = "en" if parse_qs(parts.query).get("lang") == ["en"] else "cmn"
                body = {"product": p.product[lang], "status": p.status[lang], "amount": p.amount}
                return HttpReply(200, {**body, "next_due": p.next_due, "policy_no": segments[2]})
        return HttpReply(404, {"error": "not found"})


class Down:
    async def request(
        self, method: str, url: str, *, json_body: Mapping[str, Any] | None, timeout_s: float
    ) -> HttpReply:
        raise OSError("connection refused")


FLOW_TEST_BLOCKS = [b for b in BLOCKS if b.kind == "flow-test"]


@pytest.mark.parametrize("block", FLOW_TEST_BLOCKS, ids=_ids(FLOW_TEST_BLOCKS))
async def test_flow_test_example_passes(block: Block, tmp_path: Path) -> None:
    path = tmp_path / "example.yaml"
    path.write_text(block.padded, encoding="utf-8")
    test_file, problems = read_test_file(path)
    assert test_file is not None, "\n".join(str(p) for p in problems)
    flow_path = (FLOW_TESTS_DIR / test_file.flow).resolve()
    assert flow_path.is_file(), f"{block.label}: flow '{test_file.flow}' not found from flows/tests/"
    flow = load_flow(flow_path)
    failures: list[str] = []
    for case in test_file.cases:
        failures += [f"{case.name}: {why}" for why in await _run(flow, case)]
    assert not failures, "\n".join(failures)


async def _run(flow: model.Flow, case: Case) -> list[str]:
    sim = await simulate(
        flow,
        [i.turn() for i in case.inputs],
        caller=case.caller,
        when=parse_time(case.time, flow),
        backend="http://demo.invalid",
        http=Down() if case.backend == "down" else DemoData(),
        queue_results=case.queues,
    )
    return check_case(case, sim)


# --- coverage of the model ------------------------------------------------------------------------

CODE_SPANS = {token for span in re.findall(r"`([^`\n]+)`", "\n".join(LINES)) for token in re.findall(r"\w+", span)}


def test_every_node_type_has_a_heading() -> None:
    in_headings = {token for h in HEADINGS for span in re.findall(r"`([^`]+)`", h) for token in span.split()}
    missing = sorted(t.value for t in NodeType if t.value not in in_headings)
    assert not missing, f"node types without a `type` heading in {DOC.name}: {missing}"


_DOCUMENTED_CLASSES: tuple[type, ...] = (
    FlowSpec,
    *NODE_TYPES.values(),
    model.Retry,
    model.Thresholds,
    model.Case,
    model.Hours,
    model.Intent,
    model.ErrorRoute,
)


@pytest.mark.parametrize("cls", _DOCUMENTED_CLASSES, ids=[c.__name__ for c in _DOCUMENTED_CLASSES])
def test_every_field_is_named_in_the_doc(cls: type) -> None:
    missing = sorted(name for name in yaml_fields(cls) if name not in CODE_SPANS)
    assert not missing, f"{cls.__name__} fields never written as `code` in {DOC.name}: {missing}"


def test_every_expression_function_is_listed() -> None:
    missing = sorted(name for name in FUNCTIONS if f"`{name}(" not in "\n".join(LINES))
    assert not missing, f"expression functions not in {DOC.name}: {missing}"
