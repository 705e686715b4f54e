"""The caller's context to another hotline: User-to-User + X-IVR out, inbound_* variables in."""

from __future__ import annotations

import urllib.parse

from ivr.call import TransferContext
from ivr.engine.context import (
    ContextPeers,
    context_variables,
    hotline_headers,
    inbound_context,
    refer_to_with_context,
)
from ivr.sip.refer import MAX_UUI_OCTETS, UserToUser

CONTEXT = TransferContext("call-1", intent="claims", customer_id="C-42", summary="我的车被撞了", dialect="cmn",
                          variables={"policy_no": "P123"})


def as_lookup(headers: list[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers}


def test_the_context_goes_in_user_to_user_and_x_ivr_headers_and_comes_back() -> None:
    headers = hotline_headers(CONTEXT)
    found = as_lookup(headers)
    assert found["x-ivr-intent"] == "claims" and found["x-ivr-customer-id"] == "C-42"
    assert urllib.parse.unquote(found["x-ivr-summary"]) == "我的车被撞了"
    assert found["x-ivr-var-policy_no"] == "P123"
    uui = UserToUser.parse(found["user-to-user"])
    assert uui.purpose == "ivr-context"
    assert inbound_context(lambda name: found.get(name.lower())) == CONTEXT


def test_without_user_to_user_the_x_ivr_headers_are_read() -> None:
    found = {k: v for k, v in as_lookup(hotline_headers(CONTEXT)).items() if k != "user-to-user"}
    context = inbound_context(lambda name: found.get(name.lower()))
    assert context is not None and (context.intent, context.customer_id, context.summary) == (
        "claims", "C-42", "我的车被撞了")


def test_an_invite_without_context_has_none() -> None:
    assert inbound_context(lambda name: None) is None
    assert inbound_context(lambda name: "zz;encoding=hex" if name == "User-to-User" else None) is None


def test_a_long_summary_is_cut_so_user_to_user_stays_within_its_bound() -> None:
    long = TransferContext("c", summary="x" * 5000, variables={f"v{i}": "y" * 500 for i in range(30)})
    found = as_lookup(hotline_headers(long))
    if "user-to-user" in found:
        assert len(UserToUser.parse(found["user-to-user"]).data) <= MAX_UUI_OCTETS
    assert len(urllib.parse.unquote(found["x-ivr-summary"])) == 200
    assert sum(1 for k in found if k.startswith("x-ivr-var-")) == 10


def test_the_flow_sees_inbound_variables() -> None:
    variables = context_variables(CONTEXT, "10.1.1.1")
    assert variables["inbound_context"] is True
    assert variables["inbound_intent"] == "claims" and variables["inbound_customer_id"] == "C-42"
    assert variables["inbound_var_policy_no"] == "P123" and variables["inbound_peer"] == "10.1.1.1"


def test_a_refer_to_carries_the_context_as_uri_headers() -> None:
    value = refer_to_with_context("sip:95588@partner", CONTEXT)
    assert value.startswith("<sip:95588@partner?User-to-User=") and value.endswith(">")
    assert "&X-IVR-Intent=claims" in value


def test_only_configured_peers_are_trusted() -> None:
    peers = ContextPeers(("10.0.0.0/8", "::1"))
    assert peers("10.2.3.4") and peers("[::1]")
    assert not peers("192.168.1.1") and not peers("not-an-address")
    assert not ContextPeers(())("127.0.0.1")
