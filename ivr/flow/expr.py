"""Safe expressions over call variables, for `set` and `branch` nodes. No `eval`.

Grammar (lowest precedence first)::

    expr    := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | compare
    compare := sum [("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not in") sum]
    sum     := product (("+" | "-") product)*
    product := unary (("*" | "/" | "%") unary)*
    unary   := "-" unary | atom
    atom    := number | 'string' | "string" | true | false | null | name | name "(" args ")"
             | "(" expr ")" | "[" items "]"

Values are text, whole numbers, numbers, booleans, null and lists. A variable that was never set is
null. Comparisons do not chain; `<` and friends need two numbers or two texts. A handful of pure
functions is available (see `FUNCTIONS`); an unknown name is refused at load with a suggestion.

Every value computed is checked by `values.bounded` (see there why), and `round()` digits are kept
within `MAX_ROUND_DIGITS`; a constant out of bounds is refused at load.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ivr.flow.errors import EvaluationError, ExpressionError
from ivr.flow.values import Value, bounded, format_value, truthy, type_name

__all__ = ["Expression", "Value", "evaluate", "format_value", "growth", "tokenize", "truthy"]

MAX_SOURCE_CHARS = 500
MAX_DEPTH = 40
MAX_ROUND_DIGITS = 15
"""`round(x, digits)` takes digits in -15..15: a double has no more significant digits than that."""


class TokenKind(enum.Enum):
    NUMBER = "number"
    STRING = "string"
    NAME = "name"
    OP = "operator"
    END = "end"


@dataclass(slots=True, frozen=True)
class Token:
    kind: TokenKind
    text: str
    offset: int


_OPERATORS = ("==", "!=", "<=", ">=", "<", ">", "+", "-", "*", "/", "%", "(", ")", "[", "]", ",")
_DIGITS = frozenset("0123456789")
_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null", "none"})


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    n = len(source)
    while i < n:
        ch = source[i]
        if ch.isspace():
            i += 1
            continue
        if ch in _DIGITS or (ch == "." and i + 1 < n and source[i + 1] in _DIGITS):
            start = i
            while i < n and (source[i] in _DIGITS or source[i] == "."):
                i += 1
            text = source[start:i]
            if text.count(".") > 1:
                raise ExpressionError(f"bad number '{text}'", start)
            if i < n and (source[i].isalpha() or source[i] == "_"):
                raise ExpressionError(f"bad number '{text}{source[i]}'", start)
            tokens.append(Token(TokenKind.NUMBER, text, start))
            continue
        if ch.isalpha() or ch == "_":
            start = i
            while i < n and (source[i].isalnum() or source[i] == "_"):
                i += 1
            tokens.append(Token(TokenKind.NAME, source[start:i], start))
            continue
        if ch in "'\"":
            start = i
            i += 1
            chars: list[str] = []
            while i < n and source[i] != ch:
                if source[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(source[i])
                i += 1
            if i >= n:
                raise ExpressionError("unterminated text literal", start)
            i += 1
            tokens.append(Token(TokenKind.STRING, "".join(chars), start))
            continue
        op = next((o for o in _OPERATORS if source.startswith(o, i)), None)
        if op is None:
            if ch == "=":
                raise ExpressionError("'=' is not an operator (did you mean '=='?)", i)
            if source.startswith("&&", i) or source.startswith("||", i):
                word = "and" if ch == "&" else "or"
                raise ExpressionError(f"'{source[i : i + 2]}' is not an operator (did you mean '{word}'?)", i)
            if ch == "!":
                raise ExpressionError("'!' is not an operator (did you mean 'not'?)", i)
            raise ExpressionError(f"unexpected character '{ch}'", i)
        tokens.append(Token(TokenKind.OP, op, i))
        i += len(op)
    tokens.append(Token(TokenKind.END, "", n))
    return tokens


# --- syntax tree -----------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class Literal:
    value: Value


@dataclass(slots=True, frozen=True)
class Var:
    name: str


@dataclass(slots=True, frozen=True)
class Unary:
    op: str
    operand: ExprNode


@dataclass(slots=True, frozen=True)
class Binary:
    op: str
    left: ExprNode
    right: ExprNode


@dataclass(slots=True, frozen=True)
class Call:
    function: str
    args: tuple[ExprNode, ...]


@dataclass(slots=True, frozen=True)
class ListLit:
    items: tuple[ExprNode, ...]


ExprNode = Literal | Var | Unary | Binary | Call | ListLit


# --- functions -------------------------------------------------------------------------------


def _text(v: Value, fn: str) -> str:
    if isinstance(v, str):
        return v
    raise EvaluationError(f"{fn}() needs text, got {type_name(v)}")


def _number(v: Value, fn: str) -> int | float:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return v
    raise EvaluationError(f"{fn}() needs a number, got {type_name(v)}")


def _len(v: Value) -> Value:
    if isinstance(v, str | tuple):
        return len(v)
    raise EvaluationError(f"len() needs text or a list, got {type_name(v)}")


def _int(v: Value) -> Value:
    if isinstance(v, bool) or v is None or isinstance(v, tuple):
        raise EvaluationError(f"int() cannot convert {type_name(v)}")
    try:
        return int(float(v)) if isinstance(v, str) and "." in v else int(v)
    except ValueError:
        raise EvaluationError(f"int() cannot convert '{v}'") from None


def _float(v: Value) -> Value:
    if isinstance(v, bool) or v is None or isinstance(v, tuple):
        raise EvaluationError(f"float() cannot convert {type_name(v)}")
    try:
        return float(v)
    except ValueError:
        raise EvaluationError(f"float() cannot convert '{v}'") from None


def _str(v: Value) -> Value:
    return format_value(v)


def _substr(s: Value, start: Value, end: Value = None) -> Value:
    text = _text(s, "substr")
    a = int(_number(start, "substr"))
    return text[a:] if end is None else text[a : int(_number(end, "substr"))]


def _default(v: Value, fallback: Value) -> Value:
    return fallback if v is None or v == "" else v


def _choose(cond: Value, a: Value, b: Value) -> Value:
    return a if truthy(cond) else b


def _round(v: Value, digits: Value = 0) -> Value:
    places = _number(digits, "round")
    if not -MAX_ROUND_DIGITS <= places <= MAX_ROUND_DIGITS:
        raise EvaluationError(f"round() digits must be between -{MAX_ROUND_DIGITS} and {MAX_ROUND_DIGITS}")
    return round(_number(v, "round"), int(places))


@dataclass(slots=True, frozen=True)
class Function:
    impl: Callable[..., Value]
    min_args: int
    max_args: int


FUNCTIONS: Mapping[str, Function] = {
    "len": Function(_len, 1, 1),
    "lower": Function(lambda s: _text(s, "lower").lower(), 1, 1),
    "upper": Function(lambda s: _text(s, "upper").upper(), 1, 1),
    "int": Function(_int, 1, 1),
    "float": Function(_float, 1, 1),
    "str": Function(_str, 1, 1),
    "contains": Function(lambda s, t: _text(t, "contains") in _text(s, "contains"), 2, 2),
    "startswith": Function(lambda s, t: _text(s, "startswith").startswith(_text(t, "startswith")), 2, 2),
    "endswith": Function(lambda s, t: _text(s, "endswith").endswith(_text(t, "endswith")), 2, 2),
    "substr": Function(_substr, 2, 3),
    "default": Function(_default, 2, 2),
    "choose": Function(_choose, 3, 3),
    "abs": Function(lambda v: abs(_number(v, "abs")), 1, 1),
    "round": Function(_round, 1, 2),
    "min": Function(lambda a, b: min(_number(a, "min"), _number(b, "min")), 2, 2),
    "max": Function(lambda a, b: max(_number(a, "max"), _number(b, "max")), 2, 2),
}


# --- parser ----------------------------------------------------------------------------------

_COMPARE = frozenset({"==", "!=", "<", "<=", ">", ">="})


class _Parser:
    __slots__ = ("_tokens", "_pos", "_depth")

    def __init__(self, tokens: list[Token]) -> None:
        self._tokens = tokens
        self._pos = 0
        self._depth = 0

    @property
    def _tok(self) -> Token:
        return self._tokens[self._pos]

    def _advance(self) -> Token:
        tok = self._tokens[self._pos]
        if tok.kind is not TokenKind.END:
            self._pos += 1
        return tok

    def _is(self, kind: TokenKind, text: str | None = None) -> bool:
        tok = self._tok
        return tok.kind is kind and (text is None or tok.text == text)

    def _is_word(self, word: str) -> bool:
        return self._tok.kind is TokenKind.NAME and self._tok.text.lower() == word

    def _expect(self, text: str) -> None:
        if not self._is(TokenKind.OP, text):
            raise ExpressionError(f"expected '{text}', found {_describe(self._tok)}", self._tok.offset)
        self._advance()

    def parse(self) -> ExprNode:
        if self._is(TokenKind.END):
            raise ExpressionError("empty expression", 0)
        node = self._or()
        if not self._is(TokenKind.END):
            raise ExpressionError(f"unexpected {_describe(self._tok)}", self._tok.offset)
        return node

    def _enter(self) -> None:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise ExpressionError(f"expression nested deeper than {MAX_DEPTH} levels", self._tok.offset)

    def _or(self) -> ExprNode:
        node = self._and()
        while self._is_word("or"):
            self._advance()
            node = Binary("or", node, self._and())
        return node

    def _and(self) -> ExprNode:
        node = self._not()
        while self._is_word("and"):
            self._advance()
            node = Binary("and", node, self._not())
        return node

    def _not(self) -> ExprNode:
        if self._is_word("not"):
            self._advance()
            self._enter()
            try:
                return Unary("not", self._not())
            finally:
                self._depth -= 1
        return self._compare()

    def _compare_op(self) -> str | None:
        tok = self._tok
        if tok.kind is TokenKind.OP and tok.text in _COMPARE:
            return tok.text
        if self._is_word("in"):
            return "in"
        if self._is_word("not"):
            nxt = self._tokens[self._pos + 1]
            if nxt.kind is TokenKind.NAME and nxt.text.lower() == "in":
                return "not in"
        return None

    def _compare(self) -> ExprNode:
        left = self._sum()
        op = self._compare_op()
        if op is None:
            return left
        self._advance()
        if op == "not in":
            self._advance()
        right = self._sum()
        if self._compare_op() is not None:
            raise ExpressionError("comparisons cannot be chained; join them with 'and'", self._tok.offset)
        return Binary(op, left, right)

    def _sum(self) -> ExprNode:
        node = self._product()
        while self._tok.kind is TokenKind.OP and self._tok.text in ("+", "-"):
            op = self._advance().text
            node = Binary(op, node, self._product())
        return node

    def _product(self) -> ExprNode:
        node = self._unary()
        while self._tok.kind is TokenKind.OP and self._tok.text in ("*", "/", "%"):
            op = self._advance().text
            node = Binary(op, node, self._unary())
        return node

    def _unary(self) -> ExprNode:
        if self._is(TokenKind.OP, "-"):
            self._advance()
            self._enter()
            try:
                return Unary("-", self._unary())
            finally:
                self._depth -= 1
        return self._atom()

    def _atom(self) -> ExprNode:
        tok = self._tok
        if tok.kind is TokenKind.NUMBER:
            self._advance()
            try:
                return Literal(bounded(float(tok.text) if "." in tok.text else int(tok.text)))
            except (EvaluationError, ValueError) as exc:
                raise ExpressionError(str(exc), tok.offset) from None
        if tok.kind is TokenKind.STRING:
            self._advance()
            return Literal(tok.text)
        if tok.kind is TokenKind.NAME:
            return self._name()
        if self._is(TokenKind.OP, "("):
            self._advance()
            self._enter()
            node = self._or()
            self._depth -= 1
            self._expect(")")
            return node
        if self._is(TokenKind.OP, "["):
            self._advance()
            self._enter()
            items = self._items("]")
            self._depth -= 1
            return ListLit(items)
        if tok.kind is TokenKind.END:
            raise ExpressionError("expected a value, found the end of the expression", tok.offset)
        raise ExpressionError(f"expected a value, found {_describe(tok)}", tok.offset)

    def _name(self) -> ExprNode:
        tok = self._advance()
        word = tok.text.lower()
        if word == "true":
            return Literal(True)
        if word == "false":
            return Literal(False)
        if word in ("null", "none"):
            return Literal(None)
        if word in _KEYWORDS:
            raise ExpressionError(f"expected a value, found '{tok.text}'", tok.offset)
        if not self._is(TokenKind.OP, "("):
            return Var(tok.text)
        fn = FUNCTIONS.get(tok.text)
        if fn is None:
            hint = difflib.get_close_matches(tok.text, list(FUNCTIONS), n=1)
            extra = f" (did you mean '{hint[0]}'?)" if hint else f"; known: {', '.join(sorted(FUNCTIONS))}"
            raise ExpressionError(f"unknown function '{tok.text}'{extra}", tok.offset)
        self._advance()
        self._enter()
        args = self._items(")")
        self._depth -= 1
        if not fn.min_args <= len(args) <= fn.max_args:
            want = str(fn.min_args) if fn.min_args == fn.max_args else f"{fn.min_args} to {fn.max_args}"
            raise ExpressionError(f"{tok.text}() takes {want} argument(s), got {len(args)}", tok.offset)
        call = Call(tok.text, args)
        if tok.text == "round" and not _names(call):  # constant digits out of bounds: refused at load
            try:
                evaluate(call, {})
            except (EvaluationError, OverflowError, ValueError, TypeError) as exc:
                raise ExpressionError(str(exc), tok.offset) from None
        return call

    def _items(self, close: str) -> tuple[ExprNode, ...]:
        items: list[ExprNode] = []
        if self._is(TokenKind.OP, close):
            self._advance()
            return ()
        while True:
            items.append(self._or())
            if self._is(TokenKind.OP, ","):
                self._advance()
                continue
            self._expect(close)
            return tuple(items)


def _describe(tok: Token) -> str:
    if tok.kind is TokenKind.END:
        return "the end of the expression"
    if tok.kind is TokenKind.STRING:
        return f"text '{tok.text}'"
    return f"'{tok.text}'"


# --- evaluation ------------------------------------------------------------------------------


def _kind(v: Value) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    return type_name(v)


def _equal(a: Value, b: Value) -> bool:
    return _kind(a) == _kind(b) and a == b


def _binary(op: str, a: Value, b: Value) -> Value:
    if op == "==":
        return _equal(a, b)
    if op == "!=":
        return not _equal(a, b)
    if op in ("in", "not in"):
        if isinstance(b, str):
            found: bool = _text(a, "in") in b
        elif isinstance(b, tuple):
            found = any(_equal(a, x) for x in b)
        else:
            raise EvaluationError(f"'{op}' needs text or a list on its right, got {type_name(b)}")
        return found if op == "in" else not found
    if op == "+" and isinstance(a, str) and isinstance(b, str):
        return a + b  # `bounded` checks the length: both parts are within it, so this is small
    both_numbers = _kind(a) == "number" and _kind(b) == "number"
    if op in ("<", "<=", ">", ">="):
        if not (both_numbers or (isinstance(a, str) and isinstance(b, str))):
            raise EvaluationError(f"cannot compare {type_name(a)} with {type_name(b)} using '{op}'")
        return _ORDER[op](a, b)
    if not both_numbers:
        raise EvaluationError(f"'{op}' needs two numbers, got {type_name(a)} and {type_name(b)}")
    assert isinstance(a, int | float) and isinstance(b, int | float)
    if op in ("/", "%") and b == 0:
        raise EvaluationError("division by zero")
    return _ARITH[op](a, b)


_ORDER: Mapping[str, Callable[[object, object], bool]] = {
    "<": lambda a, b: a < b,  # type: ignore[operator]
    "<=": lambda a, b: a <= b,  # type: ignore[operator]
    ">": lambda a, b: a > b,  # type: ignore[operator]
    ">=": lambda a, b: a >= b,  # type: ignore[operator]
}
_ARITH: Mapping[str, Callable[[float, float], Value]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "%": lambda a, b: a % b,
}


def evaluate(node: ExprNode, variables: Mapping[str, Value]) -> Value:
    """The value of `node`; each computed value is checked by `bounded` before it goes further."""
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Var):
        return variables.get(node.name)
    if isinstance(node, Unary):
        value = evaluate(node.operand, variables)
        if node.op == "not":
            return not truthy(value)
        return -_number(value, "-")
    if isinstance(node, Binary):
        left = evaluate(node.left, variables)
        if node.op == "and":
            return truthy(left) and truthy(evaluate(node.right, variables))
        if node.op == "or":
            return truthy(left) or truthy(evaluate(node.right, variables))
        return bounded(_binary(node.op, left, evaluate(node.right, variables)))
    if isinstance(node, ListLit):
        return bounded(tuple(evaluate(item, variables) for item in node.items))
    args = [evaluate(a, variables) for a in node.args]
    return bounded(FUNCTIONS[node.function].impl(*args))


def growth(node: ExprNode, name: str) -> str | None:
    """How an expression assigned to `name` can grow it without bound each time it runs, or None.

    Seen: `name` multiplied (`n * 2`, `n * n`), added to itself (`n + n`) or to a text literal
    (`s + 'x'`), or put inside a list (`[l, 1]`). A counter (`n + 1`) grows too slowly to matter.
    """
    if isinstance(node, ListLit) and any(name in _names(item) for item in node.items):
        return "a list that holds it"
    if isinstance(node, Binary):
        left, right = name in _names(node.left), name in _names(node.right)
        if node.op == "*" and (left or right):
            return "'*'"
        if node.op == "+" and (
            (left and right)
            or (left and isinstance(node.right, Literal) and isinstance(node.right.value, str))
            or (right and isinstance(node.left, Literal) and isinstance(node.left.value, str))
        ):
            return "'+'"
    children: Sequence[ExprNode] = ()
    if isinstance(node, Unary):
        children = (node.operand,)
    elif isinstance(node, Binary):
        children = (node.left, node.right)
    elif isinstance(node, Call | ListLit):
        children = node.args if isinstance(node, Call) else node.items
    return next((how for c in children if (how := growth(c, name)) is not None), None)


def _names(node: ExprNode) -> set[str]:
    if isinstance(node, Var):
        return {node.name}
    if isinstance(node, Unary):
        return _names(node.operand)
    if isinstance(node, Binary):
        return _names(node.left) | _names(node.right)
    if isinstance(node, Call | ListLit):
        children: Sequence[ExprNode] = node.args if isinstance(node, Call) else node.items
        return set().union(*(_names(c) for c in children)) if children else set()
    return set()


@dataclass(slots=True, frozen=True)
class Expression:
    """A parsed expression: its source text and syntax tree."""

    source: str
    root: ExprNode

    @classmethod
    def parse(cls, source: str) -> Expression:
        if len(source) > MAX_SOURCE_CHARS:
            raise ExpressionError(f"expression longer than {MAX_SOURCE_CHARS} characters", MAX_SOURCE_CHARS)
        return cls(source, _Parser(tokenize(source)).parse())

    def evaluate(self, variables: Mapping[str, Value]) -> Value:
        try:
            return evaluate(self.root, variables)
        except EvaluationError as exc:
            raise EvaluationError(f"expression '{self.source}': {exc}") from None
        except (OverflowError, ValueError, TypeError, RecursionError) as exc:
            raise EvaluationError(f"expression '{self.source}': {exc}") from None

    def variables(self) -> frozenset[str]:
        return frozenset(_names(self.root))

    def __str__(self) -> str:
        return self.source
