"""A worker process of `ivr serve --workers`: reads its spec from the supervisor, runs one engine.

The conversation with the supervisor, on the worker's stdin and stdout (everything else it prints goes to stderr):

- the supervisor writes the pickled `WorkerSpec`;
- the worker starts its engine on its own ports and writes `STARTED`;
- the supervisor writes `GO` once every worker has started (so the kernel's spreading of the public
  port over the workers is settled before the first caller); the worker joins the public port, turns
  ready (`/readyz`) and writes `READY`;
- the supervisor never writes again. A worker dies with its supervisor (`ivr.workers.lifetime`); where
  the kernel cannot arrange that, the pipe closing says the supervisor is gone and the worker drains
  and exits as on SIGTERM. When the node stops, the supervisor closes worker 0's pipe last, once every
  other worker has exited: worker 0, the node's HTTP front, keeps answering (`/readyz` 503) until then.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import sys

import structlog

from ivr.logconfig import configure_logging
from ivr.workers.plan import WorkerSpec
from ivr.workers.runtime import as_worker

STARTED = b"STARTED\n"
GO = b"GO\n"
READY = b"READY\n"


class PipeLink:
    """`SupervisorLink` over this process's stdin and stdout."""

    def __init__(self, out: int) -> None:
        self._in = sys.stdin.fileno()
        self._out = out
        self._go: asyncio.Future[None] | None = None
        self._closed: asyncio.Future[None] | None = None

    def started(self) -> None:
        os.write(self._out, STARTED)

    async def go(self) -> None:
        loop = asyncio.get_running_loop()
        self._go = loop.create_future()
        self._closed = loop.create_future()
        loop.add_reader(self._in, self._readable)
        await self._go

    async def others_done(self) -> None:
        if self._closed is not None:
            await self._closed

    def ready(self) -> None:
        os.write(self._out, READY)

    def _readable(self) -> None:
        data = os.read(self._in, 64)
        go = self._go if self._go is not None and not self._go.done() else None
        if go is not None and data.startswith(GO):
            go.set_result(None)
        elif not data:  # the supervisor is gone or stopping: no more waiting, drain as on SIGTERM
            asyncio.get_running_loop().remove_reader(self._in)
            if go is not None:
                go.set_result(None)
            if self._closed is not None and not self._closed.done():
                self._closed.set_result(None)
            os.kill(os.getpid(), signal.SIGTERM)


def main() -> int:
    spec = pickle.load(sys.stdin.buffer)
    if not isinstance(spec, WorkerSpec):
        print("ivr worker: expected a WorkerSpec on stdin", file=sys.stderr)
        return 2
    # The supervisor reads stdout for STARTED and READY only, then stops reading: keep the pipe on a private
    # descriptor (not inherited) and send whatever else this process or its children print to stderr, so
    # nothing ever blocks on a full pipe.
    control = os.dup(sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    config = spec.config
    configure_logging(config.log_level, json=config.log_json, log_pii=config.log_pii)
    structlog.contextvars.bind_contextvars(worker=spec.index)
    from ivr.engine import serve_main

    return serve_main(config, as_worker(spec, PipeLink(control)), node=spec.node, holder=spec.holder or None)


if __name__ == "__main__":
    sys.exit(main())
