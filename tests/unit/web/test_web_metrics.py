from __future__ import annotations

import os
import resource
from pathlib import Path

import pytest

from ivr.web import EngineMetrics, Metrics
from ivr.web.process import sample_process


def test_counter_gauge_histogram_exposition() -> None:
    m = Metrics()
    calls = m.counter("ivr_calls_total", "Calls started.")
    errors = m.counter("ivr_errors_total", "Errors by kind.", ["kind"])
    waiting = m.gauge("ivr_queue_length", "Callers waiting.", ["queue"])
    asr = m.histogram("ivr_asr_latency_seconds", "ASR latency.", ["engine"], buckets=[0.1, 0.5])
    calls.inc()
    calls.inc(2)
    errors.labels(kind="sip_parse").inc()
    errors.labels("flow_runtime").inc(3)
    waiting.labels("claims").set(4)
    waiting.labels("claims").dec()
    for value in (0.05, 0.2, 0.3, 2.0):
        asr.labels(engine="vosk").observe(value)
    assert m.render() == (
        "# HELP ivr_calls_total Calls started.\n"
        "# TYPE ivr_calls_total counter\n"
        "ivr_calls_total 3\n"
        "# HELP ivr_errors_total Errors by kind.\n"
        "# TYPE ivr_errors_total counter\n"
        'ivr_errors_total{kind="flow_runtime"} 3\n'
        'ivr_errors_total{kind="sip_parse"} 1\n'
        "# HELP ivr_queue_length Callers waiting.\n"
        "# TYPE ivr_queue_length gauge\n"
        'ivr_queue_length{queue="claims"} 3\n'
        "# HELP ivr_asr_latency_seconds ASR latency.\n"
        "# TYPE ivr_asr_latency_seconds histogram\n"
        'ivr_asr_latency_seconds_bucket{engine="vosk",le="0.1"} 1\n'
        'ivr_asr_latency_seconds_bucket{engine="vosk",le="0.5"} 3\n'
        'ivr_asr_latency_seconds_bucket{engine="vosk",le="+Inf"} 4\n'
        'ivr_asr_latency_seconds_sum{engine="vosk"} 2.55\n'
        'ivr_asr_latency_seconds_count{engine="vosk"} 4\n'
    )


def test_label_values_are_escaped() -> None:
    m = Metrics()
    g = m.gauge("g", "help with \\ and\nnewline", ["q"])
    g.labels('a"b\\c\nd').set(1)
    assert m.render().splitlines() == [
        "# HELP g help with \\\\ and\\nnewline",
        "# TYPE g gauge",
        'g{q="a\\"b\\\\c\\nd"} 1',
    ]


def test_wrong_labels_and_duplicate_names_are_refused() -> None:
    m = Metrics()
    c = m.counter("c_total", "c", ["kind"])
    with pytest.raises(ValueError, match=r"metric c_total takes labels \('kind',\)"):
        c.labels("a", "b")
    with pytest.raises(ValueError, match="already registered"):
        m.counter("c_total", "again")


def test_collectors_run_before_each_render() -> None:
    m = EngineMetrics()
    seen = iter([5, 7])
    m.registry.add_collector(lambda: m.calls_active.set(next(seen)))
    assert "ivr_calls_active 5\n" in m.render()
    assert "ivr_calls_active 7\n" in m.render()


def test_engine_metrics_names() -> None:
    text = EngineMetrics().render()
    for name in (
        "ivr_calls_active", "ivr_calls_total", "ivr_queue_length", "ivr_queue_wait_seconds",
        "ivr_asr_latency_seconds", "ivr_rtp_packets_late_total", "ivr_flow_reloads_total", "ivr_errors_total",
    ):  # fmt: skip
        assert f"# TYPE {name} " in text


def test_totals_kept_elsewhere_are_copied_in_before_a_scrape() -> None:
    m = EngineMetrics()
    sip = {("INVITE", "in"): 3, ("BYE", "out"): 1}
    m.registry.add_collector(lambda: m.set_counts(m.sip_requests, sip))
    assert 'ivr_sip_requests_total{method="INVITE",direction="in"} 3' in m.render().splitlines()
    sip[("INVITE", "in")] = 5
    m.set_counts(m.sip_responses, {("INVITE", "200", "out"): 2})
    lines = m.render().splitlines()
    assert 'ivr_sip_requests_total{method="INVITE",direction="in"} 5' in lines
    assert 'ivr_sip_responses_total{method="INVITE",code="200",direction="out"} 2' in lines


def test_build_info_and_calls_by_outcome() -> None:
    import platform

    from ivr import __version__

    m = EngineMetrics()
    m.calls_ended.labels("self-served").inc()
    lines = m.render().splitlines()
    assert f'ivr_build_info{{version="{__version__}",python="{platform.python_version()}"}} 1' in lines
    assert 'ivr_calls_ended_total{outcome="self-served"} 1' in lines


def test_process_figures_from_a_proc_tree(tmp_path: Path) -> None:
    proc = tmp_path / "self"
    (proc / "fd").mkdir(parents=True)
    for fd in range(7):
        (proc / "fd" / str(fd)).touch()
    (proc / "statm").write_text("2500 1200 300 1 0 900 0\n")
    # The command name may hold ") (": fields are counted from the last ')'. starttime (field 22) = 500 ticks.
    rest = ["S"] + ["0"] * 18 + ["500"] + ["0"] * 30
    (proc / "stat").write_text(f"4242 (ivr) (serve) {' '.join(rest)}\n")
    (tmp_path / "stat").write_text("cpu  1 2 3\nbtime 1767225600\nprocesses 9\n")
    sample = sample_process(proc, tmp_path / "stat")
    page = resource.getpagesize()
    assert (sample.resident_bytes, sample.virtual_bytes, sample.open_fds) == (1200 * page, 2500 * page, 7)
    assert sample.start_time_s == 1767225600 + 500 / os.sysconf("SC_CLK_TCK")
    assert sample.cpu_seconds >= 0 and sample.max_fds > 0


def test_process_figures_without_proc_keep_what_is_known(tmp_path: Path) -> None:
    sample = sample_process(tmp_path / "missing", tmp_path / "stat")
    assert sample.resident_bytes is None and sample.open_fds is None and sample.max_fds > 0
    lines = EngineMetrics().render().splitlines()
    assert any(line.startswith("process_resident_memory_bytes ") for line in lines)  # this machine has /proc
