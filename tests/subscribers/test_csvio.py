"""CSV import and export: bad rows reported by line while the rest import; exports round-trip."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from subscribers import csvio, model, registry, suppression
from subscribers.errors import CsvFormatError
from subscribers.model import Cadence, ConsentSource, Subscriber, SubscriberStatus
from tests.subscribers.common import KEY, LANGUAGES, NOW, add

NEVER = "addresses that left the list are never re-added"


def run_import(
    session: Session, text: str, *, default_language: str | None = None
) -> csvio.ImportReport:
    # newline="" as for a real file: the csv module sees CRLF and quoted newlines as they are.
    return csvio.import_csv(
        session,
        io.StringIO(text, newline=""),
        now=NOW,
        languages=LANGUAGES,
        suppression_key=KEY,
        default_language=default_language,
        consent_version="list-2025",
    )


def emails(session: Session) -> list[str]:
    return list(session.scalars(sa.select(Subscriber.email).order_by(Subscriber.id)))


def rejections(report: csvio.ImportReport) -> list[tuple[int, str]]:
    return [(row.line, row.reason) for row in report.rejected]


def test_a_clean_file_with_bom_crlf_quotes_and_blank_lines(db: Session) -> None:
    text = (
        "\ufeffEmail,Name,Language,Topics,Cadence\r\n"
        '"Alice@Example.org","Jansen, Alice",nl,governance;Housing,weekly\r\n'
        "\r\n"
        "bob@example.org,Bob,,labour|housing | ,DAILY\r\n"
        ",,,,\r\n"
        "carol@example.org,,fr,,\r\n"
    )
    report = run_import(db, text)
    assert (report.imported, report.rejected, report.ignored_columns) == (3, [], [])
    alice, bob, carol = db.scalars(sa.select(Subscriber).order_by(Subscriber.id))
    assert (alice.email, alice.name, alice.language) == ("alice@example.org", "Jansen, Alice", "nl")
    assert alice.topics == ["governance", "housing"]
    assert (bob.language, bob.topics, bob.cadence) == ("en", ["labour", "housing"], Cadence.DAILY)
    assert (carol.topics, carol.cadence) == ([], Cadence.WEEKLY)
    for subscriber in (alice, bob, carol):
        assert subscriber.status is SubscriberStatus.CONFIRMED, "an import is a consented list"
        assert subscriber.consent_source is ConsentSource.IMPORT
        assert (subscriber.consent_version, subscriber.consent_at) == ("list-2025", NOW)


def test_bad_rows_are_reported_by_line_and_the_rest_import(db: Session) -> None:
    unsubscribed = add(db, "gone@example.org", confirmed=True)
    registry.unsubscribe(db, unsubscribed, now=NOW - timedelta(days=30), suppression_key=KEY)
    registry.erase(db, add(db, "erased@example.org"), now=NOW, suppression_key=KEY)
    add(db, "member@example.org", confirmed=True)
    text = (
        "email,name,language,topics,cadence\n"  # 1
        "ok1@example.org,One,en,,weekly\n"  # 2
        "not-an-address,Nobody,en,,weekly\n"  # 3
        "ok2@example.org,Two,de,,weekly\n"  # 4
        "\n"  # 5
        "ok3@example.org,Three,fr,,monthly\n"  # 6
        "OK1@example.org,One again,en,,weekly\n"  # 7
        "member@example.org,Member,en,,weekly\n"  # 8
        "Gone@Example.org,Gone,en,,weekly\n"  # 9
        "erased@example.org,Erased,en,,weekly\n"  # 10
        'ok4@example.org,"Four\nLines",nl,,daily\n'  # 11-12
        "ok5@example.org,Smith, John,en,,weekly\n"  # 13
        "ok6@example.org,Six,nl,,\n"  # 14
        '"a@b.c\r\nBcc: x@y",Injected,en,,weekly\n'  # 15-16
        "ok7@example.org,Seven,en,,weekly\n"  # 17
    )
    report = run_import(db, text)
    assert rejections(report) == [
        (3, "'not-an-address' is not a usable email address: "
            "An email address must have an @-sign."),
        (4, "ok2@example.org: language 'de' is not one of this publication's: en, nl, fr"),
        (6, "ok3@example.org: cadence 'monthly' is not one of weekly, daily"),
        (7, "ok1@example.org is a duplicate of line 2"),
        (8, "member@example.org is already subscribed"),
        (9, f"gone@example.org is suppressed (unsubscribed on 2026-10-24); {NEVER}"),
        (10, f"erased@example.org is suppressed (erased on 2026-11-23); {NEVER}"),
        (13, "ok5@example.org: 6 cells but the header has 5; quote values that contain a comma"),
        (15, "'a@b.c\\r\\nBcc: x@y' contains line breaks or control characters (U+000A, U+000D); "
             "give exactly one address, nothing else"),
    ]  # fmt: skip
    assert str(report.rejected[1]).startswith("line 4: ok2@example.org: language 'de'")
    assert report.imported == 4
    assert emails(db) == [
        "gone@example.org",
        "member@example.org",
        "ok1@example.org",
        "ok4@example.org",
        "ok6@example.org",
        "ok7@example.org",
    ]
    four = registry.by_email(db, "ok4@example.org")
    assert four is not None and four.name == "Four Lines"
    assert report.summary() == "4 imported, 9 rejected"


def test_rows_missing_trailing_cells_use_the_defaults(db: Session) -> None:
    report = run_import(db, "email,name,language\nalice@example.org\nbob@example.org,Bob\n")
    assert report.imported == 2
    bob = registry.by_email(db, "bob@example.org")
    assert bob is not None and (bob.name, bob.language, bob.cadence) == ("Bob", "en", "weekly")


def test_default_language_is_a_parameter(db: Session) -> None:
    report = run_import(db, "email,language\nalice@example.org,\n", default_language="fr")
    alice = registry.by_email(db, "alice@example.org")
    assert report.imported == 1 and alice is not None and alice.language == "fr"
    with pytest.raises(ValueError, match="'de' is not one of"):
        run_import(db, "email\nbob@example.org\n", default_language="de")


def test_extra_columns_are_reported_and_ignored(db: Session) -> None:
    text = "email,Organisation,name,phone\nalice@example.org,City of Mechelen,Alice,0123\n"
    report = run_import(db, text)
    assert report.imported == 1
    assert report.ignored_columns == ["organisation", "phone"]
    assert report.summary() == "1 imported, 0 rejected; ignored columns: organisation, phone"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("alice@example.org,Alice,en\nbob@example.org,Bob,en\n", "looks like data, not a header"),
        ("name,language\nAlice,en\n", "needs a header row naming its columns"),
        ("", "the CSV is empty"),
        ("\n\n", "the CSV is empty"),
        ("email,name,Email\na@example.org,A,b@example.org\n", "names email more than once"),
    ],
)
def test_a_file_without_a_usable_header_is_refused(db: Session, text: str, message: str) -> None:
    with pytest.raises(CsvFormatError, match=message):
        run_import(db, text)
    assert emails(db) == []


def test_only_confirmed_rows_of_an_export_are_imported(db: Session) -> None:
    text = (
        "email,name,language,topics,cadence,status\n"
        "alice@example.org,Alice,en,,weekly,confirmed\n"
        "bob@example.org,Bob,en,,weekly,pending\n"
    )
    report = run_import(db, text)
    assert report.imported == 1
    assert rejections(report) == [
        (3, "bob@example.org has status 'pending'; only confirmed subscribers are imported")
    ]


def fill(session: Session) -> None:
    add(session, "alice@example.org", name="Jansen, Alice", language="nl", confirmed=True,
        topics=["governance", "housing"])  # fmt: skip
    add(session, "bob@bücher.de", name='Bob "the" Builder', cadence="daily", confirmed=True)
    add(session, "carol@example.org", name='=HYPERLINK("http://evil.example")', confirmed=True)
    add(session, "dave@example.org", name="Dave")
    gone = add(session, "erin@example.org", confirmed=True)
    registry.unsubscribe(session, gone, now=NOW, suppression_key=KEY)


def test_csv_export_round_trips_through_import(db: Session) -> None:
    fill(db)
    out = io.StringIO(newline="")
    assert csvio.export_csv(db, out) == 5
    exported = out.getvalue()
    lines = exported.splitlines()
    assert lines[0] == "email,name,language,topics,cadence,status"
    assert lines[1] == 'alice@example.org,"Jansen, Alice",nl,governance;housing,weekly,confirmed'
    assert (
        lines[3] == 'carol@example.org,"\'=HYPERLINK(""http://evil.example"")",en,,weekly,confirmed'
    )

    before = {s.email: (s.name, s.language, s.topics, s.cadence) for s in confirmed(db)}
    db.execute(sa.delete(Subscriber))
    report = run_import(db, exported)
    assert report.imported == 3
    assert [row.line for row in report.rejected] == [5, 6]  # pending dave, unsubscribed erin
    after = {s.email: (s.name, s.language, s.topics, s.cadence) for s in confirmed(db)}
    assert after == before
    assert after["carol@example.org"][0] == '=HYPERLINK("http://evil.example")'


def confirmed(session: Session) -> list[Subscriber]:
    query = sa.select(Subscriber).where(Subscriber.status == SubscriberStatus.CONFIRMED)
    return list(session.scalars(query))


def test_json_export_is_everyone_s_data(db: Session) -> None:
    fill(db)
    out = io.StringIO()
    assert csvio.export_json(db, out) == 5
    data = json.loads(out.getvalue())
    expected = [
        registry.export(s) for s in db.scalars(sa.select(Subscriber).order_by(Subscriber.id))
    ]
    assert data == expected
    assert data[1]["email"] == "bob@xn--bcher-kva.de"
    assert data[4]["status"] == "unsubscribed"


def test_exports_of_an_empty_list_are_valid(db: Session) -> None:
    csv_out, json_out = io.StringIO(), io.StringIO()
    assert csvio.export_csv(db, csv_out) == 0
    assert csvio.export_json(db, json_out) == 0
    assert csv_out.getvalue() == "email,name,language,topics,cadence,status\r\n"
    assert json.loads(json_out.getvalue()) == []


def _large_csv() -> str:
    """2,600 rows crossing batch boundaries: duplicates of earlier batches, rows that left
    the old list and come back later, bad addresses, bad fields, people already known."""
    lines = ["email,name,language,status"]
    for number in range(2600):
        email, language, status = f"person{number}@example.org", "nl", ""
        if number % 97 == 0:
            email = f"person{number // 2}@example.org"  # a duplicate, sometimes of a later row
        elif number % 101 == 0:
            email = f"not an address {number}"
        elif number % 103 == 0:
            language = "de"
        elif number % 89 == 0:
            status = "unsubscribed"
        elif number % 83 == 0:
            email = f"person{number - 1001}@example.org"  # a row of the previous batch
            status = "cleaned"
        elif number == 1500:
            email = "person178@example.org"  # suppressed by row 178 in the first batch
        lines.append(f"{email},Person {number},{language},{status}")
    lines.append("Known@Example.org,Known,en,")
    lines.append("gone@example.org,Gone,en,")
    return "\n".join(lines) + "\n"


def _import_large(session: Session) -> tuple[list[tuple[int, str]], list[tuple[object, ...]], int]:
    session.execute(sa.delete(Subscriber))
    session.execute(sa.delete(model.Suppression))
    add(session, "known@example.org")
    registry.unsubscribe(session, add(session, "gone@example.org"), now=NOW, suppression_key=KEY)
    report = run_import(session, _large_csv())
    rows = session.execute(
        sa.select(
            Subscriber.email,
            Subscriber.name,
            Subscriber.language,
            Subscriber.status,
            Subscriber.consent_source,
            Subscriber.confirmed_at,
        ).order_by(Subscriber.email)
    ).all()
    hashes = session.scalars(
        sa.select(model.Suppression.address_hash).order_by(model.Suppression.address_hash)
    ).all()
    return rejections(report), [tuple(row) for row in rows], len(hashes)


def test_a_large_import_in_batches_matches_adding_row_by_row(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    batched = _import_large(db)
    monkeypatch.setattr(csvio, "BATCH", 1)  # each row looked up after the one before went in
    one_by_one = _import_large(db)
    assert batched == one_by_one
    rejected, rows, suppressed = batched
    reasons = dict(rejected)
    assert len(rows) == 2 + 2600 - len(rejected) + 2  # known and gone, plus the two at the end
    assert reasons[293] == "person145@example.org is a duplicate of line 147"  # row 291
    assert "is suppressed (unsubscribed" in reasons[1502]  # row 1500: left the list in row 178
    assert reasons[2602] == "known@example.org is already subscribed"
    assert "gone@example.org is suppressed" in reasons[2603]
    assert reasons[105].startswith("person103@example.org: ") and "'de'" in reasons[105]
    assert "in the file: not imported" in reasons[2326]  # row 2324: person1323, cleaned
    held = set(db.scalars(sa.select(model.Suppression.address_hash)))
    # A row that left the old list suppresses its address, unless it was imported already.
    assert suppression.address_hash("person178@example.org", KEY) in held
    assert suppression.address_hash("person1323@example.org", KEY) not in held
    assert suppressed > 20


def test_opt_in_addresses_are_kept_as_ipaddress_writes_them() -> None:
    import ipaddress

    def reference(value: str) -> str | None:
        try:
            return str(ipaddress.ip_address(value.strip())) if value.strip() else None
        except ValueError:
            return None

    octets = [str(n) for n in (0, 1, 9, 10, 99, 100, 199, 200, 249, 250, 255, 256, 300)]
    octets += ["00", "01", "010", "001", "٣", "", " 1", "1a"]
    values = [f"{a}.{b}.2.{a}" for a in octets for b in ("0", "255", "07")]
    values += ["::1", "2001:DB8::1", " 192.0.2.1 ", "192.0.2.1\n", "192.0.2", "1.2.3.4.5", ""]
    for value in values:
        assert csvio._ip(value) == reference(value), value


def test_names_are_cleaned_alike_on_the_plain_and_the_careful_path() -> None:
    from subscribers.preferences import clean_name

    assert clean_name("  Ada   Lovelace ") == "Ada Lovelace"
    assert clean_name("") == ""
    assert clean_name("Ada\tLovelace") == "Ada Lovelace"  # a tab is a control character
    assert clean_name("Ada\x00Lovelace") == "Ada Lovelace"
    assert clean_name("Ade\u0301la\u202e") == "Adéla"  # NFC, bidi override dropped
