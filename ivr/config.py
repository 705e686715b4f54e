"""Engine configuration: embedded defaults, a YAML file, `IVR_<KEY>` environment variables and flags.

Precedence, highest first: command-line flags (only those given) > environment > file > defaults.
Every source is turned into the one typed `EngineConfig` here, checked against the field's type, and
each value remembers where it came from (`ivr config show`). A wrong value in a file is reported as
`file:line: message`, like `ivr validate`; several wrong values are all reported at once.

Paths in a config file are relative to that file; paths from the environment or a flag are relative
to the working directory. The defaults serve the demo hotline from the data shipped in the package
(`ivr/demo/`), so `ivr serve` works from any directory; the engine's state (`var/`) is kept in the
working directory unless the config says where.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import ipaddress
import os
import pathlib
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from ivr.errors import ConfigError
from ivr.sip.hostport import parse_hostport  # noqa: F401 - re-exported: the CLI parses --sip with it
from ivr.sip.sessiontimer import TimerPolicy

if TYPE_CHECKING:
    from ivr.callback_policy import CallbackRules
    from ivr.sip.edge import EdgePolicy
    from ivr.sip.listen import Listener
    from ivr.sip.registrar import RegistrarOptions

DEMO_DIR = pathlib.Path(__file__).resolve().parent / "demo"
"""The demo site shipped with the package: flows/, dialects/, prompts/, config/ (in a checkout,
links to the repository's own folders, so `make run` and the package serve the same files)."""

ENV_PREFIX = "IVR_"
URL_SCHEMES = ("postgresql://", "postgres://")
MAX_WORKERS = 64
"""Engine processes per node at most (`workers`): each has its own SIP port and RTP range."""
ENGLISH_MODELS: dict[str, dict[str, Any]] = {
    "whisper": {"engine": "whisper", "answers": "pocketsphinx"},
    "pocketsphinx": {"engine": "pocketsphinx"},
    "moonshine": {"engine": "moonshine", "answers": "pocketsphinx", "beam": 3},
}
"""What `asr_engine` may name (engines whose English model ships with the engine), as an `asr_models` entry:
`moonshine` (the default) hears open turns with Moonshine base-en at beam 3 and closed ones (a re-ask's answers) with
PocketSphinx's answer grammar, the per-turn hybrid (docs/SPEECH.md); `whisper` is the same hybrid with Whisper tiny.en
for open turns (held-out needs 81 % against Moonshine's 85 %, at about the same engine CPU a speaking call since
Moonshine's decoder was split: docs/SPEECH.md "Moonshine"); Moonshine or Whisper alone is `asr_models: {en: {engine:
moonshine}}`."""


def default_workers() -> int:
    """What `workers: null` means: one engine process per CPU."""
    return max(1, os.cpu_count() or 1)


def demo_path(name: str) -> pathlib.Path:
    """A folder or file of the shipped demo site, absolute."""
    return (DEMO_DIR / name).resolve()


class AcdBackendKind(enum.StrEnum):
    """Where the ACD keeps its command log: in this process, or in Redis shared by several nodes."""

    MEMORY = "memory"
    REDIS = "redis"


class SettingError(ConfigError):
    """One setting is wrong; `key` names it so the loader can say which file line holds it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


PATH_OR_URL = {"path": True}
"""Field metadata: a `str` setting that is a file path unless it is a URL (relative paths resolved)."""


@dataclass(slots=True, frozen=True)
class EngineConfig:
    flows_dir: pathlib.Path = field(default_factory=lambda: demo_path("flows"))
    dialects_dir: pathlib.Path = field(default_factory=lambda: demo_path("dialects"))
    prompts_dir: pathlib.Path = field(default_factory=lambda: demo_path("prompts"))
    prompt_cache_dir: pathlib.Path = pathlib.Path("var/prompt-cache")
    agents_file: pathlib.Path = field(default_factory=lambda: demo_path("config/agents.yaml"))
    queues_file: pathlib.Path = field(default_factory=lambda: demo_path("config/queues.yaml"))
    db: str = field(default="var/ivr.db", metadata=PATH_OR_URL)
    """Call records, journeys, caller dialects, dispatch log: a SQLite file or a `postgresql://` URL."""
    sip_host: str = "127.0.0.1"
    sip_port: int = 5060
    advertise_address: str | None = None
    """The address peers reach us at, written in Via, Contact and SDP `c=`/`o=` (None: `sip_host`, or
    this host's own address when `sip_host` is a wildcard). Behind NAT: the public address."""
    media_advertise_address: str | None = None
    """SDP `c=`/`o=` address when media is reached elsewhere than signalling (None: `advertise_address`)."""
    listen: tuple[str, ...] = ()
    """SIP listeners besides UDP on `sip_host:sip_port`: `udp://`, `tcp://`, `tls://HOST:PORT`."""
    tls_certificate: pathlib.Path | None = None
    """PEM certificate chain of the `tls://` listeners."""
    tls_private_key: pathlib.Path | None = None
    """PEM private key of `tls_certificate`."""
    tls_ca_file: pathlib.Path | None = None
    """PEM CAs that TLS connections we open verify peers against (None: the system's trust store)."""
    srtp: str = "off"
    """SRTP (SDES keys) for calls we answer: `off` (RTP/SAVP offers get 488), `optional` (SRTP when
    offered), `required` (plain RTP offers get 488). Use with TLS: the keys travel in the SDP."""
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    rtp_port_min: int = 20000
    rtp_port_max: int = 30000
    rtp_symmetric: bool = True
    """NAT mode (symmetric RTP): media is latched once, in the first 2 s, to a packet from the SDP's or
    the signalling peer's IP. False (strict): only the exact address:port the SDP named is accepted."""
    rtp_idle: str = "silence"
    """What a call's RTP carries while the engine has nothing to play (a listening turn): `silence` (encoded silence
    every 20 ms) or `keepalive` (0.2 s of silence, then one silence packet every `rtp_keepalive_s`; the next prompt's
    first packet carries the marker bit). docs/CONFIG.md."""
    rtp_keepalive_s: float = 1.0
    """With `rtp_idle: keepalive`: seconds between silence packets while idle (more than 0, at most 1)."""
    max_calls: int = 1200
    """Concurrent calls beyond which new INVITEs get 503 with Retry-After."""
    session_expires: int = 1800
    """SIP session timer (RFC 4028), seconds: the interval our calls ask for, and the most we accept."""
    min_se: int = 90
    """The smallest session interval we accept (RFC 4028 Min-SE); below it a caller's INVITE gets 422.
    RFC 4028 allows no less than 90; a lower value is for tests."""
    drain_timeout_s: float = 600.0
    """How long SIGTERM waits for calls in progress; the service manager's stop timeout must be longer."""
    acd_backend: AcdBackendKind = AcdBackendKind.MEMORY
    redis_url: str = "redis://127.0.0.1:6379/0"
    """The shared ACD log when `acd_backend` is redis (every node of a cluster names the same one)."""
    callback_uri_template: str = "sip:{number}@{sip_host}"
    """Where a callback dials the caller: `{number}` is the number left, `{sip_host}` ours (a trunk or SBC)."""
    asr_engine: str = "moonshine"
    """The English recognizer when `asr_models` names none for "en": moonshine, whisper or pocketsphinx
    (docs/SPEECH.md)."""
    asr_models: dict[str, Any] = field(default_factory=dict)
    """Dialect code → Vosk model path (or a mapping: engine, model), for the production engine."""
    model_cache_dir: pathlib.Path = pathlib.Path("var/models")
    """Where a shipped speech model is converted once for this engine (Moonshine's, ~15 s and ~212 MB a recipe):
    sites of one machine that name the same folder convert it once between them."""
    asr_workers: int = 4
    """Threads that run recognizer calls off the event loop (they mostly wait on decoder processes)."""
    asr_processes: int = field(default_factory=lambda: max(1, min(4, os.cpu_count() or 1)))
    """Helper processes PocketSphinx decodes in, so decoding uses every core and never holds the
    engine's GIL (0: decode in the engine's own process)."""
    asr_prewarm: int = 4
    """PocketSphinx recognizers per dialect built with every phrase bias before calls arrive."""
    asr_max_decoders: int = 16
    """Recognizers decoding at once per dialect (PocketSphinx: ~8 MB per phrase set it has
    served). Callers who start talking while most are lent are decoded after they end, and past
    the bound they wait for one: overload costs latency, not memory."""
    asr_max_lag_s: float = 2.0
    """How far behind real time the decoders may run before a caller who starts speaking is not decoded and is
    served by keys or a human instead (`ivr.speech.backlog`): overload sheds new speech, not every caller's."""
    node_id: str = "node-1"
    workers: int | None = None
    """Engine processes of this node sharing `sip_port` (`ivr serve --workers`); None: one per CPU
    (docs/OPERATIONS.md, "Workers")."""
    worker_sip_port: int | None = None
    """With several workers: worker i's own SIP port (for a front that picks the worker; Via and Contact carry
    `sip_port`) is this + i (None: `sip_port` + 1)."""
    gc_tuned: bool = True
    """Freeze the start-up heap once the engine is ready (`ivr.engine.gcpolicy`); false: CPython's defaults."""
    gc_thresholds: tuple[int, ...] = ()
    """With `gc_tuned`: the collector's three thresholds (`gc.set_threshold`); (): `ivr.engine.gcpolicy.THRESHOLDS`."""
    log_level: str = "info"
    log_json: bool | None = None
    """JSON log lines (None: JSON unless stderr is a terminal)."""
    log_pii: bool = False
    """Log caller numbers, transcripts and data-dip URLs in clear (off: masked, omitted, redacted)."""
    retention_days: int = 180
    """Records, journeys and caller dialects older than this are purged (0: keep forever)."""
    recording_dir: pathlib.Path | None = None
    """Where call recordings are written (`<dir>/<YYYY-MM-DD>/<call-id>.wav`); None: no recording."""
    recording_default: str = "never"
    """Whether calls with agents are recorded when neither the flow's queue node nor the queue says:
    `always`, `consent` (after the `recording_consent` announcement) or `never`."""
    api_tokens: tuple[dict[str, str], ...] = ()
    """HTTP API tokens, each `{name, role: viewer|supervisor|admin, sha256: <hex of the token's SHA-256>}`
    (checked by `ivr.web.access.parse_token_specs`). `IVR_API_TOKEN` adds one admin token."""
    http_allowed_hosts: tuple[str, ...] = ()
    """Host names the HTTP API answers to besides loopback and `http_host` (DNS-rebinding guard; "*": any)."""
    demo_backend: bool = True
    """Serve the demo hotline's data back end (policies, customers) in-process and point the flows'
    `backend_url` at it; off: flows use their own `backend_url`."""
    trunks: tuple[str, ...] = ("127.0.0.0/8", "::1")
    """Addresses or CIDRs allowed to send INVITEs: trunks, SBCs, the Kamailio proxy (loopback for the
    demo). Others get `untrusted_invites`; an empty list admits everyone. Trusted sources are also
    exempt from the per-source request limit (a trunk carries every caller's signalling)."""
    context_peers: tuple[str, ...] = ()
    """Addresses or CIDRs of hotlines (engines, SBCs) whose transfer context (User-to-User, X-IVR-* headers)
    a flow may read as `inbound_*` variables; from anyone else those headers are ignored (anyone can
    write them). Empty: no peer's context is read."""
    untrusted_invites: str = "silence"
    """What an INVITE from an untrusted source gets: `silence` (dropped: scanners learn nothing) or
    `forbidden` (403)."""
    sip_requests_per_s: float = 50.0
    """Per untrusted source: SIP requests a second allowed on average; beyond, dropped silently and counted."""
    sip_burst: float = 100.0
    """Per untrusted source: requests allowed at once before the rate applies."""
    max_calls_per_source: int | None = None
    """Calls up at once from one source address (None: no limit); beyond, 503."""
    max_server_transactions: int | None = 60000
    """Live server transactions (each lives up to 32 s) before new requests are dropped (None: no cap)."""
    sip_digest_algorithms: tuple[str, ...] = ("MD5", "SHA-256")
    """Digest algorithms the agents' registrar offers, most preferred first (RFC 8760; SECURITY). MD5 first:
    SIPp and older phones read only the first challenge; `[SHA-256, MD5]` when every phone does SHA-256."""
    register_guesses_per_minute: int = 10
    """Wrong REGISTER passwords checked per minute per source address and per agent; beyond, not checked."""
    callback_numbers: tuple[str, ...] = (r"1[3-9]\d{9}", r"0[1-9]\d{9,10}")
    """Regular expressions a callback number (national form) must match: mainland mobiles and landlines."""
    transfer_numbers: tuple[str, ...] = (r"1[3-9]\d{9}", r"0[1-9]\d{9,10}", r"95\d{3}", r"400\d{7}")
    """Regular expressions a number an agent transfers a caller to must match whole: mainland mobiles and
    landlines, 95xxx service hotlines, 400 numbers; premium and international numbers are refused (an insider
    must not send callers to a number that pays them)."""
    callback_limit_per_number: int = 3
    """Callbacks to one number per day."""
    callback_limit_per_day: int = 1000
    """Callbacks in all per day."""
    campaigns_dir: pathlib.Path | None = None
    """Outbound campaign files (`*.yaml`); None: no outbound dialling (OUTBOUND, issue 19)."""
    outbound_db: pathlib.Path = pathlib.Path("var/outbound.db")
    """SQLite file of the campaigns' targets and attempts (resumed after a restart)."""
    messages_dir: pathlib.Path = pathlib.Path("var/messages")
    """Voice messages callers leave (`message` nodes), as WAV files by day; purged with the records."""
    prompt_line_pins: tuple[str, ...] = ()
    """Salted scrypt hashes of the staff PINs the prompt-recording line (a flow's `record_prompts` node)
    accepts; `ivr prompts pin` makes one. Empty: the line refuses every PIN."""

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "acd_backend", AcdBackendKind(self.acd_backend))
        except ValueError:
            known = ", ".join(k.value for k in AcdBackendKind)
            raise SettingError("acd_backend", f"acd_backend {self.acd_backend!r} is not one of: {known}") from None
        for key in ("sip_port", "http_port", "rtp_port_min", "rtp_port_max", "worker_sip_port"):
            if not 0 <= (getattr(self, key) or 0) <= 65535:
                raise SettingError(key, f"{key} {getattr(self, key)} is not a port (0..65535)")
        if self.rtp_port_min > self.rtp_port_max:
            raise SettingError("rtp_port_max", f"rtp_port_max {self.rtp_port_max} is below rtp_port_min")
        if self.gc_thresholds and (len(self.gc_thresholds) != 3 or min(self.gc_thresholds) < 1):
            raise SettingError("gc_thresholds", "gc_thresholds: expected three whole numbers of at least 1")
        if self.workers is not None and not 1 <= self.workers <= MAX_WORKERS:
            raise SettingError("workers", f"workers {self.workers} is not between 1 and {MAX_WORKERS}")
        try:
            TimerPolicy(self.session_expires, self.min_se)  # the session timer's own check, said with its key
        except ValueError as exc:
            raise SettingError("min_se", str(exc)) from None
        if self.asr_engine not in ENGLISH_MODELS:
            known = ", ".join(ENGLISH_MODELS)
            raise SettingError("asr_engine", f"asr_engine {self.asr_engine!r} is not one of: {known}")
        for key in ("max_calls", "asr_workers", "asr_max_decoders"):
            if getattr(self, key) < 1:
                raise SettingError(key, f"{key} must be at least 1")
        if not 0 < self.asr_max_lag_s <= 60:
            raise SettingError("asr_max_lag_s", f"asr_max_lag_s {self.asr_max_lag_s} is not more than 0 and at most 60")
        for key in ("drain_timeout_s", "retention_days", "asr_processes", "asr_prewarm"):
            if getattr(self, key) < 0:
                raise SettingError(key, f"{key} must not be negative")
        if self.recording_default not in ("always", "consent", "never"):
            raise SettingError("recording_default", f"recording_default {self.recording_default!r} is not one of: "
                                                    "always, consent, never")
        if self.srtp not in ("off", "optional", "required"):
            raise SettingError("srtp", f"srtp {self.srtp!r} is not one of: off, optional, required")
        if self.rtp_idle not in ("silence", "keepalive"):
            raise SettingError("rtp_idle", f"rtp_idle {self.rtp_idle!r} is not one of: silence, keepalive")
        if not 0 < self.rtp_keepalive_s <= 1:
            raise SettingError("rtp_keepalive_s",
                               f"rtp_keepalive_s {self.rtp_keepalive_s} is not more than 0 and at most 1")
        if self.untrusted_invites not in ("silence", "forbidden"):
            raise SettingError("untrusted_invites", f"untrusted_invites {self.untrusted_invites!r} is not one of: "
                                                    "silence, forbidden")
        for entry in self.context_peers:
            try:
                ipaddress.ip_network(entry.strip("[]"), strict=False)
            except ValueError:
                raise SettingError("context_peers", f"context_peers: {entry!r} is not an address or CIDR") from None
        for entry in self.trunks:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise SettingError("trunks", f"trunks: {entry!r} is not an address or CIDR") from None
        for key in ("sip_requests_per_s", "sip_burst"):
            if getattr(self, key) <= 0:
                raise SettingError(key, f"{key} must be above 0")
        self._check_addresses()
        self._check_security()
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise SettingError("log_level", f"log_level {self.log_level!r} is not one of: debug, info, warning, error")
        if "://" in self.db and not self.db.startswith(URL_SCHEMES):
            raise SettingError("db", f"db {mask_url(self.db)!r}: expected a file path or a postgresql:// URL")
        if "{number}" not in self.callback_uri_template:
            raise SettingError(
                "callback_uri_template", f"callback_uri_template {self.callback_uri_template!r} has no {{number}} in it"
            )
        try:
            self.callback_uri("0")
        except (KeyError, IndexError, ValueError) as exc:
            raise SettingError(
                "callback_uri_template",
                f"callback_uri_template {self.callback_uri_template!r}: bad placeholder {exc} "
                "(expected {number} and {sip_host})",
            ) from None

    def _check_security(self) -> None:
        """The registrar's and callbacks' keys (SECURITY, issue 15)."""
        from ivr.sip.digest import ALGORITHMS

        if not self.sip_digest_algorithms or not set(self.sip_digest_algorithms) <= set(ALGORITHMS):
            raise SettingError("sip_digest_algorithms", f"sip_digest_algorithms {list(self.sip_digest_algorithms)}: "
                                                        f"choose from {', '.join(ALGORITHMS)}")
        for key in ("register_guesses_per_minute", "callback_limit_per_number", "callback_limit_per_day"):
            if getattr(self, key) < 1:
                raise SettingError(key, f"{key} must be at least 1")
        for key in ("callback_numbers", "transfer_numbers"):
            for pattern in getattr(self, key):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise SettingError(key, f"{key}: {pattern!r} is not a regex: {exc}") from None

    def registrar_options(self) -> RegistrarOptions:
        """Keyword arguments of `ivr.sip.registrar.Registrar` (and AgentRegistrar) from these settings."""
        from ivr.sip.guesses import GuessLimits

        return {"algorithms": self.sip_digest_algorithms,
                "guess_limits": GuessLimits(limit=self.register_guesses_per_minute, window_s=60.0)}

    def callback_rules(self) -> CallbackRules:
        """The callback number policy (`ivr.callback_policy`) these settings describe."""
        from ivr.callback_policy import CallbackRules

        return CallbackRules(allowed=self.callback_numbers, per_number_per_day=self.callback_limit_per_number,
                             per_day=self.callback_limit_per_day)

    def _check_addresses(self) -> None:
        from ivr.sip.endpoint import TransportKind
        from ivr.sip.listen import is_wildcard

        for key in ("advertise_address", "media_advertise_address"):
            value = getattr(self, key)
            if value is not None and (not value or is_wildcard(value)):
                raise SettingError(key, f"{key} {value!r}: peers cannot send to that; name this host's address")
        try:
            listeners = self.sip_listeners()
        except ConfigError as exc:
            raise SettingError("listen", str(exc)) from None
        if any(listener.kind is TransportKind.TLS for listener in listeners):
            for key in ("tls_certificate", "tls_private_key"):
                if getattr(self, key) is None:
                    raise SettingError("listen", f"listen: a tls:// listener needs {key}")

    def sip_listeners(self) -> list[Listener]:
        """Where SIP is served: UDP on `sip_host:sip_port` first (calls we place leave from it), then `listen`."""
        from ivr.sip.endpoint import TransportKind
        from ivr.sip.listen import Listener, parse_listener

        return [Listener(TransportKind.UDP, self.sip_host, self.sip_port), *map(parse_listener, self.listen)]

    def media_address(self) -> str:
        """The address our SDP offers and answers name for media (never a wildcard)."""
        from ivr.sip.listen import advertised_host

        return advertised_host(self.sip_host, self.media_advertise_address or self.advertise_address)

    def callback_uri(self, number: str) -> str:
        """The SIP URI a callback to `number` dials."""
        return self.callback_uri_template.format(number=number, sip_host=self.sip_host)

    def edge_policy(self) -> EdgePolicy:
        """The SIP edge these settings describe (`ivr.sip.edge`): trusted sources and per-source limits."""
        from ivr.sip.edge import EdgePolicy, EdgeVerdict

        return EdgePolicy(
            trusted=self.trunks, untrusted_invite=EdgeVerdict(self.untrusted_invites),
            requests_per_s=self.sip_requests_per_s, burst=self.sip_burst,
            max_calls_per_source=self.max_calls_per_source, max_server_transactions=self.max_server_transactions,
        )

    @property
    def db_is_url(self) -> bool:
        return self.db.startswith(URL_SCHEMES)

    def replace(self, **changes: Any) -> EngineConfig:
        return dataclasses.replace(self, **changes)


def config_keys() -> list[str]:
    """Every setting's name, in declaration order."""
    return [f.name for f in dataclasses.fields(EngineConfig)]


# --- typed conversion -------------------------------------------------------------------------------

_NUMBERS: dict[type, tuple[type | tuple[type, ...], str]] = {
    int: (int, "a whole number"),
    float: ((int, float), "a number"),
}
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _convert(tp: Any, value: object, *, from_text: bool, base: pathlib.Path) -> object:
    """`value` as type `tp`, or ValueError with the reason. `from_text`: an environment variable's
    string, parsed the way a YAML value would have been typed."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if type(None) in options and (value is None or (from_text and value in ("", "null", "none"))):
            return None
        reasons = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _convert(option, value, from_text=from_text, base=base)
            except ValueError as exc:
                reasons.append(str(exc))
        raise ValueError("; ".join(reasons))
    if tp is bool:
        if from_text and isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        if isinstance(value, bool):
            return value
        raise ValueError(f"expected true or false, got {value!r}")
    if tp in _NUMBERS:
        accepted, what = _NUMBERS[tp]
        if from_text and isinstance(value, str):
            with contextlib.suppress(ValueError):
                return tp(value)
        if isinstance(value, accepted) and not isinstance(value, bool):  # YAML `true` is no port number
            return tp(value)
        raise ValueError(f"expected {what}, got {value!r} ({_type_name(value)})")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)  # `node_id: 7`
        raise ValueError(f"expected a string, got {value!r} ({_type_name(value)})")
    if tp is pathlib.Path:
        if not isinstance(value, str) or not value:
            raise ValueError(f"expected a path, got {value!r} ({_type_name(value)})")
        return base / pathlib.Path(value).expanduser()
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            known = ", ".join(str(m.value) for m in tp)
            raise ValueError(f"{value!r} is not one of: {known}") from None
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if from_text and isinstance(value, str):
            value = _yaml_text(value)
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ValueError(f"expected a mapping, got {value!r} ({_type_name(value)})")
        return value
    if origin in (list, tuple, Sequence) or tp in (list, tuple):
        if from_text and isinstance(value, str):
            parsed = _yaml_text(value) if value.lstrip().startswith("[") else [
                item.strip() for item in value.split(",") if item.strip()
            ]
            value = parsed
        if not isinstance(value, list):
            raise ValueError(f"expected a list, got {value!r} ({_type_name(value)})")
        args = typing.get_args(tp)
        item_type = args[0] if args else Any
        items = [value_ if item_type is Any else _convert(item_type, value_, from_text=from_text, base=base)
                 for value_ in value]
        return tuple(items) if origin is tuple or tp is tuple else items
    if from_text and isinstance(value, str):
        return _yaml_text(value)  # a type this loader does not know: the field's own checks judge it
    return value


def _yaml_text(text: str) -> object:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {exc}") from None


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(EngineConfig)


def _coerce(key: str, value: object, *, from_text: bool, base: pathlib.Path) -> object:
    fld = next(f for f in dataclasses.fields(EngineConfig) if f.name == key)
    converted = _convert(_field_types()[key], value, from_text=from_text, base=base)
    if fld.metadata.get("path") and isinstance(converted, str) and "://" not in converted:
        converted = str(base / pathlib.Path(converted).expanduser()) if converted else converted
    return converted


# --- sources ----------------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class Source:
    """Where one setting's value came from, for `ivr config show` and error messages."""

    kind: str
    """`default`, `file`, `env` or `flag`."""
    where: str = ""
    """The file and line, the variable's name or the flag."""

    def __str__(self) -> str:
        return self.kind if not self.where else f"{self.kind} {self.where}"


DEFAULT = Source("default")


@dataclass(slots=True, frozen=True)
class LoadedConfig:
    config: EngineConfig
    sources: Mapping[str, Source]
    path: pathlib.Path | None = None


def _read_file(path: pathlib.Path) -> tuple[dict[str, object], dict[str, int]]:
    """The file's top-level mapping and the line of each key's value."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from None
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            raw = loader.construct_document(node) if node is not None else {}
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        # An unclosed `[` is detected lines later: name where the construct opened, as `ivr validate` does.
        opened, mark = getattr(exc, "context_mark", None), getattr(exc, "problem_mark", None)
        first = opened or mark
        line = f"{first.line + 1}:" if first is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        detected = f" (detected at line {mark.line + 1})" if opened is not None and mark is not None else ""
        raise ConfigError(f"{path}:{line} YAML syntax error: {f'{context}: ' if context else ''}{problem}{detected}"
                          ) from None
    if raw is None:
        return {}, {}
    if not isinstance(raw, dict) or not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{path}:1: expected a mapping of settings at the top level")
    lines = {str(k.value): v.start_mark.line + 1 for k, v in node.value if isinstance(k, yaml.ScalarNode)}
    return {str(k): v for k, v in raw.items()}, lines


def resolve_config(
    path: pathlib.Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, tuple[object, str]] | None = None,
    cwd: pathlib.Path | None = None,
) -> LoadedConfig:
    """The effective config: defaults < file < `IVR_<KEY>` in `env` < `flags` (key → (value, flag)).

    Raises ConfigError naming every wrong setting with its file line, variable or flag."""
    env = os.environ if env is None else env
    here = cwd or pathlib.Path.cwd()
    known = config_keys()
    values: dict[str, object] = {}
    sources: dict[str, Source] = {}
    errors: list[str] = []

    if path is not None:
        raw, lines = _read_file(path)
        base = (here / path).parent
        for key, value in raw.items():
            at = f"{path}:{lines.get(key, 1)}"
            if key not in known:
                errors.append(f"{at}: unknown setting {key!r}{_suggest(key, known)}")
                continue
            try:
                values[key] = _coerce(key, value, from_text=False, base=base)
                sources[key] = Source("file", at)
            except ValueError as exc:
                errors.append(f"{at}: {key}: {exc}")
    for key in known:
        name = ENV_PREFIX + key.upper()
        if name in env:
            try:
                values[key] = _coerce(key, env[name], from_text=True, base=here)
                sources[key] = Source("env", name)
            except ValueError as exc:
                errors.append(f"{name}: {key}: {exc}")
    for key, (value, flag) in (flags or {}).items():
        if key not in known:
            errors.append(f"{flag}: unknown setting {key!r}{_suggest(key, known)}")
            continue
        try:
            values[key] = _coerce(key, value, from_text=isinstance(value, str), base=here)
            sources[key] = Source("flag", flag)
        except ValueError as exc:
            errors.append(f"{flag}: {key}: {exc}")
    if errors:
        raise ConfigError("\n".join(errors))
    try:
        config = EngineConfig(**values)  # type: ignore[arg-type]
    except SettingError as exc:
        source = sources.get(exc.key, DEFAULT)
        raise ConfigError(f"{source.where or 'default'}: {exc}") from None
    return LoadedConfig(config, {k: sources.get(k, DEFAULT) for k in known}, path)


def load_config(path: pathlib.Path | None, *, env: Mapping[str, str] | None = None) -> EngineConfig:
    """The defaults, with the keys of `path` (if given) and the environment applied."""
    return resolve_config(path, env=env).config


def _suggest(key: str, known: Sequence[str]) -> str:
    import difflib

    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else " (see docs/CONFIG.md)"


# --- showing ----------------------------------------------------------------------------------------

_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<secret>[^@/\s]+)(?=@)", re.I)
_SECRET_NAME = re.compile(r"password|secret|token", re.I)


def mask_url(text: str) -> str:
    """`postgresql://ivr:s3cret@db/ivr` → `postgresql://ivr:***@db/ivr`."""
    return _URL_PASSWORD.sub(lambda m: m.group("head") + "***", text)


def shown_value(key: str, value: object) -> str:
    """A setting's value as `ivr config show` prints it: secrets masked, paths as text."""
    secret = _SECRET_NAME.search(key) is not None
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, pathlib.Path):
        return str(value)
    if secret and value not in (None, "", [], {}, ()):
        return "***"
    if isinstance(value, str):
        return mask_url(value)
    if isinstance(value, dict | list | tuple):
        return mask_url(yaml.safe_dump(_plain(value), default_flow_style=True, allow_unicode=True).strip())
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _plain(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, pathlib.Path | enum.Enum):
        return str(value.value if isinstance(value, enum.Enum) else value)
    return value


def describe(loaded: LoadedConfig) -> list[tuple[str, str, str]]:
    """(key, shown value, source) for every setting, in declaration order."""
    return [
        (key, shown_value(key, getattr(loaded.config, key)), str(loaded.sources[key])) for key in config_keys()
    ]


CREATED_PATHS = frozenset({"prompt_cache_dir", "model_cache_dir", "outbound_db", "messages_dir", "recording_dir"})
"""Path settings the engine creates when missing; every other path setting must exist."""


def check_paths(loaded: LoadedConfig) -> list[str]:
    """`where: key: problem` for each file or folder the config names that is not there."""
    problems = []
    for key in config_keys():
        value = getattr(loaded.config, key)
        if key in CREATED_PATHS or not isinstance(value, pathlib.Path) or value.exists():
            continue
        where = loaded.sources[key].where or "default"
        problems.append(f"{where}: {key}: {value} does not exist")
    if not loaded.config.db_is_url:
        folder = pathlib.Path(loaded.config.db).parent
        existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
        if existing is not None and not os.access(existing, os.W_OK):
            problems.append(f"{loaded.sources['db'].where or 'default'}: db: cannot create {loaded.config.db}")
    return problems
