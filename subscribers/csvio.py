"""CSV import and export of the subscriber list, and the JSON export.

The import format (what `digest subscribers import FILE.csv --confirmed` reads):

- a header row is required; its columns are `email,name,language,topics,cadence` in any
  order and any case, plus what keeps the consent record: `consent_at` (when they opted
  in), `confirmed_at`, `consent_ip`, `consent_source` (free text: where they signed up).
  Only `email` is required; an empty language means the default one, an empty cadence
  means weekly. Other columns are ignored and listed in the report.
- the exports of other tools are read as they come (`ALIASES`): Mailchimp ("Email
  Address", "First Name", "Last Name", OPTIN_TIME, OPTIN_IP, CONFIRM_TIME, CONFIRM_IP;
  its unsubscribed and cleaned exports by their UNSUB_TIME and CLEAN_TIME columns) and
  listmonk (email, name, status, created_at). A `status` column decides per row:
  confirmed/subscribed/enabled rows are imported; unsubscribed, cleaned, bounced,
  blocklisted and complained ones are not imported but their addresses are suppressed, so
  no later add brings them back; pending/unconfirmed/disabled ones are refused (nobody
  knows they agreed).
- cells are separated by commas, or by semicolons as Excel writes CSV in Belgian, Dutch
  and French locales (the header line decides); topics inside a cell by `;` or `|`.
- UTF-8 (with or without a byte-order mark), or Windows-1252 as Excel saves "CSV" on
  Windows (the caller decodes: `decode`); LF or CRLF; blank lines are skipped. Times are
  ISO 8601 or day/month/year as Excel writes them in those locales; without a zone, UTC.

Imported rows are confirmed at once, with consent source "import": an import is the
operator's existing list, whose consent they collected and vouch for (`consent_version`
records which text, `consent_at`/`consent_ip` what the old list knew). No confirmation
mail goes out. Each bad row is reported with its line number and reason, and every other
row is imported; the caller commits.
"""

from __future__ import annotations

import csv
import ipaddress
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from subscribers import registry, suppression
from subscribers.addresses import normalize
from subscribers.errors import CsvFormatError, Duplicate, InvalidField, SubscriberError
from subscribers.model import ConsentSource, Subscriber, Suppression, SuppressionReason
from subscribers.preferences import check_language

COLUMNS = ("email", "name", "language", "topics", "cadence")
CONSENT_COLUMNS = ("consent_at", "confirmed_at", "consent_ip", "consent_source")
EXPORT_COLUMNS = (*COLUMNS, "status")
KNOWN_COLUMNS = (*EXPORT_COLUMNS, *CONSENT_COLUMNS, "first_name", "last_name", "left_at")
ALIASES = {
    # Mailchimp
    "email address": "email",
    "first name": "first_name",
    "last name": "last_name",
    "optin_time": "consent_at",
    "optin_ip": "consent_ip",
    "confirm_time": "confirmed_at",
    "confirm_ip": "consent_ip_confirmed",
    "unsub_time": "left_at",
    "clean_time": "cleaned_at",
    # listmonk
    "created_at": "consent_at",
    # common spellings
    "e-mail": "email",
    "e-mail address": "email",
    "mail": "email",
    "e-mailadres": "email",
    "adresse e-mail": "email",
    "naam": "name",
    "nom": "name",
    "source": "consent_source",
    "signup_source": "consent_source",
    "ip": "consent_ip",
    "ip_address": "consent_ip",
    "opt_in_time": "consent_at",
    "subscribed_at": "consent_at",
}
_IMPORTED = {"", "confirmed", "subscribed", "enabled", "active"}
_SUPPRESSED = {
    "unsubscribed": SuppressionReason.UNSUBSCRIBED,
    "blocklisted": SuppressionReason.UNSUBSCRIBED,
    "blacklisted": SuppressionReason.UNSUBSCRIBED,
    "cleaned": SuppressionReason.BOUNCED,
    "bounced": SuppressionReason.BOUNCED,
    "complained": SuppressionReason.COMPLAINED,
}
_TOPIC_SEPARATORS = re.compile(r"[;|]")
# Spreadsheets run a cell starting with these as a formula; export prefixes them with "'".
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class RejectedRow:
    """A CSV row that was not imported: where it is and why."""

    line: int
    email: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class ImportReport:
    """What an import did: how many rows went in, which did not, which columns were ignored."""

    imported: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """Return a one-line account of the import."""
        ignored = (
            f"; ignored columns: {', '.join(self.ignored_columns)}" if self.ignored_columns else ""
        )
        return f"{self.imported} imported, {len(self.rejected)} rejected{ignored}"


