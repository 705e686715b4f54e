"""SIP/SIPS/tel URIs: parse, serialize, compare (RFC 3261 section 19.1)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.sip.errors import SipParseError
from ivr.sip.uri import SipUri, UriError, unescape


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sip:alice@atlanta.com", SipUri("sip", "alice", "atlanta.com")),
        (
            "sips:alice:secret@atlanta.com:5061;transport=tcp?subject=project%20x&priority=urgent",
            SipUri(
                "sips",
                "alice",
                "atlanta.com",
                5061,
                "secret",
                (("transport", "tcp"),),
                (("subject", "project%20x"), ("priority", "urgent")),
            ),
        ),
        (
            "sip:+1-212-555-1212:1234@gateway.com;user=phone",
            SipUri("sip", "+1-212-555-1212", "gateway.com", None, "1234", (("user", "phone"),)),
        ),
        ("sip:[2001:db8::10]:5070;lr", SipUri("sip", None, "[2001:db8::10]", 5070, params=(("lr", None),))),
        ("SIP:Alice@Atlanta.COM", SipUri("sip", "Alice", "Atlanta.COM")),
        (
            "tel:+1-201-555-0123;phone-context=example.com",
            SipUri("tel", "+1-201-555-0123", "", params=(("phone-context", "example.com"),)),
        ),
        ("urn:service:sos", SipUri("urn", None, "", opaque="service:sos")),
    ],
    ids=["plain", "everything", "telephone-user", "ipv6", "case", "tel", "opaque"],
)
def test_parse(text: str, expected: SipUri) -> None:
    uri = SipUri.parse(text)
    assert uri == expected
    assert SipUri.parse(str(uri)) == uri


def test_serialize_keeps_text_except_scheme_case() -> None:
    text = "sip:user;par=u%40example.net@example.com;maddr=10.0.0.1?h=%20"
    assert str(SipUri.parse(text)) == text
    assert str(SipUri.parse("SIP:a@b")) == "sip:a@b"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("alice@atlanta.com", "no scheme"),
        ("sip:alice@", "empty host"),
        ("sip:a b@c", "contains whitespace"),
        ("sip:a@b;;lr", "empty parameter"),
        ("sip:a@b:99999", "port 99999 is out of range"),
        ("sip:a@b:5x", "bad port '5x'"),
        ("sip:@b", "empty user part"),
        ("sip:a@b?x", "bad URI headers"),
        ("tel:call-me", "not a valid telephone number"),
    ],
)
def test_errors_say_what_is_wrong(text: str, why: str) -> None:
    with pytest.raises(UriError) as info:
        SipUri.parse(text)
    assert info.value.why == why
    assert str(info.value).endswith(f": {why}") and isinstance(info.value, SipParseError)


def test_params_helpers() -> None:
    uri = SipUri.parse("sip:a@b;lr;transport=UDP")
    assert (uri.param("LR"), uri.param("transport"), uri.param("maddr")) == ("", "UDP", None)
    assert str(uri.with_params(transport="tcp", ob=None)) == "sip:a@b;lr;transport=tcp;ob"
    assert str(uri.without_params("lr")) == "sip:a@b;transport=UDP"
    assert (
        uri.default_port,
        SipUri.parse("sips:a@b").default_port,
        SipUri.parse("sip:[::1]:7").host_address,
    ) == (
        5060,
        5061,
        "::1",
    )


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp", True),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5", True),
        ("sip:alice@atlanta.com", "sip:ALICE@atlanta.com", False),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060", False),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp", False),
        ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off", False),
        ("sip:a@b?subject=hi", "sip:a@b", False),
    ],
)
def test_rfc3261_comparison(a: str, b: str, same: bool) -> None:
    assert SipUri.parse(a).matches(SipUri.parse(b)) is same
    assert SipUri.parse(b).matches(SipUri.parse(a)) is same


def test_unescape() -> None:
    assert unescape("I%20have%20spaces") == "I have spaces"
    assert unescape("%D1%80%00") == "р\x00"
    assert unescape("100%") == "100%"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_arbitrary_text_parses_or_raises_sip_parse_error(text: str) -> None:
    try:
        uri = SipUri.parse(text)
    except SipParseError:
        return
    assert SipUri.parse(str(uri)) == uri
