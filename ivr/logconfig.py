"""Structured logging set-up: called once, by the CLI, never by library modules.

Library modules only do `log = structlog.get_logger(__name__)` and bind `call_id` with
`structlog.contextvars.bind_contextvars` where a call starts. Standard-library loggers (aiohttp,
asyncio, redis, psycopg) are routed through the same processors, so a JSON stream has no plain-text
lines, and PII redaction (`ivr.logredact`, on unless `log_pii`) covers them too.
"""

from __future__ import annotations

import logging
import sys
import threading
from types import TracebackType
from typing import TextIO, cast

import structlog

from ivr.logredact import redact_pii

_HANDLER_NAME = "ivr-structlog"


def configure_logging(level: str = "info", *, json: bool | None = None, log_pii: bool = False) -> None:
    """Console rendering on a terminal, JSON lines otherwise (or as forced by `json`)."""
    use_json = (not sys.stderr.isatty()) if json is None else json
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if not log_pii:
        shared.append(redact_pii)
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        # One write per line, newline included: a node's workers share one log (a file, journald's stream), and
        # under PYTHONUNBUFFERED (the systemd unit, these machines) print's separate newline write let another
        # process's line land in the middle of ours.
        logger_factory=structlog.WriteLoggerFactory(file=cast(TextIO, _CurrentStderr())),
        cache_logger_on_first_use=True,
    )
    _route_stdlib(shared, renderer, numeric_level)


def _route_stdlib(shared: list[structlog.typing.Processor], renderer: structlog.typing.Processor,
                  level: int) -> None:
    """One root handler rendering stdlib records with structlog's processors (replacing an earlier one)."""
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(_CurrentStderr())
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_thread_uncaught


class _CurrentStderr:
    """Whatever `sys.stderr` is when a line is written, not when logging was configured: loggers are
    cached on first use, and a stream swapped since (pytest's capture, closed after its test) must not
    be written to forever after."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """An exception nothing caught: one structured line with its traceback, not a bare dump on stderr."""
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    logging.getLogger("ivr").critical("uncaught_exception", exc_info=(kind, exc, tb))


def _log_thread_uncaught(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None:
        return
    name = args.thread.name if args.thread else "?"
    logging.getLogger("ivr").critical(
        "uncaught_thread_exception", exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        extra={"thread": name},
    )
