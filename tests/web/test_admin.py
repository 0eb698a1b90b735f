"""The editor's desk in process: login, CSRF, the dashboard, the draft preview, curating,
test sends, approval, and the mail that tells editors a draft waits for them."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from markupsafe import escape
from sqlalchemy.orm import Session, sessionmaker

from digest import config, pipeline
from digest.compose import IssuePlan
from digest.pipeline import editorial
from digest.store import issues
from digest.store.models import Issue, IssueStatus, PauseKind
from digest.web import create_app
from tests.test_draft import MONDAY
from tests.web.conftest import (
    EDITOR,
    PASSWORD,
    Clock,
    TestClient,
    add,
    client_for,
    csrf_of,
    drafted,
    example_settings,
    login,
    outbox,
    text_of,
)


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


def plan_of(factory: sessionmaker[Session], number: int) -> IssuePlan:
    with factory() as session:
        return issues.plan_of(issues.by_number(session, number))


def status_of(factory: sessionmaker[Session], number: int) -> IssueStatus:
    with factory() as session:
        return issues.by_number(session, number).status


# --- login --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/en/admin/"),
        ("GET", "/nl/admin/issues/1"),
        ("POST", "/en/admin/issues/1/approve"),
        ("POST", "/en/admin/issues/1/curate"),
        ("POST", "/en/admin/issues/1/test"),
        ("POST", "/en/admin/logout"),
    ],
)
def test_every_desk_page_needs_a_login(
    desk: TestClient, number: int, factory: sessionmaker[Session], method: str, path: str
) -> None:
    answer = desk.request(method, path, data={"csrf": "x"} if method == "POST" else None)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(f"{path[:3]}/admin/login?next=")
    assert answer.headers["cache-control"] == "no-store"
    assert status_of(factory, number) is IssueStatus.DRAFT


def test_admin_goes_to_the_desk_in_the_browsers_language(desk: TestClient) -> None:
    answer = desk.get("/admin", headers={"Accept-Language": "fr"})
    assert answer.headers["location"] == "/fr/admin/"


def test_login_sets_a_secure_httponly_samesite_session(desk: TestClient) -> None:
    page = desk.get("/en/admin/login?next=/en/admin/issues/1")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert 'type="password"' in page.text and 'autocomplete="current-password"' in page.text
    answer = desk.post(
        "/en/admin/login?next=/en/admin/issues/1",
        data={"csrf": csrf_of(page.text), "password": PASSWORD},
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/en/admin/issues/1"
    cookie = answer.headers["set-cookie"].lower()
    assert cookie.startswith("digest_session=")
    assert "; secure" in cookie and "; httponly" in cookie and "samesite=lax" in cookie
    assert desk.get("/en/admin/").status_code == 200


def test_a_wrong_password_or_a_missing_csrf_token_logs_nobody_in(desk: TestClient) -> None:
    csrf = csrf_of(desk.get("/en/admin/login").text)
    wrong = desk.post("/en/admin/login", data={"csrf": csrf, "password": "guess"})
    assert wrong.status_code == 401 and "That password is not right." in wrong.text
    no_csrf = desk.post("/en/admin/login", data={"password": PASSWORD})
    assert no_csrf.status_code == 403
    assert desk.get("/en/admin/").status_code == 303


def test_login_only_returns_to_desk_pages(desk: TestClient) -> None:
    page = desk.get("/en/admin/login")
    answer = desk.post(
        "/en/admin/login?next=https://evil.example/",
        data={"csrf": csrf_of(page.text), "password": PASSWORD},
    )
    assert answer.headers["location"] == "/en/admin/"


def test_logins_are_rate_limited(desk: TestClient) -> None:
    csrf = csrf_of(desk.get("/en/admin/login").text)
    codes = [
        desk.post("/en/admin/login", data={"csrf": csrf, "password": "guess"}).status_code
        for _ in range(11)
    ]
    assert codes[:10] == [401] * 10 and codes[10] == 429
    # Even the right password waits now.
    late = desk.post("/en/admin/login", data={"csrf": csrf, "password": PASSWORD})
    assert late.status_code == 429


def test_without_a_configured_password_nobody_logs_in(
    make_settings: Any, factory: sessionmaker[Session]
) -> None:
    from tests.web.conftest import WEB

    settings = make_settings(WEB.replace(f'admin_password = "{PASSWORD}"', ""))
    with client_for(create_app(settings, factory=factory)) as client:
        page = client.get("/en/admin/login")
        assert "DIGEST_WEB__ADMIN_PASSWORD" in page.text
        answer = client.post("/en/admin/login", data={"csrf": csrf_of(page.text), "password": ""})
        assert answer.status_code == 401


def test_logout_ends_the_session_and_needs_csrf(desk: TestClient) -> None:
    login(desk)
    assert desk.post("/en/admin/logout", data={}).status_code == 403
    page = desk.get("/en/admin/")
    out = desk.post("/en/admin/logout", data={"csrf": csrf_of(page.text)})
    assert out.status_code == 303 and out.headers["location"] == "/en/admin/login"
    assert desk.get("/en/admin/").status_code == 303


# --- dashboard ----------------------------------------------------------------------------


def test_dashboard_shows_slots_drafts_subscribers_deliveries_and_sources(
    desk: TestClient, settings: config.Settings, factory: sessionmaker[Session], number: int
) -> None:
    add(settings, factory, "ana@example.net", language="en")
    add(settings, factory, "bram@example.be", language="nl")
    add(settings, factory, "chloe@example.fr", language="fr", confirmed=False)
    login(desk)
    page = desk.get("/en/admin/")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    text = html.unescape(re.sub(r"<[^>]+>", " ", page.text))
    text = " ".join(text.split())
    assert "Next issues" in text
    assert "Nov 23, 2026, 8:00 AM" in text  # the Monday slot, Brussels time
    assert f'href="/en/admin/issues/{number}"' in page.text
    assert "draft · waiting for approval" in text
    # Subscribers by status and language.
    assert "Status English Dutch French Total pending 0 0 1 1 confirmed 1 1 0 2" in text
    assert "pending 0 0 1 1" in text
    # Every source of the example publication, with its items.
    for source in settings.sources:
        assert source.name in text
    assert re.search(r"migration-governance feed .*? ok", text)


def test_dashboard_counts_deliveries_of_a_sent_issue(
    desk: TestClient, settings: config.Settings, factory: sessionmaker[Session], number: int
) -> None:
    from digest.pipeline import sending

    add(settings, factory, "ana@example.net")
    add(settings, factory, "bram@example.be", language="nl")
    sending.approve(settings, factory, number, now=MONDAY)
    report = sending.send(settings, factory, number=number, now=MONDAY)
    assert report.finished
    login(desk)
    text = " ".join(re.sub(r"<[^>]+>", " ", desk.get("/en/admin/").text).split())
    assert re.search(rf"Issue {number} .*? sent 2 0 0 0 100\.0", html.unescape(text))


# --- one issue ----------------------------------------------------------------------------


def test_the_draft_page_shows_the_email_as_sent_in_a_sandboxed_iframe(
    desk: TestClient, settings: config.Settings, factory: sessionmaker[Session], number: int
) -> None:
    login(desk)
    page = desk.get(f"/en/admin/issues/{number}?variant=nl")
    assert page.status_code == 200
    expected = pipeline.preview(settings, factory, number=number, language="nl")
    frame = re.search(r"<iframe ([^>]*)>", page.text)
    assert frame is not None
    attributes = frame.group(1)
    assert re.search(r"\bsandbox\b", attributes) and 'sandbox="' not in attributes
    srcdoc = re.search(r'srcdoc="([^"]*)"', attributes)
    assert srcdoc is not None and html.unescape(srcdoc.group(1)) == expected.html
    assert str(escape(expected.text)) in page.text
    assert str(escape(expected.subject)) in page.text
    assert "frame-src" in page.headers["content-security-policy"]
    for language in ("en", "nl", "fr"):
        assert f'href="/en/admin/issues/{number}?variant={language}"' in page.text


@pytest.mark.parametrize("channel", ["archive", "feed"])
def test_the_desk_shows_the_archive_page_and_the_feed_entry(
    desk: TestClient,
    settings: config.Settings,
    factory: sessionmaker[Session],
    number: int,
    channel: str,
) -> None:
    login(desk)
    page = desk.get(f"/fr/admin/issues/{number}?variant=nl&channel={channel}")
    assert page.status_code == 200
    expected = pipeline.preview_channel(settings, factory, channel, number=number, language="nl")
    srcdoc = re.search(r'<iframe [^>]*srcdoc="([^"]*)"', page.text)
    assert srcdoc is not None and html.unescape(srcdoc.group(1)) == expected.body
    assert "Voir dans le navigateur" not in expected.body  # no email chrome
    for name in ("email", "text", "archive", "feed"):
        assert f"?variant=nl&amp;channel={name}" in page.text
    assert f'href="/fr/admin/issues/{number}?variant=en&amp;channel={channel}"' in page.text
    text = desk.get(f"/fr/admin/issues/{number}?variant=nl&channel=text").text
    assert "<iframe" not in text
    assert (
        str(escape(pipeline.preview(settings, factory, number=number, language="nl").text)) in text
    )


def test_an_unknown_issue_is_not_found(desk: TestClient, number: int) -> None:
    login(desk)
    assert desk.get("/en/admin/issues/99").status_code == 404


def curate_form(page: str) -> dict[str, Any]:
    """The curation form's fields as the browser would send them, unchanged."""
    form = page[page.index('action="/en/admin/issues/') : page.index("Save and compose again")]
    data: dict[str, Any] = {"csrf": csrf_of(page), "item": []}
    for name, value in re.findall(
        r'<input type="(?:hidden|number)" name="([^"]+)" value="([^"]*)"', form
    ):
        if name == "item":
            data["item"].append(html.unescape(value))
        else:
            data[html.unescape(name)] = html.unescape(value)
    data["pin"] = [
        html.unescape(v) for v in re.findall(r'name="pin" value="([^"]+)" checked', form)
    ]
    return data


