"""Engine differences in one place: JSON property values and RE2 matching, per SQL dialect."""

from typing import Any

from sqlalchemy import ColumnElement, Connection, Executable, Text, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class prop_value(FunctionElement[str]):
    """The text of one key of a JSON-object text column; NULL when the object lacks it."""

    type = Text()
    inherit_cache = True
    name = "prop_value"


@compiles(prop_value)
def _prop_duckdb(element: Any, compiler: Any, **kw: Any) -> str:
    column, _key, pointer = list(element.clauses)
    # A JSON pointer (RFC 6901) needs no quoting of '.', '"' or '[' in keys.
    return (
        f"json_extract_string({compiler.process(column, **kw)}, {compiler.process(pointer, **kw)})"
    )


@compiles(prop_value, "postgresql")
def _prop_postgres(element: Any, compiler: Any, **kw: Any) -> str:
    column, key, _pointer = list(element.clauses)
    return f"(CAST({compiler.process(column, **kw)} AS JSONB) ->> {compiler.process(key, **kw)})"


def prop(column: ColumnElement[str], key: str) -> ColumnElement[str]:
    pointer = "/" + key.replace("~", "~0").replace("/", "~1")
    return prop_value(column, literal(key, Text), literal(pointer, Text))


class regex_match(FunctionElement[bool]):
    """Whether a value has a match of an RE2 pattern (given as is and as its PostgreSQL twin)."""

    inherit_cache = True
    name = "regex_match"


@compiles(regex_match)
def _regex_duckdb(element: Any, compiler: Any, **kw: Any) -> str:
    column, re2_pattern, _ = list(element.clauses)
    # DuckDB's regexp functions are RE2: the pattern as given.
    return (f"regexp_matches({compiler.process(column, **kw)}, "
            f"{compiler.process(re2_pattern, **kw)})")  # fmt: skip


@compiles(regex_match, "postgresql")
def _regex_postgres(element: Any, compiler: Any, **kw: Any) -> str:
    column, _, are_pattern = list(element.clauses)
    return f"({compiler.process(column, **kw)} ~ {compiler.process(are_pattern, **kw)})"


def matches(
    column: ColumnElement[str], pattern: str, postgres: str, case_sensitive: bool
) -> ColumnElement[bool]:
    re2_pattern = pattern if case_sensitive else "(?i)" + pattern
    return regex_match(column, literal(re2_pattern, Text), literal(postgres, Text))


def custom_plans(conn: Connection) -> None:
    """PostgreSQL: plan the transaction's statements for their actual parameter values.

    psycopg prepares a statement once it has run 5 times on a connection, and
    PostgreSQL may then switch to a generic plan, blind to the site and range:
    a funnel's chain of CTEs went from 0.3 s to past a minute on its 11th run.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")


JOINS_SESSIONS = "weldpulse_joins_sessions"  # an execution option: see joined()


def joined(stmt: Executable, joins: bool = True) -> Any:
    """`stmt`, marked (if `joins`) as joining sessions and events: Budget runs it with
    hash_joins. Marked where it is built, so any caller (union, rollup part) runs it so."""
    return stmt.execution_options(**{JOINS_SESSIONS: True}) if joins else stmt


def is_joined(stmt: Executable) -> bool:
    return bool(stmt.get_execution_options().get(JOINS_SESSIONS))


def hash_joins(conn: Connection, on: bool) -> None:
    """PostgreSQL: no nested loops (`on`) or the default again, until the transaction ends.

    For statements joining sessions and events: events have no index on
    session_id, so a nested loop there rescans the range's events once per
    session. The planner picks one whenever it thinks a side has a row or so,
    as on a store never analysed or for days newer than its statistics: on
    8,600 demo events session metrics under a page filter took 3.6 s that way,
    15 ms as a hash join. Only there: with current statistics nested loops over
    an index win elsewhere (GET /v1/pages 101 ms vs 469 ms with them all off).
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL enable_nestloop = {'off' if on else 'DEFAULT'}")
