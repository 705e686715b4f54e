"""Media addresses, pure: one form for every address, and whether our socket can reach a peer's.

asyncio reports an IPv6 socket's peers as 4-tuples, and the IPv4 peers of a dual-stack socket (one
bound to `::`) as `::ffff:a.b.c.d`; sessions compare addresses (source checks, latching), so every
address is normalized to `(host, port)` with IPv4 in dotted form before it is compared or stored.

`assess_offer` is the decision the call layer makes before answering an offer: a socket bound to an
IPv4 address cannot send to an IPv6 one (linphone's default offer says `c=IN IP6 fd00::2` while its
packets come from 127.0.0.1, issue 24), and one bound to loopback cannot send off the host. Such an
offer is answerable only if symmetric RTP will find the caller where its packets come from;
otherwise it is refused with 488 and a Warning (RFC 3261 20.43: 300 incompatible network protocol,
301 incompatible network address formats).
"""

from __future__ import annotations

import enum
import functools
import ipaddress
from dataclasses import dataclass

Address = tuple[str, int]
"""(host, port): IPv4 dotted or IPv6 text, never a v4-mapped IPv6 form."""

_MAPPED_PREFIX = "::ffff:"
HOSTS_CACHED = 4096
"""Hosts whose parse (and reachability from our host) is kept: every call answers and aims at one, and
`ipaddress` parsing plus its `is_loopback`/`is_unspecified` tests cost ~15 µs a session (issue 22)."""


def normalize(address: tuple[object, ...]) -> Address:
    """`(host, port)` from what a socket reports: drops IPv6 flow info and scope, unmaps v4-mapped."""
    host, port = str(address[0]), int(address[1])  # type: ignore[call-overload]
    if host[:7].lower() == _MAPPED_PREFIX and "." in host:
        host = host[7:]
    return host, port


@functools.lru_cache(maxsize=HOSTS_CACHED)
def ip_of(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP literal `host` is, None for a name (addresses are immutable: shared through a bounded cache)."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def is_unspecified(host: str) -> bool:
    """0.0.0.0 or :: (an offer's `c=` on hold, RFC 3264 8.4): nothing can be sent there."""
    ip = ip_of(host)
    return ip is not None and ip.is_unspecified


@functools.lru_cache(maxsize=HOSTS_CACHED)
def can_reach(local_host: str, remote_host: str) -> bool:
    """Whether a socket bound to `local_host` can send to `remote_host`.

    IPv4 sockets reach IPv4 only, a socket bound to `::` (dual stack) reaches both, one bound to a
    specific IPv6 address reaches IPv6 only; a loopback-bound socket reaches loopback only. A name
    (not an IP literal) is left to the send to decide.
    """
    remote = ip_of(remote_host)
    if remote is None:
        return True
    if remote.is_unspecified:
        return False
    local = ip_of(local_host)
    if local is None:
        return True
    if local.version == 4 and remote.version != 4:
        return False
    if local.version == 6 and not local.is_unspecified and remote.version != 6:
        return False
    return not (local.is_loopback and not remote.is_loopback)


def send_form(address: Address, dual_stack: bool) -> Address:
    """The address as a socket takes it: a dual-stack IPv6 socket wants IPv4 peers v4-mapped."""
    if dual_stack and ":" not in address[0]:
        return _MAPPED_PREFIX + address[0], address[1]
    return address


class OfferVerdict(enum.Enum):
    """What the call layer may do with an offer's media address."""

    REACHABLE = "reachable"
    """Answer: we can send to the address the SDP names."""
    NEEDS_LATCH = "needs_latch"
    """Answer, but media flows only once the caller's packets show where to send (symmetric RTP);
    the session ends the call with `MediaFailure.NO_MEDIA` when none come in the latch window."""
    UNREACHABLE = "unreachable"
    """Refuse: 488 with the Warning of `OfferAssessment.refusal`."""


@dataclass(slots=True, frozen=True)
class MediaRefusal:
    """A 488 Not Acceptable Here and the Warning header that says why (RFC 3261 21.4.26, 20.43)."""

    status: int
    warn_code: int
    text: str

    def warning(self, agent: str) -> str:
        """The Warning header value; `agent` is our host (or host:port) as the warn-agent."""
        escaped = self.text.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.warn_code} {agent} "{escaped}"'


@dataclass(slots=True, frozen=True)
class OfferAssessment:
    verdict: OfferVerdict
    refusal: MediaRefusal | None = None
    """Set when the verdict is UNREACHABLE."""


def assess_offer(remote: Address, local_host: str, *, symmetric: bool) -> OfferAssessment:
    """Whether to answer an offer whose media address is `remote`, from a socket bound to `local_host`."""
    if can_reach(local_host, remote[0]):
        return OfferAssessment(OfferVerdict.REACHABLE)
    if symmetric:
        return OfferAssessment(OfferVerdict.NEEDS_LATCH)
    remote_ip, local_ip = ip_of(remote[0]), ip_of(local_host)
    if remote_ip is not None and local_ip is not None and remote_ip.version != local_ip.version:
        code, text = 301, f"media address {remote[0]} is IPv{remote_ip.version}; we send from IPv{local_ip.version}"
    else:
        code, text = 300, f"media address {remote[0]} cannot be reached from {local_host}"
    return OfferAssessment(OfferVerdict.UNREACHABLE, MediaRefusal(488, code, text))
