"""The API's guard over a real loopback HTTP server: tokens and roles, CSRF by text/plain, the Host
and Origin checks, the security headers, the access log, CSV formula escaping and bad time windows."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from structlog.testing import capture_logs
from web_rig import ADMIN, SUPERVISOR, VIEWER, WALL, Rig, bearer

from ivr.journey import CallRecord, Outcome
from ivr.web.app import ROUTES

Client = TestClient[web.Request, web.Application]

SOUTH = {"region": "south", "helper_sites": ["beijing"], "reason": "台风 typhoon"}
VIEWER_GETS = ["/api/queues", "/api/agents", "/api/flows", "/api/dispatch", "/api/reports/summary", "/metrics",
               "/api/openapi.json", "/api/whoami"]  # fmt: skip
SUPERVISOR_GETS = ["/api/calls", "/api/calls.csv", "/api/calls/x", "/api/agents/a1/current"]


def _sample_path(path: str) -> str:
    return (
        path.replace("{call_id}", "x")
        .replace("{agent_id}", "a1")
        .replace("{dispatch_id}", "d1")
        .replace("{number}", "1380")
        .replace("{name}", "nobody")
    )


PROTECTED = [(r.method, _sample_path(r.path)) for r in ROUTES if r.role is not None]


@pytest.mark.parametrize(("method", "path"), PROTECTED, ids=[f"{m} {p}" for m, p in PROTECTED])
@pytest.mark.parametrize("auth", [None, "Bearer wrong-token", "Basic b3BzOmxlYWQ=", "Bearer "], ids=str)
async def test_every_data_route_is_401_without_a_valid_token(
    anonymous: Client, method: str, path: str, auth: str | None
) -> None:
    headers = {"Content-Type": "application/json"} | ({} if auth is None else {"Authorization": auth})
    resp = await anonymous.request(method, path, headers=headers, data=b"{}")
    assert resp.status == 401, await resp.text()
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert "token" in (await resp.json())["error"]


async def test_unknown_api_paths_ask_for_a_token_before_saying_404(anonymous: Client, client: Client) -> None:
    assert (await anonymous.get("/api/nothing-here")).status == 401
    assert (await client.get("/api/nothing-here")).status == 404


async def test_open_paths_need_no_token(anonymous: Client) -> None:
    for path in ("/healthz", "/readyz", "/", "/api/docs", "/static/dashboard.js"):
        assert (await anonymous.get(path)).status == 200, path


@pytest.mark.parametrize("path", VIEWER_GETS)
async def test_a_viewer_reads_dashboards_and_reports(anonymous: Client, path: str) -> None:
    resp = await anonymous.get(path, headers=bearer(VIEWER))
    assert resp.status == 200, await resp.text()


@pytest.mark.parametrize("path", SUPERVISOR_GETS)
async def test_a_viewer_cannot_read_call_records_but_a_supervisor_can(anonymous: Client, path: str) -> None:
    refused = await anonymous.get(path, headers=bearer(VIEWER))
    assert refused.status == 403
    assert (await refused.json())["error"] == "token 'wall-screen' is a viewer; this needs a supervisor token"
    allowed = await anonymous.get(path, headers=bearer(SUPERVISOR))
    assert allowed.status in (200, 404), await allowed.text()  # x and a1 do not exist: 404 is past the guard


async def test_only_a_supervisor_or_better_acts(anonymous: Client, rig: Rig) -> None:
    viewer = bearer(VIEWER)
    assert (await anonymous.post("/api/dispatch", json=SOUTH, headers=viewer)).status == 403
    assert (await anonymous.delete("/api/dispatch/d1", headers=viewer)).status == 403
    assert (await anonymous.put("/api/callers/1380/dialect", json={"dialect": "yue"}, headers=viewer)).status == 403
    assert rig.dispatcher.requests == [] and rig.dialects.saved == {}
    started = await anonymous.post("/api/dispatch", json=SOUTH, headers=bearer(SUPERVISOR))
    assert started.status == 201
    put = await anonymous.put("/api/callers/1380/dialect", json={"dialect": "yue"}, headers=bearer(SUPERVISOR))
    assert put.status == 200 and rig.dialects.saved == {"1380": "yue"}


async def test_requested_by_is_the_token_name_whatever_the_body_says(anonymous: Client, rig: Rig) -> None:
    started = await anonymous.post(
        "/api/dispatch", json=SOUTH | {"requested_by": "the-ceo"}, headers=bearer(SUPERVISOR)
    )
    body = await started.json()
    assert started.status == 201 and body["requested_by"] == "shift-lead"
    assert rig.dispatcher.requests[0].requested_by == "shift-lead"
    ended = await anonymous.delete(f"/api/dispatch/{body['id']}", headers=bearer(ADMIN))
    assert ended.status == 200
    assert rig.store.flush(5)
    log = {e.action.value: e.requested_by for e in rig.store.dispatches()}
    assert log == {"start": "shift-lead", "end": "ops-lead"}


async def test_tokens_are_for_admins(anonymous: Client) -> None:
    for token in (VIEWER, SUPERVISOR):
        assert (await anonymous.get("/api/tokens", headers=bearer(token))).status == 403
    listed = await anonymous.get("/api/tokens", headers=bearer(ADMIN))
    assert listed.status == 200
    tokens = (await listed.json())["tokens"]
    assert {t["name"]: t["role"] for t in tokens} == {
        "wall-screen": "viewer", "shift-lead": "supervisor", "ops-lead": "admin"
    }  # fmt: skip
    assert all(set(t) == {"name", "role", "source"} for t in tokens)  # never a token or its digest


async def test_an_admin_issues_a_token_that_works_at_once_and_revokes_it(anonymous: Client) -> None:
    admin = bearer(ADMIN)
    issued = await anonymous.post("/api/tokens", json={"name": "night-desk", "role": "viewer"}, headers=admin)
    assert issued.status == 201
    secret = (await issued.json())["token"]
    who = await anonymous.get("/api/whoami", headers=bearer(secret))
    assert await who.json() == {"name": "night-desk", "role": "viewer"}
    assert (await anonymous.get("/api/calls", headers=bearer(secret))).status == 403
    again = await anonymous.post("/api/tokens", json={"name": "night-desk", "role": "admin"}, headers=admin)
    assert again.status == 409
    bad = await anonymous.post("/api/tokens", json={"name": "night desk!", "role": "viewer"}, headers=admin)
    assert bad.status == 400 and "field 'name'" in (await bad.json())["error"]
    role = await anonymous.post("/api/tokens", json={"name": "x", "role": "root"}, headers=admin)
    assert role.status == 400
    assert "field 'role' must be one of viewer, supervisor, admin" in (await role.json())["error"]
    config_token = await anonymous.delete("/api/tokens/ops-lead", headers=admin)
    assert config_token.status == 409 and "cannot be revoked" in (await config_token.json())["error"]
    assert (await anonymous.delete("/api/tokens/night-desk", headers=admin)).status == 200
    assert (await anonymous.get("/api/whoami", headers=bearer(secret))).status == 401
    assert (await anonymous.delete("/api/tokens/night-desk", headers=admin)).status == 404


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                          None])  # fmt: skip
async def test_a_cross_site_style_post_is_refused_even_with_a_token(
    client: Client, rig: Rig, content_type: str | None
) -> None:
    """What `fetch(url, {mode: 'no-cors', body: JSON.stringify(...)})` from another page sends: a
    simple request with a JSON-looking body but a text/plain type. Never a dispatch."""
    headers = {} if content_type is None else {"Content-Type": content_type}
    resp = await client.post("/api/dispatch", data=b'{"region": "south", "helper_sites": ["beijing"]}',
                             headers=headers)  # fmt: skip
    assert resp.status == 415
    assert "Content-Type: application/json" in (await resp.json())["error"]
    assert rig.dispatcher.requests == []


async def test_a_page_on_another_origin_is_refused(client: Client, rig: Rig) -> None:
    evil = {"Origin": "http://evil.example", "Content-Type": "application/json"}
    resp = await client.post("/api/dispatch", json=SOUTH, headers=evil)
    assert resp.status == 403 and "evil.example" in (await resp.json())["error"]
    fetch_meta = await client.post("/api/dispatch", json=SOUTH, headers={"Sec-Fetch-Site": "cross-site"})
    assert fetch_meta.status == 403
    for other_port in (f"http://127.0.0.1:{client.port + 1}", "null", "file://", "http://127.0.0.1.evil.example"):
        assert (await client.get("/api/queues", headers={"Origin": other_port})).status == 403, other_port
    assert rig.dispatcher.requests == []
    own = await client.post("/api/dispatch", json=SOUTH, headers={"Origin": f"http://127.0.0.1:{client.port}"})
    assert own.status == 201


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.1.nip.io", "10.0.0.5", ""])
async def test_dns_rebinding_a_host_name_not_configured_is_refused(client: Client, host: str) -> None:
    for path in ("/api/queues", "/", "/metrics"):
        resp = await client.get(path, headers={"Host": host})
        assert resp.status == 421, (path, resp.status)
    assert (await client.get("/healthz", headers={"Host": host})).status == 200  # probes by address


@pytest.mark.parametrize("host", ["127.0.0.1:8080", "localhost", "LOCALHOST:1234", "[::1]:8080"])
async def test_loopback_names_are_answered(client: Client, host: str) -> None:
    assert (await client.get("/api/queues", headers={"Host": host})).status == 200


@pytest.mark.parametrize("path", ["/", "/api/docs", "/api/queues", "/static/dashboard.js", "/healthz", "/nope"])
async def test_security_headers_on_every_response(client: Client, path: str) -> None:
    resp = await client.get(path)
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    csp = resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp


async def test_api_answers_are_not_cached(client: Client) -> None:
    assert (await client.get("/api/queues")).headers["Cache-Control"] == "no-store"


async def test_the_access_log_names_the_token_never_the_token_or_the_query(anonymous: Client) -> None:
    with capture_logs() as logs:
        await anonymous.get("/api/calls?caller=13800000001", headers=bearer(SUPERVISOR))
        await anonymous.get("/api/calls", headers=bearer("guessed"))
    lines = [e for e in logs if e["event"] == "http_request"]
    assert [(e["path"], e["status"], e["token"]) for e in lines] == [
        ("/api/calls", 200, "shift-lead"), ("/api/calls", 401, None)
    ]  # fmt: skip
    text = repr(logs)
    assert SUPERVISOR not in text and "guessed" not in text and "13800000001" not in text


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
        ("+8613800000000", "'+8613800000000"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("13800000000", "13800000000"),
        ("我要报案", "我要报案"),
    ],
    ids=["equals", "plus", "minus", "at", "tab", "cr", "digits", "chinese"],
)
async def test_csv_cells_that_start_like_a_formula_are_escaped(client: Client, rig: Rig, value: str, cell: str) -> None:
    record = CallRecord("c-1", value, "95519", WALL - timedelta(minutes=5), transcript=value, intent="claim",
                        outcome=Outcome.SELF_SERVED, ended_at=WALL - timedelta(minutes=4))  # fmt: skip
    rig.store.call_started(record)
    rig.store.call_finished(record)
    assert rig.store.flush(5)
    resp = await client.get("/api/calls.csv?since=1d")
    rows = list(csv.DictReader(io.StringIO((await resp.read()).decode("utf-8-sig"), newline="")))
    assert [(r["caller"], r["transcript"]) for r in rows] == [(cell, cell)]


@pytest.mark.parametrize("query", ["since=99999999d", "since=99999999w&until=now", "until=99999999d"])
async def test_a_window_beyond_representable_dates_is_400(client: Client, query: str) -> None:
    resp = await client.get(f"/api/reports/summary?{query}")
    assert resp.status == 400
    assert "beyond the dates this server can represent" in (await resp.json())["error"]
    assert (await client.get(f"/api/calls?{query}")).status == 400


async def test_the_event_stream_needs_a_token(anonymous: Client) -> None:
    assert (await anonymous.get("/api/events")).status == 401
    async with anonymous.get("/api/events", headers=bearer(VIEWER)) as stream:
        assert stream.status == 200 and stream.headers["Content-Type"].startswith("text/event-stream")
        first: Any = await stream.content.readuntil(b"\n\n")
        assert first.startswith(b"retry:") or first.startswith(b"event: live")


async def test_head_is_guarded_like_get(anonymous: Client) -> None:
    assert (await anonymous.head("/api/calls")).status == 401
    assert (await anonymous.head("/api/calls", headers=bearer(VIEWER))).status == 403
    assert (await anonymous.head("/api/calls", headers=bearer(SUPERVISOR))).status == 200
