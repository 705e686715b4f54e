from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from ivr.journey import CallRecord, Outcome
from ivr.store import BadQuery, CallQuery, parse_time, record_to_csv_row
from ivr.store.records import CSV_COLUMNS, decode_cursor, encode_cursor, ts_parse, ts_text

NOW = datetime(2026, 1, 5, 10, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1d", NOW - timedelta(days=1)),
        ("2h", NOW - timedelta(hours=2)),
        ("15m", NOW - timedelta(minutes=15)),
        ("90s", NOW - timedelta(seconds=90)),
        ("1w", NOW - timedelta(weeks=1)),
        ("0.5d", NOW - timedelta(hours=12)),
        ("now", NOW),
        ("today", datetime(2026, 1, 5, tzinfo=UTC)),
        ("2026-01-04T08:00:00+08:00", datetime(2026, 1, 4, tzinfo=UTC)),
        ("2026-01-04T08:00:00Z", datetime(2026, 1, 4, 8, tzinfo=UTC)),
        ("2026-01-04", datetime(2026, 1, 4, tzinfo=UTC)),
    ],
)
def test_parse_time(text: str, expected: datetime) -> None:
    assert parse_time(text, NOW) == expected


def test_parse_time_error_names_the_input() -> None:
    with pytest.raises(BadQuery, match=r"bad time 'yesterday': expected a span like 1d/2h/30m"):
        parse_time("yesterday", NOW)


def test_time_text_is_fixed_width_utc_so_text_order_is_time_order() -> None:
    times = [
        datetime(2026, 1, 5, 9, 0, 0, 5, tzinfo=UTC),
        datetime(2026, 1, 5, 18, 0, tzinfo=timezone(timedelta(hours=8))),  # 10:00 UTC
        datetime(2026, 1, 5, 9, 30),  # naive: taken as UTC
    ]
    texts = [ts_text(t) for t in times]
    assert len({len(t) for t in texts}) == 1
    assert sorted(texts) == [texts[0], texts[2], texts[1]]
    assert ts_parse(texts[1]) == datetime(2026, 1, 5, 10, tzinfo=UTC)


def test_cursor_round_trip() -> None:
    assert decode_cursor(encode_cursor(NOW, "abc@host")) == (NOW, "abc@host")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0}, "limit must be between 1 and 1000, got 0"),
        ({"limit": 5000}, "limit must be between 1 and 1000, got 5000"),
        ({"offset": -1}, "offset must not be negative, got -1"),
        ({"cursor": "%%%"}, "bad cursor '%%%'"),
    ],
)
def test_bad_query_messages(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(BadQuery, match=message):
        CallQuery(**kwargs)  # type: ignore[arg-type]


def test_csv_row_follows_the_columns() -> None:
    rec = CallRecord(
        "c1", "138", "95500", NOW, intent="claim", path=["a", "b"], variables={"区域": "广东"},
        outcome=Outcome.TO_AGENT, wait_s=12.5,
    )  # fmt: skip
    row = dict(zip(CSV_COLUMNS, record_to_csv_row(rec), strict=True))
    assert row["call_id"] == "c1"
    assert row["started_at"] == "2026-01-05T10:30:00+00:00"
    assert row["outcome"] == "to-agent"
    assert row["path"] == '["a", "b"]'
    assert row["variables"] == '{"区域": "广东"}'
    assert row["ended_at"] == "" and row["wait_s"] == "12.5"
