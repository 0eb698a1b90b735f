"""`digest editors`, `digest api-keys` and `digest audit` as an operator uses them, the role
check shared by the desk and the API, and the CLI verbs the audit log records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.orm import Session, sessionmaker

from digest.cli import cli
from digest.config import Settings
from digest.pipeline import accounts, api_keys, audit
from digest.store.models import Account, ApiKey, ApiScope, AuditEntry, Role
from tests.web.conftest import drafted, example_settings

SECRETS = '[web]\nsecret_key = "test secret key for links"\n[subscribers]\nsuppression_key = "s"\n'
PASSWORD = "a long enough password"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    made: Settings = make_settings(SECRETS)
    return made


def run(runner: CliRunner, settings: Settings, *args: str, by: str | None = None) -> Result:
    prefix = ["--by", by] if by else []
    return runner.invoke(
        cli, ["--config", str(settings.path), *prefix, *args], env={"DIGEST_BY": None}
    )


def test_roles_and_scopes_permit_what_the_docs_say() -> None:
    for action in ("curate", "test", "approve", "draft", "collect", "read"):
        assert accounts.permits(Role.EDITOR, action)
        assert accounts.permits(Role.ADMIN, action)
    for action in ("sources", "subscribers", "accounts", "audit"):
        assert not accounts.permits(Role.EDITOR, action)
        assert accounts.permits(Role.ADMIN, action)
    # A role and a scope share the name "admin" and differ: an admin key cannot manage
    # accounts, an admin account is not a key.
    assert not accounts.permits(ApiScope.ADMIN, "accounts")
    assert accounts.permits(ApiScope.ADMIN, "draft")
    assert accounts.permits(ApiScope.READ, "subscribe")
    assert not accounts.permits(ApiScope.READ, "draft")
    assert accounts.permits(ApiScope.SUBSCRIBE, "subscribe")
    assert not accounts.permits(ApiScope.SUBSCRIBE, "read")


def test_editors_add_list_remove(
    runner: CliRunner, settings: Settings, factory: sessionmaker[Session]
) -> None:
    empty = run(runner, settings, "editors", "list")
    assert "no accounts" in empty.output and "admin_password" in empty.output
    added = run(
        runner,
        settings,
        "editors",
        "add",
        "ana",
        "Ana@Example.org",
        "--role",
        "admin",
        "--password",
        PASSWORD,
        by="root",
    )
    assert added.exit_code == 0, added.output
    assert "added admin ana <ana@example.org>" in added.output
    prompted = runner.invoke(
        cli,
        ["--config", str(settings.path), "editors", "add", "bo", "bo@example.org"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert prompted.exit_code == 0, prompted.output
    link = run(runner, settings, "editors", "add", "cy", "cy@example.org", "--link-only")
    assert link.exit_code == 0 and "by emailed link" in link.output
    with factory() as session:
        stored = {a.name: a for a in session.scalars(sa.select(Account))}
    assert stored["ana"].password_hash is not None
    assert stored["ana"].password_hash.startswith("$argon2id$")
    assert PASSWORD not in stored["ana"].password_hash
    assert stored["bo"].role is Role.EDITOR
    assert stored["cy"].password_hash is None

    listed = run(runner, settings, "editors", "list")
    lines = listed.output.splitlines()
    assert [line.split()[0] for line in lines] == ["ana", "bo", "cy"]
    assert "link only" in lines[2]

    taken = run(runner, settings, "editors", "add", "ana", "x@example.org", "--password", PASSWORD)
    assert taken.exit_code == 1 and "an account called 'ana' exists" in taken.output
    short = run(runner, settings, "editors", "add", "dee", "d@example.org", "--password", "short")
    assert short.exit_code == 1 and "too short" in short.output
    last_admin = run(runner, settings, "editors", "remove", "ana")
    assert last_admin.exit_code == 1 and "last admin" in last_admin.output
    removed = run(runner, settings, "editors", "remove", "bo@example.org", by="ana")
    assert removed.exit_code == 0 and "removed editor bo" in removed.output
    assert run(runner, settings, "editors", "remove", "nobody").exit_code == 1

    log = audit.entries(factory)
    assert [(e.actor, e.action, e.subject) for e in log][:1] == [
        ("cli:ana", "account_removed", "account bo")
    ]
    assert ("cli:root", "account_added", "account ana") in [
        (e.actor, e.action, e.subject) for e in log
    ]


def test_a_password_signs_in_and_a_wrong_one_does_not(factory: sessionmaker[Session]) -> None:
    accounts.add_account(
        factory, "ana", "ana@example.org", role=Role.ADMIN, password=PASSWORD, by="t"
    )
    assert accounts.check_password(factory, "ANA@example.org", PASSWORD) == accounts.SignedIn(
        "ana", "admin"
    )
    assert accounts.check_password(factory, "ana@example.org", PASSWORD + "x") is None
    assert accounts.check_password(factory, "nobody@example.org", PASSWORD) is None
    assert accounts.check_password(factory, "not an address", PASSWORD) is None


def test_api_keys_add_list_revoke(
    runner: CliRunner, settings: Settings, factory: sessionmaker[Session]
) -> None:
    added = run(runner, settings, "api-keys", "add", "hub", "--scope", "subscribe")
    assert added.exit_code == 0, added.output
    token = added.output.splitlines()[-1]
    assert token.startswith("dg_") and len(token) > 40
    with factory() as session:
        key = session.scalars(sa.select(ApiKey)).one()
    assert key.token_hash != token and token not in key.token_hash
    assert api_keys.key_of(factory, token) is not None
    listed = run(runner, settings, "api-keys", "list")
    assert "hub" in listed.output and "subscribe" in listed.output and "live" in listed.output
    assert token not in listed.output
    assert run(runner, settings, "api-keys", "add", "hub", "--scope", "read").exit_code == 1
    revoked = run(runner, settings, "api-keys", "revoke", "hub")
    assert revoked.exit_code == 0
    assert api_keys.key_of(factory, token) is None
    assert "revoked" in run(runner, settings, "api-keys", "list").output
    assert run(runner, settings, "api-keys", "revoke", "nope").exit_code == 1


def test_cli_verbs_are_recorded_as_the_os_user_or_by(
    runner: CliRunner,
    make_settings: Any,
    tmp_path: Path,
    factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = example_settings(make_settings, tmp_path)
    number = drafted(settings, factory)
    monkeypatch.setenv("USER", "operator")
    monkeypatch.setenv("LOGNAME", "operator")
    assert run(runner, settings, "approve", str(number)).exit_code == 0
    people = tmp_path / "people.csv"
    people.write_text("email,language\nrita@example.org,en\nsam@example.org,nl\n", encoding="utf-8")
    imported = run(runner, settings, "subscribers", "import", str(people), "--confirmed", by="ana")
    assert imported.exit_code == 0, imported.output
    sent = run(runner, settings, "send", str(number), "--as-of", "2026-12-07T09:00", by="ana")
    assert sent.exit_code == 0, sent.output
    erased = run(runner, settings, "subscribers", "remove", "rita@example.org", "--erase")
    assert erased.exit_code == 0, erased.output

    shown = run(runner, settings, "audit")
    assert shown.exit_code == 0
    lines = shown.output.splitlines()
    assert "cli:operator" in lines[0] and "erased" in lines[0]
    assert "sent" in lines[1] and "cli:ana" in lines[1] and f"issue {number}" in lines[1]
    assert "imported" in lines[2] and "people.csv" in lines[2] and "2 imported" in lines[2]
    assert "approved" in lines[3] and "cli:operator" in lines[3]
    # An erasure leaves no trace of the address in the log.
    with factory() as session:
        texts = " ".join(
            f"{e.actor} {e.subject} {e.detail}" for e in session.scalars(sa.select(AuditEntry))
        )
    assert "rita" not in texts
    only = run(runner, settings, "audit", "--action", "approved", "--json")
    assert only.exit_code == 0 and '"action": "approved"' in only.output
    assert '"imported"' not in only.output
