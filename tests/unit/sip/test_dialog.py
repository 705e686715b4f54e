"""Dialogs (RFC 3261 section 12): creation from both sides, CSeq, routes, glare, INFO/NOTIFY bodies."""

from __future__ import annotations

import pytest
from proto_samples import SDP_OFFER, request, response

from ivr.sip.dialog import (
    Dialog,
    DialogInput,
    DialogState,
    address_of,
    dtmf_relay_body,
    parse_dtmf_info,
    parse_sipfrag,
    sipfrag_body,
)
from ivr.sip.errors import TransactionError
from ivr.sip.uri import SipUri

VIA = "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-me;rport"
ME = "<sip:ivr@127.0.0.1:5060>"


def uas_dialog(extra: str = "") -> Dialog:
    invite = request("INVITE", body=SDP_OFFER, content_type="application/sdp", extra=extra)
    return Dialog.as_uas(invite, "uas1", ME)


def test_uas_dialog_takes_tags_target_and_cseq_from_the_invite() -> None:
    dialog = uas_dialog()
    assert dialog.key == ("1-4242@127.0.0.1", "uas1", "caller1")
    assert str(dialog.remote_target) == "sip:sipp@127.0.0.1:5062"
    assert dialog.remote_seq == 1 and dialog.state is DialogState.EARLY


def test_uas_bye_swaps_from_and_to_and_goes_to_the_contact() -> None:
    dialog = uas_dialog()
    dialog.move(DialogInput.SUCCESS)
    bye = dialog.new_request("BYE", VIA)
    assert bye.method == "BYE" and str(bye.uri) == "sip:sipp@127.0.0.1:5062"
    assert (bye.from_.tag, bye.to.tag) == ("uas1", "caller1")
    assert bye.from_.uri.user == "100" and bye.to.uri.user == "sipp"
    assert (bye.cseq.seq, bye.cseq.method) == (1, "BYE")
    assert dialog.new_request("INFO", VIA).cseq.seq == 2
    assert address_of(dialog.next_hop()) == ("127.0.0.1", 5062)


