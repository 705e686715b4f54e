"""RFC 3261 section 17 transactions, driven by `now`: every timer is asserted at its exact time."""

from __future__ import annotations

import pytest
from proto_samples import PEER, first_line, parse, request, response

from ivr.sip.errors import TransactionError
from ivr.sip.events import ResponseReceived, TransactionTimedOut
from ivr.sip.message import Request
from ivr.sip.transaction import (
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    TimerConfig,
    TxState,
    build_ack,
    client_key,
    server_key,
)


def fire_all(tx: InviteClientTransaction | NonInviteClientTransaction | InviteServerTransaction
             | NonInviteServerTransaction, until: float) -> list[float]:
    """Fire every deadline up to `until`; return the times at which something was (re)sent."""
    sent_at: list[float] = []
    while (deadline := tx.next_deadline()) is not None and deadline <= until:
        tx.handle_timer(deadline)
        if tx.datagrams_to_send(deadline):
            sent_at.append(deadline)
    return sent_at


# --- INVITE client ------------------------------------------------------------------------------------


def test_invite_client_sends_invite_at_once_to_the_next_hop() -> None:
    invite = request("INVITE")
    tx = InviteClientTransaction(invite, PEER, now=0.0)
    out = tx.datagrams_to_send(0.0)
    assert [(first_line(data), addr) for data, addr in out] == [
        ("INVITE sip:100@127.0.0.1:5060 SIP/2.0", PEER)
    ]
    assert tx.state is TxState.CALLING


def test_timer_a_retransmits_at_doubling_intervals_and_timer_b_gives_up_at_32s() -> None:
    tx = InviteClientTransaction(request("INVITE"), PEER, now=0.0)
    tx.datagrams_to_send(0.0)
    sent_at = fire_all(tx, until=31.9)
    assert sent_at == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert tx.next_deadline() == 32.0
    events = tx.handle_timer(32.0)
    assert events == [TransactionTimedOut(tx)]
    assert tx.state is TxState.TERMINATED
    assert tx.next_deadline() is None


def test_timers_follow_a_configured_t1() -> None:
    tx = InviteClientTransaction(request("INVITE"), PEER, now=10.0, timers=TimerConfig(t1_s=0.1))
    assert fire_all(tx, until=13.0) == pytest.approx([10.1, 10.3, 10.7, 11.5])
    assert tx.next_deadline() == pytest.approx(13.1)
    fire_all(tx, until=16.3)
    assert tx.next_deadline() == pytest.approx(16.4)  # Timer B = 64*T1


def test_reliable_invite_client_never_retransmits_but_still_times_out() -> None:
    tx = InviteClientTransaction(request("INVITE"), PEER, now=0.0, reliable=True)
    tx.datagrams_to_send(0.0)
    assert tx.next_deadline() == 32.0
    assert tx.handle_timer(32.0) == [TransactionTimedOut(tx)]


def test_provisional_stops_retransmission_and_timer_b() -> None:
    invite = request("INVITE")
    tx = InviteClientTransaction(invite, PEER, now=0.0)
    ringing = response(invite, 180)
    assert tx.receive(ringing, now=0.2) == [ResponseReceived(ringing, tx)]
    assert tx.state is TxState.PROCEEDING
    assert tx.next_deadline() is None


def test_failure_response_is_acked_by_the_transaction_with_the_invite_branch() -> None:
    invite = request("INVITE", extra="Route: <sip:proxy.example.com;lr>")
    tx = InviteClientTransaction(invite, PEER, now=0.0)
    tx.datagrams_to_send(0.0)
    busy = response(invite, 486)
    assert tx.receive(busy, now=1.0) == [ResponseReceived(busy, tx)]
    (ack_bytes, addr), = tx.datagrams_to_send(1.0)
    ack = parse(ack_bytes)
    assert isinstance(ack, Request) and addr == PEER
    assert ack.method == "ACK" and str(ack.uri) == str(invite.uri)
    assert ack.top_via.branch == invite.top_via.branch
    assert ack.to.tag == "callee1"
    assert (ack.cseq.seq, ack.cseq.method) == (1, "ACK")
    assert ack.headers.get_all("Route") == ["<sip:proxy.example.com;lr>"]
    assert tx.state is TxState.COMPLETED
    assert tx.next_deadline() == 33.0  # Timer D: 32 s over UDP


def test_retransmitted_failure_gets_the_same_ack_again_and_is_not_passed_up() -> None:
    invite = request("INVITE")
    tx = InviteClientTransaction(invite, PEER, now=0.0)
    tx.datagrams_to_send(0.0)
    tx.receive(response(invite, 486), now=1.0)
    (first_ack, _), = tx.datagrams_to_send(1.0)
    assert tx.receive(response(invite, 486), now=1.5) == []
    assert tx.datagrams_to_send(1.5) == [(first_ack, PEER)]
    assert tx.handle_timer(33.0) == []
    assert tx.state is TxState.TERMINATED


