"""`digest subscribers …` as an operator uses it, on a real database and the outbox transport;
and the double opt-in confirmation mail it sends (rendered, built, signed, parsed back)."""

from __future__ import annotations

import csv
import email
import email.policy
import io
import json
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import dkim  # type: ignore[import-untyped]
import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from lxml import html as lxml_html
from sqlalchemy.orm import Session, sessionmaker

from digest.cli import cli
from digest.config import Settings
from digest.deliver import Outcome, SendResult
from digest.deliver.dkim import DkimSigner
from digest.deliver.message import parse_verp, unstuff
from digest.deliver.notice import build_notice
from digest.errors import DigestError
from digest.pipeline import people
from digest.render.environment import make_environment
from digest.render.notices import render_confirmation
from subscribers import registry
from subscribers.model import SubscriberStatus
from subscribers.tokens import Tokens
from tests.smtpserver import SmtpServer

SECRET = "test secret key for links in this cli test"
SECRETS = f'[web]\nsecret_key = "{SECRET}"\n[subscribers]\nsuppression_key = "suppression"\n'
URL = re.compile(r"https://digest\.example\.org/(\w+)/confirm/([A-Za-z0-9_.-]+)")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    """Settings on the test database with both secrets set, written to tmp_path/digest.toml."""
    made: Settings = make_settings(SECRETS)
    return made


def run(runner: CliRunner, settings: Settings, *args: str) -> Result:
    return runner.invoke(cli, ["--config", str(settings.path), "subscribers", *args])


def outbox(settings: Settings) -> list[Path]:
    folder = settings.delivery.outbox_dir
    return sorted(folder.glob("*.eml")) if folder.exists() else []


def parse(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def body(message: EmailMessage, kind: str) -> str:
    part = message.get_body(preferencelist=(kind,))
    assert part is not None and part.get_content_type() == f"text/{kind}"
    content: str = part.get_content()
    return content.replace("\r\n", "\n")


def squeeze(text: str) -> str:
    """`text` with runs of ASCII whitespace as one space (no-break spaces are kept)."""
    return re.sub(r"[ \t\r\n]+", " ", text)


def links_named(tree: lxml_html.HtmlElement, label: str) -> list[lxml_html.HtmlElement]:
    """The links of `tree` whose text is `label`."""
    return [a for a in tree.iter("a") if squeeze(a.text_content()).strip() == label]


def stored(factory: sessionmaker[Session], address: str) -> Any:
    with factory() as session:
        return registry.by_email(session, address)


def listed(runner: CliRunner, settings: Settings, *args: str) -> dict[str, dict[str, Any]]:
    result = run(runner, settings, "list", "--json", *args)
    assert result.exit_code == 0, result.output
    return {row["email"]: row for row in json.loads(result.stdout)}


# --- add ----------------------------------------------------------------------------------


def test_add_mails_one_confirmation_in_the_subscribers_language(
    runner: CliRunner, settings: Settings, factory: sessionmaker[Session]
) -> None:
    added = run(runner, settings, "add", "Alice@Example.NET", "--name", "Alice Janssens",
                "--language", "nl", "--topics", "governance, housing")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "added alice@example.net (pending, nl, weekly)" in added.output
    assert f"via the outbox folder {settings.delivery.outbox_dir}" in added.output

    [path] = outbox(settings)
    raw = path.read_bytes()
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    message = parse(path)
    assert message["To"] == "Alice Janssens <alice@example.net>"
    assert message["From"] == "Cities & Migration Digest <digest@example.org>"
    assert message["Subject"] == "Bevestig je inschrijving op Cities & Migration Digest"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Content-Language"] == "nl"
    assert message["Message-ID"].endswith("@example.org>")
    for header in ("List-Unsubscribe", "List-Unsubscribe-Post", "List-Id", "Precedence"):
        assert header not in message
    for header in ("From", "To", "Subject", "Date", "Message-ID"):
        assert len(message.get_all(header) or []) == 1, header
    # The outbox writes the envelope sender as Return-Path: VERP at the sender's domain.
    assert parse_verp(message["Return-Path"]) == "alice@example.net"
    # ... and the signed reference of the mail ("c<subscriber id>.<tag>").
    assert re.fullmatch(
        r"<bounces\+c1\.[0-9a-f]{16}\+alice=example\.net@example\.org>", message["Return-Path"]
    )
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]

    text, page = body(message, "plain"), body(message, "html")
    assert "Bevestig dat je Cities & Migration Digest op dit adres wilt ontvangen." in text
    assert "Heb je hier niet om gevraagd?" in text
    assert "Deze link werkt 7 dagen." in text
    [(language, token)] = URL.findall(text)
    assert language == "nl"
    tree = lxml_html.document_fromstring(page)
    assert tree.get("lang") == "nl"
    [button] = links_named(tree, "Bevestig je inschrijving")
    assert button.get("href") == f"https://digest.example.org/nl/confirm/{token}"
    assert "unsubscribe" not in page.lower() and "unsubscribe" not in text.lower()

    subscriber = stored(factory, "alice@example.net")
    assert subscriber.status is SubscriberStatus.PENDING
    assert subscriber.topics == ["governance", "housing"]
    assert subscriber.last_confirmation_sent_at is not None
    tokens = Tokens([SECRET], max_age_days=7)
    assert tokens.read_confirm(token, now=datetime.now(UTC)) == subscriber.public_id

    again = run(runner, settings, "add", "alice@example.net")
    assert again.exit_code == 1
    assert "alice@example.net is already on the list (pending)" in again.output
    assert "none was sent now" in again.output
    assert len(outbox(settings)) == 1