def test_uas_route_set_is_record_route_in_order_and_loose_routing_keeps_the_target() -> None:
    dialog = uas_dialog("Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>")
    dialog.move(DialogInput.SUCCESS)
    bye = dialog.new_request("BYE", VIA)
    assert bye.headers.get_all("Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert str(bye.uri) == "sip:sipp@127.0.0.1:5062"
    assert address_of(dialog.next_hop()) == ("p1.example.com", 5060)


def test_strict_router_goes_in_the_request_uri() -> None:
    dialog = uas_dialog("Record-Route: <sip:10.0.0.1:5070>")
    bye = dialog.new_request("BYE", VIA)
    assert str(bye.uri) == "sip:10.0.0.1:5070"
    assert bye.headers.get_all("Route") == ["<sip:sipp@127.0.0.1:5062>"]


def test_uac_dialog_reverses_record_route_and_targets_the_2xx_contact() -> None:
    invite = request("INVITE", from_tag="me1")
    ok = response(invite, 200, to_tag="them1", extra=(
        ("Record-Route", "<sip:p2.example.com;lr>"),
        ("Record-Route", "<sip:p1.example.com;lr>"),
        ("Contact", "<sip:agent@10.1.1.1:5080>"),
    ))
    dialog = Dialog.as_uac(invite, ok, ME)
    assert dialog.state is DialogState.CONFIRMED
    assert dialog.key == ("1-4242@127.0.0.1", "me1", "them1")
    assert dialog.route_set == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert str(dialog.remote_target) == "sip:agent@10.1.1.1:5080"
    ack = dialog.ack(invite.cseq.seq, VIA)
    assert (ack.cseq.seq, ack.cseq.method, ack.to.tag) == (1, "ACK", "them1")
    assert dialog.new_request("BYE", VIA).cseq.seq == 2


def test_early_uac_dialog_is_confirmed_by_2xx_and_ended_by_failure() -> None:
    invite = request("INVITE", from_tag="me1")
    dialog = Dialog.as_uac(invite, response(invite, 180, to_tag="them1"), ME)
    assert dialog.state is DialogState.EARLY
    dialog.receive_response(response(invite, 200, to_tag="them1"), "INVITE")
    assert dialog.state is DialogState.CONFIRMED
    early = Dialog.as_uac(invite, response(invite, 183, to_tag="them2"), ME)
    early.receive_response(response(invite, 486, to_tag="them2"), "INVITE")
    assert early.state is DialogState.TERMINATED


def test_bye_from_peer_terminates_and_lower_cseq_is_refused_with_500() -> None:
    dialog = uas_dialog()
    dialog.move(DialogInput.SUCCESS)
    info = request("INFO", cseq=3, to_tag="uas1")
    assert dialog.check_request(info) is None
    stale = request("OPTIONS", cseq=2, to_tag="uas1")
    assert dialog.check_request(stale) == 500
    assert dialog.check_request(request("BYE", cseq=4, to_tag="uas1")) is None
    assert dialog.state is DialogState.TERMINATED


def test_reinvite_while_ours_is_pending_is_glare_491() -> None:
    dialog = uas_dialog()
    dialog.move(DialogInput.SUCCESS)
    dialog.new_request("INVITE", VIA, body=SDP_OFFER.encode(), content_type="application/sdp")
    assert dialog.check_request(request("INVITE", cseq=2, to_tag="uas1")) == 491


def test_reinvite_while_answering_the_previous_one_is_500_and_ours_must_wait() -> None:
    dialog = uas_dialog()
    dialog.move(DialogInput.SUCCESS)
    assert dialog.check_request(request("INVITE", cseq=2, to_tag="uas1")) is None
    assert dialog.check_request(request("INVITE", cseq=3, to_tag="uas1")) == 500
    with pytest.raises(TransactionError, match="cannot re-INVITE while answering"):
        dialog.new_request("INVITE", VIA)
    dialog.reinvite_answered()
    assert dialog.new_request("INVITE", VIA).method == "INVITE"


def test_reinvite_refreshes_the_remote_target() -> None:
    dialog = uas_dialog()
    dialog.move(DialogInput.SUCCESS)
    reinvite = request("INVITE", cseq=2, to_tag="uas1")
    reinvite.headers.set("Contact", "<sip:sipp@127.0.0.1:6000>")
    dialog.check_request(reinvite)
    assert dialog.remote_target == SipUri.parse("sip:sipp@127.0.0.1:6000")


def test_481_to_an_in_dialog_request_ends_the_dialog() -> None:
    dialog = uas_dialog()
    dialog.move(DialogInput.SUCCESS)
    info = dialog.new_request("INFO", VIA)
    dialog.receive_response(response(info, 481), "INFO")
    assert dialog.terminated


def test_illegal_dialog_move_names_state_and_input() -> None:
    dialog = uas_dialog()
    dialog.terminate()
    with pytest.raises(TransactionError) as info:
        dialog.move(DialogInput.SUCCESS)
    assert str(info.value) == "dialog 1-4242@127.0.0.1 in state TERMINATED cannot handle 2xx to an INVITE"


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n", ("5", 160)),
        ("application/dtmf-relay", b"Signal= #\r\nDuration= 250\r\n", ("#", 250)),
        ("application/dtmf-relay", b"Signal=11\r\nDuration=100\r\n", ("#", 100)),
        ("application/dtmf", b"7", ("7", 250)),
        ("application/dtmf-relay", b"Signal=X\r\n", None),
        ("text/plain", b"5", None),
    ],
    ids=["relay", "relay-spaces", "relay-numeric-hash", "dtmf", "bad-signal", "not-dtmf"],
)
def test_dtmf_info_bodies(content_type: str, body: bytes, expected: tuple[str, int] | None) -> None:
    assert parse_dtmf_info(content_type, body) == expected


def test_dtmf_relay_body_round_trips() -> None:
    assert parse_dtmf_info("application/dtmf-relay", dtmf_relay_body("*", 120)) == ("*", 120)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"SIP/2.0 100 Trying\r\n", (100, "Trying")),
        (b"SIP/2.0 200 OK", (200, "OK")),
        (b"SIP/2.0 603 Declined\r\nVia: x\r\n", (603, "Declined")),
        (b"hello", None),
    ],
    ids=["trying", "ok-no-crlf", "declined-with-headers", "garbage"],
)
def test_sipfrag(body: bytes, expected: tuple[int, str] | None) -> None:
    assert parse_sipfrag(body) == expected


def test_sipfrag_body_round_trips() -> None:
    assert parse_sipfrag(sipfrag_body(486, "Busy Here")) == (486, "Busy Here")
