"""Which worker of a node a SIP datagram belongs to (pure: bytes in, a worker's index out).

Every worker of a node sends from the node's one SIP port and writes that port in Via and Contact, so
a peer sees one node. The kernel spreads what arrives on that port (SO_REUSEPORT) by the peer's
address, not by dialog, so a datagram may reach a worker that does not hold its transaction or
dialog. Each worker therefore stamps what it creates with its index (`stamp`): the Via branch of the
requests it sends, and its local tag of every dialog (the To-tag of our answers, the From-tag of our
requests). The stamp comes back unchanged:

- a **response** carries our branch in its top Via: it belongs to the worker that sent the request;
- an **in-dialog request** carries our local tag as its To-tag: it belongs to the dialog's worker;
- a new request (no To-tag) belongs to whichever worker the kernel chose (`owner` says None), unless
  the node knows better (an agent's phone calling about the caller it holds: `ivr.workers.mesh`);
- a new **call** (an INVITE without To-tag, and its CANCEL) belongs to the worker its Call-ID hashes to
  (`call_worker`): the kernel spreads by the peer's address, so every call of one peer (an SBC, a trunk, a
  proxy: all of a hotline's callers) would land on one worker and leave the others idle;
- a new **REGISTER** belongs to the worker its source host hashes to (`registrar_worker`): the registrar's
  limit on failed digest attempts counts per source address, and the kernel spreads one host's source
  ports over the workers, so a password guesser would otherwise get that limit once per worker.

A stamp that names no worker of this node (a peer's own token, a stamp from before a restart with more
workers) is handled where it arrived, as one process would: at worst a 481 for a dialog it never knew.
"""

from __future__ import annotations

import zlib

from ivr.sip.framing import raw_header_values

STAMP_PREFIX = "-w"
"""Random hex tokens (`ivr.sip.message.new_branch`, `new_tag`) never contain it."""
_PREFIX = STAMP_PREFIX.encode()
_MAX_DIGITS = 3
_HEAD_END = b"\r\n\r\n"
_RESPONSE = b"SIP/2.0 "
_VIA = (b"via", b"v")
_TO = (b"to", b"t")
_REGISTER = b"REGISTER "
_NEW_CALL = (b"INVITE ", b"CANCEL ")
_CALL_ID = (b"call-id", b"i")


def stamp(index: int) -> str:
    """What worker `index` appends to the branches and tags it makes."""
    return f"{STAMP_PREFIX}{index}"


def stamped_worker(token: bytes) -> int | None:
    """The worker index a branch or tag was stamped with; None when it carries no stamp."""
    at = token.rfind(_PREFIX)
    if at < 0:
        return None
    digits = token[at + len(_PREFIX):]
    if not digits.isdigit() or len(digits) > _MAX_DIGITS:
        return None
    return int(digits)


def owner(data: bytes) -> int | None:
    """The worker that holds this datagram's transaction (a response) or dialog (an in-dialog request),
    by its stamp; None: not ours by stamp (a new request, a malformed message, or a peer's token)."""
    if data.startswith(_RESPONSE):
        value = header_value(data, _VIA)
        if value is None:
            return None
        token = _param(value.split(b",", 1)[0], b"branch")
    else:
        token = _to_tag(data)
    return stamped_worker(token) if token else None


def _to_tag(data: bytes) -> bytes:
    """A request's To-tag (b"": none, or no To header): the tag after the URI, not a tag-like URI parameter."""
    value = header_value(data, _TO)
    return b"" if value is None else _param(value.rsplit(b">", 1)[-1], b"tag")


def target(data: bytes, me: int, count: int) -> int | None:
    """The other worker (of `count`) this datagram must go to; None: it is handled here, by `me`."""
    index = owner(data)
    if index is None or index == me or index >= count:
        return None
    return index


def call_worker(data: bytes, count: int) -> int | None:
    """The worker (of `count`) that takes a new call: an out-of-dialog INVITE, or the CANCEL of one, goes
    where its Call-ID hashes (crc32: the same in every worker), so its retransmissions and its CANCEL follow
    it; None for any other datagram."""
    if count < 2 or not data.startswith(_NEW_CALL) or _to_tag(data):
        return None
    call_id = header_value(data, _CALL_ID)
    return None if call_id is None else zlib.crc32(call_id.strip()) % count


def registrar_worker(data: bytes, host: str, count: int) -> int | None:
    """The worker (of `count`) that takes an out-of-dialog REGISTER from `host`: the same for every
    worker (crc32, not Python's per-process `hash`); None for any other datagram."""
    if count < 2 or not data.startswith(_REGISTER) or _to_tag(data):
        return None
    return zlib.crc32(host.encode()) % count


def header_value(data: bytes, names: tuple[bytes, ...]) -> bytes | None:
    """The value of the first header called one of `names` (lower case, compact form included)."""
    end = data.find(_HEAD_END)
    return next(raw_header_values(data if end < 0 else data[:end], names), None)


def _param(value: bytes, name: bytes) -> bytes:
    """The value of the header parameter `name` in one header value (b"": absent)."""
    for part in value.split(b";")[1:]:
        key, _, param = part.partition(b"=")
        if key.strip().lower() == name:
            return param.strip()
    return b""


__all__ = ["STAMP_PREFIX", "call_worker", "header_value", "owner", "registrar_worker", "stamp", "stamped_worker",
           "target"]
