"""Alembic entry point of this store; the shared environment does the work."""

from weldpulse.storage.migrations.env import run

run()
