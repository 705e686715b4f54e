"""SIPp peers for the protocol tests: callers, and agents that log in by REGISTER and then answer as a UAS.

Every run keeps SIPp's own message log, so a test asserts what the peer saw on the wire (see
`ivr.testing.sippeer`), not only that SIPp exited 0. Scenarios live in `scenarios/` with `__NAME__`
placeholders filled per run.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ivr.testing.sippeer import SippMessage, read_message_log
from tests.integration.sip.sip_peers import SippResult, free_port, run_sipp

SCENARIOS = pathlib.Path(__file__).resolve().parent / "scenarios"
SIPP_CANNOT_BIND = 254
"""SIPp's exit code for "could not bind a socket": a port we found free was taken before SIPp bound it
(other workers pick free ports too). Nothing was sent yet, so the run is tried again on other ports."""
BIND_ATTEMPTS = 3


@dataclass(slots=True)
class PeerRun:
    """A finished SIPp run: its exit, screens and the messages it sent and received."""

    result: SippResult
    messages: list[SippMessage]

    @property
    def returncode(self) -> int:
        return self.result.returncode

    def explain(self) -> str:
        wire = "\n".join(f"  {m.direction:>8}: {m.start_line}" for m in self.messages)
        return f"{self.result.explain()}\n--- what SIPp saw\n{wire}"

    def received(self, start: str) -> list[SippMessage]:
        """Messages SIPp received whose start line begins with `start` (`INVITE`, `SIP/2.0 200`)."""
        return [m for m in self.messages if m.direction == "received" and m.start_line.startswith(start)]

    def sent(self, start: str) -> list[SippMessage]:
        return [m for m in self.messages if m.direction == "sent" and m.start_line.startswith(start)]


def write_scenario(name: str, tmp: pathlib.Path, values: Mapping[str, object] | None = None) -> pathlib.Path:
    """scenarios/`name` with every `__KEY__` replaced by `values[key]` (keys in lower case)."""
    text = (SCENARIOS / name).read_text()
    for key, value in (values or {}).items():
        text = text.replace(f"__{key.upper()}__", str(value))
    leftover = re.findall(r"__[A-Z_]+__", text)
    assert not leftover, f"{name}: no value for {leftover}"
    out = tmp / name
    out.write_text(text)
    return out


async def run_peer(name: str, target_port: int, tmp: pathlib.Path, *, values: Mapping[str, object] | None = None,
                   **options: Any) -> PeerRun:
    """Run scenarios/`name` once to the end against 127.0.0.1:`target_port` (see `run_scenario`)."""
    return await run_scenario(write_scenario(name, tmp, values), target_port, tmp, **options)


async def run_scenario(scenario_file: pathlib.Path, target_port: int, tmp: pathlib.Path, *, service: str = "100",
                       extra: Sequence[str] = (), timeout_s: float = 30.0, uas: bool = False,
                       local_port: int | None = None) -> PeerRun:
    """Run a SIPp scenario file once against 127.0.0.1:`target_port` (or, `uas`, waiting on `local_port`),
    keeping its message log."""
    for _ in range(BIND_ATTEMPTS):
        message_file = tmp / f"{scenario_file.stem}-{local_port or 'any'}-{free_port()}-messages.log"
        result = await run_sipp(scenario_file, target_port, tmp, service=service, timeout_s=timeout_s, uas=uas,
                                local_port=local_port,
                                extra=[*extra, "-trace_msg", "-message_file", str(message_file)])
        run = PeerRun(result, await asyncio.to_thread(read_message_log, message_file))
        if result.returncode != SIPP_CANNOT_BIND or run.messages or local_port is not None:
            return run
    return run


@dataclass(slots=True)
class SippAgent:
    """An agent's phone played by SIPp: it registered (digest) to the engine with Contact on `port`,
    where a SIPp UAS runs one scenario; `finished` is that UAS run."""

    agent_id: str
    port: int
    registration: PeerRun
    finished: asyncio.Task[PeerRun] = field(repr=False)


@contextlib.asynccontextmanager
async def sipp_agent(tmp: pathlib.Path, agent_id: str, password: str, registrar_port: int, uas_scenario: str, *,
                     values: Mapping[str, object] | None = None, uas_extra: Sequence[str] = (),
                     timeout_s: float = 60.0, register_to_port: int | None = None) -> AsyncIterator[SippAgent]:
    """Start the agent's UAS (scenarios/`uas_scenario`, one call), then REGISTER its Contact with the
    engine (or a proxy in front of it: `register_to_port`) so the ACD logs the agent in."""
    port = free_port()
    folder = tmp / f"agent-{agent_id}"
    folder.mkdir(exist_ok=True)
    uas = asyncio.ensure_future(run_peer(uas_scenario, 0, folder, values=values, extra=uas_extra,
                                         timeout_s=timeout_s, uas=True, local_port=port))
    try:
        registration = await run_peer("register_agent.xml", register_to_port or registrar_port, folder,
                                      values={"contact_port": port}, service=agent_id,
                                      extra=["-au", agent_id, "-ap", password], timeout_s=15.0)
        assert registration.returncode == 0, registration.explain()
        yield SippAgent(agent_id, port, registration, uas)
    finally:
        if not uas.done():
            uas.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await uas

