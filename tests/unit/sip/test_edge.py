"""The SIP edge (issue #15) and the endpoint consulting it: trusted sources, token buckets, caps, 482."""

from __future__ import annotations

from proto_samples import ME, PEER, SDP_OFFER, parse, request

from ivr.sip.edge import EdgePolicy, EdgeVerdict, SipEdge
from ivr.sip.endpoint import SipEndpoint
from ivr.sip.events import CallOffered
from ivr.sip.message import Response

TRUNK = ("10.1.0.7", 5060)
STRANGER = ("203.0.113.9", 5060)


def invite(n: int, *, source: tuple[str, int] = PEER, from_tag: str = "caller1", call_id: str | None = None) -> bytes:
    return request("INVITE", branch=f"z9hG4bK-{n}", via_host=f"{source[0]}:{source[1]}", from_tag=from_tag,
                   call_id=call_id or f"call-{n}@x", body=SDP_OFFER, content_type="application/sdp").serialize()


def replies(ep: SipEndpoint) -> list[int]:
    out = []
    for data, _ in ep.datagrams_to_send():
        message = parse(data)
        assert isinstance(message, Response)
        out.append(message.status)
    return out


def offered(ep: SipEndpoint) -> list[CallOffered]:
    return [e for e in ep.events() if isinstance(e, CallOffered)]


def test_token_bucket_drops_beyond_the_burst_and_refills_with_time() -> None:
    edge = SipEdge(EdgePolicy(requests_per_s=10, burst=5))
    assert [edge.admit_datagram("198.51.100.1", 0.0) for _ in range(7)] == [True] * 5 + [False] * 2
    assert edge.counters.rate_limited == 2
    assert edge.admit_datagram("198.51.100.1", 0.1)  # 0.1 s at 10/s: one token back
    assert not edge.admit_datagram("198.51.100.1", 0.1)
    assert edge.admit_datagram("198.51.100.2", 0.1)  # another source has its own bucket


def test_trusted_sources_are_exempt_from_the_bucket() -> None:
    edge = SipEdge(EdgePolicy(trusted=("10.1.0.0/16",), requests_per_s=1, burst=1))
    assert all(edge.admit_datagram("10.1.0.7", 0.0) for _ in range(100))
    assert edge.admit_datagram("203.0.113.9", 0.0) and not edge.admit_datagram("203.0.113.9", 0.0)


def test_bucket_table_stays_bounded_under_spoofed_sources() -> None:
    edge = SipEdge(EdgePolicy(max_sources=100))
    for n in range(1000):
        edge.admit_datagram(f"198.18.{n // 250}.{n % 250}", float(n))
    assert len(edge._buckets) <= 100


def test_untrusted_invite_is_dropped_silently_and_counted() -> None:
    edge = SipEdge(EdgePolicy(trusted=("10.1.0.0/16",)))
    ep = SipEndpoint(ME, edge=edge)
    ep.receive_datagram(invite(1, source=STRANGER), STRANGER, 0.0)
    assert ep.datagrams_to_send() == [] and ep.events() == []
    assert edge.counters.untrusted_invites == 1
    ep.receive_datagram(invite(2, source=TRUNK), TRUNK, 0.0)
    assert replies(ep) == [] and len(offered(ep)) == 1  # offered; the TU answers (100 Trying after 200 ms)


def test_untrusted_invite_gets_403_when_configured() -> None:
    ep = SipEndpoint(ME, edge=SipEdge(EdgePolicy(trusted=("10.1.0.0/16",), untrusted_invite=EdgeVerdict.FORBIDDEN)))
    ep.receive_datagram(invite(1, source=STRANGER), STRANGER, 0.0)
    assert replies(ep) == [403] and ep.events() == []


def test_in_dialog_reinvite_from_an_untrusted_phone_is_not_an_intrusion() -> None:
    edge = SipEdge(EdgePolicy(trusted=("10.1.0.0/16",)))
    ep = SipEndpoint(ME, edge=edge)
    reinvite = request("INVITE", branch="z9hG4bK-re", via_host="203.0.113.9:5060", to_tag="ours", cseq=2)
    ep.receive_datagram(reinvite.serialize(), STRANGER, 0.0)
    assert 481 in replies(ep)  # answered (no such dialog here), not dropped
    assert edge.counters.untrusted_invites == 0


def test_calls_per_source_are_capped_with_503() -> None:
    ep = SipEndpoint(ME, edge=SipEdge(EdgePolicy(max_calls_per_source=2)))
    for n in range(3):
        ep.receive_datagram(invite(n), PEER, 0.0)
    assert replies(ep) == [503]
    assert len(offered(ep)) == 2
    other = ("127.0.0.2", 5060)
    ep.receive_datagram(invite(9, source=other), other, 0.0)
    assert replies(ep) == [] and len(offered(ep)) == 1


def test_flood_from_one_source_does_not_starve_a_trusted_caller() -> None:
    edge = SipEdge(EdgePolicy(trusted=("10.1.0.0/16",), untrusted_invite=EdgeVerdict.FORBIDDEN,
                              requests_per_s=20, burst=40))
    ep = SipEndpoint(ME, edge=edge)
    ep.layer.max_server_transactions = 500
    for n in range(2000):  # 2,000 INVITEs in one second from one stranger
        ep.receive_datagram(invite(n, source=STRANGER), STRANGER, n / 2000)
    flood_replies = len(ep.datagrams_to_send())
    assert flood_replies <= 60  # only the bucket's burst and refill got an answer (a 403 each)
    assert edge.counters.rate_limited >= 1900
    ep.receive_datagram(invite(5000, source=TRUNK), TRUNK, 1.0)
    assert replies(ep) == [] and len(offered(ep)) == 1


def test_a_second_invite_with_a_live_call_id_and_another_tag_gets_482() -> None:
    ep = SipEndpoint(ME)
    ep.receive_datagram(invite(1, call_id="shared@x"), PEER, 0.0)
    (first,) = offered(ep)
    ep.datagrams_to_send()
    ep.receive_datagram(invite(2, call_id="shared@x", from_tag="intruder"), PEER, 0.1)
    assert replies(ep) == [482] and ep.events() == []
    ep.respond(first.transaction, 486, now=0.2, to_tag=first.local_tag)
    ep.datagrams_to_send()
    ep.receive_datagram(invite(3, call_id="shared@x", from_tag="later"), PEER, 0.3)  # the first call is over
    assert len(offered(ep)) == 1


def test_live_server_transactions_are_capped() -> None:
    ep = SipEndpoint(ME)
    ep.layer.max_server_transactions = 3
    for n in range(5):
        options = request("OPTIONS", branch=f"z9hG4bK-o{n}", call_id=f"o{n}@x")
        ep.receive_datagram(options.serialize(), PEER, 0.0)
    assert replies(ep) == [200, 200, 200]
    assert ep.layer.dropped_over_capacity == 2
    ep.handle_timer(32.0)  # Timer J frees them: new requests are taken again
    ep.receive_datagram(request("OPTIONS", branch="z9hG4bK-o9", call_id="o9@x").serialize(), PEER, 32.0)
    assert replies(ep) == [200]
