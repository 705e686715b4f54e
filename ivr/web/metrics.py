"""Prometheus metrics, pure Python: counters, gauges and histograms others increment, and the text
exposition (format 0.0.4) served at /metrics.

Cheap on the hot path: an unlabelled `inc()` is one float addition; `labels(...)` returns a cached
child, so a caller keeps the child (`late = m.rtp_packets_late.labels()`) and increments that.
Not thread-safe by design: increment from the event-loop thread (hand results back from executors
first). Values derived from `LiveState` (calls active, queue lengths, agents) are pulled at scrape
time by collectors, so there is one source of truth for them.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from ivr import __version__
from ivr.web.process import ProcessSample, sample_process

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

DEFAULT_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
WAIT_BUCKETS: tuple[float, ...] = (5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
ASR_BUCKETS: tuple[float, ...] = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
LAG_BUCKETS: tuple[float, ...] = (0.001, 0.002, 0.005, 0.01, 0.02, 0.04, 0.1, 0.25, 1.0)
"""Event-loop lag and GC pauses: 20 ms is one RTP packet; past 40 ms a caller hears the gap."""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape_label(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class _Value:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class _GaugeValue(_Value):
    __slots__ = ()

    def set(self, value: float) -> None:
        self.value = float(value)

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount


class _HistogramValue:
    __slots__ = ("_bounds", "counts", "sum", "count")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self.counts = [0] * len(bounds)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.sum += value
        self.count += 1
        for i, bound in enumerate(self._bounds):
            if value <= bound:
                self.counts[i] += 1
                break


C = TypeVar("C")
M = TypeVar("M", bound="_Metric[Any]")


class _Metric(Generic[C]):
    kind = ""

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str]) -> None:
        self.name = name
        self.help = help_text
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], C] = {}

    def _new(self) -> C:
        raise NotImplementedError

    def labels(self, *values: str, **named: str) -> C:
        """The child for these label values (positional, or by name); created on first use."""
        key = tuple(values) if values else tuple(named[n] for n in self.labelnames)
        if len(key) != len(self.labelnames):
            raise ValueError(f"metric {self.name} takes labels {self.labelnames}, got {key}")
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._new()
        return child

    def clear(self) -> None:
        """Forget every labelled child (a collector refilling a gauge drops vanished queues)."""
        self._children.clear()

    def _header(self) -> list[str]:
        text = self.help.replace("\\", "\\\\").replace("\n", "\\n")
        return [f"# HELP {self.name} {text}", f"# TYPE {self.name} {self.kind}"]

    def render(self) -> list[str]:
        raise NotImplementedError


V = TypeVar("V", bound=_Value)


class _SimpleMetric(_Metric[V]):
    def render(self) -> list[str]:
        lines = self._header()
        for key, child in sorted(self._children.items()):
            lines.append(f"{self.name}{_labels(self.labelnames, key)} {_number(child.value)}")
        return lines


class Counter(_SimpleMetric[_Value]):
    kind = "counter"

    def _new(self) -> _Value:
        return _Value()

    def inc(self, amount: float = 1.0) -> None:
        self.labels().inc(amount)


class Gauge(_SimpleMetric[_GaugeValue]):
    kind = "gauge"

    def _new(self) -> _GaugeValue:
        return _GaugeValue()

    def set(self, value: float) -> None:
        self.labels().set(value)

    def inc(self, amount: float = 1.0) -> None:
        self.labels().inc(amount)


class Histogram(_Metric[_HistogramValue]):
    kind = "histogram"

    def __init__(
        self, name: str, help_text: str, labelnames: Sequence[str], buckets: Sequence[float]
    ) -> None:
        super().__init__(name, help_text, labelnames)
        self.buckets = tuple(sorted(float(b) for b in buckets if not math.isinf(b)))

    def _new(self) -> _HistogramValue:
        return _HistogramValue(self.buckets)

    def observe(self, value: float) -> None:
        self.labels().observe(value)

    def render(self) -> list[str]:
        lines = self._header()
        for key, child in sorted(self._children.items()):
            running = 0
            for bound, count in zip(self.buckets, child.counts, strict=True):
                running += count
                le = _labels(self.labelnames, key, f'le="{_number(bound)}"')
                lines.append(f"{self.name}_bucket{le} {running}")
            inf = _labels(self.labelnames, key, 'le="+Inf"')
            lines.append(f"{self.name}_bucket{inf} {child.count}")
            lines.append(f"{self.name}_sum{_labels(self.labelnames, key)} {_number(child.sum)}")
            lines.append(f"{self.name}_count{_labels(self.labelnames, key)} {child.count}")
        return lines


class Metrics:
    """A registry of metrics plus collectors run before each scrape."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric[Any]] = {}
        self._collectors: list[Callable[[], None]] = []

    def _register(self, metric: M) -> M:
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} is already registered")
        self._metrics[metric.name] = metric
        return metric

    def counter(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> Counter:
        return self._register(Counter(name, help_text, labelnames))

    def gauge(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> Gauge:
        return self._register(Gauge(name, help_text, labelnames))

    def histogram(
        self,
        name: str,
        help_text: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> Histogram:
        return self._register(Histogram(name, help_text, labelnames, buckets))

    def add_collector(self, collect: Callable[[], None]) -> Callable[[], None]:
        """Run `collect()` before every render (to set gauges from live state); returns a remover."""
        self._collectors.append(collect)
        return lambda: self._collectors.remove(collect) if collect in self._collectors else None

    def render(self) -> str:
        for collect in list(self._collectors):
            collect()
        lines: list[str] = []
        for metric in self._metrics.values():
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"


class EngineMetrics:
    """The engine's standard metrics, created in one registry. Who updates what:

    - `calls_active`, `calls_total`, `queue_length`, `queue_longest_wait`, `agents`: pulled from the
      live state at scrape (see `ivr.web.app`); `rate(ivr_calls_total[1m])` is calls per second.
    - `queue_wait_seconds{queue}`: the ACD observes each answered call's wait.
    - `asr_latency_seconds{engine}`: speech observes end-of-speech → result.
    - `asr_shed_total`: utterances the decode pool did not decode because its decoders were too far behind
      (copied in at scrape, like the totals below); those turns went to the flow's keys or a human.
    - `rtp_packets_late_total`: RTP counts packets too late for the jitter buffer.
    - `flow_reloads_total{result}`: the flow loader (`ok` / `failed`).
    - `errors_total{kind}`: anyone, with a short snake_case kind (`sip_parse`, `flow_runtime`, `http`...).
    - `calls_ended_total{outcome}`: the engine, as each call's record is finished (`Outcome` values).
    - `sip_requests_total{method,direction}`, `sip_responses_total{method,code,direction}`: totals the
      SIP layer keeps, copied in at scrape time with `set_counts` by a collector the engine registers
      (direction `in`: received, `out`: sent).
    - `sip_edge_refused_total{reason}`, `sip_register_total{result}`, `rtp_packets_received_total`,
      `rtp_dropped_total{reason}`, `rtp_send_errors_total`, `media_failures_total`: the SIP edge's, the
      registrar's and the media engine's own totals, copied in likewise (`ivr.web.counters.watch_counters`).
    - `process_*`: this process's CPU, memory, descriptors and start time, read at scrape (`ivr.web.process`).
    - `ivr_build_info{version,python}`: always 1; the labels say what is running.
    - `event_loop_lag_seconds`, `gc_pause_seconds{generation}`: how late the loop woke a periodic timer,
      and each garbage collection's pause (`ivr.engine.looplag`, `ivr.engine.gcpolicy`).
    """

    def __init__(self, registry: Metrics | None = None) -> None:
        self.registry = registry or Metrics()
        r = self.registry
        self.calls_active = r.gauge("ivr_calls_active", "Calls in progress (IVR, queue or with an agent).")
        self.calls_total = r.counter("ivr_calls_total", "Calls started since the engine started.")
        self.queue_length = r.gauge("ivr_queue_length", "Callers waiting in each queue.", ["queue"])
        self.queue_longest_wait = r.gauge(
            "ivr_queue_longest_wait_seconds", "Wait of the longest-waiting caller in each queue.", ["queue"]
        )
        self.queue_wait_seconds = r.histogram(
            "ivr_queue_wait_seconds", "Wait before an agent answered.", ["queue"], WAIT_BUCKETS
        )
        self.agents = r.gauge("ivr_agents", "Agents by state.", ["state"])
        self.asr_latency_seconds = r.histogram(
            "ivr_asr_latency_seconds",
            "Speech recognition latency after end of speech.",
            ["engine"],
            ASR_BUCKETS,
        )
        self.asr_shed = r.counter(
            "ivr_asr_shed_total", "Utterances not decoded because the recognizers were too far behind (overload); "
            "each of those turns went to the flow's keys or a human.",
        )  # fmt: skip
        self.rtp_packets_late = r.counter(
            "ivr_rtp_packets_late_total", "RTP packets that arrived too late to be played."
        )
        self.flow_reloads = r.counter("ivr_flow_reloads_total", "Flow (re)loads by result.", ["result"])
        self.errors = r.counter("ivr_errors_total", "Errors by kind.", ["kind"])
        self.calls_ended = r.counter("ivr_calls_ended_total", "Calls ended, by outcome.", ["outcome"])
        self.sip_requests = r.counter(
            "ivr_sip_requests_total", "SIP requests by method; direction in: received, out: sent.",
            ["method", "direction"],
        )  # fmt: skip
        self.sip_responses = r.counter(
            "ivr_sip_responses_total", "SIP responses by request method and status code; direction in: received, "
            "out: sent.", ["method", "code", "direction"],
        )  # fmt: skip
        self.sip_edge_refused = r.counter(
            "ivr_sip_edge_refused_total", "SIP requests the edge turned away, by reason (rate_limited, untrusted, "
            "busy_source, over_capacity).", ["reason"],
        )  # fmt: skip
        self.sip_register = r.counter(
            "ivr_sip_register_total", "Agents' REGISTER answers by result (challenged, registered, wrong_answer, "
            "throttled, replay, refused).", ["result"],
        )  # fmt: skip
        self.rtp_received = r.counter("ivr_rtp_packets_received_total", "RTP packets accepted.")
        self.rtp_dropped = r.counter(
            "ivr_rtp_dropped_total", "RTP/RTCP datagrams dropped unplayed, by reason (malformed, wrong_source, "
            "unknown_payload_type, oversize, rtcp, srtp).", ["reason"],
        )  # fmt: skip
        self.rtp_send_errors = r.counter("ivr_rtp_send_errors_total", "RTP/RTCP datagrams the socket refused to send.")
        self.media_failures = r.counter("ivr_media_failures_total", "Media sessions that failed (their calls ended).")
        self.dialect_memory_skipped = r.counter(
            "ivr_dialect_memory_skipped_total", "Remembered-dialect work skipped to keep calls moving, by reason "
            "(late_lookup: the database did not answer within the budget, the caller was greeted as new; "
            "dropped_write: the queue was full).", ["reason"],
        )  # fmt: skip
        self.build_info = r.gauge("ivr_build_info", "What is running: always 1.", ["version", "python"])
        self.build_info.labels(__version__, platform.python_version()).set(1)
        self.event_loop_lag = r.histogram(
            "ivr_event_loop_lag_seconds", "How late the event loop ran a periodic timer (a stall delays every "
            "call's media by as much).", (), LAG_BUCKETS,
        )  # fmt: skip
        self.gc_pause = r.histogram("ivr_gc_pause_seconds", "Garbage collection pauses, by generation.",
                                    ["generation"], LAG_BUCKETS)
        self._process = ProcessMetrics(r)

    @staticmethod
    def set_counts(counter: Counter, totals: Mapping[tuple[str, ...], float]) -> None:
        """Copy totals another layer keeps (label values → count) into `counter`, before a scrape."""
        for labels, total in totals.items():
            counter.labels(*labels).value = float(total)

    def render(self) -> str:
        return self.registry.render()


class ProcessMetrics:
    """The Prometheus clients' standard `process_*` metrics, refreshed before each scrape."""

    def __init__(self, registry: Metrics, sample: Callable[[], ProcessSample] = sample_process) -> None:
        self._sample = sample
        self.cpu = registry.counter("process_cpu_seconds_total", "User and system CPU time spent, seconds.")
        self.resident = registry.gauge("process_resident_memory_bytes", "Resident memory size, bytes.")
        self.virtual = registry.gauge("process_virtual_memory_bytes", "Virtual memory size, bytes.")
        self.open_fds = registry.gauge("process_open_fds", "Open file descriptors.")
        self.max_fds = registry.gauge("process_max_fds", "The limit of open file descriptors.")
        self.start_time = registry.gauge("process_start_time_seconds", "Start time of the process, Unix seconds.")
        registry.add_collector(self.collect)

    def collect(self) -> None:
        s = self._sample()
        self.cpu.labels().value = s.cpu_seconds
        self.max_fds.set(s.max_fds)
        for gauge, value in ((self.resident, s.resident_bytes), (self.virtual, s.virtual_bytes),
                             (self.open_fds, s.open_fds), (self.start_time, s.start_time_s)):  # fmt: skip
            if value is not None:
                gauge.set(value)
