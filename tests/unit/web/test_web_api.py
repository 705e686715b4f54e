"""The HTTP API through aiohttp's test client, over a real SQLite store and LiveState."""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))
from store_contract import T0, expected_summary, sample_calls, write_calls  # noqa: E402
from web_rig import ACCESS, ADMIN, WALL, Rig, assert_spec_matches_routes, bearer  # noqa: E402

from ivr.clock import FakeClock  # noqa: E402
from ivr.store import SqliteStore  # noqa: E402
from ivr.web import AgentPresence, FlowLoadStatus, FlowStatus  # noqa: E402

Client = TestClient[web.Request, web.Application]


async def get_json(client: Client, url: str, status: int = 200) -> Any:
    resp = await client.get(url)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def test_calls_list_filters_and_cursor_paging(client: Client, rig: Rig) -> None:
    calls = sample_calls()
    write_calls(rig.store, calls)
    body = await get_json(client, "/api/calls?dialect=hak&limit=1000")
    assert {c["call_id"] for c in body["calls"]} == {
        c.record.call_id for c in calls if c.record.dialect == "hak"
    }
    seen: list[str] = []
    url = "/api/calls?limit=10"
    while True:
        page = await get_json(client, url)
        seen += [c["call_id"] for c in page["calls"]]
        if page["next_cursor"] is None:
            break
        url = f"/api/calls?limit=10&cursor={page['next_cursor']}"
    assert sorted(seen) == sorted(c.record.call_id for c in calls) and len(seen) == len(set(seen))


async def test_calls_list_labels_each_call_with_its_node(client: Client, rig: Rig, tmp_path: Path) -> None:
    """In a cluster every node reads one database: each call says which node took it, and node_id filters."""
    calls = sample_calls()
    ours, theirs = calls[:10], calls[10:]
    write_calls(rig.store, ours)
    other = SqliteStore(tmp_path / "calls.db", clock=FakeClock(wall_start=WALL), node_id="node-b")
    try:
        write_calls(other, theirs)
    finally:
        other.close()
    body = await get_json(client, "/api/calls?limit=1000")
    nodes = {c["call_id"]: c["node_id"] for c in body["calls"]}
    assert nodes == {c.record.call_id: "local" for c in ours} | {c.record.call_id: "node-b" for c in theirs}
    body = await get_json(client, "/api/calls?limit=1000&node_id=node-b")
    assert {c["call_id"] for c in body["calls"]} == {c.record.call_id for c in theirs}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("outcome=lost", "outcome must be one of self-served"),
        ("limit=many", "limit must be an integer, got 'many'"),
        ("limit=0", "limit must be between 1 and 1000"),
        ("since=yesterday", "bad time 'yesterday'"),
        ("cursor=zzz", "bad cursor"),
    ],
)
async def test_bad_call_filters_are_400_naming_the_parameter(
    client: Client, query: str, message: str
) -> None:
    body = await get_json(client, f"/api/calls?{query}", status=400)
    assert message in body["error"]


async def test_in_progress_filter(client: Client, rig: Rig) -> None:
    calls = sample_calls()
    write_calls(rig.store, calls)
    body = await get_json(client, "/api/calls?outcome=in-progress")
    assert {c["call_id"] for c in body["calls"]} == {c.record.call_id for c in calls if not c.finished}


async def test_call_detail_has_the_record_and_journey(client: Client, rig: Rig) -> None:
    call = sample_calls()[1]
    write_calls(rig.store, [call])
    body = await get_json(client, f"/api/calls/{call.record.call_id}")
    assert body["record"]["intent"] == call.record.intent
    assert body["record"]["outcome"] == "to-agent"
    assert [e["kind"] for e in body["journey"]] == [e.kind for e in call.events]
    assert [e["breakpoint"] for e in body["journey"]] == [e.breakpoint for e in call.events]
    missing = await get_json(client, "/api/calls/nope", status=404)
    assert missing["error"] == "no call with id 'nope'"


async def test_csv_export_has_every_matching_call(client: Client, rig: Rig) -> None:
    calls = sample_calls()
    write_calls(rig.store, calls)
    resp = await client.get("/api/calls.csv?queue=claims")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/csv")
    text = (await resp.read()).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["call_id"] for r in rows} == {c.record.call_id for c in calls if c.record.queue == "claims"}
    first = next(r for r in rows if r["call_id"] == calls[1].record.call_id)
    assert first["variables"] == '{"policy": "P00001", "区域": "广东"}'


