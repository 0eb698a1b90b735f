"""The subscriber list at the desk: search, one person's record, change, unsubscribe,
erase, unsuppress with a reason, add, import a CSV with its row report, export."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from digest import config
from digest.web import create_app
from subscribers import registry
from tests.web.conftest import (
    Clock,
    TestClient,
    add,
    client_for,
    csrf_of,
    login,
    outbox,
)


@pytest.fixture
def desk(web_settings: config.Settings, factory: sessionmaker[Session], clock: Clock) -> Any:
    with client_for(create_app(web_settings, factory=factory, clock=clock)) as client:
        login(client)
        yield client


def status_of(factory: sessionmaker[Session], address: str) -> str | None:
    with factory() as session:
        found = registry.by_email(session, address)
        return found.status.value if found else None


def test_search_view_and_change_a_subscriber(
    desk: TestClient, web_settings: config.Settings, factory: sessionmaker[Session]
) -> None:
    public_id = add(web_settings, factory, "ana@example.net", language="en")
    add(web_settings, factory, "bram@example.be", language="nl")
    page = desk.get("/en/admin/subscribers?q=ANA@")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "ana@example.net" in page.text and "bram@example.be" not in page.text
    assert 'role="search"' in page.text and '<label for="q">' in page.text
    person = desk.get(f"/en/admin/subscribers/{public_id}")
    assert person.status_code == 200
    assert "Consent" in person.text and "cli" in person.text and "Nothing was sent" in person.text
    changed = desk.post(
        f"/en/admin/subscribers/{public_id}/change",
        data={
            "csrf": csrf_of(person.text),
            "name": "Ana",
            "language": "fr",
            "topics": ["housing"],
            "cadence": "daily",
            "paused": "1",
        },
    )
    assert changed.status_code == 303
    with factory() as session:
        found = registry.by_public_id(session, public_id)
        assert found is not None
        assert (found.name, found.language, found.topics, found.cadence.value, found.paused) == (
            "Ana",
            "fr",
            ["housing"],
            "daily",
            True,
        )
    assert "ana@example.net" in desk.get("/en/admin/subscribers?q=ana").text


def test_unsubscribe_erase_and_unsuppress_with_a_reason(
    desk: TestClient, web_settings: config.Settings, factory: sessionmaker[Session]
) -> None:
    public_id = add(web_settings, factory, "ana@example.net")
    page = desk.get(f"/en/admin/subscribers/{public_id}").text
    csrf = csrf_of(page)
    gone = desk.post(
        f"/en/admin/subscribers/{public_id}/remove", data={"csrf": csrf, "how": "unsubscribe"}
    )
    assert gone.status_code == 303 and status_of(factory, "ana@example.net") == "unsubscribed"
    unsure = desk.post(
        f"/en/admin/subscribers/{public_id}/remove", data={"csrf": csrf, "how": "erase"}
    )
    assert unsure.status_code == 400 and 'id="sure-erase-error"' in unsure.text
    erased = desk.post(
        f"/en/admin/subscribers/{public_id}/remove",
        data={"csrf": csrf, "how": "erase", "sure": "1"},
    )
    assert erased.status_code == 303 and status_of(factory, "ana@example.net") is None
    assert "ana@example.net was erased." in desk.get("/en/admin/subscribers").text
    no_reason = desk.post(
        "/en/admin/subscribers/unsuppress",
        data={"csrf": csrf, "email": "ana@example.net", "reason": " "},
    )
    assert no_reason.status_code == 400
    assert 'aria-invalid="true" aria-describedby="reason-error reason-hint"' in no_reason.text
    lifted = desk.post(
        "/en/admin/subscribers/unsuppress",
        data={"csrf": csrf, "email": "ana@example.net", "reason": "asked us by phone"},
    )
    assert lifted.status_code == 303
    assert "ana@example.net may be added again." in desk.get("/en/admin/subscribers").text


def test_add_mails_a_confirmation_unless_consent_is_vouched(
    desk: TestClient, web_settings: config.Settings, factory: sessionmaker[Session]
) -> None:
    csrf = csrf_of(desk.get("/en/admin/subscribers").text)
    asked = desk.post(
        "/en/admin/subscribers/add",
        data={"csrf": csrf, "email": "chloe@example.fr", "language": "fr"},
    )
    assert asked.status_code == 303 and status_of(factory, "chloe@example.fr") == "pending"
    assert [m["To"] for m in outbox(web_settings)] == ["chloe@example.fr"]
    vouched = desk.post(
        "/en/admin/subscribers/add",
        data={"csrf": csrf, "email": "dirk@example.be", "language": "nl", "confirmed": "1"},
    )
    assert vouched.status_code == 303 and status_of(factory, "dirk@example.be") == "confirmed"
    assert len(outbox(web_settings)) == 1
    bad = desk.post("/en/admin/subscribers/add", data={"csrf": csrf, "email": "not an address"})
    assert bad.status_code == 400
    assert 'aria-invalid="true" aria-describedby="email-error"' in bad.text
    assert 'value="not an address"' in bad.text


def test_import_reports_rows_and_export_downloads_the_list(
    desk: TestClient, factory: sessionmaker[Session]
) -> None:
    csrf = csrf_of(desk.get("/en/admin/subscribers").text)
    data = "email,name,language\nana@example.net,Ana,en\nnot-an-address,X,en\nbram@example.be,,nl\n"
    answer = desk.post(
        "/en/admin/subscribers/import",
        data={"csrf": csrf, "confirmed": "1"},
        files={"file": ("list.csv", data.encode(), "text/csv")},
    )
    assert answer.status_code == 200
    assert "2 imported, 1 rejected." in answer.text
    assert re.search(r'<td class="number">3</td><td>not-an-address</td>', answer.text)
    assert status_of(factory, "ana@example.net") == "confirmed"
    exported = desk.get("/en/admin/subscribers/export.csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert "attachment;" in exported.headers["content-disposition"]
    assert "ana@example.net" in exported.text and "bram@example.be" in exported.text
    assert desk.get("/en/admin/subscribers/export.json").json()
