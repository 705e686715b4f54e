"""SIP messages shaped like SIPp's and baresip's, for the transaction/dialog/registrar tests."""

from __future__ import annotations

from ivr.sip.builders import build_response
from ivr.sip.message import Request, Response
from ivr.sip.parser import parse_message

PEER = ("127.0.0.1", 5062)
ME = ("127.0.0.1", 5060)

SDP_OFFER = (
    "v=0\r\n"
    "o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "m=audio 6000 RTP/AVP 0 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=sendrecv\r\n"
)


def request(
    method: str = "INVITE",
    *,
    branch: str = "z9hG4bK-1-0",
    via_host: str = "127.0.0.1:5062",
    via_params: str = "",
    cseq: int = 1,
    cseq_method: str | None = None,
    call_id: str = "1-4242@127.0.0.1",
    from_tag: str = "caller1",
    to_tag: str | None = None,
    uri: str = "sip:100@127.0.0.1:5060",
    body: str = "",
    content_type: str | None = None,
    extra: str = "",
) -> Request:
    """Parse a request built from text, as it would arrive from a peer."""
    to = "<sip:100@127.0.0.1:5060>" + (f";tag={to_tag}" if to_tag else "")
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/UDP {via_host};branch={branch}{via_params}",
        "From: sipp <sip:sipp@127.0.0.1:5062>;tag=" + from_tag,
        f"To: {to}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {cseq_method or method}",
        "Contact: <sip:sipp@127.0.0.1:5062>",
        "Max-Forwards: 70",
    ]
    if extra:
        lines.extend(extra.strip("\r\n").split("\r\n"))
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    data = body.encode()
    lines.append(f"Content-Length: {len(data)}")
    message = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode() + data)
    assert isinstance(message, Request)
    return message


def response(req: Request, status: int, *, to_tag: str | None = "callee1",
             extra: tuple[tuple[str, str], ...] = (), body: bytes = b"") -> Response:
    """The response a peer would send to `req`, re-parsed from bytes like on the wire."""
    built = build_response(req, status, to_tag=to_tag if status > 100 else None, headers=extra, body=body,
                           content_type="application/sdp" if body else None)
    parsed = parse_message(built.serialize())
    assert isinstance(parsed, Response)
    return parsed


def first_line(data: bytes) -> str:
    return data.split(b"\r\n", 1)[0].decode()


def parse(data: bytes) -> Request | Response:
    return parse_message(data)
