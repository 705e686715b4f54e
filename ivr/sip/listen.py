"""Where the engine listens for SIP and what address it gives out: listener URLs and advertised hosts.

A listener is written `udp://HOST:PORT`, `tcp://HOST:PORT` or `tls://HOST:PORT` (IPv6 as `[::]:5061`).
The address a listener *binds* and the address peers must *use* differ on a server bound to every
interface (`0.0.0.0`, `::`) or behind NAT: Via sent-by, Contact and SDP must name an address peers can
reach, never the wildcard (`c=0.0.0.0` even means hold). `advertised_host` picks that address: the
configured one, else the bound one, else (a wildcard) this host's own address.

`open_listeners` opens every listener as a `SipTransport` whose endpoint writes the advertised host in
Via and Contact; TLS listeners share one server context built from the certificate files (`ivr.sip.tls`).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

import structlog

from ivr.clock import Clock
from ivr.errors import ConfigError
from ivr.sip.endpoint import TransportKind
from ivr.sip.hostport import format_hostport, parse_hostport
from ivr.sip.transport import SipTransport

__all__ = ["Listener", "advertised_host", "format_hostport", "is_wildcard", "open_listeners", "parse_listener"]

log = structlog.get_logger(__name__)

DEFAULT_PORTS = {TransportKind.UDP: 5060, TransportKind.TCP: 5060, TransportKind.TLS: 5061}


@dataclass(slots=True, frozen=True)
class Listener:
    """One SIP listener: transport, bind host, port (0: ephemeral)."""

    kind: TransportKind
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.kind.value.lower()}://{format_hostport(self.host, self.port)}"


def parse_listener(text: str) -> Listener:
    """`tls://0.0.0.0:5061` → Listener(TLS, "0.0.0.0", 5061); raises ConfigError naming what is wrong."""
    scheme, sep, rest = text.strip().partition("://")
    try:
        kind = TransportKind(scheme.upper())
    except ValueError:
        raise ConfigError(f"listener {text!r}: expected udp://, tcp:// or tls://HOST:PORT") from None
    if not sep or not rest:
        raise ConfigError(f"listener {text!r}: expected {scheme}://HOST:PORT")
    try:
        host, port = parse_hostport(rest, default_port=DEFAULT_PORTS[kind])
    except ConfigError as exc:
        raise ConfigError(f"listener {text!r}: {exc}") from None
    return Listener(kind, host, port)


def is_wildcard(host: str) -> bool:
    """True for the every-interface binds (`0.0.0.0`, `::`), which peers can never send to."""
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def advertised_host(bind_host: str, advertise: str | None = None) -> str:
    """The address peers reach us at: `advertise` if set, else `bind_host` unless it is a wildcard, else
    this host's first non-loopback address of the wildcard's family (loopback if it has none)."""
    if advertise:
        return advertise
    if not is_wildcard(bind_host):
        return bind_host
    family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, family, socket.SOCK_DGRAM)
    except OSError:
        infos = []
    for info in infos:
        address = str(info[4][0])
        if not ipaddress.ip_address(address.split("%")[0]).is_loopback:
            return address
    fallback = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    log.warning("sip_advertise_fallback", bind=bind_host, advertised=fallback,
                hint="set advertise_address to the address peers reach this host at")
    return fallback


async def open_listeners(listeners: list[Listener], *, advertise: str | None, clock: Clock,
                         tls_certificate: Path | None = None, tls_private_key: Path | None = None,
                         tls_ca_file: Path | None = None) -> list[SipTransport]:
    """Open every listener (in order) with the advertised host in its Via and Contact.

    Closes what it opened if one fails (a port in use, an unreadable certificate)."""
    from ivr.sip.tls import client_context, server_context

    opened: list[SipTransport] = []
    try:
        for listener in listeners:
            server_ssl = client_ssl = None
            if listener.kind is TransportKind.TLS:
                if tls_certificate is None or tls_private_key is None:
                    raise ConfigError(f"listener {listener}: set tls_certificate and tls_private_key")
                server_ssl = server_context(tls_certificate, tls_private_key)
                client_ssl = client_context(tls_ca_file)
            transport = await SipTransport.open(listener.host, listener.port, kind=listener.kind, clock=clock,
                                                ssl=server_ssl, client_ssl=client_ssl)
            opened.append(transport)
            bound_host, port = transport.local_address
            host = advertised_host(bound_host, advertise)
            transport.endpoint.local_address = (host, port)
            log.info("sip_listener_ready", listener=str(listener), advertised=format_hostport(host, port))
    except BaseException:
        for transport in opened:
            await transport.close()
        raise
    return opened
