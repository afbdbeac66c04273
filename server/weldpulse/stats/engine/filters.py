"""Filter trees: the contract's limits, and RE2 patterns both engines read alike."""

from dataclasses import dataclass
from typing import Any

import re2  # type: ignore[import-untyped]
from weldpulse.errors import BadRequest
from weldpulse.stats.engine.registry import PENDING, Dimension, dimension
from weldpulse.v1 import analytics_pb2 as pb

OPS = ("is", "is_not", "contains", "not_contains", "starts_with", "matches", "not_matches")
MAX_DEPTH = 5
MAX_CONDITIONS = 20
MAX_VALUES = 100
MAX_VALUE_BYTES = 2000
MAX_PATTERN_BYTES = 256
# PostgreSQL's regex engine repeats at most 255 times (DUPMAX); RE2 allows 1000.
MAX_REPEAT = 255


@dataclass(frozen=True)
class Condition:
    dim: Dimension
    op: str
    values: tuple[str, ...]
    case_sensitive: bool
    # For matches/not_matches: each pattern as PostgreSQL must be given it (same meaning).
    postgres: tuple[str, ...] = ()


@dataclass(frozen=True)
class Node:
    kind: str  # "and", "or", "not", "cond" or "goals" (completes one of `goals`)
    children: tuple["Node", ...] = ()
    cond: Condition | None = None
    goals: tuple[Any, ...] = ()  # engine.goals.Goal

    def dimensions(self) -> set[str]:
        own = {self.cond.dim.kind} if self.cond else {"event"} if self.kind == "goals" else set()
        return own.union(*(c.dimensions() for c in self.children))


def parse_filters(expr: pb.QueryFilter) -> Node:
    count = [0]
    return _node(expr, "filters", 1, count)


def _node(expr: pb.QueryFilter, path: str, depth: int, count: list[int]) -> Node:
    if depth > MAX_DEPTH:
        raise BadRequest(f"Invalid {path}: filters nest deeper than {MAX_DEPTH} levels")
    ands, ors = list(getattr(expr, "and")), list(getattr(expr, "or"))
    has_not = expr.HasField("not")
    cond = bool(expr.dimension or expr.op or expr.values or expr.HasField("case_sensitive"))
    if (bool(ands) + bool(ors) + has_not + cond) != 1:
        raise BadRequest(
            f"Invalid {path}: an expression is exactly one of a non-empty 'and', a non-empty "
            "'or', a 'not', or a condition {dimension, op, values}"
        )
    if ands or ors:
        kind, items = ("and", ands) if ands else ("or", ors)
        if len(items) > MAX_CONDITIONS:
            raise BadRequest(f"Invalid {path}.{kind}: more than {MAX_CONDITIONS} expressions")
        children = tuple(
            _node(e, f"{path}.{kind}[{i}]", depth + 1, count) for i, e in enumerate(items)
        )
        return Node(kind, children)
    if has_not:
        return Node("not", (_node(getattr(expr, "not"), f"{path}.not", depth + 1, count),))
    count[0] += 1
    if count[0] > MAX_CONDITIONS:
        raise BadRequest(f"Invalid filters: more than {MAX_CONDITIONS} conditions")
    return Node("cond", cond=_condition(expr, path))


def _condition(expr: pb.QueryFilter, path: str) -> Condition:
    name = expr.dimension
    if "\x00" in name:  # a prop key reaches PostgreSQL as a text parameter, which refuses NUL
        raise BadRequest(f"Invalid {path}.dimension: contains a NUL character")
    dim = dimension(name)
    if dim is None or dim.kind == "time":
        what = "time dimensions cannot be filtered" if dim else "unknown dimension"
        what = "not available yet" if name in PENDING else what
        raise BadRequest(f"Invalid {path}.dimension: {name[:100]!r}: {what}")
    if expr.op not in OPS:
        raise BadRequest(f"Invalid {path}.op: {expr.op[:40]!r}; expected one of {', '.join(OPS)}")
    values = tuple(expr.values)
    if not 1 <= len(values) <= MAX_VALUES:
        raise BadRequest(f"Invalid {path}.values: {len(values)} values; 1 to {MAX_VALUES} allowed")
    for i, v in enumerate(values):
        if len(v.encode()) > MAX_VALUE_BYTES:
            raise BadRequest(f"Invalid {path}.values[{i}]: longer than {MAX_VALUE_BYTES} bytes")
        if "\x00" in v:  # PostgreSQL refuses NUL in text parameters (a 500 otherwise)
            raise BadRequest(f"Invalid {path}.values[{i}]: contains a NUL character")
    sensitive = expr.case_sensitive if expr.HasField("case_sensitive") else True
    postgres: tuple[str, ...] = ()
    if expr.op in ("matches", "not_matches"):
        postgres = tuple(
            for_postgres(v, f"{path}.values[{i}]", sensitive) for i, v in enumerate(values)
        )
    return Condition(dim, expr.op, values, sensitive, postgres)


