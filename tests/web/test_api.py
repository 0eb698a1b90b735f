"""The JSON API under /api/v1/: every endpoint with the right key, every scope refusal
(401 and 403 as JSON), CORS for the sign-up, its rate limit, and the OpenAPI description
matching the routes."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from digest import config
from digest.pipeline import api_keys, audit, sending
from digest.store.models import ApiScope
from digest.web import api, create_app
from subscribers import registry
from subscribers.model import SubscriberStatus
from tests.test_draft import MONDAY
from tests.web.conftest import (
    TOPICS,
    WEB,
    Clock,
    TestClient,
    add,
    client_for,
    example_settings,
    outbox,
    text_of,
)

HUB = "https://hub.example.org"
ORIGINS = f'api_allowed_origins = ["{HUB}"]\n'


def with_origins(text: str) -> str:
    return text.replace("[web]\n", "[web]\n" + ORIGINS, 1)


@pytest.fixture
def settings(make_settings: Any) -> config.Settings:
    made: config.Settings = make_settings(with_origins(WEB) + TOPICS)
    return made


@pytest.fixture
def keys(factory: sessionmaker[Session]) -> dict[str, str]:
    """A live token per scope, and one revoked."""
    made = {
        scope.value: api_keys.add_key(factory, f"{scope.value}-key", scope, by="cli:test").token
        for scope in ApiScope
    }
    made["revoked"] = api_keys.add_key(factory, "old", ApiScope.ADMIN, by="cli:test").token
    api_keys.revoke_key(factory, "old", by="cli:test")
    return made


@pytest.fixture
def api_client(settings: config.Settings, factory: sessionmaker[Session], clock: Clock) -> Any:
    with client_for(create_app(settings, factory=factory, clock=clock)) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


ENDPOINTS = [
    ("POST", "/api/v1/subscribers", "subscribe"),
    ("GET", "/api/v1/subscribers/someone@example.org", "read"),
    ("GET", "/api/v1/issues", "read"),
    ("GET", "/api/v1/issues/1", "read"),
    ("POST", "/api/v1/collect", "admin"),
    ("POST", "/api/v1/draft", "admin"),
]
ORDER = ["subscribe", "read", "admin"]
REFUSED = [
    (method, path, needed, scope)
    for method, path, needed in ENDPOINTS
    for scope in ORDER
    if ORDER.index(scope) < ORDER.index(needed)
]


# --- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "_needed"), ENDPOINTS)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer dg_not-a-key-anyone-made"},
        "revoked",
    ],
    ids=["no header", "not bearer", "unknown token", "revoked token"],
)
def test_every_endpoint_refuses_a_missing_unknown_or_revoked_key_with_401(
    api_client: TestClient,
    keys: dict[str, str],
    method: str,
    path: str,
    _needed: str,
    headers: Any,
) -> None:
    sent = bearer(keys["revoked"]) if headers == "revoked" else headers
    answer = api_client.request(method, path, headers=sent, json={"email": "a@example.org"})
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["error"] == "unauthorized"
    assert answer.json()["message"]
    assert answer.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path", "needed", "scope"), REFUSED)
def test_every_endpoint_refuses_a_smaller_scope_with_403(
    api_client: TestClient,
    keys: dict[str, str],
    factory: sessionmaker[Session],
    method: str,
    path: str,
    needed: str,
    scope: str,
) -> None:
    answer = api_client.request(
        method, path, headers=bearer(keys[scope]), json={"email": "a@example.org"}
    )
    assert answer.status_code == 403
    body = answer.json()
    assert body["error"] == "forbidden"
    assert f"{scope}-key" in body["message"] and scope in body["message"]
    # A refused call did nothing: the log holds only the keys' making.
    assert {e.action for e in audit.entries(factory)} == {"api_key_added", "api_key_revoked"}


def test_unknown_api_paths_answer_json_404(api_client: TestClient) -> None:
    answer = api_client.get("/api/v1/nothing-here")
    assert answer.status_code == 404
    assert answer.json()["error"] == "not_found"


# --- subscribe ----------------------------------------------------------------------------


def test_subscribe_takes_the_double_opt_in_path_of_the_web_form(
    api_client: TestClient,
    keys: dict[str, str],
    settings: config.Settings,
    factory: sessionmaker[Session],
) -> None:
    answer = api_client.post(
        "/api/v1/subscribers",
        headers=bearer(keys["subscribe"]),
        json={"email": "New.Reader@Example.org", "language": "nl", "topics": ["housing", "x"]},
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "check_inbox"
    assert answer.headers["cache-control"] == "no-store"
    with factory() as session:
        found = registry.by_email(session, "new.reader@example.org")
        assert found is not None
        assert found.status is SubscriberStatus.PENDING
        assert found.language == "nl"
        assert list(found.topics) == ["housing"]
    mails = outbox(settings)
    assert [m["To"] for m in mails] == ["new.reader@example.org"]
    assert "/nl/confirm/" in text_of(mails[0])
    entry = audit.entries(factory, action="subscribed")[0]
    assert entry.actor == "api:subscribe-key"
    assert "reader" not in (entry.subject + entry.detail).lower()
    # The same answer for an address already on the list: the API tells no one who is.
    again = api_client.post(
        "/api/v1/subscribers",
        headers=bearer(keys["subscribe"]),
        data={"email": "new.reader@example.org"},
    )
    assert again.status_code == 202
    assert again.json() == answer.json()


def test_subscribe_names_the_wrong_fields(api_client: TestClient, keys: dict[str, str]) -> None:
    answer = api_client.post(
        "/api/v1/subscribers",
        headers=bearer(keys["admin"]),
        json={"email": "not an address", "language": "de", "cadence": "hourly"},
    )
    assert answer.status_code == 400
    assert answer.json()["fields"] == {
        "email": "email_invalid",
        "language": "choice",
        "cadence": "choice",
    }
    broken = api_client.post(
        "/api/v1/subscribers",
        headers={**bearer(keys["admin"]), "Content-Type": "application/json"},
        content=b"[1, 2",
    )
    assert broken.status_code == 400
    assert broken.json()["error"] == "invalid"


def test_subscribe_is_rate_limited_like_the_form(
    make_settings: Any, factory: sessionmaker[Session], clock: Clock, keys: dict[str, str]
) -> None:
    limited = make_settings(
        with_origins(WEB).replace("[web]\n", "[web]\nsubscribe_per_ip_per_hour = 2\n", 1)
    )
    with client_for(create_app(limited, factory=factory, clock=clock)) as client:
        for n in range(2):
            answer = client.post(
                "/api/v1/subscribers",
                headers=bearer(keys["subscribe"]),
                json={"email": f"r{n}@example.org"},
            )
            assert answer.status_code == 202
        refused = client.post(
            "/api/v1/subscribers",
            headers=bearer(keys["subscribe"]),
            json={"email": "r3@example.org"},
        )
        assert refused.status_code == 429
        assert refused.json()["error"] == "rate_limited"
        assert int(refused.headers["retry-after"]) > 0
        # The web form shares the count: one limit per client address.
        assert client.post("/en/subscribe", data={"email": "r4@example.org"}).status_code == 429


def test_a_hub_page_may_post_sign_ups_from_an_allowed_origin_only(
    api_client: TestClient, keys: dict[str, str]
) -> None:
    preflight = api_client.options(
        "/api/v1/subscribers",
        headers={
            "Origin": HUB,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == HUB
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "Authorization" in preflight.headers["access-control-allow-headers"]
    posted = api_client.post(
        "/api/v1/subscribers",
        headers={**bearer(keys["subscribe"]), "Origin": HUB},
        json={"email": "from-the-hub@example.org"},
    )
    assert posted.status_code == 202
    assert posted.headers["access-control-allow-origin"] == HUB
    # A refusal is readable by the page too.
    refused = api_client.post("/api/v1/subscribers", headers={"Origin": HUB}, json={})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == HUB

    elsewhere = "https://evil.example.net"
    assert (
        api_client.options("/api/v1/subscribers", headers={"Origin": elsewhere}).status_code == 403
    )
    other = api_client.post(
        "/api/v1/subscribers",
        headers={**bearer(keys["subscribe"]), "Origin": elsewhere},
        json={"email": "x@example.org"},
    )
    assert "access-control-allow-origin" not in other.headers
    # Only the sign-up is open to browsers: the read endpoints send no CORS headers.
    read = api_client.get("/api/v1/issues", headers={**bearer(keys["read"]), "Origin": HUB})
    assert read.status_code == 200
    assert "access-control-allow-origin" not in read.headers


# --- read ---------------------------------------------------------------------------------


def test_subscriber_status(
    api_client: TestClient,
    keys: dict[str, str],
    settings: config.Settings,
    factory: sessionmaker[Session],
) -> None:
    add(settings, factory, "reader@example.org", language="nl", topics=("housing",))
    answer = api_client.get("/api/v1/subscribers/Reader@example.org", headers=bearer(keys["read"]))
    assert answer.status_code == 200
    body = answer.json()
    assert body["email"] == "reader@example.org"
    assert body["status"] == "confirmed"
    assert body["language"] == "nl"
    assert body["topics"] == ["housing"]
    assert body["confirmed_at"].startswith("2026-")
    missing = api_client.get("/api/v1/subscribers/nobody@example.org", headers=bearer(keys["read"]))
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    bad = api_client.get("/api/v1/subscribers/not-an-address", headers=bearer(keys["admin"]))
    assert bad.status_code == 400


def test_collect_draft_and_issues_with_their_delivery_counts(
    make_settings: Any,
    tmp_path: Path,
    factory: sessionmaker[Session],
    clock: Clock,
    keys: dict[str, str],
) -> None:
    settings = example_settings(make_settings, tmp_path)
    clock.now = MONDAY - timedelta(days=1)
    with client_for(create_app(settings, factory=factory, clock=clock)) as client:
        admin = bearer(keys["admin"])
        collected = client.post("/api/v1/collect", headers=admin)
        assert collected.status_code == 200, collected.text
        body = collected.json()
        assert body["sources"] and body["failed"] == []
        assert {s["outcome"] for s in body["sources"]} <= {"collected", "not modified"}

        clock.now = MONDAY - timedelta(hours=12)
        drafted = client.post("/api/v1/draft", headers=admin)
        assert drafted.status_code == 201, drafted.text
        number = drafted.json()["number"]
        assert drafted.json()["cadence"] == "weekly"
        again = client.post("/api/v1/draft", headers=admin, json={"cadence": "weekly"})
        assert again.status_code == 200
        assert again.json()["number"] == number and again.json()["created"] is False
        assert client.post("/api/v1/draft", headers=admin, json={"cadence": "x"}).status_code == 400

        add(settings, factory, "one@example.org")
        add(settings, factory, "two@example.org", language="nl")
        sending.approve(settings, factory, number)
        sending.send(settings, factory, number=number, now=MONDAY)

        read = bearer(keys["read"])
        listed = client.get("/api/v1/issues", headers=read)
        assert listed.status_code == 200
        first = listed.json()["issues"][0]
        assert first["number"] == number
        assert first["status"] == "sent"
        assert first["deliveries"]["sent"] == 2
        one = client.get(f"/api/v1/issues/{number}", headers=read)
        assert one.json() == first
        assert client.get("/api/v1/issues/999", headers=read).status_code == 404
        # Larger than any database integer: still a plain 404.
        huge = client.get(f"/api/v1/issues/{2**63}", headers=read)
        assert huge.status_code == 404 and huge.json()["error"] == "not_found"
    actions = {(e.actor, e.action) for e in audit.entries(factory)}
    assert ("api:admin-key", "collected") in actions
    assert ("api:admin-key", "drafted") in actions


# --- the description ----------------------------------------------------------------------


def test_the_openapi_file_describes_every_route(
    api_client: TestClient, settings: config.Settings
) -> None:
    answer = api_client.get("/api/v1/openapi.json")
    assert answer.status_code == 200
    described = answer.json()
    assert described["openapi"].startswith("3.1")
    documented = {
        (method.upper(), path)
        for path, operations in described["paths"].items()
        for method in operations
    }
    served = {
        (method, route.path.replace("{number:number}", "{number}"))
        for route in api.routes()
        if "{rest:path}" not in route.path  # type: ignore[attr-defined]
        for method in route.methods or ()  # type: ignore[attr-defined]
        if method != "HEAD"
    }
    assert documented == served
    # Every endpoint but the description and the preflight is documented as needing a key
    # and answering 401 and 403.
    for path, operations in described["paths"].items():
        for method, operation in operations.items():
            if operation.get("security") == []:
                continue
            assert {"401", "403"} <= set(operation["responses"]), (method, path)
    # The file in the package is the one served, with the publication's languages added.
    packaged = json.loads(Path(api.__file__).with_name("openapi.json").read_text("utf-8"))
    language = described["components"]["schemas"]["Signup"]["properties"]["language"]
    assert language.pop("enum") == list(settings.publication.languages)
    assert packaged == described
