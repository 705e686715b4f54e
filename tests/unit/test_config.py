"""The engine config: precedence (flags > env > file > defaults), typed errors with file lines, paths
relative to the file, sources and masking for `ivr config show`."""

from __future__ import annotations

import pathlib

import pytest

from ivr.config import (
    AcdBackendKind,
    EngineConfig,
    Source,
    check_paths,
    describe,
    mask_url,
    resolve_config,
)
from ivr.errors import ConfigError


def write(tmp_path: pathlib.Path, text: str, name: str = "ivr.yaml") -> pathlib.Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_no_file_gives_the_defaults_from_every_source_default() -> None:
    loaded = resolve_config(None, env={})
    assert loaded.config == EngineConfig()
    assert set(s.kind for s in loaded.sources.values()) == {"default"}


def test_defaults_do_not_depend_on_the_working_directory() -> None:
    config = EngineConfig()
    for path in (config.flows_dir, config.dialects_dir, config.prompts_dir, config.agents_file, config.queues_file):
        assert path.is_absolute() and path.exists(), path
    assert (config.flows_dir / "hotline.yaml").is_file()


def test_file_only(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "sip_port: 5070\nhttp_host: 0.0.0.0\nacd_backend: redis\n")
    loaded = resolve_config(path, env={})
    assert (loaded.config.sip_port, loaded.config.http_host) == (5070, "0.0.0.0")
    assert loaded.config.acd_backend is AcdBackendKind.REDIS
    assert loaded.sources["sip_port"] == Source("file", f"{path}:1")
    assert loaded.sources["acd_backend"] == Source("file", f"{path}:3")
    assert loaded.sources["http_port"].kind == "default"


def test_env_beats_file(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "sip_port: 5070\nmax_calls: 10\n")
    loaded = resolve_config(path, env={"IVR_SIP_PORT": "5080", "IVR_LOG_PII": "yes", "IVR_API_TOKEN": "not-a-key"})
    assert loaded.config.sip_port == 5080 and loaded.sources["sip_port"] == Source("env", "IVR_SIP_PORT")
    assert loaded.config.max_calls == 10
    assert loaded.config.log_pii is True


def test_flag_beats_env_and_file_and_a_flag_not_given_changes_nothing(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "sip_port: 5070\nhttp_port: 9000\n")
    loaded = resolve_config(path, env={"IVR_SIP_PORT": "5080"}, flags={"sip_port": (5090, "--sip")})
    assert loaded.config.sip_port == 5090 and loaded.sources["sip_port"] == Source("flag", "--sip")
    assert loaded.config.http_port == 9000 and loaded.sources["http_port"].kind == "file"


def test_a_string_port_is_refused_with_its_file_line(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "# site\nsip_port: \"x\"\n")
    with pytest.raises(ConfigError) as caught:
        resolve_config(path, env={})
    assert str(caught.value) == f"{path}:2: sip_port: expected a whole number, got 'x' (str)"


def test_every_wrong_setting_is_reported_at_once(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "log_pii: maybe\nmax_calls: 1.5\nflows: x\nasr_models: [a]\n")
    with pytest.raises(ConfigError) as caught:
        resolve_config(path, env={"IVR_HTTP_PORT": "eighty"})
    lines = str(caught.value).splitlines()
    assert lines == [
        f"{path}:1: log_pii: expected true or false, got 'maybe'",
        f"{path}:2: max_calls: expected a whole number, got 1.5 (float)",
        f"{path}:3: unknown setting 'flows' (did you mean 'flows_dir'?)",
        f"{path}:4: asr_models: expected a mapping, got ['a'] (list)",
        "IVR_HTTP_PORT: http_port: expected a whole number, got 'eighty' (str)",
    ]


def test_a_range_check_names_the_line_of_the_value(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "sip_port: 5060\nhttp_port: 99999\n")
    with pytest.raises(ConfigError, match=rf"^{path}:2: http_port 99999 is not a port"):
        resolve_config(path, env={})


def test_a_yaml_syntax_error_names_the_line_where_the_construct_opened(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "sip_port: 5060\ntrunks: [10.0.0.1,\n\n\nhttp_port: 80\n")
    with pytest.raises(ConfigError) as caught:
        resolve_config(path, env={})
    assert str(caught.value).startswith(f"{path}:2: YAML syntax error: while parsing a flow sequence: ")
    assert str(caught.value).endswith("(detected at line 6)")  # the end of the file


def test_a_top_level_list_is_refused(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError, match=r":1: expected a mapping of settings"):
        resolve_config(write(tmp_path, "- a\n"), env={})


