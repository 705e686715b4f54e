"""`ivr serve --workers N`: the supervisor of a node's worker processes.

It makes what every worker must find ready (the first-start API token, the node's ACD log), starts
worker 0 alone (it migrates the store and renders the prompt cache the others then read), then the
others, and waits. SIGTERM or SIGINT is passed on to every worker as SIGTERM: each drains its own
calls. A worker that dies is started again after `RESTART_DELAY_S` as a new ACD node (the ACD sees
the dead one's lease run out and frees what it held, as for a node of a cluster); more than
`MAX_RESTARTS` in `RESTART_WINDOW_S` stops the node (exit 1) for the service manager to restart.
Workers run in their own session (a terminal's Ctrl-C reaches the supervisor only) and are killed
with the supervisor (`ivr.workers.lifetime`): after a kill -9 of the node, none keeps its ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import secrets
import shutil
import signal
import sys
import tempfile
from collections import deque

import structlog

from ivr.config import EngineConfig
from ivr.workers.child import GO, READY, STARTED
from ivr.workers.lifetime import dies_with_parent
from ivr.workers.noderedis import NodeRedis
from ivr.workers.plan import WorkerSpec, plan_workers, restarted

log = structlog.get_logger(__name__)

READY_TIMEOUT_S = 600.0
"""A worker's start-up (prompt rendering on a cold cache, speech models) may take minutes."""
RESTART_DELAY_S = 1.0
MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0


class Worker:
    """One worker process, started (and started again) from its spec."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.incarnation = 0
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> bool:
        """Start the process; True once its engine is up on its own ports (False: it exited first)."""
        proc = self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ivr.workers.child",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, start_new_session=True,
            preexec_fn=dies_with_parent(signal.SIGKILL),
        )
        assert proc.stdin is not None
        proc.stdin.write(pickle.dumps(self.spec))
        await proc.stdin.drain()  # the pipe stays open: its end tells the worker the supervisor is gone
        return await self._expect(STARTED)

    async def go(self) -> bool:
        """Let it join the public port; True once it has (False: it exited first)."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(GO)
        await self.proc.stdin.drain()
        if not await self._expect(READY):
            return False
        log.info("worker_ready", worker=self.spec.index, pid=self.proc.pid, node=self.spec.holder,
                 sip_port=self.spec.config.sip_port)
        return True

    async def _expect(self, word: bytes) -> bool:
        assert self.proc is not None and self.proc.stdout is not None
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                while line := await self.proc.stdout.readline():
                    if line == word:
                        return True
        except TimeoutError:
            log.error("worker_not_ready", worker=self.spec.index, waited_for=word.decode().strip(),
                      timeout_s=READY_TIMEOUT_S)
            self.terminate()
        await self.proc.wait()
        return False

    def terminate(self, *, release: bool = True) -> None:
        """SIGTERM (the worker drains), and (`release`) its stdin closed: a worker still waiting for `GO`
        stops waiting, and worker 0 stops waiting for the others (`release` it last)."""
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
        if release:
            self.release()

    def release(self) -> None:
        if self.proc is not None and self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()

    async def wait(self) -> int:
        assert self.proc is not None
        return await self.proc.wait()


