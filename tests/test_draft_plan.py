"""The stored plan of a big issue: the items it shows and the keys of the rest."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest import pipeline
from digest.pipeline import editorial
from digest.store import issues
from digest.store.models import Entry, EntrySource, Source

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # the Monday 08:00 (Brussels) slot is next
COUNT = 2000


def fill(factory: sessionmaker[Session], count: int = COUNT) -> None:
    """One feed that carried `count` distinct news items this week (bulk insert)."""
    with factory.begin() as session:
        session.execute(
            sa.insert(Source),
            [
                {
                    "id": 1,
                    "name": "hub",
                    "url": "https://hub.example.org/feed",
                    "kind": "FEED",
                    "language": "en",
                    "topics": ["housing"],
                    "section": "news",
                    "created_at": NOW - timedelta(days=100),
                }
            ],
        )
        rows = []
        for n in range(1, count + 1):
            published = NOW - timedelta(days=6, minutes=-3 * n)
            rows.append(
                {
                    "id": n,
                    "guid": f"item-{n}",
                    "link": f"https://hub.example.org/news/{n}",
                    "fingerprint": f"{n:064x}",
                    "title": f"Item {n:05d} zebra{n} quokka{n}",
                    "summary_html": f"<p>Summary {n:05d}</p>",
                    "summary_text": f"Summary {n:05d}",
                    "language": "en",
                    "categories": [],
                    "published_at": published,
                    "first_seen_at": published,
                    "last_seen_at": published,
                    "content_hash": f"{n:064x}",
                }
            )
        session.execute(sa.insert(Entry), rows)
        session.execute(
            sa.insert(EntrySource),
            [
                {"entry_id": n, "source_id": 1, "guid": f"item-{n}", "first_seen_at": NOW}
                for n in range(1, count + 1)
            ],
        )


def stored_plan(factory: sessionmaker[Session], number: int) -> dict[str, Any]:
    with factory() as session:
        raw: dict[str, Any] = json.loads(issues.by_number(session, number).plan)
        return raw


def test_the_plan_of_a_2000_item_issue_stores_what_it_shows_and_keys(
    make_settings: Any, factory: sessionmaker[Session]
) -> None:
    settings = make_settings('[publication]\nlanguages = ["en", "nl"]\n')
    fill(factory)
    drafted = pipeline.draft(settings, factory, now=NOW)
    cap = settings.issue.max_items_per_section
    raw = stored_plan(factory, drafted.number)
    for variant in raw["variants"]:
        (section,) = variant["sections"]
        assert len(section["items"]) == cap
        assert section["rest"] == []
        assert len(section["rest_keys"]) == section["more"] == COUNT - cap
        keys = [i["key"] for i in section["items"]] + section["rest_keys"]
        assert sorted(keys) == sorted(f"entry:{n}" for n in range(1, COUNT + 1))
    # Newest first: the last item is shown, the first is only a key.
    text = json.dumps(raw)
    assert "Item 02000" in text and "Item 00001" not in text
    # The archive and the desk still list them all.
    with factory() as session:
        full = pipeline.full_plan(settings, session, issues.by_number(session, drafted.number))
    listed = full.complete().variant("nl").sections[0].items
    assert len(listed) == COUNT and listed[-1].title.startswith("Item 00001")
    assert listed[-1].link == "https://hub.example.org/news/1"


def test_curation_of_an_item_the_email_left_out_holds_across_redrafts(
    make_settings: Any, factory: sessionmaker[Session]
) -> None:
    settings = make_settings()
    fill(factory, 300)
    number = pipeline.draft(settings, factory, now=NOW).number
    editorial.curate(settings, factory, number, editorial.Changes(pinned=("entry:1",)), now=NOW)
    editorial.curate(
        settings, factory, number, editorial.Changes(dropped=frozenset({"entry:300"})), now=NOW
    )
    again = pipeline.draft(settings, factory, now=NOW + timedelta(minutes=5))
    (section,) = again.plan.variants[0].sections
    assert section.items[0].key == "entry:1" and section.items[0].pinned
    assert section.items[1].key == "entry:299"
    assert "entry:300" not in section.rest_keys and "entry:1" not in section.rest_keys
    assert len(section.items) + len(section.rest_keys) == 299
