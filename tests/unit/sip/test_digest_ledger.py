"""NonceLedger: every nonce-count once, bounded memory that never re-opens a replay; GuessThrottle windows."""

from __future__ import annotations

from ivr.sip.digest import NonceIssuer, NonceLedger
from ivr.sip.guesses import GuessLimits, GuessThrottle


def test_each_nonce_count_is_accepted_once_and_must_grow() -> None:
    issuer = NonceIssuer(b"k")
    ledger = NonceLedger(issuer)
    nonce = issuer.issue(0.0)
    assert ledger.accept(nonce, "00000001", 1.0)
    assert not ledger.accept(nonce, "00000001", 2.0)
    assert ledger.accept(nonce, "00000005", 3.0)
    assert not ledger.accept(nonce, "00000004", 4.0)
    assert not ledger.accept(nonce, None, 4.0) and not ledger.accept(nonce, "zz", 4.0)


def test_two_nonces_issued_in_one_millisecond_differ() -> None:
    issuer = NonceIssuer(b"k")
    assert issuer.issue(5.0) != issuer.issue(5.0)


def test_a_full_ledger_refuses_nonces_as_old_as_the_one_it_forgot() -> None:
    issuer = NonceIssuer(b"k")
    ledger = NonceLedger(issuer, max_nonces=2)
    first, second, third = issuer.issue(1.0), issuer.issue(2.0), issuer.issue(3.0)
    for nonce in (second, first, third):  # answered out of order: kept in issue order
        assert ledger.accept(nonce, "00000001", 4.0)
    assert len(ledger) == 2
    assert ledger.forgotten(first) and not ledger.forgotten(second)
    assert not ledger.accept(first, "00000009", 5.0)  # forgotten, never replayable
    assert ledger.forgotten("garbage")


def test_expired_nonces_leave_the_ledger() -> None:
    issuer = NonceIssuer(b"k", lifetime_s=10.0)
    ledger = NonceLedger(issuer)
    ledger.accept(issuer.issue(0.0), "00000001", 1.0)
    ledger.accept(issuer.issue(20.0), "00000001", 20.0)
    assert len(ledger) == 1


def test_guess_throttle_is_a_sliding_window_with_bounded_keys() -> None:
    throttle = GuessThrottle(GuessLimits(limit=3, window_s=60.0, max_keys=2))
    for t in (0.0, 10.0, 20.0):
        assert not throttle.blocked("a", t)
        throttle.failed("a", t)
    assert throttle.blocked("a", 59.0)
    assert not throttle.blocked("a", 60.5)  # the failure at 0.0 left the window
    throttle.failed("b", 61.0)
    throttle.failed("c", 62.0)
    assert len(throttle) == 2
