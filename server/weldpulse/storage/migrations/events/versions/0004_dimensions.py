"""Query dimensions: hostname, referrer, UTM, city and receive order; sessions' channel."""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ATTRIBUTES = ("referrer", "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term",
              "city")  # fmt: skip


def _text(name: str) -> sa.Column:
    # Rows stored before hold none of these: the URLs and IPs they came from
    # were never kept, so "" (none) is all a backfill can say (docs/metrics.md).
    return sa.Column(name, sa.Text, nullable=False, server_default="")


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    for name in ("hostname", *ATTRIBUTES):
        op.add_column("events", _text(name))
    op.add_column("events", sa.Column("seq", sa.BigInteger, nullable=False, server_default="0"))
    for name in ATTRIBUTES:
        op.add_column("sessions", _text(name))
    op.add_column("sessions", _text("channel"))
    # Receive order was not stored; time, then the physical row order, is the
    # best guess (DuckDB's rowid is append order; PostgreSQL's ctid roughly so).
    rowid = "rowid" if dialect == "duckdb" else "ctid"
    op.execute(f"""
        UPDATE events SET seq = o.seq
        FROM (SELECT {rowid} AS rid, row_number() OVER (ORDER BY ts, {rowid}) AS seq
              FROM events) AS o
        WHERE events.{rowid} = o.rid""")
    # The channel rules with no utm_medium, over the stored source; search and
    # social sources from the same referrer database ingestion uses.
    from weldpulse.ingest.enrich import channel

    sources = bind.execute(sa.text("SELECT DISTINCT referrer_source FROM sessions")).scalars()
    mapping = [{"source": s, "channel": channel(s, "")} for s in sources]
    if mapping:  # one join, not a scan of sessions per source
        channels = op.create_table(
            "_weldpulse_channels",
            sa.Column("source", sa.Text, nullable=False),
            sa.Column("channel", sa.Text, nullable=False),
        )
        op.bulk_insert(channels, mapping)
        op.execute("""
            UPDATE sessions SET channel = c.channel FROM _weldpulse_channels AS c
            WHERE sessions.referrer_source = c.source""")
        op.drop_table("_weldpulse_channels")
    start = bind.execute(sa.text("SELECT coalesce(max(seq), 0) + 1 FROM events")).scalar_one()
    op.execute(f"CREATE SEQUENCE events_seq START WITH {int(start)}")
    # A default of 0 would hide a writer that forgot seq; the text defaults stay harmless.
    op.alter_column("events", "seq", server_default=None)


def downgrade() -> None:
    op.execute("DROP SEQUENCE events_seq")
    for name in ("channel", *reversed(ATTRIBUTES)):
        op.drop_column("sessions", name)
    for name in ("seq", *reversed(ATTRIBUTES), "hostname"):
        op.drop_column("events", name)
