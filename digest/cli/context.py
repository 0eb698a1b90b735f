"""What every command shares: the lazily loaded settings and database, --as-of, and the
group class that turns `DigestError` into a message and exit status 1."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, TypeVar

import click
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest import config, pipeline
from digest.config import Settings
from digest.errors import DigestError
from digest.store import db

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Context:
    """What every command needs, loaded on first use."""

    config_path: str | None
    by: str | None = None
    """`digest --by NAME`: who the audit log names for this command (default: the OS user)."""

    @property
    def actor(self) -> str:
        """The audit log's name for whoever runs this command."""
        from digest.pipeline import audit

        return audit.cli_actor(self.by)

    @cached_property
    def settings(self) -> Settings:
        return config.load(self.config_path)

    @cached_property
    def factory(self) -> sessionmaker[Session]:
        return pipeline.open_database(self.settings)

    def close(self) -> None:
        """Close the database connections, if any were opened."""
        if "factory" in self.__dict__:
            engine = self.factory.kw["bind"]
            engine.dispose()


pass_context = click.make_pass_decorator(Context)


def as_of_option(func: F) -> F:
    """Add --as-of, the moment to act as if it were now (publication time zone if naive)."""
    return click.option(
        "--as-of",
        "as_of",
        metavar="DATETIME",
        help="Act as if it were this moment (ISO 8601; publication time zone if no offset).",
    )(func)


def parse_as_of(settings: Settings, value: str | None) -> datetime | None:
    """Turn --as-of text into an aware datetime, or None for the real clock."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 date-time like 2026-11-30T08:00", param_hint="--as-of"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zoneinfo.ZoneInfo(settings.publication.timezone))
    return moment


class DigestGroup(click.Group):
    """A group that turns our errors into "Error: …" on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            raise click.ClickException(str(exc)) from exc
        except sa.exc.DBAPIError as exc:
            # The database itself failed (corrupt, read-only, gone): one sentence, not a trace.
            raise click.ClickException(str(db.explain(exc))) from exc
