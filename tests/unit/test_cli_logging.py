"""Logging as the CLI configures it: stdlib records (aiohttp, asyncio, redis) come out as JSON lines like
structlog's own, and PII is redacted unless `log_pii`."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator

import pytest
import structlog

from ivr.logconfig import configure_logging
from ivr.logredact import mask_number, redact_url


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    hooks = sys.excepthook
    yield
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == "ivr-structlog"]:
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    logging.captureWarnings(False)
    sys.excepthook = hooks


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    err = capsys.readouterr().err
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def test_stdlib_records_are_json_lines_with_the_logger_name(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", json=True)
    logging.getLogger("aiohttp.server").error("Error handling request from %s", "127.0.0.1")
    logging.getLogger("asyncio").debug("below the level: not shown")
    structlog.get_logger("ivr.test").info("engine_ready", sip="127.0.0.1:5060")
    entries = lines(capsys)
    assert [e["event"] for e in entries] == ["Error handling request from 127.0.0.1", "engine_ready"]
    assert entries[0]["logger"] == "aiohttp.server" and entries[0]["level"] == "error"
    assert "timestamp" in entries[0]


def test_pii_is_redacted_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", json=True)
    structlog.get_logger().info(
        "invite_received", caller="13800138000", to="sip:+8613900000001@10.0.0.1:5060", call_id="a1234567890b",
        transcript="我要报案 保单 P12345678", url="http://dips.internal:8090/api/customers/13800138000?lang=yue",
        data={"text": "my policy is P12345678", "number": "13900000001"},
    )
    logging.getLogger("aiohttp.client").warning("GET %s failed", "https://u:p@dips.internal/api/policies/P1?c=1")
    first, second = lines(capsys)
    assert first["caller"] == "*******8000"
    assert first["to"] == "sip:+*********0001@10.0.0.1:5060"
    assert first["transcript"] == "[omitted]"
    assert first["url"] == "http://dips.internal:8090/…"
    assert first["call_id"] == "a1234567890b"
    assert first["data"] == {"text": "[omitted]", "number": "*******0001"}
    assert second["event"] == "GET https://dips.internal/… failed"


def test_keys_a_caller_pressed_are_omitted_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    """One key a line spells a card number, or a staff PIN on the prompt-recording line."""
    configure_logging("info", json=True)
    structlog.get_logger().info("dtmf_received", digit="7", source="rfc4733", call_id="c1")
    structlog.get_logger().info("keys_collected", digits="246813", call_id="c1")
    first, second = lines(capsys)
    assert (first["digit"], first["source"], second["digits"]) == ("[omitted]", "rfc4733", "[omitted]")


def test_log_pii_keeps_everything(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", json=True, log_pii=True)
    structlog.get_logger().info("caller_dialect_set", caller="13800138000", transcript="hello")
    (entry,) = lines(capsys)
    assert (entry["caller"], entry["transcript"]) == ("13800138000", "hello")


def test_masking_keeps_short_numbers_and_the_last_four_digits() -> None:
    assert mask_number("95519") == "95519"
    assert mask_number("+8613800138000") == "+*********8000"
    assert redact_url("http://127.0.0.1:8090/") == "http://127.0.0.1:8090/"
    assert redact_url("http://[::1]:8090/x") == "http://[::1]:8090/…"


class _Writes:
    """A stream that remembers each write call, as an unbuffered stderr passes each to the kernel."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def write(self, text: str) -> int:
        self.calls.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_each_line_is_one_write_newline_included(monkeypatch: pytest.MonkeyPatch) -> None:
    """A node's workers share one log; with PYTHONUNBUFFERED a line written in two calls (text, then its
    newline) let another process's line land in the middle of it."""
    stream = _Writes()
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging("info", json=True)
    structlog.get_logger("ivr.test").info("worker_died", worker=1)
    logging.getLogger("aiohttp.server").error("Error handling request")
    assert len(stream.calls) == 2, stream.calls
    assert all(call.endswith("\n") and call.count("\n") == 1 for call in stream.calls), stream.calls
    assert json.loads(stream.calls[0])["event"] == "worker_died"
