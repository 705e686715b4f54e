"""The node's forwarding between workers, over real Unix datagram sockets in a temporary folder: a new call
goes to the worker it hashes to, or stays where it arrived when that worker cannot take it; a datagram of
a dialog another worker holds is never answered by the wrong one."""

from __future__ import annotations

import asyncio
import pathlib

from ivr.sip.events import Address
from ivr.workers.mesh import WorkerMesh
from ivr.workers.routing import call_worker, stamp
from tests.unit.workers.test_routing import invite

SBC: Address = ("10.0.0.7", 5060)


def call_for(worker: int, count: int = 2) -> bytes:
    """A new INVITE whose Call-ID hashes to `worker`."""
    return next(data for i in range(1000) if call_worker(data := invite(f"c{i}@sbc"), count) == worker)


class Inbox:
    """What a worker's engine was handed, and a wait for the next."""

    def __init__(self) -> None:
        self.got: list[tuple[bytes, Address]] = []
        self.arrived = asyncio.Event()

    def __call__(self, data: bytes, source: Address) -> None:
        self.got.append((data, source))
        self.arrived.set()

    async def next(self) -> None:
        async with asyncio.timeout(2.0):
            await self.arrived.wait()
        self.arrived.clear()


def mesh(folder: pathlib.Path, me: int, inbox: Inbox) -> WorkerMesh:
    worker = WorkerMesh(folder, me, 2, inbox)
    worker.open()
    return worker


async def test_a_new_call_goes_to_the_worker_it_hashes_to_with_the_peer_address(tmp_path: pathlib.Path) -> None:
    inbox_0, inbox_1 = Inbox(), Inbox()
    worker_0, worker_1 = mesh(tmp_path, 0, inbox_0), mesh(tmp_path, 1, inbox_1)
    try:
        data = call_for(1)
        assert worker_0.route(data, SBC) is True, "not handled here"
        await inbox_1.next()
        assert inbox_1.got == [(data, SBC)] and worker_0.forwarded == 1 and worker_1.received == 1
        assert worker_0.route(call_for(0), SBC) is False, "its own: handled here"
        assert worker_1.route(call_for(0), SBC) is True
        await inbox_0.next()
        assert inbox_0.got == [(call_for(0), SBC)]
    finally:
        worker_0.close()
        worker_1.close()


async def test_a_new_call_whose_worker_is_gone_is_answered_where_it_arrived(tmp_path: pathlib.Path) -> None:
    worker_0 = mesh(tmp_path, 0, Inbox())
    try:
        assert worker_0.route(call_for(1), SBC) is False, "kept: a caller is not lost to a restarting worker"
        assert (worker_0.kept, worker_0.dropped, worker_0.forwarded) == (1, 0, 0)
    finally:
        worker_0.close()


async def test_a_datagram_of_another_workers_dialog_is_dropped_not_answered_here(tmp_path: pathlib.Path) -> None:
    worker_0 = mesh(tmp_path, 0, Inbox())
    try:
        bye = invite("c1@sbc", "BYE", to_tag=";tag=abc" + stamp(1))
        assert worker_0.route(bye, SBC) is True, "worker 1's dialog: this worker would answer 481"
        assert (worker_0.dropped, worker_0.kept) == (1, 0)
    finally:
        worker_0.close()
