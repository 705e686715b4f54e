"""SIPVicious (svmap, svwar, svcrack) against a running engine, as an attacker on the internet would run it.

The engine trusts one trunk address (127.0.0.2); the attacker sends from 127.0.0.1 and the agent's
phone from 127.0.0.3, all over loopback.
"""

from __future__ import annotations

import json
import pathlib

import pytest

from tests.integration.engine.conftest import free_port
from tests.integration.security.peers import (
    AGENT,
    AGENT_PASSWORD,
    ATTACKER,
    TRUNK,
    register,
    secured_engine,
    sipvicious,
)

pytest.importorskip("sipvicious", reason="sipvicious (dev extra, pinned in pyproject.toml) is not installed")
pytestmark = pytest.mark.integration


def auth_failures(log: pathlib.Path, source: str) -> int:
    count = 0
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if "register_auth_failed" in line and json.loads(line).get("source") == source:
            count += 1
    return count


def test_svmap_finds_the_engine_only_from_a_trusted_source(tmp_path: pathlib.Path) -> None:
    with secured_engine(tmp_path) as engine:
        target = f"{ATTACKER}:{engine.sip_port}"
        from_internet = sipvicious("svmap", "-p", str(engine.sip_port), "-P", str(free_port()), ATTACKER, cwd=tmp_path)
        assert target not in from_internet and "found nothing" in from_internet, from_internet
        from_trunk = sipvicious("svmap", "-b", TRUNK, "-P", str(free_port()), "-p", str(engine.sip_port), ATTACKER,
                                cwd=tmp_path)
        assert target in from_trunk, from_trunk


def test_svwar_cannot_tell_agent_usernames_from_unknown_ones(tmp_path: pathlib.Path) -> None:
    names = tmp_path / "names.txt"
    names.write_text("a1001\nnobody7\na2001\nzz9999\nb3002\nadmin\n")
    with secured_engine(tmp_path) as engine:
        plain = sipvicious("svwar", "-d", str(names), "-P", str(free_port()), "-p", str(engine.sip_port),
                           ATTACKER, cwd=tmp_path)
        assert "authentication request for an unknown extension" in plain and "found nothing" in plain, plain
        forced = sipvicious("svwar", "--force", "-d", str(names), "-P", str(free_port()), "-p",
                            str(engine.sip_port), ATTACKER, cwd=tmp_path)
        # every name, agent or not, got the very answer the made-up "bad user" got: nothing stands out
        assert "found nothing" in forced and "a1001" not in forced.split("found nothing")[-1], forced


def test_svcrack_is_throttled_while_the_agent_still_registers(tmp_path: pathlib.Path) -> None:
    short = tmp_path / "short.txt"
    short.write_text("123456\ndemo-a1002-Xp2\n")
    long = tmp_path / "long.txt"
    long.write_text("\n".join([*(f"guess{i}" for i in range(40)), AGENT_PASSWORD, "after"]) + "\n")
    with secured_engine(tmp_path) as engine:
        assert register(engine) == 200  # the agent's phone is registered before the attack
        # the tool works: a short dictionary with the right password cracks a1002 (2 guesses)
        cracked = sipvicious("svcrack", "-u", "a1002", "-d", str(short), "-P", str(free_port()),
                             "-p", str(engine.sip_port), ATTACKER, cwd=tmp_path)
        assert "demo-a1002-Xp2" in cracked, cracked
        # 42 guesses at the agent, the password at #41: from then on nothing is checked
        attack = sipvicious("svcrack", "-u", AGENT, "-d", str(long), "-P", str(free_port()),
                            "-p", str(engine.sip_port), ATTACKER, cwd=tmp_path)
        assert AGENT_PASSWORD not in attack and "found nothing" in attack, attack
        assert auth_failures(engine.log, ATTACKER) <= 10
        # the agent's phone refreshes its registration during the lock-out of its name
        assert register(engine) == 200
        assert register(engine, algorithm="MD5") == 200
