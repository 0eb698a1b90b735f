"""One issue as the editor works on it: the email as a subscriber gets it, per language,
and every item with its curation.

    issue_desk()  the issue in one language: preview, items, dropped items, change log
    listed()      every item of every variant once, by section, in the plan's order
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from digest.compose import Curation, IssuePlan
from digest.config import Settings
from digest.errors import DigestError
from digest.pipeline import full_plan, history, preview
from digest.render import RenderedEmail
from digest.render.email import RenderError, describe_error
from digest.store import issues


@dataclass(frozen=True)
class DeskItem:
    """One item of an issue as the curation form lists it."""

    key: str
    title: str
    kind: str
    language: str
    section: str
    position: int
    """1-based place in its section, as the issue orders it now."""
    pinned: bool = False
    dropped: bool = False
    members: tuple[str, ...] = ()
    """The keys of the items of its story (empty: a story of one)."""
    also: tuple[str, ...] = ()
    """The other languages its story is told in."""
    link: str | None = None
    published_at: datetime | None = None
    source: str = ""
    """The title of its first source."""
    excerpt: str = ""
    image_url: str | None = None
    topics: tuple[str, ...] = ()
    """Only subscribers who chose one of these get it (none: every subscriber)."""
    readers: tuple[str, ...] = ()
    """The languages whose variant holds it (after the editor's per-language drops)."""
    note: str = ""


@dataclass(frozen=True)
class IssueDesk:
    """An issue as the editor works on it, in one language."""

    number: int
    cadence: str
    slot: datetime
    status: str
    open: bool
    """Whether it can still be curated (a draft nobody published)."""
    approved_at: datetime | None
    paused_reason: str | None
    language: str
    rendered: RenderedEmail
    """Exactly what a subscriber reading `language` gets (sample links)."""
    items: tuple[DeskItem, ...]
    dropped: tuple[DeskItem, ...]
    intro: str
    subject: str
    """The editor's subject for `language` ("" = the default one, see `rendered.subject`)."""
    notified_at: str | None
    paused_kind: str | None = None
    render_error: str | None = None
    """Why the issue does not render at all (a template error), shown instead of it."""
    problems: tuple[str, ...] = ()
    """What would not render when it was drafted (items left out, broken templates)."""
    changes: tuple[tuple[history.Change, ...], ...] = ()
    """The change log, newest first (see `pipeline.history`)."""
    send_at: datetime | None = None
    """When an editor chose it to go out (`pipeline.send_times`); None: at its slot."""


def listed(plan: IssuePlan, curation: Curation) -> list[DeskItem]:
    """Every item of every variant once, by section, in the order the plan shows them
    (the default language's variant first, then what only other variants hold)."""
    by_section: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    readers: dict[str, list[str]] = {}
    for variant in plan.complete().variants:
        for section in variant.sections:
            for item in section.items:
                for key in item.members or (item.key,):
                    readers.setdefault(key, []).append(variant.language)
    for variant in plan.complete().variants:
        for section in variant.sections:
            known = by_section.setdefault(section.name, {})
            for item in section.items:
                # A story is one row, whichever version a language shows of it.
                if item.key in seen:
                    continue
                seen.update(item.members or (item.key,))
                known.setdefault(item.key, item)
    listed = []
    for name, found in by_section.items():
        for position, item in enumerate(found.values(), start=1):
            listed.append(
                DeskItem(
                    key=item.key,
                    title=item.title,
                    kind=item.kind,
                    language=item.language,
                    section=name,
                    position=position,
                    pinned=item.key in curation.pinned,
                    members=tuple(item.members),
                    also=tuple(language for language, _ in item.also),
                    link=item.link,
                    published_at=item.published_at or item.starts_at,
                    source=item.source_title or (item.sources[0] if item.sources else ""),
                    excerpt=item.excerpt,
                    image_url=item.image_url,
                    topics=tuple(item.topics),
                    readers=tuple(dict.fromkeys(readers.get(item.key, ()))),
                    note=item.note,
                )
            )
    return listed


def issue_desk(
    settings: Settings, factory: sessionmaker[Session], number: int, *, language: str
) -> IssueDesk:
    """Return issue `number` as the editor sees it in `language`: the rendered email (HTML
    and text, as a subscriber gets it) and the items with their curation."""
    with factory() as session:
        issue = issues.by_number(session, number)
        plan = full_plan(settings, session, issue)
        curation = issues.curation_of(issue)
        raw = issues.raw_curation(issue)
        status, is_open = issue.status.value, issues.is_open_draft(issue)
        problems = issues.render_problems(issue)
        approved_at, paused, cadence, slot = (
            issue.approved_at,
            issue.paused_reason,
            issue.cadence,
            issue.slot,
        )
        paused_kind = issue.paused_kind
        send_at = issue.send_at
    # The desk never fails because the issue does not render: it shows why, beside the
    # curation form, so the item can be dropped (or the template fixed).
    render_error = None
    try:
        rendered = preview(settings, factory, number=number, language=language)
    except Exception as exc:
        render_error = describe_error(exc.__cause__ or exc)
        if isinstance(exc, DigestError) and not isinstance(exc, RenderError):
            render_error = str(exc)
        rendered = RenderedEmail(language=language, subject="", preheader="", html="", text="")
    titles = raw.get("titles", {}) if isinstance(raw.get("titles"), dict) else {}
    dropped = tuple(
        DeskItem(
            key=key,
            title=str(titles.get(key, key)),
            kind=key.partition(":")[0],
            language="",
            section="",
            position=0,
            dropped=True,
            readers=tuple(curation.hidden.get(key, ())),
        )
        for key in dict.fromkeys([*curation.dropped, *curation.hidden])
    )
    return IssueDesk(
        number=number,
        cadence=cadence,
        slot=slot,
        status=status,
        open=is_open,
        approved_at=approved_at,
        paused_reason=paused,
        language=language,
        rendered=rendered,
        items=tuple(listed(plan, curation)),
        dropped=dropped,
        intro=curation.intro.get(language, ""),
        subject=curation.subject.get(language, ""),
        notified_at=raw.get("notified_at"),
        paused_kind=paused_kind,
        render_error=render_error,
        problems=tuple(problems),
        changes=history.changes_of(raw),
        send_at=send_at,
    )


# --- curating -----------------------------------------------------------------------------
