"""The editor's desk: what the dashboard shows, curating a draft, and telling editors that a
draft waits for their approval.

    desk()            next slots, issues and their deliveries, subscribers, source health
    issue_desk()      one issue as the editor works on it: preview per language + items
    curate()          store the editor's pins, drops, order, intro and subject; re-draft
    notify_editors()  mail [web] editors that issue N waits for approval (the scheduler)

Curation lives on the issue (`issues.curation`, JSON) and survives every re-draft of its
slot: `pipeline.draft` reads it back and composes with it. Besides the keys `Curation`
reads, the JSON keeps the titles of dropped items (so the desk can offer them back) and
when the editors were told about the draft (`notified_at`, so they are told once).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from digest.collect.clean import clean_text, clean_title
from digest.compose import Curation, IssuePlan
from digest.compose import slots as slotting
from digest.config import Settings
from digest.deliver import Sender
from digest.errors import DigestError
from digest.pipeline import (
    Drafted,
    draft,
    environment,
    full_plan,
    history,
    preview,
    retention,
    rules_of,
    schedule_of,
    utcnow,
)
from digest.render import RenderedEmail
from digest.render.email import RenderError, describe_error
from digest.render.environment import translation_context
from digest.render.i18n import format_when
from digest.store import db, issues
from digest.store.models import (
    Delivery,
    DeliveryState,
    EntrySource,
    Event,
    Issue,
    IssueStatus,
    Source,
)
from subscribers.model import Subscriber, SubscriberStatus

NOTICE_TEMPLATE = "web/editor_notice.html.jinja"
SUBJECT_MAX = 200
INTRO_MAX = 5000
RECENT_ISSUES = 8
TITLE_MAX = 300
EXCERPT_MAX = 2000
NOTE_MAX = 1000
CURATION_KEYS = history.CURATION_KEYS


def moment_text(moment: datetime, language: str, timezone: str) -> str:
    """Say when `moment` is, in `language` and the publication's `timezone`:
    "maandag 30 november 2026, 08:00"."""
    return format_when(
        all_day=False,
        starts_at=moment,
        ends_at=None,
        start_date=None,
        end_date=None,
        language=language,
        timezone=timezone,
    )


def section_names(settings: Settings) -> tuple[str, ...]:
    """Every section an item can be put in: the usual ones, then the sources' own."""
    found = [*rules_of(settings).section_order, *(s.section for s in settings.sources)]
    return tuple(dict.fromkeys([*found, *settings.labels.sections]))


def desk_url(base_url: str, language: str, number: int) -> str:
    """Return the page where an editor curates and approves issue `number`."""
    return f"{base_url.rstrip('/')}/{language}/admin/issues/{number}"


# --- the dashboard -------------------------------------------------------------------------


@dataclass(frozen=True)
class IssueRow:
    """One issue as the dashboard lists it, with its delivery counts (empty before a send)."""

    number: int
    cadence: str
    slot: datetime
    status: str
    approved_at: datetime | None
    sent_at: datetime | None
    published_at: datetime | None
    paused_reason: str | None
    items: int
    """Items in the default language's variant (what its readers get, before topics)."""
    deliveries: dict[str, int] = field(default_factory=dict)
    notified_at: str | None = None
    paused_kind: str | None = None
    """"relay" (resumes by itself) or "operator" (a person must act), when paused."""

    @property
    def total(self) -> int:
        """Rows in the ledger."""
        return sum(self.deliveries.values())

    def share(self, state: str) -> float | None:
        """The fraction of the ledger in `state`, or None without a ledger."""
        return self.deliveries.get(state, 0) / self.total if self.total else None


@dataclass(frozen=True)
class NextSlot:
    """The next slot of one cadence, and the issue drafted for it if there is one."""

    cadence: str
    slot: datetime
    issue: IssueRow | None


@dataclass(frozen=True)
class SourceRow:
    """A source's health as the dashboard shows it."""

    name: str
    kind: str
    active: bool
    last_fetched_at: datetime | None
    last_status: int | None
    last_error: str | None
    consecutive_failures: int
    next_fetch_at: datetime | None
    items: int


@dataclass(frozen=True)
class Desk:
    """Everything the dashboard shows, as plain values."""

    now: datetime
    approval: str
    next_slots: tuple[NextSlot, ...]
    issues: tuple[IssueRow, ...]
    subscribers: dict[str, dict[str, int]]
    """status → language → count (statuses and languages with none are left out)."""
    sources: tuple[SourceRow, ...]
    subscriber_languages: tuple[str, ...] = ()
    """The publication's languages, then any other a subscriber still has."""
    attention: tuple[tuple[str, str], ...] = ()
    """(level, text) of what the issues under way need, as `digest status` says it:
    level "critical" (paused, stuck, in flight with no sender, late) or "warning"."""