def _unsupported(field: str, what: str) -> BadRequest:
    return BadRequest(
        f"Invalid {field}: unsupported in patterns: {what} (supported: literals, \\-escaped "
        "punctuation, \\n, \\t, ., ^, $, |, ( ), (?: ), [ ] classes, * + ? {n,m} up to "
        f"{MAX_REPEAT})"
    )


def for_postgres(pattern: str, field: str, case_sensitive: bool) -> str:
    """The RE2 `pattern` as a PostgreSQL ARE with the same matches, or a 400.

    Only a subset both engines read alike is accepted (the same subset on every
    engine, so answers and errors agree): `.` becomes `[^\\n]` because PostgreSQL's
    dot matches a newline and RE2's does not; `\\d`, `\\w`, `\\b`, flags and named
    groups are refused (PostgreSQL reads `\\b` as backspace, `\\d` by locale).
    """
    if len(pattern.encode()) > MAX_PATTERN_BYTES:
        raise BadRequest(f"Invalid {field}: pattern longer than {MAX_PATTERN_BYTES} bytes")
    try:
        re2.compile(pattern)
    except re2.error as exc:
        raise BadRequest(f"Invalid {field}: not an RE2 pattern ({exc})") from None
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            i, piece = _escape(pattern, i, field)
            out.append(piece)
            continue
        if c == ".":
            out.append("[^\\n]")
        elif c == "[":
            i, piece = _bracket(pattern, i, field)
            out.append(piece)
            continue
        elif c == "(":
            if pattern.startswith("(?:", i):
                out.append("(?:")
                i += 3
                continue
            if pattern.startswith("(?", i):
                raise _unsupported(field, "flags and named groups '(?'")
            out.append(c)
        elif c == "{":
            end = pattern.find("}", i)
            body = pattern[i + 1 : end] if end > 0 else ""
            nums = body.split(",")
            if (end < 0 or len(nums) > 2 or not nums[0].isdigit()
                    or not all(x.isdigit() for x in nums[1:] if x)):  # fmt: skip
                raise _unsupported(field, "a '{' that is not a repeat count (write \\{)")
            if any(int(x) > MAX_REPEAT for x in nums if x):
                raise _unsupported(field, f"repeat counts above {MAX_REPEAT}")
            out.append(pattern[i : end + 1])
            i = end + 1
            continue
        else:
            out.append(c)
        i += 1
    translated = "".join(out)
    return translated if case_sensitive else "(?i)" + translated


def _escape(pattern: str, i: int, field: str) -> tuple[int, str]:
    nxt = pattern[i + 1 : i + 2]
    if nxt in ("n", "t"):
        return i + 2, "\\" + nxt
    if nxt and nxt.isascii() and not nxt.isalnum() and nxt != " ":
        return i + 2, "\\" + nxt
    raise _unsupported(field, f"the escape '\\{nxt}'")


def _bracket(pattern: str, i: int, field: str) -> tuple[int, str]:
    """A [...] class: literal characters, ranges and escaped punctuation only."""
    j = i + 1
    out = ["["]
    if pattern[j : j + 1] == "^":
        out.append("^")
        j += 1
    if pattern[j : j + 1] == "]":
        raise _unsupported(field, "']' first in a class (write \\])")
    while j < len(pattern) and pattern[j] != "]":
        c = pattern[j]
        if c == "[":
            raise _unsupported(field, "'[' inside a class, e.g. [:alpha:] (write \\[)")
        if c == "\\":
            j, piece = _escape(pattern, j, field)
            out.append(piece)
            continue
        out.append(c)
        j += 1
    out.append("]")
    return j + 1, "".join(out)
