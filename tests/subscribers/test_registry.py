"""The subscriber list: double opt-in, unsubscribe, erase, bounces, complaints, purge, export."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from subscribers import preferences, registry, suppression
from subscribers.errors import Duplicate, InvalidAddress, InvalidField, Suppressed
from subscribers.model import (
    Cadence,
    ConsentSource,
    Subscriber,
    SubscriberStatus,
    Suppression,
    SuppressionReason,
)
from subscribers.tokens import Tokens
from tests.subscribers.common import KEY, LANGUAGES, NOW, add

TOKENS = Tokens(["test secret"])


class Outbox:
    """Collects the confirmation mails `request_confirmation` sends."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def __call__(self, subscriber: Subscriber, token: str) -> None:
        self.sent.append((subscriber.email, token))


def test_add_leaves_a_pending_subscriber_with_its_consent_record(db: Session) -> None:
    subscriber = add(
        db,
        " Alice@Example.ORG ",
        name="Alice\r\nBcc: eve@example.net",
        topics=[" Governance", "housing", "governance", ""],
        source=ConsentSource.FORM,
        consent_version="2026-01",
    )
    db.commit()
    db.expire_all()
    assert subscriber.email == "alice@example.org"
    assert subscriber.name == "Alice Bcc: eve@example.net", "one line, safe in a To: header"
    assert subscriber.status is SubscriberStatus.PENDING
    assert subscriber.language == "en", "the first language is the default"
    assert subscriber.topics == ["governance", "housing"]
    assert subscriber.cadence is Cadence.WEEKLY
    assert subscriber.paused is False
    assert subscriber.confirmed_at is None
    assert (subscriber.consent_at, subscriber.consent_source) == (NOW, ConsentSource.FORM)
    assert (subscriber.consent_version, subscriber.consent_ip) == ("2026-01", None)


def test_add_confirmed_skips_the_opt_in(db: Session) -> None:
    subscriber = add(db, "bob@example.org", confirmed=True, language="NL", cadence="daily")
    assert subscriber.status is SubscriberStatus.CONFIRMED
    assert subscriber.confirmed_at == NOW
    assert (subscriber.language, subscriber.cadence) == ("nl", Cadence.DAILY)


def test_add_refuses_bad_values_with_the_choices(db: Session) -> None:
    with pytest.raises(InvalidField, match="'de' is not one of this publication's: en, nl, fr"):
        add(db, "alice@example.org", language="de")
    with pytest.raises(InvalidField, match="'monthly' is not one of weekly, daily"):
        add(db, "alice@example.org", cadence="monthly")
    with pytest.raises(InvalidField, match="at most 200"):
        add(db, "alice@example.org", name="x" * 201)
    with pytest.raises(InvalidAddress, match="display name"):
        add(db, "Alice <alice@example.org>")
    assert db.scalar(sa.select(sa.func.count()).select_from(Subscriber)) == 0


def test_add_refuses_an_address_already_on_the_list(db: Session) -> None:
    add(db, "alice@example.org")
    with pytest.raises(Duplicate, match=r"alice@example\.org is already subscribed"):
        add(db, "ALICE@example.org")


def test_topics_must_be_a_list(db: Session) -> None:
    with pytest.raises(TypeError, match="not one string"):
        add(db, "alice@example.org", topics="governance,housing")


def test_lookups_accept_any_spelling(db: Session) -> None:
    subscriber = add(db, "alice@bücher.de")
    assert registry.by_email(db, "Alice@XN--BCHER-KVA.DE") is subscriber
    assert registry.by_public_id(db, subscriber.public_id) is subscriber
    assert registry.by_email(db, "bob@example.org") is None
    assert registry.by_public_id(db, "A" * 22) is None


def test_double_opt_in_from_mail_to_confirmation(db: Session) -> None:
    subscriber = add(db, "alice@example.org")
    outbox = Outbox()
    assert registry.request_confirmation(db, subscriber, now=NOW, send=outbox, tokens=TOKENS)
    [(address, token)] = outbox.sent
    assert address == "alice@example.org"
    assert subscriber.last_confirmation_sent_at == NOW

    # The web app's side: the link comes back the next day.
    later = NOW + timedelta(days=1)
    found = registry.by_public_id(db, TOKENS.read_confirm(token, now=later))
    assert found is subscriber
    assert registry.confirm(db, found, now=later) is True
    assert (subscriber.status, subscriber.confirmed_at) == (SubscriberStatus.CONFIRMED, later)
    assert subscriber.status_changed_at == later
    assert registry.confirm(db, found, now=later) is False, "a second click changes nothing"


