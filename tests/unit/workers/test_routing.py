"""Which worker of a node a SIP datagram belongs to: by the stamp its worker wrote in a branch or tag."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.sip.message import new_branch, new_tag
from ivr.workers.mesh import envelope, opened
from ivr.workers.routing import call_worker, owner, registrar_worker, stamp, stamped_worker, target

BRANCH_1 = new_branch() + stamp(1)
TAG_1 = new_tag() + stamp(1)

RESPONSE = (
    "SIP/2.0 200 OK\r\n"
    f"Via: SIP/2.0/UDP 10.0.0.5:5060;branch={BRANCH_1};rport=5060;received=10.0.0.5\r\n"
    "From: <sip:ivr@10.0.0.5:5060>;tag=" + TAG_1 + "\r\n"
    "To: <sip:a1@10.0.0.9:5070>;tag=phone77\r\n"
    "Call-ID: abc@10.0.0.5\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
).encode()

BYE_FROM_PHONE = (
    "BYE sip:ivr@10.0.0.5:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 10.0.0.9:5070;branch=z9hG4bKphone-w0;rport\r\n"
    "From: <sip:a1@10.0.0.9:5070>;tag=phone77\r\n"
    "t: \"IVR\" <sip:ivr@10.0.0.5:5060;tag=uri-param-not-a-tag>;tag=" + TAG_1 + "\r\n"
    "Call-ID: abc@10.0.0.5\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
).encode()

NEW_INVITE = (
    b"INVITE sip:95519@10.0.0.5:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bK1234-w1\r\n"
    b"From: <sip:13700000001@10.0.0.7>;tag=caller-w1\r\n"
    b"To: <sip:95519@10.0.0.5>\r\n"
    b"Call-ID: x@10.0.0.7\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
)


def test_a_response_belongs_to_the_worker_whose_branch_is_in_its_top_via() -> None:
    assert owner(RESPONSE) == 1
    assert target(RESPONSE, me=0, count=2) == 1
    assert target(RESPONSE, me=1, count=2) is None, "its own: handled here"


def test_an_in_dialog_request_belongs_to_the_worker_whose_tag_is_its_to_tag() -> None:
    assert owner(BYE_FROM_PHONE) == 1, "the To-tag after the URI, not a tag-like URI parameter"
    assert target(BYE_FROM_PHONE, me=0, count=2) == 1


def test_a_new_request_is_handled_where_the_kernel_put_it() -> None:
    assert owner(NEW_INVITE) is None, "no To-tag; the peer's own branch and From-tag do not count"
    assert target(NEW_INVITE, me=0, count=2) is None


def invite(call_id: str, method: str = "INVITE", to_tag: str = "") -> bytes:
    """A request from one SBC address (10.0.0.7:5060), as a hotline's trunk sends every caller's."""
    return (
        f"{method} sip:95519@10.0.0.5:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bK{call_id}\r\n"
        f"From: <sip:13700000001@10.0.0.7>;tag=sbc1\r\nTo: <sip:95519@10.0.0.5>{to_tag}\r\n"
        f"i: {call_id}\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def test_new_calls_from_one_address_are_spread_over_the_workers_by_call_id() -> None:
    # The kernel spreads the shared port by peer address: every call of one SBC would reach one worker.
    chosen = [call_worker(invite(f"c{i}@sbc"), 2) for i in range(100)]
    assert set(chosen) == {0, 1}
    assert 30 <= chosen.count(0) <= 70, "about half each"
    assert call_worker(invite("c1@sbc"), 3) in {0, 1, 2}


def test_a_calls_retransmission_and_cancel_go_where_its_invite_went() -> None:
    for i in range(20):
        first = call_worker(invite(f"c{i}@sbc"), 2)
        assert call_worker(invite(f"c{i}@sbc"), 2) == first
        assert call_worker(invite(f"c{i}@sbc", "CANCEL"), 2) == first
        assert call_worker(invite(f"  c{i}@sbc ").replace(b"i:   ", b"Call-ID: "), 2) == first, "spaces aside"


def test_only_a_new_call_is_spread() -> None:
    assert call_worker(invite("c1@sbc", to_tag=";tag=x-w1"), 2) is None, "in dialog: its stamp places it"
    assert call_worker(invite("c1@sbc", "OPTIONS"), 2) is None
    assert call_worker(invite("c1@sbc", "REGISTER"), 2) is None
    assert call_worker(invite("c1@sbc"), 1) is None, "one process: nothing to spread"
    assert call_worker(invite("c1@sbc").replace(b"i: c1@sbc\r\n", b""), 2) is None, "no Call-ID: left here"


def register_from(port: int, to_tag: str = "") -> bytes:
    return (
        f"REGISTER sip:10.0.0.5 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9:{port};branch=z9hG4bK{port}\r\n"
        f"From: <sip:a1@10.0.0.5>;tag=p{port}\r\nTo: <sip:a1@10.0.0.5>{to_tag}\r\n"
        f"Call-ID: r{port}@10.0.0.9\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def test_every_register_from_one_host_goes_to_one_worker_whatever_its_port() -> None:
    # The registrar counts failed digest attempts per source address: spread over the workers by source
    # port (as the kernel does), a password guesser would get the limit once per worker.
    chosen = {registrar_worker(register_from(port), "10.0.0.9", 2) for port in range(5060, 5160)}
    assert len(chosen) == 1
    assert chosen <= {0, 1}
    hosts = {registrar_worker(register_from(5060), f"10.0.0.{i}", 2) for i in range(1, 50)}
    assert hosts == {0, 1}, "hosts are spread over the workers"


def test_only_an_out_of_dialog_register_is_placed_by_host() -> None:
    assert registrar_worker(NEW_INVITE, "10.0.0.7", 2) is None
    assert registrar_worker(register_from(5060, ";tag=x"), "10.0.0.9", 2) is None
    assert registrar_worker(register_from(5060), "10.0.0.9", 1) is None, "one process: nothing to place"


@pytest.mark.parametrize("token", [b"z9hG4bK0123abcd", b"abc-w", b"abc-wx", b"abc-w12345", b"", b"-w-1"],
                         ids=lambda t: t.decode() or "empty")
def test_tokens_without_a_stamp_name_no_worker(token: bytes) -> None:
    assert stamped_worker(token) is None


def test_a_stamp_naming_no_worker_of_this_node_is_handled_here() -> None:
    stale = RESPONSE.replace(stamp(1).encode(), stamp(7).encode())
    assert owner(stale) == 7 and target(stale, me=0, count=2) is None


def test_a_worker_stamps_what_it_creates() -> None:
    assert stamped_worker((new_tag() + stamp(0)).encode()) == 0
    assert stamped_worker((new_branch() + stamp(12)).encode()) == 12


@given(st.binary(max_size=600))
def test_any_bytes_give_a_worker_or_none(data: bytes) -> None:
    index = target(data, me=0, count=4)
    assert index is None or 1 <= index < 4


@pytest.mark.parametrize("source", [("10.0.0.9", 5070), ("::1", 5060)], ids=str)
def test_a_forwarded_datagram_keeps_its_peer_address(source: tuple[str, int]) -> None:
    assert opened(envelope(RESPONSE, source)) == (RESPONSE, source)


@pytest.mark.parametrize("payload", [b"", b"no newline", b"host x\nSIP", b"host 5060\n", b" 5060\nSIP"], ids=repr)
def test_a_malformed_envelope_is_refused(payload: bytes) -> None:
    assert opened(payload) is None
