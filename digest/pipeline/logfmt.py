"""Readable structured logs: one line per event, as `key=value` pairs (logfmt) or JSON.

    time=2026-11-23T07:00:02.120Z level=info logger=digest.scheduling event=issue.sent
    job=issue-weekly issue=12 msg="issue #12 sent: 1200 sent, 0 failed, 0 bounced"

(one line in the log). A call site gives its fields with `extra=fields(...)`; lines from
other libraries (APScheduler) get time, level, logger and msg. Values with spaces, quotes
or newlines are quoted with JSON escapes, so every event stays on one line.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from digest.terminal import printable

FIELDS = "digest_fields"


def fields(**values: Any) -> dict[str, Any]:
    """Return the `extra=` of a log call carrying these key=value fields."""
    return {FIELDS: values}


def _plain(value: Any) -> Any:
    """A field value as JSON-friendly plain data."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, timedelta):
        return f"{value.total_seconds():g}s"
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _pairs(record: logging.LogRecord, formatter: logging.Formatter) -> dict[str, Any]:
    moment = datetime.fromtimestamp(record.created, UTC)
    pairs: dict[str, Any] = {
        "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": record.levelname.lower(),
        "logger": record.name,
    }
    for key, value in getattr(record, FIELDS, {}).items():
        plain = _plain(value)
        pairs[key] = printable(plain) if isinstance(plain, str) else plain
    # A feed title or a server's error text may hold escapes that would rewrite a terminal.
    pairs["msg"] = printable(record.getMessage())
    if record.exc_info:
        pairs["error"] = formatter.formatException(record.exc_info)
    return pairs


def _text(value: Any) -> str:
    if value is None:
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if not text or any(c in text for c in ' "=\\') or not text.isprintable():
        return json.dumps(text, ensure_ascii=False)
    return text


class KeyValueFormatter(logging.Formatter):
    """Format a record as one logfmt line: time, level, logger, fields, msg."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{key}={_text(value)}" for key, value in _pairs(record, self).items())


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_pairs(record, self), ensure_ascii=False, default=str)


FORMATS = ("text", "json")


def configure(log_format: str = "text", level: str = "info") -> None:
    """Send every log line to standard error in `log_format` ("text" = key=value, or "json")."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else KeyValueFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # APScheduler tells of every run at INFO ("Running job …"); our job lines say more.
    logging.getLogger("apscheduler").setLevel(max(root.level, logging.WARNING))
