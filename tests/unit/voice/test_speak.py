from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from ivr.voice.errors import SpeakError
from ivr.voice.speak import (
    Numerals,
    NumeralStyle,
    SayAs,
    chinese_cardinal,
    chinese_date,
    chinese_digits,
    chinese_money,
    english_cardinal,
    english_date,
    english_digits,
    english_money,
    english_ordinal,
    english_year,
    kind_for,
    read_long_numbers,
    say,
    say_default,
)

CMN = Numerals(NumeralStyle.CHINESE, digit_one="幺")
YUE = Numerals(NumeralStyle.CHINESE, digit_one="一")
EN = Numerals(NumeralStyle.ENGLISH)


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "零"),
        (1, "一"),
        (2, "二"),
        (10, "十"),
        (11, "十一"),
        (19, "十九"),
        (20, "二十"),
        (100, "一百"),
        (101, "一百零一"),
        (110, "一百一十"),
        (200, "二百"),
        (1000, "一千"),
        (1001, "一千零一"),
        (1010, "一千零一十"),
        (1234, "一千二百三十四"),
        (2000, "两千"),
        (2222, "两千二百二十二"),
        (10000, "一万"),
        (10005, "一万零五"),
        (10010, "一万零一十"),
        (12345, "一万二千三百四十五"),
        (20005, "两万零五"),
        (100000, "十万"),
        (100010, "十万零一十"),
        (110000, "十一万"),
        (1000000, "一百万"),
        (10001000, "一千万一千"),
        (100000000, "一亿"),
        (100010000, "一亿零一万"),
        (100001000, "一亿零一千"),
        (100000005, "一亿零五"),
        (200000000, "两亿"),
        (-15, "负十五"),
    ],
    ids=str,
)
def test_chinese_cardinal(n: int, words: str) -> None:
    assert chinese_cardinal(n) == words


def test_chinese_counting_two_is_liang() -> None:
    assert chinese_cardinal(2, counting=True) == "两"
    assert chinese_cardinal(12, counting=True) == "十二"
    assert say("2", SayAs.CARDINAL, CMN) == "两"


def test_chinese_cardinal_too_large() -> None:
    with pytest.raises(SpeakError, match="too large"):
        chinese_cardinal(10**16)


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        ("1234.50", "一千二百三十四元五角"),
        ("1234.05", "一千二百三十四元零五分"),
        ("1234.56", "一千二百三十四元五角六分"),
        ("1234", "一千二百三十四元"),
        ("1234.00", "一千二百三十四元"),
        ("0.50", "五角"),
        ("0.05", "五分"),
        ("0", "零元"),
        ("2", "两元"),
        ("22.20", "二十二元两角"),
        ("10", "十元"),
        ("20005.5", "两万零五元五角"),
        ("0.125", "一角三分"),
    ],
    ids=str,
)
def test_chinese_money(amount: str, words: str) -> None:
    assert chinese_money(Decimal(amount)) == words


def test_chinese_date_reads_year_digit_by_digit() -> None:
    assert chinese_date(date(2026, 11, 23)) == "二零二六年十一月二十三日"
    assert chinese_date(date(2030, 1, 10)) == "二零三零年一月十日"


