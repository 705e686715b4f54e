"""ACD configuration: sites and agents (agents.yaml), queues, night rule and cluster (queues.yaml).

YAML is turned into frozen dataclasses once, here; every mistake is refused with
`file:line:column: message` naming the thing at fault (and a near spelling when there is one).
"""

from __future__ import annotations

import difflib
import enum
import pathlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from ivr.acd.errors import AcdConfigError
from ivr.acd.strategy import Strategy
from ivr.call import RecordingMode


@dataclass(slots=True, frozen=True)
class SipCredentials:
    username: str
    password: str | None = None
    """Clear text: the demo's way. Production files keep only the HA1 digests (`ivr agents passwd ID`)."""
    ha1_md5: str | None = None
    ha1_sha256: str | None = None


@dataclass(slots=True, frozen=True)
class SiteConfig:
    site_id: str
    region: str
    name: str = ""
    central: bool = False
    """A central site serves the whole country at night."""


@dataclass(slots=True, frozen=True)
class AgentConfig:
    agent_id: str
    sip: SipCredentials
    site: str
    skills: Mapping[str, int] = field(default_factory=dict)
    """Skill name to level 1 (basic) .. 5 (expert)."""
    dialects: tuple[str, ...] = ("cmn",)
    name: str = ""
    max_calls: int = 1
    wrap_up_s: float = 10.0
    supervisor: bool = False
    """May use supervisors' feature codes (listen, whisper, barge) and control other agents."""


class OverflowKind(enum.Enum):
    QUEUE = "queue"
    SITE = "site"
    CALLBACK = "callback"
    GOODBYE = "goodbye"


@dataclass(slots=True, frozen=True)
class OverflowTarget:
    kind: OverflowKind
    target: str | None = None

    def __str__(self) -> str:
        return self.kind.value if self.target is None else f"{self.kind.value}:{self.target}"


@dataclass(slots=True, frozen=True)
class QueueConfig:
    queue_id: str
    region: str = ""
    sites: tuple[str, ...] = ()
    """Home sites whose agents serve the queue; empty: every site."""
    skill: str | None = None
    """Agents with this skill (any level) are members; None: every agent."""
    strategy: Strategy = Strategy.LONGEST_IDLE
    ring_timeout_s: float = 20.0
    max_no_answer: int = 3
    """Consecutive misses after which the agent is paused with reason `no_answer`."""
    retry_after_s: float = 10.0
    """An agent who missed a caller is not offered that caller again for this long."""
    widen_after_s: float = 30.0
    """After this wait any dialect is accepted; after twice this, any level of the wanted skills."""
    max_wait_s: float | None = None
    max_length: int | None = None
    overflow: OverflowTarget | None = None
    handle_time_s: float = 180.0
    """Assumed handle time until real calls have been measured (estimated wait)."""
    announce_every_s: float = 30.0
    """How often the call layer should announce position and wait."""
    join_empty: bool = False
    """Accept callers while no member agent is logged in (else they get UNAVAILABLE at once)."""
    recording: RecordingMode | None = None
    """Record calls answered from this queue (a flow's queue node may say otherwise); None: `recording_default`."""


@dataclass(slots=True, frozen=True)
class NightRule:
    start_min: int
    """Minutes after local midnight when night starts (22:00 -> 1320)."""
    end_min: int
    utc_offset_h: float
    helper_sites: tuple[str, ...]
    queues: tuple[str, ...]


@dataclass(slots=True, frozen=True)
class AcdConfig:
    sites: Mapping[str, SiteConfig]
    agents: Mapping[str, AgentConfig]
    queues: Mapping[str, QueueConfig]
    night: NightRule | None = None
    lease_s: float = 15.0
    """A node whose heartbeat is older than this is dead (Redis backend)."""
    seed: int = 0
    """Seed of the RNG used by the `random` strategy (same on every node)."""

    def agent_by_sip_username(self, username: str) -> AgentConfig | None:
        for agent in self.agents.values():
            if agent.sip.username == username:
                return agent
        return None


# --- YAML with positions -----------------------------------------------------------------------

_SAFE = yaml.constructor.SafeConstructor()


