"""`ivr agents passwd ID`: replace an agent's SIP secret in the agents file by its HA1 digests.

The registrar needs only H(username:realm:password) per algorithm (RFC 7616), so the file need not
hold the password: whoever reads it cannot register as the agent elsewhere with another realm, and the
password never sits in a config repository. The edit is made on the text, line by line, so comments
and layout of the rest of the file stay as they were; the result is parsed again before it replaces
the file (atomically, same mode).
"""

from __future__ import annotations

import os
import pathlib
import re
import tempfile

from ivr.acd.config import load_config
from ivr.errors import ConfigError
from ivr.sip.digest import compute_ha1
from ivr.sip.registrar import AGENT_REALM

_ID_LINE = re.compile(r"^(?P<indent>\s*)(?:-\s+)?id:\s*['\"]?(?P<id>[^'\"#\s]+)")
_SIP_LINE = re.compile(r"^(?P<indent>\s*)sip:\s*(?P<rest>.*)$")


def agent_ha1(username: str, password: str, realm: str = AGENT_REALM) -> dict[str, str]:
    return {"ha1_md5": compute_ha1(username, realm, password, "MD5"),
            "ha1_sha256": compute_ha1(username, realm, password, "SHA-256")}


def set_agent_password(path: pathlib.Path, queues: pathlib.Path, agent_id: str, password: str, *,
                       realm: str = AGENT_REALM) -> str:
    """Write `agent_id`'s HA1 digests (no password) into the agents file `path` (checked together with the
    queues file, as the engine loads them); returns the SIP username."""
    if not password:
        raise ConfigError("the new password is empty")
    agents = load_config(path, queues).agents
    if agent_id not in agents:
        raise ConfigError(f"{path}: no agent {agent_id!r} (agents: {', '.join(sorted(agents))})")
    username = agents[agent_id].sip.username
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    start, end = _agent_lines(lines, agent_id, path)
    secrets = agent_ha1(username, password, realm)
    new = _replace_sip(lines[start:end], username, secrets, path)
    text = "".join(lines[:start] + new + lines[end:])
    _write_checked(path, queues, text, agent_id, secrets)
    return username


def _agent_lines(lines: list[str], agent_id: str, path: pathlib.Path) -> tuple[int, int]:
    """[start, end) of the agent's list item: from its `- ` line to the next line as far left."""
    for i, line in enumerate(lines):
        m = _ID_LINE.match(line)
        if m is None or m["id"] != agent_id:
            continue
        start = i
        while start > 0 and not lines[start].lstrip().startswith("- "):
            start -= 1
        dash = len(lines[start]) - len(lines[start].lstrip())
        end = i + 1
        while end < len(lines):
            stripped = lines[end].lstrip()
            if stripped and not stripped.startswith("#") and len(lines[end]) - len(stripped) <= dash:
                break
            end += 1
        return start, end
    raise ConfigError(f"{path}: cannot find the line `id: {agent_id}`")


def _replace_sip(block: list[str], username: str, secrets: dict[str, str], path: pathlib.Path) -> list[str]:
    for i, line in enumerate(block):
        m = _SIP_LINE.match(line)
        if m is None:
            continue
        indent = m["indent"]
        fields = {"username": username, **secrets}
        if m["rest"].startswith("{"):
            flow = ", ".join(f"{k}: {v}" for k, v in fields.items())
            return [*block[:i], f"{indent}sip: {{{flow}}}\n", *block[i + 1:]]
        if m["rest"].strip() and not m["rest"].lstrip().startswith("#"):
            break
        end = i + 1
        while end < len(block) and (not block[end].strip() or len(block[end]) - len(block[end].lstrip()) > len(indent)):
            end += 1
        child = indent + "  "
        return [*block[:i + 1], *(f"{child}{k}: {v}\n" for k, v in fields.items()), *block[end:]]
    raise ConfigError(f"{path}: cannot find the agent's `sip:` entry to rewrite")


def _write_checked(path: pathlib.Path, queues: pathlib.Path, text: str, agent_id: str,
                   secrets: dict[str, str]) -> None:
    mode = path.stat().st_mode & 0o7777
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    tmp = pathlib.Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, mode)
        sip = load_config(tmp, queues).agents[agent_id].sip
        if (sip.password, sip.ha1_md5, sip.ha1_sha256) != (None, secrets["ha1_md5"], secrets["ha1_sha256"]):
            raise ConfigError(f"{path}: rewriting agent {agent_id!r} went wrong; the file is unchanged")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