async def test_summary_matches_independent_figures(client: Client, rig: Rig) -> None:
    calls = sample_calls()
    write_calls(rig.store, calls)
    since, until = T0, T0 + timedelta(hours=6)
    body = await get_json(
        client,
        f"/api/reports/summary?since={since.isoformat()}&until={until.isoformat()}".replace("+", "%2B"),
    )
    want = expected_summary(calls, since, until)
    assert body["calls"] == want["calls"]
    assert body["containment"] == pytest.approx(want["containment"])
    assert body["service_level"] == pytest.approx(want["service_level"])
    assert body["nps"] == pytest.approx(want["nps"])
    assert body["intent_mix"] == want["intent_mix"]
    assert {b["node"]: b["steps"] for b in body["breakpoints"]} == want["breakpoints"]
    assert [f["stage"] for f in body["funnel"]] == [
        "calls", "intent_captured", "self_service_broke", "continued_by_agent",
    ]  # fmt: skip


async def test_summary_defaults_to_the_last_day_and_refuses_an_empty_window(client: Client, rig: Rig) -> None:
    body = await get_json(client, "/api/reports/summary")
    assert body["until"] == WALL.isoformat()
    assert body["since"] == (WALL - timedelta(days=1)).isoformat()
    bad = await get_json(client, "/api/reports/summary?since=1h&until=2h", status=400)
    assert "must be after since" in bad["error"]


async def test_queues_agents_and_screen_pop(client: Client, rig: Rig) -> None:
    live = rig.live
    wall = rig.clock.wall()
    live.agent_changed("a1", AgentPresence.AVAILABLE, wall, name="李娜", queues=["claims"])
    live.agent_changed("a2", AgentPresence.ON_BREAK, wall, queues=["claims"])
    call = sample_calls()[1]
    write_calls(rig.store, [call])
    live.call_started(call.record.call_id, call.record.caller, "95500", wall)
    live.call_enqueued(call.record.call_id, "claims", wall, context={"intent": call.record.intent})
    queues = await get_json(client, "/api/queues")
    assert queues["queues"] == [
        {"queue": "claims", "waiting": 1, "longest_wait_s": 0.0, "agents_available": 1, "agents_in_call": 0}
    ]
    idle = await get_json(client, "/api/agents/a1/current")
    assert idle["call"] is None and idle["agent"]["name"] == "李娜"
    live.call_answered(call.record.call_id, "a1", wall + timedelta(seconds=12))
    live.agent_changed("a1", AgentPresence.IN_CALL, wall)
    agents = await get_json(client, "/api/agents")
    assert agents["by_state"]["in_call"] == 1 and agents["by_state"]["on_break"] == 1
    pop = await get_json(client, "/api/agents/a1/current")
    assert pop["call"]["call_id"] == call.record.call_id
    assert pop["call"]["wait_s"] == 12.0
    assert pop["call"]["context"] == {"intent": call.record.intent}
    assert pop["record"]["transcript"] == call.record.transcript
    assert [e["node"] for e in pop["breakpoints"]] == [e.node for e in call.events if e.breakpoint]
    assert (await get_json(client, "/api/agents/ghost/current", status=404))[
        "error"
    ] == "no agent with id 'ghost'"


async def test_flows_show_load_errors(client: Client, rig: Rig) -> None:
    rig.live.flow_status(FlowStatus("hotline", "v7", FlowLoadStatus.LOADED, rig.clock.wall()))
    rig.live.flow_status(
        FlowStatus("claims", "", FlowLoadStatus.FAILED, None, ("claims.yaml:3:1: bad node",))
    )
    body = await get_json(client, "/api/flows")
    assert [(f["flow_id"], f["status"], f["errors"]) for f in body["flows"]] == [
        ("claims", "failed", ["claims.yaml:3:1: bad node"]),
        ("hotline", "loaded", []),
    ]


SOUTH_FOR_BEIJING = {
    "region": "south", "queues": ["claims"], "helper_sites": ["beijing"],
    "until": "2026-01-06T08:00:00+08:00", "reason": "台风 typhoon", "requested_by": "ops-lead",
}  # fmt: skip


