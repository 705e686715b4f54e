"""A UDP NAT in front of one phone, for cluster tests of agents behind NAT (docs/CLUSTER.md "Agents").

The phone sends its requests to `inside` (its account's server address); they leave from `outside`
toward `upstream` (Kamailio), so the proxy sees the NAT's address, not the phone's. Whatever reaches
`outside` goes to the phone, at the address it last sent from. The phone's Contact still names its own
socket, so a node that rang the Contact would bypass the NAT: `invites_in` counts the INVITEs that came
in through it, i.e. that were routed by the `received` address Kamailio put in the registration's Path.

With `phone` set the NAT also forwards a port, as a phone's router may: requests reaching `outside` go
to `phone` (a SIPp UAS, while a separate SIPp registered for it), responses to the last sender inside.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import cast

Address = tuple[str, int]


class _Side(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, Address], None]) -> None:
        self.on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.on_datagram(data, addr)

    def send(self, data: bytes, addr: Address) -> None:
        assert self.transport is not None
        self.transport.sendto(data, addr)


@dataclass(slots=True)
class Nat:
    upstream: Address
    inside: Address = ("127.0.0.1", 0)
    outside: Address = ("127.0.0.1", 0)
    phone: Address | None = None
    invites_in: int = 0
    _phone: Address | None = None
    _inner: _Side | None = field(default=None, repr=False)
    _outer: _Side | None = field(default=None, repr=False)

    def _from_phone(self, data: bytes, source: Address) -> None:
        self._phone = source
        assert self._outer is not None
        self._outer.send(data, self.upstream)

    def _from_outside(self, data: bytes, _source: Address) -> None:
        if self._phone is None:
            return  # nothing inside has opened a mapping yet: dropped, as a NAT does
        if data.startswith(b"INVITE "):
            self.invites_in += 1
        to = self._phone if self.phone is None or data.startswith(b"SIP/2.0 ") else self.phone
        assert self._inner is not None
        self._inner.send(data, to)


@contextlib.asynccontextmanager
async def running_nat(upstream: Address, host: str = "127.0.0.1", phone: Address | None = None) -> AsyncIterator[Nat]:
    """A NAT for one phone on `host` (both sides on ephemeral ports), forwarding to `upstream`."""
    loop = asyncio.get_running_loop()
    nat = Nat(upstream, phone=phone)
    inner_transport, inner = await loop.create_datagram_endpoint(lambda: _Side(nat._from_phone), local_addr=(host, 0))
    outer_transport, outer = await loop.create_datagram_endpoint(lambda: _Side(nat._from_outside),
                                                                 local_addr=(host, 0))
    nat._inner, nat._outer = inner, outer
    nat.inside = inner_transport.get_extra_info("sockname")[:2]
    nat.outside = outer_transport.get_extra_info("sockname")[:2]
    try:
        yield nat
    finally:
        inner_transport.close()
        outer_transport.close()
