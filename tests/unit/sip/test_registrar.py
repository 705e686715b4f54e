"""The registrar: digest challenge/verify, bindings expiring with `now`, de-registration, 423."""

from __future__ import annotations

import pytest

from ivr.sip.digest import DigestChallenge, make_authorization
from ivr.sip.message import Request, Response
from ivr.sip.parser import parse_message
from ivr.sip.registrar import Registrar
from ivr.sip.uri import SipUri

USERS = {"agent7": "s3cret", "agent8": "other"}
CONTACT = "<sip:agent7@127.0.0.1:5072>"


def registrar() -> Registrar:
    return Registrar("ivr.test", USERS, nonce_secret=b"test-secret", min_expires_s=60, max_expires_s=3600)


def register(user: str = "agent7", *, contact: str | None = CONTACT, expires: int | None = 300, cseq: int = 1,
             call_id: str = "reg-1", authorization: str | None = None,
             extra: tuple[str, ...] = ()) -> Request:
    lines = [
        "REGISTER sip:127.0.0.1:5060 SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:5072;branch=z9hG4bK-r{cseq}-{call_id}",
        f"From: <sip:{user}@127.0.0.1>;tag=f1",
        f"To: <sip:{user}@127.0.0.1>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} REGISTER",
        "Max-Forwards: 70",
    ]
    if contact is not None:
        lines.append(f"Contact: {contact}")
    if expires is not None:
        lines.append(f"Expires: {expires}")
    if authorization is not None:
        lines.append(f"Authorization: {authorization}")
    lines.extend(extra)
    lines.append("Content-Length: 0")
    message = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(message, Request)
    return message


def authorize(reg: Registrar, request: Request, now: float, *, username: str = "agent7",
              password: str = "s3cret") -> Response:
    """Send `request`, answer its 401 like a softphone, return the final response."""
    challenge_response = reg.handle(request, now)
    assert challenge_response.status == 401
    challenge = DigestChallenge.parse(challenge_response.headers.get("WWW-Authenticate") or "")
    creds = make_authorization(challenge, method="REGISTER", uri=str(request.uri), username=username,
                               password=password, cnonce="c0ffee")
    extra = tuple(f"{name}: {value}" for name, value in request.headers.items() if name in ("Path", "Supported"))
    retry = register(request.to.uri.user or "", contact=request.headers.get("Contact"),
                     expires=request.expires, cseq=request.cseq.seq + 1, call_id=request.call_id,
                     authorization=str(creds), extra=extra)
    return reg.handle(retry, now)


def test_register_without_credentials_is_challenged() -> None:
    response = registrar().handle(register(), now=0.0)
    assert response.status == 401
    challenge = DigestChallenge.parse(response.headers.get("WWW-Authenticate") or "")
    assert challenge.realm == "ivr.test" and challenge.nonce and not challenge.stale
    assert response.to.tag


def test_authenticated_register_binds_the_contact_until_expiry() -> None:
    reg = registrar()
    response = authorize(reg, register(expires=300), now=100.0)
    assert response.status == 200
    assert response.headers.get_all("Contact") == [f"{CONTACT};expires=300"]
    (binding,) = reg.lookup("agent7", now=100.0)
    assert str(binding.contact) == "sip:agent7@127.0.0.1:5072"
    assert binding.expires_in(now=250.0) == 150
    assert reg.lookup("agent7", now=399.9) != []
    assert reg.lookup("agent7", now=400.0) == []


def test_wrong_password_is_challenged_again_and_binds_nothing() -> None:
    reg = registrar()
    response = authorize(reg, register(), now=0.0, password="guess")
    assert response.status == 401
    assert reg.lookup("agent7", now=0.0) == []


def test_user_may_not_register_someone_elses_address() -> None:
    reg = registrar()
    response = authorize(reg, register("agent8"), now=0.0, username="agent7", password="s3cret")
    assert response.status == 403
    assert response.reason == "credentials are for another user"


def test_unknown_user_is_challenged_not_told_apart() -> None:
    response = authorize(registrar(), register("mallory"), now=0.0, username="mallory", password="x")
    assert response.status == 401


def test_too_brief_expiry_gets_423_with_min_expires() -> None:
    reg = registrar()
    response = authorize(reg, register(expires=30), now=0.0)
    assert (response.status, response.headers.get("Min-Expires")) == (423, "60")
    assert reg.lookup("agent7", now=0.0) == []


def test_long_expiry_is_cut_to_the_maximum() -> None:
    reg = registrar()
    response = authorize(reg, register(expires=86400), now=0.0)
    assert response.headers.get_all("Contact") == [f"{CONTACT};expires=3600"]


def test_contact_expires_parameter_beats_the_header() -> None:
    reg = registrar()
    authorize(reg, register(contact=f"{CONTACT};expires=120", expires=600), now=0.0)
    (binding,) = reg.lookup("agent7", now=0.0)
    assert binding.expires_at == 120.0