def test_curating_drops_pins_reorders_and_sets_intro_and_subject_per_language(
    desk: TestClient, settings: config.Settings, factory: sessionmaker[Session], number: int
) -> None:
    login(desk)
    before = plan_of(factory, number)
    news = next(s for s in before.variant("en").sections if s.name == "news")
    assert len(news.items) >= 3
    first, second, third = (item.key for item in news.items[:3])
    page = desk.get(f"/en/admin/issues/{number}?variant=nl").text
    data = curate_form(page)
    data.update(
        {
            "drop": [first],
            "pin": [third],
            f"position:{second}": "9",
            "intro": "Welkom bij deze editie.\n\nVeel leesplezier.",
            "subject": "Nieuws uit de steden",
            "variant": "nl",
        }
    )
    answer = desk.post(f"/en/admin/issues/{number}/curate", data=data)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/en/admin/issues/{number}?variant=nl"
    after = plan_of(factory, number)
    keys = [item.key for s in after.variant("en").sections for item in s.items]
    assert first not in keys
    english_news = next(s for s in after.variant("en").sections if s.name == "news")
    assert english_news.items[0].key == third and english_news.items[0].pinned
    own = [i.key for i in english_news.items if not i.foreign]
    assert own.index(second) > own.index(third)
    assert after.variant("nl").intro == "Welkom bij deze editie.\n\nVeel leesplezier."
    assert after.variant("nl").subject == "Nieuws uit de steden"
    assert after.variant("en").intro == "" and after.variant("en").subject == ""
    shown = desk.get(answer.headers["location"]).text
    assert "Saved; the draft was composed again" in shown
    assert "Nieuws uit de steden" in shown and "Restore" in shown

    # The curation survives the scheduler's next re-draft of the slot.
    pipeline.draft(settings, factory, now=MONDAY - timedelta(hours=2))
    again = plan_of(factory, number)
    assert first not in [i.key for s in again.variant("fr").sections for i in s.items]
    assert again.variant("nl").subject == "Nieuws uit de steden"

    # Restoring brings the dropped item back.
    data = curate_form(desk.get(f"/en/admin/issues/{number}?variant=nl").text)
    data.update({"restore": [first], "variant": "nl"})
    desk.post(f"/en/admin/issues/{number}/curate", data=data)
    restored = plan_of(factory, number)
    assert first in [i.key for s in restored.variant("en").sections for i in s.items]