def test_at_most_one_confirmation_mail_per_day(db: Session) -> None:
    subscriber = add(db, "alice@example.org")
    outbox = Outbox()
    moments = [NOW, NOW + timedelta(hours=1), NOW + timedelta(hours=23, minutes=59)]
    moments += [NOW + timedelta(days=1), NOW + timedelta(days=1, hours=2)]
    sent = [
        registry.request_confirmation(db, subscriber, now=moment, send=outbox, tokens=TOKENS)
        for moment in moments
    ]
    assert sent == [True, False, False, True, False]
    assert len(outbox.sent) == 2


def test_a_failed_send_can_be_retried_at_once(db: Session) -> None:
    subscriber = add(db, "alice@example.org")

    def broken(_subscriber: Subscriber, _token: str) -> None:
        raise ConnectionRefusedError("SMTP server down")

    with pytest.raises(ConnectionRefusedError):
        registry.request_confirmation(db, subscriber, now=NOW, send=broken, tokens=TOKENS)
    assert subscriber.last_confirmation_sent_at is None
    outbox = Outbox()
    assert registry.request_confirmation(db, subscriber, now=NOW, send=outbox, tokens=TOKENS)
    assert len(outbox.sent) == 1


def test_only_pending_subscribers_get_confirmation_mail(db: Session) -> None:
    subscriber = add(db, "alice@example.org", confirmed=True)
    outbox = Outbox()
    assert not registry.request_confirmation(db, subscriber, now=NOW, send=outbox, tokens=TOKENS)
    assert outbox.sent == []


def test_unsubscribe_suppresses_and_the_address_is_never_re_added(db: Session) -> None:
    subscriber = add(db, "alice@example.org", confirmed=True)
    later = NOW + timedelta(days=3)
    assert registry.unsubscribe(db, subscriber, now=later, suppression_key=KEY) is True
    assert subscriber.status is SubscriberStatus.UNSUBSCRIBED
    assert subscriber.unsubscribed_at == later
    assert suppression.is_suppressed(db, "Alice@Example.org", key=KEY)
    assert registry.unsubscribe(db, subscriber, now=later, suppression_key=KEY) is False
    assert registry.confirm(db, subscriber, now=later) is False, "old links do not re-subscribe"
    with pytest.raises(Suppressed, match=r"alice@example.org is suppressed \(unsubscribed on"):
        add(db, "ALICE@example.org", confirmed=True)


def test_erase_keeps_only_the_keyed_hash(db: Session) -> None:
    subscriber = add(db, "alice@example.org", name="Alice Jansen", confirmed=True)
    add(db, "bob@example.org")
    registry.erase(db, subscriber, now=NOW, suppression_key=KEY)
    db.commit()

    assert [s.email for s in db.scalars(sa.select(Subscriber))] == ["bob@example.org"]
    [kept] = db.scalars(sa.select(Suppression)).all()
    assert kept.address_hash == suppression.address_hash("alice@example.org", KEY)
    assert kept.reason is SuppressionReason.ERASED
    for table in ("subscribers", "suppressions"):
        dump = repr(db.execute(sa.text(f"SELECT * FROM {table}")).all()).lower()
        assert "alice" not in dump
        assert "jansen" not in dump
    with pytest.raises(Suppressed, match="erased"):
        add(db, "alice@example.org")


def test_address_hash_is_keyed_and_normalized() -> None:
    digest = suppression.address_hash("alice@example.org", KEY)
    assert len(digest) == 64
    assert suppression.address_hash(" ALICE@Example.ORG", KEY) == digest
    assert suppression.address_hash("alice@example.org", b"another key") != digest
    with pytest.raises(ValueError, match="suppression key is empty"):
        suppression.address_hash("alice@example.org", b"")


def test_suppress_is_idempotent_and_the_first_reason_stands(db: Session) -> None:
    first = suppression.suppress(
        db, "alice@example.org", key=KEY, reason=SuppressionReason.BOUNCED, now=NOW
    )
    again = suppression.suppress(
        db, "Alice@example.org", key=KEY, reason=SuppressionReason.ERASED, now=NOW
    )
    assert again is first
    assert again.reason is SuppressionReason.BOUNCED
    assert db.scalar(sa.select(sa.func.count()).select_from(Suppression)) == 1


def test_remove_forgets_without_suppressing(db: Session) -> None:
    typo = add(db, "alice@exmaple.org")
    registry.remove(db, typo)
    assert registry.by_email(db, "alice@exmaple.org") is None
    assert not suppression.is_suppressed(db, "alice@exmaple.org", key=KEY)
    assert add(db, "alice@exmaple.org").status is SubscriberStatus.PENDING


