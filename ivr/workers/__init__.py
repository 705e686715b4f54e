"""`ivr serve`: one engine process, or a node of worker processes sharing its SIP port (issue 22).

`serve_node(config)` runs `workers` engine processes (one per CPU by default). One worker is the
engine process itself; more are started by a supervisor (`ivr.workers.supervisor`) with configs
derived from the node's (`ivr.workers.plan`). Every engine process runs under the runtime watch
(`ivr.workers.runtime`: loop-lag monitor, GC pauses, frozen start-up heap). See docs/OPERATIONS.md,
"Workers".
"""

from __future__ import annotations

import asyncio

import structlog

from ivr.config import EngineConfig
from ivr.errors import ConfigError
from ivr.workers.noderedis import redis_server_program
from ivr.workers.plan import WorkerSpec, plan_workers, worker_count
from ivr.workers.runtime import watched

log = structlog.get_logger(__name__)


def serve_node(config: EngineConfig) -> int:
    """Run this node until SIGTERM/SIGINT has drained it; the process's exit code."""
    count = worker_count(config)
    if count > 1 and (reason := one_process_reason(config)):
        if config.workers is not None:
            raise ConfigError(f"workers {config.workers}: {reason}")
        log.info("workers_one_process", reason=reason, cpus=count)
        count = 1
    if count == 1:
        from ivr.engine import serve_main

        return serve_main(config, watched)
    import uvloop

    from ivr.workers.supervisor import Supervisor

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(Supervisor(config, count).run())


def one_process_reason(config: EngineConfig) -> str | None:
    """Why this config cannot run as several workers (None: it can)."""
    from ivr.workers.supervisor import needs_node_log

    if config.sip_port == 0:
        return "the workers share sip_port: it must be a fixed port, not 0"
    if needs_node_log(config) and redis_server_program() is None:
        return "the workers' shared ACD log needs redis-server (apt install redis-server) or acd_backend: redis"
    return None


__all__ = ["WorkerSpec", "one_process_reason", "plan_workers", "serve_node", "watched", "worker_count"]
