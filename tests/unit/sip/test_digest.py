"""Digest authentication: RFC 2617 and RFC 7616 test vectors, both sides, stale nonces."""

from __future__ import annotations

import pytest

from ivr.sip.digest import (
    DigestChallenge,
    DigestCredentials,
    NonceIssuer,
    NonceStatus,
    compute_ha1,
    make_authorization,
    verify_authorization,
)
from ivr.sip.errors import AuthError, SipParseError

RFC2617_CHALLENGE = (
    'Digest realm="testrealm@host.com", qop="auth,auth-int", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)
RFC7616 = {
    "realm": "http-auth@example.org",
    "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    "opaque": "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS",
    "cnonce": "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
}


def test_rfc2617_example_mufasa() -> None:
    challenge = DigestChallenge.parse(RFC2617_CHALLENGE)
    assert challenge.qop == ("auth", "auth-int") and challenge.algorithm == "MD5"
    creds = make_authorization(
        challenge,
        method="GET",
        uri="/dir/index.html",
        username="Mufasa",
        password="Circle Of Life",
        cnonce="0a4f113b",
    )
    assert creds.response == "6629fae49393a05397450978507c4ef1"
    assert (creds.nc, creds.qop, creds.opaque) == ("00000001", "auth", "5ccc069c403ebaf9f0171e9517f40e41")
    assert verify_authorization(creds, method="GET", realm="testrealm@host.com", password="Circle Of Life")
    assert not verify_authorization(
        creds, method="GET", realm="testrealm@host.com", password="Circle of Life"
    )


@pytest.mark.parametrize(
    ("algorithm", "response"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_examples(algorithm: str, response: str) -> None:
    challenge = DigestChallenge(
        RFC7616["realm"], RFC7616["nonce"], algorithm, ("auth", "auth-int"), RFC7616["opaque"]
    )
    creds = make_authorization(
        challenge,
        method="GET",
        uri="/dir/index.html",
        username="Mufasa",
        password="Circle of Life",
        cnonce=RFC7616["cnonce"],
    )
    assert creds.response == response
    assert DigestCredentials.parse(str(creds)) == creds
    ha1 = compute_ha1("Mufasa", RFC7616["realm"], "Circle of Life", algorithm)
    assert verify_authorization(creds, method="GET", realm=RFC7616["realm"], ha1=ha1, nonce=RFC7616["nonce"])
    assert not verify_authorization(creds, method="POST", realm=RFC7616["realm"], ha1=ha1)


@pytest.mark.parametrize("algorithm", ["MD5", "MD5-sess", "SHA-256", "SHA-256-sess"])
@pytest.mark.parametrize("qop", [("auth",), ()], ids=["qop-auth", "rfc2069"])
def test_uac_and_registrar_agree(algorithm: str, qop: tuple[str, ...]) -> None:
    challenge = DigestChallenge("ivr.example.com", "n0nce", algorithm, qop, stale=True)
    assert DigestChallenge.parse(str(challenge)) == challenge
    creds = make_authorization(
        challenge,
        method="REGISTER",
        uri="sip:ivr.example.com",
        username="1001",
        password="pw",
        cnonce="c",
        nc=3,
    )
    assert creds.nc == ("00000003" if qop else None)
    parsed = DigestCredentials.parse(str(creds))
    assert verify_authorization(
        parsed, method="REGISTER", realm="ivr.example.com", password="pw", nonce="n0nce"
    )
    assert not verify_authorization(
        parsed, method="REGISTER", realm="ivr.example.com", password="pw", nonce="other"
    )
    assert not verify_authorization(parsed, method="REGISTER", realm="elsewhere", password="pw")


def test_parse_errors_and_unknown_schemes() -> None:
    with pytest.raises(AuthError, match="unsupported authentication scheme 'Basic'"):
        DigestChallenge.parse('Basic realm="x"')
    with pytest.raises(SipParseError, match="bad WWW-Authenticate header: missing nonce parameter"):
        DigestChallenge.parse('Digest realm="x"')
    with pytest.raises(SipParseError, match="bad Authorization header: unterminated quoted string"):
        DigestCredentials.parse('Digest username="a')
    with pytest.raises(SipParseError, match="bad Authorization header: qop without cnonce and nc"):
        DigestCredentials.parse('Digest username="a", realm="r", nonce="n", uri="u", response="x", qop=auth')
    with pytest.raises(AuthError, match="unsupported digest algorithm 'SHA-512-256'"):
        make_authorization(
            DigestChallenge("r", "n", "SHA-512-256"),
            method="A",
            uri="u",
            username="a",
            password="p",
            cnonce="c",
        )


def test_unsupported_algorithm_in_credentials_fails_verification() -> None:
    creds = DigestCredentials(
        "a", "r", "n", "u", "00", algorithm="SHA-512-256", cnonce="c", nc="00000001", qop="auth"
    )
    assert not verify_authorization(creds, method="A", realm="r", password="p")


def test_nonce_issuer_valid_stale_invalid() -> None:
    issuer = NonceIssuer(b"secret", lifetime_s=30.0)
    nonce = issuer.issue(now=100.0)
    assert issuer.check(nonce, now=129.9) is NonceStatus.VALID
    assert issuer.check(nonce, now=130.5) is NonceStatus.STALE
    assert NonceIssuer(b"other").check(nonce, now=100.0) is NonceStatus.INVALID
    stamp, _, mac = nonce.partition(".")
    assert issuer.check(f"{int(stamp) + 1000}.{mac}", now=101.0) is NonceStatus.INVALID
    assert issuer.check("garbage", now=100.0) is NonceStatus.INVALID
    assert issuer.check(issuer.issue(now=200.0), now=100.0) is NonceStatus.INVALID


def test_registrar_flow_with_stale_nonce() -> None:
    issuer = NonceIssuer(b"k3y", lifetime_s=60.0)
    challenge = issuer.challenge("ivr.example.com", now=0.0, algorithm="SHA-256")
    creds = make_authorization(
        DigestChallenge.parse(str(challenge)),
        method="REGISTER",
        uri="sip:ivr.example.com",
        username="7001",
        password="s3cret",
        cnonce="abc",
    )
    assert issuer.check(creds.nonce, now=61.0) is NonceStatus.STALE
    assert verify_authorization(creds, method="REGISTER", realm="ivr.example.com", password="s3cret")
    fresh = issuer.challenge("ivr.example.com", now=61.0, stale=True)
    assert fresh.stale and "stale=true" in str(fresh)