async def dispatch_log(client: Client, rig: Rig) -> Any:
    """GET /api/dispatch: it waits for the store's writer, so the requests just made are listed."""
    return await get_json(client, "/api/dispatch")


async def test_dispatch_starts_lists_and_ends_every_attempt_logged(client: Client, rig: Rig) -> None:
    started = await client.post("/api/dispatch", json=SOUTH_FOR_BEIJING)
    assert started.status == 201, await started.text()
    record = await started.json()
    assert record == {
        "id": "d1", "region": "south", "queues": ["claims"], "helper_sites": ["beijing"],
        "since": WALL.isoformat(), "until": "2026-01-06T08:00:00+08:00", "reason": "台风 typhoon",
        "requested_by": "ops-lead",
    }  # fmt: skip
    assert started.headers["Location"] == "/api/dispatch/d1"
    (asked,) = rig.dispatcher.requests
    assert asked.until is not None and asked.until.utcoffset() == timedelta(hours=8)
    whole_region = await client.post("/api/dispatch", json={"region": "north", "helper_sites": ["shanghai"]})
    assert whole_region.status == 201
    assert (await whole_region.json())["queues"] == ["general"]  # no queues named: all of the region's
    listed = await dispatch_log(client, rig)
    assert [d["id"] for d in listed["active"]] == ["d1", "d2"]
    assert [(c["change"], c["dispatch"]["id"]) for c in listed["changes"]] == [("started", "d1"), ("started", "d2")]

    ended = await client.delete("/api/dispatch/d1")
    assert ended.status == 200, await ended.text()
    assert (await ended.json())["id"] == "d1" and (await ended.json())["ended_at"] == WALL.isoformat()
    again = await client.delete("/api/dispatch/d1")
    assert again.status == 409 and (await again.json())["error"] == "dispatch 'd1' already ended"
    unknown = await client.delete("/api/dispatch/d99")
    assert unknown.status == 404 and (await unknown.json())["error"] == "no dispatch 'd99'"

    listed = await dispatch_log(client, rig)
    assert [d["id"] for d in listed["active"]] == ["d2"]
    assert [c["change"] for c in listed["changes"]] == ["started", "started", "ended"]
    assert [(e["action"], e["dispatch_id"], e["accepted"]) for e in listed["log"]] == [
        ("end", "d99", False), ("end", "d1", False), ("end", "d1", True), ("start", "d2", True),
        ("start", "d1", True),
    ]  # fmt: skip
    first_end, first_start = listed["log"][2], listed["log"][4]
    assert first_start == {
        "at": WALL.isoformat(), "action": "start", "accepted": True, "dispatch_id": "d1", "region": "south",
        "queues": ["claims"], "helper_sites": ["beijing"], "until": "2026-01-06T00:00:00+00:00",
        "reason": "台风 typhoon", "requested_by": "ops-lead", "detail": "",
    }  # fmt: skip
    assert (first_end["region"], first_end["helper_sites"], first_end["requested_by"]) == (
        "south", ["beijing"], "ops-lead"
    )
    assert listed["log"][0]["detail"] == "no dispatch 'd99'"
    limited = await get_json(client, "/api/dispatch?limit=2")
    assert len(limited["log"]) == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"region": "west"}, "dispatch names unknown region 'west'"),
        ({"queues": ["claims", "nowhere"]}, "dispatch names unknown queue 'nowhere'"),
        ({"helper_sites": ["beijing", "atlantis"]}, "dispatch names unknown helper site 'atlantis'"),
    ],
    ids=["region", "queue", "site"],
)
async def test_dispatch_the_acd_refuses_is_409_naming_the_unknown_and_logged(
    client: Client, rig: Rig, change: dict[str, object], message: str
) -> None:
    resp = await client.post("/api/dispatch", json={**SOUTH_FOR_BEIJING, **change})
    assert resp.status == 409
    assert (await resp.json())["error"] == message
    (entry,) = (await dispatch_log(client, rig))["log"]
    assert (entry["action"], entry["accepted"], entry["detail"], entry["dispatch_id"]) == ("start", False, message, "")
    assert entry["region"] == {**SOUTH_FOR_BEIJING, **change}["region"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "field 'region' must be a non-empty string"),
        ({"region": " ", "helper_sites": ["beijing"]}, "field 'region' must be a non-empty string"),
        ({"region": "south"}, "field 'helper_sites' must be a list of non-empty strings, got None"),
        ({"region": "south", "helper_sites": []}, "field 'helper_sites' must name at least one site"),
        ({"region": "south", "helper_sites": "beijing"}, "field 'helper_sites' must be a list of non-empty strings"),
        ({"region": "south", "helper_sites": ["beijing", ""]}, "field 'helper_sites' must be a list"),
        ({"region": "south", "helper_sites": ["beijing"], "queues": "claims"}, "field 'queues' must be a list"),
        ({"region": "south", "helper_sites": ["beijing"], "queues": [3]}, "field 'queues' must be a list"),
        ({"region": "south", "helper_sites": ["beijing"], "until": "tomorrow"},
         "field 'until' must be an ISO-8601 date-time with a time zone"),
        ({"region": "south", "helper_sites": ["beijing"], "until": 1767657600},
         "field 'until' must be an ISO-8601 date-time with a time zone"),
        ({"region": "south", "helper_sites": ["beijing"], "until": "2026-01-06T08:00:00"},
         "field 'until' needs a time zone (like +08:00 or Z), got '2026-01-06T08:00:00'"),
        ({"region": "south", "helper_sites": ["beijing"], "reason": 5}, "field 'reason' must be a string"),
        ({"queue": "claims", "agents": 10}, "unknown field 'agents' in dispatch request (fields: region, queues"),
        ([1, 2], "request body must be a JSON object"),
    ],
    ids=[
        "no-region", "blank-region", "no-helper-sites", "empty-helper-sites", "helper-sites-string",
        "blank-helper-site", "queues-string", "queues-number", "until-words", "until-number", "until-naive",
        "reason-number", "old-contract", "not-an-object",
    ],
)  # fmt: skip
async def test_bad_dispatch_requests_are_400_naming_the_field(
    client: Client, rig: Rig, body: object, message: str
) -> None:
    resp = await client.post("/api/dispatch", json=body)
    assert resp.status == 400
    assert message in (await resp.json())["error"]
    assert rig.dispatcher.requests == []


