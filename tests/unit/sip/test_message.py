"""SIP message parsing, validation, serialization, framing and response building."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.sip.builders import build_error_response, build_response
from ivr.sip.errors import SipParseError
from ivr.sip.framing import StreamFramer
from ivr.sip.headers import _CANONICAL, CSeq, Headers, NameAddr, Via, canonical_name
from ivr.sip.message import MAX_MESSAGE_SIZE, Request, Response, new_branch, new_call_id, new_tag
from ivr.sip.parser import parse_message
from ivr.sip.uri import SipUri

INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774\r\n'
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"v=0\n"
)

OK = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;received=192.0.2.1\r\n"
    b"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n"
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)


def test_invite_parses_and_serializes_to_the_same_bytes() -> None:
    msg = parse_message(INVITE)
    assert isinstance(msg, Request)
    assert (msg.method, str(msg.uri), msg.body) == ("INVITE", "sip:bob@biloxi.example.com", b"v=0\n")
    assert msg.top_via == Via(
        "UDP", "pc33.atlanta.example.com", 5060, (("branch", "z9hG4bK776asdhds"), ("rport", None))
    )
    assert msg.top_via.rport == "" and msg.top_via.is_rfc3261
    assert (msg.from_.display, msg.from_.tag, msg.to.display, msg.to.tag) == (
        "Alice",
        "1928301774",
        "Bob",
        None,
    )
    assert msg.cseq == CSeq(314159, "INVITE") and msg.max_forwards == 70
    assert msg.contact[0].uri == SipUri("sip", "alice", "pc33.atlanta.example.com")
    assert msg.content_type == "application/sdp"
    assert msg.serialize() == INVITE


def test_response_parses_and_serializes_to_the_same_bytes() -> None:
    msg = parse_message(OK)
    assert isinstance(msg, Response)
    assert (msg.status, msg.reason, msg.to.tag, msg.top_via.received) == (200, "OK", "a6c85cf", "192.0.2.1")
    assert msg.serialize() == OK


def test_compact_names_are_canonical_and_lookup_is_case_insensitive() -> None:
    data = INVITE.replace(b"Via:", b"v:").replace(b"Call-ID:", b"i:").replace(b"Content-Length:", b"l:")
    msg = parse_message(data)
    assert [name for name, _ in msg.headers.items()][:1] == ["Via"]
    assert msg.headers.get("CALL-ID") == msg.headers.get("i") == "a84b4c76e66710@pc33.atlanta.example.com"
    assert "content-length" in msg.headers and "Route" not in msg.headers
    assert msg.serialize() == INVITE


def test_folded_header_lines_are_joined() -> None:
    data = INVITE.replace(
        b"Max-Forwards: 70\r\n",
        b"Subject: I know you're there,\r\n\tpick up the phone\r\nMax-Forwards: 70\r\n",
    )
    assert parse_message(data).headers.get("Subject") == "I know you're there, pick up the phone"


def test_multi_value_headers_split_on_commas_outside_quotes_and_brackets() -> None:
    h = Headers(
        [("Contact", '"Doe, J" <sip:a@b;x=1,2>;q=0.5, <sip:c@d>'), ("Allow", "INVITE, ACK"), ("Allow", "BYE")]
    )
    assert h.get_all("m") == ['"Doe, J" <sip:a@b;x=1,2>;q=0.5', "<sip:c@d>"]
    assert h.get_all("allow") == ["INVITE", "ACK", "BYE"]
    assert h.get("Allow") == "INVITE, ACK"
    assert Headers([("Contact", " * ")]).get_all("Contact") == ["*"]


def test_headers_set_remove_copy() -> None:
    h = Headers([("Via", "a"), ("To", "x"), ("v", "b")])
    copy = h.copy()
    h.set("VIA", "c")
    assert h.items() == [("Via", "c"), ("To", "x")]
    h.remove("to")
    assert h.items() == [("Via", "c")] and len(copy) == 3 and copy.get_all("Via") == ["a", "b"]
    h.add("X-Custom", "1")
    assert h.get("x-custom") == "1" and h.count("x-CUSTOM") == 1


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("v", "Via"),
        ("call-id", "Call-ID"),
        ("WWW-AUTHENTICATE", "WWW-Authenticate"),
        ("cseq", "CSeq"),
        ("X-Foo", "X-Foo"),
        ("k", "Supported"),
    ],
)
def test_canonical_name(name: str, canonical: str) -> None:
    assert canonical_name(name) == canonical


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SIP/2.0/UDP 192.0.2.1", Via("UDP", "192.0.2.1", None)),
        (
            "SIP/2.0/tcp [2001:db8::9]:5061;branch=z9hG4bKx",
            Via("TCP", "[2001:db8::9]", 5061, (("branch", "z9hG4bKx"),)),
        ),
        (
            " SIP / 2.0 / UDP  host.example.com : 5070 ; branch = z9hG4bK1 ; rport",
            Via("UDP", "host.example.com", 5070, (("branch", "z9hG4bK1"), ("rport", None))),
        ),
        (
            "SIP/2.0/UDP h;received=[::1];rport=5062",
            Via("UDP", "h", None, (("received", "[::1]"), ("rport", "5062"))),
        ),
    ],
    ids=["bare", "ipv6-port", "lws", "received-ipv6"],
)
def test_via_parse(text: str, expected: Via) -> None:
    assert Via.parse(text) == expected
    assert Via.parse(str(expected)) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("SIP/2.0/UDP", "bad Via header: 'SIP/2.0/UDP' is not a via-parm"),
        ("SIP/3.0/UDP h;branch=z9hG4bK1", "bad Via header: unsupported protocol 'SIP/3.0'"),
        ("SIP/2.0/UDP h:70000", "bad Via header: port 70000 is out of range"),
        ("SIP/2.0/UDP h;branch", "bad Via header: branch parameter has no value"),
        ("SIP/2.0/UDP h;;branch=z9hG4bK1", "bad Via header: empty parameter"),
    ],
    ids=["no-host", "version", "port", "branch-flag", "empty-param"],
)
def test_via_errors(text: str, reason: str) -> None:
    with pytest.raises(SipParseError) as info:
        Via.parse(text)
    assert (str(info.value), info.value.header) == (reason, "Via")


def test_via_with_param_replaces() -> None:
    via = (
        Via.parse("SIP/2.0/UDP h;branch=z9hG4bK1;rport")
        .with_param("rport", "5060")
        .with_param("received", "1.2.3.4")
    )
    assert str(via) == "SIP/2.0/UDP h;branch=z9hG4bK1;rport=5060;received=1.2.3.4"


@pytest.mark.parametrize(
    ("text", "display", "uri", "params"),
    [
        ('"A \\"B\\"" <sip:a@b>;tag=1', 'A "B"', "sip:a@b", (("tag", "1"),)),
        ("Bob  Smith <sip:b@c;lr>", "Bob Smith", "sip:b@c;lr", ()),
        ("sip:a@b;tag=9 ", None, "sip:a@b", (("tag", "9"),)),
        ("<tel:+12015550123>", None, "tel:+12015550123", ()),
    ],
    ids=["quoted", "tokens", "addr-spec", "tel"],
)
def test_name_addr_parse(
    text: str, display: str | None, uri: str, params: tuple[tuple[str, str | None], ...]
) -> None:
    addr = NameAddr.parse(text, "To")
    assert (addr.display, str(addr.uri), addr.params) == (display, uri, params)
    assert NameAddr.parse(str(addr), "To") == addr


def test_name_addr_with_tag() -> None:
    addr = NameAddr.parse("<sip:a@b>", "To").with_tag("xyz")
    assert str(addr) == "<sip:a@b>;tag=xyz" and addr.tag == "xyz"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1 INVITE extra", "bad CSeq header: '1 INVITE extra' is not 'number METHOD'"),
        ("x INVITE", "bad CSeq header: sequence number 'x' is not a number"),
        ("2147483648 INVITE", "bad CSeq header: sequence number '2147483648' is too large"),
    ],
)
def test_cseq_errors(text: str, reason: str) -> None:
    with pytest.raises(SipParseError, match=re.escape(reason)):
        CSeq.parse(text)


def test_extra_bytes_after_content_length_are_dropped_and_missing_length_takes_the_rest() -> None:
    assert parse_message(INVITE + b"garbage").body == b"v=0\n"
    no_length = INVITE.replace(b"Content-Length: 4\r\n", b"")
    assert parse_message(no_length + b"more").body == b"v=0\nmore"


@pytest.mark.parametrize(
    ("data", "reason", "status", "drop"),
    [
        (
            INVITE.replace(b"Content-Length: 4", b"Content-Length: 150"),
            "Content-Length 150 exceeds body length 4",
            400,
            False,
        ),
        (
            INVITE.replace(b"CSeq: 314159 INVITE", b"CSeq: 314159 OPTIONS"),
            "bad CSeq header: method 'OPTIONS' does not match request method 'INVITE'",
            400,
            False,
        ),
        (
            INVITE.replace(b"Max-Forwards: 70", b"Max-Forwards: 256"),
            "bad Max-Forwards header: '256' is greater than 255",
            400,
            False,
        ),
        (
            INVITE.replace(b"INVITE sip", b"INVITE tel:+1 sip"),
            "bad request line: Request-URI contains whitespace",
            400,
            False,
        ),
        (INVITE.replace(b"Call-ID: ", b"Call-ID:"), None, 0, False),
        (
            b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nBad Header: x\r\n\r\n",
            "bad header name 'Bad Header'",
            400,
            False,
        ),
        (OK.replace(b"200 OK", b"20 OK"), "bad status line: status code '20' is not in 100-699", 400, True),
        (OK.replace(b"CSeq: 314159 INVITE\r\n", b""), "missing required header: CSeq", 400, True),
        (b"\r\n\r\n", "empty message", 400, True),
        (b"\xff\xfe\r\n\r\n", "message headers are not valid UTF-8", 400, False),
        (
            INVITE + b"x" * MAX_MESSAGE_SIZE,
            f"message of {len(INVITE) + MAX_MESSAGE_SIZE} bytes exceeds the limit of 65535",
            513,
            False,
        ),
    ],
    ids=[
        "cl-too-big",
        "cseq-method",
        "max-forwards",
        "uri-space",
        "control-ok",
        "header-name",
        "status",
        "response-missing",
        "empty",
        "utf8",
        "too-large",
    ],
)
def test_parse_errors(data: bytes, reason: str | None, status: int, drop: bool) -> None:
    if reason is None:
        parse_message(data)
        return
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert (str(info.value), info.value.status_hint, info.value.drop) == (reason, status, drop)


def test_build_response_copies_dialog_headers_and_adds_to_tag() -> None:
    req = parse_message(INVITE)
    assert isinstance(req, Request)
    resp = build_response(req, 180, to_tag="t1", headers=[("Contact", "<sip:ivr@10.0.0.1>")])
    assert resp.reason == "Ringing"
    assert [n for n, _ in resp.headers.items()] == ["Via", "From", "To", "Call-ID", "CSeq", "Contact"]
    assert resp.headers.get("To") == "Bob <sip:bob@biloxi.example.com>;tag=t1"
    parsed = parse_message(resp.serialize())
    assert (
        isinstance(parsed, Response) and parsed.to.tag == "t1" and parsed.headers.get("Content-Length") == "0"
    )
    tagged = build_response(
        parsed_request_with_tag(), 200, to_tag="t2", body=b"v=0\r\n", content_type="application/sdp"
    )
    assert tagged.to.tag == "old" and tagged.serialize().endswith(
        b"Content-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n"
    )


def parsed_request_with_tag() -> Request:
    req = parse_message(
        INVITE.replace(b"To: Bob <sip:bob@biloxi.example.com>", b"To: <sip:bob@biloxi.example.com>;tag=old")
    )
    assert isinstance(req, Request)
    return req


def test_build_error_response_answers_requests_and_stays_silent_for_ack_and_responses() -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(INVITE.replace(b"Max-Forwards: 70", b"Max-Forwards: x"))
    resp = build_error_response(info.value, to_tag="zz")
    assert resp is not None and (resp.status, resp.reason) == (
        400,
        "bad Max-Forwards header: 'x' is not a number",
    )
    assert resp.headers.get("To") == "Bob <sip:bob@biloxi.example.com>;tag=zz"
    ack = INVITE.replace(b"INVITE sip", b"ACK sip").replace(b"314159 INVITE", b"314159 ACK")
    with pytest.raises(SipParseError) as info:
        parse_message(ack.replace(b"Max-Forwards: 70", b"Max-Forwards: x"))
    assert build_error_response(info.value) is None


def test_identifiers_are_fresh_and_well_formed() -> None:
    branches = {new_branch() for _ in range(100)}
    assert len(branches) == 100 and all(b.startswith("z9hG4bK") and len(b) == 23 for b in branches)
    assert re.fullmatch(r"[0-9a-f]{12}", new_tag())
    assert re.fullmatch(r"[0-9a-f]{24}@ivr\.example\.com", new_call_id("ivr.example.com"))


# --- StreamFramer ---------------------------------------------------------------------------


def test_framer_cuts_messages_across_chunks_and_skips_keepalives() -> None:
    framer = StreamFramer()
    stream = b"\r\n\r\n" + INVITE + b"\r\n" + OK
    out: list[bytes] = []
    for i in range(0, len(stream), 7):
        out += framer.feed(stream[i : i + 7])
    assert out == [INVITE, OK] and framer.buffered == 0


def test_framer_without_content_length_takes_empty_body() -> None:
    msg = INVITE.replace(b"Content-Length: 4\r\n", b"")[: -len(b"v=0\n")]
    assert StreamFramer().feed(msg + OK) == [msg, OK]


HUGE = INVITE.replace(b"Content-Length: 4", b"Content-Length: 70000")


@pytest.mark.parametrize(
    ("data", "reason", "status"),
    [
        (
            INVITE.replace(b"Content-Length: 4", b"Content-Length: -1"),
            "bad Content-Length header: '-1' is not a non-negative integer",
            400,
        ),
        (HUGE, f"message of {HUGE.index(b'v=0') + 70000} bytes exceeds the limit of 65535", 513),
        (b"INVITE " + b"a" * 70000, "header section exceeds 65535 bytes", 513),
    ],
    ids=["negative", "too-long", "no-end"],
)
def test_framer_errors(data: bytes, reason: str, status: int) -> None:
    with pytest.raises(SipParseError) as info:
        StreamFramer().feed(data)
    assert (str(info.value), info.value.status_hint) == (reason, status)


# --- property tests -------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_parse_or_raise_sip_parse_error(data: bytes) -> None:
    try:
        parse_message(data)
    except SipParseError:
        pass


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_mutated_messages_parse_or_raise_sip_parse_error(data: st.DataObject) -> None:
    raw = bytearray(data.draw(st.sampled_from([INVITE, OK])))
    for _ in range(data.draw(st.integers(1, 6))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        op = data.draw(st.sampled_from(["set", "insert", "delete"]))
        byte = data.draw(st.sampled_from(b' \t\r\n:;,<>"\\@=/%0aZ\x00\xff'))
        if op == "set":
            raw[pos] = byte
        elif op == "insert":
            raw.insert(pos, byte)
        else:
            del raw[pos]
    try:
        msg = parse_message(bytes(raw))
    except SipParseError:
        return
    again = parse_message(msg.serialize())
    assert again.serialize() == msg.serialize()


TOKEN = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~", min_size=1, max_size=12
)
HOST = st.from_regex(r"[a-z][a-z0-9]{0,8}(\.[a-z][a-z0-9]{0,8}){0,2}", fullmatch=True)
PARAMS = st.lists(st.tuples(TOKEN, st.one_of(st.none(), TOKEN)), max_size=3).map(tuple)
PCHARS = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'()[]/:&+$", min_size=1, max_size=10
)
URI_PARAMS = st.lists(st.tuples(PCHARS, st.one_of(st.none(), PCHARS)), max_size=3).map(tuple)
URIS = st.builds(
    SipUri,
    scheme=st.sampled_from(["sip", "sips"]),
    user=st.one_of(st.none(), st.from_regex(r"[a-zA-Z0-9_.!~*'()&=+$,;?/-]{1,12}", fullmatch=True)),
    host=HOST,
    port=st.one_of(st.none(), st.integers(1, 65535)),
    params=URI_PARAMS,
)
EXTENSION = st.tuples(
    TOKEN.filter(lambda n: n.lower() not in _CANONICAL),
    st.text(
        st.characters(min_codepoint=32, max_codepoint=0x2FF, blacklist_characters="\x7f"), max_size=30
    ).map(str.strip),
)


@st.composite
def messages(draw: st.DrawFn) -> Request | Response:
    method = draw(TOKEN)
    body = draw(st.binary(max_size=64))
    via = Via(
        draw(st.sampled_from(["UDP", "TCP", "TLS"])),
        draw(HOST),
        draw(st.one_of(st.none(), st.integers(1, 65535))),
        (("branch", "z9hG4bK" + draw(TOKEN)),) + draw(PARAMS),
    )
    display = draw(
        st.one_of(st.none(), st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=12))
    )
    headers = Headers(
        [
            ("Via", str(via)),
            ("From", str(NameAddr(display, draw(URIS), (("tag", draw(TOKEN)),)))),
            ("To", str(NameAddr(None, draw(URIS)))),
            ("Call-ID", draw(TOKEN) + "@" + draw(HOST)),
            ("CSeq", f"{draw(st.integers(0, 2**31 - 1))} {method}"),
            ("Max-Forwards", str(draw(st.integers(0, 255)))),
        ]
        + draw(st.lists(EXTENSION, max_size=4))
        + [("Content-Length", str(len(body)))]
    )
    if draw(st.booleans()):
        return Request(method, draw(URIS), headers, body)
    reason = draw(st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF), max_size=20))
    return Response(draw(st.integers(100, 699)), reason, headers, body)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_generated_messages_round_trip(msg: Request | Response) -> None:
    assert parse_message(msg.serialize()) == msg


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([INVITE, OK, b"\r\n\r\n"]), max_size=6), st.integers(1, 200))
def test_framer_is_independent_of_chunking(parts: list[bytes], chunk: int) -> None:
    stream = b"".join(parts)
    framer = StreamFramer()
    out: list[bytes] = []
    for i in range(0, len(stream), chunk):
        out += framer.feed(stream[i : i + chunk])
    assert out == [p for p in parts if p != b"\r\n\r\n"]
