"""Page-path patterns of goals and funnel steps: `*` any run but `/`, `**` any run, else literal."""

import re

from sqlalchemy import ColumnElement
from weldpulse.stats.engine.dialect import matches

# Characters with a meaning in RE2 or PostgreSQL's ARE; a backslash makes each literal in both.
_SPECIAL = frozenset("\\.^$|?*+()[]{}-&~#")
_TOKEN = re.compile(r"\*\*|\*|[^*]+")


def pattern_regex(pattern: str) -> str:
    """The anchored regular expression of a pattern, the same text in RE2 and in ARE."""
    parts = []
    for token in _TOKEN.findall(pattern):
        if token == "**":
            parts.append(".*")
        elif token == "*":
            parts.append("[^/]*")
        else:
            parts.append("".join("\\" + c if c in _SPECIAL else c for c in token))
    return "^" + "".join(parts) + "$"


def path_matches(pathname: str, pattern: str) -> bool:
    """Whether a pathname matches a pattern (the tests' references use this one)."""
    return re.fullmatch(pattern_regex(pattern), pathname) is not None


def path_condition(column: ColumnElement[str], pattern: str) -> ColumnElement[bool]:
    """SQL: the column's value matches the pattern, case-sensitively, on either engine."""
    regex = pattern_regex(pattern)
    return matches(column, regex, regex, case_sensitive=True)
