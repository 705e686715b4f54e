"""The demo hotline's opening hours, as live tests need them: at night (22:00-08:00 Beijing) and on holidays
flows/hotline.yaml's `hours` node plays the night notice (about 9 s) before a caller is queued."""

from __future__ import annotations

import datetime
import zoneinfo

HOLIDAYS = {
    "2026-01-01",
    "2026-02-16",
    "2026-02-17",
    "2026-02-18",
    "2026-02-19",
    "2026-02-20",
    "2026-04-05",
    "2026-05-01",
    "2026-06-19",
    "2026-09-25",
    "2026-10-01",
    "2026-10-02",
    "2026-10-03",
}
"""flows/hotline.yaml's `hours` holidays."""
NIGHT_NOTICE_S = 10.0
"""How much longer a caller takes to reach a queue at night: the night notice (9.2 s in Mandarin), with room."""


def night_now() -> bool:
    """Whether flows/hotline.yaml's `hours` node sends a caller through the night notice now."""
    now = datetime.datetime.now(zoneinfo.ZoneInfo("Asia/Shanghai"))
    return now.date().isoformat() in HOLIDAYS or not 8 <= now.hour < 22
