"""A UserAgent with a trivial application, for interop tests and the calls/s benchmark.

    python -m ivr.testing.sipharness --port 0 [--tcp] [--users agent7:s3cret,...] [--max-calls N]

prints `listening UDP 127.0.0.1 PORT` once bound, then serves until SIGINT/SIGTERM. The application
answers every call with an SDP answer (no media is sent) and waits for the caller's BYE, except
by dialed number:

* `unknown...` -> 404 (refused by the number check, as the engine does for numbers no flow serves);
* `busy...`    -> 486 Busy Here;
* `slow...`    -> rings and never answers (the caller's CANCEL gets 487);
* `hangup...`  -> answers, then hangs up itself after 0.5 s;
* `noring...`  -> answers without 180.

Every finished call is put on `EchoApplication.finished` with what the application saw, every dialog
event on `EchoApplication.events`.

`MemoryNetwork` wires user agents together with no socket and no real time: each `transport(address)` is
a `SipTransport.attach(...)` whose datagrams are delivered to the transport bound at the destination
(on the next loop turn), and every SIP timer runs on the network's clock (a `FakeClock` in tests).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ivr.call import CallEnded
from ivr.clock import Clock, LoopClock
from ivr.sip.events import Address, ByeReceived, DialogEvent
from ivr.sip.registrar import Registrar
from ivr.sip.sdp import SessionDescription, answer_offer
from ivr.sip.transport import SipTransport, TransportKind, run
from ivr.sipua.calls import IncomingCall
from ivr.sipua.leg import CallLeg
from ivr.sipua.useragent import UserAgent


@dataclass(slots=True)
class CallLog:
    """What the test application saw of one incoming call."""

    call_id: str
    caller: str
    dialed: str
    answered: bool = False
    cancelled: bool = False
    end_reason: str | None = None
    events: list[DialogEvent] = field(default_factory=list)
    leg: CallLeg | None = None


class EchoApplication:
    """Answer, play nothing, hang up on BYE (with a few dialed-number behaviours for tests)."""

    def __init__(self, clock: Clock, media_address: str = "127.0.0.1") -> None:
        self.clock = clock
        self.media_address = media_address
        self.finished: asyncio.Queue[CallLog] = asyncio.Queue()
        self.answered: asyncio.Queue[CallLog] = asyncio.Queue()
        self.events: asyncio.Queue[tuple[CallLog, DialogEvent]] = asyncio.Queue()
        """Every dialog event of every call, as it arrives (tests await REFERs here)."""
        self._ports = itertools.cycle(range(40000, 60000, 2))

    @staticmethod
    def accept_number(dialed: str) -> bool:
        return not dialed.startswith("unknown")

    def answer_sdp(self, offer: bytes | SessionDescription) -> bytes:
        """Our SDP answer to `offer` (raises SdpNegotiationError -> 488 when nothing fits)."""
        port = next(self._ports)
        session = offer if isinstance(offer, SessionDescription) else SessionDescription.parse(offer)
        answer = answer_offer(session, local_address=self.media_address, local_port=port, session_id=port)
        return answer.serialize()

    async def __call__(self, call: IncomingCall) -> None:
        record = CallLog(call.call_id, call.caller, call.dialed)
        try:
            await self._handle(call, record)
        finally:
            record.cancelled = call.cancelled.is_set()
            self.finished.put_nowait(record)

    async def _handle(self, call: IncomingCall, record: CallLog) -> None:
        dialed = call.dialed
        if dialed.startswith("busy"):
            call.reject(486)
            return
        if not dialed.startswith("noring"):
            call.ring()
        if dialed.startswith("slow"):
            await self.clock.sleep_until(self.clock.now() + 3600)
        leg = call.answer(self.answer_sdp(call.offer_sdp or call.offer))
        record.answered, record.leg = True, leg
        self.answered.put_nowait(record)
        if dialed.startswith("hangup"):
            await self.clock.sleep_until(self.clock.now() + 0.5)
            await leg.bye()
        try:
            while True:
                event = await leg.next_event()
                record.events.append(event)
                self.events.put_nowait((record, event))
                if isinstance(event, ByeReceived):
                    break
        except CallEnded:
            pass
        record.end_reason = leg.end_reason


class MemoryNetwork:
    """SIP transports joined in memory, timed by one clock: whole calls with no socket and no waiting."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._bound: dict[Address, SipTransport] = {}
        self.unrouted: list[tuple[bytes, Address]] = []
        """Datagrams sent to an address nobody is bound to (dropped, like UDP)."""

    def transport(self, address: Address) -> SipTransport:
        """A transport bound at `address` on this network."""

        def send(data: bytes, destination: Address) -> None:
            self._send(address, data, destination)

        transport = SipTransport.attach(address, send, clock=self.clock)
        self._bound[address] = transport
        return transport

    def vanish(self, address: Address) -> None:
        """The host at `address` is gone: what is sent to it is dropped from now on (`unrouted`)."""
        self._bound.pop(address, None)

    def inject(self, data: bytes, source: Address, destination: Address) -> None:
        """Deliver raw bytes as if `source` had sent them (a test playing a peer by hand)."""
        self._send(source, data, destination)

    def _send(self, source: Address, data: bytes, destination: Address) -> None:
        peer = self._bound.get(destination)
        if peer is None:
            self.unrouted.append((data, destination))
            return
        asyncio.get_running_loop().call_soon(peer.deliver, data, source)


