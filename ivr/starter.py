"""`ivr init DIR`: a starter site an operator edits, and the systemd unit that runs it.

The site is the demo hotline shipped in the package (flows, dialect packs, recorded prompts, agents
and queues) with an `ivr.yaml` whose paths are relative to itself, so `ivr serve --config
DIR/ivr.yaml` works from any working directory. The same unit template renders `deploy/ivr.service`
(the production sample): one text, so the two cannot drift apart.
"""

from __future__ import annotations

import getpass
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ivr.config import DEMO_DIR, EngineConfig
from ivr.errors import ConfigError

SITE_FOLDERS = ("flows", "dialects", "prompts")
STOP_MARGIN_S = 30
"""How much longer than `drain_timeout_s` the service manager waits before SIGKILL: closing the
store, the ACD and the web server after the last call takes a few seconds."""
DRAIN_TIMEOUT_S = 300

CONFIG_TEMPLATE = """\
# Engine settings of this site (every key: docs/CONFIG.md). Relative paths are relative to this file.
# Precedence: command-line flags > IVR_<KEY> environment variables > this file > defaults.
flows_dir: flows
dialects_dir: dialects
prompts_dir: prompts
prompt_cache_dir: var/prompt-cache
model_cache_dir: var/models     # the English speech model converted at the first start (~210 MB; sites may share one)
agents_file: config/agents.yaml
queues_file: config/queues.yaml
db: var/ivr.db                  # or postgresql://ivr@db-host/ivr for a cluster (password: IVR_DB in the environment)
sip_host: 127.0.0.1             # 0.0.0.0 to answer on every interface
sip_port: 5060
http_host: 127.0.0.1
http_port: 8080
trunks: [127.0.0.0/8, "::1"]    # who may send INVITEs: add your SBC / SIP proxy addresses (CIDRs)
node_id: {node_id}
workers: null                   # engine processes sharing sip_port: one per CPU (1: one process; OPERATIONS.md)
drain_timeout_s: {drain_s}            # below TimeoutStopSec of ivr.service ({stop_s} s)
retention_days: 180
log_pii: false
"""

UNIT_TEMPLATE = """\
# systemd unit for the IVR engine. Install: cp ivr.service /etc/systemd/system/ && systemctl daemon-reload
# && systemctl enable --now ivr.  Logs: journalctl -u ivr (JSON lines).
[Unit]
Description=Hotline IVR engine (SIP, media, flows, agent queues)
After=network-online.target postgresql.service redis-server.service
Wants=network-online.target

[Service]
Type=simple
User={user}
Group={user}
WorkingDirectory={workdir}
# Secrets (IVR_API_TOKEN, IVR_DB with its password) stay out of the config file.
EnvironmentFile=-{env_file}
Environment=PYTHONUNBUFFERED=1
ExecStart={ivr} serve --config {config} --log-json
# SIGTERM drains: new calls get 503, calls in progress finish, for up to drain_timeout_s ({drain_s} s).
# The stop timeout is longer, so systemd never kills a call that is still draining.
KillSignal=SIGTERM
KillMode=mixed
TimeoutStopSec={stop_s}
Restart=on-failure
RestartSec=2
LimitNOFILE=65536
{capabilities}NoNewPrivileges=true
PrivateTmp=true
ProtectSystem=strict
{protect_home}ReadWritePaths={state}

[Install]
WantedBy=multi-user.target
"""


@dataclass(slots=True, frozen=True)
class UnitSpec:
    """What differs between one site's unit and another's."""

    user: str
    workdir: Path
    config: Path
    state: Path
    """The folder the engine writes (database, prompt cache, API token): the only writable one."""
    env_file: Path
    ivr: str
    drain_timeout_s: float
    lowest_port: int


