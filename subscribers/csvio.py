"""CSV import and export of the subscriber list, and the JSON export.

The import format (what `digest subscribers import FILE.csv` reads):

- a header row is required; its columns are `email,name,language,topics,cadence` in any
  order and any case. Only `email` is required; an empty language means the default one,
  an empty cadence means weekly. Other columns are ignored and listed in the report, except
  `status` (written by `export_csv`): rows whose status is not "confirmed" are refused.
- topics are separated by `;` or `|` inside their cell (`governance;housing`), since the
  comma separates cells; a value containing a comma must be quoted, as CSV does.
- UTF-8, with or without a byte-order mark; LF or CRLF line ends; blank lines are skipped.

Imported rows are confirmed at once, with consent source "import": an import is the
operator's existing list, whose consent they collected and vouch for (`consent_version`
records which text). No confirmation mail goes out. Each bad row is reported with its line
number and reason, and every other row is imported; the caller commits.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from sqlalchemy.orm import Session

from subscribers import registry
from subscribers.addresses import normalize
from subscribers.errors import CsvFormatError, InvalidField, SubscriberError
from subscribers.model import ConsentSource, SubscriberStatus
from subscribers.preferences import check_language

COLUMNS = ("email", "name", "language", "topics", "cadence")
EXPORT_COLUMNS = (*COLUMNS, "status")
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


def _read_header(cells: list[str]) -> dict[str, int]:
    names = [cell.strip().lstrip("\ufeff").strip().lower() for cell in cells]
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
    imported subscribers are pending until they confirm.

    Raises `CsvFormatError` only when the file has no usable header.
    """
    if not languages:
        raise ValueError("the publication has no languages; set [publication] languages")
    default = check_language(default_language or languages[0], languages)
    report = ImportReport()
    reader = csv.reader(stream)
    header: dict[str, int] | None = None
    seen: dict[str, int] = {}
    next_line = 1
    for cells in reader:
        # reader.line_num counts physical lines read, so a quoted newline does not shift us.
        line, next_line = next_line, reader.line_num + 1
        if not any(cell.strip() for cell in cells):
            continue
        if header is None:
            header = _read_header(cells)
            report.ignored_columns = [name for name in header if name not in EXPORT_COLUMNS]
            continue
        rejected = _import_row(
            session,
            cells,
            header,
            line,
            seen,
            now=now,
            languages=languages,
            default=default,
            suppression_key=suppression_key,
            confirmed=confirmed,
            consent_version=consent_version,
        )
        if rejected is None:
            report.imported += 1
        else:
            report.rejected.append(rejected)
    if header is None:
        raise CsvFormatError(f"the CSV is empty; it needs a header row: {','.join(COLUMNS)}")
    return report


def _import_row(
    session: Session,
    cells: list[str],
    header: dict[str, int],
    line: int,
    seen: dict[str, int],
    *,
    now: datetime,
    languages: Sequence[str],
    default: str,
    suppression_key: bytes,
    consent_version: str,
    confirmed: bool,
) -> RejectedRow | None:
    """Import one data row; return why it was rejected, or None when it went in."""

    def cell(name: str) -> str:
        index = header.get(name)
        return _restore(cells[index]) if index is not None and index < len(cells) else ""

    email = cell("email")
    if len(cells) > len(header):
        return RejectedRow(
            line,
            email,
            f"{email}: {len(cells)} cells but the header has {len(header)}; "
            "quote values that contain a comma",
        )
    status = cell("status").lower()
    if status and status != SubscriberStatus.CONFIRMED:
        return RejectedRow(
            line, email, f"{email} has status {status!r}; only confirmed subscribers are imported"
        )
    try:
        address = normalize(email)
        if address in seen:
            return RejectedRow(line, email, f"{address} is a duplicate of line {seen[address]}")
        registry.add(
            session,
            address,
            name=cell("name"),
            language=cell("language") or default,
            topics=_TOPIC_SEPARATORS.split(cell("topics")),
            cadence=cell("cadence") or "weekly",
            source=ConsentSource.IMPORT,
            consent_version=consent_version,
            confirmed=confirmed,
            now=now,
            languages=languages,
            suppression_key=suppression_key,
        )
    except InvalidField as exc:
        return RejectedRow(line, email, f"{email}: {exc}")
    except SubscriberError as exc:
        return RejectedRow(line, email, str(exc))
    seen[address] = line
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
