"""The agenda of an issue: which event occurrences it shows, what changed since an earlier
issue announced them, and each event once (two calendars, a series, a multi-day event).
Pure: values in, plan items out.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
import zoneinfo
from collections.abc import Iterable
from dataclasses import replace
from datetime import date, datetime, timedelta

from digest.compose import EventCandidate, PlanItem, Rules
from digest.compose.excerpts import excerpt

EVENT_LINE_WORDS = 14
"""An event shows one line of its description: about this many words."""


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


def normal_title(text: str) -> str:
    """A title without case, accents or punctuation: what two announcements share."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return " ".join(re.findall(r"[a-z0-9]+", folded))


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


def event_start(item: PlanItem, zone: zoneinfo.ZoneInfo) -> datetime:
    """When the occurrence starts (an all-day one at midnight in `zone`)."""
    if item.all_day and item.start_date is not None:
        return datetime.combine(item.start_date, datetime.min.time(), zone)
    assert item.starts_at is not None
    return item.starts_at


def select_events(
    events: Iterable[EventCandidate], rules: Rules, now: datetime, until: datetime
) -> list[PlanItem]:
    """The occurrences an issue composed at `now` shows until `until`, sorted, with what
    changed since an earlier issue announced them; one per occurrence two calendars share."""
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
        chosen.append(event_item(event, rules, change, previous))
    ordered = sorted(chosen, key=lambda i: (event_start(i, zone), i.title))
    return _dedupe_events(ordered)


def event_item(
    event: EventCandidate, rules: Rules, change: str | None, previous: str | None
) -> PlanItem:
    """`event` as a plan item, with its change since an earlier issue (None: none)."""
    return PlanItem(
        key=f"event:{event.key}",
        kind="event",
        title=event.summary,
        link=event.url,
        summary_html="",
        summary_text=event.description,
        excerpt=excerpt(event.description, min(EVENT_LINE_WORDS, rules.excerpt_words)),
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


def collapse_series(items: list[PlanItem], zone: zoneinfo.ZoneInfo) -> list[PlanItem]:
    """Show each event once: occurrences of one UID on consecutive days become one entry
    with a date range (a two-day training); other repeats one entry with its next date
    and the later ones ("every 4 weeks"). Changed or cancelled occurrences stay apart,
    so their notice is seen."""
    series: dict[tuple[str, tuple[str, ...]], list[int]] = {}
    for n, item in enumerate(items):
        if item.uid and item.change is None and item.status != "CANCELLED":
            series.setdefault((item.uid, item.sources), []).append(n)
    shown: dict[int, PlanItem] = {}
    hidden: set[int] = set()
    for indices in series.values():
        if len(indices) < 2:
            continue
        occurrences = [items[n] for n in indices]
        starts = [event_start(i, zone).astimezone(zone) for i in occurrences]
        gaps = {(b.date() - a.date()).days for a, b in itertools.pairwise(starts)}
        first = occurrences[0]
        members = tuple(i.key for i in occurrences)
        same_hours = (
            len({(s.time(), _duration(i)) for s, i in zip(starts, occurrences, strict=True)}) == 1
        )
        if gaps == {1} and same_hours:
            shown[indices[0]] = replace(first, last_day=starts[-1].date(), members=members)
        else:
            shown[indices[0]] = replace(
                first,
                recurrence_days=gaps.pop() if len(gaps) == 1 else 0,
                later=tuple(i.isoformat() for i in starts[1:]),
                members=members,
            )
        hidden.update(indices[1:])
    return [shown.get(n, item) for n, item in enumerate(items) if n not in hidden]


def _duration(item: PlanItem) -> timedelta | None:
    if item.all_day or item.starts_at is None or item.ends_at is None:
        return None
    return item.ends_at - item.starts_at


def _dedupe_events(items: list[PlanItem]) -> list[PlanItem]:
    """Two calendars announcing the same occurrence (same title and start) show it once."""
    kept: dict[tuple[str, str], PlanItem] = {}
    for item in items:
        identity = (normal_title(item.title), str(item.starts_at or item.start_date))
        first = kept.get(identity)
        if first is None:
            kept[identity] = item
        else:
            kept[identity] = fill(first, item)
    return list(kept.values())


def fill(best: PlanItem, other: PlanItem) -> PlanItem:
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


def upcoming_events(
    events: Iterable[EventCandidate], *, rules: Rules, now: datetime
) -> list[PlanItem]:
    """Return the occurrences from `now` to the horizon, sorted, cancelled ones left out."""
    until = now + timedelta(days=rules.event_horizon_days)
    fresh = [replace(e, announced_as=None) for e in events]
    return select_events(fresh, rules, now, until)