def attach_harness(network: MemoryNetwork, address: Address, *, users: Mapping[str, str] | None = None,
                   max_calls: int | None = None) -> Harness:
    """The echo application on a `MemoryNetwork` transport at `address` (no socket; the network's clock)."""
    transport = network.transport(address)
    app = EchoApplication(network.clock, media_address=address[0])
    registrar = Registrar(address[0], users, nonce_secret=b"harness") if users else None
    ua = UserAgent(transport, network.clock, app, accept_number=app.accept_number, max_calls=max_calls,
                   registrar=registrar)
    return Harness(transport, ua, app, registrar)


@dataclass(slots=True)
class Harness:
    transport: SipTransport
    ua: UserAgent
    app: EchoApplication
    registrar: Registrar | None

    @property
    def port(self) -> int:
        return self.transport.local_address[1]

    async def close(self) -> None:
        await self.ua.close()
        await self.transport.close()


async def start(host: str = "127.0.0.1", port: int = 0, *, kind: TransportKind = TransportKind.UDP,
                users: Mapping[str, str] | None = None, max_calls: int | None = None) -> Harness:
    """Bind a transport and run the echo application on it; `users` enables the registrar."""
    transport = await SipTransport.open(host, port, kind=kind)
    clock = LoopClock()
    app = EchoApplication(clock, media_address=host)
    registrar = Registrar(host, users, nonce_secret=b"harness") if users else None
    ua = UserAgent(transport, clock, app, accept_number=app.accept_number, max_calls=max_calls,
                   registrar=registrar)
    return Harness(transport, ua, app, registrar)


async def _serve(args: argparse.Namespace) -> None:
    users = dict(pair.split(":", 1) for pair in args.users.split(",")) if args.users else None
    kind = TransportKind.TCP if args.tcp else TransportKind.UDP
    harness = await start(args.host, args.port, kind=kind, users=users, max_calls=args.max_calls)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"listening {kind.value} {harness.transport.local_address[0]} {harness.port}", flush=True)
    try:
        await stop.wait()
    finally:
        await harness.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ivr.testing.sipharness",
                                     description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on stdout)")
    parser.add_argument("--tcp", action="store_true")
    parser.add_argument("--users", default="", help="user:password,... enables the registrar")
    parser.add_argument("--max-calls", type=int, default=None)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    from ivr.logconfig import configure_logging

    configure_logging(args.log_level, json=True)
    run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
