"""RFC 4475 (SIP Torture Test Messages): every message, with the verdict RFC 3261 asks for.

The files in tests/data/rfc4475/ are the RFC's messages byte for byte (see the README there).
Valid ones must parse and be understood (fields checked); invalid ones must raise SipParseError
naming what is wrong, with the status the user agent answers, or be flagged to drop (responses).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ivr.sip.builders import build_error_response
from ivr.sip.digest import DigestCredentials
from ivr.sip.errors import AuthError, SipParseError
from ivr.sip.message import Request, Response
from ivr.sip.parser import parse_message
from ivr.sip.sdp import SessionDescription
from ivr.sip.uri import SipUri, unescape

DATA = Path(__file__).parents[2] / "data" / "rfc4475"


def load(name: str) -> bytes:
    return (DATA / f"{name}.dat").read_bytes()


def request(name: str) -> Request:
    msg = parse_message(load(name))
    assert isinstance(msg, Request)
    return msg


def response(name: str) -> Response:
    msg = parse_message(load(name))
    assert isinstance(msg, Response)
    return msg


# --- valid messages: each checker asserts the fields that make the message tortuous -------------


def check_wsinv() -> None:
    m = request("wsinv")
    assert (m.method, m.uri.user, m.uri.host, m.uri.params) == (
        "INVITE",
        "vivekg",
        "chair-dnrc.example.com",
        (("unknownparam", None),),
    )
    assert m.to.uri == SipUri.parse("sip:vivekg@chair-dnrc.example.com") and m.to.tag == "1918181833n"
    assert m.from_.display == 'J Rosenberg \\"' and m.from_.tag == "98asjd8"
    assert m.max_forwards == 68 and (m.cseq.seq, m.cseq.method) == (9, "INVITE")
    assert [(v.transport, v.host, v.branch) for v in m.via] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert m.headers.get("Subject") == ""
    assert m.headers.get("newfangledheader") == "newfangled value continued newfangled value"
    assert m.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    [contact] = m.contact
    assert contact.display == 'Quoted string ""'
    assert contact.params == (("newparam", "newvalue"), ("secondparam", None), ("q", "0.33"))
    [route] = m.route
    assert route.uri.param("lr") == "" and route.uri.param("unknownwith") == "value"
    assert len(m.body) == 150 and SessionDescription.parse(m.body).media[0].formats == [0, 12]


def check_intmeth() -> None:
    m = request("intmeth")
    method = "!interesting-Method0123456789_*+`.%indeed'~"
    assert m.method == method and m.cseq.method == method and m.cseq.seq == 139122385
    assert m.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert m.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert m.top_via.branch == "z9hG4bK-.!%66*_+`'~"
    assert m.to.display == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert m.from_.display == "token1~` token2'+_ token3*%!.-"
    assert m.from_.param("fromParam''~+*_!.-%") == '"работающий"' and m.from_.tag == "_token~1'+`*%!-."
    assert m.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert m.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"
    assert m.max_forwards == 255


def check_esc01() -> None:
    m = request("esc01")
    assert unescape(m.uri.user or "") == "sips:user@example.com" and m.uri.host == "example.net"
    assert m.to.uri.matches(SipUri.parse("sip:user@example.com"))
    assert unescape(m.from_.uri.user or "") == "I have spaces"
    [contact] = m.contact
    assert contact.uri.matches(SipUri.parse("sip:caller@host5.example.net;lr;name=value%41"))
    assert m.call_id == "esc01.239409asdfakjkn23onasd0-3234" and m.content_type == "application/sdp"


def check_escnull() -> None:
    m = request("escnull")
    assert unescape(m.to.uri.user or "") == "null-\x00-null"
    assert [unescape(c.uri.user or "") for c in m.contact] == ["\x00", "\x00\x00"]


def check_esc02() -> None:
    m = request("esc02")
    assert m.method == "RE%47IST%45R" and m.cseq.method == "RE%47IST%45R"
    assert m.to.display == "%Z%45" and m.top_via.branch == "z9hG4bK209%fzsnel234"
    assert [c.uri.user for c in m.contact] == ["alias1", "alias3"]
    assert m.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def check_lwsdisp() -> None:
    m = request("lwsdisp")
    assert m.from_.display == "caller" and m.from_.uri.user == "caller" and m.from_.tag == "323"


def check_longreq() -> None:
    m = request("longreq")
    assert len(m.via) == 34 and m.via[0].host == "sip33.example.com"
    assert m.via[-1].received == "192.0.2.5" and (m.via[-1].branch or "").endswith("branchvalue")
    assert m.to.display is not None and m.to.display.endswith("proportion")
    assert m.to.uri.port == 6000 and len(m.to.uri.params) == 3
    assert m.from_.tag is not None and len(m.from_.tag) == 155
    assert m.call_id.startswith("longreq.onereally") and len(m.body) == 150


def check_dblreq() -> None:
    m = request("dblreq")
    assert m.method == "REGISTER" and m.body == b"" and m.call_id.startswith("dblreq.0ha0isndaksdj99")


def check_semiuri() -> None:
    m = request("semiuri")
    assert (m.uri.user, m.uri.host, m.uri.params) == ("user;par=u%40example.net", "example.com", ())
    assert m.headers.get_all("Accept") == [
        "application/sdp",
        "application/pkcs7-mime",
        "multipart/mixed",
        "multipart/signed",
        "message/sip",
        "message/sipfrag",
    ]


def check_transports() -> None:
    m = request("transports")
    assert [v.transport for v in m.via] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert m.call_id == "transports.kijh4akdnaqjkwendsasfdj"


def check_mpart01() -> None:
    m = request("mpart01")
    assert m.content_type == "multipart/mixed" and len(m.body) == 553
    assert m.body.startswith(b"--7a9cbec02ceef655\r\n") and m.body.endswith(b"--7a9cbec02ceef655--\r\n")
    assert m.top_via.rport == "" and m.route[0].uri.port == 5080


def check_unreason() -> None:
    m = response("unreason")
    assert m.status == 200 and m.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"


def check_noreason() -> None:
    m = response("noreason")
    assert (m.status, m.reason) == (100, "") and m.to.tag == "902jndnke3"


def check_unksm2() -> None:
    m = request("unksm2")
    assert (m.to.uri.scheme, m.to.uri.opaque) == ("isbn", "2983792873")
    assert m.from_.uri.scheme == "http" and m.contact[0].uri.scheme == "name"


def check_bext01() -> None:
    m = request("bext01")
    assert m.headers.get_all("Require") == ["nothingSupportsThis", "nothingSupportsThisEither"]
    assert m.headers.get_all("Proxy-Require") == ["noProxiesSupportThis", "norDoAnyProxiesSupportThis"]


def check_invut() -> None:
    m = request("invut")
    assert m.content_type == "application/unknownformat" and len(m.body) == 40


def check_regaut01() -> None:
    m = request("regaut01")
    with pytest.raises(AuthError, match="unsupported authentication scheme 'NoOneKnowsThisScheme'"):
        DigestCredentials.parse(m.headers.get("Authorization") or "")


def check_bcast() -> None:
    m = response("bcast")
    assert [v.host for v in m.via] == ["192.0.2.198", "255.255.255.255"]


def check_zeromf() -> None:
    assert request("zeromf").max_forwards == 0


def check_cparam01() -> None:
    [contact] = request("cparam01").contact
    assert contact.uri.params == () and contact.param("unknownparam") == ""


def check_cparam02() -> None:
    [contact] = request("cparam02").contact
    assert contact.uri.param("unknownparam") == "" and contact.params == ()


def check_regescrt() -> None:
    [contact] = request("regescrt").contact
    assert contact.uri.headers == (("Route", "%3Csip:sip.example.com%3E"),)


def check_sdp01() -> None:
    m = request("sdp01")
    assert m.headers.get("Accept") == "text/nobodyKnowsThis"
    assert SessionDescription.parse(m.body).connection_address == "192.0.2.5"


def check_inv2543() -> None:
    m = request("inv2543")
    assert m.top_via.branch is None and not m.top_via.is_rfc3261
    assert m.max_forwards is None and m.from_.tag is None and m.to.tag is None
    assert m.to.param("user") == "phone" and m.from_.uri.param("user") == "phone" and len(m.body) == 105


VALID: dict[str, Callable[[], None]] = {
    name[len("check_") :]: fn for name, fn in dict(globals()).items() if name.startswith("check_")
}

# --- invalid messages: (status hint, header at fault, drop silently, exact reason) ---------------

INVALID: dict[str, tuple[int, str | None, bool, str]] = {
    "badinv01": (400, "Via", False, "bad Via header: empty parameter"),
    "clerr": (400, "Content-Length", False, "Content-Length 9999 exceeds body length 154"),
    "ncl": (400, "Content-Length", False, "bad Content-Length header: '-999' is not a non-negative integer"),
    "scalar02": (400, "CSeq", False, "bad CSeq header: sequence number '36893488147419103232' is too large"),
    "scalarlg": (400, "CSeq", True, "bad CSeq header: sequence number '9292394834772304023312' is too large"),
    "quotbal": (400, "To", False, "bad To header: unterminated quoted string"),
    "ltgtruri": (400, None, False, "bad Request-URI '<sip:user@example.com>': no scheme"),
    "lwsruri": (400, None, False, "bad request line: Request-URI contains whitespace"),
    "lwsstart": (400, None, False, "bad request line: elements must be separated by single spaces"),
    "trws": (400, None, False, "bad request line: trailing whitespace"),
    "escruri": (400, None, False, "bad Request-URI: headers are not allowed in a Request-URI"),
    "baddate": (
        400,
        "Date",
        False,
        "bad Date header: 'Fri, 01 Jan 2010 16:00:00 EST' is not an RFC 1123 date in GMT",
    ),
    "regbadct": (400, "Contact", False, "bad Contact header: URI with '?' or ',' must be enclosed in <>"),
    "badaspec": (400, "To", False, "bad To header: whitespace inside <URI>"),
    "baddn": (400, "From", False, "bad From header: display name 'Bell, Alexander' must be quoted"),
    "badvers": (505, None, False, "unsupported SIP version 'SIP/7.0'"),
    "mismatch01": (
        400,
        "CSeq",
        False,
        "bad CSeq header: method 'INVITE' does not match request method 'OPTIONS'",
    ),
    "mismatch02": (
        400,
        "CSeq",
        False,
        "bad CSeq header: method 'INVITE' does not match request method 'NEWMETHOD'",
    ),
    "bigcode": (400, None, True, "bad status line: status code '4294967301' is not in 100-699"),
    "badbranch": (400, "Via", False, "bad Via header: branch is the magic cookie with no identifier"),
    "insuf": (400, "From", False, "missing required headers: From, To, Call-ID"),
    "unkscm": (416, None, False, "unsupported URI scheme 'nobodyknowsthisscheme' in Request-URI"),
    "novelsc": (416, None, False, "unsupported URI scheme 'soap.beep' in Request-URI"),
    "multi01": (400, "From", False, "bad From header: appears 2 times"),
    "mcl01": (400, "Content-Length", False, "bad Content-Length header: appears more than once"),
}


def test_every_rfc4475_message_has_a_verdict() -> None:
    on_disk = {p.stem for p in DATA.glob("*.dat")}
    assert len(on_disk) == 49
    assert on_disk == set(VALID) | set(INVALID)
    assert not set(VALID) & set(INVALID)


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_message_is_understood(name: str) -> None:
    VALID[name]()


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_message_is_rejected_with_reason(name: str) -> None:
    status, header, drop, reason = INVALID[name]
    with pytest.raises(SipParseError) as info:
        parse_message(load(name))
    error = info.value
    assert (str(error), error.status_hint, error.header, error.drop) == (reason, status, header, drop)
    answer = build_error_response(error, to_tag="t1")
    if drop:
        assert answer is None
    else:
        assert answer is not None and answer.status == status and answer.reason == reason
        wire = answer.serialize()
        assert wire.startswith(f"SIP/2.0 {status} {reason}\r\n".encode()) and b"\r\nVia: " in wire


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_message_parse_serialize_parse_is_stable(name: str) -> None:
    first = parse_message(load(name))
    wire = first.serialize()
    again = parse_message(wire)
    assert again.serialize() == wire
    assert again.body == first.body and again.via == first.via and again.cseq == first.cseq
    assert (again.from_, again.to, again.call_id) == (first.from_, first.to, first.call_id)
