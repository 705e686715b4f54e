"""Issue 16, addresses: an engine bound to every interface must never give out the wildcard.

Bound to `0.0.0.0` with `advertise_address: 127.0.0.1`, the 200 a real SIPp caller gets names
127.0.0.1 in its Contact and its SDP `c=`/`o=` (a `c=0.0.0.0` would even mean hold), and the call works.
"""

from __future__ import annotations

import asyncio
import pathlib

import pytest

from ivr.testing.sippeer import read_message_log
from tests.integration.edge.conftest import CALLER, SCENARIOS, call_once, edge_engine, header, sdp_lines
from tests.integration.engine.conftest import free_port
from tests.integration.protocol.conftest import KEYS_NUMBER
from tests.integration.sip.sip_peers import needs_sipp

pytestmark = [pytest.mark.integration, needs_sipp]


async def test_wildcard_bound_engine_answers_with_the_advertised_address(tmp_path: pathlib.Path) -> None:
    with edge_engine(tmp_path, sip_host="0.0.0.0", advertise_address="127.0.0.1") as engine:
        run = await call_once(tmp_path, engine.sip_port)
        assert run.returncode == 0, run.explain()
    ok = run.received("SIP/2.0 200")[0].text
    assert header(ok, "Contact").startswith(f"<sip:127.0.0.1:{engine.sip_port}"), ok
    assert sdp_lines(ok, "c") == ["IN IP4 127.0.0.1"], ok
    assert sdp_lines(ok, "o")[0].endswith("IN IP4 127.0.0.1"), ok
    assert "0.0.0.0" not in ok, ok
    log = engine.log.read_text()
    assert '"sip_listener_ready"' in log and "0.0.0.0" in log  # it really was bound to every interface


async def test_engine_bound_to_ipv6_wildcard_answers_an_ipv4_caller(tmp_path: pathlib.Path) -> None:
    """`::` is dual stack: an IPv4 caller (seen as ::ffff:127.0.0.1 by the socket) is still a trusted
    loopback source, answered at its IPv4 address, with the advertised address in Contact and SDP."""
    with edge_engine(tmp_path, sip_host="::", advertise_address="127.0.0.1") as engine:
        run = await call_once(tmp_path, engine.sip_port)
        assert run.returncode == 0, run.explain()
    ok = run.received("SIP/2.0 200")[0].text
    assert header(ok, "Contact").startswith(f"<sip:127.0.0.1:{engine.sip_port}"), ok
    assert sdp_lines(ok, "c") == ["IN IP4 127.0.0.1"], ok
    assert "::ffff:" not in ok, ok


async def test_an_ipv6_caller_gets_ipv6_contact_and_sdp(tmp_path: pathlib.Path) -> None:
    """Bound to `::` and advertising `::1`, an IPv6 SIPp caller gets `[::1]` in Contact (brackets, RFC 3261
    25.1) and `c=IN IP6 ::1`, and its call goes through."""
    with edge_engine(tmp_path, sip_host="::", advertise_address="::1", trunks=["::1", "127.0.0.0/8"]) as engine:
        target = f"[::1]:{engine.sip_port}"
        scenario = tmp_path / "uac_call_v6.xml"
        scenario.write_text((SCENARIOS / "uac_call.xml").read_text().replace("__CALLER__", CALLER)
                            .replace("__TARGET__", "[remote_ip]:[remote_port]"))  # SIPp writes [::1]
        messages = tmp_path / "v6-messages.log"
        sipp = await asyncio.create_subprocess_exec(
            "sipp", "-sf", str(scenario), "-i", "::1", "-p", str(free_port()), "-m", "1", "-s", KEYS_NUMBER,
            "-nostdin", "-timeout", "20s", "-timeout_error", "-trace_msg", "-message_file", str(messages), target,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path)
        stdout, stderr = await asyncio.wait_for(sipp.communicate(), 30)
        assert sipp.returncode == 0, stderr.decode(errors="replace")[-2000:]
    ok = next(m.text for m in read_message_log(messages) if m.direction == "received" and m.status == 200)
    assert header(ok, "Contact").startswith(f"<sip:[::1]:{engine.sip_port}"), ok
    assert sdp_lines(ok, "c") == ["IN IP6 ::1"], ok
