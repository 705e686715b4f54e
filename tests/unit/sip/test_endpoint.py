"""The pure SIP endpoint: whole exchanges fed as bytes with a driven clock, no sockets, no waiting."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from proto_samples import ME, PEER, SDP_OFFER, first_line, parse, request

from ivr.clock import FakeClock
from ivr.sip.dialog import Dialog
from ivr.sip.endpoint import SipEndpoint, TransportKind
from ivr.sip.events import (
    AckReceived,
    CallCancelled,
    CallOffered,
    DialogEnded,
    DialogEndReason,
    DialogRequestReceived,
    ResponseReceived,
    TransportFailed,
)
from ivr.sip.message import Request, Response

PROXY_RR = "Record-Route: <sip:10.0.0.1;lr;ftag=caller1>\r\nRecord-Route: <sip:10.0.0.2;lr>"


def endpoint(**kwargs: object) -> SipEndpoint:
    return SipEndpoint(ME, **kwargs)  # type: ignore[arg-type]


def sent(ep: SipEndpoint) -> list[Request | Response]:
    return [parse(data) for data, _ in ep.datagrams_to_send()]


def statuses(messages: list[Request | Response]) -> list[int | str]:
    return [m.status if isinstance(m, Response) else m.method for m in messages]


def offer(ep: SipEndpoint, clock: FakeClock, **kwargs: object) -> CallOffered:
    ep.receive_datagram(invite(**kwargs).serialize(), PEER, clock.now())
    event = ep.next_event()
    assert isinstance(event, CallOffered), event
    return event


def invite(**kwargs: object) -> Request:
    return request("INVITE", body=SDP_OFFER, content_type="application/sdp", **kwargs)  # type: ignore[arg-type]


def ack_for(ok: Response, *, cseq: int = 1, branch: str = "z9hG4bK-ack-1") -> Request:
    return request("ACK", branch=branch, cseq=cseq, to_tag=ok.to.tag)


async def test_invite_ack_bye_on_a_fake_clock() -> None:
    clock, ep = FakeClock(), endpoint(accept_number=lambda dialed: dialed == "100")
    offered = offer(ep, clock)
    assert offered.offer is not None and offered.offer.media[0].port == 6000  # SDP parsed once, at the edge
    dialog = ep.answer(offered, SDP_OFFER.encode(), now=clock.now())
    (ok,) = sent(ep)  # answered at once: no 100 Trying (RFC 3261 17.2.1)
    assert statuses([ok]) == [200]
    assert isinstance(ok, Response) and ok.to.tag == offered.local_tag and ok.body == SDP_OFFER.encode()
    assert ep.next_deadline() == pytest.approx(0.5)
    await clock.advance(0.5)
    ep.handle_timer(clock.now())
    assert [d for d, _ in ep.datagrams_to_send()] == [ok.serialize()]  # the same bytes, serialized once
    ep.receive_datagram(ack_for(ok).serialize(), PEER, clock.now())
    (acked,) = ep.events()
    assert isinstance(acked, AckReceived) and acked.key == dialog.key
    await clock.advance(10)
    ep.handle_timer(clock.now())
    assert ep.datagrams_to_send() == []  # the ACK stopped the 2xx retransmission
    ep.receive_datagram(request("BYE", branch="z9hG4bK-bye", cseq=2, to_tag=ok.to.tag).serialize(), PEER,
                        clock.now())
    (bye_ok,) = sent(ep)
    assert isinstance(bye_ok, Response) and (bye_ok.status, bye_ok.cseq.method) == (200, "BYE")
    (ended,) = ep.events()
    assert isinstance(ended, DialogEnded) and ended.reason is DialogEndReason.REMOTE_BYE
    assert ep.dialog(dialog.key) is None and ep.admission.active_calls == 0


def test_ack_is_matched_in_the_endpoint_and_reported_once() -> None:
    clock, ep = FakeClock(), endpoint()
    dialog = ep.answer(offer(ep, clock), b"v=0\r\n", now=0.0)
    ok = sent(ep)[-1]
    assert isinstance(ok, Response)
    ep.receive_datagram(ack_for(ok).serialize(), PEER, 0.1)
    ep.receive_datagram(ack_for(ok).serialize(), PEER, 0.2)  # a copy of the ACK: absorbed
    events = ep.events()
    assert len(events) == 1 and isinstance(events[0], AckReceived) and events[0].key == dialog.key
    deadline = ep.next_deadline()
    assert deadline is not None and deadline > 0.2  # only Timer L of the INVITE remains


def test_no_ack_ends_the_dialog_with_a_bye_after_64_t1() -> None:
    clock, ep = FakeClock(), endpoint()
    dialog = ep.answer(offer(ep, clock), b"v=0\r\n", now=0.0)
    ep.datagrams_to_send()
    retransmits = 0
    while (deadline := ep.next_deadline()) is not None and deadline <= 32.0:
        ep.handle_timer(deadline)
        retransmits += sum(1 for data, _ in ep.datagrams_to_send() if data.startswith(b"SIP/2.0 200"))
    assert retransmits >= 7
    events = ep.events()
    assert events == [DialogEnded(dialog.key, DialogEndReason.NO_ACK, None)]
    assert ep.dialog(dialog.key) is None


def test_cancel_before_the_answer_gets_200_and_487_and_one_event() -> None:
    clock, ep = FakeClock(), endpoint()
    offered = offer(ep, clock)
    ep.respond(offered.transaction, 180, now=0.1, to_tag=offered.local_tag)
    ep.datagrams_to_send()
    for _ in range(2):  # the CANCEL retransmitted
        ep.receive_datagram(request("CANCEL").serialize(), PEER, 0.5)
    out = sent(ep)
    assert statuses(out) == [200, 487, 200]
    assert all(isinstance(m, Response) and m.to.tag == offered.local_tag for m in out)
    assert ep.events() == [CallCancelled(offered.transaction)]
    assert ep.admission.active_calls == 0


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"draining": True}, 503),
        ({"accepting": False}, 480),
        ({"max_calls": 0}, 503),
        ({"accept_number": lambda dialed: False}, 404),
    ],
    ids=["draining", "no-application", "at-capacity", "unknown-number"],
)
def test_admission_refuses_before_the_application_sees_the_call(kwargs: dict[str, object], status: int) -> None:
    ep = endpoint()
    for name, value in kwargs.items():
        setattr(ep.admission, name, value)
    ep.receive_datagram(invite().serialize(), PEER, 0.0)
    assert statuses(sent(ep)) == [status]
    assert ep.events() == []


def test_bad_sdp_in_the_offer_is_refused_at_the_edge() -> None:
    ep = endpoint()
    bad = request("INVITE", body="v=0\r\nm=audio\r\n", content_type="application/sdp")
    ep.receive_datagram(bad.serialize(), PEER, 0.0)
    out = sent(ep)
    assert statuses(out)[0] in (400, 488) and ep.events() == []


def test_capacity_counts_offered_and_answered_calls_until_they_end() -> None:
    clock, ep = FakeClock(), endpoint(max_calls=1)
    offered = offer(ep, clock)
    ep.receive_datagram(invite(call_id="second@x", branch="z9hG4bK-2").serialize(), PEER, 0.0)
    assert statuses(sent(ep))[-1] == 503
    ep.respond(offered.transaction, 486, now=0.0, to_tag=offered.local_tag)
    assert ep.admission.active_calls == 0


def test_in_dialog_request_passes_up_after_its_cseq_check_and_unknown_dialogs_get_481() -> None:
    clock, ep = FakeClock(), endpoint()
    dialog = ep.answer(offer(ep, clock), b"v=0\r\n", now=0.0)
    ok = sent(ep)[-1]
    assert isinstance(ok, Response)
    info = request("INFO", branch="z9hG4bK-info", cseq=2, to_tag=ok.to.tag)
    ep.receive_datagram(info.serialize(), PEER, 0.1)
    (event,) = [e for e in ep.events() if isinstance(e, DialogRequestReceived)]
    assert event.key == dialog.key and event.request.method == "INFO"
    old = request("INFO", branch="z9hG4bK-info-old", cseq=2, to_tag=ok.to.tag)
    ep.receive_datagram(old.serialize(), PEER, 0.2)
    assert statuses(sent(ep)) == [500]  # CSeq not above the last one
    stray = request("BYE", branch="z9hG4bK-stray", cseq=3, to_tag="nobody")
    ep.receive_datagram(stray.serialize(), PEER, 0.3)
    assert statuses(sent(ep)) == [481]


def test_copies_of_the_peers_2xx_are_acked_again_by_the_endpoint() -> None:
    ep = endpoint()
    ours = request("INVITE", via_host="127.0.0.1:5060", branch="z9hG4bK-out", call_id="out@me",
                   from_tag="me1", body=SDP_OFFER, content_type="application/sdp")
    tx = ep.send_request(ours, PEER, 0.0)
    ep.datagrams_to_send()
    ok = _peer_ok(ours)
    ep.receive_datagram(ok.serialize(), PEER, 0.1)
    (event,) = ep.events()
    assert isinstance(event, ResponseReceived) and event.transaction is tx
    dialog = Dialog.as_uac(ours, ok, ep.contact())
    ep.add_dialog(dialog)
    ep.send_ack(dialog.key, dialog.ack(1, ep.via()), PEER)
    (ack_bytes, _), = ep.datagrams_to_send()
    ep.receive_datagram(ok.serialize(), PEER, 0.6)  # our ACK was lost
    assert ep.datagrams_to_send() == [(ack_bytes, PEER)] and ep.events() == []


def _peer_ok(ours: Request) -> Response:
    from ivr.sip.builders import build_response

    ok = build_response(ours, 200, to_tag="callee9", headers=[("Contact", "<sip:callee@127.0.0.1:5062>")])
    parsed = parse(ok.serialize())
    assert isinstance(parsed, Response)
    return parsed


def test_refused_tcp_connect_fails_the_transaction_at_once() -> None:
    ep = SipEndpoint(ME, transport=TransportKind.TCP)
    ours = request("OPTIONS", via_host="127.0.0.1:5060", branch="z9hG4bK-opt", call_id="opt@me")
    tx = ep.send_request(ours, PEER, 0.0)
    ep.transport_failed(PEER, 0.01)
    assert ep.events() == [TransportFailed(tx)]
    assert tx.terminated and ep.next_deadline() is None


# --- Record-Route (RFC 3261 12.1.1) -------------------------------------------------------------------


def test_record_route_is_copied_in_order_into_dialog_creating_invite_responses() -> None:
    clock, ep = FakeClock(), endpoint()
    offered = offer(ep, clock, extra=PROXY_RR)
    ep.handle_timer(0.2)  # no answer within 200 ms: 100 Trying
    ep.respond(offered.transaction, 180, now=0.2, to_tag=offered.local_tag)
    ep.answer(offered, b"v=0\r\n", now=0.3)
    trying, ringing, ok = sent(ep)
    expected = ["<sip:10.0.0.1;lr;ftag=caller1>", "<sip:10.0.0.2;lr>"]
    assert trying.headers.get_all("Record-Route") == []  # 100 has no To tag: it creates no dialog
    assert ringing.headers.get_all("Record-Route") == expected
    assert ok.headers.get_all("Record-Route") == expected


def test_record_route_is_not_copied_into_failures_or_non_dialog_responses() -> None:
    clock, ep = FakeClock(), endpoint()
    offered = offer(ep, clock, extra=PROXY_RR)
    ep.respond(offered.transaction, 486, now=0.0, to_tag=offered.local_tag)
    options = request("OPTIONS", branch="z9hG4bK-o", call_id="o@x", extra=PROXY_RR)
    ep.receive_datagram(options.serialize(), PEER, 0.0)
    for message in sent(ep):
        assert message.headers.get_all("Record-Route") == [], first_line(message.serialize())


def test_record_route_is_copied_into_a_subscribe_2xx_non_invite_transaction() -> None:
    from ivr.sip.builders import build_response

    subscribe = request("SUBSCRIBE", branch="z9hG4bK-s", call_id="s@x", extra=PROXY_RR + "\r\nEvent: refer")
    ok = build_response(subscribe, 200, to_tag="t1")
    assert ok.headers.get_all("Record-Route") == ["<sip:10.0.0.1;lr;ftag=caller1>", "<sip:10.0.0.2;lr>"]


def test_our_in_dialog_requests_follow_the_record_route_set_as_uas() -> None:
    clock, ep = FakeClock(), endpoint()
    dialog = ep.answer(offer(ep, clock, extra=PROXY_RR), b"v=0\r\n", now=0.0)
    bye = dialog.new_request("BYE", ep.via())
    assert bye.headers.get_all("Route") == ["<sip:10.0.0.1;lr;ftag=caller1>", "<sip:10.0.0.2;lr>"]
    assert str(bye.uri) == "sip:sipp@127.0.0.1:5062"  # loose routing: the target stays in the R-URI
    assert (dialog.next_hop().host, dialog.next_hop().port) == ("10.0.0.1", None)


# --- any interleaving of retransmitted INVITE/ACK/CANCEL/BYE (hypothesis) ---------------------------

UAC_ACTIONS = st.lists(st.sampled_from(["invite", "cancel", "ack", "bye", "tick", "answer"]), max_size=30)


@settings(max_examples=200, deadline=None)
@given(actions=UAC_ACTIONS)
def test_any_interleaving_gives_one_call_and_rfc_3261_responses(actions: list[str]) -> None:
    """The caller retransmits each of its requests at will (same bytes, same branch); the application
    answers whenever "answer" comes up and the call is still offered. Whatever the order: one call is
    offered, every response to the INVITE carries one To tag, its final status never changes, a CANCEL
    after the answer does not undo it, and a BYE ends the call once."""
    ep = endpoint()
    now = 0.0
    first = invite(branch="z9hG4bK-inv")
    cancel = request("CANCEL", branch="z9hG4bK-inv")
    offered: list[CallOffered] = []
    cancelled = answered = False
    to_tag: str | None = None
    invite_finals: set[int] = set()
    tags: set[str] = set()
    bye_statuses: list[int] = []
    ended: list[DialogEnded] = []

    def pump() -> None:
        nonlocal cancelled, to_tag
        for message in sent(ep):
            assert isinstance(message, Response)
            method = message.cseq.method
            if method == "INVITE" and message.status > 100:
                tags.add(message.to.tag or "")
                if message.status >= 200:
                    invite_finals.add(message.status)
                if message.status == 200:
                    to_tag = message.to.tag
            elif method == "BYE":
                bye_statuses.append(message.status)
            elif method == "CANCEL":
                assert message.status in (200, 481)
        for event in ep.events():
            if isinstance(event, CallOffered):
                offered.append(event)
            elif isinstance(event, CallCancelled):
                cancelled = True
            elif isinstance(event, DialogEnded):
                ended.append(event)

    for action in ["invite", *actions]:
        if action == "invite":
            ep.receive_datagram(first.serialize(), PEER, now)
        elif action == "cancel":
            ep.receive_datagram(cancel.serialize(), PEER, now)
        elif action == "ack" and to_tag is not None:
            ep.receive_datagram(request("ACK", branch="z9hG4bK-ack", to_tag=to_tag).serialize(), PEER, now)
        elif action == "bye" and to_tag is not None:
            bye = request("BYE", branch="z9hG4bK-bye", cseq=2, to_tag=to_tag)
            ep.receive_datagram(bye.serialize(), PEER, now)
        elif action == "tick":
            now += 0.3
            ep.handle_timer(now)
        elif action == "answer" and offered and not cancelled and not answered:
            ep.answer(offered[0], b"v=0\r\n", now=now)
            answered = True
        pump()

    assert len(offered) == 1
    assert len(tags) <= 1 and tags <= {offered[0].local_tag}
    assert len(invite_finals) <= 1  # 200 or 487, never both
    if cancelled:
        assert invite_finals == {487} and not answered
    if answered:
        assert invite_finals == {200}
    if bye_statuses:
        assert set(bye_statuses) == {200}  # copies of the BYE get the same 200 from its transaction
        assert [e.reason for e in ended] == [DialogEndReason.REMOTE_BYE]
    assert ep.admission.active_calls == (1 if (answered and not ended) or not (answered or cancelled) else 0)
