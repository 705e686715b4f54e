"""An agent registered through a proxy on one cluster node is rung through that proxy by every node
(docs/CLUSTER.md "Agents"): the registering node logs the agent into the shared ACD with its contact
and the REGISTER's Path as Route URI-headers; a node with no binding of its own sends by them."""

from __future__ import annotations

import asyncio

from ivr.clock import FakeClock
from ivr.engine.agents import reachable_at
from ivr.sip.message import Request
from ivr.sip.parser import parse_message
from ivr.sip.registrar import Binding
from ivr.sip.uri import SipUri
from ivr.testing.sipharness import MemoryNetwork, attach_harness

OFFER = (
    b"v=0\r\no=engine 1 1 IN IP4 10.0.0.12\r\ns=-\r\nc=IN IP4 10.0.0.12\r\nt=0 0\r\n"
    b"m=audio 41000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)
# Kamailio's add_path_received(): the proxy, and where the phone's REGISTER really came from (its NAT).
PATH = "<sip:10.0.0.1:5060;lr;received=sip:203.0.113.9:40312>"
CONTACT = "sip:c1@192.168.1.20:5062;transport=udp"


def binding(path: tuple[str, ...]) -> Binding:
    return Binding("c1", SipUri.parse(CONTACT), 3600.0, "reg-1", 2, path)


def test_a_binding_without_a_path_is_reached_at_its_contact() -> None:
    assert reachable_at(binding(())) == CONTACT


def test_the_path_travels_with_the_contact_as_route_uri_headers() -> None:
    uri = SipUri.parse(reachable_at(binding((PATH,))))
    assert str(uri).startswith(CONTACT + "?Route=%3Csip%3A10.0.0.1%3A5060%3Blr%3Breceived%3Dsip%3A")
    assert [(name, value) for name, value in uri.headers] == [("Route", uri.headers[0][1])]
    assert uri.user == "c1" and uri.host == "192.168.1.20" and uri.port == 5062


async def test_a_node_that_did_not_take_the_registration_rings_the_agent_through_the_proxy() -> None:
    network = MemoryNetwork(FakeClock())
    other_node = attach_harness(network, ("10.0.0.12", 5060), users={"c1": "pw"})  # no binding of c1 here
    proxy = network.transport(("10.0.0.1", 5060))
    seen: list[bytes] = []
    proxy.deliver = lambda data, source: seen.append(data)  # type: ignore[method-assign]
    path = (PATH, "<sip:10.0.0.2:5060;lr>")
    other_node.ua.invite(reachable_at(binding(path)), OFFER)
    for _ in range(20):
        await asyncio.sleep(0)  # the memory network delivers by call_soon
    (data,) = seen
    invite = parse_message(data)
    assert isinstance(invite, Request)
    assert str(invite.uri) == CONTACT  # loose routing: the contact is the Request-URI, without the headers
    assert invite.headers.get("To") is not None and "?" not in invite.headers.get("To", "")
    assert invite.headers.get_all("Route") == list(path)
