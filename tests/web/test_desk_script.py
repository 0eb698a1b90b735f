"""The desk's one script: served under a versioned URL with long cache headers, allowed by
the desk's CSP only ('self', no inline script), and the answers it asks for (the changed
part of the issue page instead of a redirect). Scheduling an approved issue's send from
the desk, with its refusals next to the field. The browser side is in
tests/web/test_desk_browser.py."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from digest import config
from digest.pipeline import accounts, audit, send_times, sending
from digest.store.models import Role
from digest.web import create_app, scripts
from tests.test_draft import MONDAY
from tests.web.conftest import Clock, TestClient, client_for, csrf_of, drafted, example_settings
from tests.web.conftest import login as log_in

FETCH = {"X-Requested-With": "fetch"}


@pytest.fixture
def settings(make_settings: Any, tmp_path: Path) -> config.Settings:
    return example_settings(make_settings, tmp_path)


@pytest.fixture
def number(settings: config.Settings, factory: sessionmaker[Session]) -> int:
    return drafted(settings, factory)


@pytest.fixture
def desk(settings: config.Settings, factory: sessionmaker[Session], clock: Clock) -> Any:
    with client_for(create_app(settings, factory=factory, clock=clock)) as client:
        log_in(client)
        yield client


def policy(answer: Any) -> dict[str, str]:
    found = {}
    for directive in answer.headers["content-security-policy"].split(";"):
        name, _, value = directive.strip().partition(" ")
        found[name] = value
    return found


def rows_of(page: str) -> list[str]:
    return [html.unescape(r) for r in re.findall(r'<tr id="item-([^"]+)">', page)]


def test_only_desk_pages_allow_scripts_and_only_our_own(desk: TestClient, number: int) -> None:
    for path in ("/en/admin/", f"/en/admin/issues/{number}", "/en/admin/sources"):
        answer = desk.get(path)
        assert answer.status_code == 200, path
        csp = policy(answer)
        assert csp["script-src"] == "'self'" and csp["connect-src"] == "'self'", path
        assert csp["default-src"] == "'none'"
    for path in ("/en/", "/en/unsubscribe", "/healthz"):
        answer = desk.get(path)
        assert "script-src" not in policy(answer), path
        assert "connect-src" not in policy(answer), path
        assert "<script" not in answer.text, path


def test_the_desk_loads_its_script_from_a_file_never_inline(desk: TestClient, number: int) -> None:
    page = desk.get(f"/en/admin/issues/{number}").text
    tags = re.findall(r"<script[^>]*>", page)
    assert tags == [f'<script src="{scripts.url_path()}" defer>']
    assert re.search(r"<script[^>]*>\s*[^<\s]", page) is None, "no inline script"
    assert re.search(r"\son[a-z]+=", page) is None, "no inline event handler"


def test_the_script_is_served_with_a_year_of_cache_and_a_versioned_url(
    desk: TestClient,
) -> None:
    answer = desk.get(scripts.url_path())
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/javascript")
    assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert answer.content == (Path(scripts.__file__).parent / "static" / "desk.js").read_bytes()
    assert desk.get("/static/desk.0123456789abcdef.js").status_code == 404


def test_asked_by_the_script_a_move_answers_the_changed_part_of_the_page(
    desk: TestClient, number: int
) -> None:
    page = desk.get(f"/en/admin/issues/{number}?variant=en").text
    first, second = rows_of(page)[:2]
    answer = desk.post(
        f"/en/admin/issues/{number}/move?width=375",
        data={"csrf": csrf_of(page), "variant": "en", "down": first},
        headers=FETCH,
    )
    assert answer.status_code == 200
    assert answer.headers["x-digest-fragment"] == "issue-work"
    assert "<html" not in answer.text and "<h1" not in answer.text
    rows = rows_of(answer.text)
    assert rows.index(second) < rows.index(first)
    assert "order changed" in html.unescape(answer.text)
    assert 'class="preview w375"' in answer.text, "the page's width is kept"
    assert "Saved; the draft was composed again" in answer.text


def test_a_drag_puts_an_item_at_a_place_in_its_section(desk: TestClient, number: int) -> None:
    page = desk.get(f"/en/admin/issues/{number}?variant=en").text
    rows = rows_of(page)
    last = rows[2]
    answer = desk.post(
        f"/en/admin/issues/{number}/move",
        data={"csrf": csrf_of(page), "variant": "en", "key": last, "to": "1"},
        headers=FETCH,
    )
    assert answer.status_code == 200
    assert rows_of(answer.text)[0] == last
    # Without the script, the same form answers a redirect to the page.
    again = desk.post(
        f"/en/admin/issues/{number}/move",
        data={"csrf": csrf_of(page), "variant": "en", "key": last, "to": "2"},
    )
    assert again.status_code == 303
    assert rows_of(desk.get(f"/en/admin/issues/{number}?variant=en").text)[1] == last


def test_a_fetch_without_the_csrf_token_is_refused(desk: TestClient, number: int) -> None:
    page = desk.get(f"/en/admin/issues/{number}?variant=en").text
    answer = desk.post(
        f"/en/admin/issues/{number}/move",
        data={"variant": "en", "down": rows_of(page)[0]},
        headers=FETCH,
    )
    assert answer.status_code == 403 and "x-digest-fragment" not in answer.headers


def schedule(desk: TestClient, number: int, **fields: str) -> Any:
    page = desk.get(f"/en/admin/issues/{number}?variant=en").text
    return desk.post(
        f"/en/admin/issues/{number}/schedule",
        data={"csrf": csrf_of(page), "variant": "en", **fields},
    )


def test_a_draft_cannot_be_scheduled_the_refusal_is_next_to_the_field(
    desk: TestClient, number: int, factory: sessionmaker[Session]
) -> None:
    answer = schedule(desk, number, at="2026-11-30T09:00", action="schedule")
    assert answer.status_code == 400
    assert 'aria-invalid="true"' in answer.text
    found = re.search(r'<p class="error" id="send-at-error">([^<]+)</p>', answer.text)
    assert found and "approve it first" in found.group(1)
    assert 'value="2026-11-30T09:00"' in answer.text, "what was typed is kept"
    assert send_times.send_time(factory, number).at is None


def test_an_approved_issue_is_scheduled_shown_audited_and_cancelled(
    desk: TestClient, number: int, settings: config.Settings, factory: sessionmaker[Session]
) -> None:
    sending.approve(settings, factory, number, now=MONDAY - timedelta(hours=2))
    past = schedule(desk, number, at="2026-11-01T09:00", action="schedule")
    assert past.status_code == 400
    assert re.search(r'id="send-at-error">That time has passed', past.text)

    answer = schedule(desk, number, at="2026-11-30T09:00", action="schedule")
    assert answer.status_code == 303
    assert send_times.send_time(factory, number).at == MONDAY + timedelta(days=7, hours=1)
    page = desk.get(f"/en/admin/issues/{number}?variant=en").text
    assert "It goes out at the time chosen" in page
    assert 'value="2026-11-30T09:00"' in page
    (row,) = audit.entries(factory, action="scheduled")
    assert (row.actor, row.subject, row.detail) == (
        "desk",
        f"issue {number}",
        "2026-11-30 09:00 CET",
    )

    cancelled = schedule(desk, number, action="cancel")
    assert cancelled.status_code == 303
    assert send_times.send_time(factory, number).at is None
    assert [r.action for r in audit.entries(factory, action="unscheduled")] == ["unscheduled"]


def test_scheduling_is_an_editors_action() -> None:
    assert accounts.permits(Role.EDITOR, "schedule") and accounts.permits(Role.ADMIN, "schedule")
