"""What runs around a started engine process: the runtime watch, and for a worker, its share of the
node's SIP port.

`watched`: the event-loop lag monitor (`ivr_event_loop_lag_seconds`), the GC pause observer
(`ivr_gc_pause_seconds`), with `gc_tuned` the start-up heap frozen (`ivr.engine.gcpolicy`), and media
first: each SIP transport runs a due media tick before the message it is about to handle
(`MediaScheduler.run_due`).
`as_worker`: the same, then, when the supervisor says so, the worker joins the node's public SIP port
(`SipTransport.share_port`) and turns ready; only then does the kernel give it new callers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from ivr.engine import Engine
from ivr.engine.app import Running
from ivr.engine.gcpolicy import THRESHOLDS, GcPauseObserver, after_start_up
from ivr.engine.looplag import LoopLagMonitor
from ivr.workers.plan import WorkerSpec


@asynccontextmanager
async def watched(engine: Engine) -> AsyncIterator[None]:
    """Around a started engine: measure loop lag and GC pauses into its metrics, freeze start-up's heap."""
    pauses = engine.metrics.gc_pause
    observer = GcPauseObserver(lambda generation, seconds: pauses.labels(str(generation)).observe(seconds))
    monitor = LoopLagMonitor(engine.clock, engine.metrics.event_loop_lag.observe)
    if engine.config.gc_tuned:
        thresholds = engine.config.gc_thresholds
        after_start_up(THRESHOLDS if not thresholds else (thresholds[0], thresholds[1], thresholds[2]))
    monitor.start()
    for ua in engine.uas:  # media first: a due media tick runs before each SIP message is handled
        ua.transport.before_message = engine.media.scheduler.run_due
    try:
        yield
    finally:
        for ua in engine.uas:
            ua.transport.before_message = None
        monitor.stop()
        observer.close()


class SupervisorLink(Protocol):
    """How a worker talks with its supervisor (`ivr.workers.child.PipeLink`)."""

    def started(self) -> None:
        """The engine is up on the worker's own ports."""

    async def go(self) -> None:
        """Returns when every worker of the node has started: time to join the public port."""

    def ready(self) -> None:
        """The worker takes new callers on the public port."""


def as_worker(spec: WorkerSpec, link: SupervisorLink) -> Running:
    """The `running` of a worker's engine (see `ivr.engine.app.serve`): not ready (`/readyz` 503) until
    it has joined the node's public SIP port, which it does when the supervisor says go."""

    @asynccontextmanager
    async def running(engine: Engine) -> AsyncIterator[None]:
        async with watched(engine):
            engine.ready = False
            link.started()
            await link.go()
            await engine.ua.transport.share_port(*spec.public_sip)
            engine.ready = True
            link.ready()
            yield

    return running


__all__ = ["SupervisorLink", "as_worker", "watched"]
