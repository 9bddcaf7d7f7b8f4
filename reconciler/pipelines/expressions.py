"""Expressions: `${...}` templates inside a pipeline's JSON values, in JMESPath.

Where it sits: the loader parses every template statically (`parse`, `references`) so a typo
fails `cloned validate` with file and line; the runner calls `resolve` with what a run knows,
`{"inputs": {...}, "steps": {NAME: {"output": ...}}}`, just before each step. JMESPath is a
query language over JSON: it has no assignment, no names of Python objects and no calls but its
fixed functions, so a template cannot run code (specs/pipelines.md has the grammar and rules).

Strict by design: a template's value is never null. A path that reaches nothing, and a value
that is null in the data itself, are both "missing" errors naming the path; a default is
written with `||`, e.g. `${inputs.zone || 'UTC'}`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import jmespath
from jmespath import exceptions as jmespath_errors
from jmespath.functions import Functions
from jmespath.visitor import Options, TreeInterpreter

from reconciler.canonical import canonical_json
from reconciler.errors import ClonedError
from reconciler.pipelines.templates import holds_template, split

JSON = Any
"""A JSON value: None, bool, int, float, str, list of JSON, dict of str to JSON."""

Kind = Literal["syntax", "unknown", "missing", "type"]
ROOTS = ("inputs", "steps")
"""What an expression may start at: the run's inputs and the outputs of earlier steps."""
STEP_FIELDS = ("output",)
"""What `steps.NAME.` may read: the step's result."""

MAX_EXPRESSION = 1_000
"""Characters inside one `${...}` (or one `outputs.*.from`)."""
MAX_TEXT = 65_536
"""Characters of one string that holds templates."""
MAX_RESULT = 4 * 1024 * 1024
"""About how many bytes of JSON one template's value (or one string it builds) may hold."""
MAX_ITEMS = 1_000_000
"""Items a flatten (`[]`) may build while it runs."""
MAX_STEPS = 1_000_000
"""Nodes one evaluation may visit: what bounds the time of a projection over a big value."""

FUNCTIONS = tuple(sorted(Functions.FUNCTION_TABLE))
"""JMESPath's built-in functions, the only ones a template may call."""


class ExpressionError(ClonedError):
    """A template that does not parse, starts elsewhere, reaches nothing or mistypes a value."""

    def __init__(self, kind: Kind, expression: str, detail: str, *, written: str = "") -> None:
        super().__init__(f"{written or '${' + expression + '}'}: {detail}")
        self.kind: Kind = kind
        self.expression = expression
        self.detail = detail


@dataclass(frozen=True)
class Expression:
    """One parsed expression: its text, its syntax tree and the field paths it reads from the
    top of the context (`("steps", "notes", "output")`), in the order written."""

    text: str
    tree: Mapping[str, Any]
    reads: tuple[tuple[str, ...], ...]


Part = str | Expression


def parse(text: str) -> Expression:
    """`text` (what is inside `${}`) parsed and checked statically: raise ExpressionError."""
    return _parse(text)


def parse_text(text: str) -> tuple[Part, ...]:
    """A string as its literal pieces and parsed templates; raise the first ExpressionError."""
    if not holds_template(text):
        return (text,) if text else ()
    return _parse_text(text)


def parse_source(text: str) -> Expression:
    """An expression written bare (`steps.report.output`, as `outputs.*.from` is) or as one
    whole template (`${steps.report.output}`)."""
    parts = parse_text(text) if text.startswith("${") else ()
    if len(parts) == 1 and isinstance(parts[0], Expression):
        return parts[0]
    return parse(text)


