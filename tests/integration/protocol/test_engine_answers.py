"""Protocol paths where the engine answers a real SIPp caller: UPDATE, late offer (SDP in the ACK), hold
and resume by re-INVITE, blind transfer by REFER, an offer with no codec in common (488), and an RTP
stream that changes its SSRC mid-call.

Each test asserts what SIPp saw (its exit code: the scenario's expectations held, and its message
log: what the engine put on the wire), then what the engine recorded.
"""

from __future__ import annotations

import pathlib
import re
import struct

import pytest

from ivr.testing import peers
from tests.integration.engine.conftest import RunningEngine
from tests.integration.protocol.conftest import (
    HOLD_NUMBER,
    KEYS_NUMBER,
    TRANSFER_NUMBER,
    TRANSFER_TARGET,
    finished_call,
)
from tests.integration.protocol.peer import run_peer
from tests.integration.sip.sip_peers import free_port, needs_sipp

pytestmark = [pytest.mark.integration, needs_sipp]

_KEY_NAMES = {"*": "star", "#": "pound"}


def press(keys: str, pcaps: pathlib.Path, gap_ms: int = 400) -> str:
    """SIPp actions pressing `keys`: one RFC 2833 capture replay per key from folder `pcaps`."""
    pause = f'\n  <pause milliseconds="{gap_ms}"/>\n'
    return pause.join(
        f'  <nop><action><exec play_pcap_audio="{pcaps}/dtmf_2833_{_KEY_NAMES.get(k, k)}.pcap"/></action></nop>'
        for k in keys
    )


def sipp_pcaps() -> pathlib.Path:
    if peers.SIPP_PCAPS.missing:
        pytest.skip(peers.SIPP_PCAPS.reason)
    return pathlib.Path(peers.SIPP_PCAPS.require())


def restamp(source: pathlib.Path, target: pathlib.Path, *, ssrc: int, seq_offset: int, ts_offset: int) -> None:
    """Copy an Ethernet/IPv4/UDP/RTP capture, giving every packet another SSRC, sequence and timestamp
    base: the same key, sent by another RTP source. (SIPp recomputes UDP checksums when it replays.)"""
    data = bytearray(source.read_bytes())
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    (link_type,) = struct.unpack_from(order + "I", data, 20)
    link_header = {1: 14, 113: 16}[link_type]
    offset = 24
    while offset + 16 <= len(data):
        (captured,) = struct.unpack_from(order + "I", data, offset + 8)
        ip = offset + 16 + link_header
        rtp = ip + (data[ip] & 0x0F) * 4 + 8
        seq, timestamp = struct.unpack_from("!HI", data, rtp + 2)
        struct.pack_into("!HII", data, rtp + 2, (seq + seq_offset) & 0xFFFF,
                         (timestamp + ts_offset) & 0xFFFFFFFF, ssrc)
        offset += 16 + captured
    target.write_bytes(bytes(data))


def digits_entered(detail: dict[str, object]) -> object:
    record = detail["record"]
    assert isinstance(record, dict)
    return record["variables"].get("entered")


async def test_update_mid_call_gets_an_sdp_answer(engine: RunningEngine, tmp_path: pathlib.Path) -> None:
    caller = "13700000701"
    run = await run_peer("uac_update.xml", engine.sip_port, tmp_path, service=HOLD_NUMBER,
                         values={"caller": caller, "new_port": free_port() & ~1})
    assert run.returncode == 0, run.explain()
    (update_ok,) = [m for m in run.received("SIP/2.0 200") if m.cseq_method == "UPDATE"]
    assert re.search(r"^m=audio \d+ RTP/AVP 0\b", update_ok.body, re.MULTILINE), update_ok.text
    assert update_ok.header("Content-Type") == "application/sdp"
    detail = await finished_call(engine, caller)
    assert detail["record"]["outcome"] is not None and not detail["in_progress"]


