"""Compose an issue: choose the news and events, merge duplicates, flag changed events,
group into sections, and order and cap each language variant. Pure: values in, plan out.
"""

from __future__ import annotations

import re
import unicodedata
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta

from digest.compose import (
    Curation,
    EventCandidate,
    IssuePlan,
    NewsCandidate,
    PlanItem,
    Rules,
    Section,
    Variant,
)


def event_when(
    all_day: bool,
    starts_at: datetime | None,
    ends_at: datetime | None,
    start_date: date | None,
    end_date: date | None,
) -> str:
    """A comparable rendering of an occurrence's time, as recorded for announcements."""
    parts = (start_date, end_date) if all_day else (starts_at, ends_at)
    return "/".join(part.isoformat() if part else "" for part in parts)


def _normal_title(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return " ".join(re.findall(r"[a-z0-9]+", folded))


def _normal_link(link: str | None) -> str | None:
    if not link:
        return None
    return re.sub(r"^https?://(www\.)?", "", link.strip().lower()).rstrip("/")


def _select_news(
    news: Iterable[NewsCandidate], rules: Rules, since: datetime, now: datetime
) -> list[NewsCandidate]:
    oldest = now - timedelta(days=rules.news_window_days)
    chosen = [
        n
        for n in news
        if not n.backlog and since <= n.first_seen_at <= now and n.published_at >= oldest
    ]
    return sorted(chosen, key=lambda n: (n.published_at, n.id), reverse=True)


def _change(event: EventCandidate) -> tuple[str | None, str | None]:
    """Return (change, previous) against what an earlier issue announced."""
    before = event.announced_as
    if before is None:
        return None, None
    if event.status == "CANCELLED" or event.withdrawn:
        return ("cancelled", None) if before.status != "CANCELLED" else ("already", None)
    when = event_when(
        event.all_day, event.starts_at, event.ends_at, event.start_date, event.end_date
    )
    if when != before.when:
        return "rescheduled", before.when
    if event.location.strip() != before.location.strip() and before.location.strip():
        return "moved", before.location
    return None, None


def _upcoming(
    event: EventCandidate, now: datetime, until: datetime, zone: zoneinfo.ZoneInfo, changed: bool
) -> bool:
    """Whether the occurrence is not over and starts before the horizon (a changed one that
    an earlier issue announced is shown whatever its new date, unless it is over)."""
    if event.all_day:
        if event.start_date is None:
            return False
        last = event.end_date or event.start_date + timedelta(days=1)
        today = now.astimezone(zone).date()
        return last > today and (changed or event.start_date <= until.astimezone(zone).date())
    if event.starts_at is None:
        return False
    ends = event.ends_at or event.starts_at
    return ends > now and (changed or event.starts_at < until)


def _event_start(item: PlanItem, zone: zoneinfo.ZoneInfo) -> datetime:
    if item.all_day and item.start_date is not None:
        return datetime.combine(item.start_date, datetime.min.time(), zone)
    assert item.starts_at is not None
    return item.starts_at


def _select_events(
    events: Iterable[EventCandidate], rules: Rules, now: datetime, until: datetime
) -> list[PlanItem]:
    zone = zoneinfo.ZoneInfo(rules.timezone)
    chosen: list[PlanItem] = []
    for event in events:
        change, previous = _change(event)
        if change == "already":
            continue  # its cancellation went out already; say it once
        if (event.status == "CANCELLED" or event.withdrawn) and change != "cancelled":
            continue  # never announced, nothing to take back: a cancelled event is not news
        if not _upcoming(event, now, until, zone, changed=change is not None):
            continue
        chosen.append(
            PlanItem(
                key=f"event:{event.key}",
                kind="event",
                title=event.summary,
                link=event.url,
                summary_html="",
                summary_text=event.description,
                language=event.language,
                foreign=False,
                sources=event.sources,
                topics=event.topics,
                all_day=event.all_day,
                starts_at=event.starts_at,
                ends_at=event.ends_at,
                start_date=event.start_date,
                end_date=event.end_date,
                timezone=event.timezone or rules.timezone,
                location=event.location,
                status="CANCELLED" if change == "cancelled" else event.status,
                change=change,
                previous=previous,
                uid=event.uid,
                recurrence_id=event.recurrence_id,
                organizer=event.organizer,
                sequence=event.sequence,
                stamp=event.changed_at,
            )
        )
    return _dedupe_events(sorted(chosen, key=lambda i: (_event_start(i, zone), i.title)))


def _dedupe_events(items: list[PlanItem]) -> list[PlanItem]:
    """Two calendars announcing the same occurrence (same title and start) show it once."""
    kept: dict[tuple[str, str], PlanItem] = {}
    for item in items:
        identity = (_normal_title(item.title), str(item.starts_at or item.start_date))
        first = kept.get(identity)
        if first is None:
            kept[identity] = item
        else:
            kept[identity] = _fill(first, item)
    return list(kept.values())


def _fill(best: PlanItem, other: PlanItem) -> PlanItem:
    """Keep `best`, taking from `other` what `best` lacks."""
    return replace(
        best,
        link=best.link or other.link,
        summary_html=best.summary_html or other.summary_html,
        summary_text=best.summary_text or other.summary_text,
        location=best.location or other.location,
        image_url=best.image_url or other.image_url,
        sources=tuple(dict.fromkeys(best.sources + other.sources)),
        topics=tuple(dict.fromkeys(best.topics + other.topics)),
    )


def _same_thing(news: NewsCandidate, event: PlanItem) -> bool:
    """A news post announcing a calendar entry: same link, or one title holding the other."""
    link = _normal_link(news.link)
    if link and link == _normal_link(event.link):
        return True
    a, b = _normal_title(news.title), _normal_title(event.title)
    shorter, longer = sorted((a, b), key=len)
    return len(shorter) >= 20 and shorter in longer


def _news_item(news: NewsCandidate) -> PlanItem:
    return PlanItem(
        key=f"entry:{news.id}",
        kind="entry",
        title=news.title,
        link=news.link,
        summary_html=news.summary_html,
        summary_text=news.summary_text,
        language=news.language,
        foreign=False,
        published_at=news.published_at,
        sources=news.sources,
        topics=news.topics,
        image_url=news.image_url,
    )


def _merge(
    news: list[NewsCandidate], events: list[PlanItem]
) -> tuple[list[PlanItem], list[PlanItem]]:
    """Fold news posts that announce an event into the event; return (news, events)."""
    remaining: list[PlanItem] = []
    merged = list(events)
    for post in news:
        for index, event in enumerate(merged):
            if _same_thing(post, event):
                enriched = _fill(event, _news_item(post))
                merged[index] = replace(enriched, link=event.link or post.link)
                break
        else:
            remaining.append(_news_item(post))
    return remaining, merged


def _curate(items: list[PlanItem], curation: Curation) -> list[PlanItem]:
    kept = [i for i in items if i.key not in curation.dropped]
    rank = {key: n for n, key in enumerate(curation.order)}
    ordered = sorted(enumerate(kept), key=lambda pair: (rank.get(pair[1].key, len(rank)), pair[0]))
    pins = {key: n for n, key in enumerate(curation.pinned)}
    pinned = sorted(
        (replace(i, pinned=True) for _, i in ordered if i.key in pins), key=lambda i: pins[i.key]
    )
    return pinned + [i for _, i in ordered if i.key not in pins]


def _for_language(
    items: Sequence[PlanItem], language: str, rules: Rules, keep_order: bool
) -> list[PlanItem]:
    marked = [replace(i, foreign=i.language != language) for i in items]
    if rules.other_languages == "hide":
        return [i for i in marked if not i.foreign]
    if keep_order:
        return marked
    pinned = [i for i in marked if i.pinned]
    rest = [i for i in marked if not i.pinned]
    return pinned + [i for i in rest if not i.foreign] + [i for i in rest if i.foreign]


def _sections(
    by_name: dict[str, list[PlanItem]], rules: Rules, language: str
) -> tuple[Section, ...]:
    order = {name: n for n, name in enumerate(rules.section_order)}
    sections = []
    for name in sorted(by_name, key=lambda s: (order.get(s, len(order)), s)):
        is_events = all(i.kind == "event" for i in by_name[name])
        items = _for_language(by_name[name], language, rules, keep_order=is_events)
        if items:
            cap = max(rules.max_per_section, sum(1 for i in items if i.pinned))
            sections.append(Section(name=name, items=tuple(items)).capped(cap))
    return tuple(sections)


def compose(
    news: Iterable[NewsCandidate],
    events: Iterable[EventCandidate],
    *,
    rules: Rules,
    now: datetime,
    number: int,
    cadence: str,
    slot: datetime,
    news_since: datetime,
    curation: Curation | None = None,
) -> IssuePlan:
    """Return the plan of issue `number` as of `now`."""
    curation = curation or Curation()
    until = now + timedelta(days=rules.event_horizon_days)
    chosen_news = _select_news(news, rules, news_since, now)
    sections_of = {n.id: n.section for n in chosen_news}
    event_list = list(events)
    event_sections = {f"event:{e.key}": e.section for e in event_list}
    news_items, event_items = _merge(chosen_news, _select_events(event_list, rules, now, until))
    by_name: dict[str, list[PlanItem]] = {}
    for item in _curate(news_items + event_items, curation):
        if item.kind == "entry":
            section = sections_of[int(item.key.split(":", 1)[1])]
        else:
            section = event_sections[item.key]
        by_name.setdefault(section, []).append(item)
    variants = tuple(
        Variant(
            language=language,
            subject=curation.subject.get(language, ""),
            intro=curation.intro.get(language, ""),
            sections=_sections(by_name, rules, language),
        )
        for language in rules.languages
    )
    return IssuePlan(
        number=number,
        cadence=cadence,
        slot=slot,
        composed_at=now,
        title=rules.title,
        timezone=rules.timezone,
        news_since=news_since,
        events_until=until,
        variants=variants,
    )


def upcoming_events(
    events: Iterable[EventCandidate], *, rules: Rules, now: datetime
) -> list[PlanItem]:
    """Return the occurrences from `now` to the horizon, sorted, cancelled ones left out."""
    until = now + timedelta(days=rules.event_horizon_days)
    fresh = [replace(e, announced_as=None) for e in events]
    return _select_events(fresh, rules, now, until)


def for_topics(plan: IssuePlan, topics: Iterable[str]) -> IssuePlan:
    """Return `plan` as seen by a subscriber who chose `topics` (none chosen: everything).

    An item is kept when it has no topic (it concerns everyone) or shares one with the
    subscriber; sections left empty disappear, and capped-out items are filtered alike.
    """
    wanted = {t.strip().lower() for t in topics if t.strip()}
    if not wanted:
        return plan

    def keep(item: PlanItem) -> bool:
        return not item.topics or bool(wanted.intersection(t.lower() for t in item.topics))

    variants = []
    for variant in plan.variants:
        sections = []
        for section in variant.sections:
            items = tuple(i for i in section.items if keep(i))
            rest = tuple(i for i in section.rest if keep(i))
            if items or rest:
                shown = Section(name=section.name, items=items + rest).capped(len(items))
                sections.append(shown if items else replace(shown, items=(), rest=rest))
        variants.append(replace(variant, sections=tuple(s for s in sections if s.items)))
    return replace(plan, variants=tuple(variants))
