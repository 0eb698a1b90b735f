"""Trust at the edges of the web app: no GET, HEAD or OPTIONS changes a subscription;
preference links expire and can be revoked; keys are strong and separate; bodies, fields
and clients are bounded before anything is parsed; every error page is ours."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest import config
from digest.errors import ConfigError
from digest.pipeline import transport
from digest.web import create_app
from digest.web.security import RateLimit, RouteLimit, address_bucket
from subscribers.model import Subscriber, SubscriberStatus
from subscribers.tokens import Tokens
from tests.test_draft import MONDAY
from tests.web.conftest import (
    WEB,
    Clock,
    TestClient,
    add,
    client_for,
    csrf_of,
    link_in,
    outbox,
    text_of,
)


def tokens_at(settings: config.Settings, moment: Any) -> Tokens:
    return transport.tokens(settings, clock=lambda: moment)


def status_of(factory: sessionmaker[Session], public_id: str) -> SubscriberStatus:
    with factory() as session:
        found = session.scalars(
            sa.select(Subscriber).where(Subscriber.public_id == public_id)
        ).one()
        return found.status


# --- 3. only POST changes a subscription --------------------------------------------------


def test_head_get_and_options_on_every_tokened_route_change_nothing(
    client: TestClient, web_settings: config.Settings, factory: sessionmaker[Session]
) -> None:
    pending = add(web_settings, factory, "pending@example.net", confirmed=False)
    confirmed = add(web_settings, factory, "confirmed@example.net")
    keys = tokens_at(web_settings, MONDAY)
    prefs = keys.preferences_token(confirmed)
    routes = [
        f"/en/confirm/{keys.confirm_token(pending, now=MONDAY)}",
        f"/en/unsubscribe/{keys.unsubscribe_token(confirmed)}",
        f"/en/preferences/{prefs}",
        f"/en/preferences/{prefs}/export",
        f"/en/preferences/{prefs}/erase",
        f"/en/preferences/{prefs}/renew",
        "/en/links",
        "/en/subscribe",
    ]
    for path in routes:
        get = client.get(path)
        head = client.head(path)
        options = client.options(path)
        assert get.status_code in (200, 405), (path, get.status_code)
        assert head.status_code == get.status_code, path
        assert head.content == b"", f"HEAD {path} has a body"
        assert head.headers.get("content-type") == get.headers.get("content-type"), path
        assert options.status_code == 405 and options.headers["allow"], path
        assert "<html" in options.text, "405 is our page too"
    assert status_of(factory, pending) is SubscriberStatus.PENDING
    assert status_of(factory, confirmed) is SubscriberStatus.CONFIRMED
    assert outbox(web_settings) == [], "no GET, HEAD or OPTIONS mailed anyone"


# --- 4. links expire and can be revoked ---------------------------------------------------


def test_preference_links_expire_after_link_days_and_offer_a_new_one(
    client: TestClient, web_settings: config.Settings, factory: sessionmaker[Session]
) -> None:
    public_id = add(web_settings, factory, "ana@example.net")
    old = tokens_at(web_settings, MONDAY - timedelta(days=91)).preferences_token(public_id)
    recent = tokens_at(web_settings, MONDAY - timedelta(days=89)).preferences_token(public_id)
    assert client.get(f"/en/preferences/{recent}").status_code == 200
    expired = client.get(f"/en/preferences/{old}")
    assert expired.status_code == 410
    assert f'action="/en/preferences/{old}/renew"' in expired.text
    # An unsubscribe link from the same old mail still unsubscribes.
    unsubscribe = tokens_at(web_settings, MONDAY - timedelta(days=900)).unsubscribe_token(public_id)
    assert client.post(f"/en/unsubscribe/{unsubscribe}").status_code == 200
    assert status_of(factory, public_id) is SubscriberStatus.UNSUBSCRIBED


def test_new_links_revoke_the_old_ones_and_export_needs_a_fresh_link(
    client: TestClient, web_settings: config.Settings, factory: sessionmaker[Session], clock: Clock
) -> None:
    public_id = add(web_settings, factory, "ana@example.net")
    old = tokens_at(web_settings, MONDAY - timedelta(days=2)).preferences_token(public_id)
    page = client.get(f"/en/preferences/{old}")
    assert page.status_code == 200 and "/export" not in page.text, "not fresh: no export form"
    csrf = csrf_of(page.text)
    refused = client.post(f"/en/preferences/{old}/export", data={"csrf": csrf})
    assert refused.status_code == 403 and "/renew" in refused.text
    assert (
        client.post(
            f"/en/preferences/{old}/erase", data={"csrf": csrf, "confirm": "yes"}
        ).status_code
        == 403
    )

    # "Send me new links" with the address: the same answer as for an unknown address.
    unknown = client.post("/en/links", data={"email": "nobody@example.net"})
    asked = client.post("/en/links", data={"email": "Ana@Example.net"})
    assert asked.status_code == unknown.status_code == 200
    assert asked.text == unknown.text
    mails = outbox(web_settings)
    assert len(mails) == 1 and mails[0]["To"] == "ana@example.net"
    fresh = link_in(mails[0], "/preferences/")
    assert client.get(f"/en/preferences/{old}").status_code == 410, "revoked"
    page = client.get(fresh)
    assert page.status_code == 200 and "/export" in page.text
    exported = client.post(f"{fresh}/export", data={"csrf": csrf_of(page.text)})
    assert exported.status_code == 200 and exported.json()["email"] == "ana@example.net"

    # A second request right away mails nothing more (a few a day at most).
    client.post("/en/links", data={"email": "ana@example.net"})
    assert len(outbox(web_settings)) == 1
    # A day later the fresh link still opens the page but no longer exports.
    clock.advance(hours=25)
    page = client.get(fresh)
    assert page.status_code == 200 and "/export" not in page.text


def test_the_renew_button_mails_a_fresh_link_to_the_address_on_the_list(
    client: TestClient, web_settings: config.Settings, factory: sessionmaker[Session]
) -> None:
    public_id = add(web_settings, factory, "ana@example.net")
    old = tokens_at(web_settings, MONDAY - timedelta(days=200)).preferences_token(public_id)
    page = client.get(f"/en/preferences/{old}")
    assert page.status_code == 410
    answer = client.post(f"/en/preferences/{old}/renew", data={"csrf": csrf_of(page.text)})
    assert answer.status_code == 200
    (mail,) = outbox(web_settings)
    assert mail["To"] == "ana@example.net"
    assert client.get(link_in(mail, "/preferences/")).status_code == 200
    forged = old[:-3] + ("AAA" if not old.endswith("AAA") else "BBB")
    assert client.post(f"/en/preferences/{forged}/renew", data={"csrf": "x"}).status_code == 400


# --- 5. keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("short-key", "bytes long"),
        ("changeme" * 4, "well-known"),
        ("ab" * 20, "repetitive"),
    ],
)
def test_a_weak_secret_key_is_refused_at_start_with_how_to_make_one(
    make_settings: Any, key: str, why: str
) -> None:
    settings = make_settings(WEB.replace("web-test-secret-key-0123456789abcdef", key))
    with pytest.raises(ConfigError, match=why) as caught:
        create_app(settings)
    assert "secrets.token_urlsafe(32)" in str(caught.value)


def test_sessions_links_and_csrf_use_keys_of_their_own(
    client: TestClient, web_settings: config.Settings
) -> None:
    from itsdangerous import BadSignature, TimestampSigner

    page = client.get("/en/admin/login")
    cookie = client.cookies["digest_session"]
    secret = web_settings.web.secret_key.reveal()
    with pytest.raises(BadSignature):
        TimestampSigner(secret).unsign(cookie)  # not signed with the raw secret
    # The form token is not the nonce kept in the session.
    import base64
    import json

    payload = json.loads(base64.b64decode(cookie.split(".")[0] + "=="))
    assert csrf_of(page.text) != payload["csrf"]


# --- 6. bounded bodies, fields, clients; no name in the sign-up mail --------------------------


def test_public_bodies_and_field_counts_are_small(client: TestClient) -> None:
    large = client.post("/en/subscribe", content=b"email=" + b"x" * 9000)
    assert large.status_code == 413 and '<html lang="en"' in large.text, "our own 413 page"
    many = client.post(
        "/en/subscribe",
        content=b"a=1&" * 1000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert many.status_code == 400 and 'name="email"' not in many.text, "refused unread"
    long_field = client.post(
        "/en/subscribe",
        content=b"email=" + b"x" * 5000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert long_field.status_code == 400 and 'name="email"' not in long_field.text
    parts = {f"f{n}": ("", "x") for n in range(100)}
    multipart = client.post("/en/subscribe", files=parts)
    assert multipart.status_code in (400, 413)


def test_csrf_and_rate_limits_come_before_the_body_is_read(
    client: TestClient, web_settings: config.Settings, factory: sessionmaker[Session]
) -> None:
    public_id = add(web_settings, factory, "ana@example.net")
    path = f"/en/preferences/{tokens_at(web_settings, MONDAY).preferences_token(public_id)}"
    # No session yet: refused without reading the form.
    assert client.post(path, data={"name": "x"}).status_code == 403
    page = client.get(path)
    csrf = csrf_of(page.text)
    foreign = client.post(path, data={"csrf": csrf}, headers={"origin": "https://evil.example"})
    assert foreign.status_code == 403
    cross = client.post(path, data={"csrf": csrf}, headers={"sec-fetch-site": "cross-site"})
    assert cross.status_code == 403
    same = client.post(
        path, data={"csrf": csrf, "name": "Ana"}, headers={"origin": "https://digest.example.org"}
    )
    assert same.status_code == 303


def test_the_sign_up_mail_carries_no_name_from_the_form(
    client: TestClient, web_settings: config.Settings
) -> None:
    name = "Win money at evil dot example"
    client.post("/en/subscribe", data={"email": "ana@example.net", "name": name, "language": "en"})
    (mail,) = outbox(web_settings)
    assert mail["To"] == "ana@example.net"
    assert name not in mail.as_string() and name not in text_of(mail)


def test_ipv6_clients_share_a_bucket_per_64() -> None:
    assert address_bucket("2001:db8:1:2:aaaa::1") == address_bucket("2001:db8:1:2:bbbb::2")
    assert address_bucket("2001:db8:1:2::1") != address_bucket("2001:db8:1:3::1")
    assert address_bucket("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_bucket("192.0.2.7") == "192.0.2.7"
    assert address_bucket("not an address") == "not an address"


def test_a_route_is_capped_overall_as_well_as_per_client() -> None:
    limit = RouteLimit(RateLimit(2, 60, clock=lambda: 0.0), RateLimit(3, 60, clock=lambda: 0.0))
    assert [limit.hit("a"), limit.hit("a")] == [0, 0]
    assert limit.hit("a") >= 60, "the client's own limit"
    assert limit.hit("b") == 0
    assert limit.hit("c") >= 60, "the route's overall cap holds for a fresh client too"


def test_sign_ups_from_one_ipv6_64_share_the_limit(
    web_settings: config.Settings, factory: sessionmaker[Session], clock: Clock
) -> None:
    app = create_app(web_settings, factory=factory, clock=clock)
    answers = []
    for host in range(12):
        with TestClient(
            app, base_url="https://testserver", client=(f"2001:db8::{host + 1:x}", 50000)
        ) as client:
            answers.append(client.post("/en/subscribe", data={"email": f"p{host}@example.net"}))
    assert [a.status_code for a in answers].count(429) == 2  # 10 an hour per /64


# --- 9. redirects from base_url ---------------------------------------------------------------


def test_the_trailing_slash_redirect_uses_base_url_not_the_host_header(client: TestClient) -> None:
    answer = client.get("/en/admin", headers={"host": "evil.example"})
    assert answer.status_code == 308
    assert answer.headers["location"] == "https://digest.example.org/en/admin/"
    answer = client.get("/archive/en", headers={"host": "evil.example"})
    assert answer.headers["location"] == "https://digest.example.org/archive/en/"


# --- 10. every error page is ours ----------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/archive/en/99999999999999999999.html",
        "/archive/en/-1.html",
        "/en/admin/issues/99999999999999999999",
        "/xx/",
        "/en/preferences/%00",
        "/archive/en/..%2F..%2Fetc%2Fpasswd",
        "/feeds/..%2Fsecret.atom",
        "/events/%2e%2e.ics",
        "/en/unsubscribe/" + "A" * 5000,
    ],
)
def test_bad_paths_answer_our_404_without_a_traceback(
    client: TestClient, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        answer = client.get(path)
    assert answer.status_code in (400, 404), answer.status_code
    assert "<html" in answer.text
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_an_unexpected_error_answers_a_plain_500_and_one_log_line(
    web_settings: config.Settings,
    factory: sessionmaker[Session],
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    public_id = add(web_settings, factory, "ana@example.net")
    path = f"/en/preferences/{tokens_at(web_settings, MONDAY).preferences_token(public_id)}"
    with factory() as session, session.begin():
        cascade = " CASCADE" if session.get_bind().dialect.name == "postgresql" else ""
        session.execute(sa.text(f"DROP TABLE subscribers{cascade}"))
    app = create_app(web_settings, factory=factory, clock=clock)
    with caplog.at_level(logging.INFO), client_for(app) as client:
        answer = client.get(path)
    assert answer.status_code == 500
    assert "<html" in answer.text and "Traceback" not in answer.text
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    line = errors[0].getMessage()
    assert "request=" in line and public_id not in line and "\n" not in line
    request_id = line.split("request=")[1].split()[0]
    assert request_id in answer.text
    assert "Traceback" not in caplog.text


# --- 2. rendering never stops an issue ------------------------------------------------------


def test_a_broken_override_template_shows_beside_the_curation_form_and_stops_no_page(
    make_settings: Any, tmp_path: Any, factory: sessionmaker[Session], clock: Clock
) -> None:
    from digest.pipeline import sending
    from digest.render.overrides import TemplateProblem
    from digest.store import issues
    from tests.web.conftest import drafted, example_settings, login

    folder = tmp_path / "overrides"
    (folder / "email").mkdir(parents=True)
    broken = folder / "email" / "issue.mjml.jinja"
    broken.write_text("<mjml>\n<mj-body>\n{% for x in y %}\n</mj-body>\n", encoding="utf-8")
    settings = example_settings(
        make_settings, tmp_path, f'\n[render]\ntemplates_dir = "{folder.as_posix()}"\n'
    )
    number = drafted(settings, factory)
    with factory() as session:
        recorded = issues.render_problems(issues.by_number(session, number))
    assert recorded and "issue.mjml.jinja:4" in recorded[0]
    from digest.pipeline import health

    status = health.gather(settings, factory, now=MONDAY - timedelta(hours=1))
    said = [p for i in status.issues for p in i.problems]
    assert any("does not render" in p and "issue.mjml.jinja:4" in p for p in said), said

    with client_for(create_app(settings, factory=factory, clock=clock)) as client:
        login(client)
        page = client.get(f"/en/admin/issues/{number}")
    assert page.status_code == 200
    assert "issue.mjml.jinja" in page.text and 'action="/en/admin/issues/' in page.text
    assert "/curate" in page.text, "the curation form is there to drop items"

    sending.approve(settings, factory, number, now=MONDAY)
    with pytest.raises(TemplateProblem, match=r"issue\.mjml\.jinja:4"):
        sending.send(settings, factory, number=number, now=MONDAY)
    assert outbox(settings) == [], "nothing went out"


def test_secrets_written_in_the_config_file_are_warned_about_at_start(
    web_settings: config.Settings,
    factory: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="digest.web"):
        create_app(web_settings, factory=factory)
    assert "DIGEST_WEB__SECRET_KEY_FILE" in caplog.text
    assert web_settings.web.secret_key.reveal() not in caplog.text


def test_under_a_base_path_the_slash_redirect_goes_to_base_url_and_never_loops(
    make_settings: Any, factory: sessionmaker[Session]
) -> None:
    settings = make_settings(WEB + '[publication]\nbase_url = "https://example.org/digest"\n')
    with client_for(create_app(settings, factory=factory)) as client:
        answer = client.get("/digest/en/admin", headers={"host": "evil.example"})
        assert answer.status_code == 308
        assert answer.headers["location"] == "https://example.org/digest/en/admin/"
        assert client.get("/digest/en/nothing-here").status_code == 404
        assert client.get("/digest/en/nothing-here/").status_code == 404
