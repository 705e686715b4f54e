"""Whole-flow checks after conversion: references, reachability, busy loops, dialect coverage, ranges.

Every problem points at the line and column of the value at fault (see `schema.Converter`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from ivr.fallback import fallback_chain
from ivr.flow.errors import Severity
from ivr.flow.expr import growth
from ivr.flow.graph import adjacency, edges, reach, reachable
from ivr.flow.model import (
    AskNode,
    BranchNode,
    CollectNode,
    FlowSpec,
    HttpNode,
    ListeningNode,
    MenuNode,
    MessageNode,
    Node,
    RecordPromptsNode,
    Ref,
    ReturnNode,
    ScheduleNode,
    SetNode,
    SubflowNode,
    SurveyNode,
    Thresholds,
)
from ivr.flow.schema import Converter, Mark, Path, context, did_you_mean

MAX_MESSAGE_S = 300.0
"""The longest voice message a flow may take (five minutes)."""

_REF_WORDS = {
    Ref.NODE: ("goes to", "node"),
    Ref.PROMPT: ("uses", "prompt"),
    Ref.QUEUE: ("uses", "queue"),
    Ref.INTENT: ("maps", "intent"),
}


class Checker:
    def __init__(self, conv: Converter, spec: FlowSpec, fallbacks: Mapping[str, tuple[str, ...]],
                 today: dt.date | None = None) -> None:
        self.conv = conv
        self.spec = spec
        self.fallbacks = fallbacks
        self.today = today
        """The date the flow is loaded on (None: the date-dependent checks are skipped)."""
        self.node_ids = self.declared("nodes")
        self.dangling = False
        """Some edge goes to an unknown node: unreachability would only repeat that problem."""

    def declared(self, section: str) -> list[str]:
        """Names declared in a mapping section, including entries that failed to convert."""
        return [p[1] for p in self.conv.key_marks if len(p) == 2 and p[0] == section]

    def broken(self, path: Path) -> bool:
        """Conversion already reported a problem here: checks that depend on it would only cascade."""
        return path in self.conv.failed

    def mark(self, path: Path) -> Mark:
        return self.conv.marks.get(path) or self.conv.key_marks.get(path) or Mark(1, 1)

    def error(self, path: Path, message: str) -> None:
        self.conv.problem(self.mark(path), message)

    def warn(self, path: Path, message: str) -> None:
        self.conv.problem(self.mark(path), message, Severity.WARNING)

    def run(self) -> None:
        self.check_refs()
        self.check_declarations()
        self.check_prompts()
        self.check_intents()
        for node in self.spec.nodes.values():
            if not self.broken(("nodes", node.id)):
                self.check_node(node)
        if not self.spec.nodes:
            if not self.node_ids:
                self.error(("nodes",), "flow has no nodes")
            return
        self.check_graph()

    # -- references -----------------------------------------------------------------------------

    def check_refs(self) -> None:
        declared: dict[Ref, Iterable[str]] = {
            Ref.NODE: self.node_ids,
            Ref.PROMPT: self.declared("prompts"),
            Ref.QUEUE: self.spec.queues,
            Ref.INTENT: self.declared("intents"),
        }
        sections = {Ref.NODE: "nodes", Ref.PROMPT: "prompts", Ref.QUEUE: "queues", Ref.INTENT: "intents"}
        for use in self.conv.refs:
            names = declared[use.ref]
            if use.value in names or self.broken((sections[use.ref],)):
                continue
            if use.ref is Ref.NODE:
                self.dangling = True
            verb, noun = _REF_WORDS[use.ref]
            where = context(use.path) if use.path[:1] == ("nodes",) else f"flow field '{'.'.join(use.path)}'"
            if use.path[:1] == ("on_error",):
                where = "on_error"
            self.conv.problem(
                use.mark, f"{where} {verb} unknown {noun} '{use.value}'{did_you_mean(use.value, names)}"
            )

    def check_declarations(self) -> None:
        spec = self.spec
        for section, values in (
            ("numbers", spec.numbers),
            ("dialects", spec.dialects),
            ("queues", spec.queues),
        ):
            seen: set[str] = set()
            for i, value in enumerate(values):
                if value in seen:
                    self.error((section, str(i)), f"{section[:-1]} '{value}' is listed twice")
                seen.add(value)
        if spec.default_dialect not in spec.dialects:
            self.error(
                ("default_dialect",),
                f"default dialect '{spec.default_dialect}' is not in dialects ({', '.join(spec.dialects)})",
            )
        if not spec.queues and not self.broken(("queues",)):
            self.error(
                ("queues",) if ("queues",) in self.conv.marks else (),
                "flow declares no queues: on_error needs a human queue",
            )
        if spec.on_error.priority < 0:
            self.error(("on_error", "priority"), "on_error priority must be 0 or more")

    def check_prompts(self) -> None:
        declared = self.spec.dialects
        for prompt_id, texts in self.spec.prompts.items():
            path: Path = ("prompts", prompt_id)
            if not texts:
                self.error(path, f"prompt '{prompt_id}' has no text")
                continue
            for dialect, text in texts.items():
                if dialect not in declared:
                    self.warn(
                        (*path, dialect), f"prompt '{prompt_id}' has text for undeclared dialect '{dialect}'"
                    )
                if not text.strip():
                    self.error((*path, dialect), f"prompt '{prompt_id}' has empty '{dialect}' text")
            covered: dict[str, list[str]] = {}
            for dialect in declared:
                if dialect in texts:
                    continue
                via = self.fallback_for(dialect, texts)
                if via is None:
                    self.error(
                        path,
                        f"prompt '{prompt_id}' has no '{dialect}' text and no fallback covers it",
                    )
                else:
                    covered.setdefault(via, []).append(dialect)
            for via, dialects in covered.items():
                self.warn(
                    path, f"prompt '{prompt_id}' has no {', '.join(dialects)} text; falls back to '{via}'"
                )

    def fallback_for(self, dialect: str, texts: Mapping[str, str]) -> str | None:
        chain = fallback_chain(dialect, self.fallbacks, self.spec.default_dialect)
        return next((d for d in chain[1:] if d in texts), None)

    def check_intents(self) -> None:
        for name, intent in self.spec.intents.items():
            path: Path = ("intents", name)
            if not any(p.strip() for phrases in intent.phrases.values() for p in phrases):
                self.error(path, f"intent '{name}' has no example phrases")
            for dialect in intent.phrases:
                if dialect not in self.spec.dialects:
                    self.error(
                        (*path, "phrases", dialect),
                        f"intent '{name}' has phrases for undeclared dialect '{dialect}'",
                    )

    # -- nodes --------------------------------------------------------------------------------

    def check_node(self, node: Node) -> None:
        base: Path = ("nodes", node.id)
        name = f"node '{node.id}'"
        if isinstance(node, ListeningNode):
            for which in ("no_input", "no_match"):
                if getattr(node, which).max < 1:
                    self.error((*base, which, "max"), f"{name} {which} max must be 1 or more")
            if node.timeout_s <= 0:
                self.error((*base, "timeout_s"), f"{name} timeout_s must be more than 0")
        if isinstance(node, MenuNode) and not node.keys:
            self.error(base, f"{name} has no keys")
        if (
            isinstance(node, MenuNode | AskNode)
            and node.human_key is not None
            and node.human_key not in node.keys
            and self.spec.human is None
        ):
            self.warn(
                base,
                f"{name} sends key {node.human_key} to a human, but the flow has no 'human' node: the caller "
                "would hear the on_error apology (add `human: NODE`, or `human_key: null`)",
            )
        if isinstance(node, AskNode):
            self.check_ask(node, base)
        if isinstance(node, CollectNode):
            if node.min_length < 1:
                self.error((*base, "min_length"), f"{name} min_length must be 1 or more")
            if node.max_length < node.min_length:
                self.error(
                    (*base, "max_length"),
                    f"{name} max_length ({node.max_length}) is less than min_length ({node.min_length})",
                )
            if node.terminator not in ("#", "*"):
                self.error(
                    (*base, "terminator"), f"{name} terminator must be '#' or '*', got '{node.terminator}'"
                )
        if isinstance(node, MessageNode):
            self.check_message(node, base)
        if isinstance(node, SurveyNode) and node.comment_prompt is not None:
            self.check_ranges(node, base, (("comment_below", 0, 9), ("comment_max_s", 5.0, 120.0)))
        if isinstance(node, RecordPromptsNode):
            self.check_ranges(node, base, (("pin_tries", 1, 5), ("max_length_s", 2.0, 120.0),
                                           ("silence_s", 1.0, 10.0), ("timeout_s", 2.0, 60.0)))
        if isinstance(node, BranchNode) and not node.cases:
            self.error(base, f"{name} has no cases")
        if isinstance(node, HttpNode):
            if not 0 <= node.retries <= 5:
                self.error((*base, "retries"), f"{name} retries must be between 0 and 5, got {node.retries}")
            if not 0 < node.timeout_s <= 30:
                self.error((*base, "timeout_s"), f"{name} timeout_s must be more than 0 and at most 30")
            for status in node.on_status:
                if not (status.isascii() and status.isdigit() and 100 <= int(status) <= 599):
                    self.error(
                        (*base, "on_status", status), f"{name} on_status has '{status}', not an HTTP status"
                    )
        if isinstance(node, ScheduleNode):
            if not node.hours:
                self.error(base, f"{name} has no opening hours")
            for i, hours in enumerate(node.hours):
                if hours.start == hours.end:
                    self.error((*base, "hours", str(i)), f"{name} hours open and close at the same time")
            self.check_holidays(node, base, name)
        if isinstance(node, ReturnNode) and not any(
            isinstance(n, SubflowNode) for n in self.spec.nodes.values()
        ):
            self.error(base, f"{name} returns, but no subflow node calls into this flow")

    def check_holidays(self, node: ScheduleNode, base: Path, name: str) -> None:
        """A holiday list is dated (official holidays are announced a year at a time): warn when it has run out,
        and through December when next year's dates are not in it yet, before its holidays route as working
        days. A node without holidays never had any: nothing to say."""
        if self.today is None or not node.holidays:
            return
        last, year = max(node.holidays), self.today.year
        if last.year < year:
            self.warn((*base, "holidays"), f"{name} lists no holiday in {year} (the last is {last}): this year's "
                      "holidays route as working days until their dates are added")
        elif self.today.month == 12 and last.year == year:
            self.warn((*base, "holidays"), f"{name} lists no holiday in {year + 1} yet (the last is {last}): from "
                      f"{year + 1}-01-01 holidays route as working days until their dates are added")

    def check_ranges(self, node: Node, base: Path, limits: tuple[tuple[str, float, float], ...]) -> None:
        for field_name, low, high in limits:
            value = getattr(node, field_name)
            if not low <= value <= high:
                problem = f"node '{node.id}' {field_name} must be between {low:g} and {high:g}, got {value:g}"
                self.error((*base, field_name), problem)

    def check_message(self, node: MessageNode, base: Path) -> None:
        """Bounded recordings: every message is a file someone must listen to, and disk is finite."""
        name = f"node '{node.id}'"
        self.check_ranges(node, base, (("max_length_s", 5.0, MAX_MESSAGE_S), ("silence_s", 1.0, 10.0),
                                       ("timeout_s", 1.0, 30.0)))
        if node.end_key not in ("#", "*", ""):
            self.error((*base, "end_key"), f"{name} end_key must be '#', '*' or '' (none), got '{node.end_key}'")

    def check_ask(self, node: AskNode, base: Path) -> None:
        name = f"node '{node.id}'"
        th = node.thresholds
        ok = self.check_thresholds(th, (*base, "thresholds"), name)
        if node.no_match.thresholds is not None:
            self.check_thresholds(node.no_match.thresholds, (*base, "no_match", "thresholds"), f"{name} no_match")
        if ok and th.confirm < th.act and node.confirm_prompt is None:
            self.warn(base, f"{name} has no confirm_prompt: scores between confirm and act are asked again")
        if not node.intents:
            self.error(base, f"{name} maps no intents")
        for i, lang in enumerate(node.switch_language):
            if lang not in self.spec.dialects:
                self.error(
                    (*base, "switch_language", str(i)), f"{name} switches to undeclared dialect '{lang}'"
                )
        self.check_answers(node, base)
        for intent, words in node.keywords.items():
            if not words:
                self.error((*base, "keywords", intent), f"{name} keywords for '{intent}' are empty")
            elif node.intents and intent not in node.intents:
                self.warn(
                    (*base, "keywords", intent),
                    f"{name} has keywords for '{intent}', which it maps to no node: they are ignored",
                )

    def check_thresholds(self, th: Thresholds, path: Path, name: str) -> bool:
        """Each level between 0 and 1, `confirm` not above `act`; False when a level is out of range."""
        ok = True
        for which in ("act", "confirm"):
            value = getattr(th, which)
            if not 0.0 <= value <= 1.0:
                self.error((*path, which), f"{name} threshold '{which}' must be between 0 and 1, got {value}")
                ok = False
        if ok and th.confirm > th.act:
            self.error((*path, "confirm"), f"{name} threshold 'confirm' ({th.confirm}) is above 'act' ({th.act})")
        return ok

    def check_answers(self, node: AskNode, base: Path) -> None:
        """`no_match.answers`: intents the node maps, declared dialects, and no answer naming two intents."""
        name = f"node '{node.id}'"
        owner: dict[tuple[str, str], str] = {}
        for intent, by_lang in node.no_match.answers.items():
            path: Path = (*base, "no_match", "answers", intent)
            if node.intents and intent not in node.intents:
                self.error(path, f"{name} no_match answers name '{intent}', which it maps to no node")
            for lang, answers in by_lang.items():
                if lang not in self.spec.dialects:
                    self.error((*path, lang), f"{name} no_match answers for undeclared dialect '{lang}'")
                if not any(a.strip() for a in answers):
                    self.error((*path, lang), f"{name} no_match answers for '{intent}' in '{lang}' are empty")
                for i, answer in enumerate(answers):
                    other = owner.setdefault((lang, answer.strip().lower()), intent)
                    if other != intent:
                        self.error((*path, lang, str(i)),
                                   f"{name} no_match answer '{answer}' names both '{other}' and '{intent}'")

    # -- graph --------------------------------------------------------------------------------

    def check_graph(self) -> None:
        spec = self.spec
        start = spec.start or next(iter(spec.nodes))
        if start not in spec.nodes:
            return  # reported as an unknown node reference
        if self.broken(("nodes",)):
            return  # edges of a broken node are unknown: reachability and loops would mislead
        seen = reachable(spec, start)
        for node_id in spec.nodes:
            if node_id not in seen and not self.dangling:
                self.error(
                    ("nodes", node_id), f"node '{node_id}' is unreachable from the start node '{start}'"
                )
        self.check_busy_loops()
        self.check_growth()

    def check_busy_loops(self) -> None:
        """A cycle through nodes none of which waits for the caller would spin forever."""
        spec = self.spec
        busy = [nid for nid, n in spec.nodes.items() if not n.WAITS]
        adjacency: dict[str, list[str]] = {nid: [] for nid in busy}
        for e in edges(spec):
            if e.source in busy and e.target in busy:
                adjacency[e.source].append(e.target)
        for cycle in _cycles(adjacency):
            loop = " → ".join([*cycle, cycle[0]])
            self.error(("nodes", cycle[0]), f"loop never waits for input: {loop}")


    def check_growth(self) -> None:
        """A `set` that feeds a variable into itself (`n: n * n`) on a loop grows it every time round."""
        graph: dict[str, list[str]] | None = None
        for node in self.spec.nodes.values():
            if not isinstance(node, SetNode):
                continue
            for name, expression in node.values.items():
                how = growth(expression.root, name)
                if how is None:
                    continue
                graph = graph if graph is not None else adjacency(self.spec)
                if any(node.id in reach(graph, w) for w in graph.get(node.id, ())):
                    self.warn(
                        ("nodes", node.id, "values", name),
                        f"node '{node.id}' grows '{name}' from itself with {how} each time its loop comes "
                        "round: past the bounds of a value the call goes to on_error",
                    )


def _cycles(adjacency: Mapping[str, list[str]]) -> list[list[str]]:
    """One representative cycle per strongly connected component that has one (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in adjacency:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack.add(v)
            succ = adjacency.get(v, [])
            if i < len(succ):
                work.append((v, i + 1))
                w = succ[i]
                if w not in index:
                    work.append((w, 0))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            if low[v] == index[v]:
                comp: list[str] = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1 or v in adjacency.get(v, []):
                    out.append(_order_cycle(comp, adjacency))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return out


def _order_cycle(comp: list[str], adjacency: Mapping[str, list[str]]) -> list[str]:
    """Walk the component from its first-declared member back to it, for a readable message."""
    members = set(comp)
    first = min(comp, key=list(adjacency).index)
    path = [first]
    seen = {first}
    current = first
    while True:
        nxt = [w for w in adjacency[current] if w in members]
        back = next((w for w in nxt if w == first), None)
        fresh = next((w for w in nxt if w not in seen), None)
        if back is not None and (fresh is None or len(path) == len(members)):
            return path
        if fresh is None:
            return path
        path.append(fresh)
        seen.add(fresh)
        current = fresh


def check(conv: Converter, spec: FlowSpec, fallbacks: Mapping[str, tuple[str, ...]],
          today: dt.date | None = None) -> None:
    """Add every whole-flow problem of `spec` to `conv.problems` (`today`: see `Checker.today`)."""
    Checker(conv, spec, fallbacks, today).run()
