"""Who dialled a feature code: an agents.yaml user's registered phone (its From user, from the address it
registered from); a spoofed From from anywhere else is nobody's."""

from __future__ import annotations

from engine_fakes import one_agent_acd_config

from ivr.engine.agents import AgentRegistrar
from ivr.sip.message import Request
from ivr.sip.parser import parse_message
from tests.unit.sip.test_registrar import authorize, register

PHONE = ("127.0.0.1", 5072)


def invite(from_user: str) -> Request:
    text = (
        "INVITE sip:*21@127.0.0.1:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5072;branch=z9hG4bK-i1\r\n"
        f"From: <sip:{from_user}@127.0.0.1:5060>;tag=t1\r\n"
        "To: <sip:*21@127.0.0.1:5060>\r\nCall-ID: code-1\r\nCSeq: 1 INVITE\r\n"
        "Contact: <sip:a1@127.0.0.1:5072>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


def test_only_the_agents_registered_phone_is_the_agent() -> None:
    changes: list[tuple[str, str | None]] = []
    registrar = AgentRegistrar(one_agent_acd_config(), lambda agent, contact: changes.append((agent, contact)),
                               b"secret")
    assert registrar.phone_user(invite("a1"), PHONE, now=1.0) is None  # not registered yet
    response = authorize(registrar, register("a1", contact="<sip:a1@127.0.0.1:5072>"), now=0.0,
                         username="a1", password="pw")
    assert response.status == 200 and changes == [("a1", "sip:a1@127.0.0.1:5072")]
    assert registrar.phone_user(invite("a1"), PHONE, now=1.0) == "a1"
    assert registrar.phone_user(invite("a1"), ("127.0.0.1", 5999), now=1.0) is None, "same From, other address"
    assert registrar.phone_user(invite("a1"), ("10.9.9.9", 5072), now=1.0) is None
    assert registrar.phone_user(invite("boss"), PHONE, now=1.0) is None, "not an agents.yaml user"