@pytest.mark.parametrize(
    ("digits", "one", "words"),
    [
        ("1203", "幺", "幺二零三"),
        ("0123456789", "幺", "零幺二三，四五六七，八九"),
        ("1203", "一", "一二零三"),
        ("P2026-001", "幺", "P，二零二六，零零幺"),
    ],
    ids=str,
)
def test_chinese_digits(digits: str, one: str, words: str) -> None:
    assert chinese_digits(digits, one=one) == words


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "zero"),
        (7, "seven"),
        (13, "thirteen"),
        (20, "twenty"),
        (45, "forty-five"),
        (100, "one hundred"),
        (101, "one hundred one"),
        (1234, "one thousand two hundred thirty-four"),
        (12345, "twelve thousand three hundred forty-five"),
        (20005, "twenty thousand five"),
        (1000000, "one million"),
        (2000300, "two million three hundred"),
        (-3, "minus three"),
    ],
    ids=str,
)
def test_english_cardinal(n: int, words: str) -> None:
    assert english_cardinal(n) == words


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (1, "first"),
        (2, "second"),
        (3, "third"),
        (4, "fourth"),
        (5, "fifth"),
        (8, "eighth"),
        (9, "ninth"),
        (11, "eleventh"),
        (12, "twelfth"),
        (20, "twentieth"),
        (21, "twenty-first"),
        (23, "twenty-third"),
        (30, "thirtieth"),
        (31, "thirty-first"),
        (100, "one hundredth"),
    ],
    ids=str,
)
def test_english_ordinal(n: int, words: str) -> None:
    assert english_ordinal(n) == words


@pytest.mark.parametrize(
    ("year", "words"),
    [
        (2026, "twenty twenty-six"),
        (2000, "two thousand"),
        (2005, "two thousand five"),
        (2010, "twenty ten"),
        (1999, "nineteen ninety-nine"),
        (1905, "nineteen oh five"),
        (1900, "nineteen hundred"),
    ],
    ids=str,
)
def test_english_year(year: int, words: str) -> None:
    assert english_year(year) == words


def test_english_date() -> None:
    assert english_date(date(2026, 11, 23)) == "November twenty-third, twenty twenty-six"
    assert english_date(date(2027, 1, 1)) == "January first, twenty twenty-seven"


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        ("1234.50", "one thousand two hundred thirty-four yuan and fifty fen"),
        ("1", "one yuan"),
        ("0.01", "one fen"),
        ("0", "zero yuan"),
        ("20005.05", "twenty thousand five yuan and five fen"),
    ],
    ids=str,
)
def test_english_money(amount: str, words: str) -> None:
    assert english_money(Decimal(amount)) == words


def test_english_digits_one_by_one() -> None:
    assert english_digits("1203") == "one two zero three"
    assert english_digits("120345") == "one two zero three four five"
    assert english_digits("13800138000") == "one three eight zero, zero one three eight, zero zero zero"


@pytest.mark.parametrize(
    ("value", "kind", "numerals", "words"),
    [
        ("12345", SayAs.CARDINAL, CMN, "一万二千三百四十五"),
        ("12345", SayAs.CARDINAL, EN, "twelve thousand three hundred forty-five"),
        ("1,234.50", SayAs.MONEY, CMN, "一千二百三十四元五角"),
        ("¥1234.50", SayAs.MONEY, EN, "one thousand two hundred thirty-four yuan and fifty fen"),
        ("2026-11-23", SayAs.DATE, CMN, "二零二六年十一月二十三日"),
        ("2026/11/23", SayAs.DATE, EN, "November twenty-third, twenty twenty-six"),
        ("2026年11月23日", SayAs.DATE, CMN, "二零二六年十一月二十三日"),
        ("20261123", SayAs.DATE, CMN, "二零二六年十一月二十三日"),
        ("2026-11-23T09:30:00+08:00", SayAs.DATE, EN, "November twenty-third, twenty twenty-six"),
        ("1203", SayAs.DIGITS, CMN, "幺二零三"),
        ("1203", SayAs.DIGITS, YUE, "一二零三"),
        ("1203", SayAs.DIGITS, EN, "one two zero three"),
        ("张三", SayAs.TEXT, CMN, "张三"),
    ],
    ids=lambda v: v if isinstance(v, str) else getattr(v, "value", None),
)
def test_say(value: str, kind: SayAs, numerals: Numerals, words: str) -> None:
    assert say(value, kind, numerals) == words


