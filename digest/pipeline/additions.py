"""Items the editor adds to a draft by hand or by URL.

An added item is an ordinary entry of the source `desk` (created on first use, never
fetched: it is inactive), so it is excerpted, grouped into stories and rendered like any
other; the editor's section and a pin put it where they want in the draft. Being an
entry, it is also news for any other open draft of the same days (the daily one).

By URL, the page is fetched through the guarded fetcher (only http(s); the private
networks `[collect] allow_networks` does not open stay closed) and its main content is
extracted with `collect.extract`, as a page source's would be.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest import collect
from digest.collect.clean import shorten, text_to_html
from digest.collect.extract import extract_html, extract_text
from digest.collect.fetch import Fetcher, FetchPolicy
from digest.config import Settings
from digest.errors import DigestError
from digest.pipeline import Drafted, draft, editorial, utcnow
from digest.store import db, issues, items
from digest.store.models import Entry, Source, SourceKind, SourceOrigin

DESK_SOURCE = "desk"
"""The name of the source that holds the items editors add."""
TEXT_MAX = 20_000


def _page(settings: Settings, url: str) -> tuple[str, str, str | None]:
    """Fetch `url` and return its (title, main text, language) as the extractor sees it."""
    policy = FetchPolicy.from_settings(settings.collect)

    async def fetch() -> collect.Fetched:
        async with Fetcher(policy) as fetcher:
            return await fetcher.fetch(url)

    fetched = asyncio.run(fetch())
    body = (fetched.body or b"").decode("utf-8", errors="replace")
    is_html = "html" in (fetched.content_type or "text/html")
    found = extract_html(body) if is_html else extract_text(body)
    title = found.title or ""
    language = None
    if is_html:
        import lxml.html

        try:
            root = lxml.html.document_fromstring(body)
        except ValueError:
            root = None
        if root is not None:
            language = (root.get("lang") or "").split("-")[0].lower() or None
            if not title:
                heading = root.find(".//title")
                words = [str(t) for t in heading.itertext()] if heading is not None else []
                title = " ".join("".join(words).split())
    return title, found.text, language


def _desk_source(session: Session, settings: Settings, now: datetime) -> Source:
    source = session.scalar(sa.select(Source).where(Source.name == DESK_SOURCE))
    if source is None:
        source = Source(
            name=DESK_SOURCE,
            url="",
            declared_url="",
            kind=SourceKind.PAGE,
            language=settings.default_language,
            topics=[],
            section="news",
            origin=SourceOrigin.CLI,
            active=False,
            created_at=now,
            title=settings.publication.title,
        )
        session.add(source)
        session.flush()
    return source


def add_item(
    settings: Settings,
    factory: sessionmaker[Session],
    number: int,
    *,
    url: str = "",
    title: str = "",
    text: str = "",
    language: str = "",
    section: str = "news",
    now: datetime | None = None,
) -> Drafted:
    """Add an item to draft `number`: from `url` (fetched and extracted; `title` and `text`,
    when given, win over what the page says) or by hand (`title` and `text`), in
    `language` and `section`; then compose the draft again with it pinned in its section."""
    now = now or utcnow()
    url = url.strip()
    languages = settings.publication.languages
    with factory() as session:
        issue = issues.by_number(session, number)
        if not issues.is_open_draft(issue):
            raise editorial.DeskError(
                f"issue #{number} is {issue.status.value}; only a draft can be curated",
                "not_a_draft",
                number=number,
                status=issue.status.value,
            )
    found_language = None
    if url:
        if urlsplit(url).scheme.lower() not in ("http", "https") or not urlsplit(url).netloc:
            raise editorial.DeskError(
                f"{url}: only http and https pages can be added", "not_a_web_address"
            )
        try:
            page_title, page_text, found_language = _page(settings, url)
        except DigestError as exc:
            raise editorial.DeskError(str(exc), "fetch_failed") from exc
        title = title.strip() or page_title
        text = text.strip() or page_text
    title = " ".join(title.split())
    if not title:
        raise editorial.DeskError("an added item needs a title", "title_missing")
    if len(title) > editorial.TITLE_MAX:
        raise editorial.DeskError(
            f"the title is {len(title)} characters; at most {editorial.TITLE_MAX}",
            "title_too_long",
            length=len(title),
            limit=editorial.TITLE_MAX,
        )
    text = shorten(text.strip(), TEXT_MAX)
    language = language or (found_language if found_language in languages else "")
    language = language or settings.default_language
    if language not in languages:
        raise editorial.DeskError(
            f"{language!r} is not a language of this publication",
            "not_a_language",
            language=language,
        )
    with db.transaction(factory) as session:
        source = _desk_source(session, settings, now)
        entry = collect.Entry(
            title=title,
            link=url or None,
            guid=url or f"desk:{number}:{now.isoformat()}:{title}",
            summary_html=text_to_html(text),
            summary_text=shorten(text, 500),
            language=language,
            published_at=now,
        )
        items.record_entries(
            session,
            source,
            [entry],
            now=now,
            first_collection=False,
            news_window=timedelta(days=settings.issue.news_window_days),
        )
        session.flush()
        key = items.guid_key(source, entry.guid)
        stored = session.scalar(sa.select(Entry).where(Entry.guid == key))
        if stored is None and url:  # the same page was collected already, by its link
            link = items.normalize_link(url)
            stored = session.scalar(sa.select(Entry).where(Entry.link == link).limit(1))
        if stored is None:  # pragma: no cover - record_entries stores or finds it
            raise DigestError(f"the item {title!r} could not be stored")
        stored.backlog = False
        item_key = f"entry:{stored.id}"
        issue = issues.by_number(session, number)
        pinned = issues.curation_of(issue).pinned
        cadence, slot = issue.cadence, issue.slot
    # Compose once so that the plan holds the item, then place it as the editor asked.
    draft(
        settings,
        factory,
        now=editorial.slot_now(settings, factory, slot, cadence, now),
        cadence=cadence,
    )
    changes = editorial.Changes(
        moved={item_key: section} if section else {},
        pinned=(*pinned, item_key),
        added=(item_key,),
    )
    return editorial.curate(settings, factory, number, changes, now=now)
