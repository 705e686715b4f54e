"""The peer tools: SIPp's message log read back as messages, and PostgreSQL found under any version."""

from __future__ import annotations

import datetime
import pathlib

import pytest

from ivr.testing.peers import POSTGRESQL, postgres_bin_dirs
from ivr.testing.sippeer import parse_message_log, read_message_log

CAPTURE = pathlib.Path(__file__).resolve().parents[2] / "data" / "sipp" / "uac_messages.log"
"""`sipp -sn uac -trace_msg` against `sipp -sn uas`: one call, six messages (CRLF inside each message)."""


def test_a_captured_sipp_message_log_reads_back_in_order() -> None:
    messages = read_message_log(CAPTURE)
    assert [(m.direction, m.method or m.status) for m in messages] == [
        ("sent", "INVITE"), ("received", 180), ("received", 200), ("sent", "ACK"), ("sent", "BYE"), ("received", 200),
    ]  # fmt: skip
    invite = messages[0]
    assert invite.header("call-id") == "1-18489@127.0.0.1"
    assert invite.cseq_method == "INVITE" and messages[-1].cseq_method == "BYE"
    assert invite.body.startswith("v=0\n") and "m=audio 6004 RTP/AVP 0" in invite.body
    assert messages[1].body == ""
    assert messages[0].at == datetime.datetime(2026, 12, 6, 3, 50, 36, 770849).timestamp()
    assert messages[0].at <= messages[-1].at


def test_a_header_given_twice_keeps_both_values_in_order() -> None:
    log = (
        "----------------------------------------------- 2026-01-02 03:04:05.000001\n"
        "UDP message received [99] bytes :\n\n"
        "SIP/2.0 200 OK\r\nRecord-Route: <sip:a;lr>\r\nVia: x\r\nRecord-Route: <sip:b;lr>\r\n\r\n"
    )
    (ok,) = parse_message_log(log)
    assert ok.status == 200 and ok.headers("record-route") == ["<sip:a;lr>", "<sip:b;lr>"]


def test_a_message_lost_under_minus_lost_is_skipped_and_the_next_one_still_read() -> None:
    """SIPp writes "UDP message lost (recv)." with no line end: the next separator follows on that line."""
    log = (
        "----------------------------------------------- 2026-01-02 03:04:05.000001\n"
        "UDP message received [9] bytes :\n\nACK sip:a SIP/2.0\r\nCSeq: 1 ACK\r\n\r\n\n"
        "UDP message lost (recv).----------------------------------------------- 2026-01-02 03:04:05.100001\n"
        "UDP message received [9] bytes :\n\nBYE sip:a SIP/2.0\r\nCSeq: 2 BYE\r\n\r\n"
    )
    ack, bye = parse_message_log(log)
    assert (ack.method, bye.method) == ("ACK", "BYE")
    assert "lost" not in ack.text and ack.body == ""


def test_an_empty_or_missing_log_has_no_messages(tmp_path: pathlib.Path) -> None:
    assert parse_message_log("") == []
    assert read_message_log(tmp_path / "never-written.log") == []


def test_postgresql_folders_sort_newest_first_and_an_override_must_hold_the_programs(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for version in ("9.6", "15", "16"):
        folder = tmp_path / version / "bin"
        folder.mkdir(parents=True)
        if version != "16":  # 16 is a leftover folder without the programs: skipped, not chosen
            for program in ("initdb", "pg_ctl"):
                (folder / program).touch()
    assert [d.parent.name for d in postgres_bin_dirs(f"{tmp_path}/*/bin")] == ["16", "15", "9.6"]
    monkeypatch.setenv("IVR_PG_BIN", str(tmp_path / "15" / "bin"))
    assert POSTGRESQL.path == str(tmp_path / "15" / "bin")
    monkeypatch.setenv("IVR_PG_BIN", str(tmp_path / "16" / "bin"))
    assert POSTGRESQL.missing and "apt install postgresql" in POSTGRESQL.reason
