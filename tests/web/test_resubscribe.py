"""Coming back after leaving: the form sends a new double opt-in, and only the person's own
confirmation click lifts their suppression; the form answers the same for every address."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest import config
from digest.pipeline import people, transport
from subscribers import registry, suppression
from subscribers.model import Subscriber, SubscriberStatus, SuppressionLift
from tests.web.conftest import Clock, TestClient, add, link_in, outbox
from tests.web.test_public import SIGNUP, subscriber


def leave(settings: config.Settings, factory: sessionmaker[Session], how: str) -> None:
    public_id = add(settings, factory, "ana@example.net")
    key = transport.suppression_key(settings)
    with factory() as session, session.begin():
        found = registry.by_public_id(session, public_id)
        assert found is not None
        if how == "unsubscribed":
            registry.unsubscribe(session, found, now=found.created_at, suppression_key=key)
        elif how == "erased":
            people.erase(session, found, now=found.created_at, suppression_key=key)
        elif how == "bounced":
            registry.record_bounce(
                session, found, permanent=True, now=found.created_at, suppression_key=key
            )
        else:
            registry.record_complaint(session, found, now=found.created_at, suppression_key=key)


def suppressed(settings: config.Settings, factory: sessionmaker[Session]) -> bool:
    with factory() as session:
        key = transport.suppression_key(settings)
        return suppression.is_suppressed(session, "ana@example.net", key=key)


@pytest.mark.parametrize("how", ["unsubscribed", "erased", "bounced"])
def test_who_left_can_come_back_through_the_form_and_their_click_lifts_it(
    client: TestClient,
    web_settings: config.Settings,
    factory: sessionmaker[Session],
    clock: Clock,
    how: str,
) -> None:
    leave(web_settings, factory, how)
    answer = client.post("/en/subscribe", data=SIGNUP)
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    person = subscriber(factory, "ana@example.net")
    assert person is not None and person.status is SubscriberStatus.PENDING
    assert person.language == "nl" and person.consent_at == clock.now
    # Until they click, the address stays suppressed: nobody else can lift it.
    assert suppressed(web_settings, factory)
    [mail] = outbox(web_settings)
    assert mail["To"].addresses[0].addr_spec == "ana@example.net"

    clock.advance(minutes=5)
    confirmed = client.post(link_in(mail, "/nl/confirm/"))
    assert confirmed.status_code == 200
    person = subscriber(factory, "ana@example.net")
    assert person is not None and person.status is SubscriberStatus.CONFIRMED
    assert not suppressed(web_settings, factory)
    with factory() as session:
        [lifted] = session.scalars(sa.select(SuppressionLift)).all()
    assert lifted.reason.value == how and lifted.lifted_by == "subscriber"
    assert lifted.lifted_at == clock.now and "confirmed" in lifted.why


def test_a_complaint_is_not_lifted_by_the_form_and_the_answer_is_the_same(
    client: TestClient, web_settings: config.Settings, factory: sessionmaker[Session]
) -> None:
    leave(web_settings, factory, "complained")
    complained = client.post("/en/subscribe", data=SIGNUP)
    fresh = client.post("/en/subscribe", data={**SIGNUP, "email": "new@example.net"})
    assert complained.status_code == fresh.status_code == 200
    assert complained.text == fresh.text
    assert [m["To"].addresses[0].addr_spec for m in outbox(web_settings)] == ["new@example.net"]
    person = subscriber(factory, "ana@example.net")
    assert person is not None and person.status is SubscriberStatus.COMPLAINED
    assert suppressed(web_settings, factory)


def test_a_resubscription_that_is_never_confirmed_changes_nothing_for_sending(
    client: TestClient, web_settings: config.Settings, factory: sessionmaker[Session]
) -> None:
    leave(web_settings, factory, "unsubscribed")
    client.post("/en/subscribe", data=SIGNUP)
    with factory() as session:
        recipients = list(registry.iter_recipients(session, cadence="weekly", languages=["nl"]))
    assert recipients == [] and suppressed(web_settings, factory)
    # Purging the stale pending record leaves the suppression in place.
    with factory() as session, session.begin():
        found = session.scalars(sa.select(Subscriber)).one()
        registry.purge_pending(
            session, older_than=timedelta(0), now=found.created_at + timedelta(days=30)
        )
    assert suppressed(web_settings, factory)
