"""Alembic entry point of this store; the shared environment does the work."""

from weldpulse.migrations.env import run

run()
