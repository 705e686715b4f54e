from __future__ import annotations

import pytest

from ivr.call import DigitsInput
from ivr.engine.digits import DigitCollector


def test_single_key_menu_ends_at_first_key() -> None:
    c = DigitCollector(max_digits=1)
    assert c.key("3", now=1.0) == DigitsInput("3")


def test_terminator_ends_entry_and_is_not_kept() -> None:
    c = DigitCollector(max_digits=10)
    for t, d in enumerate("1234"):
        assert c.key(d, now=float(t)) is None
    assert c.key("#", now=4.0) == DigitsInput("1234", terminated=True)


def test_hash_is_a_digit_for_single_key_menus() -> None:
    assert DigitCollector(max_digits=1).key("#", now=0.0) == DigitsInput("#")


@pytest.mark.parametrize("elapsed,expected", [(2.99, None), (3.0, DigitsInput("12"))], ids=["before", "at"])
def test_inter_digit_timeout_from_last_key(elapsed: float, expected: DigitsInput | None) -> None:
    c = DigitCollector(max_digits=10, inter_digit_timeout_s=3.0)
    c.key("1", now=0.0)
    c.key("2", now=1.0)
    assert c.next_deadline() == 4.0
    assert c.handle_timer(now=1.0 + elapsed) == expected


def test_no_deadline_before_first_key() -> None:
    c = DigitCollector(max_digits=4)
    assert c.next_deadline() is None
    assert c.handle_timer(now=100.0) is None