def strings(
    value: JSON, at: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every string inside `value` with its path (keys are never templates)."""
    if isinstance(value, str):
        yield at, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings(item, (*at, index))


def references(value: JSON) -> set[tuple[str, ...]]:
    """The paths the templates in `value` read, to two names: ("inputs", NAME) or
    ("steps", NAME) (one name when a template reads all of `inputs`)."""
    found: set[tuple[str, ...]] = set()
    for _, text in strings(value):
        for part in parse_text(text):
            if isinstance(part, Expression):
                found.update(read[:2] for read in part.reads)
    return found


def resolve(value: JSON, context: Mapping[str, Any]) -> JSON:
    """`value` with each template replaced by its value in `context`: a string that is exactly
    one template takes the value's type; templates within text are written into it, a string
    as it is and anything else as canonical JSON."""
    if isinstance(value, str):
        return _resolve_text(value, context)
    if isinstance(value, dict):
        return {key: resolve(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, context) for item in value]
    return value


def evaluate(expression: Expression, context: Mapping[str, Any]) -> JSON:
    """The value of one parsed expression in `context` (never null: see the module)."""
    interpreter = _Interpreter()
    try:
        result = interpreter.visit(expression.tree, context)
    except jmespath_errors.JMESPathTypeError as error:
        kind: Kind = "missing" if error.actual_type == "null" else "type"
        expected = ", ".join(str(name) for name in error.expected_types)
        raise ExpressionError(
            kind,
            expression.text,
            f"{error.function_name}() was given {error.actual_type}, it takes {expected}",
        ) from None
    except _TooBig as error:
        raise ExpressionError("type", expression.text, str(error)) from None
    except RecursionError:
        raise ExpressionError("type", expression.text, "the value is nested too deeply") from None
    if result is None:
        raise ExpressionError("missing", expression.text, _why_null(expression, context))
    if _size(result, MAX_RESULT) > MAX_RESULT:
        raise ExpressionError("type", expression.text, f"the value is over {_mib(MAX_RESULT)}")
    return result


# --- parsing -----------------------------------------------------------------------------------


def _fail(expression: str, detail: str, written: str = "") -> ExpressionError:
    return ExpressionError("syntax", expression, detail, written=written)


@lru_cache(maxsize=4096)
def _parse_text(text: str) -> tuple[Part, ...]:
    if len(text) > MAX_TEXT:
        raise ExpressionError(
            "syntax", text[:40] + "...", f"a string with templates is at most {MAX_TEXT} characters"
        )
    return tuple(part if isinstance(part, str) else _parse(part[0]) for part in split(text, _fail))


@lru_cache(maxsize=4096)
def _parse(text: str) -> Expression:
    if len(text) > MAX_EXPRESSION:
        raise _fail(text[:40] + "...", f"an expression is at most {MAX_EXPRESSION} characters")
    if not text.strip():
        raise _fail(text, "the expression is empty")
    try:
        tree = jmespath.compile(text).parsed
    except jmespath_errors.LexerError as error:
        raise _fail(text, f"unexpected {error.lexer_value!r} at {error.lexer_position}") from None
    except jmespath_errors.ParseError as error:
        raise _fail(text, _parse_detail(error)) from None
    except jmespath_errors.JMESPathError as error:
        raise _fail(text, str(error).splitlines()[0]) from None
    except RecursionError:
        raise _fail(text, "the expression is nested too deeply") from None
    _check_functions(text, tree)
    reads = tuple(_reads(tree))
    for read in reads:
        if read[0] not in ROOTS:
            where = "@ (the whole context)" if read[0] == "@" else repr(read[0])
            raise ExpressionError(
                "unknown", text, f"starts at {where}: an expression starts at inputs or steps"
            )
    return Expression(text, tree, reads)


def _parse_detail(error: jmespath_errors.ParseError) -> str:
    if isinstance(error, jmespath_errors.IncompleteExpressionError):
        return "the expression is incomplete"
    if error.token_type == "EOF":  # noqa: S105 - a token's type, not a password
        return "the expression ends too early"
    return f"unexpected {error.token_value!r} at {error.lex_position}"


def _check_functions(text: str, node: Mapping[str, Any]) -> None:
    """Every function called is one of JMESPath's, with a number of arguments it takes."""
    if node["type"] == "function_expression":
        name = node["value"]
        spec = Functions.FUNCTION_TABLE.get(name)
        if spec is None:
            raise _fail(text, f"no function {name}() (the functions: {', '.join(FUNCTIONS)})")
        signature = spec["signature"]
        count = len(node["children"])
        variadic = bool(signature) and signature[-1].get("variadic")
        if count < len(signature) or (count > len(signature) and not variadic):
            wanted = f"{len(signature)}{' or more' if variadic else ''}"
            raise _fail(text, f"{name}() takes {wanted} argument(s), not {count}")
    for child in node.get("children") or ():
        if isinstance(child, Mapping):
            _check_functions(text, child)


_CHAIN = ("subexpression", "index_expression", "projection", "value_projection")
_CHAIN_LEFT = ("filter_projection", "flatten")
_RELATIVE = ("literal", "index", "slice", "expref")
"""Nodes that read nothing from the top of the context (an expref reads each element)."""


def _reads(node: Mapping[str, Any]) -> Iterator[tuple[str, ...]]:
    """The field paths `node` reads from the top of the context. Only the left-most part of a
    chain, a pipe's left side, and operands and arguments are evaluated at the top; whatever
    follows them reads the value before it, not the context."""
    kind = node["type"]
    if kind == "field":
        yield (node["value"],)
    elif kind in ("current", "identity"):
        yield ("@",)
    elif kind in _CHAIN or kind in _CHAIN_LEFT:
        chain = _leading(node)
        if chain:
            yield chain
        else:
            yield from _reads(node["children"][0])
    elif kind == "pipe":
        yield from _reads(node["children"][0])
    elif kind not in _RELATIVE:
        for child in node.get("children") or ():
            yield from _reads(child)


def _leading(node: Mapping[str, Any]) -> tuple[str, ...]:
    """The names a chain starts with: `steps.a.output[0].b` -> ("steps", "a", "output")."""
    kind = node["type"]
    if kind == "field":
        return (node["value"],)
    if kind == "subexpression":
        names: tuple[str, ...] = ()
        for child in node["children"]:
            names += _leading(child)
            if child["type"] != "field":
                break
        return names
    if kind in _CHAIN or kind in _CHAIN_LEFT:
        return _leading(node["children"][0])
    return ()


# --- evaluation ---------------------------------------------------------------------------------


def _resolve_text(text: str, context: Mapping[str, Any]) -> JSON:
    parts = parse_text(text)
    if len(parts) == 1 and isinstance(parts[0], Expression):
        return evaluate(parts[0], context)
    pieces = []
    total = 0
    for part in parts:
        if isinstance(part, str):
            piece = part
        else:
            value = evaluate(part, context)
            piece = value if isinstance(value, str) else canonical_json(value).decode()
        total += len(piece)
        if total > MAX_RESULT:
            where = part.text if isinstance(part, Expression) else text[:40]
            raise ExpressionError("type", where, f"the text built is over {_mib(MAX_RESULT)}")
        pieces.append(piece)
    return "".join(pieces)


def _why_null(expression: Expression, context: Mapping[str, Any]) -> str:
    """Which path of `expression` reaches nothing, named as written."""
    for read in expression.reads:
        node: Any = context
        for depth, name in enumerate(read):
            where = ".".join(read[:depth])
            if not isinstance(node, dict):
                return f"{where} is {_type_name(node)}, it has no field {name!r}"
            if name not in node:
                known = ", ".join(sorted(str(key) for key in node)) or "nothing"
                label = where or "the context"
                return f"{label} has no {name!r} (it has: {known})"
            node = node[name]
            if node is None:
                return f"{'.'.join(read[: depth + 1])} is null"
    return "the value is null (a path, an index or a filter reaches nothing)"


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


class _TooBig(Exception):
    """An evaluation that would build or walk more than the limits allow."""


def _size(value: Any, budget: int) -> int:
    """About how many bytes `value` takes as JSON, counted only to just past `budget`, so a
    value that shares its parts many times over is refused without being written out."""
    total = 0
    stack = [value]
    while stack and total <= budget:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, dict):
            total += 2 + len(item)
            for key, child in item.items():
                total += len(str(key)) + 3
                stack.append(child)
        elif isinstance(item, list):
            total += 2 + len(item)
            stack.extend(item)
        else:
            total += 5 if item is None or isinstance(item, bool) else len(repr(item))
    return total