def test_curating_needs_csrf_and_a_draft(
    desk: TestClient, settings: config.Settings, factory: sessionmaker[Session], number: int
) -> None:
    login(desk)
    page = desk.get(f"/en/admin/issues/{number}").text
    data = curate_form(page)
    forged = dict(data, csrf="forged", subject="Hacked")
    assert desk.post(f"/en/admin/issues/{number}/curate", data=forged).status_code == 403
    assert plan_of(factory, number).variant("en").subject == ""
    desk.post(f"/en/admin/issues/{number}/approve", data={"csrf": data["csrf"]})
    answer = desk.post(f"/en/admin/issues/{number}/curate", data=dict(data, subject="Late"))
    assert answer.status_code == 303
    shown = desk.get(answer.headers["location"]).text
    assert "Not saved:" in shown and "only a draft can be curated" in shown
    assert plan_of(factory, number).variant("en").subject == ""
    assert "This issue is not a draft any more" in shown


def test_the_dutch_desk_explains_refusals_and_pauses_in_dutch(
    desk: TestClient, settings: config.Settings, factory: sessionmaker[Session], number: int
) -> None:
    login(desk)
    page = desk.get(f"/en/admin/issues/{number}").text
    data = dict(curate_form(page), subject="x" * 500)
    answer = desk.post(f"/nl/admin/issues/{number}/curate", data=data)
    shown = html.unescape(desk.get(answer.headers["location"]).text)
    assert "het onderwerp telt 500 tekens; hoogstens" in shown
    assert "characters" not in shown
    with factory() as session:
        issue = issues.by_number(session, number)
        issue.paused_reason = "SMTP relay refused 12 of 20 messages"
        issue.paused_kind = PauseKind.RELAY.value
        session.commit()
    dashboard = html.unescape(desk.get("/nl/admin/").text)
    assert "Gepauzeerd: de mailserver bleef falen" in dashboard
    assert '<code lang="en">SMTP relay refused 12 of 20 messages</code>' in dashboard
    issue_page = html.unescape(desk.get(f"/nl/admin/issues/{number}").text)
    assert "Gepauzeerd: de mailserver bleef falen" in issue_page
    # Times are in the publication's zone: the Monday 08:00 Brussels slot, not 07:00 UTC.
    assert "08:00" in dashboard and "07:00" not in dashboard


