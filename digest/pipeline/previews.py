"""Rendering an issue for a look before it goes: the email and its text part as a
subscriber gets them (with a sample token), the archive page and the feed entry; and the
links and Jinja environment every rendering of the pipeline shares."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from digest import layout, render
from digest.config import Settings
from digest.errors import DigestError
from digest.pipeline.drafting import find_issue, full_plan, labels_of
from digest.render import Links, Omitted, RenderedEmail
from digest.store import issues

if TYPE_CHECKING:
    import jinja2


def environment(settings: Settings) -> jinja2.Environment:
    """The Jinja environment with the operator's templates first."""
    from digest.render.environment import make_environment

    return make_environment(
        settings.render.templates_dir,
        postal_address=settings.publication.postal_address,
        images_policy=settings.render.images,
    )


def public_links(settings: Settings, number: int, language: str) -> Links:
    """Links for the archive copy of an issue: nobody's personal tokens."""
    base = settings.publication.base_url.rstrip("/")
    return Links(
        base_url=base,
        archive_url=layout.url(base, layout.issue_page(number, language)),
        unsubscribe_url=f"{base}/{language}/unsubscribe",
        preferences_url=f"{base}/{language}/preferences",
    )


def sample_links(settings: Settings, number: int, language: str) -> Links:
    """Links as a subscriber gets them, with a sample token in place of theirs."""
    public = public_links(settings, number, language)
    return replace(
        public,
        unsubscribe_url=f"{public.unsubscribe_url}/{SAMPLE_TOKEN}",
        preferences_url=f"{public.preferences_url}/{SAMPLE_TOKEN}",
    )


SAMPLE_TOKEN = "preview-sample-token"  # noqa: S105 - a placeholder, not a secret


def _check_language(settings: Settings, language: str) -> None:
    if language not in settings.publication.languages:
        raise DigestError(
            f"{language!r} is not a language of this publication "
            f"({', '.join(settings.publication.languages)}); see [publication] languages"
        )


def preview(
    settings: Settings,
    factory: sessionmaker[Session],
    *,
    number: int | None = None,
    language: str | None = None,
    topics: Sequence[str] = (),
) -> RenderedEmail:
    """Render an issue (default: the latest draft) exactly as a subscriber gets it (one who
    chose `topics`; none: everything)."""
    language = language or settings.default_language
    _check_language(settings, language)
    with factory() as session:
        issue = find_issue(session, number)
        plan = issues.plan_of(issue)
    if topics:
        from digest.compose.plan import for_topics

        plan = for_topics(plan, topics)
    from digest.render.email import render_for_inbox

    return render_for_inbox(
        plan, language, sample_links(settings, plan.number, language), environment(settings)
    )


CHANNELS = render.CHANNELS
"""What `digest preview --channel` and the desk can show of an issue."""


@dataclass(frozen=True)
class ChannelPreview:
    """An issue as one channel's readers get it."""

    channel: str
    language: str
    subject: str
    body: str
    """An HTML document (email, archive, feed) or plain text (text)."""
    omitted: tuple[Omitted, ...] = ()
    """Items left out of the email because they do not render (email and text only)."""


def preview_channel(
    settings: Settings,
    factory: sessionmaker[Session],
    channel: str,
    *,
    number: int | None = None,
    language: str | None = None,
    topics: Sequence[str] = (),
) -> ChannelPreview:
    """Render an issue (default: the latest draft) as `channel` shows it: "email" (the HTML
    a subscriber gets), "text" (its text part), "archive" (its page on the archive website)
    or "feed" (its Atom entry as a feed reader shows it)."""
    if channel not in CHANNELS:
        raise DigestError(f"unknown channel {channel!r}; choose one of {', '.join(CHANNELS)}")
    language = language or settings.default_language
    if channel in ("email", "text"):
        rendered = preview(settings, factory, number=number, language=language, topics=topics)
        body = rendered.html if channel == "email" else rendered.text
        return ChannelPreview(
            channel, rendered.language, rendered.subject, body, tuple(rendered.omitted)
        )
    _check_language(settings, language)
    from digest.pipeline import publishing

    with factory() as session:
        issue = find_issue(session, number)
        # The archive page lists every item; the feed entry what the email shows.
        stored = full_plan(settings, session, issue) if channel == "archive" else None
        stored = stored or issues.plan_of(issue)
        plan = replace(stored.complete(), labels=labels_of(settings))
        published_at = issue.published_at or plan.slot
    env = environment(settings)
    if channel == "archive":
        body = publishing.issue_page(settings, factory, plan, language, published_at, env)
    else:
        body = publishing.feed_entry_page(settings, plan, language, env)
    return ChannelPreview(channel, language, publishing.subject_of(plan, language), body)
