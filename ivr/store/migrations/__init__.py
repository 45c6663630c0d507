"""Alembic migration scripts of the store (a package so that installs carry them)."""