def test_add_confirmed_sends_no_mail(runner: CliRunner, settings: Settings) -> None:
    added = run(runner, settings, "add", "bob@example.net", "--confirmed", "--cadence", "daily")
    assert added.exit_code == 0, added.output
    assert "added bob@example.net (confirmed, en, daily)" in added.output
    assert "no mail was sent" in added.output
    assert outbox(settings) == []
    assert listed(runner, settings)["bob@example.net"]["status"] == "confirmed"

    again = run(runner, settings, "add", "BOB@example.net")
    assert again.exit_code == 1
    assert "bob@example.net is already on the list (confirmed); nothing changed" in again.output
    assert outbox(settings) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["not an address"], "'not an address' is not a usable email address"),
        (["x@example.net", "--language", "de"], "language 'de' is not one of this publication's"),
        (["x@example.net", "--cadence", "monthly"], "'monthly' is not one of"),
    ],
)
def test_add_refuses_bad_values_naming_them(
    runner: CliRunner, settings: Settings, args: list[str], message: str
) -> None:
    result = run(runner, settings, "add", *args)
    assert result.exit_code in (1, 2)  # 2: click refused the option itself
    assert message in result.output
    assert outbox(settings) == []


def test_a_refused_mail_leaves_the_subscriber_pending_and_is_sent_on_the_next_add(
    runner: CliRunner, make_settings: Any, tmp_path: Path
) -> None:
    (tmp_path / "blocked").write_text("a file where the outbox folder should be")
    broken: Settings = make_settings(SECRETS + '[delivery]\noutbox_dir = "blocked/outbox"\n')
    result = run(runner, broken, "add", "carol@example.net")
    assert result.exit_code == 1
    assert "carol@example.net was added but stays pending" in result.output
    assert "451" in result.output
    assert "run `digest subscribers add carol@example.net` again" in result.output
    assert listed(runner, broken)["carol@example.net"]["status"] == "pending"

    fixed: Settings = make_settings(SECRETS)
    resent = run(runner, fixed, "add", "carol@example.net")
    assert resent.exit_code == 0, resent.output
    assert "carol@example.net is already on the list, still pending" in resent.output
    assert len(outbox(fixed)) == 1


