"""Test tools for media: a probe that collects what a session receives, an in-memory network, and
two measures of audio (dominant frequency, level).

`MediaProbe`: attach it to a session, drive the peer, then `await probe.wait_for_digits(4)` or
`await probe.wait_for_audio(1.0)` and assert on `probe.digits`, `probe.events`, `probe.audio()`.

`MemoryNetwork`: a `DatagramNetwork` with no sockets, for running calls on a `FakeClock`:

    clock = FakeClock()
    net = MemoryNetwork()
    engine = MediaEngine(clock=clock, network=net)       # the scheduler ticks on `clock`
    a, b = await engine.open_session(), await engine.open_session()
    a.start(MediaParams(remote=b.local)); b.start(MediaParams(remote=a.local))
    await clock.advance(1.0)                              # 50 ticks: 50 packets each way, delivered

A datagram is delivered on the next loop iteration (`call_soon`), as a socket would, so `advance`
(which lets woken tasks run between timers) carries it. `net.inject(data, source, destination)`
sends from any address (a stranger); `port.fail_sends(n)` / `port.failing = exc` make sends fail
the way uvloop does (raised `OSError`/`ValueError`); a port sending to an address of the other family
raises uvloop's `ValueError`; `port.lose()` kills a socket under its session.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from ivr.clock import Clock, LoopClock
from ivr.rtp import DtmfReceived, MediaSession
from ivr.rtp.address import Address, ip_of
from ivr.rtp.net import DatagramPort, ErrorListener, LostListener, Receiver


class MediaProbe:
    def __init__(self, session: MediaSession, clock: Clock | None = None) -> None:
        self.session = session
        self.events: list[DtmfReceived] = []
        self._clock: Clock = clock or LoopClock()
        """Waits time out on this clock (a FakeClock in tests that drive one); real time by default."""
        self._frames: list[NDArray[np.int16]] = []
        self._changed = asyncio.Event()
        session.on_dtmf(self._on_dtmf)
        session.add_audio_consumer(self._on_frame)

    @property
    def digits(self) -> str:
        return "".join(event.digit for event in self.events)

    @property
    def received_s(self) -> float:
        return len(self._frames) * 0.02

    def audio(self) -> NDArray[np.int16]:
        """Everything received so far, 8 kHz int16."""
        return np.concatenate(self._frames) if self._frames else np.zeros(0, dtype=np.int16)

    def clear(self) -> None:
        self.events.clear()
        self._frames.clear()

    async def wait_for_digits(self, count: int, timeout_s: float = 5.0) -> str:
        """Wait until `count` keys have arrived; `TimeoutError` otherwise. Returns the digits."""
        await self._wait(lambda: len(self.events) >= count, timeout_s)
        return self.digits

    async def wait_for_audio(self, seconds: float, timeout_s: float = 5.0) -> NDArray[np.int16]:
        """Wait until `seconds` of audio have arrived; returns all of it."""
        await self._wait(lambda: self.received_s >= seconds - 1e-9, timeout_s)
        return self.audio()

    async def wait_for_quiet(self, quiet_s: float, timeout_s: float = 5.0) -> None:
        """Wait until no audio has arrived for `quiet_s`: frames the peer sent before it stopped may still be
        in the kernel's socket buffer, read later by a busy loop. `TimeoutError` if it never goes quiet."""
        async with self._clock.timeout(timeout_s):
            while True:
                count = len(self._frames)
                await self._clock.sleep(quiet_s)
                if len(self._frames) == count:
                    return

    async def _wait(self, ready: Callable[[], bool], timeout_s: float) -> None:
        async with self._clock.timeout(timeout_s):
            while not ready():
                self._changed.clear()
                await self._changed.wait()

    def _on_dtmf(self, event: DtmfReceived) -> None:
        self.events.append(event)
        self._changed.set()

    def _on_frame(self, frame: NDArray[np.int16]) -> None:
        self._frames.append(frame)
        self._changed.set()


