"""attr_days: the query engine's figures per attribute and day (storage.rollups.attr_day_rows)."""

import sqlalchemy as sa
from alembic import op

revision = "0006_attr_rollups"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attr_days",
        sa.Column("site_id", sa.String(36), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("v0", sa.Text, nullable=False),
        sa.Column("v1", sa.Text, nullable=False),
        sa.Column("v2", sa.Text, nullable=False),
        sa.Column("visitors", sa.Integer, nullable=False),
        sa.Column("pageviews", sa.Integer, nullable=False),
        sa.Column("events", sa.Integer, nullable=False),
        sa.Column("sessions", sa.Integer, nullable=False),
        sa.Column("bounces", sa.Integer, nullable=False),
        sa.Column("duration", sa.Float, nullable=False),
        sa.Column("views", sa.Integer, nullable=False),
    )
    if op.get_bind().dialect.name != "duckdb":  # see 0001: DuckDB prunes by min/max instead
        op.create_index("ix_attr_days_site_day", "attr_days", ["site_id", "day", "kind"])
    # The new table starts empty: a marked day would read it as current, so every day is
    # unmarked and read from raw rows until the collector rolls it again.
    op.execute(sa.text("DELETE FROM rolled_days"))


def downgrade() -> None:
    op.drop_table("attr_days")
