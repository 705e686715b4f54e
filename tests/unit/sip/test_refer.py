"""Refer-To with Replaces (RFC 3515, 3891) and User-to-User (RFC 7433): parse, serialize, refuse."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.sip.refer import MAX_UUI_OCTETS, ReferError, ReferTarget, Replaces, UserToUser, target_user


def test_a_blind_refer_to_is_just_its_uri() -> None:
    target = ReferTarget.parse("<sip:a2@10.0.0.1:5060;transport=udp>")
    assert target == ReferTarget("sip:a2@10.0.0.1:5060;transport=udp", None)
    assert ReferTarget.parse("sip:claims@ivr").uri == "sip:claims@ivr"


def test_an_attended_refer_to_names_the_dialog_to_replace() -> None:
    value = "<sip:a2@127.0.0.1:5060?Replaces=abc%40host%3Bto-tag%3Dours%3Bfrom-tag%3Dtheirs>"
    target = ReferTarget.parse(value)
    assert target.uri == "sip:a2@127.0.0.1:5060"
    assert target.replaces == Replaces("abc@host", "ours", "theirs")
    assert target.replaces.key_at_recipient() == ("abc@host", "ours", "theirs")
    assert ReferTarget.parse(str(target)) == target


def test_replaces_keeps_early_only_and_round_trips() -> None:
    replaces = Replaces.parse("x;from-tag=f;to-tag=t;early-only")
    assert replaces == Replaces("x", "t", "f", early_only=True)
    assert Replaces.parse(str(replaces)) == replaces


@pytest.mark.parametrize(("text", "message"), [
    ("x;to-tag=t", "Replaces 'x;to-tag=t' has no from-tag"),
    (";to-tag=t;from-tag=f", "Replaces ';to-tag=t;from-tag=f' has no Call-ID"),
], ids=["no-from-tag", "no-call-id"])
def test_a_replaces_without_its_parts_is_refused(text: str, message: str) -> None:
    with pytest.raises(ReferError) as caught:
        Replaces.parse(text)
    assert str(caught.value) == message and caught.value.status_hint == 400


@pytest.mark.parametrize(("uri", "user"), [
    ("sip:a2@host", "a2"), ("sip:%2B8610@host;user=phone", "+8610"), ("tel:+8610555;ext=1", "+8610555"),
    ("sip:host", ""),
], ids=["agent", "escaped", "tel", "no-user"])
def test_target_user(uri: str, user: str) -> None:
    assert target_user(uri) == user


def test_user_to_user_round_trips_hex_with_purpose() -> None:
    uui = UserToUser(b'{"intent":"claims"}', "ivr-context", "json")
    value = uui.header_value()
    assert value.endswith(";encoding=hex;purpose=ivr-context;content=json")
    assert value.split(";")[0] == b'{"intent":"claims"}'.hex()
    assert UserToUser.parse(value) == uui


@pytest.mark.parametrize(("value", "message"), [
    ("zz;encoding=hex", "User-to-User data is not an even number of hex digits"),
    ("abc;encoding=hex", "User-to-User data is not an even number of hex digits"),
    ("00;encoding=base64", "User-to-User encoding 'base64' is not supported (only hex)"),
    ("00" * (MAX_UUI_OCTETS + 1), f"User-to-User data is longer than {MAX_UUI_OCTETS} octets"),
], ids=["not-hex", "odd", "encoding", "too-long"])
def test_bad_user_to_user_is_refused(value: str, message: str) -> None:
    with pytest.raises(ReferError) as caught:
        UserToUser.parse(value)
    assert str(caught.value) == message


def test_we_never_send_more_than_the_bound() -> None:
    with pytest.raises(ReferError):
        UserToUser(b"x" * (MAX_UUI_OCTETS + 1)).header_value()


@given(st.text(max_size=300))
def test_any_refer_to_or_uui_text_parses_or_is_refused(text: str) -> None:
    for parse in (ReferTarget.parse, UserToUser.parse):
        try:
            parse(text)
        except ReferError:
            pass
