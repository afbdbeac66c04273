"""Applies the Alembic migrations of the metadata and events stores."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def upgrade(engine: Engine, store: str) -> None:
    """Brings `store` ("metadata" or "events") on `engine` to the newest revision."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS / store))
    cfg.set_main_option("version_table", f"alembic_version_{store}")
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
