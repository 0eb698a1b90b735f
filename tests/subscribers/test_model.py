"""The subscriber tables: values stored as plain SQL can read them, times as aware UTC."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from subscribers.model import Cadence, ConsentSource, Subscriber
from tests.subscribers.common import NOW, add


def test_enums_are_stored_as_their_values(db: Session) -> None:
    add(db, "alice@example.org", cadence="daily")
    db.commit()
    row = db.execute(sa.text("SELECT status, cadence, consent_source FROM subscribers")).one()
    assert tuple(row) == ("pending", "daily", "cli")


def test_times_come_back_aware_utc(db: Session) -> None:
    brussels = timezone(timedelta(hours=1))
    subscriber = add(db, "alice@example.org", now=datetime(2026, 11, 23, 10, 0, tzinfo=brussels))
    db.commit()
    db.expire_all()
    assert subscriber.created_at == NOW
    assert subscriber.created_at.utcoffset() == timedelta(0)


def test_naive_times_are_refused(db: Session) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        add(db, "alice@example.org", now=datetime(2026, 11, 23, 9, 0))


def test_public_ids_are_random_url_safe_and_unique(db: Session) -> None:
    ids = {add(db, f"reader{n}@example.org").public_id for n in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", public_id) for public_id in ids)


def test_repr_never_shows_the_address(db: Session) -> None:
    subscriber = add(db, "alice@example.org")
    assert "alice" not in repr(subscriber)
    assert subscriber.public_id in repr(subscriber)


def test_cadence_parse_names_the_choices() -> None:
    assert Cadence.parse(" Weekly ") is Cadence.WEEKLY
    with pytest.raises(ValueError, match="'monthly' is not one of weekly, daily"):
        Cadence.parse("monthly")


def test_the_address_is_unique_in_the_table(db: Session) -> None:
    add(db, "alice@example.org")
    db.add(
        Subscriber(
            email="alice@example.org",
            language="en",
            created_at=NOW,
            status_changed_at=NOW,
            consent_at=NOW,
            consent_source=ConsentSource.CLI,
            consent_version="v1",
        )
    )
    with pytest.raises(sa.exc.IntegrityError):
        db.flush()