def _mib(count: int) -> str:
    return f"{count // (1024 * 1024)} MiB"


class _Functions(Functions):  # type: ignore[misc]
    """JMESPath's functions, with the arguments of those that walk a whole value bounded."""

    WALKING = frozenset({"to_string", "contains", "merge", "sort", "sort_by", "join"})

    def call_function(self, function_name: str, resolved_args: list[Any]) -> Any:
        if function_name in self.WALKING:
            for argument in resolved_args:
                if isinstance(argument, list | dict) and _size(argument, MAX_RESULT) > MAX_RESULT:
                    raise _TooBig(f"{function_name}() was given more than {_mib(MAX_RESULT)}")
        return super().call_function(function_name, resolved_args)


class _Interpreter(TreeInterpreter):  # type: ignore[misc]
    """JMESPath's interpreter with its work bounded: nodes visited, items a flatten builds,
    and the size of what an equality compares."""

    def __init__(self) -> None:
        super().__init__(Options(custom_functions=_Functions()))
        self._visits = 0

    def visit(self, node: Mapping[str, Any], *args: Any, **kwargs: Any) -> Any:
        self._visits += 1
        if self._visits > MAX_STEPS:
            raise _TooBig(f"the evaluation takes over {MAX_STEPS:,} steps")
        return super().visit(node, *args, **kwargs)

    def visit_flatten(self, node: Mapping[str, Any], value: Any) -> Any:
        base = self.visit(node["children"][0], value)
        if not isinstance(base, list):
            return None
        merged: list[Any] = []
        for element in base:
            if isinstance(element, list):
                merged.extend(element)
            else:
                merged.append(element)
            if len(merged) > MAX_ITEMS:
                raise _TooBig(f"a flatten builds over {MAX_ITEMS:,} items")
        return merged

    def visit_comparator(self, node: Mapping[str, Any], value: Any) -> Any:
        operands = [self.visit(child, value) for child in node["children"]]
        for operand in operands:
            if isinstance(operand, list | dict) and _size(operand, MAX_RESULT) > MAX_RESULT:
                raise _TooBig(f"a comparison is given more than {_mib(MAX_RESULT)}")
        # JMESPath's own comparison of the values just computed (as literals: not again).
        literals = [{"type": "literal", "value": operand, "children": []} for operand in operands]
        return super().visit_comparator({**node, "children": literals}, value)
