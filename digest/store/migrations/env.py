"""Alembic's environment: run migrations on the connection `digest.store.schema` hands over.

SQLite gets batch mode (a table is copied to change it, since SQLite's ALTER TABLE is
limited); PostgreSQL alters in place, inside one transaction.
"""

from __future__ import annotations

from alembic import context

from digest.store import schema

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=schema.metadata(),
    render_as_batch=connection.dialect.name == "sqlite",
    include_name=schema.include_name,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
