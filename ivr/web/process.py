"""The process's own figures for /metrics (CPU, memory, file descriptors, start time), read at scrape
time from /proc the way the Prometheus clients' process collector does, under the same metric names,
so the usual dashboards and alerts ("RSS grows", "fds near the limit") work unchanged.

Off Linux (no /proc) only the CPU time and the descriptor limit are known; the rest is left out.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

PROC_SELF = Path("/proc/self")
PROC_STAT = Path("/proc/stat")


@dataclass(slots=True, frozen=True)
class ProcessSample:
    cpu_seconds: float
    """User plus system CPU time of this process (children not included)."""
    max_fds: int
    resident_bytes: int | None = None
    virtual_bytes: int | None = None
    open_fds: int | None = None
    start_time_s: float | None = None
    """Unix time the process started."""


def _start_time_s(proc: Path, proc_stat: Path) -> float | None:
    """Boot time (/proc/stat `btime`) plus the process's start in clock ticks after boot (/proc/self/stat
    field 22; the command name before it may hold spaces and parentheses, so count from the last ')')."""
    fields = (proc / "stat").read_text().rpartition(")")[2].split()
    started_ticks = int(fields[19])
    for line in proc_stat.read_text().splitlines():
        if line.startswith("btime "):
            return int(line.split()[1]) + started_ticks / os.sysconf("SC_CLK_TCK")
    return None


def sample_process(proc: Path = PROC_SELF, proc_stat: Path = PROC_STAT) -> ProcessSample:
    times = os.times()
    soft_fds, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    cpu = times.user + times.system
    try:
        pages_total, pages_resident = (int(x) for x in (proc / "statm").read_text().split()[:2])
        page = resource.getpagesize()
        return ProcessSample(
            cpu_seconds=cpu,
            max_fds=soft_fds,
            resident_bytes=pages_resident * page,
            virtual_bytes=pages_total * page,
            open_fds=len(os.listdir(proc / "fd")),
            start_time_s=_start_time_s(proc, proc_stat),
        )
    except (OSError, ValueError, IndexError):  # no /proc (not Linux) or an unexpected layout
        return ProcessSample(cpu_seconds=cpu, max_fds=soft_fds)
