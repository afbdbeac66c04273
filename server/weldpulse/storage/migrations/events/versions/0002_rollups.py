"""Previous-pageview columns, sessions' last pageview time and the visitor_days rollup."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("events", sa.Column("prev_pathname", sa.Text, nullable=True))
    op.add_column("events", sa.Column("prev_ts", sa.DateTime, nullable=True))
    op.add_column("sessions", sa.Column("last_pageview_at", sa.DateTime, nullable=True))
    op.create_table(
        "visitor_days",
        sa.Column("site_id", sa.String(36), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("visitor_id", sa.BigInteger, nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("region", sa.Text, nullable=False),
        sa.Column("device_type", sa.String(16), nullable=False),
        sa.Column("browser", sa.Text, nullable=False),
        sa.Column("os", sa.Text, nullable=False),
        sa.Column("pageviews", sa.Integer, nullable=False),
        sa.Column("events", sa.Integer, nullable=False),
    )
    dialect = op.get_bind().dialect.name
    if dialect != "duckdb":  # see 0001: DuckDB prunes by min/max instead
        op.create_index("ix_visitor_days_site_day", "visitor_days", ["site_id", "day"])
    # Backfill what ingestion now maintains, from the events already stored.
    rowid = "rowid" if dialect == "duckdb" else "ctid"
    op.execute(f"""
        UPDATE events SET prev_pathname = w.prev_pathname, prev_ts = w.prev_ts
        FROM (SELECT {rowid} AS rid,
                     lag(pathname) OVER (PARTITION BY session_id ORDER BY ts) AS prev_pathname,
                     lag(ts) OVER (PARTITION BY session_id ORDER BY ts) AS prev_ts
              FROM events WHERE name = 'pageview') AS w
        WHERE events.{rowid} = w.rid AND w.prev_ts IS NOT NULL""")
    op.execute("""
        UPDATE sessions SET last_pageview_at = p.last_ts
        FROM (SELECT session_id, max(ts) AS last_ts FROM events
              WHERE name = 'pageview' GROUP BY session_id) AS p
        WHERE sessions.session_id = p.session_id""")
    op.execute("""
        INSERT INTO visitor_days
        SELECT site_id, CAST(ts AS DATE), visitor_id, country, region, device_type, browser, os,
               count(*) FILTER (WHERE name = 'pageview'), count(*)
        FROM events GROUP BY 1, 2, 3, 4, 5, 6, 7, 8""")


def downgrade() -> None:
    op.drop_table("visitor_days")
    op.drop_column("sessions", "last_pageview_at")
    op.drop_column("events", "prev_ts")
    op.drop_column("events", "prev_pathname")