def dominant_frequency_hz(audio: NDArray[np.int16], rate_hz: int = 8000) -> float:
    """The strongest frequency in `audio` (Hann-windowed FFT peak), for asserting a tone came through."""
    if audio.size == 0:
        return 0.0
    spectrum = np.abs(np.fft.rfft(audio.astype(np.float64) * np.hanning(audio.size)))
    return float(np.fft.rfftfreq(audio.size, 1.0 / rate_hz)[int(np.argmax(spectrum[1:])) + 1])


def level_dbfs(audio: NDArray[np.int16]) -> float:
    """RMS level relative to int16 full scale (-inf for silence)."""
    rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) if audio.size else 0.0
    return 20.0 * float(np.log10(rms / 32768.0)) if rms > 0 else float("-inf")


def _version(host: str) -> int | None:
    ip = ip_of(host)
    return ip.version if ip is not None else None


class MemoryPort:
    """One bound port of a `MemoryNetwork` (a `DatagramPort`)."""

    def __init__(self, network: MemoryNetwork, local: Address) -> None:
        self.network = network
        self.local = local
        self.sent = 0
        """Datagrams sent (delivered or not)."""
        self.failing: Exception | None = None
        """Every send raises this while set."""
        self.closed = False
        self._fail_next = 0
        self._receiver: Receiver | None = None
        self._on_error: ErrorListener | None = None
        self._on_lost: LostListener | None = None

    def attach(self, receiver: Receiver, on_error: ErrorListener, on_lost: LostListener) -> None:
        self._receiver, self._on_error, self._on_lost = receiver, on_error, on_lost

    def fail_sends(self, count: int) -> None:
        """The next `count` sends raise `OSError(ENOBUFS)`, as a full socket buffer does."""
        self._fail_next += count

    def sendto(self, data: bytes, address: Address) -> None:
        if self.closed:
            raise OSError(errno.EBADF, "the port is closed")
        if self.failing is not None:
            raise self.failing
        if self._fail_next:
            self._fail_next -= 1
            raise OSError(errno.ENOBUFS, "No buffer space available")
        local_version, remote_version = _version(self.local[0]), _version(address[0])
        if None not in (local_version, remote_version) and local_version != remote_version:
            raise ValueError(f"{address!r}: socket family mismatch or a DNS lookup is required")
        self.sent += 1
        self.network.deliver(bytes(data), self.local, address)

    def receive(self, data: bytes, source: Address) -> None:
        if self._receiver is not None and not self.closed:
            self._receiver(data, source)

    def lose(self) -> None:
        """The socket dies under its session (as a closed transport would)."""
        self.network.unbind(self)
        self.closed = True
        if self._on_lost is not None:
            self._on_lost()

    def close(self) -> None:
        self.network.unbind(self)
        self.closed = True


class MemoryNetwork:
    """An in-memory datagram network (a `DatagramNetwork`): ports by (host, port), no sockets."""

    def __init__(self) -> None:
        self.ports: dict[Address, MemoryPort] = {}
        self.undelivered = 0
        """Datagrams sent to an address nobody has bound."""

    async def bind(self, host: str, port: int) -> DatagramPort:
        if (host, port) in self.ports:
            raise OSError(errno.EADDRINUSE, f"address {host}:{port} already in use")
        bound = self.ports[(host, port)] = MemoryPort(self, (host, port))
        return bound

    def unbind(self, port: MemoryPort) -> None:
        if self.ports.get(port.local) is port:
            del self.ports[port.local]

    def port(self, address: Address) -> MemoryPort:
        return self.ports[address]

    def deliver(self, data: bytes, source: Address, destination: Address) -> None:
        """Hand `data` to the port bound at `destination` on the next loop iteration, as from `source`."""
        target = self.ports.get(destination)
        if target is None:
            self.undelivered += 1
            return
        asyncio.get_running_loop().call_soon(target.receive, data, source)

    def inject(self, data: bytes, source: Address, destination: Address) -> None:
        """A datagram from anyone (a stranger, a peer with no session of ours) to `destination`."""
        self.deliver(data, source, destination)
