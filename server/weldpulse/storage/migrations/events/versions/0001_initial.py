"""Events and the sessions maintained from them."""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("site_id", sa.String(36), nullable=False),
        sa.Column("ts", sa.DateTime, nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("visitor_id", sa.BigInteger, nullable=False),
        sa.Column("session_id", sa.BigInteger, nullable=False),
        sa.Column("pathname", sa.Text, nullable=False),
        sa.Column("referrer_source", sa.Text, nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("device_type", sa.String(16), nullable=False),
        sa.Column("browser", sa.Text, nullable=False),
        sa.Column("os", sa.Text, nullable=False),
        sa.Column("props", sa.Text, nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("session_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("site_id", sa.String(36), nullable=False),
        sa.Column("visitor_id", sa.BigInteger, nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("ended_at", sa.DateTime, nullable=False),
        sa.Column("duration", sa.Float, nullable=False),
        sa.Column("pageviews", sa.Integer, nullable=False),
        sa.Column("events", sa.Integer, nullable=False),
        sa.Column("entry_page", sa.Text, nullable=False),
        sa.Column("exit_page", sa.Text, nullable=False),
        sa.Column("referrer_source", sa.Text, nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("device_type", sa.String(16), nullable=False),
        sa.Column("browser", sa.Text, nullable=False),
        sa.Column("os", sa.Text, nullable=False),
    )
    # B-tree indexes serve the row store (PostgreSQL); DuckDB scans its
    # columnar segments with min/max pruning and would only pay for them on
    # every insert.
    if op.get_bind().dialect.name != "duckdb":
        op.create_index("ix_events_site_ts", "events", ["site_id", "ts"])
        op.create_index("ix_sessions_site_started", "sessions", ["site_id", "started_at"])
        op.create_index("ix_sessions_site_ended", "sessions", ["site_id", "ended_at"])
        op.create_index(
            "ix_sessions_site_visitor", "sessions", ["site_id", "visitor_id", "ended_at"]
        )


def downgrade() -> None:
    op.drop_table("sessions")
    op.drop_table("events")
