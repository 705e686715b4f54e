"""Prompt rendering benchmark: what a prompt costs cold (espeak-ng), from the disk cache, and in a call.

Builds the demo hotline (flows/) for every dialect into an empty cache (cold), again from that
cache (warm, a restart), then times `audio_for` during "calls": a fixed prompt (served from
memory), a prompt with a policy number and an amount never seen before (variable parts rendered off
the loop) and the same again (variable parts from memory).

Usage: python -m bench.tts [--calls 50]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import structlog  # noqa: E402

from ivr.call import Prompt  # noqa: E402
from ivr.engine.flowprompts import load_flow_prompts  # noqa: E402
from ivr.voice import EspeakNgEngine, PromptLibrary, RenderCache, load_dialects  # noqa: E402


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{statistics.median(ordered) * 1000:.1f} / {p99 * 1000:.1f}"


async def _calls(library: PromptLibrary, n: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"fixed": [], "variable, cold": [], "variable, warm": []}
    for i in range(n):
        variables = {"policy_no": f"{2026000000 + i * 7919:010d}", "policy_product": "国寿福",
                     "policy_status": "有效", "paid_to": "2027-03-01"}  # fmt: skip
        for label, prompt in (
            ("fixed", Prompt("ask_need", "", "cmn")),
            ("variable, cold", Prompt("policy_status", "", "cmn", variables)),
            ("variable, warm", Prompt("policy_status", "", "cmn", variables)),
        ):
            start = time.perf_counter()
            await library.audio_for(prompt)
            times[label].append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="prompt rendering benchmark")
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    dialects = load_dialects(ROOT / "dialects")
    flows = load_flow_prompts(ROOT / "flows")
    with tempfile.TemporaryDirectory(prefix="bench-tts-") as tmp:
        cache = RenderCache(pathlib.Path(tmp))
        engine = EspeakNgEngine()
        with PromptLibrary(dialects, engine, cache, ROOT / "prompts") as library:
            start = time.perf_counter()
            cold = library.build(flows)
            cold_s = time.perf_counter() - start
        with PromptLibrary(dialects, engine, cache, ROOT / "prompts") as library:
            start = time.perf_counter()
            warm = library.build(flows)
            warm_s = time.perf_counter() - start
            times = asyncio.run(_calls(library, args.calls))
    print("## Prompt rendering (ivr.voice, espeak-ng)\n")
    print(f"Command: `python -m bench.tts --calls {args.calls}`  ")
    print(f"Machine: {platform.machine()}, {os.cpu_count()} cores; {engine.engine_id}  ")
    print(f"Date: {datetime.date.today().isoformat()}\n")
    pairs = len(cold.resolutions)
    print("| build (flows/, every dialect) | prompt×dialect pairs | parts rendered | from cache | seconds |")
    print("|---|---|---|---|---|")
    print(f"| cold (empty cache) | {pairs} | {cold.rendered} | {cold.from_cache} | {cold_s:.2f} |")
    print(f"| warm (restart) | {pairs} | {warm.rendered} | {warm.from_cache} | {warm_s:.2f} |")
    print(f"\n`audio_for` during calls, {args.calls} calls, milliseconds (median / p99):\n")
    print("| prompt | ms |")
    print("|---|---|")
    for label, values in times.items():
        print(f"| {label} | {_ms(values)} |")


if __name__ == "__main__":
    main()
