"""The Alembic migration environment: `env.py`, `script.py.mako` and `versions/`.

It lives inside the package so a wheel carries it; `digest.store.schema` points Alembic at
it (there is no alembic.ini). How to add a migration: docs/operations.md.
"""