class _Node:
    """A YAML node and the file it came from, with typed accessors that fail with file:line:col."""

    __slots__ = ("node", "file")

    def __init__(self, node: yaml.Node, file: str) -> None:
        self.node = node
        self.file = file

    def where(self) -> str:
        mark = self.node.start_mark
        return f"{self.file}:{mark.line + 1}:{mark.column + 1}"

    def error(self, message: str) -> AcdConfigError:
        return AcdConfigError(f"{self.where()}: {message}")

    def value(self) -> Any:
        if not isinstance(self.node, yaml.ScalarNode):
            raise self.error("expected a single value")
        return _SAFE.construct_object(self.node, deep=True)

    def mapping(self, what: str, allowed: tuple[str, ...] | None = None) -> dict[str, _Node]:
        if not isinstance(self.node, yaml.MappingNode):
            raise self.error(f"{what} must be a mapping")
        out: dict[str, _Node] = {}
        for key_node, value_node in self.node.value:
            key = _Node(key_node, self.file)
            name = key.value()
            if not isinstance(name, str):
                raise key.error(f"{what}: keys must be names, got {name!r}")
            if name in out:
                raise key.error(f"{what}: duplicate key {name!r}")
            if allowed is not None and name not in allowed:
                raise key.error(f"{what}: unknown key {name!r}{_suggest(name, allowed)}")
            out[name] = _Node(value_node, self.file)
        return out

    def seq(self, what: str) -> list[_Node]:
        if not isinstance(self.node, yaml.SequenceNode):
            raise self.error(f"{what} must be a list")
        return [_Node(n, self.file) for n in self.node.value]

    def text(self, what: str) -> str:
        v = self.value()
        if isinstance(v, bool) or not isinstance(v, str | int) or v == "":
            raise self.error(f"{what} must be a non-empty text, got {v!r}")
        return str(v)

    def integer(self, what: str, low: int, high: int | None = None) -> int:
        v = self.value()
        if isinstance(v, bool) or not isinstance(v, int) or v < low or (high is not None and v > high):
            bound = f"{low}..{high}" if high is not None else f">= {low}"
            raise self.error(f"{what} must be an integer {bound}, got {v!r}")
        return v

    def seconds(self, what: str) -> float:
        v = self.value()
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
            raise self.error(f"{what} must be a number of seconds >= 0, got {v!r}")
        return float(v)

    def flag(self, what: str) -> bool:
        v = self.value()
        if not isinstance(v, bool):
            raise self.error(f"{what} must be true or false, got {v!r}")
        return v

    def texts(self, what: str) -> tuple[str, ...]:
        return tuple(item.text(f"{what} item") for item in self.seq(what))


def _suggest(name: str, choices: Any) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _compose(text: str, file: str) -> _Node | None:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark is not None else file
        raise AcdConfigError(f"{where}: YAML syntax: {exc.problem}") from exc
    return None if node is None else _Node(node, file)


def _time_of_day(node: _Node, what: str) -> int:
    v = node.value()
    if isinstance(v, int) and not isinstance(v, bool):  # YAML 1.1 reads 22:00 as base-60 1320
        minutes = v
    elif isinstance(v, str) and len(v.split(":")) == 2 and all(p.isdigit() for p in v.split(":")):
        hours, mins = (int(p) for p in v.split(":"))
        minutes = hours * 60 + mins
    else:
        raise node.error(f"{what} must be a time of day HH:MM, got {v!r}")
    if not 0 <= minutes < 24 * 60:
        raise node.error(f"{what} must be a time of day HH:MM, got {v!r}")
    return minutes


# --- agents.yaml ---------------------------------------------------------------------------------

_AGENT_KEYS = ("id", "name", "sip", "site", "skills", "dialects", "max_calls", "wrap_up_s", "supervisor")


def _parse_sites(root: _Node) -> dict[str, SiteConfig]:
    sites: dict[str, SiteConfig] = {}
    for item in root.seq("sites"):
        m = item.mapping("site", ("id", "name", "region", "central"))
        if "id" not in m or "region" not in m:
            raise item.error("site needs 'id' and 'region'")
        site_id = m["id"].text("site id")
        if site_id in sites:
            raise m["id"].error(f"duplicate site id {site_id!r}")
        sites[site_id] = SiteConfig(
            site_id=site_id,
            region=m["region"].text(f"site {site_id!r} region"),
            name=m["name"].text(f"site {site_id!r} name") if "name" in m else "",
            central=m["central"].flag(f"site {site_id!r} central") if "central" in m else False,
        )
    return sites


