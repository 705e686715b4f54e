"""Flow benchmark: how fast a flow file loads and validates, and how many call steps the interpreter
runs per second over simulated calls (no sockets: the data dip is an in-memory stub).

Loading happens on every hot reload; interpreting is per call step, on the event loop.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import pathlib
import platform
import statistics
import sys
import time
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.call import QueueOutcomeKind  # noqa: E402
from ivr.flow import HttpReply, load_flow, load_text  # noqa: E402
from ivr.logconfig import configure_logging  # noqa: E402
from ivr.testing import Turn  # noqa: E402
from ivr.testing.flowsim import simulate  # noqa: E402

HOTLINE = ROOT / "flows" / "hotline.yaml"
LOADS = 30
CALLS = 300


class MemoryBackend:
    async def request(self, method: str, url: str, *, json_body: Any, timeout_s: float) -> HttpReply:
        if "/customers/" in url:
            return HttpReply(200, {"name": "张伟", "elderly": False, "dialect": "cmn"})
        return HttpReply(
            200, {"product": "国寿福", "status": "有效", "amount": 300000, "next_due": "2026-03-15"}
        )


SCRIPTS: dict[str, list[Turn]] = {
    "claim by speech": [Turn.say("我要报案")],
    "policy self-service": [
        Turn.say("查一下我的保单"),
        Turn.keys("2005123456#"),
        Turn.keys("2"),
        Turn.keys("9"),
    ],
    "key menu fallback": [Turn.say("今天天气怎么样"), Turn.say("嗯"), Turn.keys("1")],
}


def timed(fn: Any, reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


async def run_calls(script: list[Turn], flow: Any) -> tuple[float, int]:
    http = MemoryBackend()
    steps = 0
    t0 = time.perf_counter()
    for _ in range(CALLS):
        sim = await simulate(
            flow,
            script,
            backend="http://memory",
            http=http,
            queue_results={"claims": QueueOutcomeKind.ANSWERED},
        )
        steps += len(sim.events)
    return time.perf_counter() - t0, steps


def main() -> None:
    configure_logging("error")  # per-call info lines would be measured, and go to stderr anyway
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = HOTLINE.read_text(encoding="utf-8")
    print("## Flow: load/validate time and interpreter steps per second\n")
    print(f"`python -m bench.flow_steps` · {platform.machine()} · {os.cpu_count()} cores · {started}\n")
    validate_s = timed(lambda: load_text(text, "hotline.yaml", classifier_factory=None), LOADS)
    load_flow(HOTLINE)  # warm the classifier's imports
    full_s = timed(lambda: load_flow(HOTLINE), 5)
    lines = len(text.splitlines())
    print(f"flows/hotline.yaml: {lines} lines, median of {LOADS} runs\n")
    print("| step | median |")
    print("|---|---|")
    print(f"| parse + validate (no training) | {validate_s * 1000:.1f} ms |")
    print(f"| full load incl. intent classifier training | {full_s * 1000:.1f} ms |")
    flow = load_flow(HOTLINE)
    print(f"\nInterpreter over the simulated Call, {CALLS} calls per script, one event loop:\n")
    print("| script | calls/s | journey steps/s | steps per call |")
    print("|---|---|---|---|")
    for name, script in SCRIPTS.items():
        elapsed, steps = asyncio.run(run_calls(script, flow))
        print(f"| {name} | {CALLS / elapsed:,.0f} | {steps / elapsed:,.0f} | {steps / CALLS:.0f} |")


if __name__ == "__main__":
    main()
