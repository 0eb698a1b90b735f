"""The desk with named accounts: address + password, sign-in by emailed link, roles
enforced, the audit log page, and the shared password kept for a one-person publication."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from digest import config
from digest.pipeline import accounts, audit
from digest.store.models import Role
from digest.web import create_app
from tests.web.conftest import (
    PASSWORD,
    Clock,
    TestClient,
    client_for,
    csrf_of,
    drafted,
    example_settings,
    link_in,
    login,
    outbox,
)

ANA = "ana@example.org"
BO = "bo@example.org"
SECRET = "ana's own long password"


@pytest.fixture
def settings(make_settings: Any, tmp_path: Path) -> config.Settings:
    return example_settings(make_settings, tmp_path)


@pytest.fixture
def number(settings: config.Settings, factory: sessionmaker[Session]) -> int:
    return drafted(settings, factory)


@pytest.fixture
def desk(settings: config.Settings, factory: sessionmaker[Session], clock: Clock) -> Any:
    with client_for(create_app(settings, factory=factory, clock=clock)) as client:
        yield client


@pytest.fixture
def team(factory: sessionmaker[Session]) -> None:
    accounts.add_account(factory, "ana", ANA, role=Role.ADMIN, password=SECRET, by="cli:root")
    accounts.add_account(factory, "bo", BO, role=Role.EDITOR, password=SECRET, by="cli:root")


def sign_in(client: TestClient, email: str, password: str = SECRET) -> Any:
    page = client.get("/en/admin/login")
    return client.post(
        "/en/admin/login",
        data={"csrf": csrf_of(page.text), "email": email, "password": password},
    )


def post(client: TestClient, path: str, **data: str) -> Any:
    page = client.get("/en/admin/")
    return client.post(path, data={"csrf": csrf_of(page.text), **data})


def test_with_accounts_the_login_asks_for_an_address_and_refuses_the_shared_password(
    desk: TestClient, team: None
) -> None:
    page = desk.get("/en/admin/login").text
    assert 'name="email"' in page and 'autocomplete="username"' in page
    assert "/en/admin/login/link" in page
    shared = desk.post(
        "/en/admin/login", data={"csrf": csrf_of(page), "email": "", "password": PASSWORD}
    )
    assert shared.status_code == 401
    assert sign_in(desk, ANA, "wrong password here").status_code == 401
    assert sign_in(desk, "nobody@example.org").status_code == 401
    answer = sign_in(desk, ANA)
    assert answer.status_code == 303
    assert desk.get("/en/admin/").status_code == 200


def test_an_editor_approves_and_the_log_names_them_but_only_an_admin_reads_the_log(
    desk: TestClient, team: None, number: int, factory: sessionmaker[Session]
) -> None:
    sign_in(desk, BO)
    dashboard = desk.get("/en/admin/").text
    assert "/en/admin/audit" not in dashboard
    approved = post(desk, f"/en/admin/issues/{number}/approve")
    assert approved.status_code == 303
    refused = desk.get("/en/admin/audit")
    assert refused.status_code == 403
    assert "Your role does not allow this" in refused.text
    entries = audit.entries(factory, action="approved")
    assert [(e.actor, e.subject) for e in entries] == [("account:bo", f"issue {number}")]

    post(desk, "/en/admin/logout")
    sign_in(desk, ANA)
    assert "/en/admin/audit" in desk.get("/en/admin/").text
    page = desk.get("/en/admin/audit")
    assert page.status_code == 200
    assert "account:bo" in page.text and f"issue {number}" in page.text
    assert "account_added" in page.text
    filtered = desk.get("/en/admin/audit?action=account_added").text
    assert "account:bo" not in filtered and "cli:root" in filtered


def test_curating_and_test_sends_are_recorded(
    desk: TestClient, team: None, number: int, factory: sessionmaker[Session]
) -> None:
    sign_in(desk, BO)
    page = desk.get(f"/en/admin/issues/{number}").text
    desk.post(
        f"/en/admin/issues/{number}/curate",
        data={"csrf": csrf_of(page), "intro": "Hello.", "variant": "en"},
    )
    desk.post(
        f"/en/admin/issues/{number}/test",
        data={"csrf": csrf_of(page), "address": "editor@example.org"},
    )
    actions = [(e.actor, e.action) for e in audit.entries(factory)][:2]
    assert actions == [("account:bo", "test_sent"), ("account:bo", "edited")]


def test_a_removed_account_is_signed_out_at_its_next_request(
    desk: TestClient, team: None, factory: sessionmaker[Session]
) -> None:
    sign_in(desk, BO)
    assert desk.get("/en/admin/").status_code == 200
    accounts.remove_account(factory, "bo", by="cli:root")
    gone = desk.get("/en/admin/")
    assert gone.status_code == 303
    assert gone.headers["location"].startswith("/en/admin/login")


def test_sign_in_by_emailed_link_works_once(
    desk: TestClient,
    team: None,
    settings: config.Settings,
    factory: sessionmaker[Session],
    clock: Clock,
) -> None:
    ask = desk.get("/en/admin/login/link")
    assert ask.status_code == 200
    nobody = desk.post(
        "/en/admin/login/link", data={"csrf": csrf_of(ask.text), "email": "nobody@example.org"}
    )
    sent = desk.post("/en/admin/login/link", data={"csrf": csrf_of(ask.text), "email": BO})
    # The same answer either way: the page tells no one who has an account.
    assert nobody.status_code == sent.status_code == 200
    assert re.sub(r'value="[^"]+"', "", nobody.text) == re.sub(r'value="[^"]+"', "", sent.text)
    mails = outbox(settings)
    assert [m["To"].addresses[0].addr_spec for m in mails] == [BO]
    link = link_in(mails[0], "/admin/login/link")
    assert "token=" in link

    shown = desk.get(link)  # what a mail scanner fetching the link does: nothing
    assert shown.status_code == 200
    assert desk.get("/en/admin/").status_code == 303
    token = re.search(r'name="token" value="([^"]+)"', shown.text)
    assert token
    used = desk.post(
        "/en/admin/login/link", data={"csrf": csrf_of(shown.text), "token": token.group(1)}
    )
    assert used.status_code == 303
    assert desk.get("/en/admin/").status_code == 200
    post(desk, "/en/admin/logout")
    again_page = desk.get(link)
    again = desk.post(
        "/en/admin/login/link", data={"csrf": csrf_of(again_page.text), "token": token.group(1)}
    )
    assert again.status_code == 400
    assert desk.get("/en/admin/").status_code == 303


def test_an_emailed_link_expires(
    desk: TestClient, team: None, settings: config.Settings, clock: Clock
) -> None:
    ask = desk.get("/en/admin/login/link")
    desk.post("/en/admin/login/link", data={"csrf": csrf_of(ask.text), "email": ANA})
    link = link_in(outbox(settings)[0], "/admin/login/link")
    clock.advance(minutes=accounts.SIGN_IN_MINUTES + 1)
    shown = desk.get(link)
    token = re.search(r'name="token" value="([^"]+)"', shown.text)
    assert token
    late = desk.post(
        "/en/admin/login/link", data={"csrf": csrf_of(shown.text), "token": token.group(1)}
    )
    assert late.status_code == 400
    forged = desk.post(
        "/en/admin/login/link", data={"csrf": csrf_of(shown.text), "token": token.group(1)[:-3]}
    )
    assert forged.status_code == 400


def test_the_shared_password_still_works_without_accounts_as_an_admin(
    desk: TestClient, number: int, factory: sessionmaker[Session]
) -> None:
    page = desk.get("/en/admin/login").text
    assert 'name="email"' not in page
    login(desk)
    assert desk.get("/en/admin/audit").status_code == 200
    post(desk, f"/en/admin/issues/{number}/approve")
    assert [e.actor for e in audit.entries(factory, action="approved")] == ["desk"]
    # Once an account exists, the shared password's session ends.
    accounts.add_account(factory, "ana", ANA, role=Role.ADMIN, password=SECRET, by="desk")
    assert desk.get("/en/admin/").status_code == 303


def test_only_admins_manage_sources_and_subscribers_on_the_desk(
    desk: TestClient, team: None, number: int
) -> None:
    sign_in(desk, BO)  # an editor: curates, previews, drafts
    for path in ("/en/admin/sources", "/en/admin/subscribers"):
        assert desk.get(path).status_code == 403
    assert post(desk, "/en/admin/subscribers/add", address="x@example.net").status_code == 403
    assert desk.get(f"/en/admin/issues/{number}/preview?variant=en").status_code == 200
    post(desk, "/en/admin/logout")
    sign_in(desk, ANA)  # an admin
    for path in ("/en/admin/sources", "/en/admin/subscribers"):
        assert desk.get(path).status_code == 200
