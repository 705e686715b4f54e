"""Recording benchmark: CPU and disk writes per recorded call, at 100 and 300 concurrent recorded calls.

Each call is a real `Bridge` of two legs (PCMU caller, PCMA agent) fed one 20 ms packet per side per tick,
paced in real time, with a `Recording` tapping it (left caller, right agent) and the engine's one writer
thread writing the stereo WAV files to a temporary directory. The same run without recording is the
baseline; the difference is what recording costs. CPU is the process's (event-loop side + writer thread,
`getrusage`), normalised per second of recorded call; disk is the bytes `write()` was asked to write
(`/proc/self/io` wchar) and the files' sizes.
"""

from __future__ import annotations

import datetime
import os
import pathlib
import platform
import resource
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from ivr.media.bridge import Bridge, Forward, RelayedPacket  # noqa: E402
from ivr.media.g711 import PCMA, PCMU, G711Codec  # noqa: E402
from ivr.media.tones import tone  # noqa: E402
from ivr.recording import Recorder, Recording  # noqa: E402

CALLS = (100, 300)
SECONDS = 10.0
TICK_S = 0.02
DAY = datetime.datetime(2026, 12, 6, tzinfo=datetime.UTC)


class Leg:
    """A bridge leg that drops what it is sent (the network is not what is measured)."""

    def __init__(self, codec: G711Codec) -> None:
        self.codec = codec
        self.forward: Forward | None = None

    def start_relay(self, forward: Forward, bridge: Bridge) -> None:
        self.forward = forward

    def stop_relay(self) -> None:
        self.forward = None

    def send_relayed(self, packet: RelayedPacket) -> None:
        pass


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _wchar() -> int:
    for line in pathlib.Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


def run(calls: int, record: bool, folder: pathlib.Path) -> dict[str, float]:
    speech = [tone((440.0 + 7 * i,), 1.0, level_dbfs=-16.0) for i in range(4)]
    frames = {codec.name: [codec.encode(s[j * 160 : (j + 1) * 160]) for s in speech for j in range(50)]
              for codec in (PCMU, PCMA)}
    legs = [(Leg(PCMU), Leg(PCMA)) for _ in range(calls)]
    bridges = [Bridge(a, b) for a, b in legs]
    recorder = Recorder(folder)
    recordings: list[Recording] = []
    started = time.monotonic()
    if record:
        for i, bridge in enumerate(bridges):
            recording = recorder.start(f"bench-{i}", now=started, day=DAY)
            recording.attach(bridge, time.monotonic)
            recordings.append(recording)
    cpu0, wchar0, loop0 = _cpu_s(), _wchar(), time.thread_time()
    ticks = int(SECONDS / TICK_S)
    backlog = 0
    for tick in range(ticks):
        due = started + tick * TICK_S
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        k = tick % len(frames["PCMU"])
        for n, (a, b) in enumerate(legs):
            assert a.forward is not None and b.forward is not None
            a.forward(RelayedPacket(frames["PCMU"][k], tick * 160, n, False, False))
            b.forward(RelayedPacket(frames["PCMA"][(k + 37) % len(frames["PCMA"])], tick * 160, n, False, False))
        backlog = max(backlog, recorder.writer.queued - recorder.writer.written)
    loop_cpu = time.thread_time() - loop0
    wall = time.monotonic() - started
    for bridge in bridges:
        bridge.close()  # stops each recording (the tap's `closed`)
    dropped = sum(r.summary.dropped_frames for r in recordings if r.summary is not None)
    recorder.close()  # waits for the writer thread to finish the files
    cpu = _cpu_s() - cpu0
    audio_s = ticks * TICK_S
    files = sum(p.stat().st_size for p in folder.rglob("*.wav"))
    return {
        "cpu_s": cpu, "loop_cpu_s": loop_cpu, "wall_s": wall, "audio_s": audio_s, "wchar": _wchar() - wchar0,
        "files_bytes": files, "dropped": dropped, "backlog": backlog,
        "late_ticks": max(0.0, wall - SECONDS - 0.5),
    }


def main() -> None:
    load = os.getloadavg()
    rows = []
    for calls in CALLS:
        with tempfile.TemporaryDirectory() as base, tempfile.TemporaryDirectory() as rec:
            plain = run(calls, False, pathlib.Path(base))
            recorded = run(calls, True, pathlib.Path(rec))
        rows.append((calls, plain, recorded))
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print("## Call recording cost (recording)\n")
    print(f"- command: `python -m bench.recording`\n- machine: `{platform.machine()}`, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}\n- date: {now}\n- load average at start: "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (shared machine)")
    print(f"- load: N bridged calls (PCMU caller, PCMA agent), one 20 ms packet per side per tick for "
          f"{SECONDS:.0f} s paced in real time; with and without a stereo WAV recording of each\n")
    print("| recorded calls | CPU s, no recording | CPU s, recording | recording CPU per call "
          "(% of one core) | event-loop share of it | disk written per call (KB/s) | files (MB) | "
          "frames dropped | max writer backlog (0.5 s runs) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for calls, plain, recorded in rows:
        extra = recorded["cpu_s"] - plain["cpu_s"]
        per_call_pct = 100 * extra / recorded["audio_s"] / calls
        loop_extra = recorded["loop_cpu_s"] - plain["loop_cpu_s"]
        loop_share = loop_extra / extra if extra > 0 else 0.0
        disk_kbs = recorded["wchar"] / recorded["audio_s"] / calls / 1024
        print(f"| {calls} | {plain['cpu_s']:.2f} | {recorded['cpu_s']:.2f} | {per_call_pct:.3f} | "
              f"{100 * loop_share:.0f}% | {disk_kbs:.1f} | {recorded['files_bytes'] / 1e6:.1f} | "
              f"{int(recorded['dropped'])} | {int(recorded['backlog'])} |")
    print()
    calls, plain, recorded = rows[-1]
    extra = recorded["cpu_s"] - plain["cpu_s"]
    print(f"At {calls} recorded calls, recording costs {100 * extra / recorded['audio_s']:.1f}% of one core in "
          f"all; a stereo 8 kHz PCM16 file is 31.25 KB/s of audio, so the disk figure is that plus headers.")


if __name__ == "__main__":
    main()
