"""Caller identity: P-Asserted-Identity only from a trusted trunk, else From marked unverified."""

from __future__ import annotations

from ivr.sip.identity import CallerIdentity, IdentitySource, caller_identity, number_of_uri_user
from ivr.sip.message import Request
from ivr.sip.parser import parse_message


def invite(from_user: str, *pai: str) -> Request:
    lines = ["INVITE sip:95519@127.0.0.1 SIP/2.0", "Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1",
             f"From: <sip:{from_user}@10.0.0.5>;tag=a", "To: <sip:95519@127.0.0.1>", "Call-ID: c1", "CSeq: 1 INVITE",
             *(f"P-Asserted-Identity: {value}" for value in pai), "Content-Length: 0"]
    message = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(message, Request)
    return message


def test_asserted_identity_from_a_trusted_trunk_is_verified() -> None:
    request = invite("+88216000111", "<sip:+8613800138000@trunk.example;user=phone>")
    expected = CallerIdentity("+8613800138000", True, IdentitySource.ASSERTED, "+8613800138000")
    assert caller_identity(request, trusted=True) == expected


def test_asserted_identity_from_anyone_else_is_ignored() -> None:
    request = invite("+88216000111", "<sip:+8613800138000@trunk.example>")
    expected = CallerIdentity("+88216000111", False, IdentitySource.FROM, "+88216000111")
    assert caller_identity(request, trusted=False) == expected


def test_tel_identity_and_two_identities_in_one_header() -> None:
    request = invite("anonymous", '"Alice" <sip:alice@example.com>, <tel:+86-138-0013-8000>')
    assert caller_identity(request, trusted=True).number == "+8613800138000"


def test_trusted_trunk_without_assertion_gives_an_unverified_from() -> None:
    identity = caller_identity(invite("13900000001"), trusted=True)
    assert identity == CallerIdentity("13900000001", False, IdentitySource.FROM, "13900000001")


def test_unreadable_numbers_become_empty() -> None:
    assert caller_identity(invite("anonymous", "<sip:garbage@x>"), trusted=True).number == ""
    assert number_of_uri_user("1" * 40) == "" and number_of_uri_user(None) == ""
    assert number_of_uri_user("+86 (10) 1234-5678;isub=1") == "+861012345678"


def test_a_softphone_name_is_shown_but_never_a_number() -> None:
    identity = caller_identity(invite("baresip"), trusted=False)
    assert (identity.number, identity.label) == ("", "baresip")
    assert caller_identity(invite("%3Cscript%3E"), trusted=False).label == ""
