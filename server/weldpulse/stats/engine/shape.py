"""Shaping: an engine Answer as the QueryResponse message (JSON through Envoy's transcoder)."""

from google.protobuf import struct_pb2
from google.protobuf.struct_pb2 import ListValue
from weldpulse.stats.engine.request import Query
from weldpulse.stats.engine.run import Answer, Row
from weldpulse.stats.engine.zones import Span, aware
from weldpulse.v1 import analytics_pb2 as pb


def _changes(row: Row) -> ListValue:
    out = ListValue()
    for value in row.change:
        item = out.values.add()
        if value is None:
            item.null_value = struct_pb2.NULL_VALUE  # JSON null: the comparison value was 0
        else:
            item.number_value = value
    return out


def _comparison(row: Row) -> pb.QueryComparison | None:
    if row.comparison is None:
        return None
    return pb.QueryComparison(
        dimensions=row.comparison.dimensions, metrics=row.comparison.metrics, change=_changes(row)
    )


def _range(span: Span, q: Query) -> pb.QueryDateRange:
    return pb.QueryDateRange(start=aware(span.start, q.zone), end=aware(span.end, q.zone))


def response(q: Query, a: Answer) -> pb.QueryResponse:
    meta = pb.QueryMeta(timezone=q.zone.key, date_range=_range(q.span, q), total_rows=a.total_rows)
    if q.compare is not None:
        meta.comparison_date_range.CopyFrom(_range(q.compare, q))
    if a.next_page_token is not None:
        meta.next_page_token = a.next_page_token
    out = pb.QueryResponse(
        results=[
            pb.QueryRow(dimensions=r.dimensions, metrics=r.metrics, comparison=_comparison(r))
            for r in a.rows
        ],
        meta=meta,
    )
    if a.totals is not None:
        out.totals.CopyFrom(pb.QueryTotals(metrics=a.totals.metrics,
                                           comparison=_comparison(a.totals)))  # fmt: skip
    return out
