"""Imports keep consent: refused without --confirmed; opt-in time, IP and source kept;
Mailchimp and listmonk exports, semicolon-separated and Windows-1252 files as Excel writes
them in nl-BE and fr-BE."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.pipeline import transport
from subscribers import suppression
from subscribers.model import Subscriber
from tests.test_subscribers_cli import SECRETS, listed, outbox, run


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    made: Settings = make_settings(SECRETS)
    return made


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def stored(factory: sessionmaker[Session], address: str) -> Subscriber:
    with factory() as session:
        return session.scalars(sa.select(Subscriber).where(Subscriber.email == address)).one()


def is_suppressed(settings: Settings, factory: sessionmaker[Session], address: str) -> bool:
    with factory() as session:
        return suppression.is_suppressed(session, address, key=transport.suppression_key(settings))


def test_an_import_without_confirmed_is_refused_and_imports_nothing(
    runner: CliRunner, settings: Settings, tmp_path: Path
) -> None:
    source = tmp_path / "list.csv"
    source.write_text("email\nann@example.net\n", encoding="utf-8")
    result = run(runner, settings, "import", str(source))
    assert result.exit_code == 1
    assert "refused, nothing was imported" in result.output and "--confirmed" in result.output
    assert "digest subscribers add" in result.output
    assert listed(runner, settings) == {} and outbox(settings) == []


MAILCHIMP_SUBSCRIBED = (
    '"Email Address","First Name","Last Name","MEMBER_RATING","OPTIN_TIME","OPTIN_IP",'
    '"CONFIRM_TIME","CONFIRM_IP","LATITUDE","LONGITUDE","GMTOFF","DSTOFF","TIMEZONE","CC",'
    '"REGION","LAST_CHANGED","LEID","EUID","NOTES","TAGS"\r\n'
    '"ann@example.net","Ann","Peeters",2,"2021-03-04 10:20:30","198.51.100.7",'
    '"2021-03-04 10:25:00","198.51.100.7",,,,,,,,"2023-01-01 00:00:00",123,abc,,\r\n'
    '"bo@example.net","Bo","",2,"","","2020-01-02 08:00:00","",,,,,,,,"2023-01-01",1,b,,\r\n'
)
MAILCHIMP_UNSUBSCRIBED = (
    '"Email Address","First Name","Last Name","MEMBER_RATING","OPTIN_TIME","OPTIN_IP",'
    '"CONFIRM_TIME","CONFIRM_IP","UNSUB_TIME","UNSUB_CAMPAIGN_TITLE","UNSUB_CAMPAIGN_ID",'
    '"UNSUB_REASON","UNSUB_REASON_OTHER"\r\n'
    '"cas@example.net","Cas","",1,"2019-01-01 00:00:00","","","","2022-05-05 12:00:00",'
    '"May","x1","NORMAL",""\r\n'
)


def test_a_mailchimp_export_keeps_opt_in_time_and_ip(
    runner: CliRunner, settings: Settings, factory: sessionmaker[Session], tmp_path: Path
) -> None:
    source = tmp_path / "members_export_subscribed.csv"
    source.write_text(MAILCHIMP_SUBSCRIBED, encoding="utf-8")
    result = run(runner, settings, "import", str(source), "--confirmed")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("imported 2, skipped 0")
    ann = stored(factory, "ann@example.net")
    assert ann.name == "Ann Peeters" and ann.status.value == "confirmed"
    assert ann.consent_at == datetime(2021, 3, 4, 10, 20, 30, tzinfo=UTC)
    assert ann.confirmed_at == datetime(2021, 3, 4, 10, 25, tzinfo=UTC)
    assert ann.consent_ip == "198.51.100.7" and ann.consent_source.value == "import"
    bo = stored(factory, "bo@example.net")
    assert bo.consent_at == datetime(2020, 1, 2, 8, 0, tzinfo=UTC), "confirm time stands in"


def test_a_mailchimp_unsubscribed_export_suppresses_and_imports_nobody(
    runner: CliRunner, settings: Settings, factory: sessionmaker[Session], tmp_path: Path
) -> None:
    source = tmp_path / "members_export_unsubscribed.csv"
    source.write_text(MAILCHIMP_UNSUBSCRIBED, encoding="utf-8")
    result = run(runner, settings, "import", str(source), "--confirmed")
    assert result.exit_code == 1
    assert "cas@example.net is unsubscribed in the file" in result.output
    assert listed(runner, settings) == {}
    assert is_suppressed(settings, factory, "cas@example.net")


def test_a_listmonk_export_imports_enabled_and_suppresses_blocklisted(
    runner: CliRunner, settings: Settings, factory: sessionmaker[Session], tmp_path: Path
) -> None:
    source = tmp_path / "subscribers.csv"
    source.write_text(
        "uuid,email,name,attributes,status,created_at,updated_at\n"
        'a1,dee@example.net,Dee,"{""city"": ""Gent""}",enabled,'
        "2022-02-03 04:05:06.123456+01:00,2022-02-03 04:05:06+01:00\n"
        "a2,eve@example.net,Eve,{},blocklisted,2022-02-03 04:05:06+00,2022-02-03\n"
        "a3,fay@example.net,Fay,{},disabled,2022-02-03 04:05:06+00,2022-02-03\n",
        encoding="utf-8",
    )
    result = run(runner, settings, "import", str(source), "--confirmed")
    assert "imported 1, skipped 2" in result.output, result.output
    assert "fay@example.net has status 'disabled'" in result.output
    dee = stored(factory, "dee@example.net")
    assert dee.consent_at == datetime(2022, 2, 3, 3, 5, 6, 123456, tzinfo=UTC)
    assert is_suppressed(settings, factory, "eve@example.net")
    assert not is_suppressed(settings, factory, "fay@example.net")


@pytest.mark.parametrize("language", ["nl-BE", "fr-BE"])
def test_an_excel_csv_with_semicolons_in_windows_1252(
    runner: CliRunner,
    settings: Settings,
    factory: sessionmaker[Session],
    tmp_path: Path,
    language: str,
) -> None:
    header = {
        "nl-BE": "E-mailadres;Naam;Language;Topics;consent_at;consent_ip;Source",
        "fr-BE": "Adresse e-mail;Nom;Language;Topics;consent_at;consent_ip;Source",
    }[language]
    rows = (
        f"{header}\r\n"
        "hélène@example.be;Hélène Dupré;fr;housing|labour;4/03/2021 10:20;203.0.113.9;"
        "salon Bruxelles\r\n"
        "joris@example.be;Joris Maeß;nl;;31/12/2020;;website\r\n"
    )
    source = tmp_path / "lijst.csv"
    source.write_bytes(rows.encode("cp1252"))
    result = run(runner, settings, "import", str(source), "--confirmed")
    assert result.exit_code == 0, result.output
    helene = stored(factory, "hélène@example.be")
    assert helene.name == "Hélène Dupré" and helene.topics == ["housing", "labour"]
    assert helene.consent_at == datetime(2021, 3, 4, 10, 20, tzinfo=UTC)
    assert helene.consent_ip == "203.0.113.9" and helene.consent_origin == "salon Bruxelles"
    joris = stored(factory, "joris@example.be")
    assert joris.name == "Joris Maeß" and joris.consent_at == datetime(2020, 12, 31, tzinfo=UTC)
