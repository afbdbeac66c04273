"""Day rollups (pages, sources, events, breakdowns), their multi-day visitors, and marks."""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # No backfill: days without a mark are read from raw rows until the
    # collector rolls them (storage.rollups), so answers never change.
    op.create_table(
        "page_days",
        sa.Column("site_id", sa.String(36), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("pathname", sa.Text, nullable=False),
        sa.Column("visitors", sa.Integer, nullable=False),
        sa.Column("pageviews", sa.Integer, nullable=False),
        sa.Column("time_total", sa.Float, nullable=False),
        sa.Column("time_count", sa.Integer, nullable=False),
        sa.Column("entries", sa.Integer, nullable=False),
        sa.Column("bounces", sa.Integer, nullable=False),
    )
    op.create_table(
        "source_days",
        sa.Column("site_id", sa.String(36), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("referrer_source", sa.Text, nullable=False),
        sa.Column("visitors", sa.Integer, nullable=False),
        sa.Column("pageviews", sa.Integer, nullable=False),
        sa.Column("sessions", sa.Integer, nullable=False),
        sa.Column("bounces", sa.Integer, nullable=False),
        sa.Column("duration", sa.Float, nullable=False),
    )
    op.create_table(
        "event_days",
        sa.Column("site_id", sa.String(36), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("visitors", sa.Integer, nullable=False),
    )
    op.create_table(
        "breakdown_days",
        sa.Column("site_id", sa.String(36), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("device_type", sa.String(16), nullable=False),
        sa.Column("browser", sa.Text, nullable=False),
        sa.Column("os", sa.Text, nullable=False),
        sa.Column("visitors", sa.Integer, nullable=False),
        sa.Column("pageviews", sa.Integer, nullable=False),
    )
    op.create_table(
        "multi_day_visitors",
        sa.Column("site_id", sa.String(36), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("visitor_id", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "rolled_days",
        sa.Column("site_id", sa.String(36), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("rolled_at", sa.DateTime, nullable=False),
    )
    if op.get_bind().dialect.name != "duckdb":  # see 0001: DuckDB prunes by min/max instead
        op.create_index("ix_page_days_site_day", "page_days", ["site_id", "day"])
        op.create_index("ix_source_days_site_day", "source_days", ["site_id", "day"])
        op.create_index("ix_event_days_site_day", "event_days", ["site_id", "day"])
        op.create_index("ix_breakdown_days_site_day", "breakdown_days", ["site_id", "day", "kind"])
        op.create_index("ix_multi_day_visitors_site_day", "multi_day_visitors", ["site_id", "day"])
        # A roll looks up each of its day's visitors on other days (rollups.multi_day_rows);
        # pages fetch the few multi-day visitors' pageviews (queries._once_per_range).
        op.create_index("ix_visitor_days_visitor", "visitor_days", ["visitor_id"])
        op.create_index("ix_events_visitor", "events", ["visitor_id"])


def downgrade() -> None:
    if op.get_bind().dialect.name != "duckdb":
        op.drop_index("ix_events_visitor", "events")
        op.drop_index("ix_visitor_days_visitor", "visitor_days")
    op.drop_table("rolled_days")
    op.drop_table("multi_day_visitors")
    op.drop_table("breakdown_days")
    op.drop_table("event_days")
    op.drop_table("source_days")
    op.drop_table("page_days")
