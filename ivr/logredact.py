"""PII redaction for log entries: a structlog processor, installed once by `ivr.logconfig` (issue 15).

With `log_pii: false` (the default) caller numbers are masked to their last 4 digits, what callers
said is left out, and URLs (data dips carry caller and policy numbers in their paths and queries)
keep only scheme, host and port. It judges entries by key, because a log line's keys are the
contract (`caller`, `number`, `transcript`, `url`...), and masks URLs inside any text (error messages
quote the URL they failed on). `call_id` and other identifiers are never touched; an `event` (a stdlib
record's message) only has its URLs cut.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import urlsplit

NUMBER_KEYS = frozenset({
    "caller", "number", "from_number", "caller_number", "callback_number", "to", "from", "from_uri", "to_uri",
    "contact", "remote_uri", "identity", "pai", "ani", "target",
})
"""Keys whose values are (or contain) a caller's number."""
TRANSCRIPT_KEYS = frozenset({
    "transcript", "text", "utterance", "heard", "said", "hypothesis", "words", "speech", "digit", "digits",
})
"""Keys whose values are what a caller said or keyed (one key at a time spells a card number or a staff
PIN on the prompt-recording line): omitted."""
KEEP_KEYS = frozenset({"level", "timestamp", "logger", "call_id", "node", "flow", "version"})

_DIGITS = re.compile(r"(\+?)(\d{6,})")
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.I)
OMITTED = "[omitted]"


def mask_number(text: str) -> str:
    """Every run of 6+ digits (a phone number, possibly inside a SIP URI) → stars and its last 4."""
    return _DIGITS.sub(lambda m: m.group(1) + "*" * (len(m.group(2)) - 4) + m.group(2)[-4:], text)


def redact_url(url: str) -> str:
    """`http://dips:8090/policy/P1234?caller=138...` → `http://dips:8090/…` (userinfo dropped too)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "[url]"
    if ":" in host:
        host = f"[{host}]"
    rest = "/…" if (parts.path not in ("", "/") or parts.query or parts.fragment) else parts.path
    return f"{parts.scheme}://{host}{port}{rest}"


def redact_text(text: str) -> str:
    return _URL.sub(lambda m: redact_url(m.group()), text) if "://" in text else text


def redact_pii(_logger: object, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask numbers, omit transcripts, redact URLs (see the module docstring)."""
    for key in list(event_dict):
        if key in KEEP_KEYS:
            continue
        value = event_dict[key]
        if key in TRANSCRIPT_KEYS:
            event_dict[key] = OMITTED
        elif key in NUMBER_KEYS or key.endswith("_number"):
            event_dict[key] = mask_number(redact_text(value)) if isinstance(value, str) else (
                mask_number(str(value)) if isinstance(value, int) else value
            )
        elif isinstance(value, str):
            event_dict[key] = redact_text(value)
        elif isinstance(value, dict):  # a journey step's data, a request's headers...
            event_dict[key] = redact_pii(_logger, _method, dict(value))
    return event_dict