async def test_dispatch_until_in_the_past_is_400_and_logged_refused(client: Client, rig: Rig) -> None:
    past = (WALL - timedelta(minutes=1)).isoformat()
    resp = await client.post("/api/dispatch", json={**SOUTH_FOR_BEIJING, "until": past})
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error.startswith(f"field 'until' ({past}) is not in the future")
    assert rig.dispatcher.requests == []
    (entry,) = (await dispatch_log(client, rig))["log"]
    assert (entry["action"], entry["accepted"], entry["until"], entry["detail"]) == ("start", False, past, error)


async def test_dispatch_log_limit_is_checked(client: Client) -> None:
    for bad in ("0", "1001", "many"):
        resp = await client.get(f"/api/dispatch?limit={bad}")
        assert resp.status == 400 and "limit" in (await resp.json())["error"]


async def test_dispatch_answers_match_the_openapi_schemas(client: Client, rig: Rig) -> None:
    import jsonschema

    schemas = (await get_json(client, "/api/openapi.json"))["components"]["schemas"]
    jsonschema.validate(SOUTH_FOR_BEIJING, schemas["DispatchRequest"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"queue": "claims", "agents": 3}, schemas["DispatchRequest"])
    started = await (await client.post("/api/dispatch", json=SOUTH_FOR_BEIJING)).json()
    jsonschema.validate(started, schemas["Dispatch"])
    ended = await (await client.delete(f"/api/dispatch/{started['id']}")).json()
    jsonschema.validate(ended, schemas["Dispatch"])
    listed = await dispatch_log(client, rig)
    resolver = {"$defs": schemas, **schemas["DispatchList"]}
    text = json.dumps(resolver).replace("#/components/schemas/", "#/$defs/")
    jsonschema.validate(listed, json.loads(text))


