"""What runs around a started engine process: the runtime watch, and for a worker, its share of the
node's SIP port.

`watched`: the event-loop lag monitor (`ivr_event_loop_lag_seconds`), the GC pause observer
(`ivr_gc_pause_seconds`), with `gc_tuned` the start-up heap frozen (`ivr.engine.gcpolicy`), and media
first: each SIP transport runs a due media tick before the message it is about to handle
(`MediaScheduler.run_due`).
`as_worker`: the same, then, when the supervisor says so, the worker joins the node's public SIP port
(`SipTransport.share_port`) and turns ready; only then does the kernel give it new callers. With the
node's forwarding folder (`WorkerSpec.mesh_dir`) it stamps what it creates with its index, sends from
the public port, writes it in Via and Contact, and hands the other workers what they hold
(`ivr.workers.mesh`): the node has one SIP address.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Protocol

from ivr.engine import Engine
from ivr.engine.app import Running
from ivr.engine.gcpolicy import THRESHOLDS, GcPauseObserver, after_start_up
from ivr.engine.looplag import LoopLagMonitor
from ivr.workers.deskroute import DeskRoute
from ivr.workers.mesh import WorkerMesh
from ivr.workers.plan import WorkerSpec
from ivr.workers.routing import stamp


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

    async def others_done(self) -> None:
        """Returns when the node's other workers have exited (or the supervisor is gone)."""


def as_worker(spec: WorkerSpec, link: SupervisorLink) -> Running:
    """The `running` of a worker's engine (see `ivr.engine.app.serve`): not ready (`/readyz` 503) until
    it has joined the node's public SIP port, which it does when the supervisor says go."""

    @asynccontextmanager
    async def running(engine: Engine) -> AsyncIterator[None]:
        mesh = _mesh(engine, spec)
        async with watched(engine):
            engine.ready = False
            link.started()
            await link.go()
            transport = engine.ua.transport
            await transport.share_port(*spec.public_sip, sends=mesh is not None)
            if mesh is not None:
                transport.endpoint.local_address = (transport.endpoint.local_address[0], spec.public_sip[1])
            engine.ready = True
            link.ready()
            try:
                yield
                if spec.index == 0:  # the node's HTTP front: /readyz says draining until the whole node is done
                    await link.others_done()
            finally:
                if mesh is not None:
                    mesh.close()

    return running


def _mesh(engine: Engine, spec: WorkerSpec) -> WorkerMesh | None:
    """This worker's end of the node's forwarding, open before any worker joins the public port (every
    one has started by then); its stamp on everything this worker's user agents create."""
    if spec.mesh_dir is None:
        return None
    for ua in engine.uas:
        ua.transport.endpoint.stamp = stamp(spec.index)
    transport = engine.ua.transport
    mesh = WorkerMesh(Path(spec.mesh_dir), spec.index, spec.count, transport.deliver)
    mesh.open()
    transport.route = mesh.route
    if engine.agent_queues is not None:  # agents' phones calling about a caller another worker holds
        acd = engine.agent_queues.acd
        mesh.elsewhere = DeskRoute(acd.config, lambda: acd.core, engine.config.node_id)
    datagrams = engine.metrics.registry.counter(
        "ivr_worker_datagrams_total", "SIP datagrams of the shared port handed between this node's workers "
        "(forwarded: to the worker holding or taking them; received: from another; dropped: the holder could not "
        "take it; kept: a new call its worker could not take, answered here).",
        ["way"])

    def collect() -> None:
        for way, value in (("forwarded", mesh.forwarded), ("received", mesh.received), ("dropped", mesh.dropped),
                           ("kept", mesh.kept)):
            datagrams.labels(way).value = float(value)

    engine.metrics.registry.add_collector(collect)
    return mesh


__all__ = ["SupervisorLink", "as_worker", "watched"]