def test_soft_bounces_end_the_subscription_at_the_threshold(db: Session) -> None:
    subscriber = add(db, "alice@example.org", confirmed=True)
    results = [
        registry.record_bounce(db, subscriber, permanent=False, now=NOW, suppression_key=KEY)
        for _ in range(3)
    ]
    assert results == [False, False, True]
    assert (subscriber.status, subscriber.bounce_count) == (SubscriberStatus.BOUNCED, 3)
    assert subscriber.bounced_at == NOW
    assert suppression.is_suppressed(db, "alice@example.org", key=KEY)


def test_a_permanent_bounce_ends_it_at_once(db: Session) -> None:
    subscriber = add(db, "alice@example.org", confirmed=True)
    assert registry.record_bounce(db, subscriber, permanent=True, now=NOW, suppression_key=KEY)
    assert subscriber.status is SubscriberStatus.BOUNCED
    with pytest.raises(Suppressed, match="bounced"):
        add(db, "alice@example.org")


def test_a_bounce_after_unsubscribing_keeps_the_status(db: Session) -> None:
    subscriber = add(db, "alice@example.org", confirmed=True)
    registry.unsubscribe(db, subscriber, now=NOW, suppression_key=KEY)
    assert not registry.record_bounce(db, subscriber, permanent=True, now=NOW, suppression_key=KEY)
    assert subscriber.status is SubscriberStatus.UNSUBSCRIBED
    assert subscriber.bounce_count == 1


def test_a_complaint_stops_everything(db: Session) -> None:
    subscriber = add(db, "alice@example.org", confirmed=True)
    assert registry.record_complaint(db, subscriber, now=NOW, suppression_key=KEY) is True
    assert (subscriber.status, subscriber.complained_at) == (SubscriberStatus.COMPLAINED, NOW)
    assert registry.record_complaint(db, subscriber, now=NOW, suppression_key=KEY) is False
    with pytest.raises(Suppressed, match="complained"):
        add(db, "alice@example.org")


def test_purge_pending_deletes_only_stale_unconfirmed_who_were_asked(db: Session) -> None:
    stale = add(db, "stale@example.org", now=NOW - timedelta(days=10))
    stale.last_confirmation_sent_at = NOW - timedelta(days=10)
    fresh = add(db, "fresh@example.org", now=NOW - timedelta(days=2))
    fresh.last_confirmation_sent_at = NOW - timedelta(days=2)
    # Never mailed a confirmation (an old import, a mail that failed): never purged.
    add(db, "never-asked@example.org", now=NOW - timedelta(days=100))
    add(db, "old-reader@example.org", now=NOW - timedelta(days=400), confirmed=True)
    assert registry.purge_pending(db, older_than=timedelta(days=7), now=NOW) == 1
    left = sorted(db.scalars(sa.select(Subscriber.email)))
    assert left == ["fresh@example.org", "never-asked@example.org", "old-reader@example.org"]
    assert not suppression.is_suppressed(db, "stale@example.org", key=KEY)


def test_export_is_all_their_data_as_json(db: Session) -> None:
    subscriber = add(
        db, "alice@example.org", name="Alice", topics=["housing"], consent_ip="192.0.2.7"
    )
    registry.confirm(db, subscriber, now=NOW + timedelta(hours=2))
    data = json.loads(json.dumps(registry.export(subscriber)))
    assert data["email"] == "alice@example.org"
    assert data["public_id"] == subscriber.public_id
    assert (data["name"], data["language"], data["topics"]) == ("Alice", "en", ["housing"])
    assert (data["cadence"], data["status"], data["paused"]) == ("weekly", "confirmed", False)
    assert data["created_at"] == "2026-11-23T09:00:00+00:00"
    assert data["confirmed_at"] == "2026-11-23T11:00:00+00:00"
    assert data["unsubscribed_at"] is None
    assert data["consent"] == {
        "at": "2026-11-23T09:00:00+00:00",
        "source": "cli",
        "version": "v1",
        "ip": "192.0.2.7",
        "origin": None,
    }
    assert "id" not in data


def test_preferences_change_only_what_is_given(db: Session) -> None:
    subscriber = add(db, "alice@example.org", confirmed=True, topics=["housing"], name="Alice")
    preferences.change(db, subscriber, languages=LANGUAGES, language="FR", paused=True)
    assert (subscriber.language, subscriber.paused) == ("fr", True)
    assert (subscriber.name, subscriber.topics) == ("Alice", ["housing"])
    preferences.change(db, subscriber, languages=LANGUAGES, topics=[], cadence="daily")
    assert (subscriber.topics, subscriber.cadence) == ([], Cadence.DAILY)
    with pytest.raises(InvalidField, match="language"):
        preferences.change(db, subscriber, languages=LANGUAGES, name="Al", language="de")
    assert (subscriber.name, subscriber.language) == ("Alice", "fr"), "nothing half-changed"
