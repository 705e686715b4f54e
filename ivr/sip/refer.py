"""Transfer wire formats: Refer-To with an embedded Replaces (RFC 3515, RFC 3891) and User-to-User (RFC 7433).

Pure text in, typed values out. An attended transfer's REFER names the dialog to replace inside the
Refer-To URI's headers (`<sip:a2@ivr?Replaces=call%40host%3Bto-tag%3Dx%3Bfrom-tag%3Dy>`); `ReferTarget.parse`
splits that into the target URI and a `Replaces` naming the dialog. `Replaces.key_at_recipient` gives the
dialog key (Call-ID, local tag, remote tag) as the UA receiving the Replaces holds it: RFC 3891 section
3 writes to-tag as the recipient's own tag.

User-to-User carries a few hundred octets of caller context from one hotline to the next: hex
encoded (`encoding=hex`), with a `purpose` naming what it is. The decoder refuses anything longer than
`MAX_UUI_OCTETS`, so a peer cannot make us hold megabytes per call.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

from ivr.sip.errors import SipParseError
from ivr.sip.uri import show, unescape

MAX_UUI_OCTETS = 1024
"""User-to-User data we send or accept (RFC 7433 leaves the bound to the application; ISDN's was 128)."""
MAX_REFER_TO_CHARS = 2048

_TOKEN = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")
_HEX = re.compile(r"^(?:[0-9A-Fa-f]{2})*$")


class ReferError(SipParseError):
    """A Refer-To, Replaces or User-to-User value we cannot use (answer 400)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, status_hint=400)


@dataclass(slots=True, frozen=True)
class Replaces:
    """The dialog an INVITE (or the INVITE a REFER asks for) replaces (RFC 3891)."""

    call_id: str
    to_tag: str
    """The tag of the UA that receives the Replaces (its local tag)."""
    from_tag: str
    """The tag of the other party of that dialog."""
    early_only: bool = False

    @classmethod
    def parse(cls, text: str) -> Replaces:
        """`callid;to-tag=x;from-tag=y[;early-only]`, unescaped already."""
        call_id, *raw = [part.strip() for part in text.split(";")]
        params: dict[str, str] = {}
        for item in raw:
            name, _, value = item.partition("=")
            params[name.strip().lower()] = value.strip()
        if not call_id:
            raise ReferError(f"Replaces {show(text)} has no Call-ID")
        for needed in ("to-tag", "from-tag"):
            if not params.get(needed):
                raise ReferError(f"Replaces {show(text)} has no {needed}")
        return cls(call_id, params["to-tag"], params["from-tag"], "early-only" in params)

    def __str__(self) -> str:
        return f"{self.call_id};to-tag={self.to_tag};from-tag={self.from_tag}" + (
            ";early-only" if self.early_only else ""
        )

    def key_at_recipient(self) -> tuple[str, str, str]:
        """(Call-ID, local tag, remote tag) of the replaced dialog as its recipient keys it."""
        return self.call_id, self.to_tag, self.from_tag


@dataclass(slots=True, frozen=True)
class ReferTarget:
    """What a REFER's Refer-To asks for: call `uri`, replacing `replaces` when it is an attended transfer."""

    uri: str
    """The target URI without its headers (`sip:a2@10.0.0.1:5060`)."""
    replaces: Replaces | None = None

    @classmethod
    def parse(cls, value: str) -> ReferTarget:
        """A Refer-To header value: `<uri?headers>;params` or a bare URI."""
        text = value.strip()
        if len(text) > MAX_REFER_TO_CHARS:
            raise ReferError(f"Refer-To is longer than {MAX_REFER_TO_CHARS} characters")
        if "<" in text:
            start, end = text.find("<"), text.find(">")
            if end < start:
                raise ReferError(f"Refer-To {show(text)} has no closing '>'")
            text = text[start + 1:end]
        uri, _, headers = text.partition("?")
        if not uri:
            raise ReferError("Refer-To is empty")
        replaces: Replaces | None = None
        for header in headers.split("&") if headers else ():
            name, _, raw = header.partition("=")
            if name.strip().lower() == "replaces":
                replaces = Replaces.parse(unescape(raw))
        return cls(uri.strip(), replaces)

    def __str__(self) -> str:
        if self.replaces is None:
            return f"<{self.uri}>"
        return f"<{self.uri}?Replaces={urllib.parse.quote(str(self.replaces), safe='')}>"


def target_user(uri: str) -> str:
    """The user part of a SIP URI (`a2` of `sip:a2@host`), or the tel number; "" when there is none."""
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    if rest.startswith("//"):
        return ""
    user = rest.split("@", 1)[0] if "@" in rest else ""
    if uri.lower().startswith("tel:"):
        user = rest.split(";", 1)[0]
    return unescape(user.split(";", 1)[0])


# --- User-to-User (RFC 7433) --------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class UserToUser:
    """One User-to-User header: its data and what it is for."""

    data: bytes
    purpose: str = ""
    content: str = ""

    def header_value(self) -> str:
        """`<hex>;encoding=hex;purpose=<p>[;content=<c>]` (RFC 7433 section 4.1)."""
        if len(self.data) > MAX_UUI_OCTETS:
            raise ReferError(f"User-to-User data is {len(self.data)} octets, more than {MAX_UUI_OCTETS}")
        value = self.data.hex() + ";encoding=hex"
        for name, param in (("purpose", self.purpose), ("content", self.content)):
            if param:
                if not _TOKEN.match(param):
                    raise ReferError(f"User-to-User {name} {show(param)} is not a token")
                value += f";{name}={param}"
        return value

    @classmethod
    def parse(cls, value: str) -> UserToUser:
        """Decode a header value; refuses data that is not hex, or longer than `MAX_UUI_OCTETS`."""
        data, *raw = [part.strip() for part in value.strip().split(";")]
        params: dict[str, str] = {}
        for item in raw:
            name, _, param = item.partition("=")
            params[name.strip().lower()] = param.strip().strip('"')
        encoding = params.get("encoding", "hex").lower()
        if encoding != "hex":
            raise ReferError(f"User-to-User encoding {show(encoding)} is not supported (only hex)")
        if len(data) > 2 * MAX_UUI_OCTETS:
            raise ReferError(f"User-to-User data is longer than {MAX_UUI_OCTETS} octets")
        if not _HEX.match(data):
            raise ReferError("User-to-User data is not an even number of hex digits")
        return cls(bytes.fromhex(data), params.get("purpose", ""), params.get("content", ""))


__all__ = ["MAX_UUI_OCTETS", "ReferError", "ReferTarget", "Replaces", "UserToUser", "target_user"]
