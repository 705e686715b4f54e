"""Load runs: calls with media at a fixed rate against a loopback SIP endpoint, bounded in count and time.

One `TestCaller` (one SIP user agent, one media engine, a session per call) starts a call every
1/cps seconds for `duration_s` (at most `max_calls`); each call runs a scenario
(`ivr.testing.scenario`) with real RTP both ways. The report gives call setup time (INVITE sent →
200 OK) percentiles, the answer rate, failures by cause (a SIP status, a timeout, an unmet
expectation) and the quality of the audio the callers received (packet loss, RFC 3550 jitter from
each caller's RTP reception statistics). `ivr load` is the command over it.

Targets are loopback only: a load test never leaves the machine.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import json
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import structlog

from ivr.clock import Clock
from ivr.engine import gcpolicy
from ivr.engine.looplag import LoopLagMonitor
from ivr.errors import IvrError
from ivr.testing.callcheck import default_api, fetch_record
from ivr.testing.scenario import Scenario, check, load_scenarios, prepare_voices

log = structlog.get_logger(__name__)

MAX_CALLS = 20_000
MAX_DURATION_S = 3600.0
RECORD_GRACE_S = 60.0
"""Time allowed after the last call for the engine's records to be fetched."""


class LoadError(IvrError):
    """A load run cannot start: a bad option, a scenario file or a target off this machine."""


class FailureCause(enum.Enum):
    SIP_STATUS = "sip-status"
    """The INVITE got a final error response (4xx/5xx/6xx)."""
    TIMEOUT = "timeout"
    """No final answer to the INVITE in time, or the call outlived the run's bound."""
    EXPECTATION = "expectation"
    """Answered, but the engine's record did not match the scenario's `expect`."""
    ERROR = "error"
    """The test caller itself could not place the call (ports exhausted, voice missing)."""


def loopback_host(uri: str) -> str:
    """The host of a SIP URI; `LoadError` unless it is a loopback address."""
    rest = uri.split(":", 1)[1] if uri.lower().startswith(("sip:", "sips:")) else uri
    host = rest.split("@", 1)[-1].split(";", 1)[0].split("?", 1)[0]
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host == "localhost":
        return host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise LoadError(f"load target {uri!r}: host {host!r} is not an IP address; "
                        "load tests only call loopback (127.0.0.1 or ::1)") from None
    if not address.is_loopback:
        raise LoadError(f"load target {uri!r}: {host} is not a loopback address; "
                        "load tests only call this machine (127.0.0.1 or ::1)")
    return host


@dataclass(slots=True, frozen=True)
class LoadPlan:
    uri: str
    scenarios: tuple[Scenario, ...]
    cps: float
    duration_s: float
    max_calls: int = 2000
    api: str | None = None

    def __post_init__(self) -> None:
        loopback_host(self.uri)
        if not 0 < self.cps <= 1000:
            raise LoadError(f"--cps {self.cps:g}: expected a rate above 0 and at most 1000 calls a second")
        if not 0 < self.duration_s <= MAX_DURATION_S:
            raise LoadError(f"--duration {self.duration_s:g}: expected 0 < seconds <= {MAX_DURATION_S:g}")
        if not 1 <= self.max_calls <= MAX_CALLS:
            raise LoadError(f"--max-calls {self.max_calls}: expected 1 to {MAX_CALLS}")
        if not self.scenarios:
            raise LoadError("a load run needs at least one scenario")

    @property
    def calls(self) -> int:
        return max(1, min(self.max_calls, math.floor(self.cps * self.duration_s)))

    @property
    def bound_s(self) -> float:
        """The whole run never lasts longer than this."""
        longest = max(s.max_duration_s + s.linger_s for s in self.scenarios)
        return self.calls / self.cps + longest + 32.0 + RECORD_GRACE_S


@dataclass(slots=True)
class CallSample:
    scenario: str
    call_id: str = ""
    status: int = 0
    setup_s: float | None = None
    cause: FailureCause | None = None
    detail: str = ""
    packets_received: int = 0
    packets_lost: int = 0
    jitter_ms: float = 0.0

    @property
    def answered(self) -> bool:
        return self.setup_s is not None


@dataclass(slots=True)
class LoopLag:
    """How late the load generator's own event loop ran (the engine's `LoopLagMonitor`, every 50 ms). A stall
    here delays every caller's packets at once: what the engine then hears is the generator's doing, not its own."""

    samples: int = 0
    over_40ms: int = 0
    over_100ms: int = 0
    worst_s: float = 0.0
    _monitor: LoopLagMonitor | None = None

    def observe(self, lag_s: float) -> None:
        self.samples += 1
        self.over_40ms += lag_s > 0.04
        self.over_100ms += lag_s > 0.1
        self.worst_s = max(self.worst_s, lag_s)

    def start(self, clock: Clock) -> None:
        """Observe the loop's lag on `clock` until `stop` (counted in this report, not logged)."""
        self._monitor = LoopLagMonitor(clock, self.observe, stall_s=math.inf)
        self._monitor.start()

    def stop(self) -> None:
        if self._monitor is not None:
            self._monitor.stop()
            self._monitor = None

    def to_dict(self) -> dict[str, float]:
        return {"samples": self.samples, "over_40ms": self.over_40ms, "over_100ms": self.over_100ms,
                "worst_ms": round(1000 * self.worst_s, 1)}


