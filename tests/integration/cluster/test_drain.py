"""A node drained (SIGTERM, as for an upgrade) under load behind Kamailio: it answers the dispatcher's
OPTIONS probe 503 and is taken out, finishes the calls it holds, exits 0; no caller notices.
"""

from __future__ import annotations

import os
import pathlib
import signal
import time

import pytest

from ivr.testing import peers
from tests.integration.cluster.cluster import (
    CLUSTER_TIMEOUT_S,
    new_database,
    running_cluster,
    start_callers,
    stored_once_closed,
    write_flows,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(CLUSTER_TIMEOUT_S),  # it may wait for another cluster test's turn
    *(pytest.mark.skipif(p.missing, reason=p.reason)
      for p in (peers.SIPP, peers.KAMAILIO, peers.POSTGRESQL, peers.REDIS_SERVER, peers.ESPEAK_NG)),
]

RATE = 5.0
SECONDS = 16.0
DRAIN_AT_S = 6.0
HOLD_S = 4.0


def test_a_draining_node_is_taken_out_and_no_caller_notices(
    tmp_path: pathlib.Path, postgres: str, redis_url: str
) -> None:
    db = new_database(postgres, f"drain_{os.getpid()}")
    calls = int(RATE * SECONDS)
    with running_cluster(tmp_path, db=db, redis_url=redis_url, flows_dir=write_flows(tmp_path)) as cluster:
        callers = start_callers(tmp_path / "sipp", f"127.0.0.1:{cluster.proxy.port}", rate=RATE, calls=calls,
                                hold_s=HOLD_S)
        time.sleep(DRAIN_AT_S)  # calls on every node by now; the load runs on its own
        drained = cluster.node("node-3")
        drained.process.send_signal(signal.SIGTERM)
        drain_started = time.time()
        exit_code = drained.process.wait(HOLD_S + 30)
        callers.wait(SECONDS + HOLD_S + 60)
        # The nodes' record writers commit on their own (in groups, a little after a call ends): wait until
        # no stored call is in progress, or the timeout, then judge (a call left in progress still fails below).
        stored = stored_once_closed(db, 30.0)
        proxy_log = cluster.proxy.output()

    explain = f"{callers.output()[-2500:]}\n--- kamailio:\n{proxy_log[-2500:]}"
    starts, ok = callers.starts(), callers.succeeded()
    assert len(starts) == calls and set(starts) == ok, explain  # every caller's call ended well
    assert exit_code == 0
    assert f"engine down: sip:{drained.host}:{drained.sip_port}" in proxy_log, explain
    on_drained = [c for c, (node, _, _) in stored.items() if node == "node-3"]
    assert on_drained and all(starts[c] < drain_started + 0.5 for c in on_drained)
    assert {outcome for node, outcome, _ in stored.values() if node == "node-3"} != {"interrupted"}
    assert not any(live for _, _, live in stored.values())
