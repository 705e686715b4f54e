from __future__ import annotations

import os
import pathlib

import pytest

from ivr.config import AcdBackendKind, EngineConfig, SettingError
from ivr.errors import ConfigError
from ivr.workers import one_process_reason
from ivr.workers.plan import plan_workers, restarted, rtp_ranges, worker_count

NODE = EngineConfig(sip_host="10.0.0.5", sip_port=5060, http_port=8080, rtp_port_min=20000, rtp_port_max=30000,
                    max_calls=1200, asr_processes=2, node_id="node-1", listen=("tcp://0.0.0.0:5071",),
                    campaigns_dir=pathlib.Path("campaigns"))


def test_each_worker_has_its_own_ports_and_acd_node_and_shares_the_public_port_and_node_id() -> None:
    specs = plan_workers(NODE, 2, acd_redis_url="unix:///run/acd.sock", mesh_dir="/run/node")
    assert [s.config.sip_port for s in specs] == [5061, 5062]
    assert [s.config.http_port for s in specs] == [8080, 8081]
    assert [s.config.node_id for s in specs] == ["node-1", "node-1"], "records and logs name the node"
    assert [s.holder for s in specs] == ["node-1", "node-1-w1"], "worker 0 as started with the node is the node"
    assert {s.mesh_dir for s in specs} == {"/run/node"}
    assert [(s.config.rtp_port_min, s.config.rtp_port_max) for s in specs] == [(20000, 24999), (25000, 29999)]
    assert {s.public_sip for s in specs} == {("10.0.0.5", 5060)}
    assert all(s.config.workers == 1 and s.count == 2 for s in specs)


def test_workers_share_the_node_limits_and_one_acd_log() -> None:
    specs = plan_workers(NODE, 3, acd_redis_url="unix:///run/acd.sock")
    assert [s.config.max_calls for s in specs] == [400, 400, 400]
    assert [s.config.asr_processes for s in specs] == [1, 1, 1]
    assert {(s.config.acd_backend, s.config.redis_url) for s in specs} == {
        (AcdBackendKind.REDIS, "unix:///run/acd.sock")}


def test_tcp_tls_listeners_and_campaigns_stay_with_worker_0() -> None:
    first, second = plan_workers(NODE, 2, acd_redis_url=None)
    assert first.config.listen == ("tcp://0.0.0.0:5071",)
    assert first.config.campaigns_dir == pathlib.Path("campaigns")
    assert second.config.listen == ()
    assert second.config.campaigns_dir is None
    assert second.config.acd_backend is AcdBackendKind.MEMORY  # no node log given: the config's own


def test_worker_ports_may_start_elsewhere() -> None:
    specs = plan_workers(EngineConfig(sip_port=5060, worker_sip_port=5100), 2, acd_redis_url=None)
    assert [s.config.sip_port for s in specs] == [5100, 5101]
    with pytest.raises(ConfigError, match="include sip_port"):
        plan_workers(EngineConfig(sip_port=5060, worker_sip_port=5059), 2, acd_redis_url=None)


def test_a_node_of_workers_needs_a_fixed_port() -> None:
    with pytest.raises(ConfigError, match="fixed sip_port"):
        plan_workers(EngineConfig(sip_port=0), 2, acd_redis_url=None)
    assert one_process_reason(EngineConfig(sip_port=0)) is not None


def test_rtp_range_is_cut_into_whole_pairs() -> None:
    assert rtp_ranges(20001, 20012, 2) == [(20002, 20005), (20006, 20011)]
    for lo, hi in rtp_ranges(20000, 30000, 7):
        assert lo % 2 == 0 and hi % 2 == 1 and hi > lo
    ranges = rtp_ranges(20000, 30000, 7)
    assert all(a[1] + 1 == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    with pytest.raises(ConfigError, match="fewer than 3 port pairs"):
        rtp_ranges(20000, 20003, 3)


def test_a_restarted_worker_is_a_new_acd_node_on_the_same_ports() -> None:
    spec = plan_workers(NODE, 2, acd_redis_url=None)[1]
    again = restarted(restarted(spec, "node-1", 1), "node-1", 2)
    assert again.holder == "node-1-w1.2" and again.config.node_id == "node-1"
    assert restarted(plan_workers(NODE, 2, acd_redis_url=None)[0], "node-1", 1).holder == "node-1-w0.1"
    assert again.config.sip_port == spec.config.sip_port


def test_worker_count_comes_from_the_config() -> None:
    assert worker_count(EngineConfig(workers=3)) == 3
    assert worker_count(EngineConfig(workers=None)) == max(1, os.cpu_count() or 1)
    with pytest.raises(SettingError, match="between 1 and 64"):
        EngineConfig(workers=0)


def test_each_worker_knows_the_others_http_ports_and_the_node_token_and_worker_0_is_the_front() -> None:
    specs = plan_workers(NODE, 3, acd_redis_url=None, node_token="secret")
    roles = [s.node for s in specs]
    assert all(r is not None and r.token == "secret" for r in roles)
    assert [r.index for r in roles if r] == [0, 1, 2]
    assert [r.front for r in roles if r] == [True, False, False]
    assert roles[0] is not None and roles[0].peers == (("w1", "http://127.0.0.1:8081"), ("w2", "http://127.0.0.1:8082"))
    assert roles[2] is not None and roles[2].peers == (("w0", "http://127.0.0.1:8080"), ("w1", "http://127.0.0.1:8081"))
    restarted_spec = restarted(specs[1], NODE.node_id, 1)
    assert restarted_spec.node == specs[1].node, "a restarted worker rejoins the node as it was"


@pytest.mark.parametrize(("http_host", "reached"), [("0.0.0.0", "127.0.0.1"), ("::", "[::1]"), ("::1", "[::1]"),
                                                    ("127.0.0.1", "127.0.0.1")], ids=str)
def test_the_other_workers_are_reached_where_they_listen(http_host: str, reached: str) -> None:
    import dataclasses

    config = dataclasses.replace(NODE, http_host=http_host)
    first = plan_workers(config, 2, acd_redis_url=None, node_token="secret")[0]
    assert first.node is not None and first.node.peers == (("w1", f"http://{reached}:8081"),)


def test_without_a_token_or_a_fixed_http_port_there_is_no_node_view() -> None:
    import dataclasses

    assert all(s.node is None for s in plan_workers(NODE, 2, acd_redis_url=None))
    no_http = dataclasses.replace(NODE, http_port=0)
    assert all(s.node is None for s in plan_workers(no_http, 2, acd_redis_url=None, node_token="secret"))
