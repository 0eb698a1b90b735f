"""Walking the recipients of an issue: the right subscribers, streamed in batches, in id order."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import ORMExecuteState, Session

from subscribers import registry
from subscribers.model import (
    Cadence,
    ConsentSource,
    Subscriber,
    SubscriberStatus,
    new_public_id,
)
from tests.subscribers.common import NOW

ROWS = 5_000
LANGUAGE_CYCLE = ("en", "nl", "fr")
TOPIC_CYCLE: tuple[list[str], ...] = ([], ["governance"], ["housing"], ["governance", "labour"])
STATUS_CYCLE = (
    [SubscriberStatus.PENDING, SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED]
    + [SubscriberStatus.COMPLAINED]
    + [SubscriberStatus.CONFIRMED] * 7
)


def synthetic(n: int) -> dict[str, Any]:
    """Row `n` of the synthetic list: every combination of the filters comes up."""
    return {
        "public_id": new_public_id(),
        "email": f"reader{n:05d}@example.org",
        "name": f"Reader {n}",
        "language": LANGUAGE_CYCLE[n % 3],
        "topics": TOPIC_CYCLE[n % 4],
        "cadence": Cadence.DAILY if n % 5 == 0 else Cadence.WEEKLY,
        "status": STATUS_CYCLE[n % len(STATUS_CYCLE)],
        "paused": n % 13 == 0,
        "created_at": NOW,
        "status_changed_at": NOW,
        "bounce_count": 0,
        "consent_at": NOW,
        "consent_source": ConsentSource.IMPORT,
        "consent_version": "v1",
    }


@pytest.fixture
def crowd(db: Session) -> Session:
    """The session `db`, on a list of 5,000 synthetic subscribers (none loaded in it)."""
    db.execute(sa.insert(Subscriber), [synthetic(n) for n in range(ROWS)])
    db.commit()
    db.expunge_all()
    return db


def expected(cadence: Cadence, languages: set[str], topics: set[str] | None) -> list[str]:
    rows = [synthetic(n) for n in range(ROWS)]
    return [
        row["email"]
        for row in rows
        if row["status"] is SubscriberStatus.CONFIRMED
        and not row["paused"]
        and row["cadence"] is cadence
        and row["language"] in languages
        and (topics is None or not row["topics"] or topics & set(row["topics"]))
    ]


@pytest.mark.parametrize(
    ("cadence", "languages", "topics"),
    [
        (Cadence.WEEKLY, {"en", "nl", "fr"}, None),
        (Cadence.DAILY, {"en", "nl", "fr"}, None),
        (Cadence.WEEKLY, {"nl"}, None),
        (Cadence.WEEKLY, {"en", "fr"}, {"housing"}),
        (Cadence.DAILY, {"fr"}, {"labour", "governance"}),
        (Cadence.WEEKLY, {"en"}, set()),
    ],
)
def test_recipients_are_filtered_like_the_spec(
    crowd: Session, cadence: Cadence, languages: set[str], topics: set[str] | None
) -> None:
    found = registry.iter_recipients(
        crowd, cadence=cadence, languages=sorted(languages), topics=topics, batch=300
    )
    emails = [subscriber.email for subscriber in found]
    assert emails == expected(cadence, languages, topics), "same people, in id order"
    assert emails, "each case selects someone"


def test_a_subscriber_without_topics_gets_everything(db: Session) -> None:
    rows = [synthetic(n) for n in range(4)]
    for row in rows:
        row.update(status=SubscriberStatus.CONFIRMED, paused=False, cadence=Cadence.WEEKLY)
        row.update(language="en")
    db.execute(sa.insert(Subscriber), rows)
    found = registry.iter_recipients(db, cadence="Weekly", languages=["en"], topics=["HOUSING"])
    # Row 0 chose no topics, row 2 chose housing; rows 1 and 3 chose others.
    assert [s.email for s in found] == [rows[0]["email"], rows[2]["email"]]


def test_recipients_stream_in_batches(crowd: Session) -> None:
    executed: list[dict[str, Any]] = []

    @sa.event.listens_for(crowd, "do_orm_execute")
    def spy(state: ORMExecuteState) -> None:
        executed.append(dict(state.execution_options))

    stream = registry.iter_recipients(crowd, cadence=Cadence.WEEKLY, languages=["en", "nl", "fr"])
    is_generator = inspect.isgenerator(stream)  # kept apart: mypy would narrow `stream` to Any
    assert is_generator
    assert executed == [], "nothing is queried before the first recipient is asked for"

    first = next(stream)
    assert [options.get("yield_per") for options in executed] == [1000]
    loaded = len(crowd.identity_map)
    assert 0 < loaded <= 1000, f"{loaded} subscribers loaded for the first one: not streamed"
    rest = sum(1 for _ in stream)
    assert rest + 1 == len(expected(Cadence.WEEKLY, {"en", "nl", "fr"}, None)) > 1000
    assert first.email == "reader00004@example.org"  # rows 0-3 are not confirmed


def test_batch_size_is_a_parameter(crowd: Session) -> None:
    stream: Iterator[Subscriber] = registry.iter_recipients(
        crowd, cadence=Cadence.WEEKLY, languages=["en"], batch=50
    )
    next(stream)
    assert 0 < len(crowd.identity_map) <= 50


def test_stopping_early_releases_the_cursor(crowd: Session) -> None:
    stream = registry.iter_recipients(crowd, cadence=Cadence.WEEKLY, languages=["en"], batch=10)
    assert inspect.isgenerator(stream)
    next(stream)
    stream.close()
    # The session is usable at once: no half-read cursor holds the connection.
    assert crowd.scalar(sa.select(sa.func.count()).select_from(Subscriber)) == ROWS


def test_every_subscriber_streams_for_the_exports(crowd: Session) -> None:
    everyone = registry.iter_subscribers(crowd, batch=500)
    assert inspect.isgenerator(everyone)
    assert sum(1 for _ in everyone) == ROWS
    pending = registry.iter_subscribers(crowd, status=SubscriberStatus.PENDING)
    assert {s.status for s in pending} == {SubscriberStatus.PENDING}