@dataclass(slots=True)
class LoadReport:
    plan: LoadPlan
    samples: list[CallSample] = field(default_factory=list)
    loop: LoopLag = field(default_factory=LoopLag)
    """The generator's own loop lag over the run."""
    wall_s: float = 0.0
    peak_active: int = 0
    unfinished: int = 0
    """Calls cut off by the run's time bound (counted as timeouts)."""

    @property
    def answered(self) -> list[CallSample]:
        return [s for s in self.samples if s.answered]

    @property
    def failed(self) -> list[CallSample]:
        return [s for s in self.samples if s.cause is not None]

    def setup_ms(self) -> dict[str, float]:
        times = np.array([s.setup_s for s in self.answered], dtype=np.float64) * 1000.0
        if times.size == 0:
            return {}
        return {f"p{q}": round(float(np.percentile(times, q)), 1) for q in (50, 95, 99)} | {
            "max": round(float(times.max()), 1)}

    def failures_by_cause(self) -> dict[str, int]:
        return dict(Counter(f"{s.cause.value}: {s.detail}" for s in self.failed if s.cause is not None))

    def audio(self) -> dict[str, float]:
        answered = self.answered
        received = sum(s.packets_received for s in answered)
        lost = sum(max(0, s.packets_lost) for s in answered)
        jitter = np.array([s.jitter_ms for s in answered if s.packets_received], dtype=np.float64)
        out = {"packets_received": float(received), "packets_lost": float(lost),
               "loss_pct": round(100.0 * lost / (received + lost), 4) if received + lost else 0.0}
        if jitter.size:
            out |= {"jitter_ms_p50": round(float(np.percentile(jitter, 50)), 3),
                    "jitter_ms_p95": round(float(np.percentile(jitter, 95)), 3),
                    "jitter_ms_max": round(float(jitter.max()), 3)}
        return out

    @property
    def passed(self) -> bool:
        return bool(self.samples) and not self.failed

    def to_dict(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "uri": plan.uri, "scenarios": [s.name for s in plan.scenarios], "cps": plan.cps,
            "duration_s": plan.duration_s, "calls_planned": plan.calls, "calls": len(self.samples),
            "answered": len(self.answered),
            "answer_rate": round(len(self.answered) / len(self.samples), 4) if self.samples else 0.0,
            "achieved_cps": round(len(self.samples) / (plan.calls / plan.cps), 2) if self.samples else 0.0,
            "peak_concurrent": self.peak_active, "wall_s": round(self.wall_s, 2),
            "setup_ms": self.setup_ms(), "failed": len(self.failed), "failures": self.failures_by_cause(),
            "audio": self.audio(), "generator_loop_lag": self.loop.to_dict(), "passed": self.passed,
        }

    def render_text(self) -> str:
        d = self.to_dict()
        setup = d["setup_ms"]
        audio = d["audio"]
        lines = [
            f"load: {d['calls']} calls to {d['uri']} at {d['cps']:g} cps for {d['duration_s']:g} s "
            f"({', '.join(d['scenarios'])}); wall {d['wall_s']:.1f} s, peak {d['peak_concurrent']} calls at once",
            f"answered: {d['answered']}/{d['calls']} ({100 * d['answer_rate']:.2f}%)",
            "setup time: " + (", ".join(f"{k} {v:.1f} ms" for k, v in setup.items()) if setup else "no answered calls"),
            f"received audio: {int(audio['packets_received'])} packets, {int(audio['packets_lost'])} lost "
            f"({audio['loss_pct']:.3f}%)"
            + (f", jitter p50 {audio['jitter_ms_p50']:.2f} ms, p95 {audio['jitter_ms_p95']:.2f} ms, "
               f"max {audio['jitter_ms_max']:.2f} ms" if "jitter_ms_p50" in audio else ""),
            f"load generator's loop: worst lag {self.loop.worst_s * 1000:.0f} ms, {self.loop.over_100ms} wake-ups "
            f"over 100 ms of {self.loop.samples}",
            f"failed: {d['failed']}",
        ]
        lines += [f"  {count:5d}  {cause}" for cause, count in sorted(d["failures"].items(), key=lambda i: -i[1])]
        lines.append("PASS" if self.passed else "FAILED")
        return "\n".join(lines)


