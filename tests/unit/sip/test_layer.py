"""The transaction layer: routing by key, CANCEL, rport, bad bytes, and one heap of deadlines."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from proto_samples import PEER, first_line, parse, request, response

from ivr.sip.builders import build_response
from ivr.sip.dialog import OkRetransmission
from ivr.sip.events import (
    AckTimedOut,
    InviteCancelled,
    MessageRejected,
    RequestReceived,
    ResponseReceived,
    TransactionTimedOut,
)
from ivr.sip.layer import TransactionLayer
from ivr.sip.message import Response
from ivr.sip.transaction import TxState


def test_new_invite_is_handed_up_and_answered_100_trying_when_the_tu_is_silent_for_200_ms() -> None:
    layer = TransactionLayer()
    invite = request("INVITE")
    events = layer.receive(invite, PEER, now=0.0)
    assert len(events) == 1 and isinstance(events[0], RequestReceived)
    assert events[0].transaction is not None and events[0].source == PEER
    assert layer.datagrams_to_send() == []  # RFC 3261 17.2.1: the TU may answer within 200 ms
    assert layer.next_deadline() == pytest.approx(0.2)
    assert layer.handle_timer(0.2) == []
    assert [(first_line(d), a) for d, a in layer.datagrams_to_send()] == [("SIP/2.0 100 Trying", PEER)]
    assert layer.handle_timer(1.0) == [] and layer.datagrams_to_send() == []  # once


def test_a_tu_that_answers_within_200_ms_sends_no_100_trying() -> None:
    layer = TransactionLayer()
    (received,) = layer.receive(request("INVITE"), PEER, now=0.0)
    assert isinstance(received, RequestReceived) and received.transaction is not None
    layer.send_response(received.transaction, response(received.request, 180, to_tag="uas1"), now=0.05)
    assert [first_line(d) for d, _ in layer.datagrams_to_send()] == ["SIP/2.0 180 Ringing"]
    layer.handle_timer(0.3)
    assert layer.datagrams_to_send() == []
    layer.receive(request("INVITE"), PEER, now=0.5)  # a retransmission gets the 180 again
    assert [first_line(d) for d, _ in layer.datagrams_to_send()] == ["SIP/2.0 180 Ringing"]


def test_retransmitted_request_is_absorbed_and_answered_by_its_transaction() -> None:
    layer = TransactionLayer()
    invite = request("INVITE")
    layer.receive(invite, PEER, now=0.0)
    layer.datagrams_to_send()
    assert layer.receive(request("INVITE"), PEER, now=0.5) == []
    assert [first_line(d) for d, _ in layer.datagrams_to_send()] == ["SIP/2.0 100 Trying"]
    assert len(layer) == 1


def test_cancel_of_a_pending_invite_gets_200_and_is_reported() -> None:
    layer = TransactionLayer()
    (received,) = layer.receive(request("INVITE"), PEER, now=0.0)
    assert isinstance(received, RequestReceived) and received.transaction is not None
    layer.send_response(received.transaction, response(received.request, 180, to_tag="uas1"), now=0.1)
    layer.datagrams_to_send()
    cancel = request("CANCEL")
    events = layer.receive(cancel, PEER, now=1.0)
    assert events == [InviteCancelled(received.transaction, cancel)]
    (ok_bytes, _), = layer.datagrams_to_send()
    ok = parse(ok_bytes)
    assert isinstance(ok, Response) and (ok.status, ok.cseq.method) == (200, "CANCEL")
    assert ok.to.tag == "uas1"  # same To tag as the INVITE's responses (RFC 3261 9.2)


def test_cancel_without_matching_invite_gets_481() -> None:
    layer = TransactionLayer()
    assert layer.receive(request("CANCEL"), PEER, now=0.0) == []
    assert [first_line(d) for d, _ in layer.datagrams_to_send()] == [
        "SIP/2.0 481 Call/Transaction Does Not Exist"
    ]


def test_cancel_after_final_response_gets_200_but_no_event() -> None:
    layer = TransactionLayer()
    (received,) = layer.receive(request("INVITE"), PEER, now=0.0)
    assert isinstance(received, RequestReceived) and received.transaction is not None
    layer.send_response(received.transaction, response(received.request, 200), now=0.1)
    assert layer.receive(request("CANCEL"), PEER, now=0.2) == []
    assert first_line(layer.datagrams_to_send()[-1][0]) == "SIP/2.0 200 OK"


def test_ack_for_a_2xx_has_no_transaction_and_goes_to_the_tu() -> None:
    layer = TransactionLayer()
    ack = request("ACK", branch="z9hG4bK-ack", to_tag="uas1")
    assert layer.receive(ack, PEER, now=0.0) == [RequestReceived(ack, PEER, None)]


def test_ack_for_a_failure_is_absorbed_by_the_invite_transaction() -> None:
    layer = TransactionLayer()
    (received,) = layer.receive(request("INVITE"), PEER, now=0.0)
    assert isinstance(received, RequestReceived) and received.transaction is not None
    layer.send_response(received.transaction, response(received.request, 486), now=0.1)
    assert layer.receive(request("ACK", to_tag="callee1"), PEER, now=0.2) == []
    assert received.transaction.state is TxState.CONFIRMED


def test_responses_are_routed_to_their_client_transaction() -> None:
    layer = TransactionLayer()
    options = request("OPTIONS", branch="z9hG4bK-out")
    tx = layer.send_request(options, PEER, now=0.0)
    assert [(first_line(d), a) for d, a in layer.datagrams_to_send()] == [
        ("OPTIONS sip:100@127.0.0.1:5060 SIP/2.0", PEER)
    ]
    ok = response(options, 200)
    assert layer.receive(ok, PEER, now=0.1) == [ResponseReceived(ok, tx)]


def test_stray_2xx_to_invite_reaches_the_tu_but_stray_failure_is_dropped() -> None:
    layer = TransactionLayer()
    invite = request("INVITE", branch="z9hG4bK-gone")
    ok = response(invite, 200)
    assert layer.receive(ok, PEER, now=0.0) == [ResponseReceived(ok, None)]
    assert layer.receive(response(invite, 486), PEER, now=0.0) == []


def test_rport_and_received_are_stamped_on_the_top_via() -> None:
    layer = TransactionLayer()
    invite = request("INVITE", via_host="10.0.0.5:5060", via_params=";rport")
    (event,) = layer.receive(invite, ("192.0.2.7", 40123), now=0.0)
    assert isinstance(event, RequestReceived)
    via = event.request.top_via
    assert (via.received, via.rport) == ("192.0.2.7", "40123")
    layer.handle_timer(0.2)  # the 100 Trying
    (data, addr), = layer.datagrams_to_send()
    assert addr == ("192.0.2.7", 40123)  # the response goes where the request came from
    assert b"received=192.0.2.7" in data and b"rport=40123" in data


def test_via_from_the_source_host_without_rport_is_left_alone() -> None:
    layer = TransactionLayer()
    (event,) = layer.receive(request("OPTIONS"), PEER, now=0.0)
    assert isinstance(event, RequestReceived)
    assert event.request.top_via.received is None


def test_unparseable_request_gets_400_with_the_parse_error_as_reason() -> None:
    layer = TransactionLayer()
    data = (
        b"OPTIONS sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKx\r\n"
        b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: c1\r\n"
        b"CSeq: one OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    (event,) = layer.receive_datagram(data, PEER, now=0.0)
    assert isinstance(event, MessageRejected) and event.status == 400
    (out, addr), = layer.datagrams_to_send()
    assert addr == PEER
    assert first_line(out) == f"SIP/2.0 400 {event.reason}"
    assert "CSeq" in event.reason


def test_garbage_and_bad_responses_are_dropped_silently() -> None:
    layer = TransactionLayer()
    (event,) = layer.receive_datagram(b"\x00\x01hello", PEER, now=0.0)
    assert isinstance(event, MessageRejected) and event.status == 0
    layer.receive_datagram(b"SIP/2.0 200 OK\r\nVia: nonsense\r\n\r\n", PEER, now=0.0)
    assert layer.datagrams_to_send() == []


def test_next_deadline_is_the_earliest_of_all_transactions() -> None:
    layer = TransactionLayer()
    layer.send_request(request("INVITE", branch="z9hG4bK-a"), PEER, now=0.0)
    layer.send_request(request("OPTIONS", branch="z9hG4bK-b"), PEER, now=0.2)
    layer.datagrams_to_send()
    assert layer.next_deadline() == 0.5
    layer.handle_timer(0.5)
    assert len(layer.datagrams_to_send()) == 1
    assert layer.next_deadline() == pytest.approx(0.7)
    layer.handle_timer(0.7)
    assert layer.next_deadline() == 1.5


def test_deadline_of_an_answered_transaction_is_dropped_from_the_heap() -> None:
    layer = TransactionLayer()
    invite = request("INVITE", branch="z9hG4bK-a")
    layer.send_request(invite, PEER, now=0.0)
    layer.receive(response(invite, 180), PEER, now=0.1)
    assert layer.next_deadline() is None
    assert layer.handle_timer(0.5) == []


def test_timed_out_client_transaction_is_reported_and_forgotten() -> None:
    layer = TransactionLayer()
    tx = layer.send_request(request("OPTIONS", branch="z9hG4bK-b"), PEER, now=0.0)
    events = []
    while (deadline := layer.next_deadline()) is not None:
        events.extend(layer.handle_timer(deadline))
    assert events == [TransactionTimedOut(tx)]
    assert len(layer) == 0


def test_ok_retransmission_runs_in_the_layer_heap_until_acked() -> None:
    layer = TransactionLayer()
    invite = request("INVITE")
    ok = build_response(invite, 200, to_tag="uas1")
    job = OkRetransmission(ok.serialize(), PEER, invite.call_id, 1, now=0.0)
    layer.add_timed(job, now=0.0)
    sent_at = []
    while (deadline := layer.next_deadline()) is not None and deadline < 4.0:
        layer.handle_timer(deadline)
        sent_at += [deadline for _ in layer.datagrams_to_send()]
    assert sent_at == [0.5, 1.5, 3.5]
    job.ack_received()
    layer.refresh(job, now=3.6)
    assert layer.next_deadline() is None


def test_ok_retransmission_without_ack_times_out_at_64_t1() -> None:
    layer = TransactionLayer()
    job = OkRetransmission(b"SIP/2.0 200 OK\r\n\r\n", PEER, "cid", 7, now=0.0)
    layer.add_timed(job, now=0.0)
    events = []
    while (deadline := layer.next_deadline()) is not None:
        events.extend(layer.handle_timer(deadline))
        last = deadline
    assert events == [AckTimedOut("cid", 7)]
    assert last == 32.0


_VALID = (
    b"INVITE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-f1;rport\r\n"
    b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: fuzz\r\nCSeq: 1 INVITE\r\n"
    b"Contact: <sip:a@127.0.0.1:5062>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_VALID) - 1), st.binary(min_size=0, max_size=3)), max_size=4))
def test_mangled_datagrams_never_raise_out_of_the_layer(edits: list[tuple[int, bytes]]) -> None:
    data = _VALID
    for position, replacement in edits:
        data = data[:position] + replacement + data[position + 1:]
    layer = TransactionLayer()
    for now in (0.0, 0.5):  # a second copy exercises the retransmission path too
        events = layer.receive_datagram(data, PEER, now)
        assert all(isinstance(e, (RequestReceived, ResponseReceived, MessageRejected, InviteCancelled))
                   for e in events)
    layer.handle_timer(100.0)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_are_rejected_or_routed_never_raised(data: bytes) -> None:
    layer = TransactionLayer()
    layer.receive_datagram(data, PEER, 0.0)