def _raw_curation(issue: Issue) -> dict[str, Any]:
    try:
        raw = json.loads(issue.curation or "{}")
    except ValueError:
        return {}
    return raw if isinstance(raw, dict) else {}


def _issue_row(issue: Issue, language: str, deliveries: dict[str, int]) -> IssueRow:
    plan = issues.plan_of(issue)
    return IssueRow(
        number=issue.number,
        cadence=issue.cadence,
        slot=issue.slot,
        status=issue.status.value,
        approved_at=issue.approved_at,
        sent_at=issue.sent_at,
        published_at=issue.published_at,
        paused_reason=issue.paused_reason,
        items=plan.variant(language).item_count,
        deliveries=deliveries,
        notified_at=_raw_curation(issue).get("notified_at"),
        paused_kind=issue.paused_kind,
    )


def _delivery_counts(session: Session, issue_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    found: dict[int, dict[str, int]] = {}
    if not issue_ids:
        return found
    rows = session.execute(
        sa.select(Delivery.issue_id, Delivery.state, sa.func.count())
        .where(Delivery.issue_id.in_(list(issue_ids)))
        .group_by(Delivery.issue_id, Delivery.state)
    ).all()
    for issue_id, state, count in rows:
        found.setdefault(issue_id, {})[DeliveryState(state).value] = count
    return found


def _next_slot(
    settings: Settings, session: Session, cadence: str, now: datetime
) -> tuple[datetime, Issue | None]:
    """The slot `digest draft` would work on now, and its issue (as `pipeline.draft` walks)."""
    schedule = schedule_of(settings, cadence)
    zone = settings.publication.timezone
    grace = timedelta(hours=settings.issue.grace_hours)
    slot = slotting.current_slot(schedule, now, zone, grace)
    existing = issues.for_slot(session, cadence, slot)
    while existing is not None and not issues.is_open_draft(existing):
        slot = slotting.next_slot(schedule, slot, zone)
        existing = issues.for_slot(session, cadence, slot)
    return slot, existing


def desk(
    settings: Settings, factory: sessionmaker[Session], *, now: datetime | None = None
) -> Desk:
    """Return what the dashboard shows: the next slot of each cadence and its draft, the
    latest issues with their deliveries, subscribers by status and language, and the
    health of every source."""
    now = now or utcnow()
    language = settings.default_language
    with factory() as session:
        recent = session.scalars(
            sa.select(Issue).order_by(Issue.number.desc()).limit(RECENT_ISSUES)
        ).all()
        counts = _delivery_counts(session, [issue.id for issue in recent])
        rows = tuple(
            _issue_row(i, language, counts.get(i.id) or retention.totals(i)) for i in recent
        )
        upcoming = []
        for cadence in ("weekly", "daily"):
            slot, existing = _next_slot(settings, session, cadence, now)
            row = None
            if existing is not None:
                row = next((r for r in rows if r.number == existing.number), None) or (
                    _issue_row(existing, language, {})
                )
            upcoming.append(NextSlot(cadence, slot, row))
        people: dict[str, dict[str, int]] = {}
        for status, lang, count in session.execute(
            sa.select(Subscriber.status, Subscriber.language, sa.func.count()).group_by(
                Subscriber.status, Subscriber.language
            )
        ).all():
            people.setdefault(SubscriberStatus(status).value, {})[lang] = count
        entries = dict(
            session.execute(
                sa.select(EntrySource.source_id, sa.func.count()).group_by(EntrySource.source_id)
            ).all()
        )
        events = dict(
            session.execute(
                sa.select(Event.source_id, sa.func.count()).group_by(Event.source_id)
            ).all()
        )
        sources = tuple(
            SourceRow(
                name=s.name,
                kind=s.kind.value,
                active=s.active,
                last_fetched_at=s.last_fetched_at,
                last_status=s.last_status,
                last_error=s.last_error,
                consecutive_failures=s.consecutive_failures,
                next_fetch_at=s.next_fetch_at,
                items=entries.get(s.id, 0) + events.get(s.id, 0),
            )
            for s in session.scalars(sa.select(Source).order_by(Source.active.desc(), Source.name))
        )
    from digest.pipeline import health  # the scheduler's module, loaded with the desk only

    with factory() as session:
        attention = tuple(
            (health.LEVELS[f.level], f.text) for f in health.issue_findings(session, now)
        )
    ordered: dict[str, dict[str, int]] = {
        s.value: people[s.value] for s in SubscriberStatus if s.value in people
    }
    seen = {language for row in ordered.values() for language in row}
    known = list(settings.publication.languages)
    return Desk(
        now=now,
        approval=settings.issue.approval,
        next_slots=tuple(upcoming),
        issues=rows,
        subscribers=ordered,
        sources=sources,
        subscriber_languages=(*known, *sorted(seen - set(known))),
        attention=attention,
    )


# --- one issue at the desk ----------------------------------------------------------------


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
        raw = _raw_curation(issue)
        status, is_open = issue.status.value, issues.is_open_draft(issue)
        problems = issues.render_problems(issue)
        approved_at, paused, cadence, slot = (
            issue.approved_at,
            issue.paused_reason,
            issue.cadence,
            issue.slot,
        )
        paused_kind = issue.paused_kind
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
    )


