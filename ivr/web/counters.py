"""The protocol layers' own totals on /metrics (issue 16), copied in at scrape time.

The SIP endpoints, the SIP edge, the agents' registrar and the media engine are pure layers: they keep plain
monotonic ints and know nothing of Prometheus. `watch_counters` registers one collector that copies their
current totals into `EngineMetrics` before each scrape, so counting costs them an integer add and nothing here
runs on the call path. The sources are Protocols (read-only attributes), so this module imports no protocol code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from ivr.web.metrics import EngineMetrics


class SipTotals(Protocol):
    """One SIP endpoint's message totals (`ivr.sip.endpoint.SipEndpoint`)."""

    @property
    def requests_in(self) -> Mapping[str, int]: ...
    @property
    def requests_out(self) -> Mapping[str, int]: ...
    @property
    def responses_in(self) -> Mapping[tuple[str, int], int]: ...
    @property
    def responses_out(self) -> Mapping[tuple[str, int], int]: ...


class EdgeTotals(Protocol):
    """What the SIP edge turned away (`ivr.sip.edge.EdgeCounters`)."""

    @property
    def rate_limited(self) -> int: ...
    @property
    def untrusted_invites(self) -> int: ...
    @property
    def busy_sources(self) -> int: ...


class RegisterTotals(Protocol):
    """The registrar's REGISTER outcomes (`ivr.sip.registrar.RegistrarCounters`)."""

    @property
    def challenges(self) -> int: ...
    @property
    def registered(self) -> int: ...
    @property
    def wrong_answers(self) -> int: ...
    @property
    def throttled(self) -> int: ...
    @property
    def replays(self) -> int: ...
    @property
    def refused(self) -> int: ...


class MediaTotals(Protocol):
    """The media engine's packet totals (`ivr.rtp.MediaCounters`)."""

    @property
    def received(self) -> int: ...
    @property
    def malformed(self) -> int: ...
    @property
    def wrong_source(self) -> int: ...
    @property
    def unknown_payload_type(self) -> int: ...
    @property
    def oversize(self) -> int: ...
    @property
    def rtcp_dropped(self) -> int: ...
    @property
    def send_errors(self) -> int: ...
    @property
    def media_failures(self) -> int: ...
    @property
    def srtp_rejected(self) -> int: ...


class DialectMemoryTotals(Protocol):
    """What the remembered-dialect worker skipped to keep the loop free (`ivr.store.dialectworker`)."""

    @property
    def late_lookups(self) -> int: ...
    @property
    def dropped_writes(self) -> int: ...


@dataclass(frozen=True, slots=True)
class CounterSources:
    """Where the totals live; every part is optional (an engine without agents has no registrar)."""

    sip: tuple[SipTotals, ...] = ()
    """One endpoint per listener (UDP, TCP, TLS): their totals are summed."""
    over_capacity: Callable[[], int] | None = None
    """Requests dropped at the server-transaction cap (summed over the listeners by the caller)."""
    edge: EdgeTotals | None = None
    registrar: RegisterTotals | None = None
    media: MediaTotals | None = None
    dialect_memory: DialectMemoryTotals | None = None
    speech_shed: Callable[[], int] | None = None
    """Utterances the decode pool refused under overload (`ivr.speech.backlog.DecodeBacklog.shed`)."""


def collect_counters(metrics: EngineMetrics, sources: CounterSources) -> None:
    """Copy every source's current totals into `metrics` (runs before each scrape)."""
    requests: Counter[tuple[str, ...]] = Counter()
    responses: Counter[tuple[str, ...]] = Counter()
    for sip in sources.sip:
        for direction, by_method in (("in", sip.requests_in), ("out", sip.requests_out)):
            for method, n in by_method.items():
                requests[(method, direction)] += n
        for direction, by_code in (("in", sip.responses_in), ("out", sip.responses_out)):
            for (method, code), n in by_code.items():
                responses[(method, str(code), direction)] += n
    metrics.set_counts(metrics.sip_requests, requests)
    metrics.set_counts(metrics.sip_responses, responses)
    refused: dict[tuple[str, ...], int] = {}
    if sources.edge is not None:
        e = sources.edge
        refused |= {("rate_limited",): e.rate_limited, ("untrusted",): e.untrusted_invites,
                    ("busy_source",): e.busy_sources}  # fmt: skip
    if sources.over_capacity is not None:
        refused[("over_capacity",)] = sources.over_capacity()
    metrics.set_counts(metrics.sip_edge_refused, refused)
    if sources.registrar is not None:
        r = sources.registrar
        metrics.set_counts(metrics.sip_register, {
            ("challenged",): r.challenges, ("registered",): r.registered, ("wrong_answer",): r.wrong_answers,
            ("throttled",): r.throttled, ("replay",): r.replays, ("refused",): r.refused,
        })  # fmt: skip
    if sources.media is not None:
        m = sources.media
        metrics.set_counts(metrics.rtp_received, {(): m.received})
        metrics.set_counts(metrics.rtp_dropped, {
            ("malformed",): m.malformed, ("wrong_source",): m.wrong_source,
            ("unknown_payload_type",): m.unknown_payload_type, ("oversize",): m.oversize,
            ("rtcp",): m.rtcp_dropped, ("srtp",): m.srtp_rejected,
        })  # fmt: skip
        metrics.set_counts(metrics.rtp_send_errors, {(): m.send_errors})
        metrics.set_counts(metrics.media_failures, {(): m.media_failures})
    if sources.dialect_memory is not None:
        d = sources.dialect_memory
        metrics.set_counts(metrics.dialect_memory_skipped, {
            ("late_lookup",): d.late_lookups, ("dropped_write",): d.dropped_writes,
        })  # fmt: skip
    if sources.speech_shed is not None:
        metrics.set_counts(metrics.asr_shed, {(): sources.speech_shed()})


def watch_counters(metrics: EngineMetrics, sources: CounterSources) -> Callable[[], None]:
    """Register the collector for `sources` on `metrics`' registry; returns its remover."""
    return metrics.registry.add_collector(lambda: collect_counters(metrics, sources))