def _parse_agent(item: _Node, sites: Mapping[str, SiteConfig]) -> AgentConfig:
    m = item.mapping("agent", _AGENT_KEYS)
    for needed in ("id", "sip", "site"):
        if needed not in m:
            raise item.error(f"agent needs {needed!r}")
    agent_id = m["id"].text("agent id")
    sip = m["sip"].mapping(f"agent {agent_id!r} sip", ("username", "password", "ha1_md5", "ha1_sha256"))
    if "username" not in sip or not {"password", "ha1_md5", "ha1_sha256"} & set(sip):
        raise m["sip"].error(f"agent {agent_id!r} sip needs 'username' and 'password' (or 'ha1_md5'/'ha1_sha256')")
    secrets = {key: sip[key].text(f"agent {agent_id!r} sip {key}") if key in sip else None
               for key in ("password", "ha1_md5", "ha1_sha256")}
    for key, size in (("ha1_md5", 32), ("ha1_sha256", 64)):
        value = secrets[key]
        if value is not None and not re.fullmatch(f"[0-9a-fA-F]{{{size}}}", value):
            raise sip[key].error(f"agent {agent_id!r} sip {key} must be {size} hex digits")
    site = m["site"].text(f"agent {agent_id!r} site")
    if site not in sites:
        raise m["site"].error(f"agent {agent_id!r} is at unknown site {site!r}{_suggest(site, sites)}")
    skills: dict[str, int] = {}
    if "skills" in m:
        for name, level in m["skills"].mapping(f"agent {agent_id!r} skills").items():
            skills[name] = level.integer(f"agent {agent_id!r} skill {name!r} level", 1, 5)
    dialects = m["dialects"].texts(f"agent {agent_id!r} dialects") if "dialects" in m else ("cmn",)
    if not dialects:
        raise m["dialects"].error(f"agent {agent_id!r} must speak at least one dialect")
    return AgentConfig(
        agent_id=agent_id,
        name=m["name"].text(f"agent {agent_id!r} name") if "name" in m else "",
        sip=SipCredentials(sip["username"].text(f"agent {agent_id!r} sip username"), **secrets),
        site=site,
        skills=skills,
        dialects=dialects,
        max_calls=m["max_calls"].integer(f"agent {agent_id!r} max_calls", 1, 10) if "max_calls" in m else 1,
        wrap_up_s=m["wrap_up_s"].seconds(f"agent {agent_id!r} wrap_up_s") if "wrap_up_s" in m else 10.0,
        supervisor=m["supervisor"].flag(f"agent {agent_id!r} supervisor") if "supervisor" in m else False,
    )


def _parse_agents_doc(root: _Node) -> tuple[dict[str, SiteConfig], dict[str, AgentConfig]]:
    top = root.mapping("agents file", ("sites", "agents"))
    if "sites" not in top or "agents" not in top:
        raise root.error("agents file needs 'sites' and 'agents'")
    sites = _parse_sites(top["sites"])
    agents: dict[str, AgentConfig] = {}
    usernames: dict[str, str] = {}
    for item in top["agents"].seq("agents"):
        agent = _parse_agent(item, sites)
        if agent.agent_id in agents:
            raise item.error(f"duplicate agent id {agent.agent_id!r}")
        if agent.sip.username in usernames:
            raise item.error(
                f"agent {agent.agent_id!r} reuses SIP username {agent.sip.username!r} "
                f"of agent {usernames[agent.sip.username]!r}"
            )
        usernames[agent.sip.username] = agent.agent_id
        agents[agent.agent_id] = agent
    return sites, agents


# --- queues.yaml ---------------------------------------------------------------------------------

_QUEUE_KEYS = (
    "id",
    "region",
    "sites",
    "skill",
    "strategy",
    "ring_timeout_s",
    "max_no_answer",
    "retry_after_s",
    "widen_after_s",
    "max_wait_s",
    "max_length",
    "overflow",
    "handle_time_s",
    "announce_every_s",
    "join_empty",
    "recording",
)
_SECONDS = (
    "ring_timeout_s",
    "retry_after_s",
    "widen_after_s",
    "max_wait_s",
    "handle_time_s",
    "announce_every_s",
)


