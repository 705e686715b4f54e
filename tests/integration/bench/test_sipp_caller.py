"""bench.speech_load's SIPp generator against real peers: SIPp replays the pcap bench.rtp_pcap writes (its
RTP arrives as written), and a short run against `ivr serve` ends in records saying the caller was understood."""

from __future__ import annotations

import asyncio
import os
import pathlib
import secrets
import socket
import struct

import pytest

from bench import sipp_caller
from bench.engine_process import serve_flow, wait_ready
from bench.rtp_pcap import RtpStream, pcap_bytes, rtp_packets
from ivr.testing import peers
from ivr.testing.scenario import load_scenarios
from tests.integration.sip.sip_peers import HOST, media_port, needs_sipp, run_sipp, sipp_uas

pytestmark = [
    pytest.mark.integration,
    needs_sipp,
    pytest.mark.skipif(os.geteuid() != 0, reason="SIPp's play_pcap_audio sends from a raw socket: run as root"),
]

ROOT = pathlib.Path(__file__).resolve().parents[3]

UAS = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="pcap_player">
  <recv request="INVITE"/>
  <send><![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]P[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:player@[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=player 1 1 IN IP4 [local_ip]
      s=-
      c=IN IP4 [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0

    ]]></send>
  <recv request="ACK"><action><exec play_pcap_audio="clip.pcap"/></action></recv>
  <recv request="BYE" timeout="15000"/>
  <send><![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]></send>
</scenario>
"""

UAC = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="pcap_listener">
  <send retrans="500"><![CDATA[

      INVITE sip:player@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:listener@[local_ip]:[local_port]>;tag=[pid]L[call_number]
      To: <sip:player@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:listener@[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=listener 1 1 IN IP4 [local_ip]
      s=-
      c=IN IP4 127.0.0.1
      t=0 0
      m=audio __LISTEN_PORT__ RTP/AVP 0

    ]]></send>
  <recv response="100" optional="true"/>
  <recv response="200" rrs="true"/>
  <send><![CDATA[

      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:listener@[local_ip]:[local_port]>;tag=[pid]L[call_number]
      To: <sip:player@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Content-Length: 0

    ]]></send>
  <pause milliseconds="3000"/>
  <send retrans="500"><![CDATA[

      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:listener@[local_ip]:[local_port]>;tag=[pid]L[call_number]
      To: <sip:player@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Content-Length: 0

    ]]></send>
  <recv response="200"/>
</scenario>
"""


class Collector(asyncio.DatagramProtocol):
    def __init__(self, wanted: int) -> None:
        self.datagrams: list[bytes] = []
        self.wanted = wanted
        self.all_in = asyncio.Event()

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.datagrams.append(data)
        if len(self.datagrams) >= self.wanted:
            self.all_in.set()


async def test_sipp_replays_the_written_pcap_and_its_rtp_arrives_as_written(tmp_path: pathlib.Path) -> None:
    payloads = [bytes([index]) * 160 for index in range(50)]  # 1 s of 20 ms frames, each frame its own byte
    stream = RtpStream(payload_type=0, ssrc=0x1234ABCD, first_sequence=65530, first_timestamp=4_294_967_000)
    (tmp_path / "clip.pcap").write_bytes(pcap_bytes(rtp_packets(stream, payloads)))
    (tmp_path / "player.xml").write_text(UAS)
    collector = Collector(len(payloads))
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: collector, local_addr=(HOST, 0), family=socket.AF_INET)
    try:
        listen_port = transport.get_extra_info("sockname")[1]
        (tmp_path / "listener.xml").write_text(UAC.replace("__LISTEN_PORT__", str(listen_port)))
        async with sipp_uas(tmp_path / "player.xml", tmp_path) as (port, player):
            result = await run_sipp(tmp_path / "listener.xml", port, tmp_path)
            assert result.returncode == 0, result.explain()
            await asyncio.wait_for(collector.all_in.wait(), 20)
            played = await player
        assert played.returncode == 0, played.explain()
    finally:
        transport.close()
    headers = [struct.unpack("!BBHII", d[:12]) for d in collector.datagrams]
    assert [d[12:] for d in collector.datagrams] == payloads
    assert headers[0] == (0x80, 0x80, 65530, 4_294_967_000, 0x1234ABCD)  # marker on the first packet
    assert [h[2] for h in headers] == [(65530 + i) & 0xFFFF for i in range(50)]  # sequence wraps
    assert [h[3] for h in headers] == [(4_294_967_000 + 160 * i) & 0xFFFFFFFF for i in range(50)]
    assert {h[4] for h in headers} == {0x1234ABCD}


@pytest.mark.skipif(peers.FESTIVAL.missing, reason=peers.FESTIVAL.reason)
@pytest.mark.timeout(240)
def test_a_sipp_caller_is_understood_by_ivr_serve(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two SIPp callers (the bench's scenario and pcap, as `bench.speech_load --generator sipp` runs them) end in
    records saying claims, claim, en and the expected path: what the bench counts as understood. (The caller's
    17 s on the line is kept: the claims prompt and the queue come several seconds after the need is heard.)"""
    monkeypatch.setenv("IVR_API_TOKEN", secrets.token_hex(16))
    scenario = load_scenarios(ROOT / "tests" / "scenarios" / "claim_en_speech.yaml")[0]
    engine, sip, http = serve_flow(tmp_path, (ROOT / "flows" / "hotline.yaml").read_text(), "--workers", "1")
    try:
        wait_ready(http, proc=engine)
        report = sipp_caller.load(tmp_path, scenario, sip_port=sip, media_port=media_port(),
                                  local_port=media_port(), cps=1, seconds=2, api=f"http://{HOST}:{http}")
    finally:
        engine.terminate()
        engine.wait(timeout=60)
    assert (report["calls"], report["answered"], report["failures"]) == (2, 2, {}), report
    assert report["sipp_returncode"] == 0
    assert report["sipp_peak_threads"] >= 2  # SIPp's main thread and a pcap play thread per call on the line