def _defuse(cell: str) -> str:
    return f"'{cell}" if cell.startswith(_FORMULA_START) else cell


def _restore(cell: str) -> str:
    cell = cell.strip()
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(_FORMULA_START) else cell


def decode(data: bytes) -> tuple[str, str]:
    """Return (text, encoding) of a CSV file: UTF-8 (a byte-order mark is dropped), else
    Windows-1252 as Excel saves "CSV" on Windows. Raises UnicodeDecodeError for neither."""
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        text = data.decode("cp1252")  # raises for the 5 bytes cp1252 leaves undefined
        return text, "windows-1252"


def delimiter_of(first_line: str) -> str:
    """Return the cell separator the header line uses: "," or ";" (or a tab)."""
    counts = {sep: first_line.count(sep) for sep in (",", ";", "\t")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def _column(name: str) -> str:
    """Return our name of a header cell ("Email Address" → "email", "OPTIN_TIME" →
    "consent_at")."""
    key = " ".join(name.strip().lstrip("\ufeff").strip().lower().split())
    if key in ALIASES:
        return ALIASES[key]
    key = key.replace(" ", "_")
    return ALIASES.get(key, key)


_DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S.%f%z", "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z",
    "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M", "%Y-%m-%d", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y",
    "%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M", "%d-%m-%Y", "%d.%m.%Y %H:%M", "%d.%m.%Y",
)  # fmt: skip


def parse_time(value: str) -> datetime | None:
    """Return an imported time as aware UTC (no zone given: UTC); None for an empty cell.
    Raises InvalidField for a value that is not a time."""
    text = value.strip()
    if not text:
        return None
    text = text.replace("Z", "+00:00") if text.endswith("Z") else text
    try:
        found = datetime.fromisoformat(text)
    except ValueError:
        found = None
        for pattern in _DATE_FORMATS:
            try:
                found = datetime.strptime(text, pattern)
                break
            except ValueError:
                continue
    if found is None:
        raise InvalidField(
            "time", f"{value!r} is not a time (use ISO 8601, e.g. 2024-03-01 09:30:00)"
        )
    return found.replace(tzinfo=UTC) if found.tzinfo is None else found.astimezone(UTC)


def _read_header(cells: list[str]) -> dict[str, int]:
    names = [_column(cell) for cell in cells]
    if "email" not in names:
        looks_like_data = any("@" in name for name in names)
        raise CsvFormatError(
            ("the first line looks like data, not a header; " if looks_like_data else "")
            + f"the CSV needs a header row naming its columns, such as {','.join(COLUMNS)} "
            f"(found {','.join(cells)!r})"
        )
    repeated = sorted({name for name in names if name and names.count(name) > 1})
    if repeated:
        raise CsvFormatError(f"the CSV header names {', '.join(repeated)} more than once")
    return {name: index for index, name in enumerate(names) if name}


BATCH = 1000
"""Rows validated, looked up and inserted together: one query per batch, not per row."""


