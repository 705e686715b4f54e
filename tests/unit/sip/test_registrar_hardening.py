"""The registrar on a public network (issue 15): replay, uri binding, qop, RFC 8760, no enumeration,
guess throttling, HA1-only secrets, nothing secret in logs."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from ivr.sip.digest import DigestChallenge, DigestCredentials, compute_ha1, compute_response, make_authorization
from ivr.sip.guesses import GuessLimits
from ivr.sip.message import Request, Response
from ivr.sip.registrar import Registrar
from tests.unit.sip.test_registrar import register

REALM = "ivr.test"
PASSWORD = "s3cret"


@dataclass(frozen=True)
class Secret:
    password: str | None = None
    ha1_md5: str | None = None
    ha1_sha256: str | None = None


def registrar(**kwargs: object) -> Registrar:
    return Registrar(REALM, {"agent7": PASSWORD, "agent8": "other"}, nonce_secret=b"k", **kwargs)  # type: ignore[arg-type]


def challenges(response: Response) -> list[DigestChallenge]:
    assert response.status == 401, response.status
    return [DigestChallenge.parse(value) for value in response.headers.get_all("WWW-Authenticate")]


def answer(reg: Registrar, *, user: str = "agent7", username: str | None = None, password: str = PASSWORD,
           now: float = 0.0, algorithm: str = "MD5", source: str = "192.0.2.7", call_id: str = "reg-1",
           contact: str = "<sip:agent7@192.0.2.7:5072>", tamper: dict[str, str | None] | None = None,
           user_agent: str | None = None) -> tuple[Request, Response]:
    """Challenge then answer like a phone; `tamper` replaces fields of the credentials before sending."""
    extra = (f"User-Agent: {user_agent}",) if user_agent else ()
    first = register(user, contact=contact, call_id=call_id, extra=extra)
    (challenge,) = [c for c in challenges(reg.handle(first, now, source)) if c.algorithm == algorithm]
    creds = make_authorization(challenge, method="REGISTER", uri=str(first.uri), username=username or user,
                               password=password, cnonce="c0ffee")
    if tamper:
        fields = {name: getattr(creds, name) for name in DigestCredentials.__dataclass_fields__}
        creds = DigestCredentials(**(fields | tamper))
    retry = register(user, contact=contact, call_id=call_id, cseq=2, authorization=str(creds), extra=extra)
    return retry, reg.handle(retry, now, source)


def test_challenge_offers_md5_and_sha256_on_one_nonce() -> None:
    offered = challenges(registrar().handle(register(), 0.0))
    assert [c.algorithm for c in offered] == ["MD5", "SHA-256"]
    assert offered[0].nonce == offered[1].nonce and all(c.qop == ("auth",) for c in offered)


def test_sha256_and_md5_answers_both_register() -> None:
    for algorithm in ("SHA-256", "MD5"):
        assert answer(registrar(), algorithm=algorithm)[1].status == 200


def test_baresip_is_challenged_with_md5_alone() -> None:
    response = registrar().handle(register(extra=("User-Agent: baresip v1.0.0 (x86_64/linux)",)), 0.0)
    assert [c.algorithm for c in challenges(response)] == ["MD5"]


def test_algorithms_can_be_reordered_and_narrowed() -> None:
    assert [c.algorithm for c in challenges(registrar(algorithms=("SHA-256", "MD5")).handle(register(), 0.0))] == [
        "SHA-256", "MD5"]
    reg = registrar(algorithms=("SHA-256",))
    assert [c.algorithm for c in challenges(reg.handle(register(), 0.0))] == ["SHA-256"]
    forged = register(authorization='Digest username="agent7", realm="ivr.test", nonce="1.2.3", '
                      'uri="sip:127.0.0.1:5060", '
                      'response="00", algorithm=MD5, qop=auth, nc=00000001, cnonce="c"')
    assert reg.handle(forged, 0.0).status == 400


def test_replayed_authorization_is_refused_even_with_another_call_id_and_contact() -> None:
    reg = registrar()
    sniffed, response = answer(reg)
    assert response.status == 200
    header = sniffed.headers.get("Authorization")
    replay = register(call_id="attacker-1", cseq=7, contact="<sip:agent7@203.0.113.66:5060>", authorization=header)
    assert reg.handle(replay, 120.0, "203.0.113.66").status == 401
    assert reg.counters.replays == 1
    assert [str(b.contact) for b in reg.lookup("agent7", 120.0)] == ["sip:agent7@192.0.2.7:5072"]


def test_next_nonce_count_on_the_same_nonce_is_accepted() -> None:
    reg = registrar()
    first = register()
    (challenge, _) = challenges(reg.handle(first, 0.0))
    for cseq, (nc, expected) in enumerate(((1, 200), (2, 200), (2, 401), (1, 401), (3, 200)), start=2):
        creds = make_authorization(challenge, method="REGISTER", uri=str(first.uri), username="agent7",
                                   password=PASSWORD, cnonce=f"c{nc}", nc=nc)
        assert reg.handle(register(cseq=cseq, authorization=str(creds)), 1.0).status == expected, nc


def test_digest_uri_must_be_the_request_uri() -> None:
    reg = registrar()
    _, response = answer(reg, tamper={"uri": "sip:elsewhere.example:5060"})
    assert response.status == 400 and "Request-URI" in response.reason
    assert reg.lookup("agent7", 0.0) == []


def test_answer_without_qop_is_refused() -> None:
    reg = registrar()
    first = register()
    challenge = challenges(reg.handle(first, 0.0))[1]
    ha1 = compute_ha1("agent7", REALM, PASSWORD)
    response = compute_response(ha1=ha1, algorithm="MD5", method="REGISTER", uri=str(first.uri),
                                nonce=challenge.nonce, cnonce=None, nc=None, qop=None)
    creds = DigestCredentials("agent7", REALM, challenge.nonce, str(first.uri), response, "MD5")
    refused = reg.handle(register(cseq=2, authorization=str(creds)), 0.0)
    assert refused.status == 400 and "qop=auth" in refused.reason


def test_unknown_user_and_wrong_password_get_the_same_answer() -> None:
    reg = registrar()
    _, unknown = answer(reg, user="mallory", contact="<sip:mallory@192.0.2.7>", source="192.0.2.1")
    _, wrong = answer(reg, password="guess", source="192.0.2.2")
    shape = [(r.status, r.reason, [n for n, _ in r.headers.items()],
              [(c.algorithm, c.qop, c.stale) for c in challenges(r)]) for r in (unknown, wrong)]
    assert shape[0] == shape[1]
    assert reg.counters.wrong_answers == 2


def test_credentials_for_another_user_get_403_whether_or_not_they_exist() -> None:
    reg = registrar()
    for username in ("agent7", "nobody"):
        assert answer(reg, user="agent8", username=username, password="x")[1].status == 403


def test_ten_wrong_guesses_a_minute_per_source_then_answers_are_not_checked() -> None:
    reg = registrar()
    for i in range(10):
        assert answer(reg, password=f"guess{i}", now=float(i), source="198.51.100.9", user="agent8",
                      contact="<sip:agent8@x>")[1].status == 401
    # the right password from that source now is not even checked
    _, blocked = answer(reg, password="other", now=20.0, source="198.51.100.9", user="agent8", contact="<sip:agent8@x>")
    assert blocked.status == 401 and reg.counters.throttled == 1 and reg.counters.wrong_answers == 10
    # a minute after the first failure the source may try again
    assert answer(reg, password="other", now=60.5, source="198.51.100.9", user="agent8",
                  contact="<sip:agent8@x>")[1].status == 200


def test_guesses_at_one_user_from_many_sources_are_capped_but_the_agents_own_phone_still_registers() -> None:
    reg = registrar()
    assert answer(reg, now=0.0, source="192.0.2.7")[1].status == 200  # the agent's phone
    for i in range(30):
        answer(reg, password=f"guess{i}", now=1.0 + i, source=f"203.0.113.{i}")
    assert reg.counters.wrong_answers == 10 and reg.counters.throttled == 20
    # an attacker from a fresh address with the right password is not checked within the minute
    assert answer(reg, now=40.0, source="203.0.113.200")[1].status == 401
    # the agent's phone refreshes from its known address
    assert answer(reg, now=45.0, source="192.0.2.7", call_id="reg-2")[1].status == 200


def test_guess_limits_are_configurable() -> None:
    reg = registrar(guess_limits=GuessLimits(limit=2, window_s=10.0))
    for i in range(3):
        answer(reg, password=f"g{i}", now=float(i), source="198.51.100.1")
    assert reg.counters.wrong_answers == 2 and reg.counters.throttled == 1


def test_ha1_secrets_register_without_a_password_anywhere() -> None:
    secret = Secret(ha1_md5=compute_ha1("agent7", REALM, PASSWORD, "MD5"),
                    ha1_sha256=compute_ha1("agent7", REALM, PASSWORD, "SHA-256"))
    reg = Registrar(REALM, {"agent7": secret}, nonce_secret=b"k")
    assert answer(reg, algorithm="SHA-256")[1].status == 200
    assert answer(reg, algorithm="MD5", call_id="reg-2")[1].status == 200
    assert PASSWORD not in repr(reg.__dict__)


def test_md5_only_secret_cannot_answer_a_sha256_challenge() -> None:
    reg = Registrar(REALM, {"agent7": Secret(ha1_md5=compute_ha1("agent7", REALM, PASSWORD))}, nonce_secret=b"k")
    assert answer(reg, algorithm="SHA-256")[1].status == 401
    assert answer(reg, algorithm="MD5", source="192.0.2.8")[1].status == 200


def test_the_registrar_keeps_no_password_and_logs_none() -> None:
    with structlog.testing.capture_logs() as logs:
        reg = registrar()
        answer(reg)
        answer(reg, password="wrong-guess", source="192.0.2.99")
    assert PASSWORD not in repr(reg.__dict__) and "other" not in str(reg.__dict__.get("_ha1"))
    assert not any(PASSWORD in str(entry) or "wrong-guess" in str(entry) for entry in logs)


def test_stale_nonce_gets_stale_true() -> None:
    reg = registrar()
    first = register()
    challenge = challenges(reg.handle(first, 0.0))[1]
    creds = make_authorization(challenge, method="REGISTER", uri=str(first.uri), username="agent7",
                               password=PASSWORD, cnonce="c")
    late = reg.handle(register(cseq=2, authorization=str(creds)), 1000.0)
    assert all(c.stale for c in challenges(late))
