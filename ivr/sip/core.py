"""The user agent core's plumbing, shared by calls, legs and registrations.

`SipCore` wraps a `SipTransport` with what every TU-level object needs: send a request and get its
responses (a timeout arrives as a synthesized 408), answer a server transaction, build Via/Contact,
keep the table of live call legs by dialog key, and retry a request with digest credentials after a
401/407. It holds no call logic; `UserAgent` dispatches transport events into it.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from ivr.clock import Clock
from ivr.sip.dialog import DialogKey, address_of
from ivr.sip.digest import DigestChallenge, make_authorization
from ivr.sip.errors import AuthError, SipParseError
from ivr.sip.events import Address
from ivr.sip.headers import (
    ACCEPT,
    ALLOW,
    AUTHORIZATION,
    CONTACT,
    CSEQ,
    PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION,
    SERVER,
    SUPPORTED,
    USER_AGENT,
    VIA,
    WWW_AUTHENTICATE,
)
from ivr.sip.message import Request, Response, build_response, new_branch
from ivr.sip.transaction import ClientTransaction, ServerTransaction
from ivr.sip.transport import SipTransport
from ivr.sip.uri import SipUri

if TYPE_CHECKING:
    from ivr.sip.leg import CallLeg

log = structlog.get_logger(__name__)

ALLOWED_METHODS = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, REFER, NOTIFY, UPDATE, REGISTER"
ResponseHandler = Callable[[Response], None]


@dataclass(slots=True, frozen=True)
class Credentials:
    """A digest username and password (for a trunk, or for calls that get challenged)."""

    username: str
    password: str


class SipCore:
    """Sending with response callbacks, answering, identity headers, the call-leg table."""

    def __init__(self, transport: SipTransport, clock: Clock, *, user_agent: str = "ivr") -> None:
        self.transport = transport
        self.clock = clock
        self.user_agent = user_agent
        self.legs: dict[DialogKey, CallLeg] = {}
        self._handlers: dict[ClientTransaction, ResponseHandler] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        """Run a background coroutine (a NOTIFY, a BYE after ACK timeout) that nobody awaits."""
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
        return self.transport.via(new_branch())

    def contact(self, user: str | None = None) -> str:
        return self.transport.contact(user)

    @property
    def host(self) -> str:
        return self.transport.local_address[0]

    def destination(self, uri: SipUri) -> Address:
        return address_of(uri)

    # -- client side ----------------------------------------------------------------------------------

    def send(self, request: Request, destination: Address, handler: ResponseHandler) -> ClientTransaction:
        """Send `request` in a new client transaction; `handler` sees every response it passes up.

        A timeout is delivered as a 408 built from the request, so handlers have one path.
        """
        request.headers.set(USER_AGENT, self.user_agent)
        tx = self.transport.send_request(request, destination)
        self._handlers[tx] = handler
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
        """Pass a response to its handler; False when none waits (e.g. a retransmitted 2xx)."""
        handler = self._handlers.get(transaction)
        if handler is None:
            return False
        if response.status >= 200:
            del self._handlers[transaction]  # later 2xx copies go to the leg via its dialog key
        handler(response)
        return True

    def on_timeout(self, transaction: ClientTransaction) -> None:
        handler = self._handlers.pop(transaction, None)
        if handler is not None:
            handler(build_response(transaction.request, 408, "Request Timeout (no response)"))

    def forget(self, transaction: ClientTransaction) -> None:
        self._handlers.pop(transaction, None)

    # -- server side ----------------------------------------------------------------------------------

    def respond(self, transaction: ServerTransaction, status: int, reason: str | None = None, *,
                to_tag: str | None = None, headers: Iterable[tuple[str, str]] = (), body: bytes = b"",
                content_type: str | None = None) -> Response:
        extra = list(headers)
        if status == 405 or (transaction.method == "OPTIONS" and status == 200):
            extra += [(ALLOW, ALLOWED_METHODS), (ACCEPT, "application/sdp"), (SUPPORTED, "replaces")]
        extra.append((SERVER, self.user_agent))
        response = build_response(transaction.request, status, reason, to_tag=to_tag, headers=extra,
                                  body=body, content_type=content_type)
        self.transport.send_response(transaction, response)
        return response

    # -- digest ---------------------------------------------------------------------------------------

    def authorized_retry(self, request: Request, challenge_response: Response, credentials: Credentials,
                         nc: int = 1) -> Request | None:
        """A copy of `request` answering the 401/407 challenge (new branch, CSeq+1), or None if impossible."""
        proxy = challenge_response.status == 407
        header = challenge_response.headers.get(PROXY_AUTHENTICATE if proxy else WWW_AUTHENTICATE)
        if header is None:
            return None
        try:
            challenge = DigestChallenge.parse(header)
            creds = make_authorization(challenge, method=request.method, uri=str(request.uri),
                                       username=credentials.username, password=credentials.password,
                                       cnonce=secrets.token_hex(8), nc=nc)
        except (AuthError, SipParseError):
            return None
        retry = Request(request.method, request.uri, request.headers.copy(), request.body)
        retry.headers.set(VIA, self.via())
        retry.headers.set(CSEQ, f"{request.cseq.seq + 1} {request.method}")
        retry.headers.set(PROXY_AUTHORIZATION if proxy else AUTHORIZATION, str(creds))
        return retry


def contact_uri(request: Request) -> SipUri | None:
    """The first Contact URI of a request, or None."""
    contacts = request.headers.get_all(CONTACT)
    if not contacts or contacts[0].strip() == "*":
        return None
    return request.contact[0].uri