@dataclass
class _Row:
    """One data row, validated without the database; `_Batch.apply` decides the rest."""

    line: int
    email: str
    address: str = ""
    rejected: RejectedRow | None = None  # refused whatever the list holds
    suppress: str = ""  # the status that suppresses this address (a row that left)
    problem: str = ""  # a bad field, reported unless the row is a duplicate of an earlier one
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Batch:
    """Up to `BATCH` rows: their suppressions and the subscribers already listed are read
    in one query each, then the rows are decided in file order and inserted in bulk."""

    now: datetime
    key: bytes
    rows: list[_Row] = field(default_factory=list)

    def apply(self, session: Session, seen: dict[str, int], report: ImportReport) -> None:
        if not self.rows:
            return
        hashes = {
            row.address: suppression.normalized_hash(row.address, self.key)
            for row in self.rows
            if row.address
        }
        suppressed = {
            found.address_hash: (found.reason, found.created_at)
            for found in session.execute(
                sa.select(
                    Suppression.address_hash, Suppression.reason, Suppression.created_at
                ).where(Suppression.address_hash.in_(set(hashes.values())))
            )
        }
        listed = set(
            session.scalars(sa.select(Subscriber.email).where(Subscriber.email.in_(set(hashes))))
        )
        added: list[dict[str, Any]] = []
        suppressing: list[dict[str, Any]] = []
        for row in self.rows:
            rejected = row.rejected or self._decide(row, hashes, suppressed, listed, seen)
            if rejected is not None:
                report.rejected.append(rejected)
                if row.suppress and row.address not in listed and row.address not in seen:
                    hashed = hashes[row.address]
                    if hashed not in suppressed:
                        reason = _SUPPRESSED[row.suppress]
                        suppressed[hashed] = (reason, self.now)
                        suppressing.append(
                            {"address_hash": hashed, "reason": reason, "created_at": self.now}
                        )
                continue
            seen[row.address] = row.line
            added.append(row.values)
            report.imported += 1
        # Core inserts (executemany): the ORM's bulk path costs as much again per row.
        connection = session.connection()
        if suppressing:
            connection.execute(sa.insert(cast(sa.Table, Suppression.__table__)), suppressing)
        if added:
            connection.execute(sa.insert(cast(sa.Table, Subscriber.__table__)), added)
        self.rows = []

    @staticmethod
    def _decide(
        row: _Row,
        hashes: dict[str, str],
        suppressed: dict[str, tuple[SuppressionReason, datetime]],
        listed: set[str],
        seen: dict[str, int],
    ) -> RejectedRow | None:
        """Return why `row` is not imported, checked in the order a single add checks."""
        address = row.address
        if row.suppress:
            return RejectedRow(
                row.line,
                row.email,
                f"{address} is {row.suppress} in the file: not imported, and suppressed so "
                "that no later add or import brings it back",
            )
        if address in seen:
            return RejectedRow(
                row.line, row.email, f"{address} is a duplicate of line {seen[address]}"
            )
        if row.problem:
            return RejectedRow(row.line, row.email, row.problem)
        found = suppressed.get(hashes[address])
        if found is not None:
            return RejectedRow(row.line, row.email, str(registry.suppressed_error(address, *found)))
        if address in listed:
            return RejectedRow(
                row.line, row.email, str(Duplicate(f"{address} is already subscribed"))
            )
        return None


def import_csv(
    session: Session,
    stream: TextIO,
    *,
    now: datetime,
    languages: Sequence[str],
    suppression_key: bytes,
    default_language: str | None = None,
    consent_version: str,
    confirmed: bool = True,
) -> ImportReport:
    """Import subscribers from CSV text; bad rows are reported by line, the rest go in.

    `confirmed` says the operator holds their consent (the default); without it the
    imported subscribers are pending until they confirm. Rows are validated and inserted
    in batches of `BATCH` (two lookups and two bulk inserts per batch), with the same
    outcome, row by row, as adding them one at a time in file order.

    Raises `CsvFormatError` only when the file has no usable header.
    """
    if not languages:
        raise ValueError("the publication has no languages; set [publication] languages")
    if not suppression_key:
        raise ValueError("the suppression key is empty; configure a long random secret")
    default = check_language(default_language or languages[0], languages)
    report = ImportReport()
    first = stream.readline()
    stream.seek(0)
    reader = csv.reader(stream, delimiter=delimiter_of(first))
    header: dict[str, int] | None = None
    seen: dict[str, int] = {}
    batch = _Batch(now=now, key=suppression_key)
    next_line = 1
    for cells in reader:
        # reader.line_num counts physical lines read, so a quoted newline does not shift us.
        line, next_line = next_line, reader.line_num + 1
        if not any(cell.strip() for cell in cells):
            continue
        if header is None:
            header = _read_header(cells)
            report.ignored_columns = [name for name in header if name not in KNOWN_COLUMNS]
            continue
        batch.rows.append(
            _read_row(
                cells,
                header,
                line,
                now=now,
                languages=languages,
                default=default,
                consent_version=consent_version,
                confirmed=confirmed,
            )
        )
        if len(batch.rows) >= BATCH:
            batch.apply(session, seen, report)
    batch.apply(session, seen, report)
    if header is None:
        raise CsvFormatError(f"the CSV is empty; it needs a header row: {','.join(COLUMNS)}")
    return report


