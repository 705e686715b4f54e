"""The node's /metrics: the expositions of a node's workers merged into one (pure; issue 22).

A node of workers should look like one node to Prometheus, so the node's scrape (worker 0's port) says
what one process serving all the calls would say, and the usual queries and alerts work unchanged:

- counters and histograms (calls, SIP messages, RTP packets, waits, loop lag, GC pauses...): **summed**
  sample by sample (same name and labels; every worker runs the same code, so histograms share buckets);
- `process_*` figures of the processes: summed too (CPU seconds, memory and descriptors of the node),
  except `process_max_fds` (the first worker's: a per-process limit) and `process_start_time_seconds`
  (the earliest);
- the live gauges (`ivr_calls_active`, `ivr_queue_length`, `ivr_queue_longest_wait_seconds`, `ivr_agents`)
  and `ivr_build_info`: **the first exposition's** only, since worker 0 computes them for the whole node
  (its live view mirrors the other workers' calls; agents come from the one ACD log).

Each worker's own port keeps serving its own figures, unmerged, for a look at one process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ivr.web.metrics import _number

FIRST_ONLY = frozenset({
    "ivr_calls_active", "ivr_queue_length", "ivr_queue_longest_wait_seconds", "ivr_agents", "ivr_build_info",
    "process_max_fds",
})  # fmt: skip
"""Families taken from the first exposition (the node's front) alone."""
EARLIEST = frozenset({"process_start_time_seconds"})
"""Families whose samples merge as the smallest value."""


@dataclass(slots=True)
class _Family:
    header: list[str] = field(default_factory=list)
    samples: dict[str, float] = field(default_factory=dict)
    """Sample key (name and labels, as written) → merged value, in first-seen order."""


def _family_of(line: str) -> str:
    """`# HELP name ...` / `# TYPE name kind` → name."""
    parts = line.split(" ", 3)
    return parts[2] if len(parts) > 2 else ""


def _value(text: str) -> float:
    return float(text.replace("+Inf", "inf").replace("-Inf", "-inf"))


def merge_expositions(texts: Sequence[str]) -> str:
    """One exposition from several (format 0.0.4, as `ivr.web.metrics` writes it: each family's HELP and
    TYPE lines, then its samples). The first text is the front's; see the module docstring for the rules."""
    families: dict[str, _Family] = {}
    for position, text in enumerate(texts):
        current: _Family | None = None
        name = ""
        for line in text.splitlines():
            if not line:
                continue
            if line.startswith("#"):
                name = _family_of(line)
                current = families.get(name)
                if current is None:
                    current = families[name] = _Family()
                if line not in current.header:
                    current.header.append(line)
                continue
            if current is None or (position > 0 and name in FIRST_ONLY):
                continue
            key, _, raw = line.rpartition(" ")
            try:
                value = _value(raw)
            except ValueError:
                continue  # not ours to judge: a line we did not write is left out, not the scrape
            if key not in current.samples:
                current.samples[key] = value
            elif name in EARLIEST:
                current.samples[key] = min(current.samples[key], value)
            else:
                current.samples[key] += value
    lines: list[str] = []
    for family in families.values():
        lines.extend(family.header)
        lines.extend(f"{key} {_number(value)}" for key, value in family.samples.items())
    return "\n".join(lines) + "\n"


__all__ = ["EARLIEST", "FIRST_ONLY", "merge_expositions"]