Progress = Callable[[LoadReport, int], None]
"""Called as calls start and end, with the report so far and the calls in progress."""


async def run_load(plan: LoadPlan, *, on_progress: Progress | None = None) -> LoadReport:
    """Start `plan.calls` calls at `plan.cps`, each running its scenario; gather what each saw."""
    from ivr.testing.caller import TestCaller

    await asyncio.to_thread(prepare_voices, plan.scenarios)
    api = plan.api or default_api(plan.uri)
    report = LoadReport(plan)
    active = 0

    def progress() -> None:
        if on_progress is not None:
            on_progress(report, active)

    async def one(scenario: Scenario) -> None:
        nonlocal active
        sample = CallSample(scenario.name)
        active += 1
        report.peak_active = max(report.peak_active, active)
        progress()
        try:
            await _call(caller, plan.uri, api, scenario, sample)
        finally:
            report.samples.append(sample)
            active -= 1
            progress()

    # The report of a load run reads no recording: the callers keep none and decode only while they wait.
    caller = await TestCaller.open(loopback_host(plan.uri).replace("localhost", "127.0.0.1"), record=False)
    # As the engine does (ivr.engine.gcpolicy): freeze what start-up built and collect young objects less often, so
    # the callers' packets are not held up by collections walking the whole heap.
    gcpolicy.after_start_up()
    report.loop.start(caller.clock)
    started = time.monotonic()
    tasks: list[asyncio.Task[None]] = []
    try:
        async with asyncio.timeout(plan.bound_s):
            for index in range(plan.calls):
                delay = started + index / plan.cps - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                scenario = plan.scenarios[index % len(plan.scenarios)]
                tasks.append(asyncio.create_task(one(scenario), name=f"load-call-{index}"))
            await asyncio.gather(*tasks)
    except TimeoutError:
        report.unfinished = sum(1 for t in tasks if not t.done())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        report.wall_s = time.monotonic() - started
        report.loop.stop()
        await caller.close()
    return report


async def _call(caller: Any, uri: str, api: str, scenario: Scenario, sample: CallSample) -> None:
    try:
        result = await caller.call(uri, scenario.steps, from_number=scenario.caller, linger_s=scenario.linger_s,
                                   max_duration_s=scenario.max_duration_s)
    except asyncio.CancelledError:
        sample.cause, sample.detail = FailureCause.TIMEOUT, "cut off by the run's time bound"
        raise
    except IvrError as exc:
        sample.cause, sample.detail = FailureCause.ERROR, type(exc).__name__
        log.warning("load_call_not_placed", error=str(exc))
        return
    sample.call_id, sample.status, sample.setup_s = result.call_id, result.status, result.setup_s
    sample.packets_received, sample.packets_lost = result.packets_received, result.packets_lost
    sample.jitter_ms = result.jitter_ms
    if not result.answered:
        timed_out = result.status in (408, 0)
        sample.cause = FailureCause.TIMEOUT if timed_out else FailureCause.SIP_STATUS
        sample.detail = "no answer in 32 s" if timed_out else f"SIP {result.status}"
        return
    if scenario.expect.needs_record:
        record, _, why = await fetch_record(api, result.call_id)
        failures = check(scenario.expect, record, why)
        if failures:
            sample.cause = FailureCause.EXPECTATION
            sample.detail = failures[0].split(", but")[0]
            log.info("load_expectation_failed", call_id=result.call_id, failures=failures)


def load_command(uri: str, *, cps: float, duration_s: float, scenario: str, max_calls: int, api: str | None,
                 as_json: bool) -> int:
    """`ivr load`: exit 0 when no call failed, 1 when some did, 2 for a bad option, file or target."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    err = Console(stderr=True)
    try:
        plan = LoadPlan(uri, tuple(load_scenarios(scenario)), cps, duration_s, max_calls, api)
    except IvrError as exc:
        err.print(f"ivr load: {exc}", markup=False, highlight=False)
        return 2
    with Progress(TextColumn("[bold]load"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[active]} in call · {task.fields[failed]} failed"),
                  TimeElapsedColumn(), console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("load", total=plan.calls, active=0, failed=0)

        def progress(report: LoadReport, active: int) -> None:
            bar.update(task, completed=len(report.samples), active=active, failed=len(report.failed))

        import uvloop

        # The engine's loop: the callers' RTP (50 packets/s each way per call) costs the generator, which
        # shares the machine with the engine under test, a third less CPU than on asyncio's own loop.
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            report = runner.run(run_load(plan, on_progress=progress))
    print(json.dumps(report.to_dict(), indent=2) if as_json else report.render_text())
    return 0 if report.passed else 1


__all__ = [
    "CallSample", "FailureCause", "LoadError", "LoadPlan", "LoadReport", "load_command", "loopback_host",
    "run_load",
]
