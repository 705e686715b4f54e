"""The typed flow model: frozen dataclasses built once, at load, from a flow file.

Field annotations are the schema. `Annotated[str, Ref.NODE]` and friends mark references that the
validator checks (and the graph draws); `yaml_name` metadata spells a field that is a Python keyword.
`ivr.flow.schema` turns composed YAML into these classes, `ivr.flow.jsonschema` publishes them.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from ivr.call import RecordingMode
from ivr.flow.expr import Expression

if TYPE_CHECKING:
    from ivr.flow.intents import Classifier


class Ref(enum.Enum):
    """What a text field names; checked at load."""

    NODE = "node"
    PROMPT = "prompt"
    QUEUE = "queue"
    INTENT = "intent"
    VARIABLE = "variable"
    DIALECT = "dialect"
    KEY = "key"
    TEMPLATE = "template"
    TIMEZONE = "timezone"
    SIP_URI = "sip_uri"
    NUMBER = "number"
    URL = "url"


NodeId = Annotated[str, Ref.NODE]
PromptId = Annotated[str, Ref.PROMPT]
QueueName = Annotated[str, Ref.QUEUE]
IntentName = Annotated[str, Ref.INTENT]
VarName = Annotated[str, Ref.VARIABLE]
DialectCode = Annotated[str, Ref.DIALECT]
DtmfKey = Annotated[str, Ref.KEY]
Template = Annotated[str, Ref.TEMPLATE]
TimeZoneName = Annotated[str, Ref.TIMEZONE]
SipUri = Annotated[str, Ref.SIP_URI]
PhoneNumber = Annotated[str, Ref.NUMBER]
UrlTemplate = Annotated[str, Ref.URL]
Scalar = str | int | float | bool | None

EMPTY: Mapping[Any, Any] = MappingProxyType({})


def yaml_name(name: str) -> dict[str, str]:
    return {"yaml": name}


def no_map() -> Any:
    """An empty, read-only mapping as a field default."""
    return field(default_factory=lambda: EMPTY)


class NodeType(enum.Enum):
    PLAY = "play"
    MENU = "menu"
    ASK = "ask"
    COLLECT = "collect"
    CONFIRM = "confirm"
    SET = "set"
    BRANCH = "branch"
    HTTP = "http"
    SCHEDULE = "schedule"
    QUEUE = "queue"
    TRANSFER = "transfer"
    SURVEY = "survey"
    SUBFLOW = "subflow"
    RETURN = "return"
    HANGUP = "hangup"
    MESSAGE = "message"
    RECORD_PROMPTS = "record_prompts"


class Checksum(enum.Enum):
    """Check digit of a collected number. `luhn` (ISO/IEC 7812, as on bank cards) is what the
    demo hotline's policy numbers use: any single mistyped digit and most swaps are caught."""

    NONE = "none"
    LUHN = "luhn"
    MOD11 = "mod11"


class HttpMethod(enum.Enum):
    GET = "GET"
    POST = "POST"


