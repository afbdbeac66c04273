"""Local-time rollups: per site and UTC day, 15-minute slots and visitor spans (schema.py)."""

import sqlalchemy as sa
from alembic import op

revision = "0007_local_rollups"
down_revision = "0006_attr_rollups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "local_slots",
        sa.Column("site_id", sa.String(36), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("slot_at", sa.DateTime, nullable=False),
        sa.Column("firsts", sa.Integer, nullable=False),
        sa.Column("lasts", sa.Integer, nullable=False),
        sa.Column("pageviews", sa.Integer, nullable=False),
        sa.Column("sessions", sa.Integer, nullable=False),
        sa.Column("bounces", sa.Integer, nullable=False),
        sa.Column("duration", sa.Float, nullable=False),
        sa.Column("views", sa.Integer, nullable=False),
    )
    op.create_table(
        "visitor_spans",
        sa.Column("site_id", sa.String(36), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("visitor_id", sa.BigInteger, nullable=False),
        sa.Column("first_ts", sa.DateTime, nullable=False),
        sa.Column("last_ts", sa.DateTime, nullable=False),
    )
    if op.get_bind().dialect.name != "duckdb":  # see 0001: DuckDB prunes by min/max instead
        op.create_index("ix_local_slots_site_day", "local_slots", ["site_id", "day"])
        op.create_index("ix_visitor_spans_site_day", "visitor_spans", ["site_id", "day"])
    # A rolled day's mark promises every rollup of it: forget them all, so the
    # collector rolls the days again, local_slots included (raw rows until then).
    op.execute("DELETE FROM rolled_days")


def downgrade() -> None:
    if op.get_bind().dialect.name != "duckdb":
        op.drop_index("ix_visitor_spans_site_day", "visitor_spans")
        op.drop_index("ix_local_slots_site_day", "local_slots")
    op.drop_table("visitor_spans")
    op.drop_table("local_slots")
