"""Callback numbers: allowed patterns, read-back and key confirmation, limits per number and per day."""

from __future__ import annotations

import datetime

import pytest

from ivr.callback_policy import CallbackPolicy, CallbackRules, CallbackVerdict, Confirmation

DAY = datetime.date(2026, 12, 6)


@pytest.mark.parametrize("number", ["13800138000", "+8613800138000", "0086 138 0013 8000", "01012345678",
                                    "+86 10 1234 5678", "075512345678"])
def test_mainland_mobiles_and_landlines_are_allowed(number: str) -> None:
    assert CallbackPolicy().check(number, DAY) is CallbackVerdict.ALLOWED


@pytest.mark.parametrize("number", ["+88216000111", "00882160001", "12345", "1900123", "+4420712345678",
                                    "16800138000x", "", "95519", "10086"])
def test_premium_international_and_short_numbers_are_not(number: str) -> None:
    assert CallbackPolicy().check(number, DAY) is CallbackVerdict.NOT_ALLOWED


def test_limits_per_number_and_per_day_reset_the_next_day() -> None:
    policy = CallbackPolicy(CallbackRules(per_number_per_day=2, per_day=3))
    for _ in range(2):
        assert policy.check("13800138000", DAY) is CallbackVerdict.ALLOWED
        policy.record("+8613800138000", DAY)  # the same number in another form counts too
    assert policy.check("13800138000", DAY) is CallbackVerdict.NUMBER_LIMIT
    policy.record("13900000001", DAY)
    assert policy.check("13700000000", DAY) is CallbackVerdict.DAILY_LIMIT
    tomorrow = DAY + datetime.timedelta(days=1)
    assert policy.check("13800138000", tomorrow) is CallbackVerdict.ALLOWED


def test_custom_patterns() -> None:
    policy = CallbackPolicy(CallbackRules(allowed=(r"1[3-9]\d{9}",)))
    assert policy.check("01012345678", DAY) is CallbackVerdict.NOT_ALLOWED


def test_readback_and_confirmation_keys() -> None:
    assert CallbackPolicy.readback("13800138000") == "138 0013 8000"
    assert CallbackPolicy.readback("01012345678") == "010 1234 5678"
    assert [CallbackPolicy.confirmation(k) for k in ("1", "2#", "", "9", "11")] == [
        Confirmation.YES, Confirmation.NO, Confirmation.UNCLEAR, Confirmation.UNCLEAR, Confirmation.UNCLEAR]


def test_bad_rules_are_refused() -> None:
    with pytest.raises(ValueError):
        CallbackRules(per_day=0)
