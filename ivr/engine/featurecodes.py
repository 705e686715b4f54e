"""Feature codes: `*21`, `*22`... dialled from an agent's (or supervisor's) own registered phone.

`FeatureCodes` is a small router: parts of the engine register a code with a handler (agents: pause,
resume, end wrap-up, log out; recording: a supervisor's listen/whisper/barge on an agent), and
`DeskCalls` hands it the calls of registered phones whose dialled number is a code. The call is
answered; the handler runs in the call's task with the answered leg, may keep it as long as it needs
(a supervisor listening), and returns a short confirmation to speak (or None); `FeatureRefused` has
its reason spoken instead. Then the call is hung up.

A code is `*` and two digits. Registered with `argument=True`, the dialled string may go on after the
code (`*31a7`: the agent to listen to); the longest registered code that prefixes the dialled string wins.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from ivr.call import CallEnded, Prompt
from ivr.engine.legs import SipMediaLeg
from ivr.errors import IvrError

log = structlog.get_logger(__name__)

_CODE = re.compile(r"^\*[0-9]{2}$")
MAX_ARGUMENT_CHARS = 32
REFUSED_TEXT = "Sorry, that is not possible now."
PROMPT_ID = "feature_code"
"""The prompt id confirmations are spoken under (text given per call: rendered once, then cached)."""


class FeatureRefused(IvrError):
    """A handler cannot do what the code asks (not in wrap-up, unknown agent...): the reason is spoken."""

    def __init__(self, reason: str, spoken: str = REFUSED_TEXT) -> None:
        super().__init__(reason)
        self.spoken = spoken


@dataclass(slots=True, frozen=True)
class FeatureCall:
    """One feature code dialled from a registered phone."""

    code: str
    argument: str
    """What the dialled string has after the code ("" when nothing)."""
    user: str
    """The phone's SIP username (agents.yaml)."""
    agent_id: str | None
    """The ACD agent that username belongs to."""
    supervisor: bool
    leg: SipMediaLeg
    """The answered call from that phone."""
    call_id: str
    dialect: str = "en"
    """The dialect confirmations are spoken in."""


FeatureHandler = Callable[[FeatureCall], Awaitable[str | None]]


@dataclass(slots=True, frozen=True)
class FeatureCode:
    code: str
    handler: FeatureHandler
    argument: bool
    supervisor: bool
    description: str


class FeatureCodes:
    """The codes registered on this engine; see the module docstring."""

    def __init__(self, dialect: str = "en") -> None:
        self._codes: dict[str, FeatureCode] = {}
        self._dialect = dialect

    def register(self, code: str, handler: FeatureHandler, *, argument: bool = False, supervisor: bool = False,
                 description: str = "") -> None:
        if not _CODE.match(code):
            raise ValueError(f"feature code {code!r} must be '*' and two digits")
        if code in self._codes:
            raise ValueError(f"feature code {code} is already registered ({self._codes[code].description})")
        self._codes[code] = FeatureCode(code, handler, argument, supervisor, description)

    def codes(self) -> list[FeatureCode]:
        return sorted(self._codes.values(), key=lambda c: c.code)

    def match(self, dialed: str) -> tuple[FeatureCode, str] | None:
        """The code `dialed` asks for and its argument; None when it is no registered code."""
        if not dialed.startswith("*") or len(dialed) > 3 + MAX_ARGUMENT_CHARS:
            return None
        found = self._codes.get(dialed[:3])
        if found is None:
            return None
        argument = dialed[3:]
        if argument and not found.argument:
            return None
        return found, argument

    def accepts(self, dialed: str) -> bool:
        return self.match(dialed) is not None

    async def run(self, dialed: str, user: str, agent_id: str | None, supervisor: bool, leg: SipMediaLeg) -> None:
        """Serve one code on its answered leg: the handler, the confirmation (or refusal), then BYE."""
        matched = self.match(dialed)
        spoken: str | None = REFUSED_TEXT
        try:
            if matched is None:
                log.info("feature_code_unknown", dialed=dialed, user=user)
            elif matched[0].supervisor and not supervisor:
                log.info("feature_code_refused", code=matched[0].code, user=user, reason="not a supervisor")
            else:
                code, argument = matched
                call = FeatureCall(code.code, argument, user, agent_id, supervisor, leg, leg.call_id, self._dialect)
                try:
                    spoken = await code.handler(call)
                    log.info("feature_code_done", code=code.code, argument=argument, user=user, agent=agent_id)
                except FeatureRefused as exc:
                    spoken = exc.spoken
                    log.info("feature_code_refused", code=code.code, user=user, reason=str(exc))
            if spoken and not leg.ended:
                await leg.play([Prompt(PROMPT_ID, spoken, self._dialect)])
        except CallEnded:
            pass
        finally:
            await leg.aclose()


__all__ = ["FeatureCall", "FeatureCode", "FeatureCodes", "FeatureHandler", "FeatureRefused"]
