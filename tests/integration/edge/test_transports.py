"""Issue 16, transports: `listen:` opens TCP and TLS listeners beside the UDP one, and real callers use them.

SIPp calls over TCP (`-t t1`) straight to the `tcp://` listener, and over TLS to the `tls://` listener
(this SIPp is built without OpenSSL, so its TCP stream is carried over a verifying TLS client: the
engine's side is the real `ivr serve` TLS listener with a certificate made at test time). Each call is
answered with a Contact and Via of the transport it came on, and ends by the caller's BYE.
"""

from __future__ import annotations

import pathlib

import pytest

from tests.integration.edge.conftest import PemCertificate, call_once, edge_engine, header, tls_relay
from tests.integration.engine.conftest import free_port
from tests.integration.sip.sip_peers import needs_sipp

pytestmark = [pytest.mark.integration, needs_sipp]


async def test_sipp_calls_over_tcp_and_tls(tmp_path: pathlib.Path, certificate: PemCertificate) -> None:
    tcp_port, tls_port = free_port(), free_port()
    with edge_engine(tmp_path, listen=[f"tcp://127.0.0.1:{tcp_port}", f"tls://127.0.0.1:{tls_port}"],
                     tls_certificate=str(certificate.certificate), tls_private_key=str(certificate.key)) as engine:
        over_tcp = await call_once(tmp_path, tcp_port, transport="t1")
        assert over_tcp.returncode == 0, over_tcp.explain()
        async with tls_relay(tls_port, certificate.certificate) as relay_port:
            over_tls = await call_once(tmp_path, tls_port, transport="t1", connect_port=relay_port)
        assert over_tls.returncode == 0, over_tls.explain()
        over_udp = await call_once(tmp_path, engine.sip_port)  # the default listener is unchanged
        assert over_udp.returncode == 0, over_udp.explain()
    tcp_ok = over_tcp.received("SIP/2.0 200")[0].text
    assert header(tcp_ok, "Contact") == f"<sip:127.0.0.1:{tcp_port};transport=tcp>", tcp_ok
    tls_ok = over_tls.received("SIP/2.0 200")[0].text
    assert header(tls_ok, "Contact") == f"<sip:127.0.0.1:{tls_port};transport=tls>", tls_ok
    assert all(run.received("SIP/2.0 200")[-1].text.startswith("SIP/2.0 200")  # the BYE's 200 too
               and len(run.received("SIP/2.0 200")) >= 2 for run in (over_tcp, over_tls, over_udp))
