"""host:port as SIP writes it: parsing what the config and listener URLs hold, formatting Via/Contact."""

from __future__ import annotations

import pytest

from ivr.errors import ConfigError
from ivr.sip.hostport import format_hostport, parse_hostport


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5060", ("127.0.0.1", 5060)),
        ("0.0.0.0", ("0.0.0.0", 5061)),
        ("[::1]:5070", ("::1", 5070)),
        ("[::]", ("::", 5061)),
        ("sip.example.com:0", ("sip.example.com", 0)),
    ],
    ids=["ipv4", "default-port", "ipv6", "ipv6-default-port", "name-ephemeral"],
)
def test_parse(text: str, expected: tuple[str, int]) -> None:
    assert parse_hostport(text, default_port=5061) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("127.0.0.1:sip", "bad address '127.0.0.1:sip': port 'sip' is not a number"),
        (":5060", "bad address ':5060': expected HOST:PORT"),
        ("127.0.0.1:70000", "bad address '127.0.0.1:70000': expected HOST:PORT"),
    ],
    ids=["port-not-a-number", "no-host", "port-out-of-range"],
)
def test_parse_errors_name_the_text(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_hostport(text, default_port=5060)
    assert str(caught.value) == message


def test_format_brackets_ipv6_only() -> None:
    assert format_hostport("::1", 5060) == "[::1]:5060"
    assert format_hostport("10.0.0.1", 5060) == "10.0.0.1:5060"


def test_round_trip() -> None:
    for host, port in (("::1", 5061), ("192.0.2.7", 5080)):
        assert parse_hostport(format_hostport(host, port), default_port=1) == (host, port)
