"""The demo hotline's opening hours, as live tests need them: at night (22:00-08:00 Beijing) and on holidays
flows/hotline.yaml's `hours` node plays the night notice (about 9 s) before a caller is queued."""

from __future__ import annotations

import datetime
import zoneinfo
from pathlib import Path

import yaml

HOTLINE = Path(__file__).resolve().parents[3] / "flows" / "hotline.yaml"
_HOURS_NODE = yaml.safe_load(HOTLINE.read_text(encoding="utf-8"))["nodes"]["hours"]
HOLIDAYS = frozenset(str(day) for day in _HOURS_NODE["holidays"])
"""flows/hotline.yaml's `hours` holidays, read from the flow so a new year's dates reach the tests."""
NIGHT_NOTICE_S = 10.0
"""How much longer a caller takes to reach a queue at night: the night notice (9.2 s in Mandarin), with room."""


def night_now() -> bool:
    """Whether flows/hotline.yaml's `hours` node sends a caller through the night notice now."""
    now = datetime.datetime.now(zoneinfo.ZoneInfo("Asia/Shanghai"))
    return now.date().isoformat() in HOLIDAYS or not 8 <= now.hour < 22
