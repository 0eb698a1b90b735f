"""Storage: the tables, the queries on them, and the database's schema versions."""

import logging

# Alembic announces each plugin it loads, at import, at INFO, where the scheduler logs:
# quiet it before `digest.store.schema` imports Alembic.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
