"""Where API tokens come from (config, environment, the first-start file, issued ones) and the host names."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from ivr.config import EngineConfig
from ivr.errors import ConfigError
from ivr.web import Role, client_token, new_token_spec, server_access
from ivr.web.access import HostPolicy, TokenSource, parse_token_specs

DIGEST = hashlib.sha256(b"s3cret").hexdigest()


def test_config_tokens_are_kept_as_digests_and_admit_their_token(tmp_path: Path) -> None:
    config = EngineConfig(api_tokens=({"name": "wall", "role": "viewer", "sha256": DIGEST},))
    access = server_access(config, {}, tmp_path / "api-token")
    token = access.book.authenticate("s3cret")
    assert token is not None and (token.name, token.role, token.source) == ("wall", Role.VIEWER, TokenSource.CONFIG)
    assert access.book.authenticate("s3cret ") is None and access.book.authenticate(DIGEST) is None
    assert not (tmp_path / "api-token").exists()  # a configured token means no first-start token


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "wall", "role": "viewer", "sha256": "s3cret"}, "api_tokens[0]: sha256 must be the 64 hex digits"),
        ({"name": "wall", "role": "boss", "sha256": DIGEST},
         "api_tokens[0]: role must be one of viewer, supervisor, admin"),
        ({"name": "two words", "role": "viewer", "sha256": DIGEST}, "api_tokens[0]: name must be"),
        ({"name": "wall", "role": "viewer", "token": "s3cret"}, "api_tokens[0]: unknown key 'token'"),
        ("wall:viewer", "api_tokens[0]: expected a mapping"),
    ],
    ids=["token-not-digest", "unknown-role", "bad-name", "clear-token", "not-a-mapping"],
)  # fmt: skip
def test_bad_token_entries_name_the_entry(spec: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_token_specs([spec])  # type: ignore[list-item]
    assert str(caught.value).startswith(message)


def test_two_tokens_with_one_name_are_refused(tmp_path: Path) -> None:
    spec = {"name": "wall", "role": "viewer", "sha256": DIGEST}
    with pytest.raises(ConfigError, match="two API tokens are named 'wall'"):
        server_access(EngineConfig(api_tokens=(spec, spec)), {}, tmp_path / "api-token")


def test_the_environment_token_is_an_admin_named_env(tmp_path: Path) -> None:
    access = server_access(EngineConfig(), {"IVR_API_TOKEN": "from-env"}, tmp_path / "api-token")
    token = access.book.authenticate("from-env")
    assert token is not None and (token.name, token.role) == ("env", Role.ADMIN)
    assert not (tmp_path / "api-token").exists()


def test_with_no_token_the_first_start_writes_one_0600_and_later_starts_reuse_it(tmp_path: Path) -> None:
    path = tmp_path / "var" / "api-token"
    with capture_logs() as logs:
        first = server_access(EngineConfig(), {}, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = path.read_text().strip()
    assert secret.startswith("ivr_") and len(secret) > 40
    created = next(e for e in logs if e["event"] == "api_token_created")
    assert created["path"] == str(path.resolve()) and secret not in repr(logs)
    token = first.book.authenticate(secret)
    assert token is not None and (token.name, token.role, token.source) == ("local", Role.ADMIN, TokenSource.LOCAL)
    again = server_access(EngineConfig(), {}, path)
    assert again.book.authenticate(secret) is not None and path.read_text().strip() == secret


def test_issued_tokens_survive_a_restart_hashed_and_private(tmp_path: Path) -> None:
    path = tmp_path / "api-token"
    access = server_access(EngineConfig(), {"IVR_API_TOKEN": "boot"}, path)
    secret = access.book.issue("night-desk", Role.SUPERVISOR)
    saved = tmp_path / "api-tokens.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600 and secret not in saved.read_text()
    restarted = server_access(EngineConfig(), {"IVR_API_TOKEN": "boot"}, path)
    token = restarted.book.authenticate(secret)
    assert token is not None and (token.name, token.role, token.source) == ("night-desk", Role.SUPERVISOR,
                                                                            TokenSource.ISSUED)  # fmt: skip


def test_clients_take_the_environment_then_the_file(tmp_path: Path) -> None:
    path = tmp_path / "api-token"
    assert client_token({}, path) is None
    path.write_text("from-file\n")
    assert client_token({}, path) == "from-file"
    assert client_token({"IVR_API_TOKEN": " from-env "}, path) == "from-env"


def test_a_new_token_spec_admits_its_token(tmp_path: Path) -> None:
    secret, spec = new_token_spec("ops-wall", Role.VIEWER)
    access = server_access(EngineConfig(api_tokens=(spec,)), {}, tmp_path / "api-token")
    token = access.book.authenticate(secret)
    assert token is not None and token.name == "ops-wall" and secret not in repr(spec)


@pytest.mark.parametrize(
    ("bind", "extra", "host", "allowed"),
    [
        ("127.0.0.1", (), "127.0.0.1:8080", True),
        ("127.0.0.1", (), "localhost:8080", True),
        ("127.0.0.1", (), "[::1]:8080", True),
        ("127.0.0.1", (), "ivr.example.com", False),
        ("0.0.0.0", (), "0.0.0.0:8080", False),
        ("0.0.0.0", ("ivr.example.com",), "IVR.example.com.:443", True),
        ("10.1.2.3", (), "10.1.2.3:8080", True),
        ("10.1.2.3", ("*",), "anything.example", True),
    ],
)
def test_host_policy(bind: str, extra: tuple[str, ...], host: str, allowed: bool) -> None:
    assert HostPolicy.for_server(bind, extra).allows_host(host) is allowed


def test_tokens_and_host_names_from_a_config_file(tmp_path: Path) -> None:
    from ivr.config import load_config

    config = tmp_path / "ivr.yaml"
    config.write_text(
        f"api_tokens:\n  - {{name: wall, role: viewer, sha256: {DIGEST}}}\nhttp_allowed_hosts: [ivr.example.com]\n"
    )
    access = server_access(load_config(config, env={}), {}, tmp_path / "api-token")
    token = access.book.authenticate("s3cret")
    assert token is not None and token.role is Role.VIEWER
    assert access.hosts.allows_host("ivr.example.com:443") and not access.hosts.allows_host("other.example.com")