def test_expires_zero_removes_the_binding() -> None:
    reg = registrar()
    authorize(reg, register(call_id="a"), now=0.0)
    response = authorize(reg, register(expires=0, call_id="a", cseq=5), now=10.0)
    assert response.status == 200 and response.headers.get_all("Contact") == []
    assert reg.lookup("agent7", now=10.0) == []


def test_star_contact_with_expires_zero_removes_all_bindings() -> None:
    reg = registrar()
    authorize(reg, register(contact="<sip:agent7@127.0.0.1:5072>"), now=0.0)
    authorize(reg, register(contact="<sip:agent7@127.0.0.1:5073>", call_id="reg-2"), now=0.0)
    assert len(reg.lookup("agent7", now=0.0)) == 2
    assert authorize(reg, register(contact="*", expires=0, call_id="reg-3"), now=1.0).status == 200
    assert reg.lookup("agent7", now=1.0) == []


def test_star_contact_needs_expires_zero() -> None:
    response = authorize(registrar(), register(contact="*", expires=300), now=0.0)
    assert response.status == 400


def test_register_without_contact_lists_current_bindings() -> None:
    reg = registrar()
    authorize(reg, register(), now=0.0)
    response = authorize(reg, register(contact=None, call_id="q"), now=100.0)
    assert response.headers.get_all("Contact") == [f"{CONTACT};expires=200"]


def test_out_of_order_cseq_on_the_same_call_id_is_refused() -> None:
    reg = registrar()
    authorize(reg, register(cseq=10), now=0.0)  # the binding carries CSeq 11
    assert authorize(reg, register(cseq=5), now=1.0).status == 500


def test_old_nonce_is_answered_with_a_stale_challenge() -> None:
    reg = registrar()
    first = reg.handle(register(), now=0.0)
    challenge = DigestChallenge.parse(first.headers.get("WWW-Authenticate") or "")
    creds = make_authorization(challenge, method="REGISTER", uri="sip:127.0.0.1:5060", username="agent7",
                               password="s3cret", cnonce="abc")
    response = reg.handle(register(cseq=2, authorization=str(creds)), now=1000.0)
    assert response.status == 401
    assert DigestChallenge.parse(response.headers.get("WWW-Authenticate") or "").stale


@pytest.mark.parametrize("header", ["Basic YWdlbnQ3OnMzY3JldA==", "Digest username="],
                         ids=["basic-scheme", "truncated-digest"])
def test_unusable_authorization_header_is_refused_with_400(header: str) -> None:
    response = registrar().handle(register(authorization=header), now=0.0)
    assert response.status == 400
    assert response.reason.startswith("bad Authorization header")


def test_users_online_lists_users_with_live_bindings() -> None:
    reg = registrar()
    authorize(reg, register(expires=100), now=0.0)
    assert reg.users_online(now=50.0) == ["agent7"]
    assert reg.users_online(now=150.0) == []


PROXY_PATH = ("Path: <sip:127.0.0.1:5080;lr>", "Path: <sip:10.0.0.1;lr>")


def test_path_is_stored_with_the_binding_and_is_its_route_set() -> None:
    reg = registrar()
    response = authorize(reg, register(extra=("Supported: path", *PROXY_PATH)), now=0.0)
    assert response.status == 200
    assert response.headers.get_all("Path") == ["<sip:127.0.0.1:5080;lr>", "<sip:10.0.0.1;lr>"]
    assert "path" in response.headers.get_all("Supported")
    (binding,) = reg.lookup("agent7", now=1.0)
    assert binding.route_set == ["<sip:127.0.0.1:5080;lr>", "<sip:10.0.0.1;lr>"]
    assert (binding.next_hop.host, binding.next_hop.port) == ("127.0.0.1", 5080)


def test_path_is_not_echoed_to_a_phone_that_does_not_support_it_but_still_routes() -> None:
    reg = registrar()
    response = authorize(reg, register(extra=PROXY_PATH), now=0.0)
    assert response.status == 200 and response.headers.get_all("Path") == []
    assert response.headers.get_all("Supported") == ["path"]
    (binding,) = reg.lookup("agent7", now=1.0)
    assert binding.route_set == ["<sip:127.0.0.1:5080;lr>", "<sip:10.0.0.1;lr>"]


def test_binding_without_path_is_reached_directly() -> None:
    reg = registrar()
    authorize(reg, register(), now=0.0)
    binding = reg.binding_for(SipUri.parse("sip:agent7@127.0.0.1:5072"), now=1.0)
    assert binding is not None and binding.route_set == [] and binding.next_hop == binding.contact


def test_binding_for_finds_a_contact_whose_user_is_not_the_aor() -> None:
    reg = registrar()
    authorize(reg, register(contact="<sip:phone-1@127.0.0.1:5072>", extra=PROXY_PATH), now=0.0)
    binding = reg.binding_for(SipUri.parse("sip:phone-1@127.0.0.1:5072"), now=1.0)
    assert binding is not None and binding.user == "agent7" and len(binding.route_set) == 2
    assert reg.binding_for(SipUri.parse("sip:nobody@127.0.0.1"), now=1.0) is None