@pytest.mark.parametrize(
    ("value", "kind", "message"),
    [
        ("12a", SayAs.CARDINAL, "not a whole number"),
        ("lots", SayAs.MONEY, "not a number"),
        ("Infinity", SayAs.MONEY, "not a finite number"),
        ("23/11/2026", SayAs.DATE, "not a date"),
        ("2026-02-30", SayAs.DATE, "not a valid date"),
    ],
    ids=str,
)
def test_say_rejects_values_that_do_not_fit(value: str, kind: SayAs, message: str) -> None:
    with pytest.raises(SpeakError, match=message) as err:
        say(value, kind, CMN)
    assert value in str(err.value)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("amount", SayAs.MONEY),
        ("date", SayAs.DATE),
        ("policy_no", SayAs.DIGITS),
        ("position", SayAs.CARDINAL),
        ("wait_minutes", SayAs.CARDINAL),
        ("claim_amount", SayAs.MONEY),
        ("due_date", SayAs.DATE),
        ("callback_number", SayAs.DIGITS),
        ("name", SayAs.TEXT),
    ],
    ids=str,
)
def test_kind_by_placeholder_name(name: str, kind: SayAs) -> None:
    assert kind_for(name) is kind


def test_say_default_counts_whole_numbers_under_plain_names() -> None:
    assert say_default("callers", "20005", CMN) == "两万零五"
    assert say_default("agent_name", "王芳", CMN) == "王芳"


def test_romanised_numerals_for_a_voice_that_cannot_read_characters() -> None:
    hak = Numerals(
        NumeralStyle.CHINESE, "一", {"一": "yit", "万": "van", "二": "ngi", "千": "tshiên", "两": "liòng"}
    )
    assert say("12000", SayAs.CARDINAL, hak) == "yit van ngi tshiên"
    assert say("20000", SayAs.CARDINAL, hak) == "liòng van"
    assert say("121", SayAs.DIGITS, hak) == "yit ngi yit"


@pytest.mark.parametrize(
    ("text", "numerals", "spoken"),
    [
        ("致电95519客户服务热线，0到10分，30万元", CMN, "致电九五五幺九客户服务热线，0到10分，30万元"),
        ("致電95519", YUE, "致電九五五一九"),
        ("Thank you for calling 95519.", EN, "Thank you for calling nine five five one nine."),
        (
            "call95519now, 300,000 yuan, 12345.67",
            EN,
            "call nine five five one nine now, 300,000 yuan, 12345.67",
        ),
    ],
    ids=["mandarin", "cantonese", "english", "english-edges"],
)
def test_long_numbers_in_fixed_text_are_read_digit_by_digit(
    text: str, numerals: Numerals, spoken: str
) -> None:
    assert read_long_numbers(text, numerals) == spoken


@pytest.mark.parametrize(
    ("value", "numerals", "words"),
    [
        ("1234.5", CMN, "一千二百三十四点五"),
        ("500000", CMN, "五十万"),
        ("500000.00", CMN, "五十万"),
        ("2", CMN, "两"),
        ("0.05", CMN, "零点零五"),
        ("1234.5", EN, "one thousand two hundred thirty-four point five"),
        ("-0.5", EN, "minus zero point five"),
    ],
    ids=str,
)
def test_number_with_decimals(value: str, numerals: Numerals, words: str) -> None:
    assert say(value, SayAs.NUMBER, numerals) == words


def test_values_under_plain_names_are_read_by_what_they_are() -> None:
    assert say_default("policy_due", "2027-03-01", CMN) == "二零二七年三月一日"
    assert say_default("policy_due", "2027-03-01", EN) == "March first, twenty twenty-seven"
    assert say_default("rate", "3.5", CMN) == "三点五"
    assert say_default("policy_status", "有效", CMN) == "有效"


def test_an_amount_followed_by_its_unit_is_said_as_a_number() -> None:
    assert say_default("policy_amount", "500000", CMN, unit_follows=True) == "五十万"
    assert say_default("policy_amount", "500000", CMN) == "五十万元"
    assert say_default("amount", "12.5", EN, unit_follows=True) == "twelve point five"
