"""The user agent's plumbing, shared by calls, legs and registrations (the async façade over the endpoint).

`SipCore` wraps a `SipTransport` and its pure `SipEndpoint` with what every TU-level object needs: send a
request and get its responses (a timeout arrives as a synthesized 408, a transport failure as a 503),
answer a server transaction, build Via/Contact, keep the table of live call legs by dialog key, and
spawn background tasks. Each call drives the endpoint at the adapter's `now` and flushes what it queued.
It holds no call logic; `UserAgent` dispatches endpoint events into it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any

import structlog

from ivr.clock import Clock
from ivr.sip.builders import build_response
from ivr.sip.dialog import Dialog, DialogKey, address_of
from ivr.sip.events import Address, CallOffered
from ivr.sip.message import Request, Response
from ivr.sip.sessiontimer import TimerPolicy
from ivr.sip.transaction import ClientTransaction, ServerTransaction
from ivr.sip.transport import SipTransport
from ivr.sip.uri import SipUri

if TYPE_CHECKING:
    from ivr.sipua.leg import CallLeg
    from ivr.sipua.transfer import ReferListener

log = structlog.get_logger(__name__)

ResponseHandler = Callable[[Response], None]


class SipCore:
    """Sending with response callbacks, answering, identity headers, the call-leg table."""

    def __init__(self, transport: SipTransport, clock: Clock, *, user_agent: str = "ivr") -> None:
        self.transport = transport
        self.endpoint = transport.endpoint
        self.endpoint.user_agent = user_agent
        self.clock = clock
        self.user_agent = user_agent
        self.legs: dict[DialogKey, CallLeg] = {}
        self._handlers: dict[ClientTransaction, ResponseHandler] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.session_timer = TimerPolicy()
        """Session timers (RFC 4028) of our calls: the interval we ask for and the smallest we take."""
        self.refer_listener: ReferListener | None = None
        """Told of every REFER a peer sends in one of our dialogs (the engine's agent transfers)."""

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        """Run a background coroutine (a NOTIFY, a registration refresh) that nobody awaits."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("sip_task_failed", task=task.get_name(), exc_info=task.exception())

    async def cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- identity -------------------------------------------------------------------------------------

    def via(self) -> str:
        return self.endpoint.via()

    def contact(self, user: str | None = None) -> str:
        return self.endpoint.contact(user)

    @property
    def host(self) -> str:
        return self.endpoint.local_address[0]

    def destination(self, uri: SipUri) -> Address:
        return address_of(uri)

    # -- client side ----------------------------------------------------------------------------------

    def send(self, request: Request, destination: Address, handler: ResponseHandler) -> ClientTransaction:
        """Send `request` in a new client transaction; `handler` sees every response it passes up.

        A timeout is delivered as a 408 and a transport failure as a 503 built from the request
        (RFC 3261 8.1.3.1), so handlers have one path.
        """
        tx = self.endpoint.send_request(request, destination, self.transport.now())
        self._handlers[tx] = handler
        self.transport.flush()
        return tx

    def send_and_wait(self, request: Request, destination: Address) -> asyncio.Future[Response]:
        """Send and resolve with the final response (1xx are ignored)."""
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()

        def on_response(response: Response) -> None:
            if response.status >= 200 and not future.done():
                future.set_result(response)

        self.send(request, destination, on_response)
        return future

    def on_response(self, response: Response, transaction: ClientTransaction) -> bool:
        """Pass a response to its handler; False when none waits."""
        handler = self._handlers.get(transaction)
        if handler is None:
            return False
        if response.status >= 200:
            del self._handlers[transaction]
        handler(response)
        return True

    def on_failure(self, transaction: ClientTransaction, status: int, reason: str) -> None:
        """The transaction timed out (408) or its transport failed (503): its handler gets that response."""
        handler = self._handlers.pop(transaction, None)
        if handler is not None:
            handler(build_response(transaction.request, status, reason))

    def send_ack(self, dialog: Dialog, ack: Request) -> None:
        """ACK a 2xx of our (re-)INVITE in `dialog`; the endpoint re-sends it for each copy of the 2xx."""
        self.endpoint.send_ack(dialog.key, ack, address_of(dialog.next_hop()))
        self.transport.flush()

    # -- server side ----------------------------------------------------------------------------------

    def respond(self, transaction: ServerTransaction, status: int, reason: str | None = None, *,
                to_tag: str | None = None, headers: Iterable[tuple[str, str]] = (), body: bytes = b"",
                content_type: str | None = None) -> Response:
        response = self.endpoint.respond(transaction, status, reason, now=self.transport.now(), to_tag=to_tag,
                                         headers=headers, body=body, content_type=content_type)
        self.transport.flush()
        return response

    def answer(self, offered: CallOffered, sdp: bytes, headers: Iterable[tuple[str, str]]) -> Dialog:
        dialog = self.endpoint.answer(offered, sdp, now=self.transport.now(), headers=headers)
        self.transport.flush()
        return dialog

    def end_dialog(self, dialog: Dialog) -> None:
        self.endpoint.end_dialog(dialog.key)