def _read_row(
    cells: list[str],
    header: dict[str, int],
    line: int,
    *,
    now: datetime,
    languages: Sequence[str],
    default: str,
    consent_version: str,
    confirmed: bool,
) -> _Row:
    """Validate one data row without the database."""

    given = {name: _restore(cells[index]) for name, index in header.items() if index < len(cells)}

    def cell(name: str) -> str:
        return given.get(name, "")

    email = cell("email")
    row = _Row(line, email)
    if len(cells) > len(header):
        row.rejected = RejectedRow(
            line,
            email,
            f"{email}: {len(cells)} cells but the header has {len(header)}; "
            "quote values that contain a comma",
        )
        return row
    status = cell("status").lower()
    if cell("left_at"):
        status = "unsubscribed"  # a Mailchimp export of people who unsubscribed
    elif cell("cleaned_at"):
        status = "cleaned"
    if status not in _SUPPRESSED and status not in _IMPORTED:
        row.rejected = RejectedRow(
            line,
            email,
            f"{email} has status {status!r}; only confirmed subscribers are imported",
        )
        return row
    try:
        row.address = normalize(email)
    except SubscriberError as exc:
        row.rejected = RejectedRow(line, email, str(exc))
        return row
    if status in _SUPPRESSED:
        row.suppress = status
        return row
    try:
        consent_at = parse_time(cell("consent_at"))
        confirmed_at = parse_time(cell("confirmed_at"))
        name = cell("name") or " ".join(
            part for part in (cell("first_name"), cell("last_name")) if part
        )
        row.values = registry.new_values(
            row.address,
            name=name,
            language=cell("language") or default,
            topics=_TOPIC_SEPARATORS.split(cell("topics")),
            cadence=cell("cadence") or "weekly",
            source=ConsentSource.IMPORT,
            consent_version=consent_version,
            confirmed=confirmed,
            now=now,
            languages=languages,
            consent_ip=_ip(cell("consent_ip") or cell("consent_ip_confirmed")),
            consent_at=consent_at or confirmed_at,
            confirmed_at=confirmed_at,
            consent_origin=cell("consent_source")[:200] or None,
        )
    except InvalidField as exc:
        row.problem = f"{email}: {exc}"
    except SubscriberError as exc:
        row.problem = str(exc)
    return row


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
"""A dotted quad as `ipaddress` accepts and writes it (no leading zeros): the common case."""


def _ip(value: str) -> str | None:
    """Return an imported opt-in IP address as given, or None when it is not one."""
    if _IPV4.fullmatch(value):
        return value
    try:
        return str(ipaddress.ip_address(value.strip())) if value.strip() else None
    except ValueError:
        return None


def export_csv(session: Session, stream: TextIO) -> int:
    """Write every subscriber as CSV in the import format (plus status); return how many.

    Open a file for it with `newline=""`, as the csv module asks.
    """
    writer = csv.writer(stream)
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    for subscriber in registry.iter_subscribers(session):
        row = (
            subscriber.email,
            subscriber.name,
            subscriber.language,
            ";".join(subscriber.topics),
            subscriber.cadence.value,
            subscriber.status.value,
        )
        writer.writerow([_defuse(value) for value in row])
        count += 1
    return count


def export_json(session: Session, stream: TextIO) -> int:
    """Write every subscriber's data (`registry.export`) as a JSON array; return how many."""
    count = 0
    stream.write("[")
    for subscriber in registry.iter_subscribers(session):
        stream.write(",\n" if count else "\n")
        stream.write(json.dumps(registry.export(subscriber), ensure_ascii=False))
        count += 1
    stream.write("\n]\n")
    return count
