"""`digest/store/columns.py`, the tables and columns `digest status` expects without
loading the models, stays equal to the models (rewrite it with
`.venv/bin/python -m tests.store.test_columns` after changing a model)."""

from __future__ import annotations

from pathlib import Path

from digest.store import columns, schema

FILE = Path(columns.__file__)
HEAD = '''"""The tables and columns this version's models define, as plain data: `digest status`
tells a database behind the code (`health.schema_missing`) without loading SQLAlchemy.

Generated from the models by `.venv/bin/python -m tests.store.test_columns`;
tests/store/test_columns.py fails when it and the models differ.
"""

COLUMNS: dict[str, tuple[str, ...]] = {
'''


def text() -> str:
    """The module's text for the models as they are."""
    lines = [HEAD]
    for table in schema.metadata().sorted_tables:
        lines.append(f'    "{table.name}": (\n')
        lines += [f'        "{column.name}",\n' for column in table.columns]
        lines.append("    ),\n")
    lines.append("}\n")
    return "".join(lines)


def test_the_columns_are_the_models() -> None:
    assert FILE.read_text(encoding="utf-8") == text(), (
        "digest/store/columns.py differs from the models: run "
        "`.venv/bin/python -m tests.store.test_columns` and commit the result"
    )


if __name__ == "__main__":
    FILE.write_text(text(), encoding="utf-8")
    print(f"wrote {FILE}")
