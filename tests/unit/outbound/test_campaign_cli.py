"""`ivr campaign validate|schema|export` (the file commands; start/pause/status are tested live)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.outbound.loader import load_campaign
from ivr.outbound.model import Result
from ivr.outbound.scheduler import Scheduler
from ivr.outbound.state import CampaignStore
from ivr.outbound.targets import read_targets_csv

ROOT = Path(__file__).resolve().parents[3]


def test_validate_the_demo_campaign(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["campaign", "validate", str(ROOT / "campaigns"), "--flows", str(ROOT / "flows")]) == 0
    assert capsys.readouterr().out.strip().endswith("revisit.yaml: ok (3 targets)")


def test_validate_reports_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text('id: x\nflow: nowhere\ntrunk: "sip:{number}@h"\npacing: {calls_per_s: 0}\n', encoding="utf-8")
    csv_bad = tmp_path / "c2.yaml"
    (tmp_path / "t.csv").write_text("number\nabc\n", encoding="utf-8")
    csv_bad.write_text('id: y\nflow: revisit\ntrunk: "sip:{number}@h"\ntargets: t.csv\n', encoding="utf-8")
    assert main(["campaign", "validate", str(bad), str(csv_bad), "--flows", str(ROOT / "flows")]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{bad}:2:7: no flow has id 'nowhere'",
        f"{bad}:4:23: pacing calls_per_s must be more than 0",
        f"{tmp_path / 't.csv'}:2: number 'abc' is not a dialable number",
    ]


def test_schema_is_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["campaign", "schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "IVR outbound campaign"


def test_export_writes_per_target_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "o.db"
    campaign = load_campaign(ROOT / "campaigns" / "revisit.yaml")
    scheduler = Scheduler(CampaignStore(db))
    scheduler.add_campaign(campaign)
    wall = dt.datetime(2026, 12, 2, 2, 0, tzinfo=dt.UTC)
    assert campaign.targets_file is not None
    scheduler.add_targets("revisit", read_targets_csv(campaign.targets_file), wall)
    dial = scheduler.next_dial(wall, 0.0, "a1")
    assert dial is not None
    scheduler.finished(dial, Result.ANSWERED, "confirmed", wall)
    scheduler.store.close()
    assert main(["campaign", "export", "revisit", "--db", str(db)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("campaign,target_id,number,status,attempts,last_result,result_code,next_at,")
    assert lines[1].startswith("revisit,P1001,13800000001,done,1,answered,confirmed,")
    assert len(lines) == 4