def _parse_overflow(node: _Node, queue_id: str) -> OverflowTarget:
    text = node.text(f"queue {queue_id!r} overflow")
    kind_text, _, target = text.partition(":")
    kinds = [k.value for k in OverflowKind]
    if kind_text not in kinds:
        raise node.error(
            f"queue {queue_id!r} overflow must be queue:NAME, site:NAME, callback or goodbye, got {text!r}"
        )
    kind = OverflowKind(kind_text)
    if kind in (OverflowKind.QUEUE, OverflowKind.SITE) and not target:
        raise node.error(f"queue {queue_id!r} overflow {kind_text!r} needs a name after ':'")
    if kind in (OverflowKind.CALLBACK, OverflowKind.GOODBYE) and target:
        raise node.error(f"queue {queue_id!r} overflow {kind_text!r} takes no name")
    return OverflowTarget(kind, target or None)


def _parse_recording(node: _Node, queue_id: str) -> RecordingMode:
    text = node.text(f"queue {queue_id!r} recording")
    names = [mode.value for mode in RecordingMode]
    if text not in names:
        raise node.error(f"queue {queue_id!r} recording {text!r}: expected one of {', '.join(names)}")
    return RecordingMode(text)


def _parse_queue(item: _Node, defaults: Mapping[str, _Node], sites: Mapping[str, SiteConfig]) -> QueueConfig:
    m = {**defaults, **item.mapping("queue", _QUEUE_KEYS)}
    if "id" not in m:
        raise item.error("queue needs 'id'")
    qid = m["id"].text("queue id")
    kwargs: dict[str, Any] = {"queue_id": qid}
    for key in _SECONDS:
        if key in m:
            kwargs[key] = m[key].seconds(f"queue {qid!r} {key}")
    if "region" in m:
        kwargs["region"] = m["region"].text(f"queue {qid!r} region")
    if "sites" in m:
        queue_sites = m["sites"].texts(f"queue {qid!r} sites")
        for site_node, site in zip(m["sites"].seq("sites"), queue_sites, strict=True):
            if site not in sites:
                raise site_node.error(f"queue {qid!r} names unknown site {site!r}{_suggest(site, sites)}")
        kwargs["sites"] = queue_sites
    if "skill" in m:
        kwargs["skill"] = m["skill"].text(f"queue {qid!r} skill")
    if "recording" in m:
        kwargs["recording"] = _parse_recording(m["recording"], qid)
    if "strategy" in m:
        name = m["strategy"].text(f"queue {qid!r} strategy")
        names = [s.value for s in Strategy]
        if name not in names:
            raise m["strategy"].error(
                f"queue {qid!r} has unknown strategy {name!r}{_suggest(name, names)}; "
                f"expected one of {', '.join(names)}"
            )
        kwargs["strategy"] = Strategy(name)
    if "max_no_answer" in m:
        kwargs["max_no_answer"] = m["max_no_answer"].integer(f"queue {qid!r} max_no_answer", 1)
    if "max_length" in m:
        kwargs["max_length"] = m["max_length"].integer(f"queue {qid!r} max_length", 1)
    if "overflow" in m:
        kwargs["overflow"] = _parse_overflow(m["overflow"], qid)
    if "join_empty" in m:
        kwargs["join_empty"] = m["join_empty"].flag(f"queue {qid!r} join_empty")
    if ("max_wait_s" in kwargs or "max_length" in kwargs) and "overflow" not in kwargs:
        raise item.error(f"queue {qid!r} has max_wait_s or max_length but no overflow target")
    return QueueConfig(**kwargs)


def _check_overflow(
    queues: Mapping[str, QueueConfig], nodes: Mapping[str, _Node], sites: Mapping[str, SiteConfig]
) -> None:
    for qid, queue in queues.items():
        target = queue.overflow
        if target is None or target.target is None:
            continue
        where = nodes[qid]
        if target.kind is OverflowKind.QUEUE and target.target not in queues:
            raise where.error(
                f"queue {qid!r} overflows to unknown queue {target.target!r}{_suggest(target.target, queues)}"
            )
        if target.kind is OverflowKind.SITE and target.target not in sites:
            raise where.error(
                f"queue {qid!r} overflows to unknown site {target.target!r}{_suggest(target.target, sites)}"
            )
    for qid in queues:  # queue overflow chains must end
        seen = [qid]
        nxt = queues[qid].overflow
        while nxt is not None and nxt.kind is OverflowKind.QUEUE and nxt.target is not None:
            if nxt.target in seen:
                raise nodes[qid].error(f"queue overflow loops: {' -> '.join([*seen, nxt.target])}")
            seen.append(nxt.target)
            nxt = queues[nxt.target].overflow


