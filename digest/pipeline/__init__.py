"""The one place that strings the stages together; the CLI, web app and scheduler call it.

    sources ─collect─▶ Entry / Event ─store─▶ DB ─compose─▶ IssuePlan ─render─▶ …

One module per group of verbs: `collecting`, `drafting`, `previews`, `publishing`,
`sending`, `desk`, `health` (`digest status`) and so on. The most used verbs are also
names of this package (`pipeline.draft`, `pipeline.collect_sources`), loaded on first use:
importing `digest.pipeline` costs nothing, so a command pays only for the modules of what
it does (`digest status` loads neither SQLAlchemy nor the renderer).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from digest.pipeline.collecting import CollectReport as CollectReport
    from digest.pipeline.collecting import SourceReport as SourceReport
    from digest.pipeline.collecting import calendar_window as calendar_window
    from digest.pipeline.collecting import check_sources as check_sources
    from digest.pipeline.collecting import collect_sources as collect_sources
    from digest.pipeline.database import database_pool as database_pool
    from digest.pipeline.database import open_database as open_database
    from digest.pipeline.database import utcnow as utcnow
    from digest.pipeline.desk import describe_source as describe_source
    from digest.pipeline.drafting import Drafted as Drafted
    from digest.pipeline.drafting import draft as draft
    from digest.pipeline.drafting import find_issue as find_issue
    from digest.pipeline.drafting import full_plan as full_plan
    from digest.pipeline.drafting import labels_of as labels_of
    from digest.pipeline.drafting import render_check as render_check
    from digest.pipeline.drafting import rules_of as rules_of
    from digest.pipeline.drafting import schedule_of as schedule_of
    from digest.pipeline.previews import CHANNELS as CHANNELS
    from digest.pipeline.previews import SAMPLE_TOKEN as SAMPLE_TOKEN
    from digest.pipeline.previews import ChannelPreview as ChannelPreview
    from digest.pipeline.previews import environment as environment
    from digest.pipeline.previews import preview as preview
    from digest.pipeline.previews import preview_channel as preview_channel
    from digest.pipeline.previews import public_links as public_links
    from digest.pipeline.previews import sample_links as sample_links
    from digest.pipeline.publishing import build_site as build_site
    from digest.pipeline.publishing import is_approved as is_approved
    from digest.pipeline.publishing import mark_published as mark_published
    from digest.pipeline.publishing import publish as publish

HOMES = {
    "open_database": "database",
    "database_pool": "database",
    "utcnow": "database",
    "Drafted": "drafting",
    "schedule_of": "drafting",
    "labels_of": "drafting",
    "rules_of": "drafting",
    "draft": "drafting",
    "full_plan": "drafting",
    "render_check": "drafting",
    "find_issue": "drafting",
    "environment": "previews",
    "public_links": "previews",
    "sample_links": "previews",
    "SAMPLE_TOKEN": "previews",
    "preview": "previews",
    "CHANNELS": "previews",
    "ChannelPreview": "previews",
    "preview_channel": "previews",
    "is_approved": "publishing",
    "mark_published": "publishing",
    "build_site": "publishing",
    "publish": "publishing",
    "CollectReport": "collecting",
    "SourceReport": "collecting",
    "calendar_window": "collecting",
    "check_sources": "collecting",
    "collect_sources": "collecting",
    "describe_source": "desk",
}
"""Name → the module of this package that defines it."""


def __getattr__(name: str) -> Any:
    """Load a verb from its module on first use; a submodule by its name, as an import
    would (`pipeline.sending` after any other module imported it)."""
    home = HOMES.get(name)
    try:
        module = importlib.import_module(f"{__name__}.{home or name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{home or name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(module, name) if home else module
    globals()[name] = value
    return value