def render_unit(spec: UnitSpec) -> str:
    """The unit text. Binding a port below 1024 is the only reason to grant a capability."""
    capabilities = (
        "AmbientCapabilities=CAP_NET_BIND_SERVICE\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\n"
        if spec.lowest_port < 1024 else "CapabilityBoundingSet=\n"
    )
    in_home = spec.workdir.is_relative_to("/home") or spec.workdir.is_relative_to("/root")
    return UNIT_TEMPLATE.format(
        user=spec.user, workdir=spec.workdir, config=spec.config, state=spec.state, env_file=spec.env_file,
        ivr=spec.ivr, drain_s=_seconds(spec.drain_timeout_s), stop_s=stop_timeout_s(spec.drain_timeout_s),
        capabilities=capabilities, protect_home="" if in_home else "ProtectHome=true\n",
    )


def stop_timeout_s(drain_timeout_s: float) -> int:
    """The service manager's stop timeout for a drain timeout: the drain plus a margin."""
    return int(drain_timeout_s) + STOP_MARGIN_S


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def production_unit() -> str:
    """`deploy/ivr.service`: a pip install in /opt/ivr, config in /etc/ivr, state in /var/lib/ivr."""
    return render_unit(UnitSpec(
        user="ivr", workdir=Path("/var/lib/ivr"), config=Path("/etc/ivr/ivr.yaml"), state=Path("/var/lib/ivr"),
        env_file=Path("/etc/ivr/ivr.env"), ivr="/opt/ivr/bin/ivr", drain_timeout_s=DRAIN_TIMEOUT_S,
        lowest_port=5060,
    ))


@dataclass(slots=True, frozen=True)
class Site:
    root: Path
    config: Path
    unit: Path


def write_site(root: Path, *, force: bool = False) -> Site:
    """Create the starter site in `root` (absolute paths in its unit). Refuses a folder with files in it
    unless `force`, and never overwrites a file."""
    root = root.expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root}: exists and is not a folder")
    if root.is_dir() and any(root.iterdir()) and not force:
        raise ConfigError(f"{root}: folder is not empty (--force writes the files that are missing)")
    (root / "var").mkdir(parents=True, exist_ok=True)  # the unit's only writable folder must exist
    for name in SITE_FOLDERS:
        _copy_tree(DEMO_DIR / name, root / name)
    (root / "config").mkdir(exist_ok=True)
    for name in ("agents.yaml", "queues.yaml"):
        _write(root / "config" / name, (DEMO_DIR / "config" / name).read_text(encoding="utf-8"))
    config = root / "ivr.yaml"
    defaults = EngineConfig()
    _write(config, CONFIG_TEMPLATE.format(node_id=os.uname().nodename.split(".")[0] or "node-1",
                                          drain_s=DRAIN_TIMEOUT_S, stop_s=stop_timeout_s(DRAIN_TIMEOUT_S)))
    user = getpass.getuser()
    unit = root / "ivr.service"
    _write(unit, render_unit(UnitSpec(
        user="ivr" if user == "root" else user, workdir=root, config=config, state=root / "var",
        env_file=root / "ivr.env", ivr=_ivr_command(), drain_timeout_s=DRAIN_TIMEOUT_S,
        lowest_port=min(defaults.sip_port, defaults.http_port),
    )))
    return Site(root, config, unit)


def _ivr_command() -> str:
    """The `ivr` script of this installation (next to the running Python), else `python -m ivr.cli`."""
    script = Path(sys.executable).parent / "ivr"
    return str(script) if script.exists() else f"{sys.executable} -m ivr.cli"


def _copy_tree(source: Path, target: Path) -> None:
    for path in sorted(source.rglob("*")):
        if path.is_file():
            _write_bytes(target / path.relative_to(source), path.read_bytes())


def _write(path: Path, text: str) -> None:
    _write_bytes(path, text.encode("utf-8"))


def _write_bytes(path: Path, data: bytes) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


__all__ = ["Site", "UnitSpec", "production_unit", "render_unit", "stop_timeout_s", "write_site"]
