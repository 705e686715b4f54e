"""Transfers in one dialog (asyncio): REFER both ways and the NOTIFYs that follow them (RFC 3515).

A `CallLeg` holds one `LegTransfers`. Sending: `refer(target)` REFERs the peer and waits for the
NOTIFY (message/sipfrag) that carries the final status of the call the peer placed. Receiving: a
REFER is answered 202 at once, queued as a `ReferReceived` dialog event, handed to the user agent's
`refer_listener` when the application set one (the engine's agent transfers), and followed by a
`NOTIFY 100 Trying`; the application then reports progress with `notify(status, reason)` — a final
status terminates the implicit subscription. A NOTIFY for another event package gets 489.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ivr.call import CallEnded, TransferResult
from ivr.sip.dialog import Dialog, parse_sipfrag, sipfrag_body
from ivr.sip.events import DialogEvent, ReferReceived, TransferNotified
from ivr.sip.headers import EVENT, REFER_TO, REFERRED_BY, SUBSCRIPTION_STATE
from ivr.sip.message import Request, Response
from ivr.sip.transaction import ServerTransaction

if TYPE_CHECKING:
    from ivr.sipua.core import SipCore

Notify = Callable[[int, str], Awaitable[None]]
"""Reports a transfer's progress to the peer that asked for it (`LegTransfers.notify`)."""
ReferListener = Callable[[str, ReferReceived, Notify], None]
"""Told of every REFER a peer sends in a dialog: (the dialog's Call-ID, the request, how to report progress)."""

SIPFRAG = "message/sipfrag;version=2.0"
NOTIFY_EXPIRES_S = 60


async def _ended_send(request: Request) -> Response:
    raise CallEnded(f"call {request.call_id} ended: no {request.method} in it")


def _drop_event(event: DialogEvent) -> None:
    pass


def _always() -> bool:
    return True


class LegTransfers:
    """The REFER/NOTIFY side of one dialog; see the module docstring."""

    def __init__(self, core: SipCore, dialog: Dialog, send: Callable[[Request], Awaitable[Response]],
                 queue_event: Callable[[DialogEvent], None], ended: Callable[[], bool]) -> None:
        self._core = core
        self._dialog = dialog
        self._send = send
        self._queue_event = queue_event
        self._ended = ended
        self._waiter: asyncio.Future[TransferResult] | None = None
        self.last_notified = 0
        """The last status we reported in a NOTIFY (0: none yet); a final one ends our reports."""

    async def refer(self, target: str, *, timeout_s: float = 32.0,
                    headers: list[tuple[str, str]] | None = None) -> TransferResult:
        """REFER the peer to `target` and follow its NOTIFYs to a final status (or `timeout_s`)."""
        waiter: asyncio.Future[TransferResult] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        refer_to = target if target.startswith("<") else f"<{target}>"
        extra = [(REFER_TO, refer_to), (REFERRED_BY, self._dialog.local_contact), *(headers or [])]
        response = await self._send(self._dialog.new_request("REFER", self._core.via(), headers=extra))
        if response.status >= 300:
            self._waiter = None
            return TransferResult(accepted=False, status=response.status)
        try:
            async with asyncio.timeout(timeout_s):
                return await waiter
        except TimeoutError:
            return TransferResult(accepted=True, status=response.status)
        finally:
            self._waiter = None

    async def notify(self, status: int, reason: str) -> None:
        """Report how the transfer the peer asked of us goes; nothing after a final report or the end."""
        if self._ended() or self.last_notified >= 200:
            return
        self.last_notified = status
        state = "terminated;reason=noresource" if status >= 200 else f"active;expires={NOTIFY_EXPIRES_S}"
        request = self._dialog.new_request(
            "NOTIFY", self._core.via(), body=sipfrag_body(status, reason), content_type=SIPFRAG,
            headers=[(EVENT, "refer"), (SUBSCRIPTION_STATE, state)],
        )
        await self._send(request)

    def leg_ended(self) -> None:
        """The dialog ended: a REFER still waiting for its NOTIFY has failed, and nothing more is sent or
        queued. The callbacks (the leg's methods; the leg holds this object) are let go, so an ended leg is
        freed by reference counting instead of waiting in a cycle for the garbage collector (issue 22)."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(TransferResult(accepted=False, status=0))
        self._send, self._queue_event, self._ended = _ended_send, _drop_event, _always


    def on_refer(self, request: Request, tx: ServerTransaction) -> None:
        refer_to = request.headers.get(REFER_TO)
        if not refer_to:
            self._core.respond(tx, 400, "REFER without Refer-To")
            return
        self._core.respond(tx, 202)
        self.last_notified = 0
        target = refer_to.strip()
        if target.startswith("<") and ">" in target:
            target = target[1:target.index(">")]  # the URI, with any headers (?Replaces=...)
        event = ReferReceived(target, request.headers.get(REFERRED_BY))
        self._queue_event(event)
        self._core.spawn(self.notify(100, "Trying"))
        listener = self._core.refer_listener
        if listener is not None:
            listener(self._dialog.call_id, event, self.notify)

    def on_notify(self, request: Request, tx: ServerTransaction) -> None:
        event = (request.headers.get(EVENT) or "").split(";", 1)[0].strip().lower()
        if event != "refer":
            self._core.respond(tx, 489)  # Bad Event
            return
        self._core.respond(tx, 200)
        frag = parse_sipfrag(request.body)
        if frag is None:
            return
        status, reason = frag
        terminated = (request.headers.get(SUBSCRIPTION_STATE) or "").lower().startswith("terminated")
        final = status >= 200 or terminated
        self._queue_event(TransferNotified(status, reason, final))
        waiter = self._waiter
        if final and waiter is not None and not waiter.done():
            waiter.set_result(TransferResult(accepted=200 <= status < 300, status=status))


__all__ = ["SIPFRAG", "LegTransfers", "Notify", "ReferListener"]
