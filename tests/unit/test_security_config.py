"""The registrar's and callbacks' config keys (issue 15) build what the engine uses, and bad values fail."""

from __future__ import annotations

import datetime

import pytest

from ivr.callback_policy import CallbackPolicy, CallbackVerdict
from ivr.config import EngineConfig, SettingError
from ivr.sip.registrar import Registrar


def test_defaults_build_a_registrar_and_a_callback_policy() -> None:
    config = EngineConfig()
    registrar = Registrar("ivr", {"a": "pw"}, nonce_secret=b"k", **config.registrar_options())
    assert registrar.algorithms == ("MD5", "SHA-256")
    assert config.registrar_options()["guess_limits"].limit == 10
    policy = CallbackPolicy(config.callback_rules())
    assert policy.check("13800138000", datetime.date(2026, 1, 1)) is CallbackVerdict.ALLOWED
    assert policy.check("+88216000111", datetime.date(2026, 1, 1)) is CallbackVerdict.NOT_ALLOWED


@pytest.mark.parametrize(("key", "value"), [("sip_digest_algorithms", ("SHA-512",)), ("sip_digest_algorithms", ()),
                                            ("register_guesses_per_minute", 0), ("callback_numbers", ("1[",)),
                                            ("callback_limit_per_day", 0)])
def test_bad_values_name_their_key(key: str, value: object) -> None:
    with pytest.raises(SettingError, match=key):
        EngineConfig(**{key: value})  # type: ignore[arg-type]