class Refusing:
    """A transport that refuses every message, as an SMTP server answering 550 would."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def send(self, envelope_from: str, recipient: str, data: bytes) -> SendResult:
        self.seen.append((envelope_from, recipient))
        return SendResult(Outcome.PERMANENT, 550, "550 5.1.1 mailbox unavailable")


def test_the_pipeline_sends_through_the_given_transport(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    refusing = Refusing()
    with pytest.raises(DigestError, match=r"stays pending.*550 5\.1\.1 mailbox unavailable"):
        people.add_subscriber(settings, factory, "dan@example.net", sender=refusing)
    [(envelope, recipient)] = refusing.seen
    assert recipient == "dan@example.net"
    assert re.fullmatch(r"bounces\+c\d+\.[0-9a-f]{16}\+dan=example\.net@example\.org", envelope)
    subscriber = stored(factory, "dan@example.net")
    assert subscriber.status is SubscriberStatus.PENDING
    assert subscriber.last_confirmation_sent_at is None  # so the next add sends it


def test_the_confirmation_goes_through_smtp_like_an_issue(
    runner: CliRunner, make_settings: Any, smtp_server: SmtpServer
) -> None:
    over_smtp: Settings = make_settings(
        SECRETS + f'[delivery]\ntransport = "smtp"\nsmtp_host = "127.0.0.1"\n'
        f"smtp_port = {smtp_server.port}\n"
    )
    added = run(runner, over_smtp, "add", "ruth@example.net", "--language", "fr")
    assert added.exit_code == 0, added.output
    assert f"via SMTP 127.0.0.1:{smtp_server.port}" in added.output
    [received] = smtp_server.messages
    assert parse_verp(received.mail_from) == "ruth@example.net"
    assert received.mail_from.endswith("+ruth=example.net@example.org")
    assert received.rcpt_tos == ("ruth@example.net",)
    message = email.message_from_bytes(received.data, policy=email.policy.default)
    assert message["Subject"] == "Confirmez votre abonnement à Cities & Migration Digest"
    assert "List-Unsubscribe" not in message

    smtp_server.reply_for("sam@example.net", "550 5.1.1 no such user")
    refused = run(runner, over_smtp, "add", "sam@example.net")
    assert refused.exit_code == 1
    assert "sam@example.net was added but stays pending" in refused.output
    assert "550 5.1.1 no such user" in refused.output
    assert listed(runner, over_smtp)["sam@example.net"]["status"] == "pending"
    assert len(smtp_server.messages) == 1


def test_the_confirmation_is_dkim_signed_when_configured(
    runner: CliRunner, make_settings: Any, tmp_path: Path
) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "dkim.pem").write_bytes(pem)
    signing: Settings = make_settings(
        SECRETS + '[delivery]\ndkim_selector = "confirm"\ndkim_key_file = "dkim.pem"\n'
    )
    assert run(runner, signing, "add", "erin@example.net").exit_code == 0
    [path] = outbox(signing)
    record = DkimSigner("confirm", "example.org", pem).dns_record().encode()

    def lookup(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"confirm._domainkey.example.org."
        return record

    assert dkim.verify(path.read_bytes(), dnsfunc=lookup)


# --- import -------------------------------------------------------------------------------

CSV_WITH_BAD_ROWS = """\
email,name,language,topics,cadence
frank@example.net,Frank,fr,governance;housing,weekly
not-an-address,Nobody,en,,
grace@example.net,Grace,de,,
frank@example.net,Frank again,fr,,

