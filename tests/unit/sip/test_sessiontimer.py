"""Session timers (RFC 4028), the pure part: headers, the UAS negotiation table, the UAC side, the schedule."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ivr.sip.errors import SipParseError
from ivr.sip.message import Headers, Request, Response
from ivr.sip.parser import parse_message
from ivr.sip.sessiontimer import (
    Negotiated,
    Refresher,
    SessionExpires,
    SessionTimer,
    SessionTimerEvent,
    TimerPolicy,
    min_se_after_422,
    negotiate_uac,
    negotiate_uas,
    offer_headers,
    parse_min_se,
    refresh_headers,
    retry_after_422,
)

POLICY = TimerPolicy(session_expires_s=1800, min_se_s=90)


# -- headers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parsed", "serialized"),
    [
        ("1800", SessionExpires(1800), "1800"),
        ("90;refresher=uac", SessionExpires(90, Refresher.UAC), "90;refresher=uac"),
        ("4000 ; Refresher = UAS", SessionExpires(4000, Refresher.UAS), "4000;refresher=uas"),
        ("600;x-vendor=1;refresher=uas", SessionExpires(600, Refresher.UAS), "600;refresher=uas"),
    ],
    ids=["bare", "uac", "spaces-and-case", "generic-param"],
)
def test_session_expires_parses_and_serializes(text: str, parsed: SessionExpires, serialized: str) -> None:
    assert SessionExpires.parse(text) == parsed
    assert parsed.serialize() == serialized
    assert SessionExpires.parse(serialized) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("soon", "bad Session-Expires header: expected a number of seconds, got 'soon'"),
        ("0", "bad Session-Expires header: expected a number of seconds, got '0'"),
        ("90;refresher=proxy", "bad Session-Expires header: refresher 'proxy' is not uac or uas"),
    ],
)
def test_a_malformed_session_expires_is_a_400_naming_it(text: str, message: str) -> None:
    with pytest.raises(SipParseError) as caught:
        SessionExpires.parse(text)
    assert str(caught.value) == message
    assert caught.value.status_hint == 400


def test_min_se_parses_seconds_and_ignores_parameters() -> None:
    assert parse_min_se("90") == 90
    assert parse_min_se(" 120;x=1") == 120
    with pytest.raises(SipParseError, match="bad Min-SE header"):
        parse_min_se("-5")


@given(st.text(max_size=40))
@example("\u00b9")  # a superscript one: str.isdigit() says yes, int() says no
def test_any_session_expires_text_parses_or_is_our_parse_error(text: str) -> None:
    try:
        parsed = SessionExpires.parse(text)
    except SipParseError:
        return
    assert SessionExpires.parse(parsed.serialize()) == parsed


def test_a_policy_with_min_se_above_session_expires_is_refused() -> None:
    with pytest.raises(ValueError, match="min_se 100 must be between 1 and session_expires 60"):
        TimerPolicy(session_expires_s=60, min_se_s=100)


# -- the UAS side (RFC 4028 section 9) ------------------------------------------------------------------


def _headers(*pairs: tuple[str, str]) -> Headers:
    return Headers(pairs)


UAS_TABLE = [
    # (request headers, expected 2xx headers, interval, we refresh)
    ((), (("Session-Expires", "1800;refresher=uas"),), 1800, True),
    ((("Supported", "timer"),),
     (("Session-Expires", "1800;refresher=uas"), ("Require", "timer")), 1800, True),
    ((("Supported", "timer"), ("Session-Expires", "90;refresher=uac")),
     (("Session-Expires", "90;refresher=uac"), ("Require", "timer")), 90, False),
    ((("Supported", "timer"), ("Session-Expires", "600;refresher=uas")),
     (("Session-Expires", "600;refresher=uas"), ("Require", "timer")), 600, True),
    ((("Supported", "timer"), ("Session-Expires", "600")),
     (("Session-Expires", "600;refresher=uas"), ("Require", "timer")), 600, True),
    ((("Supported", "timer"), ("Session-Expires", "7200;refresher=uac")),
     (("Session-Expires", "1800;refresher=uac"), ("Require", "timer")), 1800, False),
    ((("Require", "timer"), ("Session-Expires", "1800;refresher=uac"), ("Min-SE", "90")),
     (("Session-Expires", "1800;refresher=uac"), ("Require", "timer")), 1800, False),
    ((("Supported", "timer"), ("Session-Expires", "7200"), ("Min-SE", "3600")),
     (("Session-Expires", "3600;refresher=uas"), ("Require", "timer")), 3600, True),
    ((("Session-Expires", "60;refresher=uac"),), (("Session-Expires", "90;refresher=uas"),), 90, True),
    ((("Session-Expires", "600;refresher=uac"),), (("Session-Expires", "600;refresher=uas"),), 600, True),
]


@pytest.mark.parametrize(
    ("request_headers", "answer", "interval_s", "we_refresh"),
    UAS_TABLE,
    ids=[
        "no-timer-at-all:we-refresh-alone",
        "supported-no-interval:our-interval-we-refresh",
        "uac-refreshes",
        "uac-asks-us-to-refresh",
        "refresher-left-open:we-take-it",
        "interval-above-ours:lowered",
        "require-timer-accepted",
        "uac-min-se-above-our-interval:raised",
        "below-min-se-without-support:raised-not-422",
        "session-expires-without-support:refresher-must-be-uas",
    ],
)
def test_uas_negotiation(request_headers: tuple[tuple[str, str], ...], answer: tuple[tuple[str, str], ...],
                         interval_s: int, we_refresh: bool) -> None:
    got = negotiate_uas(_headers(*request_headers), POLICY)
    assert got.headers == answer
    assert got.negotiated is not None
    assert (got.negotiated.interval_s, got.negotiated.we_refresh) == (interval_s, we_refresh)
    assert got.negotiated.peer_supports == any(v == "timer" for _, v in request_headers)


@pytest.mark.parametrize("supported", ["Supported", "Require"])
def test_an_interval_below_our_min_se_from_a_uac_that_supports_timer_gets_422_with_our_min_se(supported: str) -> None:
    got = negotiate_uas(_headers((supported, "timer"), ("Session-Expires", "60;refresher=uac")),
                        TimerPolicy(min_se_s=120))
    assert got.negotiated is None
    assert got.headers == (("Min-SE", "120"),)


def test_a_malformed_session_expires_in_a_request_raises_for_a_400() -> None:
    with pytest.raises(SipParseError):
        negotiate_uas(_headers(("Supported", "timer"), ("Session-Expires", "x")), POLICY)


# -- the UAC side (section 7) ---------------------------------------------------------------------------


INVITE = (
    b"INVITE sip:agent@127.0.0.1:5062 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKone\r\n"
    b"From: <sip:ivr@127.0.0.1:5060>;tag=a1\r\n"
    b"To: <sip:agent@127.0.0.1:5062>\r\n"
    b"Call-ID: st-1@127.0.0.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:ivr@127.0.0.1:5060>\r\n"
    b"Supported: timer\r\n"
    b"Session-Expires: 1800\r\n"
    b"Min-SE: 90\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def _response(status: int, *extra: str) -> Response:
    lines = [f"SIP/2.0 {status} Whatever", "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKone",
             "From: <sip:ivr@127.0.0.1:5060>;tag=a1", "To: <sip:agent@127.0.0.1:5062>;tag=b2",
             "Call-ID: st-1@127.0.0.1", "CSeq: 1 INVITE", *extra, "Content-Length: 0"]
    response = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(response, Response)
    return response


def _invite() -> Request:
    invite = parse_message(INVITE)
    assert isinstance(invite, Request)
    return invite


def test_our_invites_offer_the_timer_and_leave_the_refresher_to_the_uas() -> None:
    assert offer_headers(POLICY) == (("Supported", "timer"), ("Session-Expires", "1800"), ("Min-SE", "90"))


def test_a_422_is_answered_once_with_the_larger_min_se_and_the_next_cseq() -> None:
    invite = _invite()
    retry = retry_after_422(invite, _response(422, "Min-SE: 3600"), POLICY,
                            via="SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKtwo")
    assert retry is not None
    assert (retry.headers.get("Session-Expires"), retry.headers.get("Min-SE")) == ("3600", "3600")
    assert retry.cseq.seq == 2 and retry.call_id == invite.call_id
    assert retry.headers.get("Via") == "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKtwo"
    assert retry.headers.get_all("Supported") == ["timer"]


@pytest.mark.parametrize("extra", [(), ("Min-SE: 600",), ("Min-SE: nonsense",)],
                         ids=["no-min-se", "min-se-not-above-ours", "malformed"])
def test_a_422_without_a_larger_min_se_is_not_retried(extra: tuple[str, ...]) -> None:
    assert retry_after_422(_invite(), _response(422, *extra), POLICY, via="v") is None


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ((), None),
        (("Require: timer", "Session-Expires: 1800;refresher=uac"), Negotiated(1800, True)),
        (("Require: timer", "Session-Expires: 900;refresher=uas"), Negotiated(900, False)),
        (("Session-Expires: 1200",), Negotiated(1200, True)),
    ],
    ids=["callee-without-timers", "we-refresh", "callee-refreshes", "refresher-missing:ours"],
)
def test_uac_reads_the_2xx(extra: tuple[str, ...], expected: Negotiated | None) -> None:
    assert negotiate_uac(_response(200, *extra).headers) == expected


def test_a_2xx_to_our_refresh_without_session_expires_keeps_the_timer_in_force() -> None:
    current = Negotiated(1800, True, peer_supports=False)
    assert negotiate_uac(_response(200).headers, current) is current


def test_our_refreshes_name_us_the_refresher() -> None:
    assert refresh_headers(Negotiated(600, True), POLICY) == (
        ("Supported", "timer"), ("Session-Expires", "600;refresher=uac"), ("Min-SE", "90"))


# -- the schedule (section 10), by the clock ------------------------------------------------------------


def test_as_refresher_a_refresh_is_due_at_half_the_interval_and_restarts_it() -> None:
    timer = SessionTimer(Negotiated(1800, True), now=0.0)
    assert timer.next_deadline() == 900.0
    assert timer.handle_timer(899.9) is None
    assert timer.handle_timer(900.0) is SessionTimerEvent.REFRESH_DUE
    assert timer.next_deadline() == 1800.0 - 32.0, "while the refresh is out, the session may expire"
    timer.refreshed(Negotiated(1800, True), now=900.5)
    assert timer.next_deadline() == 1800.5


def test_when_the_peer_refreshes_and_stops_the_session_expires_at_interval_minus_32_s() -> None:
    timer = SessionTimer(Negotiated(1800, False), now=10.0)
    assert timer.next_deadline() == 10.0 + 1768.0
    timer.refreshed(Negotiated(1800, False), now=800.0)
    assert timer.next_deadline() == 800.0 + 1768.0
    assert timer.handle_timer(2567.9) is None
    assert timer.handle_timer(2568.0) is SessionTimerEvent.EXPIRED
    assert timer.next_deadline() is None and timer.stopped
    timer.refreshed(Negotiated(1800, False), now=2600.0)
    assert timer.next_deadline() is None, "an expired session stays expired"


@pytest.mark.parametrize(("interval_s", "margin_s"), [(90, 30.0), (96, 32.0), (6, 2.0), (1800, 32.0)])
def test_the_margin_before_expiry_is_the_smaller_of_32_s_and_a_third(interval_s: int, margin_s: float) -> None:
    assert Negotiated(interval_s, False).expire_after_s == interval_s - margin_s


@pytest.mark.parametrize(("status", "over"), [(408, True), (481, True), (491, False), (500, False)])
def test_a_failed_refresh_ends_the_session_only_on_408_or_481(status: int, over: bool) -> None:
    timer = SessionTimer(Negotiated(120, True), now=0.0)
    assert timer.handle_timer(60.0) is SessionTimerEvent.REFRESH_DUE
    assert timer.refresh_failed(status) is over
    assert timer.next_deadline() == (None if over else 120.0 - 32.0)


def test_a_peer_that_does_not_know_timers_and_refuses_our_refresh_is_left_alone() -> None:
    timer = SessionTimer(Negotiated(1800, True, peer_supports=False), now=0.0)
    assert timer.handle_timer(900.0) is SessionTimerEvent.REFRESH_DUE
    assert timer.refresh_failed(501) is False
    assert timer.next_deadline() is None


def test_a_422_to_our_refresh_gives_the_min_se_to_ask_for_once() -> None:
    assert min_se_after_422(_response(422, "Min-SE: 3600").headers, 1800) == 3600
    assert min_se_after_422(_response(422, "Min-SE: 1800").headers, 1800) is None
    assert min_se_after_422(_response(422).headers, 1800) is None
    assert refresh_headers(Negotiated(3600, True), POLICY, 3600)[2] == ("Min-SE", "3600")