def _parse_night(node: _Node, sites: Mapping[str, SiteConfig], queue_ids: list[str]) -> NightRule:
    m = node.mapping("night", ("start", "end", "utc_offset_h", "helper_sites", "queues"))
    for needed in ("start", "end", "helper_sites"):
        if needed not in m:
            raise node.error(f"night needs {needed!r}")
    helpers = m["helper_sites"].texts("night helper_sites")
    for site_node, site in zip(m["helper_sites"].seq("helper_sites"), helpers, strict=True):
        if site not in sites:
            raise site_node.error(f"night names unknown helper site {site!r}{_suggest(site, sites)}")
    queues: tuple[str, ...] = tuple(queue_ids)
    if "queues" in m and m["queues"].node.tag != "tag:yaml.org,2002:str":
        queues = m["queues"].texts("night queues")
        for q_node, q in zip(m["queues"].seq("queues"), queues, strict=True):
            if q not in queue_ids:
                raise q_node.error(f"night names unknown queue {q!r}{_suggest(q, queue_ids)}")
    elif "queues" in m and m["queues"].value() != "all":
        raise m["queues"].error("night queues must be a list of queue ids or 'all'")
    offset = m["utc_offset_h"].value() if "utc_offset_h" in m else 8
    if isinstance(offset, bool) or not isinstance(offset, int | float) or not -12 <= offset <= 14:
        raise m["utc_offset_h"].error(f"night utc_offset_h must be hours -12..14, got {offset!r}")
    return NightRule(
        start_min=_time_of_day(m["start"], "night start"),
        end_min=_time_of_day(m["end"], "night end"),
        utc_offset_h=float(offset),
        helper_sites=helpers,
        queues=queues,
    )


def parse_config(
    agents_text: str,
    queues_text: str,
    *,
    agents_file: str = "agents.yaml",
    queues_file: str = "queues.yaml",
) -> AcdConfig:
    """Build the configuration from the two YAML texts; raises AcdConfigError at the first fault."""
    agents_root = _compose(agents_text, agents_file)
    if agents_root is None:
        raise AcdConfigError(f"{agents_file}:1:1: file is empty; expected 'sites' and 'agents'")
    sites, agents = _parse_agents_doc(agents_root)
    queues_root = _compose(queues_text, queues_file)
    if queues_root is None:
        raise AcdConfigError(f"{queues_file}:1:1: file is empty; expected 'queues'")
    top = queues_root.mapping("queues file", ("defaults", "queues", "night", "cluster"))
    if "queues" not in top:
        raise queues_root.error("queues file needs 'queues'")
    defaults = top["defaults"].mapping("defaults", _QUEUE_KEYS[1:]) if "defaults" in top else {}
    queues: dict[str, QueueConfig] = {}
    nodes: dict[str, _Node] = {}
    for item in top["queues"].seq("queues"):
        queue = _parse_queue(item, defaults, sites)
        if queue.queue_id in queues:
            raise item.error(f"duplicate queue id {queue.queue_id!r}")
        queues[queue.queue_id] = queue
        nodes[queue.queue_id] = item
    _check_overflow(queues, nodes, sites)
    night = _parse_night(top["night"], sites, list(queues)) if "night" in top else None
    lease_s, seed = 15.0, 0
    if "cluster" in top:
        cluster = top["cluster"].mapping("cluster", ("lease_s", "seed"))
        if "lease_s" in cluster:
            lease_s = cluster["lease_s"].seconds("cluster lease_s")
        if "seed" in cluster:
            seed = cluster["seed"].integer("cluster seed", 0)
    return AcdConfig(sites=sites, agents=agents, queues=queues, night=night, lease_s=lease_s, seed=seed)


def load_config(agents_path: str | pathlib.Path, queues_path: str | pathlib.Path) -> AcdConfig:
    """Read and parse config/agents.yaml and config/queues.yaml (errors name the file and line)."""
    a, q = pathlib.Path(agents_path), pathlib.Path(queues_path)
    for path in (a, q):
        if not path.is_file():
            raise AcdConfigError(f"{path}: no such file")
    return parse_config(
        a.read_text(encoding="utf-8"),
        q.read_text(encoding="utf-8"),
        agents_file=str(a),
        queues_file=str(q),
    )