# --- curating -----------------------------------------------------------------------------


class DeskError(DigestError):
    """A refusal the editor's desk explains in its own language: `kind` names it and
    `values` fill its sentence; the English message is for logs and the command line."""

    def __init__(self, message: str, kind: str, **values: str | int) -> None:
        super().__init__(message)
        self.kind = kind
        self.values = values


@dataclass(frozen=True)
class Changes:
    """What the editor asked for on the curation form."""

    dropped: frozenset[str] = frozenset()
    """Keys to leave out (keys of items now dropped stay dropped unless listed in `restored`)."""
    restored: frozenset[str] = frozenset()
    pinned: tuple[str, ...] | None = None
    """Keys shown first in their section, in this order (None: the pins stay as they are)."""
    order: tuple[str, ...] | None = None
    """Every key in the editor's order, or None to keep the order as it is."""
    language: str | None = None
    intro: str | None = None
    """The intro of `language` (None: unchanged; "": none)."""
    subject: str | None = None
    """The subject of `language` (None: unchanged; "": the default one)."""
    split: frozenset[str] = frozenset()
    """Keys of stories to take apart: each of their versions then stands alone."""
    joined: tuple[str, ...] = ()
    """Keys of items to make one story (two or more)."""
    edits: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    """Item key → language → {"title", "excerpt", "note"}: the editor's words ("" or a
    missing word: the item's own; an empty dict: back to the item's own words)."""
    moved: dict[str, str] = field(default_factory=dict)
    """Item key → section to put its story in ("": back to its source's section)."""
    hidden: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Item key → every language whose readers do not get its story (replaces what was)."""
    added: tuple[str, ...] = ()
    """Keys of items the editor added (`pipeline.additions`): undoing drops them."""


def _one_line(text: str) -> str:
    """`text` without control characters or line breaks: it becomes a Subject header."""
    text = clean_title(text)
    printable = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in text)
    return " ".join(printable.split())


def _clean_intro(text: str) -> str:
    text = clean_text(text)
    kept = "".join(c for c in text if c in "\n\t" or unicodedata.category(c) != "Cc")
    return kept.replace("\r\n", "\n").strip()


def slot_now(
    settings: Settings,
    factory: sessionmaker[Session],
    issue_slot: datetime,
    cadence: str,
    now: datetime,
) -> datetime:
    """The moment to re-draft at so that `pipeline.draft` lands on `issue_slot`: now while
    the slot is the current one, else the slot itself (a draft whose slot has passed)."""
    with factory() as session:
        if _next_slot(settings, session, cadence, now)[0] == issue_slot:
            return now
        if _next_slot(settings, session, cadence, issue_slot)[0] == issue_slot:
            return issue_slot
    raise DeskError(
        "this draft's slot cannot be drafted again (another issue owns the slot before it); "
        "run `digest draft` for the current slot",
        "slot_taken",
    )


def _item_changes(
    settings: Settings,
    raw: dict[str, Any],
    changes: Changes,
    known: set[str],
    languages: Sequence[str],
) -> tuple[dict[str, Any], dict[str, str], dict[str, list[str]]]:
    """The edits, moves and per-language drops stored on the issue with `changes` applied."""
    limits = {"title": TITLE_MAX, "excerpt": EXCERPT_MAX, "note": NOTE_MAX}
    edits: dict[str, Any] = {k: dict(v) for k, v in dict(raw.get("edits") or {}).items()}
    for key, by_language in changes.edits.items():
        if key not in known:
            continue
        for language, words in by_language.items():
            if language not in languages:
                raise DeskError(
                    f"{language!r} is not a language of this publication",
                    "not_a_language",
                    language=language,
                )
            kept: dict[str, str] = {}
            for name, limit in limits.items():
                text = words.get(name, "")
                text = _one_line(text) if name == "title" else _clean_intro(text)
                if len(text) > limit:
                    raise DeskError(
                        f"the {name} is {len(text)} characters; at most {limit}",
                        f"{name}_too_long",
                        length=len(text),
                        limit=limit,
                    )
                if text:
                    kept[name] = text
            if kept:
                edits.setdefault(key, {})[language] = kept
            else:
                edits.get(key, {}).pop(language, None)
        if not edits.get(key):
            edits.pop(key, None)
    moved = {str(k): str(v) for k, v in dict(raw.get("moved") or {}).items()}
    sections = set(section_names(settings))
    for key, section in changes.moved.items():
        if key not in known:
            continue
        if section and section not in sections:
            raise DeskError(f"{section!r} is not a section", "not_a_section", section=section)
        if section:
            moved[key] = section
        else:
            moved.pop(key, None)
    hidden = {str(k): list(v) for k, v in dict(raw.get("hidden") or {}).items()}
    for key, hidden_in in changes.hidden.items():
        if key not in known:
            continue
        chosen = [language for language in languages if language in hidden_in]
        if chosen:
            hidden[key] = chosen
        else:
            hidden.pop(key, None)
    return edits, moved, hidden


def curate(
    settings: Settings,
    factory: sessionmaker[Session],
    number: int,
    changes: Changes,
    *,
    now: datetime | None = None,
) -> Drafted:
    """Store the editor's changes on draft `number` and compose it again with them.

    Raises `DigestError` when the issue is no longer a draft (approved, sent or published:
    what goes out is fixed), or when a subject or intro is too long.
    """
    now = now or utcnow()
    languages = settings.publication.languages
    if changes.language is not None and changes.language not in languages:
        raise DeskError(
            f"{changes.language!r} is not a language of this publication",
            "not_a_language",
            language=changes.language,
        )
    subject = _one_line(changes.subject) if changes.subject is not None else None
    intro = _clean_intro(changes.intro) if changes.intro is not None else None
    if subject is not None and len(subject) > SUBJECT_MAX:
        raise DeskError(
            f"the subject is {len(subject)} characters; at most {SUBJECT_MAX}",
            "subject_too_long",
            length=len(subject),
            limit=SUBJECT_MAX,
        )
    if intro is not None and len(intro) > INTRO_MAX:
        raise DeskError(
            f"the intro is {len(intro)} characters; at most {INTRO_MAX}",
            "intro_too_long",
            length=len(intro),
            limit=INTRO_MAX,
        )
    with db.transaction(factory) as session:
        issue = issues.by_number(session, number)
        if not issues.is_open_draft(issue):
            raise DeskError(
                f"issue #{number} is {issue.status.value}; only a draft can be curated",
                "not_a_draft",
                number=number,
                status=issue.status.value,
            )
        current = issues.curation_of(issue)
        raw = _raw_curation(issue)
        rows = {item.key: item for item in listed(full_plan(settings, session, issue), current)}
        titles = {
            k: v
            for k, v in dict(raw.get("titles") or {}).items()
            if k in current.dropped or k in current.hidden
        }
        known = set(rows) | set(current.dropped) | set(current.hidden)
        dropped = [k for k in current.dropped if k not in changes.restored]
        for key in sorted(changes.dropped & set(rows)):
            if key not in dropped:
                dropped.append(key)
                titles[key] = rows[key].title
        pins = current.pinned if changes.pinned is None else changes.pinned
        pinned = [k for k in dict.fromkeys(pins) if k in known and k not in dropped]
        order = list(current.order)
        if changes.order is not None:
            order = [k for k in dict.fromkeys(changes.order) if k in known]
        split = list(current.split)
        for key in sorted(changes.split & set(rows)):
            split.extend(m for m in rows[key].members or (key,) if m not in split)
        joined = [tuple(pair) for pair in current.joined]
        together = [k for k in dict.fromkeys(changes.joined) if k in rows]
        for other in together[1:]:
            joined.append((together[0], other))
        split = [k for k in split if k not in together]
        intros, subjects = dict(current.intro), dict(current.subject)
        if changes.language is not None:
            if intro is not None:
                intros[changes.language] = intro
            if subject is not None:
                subjects[changes.language] = subject
        edits, moved, hidden = _item_changes(settings, raw, changes, known, languages)
        for key in changes.restored:
            hidden.pop(key, None)
        for key in hidden:
            if key in rows:
                titles.setdefault(key, rows[key].title)
        titles = {k: v for k, v in titles.items() if k in dropped or k in hidden}
        before = {name: raw.get(name) for name in CURATION_KEYS}
        raw.update(
            pinned=pinned,
            dropped=dropped,
            order=order,
            intro={k: v for k, v in intros.items() if v},
            subject={k: v for k, v in subjects.items() if v},
            titles=titles,
            split=split,
            joined=[list(pair) for pair in dict.fromkeys(joined)],
            edits=edits,
            moved=moved,
            hidden=hidden,
            added=list(dict.fromkeys([*(raw.get("added") or ()), *changes.added])),
        )
        history.record(raw, before, {k: v.title for k, v in rows.items()}, now)
        issue.curation = json.dumps(raw, sort_keys=True, ensure_ascii=False)
        cadence, slot = issue.cadence, issue.slot
    drafted = draft(
        settings, factory, now=slot_now(settings, factory, slot, cadence, now), cadence=cadence
    )
    if drafted.number != number:  # pragma: no cover - _slot_now makes sure of it
        raise DigestError(f"re-drafting reached issue #{drafted.number}, not #{number}")
    return drafted


# --- telling the editors ------------------------------------------------------------------


@dataclass(frozen=True)
class Notified:
    """What `notify_editors` did."""

    number: int
    told: tuple[str, ...]
    """Editors whose server accepted the mail."""
    failed: tuple[tuple[str, str], ...] = ()
    """(editor, what the transport said) for each refused mail."""
    skipped: str | None = None
    """Why nobody was mailed (no editors, already told, not waiting for approval)."""


def render_notice(
    settings: Settings, *, number: int, subject: str, items: int, slot: datetime
) -> RenderedEmail:
    """Render the "issue N waits for your approval" mail in the default language."""
    language = settings.default_language
    env = environment(settings)
    template = env.get_template(NOTICE_TEMPLATE)
    context: dict[str, Any] = {
        **translation_context(language),
        "language": language,
        "title": settings.publication.title_in(language),
        "number": number,
        "issue_subject": subject,
        "items": items,
        "when": moment_text(slot, language, settings.publication.timezone),
        "url": desk_url(settings.publication.base_url, language, number),
    }
    html = template.render(context, part="html")
    text = template.render(context, part="text")
    mail_subject = template.render(context, part="subject").strip()
    return RenderedEmail(
        language=language,
        subject=_one_line(mail_subject),
        preheader="",
        html=html,
        text="\n".join(line.rstrip() for line in text.splitlines()).strip("\n") + "\n",
    )


def notify_editors(
    settings: Settings,
    factory: sessionmaker[Session],
    number: int,
    *,
    now: datetime | None = None,
    sender: Sender | None = None,
    again: bool = False,
) -> Notified:
    """Mail every address in [web] editors that draft `number` waits for their approval,
    with a link to it on the editor's desk; what the scheduler calls after drafting when
    [issue] approval = "editor".

    Editors are told once per issue (the time is kept on the issue) unless `again`; an
    issue that is not a draft tells nobody. Refused mails are reported, not raised, and
    do not count as told (the next call tries them again).
    """
    now = now or utcnow()
    editors = [e.strip() for e in settings.web.editors if e.strip()]
    if not editors:
        return Notified(number, (), skipped="no editors: set [web] editors")
    with factory() as session:
        issue = issues.by_number(session, number)
        raw = _raw_curation(issue)
        if issue.status is not IssueStatus.DRAFT:
            return Notified(number, (), skipped=f"issue #{number} is {issue.status.value}")
        if raw.get("notified_at") and not again:
            return Notified(number, (), skipped=f"editors were told at {raw['notified_at']}")
        plan = issues.plan_of(issue)
        slot = issue.slot
    first = preview(settings, factory, number=number, language=settings.default_language)
    rendered = render_notice(
        settings,
        number=number,
        subject=first.subject,
        items=plan.variant(settings.default_language).item_count,
        slot=slot,
    )
    from digest.pipeline.alerts import mail_editors

    mailed = mail_editors(
        settings, rendered, editors, kind=f"approval.{number}", now=now, sender=sender
    )
    told, failed = mailed.told, mailed.failed
    if told:
        with db.transaction(factory) as session:
            issue = issues.by_number(session, number)
            raw = _raw_curation(issue)
            raw["notified_at"] = now.isoformat()
            issue.curation = json.dumps(raw, sort_keys=True, ensure_ascii=False)
    return Notified(number, tuple(told), tuple(failed))
