"""The pure pieces the user agent (ivr.sipua) sends with: CANCEL of our INVITE, the digest retry, hold SDP."""

from __future__ import annotations

import pytest

from ivr.sip.authorize import Credentials, authorized_retry
from ivr.sip.builders import build_cancel
from ivr.sip.digest import DigestChallenge, DigestCredentials, verify_authorization
from ivr.sip.hold import is_hold, offered_direction, with_direction
from ivr.sip.sdp import Direction, SessionDescription
from tests.unit.sip.proto_samples import SDP_OFFER, request, response

ROUTE = "Route: <sip:proxy.example;lr>"


def test_cancel_copies_uri_dialog_headers_top_via_and_route_with_the_invites_cseq_number() -> None:
    invite = request(cseq=7, extra=ROUTE)
    cancel = build_cancel(invite)
    assert (cancel.method, cancel.uri) == ("CANCEL", invite.uri)
    assert str(cancel.cseq) == "7 CANCEL"
    assert cancel.headers.get_all("Via") == invite.headers.get_all("Via")[:1]
    for name in ("From", "To", "Call-ID", "Route"):
        assert cancel.headers.get(name) == invite.headers.get(name)
    assert cancel.body == b""


@pytest.mark.parametrize(("status", "challenge_header", "answer_header"), [
    (401, "WWW-Authenticate", "Authorization"),
    (407, "Proxy-Authenticate", "Proxy-Authorization"),
])
def test_retry_answers_the_challenge_with_a_new_via_and_the_next_cseq(
        status: int, challenge_header: str, answer_header: str) -> None:
    invite = request(cseq=3)
    challenge = DigestChallenge(realm="trunk", nonce="n0nce")
    refused = response(invite, status, extra=((challenge_header, str(challenge)),))
    retry = authorized_retry(invite, refused, Credentials("ivr", "s3cret"), via="SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx",
                             nc=2)
    assert retry is not None
    assert str(retry.cseq) == "4 INVITE" and retry.top_via.branch == "z9hG4bKx"
    creds = DigestCredentials.parse(retry.headers.get(answer_header) or "", answer_header)
    assert creds.nc == "00000002"
    assert verify_authorization(creds, method="INVITE", realm="trunk", password="s3cret", nonce="n0nce")
    assert invite.headers.get(answer_header) is None  # the original is left as it was


def test_retry_is_impossible_without_a_usable_challenge() -> None:
    invite = request()
    assert authorized_retry(invite, response(invite, 401), Credentials("ivr", "x"), via="SIP/2.0/UDP h") is None
    garbled = response(invite, 401, extra=(("WWW-Authenticate", "Basic realm=x"),))
    assert authorized_retry(invite, garbled, Credentials("ivr", "x"), via="SIP/2.0/UDP h") is None


def test_hold_is_read_from_direction_or_zero_address() -> None:
    assert not is_hold(SDP_OFFER.encode())
    assert not is_hold(b"")
    assert is_hold(SDP_OFFER.replace("sendrecv", "sendonly").encode())
    assert is_hold(SDP_OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0").encode())
    assert offered_direction(b"not sdp") is Direction.SENDRECV


def test_with_direction_sets_every_stream_and_bumps_the_origin_version() -> None:
    held = SessionDescription.parse(with_direction(SDP_OFFER.encode(), Direction.SENDONLY))
    assert [m.direction for m in held.media] == [Direction.SENDONLY]
    assert held.session_version == "2353687638"
