"""Where the real peer programs the integration tests talk to are on this machine: the one place that looks.

Every test's skip condition asks here, so a peer that resolves to another path or version (PostgreSQL 16
under /usr/lib/postgresql/16/bin, Chromium installed as `chromium-browser`) is found rather than silently
skipped; and when it really is absent, the reason names the Debian package that provides it. With
`IVR_REQUIRE_PEERS=1` (CI, `make test`) the root conftest turns any such skip into a failure.
"""

from __future__ import annotations

import glob
import os
import pathlib
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "BARESIP",
    "CHROMIUM",
    "DOT",
    "ESPEAK_NG",
    "FESTIVAL",
    "KAMAILIO",
    "LINPHONEC",
    "POSTGRESQL",
    "REDIS_SERVER",
    "SIPP",
    "SIPP_PCAPS",
    "Peer",
    "postgres_bin_dirs",
]

# Debian's sip-tester puts SIPp's sample captures (RFC 2833 DTMF, G.711 audio) in the first; upstream in the others.
_SIPP_PCAP_DIRS = ("/usr/share/sip-tester", "/usr/share/sip-tester/pcap", "/usr/share/sipp/pcap")


@dataclass(frozen=True, slots=True)
class Peer:
    """A program (or data a program ships) that a test needs, and how to get it when it is missing."""

    name: str
    """What the skip reason calls it: `sipp`, `PostgreSQL (initdb)`..."""
    install: str
    """How to get it, quoted in the skip reason: `apt install sip-tester`."""
    locate: Callable[[], str | None]
    """Finds it now: its path, or None."""

    @property
    def path(self) -> str | None:
        return self.locate()

    @property
    def missing(self) -> bool:
        return self.locate() is None

    @property
    def reason(self) -> str:
        return f"{self.name} not found ({self.install})"

    def require(self) -> str:
        """Its path, for code past the skip condition (a missing peer there is a bug in the test)."""
        found = self.locate()
        if found is None:
            raise FileNotFoundError(self.reason)
        return found


def _first_program(*names: str) -> Callable[[], str | None]:
    def locate() -> str | None:
        for name in names:
            found = shutil.which(name)
            if found is not None:
                return found
        return None

    return locate


def _version_key(directory: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", pathlib.Path(directory).parent.name))


def postgres_bin_dirs(pattern: str = "/usr/lib/postgresql/*/bin") -> list[pathlib.Path]:
    """Debian's PostgreSQL binary folders, newest major version first (16 before 15, 15 before 9.6)."""
    return [pathlib.Path(d) for d in sorted(glob.glob(pattern), key=_version_key, reverse=True)]


def _postgres_bin() -> str | None:
    """A folder holding `initdb` and `pg_ctl`: `IVR_PG_BIN` if set (and then only it), else Debian's
    newest, else wherever `initdb` is on PATH (other distributions put it there)."""
    override = os.environ.get("IVR_PG_BIN")
    candidates: Sequence[pathlib.Path]
    if override:
        candidates = [pathlib.Path(override)]
    else:
        on_path = shutil.which("initdb")
        candidates = [*postgres_bin_dirs(), *([pathlib.Path(on_path).parent] if on_path else [])]
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return str(directory)
    return None


def _sipp_pcaps() -> str | None:
    for directory in _SIPP_PCAP_DIRS:
        if pathlib.Path(directory, "dtmf_2833_1.pcap").is_file():
            return directory
    return None


SIPP = Peer("sipp", "apt install sip-tester", _first_program("sipp"))
SIPP_PCAPS = Peer("SIPp's sample captures (dtmf_2833_*.pcap)", "apt install sip-tester", _sipp_pcaps)
BARESIP = Peer("baresip", "apt install baresip", _first_program("baresip"))
LINPHONEC = Peer("linphonec", "apt install linphone-cli", _first_program("linphonec"))
KAMAILIO = Peer("kamailio", "apt install kamailio", _first_program("kamailio"))
REDIS_SERVER = Peer("redis-server", "apt install redis-server", _first_program("redis-server"))
POSTGRESQL = Peer(
    "PostgreSQL (initdb, pg_ctl under /usr/lib/postgresql/*/bin, or $IVR_PG_BIN)",
    "apt install postgresql",
    _postgres_bin,
)
CHROMIUM = Peer("chromium", "apt install chromium", _first_program("chromium", "chromium-browser"))
ESPEAK_NG = Peer("espeak-ng", "apt install espeak-ng", _first_program("espeak-ng"))
FESTIVAL = Peer("festival's text2wave", "apt install festival festvox-kallpc16k", _first_program("text2wave"))
DOT = Peer("graphviz (dot)", "apt install graphviz", _first_program("dot"))
