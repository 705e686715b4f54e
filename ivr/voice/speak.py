"""Numbers, amounts, dates and digit strings as words, per language, ready for TTS.

Pure functions: `say(value, kind, numerals)` turns a prompt variable's value into the words a caller
should hear. Chinese dialects share one numeral grammar (Mandarin reads `12345` as 一万二千三百四十五,
Cantonese voices read the same characters their own way); a dialect whose voice reads romanisation
instead of characters (Hakka) maps each numeral character through its pack's `words` table.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from ivr.voice.errors import SpeakError


class SayAs(enum.Enum):
    """How a placeholder's value is spoken."""

    CARDINAL = "cardinal"
    """A count: 20005 → 两万零五 / twenty thousand five."""
    DIGITS = "digits"
    """One digit at a time (policy and phone numbers): 1203 → 幺二零三 / one two zero three."""
    MONEY = "money"
    """An amount in yuan: 1234.50 → 一千二百三十四元五角."""
    NUMBER = "number"
    """A quantity that may have decimals: 1234.5 → 一千二百三十四点五 / one thousand ... point five."""
    DATE = "date"
    """An ISO date: 2026-11-23 → 二零二六年十一月二十三日 / November twenty-third, twenty twenty-six."""
    TEXT = "text"
    """Spoken as written."""


class NumeralStyle(enum.Enum):
    CHINESE = "chinese"
    ENGLISH = "english"


@dataclass(slots=True, frozen=True)
class Numerals:
    """How one dialect speaks numbers (from its pack's `numerals:` section)."""

    style: NumeralStyle = NumeralStyle.CHINESE
    digit_one: str = "一"
    """The word for the digit 1 read alone in a digit string; Mandarin says 幺 (yāo)."""
    words: Mapping[str, str] = field(default_factory=dict)
    """Romanisation of each numeral character, for voices that cannot read characters (Hakka)."""


_KIND_BY_NAME: dict[str, SayAs] = {
    "amount": SayAs.MONEY,
    "date": SayAs.DATE,
    "policy_no": SayAs.DIGITS,
    "phone": SayAs.DIGITS,
    "position": SayAs.CARDINAL,
    "wait_minutes": SayAs.CARDINAL,
}
_KIND_BY_SUFFIX: tuple[tuple[str, SayAs], ...] = (
    ("_no", SayAs.DIGITS),
    ("_number", SayAs.DIGITS),
    ("_digits", SayAs.DIGITS),
    ("_phone", SayAs.DIGITS),
    ("_amount", SayAs.MONEY),
    ("_date", SayAs.DATE),
    ("_minutes", SayAs.CARDINAL),
    ("_count", SayAs.CARDINAL),
)


def kind_for(name: str) -> SayAs:
    """The default kind of a placeholder by its name (`{policy_no}` → digits, `{amount}` → money...).

    Names that say nothing are CARDINAL when their value is a whole number, else TEXT (see `say`).
    """
    if name in _KIND_BY_NAME:
        return _KIND_BY_NAME[name]
    for suffix, kind in _KIND_BY_SUFFIX:
        if name.endswith(suffix):
            return kind
    return SayAs.TEXT


# ---------------------------------------------------------------------------------------------- Chinese

_CN_DIGITS = "零一二三四五六七八九"
_CN_SECTION_UNITS = ("", "万", "亿", "万亿")
_CN_MAX = 10**16


