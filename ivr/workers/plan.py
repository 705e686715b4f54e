"""What each worker of a node is: its config, derived from the node's (pure; no processes here).

A node of N workers answers on one public SIP port (`sip_port`, shared with SO_REUSEPORT): every
worker sends from it and writes it in Via and Contact, and hands the others what the kernel gave it of
theirs (`mesh_dir`, `ivr.workers.mesh`). Worker i (from 0):

- SIP: also its own port `worker_sip_port + i` (default `sip_port + 1 + i`: what a Kamailio dispatcher
  lists, as if each worker were a node); the `listen` listeners (TCP, TLS) stay with worker 0 alone.
- HTTP: `http_port + i` (worker 0 keeps the node's port: dashboard, API; each worker has /metrics).
- RTP: its slice of `rtp_port_min..rtp_port_max`; `max_calls` and `asr_processes`: its share.
- ACD: a node of its own (`holder`): worker 0 as the node started it is the node (`node_id`), the others
  `<node_id>-w<i>`, and `.<n>` is appended after the n-th restart, so the ACD sees a dead incarnation's
  lease run out and frees what it held. Call records carry the node's `node_id` and this `holder`
  (which process's calls a restart or an heir closes). Every worker applies the same ACD log: Redis when
  `acd_backend: redis`, else a Redis server private to the node (`ivr.workers.noderedis`).
- Outbound campaigns, and the retention purge, run on worker 0 only (one dialler, one purge per node).
- Node: `NodeRole` (`ivr.web.node`): the node's token and every other worker's HTTP address, so worker 0's
  port serves the whole node (live view, /metrics, actions forwarded to the worker that holds a call).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ivr.config import AcdBackendKind, EngineConfig, default_workers
from ivr.errors import ConfigError
from ivr.web.node import NodeRole


@dataclass(slots=True, frozen=True)
class WorkerSpec:
    """One worker process: its index, its config, the node's public SIP address it shares, its node role."""

    index: int
    count: int
    config: EngineConfig
    public_sip: tuple[str, int]
    node: NodeRole | None = None
    """None: no HTTP (`http_port: 0` gives each worker a port of its own choosing, unknown to the others)."""
    holder: str = ""
    """Its ACD node id and the holder of its calls in the store (`worker_node_id`)."""
    mesh_dir: str | None = None
    """The node's forwarding folder (`ivr.workers.mesh`; the supervisor always gives one). None: nothing is
    stamped or forwarded, and each worker writes its own port in Via and Contact."""


def worker_count(config: EngineConfig) -> int:
    """`workers`, or one per CPU when it is not set."""
    return config.workers if config.workers is not None else default_workers()


def worker_node_id(node_id: str, index: int, incarnation: int = 0) -> str:
    """A worker's ACD node id: the node's own for worker 0 as the node started it (it starts alone, first,
    and closes every call the node left in progress), `<node_id>-w<i>[.<n>]` for the others."""
    if index == 0 and incarnation == 0:
        return node_id
    return f"{node_id}-w{index}" + (f".{incarnation}" if incarnation else "")


def plan_workers(config: EngineConfig, count: int, *, acd_redis_url: str | None, node_token: str = "",
                 mesh_dir: str | None = None) -> list[WorkerSpec]:
    """The specs of `count` workers; `acd_redis_url`: the node's private ACD log (None: the config's
    own backend, shared already with `acd_backend: redis`, or no ACD at all); `node_token`: the secret
    the workers talk to each other with (none: no node view)."""
    if count < 2:
        raise ConfigError("a node of workers has at least 2 (one process runs without a plan)")
    if config.sip_port == 0:
        raise ConfigError("workers: set a fixed sip_port (the workers share it)")
    first_sip = config.worker_sip_port or config.sip_port + 1
    if first_sip + count - 1 > 65535:
        raise ConfigError(f"workers: their own SIP ports {first_sip}..{first_sip + count - 1} pass 65535")
    if first_sip <= config.sip_port < first_sip + count:
        raise ConfigError(f"workers: their own SIP ports {first_sip}..{first_sip + count - 1} include sip_port")
    if config.http_port and config.http_port + count - 1 > 65535:
        raise ConfigError(f"workers: HTTP ports {config.http_port}..{config.http_port + count - 1} pass 65535")
    ranges = rtp_ranges(config.rtp_port_min, config.rtp_port_max, count)
    specs = []
    for index, (rtp_min, rtp_max) in enumerate(ranges):
        changes: dict[str, object] = {
            "workers": 1,
            "sip_port": first_sip + index,
            "worker_sip_port": None,
            "http_port": config.http_port + index if config.http_port else 0,
            "rtp_port_min": rtp_min,
            "rtp_port_max": rtp_max,
            "max_calls": -(-config.max_calls // count),
            "asr_processes": -(-config.asr_processes // count),
        }
        if index > 0:
            changes.update(listen=(), campaigns_dir=None)
        if acd_redis_url is not None:
            changes.update(acd_backend=AcdBackendKind.REDIS, redis_url=acd_redis_url)
        specs.append(WorkerSpec(index, count, dataclasses.replace(config, **changes),  # type: ignore[arg-type]
                                (config.sip_host, config.sip_port), holder=worker_node_id(config.node_id, index),
                                mesh_dir=mesh_dir))
    if not node_token or not config.http_port:
        return specs
    urls = [(f"w{s.index}", f"http://{_reach(config.http_host)}:{s.config.http_port}") for s in specs]
    return [dataclasses.replace(s, node=NodeRole(s.index, node_token, tuple(u for u in urls if u[0] != f"w{s.index}")))
            for s in specs]


def _reach(host: str) -> str:
    """The address another worker on this host reaches an HTTP server bound to `host` at."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def rtp_ranges(first: int, last: int, count: int) -> list[tuple[int, int]]:
    """`first..last` cut into `count` contiguous slices of whole even/odd (RTP/RTCP) port pairs."""
    start = first + (first % 2)
    pairs = (last + 1 - start) // 2
    if pairs < count:
        raise ConfigError(f"workers: rtp_port_min..rtp_port_max ({first}..{last}) has fewer than {count} port pairs")
    ranges = []
    for index in range(count):
        lo = start + 2 * (pairs * index // count)
        hi = start + 2 * (pairs * (index + 1) // count) - 1
        ranges.append((lo, hi))
    return ranges


def restarted(spec: WorkerSpec, node_id: str, incarnation: int) -> WorkerSpec:
    """The spec of a worker started again after it died: the same ports, a new ACD node id (`node_id`:
    the node's)."""
    return dataclasses.replace(spec, holder=worker_node_id(node_id, spec.index, incarnation))


__all__ = ["WorkerSpec", "plan_workers", "restarted", "rtp_ranges", "worker_count", "worker_node_id"]