class Supervisor:
    def __init__(self, config: EngineConfig, count: int) -> None:
        self.config = config
        self.count = count
        self.stop = asyncio.Event()
        self.workers: list[Worker] = []
        self._restarts: deque[float] = deque()

    async def run(self) -> int:
        from ivr.web.access import server_access

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        server_access(self.config)  # the first-start API token: made once here, read by every worker
        node_redis = NodeRedis() if needs_node_log(self.config) else None
        mesh_dir = tempfile.mkdtemp(prefix="ivr-node-")  # 0700: the workers' forwarding sockets (ivr.workers.mesh)
        try:
            if node_redis is not None:
                await node_redis.start()
            specs = plan_workers(self.config, self.count, acd_redis_url=node_redis.url if node_redis else None,
                                 node_token=secrets.token_urlsafe(32), mesh_dir=mesh_dir)
            self.workers = [Worker(spec) for spec in specs]
            starting = loop.create_task(self._start_all())
            stopping = loop.create_task(self.stop.wait())
            await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not starting.done():  # SIGTERM while starting: stop what started (below), exit as drained
                starting.cancel()
                await asyncio.gather(starting, return_exceptions=True)
                log.info("node_stopped_while_starting")
                return 0
            if not starting.result():
                return 1
            log.info("node_ready", workers=self.count, sip_port=self.config.sip_port,
                     worker_sip_ports=[w.spec.config.sip_port for w in self.workers])
            return await self._watch()
        finally:
            for worker in self.workers:
                worker.terminate()
            for worker in self.workers:
                if worker.proc is not None:
                    await worker.proc.wait()
            if node_redis is not None:
                await node_redis.stop()
            shutil.rmtree(mesh_dir, ignore_errors=True)

    async def _start_all(self) -> bool:
        """Worker 0 alone first (it migrates the store and renders the prompt cache the others read), then
        the others; once all have started, every one joins the public port. False if one did not."""
        if not await self.workers[0].start():
            return False
        if not all(await asyncio.gather(*(worker.start() for worker in self.workers[1:]))):
            return False
        return all(await asyncio.gather(*(worker.go() for worker in self.workers)))

    async def _watch(self) -> int:
        """Until asked to stop: start again any worker that dies (within the restart budget)."""
        loop = asyncio.get_running_loop()
        stopping = loop.create_task(self.stop.wait())
        exits = {loop.create_task(w.wait()): w for w in self.workers}
        try:
            while True:
                done, _ = await asyncio.wait({stopping, *exits}, return_when=asyncio.FIRST_COMPLETED)
                if stopping in done:
                    return await self._drain(exits)
                for task in done:
                    worker = exits.pop(task)
                    log.error("worker_died", worker=worker.spec.index, exit_code=task.result(),
                              node=worker.spec.holder)
                    if not self._may_restart(loop.time()):
                        log.error("node_stopping", reason="workers keep dying", restarts=MAX_RESTARTS,
                                  window_s=RESTART_WINDOW_S)
                        await self._drain(exits)
                        return 1
                    await asyncio.sleep(RESTART_DELAY_S)
                    worker.incarnation += 1
                    worker.spec = restarted(worker.spec, self.config.node_id, worker.incarnation)
                    if await worker.start() and await worker.go():
                        exits[loop.create_task(worker.wait())] = worker
                    else:
                        exits[loop.create_task(_failed())] = worker
        finally:
            stopping.cancel()

    async def _drain(self, exits: dict[asyncio.Task[int], Worker]) -> int:
        """Every worker drains at once; worker 0 (the node's HTTP front) is released last, when the others
        have exited, so /readyz keeps saying "draining" until the whole node has."""
        front = self.workers[0]
        for worker in self.workers:
            worker.terminate(release=worker is not front)
        codes = list(await asyncio.gather(*(task for task, worker in exits.items() if worker is not front)))
        front.release()
        codes += await asyncio.gather(*(task for task, worker in exits.items() if worker is front))
        return 0 if all(code == 0 for code in codes) else 1

    def _may_restart(self, now: float) -> bool:
        while self._restarts and now - self._restarts[0] > RESTART_WINDOW_S:
            self._restarts.popleft()
        if len(self._restarts) >= MAX_RESTARTS:
            return False
        self._restarts.append(now)
        return True


async def _failed() -> int:
    return 1


def needs_node_log(config: EngineConfig) -> bool:
    """Workers of a node with an ACD on the memory backend need the node's own shared log."""
    from ivr.config import AcdBackendKind

    return (config.acd_backend is AcdBackendKind.MEMORY and config.agents_file.exists()
            and config.queues_file.exists())


__all__ = ["Supervisor", "Worker", "needs_node_log"]