def _cn_section(n: int, *, first: bool) -> str:
    """1..9999 as Chinese; `first` when nothing precedes it (so 10..19 start with 十, not 一十)."""
    out: list[str] = []
    pending_zero = False
    started = False
    for digit, unit in zip(
        (n // 1000, n // 100 % 10, n // 10 % 10, n % 10), ("千", "百", "十", ""), strict=True
    ):
        if digit == 0:
            pending_zero = started
            continue
        if pending_zero:
            out.append("零")
            pending_zero = False
        if digit == 2 and unit == "千" and first and not started:
            word = "两"
        elif digit == 1 and unit == "十" and first and not started:
            word = ""
        else:
            word = _CN_DIGITS[digit]
        out.append(word + unit)
        started = True
    return "".join(out)


def chinese_cardinal(n: int, *, counting: bool = False) -> str:
    """An integer in Chinese numerals: 10 → 十, 12345 → 一万二千三百四十五, 20005 → 两万零五.

    `counting` reads a lone 2 as 两 (两位, 两分钟) rather than 二.
    """
    if n < 0:
        return "负" + chinese_cardinal(-n, counting=counting)
    if n >= _CN_MAX:
        raise SpeakError(f"number {n} is too large to speak in Chinese (limit {_CN_MAX - 1})")
    if n == 0:
        return "零"
    if n == 2 and counting:
        return "两"
    sections = [(n // 10 ** (4 * i)) % 10000 for i in range(4)]
    out: list[str] = []
    zero_between = False
    for i in range(3, -1, -1):
        value = sections[i]
        if value == 0:
            zero_between = bool(out)
            continue
        if out and (zero_between or value < 1000):
            out.append("零")
        zero_between = False
        words = "两" if value == 2 and i > 0 and not out else _cn_section(value, first=not out)
        out.append(words + _CN_SECTION_UNITS[i])
    return "".join(out)


def _digit_groups(value: str) -> list[str]:
    """Runs of letters, and runs of digits, those longer than six in fours: a pause between groups helps.

    `P2026-00012345` → [P, 2026, 0001, 2345].
    """
    groups: list[str] = []
    for run in re.findall(r"\d+|[^\W\d_]+", value):
        step = 4 if run.isdigit() and len(run) > 6 else len(run)
        groups.extend(run[i : i + step] for i in range(0, len(run), step))
    return groups


def chinese_digits(value: str, *, one: str = "幺") -> str:
    """Digit by digit, 0 as 零 and 1 as `one` (幺 in Mandarin): 1203 → 幺二零三.

    Letters are kept; separators (space, `-`) and every fourth digit of a long run give a pause.
    """
    table = {str(d): _CN_DIGITS[d] for d in range(10)} | {"1": one}
    return "，".join("".join(table.get(ch, ch) for ch in group) for group in _digit_groups(value))


def _fen(amount: Decimal) -> int:
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def chinese_money(amount: Decimal) -> str:
    """Yuan, jiao, fen: 1234.50 → 一千二百三十四元五角, 1234.05 → 一千二百三十四元零五分, 2 → 两元."""
    fen_total = _fen(amount)
    if fen_total < 0:
        return "负" + chinese_money(-amount)
    yuan, rest = divmod(fen_total, 100)
    jiao, fen = divmod(rest, 10)
    out: list[str] = []
    if yuan:
        out.append(chinese_cardinal(yuan, counting=True) + "元")
    if jiao:
        out.append(chinese_cardinal(jiao, counting=True) + "角")
    elif fen and yuan:
        out.append("零")
    if fen:
        out.append(chinese_cardinal(fen, counting=True) + "分")
    return "".join(out) or "零元"


def _split_decimal(number: Decimal) -> tuple[int, str]:
    """Whole part and the decimal digits without trailing zeros: 1234.50 → (1234, "5")."""
    whole = int(number)
    fraction = format(abs(number - whole), "f").partition(".")[2].rstrip("0")
    return whole, fraction


def chinese_number(number: Decimal) -> str:
    """1234.5 → 一千二百三十四点五, 500000 → 五十万."""
    if number < 0:
        return "负" + chinese_number(-number)
    whole, fraction = _split_decimal(number)
    words = chinese_cardinal(whole, counting=not fraction)
    return words + ("点" + "".join(_CN_DIGITS[int(d)] for d in fraction) if fraction else "")


def chinese_date(day: date) -> str:
    """年月日, the year digit by digit: 2026-11-23 → 二零二六年十一月二十三日."""
    year = "".join(_CN_DIGITS[int(d)] for d in str(day.year))
    return f"{year}年{chinese_cardinal(day.month)}月{chinese_cardinal(day.day)}日"


# ---------------------------------------------------------------------------------------------- English

_EN_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
_EN_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_EN_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_EN_ORDINAL_WORDS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
_EN_MONTHS = ("January February March April May June July August September October November December").split()


def _en_below_thousand(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    words = [f"{_EN_ONES[hundreds]} hundred"] if hundreds else []
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        words.append(_EN_TENS[tens] + (f"-{_EN_ONES[ones]}" if ones else ""))
    elif rest:
        words.append(_EN_ONES[rest])
    return " ".join(words)


def english_cardinal(n: int) -> str:
    """An integer in words: 12345 → twelve thousand three hundred forty-five."""
    if n < 0:
        return "minus " + english_cardinal(-n)
    if n >= 10**15:
        raise SpeakError(f"number {n} is too large to speak in English (limit {10**15 - 1})")
    if n == 0:
        return "zero"
    words: list[str] = []
    for scale, name in _EN_SCALES:
        if n >= scale:
            words.append(f"{_en_below_thousand(n // scale)} {name}")
            n %= scale
    if n:
        words.append(_en_below_thousand(n))
    return " ".join(words)


def english_ordinal(n: int) -> str:
    """1 → first, 23 → twenty-third, 40 → fortieth."""
    words = english_cardinal(n)
    cut = max(words.rfind(" "), words.rfind("-")) + 1
    head, last = words[:cut], words[cut:]
    if last in _EN_ORDINAL_WORDS:
        last = _EN_ORDINAL_WORDS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + last


def english_year(year: int) -> str:
    """2026 → twenty twenty-six, 2005 → two thousand five, 1905 → nineteen oh five."""
    high, low = divmod(year, 100)
    if year < 1000 or 2000 <= year < 2010:
        return english_cardinal(year)
    if low == 0:
        return f"{english_cardinal(high)} hundred"
    if low < 10:
        return f"{english_cardinal(high)} oh {english_cardinal(low)}"
    return f"{english_cardinal(high)} {english_cardinal(low)}"


def english_date(day: date) -> str:
    """2026-11-23 → November twenty-third, twenty twenty-six."""
    return f"{_EN_MONTHS[day.month - 1]} {english_ordinal(day.day)}, {english_year(day.year)}"


def english_digits(value: str) -> str:
    """Digit by digit: 1203 → one two zero three; a comma every fourth digit and at separators."""
    return ", ".join(
        " ".join(_EN_ONES[int(ch)] if ch.isdigit() else ch for ch in group) for group in _digit_groups(value)
    )


def english_number(number: Decimal) -> str:
    """1234.5 → one thousand two hundred thirty-four point five."""
    if number < 0:
        return "minus " + english_number(-number)
    whole, fraction = _split_decimal(number)
    words = english_cardinal(whole)
    return words + (" point " + " ".join(_EN_ONES[int(d)] for d in fraction) if fraction else "")


def english_money(amount: Decimal) -> str:
    """1234.50 → one thousand two hundred thirty-four yuan and fifty fen."""
    fen_total = _fen(amount)
    if fen_total < 0:
        return "minus " + english_money(-amount)
    yuan, fen = divmod(fen_total, 100)
    yuan_words = f"{english_cardinal(yuan)} yuan"
    if not fen:
        return yuan_words
    fen_words = f"{english_cardinal(fen)} fen"
    return f"{yuan_words} and {fen_words}" if yuan else fen_words


# ---------------------------------------------------------------------------------------------- values

_ISO_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATE_RE = re.compile(r"^\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[T\s].*)?$")
_COMPACT_DATE_RE = re.compile(r"^\s*(\d{4})(\d{2})(\d{2})\s*$")
_INT_RE = re.compile(r"^\s*[-+]?\d+\s*$")
_DECIMAL_RE = re.compile(r"^\s*[-+]?\d+\.\d+\s*$")


def parse_amount(value: str) -> Decimal:
    """`1234.50`, `1,234.5`, `¥1234.50`, `1234.50元` → Decimal; anything else is a SpeakError."""
    cleaned = value.strip().replace(",", "").replace("，", "").lstrip("¥￥").removesuffix("元").strip()
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        raise SpeakError(f"amount {value!r} is not a number (expected e.g. 1234.50)") from None
    if not amount.is_finite():
        raise SpeakError(f"amount {value!r} is not a finite number")
    return amount


def parse_date(value: str) -> date:
    """`2026-11-23`, `2026/11/23`, `2026年11月23日`, `20261123` or an ISO timestamp → date."""
    match = _DATE_RE.match(value) or _COMPACT_DATE_RE.match(value)
    if match is None:
        raise SpeakError(f"date {value!r} is not a date (expected YYYY-MM-DD)")
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError as exc:
        raise SpeakError(f"date {value!r} is not a valid date: {exc}") from None


def _parse_int(value: str) -> int:
    if not _INT_RE.match(value):
        raise SpeakError(f"number {value!r} is not a whole number")
    return int(value)


def _romanise(text: str, words: Mapping[str, str]) -> str:
    if not words:
        return text
    return " ".join(words.get(ch, "," if ch == "，" else ch) for ch in text)


def say(value: str, kind: SayAs, numerals: Numerals) -> str:
    """The words for `value` spoken as `kind` in the dialect whose numbers are `numerals`.

    Raises `SpeakError` naming the value when it does not fit the kind (e.g. a date that is not one).
    """
    if kind is SayAs.TEXT:
        return value
    chinese = numerals.style is NumeralStyle.CHINESE
    if kind is SayAs.CARDINAL:
        n = _parse_int(value)
        words = chinese_cardinal(n, counting=True) if chinese else english_cardinal(n)
    elif kind is SayAs.DIGITS:
        words = chinese_digits(value, one=numerals.digit_one) if chinese else english_digits(value)
    elif kind is SayAs.MONEY:
        amount = parse_amount(value)
        words = chinese_money(amount) if chinese else english_money(amount)
    elif kind is SayAs.NUMBER:
        number = parse_amount(value)
        words = chinese_number(number) if chinese else english_number(number)
    else:
        day = parse_date(value)
        words = chinese_date(day) if chinese else english_date(day)
    return _romanise(words, numerals.words) if chinese else words


_LONG_NUMBER_RE = re.compile(r"(?<![\d.,])\d{5,}(?![\d.,]\d)")


def read_long_numbers(text: str, numerals: Numerals) -> str:
    """Digit runs of five or more in a prompt's fixed text (hotline, account numbers) read digit by digit.

    `致电95519` → 致电九五五幺九. (espeak-ng's Mandarin voice also misreads any number past 9999.)
    """

    spaced = numerals.style is NumeralStyle.ENGLISH or bool(numerals.words)

    def digits(match: re.Match[str]) -> str:
        words = say(match[0], SayAs.DIGITS, numerals)
        if not spaced:
            return words
        before = " " if match.start() > 0 and text[match.start() - 1].isalnum() else ""
        after = " " if match.end() < len(text) and text[match.end()].isalnum() else ""
        return f"{before}{words}{after}"

    return _LONG_NUMBER_RE.sub(digits, text)


def say_default(name: str, value: str, numerals: Numerals, *, unit_follows: bool = False) -> str:
    """`say` with the kind implied by the placeholder's name, else by the value.

    Names that say nothing (`{policy_due}`, `{count}`) are read by their value: an ISO date as a date,
    a number as a quantity, anything else as written. `unit_follows` (the template goes on with 元 or
    "yuan") turns an amount into a plain quantity, so "保额{policy_amount}元" does not say 元 twice.
    """
    kind = kind_for(name)
    if kind is SayAs.MONEY and unit_follows:
        kind = SayAs.NUMBER
    elif kind is SayAs.TEXT:
        if _ISO_DATE_RE.match(value):
            kind = SayAs.DATE
        elif _INT_RE.match(value):
            kind = SayAs.CARDINAL
        elif _DECIMAL_RE.match(value):
            kind = SayAs.NUMBER
    return say(value, kind, numerals)
