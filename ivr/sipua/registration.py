"""Outbound registration (RFC 3261 section 10.2): bind our contact at a trunk and keep it fresh.

`start()` registers (answering a 401/407 digest challenge and a 423 Interval Too Brief) and keeps a
task that re-registers shortly before the granted expiry, sleeping on the injected clock until
then. `stop()` de-registers with Expires: 0.
"""

from __future__ import annotations

import asyncio

import structlog

from ivr.sip.authorize import Credentials, authorized_retry
from ivr.sip.errors import SipError
from ivr.sip.events import Address
from ivr.sip.headers import CALL_ID, CONTACT, CSEQ, EXPIRES, FROM, MAX_FORWARDS, MIN_EXPIRES, TO, VIA
from ivr.sip.message import Headers, Request, Response, new_call_id, new_tag
from ivr.sip.uri import SipUri
from ivr.sipua.core import SipCore

log = structlog.get_logger(__name__)


class RegistrationFailed(SipError):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"registration refused: {status} {reason}")
        self.status = status


class Registration:
    """One address-of-record bound at one registrar."""

    def __init__(self, core: SipCore, registrar: SipUri, credentials: Credentials, *, expires_s: int,
                 destination: Address) -> None:
        self.core = core
        self.registrar = SipUri(registrar.scheme, None, registrar.host, registrar.port)
        self.aor = SipUri(registrar.scheme, credentials.username, registrar.host, registrar.port)
        self.credentials = credentials
        self.expires_s = expires_s
        self.destination = destination
        self.granted_s = 0
        """Seconds the registrar granted in its last 200 (0 when not registered)."""
        self._call_id = new_call_id(core.host)
        self._tag = new_tag()
        self._cseq = 0
        self._refresher: asyncio.Task[None] | None = None

    @property
    def registered(self) -> bool:
        return self.granted_s > 0

    async def start(self) -> int:
        """Register now and keep refreshing; returns the granted expiry. Raises RegistrationFailed."""
        granted = await self.register(self.expires_s)
        self._refresher = self.core.spawn(self._refresh_loop(), name=f"register-{self.aor}")
        return granted

    async def stop(self) -> None:
        """Stop refreshing and remove the binding (Expires: 0)."""
        if self._refresher is not None:
            self._refresher.cancel()
            self._refresher = None
        if self.registered:
            await self.register(0)

    async def register(self, expires_s: int) -> int:
        """One REGISTER exchange (with digest and 423 retries); returns the granted seconds.

        After a challenge every further REGISTER of the exchange (a 423 retry) answers the same challenge
        with the next nonce-count (RFC 7616 3.4): a registrar that tracks nonce-counts refuses a copied one.
        """
        request = self._request(expires_s)
        challenge: Response | None = None
        nc = 0
        for _ in range(4):
            response = await self.core.send_and_wait(request, self.destination)
            self._cseq = response.cseq.seq
            if response.status in (401, 407) and challenge is None:
                challenge = response
            elif response.status == 423 and expires_s:
                expires_s = int(response.headers.get(MIN_EXPIRES) or expires_s * 2)
                request = self._request(expires_s)
                if challenge is None:
                    continue
            elif 200 <= response.status < 300:
                self.granted_s = self._granted(response, expires_s)
                log.info("sip_registered", aor=str(self.aor), expires_s=self.granted_s)
                return self.granted_s
            else:
                break
            nc += 1
            retry = authorized_retry(request, challenge, self.credentials, via=self.core.via(), nc=nc)
            if retry is None:
                break
            request = retry
            self._cseq = request.cseq.seq
        self.granted_s = 0
        raise RegistrationFailed(response.status, response.reason)

    async def _refresh_loop(self) -> None:
        clock = self.core.clock
        while True:
            wait_s = max(self.granted_s - 5, self.granted_s * 0.5, 1)
            await clock.sleep_until(clock.now() + wait_s)
            try:
                await self.register(self.expires_s)
            except RegistrationFailed as exc:
                log.warning("sip_registration_refresh_failed", aor=str(self.aor), status=exc.status)
                await clock.sleep_until(clock.now() + 30)

    def _request(self, expires_s: int) -> Request:
        self._cseq += 1
        headers = Headers()
        headers.add(VIA, self.core.via())
        headers.add(MAX_FORWARDS, "70")
        headers.add(FROM, f"<{self.aor}>;tag={self._tag}")
        headers.add(TO, f"<{self.aor}>")
        headers.add(CALL_ID, self._call_id)
        headers.add(CSEQ, f"{self._cseq} REGISTER")
        headers.add(CONTACT, self.core.contact(self.credentials.username))
        headers.add(EXPIRES, str(expires_s))
        return Request("REGISTER", self.registrar, headers)

    def _granted(self, response: Response, asked_s: int) -> int:
        mine = self.core.contact(self.credentials.username).strip("<>")
        for contact in response.contact:
            if str(contact.uri) == mine:
                value = contact.param("expires")
                if value is not None and value.isascii() and value.isdigit():
                    return int(value)
        return response.expires if response.expires is not None else asked_s