async def test_hold_and_resume_by_reinvite_get_recvonly_then_sendrecv(engine: RunningEngine,
                                                                       tmp_path: pathlib.Path) -> None:
    caller = "13700000702"
    run = await run_peer("uac_hold.xml", engine.sip_port, tmp_path, service=HOLD_NUMBER, values={"caller": caller})
    assert run.returncode == 0, run.explain()
    answers = [m for m in run.received("SIP/2.0 200") if m.cseq_method == "INVITE"]
    directions = [re.findall(r"^a=(sendrecv|sendonly|recvonly|inactive)", m.body, re.MULTILINE) for m in answers]
    # The first 200 answers the call (sendrecv, or no attribute: the default); then hold, then resume.
    assert directions[1:] == [["recvonly"], ["sendrecv"]], directions
    assert not (await finished_call(engine, caller))["in_progress"]


async def test_late_offer_answer_in_the_ack_is_used(engine: RunningEngine, tmp_path: pathlib.Path) -> None:
    """A key sent as RFC 2833 events after a late offer is heard only if the engine took the ACK's answer."""
    caller = "13700000703"
    run = await run_peer("uac_late_offer.xml", engine.sip_port, tmp_path, service=KEYS_NUMBER,
                         values={"caller": caller, "keys": press("5#", sipp_pcaps())}, timeout_s=40.0)
    assert run.returncode == 0, run.explain()
    (invite,) = run.sent("INVITE")
    assert invite.body == "", "the INVITE carried an offer: not a late-offer call"
    (ok,) = [m for m in run.received("SIP/2.0 200") if m.cseq_method == "INVITE"]
    assert "m=audio" in ok.body and ok.header("Content-Type") == "application/sdp"
    (ack,) = run.sent("ACK")
    assert "m=audio" in ack.body
    assert run.received("BYE"), "the engine hangs up once it has the digits"
    detail = await finished_call(engine, caller)
    assert digits_entered(detail) == "5"


async def test_a_new_ssrc_mid_stream_is_a_new_source_not_noise(engine: RunningEngine, tmp_path: pathlib.Path) -> None:
    """Key 1 under the capture's own SSRC, keys 2 and # from another source (new SSRC, sequence numbers
    and timestamps): the engine must hear all three, as RFC 3550 8.2 wants a new SSRC taken as a new stream."""
    pcaps = sipp_pcaps()
    switched = tmp_path / "switched"
    switched.mkdir()
    (switched / "dtmf_2833_1.pcap").write_bytes((pcaps / "dtmf_2833_1.pcap").read_bytes())
    for key in ("2", "pound"):
        restamp(pcaps / f"dtmf_2833_{key}.pcap", switched / f"dtmf_2833_{key}.pcap",
                ssrc=0x5EED0002, seq_offset=20000, ts_offset=3_000_000)
    caller = "13700000704"
    run = await run_peer("uac_ssrc_change.xml", engine.sip_port, tmp_path, service=KEYS_NUMBER,
                         values={"caller": caller, "keys": press("12#", switched)}, timeout_s=40.0)
    assert run.returncode == 0, run.explain()
    detail = await finished_call(engine, caller)
    assert digits_entered(detail) == "12"


async def test_blind_transfer_refers_the_caller_and_hangs_up_once_notified(engine: RunningEngine,
                                                                            tmp_path: pathlib.Path) -> None:
    caller = "13700000705"
    run = await run_peer("uac_referred.xml", engine.sip_port, tmp_path, service=TRANSFER_NUMBER,
                         values={"caller": caller, "target": TRANSFER_TARGET,
                                 "target_re": re.escape(TRANSFER_TARGET)})
    assert run.returncode == 0, run.explain()
    (refer,) = run.received("REFER")
    assert refer.header("Refer-To") == f"<{TRANSFER_TARGET}>"
    assert [m.start_line for m in run.messages if m.direction == "received"][-1].startswith("BYE")
    detail = await finished_call(engine, caller)
    assert not detail["in_progress"]


async def test_an_offer_with_no_common_codec_is_refused_488(engine: RunningEngine, tmp_path: pathlib.Path) -> None:
    run = await run_peer("uac_unsupported_codec.xml", engine.sip_port, tmp_path, service=KEYS_NUMBER,
                         values={"caller": "13700000706"})
    assert run.returncode == 0, run.explain()
    finals = [m.status for m in run.received("SIP/2.0") if m.status is not None and m.status >= 200]
    assert finals == [488], finals