def test_a_test_send_goes_to_an_editor_marked_as_a_test(
    desk: TestClient, settings: config.Settings, factory: sessionmaker[Session], number: int
) -> None:
    login(desk)
    csrf = csrf_of(desk.get(f"/en/admin/issues/{number}").text)
    answer = desk.post(
        f"/en/admin/issues/{number}/test", data={"csrf": csrf, "address": EDITOR, "variant": "fr"}
    )
    assert answer.status_code == 303
    assert "A test copy went to editor@example.org." in desk.get(answer.headers["location"]).text
    [message] = outbox(settings)
    assert message["Subject"].startswith("[TEST] ") and message["Content-Language"] == "fr"
    assert message["To"] == EDITOR
    # Only editors' addresses; nothing leaves for anyone else or without CSRF.
    refused = desk.post(
        f"/en/admin/issues/{number}/test",
        data={"csrf": csrf, "address": "stranger@example.net"},
    )
    assert "only to the editors" in desk.get(refused.headers["location"]).text
    assert desk.post(f"/en/admin/issues/{number}/test", data={"address": EDITOR}).status_code == 403
    assert len(outbox(settings)) == 1
    assert status_of(factory, number) is IssueStatus.DRAFT


def test_approve_needs_csrf_then_approves(
    desk: TestClient, factory: sessionmaker[Session], number: int
) -> None:
    login(desk)
    assert desk.post(f"/en/admin/issues/{number}/approve", data={}).status_code == 403
    assert status_of(factory, number) is IssueStatus.DRAFT
    csrf = csrf_of(desk.get(f"/en/admin/issues/{number}").text)
    answer = desk.post(f"/en/admin/issues/{number}/approve", data={"csrf": csrf})
    assert answer.status_code == 303
    assert status_of(factory, number) is IssueStatus.APPROVED
    page = desk.get(answer.headers["location"]).text
    assert "Approved: the issue goes out" in page and "Approve for sending" not in page


