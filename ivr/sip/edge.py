"""The SIP edge (issue #15): who may talk to us, and how much; pure, time passed in.

The endpoint consults one `SipEdge` for every datagram and every new INVITE:

    edge = SipEdge(EdgePolicy(trusted=("127.0.0.0/8", "10.1.0.0/16"), requests_per_s=20, burst=40))
    edge.admit_datagram("203.0.113.9", now)        # False: over its token bucket -> dropped silently
    edge.admit_invite("203.0.113.9", live_calls_from_source=3)   # EdgeVerdict.SILENCE / FORBIDDEN / None

* **Trusted sources** (addresses or CIDRs, e.g. the trunks and the proxy) may send INVITE; an INVITE from
  anywhere else is dropped silently (a scanner learns nothing) or answered 403, as configured. With no
  trusted list everyone may call (the demo, loopback tests).
* **A token bucket per source address** bounds the datagrams we even parse: beyond it they are dropped and
  counted. Trusted sources are exempt: a trunk carries every caller's signalling from one address, so a
  per-source limit there would throttle the whole hotline (the SIPp bench sends ~1,500 datagrams/s alone).
  The table of buckets is bounded (`max_sources`): idle, refilled buckets are forgotten first, so a flood of
  spoofed sources cannot grow it without limit.
* **Calls per source**: a source with `max_calls_per_source` calls up gets 503 for the next.

The cap on live server transactions is enforced by `TransactionLayer` (`max_server_transactions`, set from
this policy by the endpoint) because that is where they are created; a second INVITE with a live Call-ID
gets 482 from the endpoint, edge or not.
Counters (`EdgeCounters`) are what `/metrics` exposes.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field

from ivr.sip.errors import SipParseError
from ivr.sip.parser import parse_message

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class EdgeVerdict(enum.Enum):
    """What the endpoint does with an INVITE the edge refuses."""

    SILENCE = "silence"
    """Drop it: no response at all."""
    FORBIDDEN = "forbidden"
    """Answer 403 Forbidden."""
    BUSY = "busy"
    """Answer 503 with Retry-After (too many calls from this source)."""


@dataclass(slots=True, frozen=True)
class EdgePolicy:
    """The edge's limits, from the config (OPS wires `trunks:` and friends into this)."""

    trusted: tuple[str, ...] = ()
    """Addresses or CIDRs allowed to send INVITE; empty: everyone."""
    untrusted_invite: EdgeVerdict = EdgeVerdict.SILENCE
    """SILENCE or FORBIDDEN for an INVITE from outside `trusted`."""
    requests_per_s: float = 50.0
    """Sustained datagrams per second from one untrusted source."""
    burst: float = 100.0
    """How many datagrams an idle untrusted source may send at once."""
    max_calls_per_source: int | None = None
    max_server_transactions: int | None = 5000
    """Live server transactions beyond which new requests are dropped (each may live 32 s)."""
    max_sources: int = 10_000
    """Bound on the token-bucket table."""


@dataclass(slots=True)
class EdgeCounters:
    """What the edge turned away, for /metrics."""

    rate_limited: int = 0
    untrusted_invites: int = 0
    busy_sources: int = 0


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


@dataclass(slots=True)
class SipEdge:
    """Trusted sources, per-source token buckets, calls per source; consulted by `SipEndpoint`."""

    policy: EdgePolicy = field(default_factory=EdgePolicy)
    counters: EdgeCounters = field(default_factory=EdgeCounters)
    _networks: tuple[Network, ...] = ()
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _trusted_cache: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._networks = tuple(ipaddress.ip_network(cidr, strict=False) for cidr in self.policy.trusted)

    def trusted(self, host: str) -> bool:
        """True when `host` may send INVITE (always, with no trusted list)."""
        if not self._networks:
            return True
        known = self._trusted_cache.get(host)
        if known is None:
            try:
                address = ipaddress.ip_address(host.strip("[]"))
            except ValueError:
                known = False
            else:
                known = any(address in network for network in self._networks)
            if len(self._trusted_cache) < self.policy.max_sources:
                self._trusted_cache[host] = known
        return known

    def admit_datagram(self, host: str, now: float) -> bool:
        """Take one token from `host`'s bucket; False (and counted) when it is empty."""
        if self._networks and self.trusted(host):
            return True
        policy = self.policy
        bucket = self._buckets.get(host)
        if bucket is None:
            if len(self._buckets) >= policy.max_sources:
                self._forget_idle(now)
            bucket = self._buckets[host] = _Bucket(policy.burst, now)
        else:
            bucket.tokens = min(policy.burst, bucket.tokens + (now - bucket.at) * policy.requests_per_s)
            bucket.at = now
        if bucket.tokens < 1.0:
            self.counters.rate_limited += 1
            return False
        bucket.tokens -= 1.0
        return True

    def admit_datagram_bytes(self, data: bytes, host: str, now: float) -> bool:
        """The edge's say before the endpoint parses: `host`'s token bucket, and silence for a new INVITE or
        OPTIONS from an untrusted source (OPTIONS: a scanner's probe, e.g. SIPVicious svmap, learns nothing;
        SECURITY). Only such a datagram from one is parsed here, to see its To tag."""
        if not self.admit_datagram(host, now):
            return False
        probe = data[:7] == b"INVITE " or data[:8] == b"OPTIONS "
        if not probe or self.policy.untrusted_invite is not EdgeVerdict.SILENCE or self.trusted(host):
            return True
        try:
            in_dialog = parse_message(data).to.tag is not None
        except SipParseError:
            return True  # the transaction layer answers bad bytes as usual
        if not in_dialog:
            self.counters.untrusted_invites += 1
        return in_dialog

    def admit_invite(self, host: str, live_calls_from_source: int) -> EdgeVerdict | None:
        """None to let a new INVITE from `host` through, else what to do with it."""
        if not self.trusted(host):
            self.counters.untrusted_invites += 1
            return self.policy.untrusted_invite
        limit = self.policy.max_calls_per_source
        if limit is not None and live_calls_from_source >= limit:
            self.counters.busy_sources += 1
            return EdgeVerdict.BUSY
        return None

    def _forget_idle(self, now: float) -> None:
        """Drop the buckets that have refilled (their sources are quiet); if none, the oldest half."""
        policy = self.policy
        full = [host for host, b in self._buckets.items()
                if b.tokens + (now - b.at) * policy.requests_per_s >= policy.burst]
        if not full:
            full = sorted(self._buckets, key=lambda host: self._buckets[host].at)[: len(self._buckets) // 2]
        for host in full:
            del self._buckets[host]
