from __future__ import annotations

import pytest

from ivr.rtp.address import OfferVerdict, assess_offer, can_reach, normalize, send_form
from ivr.rtp.gate import Admission, SourceGate
from ivr.rtp.health import SendHealth


@pytest.mark.parametrize(
    ("reported", "normal"),
    [
        (("127.0.0.1", 4000), ("127.0.0.1", 4000)),
        (("::ffff:127.0.0.1", 4000, 0, 0), ("127.0.0.1", 4000)),
        (("::1", 4000, 0, 0), ("::1", 4000)),
        (("fd00::2", 4000, 0, 3), ("fd00::2", 4000)),
    ],
    ids=["ipv4", "v4-mapped", "ipv6", "ipv6-scope"],
)
def test_addresses_are_normalized_to_host_and_port(reported: tuple[object, ...], normal: tuple[str, int]) -> None:
    assert normalize(reported) == normal


@pytest.mark.parametrize(
    ("local", "remote", "reachable"),
    [
        ("127.0.0.1", "127.0.0.5", True),
        ("127.0.0.1", "fd00::2", False),  # linphone's default offer, issue 24
        ("127.0.0.1", "192.0.2.2", False),  # a loopback socket cannot send off the host
        ("0.0.0.0", "192.0.2.2", True),
        ("::", "127.0.0.1", True),  # dual stack
        ("::", "fd00::2", True),
        ("::1", "127.0.0.1", False),
        ("192.0.2.2", "0.0.0.0", False),  # on hold: nowhere to send
        ("127.0.0.1", "phone.example.com", True),  # a name: the send decides
    ],
)
def test_which_offers_our_socket_can_reach(local: str, remote: str, reachable: bool) -> None:
    assert can_reach(local, remote) is reachable


def test_ipv4_peers_of_a_dual_stack_socket_are_sent_to_v4_mapped() -> None:
    assert send_form(("127.0.0.1", 9), True) == ("::ffff:127.0.0.1", 9)
    assert send_form(("::1", 9), True) == ("::1", 9)
    assert send_form(("127.0.0.1", 9), False) == ("127.0.0.1", 9)


def test_an_unreachable_offer_is_answered_in_nat_mode_and_refused_with_488_otherwise() -> None:
    assert assess_offer(("127.0.0.1", 4000), "127.0.0.1", symmetric=False).verdict is OfferVerdict.REACHABLE
    assert assess_offer(("fd00::2", 4000), "127.0.0.1", symmetric=True).verdict is OfferVerdict.NEEDS_LATCH
    refused = assess_offer(("fd00::2", 4000), "127.0.0.1", symmetric=False)
    assert refused.verdict is OfferVerdict.UNREACHABLE and refused.refusal is not None
    assert refused.refusal.status == 488
    warning = refused.refusal.warning("127.0.0.1:5060")
    assert warning == '301 127.0.0.1:5060 "media address fd00::2 is IPv6; we send from IPv4"'
    other = assess_offer(("192.0.2.9", 4000), "127.0.0.1", symmetric=False).refusal
    assert other is not None and other.warn_code == 300


def test_nat_mode_latches_only_to_the_sdp_or_signalling_host_in_the_window() -> None:
    gate = SourceGate.opened(("fd00::2", 7078), 100.0, peer_host="127.0.0.1")
    assert gate.admit(("127.0.0.9", 7078), 100.5) is Admission.REFUSED  # another host
    assert gate.admit(("127.0.0.1", 7078), 100.6) is Admission.LATCHED  # the signalling peer's
    assert gate.admit(("127.0.0.1", 7078), 100.7) is Admission.ACCEPTED
    assert gate.admit(("fd00::2", 7078), 100.8) is Admission.REFUSED  # never re-latches


def test_after_the_window_only_the_sdp_address_itself_latches() -> None:
    gate = SourceGate.opened(("192.0.2.10", 4000), 0.0, peer_host="192.0.2.10")
    assert gate.admit(("192.0.2.10", 4002), 2.1) is Admission.REFUSED
    assert gate.admit(("192.0.2.10", 4000), 2.2) is Admission.LATCHED


def test_the_ports_previous_source_never_latches_unless_the_sdp_names_it() -> None:
    stale = ("192.0.2.10", 4000)  # the port's previous call, same phone or SBC as this one
    gate = SourceGate.opened(("192.0.2.10", 4100), 0.0, peer_host="192.0.2.10", stale=stale)
    assert gate.admit(stale, 0.1) is Admission.REFUSED
    assert gate.admit(("192.0.2.10", 4200), 0.2) is Admission.LATCHED  # any other port of that IP still may
    named = SourceGate.opened(stale, 0.0, stale=stale)  # the same source is this call's: the SDP says so
    assert named.admit(stale, 0.1) is Admission.LATCHED


def test_send_errors_are_logged_once_per_interval_and_fatal_only_when_persistent() -> None:
    health = SendHealth(fail_after_s=5.0, log_every_s=5.0)
    first = health.failed(0.0)
    assert first.log and not first.fatal
    health.sent()  # a packet went out: the run is over
    notes = [health.failed(10.0 + 0.02 * n) for n in range(251)]
    assert [n.log for n in notes].count(True) == 2  # at 10.0 s and 15.0 s
    assert notes[250].suppressed == 249 and notes[250].fatal and not notes[249].fatal
    assert health.errors == 252
