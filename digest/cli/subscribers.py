"""`digest subscribers …`: add, import, export, list and remove subscribers."""

from __future__ import annotations

import click


@click.group(name="subscribers")
def subscribers_group() -> None:
    """Manage the subscriber list."""