def test_paths_in_a_file_are_relative_to_the_file(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "flows_dir: flows\ndb: var/ivr.db\nprompt_cache_dir: ~/cache\n", "site/ivr.yaml")
    config = resolve_config(path, env={}, cwd=pathlib.Path("/")).config
    assert config.flows_dir == tmp_path / "site" / "flows"
    assert config.db == str(tmp_path / "site" / "var" / "ivr.db")
    assert config.prompt_cache_dir == pathlib.Path("~/cache").expanduser()


def test_paths_from_env_and_flags_are_relative_to_the_working_directory(tmp_path: pathlib.Path) -> None:
    config = resolve_config(None, env={"IVR_FLOWS_DIR": "f"}, flags={"db": ("d.db", "--db")}, cwd=tmp_path).config
    assert config.flows_dir == tmp_path / "f"
    assert config.db == str(tmp_path / "d.db")


def test_a_postgresql_url_is_kept_as_is_and_other_urls_are_refused(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "db: postgresql://ivr@db.example/ivr\n")
    assert resolve_config(path, env={}).config.db == "postgresql://ivr@db.example/ivr"
    with pytest.raises(ConfigError, match=r"IVR_DB: db 'mysql://x/y': expected a file path or a postgresql:// URL"):
        resolve_config(None, env={"IVR_DB": "mysql://x/y"})


def test_env_values_are_typed_like_yaml() -> None:
    config = resolve_config(None, env={
        "IVR_HTTP_ALLOWED_HOSTS": "ivr.example, ops.example", "IVR_ASR_MODELS": "{yue: /m/yue}",
        "IVR_LOG_JSON": "false", "IVR_DRAIN_TIMEOUT_S": "90",
    }).config
    assert config.http_allowed_hosts == ("ivr.example", "ops.example")
    assert config.asr_models == {"yue": "/m/yue"}
    assert config.log_json is False
    assert config.drain_timeout_s == 90.0


def test_show_masks_passwords_and_tokens_and_says_where_each_value_came_from(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "redis_url: redis://:hunter2@cache:6379/0\n"
                           "api_tokens: [{name: ops, role: admin, sha256: " + "a" * 64 + "}]\n")
    rows = {k: (v, s) for k, v, s in describe(resolve_config(path, env={"IVR_DB": "postgresql://ivr:pw@db/ivr"}))}
    assert rows["redis_url"] == ("redis://:***@cache:6379/0", f"file {path}:1")
    assert rows["db"] == ("postgresql://ivr:***@db/ivr", "env IVR_DB")
    assert rows["api_tokens"][0] == "***"
    assert rows["sip_port"] == ("5060", "default")
    assert mask_url("postgresql://ivr@db/ivr") == "postgresql://ivr@db/ivr"


def test_check_paths_names_a_missing_folder_with_its_line(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "sip_port: 5060\nflows_dir: nowhere\n")
    assert check_paths(resolve_config(path, env={})) == [
        f"{path}:2: flows_dir: {tmp_path / 'nowhere'} does not exist"
    ]
    assert check_paths(resolve_config(None, env={})) == []


def test_trunks_are_addresses_or_cidrs_and_make_the_sip_edge_policy(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path, "trunks: [192.0.2.10, 10.20.0.0/24, '2001:db8::/32']\nuntrusted_invites: forbidden\n")
    policy = resolve_config(path, env={}).config.edge_policy()
    assert policy.trusted == ("192.0.2.10", "10.20.0.0/24", "2001:db8::/32")
    assert policy.untrusted_invite.value == "forbidden"
    with pytest.raises(ConfigError, match=rf"^{path}:1: trunks: 'sbc.example' is not an address or CIDR"):
        resolve_config(write(tmp_path, "trunks: [sbc.example]\n"), env={})
    assert resolve_config(None, env={"IVR_TRUNKS": "10.0.0.1, 10.0.0.2"}).config.trunks == ("10.0.0.1", "10.0.0.2")


def test_the_decode_lag_bound_defaults_to_the_backlogs_and_is_refused_out_of_range(tmp_path: pathlib.Path) -> None:
    from ivr.speech.backlog import MAX_LAG_S

    assert EngineConfig().asr_max_lag_s == MAX_LAG_S
    assert resolve_config(write(tmp_path, "asr_max_lag_s: 0.5\n"), env={}).config.asr_max_lag_s == 0.5
    for bad in ("0", "61"):
        with pytest.raises(ConfigError, match=rf":1: asr_max_lag_s {bad}(\.0)? is not more than 0 and at most 60"):
            resolve_config(write(tmp_path, f"asr_max_lag_s: {bad}\n", name=f"bad{bad}.yaml"), env={})
