"""host:port as SIP writes it (RFC 3261 25.1): an IPv6 address in brackets, the port after a colon.

One module below the SIP listeners and the engine's configuration, which both read addresses written
this way (`--sip 0.0.0.0:5060`, `tls://[::]:5061`, `sip_host`), so the listener need not import the
application's config to parse its own URL.
"""

from __future__ import annotations

from ivr.errors import ConfigError

__all__ = ["format_hostport", "parse_hostport"]


def format_hostport(host: str, port: int) -> str:
    """host:port as Via and Contact write it: an IPv6 address in brackets (RFC 3261 25.1)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_hostport(text: str, *, default_port: int) -> tuple[str, int]:
    """`"127.0.0.1:5060"` → ("127.0.0.1", 5060); `"[::1]:5060"` for IPv6; a bare host takes the default port.

    Raises `ConfigError` naming the text when the port is not a number or the host is missing."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise ConfigError(f"bad address {text!r}: port {port_text!r} is not a number") from None
    if not host or not 0 <= port <= 65535:
        raise ConfigError(f"bad address {text!r}: expected HOST:PORT")
    return host, port