class Weekday(enum.Enum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


ALL_WEEKDAYS: tuple[Weekday, ...] = tuple(Weekday)

# --- shared parts ------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True, kw_only=True)
class Retry:
    """What to do when the caller says nothing (or nothing we understand)."""

    prompt: PromptId | None = None
    """Played before listening again; the node's own prompt when absent."""
    max: int = 3
    """Give up (go to `on_fail`) on this many-th time."""


@dataclass(slots=True, frozen=True, kw_only=True)
class Thresholds:
    """Intent confidence: act at >= `act`, confirm at >= `confirm`, else ask again."""

    act: float = 0.6
    confirm: float = 0.35


@dataclass(slots=True, frozen=True, kw_only=True)
class AskRetry(Retry):
    """An `ask` node's `no_match`: besides the prompt, what a caller asked again may answer."""

    answers: Mapping[IntentName, Mapping[DialectCode, tuple[str, ...]]] = no_map()
    """Intent → language → the short answers the retry prompt names ("claim", "payment", 理赔). After a
    no-match the recognizer listens for these alone (a narrow phrase list instead of every intent phrase),
    and an answer heard decides its intent, weighed by the recognizer's confidence."""
    thresholds: Thresholds | None = None
    """Act / confirm levels for an answer heard after a no-match; None: the node's own `thresholds`."""


@dataclass(slots=True, frozen=True, kw_only=True)
class Case:
    when: Expression
    goto: NodeId


@dataclass(slots=True, frozen=True, kw_only=True)
class Hours:
    """Opening hours on some weekdays; `to` before `from` runs past midnight."""

    days: tuple[Weekday, ...] = ALL_WEEKDAYS
    start: dt.time = field(metadata=yaml_name("from"))
    end: dt.time = field(metadata=yaml_name("to"))


@dataclass(slots=True, frozen=True, kw_only=True)
class Intent:
    phrases: Mapping[DialectCode, tuple[str, ...]] = no_map()
    """Example phrases per language: the classifier is trained on all of them."""
    label: Mapping[DialectCode, str] = no_map()
    """How the intent reads in a confirmation prompt (`{intent_label}`)."""


@dataclass(slots=True, frozen=True, kw_only=True)
class ErrorRoute:
    """Where a caller goes when a node fails: a human queue, with everything learned so far."""

    queue: QueueName | None = None
    """Defaults to `general` when declared, else the first queue."""
    priority: int = 5
    prompt: PromptId | None = None


# --- nodes --------------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True, kw_only=True)
class Node:
    kind: ClassVar[NodeType]
    WAITS: ClassVar[bool] = False
    """True when the node waits for the caller (a loop through it is not a busy loop)."""
    id: str = field(default="", metadata={"from_key": True})
    description: str = ""


@dataclass(slots=True, frozen=True, kw_only=True)
class PlayNode(Node):
    kind: ClassVar[NodeType] = NodeType.PLAY
    prompt: PromptId
    next: NodeId
    barge_in: bool = False


@dataclass(slots=True, frozen=True, kw_only=True)
class ListeningNode(Node):
    """Shared by the nodes that prompt and listen, with VoiceXML's no-input/no-match counters."""

    WAITS: ClassVar[bool] = True
    prompt: PromptId
    lead_in: tuple[PromptId, ...] = ()
    """Prompts played just before `prompt` the first time, in the same listen (a welcome, say):
    a caller who starts talking over them is heard, and need not wait and say it again."""
    no_input: Retry = Retry()
    no_match: Retry = Retry()
    on_fail: NodeId | None = None
    """After too many no-inputs/no-matches; the flow's `human` when absent."""
    timeout_s: float = 5.0
    typeahead: bool = True
    """Keys pressed before this node's prompt (during earlier prompts) count as its answer. Set false where the
    answer must follow the question (consent after a risk warning): earlier keys are then dropped."""


@dataclass(slots=True, frozen=True, kw_only=True)
class MenuNode(ListeningNode):
    kind: ClassVar[NodeType] = NodeType.MENU
    keys: Mapping[DtmfKey, NodeId]
    human_key: DtmfKey | None = "0"
    """This key reaches the flow's human unless `keys` uses it; null turns it off."""
    speech: bool = False
    """Also accept a spoken digit ("一", "two")."""


@dataclass(slots=True, frozen=True, kw_only=True)
class AskNode(ListeningNode):
    """Say your need once: speech and keys together, intents to nodes."""

    kind: ClassVar[NodeType] = NodeType.ASK
    intents: Mapping[IntentName, NodeId]
    keys: Mapping[DtmfKey, NodeId] = no_map()
    human_key: DtmfKey | None = "0"
    keywords: Mapping[IntentName, tuple[str, ...]] = no_map()
    """Words that decide the intent outright, overriding the classifier."""
    thresholds: Thresholds = Thresholds()
    confirm_prompt: PromptId | None = None
    """Asked when confidence is between `confirm` and `act`; `{intent_label}` names the intent."""
    switch_language: tuple[DialectCode, ...] = ()
    """Languages that, when the caller speaks them, become the call's dialect (e.g. `en`)."""
    no_match: AskRetry = AskRetry()
    timeout_s: float = 6.0


@dataclass(slots=True, frozen=True, kw_only=True)
class CollectNode(ListeningNode):
    kind: ClassVar[NodeType] = NodeType.COLLECT
    store: VarName
    next: NodeId
    min_length: int = 1
    max_length: int = 20
    terminator: DtmfKey = "#"
    inter_digit_timeout_s: float = 3.0
    checksum: Checksum = Checksum.NONE
    speech: bool = True
    """Also accept the digits spoken (Mandarin or English digit words)."""
    timeout_s: float = 8.0


@dataclass(slots=True, frozen=True, kw_only=True)
class ConfirmNode(ListeningNode):
    kind: ClassVar[NodeType] = NodeType.CONFIRM
    yes: NodeId
    no: NodeId


@dataclass(slots=True, frozen=True, kw_only=True)
class SurveyNode(ListeningNode):
    """Post-call NPS: 0..10 by keys (10 then #) or speech."""

    kind: ClassVar[NodeType] = NodeType.SURVEY
    next: NodeId | None = None
    store: VarName = "nps"
    thanks: PromptId | None = None
    no_input: Retry = Retry(max=1)
    no_match: Retry = Retry(max=2)
    comment_prompt: PromptId | None = None
    """Asked of a detractor (score at most `comment_below`): say what went wrong after the tone. The comment
    is kept like a voice message (kind `survey`), transcribed, and someone from the queue calls back."""
    comment_below: int = 6
    comment_max_s: float = 30.0


@dataclass(slots=True, frozen=True, kw_only=True)
class MessageNode(Node):
    """Leave a voice message: `prompt`, a beep, then the caller speaks until `end_key`, `silence_s` of
    silence or `max_length_s`. It is transcribed by the caller's recognizer, stored with the call and
    becomes a follow-up task: a target of `campaign` when set, else an entry in `queue`'s message list."""

    kind: ClassVar[NodeType] = NodeType.MESSAGE
    WAITS: ClassVar[bool] = True
    prompt: PromptId
    queue: QueueName
    next: NodeId
    empty: NodeId | None = None
    """Where a caller who said nothing goes; `next` when absent."""
    thanks: PromptId | None = None
    """Played once the message is stored."""
    campaign: str | None = None
    """Outbound campaign that calls the caller back (its id in `campaigns_dir`)."""
    languages: tuple[DialectCode, ...] = ()
    """Recognizers that also transcribe, besides the caller's dialect (e.g. `en`)."""
    max_length_s: float = 60.0
    silence_s: float = 3.0
    end_key: DtmfKey = "#"
    beep: bool = True
    timeout_s: float = 5.0
    """Nothing said this long after the beep: the message is empty."""


@dataclass(slots=True, frozen=True, kw_only=True)
class RecordPromptsNode(Node):
    """The prompt-recording line: staff key a PIN, pick a dialect pack and a prompt it still needs, record
    it after the beep, hear it back, then keep it (1), record again (2) or hear it again (3). A kept take
    becomes `prompts/<dialect>/<prompt-id>.wav`, which the next caller of that dialect hears."""

    kind: ClassVar[NodeType] = NodeType.RECORD_PROMPTS
    WAITS: ClassVar[bool] = True
    pin_prompt: PromptId
    bad_pin_prompt: PromptId
    dialect_prompt: PromptId
    """Says `{choices}` (1: cdo, 2: cmn...): key the dialect's number then #."""
    choose_prompt: PromptId
    """Says `{dialect}`, `{count}` still to record, and the next one: `{prompt_id}`, `{text}`."""
    record_prompt: PromptId
    """Says `{text}` to read after the beep."""
    review_prompt: PromptId
    saved_prompt: PromptId
    done_prompt: PromptId
    """Nothing (more) to record in `{dialect}`."""
    next: NodeId
    pin_tries: int = 3
    max_length_s: float = 30.0
    silence_s: float = 3.0
    timeout_s: float = 10.0
    """Keys: how long to wait for the first; recording: silence after the beep that means no take."""


@dataclass(slots=True, frozen=True, kw_only=True)
class SetNode(Node):
    kind: ClassVar[NodeType] = NodeType.SET
    values: Mapping[VarName, Expression]
    next: NodeId


@dataclass(slots=True, frozen=True, kw_only=True)
class BranchNode(Node):
    kind: ClassVar[NodeType] = NodeType.BRANCH
    cases: tuple[Case, ...]
    otherwise: NodeId = field(metadata=yaml_name("else"))


@dataclass(slots=True, frozen=True, kw_only=True)
class HttpNode(Node):
    """A data dip. 2xx → `next` (after `store`), a status in `on_status` → its node, else `fallback`."""

    kind: ClassVar[NodeType] = NodeType.HTTP
    url: UrlTemplate
    next: NodeId
    fallback: NodeId
    method: HttpMethod = HttpMethod.GET
    body: Mapping[str, Expression] = no_map()
    timeout_s: float = 2.0
    retries: int = 0
    store: Mapping[VarName, str] = no_map()
    """Variable ← dotted path into the JSON reply (`policy.status`)."""
    on_status: Mapping[str, NodeId] = no_map()
    breakpoint: bool = True
    """Record a journey breakpoint when falling back (self-service failed here)."""


@dataclass(slots=True, frozen=True, kw_only=True)
class ScheduleNode(Node):
    kind: ClassVar[NodeType] = NodeType.SCHEDULE
    timezone: TimeZoneName
    hours: tuple[Hours, ...]
    open: NodeId
    closed: NodeId
    holidays: tuple[dt.date, ...] = ()
    holiday: NodeId | None = None
    """Where holidays go; `closed` when absent."""


@dataclass(slots=True, frozen=True, kw_only=True)
class QueueNode(Node):
    kind: ClassVar[NodeType] = NodeType.QUEUE
    WAITS: ClassVar[bool] = True
    queue: QueueName
    priority: int = 0
    skills: Mapping[str, int] = no_map()
    context: tuple[VarName, ...] = ()
    """Variables passed to the agent (intent, transcript, dialect... always are)."""
    prompt: PromptId | None = None
    answered: NodeId | None = None
    overflow: NodeId | None = None
    abandoned: NodeId | None = None
    callback: NodeId | None = None
    unavailable: NodeId | None = None
    recording: RecordingMode | None = None
    """Record the call with the agent: `always`, `consent` (after the consent announcement) or `never`;
    absent: the queue's policy (config `recording_queues`)."""


@dataclass(slots=True, frozen=True, kw_only=True)
class TransferNode(Node):
    kind: ClassVar[NodeType] = NodeType.TRANSFER
    WAITS: ClassVar[bool] = True
    target: SipUri
    prompt: PromptId | None = None
    failed: NodeId | None = None
    context: tuple[VarName, ...] | None = None
    """Carry the caller's context (intent, summary, dialect, journey id and these variables) to the
    target in User-to-User and X-IVR headers; None: no context."""
    customer: VarName | None = None
    """The variable holding the customer's id, sent as the context's customer id."""
    bridge: bool = False
    """Place the call to the target ourselves and relay (the context goes in our INVITE), instead of
    REFERring the caller's side there."""


@dataclass(slots=True, frozen=True, kw_only=True)
class SubflowNode(Node):
    kind: ClassVar[NodeType] = NodeType.SUBFLOW
    start: NodeId = field(metadata=yaml_name("call"))
    next: NodeId


@dataclass(slots=True, frozen=True, kw_only=True)
class ReturnNode(Node):
    kind: ClassVar[NodeType] = NodeType.RETURN


@dataclass(slots=True, frozen=True, kw_only=True)
class HangupNode(Node):
    kind: ClassVar[NodeType] = NodeType.HANGUP
    prompt: PromptId | None = None


NODE_TYPES: Mapping[NodeType, type[Node]] = MappingProxyType(
    {
        cls.kind: cls
        for cls in (
            PlayNode,
            MenuNode,
            AskNode,
            CollectNode,
            ConfirmNode,
            SetNode,
            BranchNode,
            HttpNode,
            ScheduleNode,
            QueueNode,
            TransferNode,
            SurveyNode,
            SubflowNode,
            ReturnNode,
            HangupNode,
            MessageNode,
            RecordPromptsNode,
        )
    }
)

DEFAULT_FALLBACKS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"cmn": (), "nan": ("cmn",), "wuu": ("cmn",), "hak": ("cmn",), "yue": ("cmn",), "en": ()}
)
"""Dialect → dialects whose text may stand in, in order (the dialect packs may supply their own)."""


