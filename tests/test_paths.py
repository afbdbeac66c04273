"""Page-path patterns match the same pathnames in Python, DuckDB and PostgreSQL."""

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, literal, select
from weldpulse.stats.paths import path_condition, path_matches

CASES = [
    ("/pricing*", "/pricing", True),
    ("/pricing*", "/pricing/team", False),
    ("/pricing**", "/pricing/team", True),
    ("/blog/*/comments", "/blog/a-b/comments", True),
    ("/blog/*/comments", "/blog/a/b/comments", False),
    ("/blog/**/comments", "/blog/a/b/comments", True),
    ("/a.b", "/aXb", False),
    ("/a+(b)[c]{d}|e$^-&~#?", "/a+(b)[c]{d}|e$^-&~#?", True),
    ("/x\\y", "/x\\y", True),
    ("/", "/", True),
    ("/", "/a", False),
]


def engines() -> list:
    found = [create_engine("duckdb:///:memory:")]
    if url := os.environ.get("WELDPULSE_TEST_POSTGRES_URL"):
        found.append(create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1)))
    return found


@pytest.mark.parametrize(("pattern", "path", "expected"), CASES)
def test_python_matcher(pattern: str, path: str, expected: bool) -> None:
    assert path_matches(path, pattern) is expected


PATH_CHARS = st.sampled_from(list("/ab.*+?()[]{}|\\^$-&~#% "))


@settings(max_examples=60, deadline=None)
@given(pattern=st.text(PATH_CHARS, max_size=10), path=st.text(PATH_CHARS, max_size=10))
def test_engines_agree_with_python(pattern: str, path: str) -> None:
    expected = path_matches(path, pattern)
    for engine in engines():
        with engine.connect() as conn:
            got = conn.execute(select(path_condition(literal(path), pattern))).scalar()
        assert got is expected, (engine.dialect.name, pattern, path)
