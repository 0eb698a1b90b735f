"""The bounce mailbox the scheduler reads by itself ([bounces]): a Maildir on this machine,
or an IMAP folder over TLS.

Each message is applied with `returns.process` (the same as `digest bounces process`), then
moved aside so it is read once: in a Maildir to its `.processed` subfolder (Maildir++,
what Dovecot and mail clients show as a folder), or `.unreadable` when it cannot be parsed;
over IMAP to `[bounces] imap_processed_folder` (UID MOVE, or COPY + \\Deleted + EXPUNGE
where MOVE is not offered). A message whose processing failed (the database away) stays
where it is for the next run. Failures are raised as `BounceError` for the job to report
(and `digest status` to show).
"""

from __future__ import annotations

import imaplib
import os
import re
import ssl
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.errors import BounceError
from digest.pipeline import returns

PROCESSED, UNREADABLE = ".processed", ".unreadable"


@dataclass
class MailboxReport:
    """What one reading of the mailbox did."""

    where: str
    messages: int = 0
    bounces: int = 0
    complaints: int = 0
    unreadable: int = 0
    lines: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        """One line for the log."""
        return (
            f"{self.where}: {self.messages} messages, {self.bounces} bounces, "
            f"{self.complaints} complaints, {self.unreadable} unreadable"
        )


def configured(settings: Settings) -> bool:
    """Whether a bounce mailbox is set up."""
    return settings.bounces.maildir is not None or bool(settings.bounces.imap_host)


def read_mailbox(
    settings: Settings, factory: sessionmaker[Session], *, now: datetime
) -> MailboxReport:
    """Read the configured mailbox once; raise BounceError when it cannot be read."""
    if settings.bounces.maildir is not None:
        return _maildir(settings, factory, settings.bounces.maildir, now)
    return _imap(settings, factory, now)


def _tally(report: MailboxReport, found: returns.ReturnsReport) -> bool:
    """Add `found` to `report`; True when the message could be read."""
    report.messages += found.messages
    report.bounces += found.bounces
    report.complaints += found.complaints
    report.unreadable += found.errors
    report.lines += found.lines
    return not found.errors


def _subfolder(maildir: Path, name: str) -> Path:
    folder = maildir / name
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    (folder / "maildirfolder").touch()
    return folder


def _maildir(
    settings: Settings, factory: sessionmaker[Session], maildir: Path, now: datetime
) -> MailboxReport:
    report = MailboxReport(f"Maildir {maildir}")
    if not ((maildir / "new").is_dir() and (maildir / "cur").is_dir()):
        raise BounceError(
            f"[bounces] maildir {maildir} is not a Maildir (it needs cur/ and new/); "
            "point it at the folder the bounce address delivers to"
        )
    for sub in ("new", "cur"):
        for name in sorted(os.listdir(maildir / sub)):
            path = maildir / sub / name
            if not path.is_file():
                continue
            readable = _tally(report, returns.process(settings, factory, [path], now=now))
            target = _subfolder(maildir, PROCESSED if readable else UNREADABLE)
            seen = name if ":2," in name else f"{name}:2,S"
            os.replace(path, target / "cur" / seen)
    return report


def _imap(settings: Settings, factory: sessionmaker[Session], now: datetime) -> MailboxReport:
    box = settings.bounces
    where = f"IMAP {box.imap_username}@{box.imap_host}:{box.imap_port}/{box.imap_folder}"
    report = MailboxReport(where)
    try:
        context = ssl.create_default_context(
            cafile=str(box.imap_ca_file) if box.imap_ca_file else None
        )
        with imaplib.IMAP4_SSL(
            box.imap_host, box.imap_port, ssl_context=context, timeout=60
        ) as imap:
            imap.login(box.imap_username, box.imap_password.reveal())
            _ensure_folder(imap, box.imap_processed_folder)
            status, _ = imap.select(_quoted(box.imap_folder))
            if status != "OK":
                raise BounceError(f"{where}: the folder cannot be opened; check imap_folder")
            moving = "MOVE" in imap.capabilities
            _, found = imap.uid("SEARCH", "ALL")
            uids = found[0].split() if found and found[0] else []
            for uid in uids:
                _, parts = imap.uid("FETCH", uid, "(BODY.PEEK[])")
                raw = next(
                    (part[1] for part in parts if isinstance(part, tuple) and len(part) > 1),
                    None,
                )
                if raw is None:
                    continue
                with tempfile.TemporaryDirectory() as folder:
                    path = Path(folder) / f"imap-{uid.decode()}.eml"
                    path.write_bytes(raw)
                    _tally(report, returns.process(settings, factory, [path], now=now))
                target = _quoted(box.imap_processed_folder)
                if moving:
                    imap.uid("MOVE", uid, target)
                else:
                    imap.uid("COPY", uid, target)
                    imap.uid("STORE", uid, "+FLAGS.SILENT", r"(\Deleted)")
            if uids and not moving:
                imap.expunge()
    except (OSError, imaplib.IMAP4.error, ssl.SSLError) as exc:
        raise BounceError(
            f"{where} cannot be read: {exc}; check [bounces] imap_* and "
            "DIGEST_BOUNCES__IMAP_PASSWORD"
        ) from exc
    return report


def _quoted(folder: str) -> str:
    return '"' + re.sub(r'(["\\])', r"\\\1", folder) + '"'


def _ensure_folder(imap: imaplib.IMAP4, folder: str) -> None:
    status, listed = imap.list('""', _quoted(folder))
    if status == "OK" and listed and listed[0]:
        return
    imap.create(_quoted(folder))
