"""Render: turn an `IssuePlan` variant into what people read. Pure: no I/O, no clock.

Output type: `RenderedEmail` (subject, preheader, HTML after MJML and premailer, and a
text part from its own template). `Links` carries the URLs a rendering needs; for real
sends they hold per-recipient markers that delivery substitutes into the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

CHANNELS = ("email", "text", "archive", "feed")
"""What `digest preview --channel` and the desk can show of an issue."""


@dataclass(frozen=True)
class Links:
    """The URLs one rendering links to."""

    base_url: str
    archive_url: str
    """This issue's web version ("view in browser")."""
    unsubscribe_url: str
    preferences_url: str


@dataclass(frozen=True)
class Omitted:
    """An item left out of a rendering because it would not render, and why."""

    key: str
    title: str
    section: str
    reason: str
    """The template or MJML error, one line ("email/issue.mjml.jinja:40: …")."""


@dataclass(frozen=True)
class RenderedEmail:
    """One variant of an issue, rendered."""

    language: str
    subject: str
    preheader: str
    html: str
    text: str
    moved: int = 0
    """Items moved to "more in the archive" so that the mail is not clipped (the desk says
    so before approval)."""
    omitted: tuple[Omitted, ...] = ()
    """Items that failed to render and were left out of this variant (the rest went on)."""
