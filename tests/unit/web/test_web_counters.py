"""The protocol layers' own totals (SIP endpoints, edge, registrar, media, dialect memory) on a scraped /metrics."""

from __future__ import annotations

from types import SimpleNamespace

from aiohttp import web
from aiohttp.test_utils import TestClient
from web_rig import Rig

from ivr.rtp import MediaCounters
from ivr.sip.edge import EdgeCounters
from ivr.sip.endpoint import SipEndpoint
from ivr.sip.message import Request
from ivr.sip.parser import parse_message
from ivr.sip.registrar import RegistrarCounters
from ivr.web import CounterSources, watch_counters

Client = TestClient[web.Request, web.Application]

US, PEER = ("127.0.0.1", 5060), ("127.0.0.1", 5062)


def options_probe(branch: str) -> Request:
    data = (
        f"OPTIONS sip:ivr@127.0.0.1:5062 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch={branch}\r\n"
        f"From: <sip:probe@127.0.0.1>;tag=p1\r\nTo: <sip:ivr@127.0.0.1>\r\nCall-ID: {branch}@probe\r\n"
        "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    request = parse_message(data)
    assert isinstance(request, Request)
    return request


def probe(ours: SipEndpoint, theirs: SipEndpoint, branch: str) -> None:
    """`ours` sends an OPTIONS to `theirs`, which answers 200; the answer comes back to `ours`."""
    ours.send_request(options_probe(branch), PEER, 0.0)
    for data, _ in ours.datagrams_to_send():
        theirs.receive_datagram(data, US, 0.0)
    for data, _ in theirs.datagrams_to_send():
        ours.receive_datagram(data, PEER, 0.0)


async def scrape(client: Client) -> list[str]:
    resp = await client.get("/metrics")
    assert resp.status == 200, await resp.text()
    return (await resp.text()).splitlines()


async def test_scrape_shows_sip_edge_registrar_and_media_totals(client: Client, rig: Rig) -> None:
    udp, tcp, peer = SipEndpoint(US), SipEndpoint(US), SipEndpoint(PEER)
    probe(udp, peer, "z9hG4bK-a")
    probe(peer, udp, "z9hG4bK-b")
    probe(peer, tcp, "z9hG4bK-c")  # a second listener's totals add to the first's
    edge = EdgeCounters(rate_limited=5, untrusted_invites=2, busy_sources=1)
    registrar = RegistrarCounters(challenges=7, registered=3, wrong_answers=2, throttled=1, replays=0, refused=4)
    media = MediaCounters(received=900, malformed=1, wrong_source=6, oversize=2, send_errors=3, srtp_rejected=8)
    over_capacity = [0]
    dialect_memory = SimpleNamespace(late_lookups=4, dropped_writes=1)
    shed = [2]
    watch_counters(rig.metrics, CounterSources(
        sip=(udp, tcp), over_capacity=lambda: over_capacity[0], edge=edge, registrar=registrar, media=media,
        dialect_memory=dialect_memory, speech_shed=lambda: shed[0],
    ))  # fmt: skip
    lines = await scrape(client)
    for line in (
        'ivr_sip_requests_total{method="OPTIONS",direction="in"} 2',
        'ivr_sip_requests_total{method="OPTIONS",direction="out"} 1',
        'ivr_sip_responses_total{method="OPTIONS",code="200",direction="out"} 2',
        'ivr_sip_responses_total{method="OPTIONS",code="200",direction="in"} 1',
        'ivr_sip_edge_refused_total{reason="rate_limited"} 5',
        'ivr_sip_edge_refused_total{reason="untrusted"} 2',
        'ivr_sip_edge_refused_total{reason="busy_source"} 1',
        'ivr_sip_edge_refused_total{reason="over_capacity"} 0',
        'ivr_sip_register_total{result="challenged"} 7',
        'ivr_sip_register_total{result="wrong_answer"} 2',
        'ivr_sip_register_total{result="refused"} 4',
        "ivr_rtp_packets_received_total 900",
        'ivr_rtp_dropped_total{reason="wrong_source"} 6',
        'ivr_rtp_dropped_total{reason="oversize"} 2',
        'ivr_rtp_dropped_total{reason="srtp"} 8',
        "ivr_rtp_send_errors_total 3",
        "ivr_media_failures_total 0",
        'ivr_dialect_memory_skipped_total{reason="late_lookup"} 4',
        'ivr_dialect_memory_skipped_total{reason="dropped_write"} 1',
        "ivr_asr_shed_total 2",
    ):
        assert line in lines
    # Totals are read at each scrape, never cached.
    probe(peer, udp, "z9hG4bK-d")
    media.send_errors += 1
    over_capacity[0] = 12
    shed[0] = 5
    lines = await scrape(client)
    assert "ivr_asr_shed_total 5" in lines
    assert 'ivr_sip_requests_total{method="OPTIONS",direction="in"} 3' in lines
    assert "ivr_rtp_send_errors_total 4" in lines
    assert 'ivr_sip_edge_refused_total{reason="over_capacity"} 12' in lines


async def test_an_engine_without_agents_or_edge_scrapes_fine(client: Client, rig: Rig) -> None:
    watch_counters(rig.metrics, CounterSources())
    lines = await scrape(client)
    assert "# TYPE ivr_sip_register_total counter" in lines
    assert not any(line.startswith("ivr_sip_register_total{") for line in lines)
