"""Alembic environment shared by both stores: runs on the connection it is given."""

from alembic import context
from alembic.ddl.impl import DefaultImpl


class AlembicDuckDBImpl(DefaultImpl):
    """Registers DuckDB with Alembic, as duckdb-engine documents."""

    __dialect__ = "duckdb"
    transactional_ddl = True


def run() -> None:
    config = context.config
    context.configure(
        connection=config.attributes["connection"],
        version_table=config.get_main_option("version_table") or "alembic_version",
    )
    with context.begin_transaction():
        context.run_migrations()
