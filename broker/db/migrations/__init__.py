"""Alembic migration environment and scripts (packaged so wheels carry them; Alembic loads them by path)."""
