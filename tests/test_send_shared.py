"""What senders share through the database: one rate limit (send permits reserved in
blocks), leases on claimed rows (a dead worker's batch goes to the others), and, on
PostgreSQL, an issue being sent that more workers join (`digest send --join`)."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest.errors import DeliveryError, DigestError
from digest.pipeline import claims, sending, workers
from digest.store import db, deliveries, issues, rates, senders
from digest.store.models import Delivery, DeliveryState, Issue, IssueStatus, SendWorker
from tests.smtpserver import SmtpServer
from tests.test_draft import MONDAY
from tests.test_send import add_people, approved_issue, ledger, settings_for
from tests.test_send_workers import DEADLINE, PEOPLE, until

# --- one rate for every sender ----------------------------------------------------------------


class FakeClock:
    """Wall and monotonic seconds the test moves by hand (they agree: offset 0)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_two_senders_together_never_pass_the_shared_rate(
    factory: sessionmaker[Session],
) -> None:
    rate = 40.0
    clock = FakeClock()
    paces = [
        rates.SharedPace(factory, rate, block=7, wall=clock, monotonic=clock) for _ in range(2)
    ]
    slots: list[float] = []
    for step in range(120):
        # The two senders take permits in an uneven interleaving while time moves on.
        slots.append(paces[(step * 5 // 3) % 2].reserve())
        clock.now += 0.004
    slots.sort()
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert min(gaps) >= 1 / rate - 1e-6, "two permits closer than the rate allows"
    for start in slots:  # over any one-second window: at most `rate` (+1 at the edge)
        assert sum(start <= s < start + 1 for s in slots) <= rate + 1
    # One round trip per block of permits, not per message.
    assert sum(p.reservations for p in paces) <= len(slots) // 7 + 2


def test_a_dead_sender_leaks_no_permit_beyond_its_last_block(
    factory: sessionmaker[Session],
) -> None:
    clock = FakeClock()
    dead = rates.SharedPace(factory, 10.0, block=5, wall=clock, monotonic=clock)
    dead.reserve()  # it reserved a block (half a second) and died
    clock.now += 60
    alive = rates.SharedPace(factory, 10.0, block=5, wall=clock, monotonic=clock)
    assert alive.reserve() == pytest.approx(clock.now)  # the dead one holds nothing now


# --- leases: a dead worker's batch --------------------------------------------------------------


def test_a_silent_worker_batch_is_reclaimed_after_its_lease(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session]
) -> None:
    settings = settings_for(make_settings, tmp_path, None)
    add_people(settings, factory, PEOPLE[:12])
    number = approved_issue(settings, factory)
    with factory() as session:
        issue_id = session.scalar(sa.select(Issue.id).where(Issue.number == number))
    assert issue_id is not None
    lost, other = "elsewhere:101:aaaa", "elsewhere:202:bbbb"  # on another host
    with factory() as session:
        cadence = issues.plan_of(session.get_one(Issue, issue_id)).cadence
    deliveries.build_ledger(
        factory,
        issue_id,
        cadence=cadence,
        languages=("en", "nl", "fr"),
        variant_of=lambda language, topics: language,
        now=MONDAY,
    )

    def claim(worker: str, at: Any, batch: int) -> list[deliveries.Claimed]:
        return db.retrying(
            factory,
            lambda session: claims.claim(
                session,
                settings=settings,
                issue_id=issue_id,
                owner=None,
                worker=worker,
                now=at,
                batch=batch,
            )[0],
            what="claiming",
        )

    for worker in (lost, other):
        with db.transaction(factory) as session:
            senders.register(session, issue_id, worker, now=MONDAY)
    taken = {row.id for row in claim(lost, MONDAY, 5)}
    assert len(taken) == 5
    # Within the lease, its rows stay its own: the other takes the rest only.
    soon = MONDAY + senders.LEASE / 2
    rest = {row.id for row in claim(other, soon, 100)}
    assert len(rest) == 7 and not rest & taken
    # Past the lease (silent since MONDAY), its batch goes to the others.
    later = MONDAY + senders.LEASE + timedelta(seconds=1)
    again = {row.id for row in claim(other, later, 100)}
    assert again == taken
    with factory() as session:
        owners = set(session.scalars(sa.select(SendWorker.owner)))
        claimed_by = set(
            session.scalars(sa.select(Delivery.claimed_by).where(Delivery.id.in_(taken)))
        )
    assert owners == {other} and claimed_by == {other}
    # The presumed-dead worker, should it wake, must stop rather than send them too.
    with pytest.raises(DeliveryError, match="silent"), db.transaction(factory) as session:
        senders.beat(session, lost, now=later)


# --- joining an issue being sent (PostgreSQL) --------------------------------------------------


def _postgresql(factory: sessionmaker[Session]) -> bool:
    return bool(factory.kw["bind"].dialect.name == "postgresql")


def test_join_needs_postgresql_and_an_issue_being_sent(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session]
) -> None:
    settings = settings_for(make_settings, tmp_path, None)
    add_people(settings, factory, PEOPLE[:3])
    approved_issue(settings, factory)
    expected = "not being sent" if _postgresql(factory) else "needs PostgreSQL"
    with pytest.raises(DigestError, match=expected):
        workers.join(settings, factory, workers=1, now=MONDAY)


def test_a_second_process_joins_and_both_deliver_each_subscriber_once(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session], smtp_server: SmtpServer
) -> None:
    if not _postgresql(factory):
        pytest.skip("--join shares the ledger through PostgreSQL (DIGEST_TEST_DATABASE_URL)")
    settings = settings_for(make_settings, tmp_path, smtp_server)
    add_people(settings, factory, PEOPLE)
    approved_issue(settings, factory)
    smtp_server.hold_dot_replies()  # the first sender's workers wait with their batches
    done: dict[str, Any] = {}

    def run(name: str, work: Any) -> None:
        try:
            done[name] = work()
        except BaseException as exc:  # handed to the test's thread below
            done[f"{name} error"] = exc

    first = threading.Thread(
        target=run,
        args=("first", lambda: workers.send(settings, factory, workers=2, now=MONDAY, batch=5)),
    )
    first.start()

    def sending_now() -> bool:
        with factory() as session:
            issue = session.scalars(sa.select(Issue)).one()
            return (
                issue.status is IssueStatus.SENDING
                and (session.scalar(sa.select(sa.func.count()).select_from(SendWorker)) or 0) >= 2
            )

    until(sending_now, "the first sender's workers")
    joined = threading.Thread(
        target=run,
        args=("joined", lambda: workers.join(settings, factory, workers=1, now=MONDAY, batch=5)),
    )
    joined.start()

    def claimed_by_three() -> bool:
        with factory() as session:
            owners = session.scalars(
                sa.select(Delivery.claimed_by).where(Delivery.claimed_by.is_not(None)).distinct()
            )
            return len(set(owners)) >= 3

    until(claimed_by_three, "the joined worker's first claim")
    smtp_server.release_dot_replies()
    for thread in (first, joined):
        thread.join(DEADLINE)
        assert not thread.is_alive()
    assert "first error" not in done and "joined error" not in done, done
    assert done["joined"].attempted > 0 and done["first"].attempted > 0
    assert done["joined"].attempted + done["first"].attempted == 60
    assert ledger(factory) == Counter({DeliveryState.SENT: 60})
    received = Counter(m.rcpt_tos[0] for m in smtp_server.messages)
    assert received == Counter(address for address, _, _ in PEOPLE)
    with factory() as session:
        assert session.scalars(sa.select(Issue)).one().status is IssueStatus.SENT
        assert not session.scalar(sa.select(sa.func.count()).select_from(SendWorker))


# --- variants rendered in parallel --------------------------------------------------------------


def test_variants_rendered_in_a_process_pool_are_those_rendered_one_by_one(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session]
) -> None:
    from digest.pipeline import environment
    from digest.pipeline.transport import tokens
    from subscribers.tokens import Purpose

    settings = settings_for(make_settings, tmp_path, None)
    number = approved_issue(settings, factory)
    with factory() as session:
        plan = issues.plan_of(issues.by_number(session, number))
    length = tokens(settings).token_length(Purpose.UNSUBSCRIBE)
    keys = ["en", "nl", "fr"]
    alone = sending.Variants(settings, plan, environment(settings), length)
    pooled = sending.Variants(settings, plan, environment(settings), length)
    pooled.render_all(keys, 3)
    assert set(pooled.rendered_at) == set(keys)
    for key in keys:
        one, other = alone.template(key), pooled.template(key)
        assert (one._chunks, one._slots) == (other._chunks, other._slots)
