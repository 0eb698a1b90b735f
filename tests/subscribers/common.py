"""Values and helpers shared by the subscriber tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from subscribers import registry
from subscribers.model import ConsentSource, Subscriber

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
LANGUAGES = ("en", "nl", "fr")
KEY = b"suppression key used only by the tests"


def add(session: Session, email: str, **overrides: Any) -> Subscriber:
    """Add a subscriber through the registry with test defaults."""
    options: dict[str, Any] = {
        "source": ConsentSource.CLI,
        "consent_version": "v1",
        "now": NOW,
        "languages": LANGUAGES,
        "suppression_key": KEY,
    }
    options.update(overrides)
    return registry.add(session, email, **options)