Gone@Example.net,Gone,en,,
"Janssens, Hanne" <hanne@example.net>,,nl,,
hanne@example.net,"Janssens, Hanne",nl,,daily
"""


def test_import_reports_bad_rows_by_line_and_imports_the_rest(
    runner: CliRunner, settings: Settings, tmp_path: Path
) -> None:
    assert run(runner, settings, "add", "gone@example.net", "--confirmed").exit_code == 0
    assert run(runner, settings, "remove", "gone@example.net", "--erase").exit_code == 0
    source = tmp_path / "list.csv"
    source.write_text(CSV_WITH_BAD_ROWS, encoding="utf-8")

    result = run(runner, settings, "import", str(source), "--confirmed")
    assert result.exit_code == 1  # some rows were skipped
    lines = result.output.splitlines()
    assert lines[0] == "imported 2, skipped 5"
    assert lines[1].startswith("  line 3: 'not-an-address' is not a usable email address")
    assert lines[2].startswith("  line 4: grace@example.net: language 'de' is not one of")
    assert lines[3] == "  line 5: frank@example.net is a duplicate of line 2"
    assert lines[4].startswith("  line 7: gone@example.net is suppressed (erased on ")
    assert lines[5].startswith("  line 8: ")  # a display name is not an address

    rows = listed(runner, settings)
    assert set(rows) == {"frank@example.net", "hanne@example.net"}
    assert rows["frank@example.net"]["topics"] == ["governance", "housing"]
    assert rows["hanne@example.net"]["name"] == "Janssens, Hanne"
    assert rows["hanne@example.net"]["cadence"] == "daily"
    assert {row["status"] for row in rows.values()} == {"confirmed"}
    assert {row["consent_source"] for row in rows.values()} == {"import"}
    assert outbox(settings) == []


def test_import_confirmed(runner: CliRunner, settings: Settings, tmp_path: Path) -> None:
    source = tmp_path / "consented.csv"
    source.write_text("\ufeffEmail,Language\r\nivy@example.net,fr\r\n", encoding="utf-8")
    result = run(runner, settings, "import", str(source), "--confirmed")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["imported 1, skipped 0"]
    row = listed(runner, settings)["ivy@example.net"]
    assert (row["status"], row["language"], row["consent_source"]) == ("confirmed", "fr", "import")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"ivy@example.net,Ivy\n", "needs a header row"),
        (b"email\n\x81\x8d@example.net\n", "is not UTF-8 text"),
    ],
)
def test_an_unusable_file_imports_nothing(
    runner: CliRunner, settings: Settings, tmp_path: Path, content: bytes, message: str
) -> None:
    source = tmp_path / "bad.csv"
    source.write_bytes(content)
    result = run(runner, settings, "import", str(source), "--confirmed")
    assert result.exit_code == 1
    assert str(source) in result.output and message in result.output
    missing = run(runner, settings, "import", str(tmp_path / "none.csv"), "--confirmed")
    assert missing.exit_code in (1, 2) and "none.csv" in missing.output
    assert listed(runner, settings) == {}


# --- export, list, remove -----------------------------------------------------------------


def test_export_csv_and_json_round_trip(
    runner: CliRunner, settings: Settings, tmp_path: Path
) -> None:
    people_to_add = [
        ["jan@example.net", "--name", "Jan, de Vries", "--language", "nl", "--topics", "jobs"],
        ["zoé@example.net", "--name", "=Zoé Dupré", "--language", "fr", "--cadence", "daily"],
        ["kim@example.net", "--topics", "governance,housing"],
    ]
    for args in people_to_add:
        assert run(runner, settings, "add", *args, "--confirmed").exit_code == 0
    assert run(runner, settings, "add", "lee@example.net").exit_code == 0  # pending

    exported = run(runner, settings, "export")
    assert exported.exit_code == 0
    assert exported.stderr.strip() == "exported 4 subscribers"
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [row["email"] for row in rows] == [
        "jan@example.net", "zoé@example.net", "kim@example.net", "lee@example.net"
    ]  # fmt: skip
    assert rows[1]["name"] == "'=Zoé Dupré"  # defused for spreadsheets, restored on import

    as_json = run(runner, settings, "export", "--format", "json", str(tmp_path / "all.json"))
    assert as_json.exit_code == 0
    data = json.loads((tmp_path / "all.json").read_text(encoding="utf-8"))
    shown = listed(runner, settings)
    for record in data:
        row = shown[record["email"]]
        for field in ("name", "language", "topics", "cadence", "status", "created_at"):
            assert record[field] == row[field], field
        assert record["consent"]["source"] == "cli"

    saved = tmp_path / "all.csv"
    assert run(runner, settings, "export", str(saved)).exit_code == 0
    before = saved.read_text(encoding="utf-8")
    for row in rows:
        assert run(runner, settings, "remove", row["email"]).exit_code == 0
    assert listed(runner, settings) == {}

    imported = run(runner, settings, "import", str(saved), "--confirmed")
    assert imported.output.splitlines()[:2] == [
        "imported 3, skipped 1",
        "  line 5: lee@example.net has status 'pending'; only confirmed subscribers are imported",
    ]
    assert run(runner, settings, "export", str(saved)).exit_code == 0
    lines = before.splitlines()
    assert saved.read_text(encoding="utf-8").splitlines() == lines[:-1]


def test_list_shows_statuses_and_filters(runner: CliRunner, settings: Settings) -> None:
    empty = run(runner, settings, "list")
    assert empty.exit_code == 0 and "no subscribers" in empty.output
    assert run(runner, settings, "add", "max@example.net", "--confirmed").exit_code == 0
    assert run(runner, settings, "add", "nina@example.net").exit_code == 0
    assert run(runner, settings, "add", "olga@example.net", "--confirmed").exit_code == 0
    assert run(runner, settings, "remove", "olga@example.net", "--unsubscribe").exit_code == 0

    table = run(runner, settings, "list")
    assert table.exit_code == 0
    status_of = {line.split()[0]: line.split()[1] for line in table.output.splitlines()[1:-1]}
    assert status_of == {
        "max@example.net": "confirmed",
        "nina@example.net": "pending",
        "olga@example.net": "unsubscribed",
    }
    assert table.output.splitlines()[-1] == (
        "3 subscribers (1 confirmed, 1 pending, 1 unsubscribed)"
    )
    pending = run(runner, settings, "list", "--status", "pending")
    assert "nina@example.net" in pending.output and "max@example.net" not in pending.output
    assert set(listed(runner, settings, "--status", "confirmed")) == {"max@example.net"}


def test_remove_and_what_may_come_back(runner: CliRunner, settings: Settings) -> None:
    assert run(runner, settings, "add", "typo@example.net", "--confirmed").exit_code == 0
    removed = run(runner, settings, "remove", "typo@example.net")
    assert removed.exit_code == 0 and "may be added again" in removed.output
    assert "typo@example.net" not in listed(runner, settings)
    assert run(runner, settings, "add", "typo@example.net", "--confirmed").exit_code == 0

    for how in ("--erase", "--unsubscribe"):
        address = f"leaver{how}@example.net"
        assert run(runner, settings, "add", address, "--confirmed").exit_code == 0
        assert run(runner, settings, "remove", address, how).exit_code == 0
        again = run(runner, settings, "add", address)
        assert again.exit_code == 1
        assert f"Error: {address} is suppressed" in again.output
        assert "never re-added" in again.output
    assert "leaver--erase@example.net" not in listed(runner, settings)
    assert listed(runner, settings)["leaver--unsubscribe@example.net"]["status"] == "unsubscribed"
    assert outbox(settings) == []

    unknown = run(runner, settings, "remove", "nobody@example.net")
    assert unknown.exit_code == 1
    assert "Error: nobody@example.net is not on the list" in unknown.output
    erased = run(runner, settings, "remove", "leaver--erase@example.net")
    assert erased.exit_code == 1 and "was erased on" in erased.output


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ('[subscribers]\nsuppression_key = "k"\n', "secret_key"),
        ('[web]\nsecret_key = "k"\n', "suppression_key"),
    ],
)
def test_a_missing_secret_stops_before_anything_is_stored(
    runner: CliRunner, make_settings: Any, extra: str, key: str
) -> None:
    settings: Settings = make_settings(extra)
    result = run(runner, settings, "add", "pat@example.net")
    assert result.exit_code == 1
    assert result.output.startswith("Error: [")
    assert key in result.output
    assert listed(runner, settings) == {}
    assert outbox(settings) == []


def test_every_command_has_help(runner: CliRunner) -> None:
    for command in ("add", "import", "export", "list", "remove"):
        result = runner.invoke(cli, ["subscribers", command, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output


# --- the confirmation mail itself ---------------------------------------------------------

ENV = make_environment(None)
CONFIRM = "https://digest.example.org/{}/confirm/AbCdEfGhIjKlMnOpQrStUv.aB3dE.signature_-x"


@pytest.mark.parametrize(
    ("language", "subject", "button", "ignore"),
    [
        (
            "nl",
            "Bevestig je inschrijving op Cities & Migration Digest",
            "Bevestig je inschrijving",
            "Heb je hier niet om gevraagd? Negeer deze e-mail dan",
        ),
        (
            "fr",
            "Confirmez votre abonnement à Cities & Migration Digest",
            "Confirmer mon abonnement",
            "Si vous n’avez rien demandé, ignorez cet e-mail\u00a0:",
        ),
    ],
)
def test_render_confirmation_is_translated(
    language: str, subject: str, button: str, ignore: str
) -> None:
    url = CONFIRM.format(language)
    rendered = render_confirmation(
        title="Cities & Migration Digest", language=language, confirm_url=url, env=ENV
    )
    assert rendered.language == language
    assert rendered.subject == subject
    tree: lxml_html.HtmlElement = lxml_html.document_fromstring(rendered.html)
    assert tree.get("lang") == language
    assert tree.findtext(".//title") == subject
    links = {a.get("href") for a in tree.iter("a")}
    assert links == {url}
    assert links_named(tree, button)
    assert ignore in squeeze(tree.text_content())
    colon = "\u00a0:" if language == "fr" else ":"  # French spaces its colons
    assert f"{button}{colon}\n{url}\n" in rendered.text
    assert ignore in squeeze(rendered.text)
    assert "Confirm your subscription" not in rendered.html + rendered.text
    assert "<style" in rendered.html and 'style="' in rendered.html  # inlined by premailer


def test_build_notice_keeps_lines_short_and_the_payload_stuffed() -> None:
    long_url = "https://digest.example.org/en/confirm/" + "x" * 3000
    rendered = render_confirmation(
        title="Cités & Migration Digest", language="en", confirm_url=long_url, env=ENV
    )
    rendered = type(rendered)(
        language="en",
        subject=rendered.subject,
        preheader=rendered.preheader,
        html=rendered.html,
        text=".starts with a dot\r\n" + rendered.text,
    )
    data = build_notice(
        rendered,
        sender="Cités & Migration <digest@example.org>",
        to_address="quinn@example.net",
        to_name="Quinn Émile",
        message_id="confirm.test",
        date=datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
        envelope_from="bounces+quinn=example.net@example.org",
    )
    assert data.endswith(b"\r\n.\r\n")
    message_bytes = unstuff(data)
    assert all(len(line) <= 78 for line in message_bytes.split(b"\r\n"))
    message = email.message_from_bytes(message_bytes, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert message["From"] == "Cités & Migration <digest@example.org>"
    assert message["To"] == "Quinn Émile <quinn@example.net>"
    assert message["Date"] == "Mon, 23 Nov 2026 09:00:00 +0000"
    assert message["Message-ID"] == "<confirm.test@example.org>"
    assert body(message, "plain").startswith(".starts with a dot\n")
    assert long_url in body(message, "plain") and long_url in body(message, "html")
    with pytest.raises(ValueError, match="message_id"):
        build_notice(
            rendered, sender="digest@example.org", to_address="quinn@example.net", to_name="",
            message_id="x@y", date=datetime.now(UTC), envelope_from="b@example.org",
        )  # fmt: skip
