"""The test port pool: two processes never hold the same port, a busy port is never handed out, and a
process that has used up its claims hands its own ports out again."""

from __future__ import annotations

import multiprocessing
import os
import pathlib
import socket
from typing import Any

import pytest

from ivr.testing import ports
from ivr.testing.ports import PoolExhausted, PortPool


def _quiet_block(size: int = 500) -> int:
    """The first of `size` ports, all free now (UDP and TCP), between the engines' RTP range (up to 30000) and the
    suite's own pool (61000-65535, where other xdist workers' engines and peers hold ports while this runs: a
    port they hold is rightly skipped, and "the whole pool" would come up short). Chosen at run time because a
    benchmark beside the suite may hold a fixed block (the tests once failed while one did)."""
    for base in range(31000, 40000, size):
        if all(ports._probe("127.0.0.1", port) for port in range(base, base + size, 2)):
            return base
    raise RuntimeError("no quiet block of ports in 31000-39999")


BASE = _quiet_block()
LOW, HIGH = BASE, BASE + 99
"""The main test pool: 50 pairs. Other tests take their own pools above it (BASE + 200 ...)."""


def _pool(tmp_path: pathlib.Path, low: int = LOW, high: int = HIGH, **kw: int) -> PortPool:
    return PortPool(low, high, lock_file=tmp_path / "ports.lock", **kw)


def _take_in_child(lock_file: str, count: int, out: Any, hold: Any) -> None:
    taken = PortPool(LOW, HIGH, lock_file=pathlib.Path(lock_file))
    out.put([taken.take() for _ in range(count)])
    hold.wait(30)  # keep the claims (the locks go with the process) until the parent has taken its own


def test_ports_are_even_pairs_inside_the_pool_and_distinct(tmp_path: pathlib.Path) -> None:
    pool = _pool(tmp_path)
    ports = [pool.take() for _ in range(20)]
    assert len(set(ports)) == 20
    assert all(p % 2 == 0 and LOW <= p <= HIGH - 1 for p in ports)


def test_another_process_is_never_handed_a_port_this_one_holds(tmp_path: pathlib.Path) -> None:
    context = multiprocessing.get_context("fork")
    out, hold = context.Queue(), context.Event()
    child = context.Process(target=_take_in_child, args=(str(tmp_path / "ports.lock"), 25, out, hold))
    child.start()
    try:
        theirs = out.get(timeout=30)
        pool = _pool(tmp_path)
        ours = [pool.take() for _ in range(25)]
    finally:
        hold.set()
        child.join(30)
    assert not set(theirs) & set(ours)
    assert len(set(theirs) | set(ours)) == 50  # 50 pairs: the whole pool, no port twice


def test_a_port_bound_by_someone_else_is_skipped(tmp_path: pathlib.Path) -> None:
    pool = _pool(tmp_path, HIGH + 1, HIGH + 4)  # two pairs: HIGH + 1 and HIGH + 3
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", HIGH + 2))  # the TCP neighbour of HIGH + 1 (baresip's TLS would want it)
        assert {pool.take(), pool.take()} == {HIGH + 3}
    assert pool.take() == HIGH + 1  # free again: claimed now


def test_past_its_claims_a_process_hands_its_own_ports_out_again(tmp_path: pathlib.Path) -> None:
    pool = _pool(tmp_path, max_claims=3)
    first = [pool.take() for _ in range(3)]
    assert [pool.take() for _ in range(3)] == first


def test_reused_blocks_handed_out_one_after_another_never_overlap(tmp_path: pathlib.Path) -> None:
    """Past its claims, a block handed out a moment ago is not bound yet (its peer is starting), so its probe
    passes: the next block must still not share a port with it (a SIPp once failed to bind its video port,
    -mp + 2, handed out again as the next block's first port)."""
    pool = _pool(tmp_path, BASE + 400, BASE + 423, max_claims=6)  # twelve pairs; six claimed as three blocks
    claimed = [pool.take(span=4) for _ in range(3)]
    reused = [pool.take(span=4) for _ in range(6)]
    blocks = [{port, port + 2} for port in claimed + reused]
    assert all(not a & b for a, b in zip(blocks, blocks[1:], strict=False)), (claimed, reused)
    assert set().union(*blocks[3:]) <= set().union(*blocks[:3])  # its own ports, none new


def test_a_pool_with_every_pair_busy_says_so(tmp_path: pathlib.Path) -> None:
    pool = _pool(tmp_path, BASE + 200, BASE + 201)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", BASE + 200))
        with pytest.raises(PoolExhausted, match=f"no free block of 1 port pair.s. in {BASE + 200}-{BASE + 201}"):
            pool.take()


def test_a_span_is_a_block_of_pairs_claimed_together(tmp_path: pathlib.Path) -> None:
    pool = _pool(tmp_path, BASE + 300, BASE + 311)  # six pairs
    block = pool.take(span=4)
    single = [pool.take() for _ in range(4)]
    assert block % 2 == 0 and not {block, block + 2} & set(single)
    assert sorted([block, block + 2, *single]) == list(range(BASE + 300, BASE + 311, 2))


@pytest.mark.parametrize(("workers", "expected"), [("1", 1), ("3", 3), ("null", None), ("", None)])
def test_node_workers_follow_ivr_workers_and_default_to_one_per_cpu(
    monkeypatch: pytest.MonkeyPatch, workers: str, expected: int | None
) -> None:
    monkeypatch.setenv("IVR_WORKERS", workers)
    assert ports.node_workers() == (expected or max(1, os.cpu_count() or 1))


def test_a_free_port_has_room_for_every_worker_port_of_a_node_above_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    """Worker i of a node binds SIP `port + 1 + i`: with 3 workers, `port + 3` must be claimed with the port
    (the default-workers suite once failed when a parallel test was handed worker 1's port)."""
    monkeypatch.setenv("IVR_WORKERS", "3")
    monkeypatch.setattr(ports, "_pool", _pool(tmp_path, BASE + 400, BASE + 411))  # six pairs
    first = ports.free_port()
    others = [ports.free_port(span=2) for _ in range(4)]
    assert not set(range(first, first + 4)) & set(others)
    assert sorted([first, first + 2, *others]) == list(range(BASE + 400, BASE + 411, 2))
