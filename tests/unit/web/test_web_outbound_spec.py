"""The outbound routes (added after create_app) in /api/openapi.json, and their answers against its schemas."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from web_rig import ADMIN, CampaignControl, assert_spec_matches_routes, bearer

from ivr.outbound.loader import load_text
from ivr.outbound.scheduler import Scheduler
from ivr.outbound.state import CampaignStore
from ivr.web.outbound import add_outbound_routes

Client = TestClient[web.Request, web.Application]

CAMPAIGN = 'id: pay\nflow: payment_failed\ntrunk: "sip:{number}@127.0.0.1:5070"\n'


@pytest.fixture
async def outbound(app: web.Application, tmp_path: Path) -> AsyncIterator[Client]:
    campaign = load_text(CAMPAIGN, str(tmp_path / "pay.yaml")).campaign
    assert campaign is not None
    scheduler = Scheduler(CampaignStore(tmp_path / "outbound.db"))
    scheduler.add_campaign(campaign)
    add_outbound_routes(app, CampaignControl(scheduler))
    async with TestClient(TestServer(app, host="127.0.0.1"), headers=bearer(ADMIN)) as client:
        yield client
    scheduler.store.close()


def validator(spec: dict[str, Any], name: str) -> jsonschema.Draft202012Validator:
    """A validator for one component schema, its $refs resolved against the others."""
    text = json.dumps({"$defs": spec["components"]["schemas"], **spec["components"]["schemas"][name]})
    return jsonschema.Draft202012Validator(json.loads(text.replace("#/components/schemas/", "#/$defs/")))


async def test_outbound_routes_are_documented_once_registered(outbound: Client) -> None:
    resp = await outbound.get("/api/openapi.json")
    assert resp.status == 200
    spec = await resp.json()
    assert outbound.app is not None
    assert_spec_matches_routes(spec, outbound.app)
    assert spec["paths"]["/api/campaigns/{campaign}/pause"]["post"]["description"].startswith("Needs a supervisor")
    assert spec["paths"]["/api/campaigns"]["get"]["description"].startswith("Needs a viewer")


async def test_outbound_answers_match_their_schemas(outbound: Client) -> None:
    spec = await (await outbound.get("/api/openapi.json")).json()
    call, progress = validator(spec, "OutboundCall"), validator(spec, "CampaignProgress")
    made = await outbound.post("/api/outbound/calls", json={"campaign": "pay", "number": "13800000001", "id": "p1"})
    assert made.status == 201, await made.text()
    call.validate(await made.json())
    call.validate(await (await outbound.get("/api/outbound/calls/p1")).json())
    for item in (await (await outbound.get("/api/campaigns")).json())["campaigns"]:
        progress.validate(item)
    paused = await (await outbound.post("/api/campaigns/pay/pause", json={})).json()
    progress.validate(paused)
    assert paused["paused"] is True and paused["targets"] == 1
    with pytest.raises(jsonschema.ValidationError):
        progress.validate({**paused, "paused": "yes"})
