"""Engine configuration: the embedded defaults, optionally overridden by a YAML file.

`make run` needs no file at all: every field has the demo hotline's default. A config file is
turned into this typed object once, here; nothing past this module reads raw YAML.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import pathlib
from dataclasses import dataclass, field
from typing import Any

import yaml

from ivr.errors import ConfigError


def parse_hostport(text: str, *, default_port: int) -> tuple[str, int]:
    """`"127.0.0.1:5060"` → ("127.0.0.1", 5060); `"[::1]:5060"` for IPv6; a bare host takes the default port."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise ConfigError(f"bad address {text!r}: port {port_text!r} is not a number") from None
    if not host or not 0 <= port <= 65535:
        raise ConfigError(f"bad address {text!r}: expected HOST:PORT")
    return host, port


class AcdBackendKind(enum.StrEnum):
    """Where the ACD keeps its command log: in this process, or in Redis shared by several nodes."""

    MEMORY = "memory"
    REDIS = "redis"


@dataclass(slots=True, frozen=True)
class EngineConfig:
    flows_dir: pathlib.Path = pathlib.Path("flows")
    dialects_dir: pathlib.Path = pathlib.Path("dialects")
    prompts_dir: pathlib.Path = pathlib.Path("prompts")
    prompt_cache_dir: pathlib.Path = pathlib.Path("var/prompt-cache")
    agents_file: pathlib.Path = pathlib.Path("config/agents.yaml")
    queues_file: pathlib.Path = pathlib.Path("config/queues.yaml")
    db_path: pathlib.Path = pathlib.Path("var/ivr.db")
    sip_host: str = "127.0.0.1"
    sip_port: int = 5060
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    rtp_port_min: int = 20000
    rtp_port_max: int = 30000
    max_calls: int = 1200
    """Concurrent calls beyond which new INVITEs get 503 with Retry-After."""
    drain_timeout_s: float = 600.0
    acd_backend: AcdBackendKind = AcdBackendKind.MEMORY
    redis_url: str = "redis://127.0.0.1:6379/0"
    """The shared ACD log when `acd_backend` is redis (every node of a cluster names the same one)."""
    callback_uri_template: str = "sip:{number}@{sip_host}"
    """Where a callback dials the caller: `{number}` is the number left, `{sip_host}` ours (a trunk or SBC)."""
    asr_engine: str = "pocketsphinx"
    asr_models: dict[str, str] = field(default_factory=dict)
    """Dialect code → Vosk model path, for the production engine."""
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
    node_id: str = "node-1"

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "acd_backend", AcdBackendKind(self.acd_backend))
        except ValueError:
            known = ", ".join(k.value for k in AcdBackendKind)
            raise ConfigError(f"acd_backend {self.acd_backend!r} is not one of: {known}") from None
        if "{number}" not in self.callback_uri_template:
            raise ConfigError(f"callback_uri_template {self.callback_uri_template!r} has no {{number}} in it")
        try:
            self.callback_uri("0")
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"callback_uri_template {self.callback_uri_template!r}: bad placeholder {exc} "
                "(expected {number} and {sip_host})"
            ) from None

    def callback_uri(self, number: str) -> str:
        """The SIP URI a callback to `number` dials."""
        return self.callback_uri_template.format(number=number, sip_host=self.sip_host)

    def replace(self, **changes: Any) -> EngineConfig:
        return dataclasses.replace(self, **changes)


_PATH_FIELDS = {f.name for f in dataclasses.fields(EngineConfig) if f.type in ("pathlib.Path",)}


def load_config(path: pathlib.Path | None) -> EngineConfig:
    """The defaults, with the keys of `path` (if given) applied; unknown keys are an error."""
    config = EngineConfig()
    if path is None:
        return config
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    known = {f.name for f in dataclasses.fields(EngineConfig)}
    changes: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(f"{path}: unknown setting {key!r} (known: {', '.join(sorted(known))})")
        changes[key] = pathlib.Path(value) if key in _PATH_FIELDS else value
    try:
        return config.replace(**changes)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
