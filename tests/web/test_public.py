"""The subscriber's pages in process (Starlette's TestClient): sign-up, confirm, one-click
unsubscribe, preferences, export and erase, with every bad input we can think of."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest import config
from digest.errors import ConfigError
from digest.pipeline import transport
from digest.web import create_app
from subscribers import registry, suppression
from subscribers.errors import Suppressed
from subscribers.model import ConsentSource, Subscriber, SubscriberStatus
from subscribers.tokens import Tokens
from tests.test_draft import MONDAY
from tests.web.conftest import (
    TOPICS,
    WEB,
    Clock,
    TestClient,
    add,
    client_for,
    csrf_of,
    link_in,
    outbox,
)

SIGNUP = {"email": "ana@example.net", "name": "Ana", "language": "nl", "cadence": "weekly"}


def subscriber(factory: sessionmaker[Session], address: str) -> Subscriber | None:
    with factory() as session:
        return session.scalars(
            sa.select(Subscriber).where(Subscriber.email == address)
        ).one_or_none()


def tokens_of(settings: config.Settings) -> Tokens:
    return transport.tokens(settings, clock=lambda: MONDAY)


# --- home, languages ----------------------------------------------------------------------


def test_topics_and_the_title_show_in_the_readers_language(
    make_settings: Any, factory: sessionmaker[Session], clock: Clock
) -> None:
    settings = make_settings(
        WEB
        + '[publication]\ntitles = { nl = "Digest Steden & Migratie" }\n'
        + '[labels.topics.housing]\nnl = "Huisvesting"\nfr = "Logement"\n'
        + TOPICS
    )
    with client_for(create_app(settings, factory=factory, clock=clock)) as client:
        dutch = client.get("/nl/").text
        french = client.get("/fr/").text
        english = client.get("/en/").text
    assert 'value="housing"> Huisvesting</label>' in dutch
    assert 'value="housing"> Logement</label>' in french
    assert 'value="housing"> Housing</label>' in english  # no label: the slug made readable
    assert 'value="governance"> Governance</label>' in dutch
    assert "Digest Steden &amp; Migratie" in dutch and "Digest Steden" not in french


@pytest.mark.parametrize(
    ("accept", "expected"),
    [("fr-BE,fr;q=0.9,en;q=0.5", "/fr/"), ("nl", "/nl/"), ("de-DE,de", "/en/"), ("", "/en/")],
)
def test_root_sends_the_browser_to_its_language(
    client: TestClient, accept: str, expected: str
) -> None:
    answer = client.get("/", headers={"Accept-Language": accept})
    assert answer.status_code == 302
    assert answer.headers["location"] == expected
    assert "Accept-Language" in answer.headers["vary"]


def test_home_page_has_the_form_the_feeds_and_a_language_switcher(client: TestClient) -> None:
    page = client.get("/nl/")
    assert page.status_code == 200
    html = page.text
    assert '<html lang="nl"' in html
    for code in ("en", "nl", "fr"):
        assert (
            f'<link rel="alternate" type="application/atom+xml" hreflang="{code}" '
            f'href="https://digest.example.org/feeds/{code}.atom"' in html
        )
    assert 'href="/en/" hreflang="en" lang="en">English</a>' in html
    assert 'aria-current="page">Nederlands</a>' in html
    assert '<label for="email">E-mailadres</label>' in html
    assert 'name="topics" value="governance"' in html and 'value="housing"' in html
    assert 'name="website"' in html and 'tabindex="-1"' in html  # the honeypot
    assert 'action="/nl/subscribe"' in html
    assert "set-cookie" not in page.headers  # no cookie for merely visiting


def test_a_language_the_publication_lacks_is_not_found(client: TestClient) -> None:
    answer = client.get("/de/")
    assert answer.status_code == 404
    assert '<html lang="en"' in answer.text


# --- sign-up ------------------------------------------------------------------------------


def test_sign_up_mails_one_confirmation_and_records_consent(
    client: TestClient, web_settings: config.Settings, factory: sessionmaker[Session]
) -> None:
    answer = client.post("/en/subscribe", data={**SIGNUP, "topics": ["housing"]})
    assert answer.status_code == 200
    assert "Check your inbox" in answer.text
    person = subscriber(factory, "ana@example.net")
    assert person is not None
    assert person.status is SubscriberStatus.PENDING
    assert (person.name, person.language, person.topics) == ("Ana", "nl", ["housing"])
    assert person.consent_source is ConsentSource.FORM
    assert person.consent_version == "v1" and person.consent_ip is None
    mails = outbox(web_settings)
    assert len(mails) == 1 and mails[0]["To"] == "ana@example.net"  # no name typed into a form
    assert mails[0]["Content-Language"] == "nl"
    assert link_in(mails[0], "/nl/confirm/").startswith("/nl/confirm/")


def test_the_answer_is_the_same_whether_or_not_the_address_is_known(
    client: TestClient,
    web_settings: config.Settings,
    factory: sessionmaker[Session],
) -> None:
    add(web_settings, factory, "known@example.net")
    add(web_settings, factory, "pending@example.net", confirmed=False)
    gone = add(web_settings, factory, "gone@example.net")
    with factory() as session, session.begin():
        found = registry.by_public_id(session, gone)
        assert found is not None
        registry.unsubscribe(
            session,
            found,
            now=found.created_at,
            suppression_key=transport.suppression_key(web_settings),
        )
    pages = {
        address: client.post("/en/subscribe", data={**SIGNUP, "email": address})
        for address in (
            "new@example.net",
            "known@example.net",
            "pending@example.net",
            "gone@example.net",
        )
    }
    assert {page.status_code for page in pages.values()} == {200}
    assert len({page.text for page in pages.values()}) == 1
    # The new, the pending and the one who had left (a new double opt-in) were mailed.
    assert sorted(m["To"].addresses[0].addr_spec for m in outbox(web_settings)) == [
        "gone@example.net",
        "new@example.net",
        "pending@example.net",
    ]


def test_at_most_one_confirmation_mail_per_address_and_day(
    client: TestClient, web_settings: config.Settings, clock: Clock
) -> None:
    for _ in range(3):
        assert client.post("/en/subscribe", data=SIGNUP).status_code == 200
    assert len(outbox(web_settings)) == 1
    clock.advance(hours=23)
    client.post("/en/subscribe", data=SIGNUP)
    assert len(outbox(web_settings)) == 1
    clock.advance(hours=2)
    client.post("/en/subscribe", data=SIGNUP)
    assert len(outbox(web_settings)) == 2


def test_a_filled_honeypot_gets_the_usual_answer_and_nothing_happens(
    client: TestClient, web_settings: config.Settings, factory: sessionmaker[Session]
) -> None:
    answer = client.post("/en/subscribe", data={**SIGNUP, "website": "https://spam.example"})
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    assert subscriber(factory, "ana@example.net") is None
    assert outbox(web_settings) == []


def test_sign_ups_are_rate_limited_per_address(
    make_settings: object, factory: sessionmaker[Session], clock: Clock
) -> None:
    from tests.web.conftest import WEB

    settings = make_settings(WEB.replace("[web]", "[web]\nsubscribe_per_ip_per_hour = 2"))  # type: ignore[operator]
    with client_for(create_app(settings, factory=factory, clock=clock)) as client:
        for n in range(2):
            data = {**SIGNUP, "email": f"reader{n}@example.net"}
            assert client.post("/en/subscribe", data=data).status_code == 200
        refused = client.post("/fr/subscribe", data={**SIGNUP, "email": "third@example.net"})
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 3000
    assert '<html lang="fr"' in refused.text
    assert subscriber(factory, "third@example.net") is None
    assert len(outbox(settings)) == 2


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"email": ""}, "email", "Enter your email address."),
        ({"email": "not an address"}, "email", "Enter an email address like name@example.org."),
        ({"email": "a@example.org\r\nBcc: x@example.net"}, "email", "Enter an email address"),
        ({"name": "x" * 300}, "name", "The name is too long."),
        ({"language": "de"}, "language", "Choose one of the options."),
    ],
)
def test_a_bad_sign_up_says_what_to_fix_and_stores_nothing(
    client: TestClient,
    web_settings: config.Settings,
    factory: sessionmaker[Session],
    changes: dict[str, str],
    field: str,
    message: str,
) -> None:
    answer = client.post("/en/subscribe", data={**SIGNUP, **changes})
    assert answer.status_code == 400
    assert message in answer.text
    assert f'id="{field}"' in answer.text and 'aria-invalid="true"' in answer.text
    with factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Subscriber)) == 0
    assert outbox(web_settings) == []


def test_a_multipart_sign_up_works_too(client: TestClient, factory: sessionmaker[Session]) -> None:
    answer = client.post("/en/subscribe", files={k: (None, v) for k, v in SIGNUP.items()})
    assert answer.status_code == 200
    assert subscriber(factory, "ana@example.net") is not None


# --- confirm ------------------------------------------------------------------------------


def test_confirm_get_shows_a_button_and_post_confirms(
    client: TestClient, web_settings: config.Settings, factory: sessionmaker[Session]
) -> None:
    client.post("/en/subscribe", data=SIGNUP)
    path = link_in(outbox(web_settings)[0], "/confirm/")
    page = client.get(path)
    assert page.status_code == 200
    assert f'<form method="post" action="{path}">' in page.text
    assert page.headers["cache-control"] == "no-store"
    person = subscriber(factory, "ana@example.net")
    assert person is not None and person.status is SubscriberStatus.PENDING  # a GET changes nothing

    done = client.post(path)
    # The link is in the reader's language (Dutch), and so is the page.
    assert done.status_code == 200 and "Je inschrijving is bevestigd" in done.text
    person = subscriber(factory, "ana@example.net")
    assert person is not None and person.status is SubscriberStatus.CONFIRMED
    prefs = tokens_of(web_settings).preferences_token(person.public_id)
    assert f'href="/nl/preferences/{prefs}"' in done.text
    again = client.get(path)
    assert again.status_code == 200 and "Je inschrijving is al bevestigd" in again.text


def test_an_expired_confirmation_link_says_so(
    client: TestClient, web_settings: config.Settings, factory: sessionmaker[Session], clock: Clock
) -> None:
    public_id = add(web_settings, factory, "late@example.net", confirmed=False)
    token = tokens_of(web_settings).confirm_token(public_id, now=clock.now - timedelta(days=8))
    for answer in (client.get(f"/en/confirm/{token}"), client.post(f"/en/confirm/{token}")):
        assert answer.status_code == 410 and "This link has expired" in answer.text
    person = subscriber(factory, "late@example.net")
    assert person is not None and person.status is SubscriberStatus.PENDING


def bad_tokens(settings: config.Settings, public_id: str, purpose: str) -> dict[str, str]:
    """A tampered token, one made for another purpose, and one signed by another site."""
    mine = tokens_of(settings)
    other = Tokens(["somebody-else's-secret-key-0123456789"])
    good = {
        "confirm": mine.confirm_token(public_id, now=MONDAY),
        "unsubscribe": mine.unsubscribe_token(public_id),
        "preferences": mine.preferences_token(public_id),
    }[purpose]
    foreign_purpose = "unsubscribe" if purpose != "unsubscribe" else "preferences"
    return {
        "tampered": good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        "other purpose": {
            "unsubscribe": mine.unsubscribe_token(public_id),
            "preferences": mine.preferences_token(public_id),
        }[foreign_purpose],
        "other site": {
            "confirm": other.confirm_token(public_id, now=MONDAY),
            "unsubscribe": other.unsubscribe_token(public_id),
            "preferences": other.preferences_token(public_id),
        }[purpose],
        "garbage": "not-a-token",
    }


@pytest.mark.parametrize("kind", ["tampered", "other purpose", "other site", "garbage"])
def test_a_bad_confirmation_token_confirms_nothing(
    client: TestClient, web_settings: config.Settings, factory: sessionmaker[Session], kind: str
) -> None:
    public_id = add(web_settings, factory, "ana@example.net", confirmed=False)
    token = bad_tokens(web_settings, public_id, "confirm")[kind]
    for answer in (client.get(f"/en/confirm/{token}"), client.post(f"/en/confirm/{token}")):
        assert answer.status_code == 400 and "This link does not work" in answer.text
    person = subscriber(factory, "ana@example.net")
    assert person is not None and person.status is SubscriberStatus.PENDING


def test_an_old_confirmation_link_never_resubscribes(
    client: TestClient, web_settings: config.Settings, factory: sessionmaker[Session], clock: Clock
) -> None:
    public_id = add(web_settings, factory, "ana@example.net")
    token = tokens_of(web_settings).confirm_token(public_id, now=clock.now)
    client.post(f"/en/unsubscribe/{tokens_of(web_settings).unsubscribe_token(public_id)}")
    answer = client.post(f"/en/confirm/{token}")
    assert answer.status_code == 410 and "no longer works" in answer.text
    person = subscriber(factory, "ana@example.net")
    assert person is not None and person.status is SubscriberStatus.UNSUBSCRIBED


# --- unsubscribe --------------------------------------------------------------------------


def test_unsubscribe_get_shows_a_button_and_changes_nothing(
    client: TestClient, web_settings: config.Settings, factory: sessionmaker[Session]
) -> None:
    public_id = add(web_settings, factory, "ana@example.net")
    token = tokens_of(web_settings).unsubscribe_token(public_id)
    page = client.get(f"/fr/unsubscribe/{token}")
    assert page.status_code == 200
    assert f'<form method="post" action="/fr/unsubscribe/{token}">' in page.text
    assert 'name="List-Unsubscribe" value="One-Click"' in page.text
    person = subscriber(factory, "ana@example.net")
    assert person is not None and person.status is SubscriberStatus.CONFIRMED


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart", "empty"])
def test_one_click_post_unsubscribes_at_once_without_cookie_or_redirect(
    app: object,
    web_settings: config.Settings,
    factory: sessionmaker[Session],
    encoding: str,
) -> None:
    public_id = add(web_settings, factory, "ana@example.net")
    token = tokens_of(web_settings).unsubscribe_token(public_id)
    body = {"List-Unsubscribe": "One-Click"}
    with client_for(app) as fresh:  # type: ignore[arg-type]
        assert not fresh.cookies
        if encoding == "urlencoded":
            answer = fresh.post(f"/en/unsubscribe/{token}", data=body)
        elif encoding == "multipart":
            answer = fresh.post(
                f"/en/unsubscribe/{token}", files={"List-Unsubscribe": (None, "One-Click")}
            )
            assert answer.request.headers["content-type"].startswith("multipart/form-data")
        else:
            answer = fresh.post(f"/en/unsubscribe/{token}")
    assert answer.status_code == 200 and "You are unsubscribed" in answer.text
    assert "location" not in answer.headers and "set-cookie" not in answer.headers
    person = subscriber(factory, "ana@example.net")
    assert person is not None and person.status is SubscriberStatus.UNSUBSCRIBED
    with factory() as session:
        assert suppression.is_suppressed(
            session, "ana@example.net", key=transport.suppression_key(web_settings)
        )


@pytest.mark.parametrize("kind", ["tampered", "other purpose", "other site", "garbage"])
def test_a_bad_unsubscribe_token_unsubscribes_nobody(
    client: TestClient, web_settings: config.Settings, factory: sessionmaker[Session], kind: str
) -> None:
    public_id = add(web_settings, factory, "ana@example.net")
    token = bad_tokens(web_settings, public_id, "unsubscribe")[kind]
    for answer in (client.get(f"/en/unsubscribe/{token}"), client.post(f"/en/unsubscribe/{token}")):
        assert answer.status_code == 400 and "This link does not work" in answer.text
    person = subscriber(factory, "ana@example.net")
    assert person is not None and person.status is SubscriberStatus.CONFIRMED


def test_unsubscribe_links_survive_a_key_rotation(
    make_settings: object, web_settings: config.Settings, factory: sessionmaker[Session]
) -> None:
    from tests.web.conftest import WEB

    public_id = add(web_settings, factory, "ana@example.net")
    old = tokens_of(web_settings).unsubscribe_token(public_id)
    rotated = WEB.replace(
        'secret_key = "web-test-secret-key-0123456789abcdef"',
        'secret_key = "a-brand-new-key-9876543210fedcba"\n'
        'previous_secret_keys = "web-test-secret-key-0123456789abcdef"\n'
        'previous_secret_keys_until = "2027-01-01"',
    )
    settings = make_settings(rotated)  # type: ignore[operator]
    # Past the set day the previous key verifies nothing any more.
    later = datetime(2027, 1, 1, tzinfo=UTC)
    with client_for(create_app(settings, factory=factory, clock=lambda: later)) as client:
        assert client.post(f"/en/unsubscribe/{old}").status_code == 400
    with client_for(create_app(settings, factory=factory, clock=lambda: MONDAY)) as client:
        assert client.post(f"/en/unsubscribe/{old}").status_code == 200
    person = subscriber(factory, "ana@example.net")
    assert person is not None and person.status is SubscriberStatus.UNSUBSCRIBED


def test_previous_keys_need_the_day_they_stop_working(make_settings: object) -> None:
    from tests.web.conftest import WEB

    rotated = WEB.replace(
        'secret_key = "web-test-secret-key-0123456789abcdef"',
        'secret_key = "a-brand-new-key-9876543210fedcba"\n'
        'previous_secret_keys = "web-test-secret-key-0123456789abcdef"',
    )
    settings = make_settings(rotated)  # type: ignore[operator]
    with pytest.raises(ConfigError, match="previous_secret_keys_until"):
        create_app(settings)


def test_unsubscribing_someone_already_erased_still_answers_200(
    client: TestClient, web_settings: config.Settings, factory: sessionmaker[Session]
) -> None:
    public_id = add(web_settings, factory, "ana@example.net")
    token = tokens_of(web_settings).unsubscribe_token(public_id)
    with factory() as session, session.begin():
        found = registry.by_public_id(session, public_id)
        assert found is not None
        registry.erase(
            session,
            found,
            now=found.created_at,
            suppression_key=transport.suppression_key(web_settings),
        )
    assert client.post(f"/en/unsubscribe/{token}").status_code == 200


@pytest.mark.parametrize("path", ["/en/unsubscribe", "/nl/preferences"])
def test_the_archive_pages_token_free_links_explain_where_the_real_ones_are(
    client: TestClient, path: str
) -> None:
    answer = client.get(path)
    assert answer.status_code == 200
    assert "<h1>" in answer.text and "/admin" not in answer.text


# --- preferences --------------------------------------------------------------------------


def open_preferences(
    client: TestClient, settings: config.Settings, factory: sessionmaker[Session]
) -> tuple[str, str]:
    """Add Ana and open her preferences page; return (its path, the form's CSRF token)."""
    public_id = add(settings, factory, "ana@example.net", topics=("governance",))
    path = f"/en/preferences/{tokens_of(settings).preferences_token(public_id)}"
    page = client.get(path)
    assert page.status_code == 200
    return path, csrf_of(page.text)


CHANGES = {
    "name": "Ana B.",
    "language": "fr",
    "topics": ["housing"],
    "cadence": "daily",
    "paused": "yes",
}


def test_preferences_change_language_topics_cadence_and_pause(
    client: TestClient, web_settings: config.Settings, factory: sessionmaker[Session]
) -> None:
    path, csrf = open_preferences(client, web_settings, factory)
    page = client.get(path)
    assert "ana@example.net" in page.text and page.headers["cache-control"] == "no-store"
    assert 'value="governance" checked' in page.text
    cookie = page.headers.get("set-cookie", "")
    assert "secure" in cookie.lower() and "httponly" in cookie.lower()
    saved = client.post(path, data={**CHANGES, "csrf": csrf})
    assert saved.status_code == 303 and saved.headers["location"] == f"{path}?saved=1"
    person = subscriber(factory, "ana@example.net")
    assert person is not None
    assert (person.name, person.language, person.topics) == ("Ana B.", "fr", ["housing"])
    assert person.cadence.value == "daily" and person.paused
    shown = client.get(saved.headers["location"])
    assert "Your preferences are saved." in shown.text
    assert (
        'value="daily" checked' in shown.text and 'name="paused" value="yes" checked' in shown.text
    )
    # Unticking the pause resumes.
    client.post(path, data={**CHANGES, "paused": "", "csrf": csrf})
    person = subscriber(factory, "ana@example.net")
    assert person is not None and not person.paused


@pytest.mark.parametrize("csrf", [None, "", "forged-token-0123456789-0123456789-0123"])
def test_preferences_need_the_session_csrf_token(
    client: TestClient,
    web_settings: config.Settings,
    factory: sessionmaker[Session],
    csrf: str | None,
) -> None:
    path, _ = open_preferences(client, web_settings, factory)
    data = dict(CHANGES) | ({"csrf": csrf} if csrf is not None else {})
    for target in (path, f"{path}/export", f"{path}/erase"):
        answer = client.post(target, data={**data, "confirm": "yes"})
        assert answer.status_code == 403 and "This form has expired" in answer.text
    person = subscriber(factory, "ana@example.net")
    assert person is not None and person.language == "en" and not person.paused


def test_a_csrf_token_from_another_session_is_refused(
    app: object, client: TestClient, web_settings: config.Settings, factory: sessionmaker[Session]
) -> None:
    path, _ = open_preferences(client, web_settings, factory)
    with client_for(app) as other:  # type: ignore[arg-type]
        theirs = csrf_of(other.get(path).text)
    assert client.post(path, data={**CHANGES, "csrf": theirs}).status_code == 403


def test_a_bad_preference_is_refused_and_nothing_changes(
    client: TestClient, web_settings: config.Settings, factory: sessionmaker[Session]
) -> None:
    path, csrf = open_preferences(client, web_settings, factory)
    answer = client.post(path, data={**CHANGES, "language": "de", "csrf": csrf})
    assert answer.status_code == 400 and "Choose one of the options." in answer.text
    person = subscriber(factory, "ana@example.net")
    assert person is not None and person.language == "en" and not person.paused


@pytest.mark.parametrize("kind", ["tampered", "other purpose", "other site", "garbage"])
def test_a_bad_preferences_token_shows_nothing(
    client: TestClient, web_settings: config.Settings, factory: sessionmaker[Session], kind: str
) -> None:
    public_id = add(web_settings, factory, "ana@example.net")
    token = bad_tokens(web_settings, public_id, "preferences")[kind]
    answer = client.get(f"/en/preferences/{token}")
    assert answer.status_code == 400 and "ana@example.net" not in answer.text


def test_export_my_data_is_json_with_everything_we_hold(
    client: TestClient, web_settings: config.Settings, factory: sessionmaker[Session]
) -> None:
    path, csrf = open_preferences(client, web_settings, factory)
    answer = client.post(f"{path}/export", data={"csrf": csrf})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert "attachment" in answer.headers["content-disposition"]
    assert answer.headers["cache-control"] == "no-store"
    data = json.loads(answer.text)
    assert data["email"] == "ana@example.net" and data["topics"] == ["governance"]
    assert data["consent"]["version"] == "v1" and data["consent"]["source"] == "cli"
    assert data["deliveries"] == []


def test_erase_needs_the_box_ticked_then_keeps_only_the_suppression_hash(
    client: TestClient, web_settings: config.Settings, factory: sessionmaker[Session]
) -> None:
    path, csrf = open_preferences(client, web_settings, factory)
    unticked = client.post(f"{path}/erase", data={"csrf": csrf})
    assert unticked.status_code == 400 and "Tick the box to confirm." in unticked.text
    assert subscriber(factory, "ana@example.net") is not None

    erased = client.post(f"{path}/erase", data={"csrf": csrf, "confirm": "yes"})
    assert erased.status_code == 200 and "Your data is erased" in erased.text
    key = transport.suppression_key(web_settings)
    with factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Subscriber)) == 0
        assert suppression.is_suppressed(session, "ana@example.net", key=key)
        stored = session.execute(sa.text("select address_hash, reason from suppressions")).all()
        assert [reason for _, reason in stored] == ["erased"]
        assert all("ana" not in address_hash for address_hash, _ in stored)
    with factory() as session, pytest.raises(Suppressed):
        registry.add(
            session,
            "ana@example.net",
            source=ConsentSource.CLI,
            consent_version="v1",
            now=MONDAY,
            languages=["en"],
            suppression_key=key,
        )
    assert client.get(path).status_code == 404
