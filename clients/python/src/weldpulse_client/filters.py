"""Builders of Query filter trees, e.g. `all_of(is_("country", "DE"), not_(is_("os", "iOS")))`."""

from weldpulse_client._pb.weldpulse.v1 import analytics_pb2 as pb


def condition(dimension: str, op: str, *values: str, case_sensitive: bool = True) -> pb.QueryFilter:
    """One condition: `dimension` `op` any of `values` (the API checks names and limits)."""
    return pb.QueryFilter(dimension=dimension, op=op, values=values, case_sensitive=case_sensitive)


def is_(dimension: str, *values: str, case_sensitive: bool = True) -> pb.QueryFilter:
    return condition(dimension, "is", *values, case_sensitive=case_sensitive)


def is_not(dimension: str, *values: str, case_sensitive: bool = True) -> pb.QueryFilter:
    return condition(dimension, "is_not", *values, case_sensitive=case_sensitive)


def contains(dimension: str, *values: str, case_sensitive: bool = True) -> pb.QueryFilter:
    return condition(dimension, "contains", *values, case_sensitive=case_sensitive)


def not_contains(dimension: str, *values: str, case_sensitive: bool = True) -> pb.QueryFilter:
    return condition(dimension, "not_contains", *values, case_sensitive=case_sensitive)


def starts_with(dimension: str, *values: str, case_sensitive: bool = True) -> pb.QueryFilter:
    return condition(dimension, "starts_with", *values, case_sensitive=case_sensitive)


def matches(dimension: str, *patterns: str, case_sensitive: bool = True) -> pb.QueryFilter:
    """RE2 patterns (the subset every engine answers alike; others are a 400)."""
    return condition(dimension, "matches", *patterns, case_sensitive=case_sensitive)


def not_matches(dimension: str, *patterns: str, case_sensitive: bool = True) -> pb.QueryFilter:
    return condition(dimension, "not_matches", *patterns, case_sensitive=case_sensitive)


def all_of(*expressions: pb.QueryFilter) -> pb.QueryFilter:
    node = pb.QueryFilter()
    getattr(node, "and").extend(expressions)  # `and`, `or`, `not`: Python keywords
    return node


def any_of(*expressions: pb.QueryFilter) -> pb.QueryFilter:
    node = pb.QueryFilter()
    getattr(node, "or").extend(expressions)
    return node


def not_(expression: pb.QueryFilter) -> pb.QueryFilter:
    node = pb.QueryFilter()
    getattr(node, "not").CopyFrom(expression)
    return node