# --- telling the editors ------------------------------------------------------------------


def test_editors_are_told_once_that_a_draft_waits_for_them(
    settings: config.Settings, factory: sessionmaker[Session], number: int
) -> None:
    told = editorial.notify_editors(settings, factory, number, now=MONDAY)
    assert told.told == (EDITOR,) and not told.failed
    [message] = outbox(settings)
    assert message["To"] == EDITOR
    assert (
        message["Subject"] == f"Issue {number} of Cities & Migration Digest waits for your approval"
    )
    assert message["Auto-Submitted"] == "auto-generated"
    text = text_of(message)
    assert f"https://digest.example.org/en/admin/issues/{number}" in text
    assert "Monday, November 23, 2026" in text
    html_part = message.get_body(("html",))
    assert html_part is not None and '<html lang="en">' in html_part.get_content()  # type: ignore[attr-defined]

    again = editorial.notify_editors(settings, factory, number, now=MONDAY)
    assert again.told == () and again.skipped and "told" in again.skipped
    assert len(outbox(settings)) == 1
    forced = editorial.notify_editors(settings, factory, number, now=MONDAY, again=True)
    assert forced.told == (EDITOR,)

    from digest.pipeline import sending

    sending.approve(settings, factory, number)
    late = editorial.notify_editors(settings, factory, number, again=True)
    assert late.told == () and late.skipped == f"issue #{number} is approved"


def test_without_editors_nobody_is_told(
    make_settings: Any, tmp_path: Path, factory: sessionmaker[Session]
) -> None:
    settings = example_settings(make_settings, tmp_path)
    settings = config.Settings(
        **{
            **settings.__dict__,
            "web": type(settings.web)(**{**settings.web.__dict__, "editors": []}),
        }
    )
    number = drafted(settings, factory)
    result = editorial.notify_editors(settings, factory, number)
    assert result.told == () and result.skipped and "[web] editors" in result.skipped
    with factory() as session:
        assert "notified_at" not in (session.scalars(sa.select(Issue)).one().curation or "")


def test_the_desk_shows_stories_and_splits_them(
    desk: TestClient, factory: sessionmaker[Session], number: int
) -> None:
    login(desk)
    page = desk.get(f"/en/admin/issues/{number}?variant=en").text
    assert page.count("one story told 2 times (fr)") >= 2  # close-out, Mechelen, resettlement
    before = plan_of(factory, number)
    story = next(
        i
        for s in before.variant("en").sections
        for i in s.items
        if "IncluCities-project" in i.title
    )
    data = curate_form(page)
    data.update({"split": [story.key], "variant": "en"})
    assert desk.post(f"/en/admin/issues/{number}/curate", data=data).status_code == 303
    after = plan_of(factory, number)
    titles = [i.title for s in after.variant("en").sections for i in s.items]
    assert any(t.startswith("Het doek valt") for t in titles)
    assert any(t.startswith("Le rideau tombe") for t in titles)


def test_the_desk_says_before_approval_when_items_move_to_the_archive(
    desk: TestClient, number: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import functools

    from digest.render import email
    from digest.render.email import render_for_inbox

    # A budget the example cannot meet, so that some items must move (the pipeline imports
    # the renderer when it renders: patch it where it lives).
    monkeypatch.setattr(
        email, "render_for_inbox", functools.partial(render_for_inbox, limit=30_000)
    )
    login(desk)
    page = desk.get(f"/en/admin/issues/{number}?variant=en").text
    assert re.search(r"\d+ items? moves? to “more in the archive”", html.unescape(page))
