"""What a SIPp peer saw: its message log (`sipp -trace_msg`) parsed into the messages it sent and received.

A protocol test asserts on the peer's side of the wire, not only on the engine's log: SIPp's exit code
says its scenario ran to the end, and this log says what the engine actually put in each message
(an SDP answer in the 200, a Refer-To, a Record-Route, the Via of the proxy that forwarded a request).
"""

from __future__ import annotations

import datetime
import pathlib
import re
from dataclasses import dataclass

__all__ = ["SippMessage", "parse_message_log", "read_message_log"]

_SEPARATOR = re.compile(r"-{20,} (\d{4}-\d\d-\d\d)\s+(\d\d:\d\d:\d\d\.\d+)[^\n]*$", re.MULTILINE)
# Under `-lost`, SIPp notes a dropped message as "UDP message lost (recv)." with no line end, so the next
# separator may start mid-line: the separator is not anchored, and the note is taken out of the text.
_LOST_NOTE = re.compile(r"\w+ message lost \((?:recv|send)\)\.?")
_DIRECTION = re.compile(r"^(\w+) message (sent|received)\b.*?:\s*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class SippMessage:
    """One SIP message in SIPp's log, as SIPp sent or received it."""

    direction: str
    """`sent` or `received`, from SIPp's side."""
    text: str
    """The message: start line, headers, blank line, body (line ends normalized to LF)."""
    at: float
    """When SIPp logged it, in seconds since the epoch (SIPp writes its local time, to the microsecond)."""

    @property
    def start_line(self) -> str:
        return self.text.split("\n", 1)[0].strip()

    @property
    def method(self) -> str | None:
        """The request method (`INVITE`), or None for a response."""
        first = self.start_line
        return None if first.startswith("SIP/2.0") else first.split(" ", 1)[0]

    @property
    def status(self) -> int | None:
        """The response status (200), or None for a request."""
        first = self.start_line
        return int(first.split(" ", 2)[1]) if first.startswith("SIP/2.0") else None

    @property
    def cseq_method(self) -> str:
        value = self.header("CSeq") or ""
        return value.split()[-1] if value else ""

    def headers(self, name: str) -> list[str]:
        """Every value of header `name` (case-insensitive; compact forms are not expanded), in order."""
        head = self.text.split("\n\n", 1)[0].split("\n")[1:]
        wanted = name.lower()
        found = []
        for line in head:
            key, sep, value = line.partition(":")
            if sep and key.strip().lower() == wanted:
                found.append(value.strip())
        return found

    def header(self, name: str) -> str | None:
        values = self.headers(name)
        return values[0] if values else None

    @property
    def body(self) -> str:
        return self.text.split("\n\n", 1)[1] if "\n\n" in self.text else ""


def parse_message_log(log: str) -> list[SippMessage]:
    """The messages of a `-trace_msg` log, oldest first."""
    messages = []
    parts = _SEPARATOR.split(_LOST_NOTE.sub("", log.replace("\r\n", "\n")))
    # split() with two groups: [before, date, time, chunk, date, time, chunk, ...]
    for day, clock, chunk in zip(parts[1::3], parts[2::3], parts[3::3], strict=True):
        match = _DIRECTION.search(chunk)
        if match is None:
            continue
        text = chunk[match.end() :].strip("\n")
        if text:
            at = datetime.datetime.strptime(f"{day} {clock}", "%Y-%m-%d %H:%M:%S.%f").timestamp()
            messages.append(SippMessage(match.group(2), text + "\n", at))
    return messages


def read_message_log(path: pathlib.Path) -> list[SippMessage]:
    return parse_message_log(path.read_text(errors="replace")) if path.exists() else []
