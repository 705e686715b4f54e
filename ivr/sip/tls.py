"""TLS for SIP (RFC 3261 26.2, RFC 5922): the contexts of `tls://` listeners and of connections we open.

SIP over TLS is SIP over TCP inside a TLS session: the same Content-Length framing, so the transport
only swaps the stream; this module decides how the TLS sessions are set up. Servers present the
configured certificate chain and private key (PEM files, re-read at each start: rotating a certificate
is replacing the files and restarting). Connections we open (in-dialog requests to a peer's Contact,
calls to an agent registered over TLS) verify the peer against `ca_file` (else the system's trust
store) and check the name or IP address it was reached at.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from ivr.errors import ConfigError

__all__ = ["client_context", "server_context"]

_MINIMUM = ssl.TLSVersion.TLSv1_2
"""RFC 8996/BCP 195: no TLS 1.0 or 1.1."""


def server_context(certificate: Path, private_key: Path) -> ssl.SSLContext:
    """The context of our TLS listeners; raises ConfigError if the files cannot be loaded."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = _MINIMUM
    try:
        context.load_cert_chain(certfile=str(certificate), keyfile=str(private_key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"TLS certificate {certificate} / key {private_key}: {exc}") from None
    return context


def client_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """The context of TLS connections we open; peers are verified against `ca_file` or the system CAs."""
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                             cafile=str(ca_file) if ca_file is not None else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"TLS CA file {ca_file}: {exc}") from None
    context.minimum_version = _MINIMUM
    return context
