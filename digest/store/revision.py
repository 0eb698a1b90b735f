"""Is the database at this digest's schema revision? Answered without importing Alembic.

Every command opens the database through `db.open_existing`, which must refuse a database
at another revision. Alembic's script directory (with Mako and Pygments behind it) costs
about 0.3 s to import, more than the rest of `digest status`; so the common case, a
database whose `alembic_version` names the newest migration file, is recognized here by
reading the migration files' `revision` / `down_revision` lines. Anything else (no version
table, an older or unknown revision, migrations this cannot read) goes to `schema.check`,
which decides with Alembic and says what to run.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
from typing import TYPE_CHECKING

from digest.errors import DatabaseError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from digest.store.plainsql import Reader

_ASSIGNMENT = re.compile(
    r"""^(revision|down_revision)\s*(?::[^=]*)?=\s*(?:"([^"]*)"|'([^']*)'|None)\s*$""", re.M
)


@functools.cache
def newest() -> str | None:
    """The one revision no migration file builds on; None when that is not plain to see
    (several heads, a tuple of parents, a file without both lines)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    folder = importlib.resources.files("digest.store") / "migrations" / "versions"
    for entry in folder.iterdir():
        if not entry.name.endswith(".py") or entry.name.startswith("__"):
            continue
        found = dict(
            (match.group(1), match.group(2) or match.group(3))
            for match in _ASSIGNMENT.finditer(entry.read_text(encoding="utf-8"))
        )
        if "revision" not in found or "down_revision" not in found or not found["revision"]:
            return None
        revisions.add(found["revision"])
        if found["down_revision"]:
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def is_current(engine: sa.Engine) -> bool:
    """True when the database's `alembic_version` holds exactly the newest revision;
    False for anything else, including errors (the full check then explains)."""
    import sqlalchemy as sa

    wanted = newest()
    if wanted is None:
        return False
    try:
        with engine.connect() as connection:
            found = connection.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    except sa.exc.DBAPIError:
        return False
    return [tuple(row) for row in found] == [(wanted,)]


def reads_current(read: Reader) -> bool:
    """`is_current` through a plain-SQL reader (`digest status`, without SQLAlchemy)."""
    wanted = newest()
    if wanted is None:
        return False
    try:
        found = read.rows("SELECT version_num FROM alembic_version")
    except DatabaseError:
        return False
    return [tuple(row) for row in found] == [(wanted,)]
