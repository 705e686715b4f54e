from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.flow.errors import EvaluationError, ExpressionError
from ivr.flow.expr import Expression

VARS = {"dialect": "en", "n": 3, "elderly": True, "caller": "13900000001", "score": 9.5, "empty": ""}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 % 4 - -1", 4),
        ("n / 2", 1.5),
        ("dialect == 'en'", True),
        ('dialect != "en"', False),
        ("n >= 3 and not elderly", False),
        ("n > 5 or elderly", True),
        ("dialect in ['en', 'yue']", True),
        ("'cmn' not in ['en', 'yue']", True),
        ("'139' in caller", True),
        ("len(caller) == 11", True),
        ("startswith(caller, '139')", True),
        ("upper(dialect) + '-' + lower('X')", "EN-x"),
        ("int('42') + 1", 43),
        ("str(n) + 'x'", "3x"),
        ("default(missing, 'cmn')", "cmn"),
        ("default(empty, 'cmn')", "cmn"),
        ("choose(elderly, 'elderly', 'general')", "elderly"),
        ("round(score)", 10),
        ("missing == null", True),
        ("substr(caller, 0, 3)", "139"),
        ("1 == true", False),
        ("TRUE and not False", True),
    ],
)
def test_evaluates(source: str, expected: object) -> None:
    assert Expression.parse(source).evaluate(VARS) == expected


@pytest.mark.parametrize(
    ("source", "message", "offset"),
    [
        ("1 +", "expected a value, found the end of the expression", 3),
        ("dialect = 'en'", "'=' is not an operator (did you mean '=='?)", 8),
        ("a && b", "'&&' is not an operator (did you mean 'and'?)", 2),
        ("!a", "'!' is not an operator (did you mean 'not'?)", 0),
        ("lenn(x)", "unknown function 'lenn' (did you mean 'len'?)", 0),
        ("len(a, b)", "len() takes 1 argument(s), got 2", 0),
        ("'abc", "unterminated text literal", 0),
        ("1 < n < 3", "comparisons cannot be chained; join them with 'and'", 6),
        ("(1 + 2", "expected ')', found the end of the expression", 6),
        ("a $ b", "unexpected character '$'", 2),
        ("", "empty expression", 0),
        ("1.2.3", "bad number '1.2.3'", 0),
        ("x )", "unexpected ')'", 2),
        ("__import__('os')", "unknown function '__import__'", 0),
    ],
)
def test_parse_errors_say_what_and_where(source: str, message: str, offset: int) -> None:
    with pytest.raises(ExpressionError) as info:
        Expression.parse(source)
    assert str(info.value).startswith(message)
    assert info.value.offset == offset


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("caller < 5", "cannot compare text with a number using '<'"),
        ("n / 0", "division by zero"),
        ("dialect - 1", "'-' needs two numbers, got text and a number"),
        ("int('abc')", "int() cannot convert 'abc'"),
        ("len(n)", "len() needs text or a list, got a number"),
    ],
)
def test_evaluation_errors_name_the_expression(source: str, message: str) -> None:
    with pytest.raises(EvaluationError) as info:
        Expression.parse(source).evaluate(VARS)
    assert str(info.value) == f"expression '{source}': {message}"


def test_no_python_eval_reaches_attributes() -> None:
    with pytest.raises(ExpressionError):
        Expression.parse("caller.__class__")


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    with pytest.raises(ExpressionError, match="nested deeper"):
        Expression.parse("(" * 100 + "1" + ")" * 100)
    with pytest.raises(ExpressionError, match="nested deeper"):
        Expression.parse("not " * 60 + "x")


def test_variables_lists_names() -> None:
    assert Expression.parse("a + len(b) > c and d in [e]").variables() == {"a", "b", "c", "d", "e"}


@given(st.text(max_size=80))
def test_arbitrary_text_parses_or_raises_expression_error(text: str) -> None:
    try:
        expr = Expression.parse(text)
    except ExpressionError:
        return
    try:
        expr.evaluate(VARS)
    except EvaluationError:
        pass
