"""`ivr call`: one real call with expectations, judged from what the engine recorded.

The call itself is `TestCaller`; this module turns command-line steps into a script, fetches the
engine's record of the call by Call-ID from its HTTP API, and compares the expectations with it,
saying what was expected and what was seen.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from ivr.media import write_wav
from ivr.testing.caller import AwaitPrompt, CallReport, Keys, PlayFile, Say, Step, TestCaller
from ivr.web import bearer_headers, client_token

RECORD_FETCH_ATTEMPTS = 20
RECORD_FETCH_BACKOFF_S = 0.25


@dataclass(slots=True, frozen=True)
class Expectations:
    queue: str | None = None
    intent: str | None = None
    dialect: str | None = None
    outcome: str | None = None

    def items(self) -> list[tuple[str, str]]:
        pairs = (("queue", self.queue), ("intent", self.intent), ("dialect", self.dialect),
                 ("outcome", self.outcome))
        return [(name, value) for name, value in pairs if value is not None]


@dataclass(slots=True)
class CallVerdict:
    report: CallReport
    record: Mapping[str, Any] | None = None
    journey: Sequence[Mapping[str, Any]] = ()
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def script(steps: Sequence[Step]) -> list[Step]:
    """A caller listens before each answer: wait for the IVR's prompt before every say/play/keys."""
    out: list[Step] = []
    for step in steps:
        if isinstance(step, (Say, PlayFile, Keys)):
            out.append(AwaitPrompt())
        out.append(step)
    return out


def default_api(uri: str) -> str:
    """The engine's HTTP API: the same host as the SIP URI, port 8080."""
    host = uri.split("@", 1)[-1].split(";", 1)[0]
    host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return f"http://{host}:8080"


async def fetch_record(api: str, call_id: str) -> tuple[Mapping[str, Any] | None, list[Mapping[str, Any]], str]:
    """The finished record and journey of `call_id` (the engine commits it as the call ends)."""
    url = f"{api.rstrip('/')}/api/calls/{urllib.parse.quote(call_id, safe='')}"
    last = ""
    # The API wants a token: IVR_API_TOKEN, else the one `ivr serve` wrote to var/api-token at first start.
    headers = bearer_headers(client_token())
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5), headers=headers) as http:
        for attempt in range(RECORD_FETCH_ATTEMPTS):
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        body = await response.json()
                        if not body.get("in_progress"):
                            return body["record"], list(body.get("journey", [])), ""
                        last = "the call is still in progress"
                    elif response.status in (401, 403):
                        detail = (await response.json(content_type=None) or {}).get("error", "")
                        return None, [], f"HTTP {response.status} from {url}: {detail} (set IVR_API_TOKEN)"
                    else:
                        last = f"HTTP {response.status} from {url}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = f"cannot reach {url}: {exc}"
            await asyncio.sleep(RECORD_FETCH_BACKOFF_S * (1 + attempt))
    return None, [], last


def judge(expect: Expectations, record: Mapping[str, Any] | None, why_missing: str) -> list[str]:
    if not expect.items():
        return []
    if record is None:
        return [f"no call record to check expectations against: {why_missing}"]
    failures = []
    for name, wanted in expect.items():
        seen = record.get(name)
        if str(seen or "") != wanted:
            failures.append(f"expected {name} {wanted!r}, but the call had {name} {seen!r}")
    return failures


async def place_checked_call(
    uri: str,
    steps: Sequence[Step],
    *,
    from_number: str,
    expect: Expectations,
    api: str | None,
    linger_s: float,
    record_path: pathlib.Path | None,
) -> CallVerdict:
    caller = await TestCaller.open()
    try:
        report = await caller.call(uri, script(steps), from_number=from_number, linger_s=linger_s)
    finally:
        await caller.close()
    if record_path is not None:
        write_wav(record_path, report.heard, 8000)
    verdict = CallVerdict(report)
    if not report.answered:
        verdict.failures.append(f"the call was not answered: SIP {report.status}")
        return verdict
    if api != "" and (expect.items() or api):
        record, journey, why = await fetch_record(api or default_api(uri), report.call_id)
        verdict.record, verdict.journey = record, journey
        verdict.failures += judge(expect, record, why)
    return verdict


def render_text(verdict: CallVerdict) -> str:
    report = verdict.report
    lines = [f"call {report.call_id} to {report.uri}"]
    for entry in report.timeline:
        lines.append(f"  {entry.at_s:7.2f}s  {entry.what:<14} {entry.detail}")
    if verdict.record is not None:
        r = verdict.record
        conf = r.get("confidence")
        lines.append(
            f"  record: intent={r.get('intent') or '-'} confidence={'-' if conf is None else f'{conf:.2f}'} "
            f"queue={r.get('queue') or '-'} dialect={r.get('dialect') or '-'} outcome={r.get('outcome') or '-'}"
        )
        if r.get("transcript"):
            lines.append(f"  transcript: {r['transcript']}")
        path = " → ".join(r.get("path") or [])
        if path:
            lines.append(f"  journey: {path}")
    for failure in verdict.failures:
        lines.append(f"FAIL: {failure}")
    lines.append("PASS" if verdict.passed else "FAILED")
    return "\n".join(lines)


def render_json(verdict: CallVerdict) -> str:
    report = verdict.report
    return json.dumps(
        {
            "call_id": report.call_id,
            "uri": report.uri,
            "answered": report.answered,
            "status": report.status,
            "setup_s": report.setup_s,
            "hangup_by": report.hangup_by,
            "timeline": [{"at_s": e.at_s, "what": e.what, "detail": e.detail} for e in report.timeline],
            "record": verdict.record,
            "journey": list(verdict.journey),
            "failures": verdict.failures,
            "passed": verdict.passed,
        },
        ensure_ascii=False,
        indent=2,
    )
