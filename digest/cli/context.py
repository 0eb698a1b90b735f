"""What every command shares: the lazily loaded settings and database, --as-of, and the
group class that turns `DigestError` into a message and exit status 1.

Start-up is kept short: the database layer is imported when a command first needs it, and
commands registered by name (`DigestGroup.lazy`) are imported only when run, so
`digest --version` loads no SQLAlchemy and `digest status` no renderer.
"""

from __future__ import annotations

import importlib
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

import click

from digest import config
from digest.config import Settings
from digest.errors import DigestError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

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
        from digest import pipeline

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
    """A group that turns our errors into "Error: …" on stderr and exit status 1.

    `lazy` maps command names to "module:attribute", imported when the command is run (or
    listed in --help), so that starting one command does not import all the others."""

    lazy: dict[str, str]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = self.lazy.get(cmd_name)
        if where is not None and cmd_name not in self.commands:
            module, _, attribute = where.partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            raise click.ClickException(str(exc)) from exc
        except Exception as exc:
            from sqlalchemy.exc import DBAPIError

            from digest.store import db

            if isinstance(exc, DBAPIError):
                # The database failed (corrupt, read-only, gone): one sentence, not a trace.
                raise click.ClickException(str(db.explain(exc))) from exc
            raise


def lazy_module(name: str) -> Any:
    """A stand-in for module `name` that imports it on first attribute access (for a
    module the CLI uses in command bodies only; type-check with the real import)."""

    class Lazy:
        def __getattr__(self, attribute: str) -> Any:
            return getattr(importlib.import_module(name), attribute)

    return Lazy()
