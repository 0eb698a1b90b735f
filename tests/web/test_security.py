"""Headers, logs without tokens, body limits, rate limits and language negotiation."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.orm import Session, sessionmaker

from digest import config
from digest.pipeline import transport
from digest.web import create_app
from digest.web.pages import best_language
from digest.web.security import CSP, DESK_CSP, RateLimit, is_private, redact
from tests.test_draft import MONDAY
from tests.web.conftest import TestClient, add, client_for, csrf_of, link_in, outbox


def test_every_page_carries_the_security_headers(client: TestClient) -> None:
    for path in ("/en/", "/nonexistent", "/en/admin/login"):
        headers = client.get(path).headers
        # The desk's pages also load the desk's script file (tests/web/test_desk_script.py).
        assert headers["content-security-policy"] == (DESK_CSP if "/admin" in path else CSP)
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in CSP and "script-src" not in CSP
    assert "frame-ancestors 'none'" in CSP and "form-action 'self'" in CSP
    assert DESK_CSP == CSP + "; script-src 'self'; connect-src 'self'"


def test_hsts_only_when_the_site_is_https(
    make_settings: object, factory: sessionmaker[Session], client: TestClient
) -> None:
    from tests.web.conftest import WEB

    assert client.get("/en/").headers["strict-transport-security"] == "max-age=31536000"
    local = make_settings(WEB + '[publication]\nbase_url = "http://127.0.0.1:8000"\n')  # type: ignore[operator]
    with client_for(create_app(local, factory=factory)) as plain:
        assert "strict-transport-security" not in plain.get("/en/").headers


def test_public_pages_may_be_cached_private_ones_never(
    client: TestClient, web_settings: config.Settings, factory: sessionmaker[Session]
) -> None:
    public_id = add(web_settings, factory, "ana@example.net")
    keys = transport.tokens(web_settings, clock=lambda: MONDAY)
    assert "cache-control" not in client.get("/en/").headers
    for path in (
        f"/en/unsubscribe/{keys.unsubscribe_token(public_id)}",
        f"/en/preferences/{keys.preferences_token(public_id)}",
        "/en/admin/login",
    ):
        answer = client.get(path)
        assert answer.headers["cache-control"] == "no-store"
        assert "noindex" in answer.headers["x-robots-tag"]


def test_redact_and_is_private() -> None:
    assert redact("/nl/unsubscribe/AbC.dEf") == "/nl/unsubscribe/<token>"
    assert redact("/fr/preferences/AbC.dEf/export") == "/fr/preferences/<token>/export"
    assert redact("/en/confirm/x.y.z") == "/en/confirm/<token>"
    assert redact("/en/subscribe") == "/en/subscribe"
    assert is_private("/en/admin/") and is_private("/en/confirm/x")
    assert not is_private("/en/") and not is_private("/feeds/en.atom")


def test_no_token_or_address_reaches_the_logs(
    client: TestClient,
    web_settings: config.Settings,
    factory: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client.post("/en/subscribe", data={"email": "ana@example.net", "language": "en"})
    confirm = link_in(outbox(web_settings)[0], "/confirm/")
    client.get(confirm)
    client.post(confirm)
    public_id = add(web_settings, factory, "bram@example.be")
    keys = transport.tokens(web_settings, clock=lambda: MONDAY)
    unsubscribe = keys.unsubscribe_token(public_id)
    prefs = f"/en/preferences/{keys.preferences_token(public_id)}"
    csrf = csrf_of(client.get(prefs).text)
    client.post(f"{prefs}/export", data={"csrf": csrf})
    client.post(f"/en/unsubscribe/{unsubscribe}")
    client.post("/en/subscribe", data={"email": "ana@example.net", "language": "en"})
    # The app's own records (the test client logs the URLs it requests itself).
    logged = "\n".join(
        record.getMessage() for record in caplog.records if not record.name.startswith("httpx")
    )
    assert "/en/unsubscribe/<token>" in logged and "/en/confirm/<token>" in logged
    for secret in (
        confirm.rsplit("/", 1)[1],
        unsubscribe,
        keys.preferences_token(public_id),
        csrf,
        public_id,
        "ana@example.net",
        "bram@example.be",
        web_settings.web.secret_key.reveal(),
    ):
        assert secret not in logged


def test_an_oversized_body_is_refused(client: TestClient) -> None:
    answer = client.post("/en/subscribe", content=b"x" * 1_100_000)
    assert answer.status_code == 413


def test_rate_limit_counts_per_key_within_the_window() -> None:
    now = [0.0]
    limit = RateLimit(2, 3600, clock=lambda: now[0])
    assert limit.hit("a") and limit.hit("a") and not limit.hit("a")
    assert limit.hit("b")
    assert 3590 < limit.retry_after("a") <= 3601
    now[0] = 3600.5
    assert limit.hit("a") and limit.retry_after("a") == 0


def test_rate_limit_memory_is_bounded() -> None:
    limit = RateLimit(1, 60, clock=lambda: 0.0, max_keys=3)
    for key in "abcdef":
        limit.hit(key)
    assert limit.hit("a")  # forgotten, so allowed again
    assert len(limit._hits) <= 3


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("nl-BE,nl;q=0.9,en;q=0.8", "nl"),
        ("en;q=0.2, fr;q=0.9", "fr"),
        ("de, fr;q=0", "en"),
        ("*", "en"),
        ("fr;q=abc, nl", "nl"),
    ],
)
def test_best_language(accept: str, expected: str) -> None:
    assert best_language(accept, ["en", "nl", "fr"]) == expected


def test_the_app_needs_its_secrets(make_settings: object, factory: sessionmaker[Session]) -> None:
    from digest.errors import ConfigError

    with pytest.raises(ConfigError, match="secret_key"):
        create_app(make_settings(""), factory=factory)  # type: ignore[operator]


def test_a_base_url_with_a_path_serves_under_it(
    make_settings: object, factory: sessionmaker[Session]
) -> None:
    from tests.web.conftest import WEB

    settings = make_settings(WEB + '[publication]\nbase_url = "https://example.org/digest"\n')  # type: ignore[operator]
    with client_for(create_app(settings, factory=factory)) as client:
        assert client.get("/", headers={"Accept-Language": "fr"}).headers["location"] == (
            "/digest/fr/"
        )
        page = client.get("/digest/fr/")
        assert page.status_code == 200 and 'action="/digest/fr/subscribe"' in page.text
        assert 'href="/digest/nl/"' in page.text
        assert client.get("/digest/").headers["location"] == "/digest/en/"
