"""Issue 16 edge settings: listeners, advertised addresses, TLS files and SRTP policy, checked at load."""

from __future__ import annotations

import json
import pathlib

import pytest

from ivr.cli import main
from ivr.config import EngineConfig, resolve_config
from ivr.errors import ConfigError
from ivr.sip.endpoint import SipEndpoint, TransportKind
from ivr.sip.listen import Listener, advertised_host, parse_listener


@pytest.mark.parametrize(("text", "expected"), [
    ("udp://0.0.0.0:5060", Listener(TransportKind.UDP, "0.0.0.0", 5060)),
    ("TCP://10.0.0.5", Listener(TransportKind.TCP, "10.0.0.5", 5060)),
    ("tls://[::]:5071", Listener(TransportKind.TLS, "::", 5071)),
    ("tls://sip.example.com", Listener(TransportKind.TLS, "sip.example.com", 5061)),
])
def test_listener_urls(text: str, expected: Listener) -> None:
    assert parse_listener(text) == expected


@pytest.mark.parametrize("text", ["sctp://0.0.0.0:5060", "0.0.0.0:5060", "tcp://", "tcp://host:x", "tcp://host:70000"])
def test_bad_listener_urls_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="listener"):
        parse_listener(text)


def test_the_advertised_host_is_never_a_wildcard() -> None:
    assert advertised_host("0.0.0.0", "203.0.113.7") == "203.0.113.7"
    assert advertised_host("10.0.0.5") == "10.0.0.5"
    for wildcard in ("0.0.0.0", "::"):
        assert advertised_host(wildcard) not in ("0.0.0.0", "::")


def test_via_and_contact_bracket_an_ipv6_address() -> None:
    endpoint = SipEndpoint(("2001:db8::7", 5061), transport=TransportKind.TLS)
    assert endpoint.contact("ivr") == "<sip:ivr@[2001:db8::7]:5061;transport=tls>"
    assert endpoint.via().startswith("SIP/2.0/TLS [2001:db8::7]:5061;branch=")


def test_listeners_start_with_the_udp_one_on_sip_host_and_port() -> None:
    config = EngineConfig(sip_host="0.0.0.0", sip_port=5070, listen=("tcp://0.0.0.0:5070",),
                          media_advertise_address="198.51.100.2", advertise_address="203.0.113.7")
    assert config.sip_listeners() == [Listener(TransportKind.UDP, "0.0.0.0", 5070),
                                      Listener(TransportKind.TCP, "0.0.0.0", 5070)]
    assert config.media_address() == "198.51.100.2"
    assert config.replace(media_advertise_address=None).media_address() == "203.0.113.7"


def write(tmp: pathlib.Path, text: str) -> pathlib.Path:
    path = tmp / "ivr.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "line", "message"), [
    ("sip_port: 5060\nlisten: [tls://0.0.0.0:5061]\n", 2, "listen: a tls:// listener needs tls_certificate"),
    ("listen: [tcp://0.0.0.0:5060, ws://0.0.0.0:80]\n", 1, "listener 'ws://0.0.0.0:80': expected udp://, tcp:// or tls://"),
    ("sip_host: 0.0.0.0\nadvertise_address: 0.0.0.0\n", 2, "advertise_address '0.0.0.0': peers cannot send to that"),
    ("srtp: maybe\n", 1, "srtp 'maybe' is not one of: off, optional, required"),
])
def test_wrong_edge_settings_name_their_line(tmp_path: pathlib.Path, text: str, line: int, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        resolve_config(path, env={})
    assert str(caught.value).startswith(f"{path}:{line}: ") and message in str(caught.value)


def test_tls_files_in_a_config_file_are_relative_to_it(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "listen: [tls://0.0.0.0:5061]\n"
                           "tls_certificate: certs/sip.pem\ntls_private_key: certs/sip.key\n")
    config = resolve_config(path, env={}).config
    assert config.tls_certificate == tmp_path / "certs" / "sip.pem"
    assert config.tls_private_key == tmp_path / "certs" / "sip.key"


def test_advertise_flag_sets_advertise_address(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "show", "--json", "--advertise", "203.0.113.7"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["advertise_address"] == {"value": "203.0.113.7", "source": "flag --advertise"}


def test_a_min_se_above_session_expires_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="min_se 100 must be between 1 and session_expires 60") as caught:
        EngineConfig(session_expires=60, min_se=100)
    assert getattr(caught.value, "key", None) == "min_se"