@dataclass(slots=True, frozen=True, kw_only=True)
class FlowSpec:
    """A flow file as written (the top-level YAML mapping)."""

    id: str
    version: str = "1"
    description: str = ""
    numbers: tuple[PhoneNumber, ...] = ()
    dialects: tuple[DialectCode, ...] = ("cmn",)
    default_dialect: DialectCode = "cmn"
    queues: tuple[str, ...] = ()
    variables: Mapping[VarName, Scalar] = no_map()
    intents: Mapping[str, Intent] = no_map()
    prompts: Mapping[str, Mapping[DialectCode, Template]] = no_map()
    human: NodeId | None = None
    """Where key 0 at any menu goes; the `on_error` queue when absent."""
    on_error: ErrorRoute = ErrorRoute()
    start: NodeId | None = None
    """The first node; the first one listed when absent."""
    nodes: Mapping[str, Node]


@dataclass(slots=True, frozen=True)
class Flow:
    """A loaded, validated flow: what a call runs. Immutable; a reload makes a new one."""

    spec: FlowSpec
    path: str
    digest: str
    """sha256 of the file's bytes (hex, first 12)."""
    fallbacks: Mapping[str, tuple[str, ...]]
    classifier: Classifier | None
    warnings: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def version(self) -> str:
        """Declared version plus content hash: two edits of one declared version differ."""
        return f"{self.spec.version}+{self.digest}"

    @property
    def start(self) -> str:
        return self.spec.start or next(iter(self.spec.nodes))

    @property
    def error_queue(self) -> str | None:
        if self.spec.on_error.queue:
            return self.spec.on_error.queue
        if "general" in self.spec.queues:
            return "general"
        return self.spec.queues[0] if self.spec.queues else None

    def node(self, node_id: str) -> Node:
        return self.spec.nodes[node_id]
