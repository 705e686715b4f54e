"""The UDP port's wiring (ivr.rtp.net), without sockets: on an IPv4 socket the loop hands datagrams to the
session's receiver itself and `sendto` is the transport's own; IPv6 sources are normalized, a dual-stack socket
sends to IPv4 peers v4-mapped, and nothing is delivered after close."""

from __future__ import annotations

import pytest

from ivr.rtp.address import Address
from ivr.rtp.net import _UdpPort


class FakeTransport:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, object]] = []
        self.closed = False

    def sendto(self, data: bytes, addr: object = None) -> None:
        self.sent.append((data, addr))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def opened(*, dual_stack: bool = False, ipv6: bool = False) -> tuple[_UdpPort, FakeTransport]:
    port = _UdpPort(dual_stack, ipv6)
    transport = FakeTransport()
    port.connection_made(transport)  # type: ignore[arg-type]
    return port, transport


def ignore(*args: object) -> None:
    pass


def test_an_ipv4_port_hands_datagrams_to_the_receiver_itself_and_nothing_after_close() -> None:
    port, _ = opened()
    heard: list[tuple[bytes, Address]] = []

    def receiver(data: bytes, source: Address) -> None:
        heard.append((data, source))

    port.attach(receiver, ignore, ignore)
    assert port.datagram_received is receiver  # no call of ours in between, per packet
    port.datagram_received(b"rtp", ("127.0.0.1", 4000))
    port.close()
    port.datagram_received(b"late", ("127.0.0.1", 4000))
    assert heard == [(b"rtp", ("127.0.0.1", 4000))]


@pytest.mark.parametrize(
    ("reported", "source"),
    [(("2001:db8::1", 4000, 0, 0), ("2001:db8::1", 4000)), (("::ffff:192.0.2.7", 4000, 0, 0), ("192.0.2.7", 4000))],
    ids=["ipv6", "v4-mapped"],
)
def test_an_ipv6_port_normalizes_the_source(reported: tuple[str, int, int, int], source: Address) -> None:
    port, _ = opened(dual_stack=True, ipv6=True)
    heard: list[Address] = []
    port.attach(lambda data, src: heard.append(src), ignore, ignore)
    port.datagram_received(b"rtp", reported)  # type: ignore[arg-type]
    assert heard == [source]


def test_sendto_is_the_transports_own_unless_the_socket_is_dual_stack() -> None:
    port, transport = opened()
    assert port.sendto == transport.sendto
    port.sendto(b"a", ("192.0.2.7", 4000))
    dual, dual_transport = opened(dual_stack=True, ipv6=True)
    dual.sendto(b"b", ("192.0.2.7", 4000))
    dual.sendto(b"c", ("2001:db8::1", 4000))
    assert transport.sent == [(b"a", ("192.0.2.7", 4000))]
    assert dual_transport.sent == [(b"b", ("::ffff:192.0.2.7", 4000)), (b"c", ("2001:db8::1", 4000))]


def test_a_port_not_open_yet_refuses_to_send() -> None:
    port = _UdpPort(False, False)
    with pytest.raises(OSError, match="not open yet"):
        port.sendto(b"a", ("192.0.2.7", 4000))

