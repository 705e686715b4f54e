from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.flow.errors import EvaluationError, ExpressionError
from ivr.flow.expr import Expression, growth

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


# -- bounds (issue 15): an expression can neither freeze the loop nor grow without limit -------------


@pytest.mark.parametrize(
    ("source", "variables", "message"),
    [
        ("round(5, d)", {"d": -(10**21)}, "round() digits must be between -15 and 15"),
        ("round(5, d)", {"d": 16}, "round() digits must be between -15 and 15"),
        ("n * n", {"n": 10**10}, "number beyond ±10^18"),
        ("n + 1", {"n": 10**18}, "number beyond ±10^18"),
        ("int(t)", {"t": "9" * 30}, "number beyond ±10^18"),
        ("x * 10.0", {"x": 1e308}, "number out of range"),
        ("[l, l]", {"l": tuple(range(200))}, "list of more than 256 items"),
        ("s + s", {"s": "x" * 6000}, "text longer than 10000 characters"),
    ],
    ids=["round-huge-digits", "round-17-digits", "square", "sum", "int-text", "float-inf", "list", "text"],
)
def test_values_beyond_the_bounds_are_evaluation_errors(
    source: str, variables: dict[str, object], message: str
) -> None:
    with pytest.raises(EvaluationError) as info:
        Expression.parse(source).evaluate(variables)  # type: ignore[arg-type]
    assert str(info.value) == f"expression '{source}': {message}"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("round(5, -1000000000000000000000)", "number beyond ±10^18"),
        ("round(5, -20)", "round() digits must be between -15 and 15"),
        ("n == 99999999999999999999", "number beyond ±10^18"),
    ],
)
def test_constant_values_beyond_the_bounds_are_refused_at_load(source: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=re.escape(message)):
        Expression.parse(source)


@pytest.mark.parametrize(
    ("source", "grows"),
    [("n * n", "'*'"), ("2 * n", "'*'"), ("n + n", "'+'"), ("s + 'x'", "'+'"), ("[s, 1]", "a list that holds it"),
     ("default(n, 1) * 3", "'*'"), ("n + 1", None), ("m * m", None), ("len(s) + 1", None)],
)
def test_growth_names_how_a_variable_feeds_itself(source: str, grows: str | None) -> None:
    name = "s" if "s" in source else "n"
    assert growth(Expression.parse(source).root, name) == grows


def test_squaring_in_a_loop_stops_within_a_few_rounds() -> None:
    square, n = Expression.parse("n * n"), 2
    with pytest.raises(EvaluationError, match="beyond"):
        for _ in range(64):
            n = square.evaluate({"n": n})  # type: ignore[assignment]
    assert n <= 10**18