def test_failure_over_reliable_transport_terminates_at_once() -> None:
    invite = request("INVITE")
    tx = InviteClientTransaction(invite, PEER, now=0.0, reliable=True)
    tx.receive(response(invite, 404), now=0.3)
    assert tx.state is TxState.TERMINATED


def test_2xx_moves_to_accepted_and_retransmitted_2xx_still_reach_the_tu() -> None:
    invite = request("INVITE")
    tx = InviteClientTransaction(invite, PEER, now=0.0)
    tx.datagrams_to_send(0.0)
    ok = response(invite, 200)
    assert tx.receive(ok, now=0.4) == [ResponseReceived(ok, tx)]
    assert tx.state is TxState.ACCEPTED
    assert tx.datagrams_to_send(0.4) == []  # the 2xx ACK is the UAC core's job
    assert tx.receive(ok, now=0.9) == [ResponseReceived(ok, tx)]
    assert tx.next_deadline() == pytest.approx(32.4)  # Timer M
    tx.handle_timer(32.4)
    assert tx.state is TxState.TERMINATED


def test_provisional_after_final_is_absorbed() -> None:
    invite = request("INVITE")
    tx = InviteClientTransaction(invite, PEER, now=0.0)
    tx.receive(response(invite, 486), now=1.0)
    assert tx.receive(response(invite, 180), now=1.1) == []


# --- non-INVITE client --------------------------------------------------------------------------------


def test_timer_e_doubles_up_to_t2_and_timer_f_gives_up_at_32s() -> None:
    tx = NonInviteClientTransaction(request("OPTIONS"), PEER, now=0.0)
    tx.datagrams_to_send(0.0)
    sent_at = fire_all(tx, until=31.9)
    assert sent_at == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert tx.handle_timer(32.0) == [TransactionTimedOut(tx)]


def test_timer_e_runs_every_t2_once_proceeding() -> None:
    options = request("OPTIONS")
    tx = NonInviteClientTransaction(options, PEER, now=0.0)
    tx.datagrams_to_send(0.0)
    tx.handle_timer(0.5)
    tx.receive(response(options, 100), now=0.6)
    assert tx.state is TxState.PROCEEDING
    assert fire_all(tx, until=14.0) == [1.5, 5.5, 9.5, 13.5]


def test_final_response_waits_timer_k_then_terminates() -> None:
    bye = request("BYE", to_tag="callee1", cseq=2)
    tx = NonInviteClientTransaction(bye, PEER, now=0.0)
    ok = response(bye, 200)
    assert tx.receive(ok, now=0.1) == [ResponseReceived(ok, tx)]
    assert tx.next_deadline() == pytest.approx(5.1)  # T4
    assert tx.receive(ok, now=0.2) == []
    tx.handle_timer(5.1)
    assert tx.state is TxState.TERMINATED


def test_reliable_non_invite_client_terminates_on_final() -> None:
    bye = request("BYE", to_tag="callee1")
    tx = NonInviteClientTransaction(bye, PEER, now=0.0, reliable=True)
    assert tx.next_deadline() == 32.0
    tx.receive(response(bye, 200), now=0.1)
    assert tx.state is TxState.TERMINATED


# --- INVITE server ------------------------------------------------------------------------------------


def test_invite_server_answers_retransmissions_with_the_last_provisional() -> None:
    invite = request("INVITE")
    tx = InviteServerTransaction(invite, PEER, now=0.0)
    tx.send_response(response(invite, 100), now=0.0)
    tx.send_response(response(invite, 180), now=0.1)
    tx.datagrams_to_send(0.1)
    assert tx.receive(invite, now=0.5) == []
    assert [first_line(d) for d, _ in tx.datagrams_to_send(0.5)] == ["SIP/2.0 180 Ringing"]
    assert tx.to_tag == "callee1"


def test_timer_g_retransmits_final_until_timer_h() -> None:
    invite = request("INVITE")
    tx = InviteServerTransaction(invite, PEER, now=0.0)
    tx.send_response(response(invite, 486), now=0.0)
    tx.datagrams_to_send(0.0)
    sent_at = fire_all(tx, until=31.9)
    assert sent_at == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert tx.handle_timer(32.0) == [TransactionTimedOut(tx)]
    assert tx.state is TxState.TERMINATED


def test_ack_confirms_and_timer_i_absorbs_ack_copies() -> None:
    invite = request("INVITE")
    tx = InviteServerTransaction(invite, PEER, now=0.0)
    tx.send_response(response(invite, 487), now=0.0)
    ack = request("ACK", to_tag="callee1")
    assert tx.receive(ack, now=0.2) == []
    assert tx.state is TxState.CONFIRMED
    assert tx.next_deadline() == pytest.approx(5.2)
    assert tx.receive(ack, now=0.3) == []
    tx.handle_timer(5.2)
    assert tx.state is TxState.TERMINATED


