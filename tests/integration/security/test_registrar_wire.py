"""The registrar over the wire (issue 15): a sniffed Authorization replayed with another Call-ID, Contact
and Request-URI is refused; a digest uri that is not the Request-URI is refused; an unknown user and a
wrong password cannot be told apart."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ivr.sip.digest import DigestChallenge, make_authorization
from tests.integration.engine.conftest import RunningEngine
from tests.integration.security.peers import AGENT, AGENT_PASSWORD, ATTACKER, RegisterClient, secured_engine

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    with secured_engine(tmp_path_factory.mktemp("registrar")) as running:
        yield running


def test_replayed_authorization_is_refused(engine: RunningEngine) -> None:
    phone = RegisterClient(engine)
    sniffed, status = phone.answer(AGENT, AGENT_PASSWORD)
    assert status == 200
    attacker = RegisterClient(engine, ATTACKER)
    try:
        for uri in (attacker.uri, f"sip:{AGENT}@127.0.0.1:{engine.sip_port}"):
            replay = attacker.send(AGENT, 7, sniffed, call_id="attacker-1", uri=uri,
                                   contact=f"<sip:{AGENT}@{ATTACKER}:{attacker.port}>")
            assert replay is not None and replay.status in (400, 401), replay
        # the very same request again (same Call-ID, next CSeq) is refused too
        again = phone.send(AGENT, 3, sniffed)
        assert again is not None and again.status == 401
    finally:
        phone.close()
        attacker.close()


def test_digest_uri_must_be_the_request_uri(engine: RunningEngine) -> None:
    client = RegisterClient(engine)
    try:
        first = client.send(AGENT, 1)
        assert first is not None and first.status == 401
        challenge = DigestChallenge.parse(first.headers.get("WWW-Authenticate") or "")
        creds = make_authorization(challenge, method="REGISTER", uri="sip:elsewhere.example", username=AGENT,
                                   password=AGENT_PASSWORD, cnonce="c0ffee")
        response = client.send(AGENT, 2, str(creds))
        assert response is not None and response.status == 400 and "Request-URI" in response.reason
    finally:
        client.close()


def test_unknown_user_and_wrong_password_look_the_same(engine: RunningEngine) -> None:
    answers = []
    for user, password, bind in (("nobody42", "x", "127.0.0.4"), (AGENT, "wrong", "127.0.0.5")):
        client = RegisterClient(engine, bind)
        try:
            first = client.send(user, 1)
            assert first is not None
            _, status = client.answer(user, password)
            answers.append((first.status, first.reason, len(first.headers.get_all("WWW-Authenticate")), status))
        finally:
            client.close()
    assert answers[0] == answers[1] == (401, "Unauthorized", 2, 401)
