"""`ivr agents passwd ID`: the agents file ends up with HA1 digests the registrar accepts, no password."""

from __future__ import annotations

import io
import pathlib
import shutil

import pytest

from ivr import cli
from ivr.acd.config import load_config
from ivr.agent_passwords import set_agent_password
from ivr.errors import ConfigError
from ivr.sip.registrar import AGENT_REALM, Registrar
from tests.unit.sip.test_registrar_hardening import answer

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def files(tmp_path: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    agents, queues = tmp_path / "agents.yaml", tmp_path / "queues.yaml"
    shutil.copy(ROOT / "config/agents.yaml", agents)
    shutil.copy(ROOT / "config/queues.yaml", queues)
    return agents, queues


def test_cli_writes_ha1_digests_and_drops_the_password(files: tuple[pathlib.Path, pathlib.Path],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    agents, queues = files
    before = agents.read_text()
    monkeypatch.setattr("sys.stdin", io.StringIO("n3w-Secret\n"))
    assert cli.main(["agents", "passwd", "a1002", "--stdin", "--set", f"agents_file={agents}",
                     "--set", f"queues_file={queues}"]) == 0
    after = agents.read_text()
    assert "demo-a1002-Xp2" not in after and "n3w-Secret" not in after
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b]
    assert len(changed) == 1  # comments and every other agent untouched
    sip = load_config(agents, queues).agents["a1002"].sip
    assert sip.password is None and sip.ha1_md5 and sip.ha1_sha256
    registrar = Registrar(AGENT_REALM, {"a1002": sip}, nonce_secret=b"k")
    for algorithm in ("SHA-256", "MD5"):
        _, response = answer(registrar, user="a1002", password="n3w-Secret", algorithm=algorithm,
                             call_id=algorithm, contact="<sip:a1002@192.0.2.7>")
        assert response.status == 200


def test_block_style_sip_entry_is_rewritten(files: tuple[pathlib.Path, pathlib.Path]) -> None:
    agents, queues = files
    text = agents.read_text().replace("    sip: {username: a1001, password: demo-a1001-Kq7}\n",
                                      "    sip:\n      username: a1001\n      password: demo-a1001-Kq7  # old\n")
    agents.write_text(text)
    set_agent_password(agents, queues, "a1001", "pw-2")
    sip = load_config(agents, queues).agents["a1001"].sip
    assert sip.username == "a1001" and sip.password is None and sip.ha1_sha256


def test_unknown_agent_and_empty_password_are_refused(files: tuple[pathlib.Path, pathlib.Path]) -> None:
    agents, queues = files
    with pytest.raises(ConfigError, match="no agent 'zz'"):
        set_agent_password(agents, queues, "zz", "pw")
    with pytest.raises(ConfigError, match="empty"):
        set_agent_password(agents, queues, "a1001", "")