def test_reliable_invite_server_does_not_retransmit_and_ends_on_ack() -> None:
    invite = request("INVITE")
    tx = InviteServerTransaction(invite, PEER, now=0.0, reliable=True)
    tx.send_response(response(invite, 486), now=0.0)
    assert tx.next_deadline() == 32.0  # only Timer H
    tx.receive(request("ACK", to_tag="callee1"), now=0.1)
    assert tx.state is TxState.TERMINATED


def test_2xx_moves_server_to_accepted_where_invite_copies_are_absorbed() -> None:
    invite = request("INVITE")
    tx = InviteServerTransaction(invite, PEER, now=0.0)
    tx.send_response(response(invite, 200), now=1.0)
    tx.datagrams_to_send(1.0)
    assert tx.state is TxState.ACCEPTED
    assert tx.receive(invite, now=1.5) == []
    assert tx.datagrams_to_send(1.5) == []
    assert tx.next_deadline() == 33.0  # Timer L
    tx.handle_timer(33.0)
    assert tx.state is TxState.TERMINATED


# --- non-INVITE server --------------------------------------------------------------------------------


def test_non_invite_server_resends_final_to_copies_until_timer_j() -> None:
    options = request("OPTIONS")
    tx = NonInviteServerTransaction(options, PEER, now=0.0)
    assert tx.receive(options, now=0.1) == []
    assert tx.datagrams_to_send(0.1) == []  # nothing sent yet: copies are absorbed
    tx.send_response(response(options, 200), now=0.2)
    tx.datagrams_to_send(0.2)
    tx.receive(options, now=0.7)
    assert [first_line(d) for d, _ in tx.datagrams_to_send(0.7)] == ["SIP/2.0 200 OK"]
    assert tx.next_deadline() == pytest.approx(32.2)
    tx.handle_timer(32.2)
    assert tx.state is TxState.TERMINATED


def test_reliable_non_invite_server_terminates_on_final() -> None:
    options = request("OPTIONS")
    tx = NonInviteServerTransaction(options, PEER, now=0.0, reliable=True)
    tx.send_response(response(options, 200), now=0.0)
    assert tx.state is TxState.TERMINATED


# --- illegal moves ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "first", "second", "message"),
    [
        ("OPTIONS", 200, 200,
         "non-INVITE server transaction z9hG4bK-1-0 in state TERMINATED cannot handle 2xx sent"),
        ("INVITE", 486, 180,
         "INVITE server transaction z9hG4bK-1-0 in state COMPLETED cannot handle 1xx sent"),
        ("INVITE", 200, 486,
         "INVITE server transaction z9hG4bK-1-0 in state ACCEPTED cannot handle 3xx-6xx sent"),
    ],
    ids=["second-final-non-invite", "provisional-after-final", "failure-after-2xx"],
)
def test_illegal_move_names_machine_state_and_event(method: str, first: int, second: int,
                                                    message: str) -> None:
    req = request(method)
    tx: InviteServerTransaction | NonInviteServerTransaction
    if method == "INVITE":
        tx = InviteServerTransaction(req, PEER, now=0.0)
    else:
        tx = NonInviteServerTransaction(req, PEER, now=0.0, reliable=True)
    tx.send_response(response(req, first), now=0.0)
    with pytest.raises(TransactionError) as info:
        tx.send_response(response(req, second), now=0.1)
    assert str(info.value) == message


# --- keys and ACK -------------------------------------------------------------------------------------


def test_server_key_folds_ack_onto_invite_and_keeps_cancel_apart() -> None:
    invite = request("INVITE")
    assert server_key(request("ACK", to_tag="x")) == server_key(invite)
    assert server_key(request("CANCEL")) != server_key(invite)
    assert server_key(request("CANCEL"))[:2] == server_key(invite)[:2]


def test_server_key_includes_sent_by() -> None:
    assert server_key(request(via_host="127.0.0.1:5062")) != server_key(request(via_host="127.0.0.1:5063"))
    assert server_key(request(via_host="127.0.0.1")) == server_key(request(via_host="127.0.0.1:5060"))


def test_client_key_is_branch_and_cseq_method() -> None:
    invite = request("INVITE")
    assert client_key(response(invite, 200)) == client_key(invite)
    cancel = request("CANCEL")
    assert client_key(response(cancel, 200)) != client_key(invite)


def test_rfc2543_request_without_magic_cookie_still_gets_a_stable_key() -> None:
    old = request("INVITE", branch="abc")
    assert server_key(old) == server_key(request("INVITE", branch="abc"))
    assert server_key(old) != server_key(request("INVITE", branch="abc", call_id="other"))


def test_build_ack_copies_from_and_call_id() -> None:
    invite = request("INVITE")
    ack = build_ack(invite, response(invite, 503))
    assert ack.call_id == invite.call_id
    assert ack.from_.tag == "caller1"
    assert ack.body == b""