async def test_set_caller_dialect(client: Client, rig: Rig) -> None:
    ok = await client.put("/api/callers/13800000000/dialect", json={"dialect": "hak"})
    assert ok.status == 200 and rig.dialects.saved == {"13800000000": "hak"}
    unknown = await client.put("/api/callers/13800000000/dialect", json={"dialect": "xyz"})
    assert unknown.status == 400
    assert (await unknown.json())["error"] == "unknown dialect 'xyz': known are cmn, yue, hak, nan"
    bad_number = await client.put("/api/callers/abc/dialect", json={"dialect": "yue"})
    assert bad_number.status == 400 and "caller number 'abc'" in (await bad_number.json())["error"]
    not_json = await client.put("/api/callers/1380/dialect", json="yue")
    assert not_json.status == 400 and "must be a JSON object" in (await not_json.json())["error"]
    plain = await client.put("/api/callers/1380/dialect", data=b"yue")
    assert plain.status == 415


async def test_actions_without_a_wired_source_are_503(rig: Rig) -> None:
    from aiohttp.test_utils import TestServer

    from ivr.web import create_app

    app = create_app(store=rig.store, live=rig.live, clock=rig.clock, access=ACCESS)
    async with TestClient(TestServer(app, host="127.0.0.1"), headers=bearer(ADMIN)) as c:
        resp = await c.post("/api/dispatch", json=SOUTH_FOR_BEIJING)
        assert resp.status == 503 and "not available" in (await resp.json())["error"]
        assert (await c.delete("/api/dispatch/d1")).status == 503
        assert (await c.get("/api/dispatch")).status == 503
        resp = await c.put("/api/callers/1380/dialect", json={"dialect": "yue"})
        assert resp.status == 503
    assert rig.store.flush(5)
    assert [(e.action.value, e.accepted) for e in rig.store.dispatches()] == [("end", False), ("start", False)]


async def test_readyz_follows_readiness_and_draining_while_healthz_says_alive(anonymous: Client, rig: Rig) -> None:
    rig.ready[0] = False
    assert (await get_json(anonymous, "/readyz", status=503)) == {"status": "starting"}
    assert (await get_json(anonymous, "/healthz")) == {"status": "alive"}
    rig.ready[0] = True
    assert (await get_json(anonymous, "/readyz")) == {"status": "ready"}
    rig.draining[0] = True
    assert (await get_json(anonymous, "/readyz", status=503)) == {"status": "draining"}
    assert (await get_json(anonymous, "/healthz")) == {"status": "alive"}


async def test_metrics_reflect_live_state_and_engine_counters(client: Client, rig: Rig) -> None:
    wall = rig.clock.wall()
    rig.live.call_started("c1", "1", "2", wall)
    rig.live.call_started("c2", "1", "2", wall)
    rig.live.call_enqueued("c2", "claims", wall - timedelta(seconds=30))
    rig.live.agent_changed("a1", AgentPresence.AVAILABLE, wall)
    rig.metrics.rtp_packets_late.inc(3)
    rig.metrics.asr_latency_seconds.labels("vosk").observe(0.2)
    resp = await client.get("/metrics")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    lines = set((await resp.text()).splitlines())
    for line in (
        "ivr_calls_active 2", "ivr_calls_total 2", 'ivr_queue_length{queue="claims"} 1',
        'ivr_queue_longest_wait_seconds{queue="claims"} 30', 'ivr_agents{state="available"} 1',
        "ivr_rtp_packets_late_total 3", 'ivr_asr_latency_seconds_count{engine="vosk"} 1',
    ):  # fmt: skip
        assert line in lines, line


async def test_an_unexpected_error_is_a_logged_json_500(
    client: Client, rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(_call_id: str) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(rig.store, "get_call", boom)
    body = await get_json(client, "/api/calls/x", status=500)
    assert body == {"error": "internal error (logged)"}
    assert 'ivr_errors_total{kind="http"} 1' in (await (await client.get("/metrics")).text())


async def test_every_route_is_documented_and_every_documented_path_exists(
    client: Client, app: web.Application
) -> None:
    spec = await get_json(client, "/api/openapi.json")
    assert spec["openapi"].startswith("3.")
    assert_spec_matches_routes(spec, app)
    assert "/api/campaigns" not in spec["paths"]  # optional routes are documented only when served


async def test_docs_and_dashboard_pages_are_served(client: Client) -> None:
    for path, marker in (("/api/docs", "/static/docs.js"), ("/", "/static/dashboard.js")):
        resp = await client.get(path)
        assert resp.status == 200 and marker in await resp.text()
    for asset in ("/static/dashboard.js", "/static/dashboard.css", "/static/docs.js"):
        assert (await client.get(asset)).status == 200
