"""The desk's dashboard shows what `digest status` shows about the issues under way: a
paused issue and why, rows in flight with no sender, retries waiting."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest import config
from digest.pipeline import sending
from digest.store.models import Delivery, DeliveryState, Issue
from digest.web import create_app
from tests.test_draft import MONDAY
from tests.web.conftest import Clock, TestClient, add, client_for, drafted, example_settings, login


@pytest.fixture
def settings(make_settings: Any, tmp_path: Path) -> config.Settings:
    return example_settings(make_settings, tmp_path)


@pytest.fixture
def desk(settings: config.Settings, factory: sessionmaker[Session], clock: Clock) -> Any:
    with client_for(create_app(settings, factory=factory, clock=clock)) as client:
        yield client


def test_the_dashboard_shows_a_paused_issue_and_rows_in_flight(
    desk: TestClient, settings: config.Settings, factory: sessionmaker[Session]
) -> None:
    number = drafted(settings, factory)
    add(settings, factory, "ana@example.net")
    add(settings, factory, "bram@example.be", language="nl")
    sending.approve(settings, factory, number, now=MONDAY)
    assert sending.send(settings, factory, number=number, now=MONDAY).finished
    login(desk)
    page = " ".join(re.sub(r"<[^>]+>", " ", desk.get("/en/admin/").text).split())
    assert "Needs attention" not in page

    with factory() as session, session.begin():
        session.execute(sa.update(Issue).values(
            status="SENDING", paused_reason="the relay refused every connection",
            paused_kind="operator", sender_lock=None,
        ))  # fmt: skip
        row = session.scalars(sa.select(Delivery).limit(1)).one()
        row.state = DeliveryState.SENDING
    page = html.unescape(" ".join(re.sub(r"<[^>]+>", " ", desk.get("/en/admin/").text).split()))
    assert "Needs attention" in page
    assert f"issue #{number}: paused: the relay refused every connection" in page
    assert "waits for a person" in page
    assert "1 in flight with no live sender" in page
