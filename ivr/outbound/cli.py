"""`ivr campaign validate|schema|start|pause|resume|status|export`.

validate, schema and export work on files (no engine needed); start (= resume), pause, resume and
status ask the running engine's API with the local client token (`IVR_API_TOKEN` or var/api-token).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

EXPORT_COLUMNS = ("campaign", "target_id", "number", "status", "attempts", "last_result", "result_code", "next_at")


def add_campaign(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("campaign", help="outbound campaigns: validate files, start/pause/resume, status, export")
    actions = p.add_subparsers(dest="campaign_command", metavar="ACTION", required=True)
    v = actions.add_parser("validate", help="check campaign files (and their targets CSV); path:line:col per problem")
    v.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="campaign files or folders of them")
    v.add_argument("--flows", type=Path, default=None, metavar="DIR", help="check the flows named exist here")
    v.set_defaults(handler=_validate)
    s = actions.add_parser("schema", help="print the campaign file JSON Schema")
    s.set_defaults(handler=_schema)
    for name, text in (("start", "start (resume) dialling a campaign"), ("pause", "stop dialling new calls"),
                       ("resume", "dial again after a pause"), ("status", "progress of every campaign or one")):
        a = actions.add_parser(name, help=text)
        a.add_argument("campaign", nargs="?" if name == "status" else None, metavar="CAMPAIGN")
        a.add_argument("--api", default="http://127.0.0.1:8080", metavar="URL", help="the engine's HTTP API")
        a.set_defaults(handler=_remote)
    e = actions.add_parser("export", help="CSV of per-target results (from the outbound state file)")
    e.add_argument("campaign", metavar="CAMPAIGN")
    e.add_argument("--db", default="var/outbound.db", metavar="PATH|URL",
                   help="the engine's outbound_db, or its postgresql:// db (the state a cluster shares)")
    e.set_defaults(handler=_export)


def _campaign_files(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        out += sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    return out


def _flow_ids(folder: Path) -> set[str]:
    from ivr.flow.loader import check_file

    ids = set()
    for path in sorted(folder.glob("*.yaml")):
        flow = check_file(path, classifier_factory=None).flow
        if flow is not None:
            ids.add(flow.id)
    return ids


def _validate(args: argparse.Namespace) -> int:
    from ivr.outbound.errors import TargetError
    from ivr.outbound.loader import check_campaign
    from ivr.outbound.targets import read_do_not_call, read_targets_csv

    flows = _flow_ids(args.flows) if args.flows is not None else None
    failed = False
    for path in _campaign_files(args.paths):
        result = check_campaign(path, flow_exists=None if flows is None else flows.__contains__)
        for problem in result.problems:
            print(problem)
        campaign = result.campaign
        try:
            count = len(read_targets_csv(campaign.targets_file)) if campaign and campaign.targets_file else 0
            if campaign and campaign.do_not_call_file:
                read_do_not_call(campaign.do_not_call_file.read_text(encoding="utf-8").splitlines())
        except (TargetError, OSError) as exc:
            print(exc)
            campaign = None
        if campaign is None:
            failed = True
            continue
        print(f"{path}: ok ({count} targets)")
    return 1 if failed else 0


def _schema(_args: argparse.Namespace) -> int:
    from ivr.outbound.loader import campaign_json_schema

    print(json.dumps(campaign_json_schema(), indent=2, ensure_ascii=False))
    return 0


def _request(url: str, method: str) -> Any:
    from ivr.outbound.errors import OutboundError
    from ivr.web import client_token
    from ivr.web.access import bearer_headers

    headers = {**bearer_headers(client_token()), "Content-Type": "application/json"}
    request = urllib.request.Request(url, method=method, headers=headers, data=b"{}" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise OutboundError(f"{method} {url}: {exc.code} {detail}") from None
    except urllib.error.URLError as exc:
        raise OutboundError(f"{method} {url}: engine not reachable ({exc.reason})") from None


def _remote(args: argparse.Namespace) -> int:
    base = args.api.rstrip("/")
    command = "resume" if args.campaign_command == "start" else args.campaign_command
    if command == "status":
        found = _request(f"{base}/api/campaigns" + (f"/{args.campaign}" if args.campaign else ""), "GET")
        rows = found.get("campaigns", [found])
    else:
        rows = [_request(f"{base}/api/campaigns/{args.campaign}/{command}", "POST")]
    for row in rows:
        results = ", ".join(f"{k} {v}" for k, v in sorted(row["results"].items())) or "none yet"
        print(f"{row['campaign']}: {'paused' if row['paused'] else 'dialling'}; {row['targets']} targets, "
              f"{row['attempted']} attempted, {row['completed']} completed without a human "
              f"({row['completion_rate']:.1%}); results: {results}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from ivr.config import URL_SCHEMES
    from ivr.outbound.errors import OutboundError
    from ivr.outbound.state import CampaignStore, SqlCampaignState

    store: SqlCampaignState
    if args.db.startswith(URL_SCHEMES):
        from ivr.outbound.pgstate import PostgresCampaignStore

        store = PostgresCampaignStore(args.db)
    elif not Path(args.db).is_file():
        raise OutboundError(f"no outbound state file at {args.db}")
    else:
        store = CampaignStore(args.db)
    try:
        states = store.targets(args.campaign)
    finally:
        store.close()
    variables = sorted({k for s in states for k in s.target.variables})
    out = csv.writer(sys.stdout)
    out.writerow([*EXPORT_COLUMNS, *variables])
    for s in states:
        out.writerow([s.campaign, s.target.target_id, s.target.number, s.status.value, s.attempts,
                      s.last_result.value if s.last_result else "", s.result_code or "", s.next_at.isoformat(),
                      *(s.target.variables.get(k, "") for k in variables)])
    return 0
